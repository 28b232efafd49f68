"""Busy fraction of K workers when run times vary per configuration: synchronous, fill_tail and
asynchronous Hyperband side by side, each against the best any schedule could do on its run.

    python -m benchmarks.heterogeneous [--quick] [--seeds 3] [--workers 32 128 512 1024] [--sigmas 0 0.5 1]
                                       [--work-per-worker 20] [--brackets K] [--json OUT]

Everything runs through the public simulator, ``mpibohb.simulate``: the real run loop, optimizer
and ``Result`` against K virtual workers on a simulated clock (no master or communication cost is
simulated; the master's own computing is measured, as the wall seconds of each ``simulate`` call).

Workload (issue 20): ``HyperBand`` on a 2-d space (x, y in [0, 1]), budgets 1..81, eta 3, seeds
0 .. ``--seeds`` - 1 (default 3; ``--quick``: 1). A seed is the optimizer's seed, the space's, and
enters the hash that gives each configuration its run-time factor, so each seed is its own run with
its own configurations and factors.
An evaluation of a configuration at budget b lasts ``b * f`` simulated seconds, where
``f = exp(s * z)`` is the configuration's own factor: log-normal with sigma s and mean of log 0,
the same at every budget of the configuration. ``z`` is a standard normal computed from a hash of
the seed and the configuration's values, so every schedule sees the same f for the same
configuration and seed (and one z serves every s). The loss is Branin on (15x - 5, 15y) plus 1/b: cheap,
deterministic, independent of f. ``n_iterations`` gives each worker about ``--work-per-worker``
(20) times max_budget of expected work:

    n_iterations = ceil(20 * 81 * K / (E[work of one iteration] * exp(s**2 / 2)))

with E[work of one iteration] = (sum of n * b over one cycle of the 5 brackets) / 5 = 1902 / 5
budget units (``mpibohb.bracket_plans.runs_per_budget``) and exp(s**2 / 2) = E[f]. ``--brackets 1`` runs
``HyperBand(..., brackets=1)`` instead (every iteration the most aggressive bracket, 405 budget units).

Cells: K x s x schedule, schedule one of ``HyperBand(...)`` (synchronous: a new bracket only when
every open one waits), ``HyperBand(..., fill_tail=True)`` and ``HyperBand(..., asynchronous=True)``.
Per cell: evaluations, the run's total work W (simulated seconds), C the longest dependency chain
of one configuration (the sum of its run times over the budgets it ran at: those run one after
another), the span, ``mpibohb.simulation.busy_fraction(result, K)``, and the bound

    bound = W / (K * max(W / K, C))

the best busy fraction any schedule could reach with that run's evaluations (the span is at least
W / K and at least C). "all busy until" is the last moment all K workers were busy, as a share of
the span: the idle time after it is the run's tail. wall and CPU are the seconds the ``simulate``
call took on this machine, so wall / evaluations is the master's cost per decision (it includes the
loss function, microseconds). If the largest K's cells have fewer than ``--min-evaluations``
(100,000) evaluations, one more cell (asynchronous, s = 1, that K) raises n_iterations to reach it.

Each cell reports, over its seeds, the mean ± standard error of busy and of busy / bound and the
mean of the other columns (:func:`aggregate`). Progress goes to stderr, one line per run; the
markdown tables to stdout; ``--json OUT`` writes the settings, the rows of every seed (``rows``,
each with its ``seed``) and the cells over seeds (``cells``). The full sweep (36 cells, about 2.2
million evaluations per seed) runs serially on one core, some 12 minutes per seed here; ``--quick``
(K 32 and 128, s 0 and 1, 5 x max_budget per worker, one seed) takes well under a minute.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import struct
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

MIN_BUDGET, MAX_BUDGET, ETA, SEED = 1, 81, 3, 0  # SEED: the first seed
SEEDS = 3  # seeds per cell (--seeds)
SCHEDULES = ("synchronous", "fill_tail", "asynchronous", "keep_busy")
WORKERS = [32, 128, 512, 1024]
SIGMAS = [0.0, 0.5, 1.0]
WORK_PER_WORKER = 20  # expected work per worker, in units of max_budget
MIN_EVALUATIONS = 100_000  # at the largest K, for the master's cost per decision
STANDARD_NORMAL = statistics.NormalDist()


def space(seed: int = SEED) -> Any:
    """Two floats, x and y in [0, 1]."""
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=seed)
    cs.add([CS.UniformFloatHyperparameter("x", lower=0, upper=1), CS.UniformFloatHyperparameter("y", lower=0, upper=1)])
    return cs


def loss(config: dict[str, Any], budget: float) -> float:
    """Branin on (15x - 5, 15y), plus 1 / budget."""
    a, b = 15 * config["x"] - 5, 15 * config["y"]
    branin = (b - 5.1 / (4 * math.pi**2) * a**2 + 5 / math.pi * a - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(a)
    return branin + 10 + 1 / budget


def standard_normal(config: dict[str, Any], seed: int = SEED) -> float:
    """The configuration's z: a standard normal from a hash of the seed and its values' bits
    (BLAKE2b to a uniform, then the normal's inverse CDF: about 10 µs, where seeding a numpy Generator
    per call costs 140 µs, half of the master's time per decision)."""
    digest = hashlib.blake2b(struct.pack("<qdd", seed, config["x"], config["y"]), digest_size=8).digest()
    return STANDARD_NORMAL.inv_cdf((int.from_bytes(digest, "little") + 0.5) / 2**64)


def duration_of(sigma: float, seed: int = SEED) -> Any:
    """``duration(config, budget) = budget * exp(sigma * z(config))``."""
    def duration(config: dict[str, Any], budget: float) -> float:
        return budget * math.exp(sigma * standard_normal(config, seed)) if sigma else float(budget)

    return duration


def cycle(brackets: int | None = None) -> tuple[int, float, int]:
    """(iterations in one cycle of brackets, its work in budget units, its evaluations); ``brackets``
    as ``HyperBand``'s (``None``: all five)."""
    from mpibohb.bracket_plans import rung_budgets, runs_per_budget

    length = brackets or len(rung_budgets(MIN_BUDGET, MAX_BUDGET, ETA))
    runs = runs_per_budget(length, MIN_BUDGET, MAX_BUDGET, ETA, brackets)
    return length, sum(n * b for b, n in runs.items()), sum(runs.values())


def iterations_for(workers: int, sigma: float, work_per_worker: float, brackets: int | None = None) -> int:
    """n_iterations whose expected work is ``work_per_worker * max_budget`` per worker."""
    length, work, _ = cycle(brackets)
    return max(1, math.ceil(work_per_worker * MAX_BUDGET * workers / (work / length * math.exp(sigma**2 / 2))))


def evaluations_of(n_iterations: int, brackets: int | None = None) -> int:
    """Evaluations that ``n_iterations`` Hyperband iterations make."""
    from mpibohb.bracket_plans import runs_per_budget

    return sum(runs_per_budget(n_iterations, MIN_BUDGET, MAX_BUDGET, ETA, brackets).values())


def all_busy_until(runs: list[Any], workers: int) -> float:
    """The last simulated time at which all ``workers`` were evaluating (0 if never)."""
    events: dict[float, int] = defaultdict(int)
    for run in runs:
        events[run.time_stamps["started"]] += 1
        events[run.time_stamps["finished"]] -= 1
    running, last, full = 0, 0.0, False
    for moment in sorted(events):
        if full:
            last = moment  # all were busy from the previous event to this one
        running += events[moment]
        full = running >= workers
    return last


def work_of(runs: list[Any], n_iterations: int) -> tuple[float, float, float]:
    """The runs' work W (seconds), the longest chain C of one configuration's evaluations (they run
    one after another), and the share of W in extra brackets (keep_busy's: iterations from
    ``n_iterations`` on)."""
    chains: dict[Any, float] = defaultdict(float)
    for run in runs:
        chains[run.config_id] += run.time_stamps["finished"] - run.time_stamps["started"]
    work = sum(chains.values())
    extra = sum(seconds for config_id, seconds in chains.items() if config_id[0] >= n_iterations)
    return work, max(chains.values()), extra / work


def measure(workers: int, sigma: float, schedule: str, n_iterations: int, seed: int = SEED,
            brackets: int | None = None) -> dict[str, Any]:
    """One run of a cell: simulate it with ``seed`` (and ``HyperBand``'s ``brackets``) and measure it."""
    from mpibohb import HyperBand, simulate
    from mpibohb.simulation import busy_fraction

    optimizer = HyperBand(space(seed), min_budget=MIN_BUDGET, max_budget=MAX_BUDGET, eta=ETA, seed=seed,
                          fill_tail=schedule == "fill_tail", asynchronous=schedule in ("asynchronous", "keep_busy"),
                          keep_busy=schedule == "keep_busy", brackets=brackets)
    wall, cpu = time.perf_counter(), time.process_time()
    result = simulate(optimizer, n_iterations=n_iterations, worker=loss, n_workers=workers,
                      duration=duration_of(sigma, seed))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    runs = result.get_all_runs()
    work, chain, extra = work_of(runs, n_iterations)
    span = max(run.time_stamps["finished"] for run in runs)
    return {"workers": workers, "sigma": sigma, "schedule": schedule, "n_iterations": n_iterations, "seed": seed,
            "evaluations": len(runs), "failed": sum(run.loss is None for run in runs), "work": work,
            "chain": chain, "span": span, "extra": extra, "busy": busy_fraction(result, workers),
            "bound": work / (workers * max(work / workers, chain)),
            "all_busy_until": all_busy_until(runs, workers) / span, "wall": wall, "cpu": cpu}


HEADER = ["| K | s | schedule | seeds | iterations | evaluations | work W / K | extra work | chain C | span | busy"
          " | bound | busy / bound | all busy until | wall (s) | wall per evaluation (µs) |",
          "| ---: | ---: | --- " + "| ---: " * 13 + "|"]
MEANS = ("n_iterations", "evaluations", "failed", "work", "chain", "span", "busy", "bound", "ratio", "all_busy_until",
         "wall", "cpu", "extra")  # averaged over a cell's seeds
SPREADS = ("busy", "ratio")  # ... with their standard error


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per cell (K, s, schedule, iterations), in the order of first appearance: the mean over
    its seeds of :data:`MEANS` (``ratio`` is busy / bound per seed), the standard error of
    :data:`SPREADS` (``busy_se``, ``ratio_se``; ``None`` with one seed), and ``seeds``. Rows of a
    single-seed run without a ``seed`` key count as one seed each."""
    cells: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["workers"], row["sigma"], row["schedule"], row["n_iterations"]), []).append(row)
    out = []
    for (workers, sigma, schedule, _), same in cells.items():
        runs = [dict(row, ratio=row["busy"] / row["bound"]) for row in same]
        cell: dict[str, Any] = {"workers": workers, "sigma": sigma, "schedule": schedule, "seeds": len(runs)}
        cell.update({key: statistics.fmean(run.get(key, 0.0) for run in runs) for key in MEANS})
        cell.update({f"{key}_se": statistics.stdev(run[key] for run in runs) / math.sqrt(len(runs))
                     if len(runs) > 1 else None for key in SPREADS})
        out.append(cell)
    return out


def _share(cell: dict[str, Any], key: str) -> str:
    """``96.0%``, or ``96.0% ± 0.1%`` with the standard error over seeds."""
    error = cell.get(f"{key}_se")
    return f"{cell[key]:.1%}" if error is None else f"{cell[key]:.1%} ± {error:.1%}"


def line(cell: dict[str, Any]) -> str:
    """A cell of :func:`aggregate` (means over seeds) as a row of :data:`HEADER`."""
    return (f"| {cell['workers']} | {cell['sigma']:g} | {cell['schedule']} | {cell['seeds']}"
            f" | {cell['n_iterations']:,.0f} | {cell['evaluations']:,.0f} | {cell['work'] / cell['workers']:,.0f}"
            f" | {cell.get('extra', 0.0):.0%} | {cell['chain']:,.0f} | {cell['span']:,.0f} | {_share(cell, 'busy')}"
            f" | {cell['bound']:.1%}"
            f" | {_share(cell, 'ratio')} | {cell['all_busy_until']:.1%} | {cell['wall']:.1f}"
            f" | {cell['wall'] / cell['evaluations'] * 1e6:,.0f} |")


def progress(row: dict[str, Any], done: int, total: int) -> str:
    return (f"[{done}/{total}] K={row['workers']} s={row['sigma']:g} {row['schedule']} seed {row['seed']}:"
            f" {row['evaluations']:,} evaluations, busy {row['busy']:.1%} (bound {row['bound']:.1%}),"
            f" span {row['span']:,.0f}, wall {row['wall']:.1f} s")


def cost_lines(rows: list[dict[str, Any]], workers: int, sigma: float) -> list[str]:
    """The master's cost per decision at ``workers`` and ``sigma``: seconds per evaluation (``rows``:
    cells of :func:`aggregate`, means over seeds)."""
    out = [f"Master's cost per decision at K = {workers}, s = {sigma:g} (simulate's seconds / evaluations, means"
           " over seeds; includes the loss function and the duration function):", "",
           "| schedule | iterations | evaluations | wall (s) | CPU (s) | wall per evaluation (µs)"
           " | CPU per evaluation (µs) |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        if row["workers"] == workers and row["sigma"] == sigma:
            out.append(f"| {row['schedule']} | {row['n_iterations']:,.0f} | {row['evaluations']:,.0f}"
                       f" | {row['wall']:.1f} | {row['cpu']:.1f} | {row['wall'] / row['evaluations'] * 1e6:,.0f}"
                       f" | {row['cpu'] / row['evaluations'] * 1e6:,.0f} |")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="K 32 and 128, s 0 and 1, 5 x max_budget per worker, one seed (each unless given)")
    parser.add_argument("--seeds", type=int, help=f"seeds {SEED} .. {SEED} + N - 1 per cell (default {SEEDS})")
    parser.add_argument("--workers", type=int, nargs="+", help=f"K values (default {WORKERS})")
    parser.add_argument("--sigmas", type=float, nargs="+", help=f"sigma of log f (default {SIGMAS})")
    parser.add_argument("--schedules", nargs="+", choices=SCHEDULES, help="default: all three")
    parser.add_argument("--work-per-worker", type=float, help=f"in units of max_budget (default {WORK_PER_WORKER})")
    parser.add_argument("--min-evaluations", type=int,
                        help="evaluations of the extra cell at the largest K if its cells have fewer (default 100,000;"
                             " with --quick 0: no extra cell)")
    parser.add_argument("--brackets", type=int, help="HyperBand's brackets (default: all five; 1: the most aggressive)")
    parser.add_argument("--json", help="write the settings, the rows of every seed and the cells as JSON")
    args = parser.parse_args(argv)
    workers = args.workers or ([32, 128] if args.quick else WORKERS)
    sigmas = args.sigmas or ([0.0, 1.0] if args.quick else SIGMAS)
    schedules = args.schedules or list(SCHEDULES)
    seeds = list(range(SEED, SEED + (args.seeds or (1 if args.quick else SEEDS))))
    if len(seeds) < 1:
        parser.error("--seeds must be at least 1")
    per_worker = args.work_per_worker or (5 if args.quick else WORK_PER_WORKER)
    cells = [(k, s, schedule, iterations_for(k, s, per_worker, args.brackets))
             for k in workers for s in sigmas for schedule in schedules]
    largest = max(workers)
    min_evaluations = args.min_evaluations if args.min_evaluations is not None else 0 if args.quick else MIN_EVALUATIONS
    if min_evaluations and max(evaluations_of(c[3], args.brackets) for c in cells if c[0] == largest) < min_evaluations:
        n = iterations_for(largest, max(sigmas), per_worker, args.brackets)
        while evaluations_of(n, args.brackets) < min_evaluations:
            n = math.ceil(n * 1.05)
        cells.append((largest, max(sigmas), "asynchronous", n))
    length, work, evaluations = cycle(args.brackets)
    which = "" if args.brackets is None else f" (brackets={args.brackets})"
    print(f"HyperBand{which}, budgets {MIN_BUDGET}..{MAX_BUDGET}, eta {ETA}, seeds {', '.join(map(str, seeds))};"
          " run time ="
          f" budget x f, f log-normal (sigma s) per configuration; n_iterations = ceil({per_worker:g} x {MAX_BUDGET}"
          f" x K / ({work:g} / {length} x exp(s^2/2))) ({evaluations} evaluations per {length} iterations). Times in"
          " simulated seconds (budget units x f); each cell the mean over its seeds, ± the standard error.\n")
    rows = []
    for cell in cells:
        for seed in seeds:
            rows.append(measure(*cell, seed=seed, brackets=args.brackets))
            print(progress(rows[-1], len(rows), len(cells) * len(seeds)), file=sys.stderr, flush=True)
    means = aggregate(rows)
    print("\n".join(HEADER + [line(cell) for cell in means]))
    cost_sigma = max(sigmas)
    print()
    print("\n".join(cost_lines(means, largest, cost_sigma)))
    evaluations_run = sum(r["evaluations"] for r in rows)
    print(f"\nSweep: {len(rows)} runs ({len(means)} cells x {len(seeds)} seeds), {evaluations_run:,} evaluations,"
          f" {sum(r['wall'] for r in rows):.0f} s wall in simulate.")
    if args.json:
        settings = {"min_budget": MIN_BUDGET, "max_budget": MAX_BUDGET, "eta": ETA, "brackets": args.brackets,
                    "seeds": seeds, "workers": workers,
                    "sigmas": sigmas, "schedules": schedules, "work_per_worker": per_worker,
                    "cycle_work": work, "cycle_iterations": length, "cycle_evaluations": evaluations}
        Path(args.json).write_text(json.dumps({"settings": settings, "rows": rows, "cells": means}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
