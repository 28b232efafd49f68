"""The "tpe" model: ParzenMixture's density and sampling against independent calculations, its
bandwidth rules, ParzenSampler's sets and model, its settings' validation, and BOHB(model=...)."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import ConfigSpace as CS
import numpy as np
import pytest
from cli_in_process import run_cli
from scipy import stats

from mpibohb import BOHB, load_result, simulate
from mpibohb.journal import JournalError, RunDirectoryError, read_journal
from mpibohb.replay import replay
from mpibohb.samplers import parzen, ranking, tpe
from mpibohb.samplers.agreement import RankAgreement
from mpibohb.samplers.hpbandster_kde import KDESettings
from mpibohb.samplers.kde import truncated_normal
from mpibohb.samplers.models import kept_on_resume, settings_record
from mpibohb.samplers.parzen import (
    Components,
    ParzenMixture,
    ProductOfMarginals,
    count_bandwidth,
    discrete_log_rows,
    neighbour_bandwidths,
)
from mpibohb.samplers.running import RunningConfigurations
from mpibohb.samplers.tpe import ParzenSampler, ParzenSettings, good_set_trend, shifted_along
from mpibohb.space import SearchSpace


def _mixture(truncated: bool = True) -> tuple[ParzenMixture, Components]:
    """Three components on (continuous, unordered with 3 levels, continuous, ordered with 4 levels)."""
    centers = np.array([[0.1, 0, 0.5, 3], [0.7, 2, 0.95, 0], [0.5, 1, 0.5, 1]], dtype=float)
    sigmas = np.array([[0.05, 0.2], [0.3, 0.01], [1.0, 1.0]])
    rows = (np.log([[0.8, 0.1, 0.1], [0.05, 0.05, 0.9], [1 / 3, 1 / 3, 1 / 3]]),
            np.log([[0.1, 0.1, 0.2, 0.6], [0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]]))
    parts = Components(centers, sigmas, rows, np.array([2.0, 1.0, 1.0]), np.array([True, False, True, False]),
                       truncated)
    return ParzenMixture(parts), parts


def _reference_pdf(parts: Components, points: np.ndarray) -> np.ndarray:
    """The mixture density from scipy's (truncated) normal pdfs and the rows, term by term."""
    weights = parts.weights / parts.weights.sum()
    total = np.zeros(len(points))
    for j, center in enumerate(parts.centers):
        density = np.full(len(points), weights[j])
        for k, column in enumerate((0, 2)):
            mu, sigma = center[column], parts.sigmas[j, k]
            if parts.truncated:
                kernel = stats.truncnorm.pdf(points[:, column], (0 - mu) / sigma, (1 - mu) / sigma, mu, sigma)
            else:
                kernel = stats.norm.pdf(points[:, column], mu, sigma)
            density *= kernel
        for rows, column in zip(parts.log_rows, (1, 3)):
            density *= np.exp(rows[j])[points[:, column].astype(int)]
        total += density
    return total


@pytest.mark.parametrize("truncated", [True, False])
def test_density_matches_scipy_term_by_term(truncated: bool) -> None:
    mixture, parts = _mixture(truncated)
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.random(50), rng.integers(0, 3, 50), rng.random(50), rng.integers(0, 4, 50)])
    np.testing.assert_allclose(mixture.pdf(points), _reference_pdf(parts, points), rtol=1e-9)


def test_truncated_density_integrates_to_one_on_the_unit_cube() -> None:
    mixture, _ = _mixture(truncated=True)
    grid = (np.arange(400) + 0.5) / 400  # midpoint rule in both continuous dimensions
    x, y = np.meshgrid(grid, grid)
    total = 0.0
    for a in range(3):
        for b in range(4):
            points = np.column_stack([x.ravel(), np.full(x.size, a), y.ravel(), np.full(x.size, b)])
            total += mixture.pdf(points).sum() / grid.size ** 2
    assert total == pytest.approx(1.0, abs=2e-3)


def test_partial_sums_bound_the_density_and_add_up_to_it() -> None:
    mixture, _ = _mixture()
    points = np.array([[0.2, 0, 0.4, 3], [0.9, 2, 0.9, 0]])
    head, tail = mixture.log_pdf(points, data_rows=slice(0, 1)), mixture.log_pdf(points, data_rows=slice(1, 3))
    whole = mixture.log_pdf(points)
    assert np.all(head <= whole) and np.all(tail <= whole)
    np.testing.assert_allclose(np.logaddexp(head, tail), whole, rtol=1e-12)
    with pytest.raises(ValueError, match="step 1"):
        mixture.log_pdf(points, data_rows=slice(0, 3, 2))


def test_samples_follow_the_density() -> None:
    """Marginals of 40,000 draws against the mixture's own marginals (KS and chi-square tests)."""
    mixture, parts = _mixture()
    samples = mixture.sample(np.random.default_rng(1), 40_000)
    weights = parts.weights / parts.weights.sum()

    def cdf(values: np.ndarray, column: int, k: int) -> np.ndarray:
        mus, sigmas = parts.centers[:, column], parts.sigmas[:, k]
        return sum(w * stats.truncnorm.cdf(values, -mu / s, (1 - mu) / s, mu, s)
                   for w, mu, s in zip(weights, mus, sigmas))

    for k, column in enumerate((0, 2)):
        assert stats.kstest(samples[:, column], lambda v, c=column, i=k: cdf(v, c, i)).pvalue > 1e-3
    for rows, column in zip(parts.log_rows, (1, 3)):
        expected = weights @ np.exp(rows)
        counts = np.bincount(samples[:, column].astype(int), minlength=len(expected))
        assert stats.chisquare(counts, expected * len(samples)).pvalue > 1e-3


@pytest.mark.parametrize("truncated", [True, False])
def test_product_of_marginals_matches_scipy_dimension_by_dimension(truncated: bool) -> None:
    """Each marginal against the weighted sum of scipy's (truncated) normal pdfs or of the rows'
    probabilities; the product's log is the sum of theirs."""
    mixture, parts = _mixture(truncated)
    product = ProductOfMarginals(mixture)
    weights = parts.weights / parts.weights.sum()
    rng = np.random.default_rng(5)
    points = np.column_stack([rng.random(50), rng.integers(0, 3, 50), rng.random(50), rng.integers(0, 4, 50)])
    marginals = np.exp(product.log_marginals(points))
    for k, column in enumerate((0, 2)):
        expected = np.zeros(len(points))
        for w, mu, sigma in zip(weights, parts.centers[:, column], parts.sigmas[:, k]):
            if truncated:
                expected += w * stats.truncnorm.pdf(points[:, column], -mu / sigma, (1 - mu) / sigma, mu, sigma)
            else:
                expected += w * stats.norm.pdf(points[:, column], mu, sigma)
        np.testing.assert_allclose(marginals[:, column], expected, rtol=1e-9)
    for rows, column in zip(parts.log_rows, (1, 3)):
        probabilities = weights @ (np.exp(rows) / np.exp(rows).sum(axis=1, keepdims=True))
        np.testing.assert_allclose(marginals[:, column], probabilities[points[:, column].astype(int)], rtol=1e-9)
    np.testing.assert_allclose(product.log_pdf(points), np.log(marginals).sum(axis=1), rtol=1e-12)


def test_product_of_marginals_in_blocks_of_dimensions_gives_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    mixture, _ = _mixture()
    points = mixture.sample(np.random.default_rng(6), 30)
    whole = ProductOfMarginals(mixture).log_marginals(points)
    monkeypatch.setattr(parzen, "_BLOCK_ELEMENTS", 30 * mixture.num_points)  # one dimension per block
    np.testing.assert_array_equal(ProductOfMarginals(mixture).log_marginals(points), whole)


def test_product_of_marginals_forgets_what_the_dimensions_share() -> None:
    """Two components at (0.1, level 0) and (0.9, level 1): the joint density keeps them apart,
    the product puts as much at (0.1, level 1) as at (0.1, level 0)."""
    parts = Components(np.array([[0.1, 0.0], [0.9, 1.0]]), np.array([[0.05], [0.05]]),
                       (np.log([[0.98, 0.02], [0.02, 0.98]]),), np.ones(2), np.array([True, False]), True)
    mixture = ParzenMixture(parts)
    product = ProductOfMarginals(mixture)
    mixed, matched = np.array([[0.1, 1.0]]), np.array([[0.1, 0.0]])
    assert mixture.log_pdf(mixed)[0] < mixture.log_pdf(matched)[0] - 3
    assert product.log_pdf(mixed)[0] == pytest.approx(product.log_pdf(matched)[0], abs=1e-9)
    with pytest.raises(ValueError, match="every component"):
        product.log_pdf(mixed, data_rows=slice(0, 1))
    assert not product.splittable and mixture.splittable


