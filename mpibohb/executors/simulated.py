"""Virtual workers on a simulated clock, for :func:`mpibohb.simulate`.

Each job is evaluated at once (``compute`` still runs, for its loss), but is taken to end
``duration(config, budget)`` simulated seconds after it started; :meth:`wait` moves the clock to
the next end. So the real run loop, journal and optimizer run against ``n_workers`` workers in
no time: 1,024 workers and 100,000 evaluations take minutes, not the days they would simulate.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any

from ..brackets import ConfigId, Job
from ..checkpoints import directory_for
from ..evaluation import Outcome, OutOfSpaceError, evaluate, real_number
from ..stopping import StopFlag
from . import kept_despite_full_disk

Duration = Callable[[dict[str, Any], float], float]


class SimulatedClock:
    """Seconds of simulated time; call it for the time now."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def continue_from(self, moment: float) -> None:
        """A resumed run's clock goes on from ``moment``, the journal's latest time stamp."""
        self.now = max(self.now, moment)


class SimulatedExecutor:
    """``n_workers`` virtual workers; a job on one ends ``duration(config, budget)`` seconds later."""

    def __init__(self, compute: Callable[..., Any], n_workers: int, duration: Duration, clock: SimulatedClock,
                 working_directory: str, timeout: float | None = None, checkpoint_root: str | None = None) -> None:
        self.compute, self.duration, self.clock = compute, duration, clock
        self.working_directory, self.timeout = working_directory, timeout
        self.checkpoint_root = checkpoint_root
        self._free = list(range(n_workers))  # heap of idle worker numbers: the lowest takes the next job
        self._running: list[tuple[float, int, int, Job, Outcome]] = []  # heap of (end, order, worker, ...)
        self._order = itertools.count()
        self._earlier_stops: dict[tuple[ConfigId, float], int] = {}

    def set_journal(self, journal: Callable[[dict[str, Any]], None]) -> None:
        """Nothing to journal of its own."""

    def note_earlier_deaths(self, deaths: dict[tuple[ConfigId, float], int]) -> None:
        """Virtual workers do not die: nothing to count."""


    def note_earlier_stops(self, stops: dict[tuple[ConfigId, float], int]) -> None:
        """Jobs that earlier sessions' stops ended while they ran: one that runs out of disk space
        again is recorded as failed after :data:`~mpibohb.executors.KEPT_AFTER_STOPS` of them."""
        self._earlier_stops = dict(stops)

    def next_worker(self) -> str:
        """The virtual worker the next job goes to."""
        return f"virtual worker {self._free[0]}" if self._free else ""

    def idle_count(self) -> int:
        """Virtual workers without a job."""
        return len(self._free)

    def submit(self, job: Job) -> None:
        """Evaluate ``job`` now; it ends ``duration`` simulated seconds from now."""
        worker = heapq.heappop(self._free)
        name = f"virtual worker {worker}"
        try:
            seconds = self.duration(dict(job.config), job.budget)
        except Exception as exc:
            raise RuntimeError(f"duration(config, budget) raised {type(exc).__name__}: {exc} for {job.config_id} "
                               f"at budget {job.budget:g}, config {dict(job.config)}") from exc
        seconds = _checked(seconds, job, self.clock.now)
        if self.timeout is not None and seconds > self.timeout:
            seconds = self.timeout
            outcome = Outcome(None, None, f"JobTimeoutError on {name}: timeout: the simulated evaluation takes "
                              f"longer than the limit of {self.timeout:g} s", worker=name)
        else:
            try:
                outcome = evaluate(self.compute, job.config_id, job.config, job.budget, self.working_directory, name,
                                   previous_budget=job.previous_budget,
                                   checkpoint_dir=directory_for(self.checkpoint_root, job.config_id))
            except OutOfSpaceError as full:
                outcome = kept_despite_full_disk(full, self._earlier_stops)
        start = self.clock.now
        outcome = dataclasses.replace(outcome, started=start, finished=start + seconds)
        heapq.heappush(self._running, (start + seconds, next(self._order), worker, job, outcome))

    def wait(self, stop: StopFlag, until: float | None = None) -> list[tuple[Job, Outcome]]:
        """Move the clock to the next end, or to ``until`` if that comes first (and is ahead);
        return every job that ends then."""
        if not self._running:
            return []
        if until is not None and self.clock.now < until < self._running[0][0]:
            self.clock.now = until
            return []
        self.clock.now = self._running[0][0]
        finished = []
        while self._running and self._running[0][0] <= self.clock.now:
            _, _, worker, job, outcome = heapq.heappop(self._running)
            heapq.heappush(self._free, worker)
            finished.append((job, outcome))
        return finished

    def drain(self) -> list[tuple[Job, Outcome]]:
        """Nothing ends before the clock moves."""
        return []

    def close(self) -> None:
        """Nothing to stop."""


def _checked(seconds: Any, job: Job, now: float) -> float:
    """``seconds`` as a float, if it is one finite real number >= 0 (see
    :func:`~mpibohb.evaluation.real_number`: not a bool nor a string) that keeps the clock finite."""
    value = real_number(seconds)
    if value is None or not math.isfinite(value) or value < 0:
        raise ValueError(f"duration(config, budget) must be a finite number of seconds >= 0, got {seconds!r:.100} "
                         f"for {job.config_id} at budget {job.budget:g}")
    if not math.isfinite(now + value):
        raise ValueError(f"duration(config, budget) gave {value:g} s for {job.config_id} at budget {job.budget:g}: "
                         f"the simulated clock ({now:g} s) would pass every finite time")
    return value
