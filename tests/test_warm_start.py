"""Warm starts: earlier evaluations (failed ones included) feed BOHB's model from the start."""

from __future__ import annotations

import ConfigSpace as CS
import numpy as np
import pytest

from mpibohb import BOHB, load_result


def space() -> CS.ConfigurationSpace:
    return CS.ConfigurationSpace({"x": (0.0, 1.0), "y": (0.0, 1.0)})


def loss(config, budget):
    if config["y"] > 0.8:
        raise RuntimeError("this region crashes")
    return (config["x"] - 0.2) ** 2 + (config["y"] - 0.4) ** 2 + 0.5 / budget


def early_model_picks(result, first: int) -> int:
    """Model-based picks among a run's first configurations."""
    mapping = result.get_id2config_mapping()
    return sum(mapping[(0, 0, index)]["config_info"]["model_based_pick"] for index in range(first))


# a cold model needs this many results in 2 dimensions: 2 (d + 1) for HpBandSter's, d + 1 for tpe
@pytest.mark.parametrize(("model", "cold_start"), [("hpbandster", 6), ("tpe", 3)])
def test_previous_result_feeds_the_model_from_the_first_bracket(tmp_path, model, cold_start):
    old = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=1, run_dir=tmp_path / "old").run(6, loss)
    assert old.failed_runs(), "the old run should contain failed evaluations"

    def bohb():
        return BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=2, model=model)

    cold = bohb().run(n_iterations=1, worker=loss)
    warm = bohb().run(n_iterations=1, worker=loss, previous_result=old)
    from_dir = bohb().run(n_iterations=1, worker=loss, previous_result=tmp_path / "old")
    assert early_model_picks(cold, cold_start) == 0
    assert early_model_picks(warm, cold_start) >= 2
    assert [r.loss for r in warm.get_all_runs()] == [r.loss for r in from_dir.get_all_runs()]


def test_failed_old_runs_count_as_bad_never_crash(tmp_path):
    def always_fails(config, budget):
        raise ValueError("broken")

    old = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=3).run(n_iterations=2, worker=always_fails)
    assert len(old.failed_runs()) == len(old.get_all_runs()) > 0
    new = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=4).run(n_iterations=2, worker=loss,
                                                                      previous_result=old)
    assert len(new.get_all_runs()) == len(old.get_all_runs())


def test_a_warm_started_run_resumes_identically(tmp_path):
    old = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=5).run(n_iterations=4, worker=loss)
    whole = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=6, run_dir=tmp_path / "whole").run(
        n_iterations=3, worker=loss, previous_result=old)
    BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=6, run_dir=tmp_path / "parts").run(
        n_iterations=2, worker=loss, previous_result=old)
    resumed = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=6, run_dir=tmp_path / "parts").run(
        n_iterations=3, worker=loss, resume=True)  # the warm start comes from the journal
    key = [(r.config_id, r.budget, r.loss) for r in whole.get_all_runs()]
    assert [(r.config_id, r.budget, r.loss) for r in resumed.get_all_runs()] == key
    assert [(r.config_id, r.budget, r.loss) for r in load_result(tmp_path / "parts").get_all_runs()] == key


def test_a_chain_of_warm_starts_carries_every_earlier_run(tmp_path):
    """HpBandSter's issue #92: warm starts chained through Results keep run 0's evaluations in run
    2's model (HpBandSter's Result holds them as iteration -1; here Result.warm_start)."""
    def bohb(seed, **kwargs):
        return BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=seed, **kwargs)

    def observations(result):
        configs = result.get_id2config_mapping()
        return [[configs[r.config_id]["config"], r.budget, r.loss] for r in result.get_all_runs()]

    first = bohb(1).run(2, loss)
    second = bohb(2, run_dir=tmp_path / "second").run(2, loss, previous_result=first)
    assert second.warm_start == observations(first)
    third = bohb(3).run(1, loss, previous_result=second)
    assert third.warm_start == observations(first) + observations(second)
    from_directory = bohb(3, run_dir=tmp_path / "third").run(1, loss, previous_result=tmp_path / "second")
    assert load_result(tmp_path / "third").warm_start == third.warm_start == from_directory.warm_start
    assert [r.loss for r in from_directory.get_all_runs()] == [r.loss for r in third.get_all_runs()]
    assert len(third.get_all_runs()) == 13  # the Result's runs are its own run's


def test_previous_result_given_to_the_optimizer_as_in_hpbandster(tmp_path):
    old = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=1).run(6, loss)
    warm = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=2).run(1, loss, previous_result=old)
    ported = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=2, previous_result=old).run(1, loss)
    key = [(r.config_id, r.loss) for r in warm.get_all_runs()]
    assert [(r.config_id, r.loss) for r in ported.get_all_runs()] == key
    assert early_model_picks(ported, 6) >= 2
    other = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=3).run(1, loss)
    with pytest.raises(ValueError, match="previous_result was given to the optimizer and to run"):
        BOHB(space(), min_budget=1, max_budget=9, previous_result=old).run(1, loss, previous_result=other)