def test_joint_draws_repeat_the_draws_made_before_independent_ones_existed() -> None:
    """``sample`` without ``independent`` consumes the generator as it did before 410f856, so runs
    with ``multivariate=True`` repeat the tpe model's earlier runs; the old code, copied here."""
    mixture, _ = _mixture()

    def before(rng: np.random.Generator, size: int, bandwidth_factor: float) -> np.ndarray:
        chosen = rng.choice(mixture.num_points, size=size, p=mixture.weights)
        samples = np.empty((size, len(mixture.continuous)))
        samples[:, mixture.continuous] = truncated_normal(rng, mixture.means[chosen],
                                                           mixture.sigmas[chosen] * bandwidth_factor)
        for column, rows in zip(np.flatnonzero(~mixture.continuous), mixture.log_rows):
            cumulative = np.cumsum(np.exp(rows[chosen]), axis=1)
            draws = rng.random(size)[:, None] * cumulative[:, -1:]
            samples[:, column] = np.minimum((cumulative <= draws).sum(axis=1), rows.shape[1] - 1)
        return samples

    now, then = np.random.default_rng(11), np.random.default_rng(11)
    np.testing.assert_array_equal(mixture.sample(now, 50, 2.0), before(then, 50, 2.0))
    assert now.random() == then.random()


def test_the_default_model_ranks_by_products_of_marginals_summed_in_one_go() -> None:
    """Default settings: ``scored`` holds products of marginals, never split by the ranking, even
    with every point kept past ``ranking.SPLIT_MIN_POINTS``; ``multivariate=True``: the mixtures."""
    sampler = ParzenSampler(SearchSpace(_space()), ParzenSettings(max_points_in_model=None))
    for config in _space().sample_configuration(5000):
        sampler.observe(config.get_array(), 1.0, _loss(dict(config)))
    model = sampler.current_model(np.random.default_rng(0))
    good, bad = model.scored
    assert isinstance(good, ProductOfMarginals) and isinstance(bad, ProductOfMarginals)
    assert bad.num_points > ranking.SPLIT_MIN_POINTS
    calls = []
    original = ProductOfMarginals.log_pdf

    def counted(self, points, precise=True, data_rows=None):  # type: ignore[no-untyped-def]
        calls.append(data_rows)
        return original(self, points, precise, data_rows)

    ProductOfMarginals.log_pdf = counted  # type: ignore[method-assign]
    try:
        sampler.propose(1.0, np.random.default_rng(1))
    finally:
        ProductOfMarginals.log_pdf = original  # type: ignore[method-assign]
    assert len(calls) == 2 and all(rows in (None, slice(0, bad.num_points)) for rows in calls)
    joint = ParzenSampler(SearchSpace(_space()), ParzenSettings(multivariate=True))
    for config in _space().sample_configuration(50):
        joint.observe(config.get_array(), 1.0, _loss(dict(config)))
    joint_model = joint.current_model(np.random.default_rng(0))
    assert joint_model.scored == (joint_model.good, joint_model.bad)


def test_independent_draws_follow_the_product_of_marginals() -> None:
    """Same marginals as the joint draws (the tests above), but the dimensions drawn apart: on the
    two-component mixture, as many draws near 0.1 take level 1 as take level 0."""
    mixture, parts = _mixture()
    samples = mixture.sample(np.random.default_rng(3), 40_000, independent=True)
    weights = parts.weights / parts.weights.sum()
    for rows, column in zip(parts.log_rows, (1, 3)):
        expected = weights @ np.exp(rows)
        counts = np.bincount(samples[:, column].astype(int), minlength=len(expected))
        assert stats.chisquare(counts, expected * len(samples)).pvalue > 1e-3
    split = Components(np.array([[0.1, 0.0], [0.9, 1.0]]), np.array([[0.05], [0.05]]),
                       (np.log([[0.98, 0.02], [0.02, 0.98]]),), np.ones(2), np.array([True, False]), True)
    joint = ParzenMixture(split).sample(np.random.default_rng(4), 4000)
    apart = ParzenMixture(split).sample(np.random.default_rng(4), 4000, independent=True)
    near = joint[:, 0] < 0.5
    assert np.mean(joint[near, 1] == 1) < 0.05
    assert np.mean(apart[apart[:, 0] < 0.5, 1] == 1) == pytest.approx(0.5, abs=0.05)


def test_a_univariate_model_tries_a_level_that_no_result_has() -> None:
    """The lock-in seen with 32 workers, built by hand: every result has level "a", the good ones
    close together, the bad ones spread out. Near the good points the joint bad density is flat,
    the joint ratio is the good density alone and never proposes "b"; in the product of marginals
    "b" is as rare among the bad points as among the good ones, and its factor does not lose."""
    cs = CS.ConfigurationSpace(seed=1)
    cs.add([CS.UniformFloatHyperparameter(name, 0.0, 1.0) for name in "wxyz"]
           + [CS.CategoricalHyperparameter("c", ["a", "b"])])
    space = SearchSpace(cs)
    rng = np.random.default_rng(0)
    proposed_b = {}
    for multivariate in (True, False):
        sampler = ParzenSampler(space, ParzenSettings(multivariate=multivariate, misled_random_fraction=0.0))
        for i in range(60):
            good = i < 6
            config = {name: float(0.5 + 0.02 * rng.standard_normal()) if good else float(rng.random())
                      for name in "wxyz"}
            config["c"] = "a"
            sampler.observe(space.vector_of(config), 1.0, (0.0 if good else 1.0) + 0.001 * i)
        draws = np.random.default_rng(1)
        picks = [sampler.propose(1.0, draws).config["c"] for _ in range(200)]
        proposed_b[multivariate] = picks.count("b")
    assert proposed_b[True] == 0
    assert proposed_b[False] > 20


def test_bandwidth_factor_widens_only_continuous_draws() -> None:
    parts = Components(np.array([[0.5, 1.0]]), np.array([[0.01]]), (np.log([[0.1, 0.8, 0.1]]),), np.ones(1),
                       np.array([True, False]), True)
    narrow = ParzenMixture(parts).sample(np.random.default_rng(2), 5000)
    wide = ParzenMixture(parts).sample(np.random.default_rng(2), 5000, bandwidth_factor=3.0)
    assert np.std(wide[:, 0]) == pytest.approx(3 * np.std(narrow[:, 0]), rel=0.05)
    assert np.mean(narrow[:, 1] == 1) == pytest.approx(0.8, abs=0.02)
    assert np.mean(wide[:, 1] == 1) == pytest.approx(0.8, abs=0.02)


def test_components_are_checked() -> None:
    parts = Components(np.array([[0.5]]), np.array([[0.1]]), (), np.array([0.0]), np.array([True]), True)
    with pytest.raises(ValueError, match="positive"):
        ParzenMixture(parts)
    with pytest.raises(ValueError, match="one weight per component"):
        ParzenMixture(Components(np.empty((0, 1)), np.empty((0, 1)), (), np.empty(0), np.array([True]), True))


def test_neighbour_bandwidths_by_hand() -> None:
    values = np.array([0.5, 0.1, 0.2, 0.9])  # sorted: 0.1, 0.2, 0.5, 0.9 between the bounds 0 and 1
    # inner points: the larger gap to a neighbour; the outer ones their inner gap (bounds not considered)
    expected = np.array([max(0.3, 0.4), 0.1, max(0.1, 0.3), 0.4])
    np.testing.assert_allclose(neighbour_bandwidths(values, magic_clip=False, min_bandwidth=1e-3), expected)
    clipped = neighbour_bandwidths(values, magic_clip=True, min_bandwidth=1e-3)
    np.testing.assert_allclose(clipped, np.maximum(expected, 1 / 6))  # 1 / min(100, 4 + 2)
    # one point: the bounds are its neighbours
    np.testing.assert_allclose(neighbour_bandwidths(np.array([0.3]), False, 1e-3), [0.7])
    np.testing.assert_allclose(neighbour_bandwidths(np.array([0.4, 0.4]), False, 1e-3), [1e-3, 1e-3])


def test_count_bandwidth_is_optunas_categorical_smoothing() -> None:
    """Optuna's row for a point: 1 at its level plus prior_weight / (n + 1) at every level, normalised."""
    levels, n, prior = 3, 9, 1.0
    row = np.full(levels, prior / (n + 1))
    row[0] += 1
    row /= row.sum()
    bandwidth = count_bandwidth(levels, n, prior, 1e-3)
    assert 1 - bandwidth == pytest.approx(row[0])
    assert bandwidth / (levels - 1) == pytest.approx(row[1])
    assert count_bandwidth(levels, n, 0.0, 1e-3) == 1e-3
    assert 0.49 < count_bandwidth(2, 0, 100.0, 1e-3) < 0.5  # uniform only in the limit


def test_discrete_rows_are_the_aitchison_aitken_and_wang_van_ryzin_kernels() -> None:
    unordered = np.exp(discrete_log_rows("u", 3, np.array([1]), 0.3))
    np.testing.assert_allclose(unordered, [[0.15, 0.7, 0.15]])
    ordered = np.exp(discrete_log_rows("o", 4, np.array([0]), 0.5))
    np.testing.assert_allclose(ordered, [[0.5, 0.125, 0.0625, 0.03125]])


