"""MixedKDE against statsmodels' KDEMultivariate and a float64 log-sum-exp reference."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from statsmodels.nonparametric.kernel_density import KDEMultivariate

from mpibohb.samplers.kde import KDEParameters, MixedKDE, bounded_bandwidths, normal_reference_bandwidths

KINDS = tuple("ccuo")
LEVELS = (0, 0, 3, 4)


def _statsmodels_kde(data: np.ndarray, var_type: str, bw: object) -> KDEMultivariate:
    """KDEMultivariate with a fixed generator where statsmodels accepts one (no FutureWarning)."""
    if "rng" in inspect.signature(KDEMultivariate).parameters:
        return KDEMultivariate(data, var_type=var_type, bw=bw, rng=0)
    return KDEMultivariate(data, var_type=var_type, bw=bw)


def _mixed_data(rng: np.random.Generator, n: int, kinds: tuple[str, ...], levels: tuple[int, ...]) -> np.ndarray:
    """``n`` rows; discrete columns cycle through every level first, so all levels are present."""
    columns = []
    for kind, num_levels in zip(kinds, levels):
        if kind == "c":
            columns.append(rng.random(n))
        else:
            column = rng.integers(0, num_levels, n)
            column[:num_levels] = np.arange(num_levels)
            columns.append(rng.permutation(column))
    return np.column_stack(columns).astype(float)


def _reference_log_pdf(data: np.ndarray, bandwidths: np.ndarray, kinds: tuple[str, ...],
                       levels: tuple[int, ...], points: np.ndarray) -> np.ndarray:
    """The product-kernel log density, summed term by term in float64 and combined by log-sum-exp."""
    log_kernel = np.zeros((len(points), len(data)))
    for d, (kind, num_levels, h) in enumerate(zip(kinds, levels, bandwidths)):
        x, y = points[:, d][:, None], data[:, d][None, :]
        if kind == "c":
            log_kernel += -0.5 * ((x - y) / h) ** 2 - 0.5 * math.log(2 * math.pi) - math.log(h)
        elif kind == "u":
            log_kernel += np.where(x == y, math.log(1 - h), math.log(h / (num_levels - 1)))
        else:
            log_kernel += np.where(x == y, math.log(1 - h), math.log(0.5 * (1 - h)) + np.abs(x - y) * math.log(h))
    peak = log_kernel.max(axis=1)
    return peak + np.log(np.exp(log_kernel - peak[:, None]).sum(axis=1)) - math.log(len(data))


@pytest.mark.parametrize("n", [30, 200, 1300])  # 1300 spans several kernel blocks
def test_density_equals_statsmodels_on_mixed_data(n: int) -> None:
    rng = np.random.default_rng(n)
    data = _mixed_data(rng, n, KINDS, LEVELS)
    points = _mixed_data(rng, 40, KINDS, LEVELS)
    reference = _statsmodels_kde(data, "ccuo", "normal_reference")
    kde = MixedKDE(KDEParameters(data, np.asarray(reference.bw, dtype=float), KINDS, LEVELS))
    expected = reference.pdf(points)
    assert np.all(expected > 0)
    np.testing.assert_allclose(kde.pdf(points), expected, rtol=1e-9, atol=0)
    np.testing.assert_allclose(kde.log_pdf(points), np.log(expected), rtol=0, atol=1e-9)


def test_density_equals_statsmodels_with_given_bandwidths_and_several_discrete_dims() -> None:
    rng = np.random.default_rng(7)
    kinds, levels = tuple("cuocuo"), (0, 2, 3, 0, 5, 6)
    data = _mixed_data(rng, 120, kinds, levels)
    points = _mixed_data(rng, 25, kinds, levels)
    bandwidths = np.array([0.05, 0.3, 0.4, 0.2, 0.1, 0.55])
    reference = _statsmodels_kde(data, "cuocuo", bandwidths)
    np.testing.assert_array_equal(reference.bw, bandwidths)
    kde = MixedKDE(KDEParameters(data, bandwidths, kinds, levels))
    np.testing.assert_allclose(kde.pdf(points), reference.pdf(points), rtol=1e-9, atol=0)


def test_density_at_the_data_points_themselves() -> None:
    rng = np.random.default_rng(3)
    data = _mixed_data(rng, 60, KINDS, LEVELS)
    reference = _statsmodels_kde(data, "ccuo", "normal_reference")
    kde = MixedKDE(KDEParameters(data, np.asarray(reference.bw, dtype=float), KINDS, LEVELS))
    np.testing.assert_allclose(kde.pdf(data), reference.pdf(data), rtol=1e-9, atol=0)


@pytest.mark.parametrize(("bandwidth", "log_tolerance"), [(1e-3, 1e-9), (1e-4, 1e-7)])
def test_tiny_bandwidths_give_a_finite_and_exact_log_pdf(bandwidth: float, log_tolerance: float) -> None:
    """Far from the data every kernel underflows in a naive sum; the log density stays exact.

    The expanded squared distance loses about ``eps / h**2`` in the log, hence the looser
    tolerance at ``h = 1e-4`` (still a relative density error of 1e-7).
    """
    rng = np.random.default_rng(11)
    data = _mixed_data(rng, 700, KINDS, LEVELS)
    bandwidths = np.array([bandwidth, bandwidth, bandwidth, bandwidth])
    near = data[:20] + np.array([0.5 * bandwidth, -bandwidth, 0, 0])
    far = _mixed_data(rng, 30, KINDS, LEVELS)
    far[:, :2] = np.clip(far[:, :2] + 0.3, 0, 1)  # far away from most data points
    points = np.vstack([near, far, [[1.0, 1.0, 0, 0], [0.0, 0.0, 2, 3]]])
    with np.errstate(under="ignore"):
        naive = _statsmodels_kde(data, "ccuo", bandwidths).pdf(points)
    assert np.any(naive == 0.0), "the test should include points where the naive density underflows"
    kde = MixedKDE(KDEParameters(data, bandwidths, KINDS, LEVELS))
    log_pdf = kde.log_pdf(points)
    assert np.all(np.isfinite(log_pdf))
    expected = _reference_log_pdf(data, bandwidths, KINDS, LEVELS, points)
    assert np.any(expected > 0)  # near points have ordinary (large) densities
    assert np.min(expected) < -1000  # and some are far below exp's range (exp(-745) is 0)
    # an absolute error in the log is a relative error of the density
    np.testing.assert_allclose(log_pdf, expected, rtol=0, atol=log_tolerance)


def test_log_pdf_is_finite_where_every_kernel_underflows() -> None:
    data = np.array([[0.0], [0.01]])
    kde = MixedKDE(KDEParameters(data, np.array([1e-3]), ("c",), (0,)))
    points = np.array([[1.0], [0.5], [0.005]])
    log_pdf = kde.log_pdf(points)
    expected = _reference_log_pdf(data, np.array([1e-3]), ("c",), (0,), points)
    assert np.all(np.isfinite(log_pdf))
    np.testing.assert_allclose(log_pdf, expected, rtol=1e-12)
    assert kde.pdf(points)[0] == 0.0  # the density itself underflows: only the log is usable


@pytest.mark.parametrize("n", [50, 1500, 17000])  # 17000 spans two float32 products
def test_single_precision_path_within_1e_5_relative(n: int) -> None:
    rng = np.random.default_rng(5)
    data = _mixed_data(rng, n, KINDS, LEVELS)
    points = _mixed_data(rng, 64, KINDS, LEVELS)
    kde = MixedKDE.fit(data, KINDS, LEVELS)
    assert kde._single_precision_is_safe(kde._features(points, data_side=False))  # the float32 path answers
    precise = kde.log_pdf(points, precise=True)
    fast = kde.log_pdf(points, precise=False)
    relative = np.abs(np.expm1(fast - precise))
    assert np.max(relative) <= 1e-5
    assert fast.dtype == np.float64


def _symmetric_kde(num_dims: int, magnitude: float, h: float = 0.01) -> tuple[MixedKDE, np.ndarray]:
    """Two data points at +-v bandwidths from the centre in every dimension, and points on them: the
    bound on the terms of each log-kernel is ``2 * num_dims * v**2 = magnitude``."""
    v = math.sqrt(magnitude / (2 * num_dims))
    data = 0.5 + h * v * np.array([np.ones(num_dims), -np.ones(num_dims)])
    kde = MixedKDE(KDEParameters(data, np.full(num_dims, h), ("c",) * num_dims, (0,) * num_dims))
    return kde, data


@pytest.mark.parametrize("num_dims", [2, 15])
def test_single_precision_at_its_magnitude_limit_within_1e_4(num_dims: int) -> None:
    kde, points = _symmetric_kde(num_dims, 255.9)
    assert kde._single_precision_is_safe(kde._features(points, data_side=False))
    np.testing.assert_allclose(kde.log_pdf(points, precise=False), kde.log_pdf(points), rtol=0, atol=1e-4)
    beyond, points = _symmetric_kde(num_dims, 256.1)
    assert not beyond._single_precision_is_safe(beyond._features(points, data_side=False))


def test_single_precision_bound_counts_a_far_discrete_level_at_most_as_an_underflow() -> None:
    """Two 30-level ordinals at the smallest bandwidth have log-kernels down to -200 each; kernels
    that far are 0 in float32, so the float32 path still answers, and exactly."""
    rng = np.random.default_rng(17)
    kinds, levels, bandwidths = ("c", "o", "o"), (0, 30, 30), np.array([0.2, 1e-3, 1e-3])

    def draw(n: int) -> np.ndarray:
        return np.column_stack([rng.random(n), rng.integers(0, 30, n), rng.integers(0, 30, n)]).astype(float)

    data, points = draw(200), draw(40)
    points[:10] = data[:10]  # some points share both levels with a data point
    kde = MixedKDE(KDEParameters(data, bandwidths, kinds, levels))
    assert kde._single_precision_is_safe(kde._features(points, data_side=False))
    expected = _reference_log_pdf(data, bandwidths, kinds, levels, points)
    np.testing.assert_allclose(kde.log_pdf(points, precise=False), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("a", [7.0, 7.5])
def test_single_precision_recomputes_rows_whose_float32_sum_underflows(a: float) -> None:
    """A point ``a`` bandwidths from both data points in each of 2 dimensions: its log-kernels are
    -2 a**2 (-98: subnormal in float32; -112.5: zero), while the coordinates are small enough for
    the float32 path."""
    h = 0.01
    data = 0.5 + h * np.array([[-a, a], [a, -a]])
    kde = MixedKDE(KDEParameters(data, np.array([h, h]), ("c", "c"), (0, 0)))
    points = np.vstack([0.5 + h * np.array([[a, a]]), data])
    assert kde._single_precision_is_safe(kde._features(points, data_side=False))
    with np.errstate(under="ignore"):
        assert np.exp(np.float32(-2 * a * a)) < np.finfo(np.float32).tiny
    expected = _reference_log_pdf(data, np.array([h, h]), ("c", "c"), (0, 0), points)
    np.testing.assert_allclose(kde.log_pdf(points, precise=False), expected, rtol=0, atol=1e-5)


def test_single_precision_falls_back_for_tiny_bandwidths() -> None:
    """Scaled coordinates of 1/h = 1e3 are beyond float32's reach: the shifted path answers."""
    rng = np.random.default_rng(13)
    data = _mixed_data(rng, 300, KINDS, LEVELS)
    bandwidths = np.array([1e-3, 1e-3, 0.2, 0.3])
    points = np.vstack([data[:10] + np.array([5e-4, -5e-4, 0, 0]), _mixed_data(rng, 20, KINDS, LEVELS)])
    kde = MixedKDE(KDEParameters(data, bandwidths, KINDS, LEVELS))
    assert not kde._single_precision_is_safe(kde._features(points, data_side=False))
    fast = kde.log_pdf(points, precise=False)
    expected = _reference_log_pdf(data, bandwidths, KINDS, LEVELS, points)
    assert np.all(np.isfinite(fast))
    np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-5)