def test_earlier_runs_outside_the_search_space_are_skipped_with_a_warning(caplog):
    old = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=1).run(1, loss)
    grown = CS.ConfigurationSpace({"x": (0.0, 1.0), "y": (0.0, 1.0), "z": (0.0, 1.0)})  # a new hyperparameter
    with caplog.at_level("INFO", logger="mpibohb"):
        BOHB(grown, min_budget=1, max_budget=9, eta=3, seed=2).run(1, loss, previous_result=old)
    skipped = [r for r in caplog.records if "warm start" in r.getMessage()]
    assert [(r.levelname, r.getMessage()) for r in skipped] == [
        ("WARNING", f"warm start: 0 earlier runs fed to the model, {len(old.get_all_runs())} skipped "
                    "(not in this search space)")]


def test_a_resume_keeps_its_warm_start_and_never_reads_previous_result_again(tmp_path, caplog):
    import shutil

    BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=5, run_dir=tmp_path / "old").run(n_iterations=2, worker=loss)
    BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=6, run_dir=tmp_path / "run").run(
        n_iterations=1, worker=loss, previous_result=tmp_path / "old")
    shutil.rmtree(tmp_path / "old")  # as a job script's requeue may find it: gone, or not mounted on this node
    with caplog.at_level("INFO", logger="mpibohb"):
        resumed = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=6, run_dir=tmp_path / "run").run(
            n_iterations=2, worker=loss, resume=True, previous_result=tmp_path / "old")
    assert resumed.num_iterations() == 2
    assert "resuming: the run keeps the warm start it started with" in caplog.text


def test_a_run_warm_started_from_the_run_it_overwrites_reads_it_first(tmp_path):
    old = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=5, run_dir=tmp_path / "run").run(
        n_iterations=2, worker=loss)
    BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=6, run_dir=tmp_path / "run").run(
        n_iterations=1, worker=loss, overwrite=True, previous_result=tmp_path / "run")
    journal = load_result(tmp_path / "run")
    assert journal.num_iterations() == 1
    from mpibohb.journal import read_journal
    assert len(read_journal(tmp_path / "run")[0]["warm_start"]) == len(old.get_all_runs())


@pytest.mark.parametrize("previous", [{}, [], 3])
def test_a_previous_result_that_is_neither_a_result_nor_a_directory_is_named(previous):
    with pytest.raises(ValueError, match="previous_result must be a Result or a run directory, got"):
        BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=5).run(
            n_iterations=1, worker=loss, previous_result=previous)


def test_a_warm_start_of_hyperband_says_its_sampler_does_not_use_it(caplog):
    from mpibohb import HyperBand

    old = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=5).run(n_iterations=1, worker=loss)
    with caplog.at_level("INFO", logger="mpibohb"):
        HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=5).run(n_iterations=1, worker=loss,
                                                                          previous_result=old)
    assert "fed to the sampler, which samples at random and does not use them" in caplog.text


def test_choices_json_writes_otherwise_replay_and_warm_start(tmp_path, caplog):
    """A categorical of tuples (scikit-learn's hidden_layer_sizes), one with an infinite float and
    one of numpy integers: the journal holds them as lists, strings and numbers; the replay of an
    extension and a warm start from the run directory still take them for the space's own values."""
    def choices_space():
        cs = CS.ConfigurationSpace({"x": (0.0, 1.0)})
        cs.add(CS.CategoricalHyperparameter("layers", [(64,), (64, 64), (128, 64)]),
               CS.CategoricalHyperparameter("clip", [1.0, 10.0, float("inf")]),
               CS.CategoricalHyperparameter("batch", list(np.arange(1, 4))))  # ConfigSpace's to_json fails on these
        return cs

    seen = set()

    def compute(config, budget):
        seen.add((config["layers"], config["clip"]))
        return config["x"] + len(config["layers"]) + 1 / budget

    def bohb(seed, run_dir):
        return BOHB(choices_space(), min_budget=1, max_budget=9, eta=3, seed=seed, run_dir=run_dir)

    bohb(1, tmp_path / "run").run(n_iterations=1, worker=compute)
    extended = bohb(1, tmp_path / "run").run(n_iterations=2, worker=compute, resume=True)  # replays the journal
    assert len(extended.get_all_runs()) == 13 + 6
    mapping = extended.get_id2config_mapping()  # the replayed configurations too, as compute got them
    assert {type(entry["config"]["layers"]) for entry in mapping.values()} == {tuple}
    for result in (extended, load_result(tmp_path / "run")):  # the journal's lists read as the space's tuples
        rows, _, _ = result.get_fANOVA_data(choices_space())
        assert len(rows) == 19
    assert {type(layers) for layers, _ in seen} == {tuple} and float("inf") in {clip for _, clip in seen}
    with caplog.at_level("INFO", logger="mpibohb"):
        bohb(2, None).run(n_iterations=1, worker=compute, previous_result=tmp_path / "run")
    assert "warm start: 19 earlier runs fed to the model, 0 skipped" in caplog.text
