"""One set of argument checks for the public API (``mpibohb.checks``): numpy numbers count as
numbers, bools do not, and a bad value raises ``ValueError`` naming the argument and the value."""

from __future__ import annotations

import os
import sys
from fractions import Fraction
from typing import Any

import ConfigSpace as CS
import numpy as np
import pytest

from mpibohb import BOHB, HyperBand, RandomSearch, checks, json_result_logger
from mpibohb.executors.threads import ThreadExecutor


def space() -> CS.ConfigurationSpace:
    return CS.ConfigurationSpace({"x": (0.0, 1.0), "n": (1, 5)}, seed=1)


def toy_loss(config: dict, budget: float) -> float:
    return (config["x"] - 0.4) ** 2 + 0.01 * config["n"] + 1.0 / budget


BASE = dict(min_budget=1, max_budget=9, eta=3, seed=0)


# Every number of the public API: (argument, where it is given, a numpy value it takes, that value in Python,
# a value out of its range). "bohb" is the optimizer's constructor, "run" its run().
NUMBERS = [
    ("eta", "bohb", np.int64(3), 3, 1),
    ("min_budget", "bohb", np.float32(0.5), 0.5, 0),
    ("max_budget", "bohb", np.int32(9), 9, float("inf")),
    ("seed", "bohb", np.uint32(7), 7, -1),
    ("min_points_in_model", "bohb", np.int64(4), 4, 0),
    ("top_n_percent", "bohb", np.int16(20), 20, 100),
    ("num_samples", "bohb", np.int64(8), 8, 0),
    ("random_fraction", "bohb", np.float32(0.25), 0.25, 1.5),
    ("bandwidth_factor", "bohb", np.float64(2.5), 2.5, 0),
    ("min_bandwidth", "bohb", np.float32(0.5), 0.5, -1e-3),
    ("max_points_in_model", "bohb", np.int64(100), 100, 1),
    ("n_iterations", "run", np.int64(1), 1, 0),
    ("n_workers", "run", np.int64(2), 2, 0),
    ("max_rank_failures", "run", np.int8(2), 2, 0),
    ("timeout", "run", np.float32(60), 60.0, float("nan")),
]
FLAGS = [("fill_tail", "bohb"), ("resume", "run"), ("overwrite", "run"), ("workers_return", "run"),
         ("overwrite", "json_result_logger")]


def call_with(name: str, where: str, value: object) -> Any:
    """The optimizer made, or run, or the json_result_logger made, with ``name=value``."""
    if where == "bohb":
        return BOHB(configspace=space(), **{**BASE, name: value})
    if where == "run":
        return BOHB(configspace=space(), **BASE).run(**{"n_iterations": 1, "worker": toy_loss, name: value})
    return json_result_logger("unused", **{name: value})


def number_ids(case: tuple) -> str:
    return f"{case[0]}@{case[1]}"


# --- every public argument -------------------------------------------------------------------

@pytest.mark.parametrize(("name", "where", "numpy_value", "python_value", "out_of_range"), NUMBERS,
                         ids=[number_ids(case) for case in NUMBERS])
def test_a_bool_is_refused_where_a_number_is_wanted_and_named(name, where, numpy_value, python_value,
                                                             out_of_range) -> None:
    for bad in (True, False, np.bool_(True)):
        with pytest.raises(ValueError) as refused:
            call_with(name, where, bad)
        assert str(refused.value).startswith(f"{name} must be "), refused.value
        assert str(refused.value).endswith(f", got {bad!r}"), refused.value


@pytest.mark.parametrize(("name", "where", "numpy_value", "python_value", "out_of_range"), NUMBERS,
                         ids=[number_ids(case) for case in NUMBERS])
def test_a_bad_number_names_the_argument_and_the_value(name, where, numpy_value, python_value, out_of_range) -> None:
    for bad in ("3", [3], out_of_range):
        with pytest.raises(ValueError) as refused:
            call_with(name, where, bad)
        assert str(refused.value).startswith(f"{name} must be "), refused.value
        assert str(refused.value).endswith(f", got {bad!r}"), refused.value