def test_normal_reference_bandwidths_equal_statsmodels() -> None:
    rng = np.random.default_rng(2)
    for n, kinds, levels in [(25, KINDS, LEVELS), (400, tuple("cccccu"), (0, 0, 0, 0, 0, 3))]:
        data = _mixed_data(rng, n, kinds, levels)
        expected = _statsmodels_kde(data, "".join(kinds), "normal_reference").bw
        np.testing.assert_allclose(normal_reference_bandwidths(data), expected, rtol=1e-12)


def test_fit_uses_bounded_normal_reference_bandwidths() -> None:
    rng = np.random.default_rng(4)
    data = _mixed_data(rng, 9, KINDS, LEVELS)
    data[:, 1] = 0.25  # zero spread: raw bandwidth 0
    kde = MixedKDE.fit(data, KINDS, LEVELS, min_bandwidth=1e-3)
    raw = normal_reference_bandwidths(data)
    assert raw[1] == 0.0
    np.testing.assert_allclose(kde.params.bandwidths, bounded_bandwidths(raw, KINDS, LEVELS, 1e-3))
    assert kde.params.bandwidths[1] == 1e-3
    assert kde.num_points == 9


def test_bounded_bandwidths_caps_discrete_and_floors_all() -> None:
    kinds, levels = tuple("cuuoo"), (0, 3, 2, 4, 5)
    raw = np.array([0.0, 0.9, 0.7, 0.8, 1e-5])
    bounded = bounded_bandwidths(raw, kinds, levels, min_bandwidth=1e-3)
    np.testing.assert_allclose(bounded, [1e-3, 2 / 3, 1 / 2, 3 / 4, 1e-3])
    # below the cap and above the floor: unchanged; continuous dims are never capped
    raw = np.array([5.0, 0.5, 0.2, 0.6, 0.3])
    np.testing.assert_allclose(bounded_bandwidths(raw, kinds, levels, 1e-3), raw)
    np.testing.assert_array_equal(raw, [5.0, 0.5, 0.2, 0.6, 0.3])  # input untouched


