"""The benchmark problems, the quality harness's scoring, and one real small harness run."""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks import problems, quality

ROOT = Path(__file__).resolve().parent.parent


def test_hartmann_and_branin_reach_their_stated_optima_at_full_fidelity():
    h3, h6, branin = problems.hartmann(3), problems.hartmann(6), problems.branin()
    assert h3.true_loss({"x0": 0.114614, "x1": 0.555649, "x2": 0.852547}) == pytest.approx(h3.optimum, abs=1e-5)
    minimiser6 = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]
    assert h6.true_loss({f"x{i}": v for i, v in enumerate(minimiser6)}) == pytest.approx(h6.optimum, abs=1e-5)
    for x1, x2 in ((-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)):
        assert branin.score({"x1": x1, "x2": x2}) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("problem", [problems.branin(), problems.hartmann(3), problems.hartmann(6)])
def test_fidelity_bias_and_noise_vanish_only_at_the_largest_budget(problem):
    config = dict(problem.space(3).sample_configuration())
    rng = np.random.default_rng(0)
    assert problem.evaluate(config, problem.max_budget, rng) == problem.true_loss(config)
    low = [problem.evaluate(config, problem.min_budget, rng) for _ in range(200)]
    assert np.std(low) > 0  # noisy at the smallest budget
    noiseless = problems.branin(noise=0.0) if problem.name == "branin" else problems.hartmann(len(config), noise=0.0)
    biased = noiseless.evaluate(config, problem.min_budget, rng)
    assert biased != pytest.approx(problem.true_loss(config), abs=1e-9)  # the BOCA bias at z < 1
    assert np.mean(low) == pytest.approx(biased, abs=5 * np.std(low) / math.sqrt(len(low)))


def test_counting_ones_loss_counts_ones_and_samples_bernoullis():
    problem = problems.counting_ones(4)
    ones = {**{f"cat{i}": 1 for i in range(4)}, **{f"cont{i}": 1.0 for i in range(4)}}
    assert problem.evaluate(ones, 9, np.random.default_rng(0)) == -1.0
    assert problem.score(ones) == 0.0
    half = {**{f"cat{i}": i % 2 for i in range(4)}, **{f"cont{i}": 0.5 for i in range(4)}}
    assert problem.true_loss(half) == pytest.approx(-(2 + 2.0) / 8)
    samples = [problem.evaluate(half, 729, np.random.default_rng(seed)) for seed in range(50)]
    assert np.mean(samples) == pytest.approx(-0.5, abs=0.01) and np.std(samples) > 0
    assert len(list(problem.space(0).values())) == 8


def test_mlp_digits_trains_and_scores_a_test_error():
    problem = problems.mlp_digits()
    config = {"learning_rate": 3e-3, "alpha": 1e-4, "hidden_units": 32, "batch_size": 64, "activation": "relu"}
    one_epoch = problem.evaluate(config, 1, np.random.default_rng(0))
    assert 0.0 <= one_epoch <= 1.0
    first = problem.true_loss(config)
    problems._TEST_ERRORS.clear()
    assert problem.true_loss(dict(config)) == first < 0.2  # deterministic, not only cached
    assert problem.measure == "loss"


NEW_PROBLEMS = ["svm_digits", "boosting", "hartmann6_in_20", "shifting_optimum"]


def test_the_new_problems_come_after_the_first_eight_in_report_order():
    names = list(problems.all_problems())
    assert names[:8] == ["counting_ones_4", "counting_ones_8", "counting_ones_16", "counting_ones_32", "branin",
                         "hartmann3", "hartmann6", "mlp_digits"]
    assert names[8:] == NEW_PROBLEMS
    assert [name for name, problem in problems.all_problems().items() if problem.trains_models] == [
        "mlp_digits", "svm_digits", "boosting"]


@pytest.fixture
def one_thread(monkeypatch):
    """scikit-learn's gradient boosting on one OpenMP thread, as benchmarks.quality runs it (with
    OMP_NUM_THREADS=1); left alone, it would also start a process to count the physical cores."""
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "1")


@pytest.mark.parametrize("name", [name for name in problems.all_problems() if name != "mlp_digits"])
def test_every_problem_evaluates_sampled_configurations_at_both_ends_of_its_budgets(name, one_thread):
    """mlp_digits has its own test above (its true loss trains 27 epochs)."""
    problem = problems.get_problem(name)
    space = problem.space(7)
    samples = [space.sample_configuration()] if problem.trains_models else space.sample_configuration(3)
    for configuration in samples:
        config = {key: problems_plain(value) for key, value in dict(configuration).items()}
        rng = np.random.default_rng(0)
        for budget in (problem.min_budget, problem.max_budget):
            assert math.isfinite(problem.evaluate(dict(config), budget, rng))
        score = problem.score(dict(config))
        assert math.isfinite(score) and (problem.optimum is None or score >= -1e-9)
        if problem.trains_models:
            assert 0.0 <= problem.true_loss(config) <= 1.0 and problem.measure == "loss"
    assert rungs_are_integers(problem)  # Optuna's pruner steps are integers


def problems_plain(value):
    return value.item() if isinstance(value, np.generic) else value


def rungs_are_integers(problem) -> bool:
    from benchmarks import peers

    return all(rung == round(rung) for rung in peers.rungs(problem))


def test_svm_budget_is_a_random_training_subset_and_the_whole_set_at_the_largest():
    problem = problems.svm_digits()
    assert (problem.min_budget, problem.max_budget, problem.eta) == (40, 1080, 3)
    assert len(problems._svm_data()["train"][1]) == problem.max_budget
    config = {"C": 10.0, "gamma": 0.02, "kernel": "rbf"}
    small = {problem.evaluate(config, 40, np.random.default_rng(seed)) for seed in range(4)}
    assert len(small) > 1  # different subsets
    full = {problem.evaluate(config, 1080, np.random.default_rng(seed)) for seed in range(2)}
    assert len(full) == 1 and full.pop() < 0.05
    poly = {"C": 10.0, "gamma": 0.02, "kernel": "poly", "degree": 2, "coef0": 0.5}
    first = problem.true_loss(poly)
    problems._SVM_TEST_ERRORS.clear()
    assert problem.true_loss(dict(poly)) == first < 0.05  # deterministic, not only cached


def test_boosting_budget_is_rounds_and_max_depth_only_counts_when_limited(one_thread):
    problem = problems.boosting()
    assert (problem.min_budget, problem.max_budget, problem.eta) == (3, 81, 3)
    config = {"learning_rate": 0.1, "max_leaf_nodes": 16, "min_samples_leaf": 10, "l2_regularization": 1e-3,
              "max_features": 1.0, "limit_depth": "no"}
    rng = np.random.default_rng(0)
    assert problem.evaluate(config, 3, rng) > problem.evaluate(config, 81, rng)  # more rounds fit better here
    assert problem.true_loss(config) < 0.3
    stump = dict(config, limit_depth="yes", max_depth=2)
    assert problem.true_loss(stump) != problem.true_loss(config)
    unlimited = dict(config, max_depth=2)  # an inactive value is ignored
    problems._BOOSTING_TEST_ERRORS.clear()
    assert problem.true_loss(unlimited) == problem.true_loss(config)


def test_hartmann6_in_20_ignores_its_dummy_dimensions():
    problem = problems.get_problem("hartmann6_in_20")
    assert len(list(problem.space(0).values())) == 20
    minimiser = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]
    rng = np.random.default_rng(0)
    for _ in range(3):
        config = {f"x{i}": float(v) for i, v in enumerate(minimiser + list(rng.uniform(size=14)))}
        assert problem.score(config) == pytest.approx(0.0, abs=1e-5)
        assert problem.evaluate(config, 27, rng) == problem.true_loss(config)
    with pytest.raises(ValueError):
        problems.hartmann(6, embedded_in=5)


class FakeTrial:
    """What the Optuna translator calls on a trial: answers from ``values``, else the lower bound
    (or first choice), and records the names in the order asked."""

    def __init__(self, values: dict | None = None) -> None:
        self.values, self.asked = values or {}, []

    def _answer(self, name, default):
        self.asked.append(name)
        return self.values.get(name, default)

    def suggest_float(self, name, low, high, log=False, step=None):
        return self._answer(name, low)

    def suggest_int(self, name, low, high, log=False):
        return self._answer(name, low)

    def suggest_categorical(self, name, choices):
        return self._answer(name, choices[0])


