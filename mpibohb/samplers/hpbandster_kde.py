"""BOHB's model-based sampler: a pair of KDEs (good / bad configurations) per budget.

Follows Falkner et al., "BOHB: Robust and Efficient Hyperparameter Optimization at Scale"
(ICML 2018) and HpBandSter's defaults, with these faults of HpBandSter's version fixed:
failed runs (loss +inf) are never in the "good" set; constants are not counted as dimensions;
ordinal parameters get their own kernel; a discrete bandwidth never exceeds ``(c-1)/c``; a
forbidden candidate yields the next best candidate instead of a random configuration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import checks
from ..space import SearchSpace, impute_inactive
from . import Proposal
from .kde import MixedKDE
from .random import RandomSampler
from .ranking import first_legal, say_all_forbidden

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KDESettings:
    """The model's parameters; the defaults are HpBandSter's (plus ``max_points_in_model``).

    ``max_points_in_model`` bounds the points each of the two KDEs is built on (a random subset
    when there are more), which bounds the cost of a proposal; ``None`` keeps every point.
    """

    min_points_in_model: int | None = None
    top_n_percent: int = 15
    num_samples: int = 64
    random_fraction: float = 1 / 3
    bandwidth_factor: float = 3  # an int, as HpBandSter records it
    min_bandwidth: float = 1e-3
    max_points_in_model: int | None = 512

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first parameter out of range."""
        self.checked()

    def checked(self) -> KDESettings:
        """These settings as Python numbers; ``ValueError`` naming the first parameter out of range."""
        return KDESettings(
            min_points_in_model=checks.optional_integer("min_points_in_model", self.min_points_in_model, minimum=1),
            top_n_percent=checks.integer("top_n_percent", self.top_n_percent, minimum=1, maximum=99),
            num_samples=checks.integer("num_samples", self.num_samples, minimum=1),
            random_fraction=checks.real("random_fraction", self.random_fraction, minimum=0, maximum=1),
            bandwidth_factor=checks.real("bandwidth_factor", self.bandwidth_factor, above=0),
            min_bandwidth=checks.real("min_bandwidth", self.min_bandwidth, above=0),
            max_points_in_model=checks.optional_integer("max_points_in_model", self.max_points_in_model, minimum=2))


@dataclass(frozen=True)
class KDEPair:
    """The two densities of one budget: ``good`` (best ``top_n_percent``) and ``bad`` (the rest)."""

    budget: float
    good: MixedKDE
    bad: MixedKDE


class _Observations:
    """Model-dimension vectors and losses of one budget, in growable arrays."""

    def __init__(self, num_dims: int) -> None:
        self.vectors = np.empty((16, num_dims))
        self.losses = np.empty(16)
        self.count = 0

    def add(self, vector: np.ndarray, loss: float) -> None:
        if self.count == len(self.losses):
            self.vectors = np.concatenate([self.vectors, np.empty_like(self.vectors)])
            self.losses = np.concatenate([self.losses, np.empty_like(self.losses)])
        self.vectors[self.count] = vector
        self.losses[self.count] = loss
        self.count += 1


def warn_about_min_points(settings: KDESettings, num_dims: int) -> None:
    """Say when ``min_points_in_model`` is below the ``num_dims + 1`` points a KDE needs, which
    :class:`KDESampler` then uses (once per optimizer: a run builds its sampler more than once)."""
    if settings.min_points_in_model is not None and settings.min_points_in_model < num_dims + 1:
        logger.warning("min_points_in_model=%d is below the %d dimensions + 1 a KDE needs; using %d",
                       settings.min_points_in_model, num_dims, num_dims + 1)


