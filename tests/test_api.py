"""The user's API: BOHB/HyperBand/RandomSearch.run with workers, the Result, and bad input."""

from __future__ import annotations

import dataclasses
import decimal
import importlib
import logging
import math
import os
import pickle
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import ConfigSpace as CS
import numpy as np
import pytest

import mpibohb
from mpibohb import BOHB, HyperBand, RandomSearch, Result, Run, Worker
from mpibohb.journal import RunDirectoryError
from mpibohb.summary import summarize_logs


def space() -> CS.ConfigurationSpace:
    cs = CS.ConfigurationSpace(seed=1)
    cs.add([CS.UniformFloatHyperparameter("x", 0.0, 1.0), CS.UniformIntegerHyperparameter("n", 1, 5)])
    return cs


def toy_loss(config: dict, budget: float) -> float:
    return (config["x"] - 0.4) ** 2 + 0.01 * config["n"] + 1.0 / budget


class KeywordWorker(Worker):
    """mpibohb's short signature."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[tuple[dict, float]] = []

    def compute(self, config, budget, **kwargs):
        self.calls.append((config, budget))
        return {"loss": toy_loss(config, budget), "info": {"budget_seen": budget, "kwargs": sorted(kwargs)}}


class HpBandSterWorker(Worker):
    """HpBandSter's full signature."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple] = []

    def compute(self, config_id, config, budget, working_directory):
        self.seen.append((config_id, budget, working_directory))
        return {"loss": toy_loss(config, budget), "info": list(config_id)}


def small_bohb(**kwargs: Any) -> BOHB:
    arguments = dict(configspace=space(), min_budget=1, max_budget=9, eta=3, seed=0)
    arguments.update(kwargs)
    return BOHB(**arguments)


def test_public_names() -> None:
    """Every name in ``__all__`` resolves (they are imported on first use) to its module's object."""
    import mpibohb

    assert set(mpibohb.__all__) == set(mpibohb._HOMES)
    for name in mpibohb.__all__:
        module = importlib.import_module(mpibohb._HOMES[name])
        assert getattr(mpibohb, name) is getattr(module, name)
    assert len(dir(mpibohb)) == len(set(dir(mpibohb))) and set(mpibohb.__all__) <= set(dir(mpibohb))
    assert mpibohb.ask_tell.Optimizer is importlib.import_module("mpibohb.ask_tell").Optimizer
    with pytest.raises(AttributeError, match="no attribute 'BOHBB'"):
        mpibohb.BOHBB  # noqa: B018


@pytest.mark.processes  # what a new interpreter imports
def test_command_line_does_not_import_configspace() -> None:
    """``python -m mpibohb status|report|--help`` starts without ConfigSpace and scipy (about 1 s)."""
    code = ("import sys, mpibohb.cli, mpibohb.__main__; "
            "print(sorted(m for m in ('ConfigSpace', 'scipy', 'mpi4py') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_run_with_keyword_worker() -> None:
    worker = KeywordWorker()
    result = small_bohb().run(n_iterations=3, worker=worker)
    assert isinstance(result, Result)
    runs = result.get_all_runs()
    # brackets (9,3,1)@(1,3,9), (5,1)@(3,9), (3,)@(9)
    assert len(runs) == 13 + 6 + 3 == len(worker.calls)
    assert all(run.loss is not None and run.error_logs is None for run in runs)
    first = runs[0]
    assert first.info["kwargs"] == ["config_id", "working_directory"]
    assert first.info["budget_seen"] == first.budget
    for run in runs:
        config = result.get_id2config_mapping()[run.config_id]["config"]
        assert run.loss == pytest.approx(toy_loss(config, run.budget))


def test_run_with_hpbandster_signature(tmp_path: os.PathLike) -> None:
    worker = HpBandSterWorker(run_id="x", nameserver="127.0.0.1", nameserver_port=9090, host="localhost")
    result = HyperBand(configspace=space(), min_budget=1, max_budget=9, eta=3, run_id="x",
                       nameserver="127.0.0.1", seed=2, run_dir=tmp_path).run(n_iterations=1, worker=worker)
    assert len(worker.seen) == 13
    assert [tuple(run.info) for run in result.get_all_runs()] == [seen[0] for seen in worker.seen]
    assert {seen[2] for seen in worker.seen} == {os.path.abspath(tmp_path)}
    assert [seen[1] for seen in worker.seen] == [run.budget for run in result.get_all_runs()]


def test_run_with_a_plain_function_returning_a_float() -> None:
    result = small_bohb().run(n_iterations=2, worker=toy_loss)
    runs = result.get_all_runs()
    assert len(runs) == 13 + 6
    assert all(isinstance(run.loss, float) for run in runs)
    result = small_bohb().run(toy_loss)  # the worker alone, positionally: one iteration
    assert len(result.get_all_runs()) == 13



def test_run_with_the_worker_first_and_n_iterations_by_keyword() -> None:
    result = small_bohb().run(KeywordWorker(), n_iterations=2)
    assert len(result.get_all_runs()) == 13 + 6


def test_hpbandsters_positional_min_n_workers_is_named() -> None:
    with pytest.raises(TypeError, match=r"two counts, 2 and 1: HpBandSter's second positional argument, min_n_workers"):
        small_bohb().run(2, 1, worker=toy_loss)
    with pytest.raises(TypeError, match="n_iterations twice"):
        small_bohb().run(2, toy_loss, n_iterations=2)


def test_result_api() -> None:
    result = small_bohb().run(n_iterations=4, worker=toy_loss)
    runs = result.get_all_runs()
    id2config = result.get_id2config_mapping()
    assert {run.config_id for run in runs} == set(id2config)
    assert all(set(entry) >= {"config", "config_info"} for entry in id2config.values())
    assert all(isinstance(cid, tuple) and len(cid) == 3 for cid in id2config)

    for run in runs:
        assert isinstance(run, Run)
        assert set(run.time_stamps) == {"submitted", "started", "finished"}
        stamps = run.time_stamps
        assert 0 <= stamps["submitted"] <= stamps["started"] <= stamps["finished"]
        assert run.error_logs is None
    finished = [run.time_stamps["finished"] for run in runs]
    assert finished == sorted(finished)

    largest = result.get_all_runs(only_largest_budget=True)
    assert len(largest) == len(id2config)
    for run in largest:
        assert run.budget == max(r.budget for r in runs if r.config_id == run.config_id)

    promoted = next(cid for cid in id2config if len(result.get_runs_by_id(cid)) == 3)
    by_id = result.get_runs_by_id(promoted)
    assert [run.budget for run in by_id] == [1.0, 3.0, 9.0]
    assert all(run.config_id == promoted for run in by_id)
    assert result.get_runs_by_id(list(promoted)) == by_id
    assert result.get_runs_by_id((99, 0, 0)) == []
    result.runs.append(dataclasses.replace(by_id[0], config_id=(99, 0, 0)))  # the grouping follows the runs
    assert [run.budget for run in result.get_runs_by_id((99, 0, 0))] == [1.0]
    assert result.get_learning_curves(config_ids=[(99, 0, 0)]) == {(99, 0, 0): [[(1.0, by_id[0].loss)]]}
    result.runs.pop()

    incumbent = result.get_incumbent_id()
    at_max = [run for run in runs if run.budget == 9.0]
    assert incumbent == min(at_max, key=lambda run: run.loss).config_id

    trajectory = result.get_incumbent_trajectory()
    assert set(trajectory) == {"config_ids", "times_finished", "budgets", "losses"}
    assert len({len(values) for values in trajectory.values()}) == 1
    assert trajectory["config_ids"][-1] == incumbent
    assert trajectory["budgets"] == sorted(trajectory["budgets"])
    assert trajectory["times_finished"] == sorted(trajectory["times_finished"])
    assert trajectory["times_finished"][-1] == max(finished)
    for (b0, l0), (b1, l1) in zip(zip(trajectory["budgets"], trajectory["losses"]),
                                  zip(trajectory["budgets"][1:], trajectory["losses"][1:])):
        assert b1 > b0 or l1 <= l0
    only_max = result.get_incumbent_trajectory(all_budgets=False)
    assert set(only_max["budgets"]) == {9.0}
    assert only_max["config_ids"][-1] == incumbent


def test_the_incumbent_is_never_a_configuration_that_failed_on_a_larger_budget() -> None:
    def run(index: int, budget: float, loss: float | None) -> Run:
        stamps = {"submitted": 0.0, "started": 0.0, "finished": 1.0}
        return Run((0, 0, index), budget, loss, None, stamps, None if loss is not None else "MemoryError")

    # (0, 0, 5) is the best on budget 3 but ran out of memory on 9, where nothing succeeded
    runs = [run(5, 1, 1.3), run(6, 1, 1.4), run(7, 1, 2.0), run(5, 3, 0.63), run(6, 3, 0.7), run(5, 9, None)]
    assert Result(runs, {}).get_incumbent_id() == (0, 0, 6)
    assert Result(runs + [run(6, 9, None)], {}).get_incumbent_id() == (0, 0, 7)  # budget 1 is all that is left
    assert Result(runs + [run(6, 9, None), run(7, 3, None)], {}).get_incumbent_id() is None
    assert Result(runs + [run(6, 9, 0.9)], {}).get_incumbent_id() == (0, 0, 6)  # HpBandSter's answer
    configs = {(0, 0, index): {"config": {"x": index}} for index in (5, 6, 7)}
    twice = Result(runs + [run(6, 9, 0.9), run(6, 9, 0.8)], configs)  # e.g. a log with a run repeated
    assert (twice.get_incumbent_run().budget, twice.get_incumbent_run().loss) == (9, 0.8)
    shown = summarize_logs(twice, "logs")["incumbent"]  # what report shows is that run
    assert (shown["config_id"], shown["budget"], shown["loss"]) == ([0, 0, 6], 9, 0.8)


def test_settings_have_hpbandster_keys() -> None:
    result = small_bohb().run(n_iterations=1, worker=toy_loss)
    settings = result.HB_config
    assert settings["budgets"] == [1.0, 3.0, 9.0]
    assert (settings["eta"], settings["min_budget"], settings["max_budget"], settings["max_SH_iter"]) == (3, 1, 9, 3)
    assert settings["seed"] == 0
    assert "time_ref" in settings


def test_run_logs_its_settings_at_start(caplog: pytest.LogCaptureFixture, tmp_path: os.PathLike) -> None:
    with caplog.at_level("INFO", logger="mpibohb"):
        small_bohb().run(n_iterations=2, worker=toy_loss, n_workers=2)
        HyperBand(configspace=space(), min_budget=1, max_budget=9, seed=5, run_dir=tmp_path).run(1, toy_loss)
    messages = [record.getMessage() for record in caplog.records]
    assert "bohb: 2 iterations, budgets 1, 3, 9 (eta 3), 2 workers, seed 0, no run_dir" in messages
    assert f"hyperband: 1 iteration, budgets 1, 3, 9 (eta 3), 1 worker, seed 5, run_dir {tmp_path}" in messages


def test_randomsearch_runs_everything_at_max_budget() -> None:
    result = RandomSearch(configspace=space(), min_budget=9, max_budget=243, eta=3, seed=0).run(
        n_iterations=3, worker=toy_loss)
    runs = result.get_all_runs()
    assert {run.budget for run in runs} == {243.0}
    assert sorted(run.config_id for run in runs) == [(i, 0, j) for i in range(3) for j in range(4)]
    assert result.num_iterations() == 3


def test_seeded_runs_repeat_through_run() -> None:
    def summary(seed: int) -> list[tuple]:
        result = small_bohb(seed=seed).run(n_iterations=4, worker=toy_loss)
        configs = result.get_id2config_mapping()
        return [(run.config_id, run.budget, run.loss, configs[run.config_id]["config"])
                for run in result.get_all_runs()]

    assert summary(5) == summary(5)
    assert summary(5) != summary(6)


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("arguments", "shown"),
    [
        (dict(min_budget=0), "min_budget"),
        (dict(min_budget=-2), "-2"),
        (dict(min_budget=10, max_budget=9), "10"),
        (dict(eta=1), "eta"),
        (dict(eta=0.5), "0.5"),
        (dict(max_budget=float("nan")), "nan"),
    ],
)
def test_bad_budgets_raise_value_error(arguments: dict, shown: str) -> None:
    for optimizer in (BOHB, HyperBand, RandomSearch):
        full = dict(configspace=space(), min_budget=1, max_budget=9, eta=3)
        full.update(arguments)
        with pytest.raises(ValueError, match=shown):
            optimizer(**full)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "4", True])
