"""Asynchronous BOHB against synchronous BOHB: the incumbent's regret at equal total budget and at
equal simulated wall time, with 1 and with K simulated workers (issue 20's quality criterion), for
either model of BOHB (issue 22: the tpe model is compared in asynchronous mode too).

    python -m benchmarks.asynchronous_quality [--problems branin ...] [--model hpbandster tpe]
                                              [--seeds 10] [--workers 1 32] [--sigma 1.0]
                                              [--n_iterations N] [--time_iterations 2] [--quick]
                                              [--json OUT]

Each run is ``mpibohb.simulate``: the real run loop, optimizer and ``Result`` against K virtual
workers on a simulated clock (no master or communication cost is simulated). Per model, problem of
``benchmarks/problems.py`` (default: all but those that train models), K and seed, runs of both schedules:

    simulate(BOHB(problem.space(seed), problem.min_budget, problem.max_budget, problem.eta, seed=seed,
                  asynchronous=False or True, model=model),
             n_iterations=N, ceil(time_iterations x N) or those that fit in T,
             worker=problem.evaluate (noise: noise_generator(seed)), n_workers=K,
             duration=lambda config, budget: budget * f(config))

``N`` is the problem's own ``n_iterations`` (or ``--n_iterations``); the runs with N are the "own"
runs, those with ``ceil(time_iterations x N)`` (2 x N by default) the "long" runs, those with the
most iterations that end by T (below) the "fitted" runs. ``f = exp(sigma z)``
is the configuration's own run-time factor (log-normal, sigma ``--sigma``, 1.0 by default; the same
at every budget of the configuration). ``z`` is a standard normal from a hash of the configuration
(BLAKE2b of its sorted items, to a uniform, then the normal's inverse CDF, as in
``benchmarks/heterogeneous.py``), so every schedule sees the same f for the same configuration. The
loss does not depend on f.

Scoring as in ``benchmarks/quality.py``: after each finished evaluation (in order of finishing),
the incumbent is the configuration with the lowest loss on the largest budget evaluated so far,
and its score is ``problem.score`` (regret of its noise-free, full-fidelity value). Per model,
problem and K:

(a) equal total budget (the own runs): the score when the cumulative budget (sum of the budgets of
    the finished evaluations) reaches the synchronous run's total, or the asynchronous run's total
    if smaller. Asynchronous runs the same numbers of evaluations per budget as synchronous, so the
    two totals are equal (the JSON's ``same_total`` says whether they were) and this is the final
    incumbent.
(b) equal simulated wall time, as a user with a fixed allocation sees it: the allocation is
    T = the span (the last evaluation's finish) of the synchronous own run of the same seed, the
    time a synchronous user needs for the problem's own run. Each schedule then gets the most
    iterations whose run ends by T (the "fitted" run), and is scored by its incumbent at T: a user
    who plans a run to fit an allocation (with ``mpibohb.simulate`` or from experience) and wants
    it to finish, with its last brackets complete. Both get the same T, seeds, noise and f and the
    same search for the iterations: over the grid N, N + 1/4, N + 1/2 and N + 1 of the way to the
    long runs' iterations (N, 1.25 N, 1.5 N, 2 N by default, rounded up), by bisection from the
    own and long runs (at most two more runs per schedule and seed). Spans are not monotone in the
    iterations (f differs per configuration), so it is the boundary this search finds, and the
    synchronous schedule can fit more than N too (an extra bracket fills workers that idle in the
    tail). With K = 1 no search is run: the span is the sum of the run times, which every further
    iteration lengthens, so N is the most that fits for either schedule. Asynchronous gains here
    what it saves in the tail: its own run ends earlier (the table's span ratio), so more
    iterations fit in T. This is the criterion's "at equal wall time".
(c) the allocation T cuts the run: both schedules run ``ceil(time_iterations x N)`` iterations
    (2 x N by default), meant to be more than fit in T, as a user does who sets n_iterations high
    and lets the allocation end the run; each is scored at T. (With K = 32 and s = 1, 2 x N is not
    always more: T is long because the synchronous own run idles in its tail; the JSON counts the
    long runs that ended before T in ``ended_before_T``, their final incumbent is read.)
    Before its tail the asynchronous schedule hands out the same jobs as the synchronous one (a
    promotion from a complete rung, else a new configuration, and an early promotion only when no
    configuration is left to start; the synchronous schedule starts the next bracket whenever the
    open ones have no job, so it never idles before its tail either); they can differ in the order
    of jobs due at the same moment.
    So (c) can show no gain while the long runs are short of their tails at T: the JSON's
    ``started_share_at_T`` (the largest share over seeds of a long run's budget started before T)
    says whether T lies before 0.75, the share from which the asynchronous tail may begin
    (``TAIL_SHARE`` in ``mpibohb/scheduling/asynchronous.py``). (c) is the design first asked
    for; (b) replaced it as the criterion because of this.

With K = 1 the two schedules are identical by construction: one worker never waits for another, so
the asynchronous schedule hands out the synchronous schedule's jobs in the same order, and "better"
is impossible there; the K = 1 rows check that identity (difference 0).

Each cell gives the mean and standard error over seeds of both schedules, the difference
(asynchronous - synchronous, negative: asynchronous better) with the paired standard error of the
per-seed differences, and a verdict from the combined standard error sqrt(se_sync^2 + se_async^2):
"better" if the difference is below minus it, "worse" if above it, else "equal within s.e.".

Progress goes to stderr, one line per run; the markdown tables to stdout; ``--json OUT`` writes the
settings, the rows and every run's summary. Runs are serial, in one process. ``--quick`` (branin,
2 seeds, K 1 and 8, 8 iterations) takes about 10 seconds per model.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.problems import get_problem, noise_generator, offline_problems
from benchmarks.quality import charges, incumbent_steps, standard_error, step_values
from benchmarks.run_times import duration_of

WORKERS = [1, 32]
SIGMA = 1.0
SEEDS = 10
MODELS = ("hpbandster", "tpe")
TIME_ITERATIONS = 2.0
GRID = (0.0, 0.25, 0.5, 1.0)  # a fitted run's iterations: N plus these shares of the way to the long runs'
SCHEDULES = ("synchronous", "asynchronous")
LENGTHS = ("own", "long")
QUICK = {"problems": ["branin"], "seeds": 2, "workers": [1, 8], "n_iterations": 8}
Runs = dict[str, list[dict[str, Any]]]  # schedule -> one run per seed


def long_iterations(iterations: int, factor: float) -> int:
    """The long runs' iterations: ``ceil(factor x iterations)`` (a tolerance for float products)."""
    return max(iterations, math.ceil(factor * iterations - 1e-9))


