"""KDESampler (BOHB's model) and RandomSampler on real ConfigSpace spaces."""

from __future__ import annotations

import copy
import math

import ConfigSpace as CS
import numpy as np
import pytest

from mpibohb import space as space_module
from mpibohb.samplers import ranking
from mpibohb.samplers.hpbandster_kde import KDESampler, KDESettings
from mpibohb.samplers.random import RandomSampler
from mpibohb.space import NoLegalConfigurationError, SearchSpace, plain_config


def small_space() -> CS.ConfigurationSpace:
    """Two floats, an int, a categorical and a constant: four model dimensions."""
    cs = CS.ConfigurationSpace(seed=3)
    cs.add([
        CS.UniformFloatHyperparameter("x", 0.0, 1.0),
        CS.UniformFloatHyperparameter("y", 0.0, 1.0),
        CS.UniformIntegerHyperparameter("n", 1, 20),
        CS.CategoricalHyperparameter("c", ["a", "b", "c"]),
        CS.Constant("k", 7),
    ])
    return cs


def _loss(config: dict) -> float:
    return (config["x"] - 0.3) ** 2 + (config["y"] - 0.6) ** 2 + {"a": 0.0, "b": 0.2, "c": 0.4}[config["c"]]


def _feed(sampler: KDESampler, budget: float, count: int, rng: np.random.Generator,
          loss: object = _loss) -> list[tuple[np.ndarray, float]]:
    """Observe ``count`` random configurations at ``budget``; return (vector, loss) pairs."""
    fed = []
    space = sampler.space.configspace
    for config in space.sample_configuration(count) if count > 1 else [space.sample_configuration()]:
        value = loss(dict(config))  # type: ignore[operator]
        sampler.observe(config.get_array(), budget, value)
        fed.append((config.get_array(), value))
    return fed


def test_min_points_default_is_non_constant_dims_plus_one() -> None:
    sampler = KDESampler(SearchSpace(small_space()))
    assert sampler.num_dims == 4  # the constant is not a dimension
    assert sampler.min_points == 5
    assert KDESampler(SearchSpace(small_space()), KDESettings(min_points_in_model=7)).min_points == 7
    # below d + 1 a KDE is degenerate: raised to d + 1 with a warning, as HpBandSter does
    assert KDESampler(SearchSpace(small_space()), KDESettings(min_points_in_model=3)).min_points == 5


def test_no_model_until_good_and_bad_sets_have_min_points_each() -> None:
    """As in HpBandSter, both KDEs need ``min_points_in_model`` points: ``2 * min_points`` in all."""
    sampler = KDESampler(SearchSpace(small_space()), KDESettings(random_fraction=0.0))
    rng = np.random.default_rng(0)
    _feed(sampler, 1.0, 2 * sampler.min_points - 1, rng)
    assert sampler.current_model(rng) is None
    assert sampler.propose(1.0, rng).info["model_based_pick"] is False
    _feed(sampler, 1.0, 1, rng)
    model = sampler.current_model(rng)
    assert model is not None
    assert model.budget == 1.0
    assert model.good.num_points == sampler.min_points
    assert model.bad.num_points == sampler.min_points
    assert sampler.propose(1.0, rng).info["model_based_pick"] is True


def test_model_comes_from_the_largest_budget_with_enough_points() -> None:
    sampler = KDESampler(SearchSpace(small_space()))
    rng = np.random.default_rng(1)
    _feed(sampler, 1.0, 40, rng)
    _feed(sampler, 3.0, 9, rng)
    _feed(sampler, 9.0, 2, rng)
    assert sampler.current_model(rng).budget == 1.0
    _feed(sampler, 3.0, 1, rng)
    assert sampler.current_model(rng).budget == 3.0
    _feed(sampler, 1.0, 50, rng)  # more data on a smaller budget does not move the model down
    assert sampler.current_model(rng).budget == 3.0
    _feed(sampler, 9.0, 8, rng)
    assert sampler.current_model(rng).budget == 9.0