def test_the_discrete_cap_wins_over_a_large_min_bandwidth() -> None:
    """min_bandwidth 1 or more would leave an Aitchison-Aitken kernel undefined (log1p(-1)): the
    cap (c-1)/c holds whatever the floor; a one-level dimension gets 0.5; continuous keeps the floor."""
    kinds, levels = tuple("cuou"), (0, 3, 4, 1)
    bounded = bounded_bandwidths(np.array([0.1, 0.1, 0.1, 0.1]), kinds, levels, min_bandwidth=2.0)
    np.testing.assert_allclose(bounded, [2.0, 2 / 3, 3 / 4, 0.5])
    data = np.array([[0.5, 0.0, 1.0, 0.0], [0.2, 2.0, 3.0, 0.0]])
    kde = MixedKDE(KDEParameters(data, bounded, kinds, levels))
    assert np.all(np.isfinite(kde.log_pdf(data)))


def test_capped_unordered_kernel_is_uniform() -> None:
    """At ``(c-1)/c`` every level is equally likely: the density does not depend on the level."""
    data = np.array([[0.0], [0.0], [1.0]])
    bandwidths = bounded_bandwidths(np.array([5.0]), ("u",), (3,), 1e-3)
    kde = MixedKDE(KDEParameters(data, bandwidths, ("u",), (3,)))
    np.testing.assert_allclose(kde.pdf(np.array([[0.0], [1.0], [2.0]])), [1 / 3, 1 / 3, 1 / 3], rtol=1e-12)


