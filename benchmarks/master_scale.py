"""The master's cost per result on many workers, as results accumulate: simulated runs.

    python -m benchmarks.master_scale                      # 1,024 workers, 50,000 evaluations
    python -m benchmarks.master_scale --evaluations 10000 --optimizers bohb_tpe hyperband

Each optimizer runs asynchronously (``asynchronous=True``) under ``mpibohb.simulate`` with
``--workers`` virtual workers, budgets 1..81 (eta 3), a search space of ``--dims`` floats, a loss
that costs nothing and run times ``budget x exp(sigma z)`` per configuration
(``benchmarks/run_times.py``). Everything the process does is the master's work: the optimizer,
the model, the run loop, the ``Result``; the simulated clock charges none of it. Per optimizer it
prints the CPU seconds of the whole run and, per ``--every`` evaluations, the milliseconds per
evaluation in that stretch, so that a cost that grows with the results shows as a growing row.
Optimizers: ``bohb_tpe`` (BOHB, the default model), ``bohb_hpbandster`` (HpBandSter's KDE),
``hyperband`` (no model). With 1,024 workers the tpe model's constant liar refits its bad density
with the 1,024 running configurations at every proposal. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import Any

from benchmarks.run_times import duration_of

OPTIMIZERS = ("bohb_tpe", "bohb_hpbandster", "hyperband")
EVALUATIONS_PER_ITERATION = 41.2  # Hyperband with budgets 1..81, eta 3: 206 evaluations per 5 iterations


def space(dims: int) -> Any:
    """``dims`` floats in [0, 1]."""
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=0)
    for i in range(dims):
        cs.add(CS.UniformFloatHyperparameter(f"x{i}", 0.0, 1.0))
    return cs


def optimizer(name: str, dims: int, seed: int) -> Any:
    """A fresh asynchronous optimizer called ``name``."""
    from mpibohb import BOHB, HyperBand

    common = dict(configspace=space(dims), min_budget=1, max_budget=81, eta=3, seed=seed, asynchronous=True)
    if name == "hyperband":
        return HyperBand(**common)
    return BOHB(model=name.removeprefix("bohb_"), **common)


def measure(name: str, workers: int, evaluations: int, every: int, dims: int, sigma: float,
            seed: int) -> dict[str, Any]:
    """One simulated run: CPU seconds in all, and per stretch of ``every`` evaluations (ms each)."""
    from mpibohb import simulate

    marks: list[float] = []  # CPU seconds when each stretch of ``every`` evaluations was done
    calls = 0
    started = time.process_time()

    def loss(config: dict[str, Any], budget: float) -> float:
        nonlocal calls
        calls += 1
        if calls % every == 0:
            marks.append(time.process_time() - started)
        return sum((value - 0.3) ** 2 for value in config.values()) + 1.0 / budget

    iterations = max(1, round(evaluations / EVALUATIONS_PER_ITERATION))
    result = simulate(optimizer(name, dims, seed), n_iterations=iterations, worker=loss, n_workers=workers,
                      duration=duration_of(sigma))
    cpu = time.process_time() - started
    stretches = [1e3 * (end - start) / every for start, end in zip([0.0, *marks], marks)]
    return {"optimizer": name, "evaluations": len(result.get_all_runs()), "cpu_s": cpu,
            "ms_per_stretch": stretches, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=1024)
    parser.add_argument("--evaluations", type=int, default=50_000, help="about this many (whole iterations)")
    parser.add_argument("--every", type=int, default=10_000, help="evaluations per printed stretch")
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=OPTIMIZERS)
    parser.add_argument("--dims", type=int, default=2)
    parser.add_argument("--sigma", type=float, default=0.5, help="spread of run times per configuration")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.workers, args.evaluations, args.every, args.dims) < 1:
        parser.error("--workers, --evaluations, --every and --dims must be at least 1")

    print(f"{args.workers:,} simulated workers, asynchronous, budgets 1..81 (eta 3), {args.dims} floats, "
          f"sigma {args.sigma}; ms of CPU per evaluation in each stretch of {args.every:,}")
    for name in args.optimizers:
        row = measure(name, args.workers, args.evaluations, args.every, args.dims, args.sigma, args.seed)
        stretches = ", ".join(f"{ms:.2f}" for ms in row["ms_per_stretch"])
        print(f"{name}: {row['evaluations']:,} evaluations, {row['cpu_s']:.1f} s CPU, "
              f"{1e3 * row['cpu_s'] / row['evaluations']:.2f} ms per evaluation; per stretch: {stretches}"
              f" (max RSS so far {row['max_rss_mb']:.0f} MB)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