def one_run(problem_name: str, workers: int, schedule: str, seed: int, sigma: float,
            n_iterations: int | None, model: str = "hpbandster", keep_busy: bool = False) -> dict[str, Any]:
    """One simulated BOHB run: cumulative budget, start and finish times and incumbent score after
    each evaluation (in order of finishing); ``keep_busy``: the asynchronous schedule with it."""
    from mpibohb import BOHB, simulate

    problem = get_problem(problem_name)
    iterations = n_iterations or problem.n_iterations
    optimizer = BOHB(problem.space(seed), min_budget=problem.min_budget, max_budget=problem.max_budget,
                     eta=problem.eta, seed=seed, asynchronous=schedule == "asynchronous", model=model,
                     keep_busy=keep_busy and schedule == "asynchronous")
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
    return {"problem": problem_name, "model": model, "workers": workers, "schedule": schedule, "seed": seed,
            "sigma": sigma, "n_iterations": iterations, "evaluations": len(runs),
            "failed": sum(run.loss is None for run in runs), "total_budget": float(budgets[-1]),
            "span": float(times[-1]), "work": work, "final": float(values[-1]),
            "budgets": budgets.tolist(), "times": times.tolist(), "scores": values.tolist(),
            "increments": np.cumsum(charges(records, "increments")).tolist(),
            "starts": sorted(run.time_stamps["started"] for run in runs), "start_budgets":
                [run.budget for run in sorted(runs, key=lambda run: run.time_stamps["started"])],
            "wall": wall}


def at(xs: list[float], ys: list[float], x: float) -> float:
    """The step function through (xs, ys) at x (with a relative tolerance for float sums of budgets)."""
    return float(step_values(np.array(xs), np.array(ys), np.array([x * (1 + 1e-12)]))[0])


def started_share(run: dict[str, Any], moment: float) -> float:
    """The share of ``run``'s total budget in evaluations started before ``moment``."""
    started = sum(budget for start, budget in zip(run["starts"], run["start_budgets"]) if start < moment)
    return started / run["total_budget"]


def iteration_grid(iterations: int, longest: int) -> list[int]:
    """The numbers of iterations a fitted run may have: N and :data:`GRID` of the way to the long runs'."""
    return sorted({iterations + math.ceil(share * (longest - iterations) - 1e-9) for share in GRID})


