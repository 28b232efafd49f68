"""``brackets="adaptive"``: Hyperband's most aggressive bracket while small budgets rank as larger
ones do, Hyperband's cycle otherwise (``mpibohb.bracket_choice``)."""

from __future__ import annotations

import logging
import math
import shutil
from collections import Counter
from pathlib import Path

import ConfigSpace as CS
import pytest
from cli_in_process import run_cli

import mpibohb.replay
from mpibohb import BOHB, HyperBand, load_result, simulate
from mpibohb.bracket_choice import MIN_PAIRS, AdaptiveBrackets
from mpibohb.bracket_plans import bracket_plan
from mpibohb.journal import read_journal

TOY = f"{Path(__file__).resolve().parents[1] / 'examples' / 'toy_worker.py'}:MyWorker"


def space() -> CS.ConfigurationSpace:
    return CS.ConfigurationSpace({"x": (0.0, 1.0), "y": (0.0, 1.0)}, seed=0)


def agreeing(config: dict, budget: float) -> float:
    """Every budget ranks configurations as the largest does."""
    return (config["x"] - 0.3) ** 2 + (config["y"] - 0.6) ** 2 + 1.0 / budget


def misleading(config: dict, budget: float) -> float:
    """Each budget ranks configurations the other way round from the next: 1, 9 alike; 3, 27 alike."""
    distance = (config["x"] - 0.3) ** 2 + (config["y"] - 0.6) ** 2
    return distance if round(math.log(budget, 3)) % 2 else 1.0 - distance


def starting_budgets(result) -> list[float]:
    """The budget each iteration's bracket started at, in iteration order."""
    first: dict[int, float] = {}
    for run in sorted(result.get_all_runs(), key=lambda r: (r.config_id[0], r.budget)):
        first.setdefault(run.config_id[0], run.budget)
    return [first[i] for i in sorted(first)]


def evaluations(result) -> list[tuple]:
    return [(run.config_id, run.budget, run.loss) for run in result.get_all_runs()]


def test_never_trusted_it_cycles_through_hyperbands_brackets() -> None:
    plans = AdaptiveBrackets(1, 27, 3)
    assert [plans(i) for i in range(9)] == [bracket_plan(i, 1, 27, 3) for i in range(9)]


def test_trusted_it_runs_the_most_aggressive_bracket_and_the_cycle_goes_on_where_it_stopped() -> None:
    plans = AdaptiveBrackets(1, 27, 3)
    assert plans(0).s == 3 and plans(1).s == 2  # no pairs yet: Hyperband's first two brackets
    for k in range(MIN_PAIRS):  # configurations ranked alike at 1 and 3
        plans.observe((0, 0, k), 1.0, float(k))
        plans.observe((0, 0, k), 3.0, float(k) / 2)
    assert plans.trusted and plans.pop_notices() == []  # said when a bracket is chosen
    assert [plans(i).s for i in range(2, 5)] == [3, 3, 3]
    assert plans.pop_notices() == ["brackets=adaptive: from iteration 2 on, the most aggressive bracket: small budgets "
                                   "rank configurations better than chance against the next budget (Kendall's tau "
                                   "1.00 over 10 promotions)"]
    for k in range(MIN_PAIRS, 4 * MIN_PAIRS):  # ... then many ranked the other way round
        plans.observe((0, 0, k), 1.0, float(k))
        plans.observe((0, 0, k), 3.0, -float(k))
    assert not plans.trusted
    assert [plans(i).s for i in range(5, 9)] == [1, 0, 3, 2]  # the cycle, from its third bracket on
    [notice] = plans.pop_notices()
    assert notice.startswith("brackets=adaptive: from iteration 5 on, Hyperband's brackets again: small budgets rank "
                             "configurations no better than chance") and "over 40 promotions" in notice


def test_a_forecast_decides_nothing_and_a_decision_stays() -> None:
    plans = AdaptiveBrackets(1, 27, 3)
    assert [plans.forecast(i).s for i in range(5)] == [3, 2, 1, 0, 3]
    for k in range(MIN_PAIRS):
        plans.observe((0, 0, k), 1.0, float(k))
        plans.observe((0, 0, k), 3.0, float(k))
    assert plans(1).s == 3  # iteration 0 decided now too, trusted: both run the most aggressive
    assert [plans.forecast(i).s for i in range(4)] == [3, 3, 3, 2]  # decided ones as decided; then the cycle
    plans.observe((0, 0, 99), 1.0, 5.0)
    assert plans(0).s == 3 and plans(1).s == 3


def test_failures_and_results_at_no_larger_budget_give_no_pairs() -> None:
    plans = AdaptiveBrackets(1, 27, 3)
    for k in range(3 * MIN_PAIRS):
        plans.observe((0, 0, k), 3.0, float(k))
        plans.observe((0, 0, k), 1.0, float(k))  # a smaller budget after a larger one
        plans.observe((1, 0, k), 1.0, float(k))
        plans.observe((1, 0, k), 3.0, float("inf"))  # failed
    assert plans.agreement.num_pairs == 0 and not plans.trusted


def test_where_small_budgets_agree_it_runs_the_most_aggressive_bracket_after_the_first(caplog) -> None:
    caplog.set_level(logging.INFO, logger="mpibohb")
    hyperband = simulate(HyperBand(space(), min_budget=1, max_budget=27, seed=3), n_iterations=8, worker=agreeing,
                         n_workers=1, duration=lambda c, b: b)
    adaptive = simulate(HyperBand(space(), min_budget=1, max_budget=27, seed=3, brackets="adaptive"), n_iterations=8,
                        worker=agreeing, n_workers=1, duration=lambda c, b: b)
    assert starting_budgets(hyperband) == [1, 3, 9, 27, 1, 3, 9, 27]
    assert starting_budgets(adaptive) == [1] * 8
    assert "brackets=adaptive: from iteration 1 on, the most aggressive bracket" in caplog.text
    assert adaptive.HB_config["brackets"] == "adaptive"