def _space() -> CS.ConfigurationSpace:
    cs = CS.ConfigurationSpace(seed=5)
    cs.add([CS.UniformFloatHyperparameter("x", 0.0, 1.0), CS.UniformFloatHyperparameter("y", -5.0, 5.0),
            CS.CategoricalHyperparameter("c", ["a", "b", "c"]), CS.Constant("k", 1)])
    return cs


def _loss(config: dict) -> float:
    return (config["x"] - 0.2) ** 2 + (config["y"] / 10 - 0.3) ** 2 + (config["c"] != "b")


def _run(sampler: ParzenSampler, proposals: int, seed: int, budgets: tuple[float, ...] = (1.0,)) -> list[float]:
    rng = np.random.default_rng(seed)
    losses = []
    for i in range(proposals):
        proposal = sampler.propose(budgets[i % len(budgets)], rng)
        losses.append(_loss(proposal.config))
        sampler.observe(proposal.vector, budgets[i % len(budgets)], losses[-1])
    return losses


def test_same_seed_same_proposals() -> None:
    first = _run(ParzenSampler(SearchSpace(_space())), 60, seed=3, budgets=(1.0, 3.0))
    assert first == _run(ParzenSampler(SearchSpace(_space())), 60, seed=3, budgets=(1.0, 3.0))
    assert first != _run(ParzenSampler(SearchSpace(_space())), 60, seed=4, budgets=(1.0, 3.0))


def test_model_proposals_beat_random_ones() -> None:
    sampler = ParzenSampler(SearchSpace(_space()))
    losses = _run(sampler, 100, seed=0)
    assert sampler.current_model(np.random.default_rng(0)) is not None
    assert np.mean(losses[-30:]) < 0.3 * np.mean(losses[:4])  # the first d + 1 = 4 are random


def test_tpe_split_sizes_and_the_wait_for_enough_results() -> None:
    sampler = ParzenSampler(SearchSpace(_space()))
    rng = np.random.default_rng(1)
    configs = _space().sample_configuration(300)
    for config in configs[:3]:
        sampler.observe(config.get_array(), 1.0, _loss(dict(config)))
    assert sampler.current_model(rng) is None  # 3 results < d + 1 = 4
    for config in configs[3:]:
        sampler.observe(config.get_array(), 1.0, _loss(dict(config)))
    model = sampler.current_model(rng)
    assert model.budget is None
    assert model.good.num_points == 30 + 1  # ceil(10% of 300) = 30, below max_good_points; plus the prior
    assert model.bad.num_points == 270 + 1
    capped = ParzenSampler(sampler.space, ParzenSettings(max_good_points=20))
    for config in configs:
        capped.observe(config.get_array(), 1.0, _loss(dict(config)))
    assert capped.current_model(rng).good.num_points == 20 + 1
    best = sorted(configs, key=lambda c: _loss(dict(c)))[:30]
    x = _continuous_column(sampler.space, "x")
    good_x = np.sort(model.good.means[:-1, x])
    column = [d.name for d in sampler.space.dimensions].index("x")
    np.testing.assert_allclose(good_x, np.sort([c.get_array()[sampler.space.model_indices][column] for c in best]))


def _fitted_sampler(**settings: object) -> tuple[ParzenSampler, np.random.Generator]:
    sampler = ParzenSampler(SearchSpace(_space()), ParzenSettings(**settings))
    for config in _space().sample_configuration(60):
        sampler.observe(config.get_array(), 1.0, _loss(dict(config)))
    return sampler, np.random.default_rng(2)


def test_a_running_configuration_is_a_bad_point_until_its_result_comes() -> None:
    sampler, rng = _fitted_sampler()
    model = sampler.current_model(rng)
    proposal = sampler.propose(1.0, rng)
    point = proposal.vector[sampler.space.model_indices][None, :]
    assert len(sampler.running) == 1
    running_bad = sampler.ranking_bad_density(model, rng)
    assert running_bad.num_points == model.bad.num_points + 1
    assert running_bad.log_pdf(point)[0] > model.scored[1].log_pdf(point)[0] + 0.1
    sampler.observe(proposal.vector, 1.0, _loss(proposal.config))
    assert len(sampler.running) == 0 and sampler.current_model(rng) is not model  # refit with the result
    assert sampler.ranking_bad_density(sampler.current_model(rng), rng) is sampler.current_model(rng).scored[1]



def test_running_configurations_count_each_run_at_its_budget() -> None:
    running = RunningConfigurations(2)
    a, b = np.array([0.1, 0.2]), np.array([0.3, np.nan])  # NaN: an inactive value, kept as proposed
    running.add(a, 1.0)
    running.add(b, 1.0)
    running.add(a, 1.0)  # proposed again before its first result came
    running.add(a, 3.0)
    assert len(running) == 4
    np.testing.assert_array_equal(running.points(), [a, a, b, a])
    running.remove(a, 9.0)  # a promotion's result: no proposal runs there
    running.remove(a.copy(), 1.0)
    assert len(running) == 3
    np.testing.assert_array_equal(running.points(), [a, b, a])
    running.remove(b.copy(), 1.0)
    running.remove(a, 1.0)
    running.remove(a, 1.0)  # none left at that budget: nothing happens
    assert len(running) == 1 and running.points().shape == (1, 2)
    running.remove(a, 3.0)
    assert len(running) == 0 and running.points().shape == (0, 2)


@pytest.mark.parametrize("seed", range(5))
def test_running_configurations_keep_the_order_of_a_dict_of_counts(seed: int) -> None:
    """The points, in the order they enter the constant liar's density, are those of a dict of
    (configuration, budget) -> count in insertion order, each repeated count times."""
    rng = np.random.default_rng(seed)
    running, counts = RunningConfigurations(2), {}
    configs = [rng.random(2) for _ in range(12)]
    for _ in range(400):
        vector, budget = configs[int(rng.integers(12))], float(rng.choice([1.0, 3.0]))
        key = (vector.tobytes(), budget)
        if rng.random() < 0.5:
            running.add(vector, budget)
            counts[key] = counts.get(key, 0) + 1
        else:
            running.remove(vector, budget)
            if counts.get(key, 0) > 1:
                counts[key] -= 1
            else:
                counts.pop(key, None)
        expected = [np.frombuffer(raw) for (raw, _), count in counts.items() for _ in range(count)]
        assert len(running) == len(expected)
        np.testing.assert_array_equal(running.points(), np.array(expected).reshape(len(expected), 2))


def test_running_configurations_of_a_conditional_space_enter_the_bad_density_imputed() -> None:
    cs = CS.ConfigurationSpace(seed=1)
    kind = CS.CategoricalHyperparameter("kind", ["a", "b"])
    width = CS.UniformFloatHyperparameter("width", 0.0, 1.0)
    cs.add([kind, width, CS.UniformFloatHyperparameter("x", 0.0, 1.0), CS.EqualsCondition(width, kind, "a")])
    sampler = ParzenSampler(SearchSpace(cs))
    for config in cs.sample_configuration(40):
        values = dict(config)
        sampler.observe(config.get_array(), 1.0, values["x"] + values.get("width", 0.5))
    rng = np.random.default_rng(0)
    proposals = [sampler.propose(1.0, rng) for _ in range(12)]
    assert any(np.isnan(p.vector).any() for p in proposals)  # some run without an active width
    density = sampler.ranking_bad_density(sampler.current_model(rng), rng)
    assert np.isfinite(density.mixture.parts.centers).all()
    assert np.isfinite(density.log_pdf(sampler.current_model(rng).bad_data)).all()


@pytest.mark.parametrize("seed", range(4))
def test_with_the_constant_liar_proposals_made_before_any_result_keep_apart(seed: int) -> None:
    def nearest(constant_liar: bool) -> float:
        """The mean distance of a proposal to the nearest other one (continuous dimensions), the
        liar alone (the trend's shift also moves proposals made while others run)."""
        sampler, _ = _fitted_sampler(constant_liar=constant_liar, running_trend_share=0.0)
        rng = np.random.default_rng(seed)
        points = np.array([sampler.propose(1.0, rng).vector[sampler.space.model_indices] for _ in range(24)])
        continuous = points[:, [_continuous_column(sampler.space, "x"), _continuous_column(sampler.space, "y")]]
        distances = np.linalg.norm(continuous[:, None] - continuous[None], axis=2)
        np.fill_diagonal(distances, np.inf)
        return float(distances.min(axis=1).mean())

    assert nearest(True) > 1.3 * nearest(False)  # measured: 1.4 to 1.9 times