def fitted_run(run_of: Any, grid: list[int], known: dict[int, dict[str, Any]], moment: float) -> dict[str, Any]:
    """The run with the most iterations of ``grid`` that ends by ``moment``, by bisection over the
    grid from ``known`` runs (those with its first and last entries): spans are not strictly
    monotone in the iterations, so it is the boundary this search finds. When even the first
    does not fit, that one (it is read at ``moment``)."""
    cache = dict(known)

    def fits(index: int) -> bool:
        n = grid[index]
        if n not in cache:
            cache[n] = run_of(n)
        return bool(cache[n]["span"] <= moment * (1 + 1e-12))

    low, high = 0, len(grid) - 1
    if fits(high):
        low = high
    while high - low > 1 and fits(low):
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    chosen = dict(cache[grid[low]])
    chosen["tried"] = sorted(n for n in cache if n not in (grid[0], grid[-1]))
    return chosen


def verdict(synchronous: np.ndarray, asynchronous: np.ndarray) -> dict[str, Any]:
    """Means, standard errors, the difference and the verdict (lower score is better)."""
    sync_se, async_se = standard_error(synchronous), standard_error(asynchronous)
    difference = float(asynchronous.mean() - synchronous.mean())
    combined = math.hypot(sync_se, async_se)
    word = "better" if difference < -combined else "worse" if difference > combined else "equal within s.e."
    return {"synchronous": float(synchronous.mean()), "synchronous_se": sync_se,
            "asynchronous": float(asynchronous.mean()), "asynchronous_se": async_se,
            "difference": difference, "difference_se": standard_error(asynchronous - synchronous),
            "combined_se": combined, "verdict": word,
            "identical": bool(np.array_equal(synchronous, asynchronous, equal_nan=True))}


def equal_budget(own: Runs) -> dict[str, Any]:
    """(a): both own runs scored at the smaller of their total budgets, per seed."""
    budgets = np.array([min(s["total_budget"], a["total_budget"]) for s, a in zip(*(own[name] for name in SCHEDULES))])
    scores = {name: np.array([at(run["budgets"], run["scores"], b) for run, b in zip(own[name], budgets)])
              for name in SCHEDULES}
    return {"total": float(budgets.mean()), **verdict(scores["synchronous"], scores["asynchronous"])}


def _spans(runs: Runs) -> dict[str, np.ndarray]:
    return {name: np.array([run["span"] for run in runs[name]]) for name in SCHEDULES}


def _at_moments(runs: Runs, moments: np.ndarray, key: str) -> dict[str, np.ndarray]:
    return {name: np.array([at(run["times"], run[key], t) for run, t in zip(runs[name], moments)])
            for name in SCHEDULES}


def equal_time(own: Runs, fitted: Runs) -> dict[str, Any]:
    """(b): each schedule's fitted run (the most iterations that end by T, T = the synchronous own
    run's span), scored at T, per seed."""
    moments = _spans(own)["synchronous"]
    scores = _at_moments(fitted, moments, "scores")
    done = _at_moments(fitted, moments, "budgets")
    spans, own_spans = _spans(fitted), _spans(own)
    figures = {"moment": float(moments.mean()), **verdict(scores["synchronous"], scores["asynchronous"]),
               "span_ratio": float(np.mean(own_spans["asynchronous"] / own_spans["synchronous"]))}
    for name in SCHEDULES:
        iterations = np.array([run["n_iterations"] for run in fitted[name]])
        figures[f"{name}_iterations"] = float(iterations.mean())
        figures[f"{name}_iterations_range"] = [int(iterations.min()), int(iterations.max())]
        figures[f"{name}_budget_at_T"] = float(done[name].mean())
        figures[f"{name}_span"] = float(spans[name].mean())
        figures[f"{name}_not_fitting"] = int(sum(span > t * (1 + 1e-12) for span, t in zip(spans[name], moments)))
        figures[f"{name}_runs_tried"] = int(sum(len(run["tried"]) for run in fitted[name]))
    return figures


def cut_at_time(own: Runs, long: Runs) -> dict[str, Any]:
    """(c): both long runs (more iterations than fit in T) scored at T = the synchronous own run's span."""
    moments = _spans(own)["synchronous"]
    scores = _at_moments(long, moments, "scores")
    done = _at_moments(long, moments, "budgets")
    figures = {"moment": float(moments.mean()), "long_iterations": long["synchronous"][0]["n_iterations"],
               **verdict(scores["synchronous"], scores["asynchronous"])}
    for name in SCHEDULES:
        figures[f"{name}_budget_at_T"] = float(done[name].mean())
        figures[f"{name}_ended_before_T"] = int(sum(run["span"] < t for run, t in zip(long[name], moments)))
        figures[f"{name}_started_share_at_T"] = max(started_share(run, t) for run, t in zip(long[name], moments))
    return figures


