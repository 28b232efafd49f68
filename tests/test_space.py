"""SearchSpace: ConfigSpace configurations <-> unit-cube vectors and the model's dimensions."""

from __future__ import annotations

import logging

import ConfigSpace as CS
import numpy as np
import pytest

from mpibohb.space import CONTINUOUS, ORDERED, UNORDERED, SearchSpace, impute_inactive, plain_config


def _vector(space: SearchSpace, **entries: float) -> np.ndarray:
    """A full vector with the given entries (by name), 0.5 elsewhere and the constant at its value."""
    vector = space.configspace.get_default_configuration().get_array().copy()
    for position, hp in enumerate(space.hyperparameters):
        if hp.name in entries:
            vector[position] = entries[hp.name]
        elif not isinstance(hp, CS.Constant):
            vector[position] = 0.5 if hp.name in ("f", "i", "lf", "li") else 0.0
    return vector


def test_rejects_a_non_configuration_space() -> None:
    for bad in (None, {"x": (0.0, 1.0)}, [CS.UniformFloatHyperparameter("x", 0, 1)], "space"):
        with pytest.raises(ValueError, match="ConfigurationSpace"):
            SearchSpace(bad)  # type: ignore[arg-type]


def test_rejects_an_empty_space() -> None:
    with pytest.raises(ValueError, match="no hyperparameters"):
        SearchSpace(CS.ConfigurationSpace())


def test_model_dimensions_leave_out_constants_and_have_kinds(mixed_space: CS.ConfigurationSpace) -> None:
    space = SearchSpace(mixed_space)
    kinds = {d.name: d.kind for d in space.dimensions}
    levels = {d.name: d.num_levels for d in space.dimensions}
    assert kinds == {"f": CONTINUOUS, "i": CONTINUOUS, "lf": CONTINUOUS, "li": CONTINUOUS,
                     "c": UNORDERED, "o": ORDERED}
    assert levels == {"f": 0, "i": 0, "lf": 0, "li": 0, "c": 3, "o": 3}
    assert "k" not in kinds
    assert len(space.dimensions) == 6
    names = [hp.name for hp in space.hyperparameters]
    assert [names[i] for i in space.model_indices] == [d.name for d in space.dimensions]
    assert all(space.hyperparameters[d.index].name == d.name for d in space.dimensions)


def test_only_constants_give_no_model_dimensions() -> None:
    cs = CS.ConfigurationSpace()
    cs.add([CS.Constant("a", 1), CS.Constant("b", "x")])
    space = SearchSpace(cs)
    assert space.dimensions == []
    assert space.model_indices.size == 0


def test_vector_of_is_configspace_vector(mixed_space: CS.ConfigurationSpace) -> None:
    cs = mixed_space
    space = SearchSpace(cs)
    for config in cs.sample_configuration(20):
        # ConfigSpace rounds float values to 13 decimals in the dict (log scale: ~1e-11 in the vector)
        np.testing.assert_allclose(space.vector_of(dict(config)), config.get_array(), rtol=0, atol=1e-9)


def test_config_of_round_trips_legal_configurations(mixed_space: CS.ConfigurationSpace) -> None:
    cs = mixed_space
    space = SearchSpace(cs)
    for config in cs.sample_configuration(50):
        config_dict, vector = space.config_of(config.get_array())
        assert config_dict == plain_config(config)
        np.testing.assert_allclose(vector, config.get_array(), rtol=0, atol=1e-9)
        np.testing.assert_array_equal(vector, space.vector_of(config_dict))
        assert all(not isinstance(v, np.generic) for v in config_dict.values())


def test_config_of_rounds_ints_and_categoricals(mixed_space: CS.ConfigurationSpace) -> None:
    space = SearchSpace(mixed_space)
    # i: 0.37 of [1, 10] -> 4; li: log-int; c: 0.4 -> index 0 ("a"); o: 1.3 -> index 1 ("mid")
    config, vector = space.config_of(_vector(space, i=0.37, li=0.5, c=0.4, o=1.3, f=0.2))
    assert config["i"] == 4 and isinstance(config["i"], int)
    assert isinstance(config["li"], int) and 1 <= config["li"] <= 1000
    assert config["c"] == "a"
    assert config["o"] == "mid"
    assert config["f"] == pytest.approx(0.2)
    assert config["k"] == "const"
    CS.Configuration(space.configspace, values=config)  # legal
    np.testing.assert_array_equal(vector, CS.Configuration(space.configspace, values=config).get_array())
    config, _ = space.config_of(_vector(space, c=1.6, o=0.49))
    assert config["c"] == "c" and config["o"] == "lo"


