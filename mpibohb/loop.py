"""One event loop for every executor: ask -> journal -> submit -> wait -> journal -> tell."""

from __future__ import annotations

import logging
import math
import re
import shlex
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

from .ask_tell import Optimizer
from .brackets import ConfigId, Job
from .checkpoints import CheckpointKeeper
from .evaluation import INFO_DROPPED, INFO_UNPICKLABLE, Outcome
from .executors import Executor
from .journal import Record, job_record, json_change, result_record, storable_info
from .result import Result, Run, error_headline
from .run_directory import RunDirectory
from .scheduling.run_times import run_time
from .stopping import NEVER, StopFlag

logger = logging.getLogger("mpibohb")

INFO_CHECKS = 20  # the results of a session whose info is checked for what the journal changes


FAILURES_IN_FULL = 3
"""The first failed runs of a session are logged one by one, and the first run of each new type of
error up to :data:`DISTINCT_ERRORS_IN_FULL`; the rest in a summary at the end of each iteration."""
DISTINCT_ERRORS_IN_FULL = 10
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)', re.MULTILINE)


def error_kind(error: str | None, worker: str = "") -> str:
    """An error's type and message without the worker it ran on: ``KeyError: 'y'``."""
    return error_headline(error).replace(f" on {worker}", "", 1) if worker else error_headline(error)


def _raised_at(error: str | None) -> str:
    """`` (File "run.py", line 8, in compute)``: the innermost frame of a traceback, if any."""
    frames = _FRAME.findall(error or "")
    return f' (File "{frames[-1][0]}", line {frames[-1][1]}, in {frames[-1][2]})' if frames else ""