def summarise(problem: str, workers: int, runs: dict[str, Runs], model: str = "hpbandster") -> dict[str, Any]:
    """One row: (a) at equal total budget, (b) at equal simulated wall time with runs that fit in
    it, (c) with runs cut at it, over the seeds."""
    pairs = list(zip(runs["own"]["synchronous"], runs["own"]["asynchronous"]))
    return {"problem": problem, "model": model, "workers": workers, "seeds": len(pairs),
            "measure": get_problem(problem).measure,
            "same_total": all(math.isclose(s["total_budget"], a["total_budget"]) for s, a in pairs),
            "same_evaluations": all(s["evaluations"] == a["evaluations"] for s, a in pairs),
            "budget": equal_budget(runs["own"]), "time": equal_time(runs["own"], runs["fitted"]),
            "cut": cut_at_time(runs["own"], runs["long"])}


def _pm(mean: float, error: float) -> str:
    return f"{mean:.3g} ± {error:.2g}"


BUDGET_HEADER = ["| problem | model | K | seeds | total budget | synchronous | asynchronous"
                 " | async - sync (paired s.e.) | combined s.e. | verdict |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
TIME_HEADER = ["| problem | model | K | seeds | T | async / sync span, own runs | iterations that fit, synchronous"
               " | iterations that fit, asynchronous | budget done by T, synchronous | budget done by T, asynchronous"
               " | synchronous at T | asynchronous at T | async - sync (paired s.e.) | combined s.e. | verdict |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
CUT_HEADER = ["| problem | model | K | seeds | T | iterations, long runs | asynchronous budget started by T (largest"
              " share) | budget done by T, synchronous | budget done by T, asynchronous | synchronous at T"
              " | asynchronous at T | async - sync (paired s.e.) | combined s.e. | verdict |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]


def _verdict_text(figures: dict[str, Any], workers: int) -> str:
    """The verdict, marked as identical by construction where K = 1 gave the same scores."""
    if workers == 1 and figures["identical"]:
        return "identical (K = 1)"
    return str(figures["verdict"])


def _cell(row: dict[str, Any]) -> str:
    return f"| {row['problem']} | {row.get('model', 'hpbandster')} | {row['workers']} | {row['seeds']}"


def _comparison(c: dict[str, Any], workers: int) -> str:
    return (f" | {_pm(c['synchronous'], c['synchronous_se'])} | {_pm(c['asynchronous'], c['asynchronous_se'])}"
            f" | {c['difference']:+.3g} ({c['difference_se']:.2g}) | {c['combined_se']:.2g}"
            f" | {_verdict_text(c, workers)} |")


def budget_line(row: dict[str, Any]) -> str:
    """A row of table (a): the own runs at equal total budget."""
    c = row["budget"]
    return (f"{_cell(row)} | {c['total']:,.0f}{'' if row['same_total'] else ' (totals differ)'}"
            + _comparison(c, row["workers"]))


def _iterations(c: dict[str, Any], name: str) -> str:
    low, high = c[f"{name}_iterations_range"]
    spread = f" ({low}..{high})" if low != high else ""
    late = f", {c[f'{name}_not_fitting']} not by T" if c[f"{name}_not_fitting"] else ""
    return f"{c[f'{name}_iterations']:.1f}{spread}{late}"


def time_line(row: dict[str, Any]) -> str:
    """A row of table (b): the fitted runs at T."""
    c = row["time"]
    return (f"{_cell(row)} | {c['moment']:,.0f} | {c['span_ratio']:.3f} | {_iterations(c, 'synchronous')}"
            f" | {_iterations(c, 'asynchronous')}"
            f" | {c['synchronous_budget_at_T']:,.0f} | {c['asynchronous_budget_at_T']:,.0f}"
            + _comparison(c, row["workers"]))


def cut_line(row: dict[str, Any]) -> str:
    """A row of table (c): the long runs read at T."""
    c = row["cut"]
    ended = [f"{c[f'{name}_ended_before_T']} {name}" for name in SCHEDULES if c[f"{name}_ended_before_T"]]
    return (f"{_cell(row)} | {c['moment']:,.0f} | {c['long_iterations']}"
            f"{' (ended before T: ' + ', '.join(ended) + ')' if ended else ''}"
            f" | {c['asynchronous_started_share_at_T']:.0%}"
            f" | {c['synchronous_budget_at_T']:,.0f} | {c['asynchronous_budget_at_T']:,.0f}"
            + _comparison(c, row["workers"]))


def shortfalls(rows: list[dict[str, Any]]) -> list[str]:
    """Plain sentences for every cell where the criterion (a: not worse; b: better) does not hold."""
    out = []
    for row in rows:
        cell = f"{row['problem']}, model {row.get('model', 'hpbandster')}, K = {row['workers']}"
        budget, moment = row["budget"], row["time"]
        if budget["verdict"] == "worse":
            out.append(f"- {cell}: at equal total budget asynchronous is WORSE than synchronous beyond the standard"
                       f" error ({budget['difference']:+.3g}, combined s.e. {budget['combined_se']:.2g}).")
        if row["workers"] == 1 and moment["identical"]:
            out.append(f"- {cell}: at equal simulated wall time not better: with one worker the two schedules are"
                       " identical by construction (difference 0), so better is impossible.")
        elif moment["verdict"] != "better":
            word = "WORSE" if moment["verdict"] == "worse" else "not better"
            out.append(f"- {cell}: at equal simulated wall time asynchronous is {word} ({moment['verdict']}:"
                       f" {moment['difference']:+.3g}, combined s.e. {moment['combined_se']:.2g}).")
        if not row["same_total"]:
            out.append(f"- {cell}: the two schedules' total budgets differ.")
    return out


def cell_runs(name: str, k: int, seeds: int, sigma: float, iterations: int | None, factor: float,
              model: str, progress: Any, keep_busy: bool = False) -> dict[str, Runs]:
    """The own, long and fitted runs of both schedules for one model, problem and K, over the seeds."""
    own_iterations = iterations or get_problem(name).n_iterations
    lengths = {"own": own_iterations, "long": long_iterations(own_iterations, factor)}
    # one worker: the span is the sum of the run times, which every further iteration lengthens
    grid = iteration_grid(own_iterations, lengths["long"]) if k > 1 else [own_iterations]
    runs: dict[str, Runs] = {length: {s: [] for s in SCHEDULES} for length in (*LENGTHS, "fitted")}
    for seed in range(seeds):
        for length in LENGTHS:
            for schedule in SCHEDULES:
                run = one_run(name, k, schedule, seed, sigma, lengths[length], model, keep_busy)
                run["length"] = length
                runs[length][schedule].append(run)
                progress(run)
        moment = runs["own"]["synchronous"][-1]["span"]
        for schedule in SCHEDULES:
            def run_of(n: int, schedule: str = schedule, seed: int = seed) -> dict[str, Any]:
                run = one_run(name, k, schedule, seed, sigma, n, model, keep_busy)
                run["length"] = "search"
                progress(run)
                return run

            known = {lengths[length]: runs[length][schedule][-1] for length in reversed(LENGTHS)}
            fitted = fitted_run(run_of, grid, known, moment)
            fitted["length"] = "fitted"
            runs["fitted"][schedule].append(fitted)
    return runs


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", help="problem names (default: every one that trains no model)")
    parser.add_argument("--model", nargs="+", choices=MODELS, default=["hpbandster"],
                        help="BOHB's model(s), each a row of its own (default hpbandster)")
    parser.add_argument("--seeds", type=int, help=f"seeds per problem, K and schedule (default {SEEDS})")
    parser.add_argument("--workers", type=int, nargs="+", help=f"K values (default {WORKERS})")
    parser.add_argument("--sigma", type=float, default=SIGMA, help=f"sigma of log f (default {SIGMA})")
    parser.add_argument("--n_iterations", type=int, help="iterations of the own runs (default: the problem's own)")
    parser.add_argument("--time_iterations", type=float, default=TIME_ITERATIONS,
                        help="the long runs (read at equal wall time) have ceil(this x the own runs' iterations)"
                             f" (default {TIME_ITERATIONS:g})")
    parser.add_argument("--quick", action="store_true",
                        help="branin, 2 seeds, K 1 and 8, 8 iterations (each unless given): a few seconds")
    parser.add_argument("--keep-busy", action="store_true",
                        help="the asynchronous schedule with keep_busy=True (extra jobs for idle workers)")
    parser.add_argument("--json", help="write the settings, rows and runs to this file as JSON")
    args = parser.parse_args(argv)
    quick = QUICK if args.quick else {}
    args.problems = args.problems or quick.get("problems") or offline_problems()
    args.seeds = args.seeds or quick.get("seeds") or SEEDS
    args.workers = args.workers or quick.get("workers") or WORKERS
    args.n_iterations = args.n_iterations or quick.get("n_iterations")
    for name in args.problems:
        get_problem(name)
    if args.seeds < 1 or min(args.workers) < 1 or args.sigma < 0 or args.time_iterations < 1:
        parser.error("--seeds and --workers must be at least 1, --sigma at least 0, --time_iterations at least 1")
    return args


def print_tables(rows: list[dict[str, Any]], factor: float) -> None:
    print("(a) At equal total budget (the synchronous own run's total; asynchronous spends the same):\n")
    print("\n".join(BUDGET_HEADER + [budget_line(row) for row in rows]))
    print("\n(b) At equal simulated wall time T = the span of the synchronous run with the problem's own iterations,"
          " per seed; each schedule with the most iterations whose run ends by T:\n")
    print("\n".join(TIME_HEADER + [time_line(row) for row in rows]))
    print(f"\n(c) The allocation T cuts the run: both schedules with ceil({factor:g} x the problem's own iterations),"
          " read at T:\n")
    print("\n".join(CUT_HEADER + [cut_line(row) for row in rows]))
    missed = shortfalls(rows)
    print("\nWhere the criterion (at equal budget at least as good within the s.e.; at equal wall time better)"
          " does not hold:\n")
    print("\n".join(missed) if missed else "- nowhere: it holds in every cell.")


def combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from the JSON of several runs of this module (for example one per model), for the
    report: their rows and runs in order, the settings of the first with every part's models and
    commands."""
    settings = dict(parts[0]["settings"])
    settings["models"] = [model for part in parts for model in part["settings"].get("models", ["hpbandster"])]
    settings["commands"] = [command for part in parts
                            for command in part["settings"].get("commands", [part["settings"].get("command")])
                            if command]
    return {"settings": settings, "rows": [row for part in parts for row in part["rows"]],
            "runs": [run for part in parts for run in part["runs"]]}


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    started = time.perf_counter()
    print(f"BOHB (model {', '.join(args.model)}), synchronous (default) against asynchronous=True, simulated with K"
          f" workers; run time = budget x f, f = exp({args.sigma:g} z) per configuration; {args.seeds} seeds;"
          f" own runs: {args.n_iterations or 'each problem own'} iterations, long runs: {args.time_iterations:g} x"
          " as many. Score: regret of the incumbent (mean ± s.e. over seeds, lower is better); verdict from the"
          " combined s.e.; times in simulated seconds (budget units x f).\n", flush=True)
    rows, all_runs, done = [], [], [0]

    def progress(run: dict[str, Any]) -> None:
        done[0] += 1
        print(f"[{done[0]}, {time.perf_counter() - started:.0f} s] {run['problem']} {run['model']}"
              f" K={run['workers']} {run['schedule']} {run['length']} seed {run['seed']}: {run['evaluations']}"
              f" evaluations, budget {run['total_budget']:,.0f}, span {run['span']:,.0f}, final {run['final']:.3g}"
              f" ({run['wall']:.1f} s)", file=sys.stderr, flush=True)

    for model in args.model:
        for name in args.problems:
            for k in args.workers:
                runs = cell_runs(name, k, args.seeds, args.sigma, args.n_iterations, args.time_iterations,
                                 model, progress, args.keep_busy)
                rows.append(summarise(name, k, runs, model))
                all_runs += [{key: value for key, value in run.items()
                              if key not in ("budgets", "times", "scores", "starts", "start_budgets")}
                             for length in runs.values() for schedule in SCHEDULES for run in length[schedule]]
    print_tables(rows, args.time_iterations)
    wall = time.perf_counter() - started
    print(f"\n{done[0]} runs, {wall:.0f} s wall.", flush=True)
    if args.json:
        settings = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "problems": args.problems,
                    "models": args.model, "seeds": args.seeds, "workers": args.workers, "sigma": args.sigma,
                    "n_iterations": args.n_iterations, "time_iterations": args.time_iterations,
                    "schedules": list(SCHEDULES), "keep_busy": args.keep_busy, "wall": wall,
                    "command": "python -m benchmarks.asynchronous_quality" + "".join(
                        f" {arg}" for arg in (sys.argv[1:] if argv is None else argv))}
        Path(args.json).write_text(json.dumps({"settings": settings, "rows": rows, "runs": all_runs}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
