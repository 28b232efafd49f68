"""What other job orders would give on the utilisation benchmark: its schedule bound per order.

    python -m benchmarks.schedule_orders [--workers 4 8 16 32] [--iterations 40 80 120]

The schedule bound (``utilisation.schedule_bound``) is the busy fraction that a dispatcher with no
master or communication cost reaches on the sleep workload of ``benchmarks/utilisation.py``
(budgets 1..27, eta 3): it drives mpibohb's own ``Optimizer`` with K virtual workers. Here the open
brackets give their jobs in another order than mpibohb's (and HpBandSter's) oldest first. Every
order keeps the rule that a new bracket starts only when no open one has a job, and so every
order keeps the tail of the last brackets' stages, which no dispatcher can fill. Nothing is slept:
a row takes seconds. Prints one markdown table per number of iterations.

A second table per number of iterations breaks that rule: every bracket is open from the start
(each still runs its stages in turn), so a job order may run the stages of late brackets early.
That is what a busy fraction above the bracket rule's bound would take; BOHB would then sample
most of its configurations before the results its model learns from come in.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from benchmarks.utilisation import schedule_bound
from mpibohb.ask_tell import Optimizer
from mpibohb.brackets import Bracket

ORDERS: dict[str, Callable[[Any], Any] | None] = {
    "oldest bracket first (mpibohb, HpBandSter)": None,
    "longest remaining chain of stages first": lambda bracket: -sum(bracket.plan.budgets[bracket.stage:]),
    "newest bracket first": lambda bracket: -bracket.iteration,
    "smallest budget first": lambda bracket: bracket.budget,
    "most remaining stages first": lambda bracket: bracket.stage - bracket.plan.num_stages,
}


def open_every_bracket(optimizer: Optimizer) -> None:
    """Start all of the optimizer's brackets at once (a what-if: mpibohb never does this)."""
    schedule = optimizer.schedule  # a synchronous schedule
    while len(schedule.brackets) < optimizer.n_iterations:
        iteration = len(schedule.brackets)
        bracket = Bracket(iteration, schedule.plan_of(iteration), optimizer.sampler)
        schedule.brackets.append(bracket)
        schedule._open.append(bracket)  # noqa: SLF001 - a what-if on the schedule's own bracket list


def bounds(workers: list[int], n_iterations: int, all_open: bool = False) -> dict[str, list[float]]:
    """The schedule bound's busy fraction per order, one per number of workers; with ``all_open``
    every bracket is open from the start."""
    prepare = open_every_bracket if all_open else None
    return {name: [schedule_bound(k, n_iterations, 0.1, order, prepare)["bound_busy"] for k in workers]
            for name, order in ORDERS.items()}


def print_table(title: str, busy: dict[str, list[float]], workers: list[int]) -> None:
    """One markdown table: a row per job order, a column per number of workers."""
    print(f"\n{title}\n")
    print("| job order | " + " | ".join(f"K = {k}" for k in workers) + " |")
    print("| --- |" + " ---: |" * len(workers))
    for name, fractions in busy.items():
        print(f"| {name} | " + " | ".join(f"{b:.1%}" for b in fractions) + " |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 8, 16, 32], help="default: 4 8 16 32")
    parser.add_argument("--iterations", type=int, nargs="+", default=[40, 80, 120], help="default: 40 80 120")
    args = parser.parse_args(argv)
    for n_iterations in args.iterations:
        print_table(f"schedule bound (busy fraction), {n_iterations} iterations",
                    bounds(args.workers, n_iterations), args.workers)
        print_table(f"what-if, not mpibohb: every bracket open from the start, {n_iterations} iterations",
                    bounds(args.workers, n_iterations, all_open=True), args.workers)


if __name__ == "__main__":
    main(sys.argv[1:])