def test_bad_n_iterations_raise_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="n_iterations"):
        small_bohb().run(n_iterations=bad, worker=toy_loss)


@pytest.mark.parametrize("bad", [None, CS.ConfigurationSpace(), {"x": (0.0, 1.0)}, "space"])
def test_bad_configspace_raises_value_error(bad: object) -> None:
    for optimizer in (BOHB, HyperBand, RandomSearch):
        with pytest.raises(ValueError, match="configspace"):
            optimizer(configspace=bad, min_budget=1, max_budget=9)


@pytest.mark.parametrize("bad", [5, object(), "worker", None.__class__])
def test_worker_without_compute_raises_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="compute"):
        small_bohb().run(n_iterations=1, worker=bad)



def test_worker_class_instead_of_instance_raises_value_error() -> None:
    with pytest.raises(ValueError, match="KeywordWorker"):
        small_bohb().run(n_iterations=1, worker=KeywordWorker)



def test_numpy_integer_n_iterations_is_accepted() -> None:
    result = small_bohb().run(n_iterations=np.int64(2), worker=toy_loss)
    assert len(result.get_all_runs()) == 13 + 6



def test_numpy_budgets_are_accepted() -> None:
    optimizer = BOHB(configspace=space(), min_budget=np.int64(1), max_budget=np.float64(9.0), eta=np.int64(3))
    assert optimizer.budgets == [1.0, 3.0, 9.0]


def test_missing_worker_raises_value_error() -> None:
    with pytest.raises(ValueError, match="worker"):
        small_bohb().run(n_iterations=1)


def test_a_worker_without_id_has_a_worker_id_of_its_own_in_each_thread() -> None:
    # it was None in every process and thread: files named after it collided, and a compute that
    # read back its scratch file returned another configuration's loss
    seen: dict[str, set[str]] = {}

    class Scratch(Worker):
        def compute(self, config: dict, budget: float, **kwargs: Any) -> float:
            seen.setdefault(threading.current_thread().name, set()).add(self.worker_id)
            time.sleep(0.005)
            return toy_loss(config, budget)

    worker = Scratch(run_id="r")
    assert worker.worker_id == f"mpibohb.run_r.worker.{socket.gethostname()}.{os.getpid()}"
    small_bohb().run(n_iterations=1, worker=worker, n_workers=3)
    assert all(len(ids) == 1 for ids in seen.values()) and len(seen) == 3, seen
    assert sorted(set().union(*seen.values())) == sorted(worker.worker_id + end for end in ("", ".1", ".2"))
    assert Worker(id=3).worker_id == 3  # an id given is kept as it is (a GPU's number, docs/usage.md)