def test_serially_the_constant_liar_changes_nothing() -> None:
    with_liar = _run(ParzenSampler(SearchSpace(_space())), 60, seed=3, budgets=(1.0, 3.0))
    without = _run(ParzenSampler(SearchSpace(_space()), ParzenSettings(constant_liar=False)), 60, seed=3,
                   budgets=(1.0, 3.0))
    assert with_liar == without


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_run_on_many_workers_replays_with_its_running_configurations(tmp_path: Path, monkeypatch,
                                                                       asynchronous: bool) -> None:
    """The running set is part of the state a resume rebuilds: the replay proposes and observes in
    the journaled order, takes the same decisions, and ends with nothing running; a replay that
    forgot the running configurations would propose otherwise than the run did."""
    def make() -> BOHB:
        return BOHB(configspace=_space(), min_budget=1, max_budget=9, seed=6, asynchronous=asynchronous,
                    run_dir=tmp_path / "run")

    simulate(make(), n_iterations=8, worker=lambda config, budget: _loss(config) + 1 / budget, n_workers=6,
             duration=lambda config, budget: budget * (1 + config["x"]))
    records = read_journal(tmp_path / "run")
    optimizer = make().make_optimizer(8)
    replay(optimizer, records)
    assert optimizer.finished and len(optimizer.sampler.running) == 0
    monkeypatch.setattr(RunningConfigurations, "add", lambda self, vector, budget: None)
    with pytest.raises(JournalError, match="does not replay"):
        replay(make().make_optimizer(8), records)


def _continuous_column(space: SearchSpace, name: str) -> int:
    """The column of ``name`` among the continuous model dimensions (``ParzenMixture.means``)."""
    return [d.name for d in space.dimensions if d.kind == "c"].index(name)


def test_all_budgets_rank_by_largest_budget_then_loss_and_failures_last() -> None:
    space = SearchSpace(_space())
    sampler = ParzenSampler(space, ParzenSettings(max_good_points=2, top_n_percent=40, prior_weight=0.0,
                                                  budget_rule="all"))
    configs = list(_space().sample_configuration(5))
    vectors = [c.get_array() for c in configs]
    for vector, loss in zip(vectors, [0.1, 0.2, 0.3, 0.4, 0.5]):
        sampler.observe(vector, 1.0, loss)
    sampler.observe(vectors[4], 3.0, 0.9)  # promoted and bad there: still ranked first (larger budget)
    sampler.observe(vectors[3], 3.0, math.inf)  # failed at 3: last
    model = sampler.current_model(np.random.default_rng(0))
    x, column = _continuous_column(space, "x"), [d.name for d in space.dimensions].index("x")
    x_of = {float(v[space.model_indices][column]) for v in (vectors[4], vectors[0])}
    assert set(model.good.means[:, x].tolist()) == x_of
    assert float(vectors[3][space.model_indices][column]) in model.bad.means[:, x].tolist()


@pytest.mark.parametrize("budget_rule", ["promoted", "quantile"])
@pytest.mark.parametrize("failure", [math.nan, -math.inf])
def test_a_loss_of_nan_or_minus_infinity_is_a_failure_not_a_better_result(budget_rule: str, failure: float) -> None:
    """A at budget 1 fails (NaN or -inf: a warm start can bring them); B at 1 with 0.5; C and D at 3
    with 0.5 and 0.6. A failure is better than no other result: B leads its budget as C leads its
    own, and the good set is C and B. (Before, a -inf counted as better than B, and D ranked above B.)"""
    space = SearchSpace(_space())
    sampler = ParzenSampler(space, ParzenSettings(max_good_points=2, top_n_percent=40, prior_weight=0.0,
                                                  budget_rule=budget_rule, promotion_fraction=0.5,
                                                  running_budget_rule=None, misled_budget_rule=None))
    a, b, c, d = (config.get_array() for config in _space().sample_configuration(4))
    for vector, budget, loss in [(a, 1.0, failure), (b, 1.0, 0.5), (c, 3.0, 0.5), (d, 3.0, 0.6)]:
        sampler.observe(vector, budget, loss)
    model = sampler.current_model(np.random.default_rng(0))
    x, column = _continuous_column(space, "x"), [dim.name for dim in space.dimensions].index("x")
    assert set(model.good.means[:, x].tolist()) == {float(v[space.model_indices][column]) for v in (b, c)}


@pytest.mark.parametrize("budget_rule, good", [("promoted", "AB"), ("all", "AE")])
def test_promoted_rule_ranks_first_what_successive_halving_would_promote(budget_rule: str, good: str) -> None:
    """A..F at budget 1 with losses 0.1..0.6; A, E, F at budget 3 with 0.2, 0.8, 0.9. Within the best
    third at their largest budget are A (at 3) and B (at 1): "promoted" ranks them first; "all"
    ranks the budget-3 results first, E's poor one before B's."""
    space = SearchSpace(_space())
    sampler = ParzenSampler(space, ParzenSettings(max_good_points=2, top_n_percent=40, prior_weight=0.0,
                                                  budget_rule=budget_rule))
    vectors = dict(zip("ABCDEF", (c.get_array() for c in _space().sample_configuration(6))))
    for name, loss in zip("ABCDEF", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]):
        sampler.observe(vectors[name], 1.0, loss)
    for name, loss in zip("AEF", [0.2, 0.8, 0.9]):
        sampler.observe(vectors[name], 3.0, loss)
    model = sampler.current_model(np.random.default_rng(0))
    x, column = _continuous_column(space, "x"), [d.name for d in space.dimensions].index("x")
    assert set(model.good.means[:, x].tolist()) == {float(vectors[name][space.model_indices][column]) for name in good}


@pytest.mark.parametrize("budget_rule, good", [("promoted", "AE"), ("quantile", "AB")])
def test_quantile_rule_ranks_a_result_against_its_own_budgets_field(budget_rule: str, good: str) -> None:
    """A..H at budget 1 with losses 0.1..0.8; E and F at budget 3 with 0.85 and 0.9, the only two
    there (as from a random start). "promoted" ranks E first, the better of two at the larger budget;
    "quantile" ranks by the share of its budget's results a loss is behind: A 1/16, B 3/16, E 1/4."""
    space = SearchSpace(_space())
    sampler = ParzenSampler(space, ParzenSettings(max_good_points=2, top_n_percent=25, prior_weight=0.0,
                                                  budget_rule=budget_rule))
    vectors = dict(zip("ABCDEFGH", (c.get_array() for c in _space().sample_configuration(8))))
    for name, loss in zip("ABCDEFGH", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]):
        sampler.observe(vectors[name], 1.0, loss)
    for name, loss in zip("EF", [0.85, 0.9]):
        sampler.observe(vectors[name], 3.0, loss)
    model = sampler.current_model(np.random.default_rng(0))
    assert model.budget is None  # one model of every configuration, as "promoted"
    x, column = _continuous_column(space, "x"), [d.name for d in space.dimensions].index("x")
    assert set(model.good.means[:, x].tolist()) == {float(vectors[name][space.model_indices][column]) for name in good}


def _two_budgets_sampler(**settings: object) -> tuple[ParzenSampler, dict[str, np.ndarray]]:
    """The results of the quantile test: A..H at budget 1 (0.1..0.8), E and F at budget 3 (0.85, 0.9)."""
    sampler = ParzenSampler(SearchSpace(_space()), ParzenSettings(max_good_points=2, top_n_percent=25,
                                                                  prior_weight=0.0, **settings))
    vectors = dict(zip("ABCDEFGH", (c.get_array() for c in _space().sample_configuration(8))))
    for name, loss in zip("ABCDEFGH", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]):
        sampler.observe(vectors[name], 1.0, loss)
    for name, loss in zip("EF", [0.85, 0.9]):
        sampler.observe(vectors[name], 3.0, loss)
    return sampler, vectors


def test_while_its_proposals_run_the_model_ranks_by_quantile() -> None:
    """On several workers (proposals running) the model is fitted by ``running_budget_rule``; once
    nothing it proposed runs, by ``budget_rule`` again."""
    sampler, vectors = _two_budgets_sampler()
    rng = np.random.default_rng(0)
    assert sampler.budget_rule() == "promoted"
    proposal = sampler.propose(1.0, rng)  # ranked by the promoted rule: nothing was running
    assert sampler.budget_rule() == "quantile"
    space = sampler.space
    x, column = _continuous_column(space, "x"), [d.name for d in space.dimensions].index("x")
    good = set(sampler.current_model(rng).good.means[:, x].tolist())
    assert good == {float(vectors[name][space.model_indices][column]) for name in "AB"}
    sampler.observe(proposal.vector, 1.0, 0.95)
    assert sampler.budget_rule() == "promoted"
    good = set(sampler.current_model(rng).good.means[:, x].tolist())
    assert good == {float(vectors[name][space.model_indices][column]) for name in "AE"}
    assert ParzenSampler(SearchSpace(_space()), ParzenSettings(running_budget_rule=None)).budget_rule() == "promoted"


def test_the_running_rule_acts_without_the_constant_liar_and_the_liar_alone_refits() -> None:
    """The two settings are measured one at a time (benchmarks.ablation): without the liar the
    running configurations still choose the rule, but do not enter the bad density."""
    sampler, _ = _two_budgets_sampler(constant_liar=False)
    rng = np.random.default_rng(0)
    sampler.propose(1.0, rng)
    assert sampler.budget_rule() == "quantile"
    model = sampler.current_model(rng)
    assert sampler.ranking_bad_density(model, rng) is model.scored[1]
    with_liar, _ = _two_budgets_sampler()
    with_liar.propose(1.0, rng)
    model = with_liar.current_model(rng)
    assert with_liar.ranking_bad_density(model, rng) is not model.scored[1]