class _ErrorCounts:
    """Failed runs counted by the type of their error (messages often hold values that vary)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.latest: dict[str, str] = {}  # type -> its latest ``Type: message``
        self.varied: set[str] = set()  # types seen with more than one message

    def add(self, kind: str) -> bool:
        """Count ``kind`` (``Type: message``); whether its type is new."""
        error_type = kind.split(":", 1)[0]
        if error_type in self.latest and self.latest[error_type] != kind:
            self.varied.add(error_type)
        new = error_type not in self.counts
        self.counts[error_type] += 1
        self.latest[error_type] = kind
        return new

    def most_common(self) -> str:
        """``KeyError: 'y' (69 times)``, or ``ValueError (9 times; the last: ValueError: x=0.2)``."""
        error_type, count = self.counts.most_common(1)[0]
        times = f"{count} time{'' if count == 1 else 's'}"
        if error_type in self.varied:
            return f"{error_type} ({times}; the last: {self.latest[error_type]})"
        return f"{self.latest[error_type]} ({times})"


class FailureLog:
    """Tells at once that evaluations fail, and why, without flooding the log (see
    :data:`FAILURES_IN_FULL`); at the end of a run in which nothing succeeded, says so."""

    def __init__(self, previous_runs: list[Run], where_to_look: str) -> None:
        self.errors = _ErrorCounts()
        for run in previous_runs:
            if run.loss is None:
                self.errors.add(error_kind(run.error_logs, run.worker))
        self.where_to_look = where_to_look
        self.logged = 0
        self.unreported = _ErrorCounts()

    def failed(self, job: Job, outcome: Outcome) -> None:
        """Log a failed run in full, or count it for the next summary."""
        kind = error_kind(outcome.error, outcome.worker)
        new = self.errors.add(kind)
        if self.logged < FAILURES_IN_FULL or (new and len(self.errors.counts) <= DISTINCT_ERRORS_IN_FULL):
            self.logged += 1
            later = (f"; further failures are summarised at the end of each iteration ({self.where_to_look})"
                     if self.logged == FAILURES_IN_FULL else "")
            logger.warning("run %s at budget %g failed on %s: %s%s%s", job.config_id, job.budget,
                           outcome.worker or "?", kind, _raised_at(outcome.error), later)
        else:
            self.unreported.add(kind)

    def summarize(self, failed: int, runs: int) -> None:
        """Log the failed runs not logged yet, if any, in one line (``failed`` of ``runs`` so far)."""
        count = sum(self.unreported.counts.values())
        if count:
            logger.warning("%d more run%s failed (%d of %d so far), most often %s; see %s", count,
                           "" if count == 1 else "s", failed, runs, self.unreported.most_common(), self.where_to_look)
            self.unreported = _ErrorCounts()

    def none_succeeded(self, runs: int) -> None:
        """The line at the end of a run in which every evaluation failed."""
        logger.warning("no evaluation succeeded: all %d runs failed, most often with %s; there is no incumbent "
                       "(see %s)", runs, self.errors.most_common(), self.where_to_look)


class RunRecorder:
    """Collects the runs of an optimisation into a :class:`Result`, journals every event before
    the optimizer acts on it (when there is a run directory), and logs progress. ``previous``: the
    journaled runs of a resumed run; ``warm_start``: the earlier runs fed to the model, which the
    ``Result`` keeps."""

    def __init__(self, settings: dict[str, Any], directory: RunDirectory | None = None,
                 time_ref: float | None = None, previous: Result | None = None,
                 clock: Callable[[], float] = time.time, warm_start: list[list[Any]] | None = None) -> None:
        self.clock = clock  # a simulated clock in mpibohb.simulate
        self.time_ref = clock() if time_ref is None else time_ref
        self.settings = dict(settings, time_ref=self.time_ref)
        self.directory = directory
        self.runs: list[Run] = list(previous.runs) if previous else []
        self.warm_start = list(warm_start or [])  # the earlier runs fed to the model: the Result passes them on
        self.id2config: dict[ConfigId, dict[str, Any]] = dict(previous.id2config) if previous else {}
        self._submitted: dict[tuple[ConfigId, float], float] = {}
        self._info_checks_left = INFO_CHECKS  # a session's first results: the check costs a JSON pass
        successful = [r.loss for r in self.runs if r.loss is not None]
        self.best_loss = min(successful, default=math.inf)
        self.num_failed = sum(r.loss is None for r in self.runs)
        report = f" or python -m mpibohb report {shlex.quote(str(directory.path))}" if directory is not None else ""
        self.failures = FailureLog(self.runs, f"res.failed_runs(){report}")

    def journal(self, record: Record) -> None:
        """Append ``record`` to the run directory's journal, if there is one."""
        if self.directory is not None:
            self.directory.append(record)

    def submitted(self, job: Job, resubmit: bool = False, worker: str = "", now: float | None = None) -> None:
        """Journal a job handed out (``resubmit``: again, after a resume) to ``worker`` at ``now``
        (``None``: the clock's time now)."""
        now = self.clock() if now is None else now
        self.id2config.setdefault(job.config_id, {"config": job.config, "config_info": job.config_info})
        self._submitted[(job.config_id, job.budget)] = now - self.time_ref
        self.journal(job_record(job, worker, resubmit=resubmit, submitted=now))

    def finished(self, job: Job, outcome: Outcome) -> Run:
        """Journal an outcome and turn it into a :class:`Run`; log a new best loss, and an ``info``
        dropped for its size (see :func:`mpibohb.evaluation.bounded_info`)."""
        info = storable_info(outcome.info)
        # an info that could not travel: its rank warned once, so no line per run here
        if isinstance(info, str) and info.startswith(INFO_DROPPED) and not info.startswith(INFO_UNPICKLABLE):
            logger.warning("run %s at budget %g: %s", job.config_id, job.budget, info)
        self.journal(result_record(job, outcome, info))
        if self.directory is not None and self._info_checks_left > 0:
            self._say_info_change(job, info)
        stamps = {
            "submitted": self._submitted.pop((job.config_id, job.budget), outcome.started - self.time_ref),
            "started": outcome.started - self.time_ref,
            "finished": outcome.finished - self.time_ref,
        }
        run = Run(job.config_id, job.budget, outcome.loss, info, stamps, outcome.error, outcome.worker,
                  job.previous_budget)
        self.runs.append(run)
        if outcome.loss is None:
            self.num_failed += 1
            self.failures.failed(job, outcome)
        elif outcome.loss < self.best_loss:
            self.best_loss = outcome.loss
            self._progress(f"new best loss {outcome.loss:.6g} by {job.config_id} at budget {job.budget:g}")
        return run

    def _say_info_change(self, job: Job, info: Any) -> None:
        """Warn, once per session, if the run directory keeps ``info`` changed (a NaN as a string...):
        ``load_result`` and a resume read it so, while this run's ``Result`` keeps it as it was."""
        self._info_checks_left -= 1
        try:
            change = json_change(info)
        except Exception:  # noqa: BLE001 - a user object that breaks the look must not end the run
            logger.debug("could not tell whether the journal changes the info of %s", job.config_id, exc_info=True)
            return
        if change is not None:
            self._info_checks_left = 0
            logger.warning("run %s at budget %g: its info is kept in the run directory as JSON, where %s; "
                           "load_result and a resume read it so (said once)", job.config_id, job.budget, change)

    def bracket_done(self, iteration: int) -> None:
        """Log the end of a bracket."""
        self._progress(f"iteration {iteration} finished")
        self.failures.summarize(self.num_failed, len(self.runs))

    def session_ended(self) -> None:
        """Log the failed runs not reported yet; say so when no evaluation of the run succeeded."""
        self.failures.summarize(self.num_failed, len(self.runs))
        if self.runs and self.num_failed == len(self.runs):
            self.failures.none_succeeded(len(self.runs))

    def _progress(self, what: str) -> None:
        best = "none" if math.isinf(self.best_loss) else f"{self.best_loss:.6g}"
        logger.info("%s | runs %d (%d failed) | best loss %s | %.1f s", what, len(self.runs),
                    self.num_failed, best, self.clock() - self.time_ref)

    def result(self) -> Result:
        """The runs so far as a :class:`Result`."""
        return Result(list(self.runs), dict(self.id2config), dict(self.settings), list(self.warm_start))


