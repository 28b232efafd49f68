"""A resume: a fresh optimizer brought to the journaled state, and the jobs to hand out again.

The replay asks a fresh optimizer (with the journaled seed) for jobs and tells it results in
exactly the journaled order, which restores every bracket and the random generator, and drops
the jobs a session dropped at its start; jobs handed out but never finished are handed out
again. A job that the journal blames for killing the run (:func:`give_up_on_repeat_crashes`) is
recorded as failed instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from .ask_tell import Optimizer
from .brackets import Job
from .checkpoints import CheckpointKeeper
from .evaluation import Outcome
from .health import MAX_EVIDENCED_DEATHS, abandoned_job_reason
from .journal import JournalError, OpenJob, Record, RunState, as_journaled, fold
from .loop import RunRecorder, record_outcomes
from .scheduling.run_times import run_time

logger = logging.getLogger("mpibohb")

MAX_ATTEMPTS = 3  # one process: a job running each time the run died this often is recorded as failed
REPEATED_KILLS = 3  # MPI: a job running when the job was killed this often is named (never failed)
# why a journal does not replay, when the optimizer decides otherwise than the journal says
NOT_THIS_RUN = "the run was made by another version of mpibohb or with other settings, or its journal was edited"


@dataclass
class PendingJob:
    """A job handed out before a resume that never finished, with what the journal says of it
    (see :class:`~mpibohb.journal.OpenJob`): ``deaths``, how often a single-process session died
    while it ran, ``evidence``, each time its worker rank was seen to die while running it, and
    ``stops``, how many sessions a stop ended while it ran, ``kills``, how many MPI sessions ended
    without a stop record while it ran."""

    job: Job
    deaths: int = 0
    evidence: list[str] = field(default_factory=list)
    stops: int = 0
    kills: int = 0


def replay(optimizer: Optimizer, records: list[Record]) -> tuple[RunState, list[PendingJob]]:
    """Bring ``optimizer`` to the journaled state; return the journal's state and the jobs still
    to run, in hand-out order.

    Raises:
        JournalError: the journal was written by an optimizer that asks differently, or is
            inconsistent.
    """
    def tell(record: Record, opened: OpenJob | None) -> None:
        # the run time as the run told it (loop.record_outcomes), from the journaled time stamps
        optimizer.tell(_asked(opened, record), math.inf if record["loss"] is None else record["loss"],
                       run_time(record["loss"], record["started"], record["finished"]))

    iterations = 1 + max((r["config_id"][0] for r in records if r["type"] == "job"), default=-1)
    state = fold(records, on_session=lambda record: _start_replayed_session(optimizer, record),
                 on_job=lambda record: _replay_ask(optimizer, record, iterations), on_result=tell,
                 on_dropped=lambda record, opened: _replay_drop(optimizer, record, opened))
    return state, [PendingJob(_asked(opened, opened.record), opened.deaths, list(opened.evidence), opened.stops,
                              opened.kills) for opened in state.open_jobs.values()]


def _asked(opened: OpenJob | None, record: Record) -> Job:
    """The job the replay asked for when ``opened`` was handed out.

    Raises:
        JournalError: a result, or a resubmit, of a job that was not open (never handed out, or
            finished before).
    """
    if opened is None or opened.handle is None:
        raise JournalError(f"the journal has a {record['type']} for {record['config_id']} at budget "
                           f"{record['budget']} that was never handed out, or had finished before")
    return opened.handle


def _start_replayed_session(optimizer: Optimizer, record: Record) -> None:
    """Replay a session's start with its own iterations and workers, which the choices of
    fill_tail and of the asynchronous tail depend on; such a run cannot be replayed with fewer
    iterations than a session had."""
    n_iterations = record.get("n_iterations", optimizer.n_iterations)
    if optimizer.replays_sessions and n_iterations > optimizer.n_iterations:
        raise JournalError(f"this run ran with n_iterations={n_iterations} before: resume it with at least that many "
                           f"(not {optimizer.n_iterations}); its schedule's choices (fill_tail, asynchronous) depend "
                           "on it")
    optimizer.start_session(n_iterations, record.get("n_workers", 1), record.get("started"))


def _replay_ask(optimizer: Optimizer, record: Record, iterations: int) -> Job:
    """The job the optimizer hands out where the journal handed out ``record``'s; ``iterations``:
    how many the journal's jobs span."""
    job = optimizer.ask(record.get("submitted"))
    if job is None:
        raise JournalError(f"this run already has {iterations} iterations, more than the {optimizer.n_iterations} "
                           f"asked for now: resume with n_iterations={iterations} or more (--n-iterations "
                           f"{iterations} on the command line)")
    difference = _difference(job, record)
    if difference:
        raise JournalError(f"the journal does not replay: where it hands out {record['config_id']} at budget "
                           f"{record['budget']}, this optimizer asks otherwise ({difference}); {NOT_THIS_RUN}")
    return job


