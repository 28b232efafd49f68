"""Evaluate each job in this process, when the loop waits for it."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ..brackets import ConfigId, Job
from ..checkpoints import directory_for
from ..evaluation import Outcome, OutOfSpaceError, answer_deadline, evaluate
from ..journal import result_record
from ..stopping import SignalWitness, StopFlag, StopRequested, handlers_restored
from . import KEPT_AFTER_STOPS, kept_despite_full_disk

logger = logging.getLogger(__name__)
EXIT_STUCK = 1
STUCK_ENDS_PROCESS = "the process ends so that the run does not wait for ever"  # status looks for it


class SerialExecutor:
    """One worker: the calling process itself."""

    def __init__(self, compute: Callable[..., Any], working_directory: str, timeout: float | None = None,
                 checkpoint_root: str | None = None) -> None:
        self.compute = compute
        self.timeout = timeout
        self.working_directory, self.checkpoint_root = working_directory, checkpoint_root
        self.name = f"serial@{socket.gethostname()}"
        self._pending: Job | None = None
        self._witness: SignalWitness | None = None  # made at the first evaluation: a refused run leaks no pipe
        self._journal: Callable[[dict[str, Any]], None] | None = None
        self._earlier_stops: dict[tuple[ConfigId, float], int] = {}

    def set_journal(self, journal: Callable[[dict[str, Any]], None]) -> None:
        """Where the watchdog journals an evaluation stuck past its timeout, before the process ends
        (never set in a run without a run directory, which keeps nothing)."""
        self._journal = journal

    def note_earlier_deaths(self, deaths: dict[tuple[ConfigId, float], int]) -> None:
        """Deaths of this process leave no evidence: nothing to count."""

    def note_earlier_stops(self, stops: dict[tuple[ConfigId, float], int]) -> None:
        """Jobs that earlier sessions' stops ended while they ran (see :meth:`wait`)."""
        self._earlier_stops = dict(stops)

    def next_worker(self) -> str:
        """This process."""
        return self.name

    def idle_count(self) -> int:
        """1 while no job is pending, else 0."""
        return 0 if self._pending else 1

    def submit(self, job: Job) -> None:
        """Remember ``job``; it runs in :meth:`wait`."""
        self._pending = job

    def wait(self, stop: StopFlag, until: float | None = None) -> list[tuple[Job, Outcome]]:
        """Run the pending job now; a stop signal interrupts it (it then runs again on resume),
        also when ``compute`` caught the signal with a handler of its own and returned: what it
        returned after a stop reached it (a partly trained model's loss, a penalty from an
        ``except``) is not the evaluation's result. Unless stops ended :data:`KEPT_AFTER_STOPS`
        earlier sessions while this job ran: then what it returns is kept (a failure too), so that a run still goes
        on when compute uses a stop signal for itself (a helper's SIGUSR1) or every allocation
        ends inside this job. ``until``: one worker has nothing to wait for besides its job."""
        job, self._pending = self._pending, None
        if job is None:
            return []
        watchdog = self._watchdog(job)
        try:
            if self._witness is None:
                self._witness = SignalWitness().__enter__()
            with stop.interruptible_section(), handlers_restored():
                self._witness.rearm()
                self._witness.escort(stop)  # a second stop ends the process even inside a C call
                try:
                    outcome = evaluate(self.compute, job.config_id, job.config, job.budget, self.working_directory,
                                       self.name, self.timeout, job.previous_budget,
                                       directory_for(self.checkpoint_root, job.config_id))
                except OutOfSpaceError as full:
                    outcome = kept_despite_full_disk(full, self._earlier_stops)
        finally:
            if watchdog is not None:
                watchdog.cancel()
        arrival = self._witness.arrived()
        if arrival is not None and stop is not None and stop.watching:
            signum = arrival.signum
            stop.note(signum)
            stopped_before = self._earlier_stops.get((job.config_id, job.budget), 0)
            if stopped_before < KEPT_AFTER_STOPS:
                raise StopRequested(signum)
            logger.warning("%s at budget %g: a stop signal reached it in %d sessions; what compute returned is "
                           "kept this time, so that the run goes on", job.config_id, job.budget, stopped_before + 1)
        return [(job, outcome)]

    def _watchdog(self, job: Job) -> threading.Timer | None:
        """A timer that ends the process if the evaluation outlives its timeout by the grace: stuck
        where ``SIGALRM`` cannot interrupt it, it would otherwise hold the run for ever."""
        limit = answer_deadline(self.timeout)
        if limit is None:
            return None
        timer = threading.Timer(limit, self._stuck, args=(job, time.time()))
        timer.daemon = True
        timer.start()
        return timer

    def _stuck(self, job: Job, started: float) -> None:
        error = (f"JobTimeoutError on {self.name}: still running {time.time() - started:.0f} s after it started "
                 f"(timeout {self.timeout:g} s plus grace), stuck where the timeout cannot interrupt it (a blocking "
                 f"C call); {STUCK_ENDS_PROCESS}")
        if self._journal is not None:
            self._journal(result_record(job, Outcome(None, None, error, started, time.time(), self.name), None))
            after = "it is recorded as failed: run again with resume=True (or the same command line) to continue"
        else:
            after = "the run had no run_dir, so its results are lost: give it one to keep them through such an end"
        print(f"mpibohb: {job.config_id} at budget {job.budget:g}: {error}; {after} (exit code {EXIT_STUCK})",
              file=sys.stderr, flush=True)
        logging.shutdown()
        os._exit(EXIT_STUCK)

    def drain(self) -> list[tuple[Job, Outcome]]:
        """Nothing runs in the background."""
        return []

    def close(self) -> None:
        """Give back the wakeup fd."""
        if self._witness is not None:
            self._witness.__exit__(None, None, None)
            self._witness = None