@pytest.mark.parametrize("name", ["svm_digits", "boosting"])
def test_the_optuna_translator_round_trips_conditional_configurations(name):
    import ConfigSpace as CS

    from benchmarks import peers

    space = problems.get_problem(name).space(3)
    order = [hp.name for hp in peers.hyperparameters(space)]
    for child, condition in peers.conditions(space).items():
        assert order.index(condition.parent.name) < order.index(child)
    seen = set()
    for configuration in space.sample_configuration(40):
        config = {key: problems_plain(value) for key, value in dict(configuration).items()}
        trial = FakeTrial(config)
        assert peers.suggest_config(trial, space) == config  # inactive values are neither asked nor set
        assert set(trial.asked) == set(config)
        CS.Configuration(space, values=config)  # valid: ConfigSpace checks active and inactive values
        seen.add(tuple(sorted(config)))
    assert len(seen) > 1  # both sides of a condition were exercised


def test_the_optuna_translator_refuses_other_conditions_and_forbidden_clauses():
    import ConfigSpace as CS

    from benchmarks import peers

    def space(extra) -> CS.ConfigurationSpace:
        a = CS.CategoricalHyperparameter("a", ["x", "y", "z"])
        b = CS.UniformFloatHyperparameter("b", 0.0, 1.0)
        c = CS.UniformIntegerHyperparameter("c", 1, 5)
        return problems._new_space(0, [a, b, c], extra(a, b, c))

    nested = space(lambda a, b, c: [CS.InCondition(b, a, ["x", "y"]), CS.EqualsCondition(c, b, 0.5)])
    assert peers.suggest_config(FakeTrial({"a": "z"}), nested) == {"a": "z"}  # c's parent b is inactive
    assert peers.suggest_config(FakeTrial({"a": "y", "b": 0.5}), nested) == {"a": "y", "b": 0.5, "c": 1}
    with pytest.raises(NotImplementedError, match="NotEqualsCondition"):
        peers.hyperparameters(space(lambda a, b, c: [CS.NotEqualsCondition(b, a, "x")]))
    with pytest.raises(NotImplementedError, match="AndConjunction"):
        peers.hyperparameters(space(lambda a, b, c: [CS.AndConjunction(CS.EqualsCondition(b, a, "x"),
                                                                       CS.EqualsCondition(b, c, 2))]))
    forbidden = space(lambda a, b, c: [])
    clause = CS.ForbiddenEqualsClause(forbidden["a"], "z")
    forbidden.add(clause) if hasattr(forbidden, "add") else forbidden.add_forbidden_clause(clause)
    with pytest.raises(NotImplementedError, match="forbidden"):
        peers.suggest_config(FakeTrial(), forbidden)


def filled_in(configuration, space) -> dict:
    """A sampled configuration as DeepHyper hands it over: every inactive hyperparameter set too."""
    config = {key: problems_plain(value) for key, value in dict(configuration).items()}
    for hp in space.values() if hasattr(space, "add") else space.get_hyperparameters():
        config.setdefault(hp.name, hp.lower if hasattr(hp, "lower") else hp.choices[0])
    return config


@pytest.mark.parametrize("name", ["svm_digits", "boosting"])
def test_deephyper_gets_its_inactive_hyperparameters_dropped(name):
    from benchmarks import deephyper_peer

    space = problems.get_problem(name).space(3)
    seen = set()
    for configuration in space.sample_configuration(40):
        config = {key: problems_plain(value) for key, value in dict(configuration).items()}
        filled = filled_in(configuration, space)
        assert deephyper_peer.active_config(filled, space) == config  # as mpibohb's: inactive ones absent
        seen.add(len(filled) - len(config))
    assert len(seen) > 1  # both sides of a condition were exercised


def test_deephyper_drops_a_child_of_an_inactive_parent_and_leaves_flat_spaces_alone():
    import ConfigSpace as CS

    from benchmarks import deephyper_peer

    a = CS.CategoricalHyperparameter("a", ["x", "y", "z"])
    b = CS.UniformFloatHyperparameter("b", 0.0, 1.0)
    c = CS.UniformIntegerHyperparameter("c", 1, 5)
    nested = problems._new_space(0, [a, b, c], [CS.InCondition(b, a, ["x", "y"]), CS.EqualsCondition(c, b, 0.5)])
    assert deephyper_peer.active_config({"a": "z", "b": 0.5, "c": 2}, nested) == {"a": "z"}  # b inactive: c too
    assert deephyper_peer.active_config({"c": 2, "b": 0.5, "a": "y"}, nested) == {"c": 2, "b": 0.5, "a": "y"}
    assert deephyper_peer.active_config({"c": 2, "b": 0.25, "a": "x"}, nested) == {"b": 0.25, "a": "x"}
    flat = problems.get_problem("hartmann3").space(0)
    config = {"x2": 0.3, "x0": 0.1, "x1": 0.2}
    assert list(deephyper_peer.active_config(config, flat).items()) == list(config.items())


@pytest.mark.parametrize("name", ["hartmann3", "branin", "counting_ones_4", "mlp_digits", "boosting"])
def test_deephyper_steps_are_budget_units_where_its_stopper_halts_at_the_rungs(name):
    from benchmarks import deephyper_peer, peers

    problem = problems.get_problem(name)
    settings, step = deephyper_peer.placement(problem)
    assert step == 1.0 and settings == deephyper_peer.stopper_settings(problem)  # as before: earlier runs hold
    ladder = peers.rungs(problem)
    halts = deephyper_peer.halting_budgets(settings["min_steps"], problem.eta, settings["min_early_stopping_rate"],
                                           len(ladder))
    assert halts == pytest.approx(ladder) and settings["max_steps"] == ladder[-1]


def test_deephyper_steps_are_min_budget_units_where_budget_units_cannot_place_the_rungs():
    import dataclasses

    from benchmarks import deephyper_peer, peers

    svm = problems.get_problem("svm_digits")  # rungs 40, 120, 360, 1080: no offset power series of 3
    with pytest.raises(deephyper_peer.RungMismatchError):
        deephyper_peer.stopper_settings(svm)
    settings, step = deephyper_peer.placement(svm)
    assert step == 40.0 and settings == {"max_steps": 27, "min_steps": 1.0, "reduction_factor": 3,
                                         "min_early_stopping_rate": 0}
    halts = deephyper_peer.halting_budgets(1.0, 3, 0, 4)
    assert [h * step for h in halts] == pytest.approx(peers.rungs(svm))
    odd = dataclasses.replace(svm, name="odd", max_budget=1000)  # rungs 40, 120, 360, 1000: neither fits
    with pytest.raises(deephyper_peer.RungMismatchError, match="odd"):
        deephyper_peer.placement(odd)


class FakeDeepHyperJob:
    """A DeepHyper job whose stopper halts at ``halts`` (in steps) and stops the job after ``keep`` rungs."""

    def __init__(self, parameters: dict, halts: list[float], keep: int) -> None:
        self.parameters, self.halts, self.keep = parameters, halts, keep
        self.records: list[tuple[float, float]] = []
        self.stopper = self

    def _compute_halting_budget(self) -> float:
        return self.halts[len(self.records)]

    def record(self, step: float, objective: float) -> None:
        self.records.append((step, objective))

    def stopped(self) -> bool:
        return len(self.records) >= self.keep


def test_deephyper_run_function_evaluates_budgets_and_tells_the_stopper_steps():
    import asyncio

    from benchmarks import deephyper_peer, peers
    from benchmarks.engines import Recorder

    svm = problems.get_problem("svm_digits")
    settings, step = deephyper_peer.placement(svm)
    halts = deephyper_peer.halting_budgets(settings["min_steps"], svm.eta, settings["min_early_stopping_rate"], 4)
    recorder = Recorder(svm, 0)
    run = deephyper_peer.run_function(recorder, peers.rungs(svm), 1e9, step, svm.space(0))
    job = FakeDeepHyperJob({"C": 10.0, "gamma": 0.01, "kernel": "rbf", "coef0": 0.0, "degree": 2}, halts, keep=2)
    answer = asyncio.run(run(job))
    assert [r["budget"] for r in recorder.runs] == [40.0, 120.0]  # evaluated at the rungs' budgets
    assert [r["charged"] for r in recorder.runs] == [40.0, 80.0]  # charged the increments
    assert all(r["config"] == {"C": 10.0, "gamma": 0.01, "kernel": "rbf"} for r in recorder.runs)
    assert job.records == [(1.0, -recorder.runs[0]["loss"]), (3.0, -recorder.runs[1]["loss"])]
    assert answer["objective"] == -recorder.runs[1]["loss"]
    counted_in_budget = deephyper_peer.run_function(Recorder(svm, 0), peers.rungs(svm), 1e9)
    with pytest.raises(deephyper_peer.RungMismatchError, match="halts next at step 1.0, the rung is step 40.0"):
        asyncio.run(counted_in_budget(FakeDeepHyperJob({"C": 10.0, "gamma": 0.01, "kernel": "rbf"}, halts, keep=2)))


