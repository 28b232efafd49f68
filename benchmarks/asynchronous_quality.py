"""Asynchronous BOHB against synchronous BOHB: the incumbent's regret at equal total budget and at
equal simulated wall time, with 1 and with K simulated workers (issue 20's quality criterion).

    python -m benchmarks.asynchronous_quality [--problems branin ...] [--seeds 10] [--workers 1 32]
                                              [--sigma 1.0] [--n_iterations N] [--quick] [--json OUT]

Each run is ``mpibohb.simulate``: the real run loop, optimizer and ``Result`` against K virtual
workers on a simulated clock (no master or communication cost is simulated). Per problem of
``benchmarks/problems.py`` (default: all but those that train models), K and seed, two runs:

    simulate(BOHB(problem.space(seed), problem.min_budget, problem.max_budget, problem.eta, seed=seed,
                  asynchronous=False or True),
             n_iterations=problem.n_iterations, worker=problem.evaluate (noise: noise_generator(seed)),
             n_workers=K, duration=lambda config, budget: budget * f(config))

with ``f = exp(sigma * z)`` the configuration's own run-time factor (log-normal, sigma ``--sigma``,
1.0 by default; the same at every budget of the configuration). ``z`` is a standard normal from a
hash of the configuration (BLAKE2b of its sorted items, to a uniform, then the normal's inverse
CDF, as in ``benchmarks/heterogeneous.py``), so both schedules see the same f for the same
configuration. The loss does not depend on f.

Scoring as in ``benchmarks/quality.py``: after each finished evaluation (in order of finishing),
the incumbent is the configuration with the lowest loss on the largest budget evaluated so far,
and its score is ``problem.score`` (regret of its noise-free, full-fidelity value). Per problem and K:

(a) equal total budget: the score when the cumulative budget (sum of the budgets of the finished
    evaluations) reaches the synchronous run's total, or the asynchronous run's total if smaller.
    Asynchronous runs the same numbers of evaluations per budget as synchronous, so the two totals
    are equal (the JSON's ``same_total`` says whether they were) and this is the final incumbent.
(b) equal simulated wall time: the score of each at T = min(span of the synchronous run, span of
    the asynchronous run) of the same seed (the span: the last evaluation's finish), and each
    schedule's span. With K = 1 the span is the sum of the run times of the run's own
    configurations, so (b) differs from (a) only through the two runs' different f.

Each cell gives the mean and standard error over seeds of both schedules, the difference
(asynchronous - synchronous, negative: asynchronous better) with the paired standard error of the
per-seed differences, and a verdict from the combined standard error sqrt(se_sync^2 + se_async^2):
"better" if the difference is below minus it, "worse" if above it, else "equal within s.e.".

Progress goes to stderr, one line per run; the markdown tables to stdout; ``--json OUT`` writes the
settings, the rows and every run's summary. Runs are serial, in one process. ``--quick`` (branin,
2 seeds, K 1 and 8, 8 iterations) takes a few seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.problems import get_problem, noise_generator, offline_problems
from benchmarks.quality import incumbent_steps, standard_error, step_values

WORKERS = [1, 32]
SIGMA = 1.0
SEEDS = 10
SCHEDULES = ("synchronous", "asynchronous")
QUICK = {"problems": ["branin"], "seeds": 2, "workers": [1, 8], "n_iterations": 8}
STANDARD_NORMAL = statistics.NormalDist()


def _plain(value: Any) -> Any:
    """A value whose repr is the same whatever type (numpy or Python) carries it."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return str(value)


def standard_normal(config: dict[str, Any]) -> float:
    """The configuration's z: BLAKE2b of its sorted items' repr, to a uniform, to a standard normal."""
    text = repr(sorted((str(name), _plain(value)) for name, value in config.items()))
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return STANDARD_NORMAL.inv_cdf((int.from_bytes(digest, "little") + 0.5) / 2**64)