def test_good_and_bad_sets_split_by_loss() -> None:
    sampler = KDESampler(SearchSpace(small_space()), KDESettings(top_n_percent=20))
    rng = np.random.default_rng(2)
    fed = _feed(sampler, 1.0, 60, rng)
    model = sampler.current_model(rng)
    columns = sampler.space.model_indices
    ranked = sorted(fed, key=lambda pair: pair[1])
    good = {tuple(v[columns]) for v, _ in ranked[:12]}
    bad = {tuple(v[columns]) for v, _ in ranked[12:]}
    assert {tuple(row) for row in model.good.params.data} == good
    assert {tuple(row) for row in model.bad.params.data} == bad


def test_failed_runs_are_never_in_the_good_set() -> None:
    sampler = KDESampler(SearchSpace(small_space()))
    rng = np.random.default_rng(3)
    fed = []
    for index, config in enumerate(sampler.space.configspace.sample_configuration(60)):
        loss = _loss(dict(config)) if index % 10 == 0 else math.inf  # 54 of 60 runs failed
        sampler.observe(config.get_array(), 1.0, loss)
        fed.append((config.get_array()[sampler.space.model_indices], loss))
    model = sampler.current_model(rng)
    assert model is not None
    finite = {tuple(v) for v, loss in fed if math.isfinite(loss)}
    good = {tuple(row) for row in model.good.params.data}
    assert good == finite  # 15% of 60 = 9 wanted; only the 6 finite ones qualify
    assert model.good.num_points == 6


def test_too_few_successful_runs_give_no_model_from_that_budget() -> None:
    sampler = KDESampler(SearchSpace(small_space()))
    rng = np.random.default_rng(4)
    _feed(sampler, 1.0, 20, rng)
    failing = _feed(sampler, 3.0, 40, rng, loss=lambda config: math.inf)
    assert len(failing) == 40
    for config in sampler.space.configspace.sample_configuration(4):  # 4 < min_points successes
        sampler.observe(config.get_array(), 3.0, 0.5)
    assert sampler.fit(3.0, rng) is None
    model = sampler.current_model(rng)
    assert model is not None and model.budget == 1.0
    assert np.all(np.isfinite(model.good.params.data))


def _space_with_forbidden_b(forbid: bool) -> CS.ConfigurationSpace:
    """Two floats and a categorical; with ``forbid``, ``c == "b"`` is forbidden."""
    cs = CS.ConfigurationSpace(seed=5)
    cs.add([
        CS.UniformFloatHyperparameter("x", 0.0, 1.0),
        CS.UniformFloatHyperparameter("y", 0.0, 1.0),
        CS.CategoricalHyperparameter("c", ["a", "b", "c"]),
    ])
    if forbid:
        cs.add(CS.ForbiddenEqualsClause(cs["c"], "b"))
    return cs


def _b_is_best(config: dict) -> float:
    return (config["x"] - 0.3) ** 2 + (config["y"] - 0.7) ** 2 + {"b": 0.0, "a": 0.05, "c": 0.5}[config["c"]]