def _replay_drop(optimizer: Optimizer, record: Record, opened: OpenJob | None) -> None:
    """Drop the job that ``record`` dropped, as the session did at its start.

    Raises:
        JournalError: the job was not open, or this optimizer needs it (another version or settings).
    """
    job = _asked(opened, record)
    try:
        optimizer.drop(job)
    except ValueError as exc:
        raise JournalError(f"the journal does not replay: it drops {record['config_id']} at budget {record['budget']},"
                           f" which this optimizer needs ({exc}); {NOT_THIS_RUN}") from None


def _difference(job: Job, record: Record) -> str:
    """What differs between the replay's job and the journaled one, named; empty when nothing does."""
    if list(job.config_id) != record["config_id"]:
        return f"config id {job.config_id} instead of {tuple(record['config_id'])}"
    if job.budget != record["budget"]:
        return f"budget {job.budget} instead of {record['budget']}"
    if record.get("previous_budget", job.previous_budget) != job.previous_budget:
        return f"previous budget {job.previous_budget} instead of {record.get('previous_budget')}"
    names = sorted(set(job.config) | set(record["config"]))
    differing = [name for name in names if job.config.get(name) != record["config"].get(name)]
    if differing:  # a tuple or an infinite float differs only as the journal holds it: compare that
        journaled = as_journaled(job.config)
        differing = [name for name in differing if journaled.get(name) != record["config"].get(name)]
    if differing:
        shown = ", ".join(f"{name}={job.config.get(name)!r} instead of {record['config'].get(name)!r}"
                          for name in differing[:3])
        more = f" and {len(differing) - 3} more" if len(differing) > 3 else ""
        return f"the configuration has {shown}{more}"
    return ""


def give_up_on_repeat_crashes(pending: list[PendingJob], optimizer: Optimizer, recorder: RunRecorder,
                              keeper: CheckpointKeeper | None = None) -> tuple[list[Job], list[Job]]:
    """Record as failed the jobs that the evidence blames for killing the run: their worker rank
    was seen to die while running them :data:`MAX_EVIDENCED_DEATHS` times, or a single-process
    run died :data:`MAX_ATTEMPTS` times while they ran. Return the others, to be handed out
    again: those on their last single-process attempt apart (they run one at a time, so that a
    job that ran beside one that kills the run is not blamed for it), then the rest."""
    alone: list[Job] = []
    again: list[Job] = []
    for entry in pending:
        reason = _blame(entry)
        if reason is None:
            (alone if entry.deaths == MAX_ATTEMPTS - 1 else again).append(entry.job)
            continue
        now = recorder.clock()  # simulated seconds in a simulated run
        logger.warning("%s at budget %g: %s", entry.job.config_id, entry.job.budget, reason.splitlines()[0])
        record_outcomes(optimizer, recorder, [(entry.job, Outcome(None, None, reason, now, now, "resume"))], keeper)
    return alone, again


def _blame(entry: PendingJob) -> str | None:
    """Why ``entry`` is recorded as failed, or ``None`` while the evidence does not blame it."""
    if len(entry.evidence) >= MAX_EVIDENCED_DEATHS:
        return abandoned_job_reason(len(entry.evidence), entry.evidence[-1])
    if entry.deaths >= MAX_ATTEMPTS:
        return (f"AbandonedJob: the run died {entry.deaths} times while this job ran (e.g. a segfault or an "
                "out-of-memory kill), the last time with no other such job running; recorded as failed")
    return None


def name_interrupted_jobs(pending: list[PendingJob], state: RunState) -> None:
    """Say which jobs were running, and where, when the last session ended without a stop, and
    which worker ranks were seen to die in it."""
    if not pending or state.ending is not None:
        return
    for record in state.lost:
        logger.warning("in the last session %s", record.get("reason", "a worker rank died").splitlines()[0])
    shown = [f"{entry.job.config_id} at budget {entry.job.budget:g}" + _on_worker(state, entry.job)
             for entry in pending[:10]]
    logger.warning("the last session ended without a stop record (killed, or a process died) while %d jobs ran: %s%s",
                   len(pending), "; ".join(shown), "; ..." if len(pending) > 10 else "")
    for entry in pending:
        if entry.kills >= REPEATED_KILLS and not entry.evidence:
            logger.warning("%s at budget %g was running when the MPI job ended without a stop record, %d times: "
                           "if its compute ends the whole job (MPI_Abort, a library's fatal-error path), "
                           "catch that in compute, since mpibohb cannot tell it from a kill of the job and runs "
                           "it again at every resume", entry.job.config_id, entry.job.budget, entry.kills)


def _on_worker(state: RunState, job: Job) -> str:
    hand_out = state.handed_out.get((job.config_id, job.budget))
    return f" on {hand_out.worker}" if hand_out is not None and hand_out.worker else ""