def test_unknown_problem_names_the_known_ones():
    with pytest.raises(ValueError, match="counting_ones_4"):
        problems.get_problem("nope")


def test_incumbent_follows_the_largest_budget_then_the_lowest_loss(tmp_path):
    problem = problems.branin()
    scores = {1: 10.0, 2: 5.0, 3: 7.0, 4: 1.0}
    scorer = quality.Scorer(problem, tmp_path / "scores.json")
    scorer.cache = {json.dumps({"id": k}): v for k, v in scores.items()}
    runs = [{"config": {"id": 1}, "budget": 1, "loss": 0.1, "charged": 1, "finished": 0.1},
            {"config": {"id": 2}, "budget": 1, "loss": 0.5, "charged": 1, "finished": 0.2},  # worse: stays 1
            {"config": {"id": 3}, "budget": 3, "loss": 9.0, "charged": 3, "finished": 0.3},  # larger budget wins
            {"config": {"id": 4}, "budget": 1, "loss": -5, "charged": 1, "finished": 0.4},  # smaller budget: no
            {"config": {"id": 2}, "budget": 3, "loss": float("nan"), "charged": 3, "finished": 0.5}]  # failed
    budgets, times, values = quality.incumbent_steps(runs, scorer)
    assert budgets.tolist() == [1, 2, 5, 6, 9] and times.tolist() == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert values.tolist() == [10.0, 10.0, 7.0, 7.0, 7.0]
    grid = np.array([0.5, 1, 4.9, 5, 100])
    assert np.isnan(quality.step_values(budgets, values, grid)[0])
    assert quality.step_values(budgets, values, grid)[1:].tolist() == [10.0, 10.0, 7.0, 7.0]


def test_total_budget_is_the_sum_over_brackets():
    problem = problems.branin()  # 1..27, eta 3: bracket s=3 is 27x1 + 9x3 + 3x9 + 1x27
    assert quality.total_budget(problem, 1) == 27 + 27 + 27 + 27
    assert quality.total_budget(problem, 2) == 108 + 12 * 3 + 4 * 9 + 1 * 27  # s=2: the paper's 12 configs


def test_a_missing_reference_environment_is_reported_not_run(monkeypatch, tmp_path):
    monkeypatch.setitem(quality.ENGINES, "hpbandster", str(tmp_path / "nowhere" / "python"))
    assert "hpbandster_env.sh" in quality.engine_available("hpbandster")
    assert quality.engine_available("mpibohb") is None