@pytest.mark.parametrize("family", [BOHB, HyperBand])
def test_where_small_budgets_mislead_it_runs_hyperbands_brackets_exactly(family) -> None:
    def run(brackets):
        optimizer = family(space(), min_budget=1, max_budget=27, seed=5, brackets=brackets)
        return simulate(optimizer, n_iterations=8, worker=misleading, n_workers=1, duration=lambda c, b: b)

    assert evaluations(run("adaptive")) == evaluations(run(None))


def cut(run_dir: Path, to: Path, share: float) -> None:
    """A copy of ``run_dir`` whose journal ends at ``share`` of its results (a run killed there)."""
    records = read_journal(run_dir)
    results = [i for i, record in enumerate(records) if record["type"] == "result"]
    shutil.copytree(run_dir, to)
    journal = to / "journal.jsonl"
    journal.write_text("".join(journal.read_text().splitlines(keepends=True)[:results[int(len(results) * share)] + 1]))


@pytest.mark.parametrize("share", [0.2, 0.5, 0.9])
def test_a_serial_run_cut_short_resumes_to_the_run_it_would_have_been(tmp_path, share) -> None:
    def run(run_dir: Path, resume: bool = False):
        optimizer = HyperBand(space(), min_budget=1, max_budget=27, seed=7, brackets="adaptive", run_dir=run_dir)
        return simulate(optimizer, n_iterations=6, worker=agreeing, n_workers=1, resume=resume,
                        duration=lambda c, b: b)

    whole = run(tmp_path / "whole")
    assert starting_budgets(whole) == [1] * 6  # Hyperband's would be 1, 3, 9, 27, 1, 3
    cut(tmp_path / "whole", tmp_path / "cut", share)
    assert evaluations(run(tmp_path / "cut", resume=True)) == evaluations(whole)


@pytest.mark.parametrize("schedule", [{}, {"asynchronous": True}, {"asynchronous": True, "keep_busy": True},
                                      {"fill_tail": True}])
def test_on_several_workers_the_journal_replays_the_choices_and_a_cut_run_completes(tmp_path, schedule) -> None:
    """The choices depend only on the order of results, which the journal keeps, so a replay makes
    them again; a run cut short resumes (its jobs cut off end in another order, so later choices
    may differ from the uninterrupted run's) to every evaluation of its brackets, each once."""
    def make(run_dir: Path | None = None) -> HyperBand:  # the choice is the schedule's: any model will do
        return HyperBand(space(), min_budget=1, max_budget=27, seed=7, brackets="adaptive", run_dir=run_dir,
                         **schedule)

    def run(run_dir: Path, resume: bool = False):
        return simulate(make(run_dir), n_iterations=10, worker=agreeing, n_workers=4, resume=resume,
                        duration=lambda c, b: b * (1 + c["x"]))

    whole = run(tmp_path / "whole")
    assert Counter(starting_budgets(whole))[1] > 3  # the adaptive choice did something: Hyperband has 3
    cut(tmp_path / "whole", tmp_path / "cut", 0.4)
    resumed = run(tmp_path / "cut", resume=True)
    assert len(set(evaluations(resumed))) == len(evaluations(resumed))
    for run_dir in ("whole", "cut"):
        replayed = make().make_optimizer(10)
        mpibohb.replay.replay(replayed, read_journal(tmp_path / run_dir))
        assert replayed.finished


def test_a_resume_with_other_brackets_is_refused(tmp_path) -> None:
    simulate(BOHB(space(), min_budget=1, max_budget=27, seed=1, brackets="adaptive", run_dir=tmp_path / "run"),
             n_iterations=2, worker=agreeing, n_workers=1, duration=lambda c, b: b)
    with pytest.raises(ValueError, match="brackets: 'adaptive' -> None"):
        simulate(BOHB(space(), min_budget=1, max_budget=27, seed=1, run_dir=tmp_path / "run"), n_iterations=3,
                 worker=agreeing, n_workers=1, duration=lambda c, b: b, resume=True)


@pytest.mark.parametrize("brackets", ["Adaptive", "auto", ""])
def test_another_word_is_refused_by_name(brackets) -> None:
    with pytest.raises(ValueError, match=f"brackets={brackets!r}: give a number of Hyperband's brackets, "
                                         "'adaptive', or None"):
        BOHB(space(), min_budget=1, max_budget=27, brackets=brackets)


def test_adaptive_brackets_from_the_command_line(tmp_path) -> None:
    run_dir = tmp_path / "run"
    base = ["--worker", TOY, "--min-budget", "9", "--max-budget", "243", "--run-dir", str(run_dir)]
    finished = run_cli("run", *base, "--n-iterations", "2", "--brackets", "adaptive")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert load_result(run_dir).HB_config["brackets"] == "adaptive"
    assert "brackets=adaptive" in finished.stderr  # the settings line
    report, status = run_cli("report", str(run_dir)), run_cli("status", str(run_dir))
    assert report.returncode == 0 and "brackets=adaptive" in report.stdout, report.stdout + report.stderr
    assert status.returncode == 0 and "finished" in status.stdout, status.stdout + status.stderr
    refused = run_cli("run", *base, "--n-iterations", "2", "--brackets", "sometimes", "--quiet")
    assert refused.returncode != 0 and "--brackets" in refused.stderr and "sometimes" in refused.stderr