def duration_of(sigma: float) -> Any:
    """``duration(config, budget) = budget * exp(sigma * z(config))``."""
    def duration(config: dict[str, Any], budget: float) -> float:
        return budget * math.exp(sigma * standard_normal(config)) if sigma else float(budget)

    return duration


def one_run(problem_name: str, workers: int, schedule: str, seed: int, sigma: float,
            n_iterations: int | None) -> dict[str, Any]:
    """One simulated BOHB run: cumulative budget, finish time and incumbent score after each evaluation."""
    from mpibohb import BOHB, simulate

    problem = get_problem(problem_name)
    iterations = n_iterations or problem.n_iterations
    optimizer = BOHB(problem.space(seed), min_budget=problem.min_budget, max_budget=problem.max_budget,
                     eta=problem.eta, seed=seed, asynchronous=schedule == "asynchronous")
    noise = noise_generator(seed)

    def evaluate(config: dict[str, Any], budget: float) -> float:
        return problem.evaluate(config, budget, noise)

    started = time.perf_counter()
    result = simulate(optimizer, n_iterations=iterations, worker=evaluate, n_workers=workers,
                      duration=duration_of(sigma))
    wall = time.perf_counter() - started
    work = sum(run.time_stamps["finished"] - run.time_stamps["started"] for run in result.get_all_runs())
    configs = result.get_id2config_mapping()
    runs = sorted(result.get_all_runs(), key=lambda run: run.time_stamps["finished"])  # stable: ties keep their order
    records = [{"charged": run.budget, "budget": run.budget, "loss": math.inf if run.loss is None else run.loss,
                "config": configs[run.config_id]["config"], "finished": run.time_stamps["finished"]} for run in runs]
    scores: dict[str, float] = {}

    def score(config: dict[str, Any]) -> float:
        key = json.dumps(config, sort_keys=True, default=str)
        if key not in scores:
            scores[key] = problem.score(config)
        return scores[key]

    budgets, times, values = incumbent_steps(records, score)
    return {"problem": problem_name, "workers": workers, "schedule": schedule, "seed": seed, "sigma": sigma,
            "n_iterations": iterations, "evaluations": len(runs), "failed": sum(run.loss is None for run in runs),
            "total_budget": float(budgets[-1]), "span": float(times[-1]), "work": work, "final": float(values[-1]),
            "budgets": budgets.tolist(), "times": times.tolist(), "scores": values.tolist(), "wall": wall}


def at(xs: list[float], ys: list[float], x: float) -> float:
    """The step function through (xs, ys) at x (with a relative tolerance for float sums of budgets)."""
    return float(step_values(np.array(xs), np.array(ys), np.array([x * (1 + 1e-12)]))[0])


def verdict(synchronous: np.ndarray, asynchronous: np.ndarray) -> dict[str, Any]:
    """Means, standard errors, the difference and the verdict (lower score is better)."""
    sync_se, async_se = standard_error(synchronous), standard_error(asynchronous)
    difference = float(asynchronous.mean() - synchronous.mean())
    combined = math.hypot(sync_se, async_se)
    word = "better" if difference < -combined else "worse" if difference > combined else "equal within s.e."
    return {"synchronous": float(synchronous.mean()), "synchronous_se": sync_se,
            "asynchronous": float(asynchronous.mean()), "asynchronous_se": async_se,
            "difference": difference, "difference_se": standard_error(asynchronous - synchronous),
            "combined_se": combined, "verdict": word}