@pytest.mark.parametrize(("name", "where", "numpy_value", "python_value", "out_of_range"),
                         [case for case in NUMBERS if case[1] == "bohb"],
                         ids=[number_ids(case) for case in NUMBERS if case[1] == "bohb"])
def test_numpy_numbers_are_taken_as_python_numbers_by_the_optimizers(name, where, numpy_value, python_value,
                                                                     out_of_range) -> None:
    settings = call_with(name, where, numpy_value).settings()
    assert settings[name] == python_value
    assert type(settings[name]) is type(python_value)  # settings are journaled and compared on resume


def test_a_run_takes_numpy_numbers_for_every_argument() -> None:
    """The issue's example: run(n_iterations=np.int64(1), n_workers=np.int64(2)) was refused."""
    result = BOHB(configspace=space(), **BASE).run(
        n_iterations=np.int64(1), worker=toy_loss, n_workers=np.int64(2), timeout=np.float32(60),
        max_rank_failures=np.int8(2), resume=np.bool_(False), overwrite=np.bool_(False),
        workers_return=np.bool_(True))
    assert len(result.get_all_runs()) == 13
    assert len(BOHB(configspace=space(), **BASE).run(np.int64(1), toy_loss).get_all_runs()) == 13


@pytest.mark.parametrize("optimizer", [HyperBand, RandomSearch])
def test_every_optimizer_takes_numpy_budgets_and_seed(optimizer) -> None:
    made = optimizer(configspace=space(), min_budget=np.float32(1), max_budget=np.int64(9), eta=np.float64(3),
                     seed=np.int64(3))
    assert (made.min_budget, made.max_budget, made.eta, made.seed) == (1.0, 9, 3.0, 3)
    assert {type(made.min_budget), type(made.max_budget), type(made.eta), type(made.seed)} <= {int, float}


@pytest.mark.parametrize(("name", "where"), FLAGS, ids=[f"{name}@{where}" for name, where in FLAGS])
def test_a_flag_takes_bools_numpy_bools_and_0_or_1_only(name: str, where: str) -> None:
    for good in (False, np.bool_(False), 0, np.int64(0)):
        call_with(name, where, good)
    for bad in ("yes", "no", 2, 1.0, None, np.float64(0)):
        with pytest.raises(ValueError) as refused:
            call_with(name, where, bad)
        assert str(refused.value) == f"{name} must be True or False, got {bad!r}"


def test_the_flags_come_back_as_bools() -> None:
    assert BOHB(configspace=space(), fill_tail=np.int64(1), **BASE).fill_tail is True
    assert json_result_logger("unused", overwrite=np.bool_(True)).overwrite is True


def test_threads_take_a_numpy_number_of_workers() -> None:
    executor = ThreadExecutor(toy_loss, os.getcwd(), np.int64(3))
    assert executor.n_workers == 3 and type(executor.n_workers) is int
    with pytest.raises(ValueError, match="^n_workers must be an integer >= 1, got True$"):
        ThreadExecutor(toy_loss, os.getcwd(), True)


# --- the checks themselves -------------------------------------------------------------------

@pytest.mark.parametrize("value", [3, np.int8(3), np.int64(3), np.uint64(3)])
def test_integer_takes_python_and_numpy_integers_as_int(value: object) -> None:
    checked = checks.integer("n", value, minimum=1, maximum=3)
    assert checked == 3 and type(checked) is int


@pytest.mark.parametrize("value", [True, np.bool_(False), 3.0, np.float64(2), 0, 4, None, "3"])
def test_integer_refuses_and_names(value: object) -> None:
    with pytest.raises(ValueError) as refused:
        checks.integer("n", value, minimum=1, maximum=3)
    assert str(refused.value) == f"n must be an integer >= 1 and <= 3, got {value!r}"