def test_hpbandster_arguments_are_accepted_and_unknown_ones_rejected() -> None:
    for optimizer in (BOHB, HyperBand, RandomSearch):
        optimizer(configspace=space(), min_budget=1, max_budget=9, run_id="x", nameserver="127.0.0.1",
                  nameserver_port=None, ping_interval=10, result_logger=None, shutdown_workers=True)
        with pytest.raises(TypeError, match="colour"):
            optimizer(configspace=space(), min_budget=1, max_budget=9, colour="blue")
    worker = Worker(run_id="x", nameserver="127.0.0.1", id=3)
    assert (worker.run_id, worker.worker_id, worker.host) == ("x", 3, socket.gethostname())
    worker.logger.info("compute may log through self.logger, as in HpBandSter")
    by_position = Worker("r1", "127.0.0.1", None, None, "node7", 5)  # HpBandSter's order
    assert (by_position.run_id, by_position.worker_id, by_position.host) == ("r1", 5, "node7")
    with pytest.raises(TypeError, match="both by position and by keyword"):
        Worker("r1", run_id="r2")

    class NoSuper(Worker):  # HpBandSter would fail here; the attributes still have defaults
        def __init__(self) -> None:
            pass

    assert (NoSuper().run_id, NoSuper().worker_id, NoSuper().host) == (None, None, socket.gethostname())
    with pytest.raises(TypeError, match="colour"):
        Worker(run_id="x", colour="blue")
    result = small_bohb().run(n_iterations=1, worker=toy_loss, min_n_workers=1, iteration_kwargs={})
    assert len(result.get_all_runs()) == 13
    with pytest.raises(TypeError, match="colour"):
        small_bohb().run(n_iterations=1, worker=toy_loss, colour="blue")


def test_hpbandsters_json_result_logger_makes_the_run_dir(tmp_path: os.PathLike) -> None:
    """A ported ``result_logger=json_result_logger(directory, overwrite)`` writes HpBandSter's files
    there; anything else as a result_logger is refused, not silently ignored."""
    from mpibohb import json_result_logger, load_result

    directory = os.path.join(tmp_path, "logs")
    first = small_bohb(result_logger=json_result_logger(directory=directory, overwrite=False)).run(1, toy_loss)
    assert {"configs.json", "results.json"} <= set(os.listdir(directory))
    assert len(load_result(directory).get_all_runs()) == len(first.get_all_runs()) == 13
    with pytest.raises(FileExistsError):
        small_bohb(result_logger=json_result_logger(directory)).run(1, toy_loss)
    (Path(directory) / "notes.txt").write_text("the user's own file")
    again = small_bohb(result_logger=json_result_logger(directory, overwrite=True), seed=5)
    again.run(1, toy_loss)
    assert [r.loss for r in load_result(directory).get_all_runs()] != [r.loss for r in first.get_all_runs()]
    assert (Path(directory) / "notes.txt").read_text() == "the user's own file"  # only mpibohb's files go
    again.run(2, toy_loss, resume=True)  # the logger's overwrite counts once, as in HpBandSter: this extends
    assert len(load_result(directory).get_all_runs()) == 13 + 6
    with pytest.raises(FileExistsError):  # a second run() without resume neither overwrites nor repeats
        again.run(3, toy_loss)
    with pytest.raises(ValueError, match="differ"):
        small_bohb(run_dir=os.path.join(tmp_path, "elsewhere"), result_logger=json_result_logger(directory))

    class CustomLogger:
        def new_config(self, *args: Any) -> None: ...

        def __call__(self, job: Any) -> None: ...

    with pytest.raises(ValueError, match="result_logger must be mpibohb.json_result_logger"):
        small_bohb(result_logger=CustomLogger())

    class SubclassedLogger(json_result_logger):  # a port's own logger on HpBandSter's: its methods never run
        def __call__(self, job: Any) -> None: ...

    with pytest.raises(ValueError, match="calls no logger of yours"):
        small_bohb(result_logger=SubclassedLogger(os.path.join(tmp_path, "sub")))


def test_bad_model_settings_raise_value_error() -> None:
    with pytest.raises(ValueError, match="top_n_percent"):
        small_bohb(top_n_percent=0)
    with pytest.raises(ValueError, match="random_fraction"):
        small_bohb(random_fraction=2)


# --- failing user code -----------------------------------------------------------------------

def _raises(config: dict, budget: float) -> Any:
    raise RuntimeError("boom in user code")


