"""A product-kernel density estimator over mixed continuous, unordered and ordered dimensions.

The kernels are those of ``statsmodels.nonparametric.KDEMultivariate`` (Gaussian for continuous,
Aitchison-Aitken for unordered, Wang-van Ryzin for ordered dimensions) and the bandwidths its
``normal_reference`` rule, so the density agrees with statsmodels on the same data and
bandwidths. One difference on purpose: the unordered kernel uses the parameter's true number of
levels, where statsmodels counts the levels present in the data.

The density of ``m`` points against ``n`` data points is computed as one matrix product: each
dimension's log-kernel is written as ``a(x) . b(y)`` (a squared distance expanded into three
terms for a continuous dimension; a row of a level-by-level table against a one-hot vector for a
discrete one), so all dimensions of all pairs cost a single BLAS call plus one ``exp``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..space import CONTINUOUS, ORDERED, UNORDERED

_LOG_2PI = math.log(2.0 * math.pi)
_BLOCK_ROWS = 512  # data points per kernel block: 64 x 512 doubles stay in L2 cache
_SINGLE_BLOCK_ROWS = 16384  # the float32 path: 64 x 16384 floats (4 MiB) per product
# The float32 path's bound M on the sum of |terms| of one log-kernel's dot product: float32 loses
# at most about (k + 2) * M * 2**-24 with k terms, 3e-4 at M = 256 and 17 terms; measured errors
# are 1e-5 to 7e-5 (1 to 128 dimensions) at the bound, and ~1e-6 for BOHB's usual bandwidths.
_SINGLE_MAX_MAGNITUDE = 256.0
# exp(-104) is below float32's smallest subnormal: a kernel with a table term under -104 is 0 in
# float32, so a discrete dimension adds at most 104 to the bound of the kernels that count.
_SINGLE_EXP_FLOOR = 104.0
_SMALLEST_SINGLE_SUM = 1e-30  # n subnormals (< 1.2e-38 each) are then a share below n * 1.2e-8


@dataclass(frozen=True)
class KDEParameters:
    """What the estimator was built from: the data (one row per point) and one bandwidth per dimension."""

    data: np.ndarray
    bandwidths: np.ndarray
    kinds: tuple[str, ...]
    num_levels: tuple[int, ...]


def normal_reference_bandwidths(data: np.ndarray) -> np.ndarray:
    """statsmodels' ``normal_reference`` rule: ``1.06 * std * n**(-1 / (4 + d))`` per dimension."""
    n, d = data.shape
    return 1.06 * data.std(axis=0) * n ** (-1.0 / (4 + d))


def bounded_bandwidths(
    raw: np.ndarray, kinds: tuple[str, ...], num_levels: tuple[int, ...], min_bandwidth: float
) -> np.ndarray:
    """Clip bandwidths to ``min_bandwidth`` below and, for discrete dimensions, to ``(c-1)/c`` above.

    At ``(c-1)/c`` the Aitchison-Aitken kernel is uniform; a larger value would make a different
    level likelier than the same one (a fault of HpBandSter's BOHB, which leaves it unbounded),
    and 1 or more has no kernel at all. The cap wins over a ``min_bandwidth`` above it. A
    dimension with one level gets 0.5: its kernel is the same for every point.
    """
    bandwidths = np.maximum(np.asarray(raw, dtype=float), min_bandwidth)
    for i, (kind, levels) in enumerate(zip(kinds, num_levels)):
        if kind != CONTINUOUS:
            bandwidths[i] = min(bandwidths[i], (levels - 1) / levels if levels > 1 else 0.5)
    return bandwidths