def test_optional_integer_takes_none_and_says_so() -> None:
    assert checks.optional_integer("seed", None, minimum=0) is None
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0 or None, got -1$"):
        checks.optional_integer("seed", -1, minimum=0)


@pytest.mark.parametrize(("value", "expected"), [
    (2, 2), (np.int64(2), 2), (2.5, 2.5), (np.float32(0.5), 0.5), (np.float64(2.5), 2.5), (Fraction(1, 2), 0.5)])
def test_real_takes_python_and_numpy_numbers_as_int_or_float(value: object, expected: float) -> None:
    checked = checks.real("x", value, minimum=0)
    assert checked == expected and type(checked) is type(expected)


@pytest.mark.parametrize(("value", "options", "shown"), [
    (True, {}, "x must be a finite number"),
    (np.bool_(True), {}, "x must be a finite number"),
    (float("nan"), {}, "x must be a finite number"),
    (float("nan"), {"finite": False}, "x must be a number"),
    (float("inf"), {}, "x must be a finite number"),
    (10**300 * 10**100, {}, "x must be a finite number"),  # no float holds it
    (np.array(1.0), {}, "x must be a finite number"),
    ("1", {}, "x must be a finite number"),
    (1, {"above": 1}, "x must be a finite number > 1"),
    (0, {"minimum": 0.5, "below": 2}, "x must be a finite number >= 0.5 and < 2"),
    (2, {"minimum": 0.5, "below": 2}, "x must be a finite number >= 0.5 and < 2"),
    (1.5, {"maximum": 1}, "x must be a finite number <= 1"),
    (-1, {"finite": False, "above": 0, "unit": "seconds"}, "x must be a number of seconds > 0"),
])
def test_real_refuses_and_names(value: object, options: dict, shown: str) -> None:
    with pytest.raises(ValueError) as refused:
        checks.real("x", value, **options)
    assert str(refused.value) == f"{shown}, got {value!r:.200}"


def test_real_takes_infinities_when_asked_and_bounds_inclusively() -> None:
    assert checks.real("x", float("inf"), finite=False, above=0) == float("inf")
    assert checks.real("x", -float("inf"), finite=False) == -float("inf")
    assert checks.real("x", 10**400, finite=False) == 10**400
    assert checks.real("x", 0, minimum=0, maximum=1) == 0 and checks.real("x", 1, minimum=0, maximum=1) == 1
    assert checks.optional_real("timeout", None, above=0) is None
    with pytest.raises(ValueError, match=r"^timeout must be a number of seconds > 0 or None, got 0$"):
        checks.optional_real("timeout", 0, finite=False, above=0, unit="seconds")


def test_a_long_value_is_cut_in_the_message() -> None:
    with pytest.raises(ValueError) as refused:
        checks.integer("n", "x" * 10_000)
    assert len(str(refused.value)) < 300


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), (np.bool_(True), True), (np.bool_(False), False), (1, True), (0, False),
    (np.int64(1), True), (np.uint8(0), False)])
def test_flag_takes_bools_and_0_or_1_as_bool(value: object, expected: bool) -> None:
    checked = checks.flag("resume", value)
    assert checked is expected


@pytest.mark.parametrize("value", [2, -1, 1.0, 0.0, np.float64(1), "True", "", None, [1]])
def test_flag_refuses_and_names(value: object) -> None:
    with pytest.raises(ValueError) as refused:
        checks.flag("resume", value)
    assert str(refused.value) == f"resume must be True or False, got {value!r}"


def test_is_integer_and_is_real_say_no_to_bools() -> None:
    assert checks.is_integer(np.int32(1)) and checks.is_integer(sys.maxsize)
    assert not any(checks.is_integer(v) for v in (True, np.bool_(True), 1.0, "1", None))
    assert checks.is_real(np.float32(1)) and checks.is_real(float("nan")) and checks.is_real(1)
    assert not any(checks.is_real(v) for v in (False, np.bool_(False), "1", None, 1j))