def test_serially_the_running_rule_changes_nothing() -> None:
    default = _run(ParzenSampler(SearchSpace(_space())), 60, seed=3, budgets=(1.0, 3.0))
    without = _run(ParzenSampler(SearchSpace(_space()), ParzenSettings(running_budget_rule=None)), 60, seed=3,
                   budgets=(1.0, 3.0))
    assert default == without
    always = _run(ParzenSampler(SearchSpace(_space()), ParzenSettings(budget_rule="quantile")), 60, seed=3,
                  budgets=(1.0, 3.0))
    assert always != default  # the rules differ on these runs: the equality above is the trigger's


def test_the_good_sets_trend_is_its_best_quarter_less_its_mean() -> None:
    good = np.array([[0.1, np.nan], [0.2, 0.4], [0.5, np.nan], [0.6, 0.8], [0.7, 0.9]])  # rank order
    trend = good_set_trend(good)  # best quarter: ceil(5 / 4) = 2 rows
    assert trend == pytest.approx([0.15 - 0.42, 0.4 - 0.7])  # NaN (inactive) left out
    assert good_set_trend(good[:3]) is None
    assert good_set_trend(np.full((4, 1), np.nan)).tolist() == [0.0]
    candidates = np.array([[0.5, 1.0, 0.5], [0.95, 0.0, 0.5], [0.5, 0.0, 0.5], [0.2, 0.0, 0.2]])
    shifted = shifted_along(candidates, np.array([True, False, True]), np.array([0.1, -0.3]), 0.5)
    assert shifted.tolist() == [[0.6, 1.0, 0.2], [1.0, 0.0, 0.2], [0.5, 0.0, 0.5], [0.2, 0.0, 0.2]]


def test_while_its_proposals_run_part_of_the_candidates_move_along_the_trend() -> None:
    """``running_trend_share`` acts only while configurations it proposed run: serially the runs
    are those without it, on workers the proposals differ."""
    def sampler(**settings: object) -> ParzenSampler:
        return ParzenSampler(SearchSpace(_space()), ParzenSettings(**settings))

    assert _run(sampler(), 60, seed=3, budgets=(1.0, 3.0)) == _run(sampler(running_trend_share=0.0), 60, seed=3,
                                                                    budgets=(1.0, 3.0))

    def batch(candidate_sampler: ParzenSampler) -> list[dict]:
        _run(candidate_sampler, 60, seed=5)  # 6 good points: a trend (4 needed)
        rng = np.random.default_rng(7)
        return [candidate_sampler.propose(1.0, rng).config for _ in range(8)]  # after the first, while others run

    with_trend, without = batch(sampler()), batch(sampler(running_trend_share=0.0))
    assert with_trend[0] == without[0] and with_trend[1:] != without[1:]


@pytest.mark.parametrize("rule", ["largest", "promoted", "quantile"])
def test_the_model_keeps_the_trend_of_its_good_set_in_rank_order(rule: str, monkeypatch) -> None:
    """Losses rise with x: the trend points to smaller x, by the best quarter's mean less the good
    set's mean; the first proposal made while one configuration runs moves candidates by it."""
    sampler = ParzenSampler(SearchSpace(_space()), ParzenSettings(budget_rule=rule, running_budget_rule=rule))
    space, column = sampler.space, _continuous_column(sampler.space, "x")
    x_of = [d.name for d in space.dimensions].index("x")
    points = [config.get_array() for config in _space().sample_configuration(80)]
    for vector in points:
        sampler.observe(vector, 1.0, float(vector[space.model_indices][x_of]))
    model = sampler.current_model(np.random.default_rng(0))
    good = np.sort([float(v[space.model_indices][x_of]) for v in points])[:8]  # the best 10%, by loss = x
    assert model.trend[column] == pytest.approx(good[:2].mean() - good.mean())
    assert model.trend[column] < 0
    moves = []
    original = tpe.shifted_along
    monkeypatch.setattr(tpe, "shifted_along", lambda *args: moves.append(args[2]) or original(*args))
    rng = np.random.default_rng(1)
    sampler.propose(1.0, rng)  # nothing running: no move
    assert moves == []
    sampler.propose(1.0, rng)  # one running
    assert len(moves) == 1 and moves[0][column] == pytest.approx(model.trend[column])


def test_a_tpe_journal_without_the_trend_setting_resumes_without_the_trend() -> None:
    journaled = settings_record(ParzenSettings())
    del journaled["running_trend_share"]  # as the mpibohb before it wrote it
    assert kept_on_resume(ParzenSettings(), journaled) == {"running_trend_share": 0.0}
    assert kept_on_resume(ParzenSettings(), settings_record(ParzenSettings())) == {}


def test_a_tpe_journal_without_the_running_misled_agreement_resumes_with_trusted_agreement() -> None:
    journaled = settings_record(ParzenSettings())
    del journaled["running_misled_agreement"]  # as the mpibohb before it wrote it
    assert kept_on_resume(ParzenSettings(), journaled) == {"running_misled_agreement": None}


def test_largest_budget_rule_uses_that_budget_only() -> None:
    sampler = ParzenSampler(SearchSpace(_space()), ParzenSettings(budget_rule="largest"))
    rng = np.random.default_rng(2)
    for config in _space().sample_configuration(40):
        sampler.observe(config.get_array(), 1.0, _loss(dict(config)))
    assert sampler.current_model(rng).budget == 1.0
    for config in _space().sample_configuration(3):
        sampler.observe(config.get_array(), 3.0, _loss(dict(config)))
    assert sampler.current_model(rng).budget == 1.0  # 3 results at budget 3: too few
    sampler.observe(_space().sample_configuration().get_array(), 3.0, 1.0)
    assert sampler.current_model(rng).budget == 3.0


def test_rank_agreement_is_kendalls_tau_weighted_by_pairs_per_step() -> None:
    agreement = RankAgreement(min_pairs=6)
    for loss in (0.1, 0.2, 0.3, 0.4):  # budget 1 -> 3: the same order
        agreement.add(1.0, loss, 3.0, loss / 2)
    agreement.add(1.0, 0.5, 3.0, math.inf)  # a failure says nothing of the order
    assert agreement.value() is None and agreement.num_pairs == 4  # too few pairs yet
    for loss in (0.1, 0.2):  # budget 3 -> 9: two pairs, too few for a tau of their own
        agreement.add(3.0, loss, 9.0, -loss)
    assert agreement.value() is None  # six pairs, but only four in a step with a tau
    agreement.add(3.0, 0.3, 9.0, -0.3)  # 3 -> 9 reversed: tau -1 on three pairs
    assert agreement.value() == pytest.approx((4 * 1.0 + 3 * -1.0) / 7)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_agreement_kept_pair_by_pair_is_scipys_tau_b(seed: int) -> None:
    rng = np.random.default_rng(seed)
    smaller, larger = rng.integers(0, 6, 40).astype(float), rng.integers(0, 4, 40) + rng.random(40) * (seed > 0)
    larger[::3] = smaller[::3]  # some agreement, and ties on both sides
    agreement = RankAgreement(min_pairs=1)
    for x, y in zip(smaller, larger):
        agreement.add(1.0, float(x), 3.0, float(y))
    assert agreement.value() == pytest.approx(stats.kendalltau(smaller, larger)[0], abs=1e-12)