FAILURES = {
    "exception": (_raises, "boom in user code"),
    "not a dict": (lambda config, budget: "a string", "str"),
    "no loss": (lambda config, budget: {"info": 1}, "loss"),
    "non-numeric loss": (lambda config, budget: {"loss": "abc"}, "abc"),
    "nan loss": (lambda config, budget: {"loss": float("nan")}, "nan"),
    "infinite loss": (lambda config, budget: {"loss": float("inf")}, "inf"),
    "None": (lambda config, budget: None, "NoneType"),
    "bool loss": (lambda config, budget: {"loss": True}, "bool"),
    "numpy bool loss": (lambda config, budget: {"loss": np.bool_(True)}, "bool"),
    "array of losses": (lambda config, budget: {"loss": np.array([0.1, 0.2])}, "shape (2,)"),
    "bare array of losses": (lambda config, budget: np.zeros((1, 2)), "shape (1, 2)"),
    "nan in an array": (lambda config, budget: {"loss": np.array(np.nan)}, "nan"),
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_failing_evaluations_are_recorded_and_the_run_goes_on(kind: str) -> None:
    compute, reason = FAILURES[kind]
    result = small_bohb().run(n_iterations=2, worker=compute)
    runs = result.get_all_runs()
    assert len(runs) == 13 + 6  # every evaluation of both brackets was still made
    for run in runs:
        assert run.loss is None
        assert run.error_logs and reason in run.error_logs
    assert result.get_incumbent_id() is None
    assert len(result.failed_runs()) == len(runs)


def test_a_worker_that_fails_sometimes() -> None:
    class Flaky(Worker):
        def compute(self, config, budget, **kwargs):
            if config["x"] < 0.3:
                raise ValueError(f"x too small: {config['x']}")
            if config["x"] > 0.8:
                return {"loss": np.float64("nan")}
            return {"loss": np.float32(toy_loss(config, budget)), "info": None}

    result = small_bohb().run(n_iterations=4, worker=Flaky())
    runs = result.get_all_runs()
    assert len(runs) == 13 + 6 + 3 + 13
    failed, good = result.failed_runs(), [run for run in runs if run.loss is not None]
    assert failed and good
    assert all("x too small" in run.error_logs or "nan" in run.error_logs for run in failed)
    assert all(isinstance(run.loss, float) and math.isfinite(run.loss) for run in good)
    assert all(run.error_logs and "Traceback" in run.error_logs for run in failed if "x too small" in run.error_logs)
    incumbent = result.get_incumbent_id()
    assert 0.3 <= result.get_id2config_mapping()[incumbent]["config"]["x"] <= 0.8


@pytest.mark.parametrize("wrap", [lambda loss: {"loss": np.array(loss)}, lambda loss: np.array([loss]),
                                  lambda loss: {"loss": np.array([[loss]])},
                                  lambda loss: {"loss": decimal.Decimal(loss)}],
                         ids=["0-d", "bare (1,)", "(1, 1)", "Decimal"])
def test_a_loss_in_a_one_element_array_or_a_decimal_is_read_as_its_number(wrap: Any) -> None:
    plain = small_bohb().run(n_iterations=2, worker=toy_loss)
    wrapped = small_bohb().run(n_iterations=2, worker=lambda config, budget: wrap(toy_loss(config, budget)))
    assert all(type(run.loss) is float for run in wrapped.get_all_runs())
    key = [(run.config_id, run.budget, run.loss) for run in plain.get_all_runs()]
    assert len(key) == 19 and [(run.config_id, run.budget, run.loss) for run in wrapped.get_all_runs()] == key


@pytest.mark.parametrize("loss, message", [
    (decimal.Decimal("sNaN"), "the loss must be finite, got nan"),
    (10 ** 400, "the loss must be finite, got inf (1000"),
    (float("inf"), "the loss must be finite, got inf"),
], ids=["signalling NaN", "int beyond float", "inf"])
def test_a_loss_that_is_no_finite_float_is_a_failed_run_saying_so(loss: Any, message: str) -> None:
    result = RandomSearch(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=1, seed=1).run(
        n_iterations=1, worker=lambda config, budget: {"loss": loss})
    errors = [run.error_logs for run in result.get_all_runs()]
    assert errors and all(error and message in error for error in errors), errors[:1]


# --- found by trying to break it as a user -----------------------------------------------------

def test_a_worker_subclass_without_compute_is_refused_before_the_run() -> None:
    class Misnamed(Worker):  # HpBandSter's users know compute; a slip names it otherwise
        def evaluate(self, config: dict, budget: float) -> float:
            return 0.0

    with pytest.raises(ValueError, match="worker Misnamed does not define compute"):
        small_bohb().run(n_iterations=1, worker=Misnamed())

@pytest.mark.parametrize("n_workers", [None, 2])
def test_compute_gets_its_own_copy_of_the_config(n_workers: int | None) -> None:
    """A compute that changes its config must not change what later budgets get, nor the Result."""
    seen = []

    def changes_its_config(config: dict, budget: float) -> float:
        seen.append(dict(config))
        loss = toy_loss(config, budget)
        config["x"] += 1000
        config["junk"] = 1
        return loss

    result = small_bohb().run(n_iterations=1, worker=changes_its_config, n_workers=n_workers)
    assert len(seen) == 13 and all(0 <= c["x"] <= 1 and "junk" not in c for c in seen)
    assert all(set(entry["config"]) == {"x", "n"} and entry["config"]["x"] <= 1
               for entry in result.get_id2config_mapping().values())


def test_plain_functions_with_compute_argument_names_are_called_by_keyword() -> None:
    def hpbandster_order(config_id, config, budget):
        assert isinstance(config_id, tuple) and isinstance(config, dict)
        return toy_loss(config, budget)

    def budget_first(budget, config):
        return toy_loss(config, budget)

    for worker in (hpbandster_order, budget_first):
        runs = small_bohb().run(n_iterations=1, worker=worker).get_all_runs()
        assert len(runs) == 13 and all(run.loss is not None for run in runs), worker.__name__


@pytest.mark.parametrize("bad", [lambda: 1.0, lambda a, b, c: 1.0], ids=["no-arguments", "three-unknown"])
def test_a_function_that_cannot_take_config_and_budget_is_refused_before_running(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"cannot be called as f\(config, budget\)"):
        small_bohb().run(n_iterations=1, worker=bad)


@pytest.mark.parametrize("bad", [float("nan"), -1, 0, "3", True])
def test_bad_timeouts_raise_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0 or None"):
        small_bohb().run(n_iterations=1, worker=toy_loss, timeout=bad)


@pytest.mark.parametrize("limit", [float("inf"), 1e12, np.float64(50.0)])
def test_an_infinite_or_huge_timeout_is_no_limit(limit: float) -> None:
    runs = small_bohb().run(n_iterations=1, worker=toy_loss, timeout=limit).get_all_runs()
    assert len(runs) == 13 and all(run.loss is not None for run in runs), [run.error_logs for run in runs]


def test_numpy_eta_runs() -> None:
    for optimizer in (BOHB, HyperBand):
        result = optimizer(configspace=space(), min_budget=1, max_budget=9, eta=np.int64(3), seed=0).run(
            n_iterations=1, worker=toy_loss)
        assert len(result.get_all_runs()) == 13


def test_a_second_run_without_run_dir_is_refused() -> None:
    optimizer = small_bohb()
    optimizer.run(n_iterations=1, worker=toy_loss)
    with pytest.raises(RuntimeError, match="has run already"):
        optimizer.run(n_iterations=1, worker=toy_loss)


def test_a_run_that_failed_at_its_start_can_be_run_again(tmp_path: os.PathLike) -> None:
    optimizer = small_bohb()
    with pytest.raises(Exception, match="nonexistent"):
        optimizer.run(n_iterations=1, worker=toy_loss, previous_result=str(tmp_path / "nonexistent"))
    assert len(optimizer.run(n_iterations=1, worker=toy_loss).get_all_runs()) == 13


def test_a_failed_threaded_start_leaves_no_threads(tmp_path: os.PathLike) -> None:
    import threading

    before = set(threading.enumerate())  # threads of earlier tests may still be ending: only new ones count
    for _ in range(3):
        with pytest.raises(Exception, match="nonexistent"):
            small_bohb().run(n_iterations=1, worker=toy_loss, n_workers=4,
                             previous_result=str(tmp_path / "nonexistent"))
    assert [t for t in threading.enumerate() if t not in before] == []


class StateOnSelf(Worker):
    """Keeps the evaluation's configuration on ``self``, as HpBandSter workers (one per thread)
    could. Its first two evaluations wait for each other after setting it, so that with one object
    shared by two threads one of them would read the other's."""

    def __init__(self) -> None:
        super().__init__()
        self.meeting = threading.Barrier(2, timeout=30)
        self.calls: list[int] = []  # shared by every copy: appended to, never replaced

    def compute(self, config: dict, budget: float, **kwargs: Any) -> dict:
        self.x = config["x"]
        self.calls.append(1)
        if len(self.calls) <= 2:
            self.meeting.wait()
        return {"loss": self.x, "info": {}}


class PicklesWithoutItsLock(Worker):
    """Leaves its lock and model out when pickled, as objects sent to other processes do: thread
    copies must not go through pickling's hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.model: Any = toy_loss

    def __getstate__(self) -> dict:
        return {name: value for name, value in self.__dict__.items() if name not in ("lock", "model")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, lock=threading.Lock(), model=None)

    def compute(self, config: dict, budget: float, **kwargs: Any) -> float:
        with self.lock:
            return self.model(config, budget)


class ReleasesAtDeletion(Worker):
    """Deletes what it holds in __del__: a copy would delete the original's."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        path.write_text("scratch")

    def __del__(self) -> None:
        self.path.unlink(missing_ok=True)

    def compute(self, config: dict, budget: float, **kwargs: Any) -> float:
        return toy_loss(config, budget) + len(self.path.read_text())


def test_a_worker_that_releases_in_del_is_shared_with_a_warning(tmp_path: Path, caplog) -> None:
    import gc

    worker = ReleasesAtDeletion(tmp_path / "scratch")
    for _ in range(2):
        result = small_bohb().run(n_iterations=1, worker=worker, n_workers=3)
        gc.collect()
        assert not result.failed_runs() and worker.path.exists()
    assert "the same worker object, since its class ReleasesAtDeletion defines __del__" in caplog.text


def test_a_thread_s_copy_of_the_worker_has_all_its_attributes() -> None:
    result = small_bohb().run(n_iterations=1, worker=PicklesWithoutItsLock(), n_workers=3)
    assert not result.failed_runs(), result.failed_runs()[0].error_logs


class SlotsAndNoLength(Worker):
    """A worker with a string ``__slots__`` (one slot, name-mangled) that is falsy (``len`` 0)."""

    __slots__ = "__data"

    def __init__(self) -> None:
        super().__init__()
        self.__data = {"scale": 1.0}

    def __len__(self) -> int:
        return 0

    started = threading.Semaphore(3)  # the first three jobs meet, so each thread has run one
    meeting = threading.Barrier(3)

    def compute(self, config: dict, budget: float, **kwargs: Any) -> dict:
        self.current = config["x"]  # the per-thread state, in the worker's __dict__
        if SlotsAndNoLength.started.acquire(blocking=False):
            SlotsAndNoLength.meeting.wait(timeout=60)
        return {"loss": self.current * self.__data["scale"], "info": {"worker": id(self)}}


def test_thread_copies_keep_slots_and_falsy_workers_get_their_own() -> None:
    SlotsAndNoLength.started, SlotsAndNoLength.meeting = threading.Semaphore(3), threading.Barrier(3)  # each time
    result = small_bohb().run(n_iterations=1, worker=SlotsAndNoLength(), n_workers=3)
    configs = result.get_id2config_mapping()
    assert not result.failed_runs(), result.failed_runs()[0].error_logs
    assert [run.loss for run in result.get_all_runs()] == \
        [configs[run.config_id]["config"]["x"] for run in result.get_all_runs()]
    assert len({run.info["worker"] for run in result.get_all_runs()}) == 3


def test_each_thread_has_its_own_copy_of_the_worker() -> None:
    worker = StateOnSelf()
    result = small_bohb().run(n_iterations=1, worker=worker, n_workers=2)
    configs = result.get_id2config_mapping()
    assert [run.loss for run in result.get_all_runs()] == \
        [configs[run.config_id]["config"]["x"] for run in result.get_all_runs()]
    assert len(worker.calls) == len(result.get_all_runs())  # what the copies share is the worker's own
    with pytest.raises(ValueError, match=r"got a list of workers: pass one, and n_workers=2 to run\(\)"):
        small_bohb().run(n_iterations=1, worker=[StateOnSelf(), StateOnSelf()], n_workers=2)


def test_a_second_run_with_run_dir_extends_it(tmp_path: os.PathLike) -> None:
    optimizer = small_bohb(run_dir=tmp_path)
    optimizer.run(n_iterations=1, worker=toy_loss)
    assert len(optimizer.run(n_iterations=2, worker=toy_loss, resume=True).get_all_runs()) == 13 + 6



@pytest.mark.slow  # a few seconds: out of the fast lane
def test_a_fill_tail_run_extends_on_resume_after_its_tail_started(tmp_path: os.PathLike, caplog) -> None:
    """The replay gives each session its own iterations and workers: the first run's tail started
    with 5 iterations on 4 workers, and its journal still replays when 6 are asked for."""
    import time

    def sleep_loss(config: dict, budget: float) -> float:
        time.sleep(0.01 * budget)
        return toy_loss(config, budget)

    def hyperband() -> HyperBand:
        return HyperBand(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=1, run_dir=tmp_path,
                         fill_tail=True)

    with caplog.at_level(logging.INFO, logger="mpibohb"):
        assert len(hyperband().run(n_iterations=5, worker=sleep_loss, n_workers=4).get_all_runs()) == 109
    assert "fill_tail: starting every remaining bracket now (1 of 5)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mpibohb"):
        extended = hyperband().run(n_iterations=6, worker=sleep_loss, n_workers=4, resume=True)
    assert len(extended.get_all_runs()) == 109 + 17
    assert "fill_tail: starting every remaining bracket now (1 of 6)" in caplog.text  # the extension's own tail


