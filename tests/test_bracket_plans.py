"""The budget ladder and the bracket table of Hyperband (``mpibohb.bracket_plans``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mpibohb import bracket_plans
from mpibohb.bracket_plans import BracketPlan, bracket_plan, max_stages, rung_budgets, runs_per_budget


def test_ladder_1_243_3_has_six_rungs_including_the_minimum() -> None:
    assert rung_budgets(1, 243, 3) == [1.0, 3.0, 9.0, 27.0, 81.0, 243.0]
    assert max_stages(1, 243, 3) == 5


def test_ladder_9_243_3_has_four_rungs() -> None:
    assert rung_budgets(9, 243, 3) == [9.0, 27.0, 81.0, 243.0]


def test_runs_per_budget_9_243_3_four_iterations() -> None:
    assert runs_per_budget(4, 9, 243, 3) == {9.0: 27, 27.0: 21, 81.0: 13, 243.0: 8}


def test_bracket_plans_9_243_3() -> None:
    expected = [
        ((27, 9, 3, 1), (9.0, 27.0, 81.0, 243.0)),
        ((12, 4, 1), (27.0, 81.0, 243.0)),
        ((6, 2), (81.0, 243.0)),
        ((4,), (243.0,)),
    ]
    for iteration, (num_configs, budgets) in enumerate(expected):
        plan = bracket_plan(iteration, 9, 243, 3)
        assert plan.num_configs == num_configs
        assert plan.budgets == budgets
        assert plan.s == 3 - iteration
        assert plan.num_stages == len(budgets)


def _paper_plan(s: int, s_max: int, eta: float) -> tuple[int, ...]:
    """The Hyperband paper's bracket sizes, computed here in exact rational arithmetic."""
    from fractions import Fraction

    eta_q = Fraction(eta).limit_denominator(10**6)
    n = math.ceil(Fraction(s_max + 1, s + 1) * eta_q**s)
    return tuple(math.floor(n / eta_q**i) for i in range(s + 1))


@pytest.mark.parametrize(
    ("min_budget", "max_budget", "eta"),
    [(1, 243, 3), (9, 243, 3), (1, 100, 3), (1, 8, 2), (1, 100, 2), (0.5, 81, 3), (1, 1000, 10), (2, 50, 2.5)],
)
def test_bracket_sizes_follow_the_paper_formula(min_budget: float, max_budget: float, eta: float) -> None:
    ladder = rung_budgets(min_budget, max_budget, eta)
    s_max = len(ladder) - 1
    for iteration in range(s_max + 1):
        plan = bracket_plan(iteration, min_budget, max_budget, eta)
        s = s_max - iteration
        assert plan.s == s
        assert plan.num_configs == _paper_plan(s, s_max, eta)
        assert plan.budgets == tuple(ladder[s_max - s :])


def test_non_integer_ratio_1_100_3() -> None:
    ladder = rung_budgets(1, 100, 3)
    assert len(ladder) == 5
    assert ladder[-1] == 100.0
    assert ladder == pytest.approx([100 / 81, 100 / 27, 100 / 9, 100 / 3, 100], rel=1e-12)
    assert all(budget >= 1 for budget in ladder)
    plans = [bracket_plan(i, 1, 100, 3).num_configs for i in range(5)]
    assert plans == [(81, 27, 9, 3, 1), (34, 11, 3, 1), (15, 5, 1), (8, 2), (5,)]


def test_eta_2() -> None:
    assert rung_budgets(1, 8, 2) == [1.0, 2.0, 4.0, 8.0]
    plans = [(p.num_configs, p.budgets) for p in (bracket_plan(i, 1, 8, 2) for i in range(4))]
    assert plans == [
        ((8, 4, 2, 1), (1.0, 2.0, 4.0, 8.0)),
        ((6, 3, 1), (2.0, 4.0, 8.0)),
        ((4, 2), (4.0, 8.0)),
        ((4,), (8.0,)),
    ]