def test_config_of_drops_inactive_parameters(mixed_space: CS.ConfigurationSpace) -> None:
    space = SearchSpace(mixed_space)
    f_position = [hp.name for hp in space.hyperparameters].index("f")
    config, vector = space.config_of(_vector(space, c=2.0, f=0.3))  # c == "c": f is inactive
    assert "f" not in config
    assert np.isnan(vector[f_position])
    config, vector = space.config_of(_vector(space, c=0.0, f=0.3))  # c == "a": f is active
    assert config["f"] == pytest.approx(0.3)
    assert vector[f_position] == pytest.approx(0.3)


def test_config_of_returns_none_for_forbidden_vectors(mixed_space: CS.ConfigurationSpace) -> None:
    space = SearchSpace(mixed_space)
    assert space.config_of(_vector(space, c=1.0, o=2.0)) is None  # c == "b" and o == "hi"
    assert space.config_of(_vector(space, c=1.2, o=1.8)) is None  # the same after rounding
    assert space.config_of(_vector(space, c=1.0, o=1.0)) is not None


def test_config_of_forbidden_without_conditions() -> None:
    cs = CS.ConfigurationSpace()
    cs.add([CS.UniformFloatHyperparameter("x", 0, 1), CS.CategoricalHyperparameter("c", ["a", "b"])])
    cs.add(CS.ForbiddenEqualsClause(cs["c"], "b"))
    space = SearchSpace(cs)
    names = [hp.name for hp in space.hyperparameters]
    vector = np.zeros(2)
    vector[names.index("x")] = 0.25
    vector[names.index("c")] = 1.0
    assert space.config_of(vector) is None
    vector[names.index("c")] = 0.0
    assert space.config_of(vector)[0] == {"x": 0.25, "c": "a"}


def test_impute_inactive_fills_nans_from_active_rows(mixed_space: CS.ConfigurationSpace) -> None:
    space = SearchSpace(mixed_space)
    dims = space.dimensions
    column = {d.name: j for j, d in enumerate(dims)}
    data = np.full((6, len(dims)), 0.5)
    data[:, column["c"]] = [0, 0, 1, 2, 1, 2]
    data[:, column["f"]] = [0.1, 0.9, np.nan, np.nan, np.nan, np.nan]
    original = data.copy()
    filled = impute_inactive(data, dims, np.random.default_rng(0))
    assert not np.isnan(filled).any()
    assert set(filled[2:, column["f"]]) <= {0.1, 0.9}
    np.testing.assert_array_equal(filled[:2], data[:2])
    np.testing.assert_array_equal(data, original)  # the input is not modified


def test_impute_inactive_draws_uniform_values_when_no_row_is_active(mixed_space: CS.ConfigurationSpace) -> None:
    dims = SearchSpace(mixed_space).dimensions
    data = np.zeros((200, len(dims)))
    data[:] = np.nan
    filled = impute_inactive(data, dims, np.random.default_rng(1))
    assert not np.isnan(filled).any()
    for j, dim in enumerate(dims):
        values = filled[:, j]
        if dim.kind == CONTINUOUS:
            assert np.all((values >= 0) & (values <= 1))
            assert np.unique(values).size == 200
        else:
            assert set(np.unique(values)) == set(range(dim.num_levels))
    again = impute_inactive(data, dims, np.random.default_rng(1))
    np.testing.assert_array_equal(filled, again)