def test_rank_agreement_of_losses_near_the_largest_float_is_scipys_without_a_warning() -> None:
    smaller, larger = np.array([-1e308, 1e308, 0.0, 1.0, -1e308]), np.array([1e308, -1e308, 2.0, 1e308, 0.0])
    agreement = RankAgreement(min_pairs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # before, "overflow encountered in subtract"
        for x, y in zip(smaller, larger):
            agreement.add(1.0, float(x), 3.0, float(y))
    assert agreement.value() == pytest.approx(stats.kendalltau(smaller, larger)[0], abs=1e-12)


def _misled_sampler(reversed_order: bool, **settings: object) -> ParzenSampler:
    """Twelve configurations at budget 1 with losses 0.1..1.2, each promoted to budget 3, where the
    order holds or is reversed."""
    sampler = ParzenSampler(SearchSpace(_space()), ParzenSettings(**settings))  # type: ignore[arg-type]
    configs = list(_space().sample_configuration(12))
    for rank, config in enumerate(configs):
        sampler.observe(config.get_array(), 1.0, 0.1 * (rank + 1))
    for rank, config in enumerate(configs):
        sampler.observe(config.get_array(), 3.0, -0.1 * rank if reversed_order else 0.1 * rank)
    return sampler


def _partly_misled_sampler(**settings: object) -> ParzenSampler:
    """:func:`_misled_sampler` with the order held, plus nine configurations whose order reverses
    from budget 1 to 9: tau 1 on 12 pairs, -1 on nine, 3 / 21 pooled."""
    sampler = _misled_sampler(False, **settings)
    for rank, config in enumerate(_space().sample_configuration(9)):
        sampler.observe(config.get_array(), 1.0, 0.1 * rank)
        sampler.observe(config.get_array(), 9.0, -0.1 * rank)
    return sampler


def test_random_share_grows_only_when_small_budgets_mislead() -> None:
    assert _misled_sampler(False).random_share() == 0.0
    assert _misled_sampler(True).random_share() == pytest.approx(1 / 3)
    assert _misled_sampler(True, misled_random_fraction=0.0).random_share() == 0.0
    assert _misled_sampler(True, random_fraction=0.5).random_share() == 0.5
    assert _misled_sampler(True, min_agreement_pairs=13).random_share() == 0.0  # 12 pairs: too few
    partial = _partly_misled_sampler()
    tau = (12 * 1.0 + 9 * -1.0) / 21
    assert 0.0 < tau < 0.3 and partial.random_share() == pytest.approx(1 / 3)  # misled: the whole share


def test_the_ramp_draws_less_at_random_as_agreement_nears_trust() -> None:
    partial = _partly_misled_sampler(misled_ramp=True)
    assert partial.random_share() == pytest.approx(1 / 3 * (1 - (3 / 21) / 0.3))
    assert _misled_sampler(True, misled_ramp=True).random_share() == pytest.approx(1 / 3)  # tau -1
    assert _misled_sampler(False, misled_ramp=True).random_share() == 0.0  # tau 1
    floored = _partly_misled_sampler(misled_ramp=True, random_fraction=0.2)  # the ramp gives 0.17 there
    assert floored.random_share() == 0.2


def test_agreement_at_the_trusted_level_draws_nothing_at_random() -> None:
    for ramp in (False, True):
        at_trust = _partly_misled_sampler(misled_ramp=ramp, trusted_agreement=3.0 / 21.0)
        assert at_trust.agreement.value() == 3.0 / 21.0 and at_trust.random_share() == 0.0


def test_misled_sampler_draws_that_share_at_random() -> None:
    rng = np.random.default_rng(5)
    misled, trusted = _misled_sampler(True), _misled_sampler(False)
    random_picks = [sum(not s.propose(1.0, rng).info.get("model_based_pick", False) for _ in range(300))
                    for s in (misled, trusted)]
    assert 60 <= random_picks[0] <= 140 and random_picks[1] == 0


def test_while_small_budgets_mislead_the_model_is_of_the_largest_budget() -> None:
    rng = np.random.default_rng(0)
    misled, trusted = _misled_sampler(True), _misled_sampler(False)
    assert (misled.budget_rule(), trusted.budget_rule()) == ("largest", "promoted")
    assert misled.current_model(rng).budget == 3.0 and trusted.current_model(rng).budget is None
    unchanged = _misled_sampler(True, misled_budget_rule=None)
    assert unchanged.budget_rule() == "promoted" and unchanged.current_model(rng).budget is None
    # tau recovers as agreeing pairs come in (40 other configurations, 1 -> 9): back to every budget
    others = _space()
    others.seed(6)
    for rank, config in enumerate(others.sample_configuration(40)):
        misled.observe(config.get_array(), 1.0, 0.1 * rank)
        misled.observe(config.get_array(), 9.0, 0.1 * rank)
    assert misled.agreement.value() > 0.3
    assert misled.budget_rule() == "promoted" and misled.current_model(rng).budget is None


def test_while_configurations_run_the_budget_rule_has_a_trust_level_of_its_own() -> None:
    # tau 3 / 21 (about 0.14): above trusted_agreement, below running_misled_agreement
    rng = np.random.default_rng(2)
    sampler = _partly_misled_sampler(trusted_agreement=0.1, running_misled_agreement=0.2)
    assert sampler.budget_rule() == "promoted"  # serially: nothing is running
    sampler.propose(1.0, rng)
    assert len(sampler.running) == 1 and sampler.budget_rule() == "largest"
    assert sampler.current_model(rng).budget == 9.0
    assert sampler.random_share() == 0.0  # the random share keeps trusted_agreement
    lower = _partly_misled_sampler(running_misled_agreement=0.1)  # never lowers trusted_agreement's 0.3
    lower.propose(1.0, rng)
    assert lower.budget_rule() == "largest" and lower.random_share() == pytest.approx(1 / 3)


def test_back_from_the_misled_rule_largest_refits_from_every_budget() -> None:
    # budget_rule "largest" refits only budgets with new results, once its model is of that rule:
    # coming back from another rule's model it must look at every budget again
    rng = np.random.default_rng(1)
    sampler = _misled_sampler(True, budget_rule="largest", misled_budget_rule="all")
    for rank, config in enumerate(_space().sample_configuration(12)):
        sampler.observe(config.get_array(), 9.0, -0.1 * rank)  # 3 -> 9 reversed too
    assert sampler.budget_rule() == "all" and sampler.current_model(rng).budget is None
    others = _space()
    others.seed(6)
    for rank, config in enumerate(others.sample_configuration(40)):  # agreeing pairs at 1 -> 3 only
        sampler.observe(config.get_array(), 1.0, 0.1 * rank)
        sampler.observe(config.get_array(), 3.0, 0.1 * rank)
    assert sampler.budget_rule() == "largest" and sampler.current_model(rng).budget == 9.0


@pytest.mark.parametrize("name, value, message", [
    ("misled_budget_rule", "smallest", "misled_budget_rule must be one of"),
    ("bandwidth_rule", "scott", "bandwidth_rule must be one of"),
    ("budget_rule", "first", "budget_rule must be one of"),
    ("split", "half", "split must be one of"),
    ("top_n_percent", 100, "top_n_percent must be between 0 and 100"),
    ("prior_weight", -1.0, "prior_weight must be finite and >= 0"),
    ("prior_weight", math.inf, "prior_weight must be finite"),
    ("promotion_fraction", 0.0, "promotion_fraction must be above 0 and at most 1"),
    ("promotion_fraction", 1.5, "promotion_fraction must be above 0 and at most 1"),
    ("random_fraction", 1.5, "random_fraction must be between 0 and 1"),
    ("misled_random_fraction", -0.1, "misled_random_fraction must be between 0 and 1"),
    ("trusted_agreement", 0.0, "trusted_agreement must be above 0 and at most 1"),
    ("running_misled_agreement", 1.5, "running_misled_agreement must be None or above 0 and at most 1"),
    ("running_misled_agreement", "0.4", "running_misled_agreement must be None or above 0"),
    ("misled_ramp", "yes", "misled_ramp must be True or False"),
    ("min_agreement_pairs", 0, "min_agreement_pairs must be a whole number >= 1"),
    ("bandwidth_factor", 0, "bandwidth_factor must be above 0"),
    ("min_bandwidth", 2.0, "min_bandwidth must be above 0 and at most 1"),
    ("num_samples", 0, "num_samples must be a whole number >= 1"),
    ("num_samples", None, "num_samples must be a whole number"),
    ("max_good_points", 2.5, "max_good_points must be a whole number"),
    ("truncated", "yes", "truncated must be True or False"),
    ("magic_clip", 1, "magic_clip must be True or False"),
    ("multivariate", "no", "multivariate must be True or False"),
])
def test_settings_name_the_bad_value(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParzenSampler(SearchSpace(_space()), ParzenSettings(**{name: value}))


# --- BOHB(model=...) -----------------------------------------------------------------------------

def _bohb_run(tmp_path: Path | None = None, **kwargs: object) -> list[tuple]:
    """A serial BOHB run of 4 brackets on ``_space``: (budget, config, model_based_pick, loss) per result."""
    result = BOHB(_space(), min_budget=1, max_budget=9, eta=3, **kwargs).run(
        n_iterations=4, worker=lambda config, budget: _loss(config) + 0.1 / budget)
    runs = sorted(result.get_all_runs(), key=lambda run: (run.time_stamps["finished"], run.config_id))
    configs = result.get_id2config_mapping()
    return [(run.budget, configs[run.config_id]["config"], configs[run.config_id]["config_info"]["model_based_pick"],
             run.loss) for run in runs]


def test_bohb_with_the_tpe_model_repeats_with_the_same_seed_and_uses_the_model() -> None:
    first = _bohb_run(model="tpe", seed=3)
    assert [entry[1] for entry in first] == [entry[1] for entry in _bohb_run(model="tpe", seed=3)]
    assert sum(entry[2] for entry in first) >= 10
    assert [entry[1] for entry in first] != [entry[1] for entry in _bohb_run(model="tpe", seed=4)]
    assert [entry[1] for entry in first] == [entry[1] for entry in _bohb_run(seed=3)]  # the default model
    hpbandster = _bohb_run(model="hpbandster", seed=3)
    assert [entry[1] for entry in hpbandster] != [entry[1] for entry in first]


@pytest.mark.parametrize("model", ["TPE", "optuna", 3, None])
def test_an_unknown_model_is_refused_by_name(model: object) -> None:
    with pytest.raises(ValueError, match=r"model must be 'hpbandster' .* or 'tpe'"):
        BOHB(_space(), min_budget=1, max_budget=9, model=model)


def test_each_model_has_its_defaults_and_takes_the_given_arguments() -> None:
    hpbandster = BOHB(_space(), min_budget=1, max_budget=9, model="hpbandster").kde_settings
    assert isinstance(hpbandster, KDESettings) and hpbandster == KDESettings()
    tpe = BOHB(_space(), min_budget=1, max_budget=9).kde_settings  # the default model
    assert isinstance(tpe, ParzenSettings) and tpe == ParzenSettings()
    assert BOHB(_space(), min_budget=1, max_budget=16, eta=4, model="tpe").kde_settings.promotion_fraction == 0.25
    given = dict(top_n_percent=20, num_samples=32, random_fraction=0.25, bandwidth_factor=2.0, min_bandwidth=0.01,
                 min_points_in_model=12, max_points_in_model=None)
    for model in ("hpbandster", "tpe"):
        settings = BOHB(_space(), min_budget=1, max_budget=9, model=model, **given).kde_settings
        assert {name: getattr(settings, name) for name in given} == given
    with pytest.raises(ValueError, match="random_fraction"):
        BOHB(_space(), min_budget=1, max_budget=9, model="tpe", random_fraction=1.5)


def test_model_options_set_any_setting_of_the_model_and_refuse_others_by_name(tmp_path: Path) -> None:
    """``BOHB(model_options=...)`` reaches the settings that BOHB's HpBandSter arguments do not,
    the run uses them, and they are the run's settings on resume; a mistake is named."""
    def make(**kwargs: object) -> BOHB:
        return BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=2, **kwargs)

    settings = make(model_options={"constant_liar": False, "prior_weight": 0.5}).kde_settings
    assert (settings.constant_liar, settings.prior_weight) == (False, 0.5)
    assert settings == replace(ParzenSettings(), constant_liar=False, prior_weight=0.5)
    assert make(model_options={"promotion_fraction": 0.5}).kde_settings.promotion_fraction == 0.5  # not 1 / eta
    assert make(model="hpbandster", model_options={}).kde_settings == KDESettings()
    given = make(model_options={"budget_rule": "largest"}, run_dir=tmp_path / "run")
    given.run(n_iterations=3, worker=lambda config, budget: _loss(config))
    header = json.loads((tmp_path / "run" / "journal.jsonl").read_text().splitlines()[0])
    assert header["settings"]["budget_rule"] == "largest"
    replaced = make()  # the way before model_options: the same settings, the same run
    replaced.kde_settings = replace(replaced.kde_settings, budget_rule="largest")
    assert [(r.config_id, r.loss) for r in replaced.run(n_iterations=3, worker=lambda c, b: _loss(c)).get_all_runs()] \
        == [(r.config_id, r.loss) for r in load_result(tmp_path / "run").get_all_runs()]
    with pytest.raises(RunDirectoryError, match=r"budget_rule: 'largest' -> 'promoted'"):
        make(run_dir=tmp_path / "run").run(n_iterations=4, worker=lambda config, budget: 0.0, resume=True)
    unknown = r"model 'tpe' has no setting 'constant_lier'; its other settings: max_good_points, .*promotion_fraction"
    for options, message in (({"constant_lier": False}, unknown + r", .*constant_liar"),
                             ({"top_n_percent": 5}, r"sets 'top_n_percent', an argument of BOHB's own"),
                             ({"constant_liar": "yes"}, r"constant_liar must be True or False, got 'yes'"),
                             (["constant_liar"], r"model_options must be a dict"),
                             (5, r"model_options must be a dict")):
        with pytest.raises(ValueError, match=message):
            make(model_options=options)
    with pytest.raises(ValueError, match=r"model 'hpbandster' has no setting 'constant_liar'; it has none beyond"):
        make(model="hpbandster", model_options={"constant_liar": False})


def test_a_fraction_given_for_a_model_setting_is_journaled_as_a_number_and_resumes(tmp_path: Path) -> None:
    def make() -> BOHB:
        return BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=2, run_dir=tmp_path / "run",
                    random_fraction=Fraction(1, 4), model_options={"promotion_fraction": Fraction(1, 2)})

    make().run(n_iterations=2, worker=lambda config, budget: _loss(config))
    settings = json.loads((tmp_path / "run" / "journal.jsonl").read_text().splitlines()[0])["settings"]
    assert (settings["random_fraction"], settings["promotion_fraction"]) == (0.25, 0.5)
    assert len(make().run(n_iterations=3, worker=lambda config, budget: _loss(config), resume=True).get_all_runs()) > 0