def test_a_resume_with_fewer_iterations_says_how_many_the_run_has(tmp_path: os.PathLike) -> None:
    from mpibohb.journal import JournalError

    small_bohb(run_dir=tmp_path).run(n_iterations=3, worker=toy_loss)
    with pytest.raises(JournalError, match=r"this run already has 3 iterations, more than the 1 asked for now: "
                                           r"resume with n_iterations=3 or more \(--n-iterations 3 on the"):
        small_bohb(run_dir=tmp_path).run(n_iterations=1, worker=toy_loss, resume=True)


def test_a_fill_tail_run_is_not_resumed_with_fewer_iterations_than_it_ran_with(tmp_path: os.PathLike) -> None:
    """Its replay depends on each session's iteration count, so a smaller one would leave a journal that
    no later resume could replay; the refused attempt leaves no session record behind."""
    from mpibohb.journal import JournalError, read_journal

    def hyperband() -> HyperBand:
        return HyperBand(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=0, run_dir=tmp_path,
                         fill_tail=True)

    hyperband().run(n_iterations=3, worker=toy_loss, n_workers=4)
    with pytest.raises(JournalError, match="ran with n_iterations=3 before: resume it with at least that many"):
        hyperband().run(n_iterations=2, worker=toy_loss, n_workers=4, resume=True)
    assert sum(record["type"] == "session" for record in read_journal(tmp_path)) == 1
    assert len(hyperband().run(n_iterations=4, worker=toy_loss, n_workers=4, resume=True).get_all_runs()) == 69


def test_a_run_journaled_before_fill_tail_existed_resumes_and_extends(tmp_path: os.PathLike) -> None:
    import json

    small_bohb(run_dir=tmp_path).run(n_iterations=1, worker=toy_loss)
    journal = Path(tmp_path) / "journal.jsonl"
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    del header["settings"]["fill_tail"]  # as an older mpibohb wrote it
    journal.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    assert len(small_bohb(run_dir=tmp_path).run(n_iterations=2, worker=toy_loss, resume=True).get_all_runs()) == 19
    with pytest.raises(RunDirectoryError, match=r"settings differ \(fill_tail: False -> True\)"):
        small_bohb(run_dir=tmp_path, fill_tail=True).run(n_iterations=3, worker=toy_loss, resume=True)
def test_a_resume_with_another_optimizer_names_that_first_and_only_what_else_differs(tmp_path: os.PathLike) -> None:
    small_bohb(run_dir=tmp_path).run(n_iterations=1, worker=toy_loss)
    for optimizer, shown in [
            (HyperBand(configspace=space(), min_budget=1, max_budget=9, eta=3, seed=0, run_dir=tmp_path),
             "(optimizer: 'bohb' -> 'hyperband')"),
            (RandomSearch(configspace=space(), min_budget=1, max_budget=9, eta=3, seed=4, run_dir=tmp_path),
             "(optimizer: 'bohb' -> 'randomsearch', seed: 0 -> 4)"),
            (small_bohb(run_dir=tmp_path, num_samples=8), "(num_samples: 24 -> 8)")]:
        with pytest.raises(RunDirectoryError) as refused:
            optimizer.run(n_iterations=1, worker=toy_loss, resume=True)
        assert str(refused.value) == f"cannot resume the run in {tmp_path}: its settings differ {shown}"


@pytest.mark.parametrize(("arguments", "shown"), [
    (dict(resume="no"), "resume must be True or False"),
    (dict(overwrite=2), "overwrite must be True or False"),
    (dict(comm="x"), "comm must be an mpi4py communicator"),
    (dict(workers_return="yes"), "workers_return must be True or False"),
    (dict(resume=True), "resume=True needs the optimizer's run_dir: without one nothing is kept"),
    (dict(overwrite=True), "overwrite=True needs the optimizer's run_dir"),
])
def test_bad_run_flags_raise_value_error(arguments: dict, shown: str) -> None:
    with pytest.raises(ValueError, match=shown):
        small_bohb().run(n_iterations=1, worker=toy_loss, **arguments)