def test_sampler_copy_is_private_and_seeded(mixed_space: CS.ConfigurationSpace) -> None:
    cs = mixed_space
    space = SearchSpace(cs)
    first = [dict(c) for c in space.sampler_copy(5).sample_configuration(5)]
    second = [dict(c) for c in space.sampler_copy(5).sample_configuration(5)]
    other = [dict(c) for c in space.sampler_copy(6).sample_configuration(5)]
    assert first == second
    assert first != other
    assert space.sampler_copy(5) is not cs


def test_a_draw_that_configspace_s_own_check_refuses_is_said_once_and_kept(caplog) -> None:
    """ConfigSpace 1.2 sets ``leaf`` in about one draw in five here although p2 is inactive (a
    chain p0 -> p1 -> p2, and ``leaf`` under p2 == on AND sel != b). The draws stay as drawn (the
    journals of earlier runs hold them, and replay them), and a warning says it, once."""
    from ConfigSpace.conditions import AndConjunction, EqualsCondition, NotEqualsCondition

    from mpibohb import HyperBand

    cs = CS.ConfigurationSpace(seed=1)
    chain = [CS.CategoricalHyperparameter(f"p{i}", ["on", "off"]) for i in range(3)]
    selector, leaf = CS.CategoricalHyperparameter("sel", ["a", "b"]), CS.UniformFloatHyperparameter("leaf", 0, 1)
    cs.add([*chain, selector, leaf])
    cs.add(EqualsCondition(chain[1], chain[0], "on"), EqualsCondition(chain[2], chain[1], "on"))
    cs.add(AndConjunction(EqualsCondition(leaf, chain[2], "on"), NotEqualsCondition(leaf, selector, "b")))
    result = HyperBand(cs, min_budget=1, max_budget=9, seed=1).run(n_iterations=4, worker=lambda c, b: 0.0)
    assert len(result.get_all_runs()) == 35
    assert caplog.text.count("ConfigSpace drew a configuration that its own check refuses") == 1, caplog.text


def test_a_space_with_few_legal_configurations_that_passed_the_check_does_not_end_the_run(caplog, monkeypatch) -> None:
    """1 legal value in 8,000 passes the check at the start; the run's draws take longer than
    the check's limit now and then, and must draw on (a fuzz saw 5 of 6 runs end mid-way).
    Scaled down five times, the limit with the space (1 in 1,600 against 1,000 batches), for speed."""
    from ConfigSpace.forbidden import ForbiddenGreaterThanClause

    from mpibohb import HyperBand
    from mpibohb import space as space_module

    monkeypatch.setattr(space_module, "MAX_SAMPLING_ROUNDS", 1_000)
    cs = CS.ConfigurationSpace(seed=1)
    cs.add(CS.UniformIntegerHyperparameter("n", 0, 1599, default_value=0))
    cs.add(ForbiddenGreaterThanClause(cs["n"], 0))  # only n == 0 is legal
    for seed in (0, 1):
        result = HyperBand(cs, min_budget=1, max_budget=27, seed=seed).run(n_iterations=4, worker=lambda c, b: 0.0)
        assert len(result.get_all_runs()) == 69
    assert "leave few legal configurations: a random draw took over 1,000 batches" in caplog.text


@pytest.mark.parametrize("model", ["tpe", "hpbandster"])
def test_proposals_whose_model_candidates_are_all_forbidden_are_said_once(model, caplog) -> None:
    from mpibohb import BOHB

    cs = CS.ConfigurationSpace(seed=1)
    n, m = CS.UniformIntegerHyperparameter("n", 0, 99), CS.UniformIntegerHyperparameter("m", 0, 99)
    cs.add([n, m, CS.ForbiddenLessThanRelation(n, m), CS.ForbiddenGreaterThanRelation(n, m)])  # n == m: 1 in 100
    with caplog.at_level(logging.DEBUG, logger="mpibohb.samplers"):
        BOHB(cs, min_budget=1, max_budget=9, seed=3, model=model).run(
            n_iterations=12, worker=lambda config, budget: abs(config["n"] - 40) / 100 + 1 / budget)
    said = [r for r in caplog.records if "model candidates were forbidden" in r.getMessage()]
    assert len(said) > 5 and [r.levelno for r in said].count(logging.WARNING) == 1, [r.getMessage() for r in said]