def test_min_equals_max_is_one_rung() -> None:
    assert rung_budgets(5, 5, 3) == [5.0]
    plan = bracket_plan(0, 5, 5, 3)
    assert plan == BracketPlan(s=0, num_configs=(1,), budgets=(5.0,))
    assert bracket_plan(7, 5, 5, 3) == plan
    assert runs_per_budget(3, 5, 5, 3) == {5.0: 3}


@pytest.mark.parametrize(
    ("min_budget", "max_budget", "eta", "num_rungs"),
    [(0.1, 1, math.sqrt(10), 3), (0.001, 1, 10, 4), (1 / 81, 1, 3, 5), (0.01, 1, 10, 3), (1e-3, 1e3, 10, 7)],
)
def test_budgets_below_one_are_exact(min_budget: float, max_budget: float, eta: float, num_rungs: int) -> None:
    ladder = rung_budgets(min_budget, max_budget, eta)
    assert len(ladder) == num_rungs
    assert ladder[0] == min_budget  # exactly, not 0.09999999999999998
    assert ladder[-1] == max_budget
    assert all(isinstance(budget, float) for budget in ladder)
    assert ladder == sorted(ladder)
    # every plan uses the same exact values
    for iteration in range(num_rungs):
        assert set(bracket_plan(iteration, min_budget, max_budget, eta).budgets) <= set(ladder)


def test_sqrt10_ladder_values_and_plan() -> None:
    ladder = rung_budgets(0.1, 1, math.sqrt(10))
    assert ladder == [0.1, pytest.approx(1 / math.sqrt(10), rel=1e-12), 1.0]
    assert bracket_plan(0, 0.1, 1, math.sqrt(10)).num_configs == (10, 3, 1)


def test_integer_ladders_have_no_rounding_noise() -> None:
    for min_budget, max_budget, eta in [(1, 3**10, 3), (1, 2**20, 2), (1, 10**6, 10), (4, 4 * 5**6, 5)]:
        ladder = rung_budgets(min_budget, max_budget, eta)
        assert all(budget == round(budget) for budget in ladder), ladder
        assert ladder[0] == min_budget


def test_brackets_cycle_after_s_max_plus_one_iterations() -> None:
    s_max = max_stages(1, 243, 3)
    first_cycle = [bracket_plan(i, 1, 243, 3) for i in range(s_max + 1)]
    assert [p.s for p in first_cycle] == [5, 4, 3, 2, 1, 0]
    assert len({p.num_configs for p in first_cycle}) == s_max + 1
    for i in range(s_max + 1, 3 * (s_max + 1)):
        assert bracket_plan(i, 1, 243, 3) == first_cycle[i % (s_max + 1)]


def test_fewer_brackets_cycle_through_the_most_aggressive_ones() -> None:
    hyperband = [bracket_plan(i, 1, 243, 3) for i in range(6)]
    for k in range(1, 6):
        plans = [bracket_plan(i, 1, 243, 3, brackets=k) for i in range(3 * k + 1)]
        assert plans == [hyperband[i % k] for i in range(3 * k + 1)]
    assert {p.s for p in (bracket_plan(i, 1, 243, 3, brackets=1) for i in range(7))} == {5}
    assert runs_per_budget(2, 9, 243, 3, brackets=1) == {9.0: 54, 27.0: 18, 81.0: 6, 243.0: 2}


@pytest.mark.parametrize(("brackets", "expected"), [(None, None), (1, 1), (3, 3), (4, None), (np.int64(2), 2)])
def test_checked_brackets_keeps_a_number_below_all_and_takes_all_as_none(brackets, expected) -> None:
    assert bracket_plans.checked_brackets(brackets, 9, 243, 3) == expected  # (9, 243, 3): four brackets


@pytest.mark.parametrize(("brackets", "message"), [
    (0, "brackets must be an integer >= 1, got 0"),
    (5, r"brackets=5: budgets 9 to 243 with eta 3 make 4 brackets; give 1 to 4 \(by default, all of them run\)"),
    (1.5, "brackets must be an integer >= 1, got 1.5"),
    (True, "brackets must be an integer >= 1, got True"),
    ("2", "brackets must be an integer >= 1, got '2'"),
])
def test_bad_brackets_are_refused_by_name(brackets, message) -> None:
    with pytest.raises(ValueError, match=message):
        bracket_plans.checked_brackets(brackets, 9, 243, 3)