@pytest.mark.processes  # the hung threads sleep on in the process, which must still exit
def test_a_hung_evaluation_in_threads_is_a_timeout_and_the_run_goes_on() -> None:
    """Threads cannot be stopped: a job past its limit is recorded at the limit, and a fresh
    thread takes the next jobs; the hung threads do not keep the process alive (daemons)."""
    code = (
        "import time, ConfigSpace as CS\n"
        "from mpibohb import BOHB\n"
        "cs = CS.ConfigurationSpace({'x': (0.0, 1.0)})\n"
        "def hangs_sometimes(config, budget):\n"
        "    if config['x'] < 0.5: time.sleep(1000)\n"
        "    return config['x']\n"
        "runs = BOHB(cs, min_budget=1, max_budget=9, seed=1).run(2, hangs_sometimes, timeout=0.5,"
        " n_workers=2).get_all_runs()\n"
        "failed = [r for r in runs if r.loss is None]\n"
        "assert failed and len(failed) < len(runs), len(failed)\n"
        "assert all(r.error_logs.startswith(f'JobTimeoutError on {r.worker}: timeout: still running after')"
        " and '@' in r.worker for r in failed), failed[0].error_logs\n"
        "print('runs', len(runs), 'timeouts', len(failed))\n"
    )
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "timeouts" in finished.stdout


@pytest.mark.parametrize("model", ["hpbandster", "tpe"])
def test_a_min_bandwidth_above_the_categorical_cap_runs_with_the_model(model: str) -> None:
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0), "c": ["a", "b"]})
    result = BOHB(configspace=cs, min_budget=1, max_budget=9, seed=0, min_bandwidth=1.0, model=model).run(
        n_iterations=6, worker=lambda config, budget: config["x"] + (config["c"] == "b"))
    picks = [entry["config_info"]["model_based_pick"] for entry in result.get_id2config_mapping().values()]
    assert any(picks) and len(result.get_all_runs()) == 13 + 6 + 3 + 13 + 6 + 3


def test_run_fields_by_key_as_in_hpbandster() -> None:
    run = small_bohb().run(n_iterations=1, worker=toy_loss).get_all_runs()[0]
    assert (run["loss"], run["budget"], run["config_id"]) == (run.loss, run.budget, run.config_id)
    with pytest.raises(KeyError, match="no field 'colour'"):
        run["colour"]


def test_fanova_data_is_hpbandsters_values_that_fanova_reads() -> None:
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0), "c": ["a", "b"]})
    cs.add(CS.UniformIntegerHyperparameter("n", 1, 64, log=True))
    result = BOHB(configspace=cs, min_budget=1, max_budget=9, seed=0).run(
        n_iterations=2, worker=lambda config, budget: config["x"] if config["c"] == "a" else float("nan"))
    runs = result.get_all_runs()
    successes = [run for run in runs if run.loss is not None]
    assert 0 < len(successes) < len(runs)
    rows, losses, with_budget = result.get_fANOVA_data(cs)
    assert len(cs) == 3 and sorted(with_budget) == ["budget", "c", "n", "x"]  # the space given is not changed
    assert rows.shape == (len(successes), 4)  # failed runs are left out, as HpBandSter does
    np.testing.assert_allclose(losses, [run.loss for run in successes])
    columns = list(with_budget)
    for row, run in zip(rows, successes):
        config = result.get_id2config_mapping()[run.config_id]["config"]
        assert row[columns.index("c")] == ["a", "b"].index(config["c"])  # a categorical's index
        assert (row[columns.index("x")], row[columns.index("n")], row[columns.index("budget")]) == \
            (config["x"], config["n"], run.budget)
    for parameter, column in zip(with_budget.values(), rows.T):  # what fanova checks: values within bounds
        upper = len(parameter.choices) - 1 if hasattr(parameter, "choices") else parameter.upper
        lower = 0 if hasattr(parameter, "choices") else parameter.lower
        assert lower <= column.min() and column.max() <= upper, parameter.name
    at_one = [run for run in runs if run.budget == 1.0]
    rows, losses, same = result.get_fANOVA_data(cs, budgets=[1.0], failed_loss=5.0)
    assert len(same) == 3 and rows.shape == (len(at_one), 3)
    np.testing.assert_allclose(losses, [5.0 if run.loss is None else run.loss for run in at_one])


def test_fanova_data_of_a_constant_is_a_category_of_one_and_a_changed_space_is_named() -> None:
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0), "c": ["a", "b"], "k": 7})
    result = BOHB(configspace=cs, min_budget=1, max_budget=9, seed=0).run(
        n_iterations=1, worker=lambda config, budget: config["x"])
    rows, _, space = result.get_fANOVA_data(cs, budgets=[1.0])
    assert (rows[:, list(space).index("k")] == 0).all()  # fanova takes a constant for a category of one value
    with pytest.raises(ValueError, match="'a' is not a value of c in the space given|'b' is not a value of c"):
        result.get_fANOVA_data(CS.ConfigurationSpace({"x": (0.0, 1.0), "c": ["z"], "k": 7}), budgets=[1.0])


def test_fanova_data_takes_none_for_a_value_and_names_a_parameter_called_budget() -> None:
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    cs.add(CS.CategoricalHyperparameter("max_depth", [None, 3, 10]))  # None is a value, not "inactive"
    result = BOHB(configspace=cs, min_budget=1, max_budget=9, seed=0).run(
        n_iterations=2, worker=lambda config, budget: config["x"])
    rows, _, space = result.get_fANOVA_data(cs, budgets=[1.0])
    column = rows[:, list(space).index("max_depth")]
    assert not np.isnan(column).any() and set(column) == {0.0, 1.0, 2.0}
    named = CS.ConfigurationSpace({"x": (0.0, 1.0), "budget": (1, 100)})
    runs = BOHB(configspace=named, min_budget=1, max_budget=9, seed=0).run(
        n_iterations=1, worker=lambda config, budget: config["x"])
    with pytest.raises(ValueError, match="hyperparameter named 'budget'.*pass budgets=\\[one budget\\]"):
        runs.get_fANOVA_data(named)


def test_editing_the_id2config_mapping_leaves_the_result_as_it_was() -> None:
    result = BOHB(configspace=CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=9, seed=0).run(
        n_iterations=1, worker=lambda config, budget: config["x"])
    mapping = result.get_id2config_mapping()
    config_id = result.get_incumbent_id()
    before = mapping[config_id]["config"]["x"]
    mapping[config_id]["config"]["x"] = 123.0
    mapping[config_id]["config_info"]["note"] = "mine"
    again = result.get_id2config_mapping()[config_id]
    assert again["config"]["x"] == before and "note" not in again["config_info"]


