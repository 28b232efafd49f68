"""How predictable the run times of a run are, learnt from its finished jobs.

Jobs are grouped by what they run, their budget and the budget they continue from (a compute that
keeps checkpoints runs only the difference); within a group run times differ only by the
configuration and by noise. The spread is the pooled coefficient of variation: the standard
deviation of each run time relative to its group's mean, pooled over the groups. A job reaches it
through :meth:`mpibohb.ask_tell.Optimizer.tell` with the run time that the journal also keeps
(finished - started, :func:`run_time`), so that the replay of a journal sees the same figures in
the same order as the run did.
"""

from __future__ import annotations

import math


def run_time(loss: float | None, started: float, finished: float) -> float | None:
    """The seconds a job ran, from its time stamps; ``None`` for a failed job (``loss is None``: it
    may have ended early, or hit a timeout), whose run time says nothing of the others'."""
    return None if loss is None else finished - started


class RunTimeSpread:
    """The pooled coefficient of variation of the run times of jobs of one kind (Welford's running
    mean and sum of squares per group, so a result costs O(1))."""

    def __init__(self) -> None:
        self._groups: dict[tuple[float, float | None], list[float]] = {}  # -> [count, mean, sum of squares]

    def add(self, budget: float, previous_budget: float | None, seconds: float) -> None:
        """One finished job at ``budget`` (continued from ``previous_budget``) that ran ``seconds``."""
        group = self._groups.setdefault((budget, previous_budget), [0, 0.0, 0.0])
        group[0] += 1
        delta = seconds - group[1]
        group[1] += delta / group[0]
        group[2] += delta * (seconds - group[1])

    def coefficient_of_variation(self, min_degrees: int) -> float | None:
        """The pooled coefficient of variation, or ``None`` while fewer than ``min_degrees`` degrees
        of freedom (jobs beyond the first of each group with a positive mean run time) back it."""
        squares, degrees = 0.0, 0
        for count, mean, sum_of_squares in self._groups.values():
            if count > 1 and mean > 0:
                squares += sum_of_squares / mean**2
                degrees += int(count) - 1
        return math.sqrt(squares / degrees) if degrees >= max(1, min_degrees) else None

    def mean(self, budget: float, previous_budget: float | None) -> float | None:
        """The mean run time of the finished jobs at ``budget`` continued from ``previous_budget``;
        without any yet, the mean seconds per budget unit of every group times the budget it runs
        (``budget - previous_budget``); ``None`` before any job has finished."""
        group = self._groups.get((budget, previous_budget))
        if group is not None:
            return group[1]
        rates = [mean / (key[0] - (key[1] or 0.0)) for key, (_, mean, _) in self._groups.items()
                 if key[0] > (key[1] or 0.0)]
        return sum(rates) / len(rates) * (budget - (previous_budget or 0.0)) if rates else None