def test_unordered_density_sums_to_one_over_all_levels() -> None:
    """The Aitchison-Aitken kernel uses the parameter's level count, so a level missing from the
    data still gets its share and the density over all levels sums to one."""
    data = np.array([[0.0], [0.0], [1.0], [0.0]])  # level 2 of 3 is absent
    kde = MixedKDE.fit(data, ("u",), (3,))
    density = kde.pdf(np.arange(3.0)[:, None])
    assert density.sum() == pytest.approx(1.0, rel=1e-12)
    assert density[2] > 0
    assert density[0] > density[1] > density[2]


def test_sample_stays_in_range_and_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    data = _mixed_data(rng, 50, KINDS, LEVELS)
    data[:5, 0] = 0.0
    data[5:10, 1] = 1.0  # points on the boundary of the unit cube
    kde = MixedKDE.fit(data, KINDS, LEVELS)
    first = kde.sample(np.random.default_rng(123), 2000, bandwidth_factor=3.0)
    again = kde.sample(np.random.default_rng(123), 2000, bandwidth_factor=3.0)
    other = kde.sample(np.random.default_rng(124), 2000, bandwidth_factor=3.0)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.shape == (2000, 4)
    assert np.all((first[:, :2] >= 0) & (first[:, :2] <= 1))
    for column, num_levels in ((2, 3), (3, 4)):
        values = first[:, column]
        assert np.all(values == np.rint(values))
        assert set(np.unique(values).astype(int)) == set(range(num_levels))


def test_sample_follows_the_data() -> None:
    """Samples lie near the data: with a small bandwidth, near some data point."""
    data = np.array([[0.2, 1.0], [0.8, 1.0]])
    bandwidths = np.array([0.01, 0.01])
    kde = MixedKDE(KDEParameters(data, bandwidths, ("c", "u"), (0, 3)))
    samples = kde.sample(np.random.default_rng(0), 1000, bandwidth_factor=1.0, min_bandwidth=1e-3)
    distance = np.min(np.abs(samples[:, :1] - data[:, 0][None, :]), axis=1)
    assert np.all(distance < 0.06)
    assert 0.4 < np.mean(samples[:, 0] < 0.5) < 0.6
    assert np.mean(samples[:, 1] == 1.0) > 0.98


def test_fit_rejects_empty_data() -> None:
    with pytest.raises(ValueError, match="shape"):
        MixedKDE.fit(np.empty((0, 2)), ("c", "c"), (0, 0))
