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
ranking gives, up to float rounding (the two parts are summed apart; about 1e-7 of the score).
With every point kept the bad points come in ascending loss (see ``KDESampler.fit``), so the head
is the bad points nearest the good region, where the candidates are drawn: it holds most of ``g``
and most bounds are tight (one or two candidates need the rest at 8,500 points). A subset drawn
by ``max_points_in_model`` comes in random order: still exact, with looser bounds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Protocol, TypeVar

import numpy as np

logger = logging.getLogger(__name__)
Picked = TypeVar("Picked")


class Density(Protocol):
    """What the ranking needs of a density: ``MixedKDE`` (HpBandSter's model) and ``ParzenMixture`` (tpe)."""

    @property
    def num_points(self) -> int: ...

    @property
    def splittable(self) -> bool:
        """Whether ``log_pdf`` over a head and a tail of the components adds up to the whole."""
        ...

    def log_pdf(self, points: np.ndarray, precise: bool = True, data_rows: slice | None = None) -> np.ndarray: ...

LOG_FLOOR = math.log(1e-32)  # HpBandSter floors both densities at 1e-32 before taking the ratio
SPLIT_MIN_POINTS = 4096  # a bad KDE with fewer points is summed in one go
HEAD_SHARE = 8  # the head is 1/8 of the bad points


def first_legal(candidates: np.ndarray, good: Density, bad: Density,
                accept: Callable[[int], Picked | None]) -> Picked | None:
    """``accept(i)`` for the first candidate ``i`` in order of the density ratio that it accepts
    (returns not ``None``); ``None`` when it accepts none. A NaN score counts as +inf."""
    log_good = np.maximum(good.log_pdf(candidates, precise=False), LOG_FLOOR)
    n = bad.num_points
    head = n // HEAD_SHARE if n >= SPLIT_MIN_POINTS and bad.splittable else n
    log_bad = bad.log_pdf(candidates, precise=False, data_rows=slice(0, head))
    score = _score(log_bad, log_good)  # a lower bound until ``exact``
    exact = np.full(len(candidates), head == n)
    is_open = np.ones(len(candidates), dtype=bool)  # not yet offered to ``accept``
    while is_open.any():
        open_indices = np.flatnonzero(is_open)
        best = int(open_indices[np.argmin(score[open_indices])])  # the first of equal keys: stable
        if exact[best]:
            picked = accept(best)
            if picked is not None:
                return picked
            is_open[best] = False
            continue
        batch = _to_complete(score, exact, is_open, best)
        tail = bad.log_pdf(candidates[batch], precise=False, data_rows=slice(head, n))
        log_bad[batch] = np.logaddexp(log_bad[batch], tail)
        score[batch] = _score(log_bad[batch], log_good[batch])
        exact[batch] = True
    return None


def _score(log_bad: np.ndarray, log_good: np.ndarray) -> np.ndarray:
    """``max(log g, floor) - log l`` (``log_good`` comes floored), NaN as +inf."""
    return np.nan_to_num(np.maximum(log_bad, LOG_FLOOR) - log_good, nan=np.inf, posinf=np.inf, neginf=-np.inf)


def _to_complete(score: np.ndarray, exact: np.ndarray, is_open: np.ndarray, best: int) -> np.ndarray:
    """The candidates whose bad density to complete next: every open bound up to the smallest open
    exact score (the candidates that may still come before it), or ``best`` alone while no exact
    score is open."""
    open_exact = exact & is_open
    if not open_exact.any():
        return np.arange(len(score)) == best
    return ~exact & is_open & (score <= score[open_exact].min())


def say_all_forbidden(times: int, candidates: int) -> None:
    """The ``times``-th proposal whose ``candidates`` model candidates were all forbidden (it samples
    at random instead): a warning the first time, then at debug level, so that a space whose
    clauses forbid most of the model's region does not print a line per proposal."""
    if times == 1:
        logger.warning(
            "all %d model candidates were forbidden; sampling at random (said once per run: later such "
            "proposals are logged at debug level; forbidden clauses that cut most of the space cause it)", candidates)
    else:
        logger.debug("all %d model candidates were forbidden (%d times); sampling at random", candidates, times)
