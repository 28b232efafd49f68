"""The master's side of one call of ``run``: run directory, resume, warm start, graceful stop.

A resume rebuilds the optimizer by replaying its journal: a fresh optimizer with the journaled
seed is asked for jobs and told results in exactly the journaled order, which restores every
bracket and the random generator; jobs handed out but never finished are handed out again.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .brackets import Job, Optimizer
from .executors import Executor
from .files import refuse_link
from .journal import (
    CONFIGS,
    FORMAT_VERSION,
    JOURNAL,
    LOCK,
    RESULTS,
    JournalError,
    RunDirectory,
    RunDirectoryError,
    has_complete_line,
    lock_run_directory,
    read_journal,
)
from .loop import RunRecorder, record_outcomes, run_loop
from .result import Result, load_result, result_from_records
from .stopping import EXIT_STOPPED, RunStopped, StopFlag, StopRequested, stop_on_signals
from .worker import Outcome

logger = logging.getLogger("mpibohb")

_RESUME_INSENSITIVE = {"n_workers", "time_ref"}
_SETTINGS_ADDED_LATER = {"fill_tail": False}  # a journal written before a setting existed had its default
MAX_ATTEMPTS = 3  # one process: a job running each time the run died this often is recorded as failed
MAX_EVIDENCED_DEATHS = 2  # MPI: a job whose worker rank was seen to die this often while running it, too


def open_run_directory(run_dir: str, resume: bool, overwrite: bool) -> list[dict[str, Any]] | None:
    """Check ``run_dir`` and return the journal records to resume from (``None``: a new run).

    Raises:
        FileExistsError: ``run_dir`` holds a run and neither ``resume`` nor ``overwrite`` is set,
            or holds ``configs.json``/``results.json`` of another run (HpBandSter's logs) without
            our journal, and ``overwrite`` is not set (``resume`` cannot continue those).
        JournalError: its journal cannot be read.
    """
    path = Path(run_dir)
    journal = path / JOURNAL
    ours = journal.exists() and journal.stat().st_size > 0 and has_complete_line(journal)
    if not ours:
        _refuse_or_replace_foreign_logs(path, overwrite)
    if not journal.exists() or journal.stat().st_size == 0:
        return None
    if not ours:  # killed while writing its header: nothing was recorded
        logger.warning("%s holds only a torn first line (the run was killed while it started): starting afresh",
                       journal)
        journal.unlink()
        return None
    if overwrite:
        kept = sorted(set(os.listdir(path)) - {JOURNAL, CONFIGS, RESULTS, LOCK})
        logger.warning("overwriting the run in %s%s", path,
                       f" (only its {JOURNAL}, {CONFIGS} and {RESULTS}; other files stay: {', '.join(kept[:5])}"
                       f"{', ...' if len(kept) > 5 else ''})" if kept else "")
        for name in (JOURNAL, CONFIGS, RESULTS):
            (path / name).unlink(missing_ok=True)
        return None
    if not resume:
        raise FileExistsError(f"{path} already holds a run ({journal}); pass resume=True to continue it "
                              "or overwrite=True to start afresh")
    refuse_link(journal)  # it would be read, then refused for appending
    return read_journal(journal)


def foreign_logs(path: Path) -> list[str]:
    """The non-empty ``configs.json``/``results.json`` in ``path`` (call it when it holds no journal
    of ours): another run's logs, e.g. HpBandSter's ``json_result_logger``. Empty ones lose nothing."""
    return [name for name in (CONFIGS, RESULTS) if (path / name).is_file() and (path / name).stat().st_size > 0]


def _refuse_or_replace_foreign_logs(path: Path, overwrite: bool) -> None:
    """A run writes its own ``configs.json`` and ``results.json``: never over another run's unasked.

    Raises:
        FileExistsError: ``path`` holds such files and ``overwrite`` is not set.
    """
    found = foreign_logs(path)
    if not found:
        return
    names = " and ".join(found)
    if not overwrite:
        raise FileExistsError(
            f"{path} holds {names} of another run (HpBandSter's json_result_logger?) but no mpibohb journal; "
            f"a run there would replace them, and resume=True cannot continue them. To warm-start from them, "
            f"pass previous_result={str(path)!r} and choose another run_dir; to replace them, pass overwrite=True")
    logger.warning("overwrite=True: replacing %s in %s (another run's logs, no mpibohb journal)", names, path)


def check_same_run(old: dict[str, Any], new: dict[str, Any], path: Path) -> None:
    """Raise :class:`RunDirectoryError` naming what differs between a journaled run and this one."""
    old_settings, new_settings = ({k: v for k, v in {**_SETTINGS_ADDED_LATER, **header["settings"]}.items()
                                   if k not in _RESUME_INSENSITIVE} for header in (old, new))
    differ = _differing_settings(old_settings, new_settings)
    if differ:
        shown = ", ".join(f"{k}: {old_settings.get(k)!r} -> {new_settings.get(k)!r}" for k in differ)
        raise RunDirectoryError(f"cannot resume the run in {path}: its settings differ ({shown})")
    if json.loads(old["configspace"]) != json.loads(new["configspace"]):
        raise RunDirectoryError(f"cannot resume the run in {path}: its search space differs")


def _differing_settings(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The settings that differ, the optimizer first; with another optimizer, not those that only
    one of the two has (BOHB's model settings): they differ because the optimizer does."""
    keys = old.keys() | new.keys()
    if old.get("optimizer") != new.get("optimizer"):
        keys = old.keys() & new.keys()
    return sorted((k for k in keys if old.get(k) != new.get(k)), key=lambda k: (k != "optimizer", k))


def make_header(settings: dict[str, Any], configspace: Any, warm_start: list[list[Any]]) -> dict[str, Any]:
    """The journal's first record."""
    return {"type": "header", "format": FORMAT_VERSION, "settings": settings,
            "configspace": configspace_text(configspace), "created": time.time(),
            "warm_start": warm_start}


def configspace_text(configspace: Any) -> str:
    """The search space as ConfigSpace's JSON text."""
    buffer = io.StringIO()
    configspace.to_json(buffer)
    return buffer.getvalue()


def warm_start_observations(previous_result: Any) -> list[list[Any]]:
    """``[config, budget, loss or None]`` of every run of an earlier ``Result`` or run directory."""
    if previous_result is None:
        return []
    if not callable(getattr(previous_result, "get_all_runs", None)):  # a Result, mpibohb's or HpBandSter's
        previous_result = load_result(previous_result)
    configs = previous_result.get_id2config_mapping()
    return [[configs[run.config_id]["config"], run.budget, run.loss]
            for run in previous_result.get_all_runs() if run.config_id in configs]


def feed_warm_start(optimizer: Optimizer, space: Any, observations: list[list[Any]]) -> None:
    """Give the sampler the earlier runs, failed ones as loss +inf; skip configs not in this space."""
    skipped = 0
    for config, budget, loss in observations:
        try:
            vector = space.vector_of(config)
        except Exception:  # noqa: BLE001 - any config the space rejects
            skipped += 1
            continue
        optimizer.sampler.observe(vector, float(budget), math.inf if loss is None else float(loss))
    if observations:
        log = logger.warning if skipped else logger.info
        log("warm start: %d earlier runs fed to the model, %d skipped (not in this search space)",
            len(observations) - skipped, skipped)


@dataclass
class PendingJob:
    """A job handed out before a resume that never finished, with what the journal says of it:
    ``deaths``, how often a single-process session died while it ran (nothing there tells an
    outside kill from the job's own), and ``evidence``, each time its worker rank was seen to
    die while running it (MPI; a kill of the whole job leaves none)."""

    job: Job
    deaths: int = 0
    evidence: list[str] = field(default_factory=list)


def replay(optimizer: Optimizer, records: list[dict[str, Any]]) -> list[PendingJob]:
    """Bring ``optimizer`` to the journaled state; return the jobs still to run, in hand-out order.

    Raises:
        JournalError: the journal was written by an optimizer that asks differently, or is
            inconsistent.
    """
    pending: dict[tuple[tuple[int, ...], float], PendingJob] = {}
    this_session: set[tuple[tuple[int, ...], float]] = set()  # handed out since the last session record
    one_process = True  # sessions journaled before the executor was named counted every death
    for record in records:
        kind = record.get("type")
        key = (tuple(record.get("config_id", ())), record.get("budget"))
        if kind == "session":
            _count_deaths(pending, this_session, one_process)
            this_session, one_process = set(), record.get("executor") != "MPIExecutor"
            _start_replayed_session(optimizer, record)
        elif kind == "stop":
            this_session = set()  # a clean stop interrupted its jobs on purpose
        elif kind == "job":
            pending[key] = PendingJob(_replay_ask(optimizer, record))
        elif kind == "lost" and key in pending:
            pending[key].evidence.append(record.get("reason") or "its worker rank died")
        if kind in ("job", "resubmit"):
            this_session.add(key)
        elif kind == "result":
            if key not in pending:
                raise JournalError(f"the journal has a result for {list(key[0])} at budget {key[1]} that was "
                                   "never handed out")
            optimizer.tell(pending.pop(key).job, math.inf if record["loss"] is None else record["loss"])
    _count_deaths(pending, this_session, one_process)
    return list(pending.values())


def _count_deaths(pending: dict[Any, PendingJob], running: set[Any], one_process: bool) -> None:
    """The session ended (died) while ``running`` ran; count it where nothing tells why."""
    if one_process:
        for key in running & pending.keys():
            pending[key].deaths += 1


def _start_replayed_session(optimizer: Optimizer, record: dict[str, Any]) -> None:
    """Replay a session's start with its own iterations and workers, which fill_tail's choices
    depend on; a fill_tail run cannot be replayed with fewer iterations than a session had."""
    n_iterations = record.get("n_iterations", optimizer.n_iterations)
    if optimizer.fill_tail and n_iterations > optimizer.n_iterations:
        raise JournalError(f"this run has fill_tail and ran with n_iterations={n_iterations} before: resume it "
                           f"with at least that many (not {optimizer.n_iterations}); fill_tail's choices depend on it")
    optimizer.start_session(n_iterations, record.get("n_workers", 1))


def _replay_ask(optimizer: Optimizer, record: dict[str, Any]) -> Job:
    job = optimizer.ask()
    if job is None:
        raise JournalError(f"the journal holds more than this call's {optimizer.n_iterations} iterations: "
                           f"it hands out {record['config_id']}; resume with at least as many n_iterations")
    if list(job.config_id) != record["config_id"] or job.budget != record["budget"] or job.config != record["config"]:
        raise JournalError(f"the journal does not replay: it hands out {record['config_id']} at budget "
                           f"{record['budget']}, this optimizer {job.config_id} at {job.budget}")
    return job


def give_up_on_repeat_crashes(pending: list[PendingJob], optimizer: Optimizer,
                              recorder: RunRecorder) -> tuple[list[Job], list[Job]]:
    """Record as failed the jobs that the evidence blames for killing the run: their worker rank
    was seen to die while running them :data:`MAX_EVIDENCED_DEATHS` times, or a single-process
    run died :data:`MAX_ATTEMPTS` times while they ran. Return the others, to be handed out
    again: those on their last single-process attempt apart (they run one at a time, so that a
    job that ran beside one that kills the run is not blamed for it), then the rest."""
    alone, again = [], []
    for entry in pending:
        reason = _blame(entry)
        if reason is None:
            (alone if entry.deaths == MAX_ATTEMPTS - 1 else again).append(entry.job)
            continue
        now = time.time()
        logger.warning("%s at budget %g: %s", entry.job.config_id, entry.job.budget, reason.splitlines()[0])
        record_outcomes(optimizer, recorder, [(entry.job, Outcome(None, None, reason, now, now, "resume"))])
    return alone, again


def _blame(entry: PendingJob) -> str | None:
    """Why ``entry`` is recorded as failed, or ``None`` while the evidence does not blame it."""
    if len(entry.evidence) >= MAX_EVIDENCED_DEATHS:
        return (f"AbandonedJob: its worker's process ended {len(entry.evidence)} times while running this job, "
                "each time while the master was there to see it (a segfault, an out-of-memory kill, os._exit); "
                f"recorded as failed. The last time: {entry.evidence[-1]}")
    if entry.deaths >= MAX_ATTEMPTS:
        return (f"AbandonedJob: the run died {entry.deaths} times while this job ran (e.g. a segfault or an "
                "out-of-memory kill), the last time with no other such job running; recorded as failed")
    return None


def name_interrupted_jobs(pending: list[PendingJob], records: list[dict[str, Any]]) -> None:
    """Say which jobs were running, and where, when the last session ended without a stop, and
    which worker ranks were seen to die in it."""
    if not pending or records[-1].get("type") in ("stop", "end"):
        return
    last_session = max(i for i, r in enumerate(records) if r.get("type") in ("header", "session"))
    for record in records[last_session:]:
        if record.get("type") == "lost":
            logger.warning("in the last session %s", record.get("reason", "a worker rank died").splitlines()[0])
    workers = {(tuple(r["config_id"]), r["budget"]): r.get("worker") for r in records
               if r.get("type") in ("job", "resubmit") and r.get("worker")}
    shown = [f"{entry.job.config_id} at budget {entry.job.budget:g}"
             + (f" on {workers[(entry.job.config_id, entry.job.budget)]}"
                if (entry.job.config_id, entry.job.budget) in workers else "") for entry in pending[:10]]
    logger.warning("the last session ended without a stop record (killed, or a process died) while %d jobs ran: %s%s",
                   len(pending), "; ".join(shown), "; ..." if len(pending) > 10 else "")


def _prepare_directory(family: Any, n_workers: int, resume: bool, overwrite: bool,
                       warm_start: list[list[Any]]) -> tuple[list[dict[str, Any]] | None, RunDirectory, dict[str, Any]]:
    """Lock the run directory, check it, and open it for writing; return the records to replay
    (``None`` for a new run), the directory, and the run's header."""
    lock_file = Path(family.run_dir) / LOCK
    lock_was_there = lock_file.exists()
    lock = lock_run_directory(family.run_dir)
    try:
        records = open_run_directory(family.run_dir, resume, overwrite)
        if records is not None and not family.seed_given:
            family.seed = records[0]["settings"]["seed"]  # a resume continues the journaled stream
        header = make_header(dict(family.settings(), n_workers=n_workers), family.configspace, warm_start)
        if records is not None:
            check_same_run(records[0], header, Path(family.run_dir))
            header = records[0]
        directory = RunDirectory(family.run_dir, records, lock)
    except BaseException:
        if not lock_was_there:  # a refused directory (e.g. HpBandSter's logs) is left as it was
            lock_file.unlink(missing_ok=True)
        lock.close()
        raise
    if records is None:
        try:
            directory.append(header)
        except BaseException:
            directory.close()  # releases the lock; quiet after a failed write
            raise
    return records, directory, header


def run_master(family: Any, executor: Executor, n_iterations: int, n_workers: int, resume: bool,
               overwrite: bool, previous_result: Any) -> Result:
    """Run the optimisation on this process with ``executor``; journal it when there is a run_dir.

    Raises:
        RunStopped: a stop signal arrived (only with a run_dir); everything received is recorded.
    """
    warm_start = warm_start_observations(previous_result)
    records, directory, created = None, None, None
    if family.run_dir is not None:
        records, directory, header = _prepare_directory(family, n_workers, resume, overwrite, warm_start)
        warm_start, created = header["warm_start"], header["created"]
    stop = StopFlag()
    with stop_on_signals(stop, enabled=directory is not None):
        try:
            optimizer, previous, replayed = _rebuild(family, n_iterations, warm_start, records, stop)
            recorder = RunRecorder(dict(family.settings(), n_workers=n_workers), directory, created, previous)
            recorder.journal({"type": "session", "n_iterations": n_iterations, "n_workers": n_workers,
                              "started": time.time(), "executor": type(executor).__name__})
            executor.set_journal(recorder.journal)
            if records:
                name_interrupted_jobs(replayed, records)
            _log_settings(family, n_iterations, n_workers)
            alone, pending = give_up_on_repeat_crashes(replayed, optimizer, recorder)
            optimizer.start_session(n_iterations, n_workers)
            if records:
                logger.info("resuming %s: %d runs done, %d to run again", family.run_dir, len(previous.runs),
                            len(alone) + len(pending))
            if alone:
                logger.warning("%d jobs were running each time the run died (%d times): they run again one at "
                               "a time, beside other jobs, to find the one that kills it", len(alone), MAX_ATTEMPTS - 1)
            _run_until_done_or_stopped(optimizer, executor, recorder, alone, pending, stop, family.run_dir)
        finally:
            executor.close()
            if directory is not None:
                directory.close()
    return recorder.result()


def _rebuild(family: Any, n_iterations: int, warm_start: list[list[Any]], records: list[dict[str, Any]] | None,
             stop: StopFlag) -> tuple[Optimizer, Result | None, list[tuple[Job, int]]]:
    """A fresh optimizer, warm-started and brought to the journaled state (see :func:`replay`);
    the journal's runs as a Result; the jobs to run again.

    A long journal takes long to replay, and nothing is written meanwhile, so a stop signal
    interrupts this at once (a journal that does not replay leaves no record either).

    Raises:
        RunStopped: a stop signal arrived; nothing new was recorded.
    """
    try:
        with stop.interruptible_section():
            if records:
                logger.info("%s: replaying the journal's %d records", family.run_dir, len(records))
            optimizer = family.make_optimizer(n_iterations)
            feed_warm_start(optimizer, family.space, warm_start)
            previous = result_from_records(records) if records else None
            replayed = replay(optimizer, records) if records else []
    except StopRequested as stopped:
        logger.warning("%s while the run resumed: nothing new was recorded; run again with resume=True to "
                       "continue (exit code %d)", stopped, EXIT_STOPPED)
        raise RunStopped(stopped.signum) from None
    return optimizer, previous, replayed


def _log_settings(family: Any, n_iterations: int, n_workers: int) -> None:
    """One line at the start: what runs, on how many workers, where."""
    def count(n: int, noun: str) -> str:
        return f"{n} {noun}{'' if n == 1 else 's'}"

    budgets = ", ".join(f"{budget:g}" for budget in family.budgets)
    logger.info("%s: %s, budgets %s (eta %g), %s, seed %d, %s%s", family.name, count(n_iterations, "iteration"),
                budgets, family.eta, count(n_workers, "worker"), family.seed,
                f"run_dir {family.run_dir}" if family.run_dir is not None else "no run_dir",
                ", fill_tail" if family.fill_tail else "")


def _run_until_done_or_stopped(optimizer: Optimizer, executor: Executor, recorder: RunRecorder, alone: list[Job],
                               pending: list[Job], stop: StopFlag, run_dir: str | None) -> None:
    try:
        run_loop(optimizer, executor, recorder, pending, stop, alone=alone)
    except StopRequested as stopped:
        record_outcomes(optimizer, recorder, executor.drain())
        recorder.session_ended()
        recorder.journal({"type": "stop", "signal": stopped.signum, "time": time.time()})
        logger.warning("%s: everything so far is in %s; run again with resume=True to continue (exit code %d)",
                       stopped, run_dir, EXIT_STOPPED)
        raise RunStopped(stopped.signum) from None
    recorder.session_ended()
    recorder.journal({"type": "end", "time": time.time()})