class KDESampler:
    """Proposes configurations from BOHB's density-ratio model, or at random while it has none."""

    def __init__(self, space: SearchSpace, settings: KDESettings | None = None) -> None:
        self.space = space
        self.settings = (settings or KDESettings()).checked()
        self.num_dims = len(space.dimensions)
        self.min_points = max(self.settings.min_points_in_model or 0, self.num_dims + 1)  # see warn_about_min_points
        self._kinds = tuple(d.kind for d in space.dimensions)
        self._levels = tuple(d.num_levels for d in space.dimensions)
        self._model_indices = space.model_indices
        self._template = space.constant_template()
        self._random = RandomSampler(space)
        self._all_forbidden = 0  # proposals whose model candidates were all forbidden
        self._observations: dict[float, _Observations] = {}
        self._model: KDEPair | None = None
        self._stale_budgets: set[float] = set()

    def observe(self, vector: np.ndarray, budget: float, loss: float) -> None:
        """Record a result; the model for ``budget`` is refit lazily at the next proposal."""
        observations = self._observations.setdefault(budget, _Observations(self.num_dims))
        observations.add(np.asarray(vector, dtype=float)[self._model_indices], loss)
        if self._model is None or budget >= self._model.budget:
            self._stale_budgets.add(budget)

    def withdraw(self, vector: np.ndarray, budget: float) -> None:
        """HpBandSter's model keeps no running configurations."""

    def restore(self, vector: np.ndarray, budget: float) -> None:
        """HpBandSter's model keeps no running configurations."""

    def propose(self, budget: float, rng: np.random.Generator) -> Proposal:
        """A configuration for ``budget``: model-based, or random with probability ``random_fraction``."""
        model = self.current_model(rng)
        if model is None or rng.random() < self.settings.random_fraction:
            return self._random.propose(budget, rng)
        candidates = model.good.sample(rng, self.settings.num_samples, self.settings.bandwidth_factor,
                                       self.settings.min_bandwidth)
        picked = first_legal(candidates, model.good, model.bad, lambda index: self._legal(candidates[index]))
        if picked is not None:
            return Proposal(picked[0], picked[1], {"model_based_pick": True})
        self._all_forbidden += 1
        say_all_forbidden(self._all_forbidden, len(candidates))
        return self._random.propose(budget, rng)

    def _legal(self, candidate: np.ndarray) -> tuple[dict[str, Any], np.ndarray] | None:
        """The configuration and full vector of a model-space candidate, or ``None`` if forbidden."""
        vector = self._template.copy()
        vector[self._model_indices] = candidate
        return self.space.config_of(vector)

    def current_model(self, rng: np.random.Generator) -> KDEPair | None:
        """The model of the largest budget with enough points, refit if it has new data."""
        if self._stale_budgets:
            for budget in sorted(self._stale_budgets, reverse=True):
                model = self.fit(budget, rng)
                if model is not None:
                    self._model = model
                    break
            self._stale_budgets.clear()
        return self._model

    def fit(self, budget: float, rng: np.random.Generator) -> KDEPair | None:
        """Build the good/bad KDEs of ``budget``, or ``None`` while it has too few points."""
        observations = self._observations.get(budget)
        if observations is None or self.num_dims == 0:
            return None
        n = observations.count
        losses, vectors = observations.losses[:n], observations.vectors[:n]
        order = np.argsort(losses, kind="stable")
        num_finite = int(np.isfinite(losses).sum())
        top = self.settings.top_n_percent
        num_good = min(num_finite, max(self.min_points, top * n // 100))
        num_bad = max(self.min_points, (100 - top) * n // 100)
        good_rows, bad_rows = order[:num_good], order[num_good : num_good + num_bad]
        if len(good_rows) < self.min_points or len(bad_rows) < self.min_points:
            return None
        return KDEPair(budget, self._kde(vectors, good_rows, rng), self._kde(vectors, bad_rows, rng))

    def _kde(self, vectors: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> MixedKDE:
        limit = self.settings.max_points_in_model
        if limit is not None and len(rows) > limit:
            rows = rng.choice(rows, size=limit, replace=False)
        data = impute_inactive(vectors[rows], self.space.dimensions, rng)
        return MixedKDE.fit(data, self._kinds, self._levels, self.settings.min_bandwidth)
