"""A weighted mixture of product kernels, each with its own bandwidths: the density of the "tpe" model.

Component ``j`` has a weight ``w_j`` (the weights sum to 1), a centre and, per dimension:

* continuous: a Gaussian of standard deviation ``sigma_jd`` around the centre, truncated to
  ``[0, 1]`` and renormalised there when ``truncated`` (the plain Gaussian otherwise, as in BOHB's
  KDE, whose mass outside the unit cube is lost);
* discrete: a row of log-probabilities over the levels (any kernel: the builder decides).

The density is ``p(x) = sum_j w_j prod_d k_jd(x_d)``. As in ``kde.py``, each dimension's
log-kernel is a dot product of a point-side and a component-side feature vector (for a continuous
dimension ``-(x - mu)**2 / (2 s**2) = x**2 * (-1 / (2 s**2)) + x * mu / s**2 - mu**2 / (2 s**2)``;
for a discrete one a one-hot vector against the component's row), so all pairs of points and
components cost one matrix product in float64 and one ``exp``. Bandwidths are at least
``MIN_SIGMA``, which keeps the expanded terms below ``1e6`` and their rounding below ``1e-9``.

The bandwidth rules of the model are here too: :func:`neighbour_bandwidths` (Optuna's TPE: the
larger gap to a neighbouring point) and :func:`count_bandwidth` (its categorical smoothing).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from .kde import truncated_normal

MIN_SIGMA = 1e-3
_LOG_2PI = math.log(2.0 * math.pi)
_EXP_FLOOR = -700.0  # exp(-700) is about 1e-304, above the smallest normal float64
_BLOCK_ELEMENTS = 1 << 22  # 32 MB of float64 per block of dimensions in ProductOfMarginals


@dataclass(frozen=True)
class Components:
    """The parts of a mixture; ``continuous`` marks the continuous model dimensions.

    ``centers`` has one row per component (discrete columns hold level indices); ``sigmas`` one
    column per continuous dimension; ``log_rows`` one ``(components, levels)`` array per discrete
    dimension, in column order, each row a log-probability vector (it is normalised here).
    """

    centers: np.ndarray
    sigmas: np.ndarray
    log_rows: tuple[np.ndarray, ...]
    weights: np.ndarray
    continuous: np.ndarray
    truncated: bool


class ParzenMixture:
    """An immutable mixture density on the model dimensions (continuous in ``[0, 1]``, discrete as
    level indices), with exact sampling."""

    splittable = True  # log_pdf over disjoint component ranges adds up with logaddexp

    def __init__(self, parts: Components) -> None:
        centers = np.ascontiguousarray(parts.centers, dtype=float)
        sigmas = np.maximum(np.asarray(parts.sigmas, dtype=float), MIN_SIGMA)
        weights = np.asarray(parts.weights, dtype=float)
        if centers.ndim != 2 or len(centers) == 0 or len(weights) != len(centers):
            raise ValueError(f"need one weight per component and at least one, got {len(weights)} for "
                             f"centers of shape {centers.shape}")
        if not (np.all(weights > 0) and np.isfinite(weights).all()):
            raise ValueError("component weights must be positive and finite")
        self.parts = parts
        self.continuous = np.asarray(parts.continuous, dtype=bool)
        self.weights = weights / weights.sum()
        self.sigmas = sigmas
        self.means = centers[:, self.continuous]
        self.levels = centers[:, ~self.continuous].astype(int)
        self.log_rows = tuple(rows - _log_sum_exp(rows)[:, None] for rows in parts.log_rows)

    @property
    def num_points(self) -> int:
        """Number of components (the prior's included)."""
        return len(self.weights)

    def log_kernel_normalisers(self) -> np.ndarray:
        """Per component and continuous dimension, the log of its kernel's normalising constant
        (computed once; read-only)."""
        return self._log_kernel_normalisers.view()  # a view of a read-only array cannot be made writeable

    @functools.cached_property
    def _log_kernel_normalisers(self) -> np.ndarray:
        mass = np.ones_like(self.means)
        if self.parts.truncated:
            mass = special.ndtr((1.0 - self.means) / self.sigmas) - special.ndtr(-self.means / self.sigmas)
        normalisers = np.log(self.sigmas) + np.log(mass) + 0.5 * _LOG_2PI
        normalisers.flags.writeable = False
        return normalisers

    def _log_normalisers(self) -> np.ndarray:
        """Per component, the log of its continuous kernels' normalising constants (and its weight)."""
        return np.log(self.weights) - self.log_kernel_normalisers().sum(axis=1)

    @functools.cached_property
    def _component_features(self) -> np.ndarray:
        # only the joint log_pdf reads them: a ProductOfMarginals (the default) never does
        inverse = 1.0 / self.sigmas ** 2
        constant = self._log_normalisers() - 0.5 * np.einsum("ij,ij->i", self.means ** 2, inverse)
        blocks = [-0.5 * inverse, self.means * inverse, constant[:, None], *self.log_rows]
        return np.ascontiguousarray(np.hstack(blocks))

    def _features_of_points(self, points: np.ndarray) -> np.ndarray:
        values = points[:, self.continuous]
        blocks = [values ** 2, values, np.ones((len(points), 1))]
        for column, rows in zip(np.flatnonzero(~self.continuous), self.log_rows):
            blocks.append(np.eye(rows.shape[1])[points[:, column].astype(int)])
        return np.hstack(blocks)

    def log_pdf(self, points: np.ndarray, precise: bool = True, data_rows: slice | None = None) -> np.ndarray:
        """Natural log of the density at each row of ``points``; computed in float64 whatever ``precise``.

        With ``data_rows`` (a slice with step 1), only those components are summed: a lower
        bound of the density, as ``MixedKDE.log_pdf`` gives (``ranking.first_legal`` uses it).
        """
        points = np.atleast_2d(np.asarray(points, dtype=float))
        features = self._component_features
        if data_rows is not None:
            start, stop, step = data_rows.indices(self.num_points)
            if step != 1:
                raise ValueError(f"data_rows must be a slice with step 1, got {data_rows!r}")
            features = features[start:stop]
        if len(features) == 0:
            return np.full(len(points), -np.inf)
        return _log_sum_exp(self._features_of_points(points) @ features.T)

    def pdf(self, points: np.ndarray) -> np.ndarray:
        """The density at each row of ``points``."""
        return np.exp(self.log_pdf(points))

    def sample(self, rng: np.random.Generator, size: int, bandwidth_factor: float = 1.0,
               independent: bool = False) -> np.ndarray:
        """``size`` draws: a component by weight, then each dimension from its kernel (continuous
        ones with their bandwidth times ``bandwidth_factor``, truncated to ``[0, 1]``). With
        ``independent``, each dimension picks its own component: draws from the product of the
        marginals (:class:`ProductOfMarginals`), as a univariate TPE samples."""
        num_columns = len(self.continuous)
        if independent:
            chosen = rng.choice(self.num_points, size=(size, num_columns), p=self.weights)
        else:
            chosen = np.repeat(rng.choice(self.num_points, size=size, p=self.weights)[:, None], num_columns, axis=1)
        samples = np.empty((size, num_columns))
        picks = chosen[:, self.continuous]
        dimension = np.arange(picks.shape[1])
        samples[:, self.continuous] = truncated_normal(rng, self.means[picks, dimension],
                                                        self.sigmas[picks, dimension] * bandwidth_factor)
        for column, rows in zip(np.flatnonzero(~self.continuous), self.log_rows):
            cumulative = np.cumsum(np.exp(rows[chosen[:, column]]), axis=1)
            draws = rng.random(size)[:, None] * cumulative[:, -1:]
            samples[:, column] = np.minimum((cumulative <= draws).sum(axis=1), rows.shape[1] - 1)
        return samples


class ProductOfMarginals:
    """The product of a mixture's one-dimensional marginals, ``prod_d sum_j w_j k_jd(x_d)``: the
    density a univariate TPE (Optuna's default) scores with.

    Its ratio good / bad is the product of one ratio per dimension, so a level that the bad points
    hold more often than the good ones loses in its own factor, wherever the other dimensions put
    the candidate. The joint density has no such factor: away from the bad points it is flat (their
    kernels are narrow, and the prior component dominates), and the ratio is the good density
    alone, which never proposes a level absent from a small good set (measured with 32 workers on
    counting ones; BENCHMARKS.md).
    """

    splittable = False  # a partial sum per dimension is no partial sum of the product

    def __init__(self, mixture: ParzenMixture) -> None:
        self.mixture = mixture
        log_weights = np.log(mixture.weights)
        # per continuous dimension, the log-kernels as a product (see the module docstring):
        # (x**2, x, 1) against (-1 / (2 s**2), mu / s**2, log(w / normaliser) - mu**2 / (2 s**2))
        inverse = 1.0 / mixture.sigmas ** 2
        constant = (log_weights[:, None] - mixture.log_kernel_normalisers() - 0.5 * mixture.means ** 2 * inverse)
        self._features = np.ascontiguousarray(np.stack([-0.5 * inverse.T, (mixture.means * inverse).T, constant.T],
                                                       axis=1))  # (dimensions, 3, components)
        self._log_levels = tuple(_log_sum_exp((rows + log_weights[:, None]).T) for rows in mixture.log_rows)

    @property
    def num_points(self) -> int:
        """Number of components (the prior's included)."""
        return self.mixture.num_points

    def log_marginals(self, points: np.ndarray) -> np.ndarray:
        """Per row of ``points`` and model dimension, the log of that dimension's marginal density."""
        mixture = self.mixture
        points = np.atleast_2d(np.asarray(points, dtype=float))
        result = np.empty(points.shape)
        values = np.ascontiguousarray(points[:, mixture.continuous].T)
        sums = np.empty(values.shape)
        features = np.stack([values ** 2, values, np.ones_like(values)], axis=2)
        step = max(1, _BLOCK_ELEMENTS // max(1, values.shape[1] * self.num_points))  # bounds the memory
        for start in range(0, len(values), step):
            block = slice(start, start + step)
            terms = features[block] @ self._features[block]  # (dimensions, points, components)
            peak = terms.max(axis=2, keepdims=True)
            terms -= peak
            np.maximum(terms, _EXP_FLOOR, out=terms)  # exp is 0 below the floor anyway, and slower there
            sums[block] = peak[:, :, 0] + np.log(np.exp(terms, out=terms).sum(axis=2))
        result[:, mixture.continuous] = sums.T
        for column, log_levels in zip(np.flatnonzero(~mixture.continuous), self._log_levels):
            result[:, column] = log_levels[points[:, column].astype(int)]
        return result

    def log_pdf(self, points: np.ndarray, precise: bool = True, data_rows: slice | None = None) -> np.ndarray:
        """Natural log of the product of the marginals at each row of ``points``; ``data_rows``
        must be every component (the ranking does not split this density: ``splittable``)."""
        if data_rows is not None and data_rows.indices(self.num_points) != (0, self.num_points, 1):
            raise ValueError(f"a product of marginals sums every component, got data_rows={data_rows!r}")
        return self.log_marginals(points).sum(axis=1)


def _log_sum_exp(values: np.ndarray) -> np.ndarray:
    """``log(sum(exp(values), axis=1))`` shifted by the row maximum (scipy's is slow for small arrays)."""
    peak = values.max(axis=1)
    safe = np.where(np.isfinite(peak), peak, 0.0)
    return safe + np.log(np.exp(values - safe[:, None]).sum(axis=1))


def neighbour_bandwidths(values: np.ndarray, magic_clip: bool, min_bandwidth: float) -> np.ndarray:
    """Per point of one continuous dimension in ``[0, 1]``: the larger gap to its neighbours in sorted
    order, with 0 and 1 as outer neighbours, except that the smallest and largest point use their
    inner gap only when there are at least two points (Optuna's TPE with ``consider_endpoints=False``).

    The result is clipped to ``[low, 1]``, ``low`` being ``1 / min(100, n + 2)`` with ``magic_clip``
    (Hyperopt's and Optuna's "magic clip", counting the prior's component) or ``min_bandwidth``.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    order = np.argsort(values, kind="stable")
    padded = np.concatenate([[0.0], values[order], [1.0]])
    gaps = np.maximum(padded[1:-1] - padded[:-2], padded[2:] - padded[1:-1])
    if n >= 2:
        gaps[0] = padded[2] - padded[1]
        gaps[-1] = padded[-2] - padded[-3]
    sigmas = np.empty(n)
    sigmas[order] = gaps
    low = 1.0 / min(100.0, n + 2.0) if magic_clip else min_bandwidth
    return np.clip(sigmas, max(low, min_bandwidth), 1.0)


def count_bandwidth(num_levels: int, num_points: int, prior_weight: float, min_bandwidth: float) -> float:
    """The Aitchison-Aitken bandwidth of Optuna's categorical kernel: each point's row is 1 at its
    level plus ``prior_weight / (num_points + 1)`` at every level, normalised, i.e. the probability
    ``lambda`` of leaving the level is ``(c - 1) q / (1 + c q)`` with ``q`` that share; at least
    ``min_bandwidth`` and at most ``(c - 1) / c`` (uniform)."""
    if num_levels < 2:
        return 0.5
    share = prior_weight / (num_points + 1)
    bandwidth = (num_levels - 1) * share / (1.0 + num_levels * share)
    return float(min(max(bandwidth, min_bandwidth), (num_levels - 1) / num_levels))


def discrete_log_rows(kind: str, num_levels: int, levels: np.ndarray, bandwidth: float) -> np.ndarray:
    """One log-kernel row per point of a discrete dimension: Aitchison-Aitken for unordered levels
    (``1 - lambda`` at the point's level, ``lambda / (c - 1)`` elsewhere), Wang-van Ryzin for
    ordered ones (``1 - lambda`` at the level, ``(1 - lambda) lambda**|distance| / 2`` elsewhere),
    unnormalised. A dimension with one level gets a row of zeros."""
    grid = np.arange(num_levels)[None, :]
    same = grid == np.asarray(levels, dtype=int)[:, None]
    if num_levels < 2:
        return np.zeros(same.shape)
    if kind == "o":
        distance = np.abs(grid - np.asarray(levels, dtype=int)[:, None])
        other = math.log(0.5) + math.log1p(-bandwidth) + distance * math.log(bandwidth)
    else:
        other = np.full(same.shape, math.log(bandwidth / (num_levels - 1)))
    return np.where(same, math.log1p(-bandwidth), other)
