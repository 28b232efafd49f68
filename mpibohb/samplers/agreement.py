"""Whether small budgets rank configurations as larger budgets do: Kendall's tau over promotions.

Each time a configuration gets a result at a larger budget than its previous one, the two losses
form a pair of that step (smaller budget, larger budget). Per step, Kendall's tau-b (ties allowed)
of its pairs says how far the smaller budget's ranking predicts the larger one's; the agreement is
the mean of the steps' taus weighted by their numbers of pairs. Near 1: successive halving
promotes what the largest budget would pick; near 0 or below: small budgets mislead (an SVM on 40
training points ranks a near-linear kernel above the RBF kernels that win on 1,080).

The counts behind tau-b are kept up to date pair by pair, O(pairs of the step) each, so the
master never re-sorts a step (``scipy.stats.kendalltau`` costs a millisecond or more per call).
"""

from __future__ import annotations

import math

import numpy as np

MIN_PAIRS_PER_STEP = 3  # fewer pairs give no tau


class _Step:
    """The pairs of one step and the counts of tau-b: concordant minus discordant pairs of pairs,
    and pairs of pairs tied on each side."""

    def __init__(self) -> None:
        self.smaller = np.empty(16)
        self.larger = np.empty(16)
        self.count = 0
        self.score = 0  # concordant - discordant
        self.ties_smaller = 0
        self.ties_larger = 0

    def add(self, smaller: float, larger: float) -> None:
        n = self.count
        xs, ys = self.smaller[:n], self.larger[:n]
        # signs by comparison: a difference of losses near 1e308 overflows (a numpy warning)
        self.score += int(np.sum(_signs(smaller, xs) * _signs(larger, ys)))
        self.ties_smaller += int(np.count_nonzero(xs == smaller))
        self.ties_larger += int(np.count_nonzero(ys == larger))
        if n == len(self.smaller):
            self.smaller = np.concatenate([self.smaller, np.empty(n)])
            self.larger = np.concatenate([self.larger, np.empty(n)])
        self.smaller[n], self.larger[n] = smaller, larger
        self.count = n + 1

    def tau(self) -> float:
        """Kendall's tau-b, NaN with too few pairs or one side constant."""
        pairs_of_pairs = self.count * (self.count - 1) // 2
        denominator = math.sqrt((pairs_of_pairs - self.ties_smaller) * (pairs_of_pairs - self.ties_larger))
        if self.count < MIN_PAIRS_PER_STEP or denominator == 0:
            return math.nan
        return self.score / denominator


class RankAgreement:
    """Pairs of losses of one configuration at two successive budgets, and their agreement."""

    def __init__(self, min_pairs: int) -> None:
        self.min_pairs = min_pairs
        self._steps: dict[tuple[float, float], _Step] = {}

    def add(self, smaller_budget: float, smaller_loss: float, larger_budget: float, larger_loss: float) -> None:
        """One configuration's results at two successive budgets; failures (non-finite) are left out."""
        if math.isfinite(smaller_loss) and math.isfinite(larger_loss):
            self._steps.setdefault((smaller_budget, larger_budget), _Step()).add(smaller_loss, larger_loss)

    @property
    def num_pairs(self) -> int:
        """Pairs recorded, over every step."""
        return sum(step.count for step in self._steps.values())

    def value(self) -> float | None:
        """The weighted mean tau over steps, or ``None`` while fewer than ``min_pairs`` pairs count."""
        total = weight = 0.0
        for step in self._steps.values():
            tau = step.tau()
            if not math.isnan(tau):
                total, weight = total + tau * step.count, weight + step.count
        return total / weight if weight >= self.min_pairs else None


def _signs(value: float, values: np.ndarray) -> np.ndarray:
    """``np.sign(value - values)`` without computing the difference."""
    return (value > values).astype(int) - (value < values)