class MixedKDE:
    """An immutable kernel density estimator; build it with :meth:`fit` or from explicit bandwidths."""

    splittable = True  # log_pdf over disjoint data row ranges adds up with logaddexp

    def __init__(self, params: KDEParameters) -> None:
        self.params = params
        data, bw = params.data, params.bandwidths
        continuous = np.array([k == CONTINUOUS for k in params.kinds], dtype=bool)
        self._continuous = continuous
        self._center = data[:, continuous].mean(axis=0) if len(data) else np.zeros(continuous.sum())
        self._tables = [_log_kernel_table(k, c, h) for k, c, h in zip(params.kinds, params.num_levels, bw)]
        self._data_features = self._features(data, data_side=True)
        self._data_features_single = self._data_features.astype(np.float32)
        self._data_magnitude = self._magnitude_of_data()
        self._log_norm = -math.log(len(data)) - np.log(bw[continuous]).sum() - 0.5 * continuous.sum() * _LOG_2PI

    def _magnitude_of_data(self) -> float:
        """The data side of the bound on |terms|: the largest squared scaled distance of a data point
        from the centre (``2 * |half_sq|``) plus, per discrete dimension, its largest |log-kernel|
        up to ``_SINGLE_EXP_FLOOR``."""
        half_sq = self._data_features[:, int(self._continuous.sum()) + 1]
        tables = sum(min(float(np.abs(table).max()), _SINGLE_EXP_FLOOR) for table in self._tables if table.size)
        return 2.0 * float(-half_sq.min(initial=0.0)) + tables

    @classmethod
    def fit(
        cls, data: np.ndarray, kinds: tuple[str, ...], num_levels: tuple[int, ...], min_bandwidth: float = 1e-3
    ) -> MixedKDE:
        """Build the estimator from ``data`` with normal-reference bandwidths, bounded as above."""
        data = np.ascontiguousarray(data, dtype=float)
        if data.ndim != 2 or data.shape[0] < 1:
            raise ValueError(f"data must be a non-empty 2-d array, got shape {data.shape}")
        raw = normal_reference_bandwidths(data)
        return cls(KDEParameters(data, bounded_bandwidths(raw, kinds, num_levels, min_bandwidth), kinds, num_levels))

    @property
    def num_points(self) -> int:
        """Number of data points."""
        return len(self.params.data)

    def _features(self, points: np.ndarray, data_side: bool) -> np.ndarray:
        """Feature rows whose products give the summed log-kernel (see the module docstring)."""
        bw = self.params.bandwidths
        scaled = (points[:, self._continuous] - self._center) / bw[self._continuous]
        half_sq = -0.5 * np.einsum("ij,ij->i", scaled, scaled)[:, None]
        ones = np.ones_like(half_sq)
        blocks = [scaled, ones, half_sq] if data_side else [scaled, half_sq, ones]
        columns = np.flatnonzero(~self._continuous)
        for column in columns:
            levels = points[:, column].astype(int)
            table = self._tables[column]
            blocks.append(np.eye(len(table))[levels] if data_side else table[levels])
        return np.ascontiguousarray(np.hstack(blocks))

    def log_kernel_sums(self, points: np.ndarray, precise: bool = True,
                        data_rows: slice | None = None) -> np.ndarray:
        """``log sum_j K(points_i, data_j)`` without the normalising constants, over the data points
        ``data_rows`` (default: all; a slice with step 1).

        With ``precise=True`` the kernel matrix is computed in double precision, in blocks small
        enough to stay in cache, each block shifted by its row maximum: nothing overflows, and an
        underflow loses nothing that matters, however small the bandwidths.

        With ``precise=False`` (ranking candidates needs no more) the work is done in single
        precision: one float32 matrix product and ``exp`` per block, no shift (every log-kernel
        is <= 0, so nothing overflows); the sum's relative error is about 1e-6 for BOHB's usual
        bandwidths and at most ~3e-4 (see ``_SINGLE_MAX_MAGNITUDE``). When the scaled coordinates
        are too large for that (tiny bandwidths, non-finite points), the whole call takes the
        shifted path; points whose float32 sum underflows are recomputed on it.
        """
        features = self._features(np.atleast_2d(np.asarray(points, dtype=float)), data_side=False)
        first, stop = self._row_range(data_rows)
        if precise or not self._single_precision_is_safe(features):
            return self._shifted_log_sums(features, precise, first, stop)
        sums = np.zeros(len(features))
        single = features.astype(np.float32)
        for start in range(first, stop, _SINGLE_BLOCK_ROWS):
            kernels = single @ self._data_features_single[start : min(start + _SINGLE_BLOCK_ROWS, stop)].T
            sums += np.exp(kernels, out=kernels).sum(axis=1)
        weak = ~(sums >= _SMALLEST_SINGLE_SUM)
        total = np.log(np.where(weak, 1.0, sums))
        if weak.any():
            total[weak] = self._shifted_log_sums(features[weak], False, first, stop)
        return total

    def _row_range(self, data_rows: slice | None) -> tuple[int, int]:
        """``(start, stop)`` of the data points a slice selects; ``ValueError`` for a step other than 1."""
        if data_rows is None:
            return 0, self.num_points
        start, stop, step = data_rows.indices(self.num_points)
        if step != 1:
            raise ValueError(f"data_rows must be a slice with step 1, got {data_rows!r}")
        return start, stop

    def _single_precision_is_safe(self, features: np.ndarray) -> bool:
        """True when the terms of every log-kernel that counts stay within ``_SINGLE_MAX_MAGNITUDE``."""
        points_half_sq = features[:, int(self._continuous.sum())]
        magnitude = 2.0 * float(-points_half_sq.min(initial=0.0)) + self._data_magnitude
        return magnitude <= _SINGLE_MAX_MAGNITUDE

    def _shifted_log_sums(self, features: np.ndarray, precise: bool, first: int, stop: int) -> np.ndarray:
        """The block-wise log-sum-exp over data rows ``first:stop`` in double precision (``exp`` in
        float32 unless ``precise``)."""
        total = np.full(len(features), -np.inf)
        for start in range(first, stop, _BLOCK_ROWS):
            log_kernels = features @ self._data_features[start : min(start + _BLOCK_ROWS, stop)].T
            peak = log_kernels.max(axis=1)
            log_kernels -= peak[:, None]
            if precise:
                sums = np.exp(log_kernels).sum(axis=1)
            else:
                single = log_kernels.astype(np.float32)
                sums = np.exp(single, out=single).sum(axis=1)
            total = np.logaddexp(total, peak + np.log(sums))
        return total

    def log_pdf(self, points: np.ndarray, precise: bool = True, data_rows: slice | None = None) -> np.ndarray:
        """Natural log of the density at each row of ``points`` (model dimensions, discrete as indices).

        With ``data_rows``, only those data points' kernels are summed (the normalisation stays that of
        every point): a lower bound of the density, and the log-densities of disjoint row ranges
        add up with ``np.logaddexp`` to the whole.
        """
        return self.log_kernel_sums(points, precise, data_rows) + self._log_norm

    def pdf(self, points: np.ndarray) -> np.ndarray:
        """The density at each row of ``points``."""
        return np.exp(self.log_pdf(points))

    def sample(self, rng: np.random.Generator, size: int, bandwidth_factor: float = 1.0,
               min_bandwidth: float = 1e-3) -> np.ndarray:
        """Draw ``size`` points the way BOHB does: a random data point, perturbed per dimension.

        Continuous dimensions get a normal perturbation of scale ``bandwidth * bandwidth_factor``
        truncated to ``[0, 1]``; a discrete dimension keeps its level with probability
        ``1 - bandwidth`` and takes a uniformly random level otherwise.
        """
        data, bw = self.params.data, np.maximum(self.params.bandwidths, min_bandwidth)
        centers = data[rng.integers(0, len(data), size=size)]
        samples = centers.copy()
        cont = self._continuous
        if cont.any():
            samples[:, cont] = truncated_normal(rng, centers[:, cont], bw[cont] * bandwidth_factor)
        for column in np.flatnonzero(~cont):
            resample = rng.random(size) >= 1.0 - bw[column]
            samples[resample, column] = rng.integers(0, self.params.num_levels[column], size=int(resample.sum()))
        return samples


