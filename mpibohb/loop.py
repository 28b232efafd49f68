"""One event loop for every executor: ask -> journal -> submit -> wait -> journal -> tell."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from .executors import Executor
from .journal import RunDirectory, storable_info
from .optimizer import ConfigId, Job, Optimizer
from .result import Result, Run
from .stopping import NEVER, StopFlag
from .worker import INFO_DROPPED, Outcome

logger = logging.getLogger("mpibohb")


class RunRecorder:
    """Collects the runs of an optimisation into a :class:`Result`, journals every event before
    the optimizer acts on it (when there is a run directory), and logs progress."""

    def __init__(self, settings: dict[str, Any], directory: RunDirectory | None = None,
                 time_ref: float | None = None, previous: Result | None = None) -> None:
        self.time_ref = time.time() if time_ref is None else time_ref
        self.settings = dict(settings, time_ref=self.time_ref)
        self.directory = directory
        self.runs: list[Run] = list(previous.runs) if previous else []
        self.id2config: dict[ConfigId, dict[str, Any]] = dict(previous.id2config) if previous else {}
        self._submitted: dict[tuple[ConfigId, float], float] = {}
        successful = [r.loss for r in self.runs if r.loss is not None]
        self.best_loss = min(successful, default=math.inf)
        self.num_failed = sum(r.loss is None for r in self.runs)

    def journal(self, record: dict[str, Any]) -> None:
        """Append ``record`` to the run directory's journal, if there is one."""
        if self.directory is not None:
            self.directory.append(record)

    def submitted(self, job: Job, resubmit: bool = False) -> None:
        """Journal a job handed out (``resubmit``: again, after a resume)."""
        now = time.time()
        self.id2config.setdefault(job.config_id, {"config": job.config, "config_info": job.config_info})
        self._submitted[(job.config_id, job.budget)] = now - self.time_ref
        self.journal({"type": "resubmit" if resubmit else "job", "config_id": list(job.config_id),
                      "budget": job.budget, "config": job.config, "config_info": job.config_info,
                      "submitted": now})

    def finished(self, job: Job, outcome: Outcome) -> Run:
        """Journal an outcome and turn it into a :class:`Run`; log a new best loss, and an ``info``
        dropped for its size (see :func:`mpibohb.worker.bounded_info`)."""
        info = storable_info(outcome.info)
        if isinstance(info, str) and info.startswith(INFO_DROPPED):
            logger.warning("run %s at budget %g: %s", job.config_id, job.budget, info)
        self.journal({"type": "result", "config_id": list(job.config_id), "budget": job.budget,
                      "loss": outcome.loss, "info": info, "error": outcome.error,
                      "started": outcome.started, "finished": outcome.finished, "worker": outcome.worker})
        stamps = {
            "submitted": self._submitted.pop((job.config_id, job.budget), outcome.started - self.time_ref),
            "started": outcome.started - self.time_ref,
            "finished": outcome.finished - self.time_ref,
        }
        run = Run(job.config_id, job.budget, outcome.loss, info, stamps, outcome.error, outcome.worker)
        self.runs.append(run)
        if outcome.failed:
            self.num_failed += 1
            logger.debug("run %s at budget %g failed: %s", job.config_id, job.budget,
                         (outcome.error or "").splitlines()[0])
        elif outcome.loss < self.best_loss:
            self.best_loss = outcome.loss
            self._progress(f"new best loss {outcome.loss:.6g} by {job.config_id} at budget {job.budget:g}")
        return run

    def bracket_done(self, iteration: int) -> None:
        """Log the end of a bracket."""
        self._progress(f"iteration {iteration} finished")

    def _progress(self, what: str) -> None:
        logger.info("%s | runs %d (%d failed) | best loss %.6g | %.1f s", what, len(self.runs),
                    self.num_failed, self.best_loss, time.time() - self.time_ref)

    def result(self) -> Result:
        """The runs so far as a :class:`Result`."""
        return Result(list(self.runs), dict(self.id2config), dict(self.settings))


def run_loop(optimizer: Optimizer, executor: Executor, recorder: RunRecorder, pending: Iterable[Job] = (),
             stop: StopFlag = NEVER, alone: Iterable[Job] = ()) -> None:
    """Drive ``optimizer`` with ``executor`` until every bracket is finished.

    ``pending`` are jobs the optimizer handed out before a resume that never finished; they are
    handed out again before any new job. Jobs in ``alone`` (also handed out before: suspects of
    killing the run) come first, but never two of them at once; other jobs fill the other workers.

    Raises:
        StopRequested: ``stop`` was requested; every outcome received so far is recorded.
    """
    suspects, pending = deque(alone), deque(pending)
    suspect: tuple[ConfigId, float] | None = None  # the suspect running now
    tail_logged = optimizer.tail_started
    while not optimizer.finished:
        stop.check()
        while executor.idle_count() > 0:
            resubmit = True
            if suspects and suspect is None:
                job = suspects.popleft()
                suspect = (job.config_id, job.budget)
            elif pending:
                job = pending.popleft()
            else:
                job, resubmit = optimizer.ask(), False
                if optimizer.tail_started and not tail_logged:
                    tail_logged = True
                    logger.info("fill_tail: starting every remaining bracket now (%d of %d), to keep the workers "
                                "busy to the end", optimizer.session_iterations - optimizer.brackets_before_tail,
                                optimizer.session_iterations)
                if job is None:
                    break
            recorder.submitted(job, resubmit=resubmit)
            executor.submit(job)
        if optimizer.num_running == 0:
            raise RuntimeError("internal error: the optimizer waits for results but no job is running")
        finished = executor.wait(stop)
        if any((job.config_id, job.budget) == suspect for job, _ in finished):
            suspect = None
        record_outcomes(optimizer, recorder, finished)


def record_outcomes(optimizer: Optimizer, recorder: RunRecorder, finished: Iterable[tuple[Job, Outcome]]) -> None:
    """Journal each outcome, then tell the optimizer; log finished brackets."""
    for job, outcome in finished:
        recorder.finished(job, outcome)
        optimizer.tell(job, outcome.loss_for_model())
        if optimizer.brackets[job.iteration].finished:
            recorder.bracket_done(job.iteration)
