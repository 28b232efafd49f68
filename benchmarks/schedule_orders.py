"""What other job orders would give on the utilisation benchmark: its schedule bound per order.

    .venv/bin/python benchmarks/schedule_orders.py [--workers 4 8 16 32] [--iterations 40 80 120]

The schedule bound (``utilisation.schedule_bound``) is the busy fraction that a dispatcher with no
master or communication cost reaches on the sleep workload of ``benchmarks/utilisation.py``
(budgets 1..27, eta 3): it drives mpibohb's own ``Optimizer`` with K virtual workers. Here the open
brackets give their jobs in another order than mpibohb's (and HpBandSter's) oldest first. Every
order keeps the rule that a new bracket starts only when no open one has a job, and so every
order keeps the tail of the last brackets' stages, which no dispatcher can fill. Nothing is slept:
a row takes seconds. Prints one markdown table per number of iterations.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.utilisation import schedule_bound  # noqa: E402

ORDERS: dict[str, Callable[[Any], Any] | None] = {
    "oldest bracket first (mpibohb, HpBandSter)": None,
    "longest remaining chain of stages first": lambda bracket: -sum(bracket.plan.budgets[bracket.stage:]),
    "newest bracket first": lambda bracket: -bracket.iteration,
    "smallest budget first": lambda bracket: bracket.budget,
    "most remaining stages first": lambda bracket: bracket.stage - bracket.plan.num_stages,
}


def bounds(workers: list[int], n_iterations: int) -> dict[str, list[float]]:
    """The schedule bound's busy fraction per order, one per number of workers."""
    return {name: [schedule_bound(k, n_iterations, 0.1, order)["bound_busy"] for k in workers]
            for name, order in ORDERS.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 8, 16, 32], help="default: 4 8 16 32")
    parser.add_argument("--iterations", type=int, nargs="+", default=[40, 80, 120], help="default: 40 80 120")
    args = parser.parse_args(argv)
    for n_iterations in args.iterations:
        print(f"\nschedule bound (busy fraction), {n_iterations} iterations\n")
        print("| job order | " + " | ".join(f"K = {k}" for k in args.workers) + " |")
        print("| --- |" + " ---: |" * len(args.workers))
        for name, busy in bounds(args.workers, n_iterations).items():
            print(f"| {name} | " + " | ".join(f"{b:.1%}" for b in busy) + " |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