def truncated_normal(rng: np.random.Generator, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Normal(mean, scale) truncated to [0, 1], by inverting the CDF.

    ``mean`` lies in [0, 1], so the interval always holds the mode and the CDF inversion stays
    away from the far tails where it would lose precision.
    """
    low = special.ndtr((0.0 - mean) / scale)
    high = special.ndtr((1.0 - mean) / scale)
    draws = special.ndtri(low + rng.random(mean.shape) * (high - low))
    return np.clip(mean + scale * draws, 0.0, 1.0)


def _log_kernel_table(kind: str, num_levels: int, bandwidth: float) -> np.ndarray:
    """``T[a, b] = log k(a, b)`` for a discrete dimension (empty for a continuous one)."""
    if kind == CONTINUOUS:
        return np.empty((0, 0))
    levels = np.arange(num_levels)
    same = levels[:, None] == levels[None, :]
    if kind == UNORDERED:
        other = math.log(bandwidth / (num_levels - 1)) if num_levels > 1 else -np.inf
        return np.where(same, math.log1p(-bandwidth), other)
    if kind == ORDERED:
        distance = np.abs(levels[:, None] - levels[None, :])
        other = math.log(0.5) + math.log1p(-bandwidth) + distance * math.log(bandwidth)
        return np.where(same, math.log1p(-bandwidth), other)
    raise ValueError(f"unknown kernel kind {kind!r}; expected one of 'c', 'u', 'o'")
