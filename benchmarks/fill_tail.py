"""What ``fill_tail=True`` gives and costs: busy fraction over many schedules, and BOHB's final
incumbent with many workers, each against the default (a new bracket only when every open one waits).

    python -m benchmarks.fill_tail [--quick] [--seeds 10] [--jobs 2]

Everything is simulated (``mpibohb.simulate``): K virtual workers drive mpibohb's real
``Optimizer``, no master or communication cost, nothing slept. A run takes seconds.

1. Schedules: Hyperband's brackets (random configurations; the sampler does not change the schedule)
   for several budget ladders, numbers of iterations and K. An evaluation takes its budget, or its
   budget times a log-normal factor (sigma 0.3, three draws per cell) for run times that budget
   predicts only roughly, or its budget plus a fixed start-up of 0.3 times the largest budget.
   Per run-time model: the mean busy fraction of each mode, how many cells fill_tail makes worse
   (by more than 0.2 points), and the largest loss and gain.
2. Quality: BOHB on the offline problems of ``benchmarks/problems.py`` (not the MLP) with K
   virtual workers, an evaluation taking its budget; per mode the final incumbent's score
   (HpBandSter's rule: the lowest loss on the largest budget evaluated so far; regret where the
   optimum is known), mean and standard error over seeds, and the simulated span. fill_tail samples
   the configurations of the last brackets earlier, when the model has fewer results.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.problems import all_problems, noise_generator, offline_problems
from benchmarks.quality import incumbent_steps, standard_error
from benchmarks.simulated import simulated_run
from benchmarks.utilisation import toy_space

LADDERS = [(1, 27, 3), (1, 81, 3), (1, 243, 3), (1, 64, 2), (1, 9, 3), (0.5, 100, 4)]
ITERATIONS = [20, 40, 80]
WORKERS = [4, 8, 16, 32, 64]
SIGMA, NOISY_DRAWS = 0.3, 3
FIXED_COST = 0.3  # of max_budget: run time = budget + this, a start-up that does not shrink with the budget
RUN_TIMES = {"= budget": (0.0, 0.0), f"budget x log-normal (sigma {SIGMA}), {NOISY_DRAWS} draws": (SIGMA, 0.0),
             f"budget + {FIXED_COST} x max_budget (a fixed start-up cost)": (0.0, FIXED_COST)}
WORSE = 0.002  # a cell where fill_tail loses more than this busy fraction counts as worse


def schedule_busy(ladder: tuple[float, float, float], n_iterations: int, workers: int, fill_tail: bool,
                  sigma: float = 0.0, draw: int = 0, fixed: float = 0.0) -> float:
    """Busy fraction of Hyperband's schedule; run time = budget (times a log-normal factor with
    ``sigma``, plus ``fixed`` times max_budget)."""
    from mpibohb import HyperBand

    min_budget, max_budget, eta = ladder
    family = HyperBand(toy_space(), min_budget=min_budget, max_budget=max_budget, eta=eta, seed=0,
                       fill_tail=fill_tail)
    factors = np.random.default_rng([draw, 7])

    def duration(config: dict[str, Any], budget: float) -> float:
        return budget * (factors.lognormal(0.0, sigma) if sigma else 1.0) + fixed * max_budget

    return simulated_run(family, n_iterations, workers, lambda config, budget: config["x"], duration).busy


def schedule_cell(cell: tuple[Any, int, int, float, float]) -> tuple[float, float]:
    """(default, fill_tail) busy fraction of one cell, averaged over the draws when noisy."""
    ladder, n_iterations, workers, sigma, fixed = cell
    draws = range(NOISY_DRAWS if sigma else 1)
    default, fill_tail = (float(np.mean([schedule_busy(ladder, n_iterations, workers, fill, sigma, d, fixed)
                                         for d in draws])) for fill in (False, True))
    return default, fill_tail


SCHEDULE_HEADER = ["| run time | cells | busy, default | busy, fill_tail | cells worse | largest loss | largest gain |",
                   "|---|---:|---:|---:|---:|---:|---:|"]
QUALITY_HEADER = ["| problem | K | score, default | score, fill_tail | difference | span, default | span, fill_tail |",
                  "|---|---:|---:|---:|---:|---:|---:|"]


def schedule_rows(cells: list[tuple[Any, int, int]], jobs: int) -> list[dict[str, Any]]:
    """One row per duration model: busy fractions over the cells, printed as they come."""
    print("\n".join(SCHEDULE_HEADER), flush=True)
    rows = []
    for label, (sigma, fixed) in RUN_TIMES.items():
        with ProcessPoolExecutor(jobs) as pool:
            pairs = np.array(list(pool.map(schedule_cell, [(*cell, sigma, fixed) for cell in cells])))
        change = pairs[:, 1] - pairs[:, 0]
        rows.append({"run_time": label, "cells": len(cells), "default": pairs[:, 0].mean(),
                     "fill_tail": pairs[:, 1].mean(), "worse": int((change < -WORSE).sum()),
                     "loss": min(change.min(), 0.0), "gain": change.max()})
        print(schedule_line(rows[-1]), flush=True)
    return rows


def schedule_line(row: dict[str, Any]) -> str:
    return (f"| {row['run_time']} | {row['cells']} | {row['default']:.1%} | {row['fill_tail']:.1%} | {row['worse']} |"
            f" {'none' if row['loss'] == 0 else format(row['loss'], '+.1%')} | {row['gain']:+.1%} |")


def final_score(problem_name: str, workers: int, fill_tail: bool, seed: int) -> tuple[float, float]:
    """(final incumbent's score, span) of one simulated BOHB run."""
    from mpibohb import BOHB

    problem = all_problems()[problem_name]
    family = BOHB(problem.space(seed), min_budget=problem.min_budget, max_budget=problem.max_budget,
                  eta=problem.eta, seed=seed, fill_tail=fill_tail, model="hpbandster")  # as measured
    noise = noise_generator(seed)
    run = simulated_run(family, problem.n_iterations, workers,
                        lambda config, budget: problem.evaluate(config, budget, noise), lambda config, budget: budget)
    _, _, scores = incumbent_steps(run.runs, problem.score)
    return float(scores[-1]), run.span


def quality_cell(cell: tuple[str, int, bool, int]) -> tuple[float, float]:
    return final_score(*cell)


def quality_rows(problems: list[str], workers: list[int], seeds: int, jobs: int) -> list[dict[str, Any]]:
    """One row per problem and K, printed as it comes."""
    print("\n".join(QUALITY_HEADER), flush=True)
    rows = []
    for name in problems:
        for k in workers:
            cells = [(name, k, fill, seed) for fill in (False, True) for seed in range(seeds)]
            with ProcessPoolExecutor(jobs) as pool:
                results = np.array(list(pool.map(quality_cell, cells))).reshape(2, seeds, 2)
            scores, spans, difference = results[:, :, 0], results[:, :, 1], results[1, :, 0] - results[0, :, 0]
            rows.append({"problem": name, "workers": k, "seeds": seeds,
                         "default": scores[0].mean(), "default_se": standard_error(scores[0]),
                         "fill_tail": scores[1].mean(), "fill_tail_se": standard_error(scores[1]),
                         "difference": difference.mean(), "difference_se": standard_error(difference),
                         "default_span": spans[0].mean(), "fill_tail_span": spans[1].mean()})
            print(quality_line(rows[-1]), flush=True)
    return rows


def quality_line(row: dict[str, Any]) -> str:
    return (f"| {row['problem']} | {row['workers']} | {row['default']:.4g} ± {row['default_se']:.2g} |"
            f" {row['fill_tail']:.4g} ± {row['fill_tail_se']:.2g} | {row['difference']:+.3g} ±"
            f" {row['difference_se']:.2g} | {row['default_span']:.0f} | {row['fill_tail_span']:.0f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cells, problems and seeds: about a minute")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per problem and mode (default 10)")
    parser.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--json", help="write both tables' rows to this file as JSON")
    args = parser.parse_args(argv)
    ladders, iterations, workers = (LADDERS[:2], [40], [8, 32]) if args.quick else (LADDERS, ITERATIONS, WORKERS)
    problems = ["counting_ones_8", "branin"] if args.quick else offline_problems()
    seeds = min(args.seeds, 3) if args.quick else args.seeds
    cells = [(ladder, n, k) for ladder in ladders for n in iterations for k in workers]
    print(f"Schedules: Hyperband, ladders (min, max, eta) {ladders}, iterations {iterations}, K {workers}\n")
    schedules = schedule_rows(cells, args.jobs)
    print(f"\nQuality: BOHB, simulated with K workers, run time = budget, {seeds} seeds; score: regret "
          "(loss for problems without a known optimum) of the final incumbent; span in budget units\n")
    quality = quality_rows(problems, [8, 32], seeds, args.jobs)
    if args.json:
        settings = {"ladders": ladders, "iterations": iterations, "workers": workers}
        Path(args.json).write_text(json.dumps({"settings": settings, "schedules": schedules, "quality": quality},
                                              indent=1, default=float))


if __name__ == "__main__":
    main(sys.argv[1:])