@pytest.mark.parametrize("split_min_points", [None, 16])
def test_forbidden_best_candidate_falls_back_to_the_next_best_candidate(
        split_min_points: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The observations come from the same space without the clause (say, a warm start), so the
    good KDE favours the now forbidden ``c == "b"``: the model's best candidate is forbidden.
    With ``split_min_points`` the bad density is summed lazily (see ``samplers.ranking``)."""
    if split_min_points is not None:
        monkeypatch.setattr(ranking, "SPLIT_MIN_POINTS", split_min_points)
    cs = _space_with_forbidden_b(forbid=True)
    space = SearchSpace(cs)
    sampler = KDESampler(space, KDESettings(random_fraction=0.0))
    rng = np.random.default_rng(6)
    for config in _space_with_forbidden_b(forbid=False).sample_configuration(80):
        sampler.observe(config.get_array(), 1.0, _b_is_best(dict(config)))
    model = sampler.current_model(rng)
    assert model is not None

    # The scenario is real: the model's favourite candidate is forbidden ...
    check_rng = np.random.default_rng(60)
    template = cs.get_default_configuration().get_array()
    best_forbidden = 0
    for _ in range(50):
        candidates = model.good.sample(check_rng, 64, 3.0, 1e-3)
        score = model.bad.log_pdf(candidates) - model.good.log_pdf(candidates)
        vector = template.copy()
        vector[space.model_indices] = candidates[np.argmin(score)]
        best_forbidden += space.config_of(vector) is None
    assert best_forbidden >= 40

    # ... yet every proposal is legal and model-based, not a random fallback.
    for _ in range(100):
        proposal = sampler.propose(1.0, rng)
        assert proposal.info["model_based_pick"] is True
        assert proposal.config["c"] != "b"
        configuration = CS.Configuration(cs, values=proposal.config)
        np.testing.assert_allclose(proposal.vector, configuration.get_array(), rtol=0, atol=1e-9)
    assert sampler.current_model(rng) is model  # not refit between proposals


def test_end_to_end_with_conditions_forbidden_ordinal_log_and_int(mixed_space: CS.ConfigurationSpace) -> None:
    space = SearchSpace(mixed_space)
    sampler = KDESampler(space)
    rng = np.random.default_rng(8)
    model_based = 0
    for _ in range(150):
        proposal = sampler.propose(1.0, rng)
        config = proposal.config
        configuration = CS.Configuration(mixed_space, values=config)  # raises if illegal
        np.testing.assert_allclose(proposal.vector, configuration.get_array(), rtol=0, atol=1e-9)
        assert ("f" in config) == (config["c"] == "a")
        assert not (config["c"] == "b" and config["o"] == "hi")
        assert isinstance(config["i"], int) and isinstance(config["li"], int)
        assert config["k"] == "const"
        model_based += proposal.info["model_based_pick"]
        loss = math.log(config["lf"]) ** 2 / 100 + abs(config["i"] - 3) + config.get("f", 0.5)
        sampler.observe(proposal.vector, 1.0, loss)
    assert model_based >= 50  # about 2/3 of the proposals once the model exists


def test_model_proposals_beat_random_ones() -> None:
    """Once fitted, the model proposes configurations with lower loss than random sampling."""
    space = SearchSpace(small_space())
    sampler = KDESampler(space, KDESettings(random_fraction=0.0))
    rng = np.random.default_rng(9)
    _feed(sampler, 1.0, 100, rng)
    random_sampler = RandomSampler(space)
    model_losses = [_loss(sampler.propose(1.0, rng).config) for _ in range(50)]
    random_losses = [_loss(random_sampler.propose(1.0, rng).config) for _ in range(50)]
    assert np.mean(model_losses) < 0.5 * np.mean(random_losses)


def test_proposals_repeat_with_the_same_generator() -> None:
    def run(seed: int) -> list[dict]:
        sampler = KDESampler(SearchSpace(small_space()))
        rng = np.random.default_rng(seed)
        configs = []
        for _ in range(40):
            proposal = sampler.propose(1.0, rng)
            sampler.observe(proposal.vector, 1.0, _loss(proposal.config))
            configs.append(proposal.config)
        return configs

    assert run(10) == run(10)
    assert run(10) != run(11)


def test_random_sampler_is_seeded_by_the_generator(mixed_space: CS.ConfigurationSpace) -> None:
    space = SearchSpace(mixed_space)

    def draw(seed: int) -> list[dict]:
        sampler, rng = RandomSampler(space), np.random.default_rng(seed)
        return [sampler.propose(1.0, rng).config for _ in range(10)]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)
    for config in draw(3):
        CS.Configuration(mixed_space, values=config)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("min_points_in_model", 0),
        ("top_n_percent", 0),
        ("top_n_percent", 100),
        ("num_samples", 0),
        ("random_fraction", -0.1),
        ("random_fraction", 1.5),
        ("bandwidth_factor", 0),
        ("min_bandwidth", 0.0),
        ("min_bandwidth", -1e-3),
        ("max_points_in_model", 1),
    ],
)
def test_settings_validate_names_the_bad_value(name: str, value: float) -> None:
    settings = KDESettings(**{name: value})
    with pytest.raises(ValueError, match=name) as error:
        settings.validate()
    assert repr(value) in str(error.value)
    with pytest.raises(ValueError, match=name):
        KDESampler(SearchSpace(small_space()), settings)


def test_default_settings_are_hpbandsters() -> None:
    settings = KDESettings()
    settings.validate()
    assert (settings.top_n_percent, settings.num_samples, settings.bandwidth_factor, settings.min_bandwidth) == (
        15, 64, 3.0, 1e-3)
    assert settings.random_fraction == pytest.approx(1 / 3)
    assert settings.min_points_in_model is None



@pytest.mark.parametrize(
    ("name", "value"),
    [("top_n_percent", 15.0), ("num_samples", 64.0), ("min_points_in_model", 5.0), ("max_points_in_model", 10.0)],
)
def test_non_integer_counts_are_rejected_or_work(name: str, value: float) -> None:
    """Either ``validate`` rejects a float count with a ValueError naming it, or the model works."""
    space = SearchSpace(CS.ConfigurationSpace({"x": (0.0, 1.0), "y": (0.0, 1.0)}, seed=1))
    try:
        sampler = KDESampler(space, KDESettings(random_fraction=0.0, **{name: value}))
    except ValueError as error:
        assert name in str(error)
        return
    rng = np.random.default_rng(0)
    for _ in range(40):
        proposal = sampler.propose(1.0, rng)
        sampler.observe(proposal.vector, 1.0, proposal.config["x"])
    assert proposal.info["model_based_pick"] is True


def only_the_default_is_legal() -> CS.ConfigurationSpace:
    """x == y is the only legal region: a random draw is (almost surely) never legal."""
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0), "y": (0.0, 1.0)})
    cs.add(CS.ForbiddenGreaterThanRelation(cs["x"], cs["y"]), CS.ForbiddenLessThanRelation(cs["x"], cs["y"]))
    return cs


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sampler", [RandomSampler, KDESampler])
def test_sampling_a_space_with_no_legal_configuration_gives_up_with_an_error(sampler, monkeypatch) -> None:
    # a run's full 20 x 5,000 batches take 20-45 s; the bound, not its size, is what is tested
    monkeypatch.setattr(space_module, "MAX_SAMPLING_ROUNDS", 250)
    with pytest.raises(NoLegalConfigurationError, match=r"drew 5,000 batches .* none passed .*"
                       r"\(Forbidden: x < y; Forbidden: x > y\)"):
        sampler(SearchSpace(only_the_default_is_legal())).propose(1.0, np.random.default_rng(0))


@pytest.mark.timeout(60)
def test_a_run_on_a_space_with_no_legal_configuration_is_refused_before_it_starts(tmp_path) -> None:
    from mpibohb import BOHB

    with pytest.raises(NoLegalConfigurationError, match="Forbidden: x < y"):
        BOHB(only_the_default_is_legal(), run_dir=tmp_path / "run").run(1, lambda config, budget: config["x"])
    assert not (tmp_path / "run").exists()


def test_the_bounded_sampler_deals_configspace_own_configurations(mixed_space) -> None:
    """The bound on the draws changes nothing else: the same seed gives the configurations
    ConfigSpace's own sampling gives (with forbidden clauses and conditions)."""
    sampler = RandomSampler(SearchSpace(mixed_space))
    ours = [sampler.propose(1.0, np.random.default_rng(5)).config for _ in range(200)]
    plain = copy.deepcopy(mixed_space)
    plain.seed(int(np.random.default_rng(5).integers(2**31 - 1)))
    assert ours == [plain_config(plain.sample_configuration()) for _ in range(200)]
