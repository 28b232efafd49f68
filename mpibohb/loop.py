"""One event loop for every executor: ask -> submit -> wait -> record -> tell."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from .executors import Executor
from .optimizer import ConfigId, Job, Optimizer
from .result import Result, Run
from .worker import Outcome

logger = logging.getLogger("mpibohb")


class RunRecorder:
    """Collects the runs of an optimisation into a :class:`Result` and logs progress."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.time_ref = time.time()
        self.settings = dict(settings, time_ref=self.time_ref)
        self.runs: list[Run] = []
        self.id2config: dict[ConfigId, dict[str, Any]] = {}
        self._submitted: dict[tuple[ConfigId, float], float] = {}
        self.best_loss = math.inf
        self.num_failed = 0

    def submitted(self, job: Job) -> None:
        """Note the time a job was handed out, and its configuration."""
        self.id2config.setdefault(job.config_id, {"config": job.config, "config_info": job.config_info})
        self._submitted[(job.config_id, job.budget)] = time.time() - self.time_ref

    def finished(self, job: Job, outcome: Outcome) -> Run:
        """Turn an outcome into a :class:`Run`; log a new incumbent."""
        stamps = {
            "submitted": self._submitted.pop((job.config_id, job.budget)),
            "started": outcome.started - self.time_ref,
            "finished": outcome.finished - self.time_ref,
        }
        run = Run(job.config_id, job.budget, outcome.loss, outcome.info, stamps, outcome.error, outcome.worker)
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


def run_loop(optimizer: Optimizer, executor: Executor, recorder: RunRecorder) -> None:
    """Drive ``optimizer`` with ``executor`` until every bracket is finished."""
    while not optimizer.finished:
        while executor.idle_count() > 0:
            job = optimizer.ask()
            if job is None:
                break
            recorder.submitted(job)
            executor.submit(job)
        if optimizer.num_running == 0:
            raise RuntimeError("internal error: the optimizer waits for results but no job is running")
        for job, outcome in executor.wait():
            recorder.finished(job, outcome)
            optimizer.tell(job, outcome.loss_for_model())
            if optimizer.brackets[job.iteration].finished:
                recorder.bracket_done(job.iteration)