def test_runs_per_budget_is_the_sum_of_the_plans() -> None:
    totals = runs_per_budget(11, 1, 100, 3)
    expected: dict[float, int] = {}
    for i in range(11):
        plan = bracket_plan(i, 1, 100, 3)
        for n, budget in zip(plan.num_configs, plan.budgets):
            expected[budget] = expected.get(budget, 0) + n
    assert totals == expected
    assert runs_per_budget(0, 9, 243, 3) == {9.0: 0, 27.0: 0, 81.0: 0, 243.0: 0}


@pytest.mark.parametrize(
    ("min_budget", "max_budget", "eta", "name", "shown"),
    [
        (0, 1, 3, "min_budget", "0"),
        (-1, 1, 3, "min_budget", "-1"),
        (2, 1, 3, "min_budget", "2"),
        (1, 2, 1, "eta", "1"),
        (1, 2, 0.5, "eta", "0.5"),
        (float("nan"), 1, 3, "min_budget", "nan"),
        (1, float("inf"), 3, "max_budget", "inf"),
        (1, 2, float("nan"), "eta", "nan"),
        (True, 2, 3, "min_budget", "True"),
        (1, 2, True, "eta", "True"),
        (1, "9", 3, "max_budget", "'9'"),
    ],
)
def test_bad_budgets_raise_value_error_naming_the_value(
    min_budget: object, max_budget: object, eta: object, name: str, shown: str
) -> None:
    for function in (bracket_plans.validate_budgets, rung_budgets, max_stages):
        with pytest.raises(ValueError) as error:
            function(min_budget, max_budget, eta)
        assert name in str(error.value)
        assert shown in str(error.value)
    with pytest.raises(ValueError):
        bracket_plan(0, min_budget, max_budget, eta)


def test_negative_iteration_raises() -> None:
    with pytest.raises(ValueError, match="-1"):
        bracket_plan(-1, 9, 243, 3)



def test_numpy_numbers_are_accepted_as_budgets() -> None:
    assert rung_budgets(np.int64(9), np.int64(243), np.int64(3)) == [9.0, 27.0, 81.0, 243.0]
    assert rung_budgets(np.float32(1), 243.0, 3) == [1.0, 3.0, 9.0, 27.0, 81.0, 243.0]


@pytest.mark.parametrize(("min_budget", "max_budget", "eta", "shown"), [
    (1, 1.5, 1.0000001, "make 4054652 budgets; at most 10000"),
    (1e-300, 1e300, 3, "a first bracket of about 3\\*\\*1257 configurations"),
    (1, 3 ** 19, 3, "a first bracket of about 3\\*\\*19 configurations"),
])
def test_a_ladder_that_could_never_run_is_refused(min_budget, max_budget, eta, shown) -> None:
    with pytest.raises(ValueError, match=shown):
        bracket_plans.rung_budgets(min_budget, max_budget, eta)


def test_long_ladders_that_can_run_are_accepted() -> None:
    assert len(bracket_plans.rung_budgets(1, 10, 1.01)) == 232
    assert len(bracket_plans.rung_budgets(1, 3 ** 18, 3)) == 19


@pytest.mark.parametrize("eta", [np.float32(3), np.int64(3), np.float64(3), 3.0])
def test_numpy_numbers_give_the_plans_of_python_numbers(eta) -> None:
    """Plans are cached by value: a numpy eta gives what eta=3 gives, whichever was asked first."""
    bracket_plans._bracket_cycle.cache_clear()
    numpy_first = bracket_plan(0, 1e-6, 243, eta)
    assert numpy_first == bracket_plan(0, 1e-6, 243, 3)
    assert numpy_first.num_configs[8] == 19683


def test_a_plan_of_an_array_budget_is_refused_as_before() -> None:
    with pytest.raises(ValueError, match="min_budget must be a finite number"):
        bracket_plan(0, np.array(1.0), 9, 3)
