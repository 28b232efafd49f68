"""Whether small budgets rank configurations as larger budgets do: Kendall's tau over promotions.

Each time a configuration gets a result at a larger budget than its previous one, the two losses
form a pair of that step (smaller budget, larger budget). Per step, Kendall's tau (tau-b, ties
allowed) of its pairs says how far the smaller budget's ranking predicts the larger one's; the
agreement is the mean of the steps' taus weighted by their numbers of pairs. Near 1: successive
halving promotes what the largest budget would pick; near 0 or below: small budgets mislead (an
SVM on 40 training points ranks a near-linear kernel above the RBF kernels that win on 1,080).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

MIN_PAIRS_PER_STEP = 3  # fewer pairs give no tau


class RankAgreement:
    """Pairs of losses of one configuration at two successive budgets, and their agreement."""

    def __init__(self, min_pairs: int) -> None:
        self.min_pairs = min_pairs
        self._pairs: dict[tuple[float, float], list[tuple[float, float]]] = {}
        self._taus: dict[tuple[float, float], float] = {}  # per step, while its pairs are unchanged
        self._agreement: float | None = None
        self._stale = False

    def add(self, smaller_budget: float, smaller_loss: float, larger_budget: float, larger_loss: float) -> None:
        """One configuration's results at two successive budgets; failures (non-finite) are left out."""
        if not (math.isfinite(smaller_loss) and math.isfinite(larger_loss)):
            return
        step = (smaller_budget, larger_budget)
        self._pairs.setdefault(step, []).append((smaller_loss, larger_loss))
        self._taus.pop(step, None)
        self._stale = True

    @property
    def num_pairs(self) -> int:
        """Pairs recorded, over every step."""
        return sum(len(pairs) for pairs in self._pairs.values())

    def value(self) -> float | None:
        """The weighted mean tau over steps, or ``None`` while fewer than ``min_pairs`` pairs count."""
        if self._stale:
            total = weight = 0.0
            for step, pairs in self._pairs.items():
                tau = self._taus.get(step)
                if tau is None:
                    tau = self._taus[step] = _kendall_tau(pairs)
                if not math.isnan(tau):
                    total, weight = total + tau * len(pairs), weight + len(pairs)
            self._agreement = total / weight if weight >= self.min_pairs else None
            self._stale = False
        return self._agreement


def _kendall_tau(pairs: list[tuple[float, float]]) -> float:
    """Kendall's tau-b of the pairs, NaN when there are too few or one side is constant."""
    if len(pairs) < MIN_PAIRS_PER_STEP:
        return math.nan
    array = np.asarray(pairs)
    return float(stats.kendalltau(array[:, 0], array[:, 1])[0])