def test_functions_that_only_the_positional_call_serves_keep_it() -> None:
    import functools

    def positional_only(config, budget, /):
        return toy_loss(config, budget)

    def budget_in_args(config, *args):
        return toy_loss(config, args[0])

    def indexing_decorator(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            return function(args[0], args[1])
        return wrapper

    for worker in (positional_only, budget_in_args, indexing_decorator(toy_loss),
                   functools.partial(lambda config, budget, scale: scale * toy_loss(config, budget), scale=2)):
        runs = small_bohb().run(n_iterations=1, worker=worker).get_all_runs()
        assert all(run.loss is not None for run in runs), runs[0].error_logs


@pytest.mark.parametrize(("arguments", "warned"), [
    (dict(min_n_workers=2), "min_n_workers=2 is ignored (HpBandSter waited for that many workers): this run evaluates "
     "serially in one process. For 2 workers, pass n_workers=2 to run() (threads, if compute releases the GIL) or "
     "start the script with mpiexec -n 3"),
    (dict(min_n_workers=3, n_workers=2), "min_n_workers=3 is ignored (HpBandSter waited for that many workers): this "
     "run evaluates in n_workers=2 threads. For 3 workers, pass n_workers=3"),
    (dict(min_n_workers=2, n_workers=2), None),
    (dict(min_n_workers=1), None),
    (dict(n_workers=3), None),
])
def test_a_min_n_workers_the_run_cannot_meet_is_a_warning(caplog, arguments: dict, warned: str | None) -> None:
    """HpBandSter's example 2 ported with min_n_workers alone ran serially, twice as long, without a word."""
    with caplog.at_level(logging.WARNING, logger="mpibohb"):
        small_bohb().run(n_iterations=1, worker=toy_loss, **arguments)
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    if warned is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warnings[0].startswith(warned), warnings


def test_workers_return_changes_nothing_in_one_process() -> None:
    runs = [small_bohb().run(n_iterations=1, worker=toy_loss, workers_return=flag).get_all_runs() for flag in (0, 1)]
    assert [(r.config_id, r.budget, r.loss) for r in runs[0]] == [(r.config_id, r.budget, r.loss) for r in runs[1]]


def test_an_empty_run_dir_is_refused_not_taken_as_the_current_directory(tmp_path: Path) -> None:
    """``run_dir=os.environ.get("RUN_DIR", "")`` would write the run's files where the script runs."""
    with pytest.raises(ValueError, match=r'run_dir is empty; give a directory \("\." for the current one\)'):
        small_bohb(run_dir="")


def test_hpbandster_s_worker_loop_calls_say_what_takes_their_place() -> None:
    worker = Worker(run_id="x", nameserver="127.0.0.1")
    calls = (lambda: worker.run(background=True), lambda: worker.load_nameserver_credentials(working_directory="."))
    for call in calls:
        with pytest.raises(RuntimeError, match=r"is HpBandSter's: mpibohb has no nameserver and no worker loop .* "
                                               r"opt\.run\(n_iterations=\.\.\., worker=w\)"):
            call()


def test_too_few_min_points_for_hpbandsters_kde_are_said_once_per_optimizer(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mpibohb"):
        small_bohb(model="hpbandster", min_points_in_model=1).run(n_iterations=2, worker=toy_loss)
    assert caplog.text.count("min_points_in_model=1 is below the 2 dimensions + 1 a KDE needs; using 3") == 1


def test_budgets_that_leave_one_rung_are_said_to(caplog: pytest.LogCaptureFixture) -> None:
    """(1, 2, eta 3) is a ladder of one budget, 2: no successive halving, and min_budget never runs."""
    with caplog.at_level(logging.WARNING, logger="mpibohb"):
        BOHB(space(), min_budget=1, max_budget=2, eta=3)
        RandomSearch(space(), min_budget=1, max_budget=2, eta=3)  # one budget is what RandomSearch runs
        HyperBand(space(), min_budget=1, max_budget=3, eta=3)
    assert caplog.text.count("leave one budget, 2 (the ladder") == 1, caplog.text


def test_hpbandster_names_a_port_may_keep_say_what_stands_for_them() -> None:
    with pytest.raises(ImportError, match=r"logged_results_to_HBS_result'.*mpibohb\.load_result\(directory\)"):
        mpibohb.logged_results_to_HBS_result  # noqa: B018 - the attribute access is the test
    with pytest.raises(ImportError, match=r"logged_results_to_HBS_result'.*mpibohb\.load_result\(directory\)"):
        from mpibohb import logged_results_to_HBS_result  # noqa: F401 - the import is the test
    with pytest.raises(ImportError, match="HpBandSter's package layout"):
        from mpibohb import core  # noqa: F401
    with pytest.raises(AttributeError, match="Result.data is HpBandSter's internal dict.*get_all_runs"):
        small_bohb().run(1, toy_loss).data  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'nothing'$"):
        mpibohb.nothing  # noqa: B018


def test_a_function_naming_working_directory_gets_the_optimizer_s(tmp_path: Path) -> None:
    """HpBandSter's compute(config, budget, working_directory) as a plain function; its master's
    working_directory reached compute, and so does the optimizer's here."""
    seen: set[str] = set()

    def f(config: dict, budget: float, working_directory: str) -> float:
        seen.add(working_directory)
        return toy_loss(config, budget)

    small_bohb(working_directory=tmp_path / "shared").run(n_iterations=1, worker=f)
    assert seen == {str(tmp_path / "shared")} and (tmp_path / "shared").is_dir()
    seen.clear()
    small_bohb(run_dir=tmp_path / "run").run(n_iterations=1, worker=f)
    assert seen == {str(tmp_path / "run")}


@pytest.mark.parametrize("below", ["", "sub"])
def test_a_run_dir_in_the_place_of_a_file_is_refused_naming_it(tmp_path: Path, below: str) -> None:
    from mpibohb.files import RunFileError

    (tmp_path / "notes.txt").write_text("a user's file")
    run_dir = tmp_path / "notes.txt" / below if below else tmp_path / "notes.txt"
    shown = f"{tmp_path / 'notes.txt'} is a file" if not below else f"{run_dir}: {tmp_path / 'notes.txt'} is a file"
    with pytest.raises(RunFileError, match=re.escape(f"run_dir {shown}, not a directory")):
        small_bohb(run_dir=run_dir).run(n_iterations=1, worker=toy_loss)
    assert (tmp_path / "notes.txt").read_text() == "a user's file"


@pytest.mark.parametrize("rank, said", [(None, True), ("0", True), ("2", False)])
def test_hpbandsters_connection_arguments_are_said_to_be_ignored_once_per_job(rank: str | None, said: bool,
                                                                               monkeypatch, caplog) -> None:
    monkeypatch.delenv("PMI_RANK", raising=False)
    if rank is not None:
        monkeypatch.setenv("PMI_RANK", rank)  # as MPICH's mpiexec sets it on every rank
    with caplog.at_level(logging.INFO, logger="mpibohb"):
        small_bohb(run_id="exp", nameserver="127.0.0.1")
    assert ("ignoring HpBandSter arguments ['nameserver', 'run_id']" in caplog.text) is said


def _runs(*rows: tuple) -> Result:
    """A Result of ``(config_id index, budget, loss or None, finished)`` rows."""
    runs = [Run((0, 0, index), budget, loss, None, {"submitted": finished - 1, "started": finished - 1,
                                                    "finished": finished}, None if loss is not None else "failed")
            for index, budget, loss, finished in rows]
    id2config = {run.config_id: {"config": {"x": run.config_id[2]}, "config_info": {}} for run in runs}
    return Result(runs, id2config, {"min_budget": 1, "max_budget": 9, "eta": 3})


@pytest.mark.parametrize("rows, times, losses", [
    # the last run failed after the incumbent: its time closes the trajectory
    (((0, 1, 0.5, 1.0), (1, 9, 0.3, 2.0), (2, 9, None, 3.0)), [1.0, 2.0, 3.0], [0.5, 0.3, 0.3]),
    # the last run has the incumbent's loss (another configuration): no closing point
    (((0, 1, 0.5, 1.0), (1, 9, 0.3, 2.0), (2, 9, 0.3, 3.0)), [1.0, 2.0], [0.5, 0.3]),
    # the last run is the incumbent
    (((0, 1, 0.5, 1.0), (1, 9, 0.7, 2.0), (2, 9, 0.2, 3.0)), [1.0, 2.0, 3.0], [0.5, 0.7, 0.2]),
    # a worse run last, then a failed one: HpBandSter closes at the failed one's time
    (((0, 9, 0.2, 1.0), (1, 9, 0.6, 2.0), (2, 1, None, 3.0)), [1.0, 3.0], [0.2, 0.2]),
    # nothing succeeded
    (((0, 1, None, 1.0), (1, 9, None, 2.0)), [], []),
])
def test_the_incumbent_trajectory_closes_as_hpbandsters(rows, times, losses):
    """HpBandSter's ``get_incumbent_trajectory`` closes with the last incumbent at the time of the
    last run, failed ones included, unless that run's loss is the incumbent's; it crashes when
    nothing succeeded, where this returns empty lists. (The expected lists were checked against
    HpBandSter 0.7.4's own function on the same runs.)"""
    trajectory = _runs(*rows).get_incumbent_trajectory()
    assert trajectory["times_finished"] == times and trajectory["losses"] == losses


def test_the_incumbent_history_drops_a_configuration_that_failed_on_a_larger_budget():
    # (0, 0, 2) is best at budget 3 and fails at 9: get_incumbent_id leaves it out, so must the
    # history that report and plot show (HpBandSter's trajectory keeps it to the end)
    result = _runs((1, 3, 0.36, 1.0), (2, 3, 0.19, 2.0), (2, 9, None, 3.0), (3, 1, 0.01, 4.0))
    history = result.get_incumbent_history()
    assert [c[2] for c in history["config_ids"]] == [1, 2, 1, 1]
    assert history["losses"] == [0.36, 0.19, 0.36, 0.36] and history["times_finished"] == [1.0, 2.0, 3.0, 4.0]
    assert result.get_incumbent_id() == (0, 0, 1)
    assert result.get_incumbent_trajectory()["config_ids"][-1] == (0, 0, 2)  # HpBandSter's, unchanged


@pytest.mark.parametrize("seed", range(60))
def test_the_incumbent_history_is_the_incumbent_after_every_run(seed: int) -> None:
    rng = np.random.default_rng(seed)
    failing = 0.25 if seed < 30 else 0.6  # the second half often ends with no usable run left
    rows = [(int(rng.integers(8)), float(rng.choice([1, 3, 9])),
             None if rng.random() < failing else float(rng.integers(10)) / 10, float(t)) for t in range(1, 40)]
    history = _runs(*rows).get_incumbent_history()
    expected = []  # (time, config id, budget, loss) at each change of get_incumbent_run over the prefixes
    now = None
    for end in range(1, len(rows) + 1):
        run = _runs(*rows[:end]).get_incumbent_run()
        now = None if run is None else (run.config_id, run.budget, run.loss)
        if now is not None and (not expected or expected[-1][1:] != now):
            expected.append((rows[end - 1][3], *now))
    if now is not None and expected[-1][0] < rows[-1][3]:
        expected.append((rows[-1][3], *expected[-1][1:]))
    points = zip(history["times_finished"], history["config_ids"], history["budgets"], history["losses"])
    assert list(points) == expected


class _KeyWithoutRepr(int):
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize("info, change", [
    ({"val": float("nan")}, "a NaN or infinite float becomes a string"),
    ({"ids": {1, 2}}, "a set becomes its repr"),
    ({"per_epoch": {1: 0.5}}, "the key 1 becomes a string"),
    ({"ok": (1, [np.float32(2.0), np.arange(2)])}, None),  # tuples as lists, numpy as numbers: nothing lost
    ({"epochs": [{"a": 1}] * 1500 + [{2: 0.5}]}, "the key 2 becomes a string"),  # past the 1,000th item too
    ({_KeyWithoutRepr(7): 1.0}, "the key <_KeyWithoutRepr whose repr fails"),
])
def test_an_info_the_run_directory_keeps_changed_is_said_once(info: dict, change: str | None, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    def with_info(config: dict, budget: float) -> dict:
        return {"loss": toy_loss(config, budget), "info": info}

    with caplog.at_level("WARNING", logger="mpibohb"):
        result = small_bohb(run_dir=tmp_path / "run").run(n_iterations=1, worker=with_info)
    said = [r.getMessage() for r in caplog.records if "its info is kept in the run directory" in r.getMessage()]
    assert len(said) == (change is not None) and all(change in line for line in said)
    assert result.get_all_runs()[0].info is info  # the run's own Result keeps it as it was
    from mpibohb import load_result

    stored = load_result(tmp_path / "run").get_all_runs()[0].info
    assert stored == {"ok": [1, [2.0, [0, 1]]]} if change is None else stored != info


def test_keys_besides_loss_and_info_are_named_once(caplog: pytest.LogCaptureFixture) -> None:
    # HpBandSter's results.json kept the whole dict; here they were dropped without a word
    def with_accuracy(config: dict, budget: float) -> dict:
        return {"loss": toy_loss(config, budget), "info": {}, "accuracy_beside": 0.9}

    with caplog.at_level("WARNING", logger="mpibohb"):
        result = small_bohb().run(n_iterations=1, worker=with_accuracy)
    said = [r.getMessage() for r in caplog.records if "besides 'loss' and 'info'" in r.getMessage()]
    assert said == ["compute returned ['accuracy_beside'] besides 'loss' and 'info': mpibohb keeps only those two "
                    "(HpBandSter's results.json kept the whole dict); put what you want kept in 'info'"]
    assert result.failed_runs() == []


def test_a_space_changed_after_the_optimizer_was_made_is_refused_before_any_evaluation() -> None:
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0)}, seed=1)
    optimizer = BOHB(cs, min_budget=1, max_budget=9, seed=1)
    cs.add(CS.CategoricalHyperparameter("c", ["a", "b"]))  # before, an IndexError in the model mid-run
    evaluated = []
    with pytest.raises(ValueError, match=r"space was changed after the optimizer was made \(added: c, Type: "
                                         r"Categorical.*make BOHB/HyperBand/RandomSearch after"):
        optimizer.run(n_iterations=8, worker=lambda config, budget: evaluated.append(config) or config["x"])
    assert evaluated == []