def test_a_resume_that_would_drop_a_model_option_is_refused_by_name(tmp_path: Path) -> None:
    """A run journaled before ``running_budget_rule`` existed goes on without it; asked for in
    ``model_options``, the resume says so instead of dropping the option unseen."""
    first = BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=2, run_dir=tmp_path / "run").run(
        n_iterations=2, worker=lambda config, budget: _loss(config))
    journal = tmp_path / "run" / "journal.jsonl"
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    del header["settings"]["running_budget_rule"]  # as the mpibohb of the constant liar wrote it
    journal.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    asking = BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=2, run_dir=tmp_path / "run",
                  model_options={"running_budget_rule": "quantile"})
    with pytest.raises(RunDirectoryError, match=r"goes on with running_budget_rule=None, where model_options asks"
                                                 r" for running_budget_rule='quantile'"):
        asking.run(n_iterations=3, worker=lambda config, budget: _loss(config), resume=True)
    resumed = BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=2, run_dir=tmp_path / "run").run(
        n_iterations=3, worker=lambda config, budget: _loss(config), resume=True)
    assert len(resumed.get_all_runs()) > len(first.get_all_runs())  # without the option it resumes


def test_settings_record_the_model_and_keep_hpbandsters_keys() -> None:
    """HpBandSter's model records the keys it always did (so earlier runs resume); tpe records its own."""
    old_keys = {"min_points_in_model", "top_n_percent", "num_samples", "random_fraction", "bandwidth_factor",
                "min_bandwidth", "max_points_in_model"}
    hpbandster = BOHB(_space(), min_budget=1, max_budget=9, model="hpbandster").settings()
    assert "model" not in hpbandster and old_keys <= set(hpbandster)
    tpe = BOHB(_space(), min_budget=1, max_budget=9).settings()
    assert tpe["model"] == "tpe" and tpe["budget_rule"] == ParzenSettings().budget_rule
    assert tpe["budgets"] == [1.0, 3.0, 9.0]
    json.dumps(tpe)


def test_a_run_with_one_model_does_not_resume_with_the_other(tmp_path: Path) -> None:
    _bohb_run(model="tpe", seed=1, run_dir=tmp_path / "run")
    with pytest.raises(RunDirectoryError, match=r"settings differ \(model: 'tpe' -> 'hpbandster', [^;]*\)$"):
        BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=1, run_dir=tmp_path / "run", model="hpbandster").run(
            n_iterations=5, worker=lambda config, budget: 0.0, resume=True)


def test_a_tpe_run_journaled_before_the_products_of_marginals_is_refused_with_a_hint(tmp_path: Path, caplog) -> None:
    _bohb_run(model="tpe", seed=1, run_dir=tmp_path / "run")
    journal = tmp_path / "run" / "journal.jsonl"
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    for name in ("multivariate", "constant_liar"):  # as an older mpibohb wrote it
        del header["settings"][name]
    header["settings"]["max_good_points"] = 25
    journal.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with caplog.at_level("INFO", logger="mpibohb"):
        with pytest.raises(RunDirectoryError, match=r"\(multivariate: None -> False\); the run was journaled before"):
            BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=1, run_dir=tmp_path / "run").run(
                n_iterations=5, worker=lambda config, budget: 0.0, resume=True)
    assert "journaled with, from before" not in caplog.text  # said only of a resume that goes on


def test_a_tpe_run_journaled_before_the_constant_liar_resumes_as_it_started(tmp_path: Path, caplog) -> None:
    """Journals written before 2026-12-05 have no ``constant_liar`` (the run had none) and the good
    set's cap of then; a resume keeps both and continues as the run started, instead of refusing."""
    def make(run_dir: Path, **settings: object) -> BOHB:
        family = BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=1, run_dir=run_dir)
        family.kde_settings = replace(family.kde_settings, **settings)
        return family

    def worker(config: dict, budget: float) -> float:
        return _loss(config) + 0.1 / budget

    then = {"constant_liar": False, "max_good_points": 3}  # a cap that binds in so short a run
    whole = make(tmp_path / "whole", **then).run(n_iterations=6, worker=worker)
    make(tmp_path / "part", **then).run(n_iterations=3, worker=worker)
    journal = tmp_path / "part" / "journal.jsonl"
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    del header["settings"]["constant_liar"]  # as the earlier mpibohb wrote it
    journal.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    resumed_family = make(tmp_path / "part")  # today's defaults
    with caplog.at_level("INFO", logger="mpibohb"):
        resumed = resumed_family.run(n_iterations=6, worker=worker, resume=True)
    assert "journaled with, from before their defaults changed: constant_liar=False, max_good_points=3" in caplog.text
    assert [(r.config_id, r.budget, r.loss) for r in resumed.get_all_runs()] == \
        [(r.config_id, r.budget, r.loss) for r in whole.get_all_runs()]
    # the kept settings were the resumed run's only: the same object's fresh run has today's
    assert (resumed_family.kde_settings.constant_liar, resumed_family.kde_settings.max_good_points) == (True, 100)
    resumed_family.run(n_iterations=1, worker=worker, overwrite=True)
    fresh = json.loads(journal.read_text().splitlines()[0])["settings"]
    assert (fresh["constant_liar"], fresh["max_good_points"]) == (True, 100)