def run_loop(optimizer: Optimizer, executor: Executor, recorder: RunRecorder, pending: Iterable[Job] = (),
             stop: StopFlag = NEVER, alone: Iterable[Job] = (), keeper: CheckpointKeeper | None = None) -> None:
    """Drive ``optimizer`` with ``executor`` until every bracket is finished; ``keeper`` deletes
    the checkpoints of configurations that can no longer be promoted.

    ``pending`` are jobs the optimizer handed out before a resume that never finished; they are
    handed out again before any new job. Jobs in ``alone`` (also handed out before: suspects of
    killing the run) come first, but never two of them at once; other jobs fill the other workers.

    Raises:
        StopRequested: ``stop`` was requested; every outcome received so far is recorded.
    """
    suspects, pending = deque(alone), deque(pending)
    suspect: tuple[ConfigId, float] | None = None  # the suspect running now
    while not optimizer.finished:
        stop.check()
        wake_at = None  # when the optimizer, which has nothing now, may have a job without a result
        while executor.idle_count() > 0:
            resubmit, job, now = True, None, recorder.clock()
            if suspects and suspect is None:
                job = suspects.popleft()
                suspect = (job.config_id, job.budget)
            elif pending:
                job = pending.popleft()
            else:
                job, resubmit = optimizer.ask(now), False
                for notice in optimizer.pop_notices():
                    logger.info("%s", notice)
                if job is None:
                    wake_at = optimizer.wake_at
                    break
            recorder.submitted(job, resubmit=resubmit, worker=executor.next_worker(), now=now)
            executor.submit(job)
        if optimizer.num_running == 0:
            raise RuntimeError("internal error: the optimizer waits for results but no job is running")
        finished = executor.wait(stop, until=wake_at)
        if any((job.config_id, job.budget) == suspect for job, _ in finished):
            suspect = None
        record_outcomes(optimizer, recorder, finished, keeper)


def record_outcomes(optimizer: Optimizer, recorder: RunRecorder, finished: Iterable[tuple[Job, Outcome]],
                    keeper: CheckpointKeeper | None = None) -> None:
    """Journal each outcome, then tell the optimizer; log finished brackets; hand the
    configurations that can no longer be promoted to ``keeper``."""
    for job, outcome in finished:
        recorder.finished(job, outcome)
        finished_bracket = optimizer.tell(job, outcome.loss_for_model(),
                                          run_time(outcome.loss, outcome.started, outcome.finished))
        retired = optimizer.pop_retired()
        if keeper is not None:
            keeper.observe(job.config_id, job.budget, outcome.loss)
            keeper.retire(retired)
        if finished_bracket is not None:
            recorder.bracket_done(finished_bracket)