@pytest.mark.processes  # the harness runs each run in a process of its own
def test_quality_harness_runs_tabulates_plots_and_reuses_runs(tmp_path):
    command = [sys.executable, "-m", "benchmarks.quality", "--problem", "branin", "--engines", "mpibohb",
               "--seeds", "2", "--n_iterations", "4", "--jobs", "2", "--out_dir", str(tmp_path)]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert first.returncode == 0, first.stderr
    for optimizer in ("BOHB", "HyperBand", "RandomSearch"):
        assert f"| mpibohb {optimizer} | 2 |" in first.stdout
    summary = json.loads((tmp_path / "branin.json").read_text())
    assert summary["common_budget"] == quality.total_budget(problems.branin(), 4)  # HB and BOHB spend the least
    assert summary["failures"] == []
    assert (tmp_path / "branin.png").stat().st_size > 10_000
    runs = sorted((tmp_path / "runs" / "branin").glob("mpibohb-*.json"))
    assert len(runs) == 6 and all(path.name.endswith(f"-{quality.fingerprint('mpibohb')}.json") for path in runs)
    record = json.loads(runs[0].read_text())
    assert record["runs"] and {"config", "budget", "loss", "charged", "finished"} <= set(record["runs"][0])
    stamps = [path.stat().st_mtime_ns for path in runs]
    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr
    assert [path.stat().st_mtime_ns for path in runs] == stamps  # reused, not run again
    assert second.stdout == first.stdout and "reusing 6 runs" in second.stderr
    # a later command for one optimiser keeps the others' runs in its table; a group with only some
    # of the seeds (bohb_tpe: seed 0 of 2) is named and left out
    partial = subprocess.run([*command, "--optimizers", "bohb_tpe", "--seeds", "1"],
                             cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert partial.returncode == 0, partial.stderr
    third = subprocess.run([*command, "--optimizers", "rs"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert third.returncode == 0, third.stderr
    for optimizer in ("BOHB", "HyperBand", "RandomSearch"):
        assert f"| mpibohb {optimizer} | 2 |" in third.stdout
    assert "mpibohb BOHB (model tpe): left out, 1 of 2 seeds made" in third.stdout
    assert json.loads((tmp_path / "branin.json").read_text())["left_out"] == [
        "mpibohb BOHB (model tpe): left out, 1 of 2 seeds made"]


def test_quality_harness_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit) as exited:
        quality.main(["--problem", "branin", "--optimizers", "tpe"])
    assert exited.value.code == 2 and "tpe" in capsys.readouterr().err


def _group(mean: float, se: float) -> dict:
    return {"seeds": 10, "final_mean": mean, "final_se": se, "tenth_mean": None, "tenth_se": None,
            "evaluations": 100.0, "wall_mean": 1.0, "wall_se": 0.1}


def test_report_verdicts_use_the_combined_standard_error():
    from benchmarks import report_sections as sections

    assert sections.compare(_group(1.0, 0.3), _group(1.4, 0.4))[2] == "equal within s.e."  # 0.4 <= 0.5
    assert sections.compare(_group(1.0, 0.1), _group(1.4, 0.1))[2] == "better"
    assert sections.compare(_group(1.4, 0.1), _group(1.0, 0.1))[2] == "worse"
    assert sections.compare(_group(float("nan"), 0.1), _group(1.0, 0.1))[2] == "n/a"
    quality_summary = {"p": {"measure": "regret", "groups": {
        "mpibohb BOHB": _group(1.4, 0.1), "hpbandster BOHB": _group(1.0, 0.1),
        "mpibohb HyperBand": _group(2.0, 0.1), "mpibohb RandomSearch": _group(1.4, 0.1)}}}
    rows = sections.quality_target_rows(quality_summary)
    assert "worse on p" in rows[0] and rows[0].endswith("| **no** |")
    assert "better on 1, equal within s.e. on 0, worse on 0" in rows[1]
    assert "better on 0, equal within s.e. on 1, worse on 0" in rows[2]


def test_report_speed_targets_say_plainly_when_they_are_missed():
    from benchmarks import report_sections as sections

    data = {"overhead": {"rows": [{"observations": 10_000, "max_points_in_model": 512, "proposal": 0.001},
                                  {"observations": 10_000, "max_points_in_model": None, "proposal": 0.004}]},
            "hpbandster_reference": {"model": [{"observations": 10_000, "proposal": 0.3}],
                                     "throughput": [{"workers": 1, "runs": 70, "wall": 1.0}]},
            "throughput": {"throughput": [{"ranks": 2, "optimizer": "BOHB", "runs": 1050, "wall": 1.0}]},
            "utilisation": [{"workers": 32, "engine": "mpibohb", "busy": 0.85, "busy_before_last": 0.98},
                            {"workers": 32, "engine": "HpBandSter", "busy": 0.75, "busy_before_last": 0.83}]}
    rows = sections.speed_target_rows(data)
    assert "300x (512 points in the KDE); 75x (every point in the KDE)" in rows[0]
    assert "yes with HpBandSter's model at 512 points; **no** with every point kept" in rows[0]
    assert "15x with 1 worker" in rows[1] and rows[1].endswith("| **no** |")
    assert "K=32: 85.0% vs 75.0%" in rows[2] and rows[2].endswith("| yes |")
    assert "85.0% over the whole run" in rows[3] and rows[3].endswith("| **no** |")
    data["overhead"]["rows"][1]["proposal"] = 0.002
    row = sections.speed_target_rows(data)[0]
    assert ("150x (every point in the KDE) | yes with HpBandSter's model at 512 points and with every point kept |"
            in row)


def test_schedule_bound_of_one_worker_is_the_whole_sleep_without_a_gap():
    from benchmarks.utilisation import hyperband_sleep, schedule_bound

    bound = schedule_bound(1, 8, 0.1)
    assert bound["bound_busy"] == pytest.approx(1.0)
    assert bound["bound_span"] == pytest.approx(hyperband_sleep(8, 0.1)[0])


def test_schedule_bound_by_hand_with_two_brackets_side_by_side():
    from benchmarks.utilisation import hyperband_sleep, schedule_bound

    # 27 workers, 1 s per unit of budget. t=0: bracket 0 runs 27 x 1; t=1: it waits on 9 x 3, so bracket 1
    # starts its 12 x 3 beside it; t=4: 3 x 9 and 4 x 9; t=13: 1 x 27 and 1 x 27; t=40: done. The span is
    # bracket 0's chain 1 + 3 + 9 + 27; the work is 108 + 99 s.
    total, chain = hyperband_sleep(2, 1.0)
    assert (total, chain) == (207, 40)
    bound = schedule_bound(27, 2, 1.0)
    assert bound["bound_span"] == pytest.approx(chain)
    assert bound["bound_busy"] == pytest.approx(total / (27 * chain))


def test_schedule_bound_at_32_workers_is_below_the_target_and_grows_with_iterations():
    from benchmarks.utilisation import hyperband_sleep, schedule_bound

    total, chain = hyperband_sleep(40, 0.1)
    bound = schedule_bound(32, 40, 0.1)
    assert bound["bound_busy"] * 32 * bound["bound_span"] == pytest.approx(total)  # every second of sleep ran
    assert bound["bound_span"] > max(total / 32, chain)
    assert bound["bound_busy"] < 0.9  # why the 90% target at K = 32 is out of reach of any dispatch speed
    assert schedule_bound(32, 80, 0.1)["bound_busy"] > bound["bound_busy"]  # the tail weighs less
    tail = schedule_bound(32, 40, 0.1, fill_tail=True)
    assert tail["bound_busy"] * 32 * tail["bound_span"] == pytest.approx(total)  # the same sleep, in less time
    assert tail["bound_busy"] > 0.9


def _utilisation_row(engine: str, busy: float, **extra: float) -> dict:
    return {"workers": 32, "engine": engine, "evaluations": 690, "ideal": 13.2, "wall": 15.5, "busy": busy,
            "busy_before_last": 0.987, "before_last_share": 0.7, "gap_ms": 6.0, "status": "ok", **extra}


def test_report_shows_the_schedule_bound_and_reads_rows_written_before_it():
    from benchmarks import report_sections as sections

    new = [_utilisation_row("mpibohb", 0.854, bound_busy=0.864, bound_span=15.3),
           _utilisation_row("HpBandSter", 0.784)]
    table = sections.utilisation(new + [{"workers": 64, "engine": "mpibohb", "evaluations": None,
                                         "status": "hung", "bound_busy": 0.5, "bound_span": 9.0}])
    assert table[0].count("|") == table[1].count("|") == table[2].count("|") == table[4].count("|")
    assert "| 85.4% | 86.4% (span 15.3 s) | 98.7%" in table[2]
    assert "| 78.4% | - | 98.7%" in table[3]
    assert "| 50.0% (span 9.0 s) |" in table[4]
    target = sections.utilisation_target_rows(new)[1]
    assert "85.4% over the whole run (the schedule itself allows 86.4%" in target
    assert "98.7% before the last bracket started" in target and target.endswith("| **no** |")

    old = [_utilisation_row("mpibohb", 0.854), _utilisation_row("HpBandSter", 0.784)]
    table = sections.utilisation(old)
    assert "| 85.4% | - | 98.7%" in table[2] and table[2].count("|") == table[0].count("|")
    target = sections.utilisation_target_rows(old)[1]
    assert "85.4% over the whole run; 98.7% before the last bracket started" in target
    assert "schedule" not in target and target.endswith("| **no** |")


def test_targets_are_judged_on_the_sweep_and_quote_the_longer_run_beside_it():
    from benchmarks import report_sections as sections

    sweep = [_utilisation_row("mpibohb", 0.854, n_iterations=40, bound_busy=0.864, bound_span=15.3),
             _utilisation_row("HpBandSter", 0.784, n_iterations=40)]
    longer = [_utilisation_row("mpibohb", 0.941, n_iterations=120, bound_busy=0.951, bound_span=41.7),
              _utilisation_row("HpBandSter", 0.97, n_iterations=120)]  # better than mpibohb: must not count
    first, second = sections.utilisation_target_rows(sweep + longer)
    assert "(40 iterations) | K=32: 85.4% vs 78.4% | yes |" in first
    assert "above 90% at K = 32 (40 iterations) | 85.4% over the whole run" in second
    assert "; 94.1% in a run of 120 iterations (schedule bound 95.1%) |" in second
    assert second.endswith("| **no** |")
    table = sections.utilisation(sweep + longer)
    assert table[4].startswith("| 32 | 120 | mpibohb | 690 |")

    tail = [_utilisation_row("mpibohb fill_tail", 0.923, n_iterations=40, bound_busy=0.938, bound_span=14.1)]
    first_with_tail, second = sections.utilisation_target_rows(sweep + tail + longer)
    assert first_with_tail == first  # judged on the default
    assert "(40 iterations) | with `fill_tail=True`: 92.3% (the schedule itself allows 93.8%" in second
    assert "By default, HpBandSter's rule (a new bracket only when every open one waits): 85.4%" in second
    assert second.endswith("| yes with `fill_tail=True` (opt-in); **no** by default |")
    slow_tail = [dict(tail[0], busy=0.89)]
    assert sections.utilisation_target_rows(sweep + slow_tail)[1].endswith("| **no** |")


@pytest.mark.processes  # a ProcessPoolExecutor, even with --jobs 1
def test_fill_tail_benchmark_tables_and_report_section(tmp_path):
    """benchmarks.fill_tail --quick runs (a few seconds) and the report renders what it wrote."""
    from benchmarks import fill_tail
    from benchmarks import report_sections as sections

    out = tmp_path / "fill_tail.json"
    fill_tail.main(["--quick", "--jobs", "1", "--seeds", "2", "--json", str(out)])
    results = json.loads(out.read_text())
    assert [row["cells"] for row in results["schedules"]] == [4, 4, 4]
    assert all(row["fill_tail"] > row["default"] for row in results["schedules"])  # 1..27 and 1..81 at K = 8, 32
    assert {(row["problem"], row["workers"]) for row in results["quality"]} == {
        (p, k) for p in ("counting_ones_8", "branin") for k in (8, 32)}
    assert all(row["fill_tail_span"] < row["default_span"] for row in results["quality"] if row["workers"] == 32)
    lines = sections.fill_tail(results)
    assert lines[0].startswith("Ladders (min, max, eta): (1, 27, 3), (1, 81, 3); iterations [40]; K [8, 32].")
    assert sum(line.startswith("| = budget | 4 |") for line in lines) == 1
    assert sections.fill_tail(None) == ["not run: `python -m benchmarks.report --only fill_tail`"]


def test_summary_cuts_every_group_at_the_smallest_total_budget(tmp_path):
    problem = problems.branin()
    scorer = quality.Scorer(problem, tmp_path / "scores.json")
    scorer.cache = {json.dumps({"id": k}): float(k) for k in range(10)}

    def record(losses_by_budget: list[tuple[int, float, float]]) -> dict:
        runs = [{"config": {"id": i}, "budget": b, "loss": loss, "charged": b, "finished": 0.01 * (i + 1)}
                for i, (b, loss, _) in enumerate(losses_by_budget)]
        return {"runs": runs, "wall": 1.0}

    groups = {"a x": [record([(1, 1.0, 0), (3, 1.0, 0), (27, 0.5, 0)]),  # totals 31 and 58
                      record([(1, 1.0, 0), (27, 2.0, 0), (27, 1.0, 0), (3, 0.0, 0)])],
              "b y": [record([(27, 0.1, 0), (27, 0.2, 0)])]}  # total 54
    summary = quality.summarise(problem, groups, scorer)
    assert summary["common_budget"] == 31
    a, b = summary["groups"]["a x"], summary["groups"]["b y"]
    # at budget 31: run 1's incumbent is id 2 (largest budget); run 2's is id 1 (27, only one so far)
    assert a["final_mean"] == pytest.approx(1.5) and a["final_se"] == pytest.approx(0.5)
    assert b["final_mean"] == 0.0 and b["final_se"] == 0.0 and b["seeds"] == 1
    assert b["tenth_mean"] is None  # no result before budget 3.1 in group b
    assert a["evaluations"] == 3.5


def test_increments_charge_what_continued_training_adds():
    nan = float("nan")

    def run(config: dict, budget: float, loss: float | None = 0.5) -> dict:
        return {"config": config, "budget": budget, "loss": loss, "charged": budget, "finished": 0.0}

    a, a_reordered, b = {"x": 1, "y": "u"}, {"y": "u", "x": 1}, {"x": 2, "y": "u"}
    runs = [run(a, 1), run(b, 1), run(a_reordered, 3),  # the same configuration, keys in another order: 3 - 1
            run(b, 9, nan), run(b, 27),  # 9 - 1, then 27 - 1: a failed evaluation saves nothing later
            run(a, 9, None), run(a, 27),  # 9 - 3, then 27 - 3: nor does a loss of None
            run(a, 3),  # evaluated again below its largest budget: 3 - 1, the largest budget below 3
            run({"x": 3, "y": "u"}, 9)]  # a new configuration: its whole budget
    assert quality.charges(runs, "increments") == [1, 1, 2, 8, 26, 6, 24, 2, 9]
    assert quality.charges(runs, "full budgets") == [1, 1, 3, 9, 27, 9, 27, 3, 9]
    assert quality.charges([run(a, 9), run(a, 3)], "increments") == [9, 3]  # only earlier, smaller budgets count
    with pytest.raises(ValueError, match="increments"):
        quality.charges(runs, "as run")


def test_increments_are_what_optuna_is_charged_as_it_runs():
    from benchmarks import peers

    problem = problems.counting_ones(4)
    ladder = peers.rungs(problem)  # 9, 27, ..., 729
    runs, trial = [], 0
    for stop in (1, 5, 2, 3, 1):  # each trial climbs some rungs, then the pruner stops it
        previous = 0.0
        for rung in ladder[:stop]:
            runs.append({"config": {"trial": trial}, "budget": rung, "loss": 0.1, "charged": rung - previous})
            previous = rung
        trial += 1
    assert quality.charges(runs, "increments") == [run["charged"] for run in runs]


def test_summary_scores_every_group_under_both_accountings(tmp_path):
    problem = problems.branin()
    scorer = quality.Scorer(problem, tmp_path / "scores.json")
    scorer.cache = {json.dumps({"id": k}): float(k) for k in range(10)}

    def record(evaluations: list[tuple[int, int, float]]) -> dict:
        runs = [{"config": {"id": k}, "budget": b, "loss": loss, "charged": b, "finished": 0.01 * (i + 1)}
                for i, (k, b, loss) in enumerate(evaluations)]
        return {"runs": runs, "wall": 1.0}

    # "a x" promotes configuration 1 from 1 to 9 to 27 (full 38, increments 28); "b y" never repeats one (36)
    groups = {"a x": [record([(1, 1, 1.0), (2, 1, 2.0), (1, 9, 1.0), (1, 27, 1.0)])],
              "b y": [record([(3, 9, 1.0), (4, 27, 1.0)])]}
    summary = quality.summarise(problem, groups, scorer)
    full, increments = (summary["accountings"][name] for name in quality.ACCOUNTINGS)
    assert full["common_budget"] == 36 and increments["common_budget"] == 28
    assert summary["common_budget"] == 36 and summary["budget_grid"] == full["budget_grid"]  # the top level: full
    # at 28 charged in increments "a x" has reached budget 27 (incumbent 1), "b y" only 9 (incumbent 3)
    assert increments["groups"]["a x"]["final_mean"] == 1.0 and increments["groups"]["b y"]["final_mean"] == 3.0
    assert full["groups"]["b y"]["final_mean"] == 4.0 and summary["groups"]["b y"]["final_mean"] == 4.0
    view = quality.accounting_view(summary, "increments")
    assert view["common_budget"] == 28 and view["groups"]["b y"]["final_mean"] == 3.0
    assert view["groups"]["b y"]["wall_mean"] == 1.0 and view["time_grid"] == summary["time_grid"]
    text = quality.table(summary)
    assert ("full budgets: regret at budget 36 | at 4 | increments: regret at budget 28 | at 3"
            " | budget per run (full budgets / increments) |") in text
    assert "| a x | 1 | 1 ± 0 | 1 ± 0 | 1 ± 0 | 1 ± 0 | 38 / 28 | 4 |" in text
    assert "| b y | 1 | 4 ± 0 | - | 3 ± 0 | - | 36 / 36 | 2 |" in text  # "-": no result yet at a tenth of the budget
    del summary["accountings"]  # a summary written before there were two accountings
    assert quality.accounting_view(summary, "increments") is None
    assert "| engine / optimiser | seeds | regret at budget 36 | at 4 |" in quality.table(summary)


def test_report_compares_with_the_peers_under_both_accountings():
    from benchmarks import report_sections as sections

    def summary(full: dict, increments: dict) -> dict:
        groups = {label: _group(*values) for label, values in full.items()}
        accountings = {name: {"common_budget": budget, "budget_grid": [], "groups": {
            label: _group(*values) for label, values in figures.items()}}
            for name, budget, figures in (("full budgets", 100, full), ("increments", 70, increments))}
        return {"measure": "regret", "groups": groups, "accountings": accountings}

    optuna, dehb = "optuna TPE + Hyperband pruner", "dehb DEHB"
    quality_summaries = {
        "p": summary({"mpibohb BOHB": (1.0, 0.1), optuna: (2.0, 0.1), dehb: (1.1, 0.1)},
                     {"mpibohb BOHB": (1.0, 0.1), optuna: (0.5, 0.1), dehb: (1.1, 0.1)}),
        "q": summary({"mpibohb BOHB": (1.0, 0.1), optuna: (2.0, 0.1)},
                     {"mpibohb BOHB": (1.0, 0.1), optuna: (0.5, 0.1)}),
        "old": {"measure": "regret", "groups": {"mpibohb BOHB": _group(1.0, 0.1), optuna: _group(0.5, 0.1)}}}
    lines = sections.peer_comparison(quality_summaries)
    assert lines[0] == ("| problem | measure | accounting | budget | mpibohb BOHB | Optuna TPE + Hyperband pruner"
                        " | mpibohb BOHB vs Optuna TPE + Hyperband pruner | DEHB | mpibohb BOHB vs DEHB |")
    assert "| p | regret | full budgets | 100 | 1 ± 0.1 | 2 ± 0.1 | better (-1 ± 0.14) | 1.1 ± 0.1 | equal" in lines[2]
    assert "| p | regret | increments | 70 | 1 ± 0.1 | 0.5 ± 0.1 | worse (+0.5 ± 0.14) |" in lines[3]
    assert lines[5].endswith("| not run | - |")
    assert any(line.startswith("Not shown: old") for line in lines)
    assert ("| full budgets | better on 2, equal within s.e. on 0, worse on 0 of 2 |"
            " better on 0, equal within s.e. on 1, worse on 0 of 1 |") in lines
    assert "| increments | better on 0, equal within s.e. on 0, worse on 2 (p, q) of 2 |" in "\n".join(lines)
    assert sections.tpe_target_row(quality_summaries) == []  # no tpe runs
    tpe = "mpibohb BOHB (model tpe)"
    for name in ("p", "q"):
        views = [quality_summaries[name]] + list(quality_summaries[name]["accountings"].values())
        for view in views:
            view["groups"][tpe] = view["groups"]["mpibohb BOHB"]
    row = sections.tpe_target_row(quality_summaries)[0]
    assert "Optuna TPE + Hyperband pruner: worse in 2 of 4 cells (p (increments), q (increments)), run on 2 of 2" in row
    assert "DEHB: worse in 0 of 2 cells, run on 1 of 2 problems" in row and row.endswith("| **no** |")


@pytest.mark.processes
def test_run_in_group_kills_the_whole_group_on_timeout(tmp_path):
    from benchmarks.processes import run_in_group

    marker = tmp_path / "grandchild.pid"
    finished = run_in_group(["bash", "-c", f"sleep 60 & echo $! > {marker}; wait"], timeout=1.0)
    assert finished.timed_out and finished.returncode is None
    grandchild = int(marker.read_text())
    for _ in range(50):  # the kill is asynchronous; the grandchild is reaped by init
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the grandchild outlived its process group")
    done = run_in_group([sys.executable, "-c", "import sys; print('out'); sys.exit('bad input')"], timeout=60)
    assert done.returncode == 1 and done.stdout == "out\n" and done.last_error_line() == "bad input"


# --- every benchmark runs as a module from the repository root, and starts its children as modules ---

BENCHMARK_MODULES = sorted(path.stem for path in (ROOT / "benchmarks").glob("*.py")
                           if 'if __name__ == "__main__":' in path.read_text())


def _run_module(module: str, *arguments: str, timeout: float) -> tuple[int | None, str, str]:
    """``python -m benchmarks.<module> ...`` from the repository root, without PYTHONPATH (the
    README's command), in its own process group, killed with the group on ``timeout``."""
    from benchmarks.processes import run_in_group

    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    finished = run_in_group([sys.executable, "-m", f"benchmarks.{module}", *arguments], timeout, cwd=ROOT, env=env)
    return finished.returncode, finished.stdout, finished.stderr


def test_no_benchmark_edits_sys_path():
    import ast

    offenders = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                    and node.value.id == "sys"):
                offenders.append(f"{path.name}:{node.lineno}")
    assert len(BENCHMARK_MODULES) >= 11 and offenders == []


@pytest.mark.processes
@pytest.mark.parametrize("module", BENCHMARK_MODULES)
def test_every_benchmark_script_runs_as_a_module(module):
    returncode, stdout, stderr = _run_module(module, "--help", timeout=120)
    assert returncode == 0, stderr
    assert stdout.startswith("usage:")


@pytest.mark.mpiexec  # through the benchmark's own mpiexec
def test_watch_latency_measures_the_launcher_and_both_switch_intervals():
    returncode, stdout, stderr = _run_module("watch_latency", "--launcher-trials", "1", "--trials", "2", timeout=120)
    assert returncode == 0, stderr[-3000:]
    lines = stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("launcher: rank 0 lived ") and "1 runs of mpiexec -n 2" in lines[0]
    assert "the watch's 0.05 ms" in lines[1] and "Python's default 5 ms" in lines[2]
    assert all(" ms after the death (median; max " in line for line in lines[1:])


@pytest.mark.mpiexec  # through the benchmark's own mpiexec
def test_throughput_runs_as_a_module_and_every_rank_reports(tmp_path):
    """Its ranks run ``-m benchmarks.throughput --child`` under mpiexec; the idle probe needs the
    CPU time of every rank, so the worker ranks must come back from ``run`` to write it."""
    out = tmp_path / "throughput.json"
    returncode, stdout, stderr = _run_module("throughput", "--ranks", "3", "--n_iterations", "1", "--json", str(out),
                                             timeout=240)
    assert returncode == 0, stderr[-3000:]
    report = json.loads(out.read_text())
    assert [(row["ranks"], row["optimizer"]) for row in report["throughput"]] == [(3, "RandomSearch"), (3, "BOHB")]
    assert all(row["runs"] > 0 for row in report["throughput"])
    assert [len(row["idle"]) for row in report["idle"]] == [1]  # rank 2 waited while rank 1 slept


@pytest.mark.mpiexec  # through the benchmark's own mpiexec
def test_utilisation_starts_its_engines_as_modules(tmp_path):
    """mpibohb's runs are ``mpiexec ... -m benchmarks.utilisation --child``; HpBandSter's the same
    module in its virtualenv, or a row that says how to make that virtualenv."""
    from benchmarks.utilisation import HPBANDSTER_PYTHON

    out = tmp_path / "utilisation.json"
    returncode, stdout, stderr = _run_module("utilisation", "--workers", "1", "--n_iterations", "1", "--scale", "0.01",
                                             "--long_iterations", "0", "--timeout", "90", "--json", str(out),
                                             timeout=300)
    assert returncode == 0, stderr[-3000:]
    rows = {row["engine"]: row for row in json.loads(out.read_text())}
    for engine in ("mpibohb", "mpibohb fill_tail"):
        assert rows[engine]["status"] == "ok" and rows[engine]["evaluations"] == 40  # bracket 0: 27 + 9 + 3 + 1
    if HPBANDSTER_PYTHON.exists():
        assert rows["HpBandSter"]["status"] == "ok" and rows["HpBandSter"]["evaluations"] > 0
    else:
        assert "hpbandster_env.sh" in rows["HpBandSter"]["status"]


@pytest.mark.processes
def test_memory_starts_each_row_as_a_module(tmp_path):
    from benchmarks.memory import HPBANDSTER_PYTHON

    out = tmp_path / "memory.json"
    returncode, stdout, stderr = _run_module("memory", "--sizes", "100", "--hpbandster-rs-max", "0",
                                             "--hpbandster-bohb-max", "0", "--json", str(out), timeout=300)
    assert returncode == 0, stderr[-3000:]
    rows = json.loads(out.read_text())
    status = {row["what"].split(":")[0]: row["status"] for row in rows}
    assert [row["status"] for row in rows if row["engine"] == "mpibohb"] == ["ok"] * 4, status
    kde = [row for row in rows if row["engine"] == "HpBandSter" and "config generator" in row["what"]]
    assert kde[0]["status"] == ("ok" if HPBANDSTER_PYTHON.exists() else "missing venv"), status


@pytest.mark.slow
def test_heterogeneous_benchmark_measures_every_cell_and_its_bound(tmp_path):
    """benchmarks.heterogeneous --quick --seeds 2 through mpibohb.simulate; the report renders the cells.
    K = 8 and 32, not --quick's 32 and 128: keep_busy at K = 128 took most of 90 s of the suite."""
    from benchmarks import heterogeneous
    from benchmarks import report_sections as sections

    out = tmp_path / "heterogeneous.json"
    heterogeneous.main(["--quick", "--seeds", "2", "--workers", "8", "32", "--json", str(out)])
    written = json.loads(out.read_text())
    rows = written["rows"]
    assert sorted((r["workers"], r["sigma"], r["schedule"], r["seed"]) for r in rows) == sorted(
        (k, s, schedule, seed) for k in (8, 32) for s in (0.0, 1.0) for schedule in heterogeneous.SCHEDULES
        for seed in (0, 1))
    for row in rows:
        assert 0 < row["busy"] <= row["bound"] + 1e-9 <= 1 + 1e-9, row
        assert row["span"] >= max(row["work"] / row["workers"], row["chain"]) - 1e-6, row
    cells = {(r["workers"], r["sigma"], r["seed"]): [x for x in rows if (x["workers"], x["sigma"], x["seed"])
                                                    == (r["workers"], r["sigma"], r["seed"])] for r in rows}
    # equal work per schedule, but keep_busy's extra jobs
    assert all(len({r["evaluations"] for r in same if r["schedule"] != "keep_busy"}) == 1 for same in cells.values())
    for same in cells.values():
        [plain] = [r for r in same if r["schedule"] == "asynchronous"]
        [busy] = [r for r in same if r["schedule"] == "keep_busy"]
        assert busy["evaluations"] >= plain["evaluations"] and plain["extra"] == 0
        assert busy["extra"] > 0 if plain["sigma"] == 1.0 else busy["extra"] >= 0
    one_seed = {(r["workers"], r["sigma"]): r["chain"] for r in rows if r["seed"] == 0 and r["sigma"] == 1.0}
    other = {(r["workers"], r["sigma"]): r["chain"] for r in rows if r["seed"] == 1 and r["sigma"] == 1.0}
    assert one_seed != other  # a seed brings its own configurations and run-time factors
    assert written["cells"] == heterogeneous.aggregate(rows)
    assert all(cell["seeds"] == 2 and cell["busy_se"] is not None for cell in written["cells"])
    lines = sections.heterogeneous(written, None)
    async_lines = [line for line in lines if line.startswith("| 32 | 1 | asynchronous | 2 |")]
    assert len(async_lines) == 1 and "% ± " in async_lines[0]
    assert lines[-1].startswith("Real mpiexec run: not run")


def test_heterogeneous_benchmark_runs_one_bracket(tmp_path, capsys):
    """--brackets 1: iterations sized by the most aggressive bracket's work (405 budget units), and
    every iteration runs that bracket: 81 + 27 + 9 + 3 + 1 evaluations."""
    from benchmarks import heterogeneous

    out = tmp_path / "one.json"
    heterogeneous.main(["--quick", "--workers", "32", "--sigmas", "0", "--schedules", "asynchronous",
                        "--brackets", "1", "--json", str(out)])
    assert "HyperBand (brackets=1)" in capsys.readouterr().out
    (row,) = json.loads(out.read_text())["rows"]
    assert row["n_iterations"] == math.ceil(5 * 81 * 32 / 405) == 32
    assert row["evaluations"] == 32 * 121


def test_heterogeneous_cells_average_their_seeds():
    """aggregate: mean ± standard error of busy and busy / bound over seeds, means of the rest; rows of an
    older single-seed JSON (no seed key) are cells of one seed, rendered without a standard error."""
    from benchmarks import heterogeneous
    from benchmarks import report_sections as sections

    base = {"workers": 32, "sigma": 0.5, "schedule": "asynchronous", "n_iterations": 121, "evaluations": 5065,
            "failed": 0, "work": 3200.0, "chain": 100.0, "span": 110.0, "all_busy_until": 0.9, "wall": 1.0, "cpu": 1.0}
    rows = [dict(base, seed=0, busy=0.90, bound=1.0), dict(base, seed=1, busy=0.94, bound=1.0),
            dict(base, seed=2, busy=0.40, bound=0.5)]
    [cell] = heterogeneous.aggregate(rows)
    assert cell["seeds"] == 3 and cell["busy"] == pytest.approx(2.24 / 3)
    assert cell["busy_se"] == pytest.approx(statistics.stdev([0.90, 0.94, 0.40]) / math.sqrt(3))
    assert cell["ratio"] == pytest.approx((0.90 + 0.94 + 0.80) / 3)
    assert cell["ratio_se"] == pytest.approx(statistics.stdev([0.90, 0.94, 0.80]) / math.sqrt(3))
    assert heterogeneous.line(cell).startswith("| 32 | 0.5 | asynchronous | 3 | 121 | 5,065 | 100 | 0% | 100 | 110"
                                               " | 74.7% ± ")  # rows without "extra" (before keep_busy): none
    old = {"rows": [dict(base, busy=0.9, bound=1.0)]}
    assert "| 32 | 0.5 | asynchronous | 1 | 121 | 5,065 | 100 | 0% | 100 | 110 | 90.0% | 100.0% | 90.0% |" in \
        sections.heterogeneous(old, None)[2]
    assert "| 0 of 1 cells: 90.0% (each cell's bound" in sections.heterogeneous_target_rows(old)[0]
    assert "| 0 of 1 cells: 74.7% (means over 3 seeds; each" in sections.heterogeneous_target_rows({"rows": rows})[0]


@pytest.mark.mpiexec
def test_heterogeneous_mpi_benchmark_measures_a_real_run(tmp_path):
    out = tmp_path / "real.json"
    returncode, _, stderr = _run_module("heterogeneous_mpi", "--ranks", "3", "--scale", "0.001", "--n_iterations", "1",
                                        "--json", str(out), timeout=240)
    assert returncode == 0, stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [row["schedule"] for row in rows] == ["synchronous", "asynchronous", "keep_busy"]
    assert all(row["evaluations"] >= 121 and row["failed"] == 0 and 0 < row["busy"] <= 1 for row in rows)
    assert all((row["evaluations"] == 121) == (row["extra"] == 0) for row in rows)  # 121: the run's own


@pytest.mark.slow
def test_asynchronous_quality_runs_and_tabulates(tmp_path, capsys):
    """benchmarks.asynchronous_quality --quick: both schedules per problem, K and seed, one table row per cell."""
    from benchmarks import asynchronous_quality
    from benchmarks import report_sections as sections

    out = tmp_path / "asynchronous_quality.json"
    asynchronous_quality.main(["--quick", "--json", str(out)])
    data = json.loads(out.read_text())
    settings = data["settings"]
    assert (settings["problems"], settings["seeds"], settings["workers"]) == (["branin"], 2, [1, 8])
    assert settings["models"] == ["hpbandster"] and settings["time_iterations"] == 2
    cells = {(p, k) for p in settings["problems"] for k in settings["workers"]}
    assert {(row["problem"], row["workers"]) for row in data["rows"]} == cells and len(data["rows"]) == len(cells)
    runs = data["runs"]
    for length in ("own", "long", "fitted"):
        assert sum(run["length"] == length for run in runs) == len(cells) * 2 * settings["seeds"], length
    grid = asynchronous_quality.iteration_grid(8, 16)
    for row in data["rows"]:
        assert row["model"] == "hpbandster" and row["same_total"] and row["same_evaluations"], row
        for criterion in ("budget", "time", "cut"):
            figures = row[criterion]
            assert figures["verdict"] in ("better", "equal within s.e.", "worse")
            assert all(math.isfinite(figures[key]) and figures[key] >= 0
                       for key in ("synchronous", "asynchronous", "synchronous_se", "asynchronous_se", "combined_se"))
            if row["workers"] == 1:  # one worker never waits: the two schedules are the same schedule
                assert figures["identical"] and figures["difference"] == 0, (criterion, figures)
        time_figures = row["time"]
        assert time_figures["synchronous_not_fitting"] == 0  # its own run fits T by definition of T
        for name in asynchronous_quality.SCHEDULES:
            low, high = time_figures[f"{name}_iterations_range"]
            assert low in grid and high in grid and (row["workers"] > 1 or low == high == 8)
        # a long run read at T and its fitted run both finished at most K x T of work by T
        for key in ("time", "cut"):
            for name in asynchronous_quality.SCHEDULES:
                assert 0 < row[key][f"{name}_budget_at_T"]
        assert row["cut"]["long_iterations"] == 16
    for run in runs:
        assert run["evaluations"] > 0 and run["failed"] == 0 and run["span"] > 0
        if run["workers"] == 1:
            assert run["span"] == pytest.approx(run["work"])  # one worker: no idle time, no overlap
    moments = {(run["problem"], run["workers"], run["seed"]): run["span"]
               for run in runs if run["length"] == "own" and run["schedule"] == "synchronous"}
    for run in runs:
        if run["length"] == "fitted":
            assert run["span"] <= moments[run["problem"], run["workers"], run["seed"]] * (1 + 1e-12) \
                or run["n_iterations"] == 8 and run["schedule"] == "asynchronous"
    stdout = capsys.readouterr().out
    for problem, k in cells:
        lines = [line for line in stdout.splitlines() if line.startswith(f"| {problem} | hpbandster | {k} |")]
        assert len(lines) == 3  # (a), (b) and (c)
    both = asynchronous_quality.combine([data, data])  # as for one run per model
    assert both["settings"]["models"] == ["hpbandster"] * 2 and len(both["rows"]) == 2 * len(data["rows"])
    rendered = sections.asynchronous_quality(data)
    assert sum(line.startswith("| branin | hpbandster | 8 |") for line in rendered) == 3
    assert f"`{settings['command']}`, measured on {settings['date']}" in rendered[0]
    budget_row, time_row = sections.asynchronous_quality_target_rows(data)
    not_worse = sum(row["budget"]["verdict"] != "worse" for row in data["rows"])
    assert f"| {not_worse} of {len(data['rows'])} cells (model hpbandster: {not_worse} of" in budget_row
    better = sum(row["time"]["verdict"] == "better" for row in data["rows"] if row["workers"] > 1)
    assert f"better in {better} of 1 cells" in time_row and time_row.endswith("yes |" if better else "**no** |")
    assert any(line.startswith("- branin, model hpbandster, K = 1: at equal simulated wall time not better: with one"
                               " worker") for line in rendered)


def test_asynchronous_quality_fitted_run_finds_the_boundary_with_few_runs():
    """The fitted run: the most iterations of the grid whose span is within T, by bisection over the grid."""
    from benchmarks.asynchronous_quality import fitted_run, iteration_grid

    grid = iteration_grid(10, 20)
    assert grid == [10, 13, 15, 20] and iteration_grid(32, 64) == [32, 40, 48, 64]

    def make(spans: dict[int, float]):
        asked = []

        def run_of(n: int) -> dict:
            asked.append(n)
            return {"n_iterations": n, "span": spans[n]}

        known = {n: run_of(n) for n in (grid[0], grid[-1])}
        asked.clear()
        return run_of, known, asked

    for spans, moment, chosen, tried in [
            ({10: 5.0, 13: 6.0, 15: 7.0, 20: 9.0}, 7.0, 15, [13, 15]),   # 15 ends at T exactly: it fits
            ({10: 5.0, 13: 6.0, 15: 7.5, 20: 9.0}, 7.0, 13, [13, 15]),
            ({10: 5.0, 13: 8.0, 15: 9.0, 20: 9.0}, 7.0, 10, [13]),
            ({10: 5.0, 13: 8.0, 15: 9.0, 20: 6.0}, 7.0, 20, []),          # the long run fits: nothing to search
            ({10: 8.0, 13: 8.0, 15: 9.0, 20: 9.0}, 7.0, 10, [])]:         # not even N fits: N, read at T
        run_of, known, asked = make(spans)
        run = fitted_run(run_of, grid, known, moment)
        assert run["n_iterations"] == chosen and run["tried"] == tried and sorted(asked) == tried


def test_continuation_benchmark_pairs_each_seed_and_the_report_renders_it():
    from benchmarks import continuation
    from benchmarks import report_sections as sections

    runs = [{"seed": 1, "from_scratch": False, "evaluations": 40, "epochs": 81, "cpu": 4.0, "wall": 10.0},
            {"seed": 1, "from_scratch": True, "evaluations": 40, "epochs": 108, "cpu": 5.0, "wall": 12.5},
            {"seed": 2, "from_scratch": True, "evaluations": 41, "epochs": 100, "cpu": 8.0, "wall": 20.0},
            {"seed": 2, "from_scratch": False, "evaluations": 41, "epochs": 80, "cpu": 6.0, "wall": 15.0}]
    rows = continuation.summarize(runs)
    assert [row["seed"] for row in rows] == [1, 2]
    assert rows[0]["ratio_epochs"] == 0.75 and rows[0]["ratio_cpu"] == 0.8 and rows[0]["ratio_wall"] == 0.8
    assert rows[1]["epochs"] == [80, 100] and rows[1]["ratio_cpu"] == 0.75
    lines = sections.continuation({"n_iterations": 4, "rows": rows})
    assert "| 1 | 40 | 81 / 108 | 4.0 / 5.0 | 10.0 / 12.5 | 0.750 | 0.800 | 0.800 |" in lines
    assert lines[-1] == "| mean | | | | | 0.775 | 0.775 | 0.775 |"
    assert sections.continuation(None)[0].startswith("Not run")


@pytest.mark.parametrize("model", ["hpbandster", "tpe"])
def test_overhead_measures_both_models_on_a_fitted_model(model):
    """Every observation is in one of the densities (the tpe model adds its prior component to each)."""
    from benchmarks.overhead import measure

    row = measure(60, 512, proposals=3, fits=2, seed=0, model_name=model)
    assert row["good"] + row["bad"] >= 60 and row["proposal"] > 0 and row["refit"] > 0


def test_overhead_times_tpe_proposals_with_a_constant_number_running():
    from benchmarks import overhead

    sampler, _ = overhead.fitted_sampler(60, 512, 0, "tpe")
    for config in overhead.benchmark_space(1).sample_configuration(5):
        sampler.running.add(config.get_array()[sampler.space.model_indices], overhead.BUDGET)
    propose = overhead.timed_proposal(sampler, np.random.default_rng(0))
    for _ in range(3):
        propose()
    assert len(sampler.running) == 5  # each timed proposal's configuration came back
    assert overhead.measure_running(60, 5, proposals=2, seed=0) > 0


def test_master_scale_prints_each_optimizers_cost_per_stretch_of_evaluations(capsys):
    from benchmarks import master_scale

    master_scale.main(["--workers", "16", "--evaluations", "200", "--every", "50"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("16 simulated workers, asynchronous"), lines
    assert [line.split(":")[0] for line in lines[1:]] == list(master_scale.OPTIMIZERS), lines
    for line in lines[1:]:
        evaluations = int(re.search(r": ([\d,]+) evaluations", line).group(1).replace(",", ""))
        stretches = line.split("per stretch: ")[1].split(" (")[0].split(", ")
        assert evaluations >= 200 and len(stretches) == evaluations // 50, line


def test_master_scale_refuses_a_count_below_one():
    from benchmarks import master_scale

    with pytest.raises(SystemExit):
        master_scale.main(["--every", "0"])


def test_the_report_runs_every_engine_and_optimiser_that_quality_knows():
    # one command renders every quality table: a new engine or optimiser must reach the report too
    from benchmarks import quality, report

    args = report.parse_arguments([])
    command = report.parts(args, args.results / "report")["quality"]
    engines = command[command.index("--engines") + 1].split(",")
    optimizers = command[command.index("--optimizers") + 1].split(",")
    assert sorted(engines) == sorted(quality.ENGINES) and "deephyper" in engines
    # every optimiser quality can name, but the peers' own (each peer runs its one optimiser)
    assert sorted(optimizers) == sorted(set(quality.OPTIMIZER_NAMES) - set(quality.PEER_OPTIMIZER.values()))


@pytest.mark.slow  # a few seconds: out of the fast lane
def test_the_ablation_runs_variants_on_simulated_workers_where_the_constant_liar_matters(tmp_path, capsys):
    from benchmarks import ablation

    def scores(workers: int) -> dict[str, list[float]]:
        out = tmp_path / f"K{workers}"
        ablation.main(["--problem", "branin", "--variants", "tpe", "tpe, no constant liar", "--seeds", "1",
                       "--workers", str(workers), "--out_dir", str(out)])
        runs = {path.name.split("-seed")[0]: json.loads(path.read_text()) for path in (out / "branin").glob("tpe*")}
        assert len(runs) == 2 and all(("-K4-s1" in name) == (workers == 4) for name in runs)
        return {name.split("-K")[0]: run["scores"] for name, run in runs.items()}

    serial = scores(1)
    assert "serially" in capsys.readouterr().out
    assert len(set(map(tuple, serial.values()))) == 1  # nothing runs at a proposal: the same run
    parallel = scores(4)
    assert "on 4 simulated workers (sigma 1)" in capsys.readouterr().out
    assert len(set(map(tuple, parallel.values()))) == 2
    with pytest.raises(SystemExit):
        ablation.main(["--workers", "4", "--peers", "optuna"])


@pytest.mark.slow  # a few seconds: out of the fast lane
def test_the_ablation_runs_one_bracket_in_either_schedule(tmp_path, capsys):
    """The "one bracket" rows run BOHB(brackets=1): it spends the most aggressive bracket's budget,
    27 x 4 per iteration on branin (four rungs), where Hyperband's brackets spend 3,384 in 32 iterations."""
    from benchmarks import ablation

    ablation.main(["--problem", "branin", "--variants", "tpe", "tpe, one bracket", "--seeds", "1",
                   "--workers", "4", "--asynchronous", "--out_dir", str(tmp_path)])
    assert "on 4 simulated workers (sigma 1, asynchronous)" in capsys.readouterr().out
    spent = {path.name.startswith("tpe-one-bracket-"): json.loads(path.read_text())["budgets"][-1]
             for path in (tmp_path / "branin").glob("tpe*-K4-s1-async-seed0-*.json")}
    assert spent == {True: 32 * 27 * 4, False: 3384}
    ablation.main(["--problem", "branin", "--variants", "tpe, one bracket", "--seeds", "1", "--workers", "4",
                   "--out_dir", str(tmp_path)])  # synchronous: its own files, another order of results
    runs = {"-async-" in path.name: json.loads(path.read_text())["budgets"]  # the order of results
            for path in (tmp_path / "branin").glob("tpe-one-bracket-*-K4-s1-*seed0-*.json")}
    assert len(runs) == 2 and runs[True] != runs[False]
    with pytest.raises(SystemExit):
        ablation.main(["--variants", "tpe", "--asynchronous"])  # one worker: nothing asynchronous


def test_the_report_does_not_overwrite_sections_written_by_hand(tmp_path, capsys):
    from benchmarks import report

    output = tmp_path / "BENCHMARKS.md"
    made = "# Benchmarks\n\n## Quality\n\ntable\n"
    assert report.write_document(output, made) == output and output.read_text().startswith(made)
    assert report.write_document(output, made.replace("table", "table 2")) == output  # as the report left it
    output.write_text(output.read_text().replace("table 2", "table 2\n\nA sentence written by hand."))
    kept = output.read_text()
    beside = report.write_document(output, made.replace("table", "new table"))
    assert beside == tmp_path / "BENCHMARKS.report.md" and "new table" in beside.read_text()
    assert output.read_text() == kept  # text added inside a section the report makes is not lost
    assert "text that the report did not write" in capsys.readouterr().err
    output.write_text(made + "\n#### Measured by hand\n\nfigures\n")  # no stamp, and a section of its own
    kept = output.read_text()
    assert report.write_document(output, made) == beside and output.read_text() == kept
    assert "1 sections that the report does not make (#### Measured by hand)" in capsys.readouterr().err


def test_the_shifting_optimum_ranks_small_budgets_the_other_way_round():
    problem = problems.get_problem("shifting_optimum")
    near_start, near_end = {"x0": 0.7, "x1": 0.7}, {"x0": 0.3, "x1": 0.3}
    quiet = np.random.default_rng(0)
    assert problem.evaluate(near_start, 1, quiet) < problem.evaluate(near_end, 1, quiet)
    assert problem.evaluate(near_end, 27, quiet) == problem.score(near_end) < 1e-12 < 0.3 < problem.score(near_start)