def _resumes_as_journaled_before(tmp_path: Path, caplog, make, run, setting: str, before: object) -> None:
    """A run journaled without ``setting`` (as the mpibohb before it wrote it) resumes with
    ``before`` and goes on as the same run given it does; on the workload of ``run`` the two
    values give other runs, so the equality is the kept setting's."""
    run(make(tmp_path / "given", **{setting: before}), 4)
    given = run(make(tmp_path / "given", **{setting: before}), 8, resume=True)
    run(make(tmp_path / "part", **{setting: before}), 4)
    journal = tmp_path / "part" / "journal.jsonl"
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    del header["settings"][setting]
    journal.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with caplog.at_level("INFO", logger="mpibohb"):
        resumed = run(make(tmp_path / "part"), 8, resume=True)
    assert f"from before their defaults changed: {setting}={before!r}" in caplog.text
    assert [(r.config_id, r.budget, r.loss) for r in resumed.get_all_runs()] == \
        [(r.config_id, r.budget, r.loss) for r in given.get_all_runs()]
    old, today = (run(make(tmp_path / name, **settings), 8) for name, settings in
                  (("old", {setting: before}), ("today", {})))
    assert [(r.config_id, r.loss) for r in today.get_all_runs()] != [(r.config_id, r.loss) for r in old.get_all_runs()]


def test_a_tpe_run_journaled_before_the_running_rule_resumes_with_the_promoted_ranking(tmp_path: Path, caplog) -> None:
    """A journal with the constant liar but without ``running_budget_rule`` was written when the
    promoted ranking held on many workers too: a resume on many workers keeps it, and goes on as
    the same run resumed with that rule given does."""
    def make(run_dir: Path, **settings: object) -> BOHB:
        family = BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=2, run_dir=run_dir)
        family.kde_settings = replace(family.kde_settings, **settings)
        return family

    def run(family: BOHB, n_iterations: int, **kwargs: object):
        return simulate(family, n_iterations=n_iterations, worker=lambda config, budget: _loss(config) + 1 / budget,
                        n_workers=4, duration=lambda config, budget: budget * (1 + config["x"]), **kwargs)

    _resumes_as_journaled_before(tmp_path, caplog, make, run, "running_budget_rule", None)


def test_a_tpe_run_journaled_before_the_running_misled_agreement_resumes_with_the_old_rule(tmp_path: Path,
                                                                                             caplog) -> None:
    """A journal without ``running_misled_agreement`` was written when the largest budget's model
    acted below ``trusted_agreement`` alone: a resume keeps that rule, and refuses another."""
    space = CS.ConfigurationSpace({"x": (0.0, 1.0), "y": (0.0, 1.0)}, seed=1)

    def make(run_dir: Path, **settings: object) -> BOHB:
        family = BOHB(space, min_budget=1, max_budget=9, eta=3, seed=3, run_dir=run_dir)
        family.kde_settings = replace(family.kde_settings, **settings)
        return family

    def shifting(config: dict, budget: float) -> float:  # the best region moves as the budget grows
        t = math.log(budget) / math.log(9)
        return (config["x"] - 0.7 + 0.4 * t) ** 2 + (config["y"] - 0.7 + 0.4 * t) ** 2

    def run(family: BOHB, n_iterations: int, **kwargs: object):
        return simulate(family, n_iterations=n_iterations, worker=shifting, n_workers=4,
                        duration=lambda config, budget: budget * (1 + config["x"]), **kwargs)

    _resumes_as_journaled_before(tmp_path, caplog, make, run, "running_misled_agreement", None)
    asking = BOHB(space, min_budget=1, max_budget=9, eta=3, seed=3, run_dir=tmp_path / "part",
                  model_options={"running_misled_agreement": 0.4})
    with pytest.raises(RunDirectoryError, match="running_misled_agreement"):
        run(asking, 8, resume=True)


def test_a_tpe_run_journaled_with_the_constant_liar_resumes_only_with_its_own_settings(tmp_path: Path) -> None:
    """Since the constant liar exists its settings are the run's like any others: another value is refused."""
    def make(**settings: object) -> BOHB:
        family = BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=1, run_dir=tmp_path / "run")
        family.kde_settings = replace(family.kde_settings, **settings)
        return family

    make().run(n_iterations=2, worker=lambda config, budget: _loss(config))
    for changed, shown in (({"constant_liar": False}, "constant_liar: True -> False"),
                           ({"max_good_points": 25}, "max_good_points: 100 -> 25")):
        family = make(**changed)
        with pytest.raises(RunDirectoryError, match=shown):
            family.run(n_iterations=3, worker=lambda config, budget: _loss(config), resume=True)
        assert family.kept_on_resume(json.loads((tmp_path / "run" / "journal.jsonl").read_text().splitlines()[0])
                                     ["settings"]) == {}


def test_report_and_the_result_read_a_tpe_run(tmp_path: Path) -> None:
    # the tpe model's settings once overwrote the run's budgets in its settings, and report failed
    _bohb_run(model="tpe", seed=1, run_dir=tmp_path / "run")
    result = load_result(tmp_path / "run")
    assert result.HB_config["budgets"] == [1.0, 3.0, 9.0] and result.HB_config["budget_rule"] == "promoted"
    assert len(result.get_pandas_dataframe()[0]) > 0
    report = run_cli("report", str(tmp_path / "run"))
    assert report.returncode == 0 and "budgets 1, 3, 9" in report.stdout, report.stdout + report.stderr


def test_a_large_bad_density_is_ranked_lazily_and_picks_what_the_full_ranking_picks() -> None:
    """With every point kept (``max_points_in_model=None``) and 6,000 results, the bad density is
    summed over its head first (``ranking.first_legal``); the pick must be the full ranking's."""
    sampler = ParzenSampler(SearchSpace(_space()), ParzenSettings(max_points_in_model=None, multivariate=True))
    rng = np.random.default_rng(7)
    for config in _space().sample_configuration(6000):
        sampler.observe(config.get_array(), 1.0, _loss(dict(config)))
    model = sampler.current_model(rng)
    assert model.bad.num_points > ranking.SPLIT_MIN_POINTS
    candidates = model.good.sample(rng, 64, 2.0)
    log_good = np.maximum(model.good.log_pdf(candidates), ranking.LOG_FLOOR)
    scores = np.maximum(model.bad.log_pdf(candidates), ranking.LOG_FLOOR) - log_good
    order = np.argsort(scores, kind="stable")
    for refused in (0, 3, 10):
        picked = ranking.first_legal(candidates, model.good, model.bad,
                                     lambda index, r=refused: None if index in order[:r] else index)
        assert picked == order[refused]


@pytest.mark.parametrize("options, workers, warned", [
    ({"budget_rule": "largest"}, 4, True),
    ({"budget_rule": "largest"}, 1, False),  # serially nothing runs at a proposal: the rule acts
    ({"budget_rule": "largest", "running_budget_rule": None}, 4, False),
    ({"budget_rule": "largest", "running_budget_rule": "largest"}, 4, False),
    ({}, 4, False),
])
def test_a_budget_rule_that_the_running_rule_overrides_is_said_once(caplog, options, workers, warned) -> None:
    # helper-91 saw budget_rule="stopped" give the default's runs on 32 workers, without a word
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0), "y": (0.0, 1.0)}, seed=1)
    optimizer = BOHB(cs, min_budget=1, max_budget=9, eta=3, seed=2, model_options=options)
    simulate(optimizer, 6, lambda config, budget: config["x"] + config["y"] / budget, workers,
             lambda config, budget: budget)
    said = [r.getMessage() for r in caplog.records if "acts only while no configuration is running" in r.getMessage()]
    assert said == ([
        "model_options budget_rule='largest' acts only while no configuration is running: with configurations "
        "running (on several workers nearly always) running_budget_rule='quantile' fits the model; pass "
        "running_budget_rule=None to keep 'largest' throughout, but while small budgets mislead (tau below "
        "running_misled_agreement) misled_budget_rule='largest' fits it (said once per run)"] if warned else [])


def test_the_overridden_rule_warning_names_no_misled_rule_when_there_is_none(caplog) -> None:
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0), "y": (0.0, 1.0)}, seed=1)
    optimizer = BOHB(cs, min_budget=1, max_budget=9, eta=3, seed=2,
                     model_options={"budget_rule": "largest", "misled_budget_rule": None})
    simulate(optimizer, 6, lambda config, budget: config["x"] + config["y"] / budget, 4, lambda config, budget: budget)
    said = [r.getMessage() for r in caplog.records if "acts only while no configuration is running" in r.getMessage()]
    assert len(said) == 1 and said[0].endswith("to keep 'largest' throughout (said once per run)"), said