def summarise(problem: str, workers: int, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One row: (a) at equal total budget, (b) at equal simulated wall time, over the seeds."""
    pairs = list(zip(runs["synchronous"], runs["asynchronous"]))
    budgets = np.array([min(s["total_budget"], a["total_budget"]) for s, a in pairs])
    moments = np.array([min(s["span"], a["span"]) for s, a in pairs])
    at_budget = {name: np.array([at(run["budgets"], run["scores"], b) for run, b in zip(runs[name], budgets)])
                 for name in SCHEDULES}
    at_time = {name: np.array([at(run["times"], run["scores"], t) for run, t in zip(runs[name], moments)])
               for name in SCHEDULES}
    spans = {name: np.array([run["span"] for run in runs[name]]) for name in SCHEDULES}
    return {"problem": problem, "workers": workers, "seeds": len(pairs), "measure": get_problem(problem).measure,
            "same_total": all(math.isclose(s["total_budget"], a["total_budget"]) for s, a in pairs),
            "same_evaluations": all(s["evaluations"] == a["evaluations"] for s, a in pairs),
            "budget": {"total": float(budgets.mean()), **verdict(at_budget["synchronous"], at_budget["asynchronous"])},
            "time": {"moment": float(moments.mean()), **verdict(at_time["synchronous"], at_time["asynchronous"]),
                     **{f"{name}_span": float(spans[name].mean()) for name in SCHEDULES},
                     **{f"{name}_span_se": standard_error(spans[name]) for name in SCHEDULES},
                     "span_ratio": float(np.mean(spans["asynchronous"] / spans["synchronous"]))}}


def _pm(mean: float, error: float) -> str:
    return f"{mean:.3g} ± {error:.2g}"


BUDGET_HEADER = ["| problem | K | seeds | total budget | synchronous | asynchronous | async - sync (paired s.e.)"
                 " | combined s.e. | verdict |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
TIME_HEADER = ["| problem | K | seeds | span, synchronous | span, asynchronous | async / sync span (per seed) | T"
               " | synchronous at T | asynchronous at T | async - sync (paired s.e.) | combined s.e. | verdict |",
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]


def budget_line(row: dict[str, Any]) -> str:
    c = row["budget"]
    return (f"| {row['problem']} | {row['workers']} | {row['seeds']} | {c['total']:,.0f}"
            f"{'' if row['same_total'] else ' (totals differ)'} | {_pm(c['synchronous'], c['synchronous_se'])}"
            f" | {_pm(c['asynchronous'], c['asynchronous_se'])} | {c['difference']:+.3g} ({c['difference_se']:.2g})"
            f" | {c['combined_se']:.2g} | {c['verdict']} |")


def time_line(row: dict[str, Any]) -> str:
    c = row["time"]
    return (f"| {row['problem']} | {row['workers']} | {row['seeds']}"
            f" | {c['synchronous_span']:,.0f} ± {c['synchronous_span_se']:,.0f}"
            f" | {c['asynchronous_span']:,.0f} ± {c['asynchronous_span_se']:,.0f} | {c['span_ratio']:.3f}"
            f" | {c['moment']:,.0f}"
            f" | {_pm(c['synchronous'], c['synchronous_se'])} | {_pm(c['asynchronous'], c['asynchronous_se'])}"
            f" | {c['difference']:+.3g} ({c['difference_se']:.2g}) | {c['combined_se']:.2g} | {c['verdict']} |")


def shortfalls(rows: list[dict[str, Any]]) -> list[str]:
    """Plain sentences for every cell where the criterion does not hold."""
    out = []
    for row in rows:
        cell = f"{row['problem']}, K = {row['workers']}"
        budget = row["budget"]
        if budget["verdict"] == "worse":
            out.append(f"- {cell}: at equal total budget asynchronous is WORSE than synchronous beyond the standard"
                       f" error ({budget['difference']:+.3g}, combined s.e. {budget['combined_se']:.2g}).")
        if row["time"]["verdict"] != "better":
            out.append(f"- {cell}: at equal simulated wall time asynchronous is not better"
                       f" ({row['time']['verdict']}: {row['time']['difference']:+.3g},"
                       f" combined s.e. {row['time']['combined_se']:.2g}).")
        if not row["same_total"]:
            out.append(f"- {cell}: the two schedules' total budgets differ.")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", help="problem names (default: every one that trains no model)")
    parser.add_argument("--seeds", type=int, help=f"seeds per problem, K and schedule (default {SEEDS})")
    parser.add_argument("--workers", type=int, nargs="+", help=f"K values (default {WORKERS})")
    parser.add_argument("--sigma", type=float, default=SIGMA, help=f"sigma of log f (default {SIGMA})")
    parser.add_argument("--n_iterations", type=int, help="iterations per run (default: the problem's own)")
    parser.add_argument("--quick", action="store_true",
                        help="branin, 2 seeds, K 1 and 8, 8 iterations (each unless given): a few seconds")
    parser.add_argument("--json", help="write the settings, rows and runs to this file as JSON")
    args = parser.parse_args(argv)
    quick = QUICK if args.quick else {}
    problems = args.problems or quick.get("problems") or offline_problems()
    seeds = args.seeds or quick.get("seeds") or SEEDS
    workers = args.workers or quick.get("workers") or WORKERS
    n_iterations = args.n_iterations or quick.get("n_iterations")
    for name in problems:
        get_problem(name)
    if seeds < 1 or min(workers) < 1 or args.sigma < 0:
        parser.error("--seeds and --workers must be at least 1, --sigma at least 0")
    total = len(problems) * len(workers) * len(SCHEDULES) * seeds
    started = time.perf_counter()
    print(f"BOHB, synchronous (default) against asynchronous=True, simulated with K workers; run time = budget x f,"
          f" f = exp({args.sigma:g} z) per configuration; {seeds} seeds; n_iterations:"
          f" {n_iterations or 'each problem own'}. Score: regret of the incumbent (mean ± s.e. over seeds, lower is"
          " better); verdict from the combined s.e.; times in simulated seconds (budget units x f).\n", flush=True)
    rows, all_runs, done = [], [], 0
    for name in problems:
        for k in workers:
            runs: dict[str, list[dict[str, Any]]] = {schedule: [] for schedule in SCHEDULES}
            for seed in range(seeds):
                for schedule in SCHEDULES:
                    run = one_run(name, k, schedule, seed, args.sigma, n_iterations)
                    runs[schedule].append(run)
                    done += 1
                    print(f"[{done}/{total}, {time.perf_counter() - started:.0f} s] {name} K={k} {schedule}"
                          f" seed {seed}: {run['evaluations']} evaluations, budget {run['total_budget']:,.0f},"
                          f" span {run['span']:,.0f}, final {run['final']:.3g} ({run['wall']:.1f} s)",
                          file=sys.stderr, flush=True)
            rows.append(summarise(name, k, runs))
            all_runs += [{key: value for key, value in run.items() if key not in ("budgets", "times", "scores")}
                         for schedule in SCHEDULES for run in runs[schedule]]
    print("(a) At equal total budget (the synchronous run's total; asynchronous spends the same):\n")
    print("\n".join(BUDGET_HEADER + [budget_line(row) for row in rows]))
    print("\n(b) At equal simulated wall time T = min(span of synchronous, span of asynchronous) per seed"
          " (spans: the last evaluation's finish):\n")
    print("\n".join(TIME_HEADER + [time_line(row) for row in rows]))
    missed = shortfalls(rows)
    print("\nWhere the criterion (at equal budget at least as good within the s.e.; at equal wall time better)"
          " does not hold:\n")
    print("\n".join(missed) if missed else "- nowhere: it holds in every cell.")
    wall = time.perf_counter() - started
    print(f"\n{total} runs, {wall:.0f} s wall.", flush=True)
    if args.json:
        settings = {"problems": problems, "seeds": seeds, "workers": workers, "sigma": args.sigma,
                    "n_iterations": n_iterations, "schedules": list(SCHEDULES), "wall": wall}
        Path(args.json).write_text(json.dumps({"settings": settings, "rows": rows, "runs": all_runs}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
