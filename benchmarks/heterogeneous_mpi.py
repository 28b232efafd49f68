"""The busy fraction of a real ``mpiexec`` run whose run times differ per configuration:
synchronous, asynchronous and keep_busy HyperBand side by side, measured from the journal's time stamps.

    python -m benchmarks.heterogeneous_mpi [--ranks 9] [--sigma 1.0] [--scale 0.05] [--n_iterations 21]
                                           [--schedules synchronous asynchronous keep_busy] [--json OUT]

The workload of ``benchmarks.heterogeneous`` (HyperBand on its 2-d space, budgets 1..81, eta 3,
seed 0; the configuration's factor ``f = exp(s * z)``), but real: each of ``--ranks - 1`` worker
ranks sleeps ``budget * f * scale`` seconds per evaluation (sleeping needs no CPU, so the 8 workers
fit on 2 cores). Each schedule is one ``mpiexec -n RANKS`` run in its own process group, killed
after ``--timeout`` seconds. From the run directory's ``Result`` (what the workers read around
``compute``): the span (first start to last finish), busy = the evaluations' seconds / (workers x
span), and the bound of ``benchmarks.heterogeneous``, W / (workers x max(W / workers, C)), C being
the longest chain of one configuration's evaluations.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.heterogeneous import ETA, MAX_BUDGET, MIN_BUDGET, SEED, loss, space, standard_normal, work_of
from benchmarks.processes import run_in_group

ROOT = Path(__file__).resolve().parent.parent


def run_one(run_dir: str, schedule: str, sigma: float, scale: float, n_iterations: int) -> None:
    """What every rank of one ``mpiexec`` run executes."""
    from mpibohb import HyperBand

    def compute(config: dict[str, Any], budget: float, **_: Any) -> float:
        time.sleep(budget * math.exp(sigma * standard_normal(config)) * scale)
        return loss(config, budget)

    optimizer = HyperBand(space(), min_budget=MIN_BUDGET, max_budget=MAX_BUDGET, eta=ETA, seed=SEED, run_dir=run_dir,
                          asynchronous=schedule in ("asynchronous", "keep_busy"), keep_busy=schedule == "keep_busy",
                          fill_tail=schedule == "fill_tail")
    optimizer.run(n_iterations=n_iterations, worker=compute)


def measure(run_dir: str, workers: int, n_iterations: int) -> dict[str, Any]:
    """Busy fraction, span, work, its extra share (brackets after ``n_iterations``), chain and bound of
    the run in ``run_dir``."""
    from mpibohb import load_result

    runs = load_result(run_dir).get_all_runs()
    start = min(run.time_stamps["started"] for run in runs)
    span = max(run.time_stamps["finished"] for run in runs) - start
    work, chain, extra = work_of(runs, n_iterations)
    return {"evaluations": len(runs), "failed": sum(run.loss is None for run in runs), "span": span,
            "extra": extra,
            "work": work, "chain": chain, "busy": work / (workers * span),
            "bound": work / (workers * max(work / workers, chain))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=9, help="mpiexec -n RANKS: rank 0 and RANKS - 1 workers")
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--scale", type=float, default=0.05, help="seconds of sleep per budget unit")
    parser.add_argument("--n_iterations", type=int, default=21, help="21: about 20 x max_budget of work per worker")
    parser.add_argument("--schedules", nargs="+", default=["synchronous", "asynchronous", "keep_busy"],
                        choices=["synchronous", "fill_tail", "asynchronous", "keep_busy"])
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", help="write the settings and rows to this file")
    parser.add_argument("--rank", nargs=2, metavar=("RUN_DIR", "SCHEDULE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rank:
        run_one(args.rank[0], args.rank[1], args.sigma, args.scale, args.n_iterations)
        return
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for schedule in args.schedules:
            run_dir = os.path.join(work, schedule)
            command = [mpiexec, "-n", str(args.ranks), sys.executable, "-m", "benchmarks.heterogeneous_mpi",
                       "--rank", run_dir, schedule, "--sigma", str(args.sigma), "--scale", str(args.scale),
                       "--n_iterations", str(args.n_iterations)]
            started = time.perf_counter()
            finished = run_in_group(command, args.timeout, cwd=str(ROOT))
            if finished.returncode != 0:
                sys.exit(f"{schedule}: exit code {finished.returncode}\n{finished.stderr[-3000:]}")
            row = {"schedule": schedule, "wall": time.perf_counter() - started,
                   **measure(run_dir, args.ranks - 1, args.n_iterations)}
            rows.append(row)
            print(f"{schedule}: {row['evaluations']} evaluations, busy {row['busy']:.1%} (bound {row['bound']:.1%}),"
                  f" span {row['span']:.1f} s", file=sys.stderr, flush=True)
    print(f"mpiexec -n {args.ranks} ({args.ranks - 1} workers), HyperBand budgets {MIN_BUDGET}..{MAX_BUDGET},"
          f" eta {ETA}, {args.n_iterations} iterations, sleep = budget x f x {args.scale:g} s, s = {args.sigma:g}\n")
    print("| schedule | evaluations | failed | work W / workers (s) | extra work | chain C (s) | span (s) | busy"
          " | bound |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['schedule']} | {row['evaluations']} | {row['failed']} | {row['work'] / (args.ranks - 1):.1f}"
              f" | {row['extra']:.0%}"
              f" | {row['chain']:.1f} | {row['span']:.1f} | {row['busy']:.1%} | {row['bound']:.1%} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