class _Optimiser:
    """A categorical's choice that is an object of the user's (no ``__eq__``: only itself is equal)."""

    def __init__(self, name: str) -> None:
        self.name = name


def test_objects_among_a_categorical_s_choices_reach_compute_and_the_result_as_themselves() -> None:
    choices = [_Optimiser("sgd"), _Optimiser("adam")]
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0)}, seed=1)
    cs.add(CS.CategoricalHyperparameter("opt", choices))
    given = []
    result = HyperBand(cs, min_budget=1, max_budget=9, seed=1).run(
        n_iterations=2, worker=lambda config, budget: given.append(config["opt"]) or config["x"])
    assert given and all(any(value is choice for choice in choices) for value in given)
    mapping = result.get_id2config_mapping()
    incumbent = mapping[result.get_incumbent_id()]["config"]
    assert CS.Configuration(cs, values=incumbent)["opt"] is incumbent["opt"]  # a configuration of the space
    incumbent["x"] = 2.0  # editing the copy leaves the Result as it was
    assert result.get_id2config_mapping()[result.get_incumbent_id()]["config"]["x"] != 2.0
    copied = pickle.loads(pickle.dumps(HyperBand(cs, min_budget=1, max_budget=9, seed=1)))  # new addresses
    assert copied.run(n_iterations=1, worker=lambda config, budget: config["x"])  # not "the space was changed"


def test_lists_among_the_choices_stay_the_space_s_when_compute_or_a_user_edits_a_configuration() -> None:
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0)}, seed=1)
    cs.add(CS.CategoricalHyperparameter("layers", [[64, 64], [128]]))

    def compute(config: dict, budget: float) -> float:
        config["layers"].append(0)  # compute's config is its own, to its lists
        return config["x"]

    result = HyperBand(cs, min_budget=1, max_budget=9, seed=1).run(n_iterations=1, worker=compute)
    for entry in result.get_id2config_mapping().values():
        entry["config"]["layers"].append(1)
    assert cs["layers"].choices == ([64, 64], [128])
    assert {tuple(e["config"]["layers"]) for e in result.get_id2config_mapping().values()} == {(64, 64), (128,)}


def test_a_forbidden_clause_added_after_the_optimizer_was_made_is_honoured() -> None:
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0), "c": ["a", "b", "z"]}, seed=1)
    optimizer = HyperBand(cs, min_budget=1, max_budget=9, seed=1)
    cs.add(CS.ForbiddenEqualsClause(cs["c"], "z"))
    result = optimizer.run(n_iterations=2, worker=lambda config, budget: config["x"])
    assert {e["config"]["c"] for e in result.get_id2config_mapping().values()} == {"a", "b"}
