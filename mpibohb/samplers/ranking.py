"""BOHB's pick among its candidates: the first legal one in order of the density ratio ``l(x) / g(x)``.

The order is that of ``argsort(log g - log l, kind="stable")`` over the candidates (both
log-densities floored, as HpBandSter does), and the pick is the first candidate in that order that
``accept`` turns into a configuration. When the bad KDE is large, most of a proposal's cost is
``g`` at every candidate, so :func:`first_legal` computes it lazily and exactly:

* ``g`` is first summed over a head of the bad points only. A partial sum of positive kernels is a
  lower bound of the whole, so it gives each candidate a lower bound of its score.
* The candidate with the smallest key (its bound, or its exact score once known; ties to the
  lower index) is the next in the order once its key is exact. While it is a bound, the rest of
  ``g`` is summed, in one product, for every candidate whose bound is at most the smallest exact
  score still open (for the smallest bound alone when none is known yet): those, and only those,
  may come before that score.

Every candidate before the pick has its exact score computed, so the pick is the one the full
ranking gives, up to the rounding of adding the two parts. The bad points come in ascending loss
(see ``KDESampler.fit``), so the head is the bad points nearest the good region, where the
candidates are drawn: it holds most of ``g`` and most bounds are tight.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from .kde import MixedKDE

Picked = TypeVar("Picked")

LOG_FLOOR = math.log(1e-32)  # HpBandSter floors both densities at 1e-32 before taking the ratio
SPLIT_MIN_POINTS = 4096  # a bad KDE with fewer points is summed in one go
HEAD_SHARE = 8  # the head is 1/8 of the bad points


def first_legal(candidates: np.ndarray, good: MixedKDE, bad: MixedKDE,
                accept: Callable[[int], Picked | None]) -> Picked | None:
    """``accept(i)`` for the first candidate ``i`` in order of the density ratio that it accepts
    (returns not ``None``); ``None`` when it accepts none."""
    log_good = np.maximum(good.log_pdf(candidates, precise=False), LOG_FLOOR)
    n = bad.num_points
    head = n // HEAD_SHARE if n >= SPLIT_MIN_POINTS else n
    log_bad = bad.log_pdf(candidates, precise=False, rows=slice(0, head))
    score = np.maximum(log_bad, LOG_FLOOR) - log_good  # a lower bound until ``exact``
    exact = np.full(len(candidates), head == n)
    rejected = np.zeros(len(candidates), dtype=bool)
    while not rejected.all():
        key = np.where(rejected, np.inf, score)
        best = int(np.argmin(key))  # the first of equal keys: the stable order
        if exact[best]:
            picked = accept(best)
            if picked is not None:
                return picked
            rejected[best] = True
            continue
        batch = _to_complete(key, exact, rejected, best)
        tail = bad.log_pdf(candidates[batch], precise=False, rows=slice(head, n))
        log_bad[batch] = np.logaddexp(log_bad[batch], tail)
        score[batch] = np.maximum(log_bad[batch], LOG_FLOOR) - log_good[batch]
        exact[batch] = True
    return None


def _to_complete(key: np.ndarray, exact: np.ndarray, rejected: np.ndarray, best: int) -> np.ndarray:
    """The candidates whose bad density to complete next: every open bound up to the smallest open
    exact score (the candidates that may still come before it), or ``best`` alone while no exact
    score is open."""
    open_exact = exact & ~rejected
    if not open_exact.any():
        return np.arange(len(key)) == best
    return ~exact & ~rejected & (key <= key[open_exact].min())
