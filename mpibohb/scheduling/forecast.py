"""Predicted run times, and when the run's own running jobs are predicted to end (for ``keep_busy``).

Predictions come from the run times of the finished jobs (which the journal keeps, so a replay
sees the same): a job's group (its budget, and the budget it continues from) has a mean run time
(:class:`.RunTimeSpread`), and a configuration its factor (its latest run time over its group's
mean). A job is predicted to run its group's mean times its configuration's factor, or a quantile
of the factors seen for a configuration without a result. The run's own running jobs end,
predicted, at their hand-out plus that; when one is past its predicted end, the one longest past
it is taken to run as long again as it has overrun (:data:`OVERRUN_SHARE`).
"""

from __future__ import annotations

import bisect
import heapq

from ..brackets import ConfigId, Job
from .run_times import RunTimeSpread

# The factor (run time over its group's mean) a new extra configuration is predicted with: a high
# quantile of the factors seen, so that an extra job rarely outlasts the run's own jobs.
EXTRA_QUANTILE = 0.9
# ... and a running configuration of the run's own without a result: the median (an estimate of
# the run's end that is late would let extras outlast it).
OWN_QUANTILE = 0.5
# The quantiles come from the first factors of at most this many configurations: enough for a
# 90th percentile, and an insertion into a sorted list of a million would cost more than a decision.
MAX_FACTORS = 4096

# A running job of the run's own past its predicted end is taken to run this share of its overrun
# longer, for the shortest extra jobs. 0.5 and 0.25 left the worst overrun of the run as it was
# (one new configuration's own run time decides it) and cost up to 1 point of busy fraction.
OVERRUN_SHARE = 1.0

JobKey = tuple[ConfigId, float]


class RunEndForecast:
    """Run times predicted from ``run_times`` and the configurations' factors, and the predicted
    ends of the run's own running jobs; ``smallest`` is the budget new extra configurations start at."""

    def __init__(self, run_times: RunTimeSpread, smallest: float) -> None:
        self.run_times = run_times
        self.smallest = smallest
        self._ends: dict[JobKey, float] = {}  # running jobs of the run's own -> predicted end
        self._latest: list[tuple[float, JobKey]] = []  # heap of (-predicted end, job) of those
        self._soonest: list[tuple[float, JobKey]] = []  # heap of (predicted end, job) of those
        self._factor: dict[ConfigId, float] = {}  # a configuration's latest run time / its group's mean
        self._factors: list[float] = []  # sorted: the first factor of each configuration

    def learn(self, job: Job, duration: float | None) -> None:
        """``job`` ended after ``duration`` seconds: its configuration's factor. Call it before the
        duration joins ``run_times``, so that the factor compares it with the jobs before."""
        mean = self.run_times.mean(job.budget, job.previous_budget)
        if duration is not None and mean:
            factor = duration / mean
            if job.config_id not in self._factor and len(self._factors) < MAX_FACTORS:
                bisect.insort(self._factors, factor)
            self._factor[job.config_id] = factor

    def forget(self, config_id: ConfigId) -> None:
        """``config_id`` will not run again: its factor goes."""
        self._factor.pop(config_id, None)

    def seconds(self, job: Job, quantile: float) -> float | None:
        """Seconds ``job`` is predicted to run: its group's mean times its configuration's factor
        (``quantile`` of the factors seen for a configuration without one); ``None`` before any job
        of its group has ended."""
        mean = self.run_times.mean(job.budget, job.previous_budget)
        if mean is None:
            return None
        factor = self._factor.get(job.config_id)
        if factor is None:
            factor = self._quantile(quantile)
        return mean * factor

    def new_configuration_seconds(self) -> float | None:
        """The predicted run time of an extra new configuration (at the smallest budget, with the
        pessimistic factor), ``None`` before any job at that budget has ended."""
        mean = self.run_times.mean(self.smallest, None)
        return None if mean is None else mean * self._quantile(EXTRA_QUANTILE)

    def _quantile(self, quantile: float) -> float:
        if not self._factors:
            return 1.0
        return self._factors[min(len(self._factors) - 1, int(quantile * len(self._factors)))]

    def own_started(self, key: JobKey, end: float) -> bool:
        """A job of the run's own runs until ``end``, predicted; ``True`` when that moves the run's
        predicted end later."""
        self._clean(self._latest)  # compare with a running job, whatever the asks before cleaned
        later = not self._latest or end > -self._latest[0][0]
        self._ends[key] = end
        heapq.heappush(self._latest, (-end, key))
        heapq.heappush(self._soonest, (end, key))
        return later

    def own_ended(self, key: JobKey) -> None:
        """``key`` runs no more (a job of the run's own or not)."""
        self._ends.pop(key, None)
        if len(self._soonest) > 2 * len(self._ends) + 64:
            self._compact()

    def restart(self) -> set[JobKey]:
        """A session starts: the run's own jobs that ran, whose ends are to be predicted anew."""
        running = set(self._ends)
        self._ends.clear()
        self._latest.clear()
        self._soonest.clear()
        return running

    def _compact(self) -> None:
        """Rebuild the heaps of predicted ends from the running jobs: finished ones leave them only
        when they reach the top, so they would grow with the run (their tops stay the same)."""
        self._latest = [(-end, key) for key, end in self._ends.items()]
        self._soonest = [(end, key) for key, end in self._ends.items()]
        heapq.heapify(self._latest)
        heapq.heapify(self._soonest)

    def _clean(self, heap: list[tuple[float, JobKey]]) -> None:
        while heap and heap[0][1] not in self._ends:
            heapq.heappop(heap)

    def run_end(self, now: float) -> tuple[float | None, float | None]:
        """When the run's own running jobs are predicted to end: the latest predicted end still
        ahead (``None``: none is), and a later guess when a job is past its predicted end: it is
        taken to run as long again as it has overrun it (``None``: none has). The guess is for new
        configurations at the smallest budget only, the shortest extra jobs, so that a wrong one
        costs little."""
        self._clean(self._latest)
        self._clean(self._soonest)
        ahead = -self._latest[0][0] if self._latest and -self._latest[0][0] > now else None
        overdue = self._soonest[0][0] if self._soonest and self._soonest[0][0] <= now else None
        return ahead, None if overdue is None else now + OVERRUN_SHARE * (now - overdue)

    def wake_at(self, now: float) -> float | None:
        """When to ask again for an extra job without a result: once the soonest predicted end of
        the run's own jobs lies the shortest extra job's run time behind (``None``: no such moment)."""
        seconds = self.new_configuration_seconds()
        self._clean(self._soonest)
        if seconds is None or not self._soonest:
            return None
        moment = self._soonest[0][0] + seconds
        return moment if moment > now else None
