"""The master's model cost: BOHB's time per proposal and per refit as observations accumulate.

    python -m benchmarks.overhead            # 100, 1,000 and 10,000 observations, both models
    python -m benchmarks.overhead --quick    # fewer repetitions, for a smoke test
    python -m benchmarks.overhead --models tpe

The space has 10 dimensions (8 UniformFloat, 2 categorical with 3 and 2 choices); all
observations are at one budget, their losses a smooth function of the configuration. For each
model (``BOHB(model=...)``: ``hpbandster``, ``KDESampler``; ``tpe``, ``ParzenSampler``), number of
observations and ``max_points_in_model`` (the default 512, and None: every point kept, as
HpBandSter does) it prints

* per proposal: the median time of ``propose`` with ``random_fraction=0`` on a fitted model (the
  model is not refit between the calls), i.e. sample ``num_samples`` candidates from the good
  density, rank them by the density ratio, convert the best legal one to a configuration;
* per refit: the median time of ``fit`` (split by loss, subsample, build both densities; the tpe
  model fits on every budget at once, which here is the one budget).

A proposal is timed with nothing running (its configuration is taken back from the running ones at
once, as in a serial run). With ``--running``, the tpe model's proposals are also timed with that
many configurations running (default 32 and 1,024; 512 points in the model): its constant liar
refits the bad density with them at every proposal.

Both run on one BLAS thread, as rank 0 runs them under ``mpiexec`` (``mpibohb/blas.py``). Times come
from ``time.perf_counter``; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import scipy

from benchmarks.model_space import benchmark_space, smooth_loss
from benchmarks.timing import median_seconds
from mpibohb.blas import one_blas_thread
from mpibohb.samplers.models import model_sampler, model_settings
from mpibohb.samplers.tpe import EVERY_BUDGET_RULES
from mpibohb.space import SearchSpace

BUDGET = 1.0


def fitted_sampler(num_observations: int, max_points: int | None, seed: int, model_name: str) -> tuple[Any, Any]:
    """A sampler of ``model_name`` with ``num_observations`` results on one budget, and its settings."""
    cs = benchmark_space(seed)
    settings = model_settings(model_name, random_fraction=0.0, max_points_in_model=max_points)
    sampler: Any = model_sampler(SearchSpace(cs), settings)
    for config in cs.sample_configuration(num_observations):
        sampler.observe(config.get_array(), BUDGET, smooth_loss(dict(config)))
    return sampler, settings


def timed_proposal(sampler: Any, rng: np.random.Generator) -> Callable[[], None]:
    """One model-based proposal, whose configuration then stops running (the tpe model's constant
    liar): the number of running configurations stays what it was."""
    def propose() -> None:
        proposal = sampler.propose(BUDGET, rng)
        assert proposal.info["model_based_pick"], "a proposal fell back to random sampling"
        if hasattr(sampler, "running"):
            sampler.running.remove(np.asarray(proposal.vector, dtype=float)[sampler.space.model_indices], BUDGET)

    return propose


def measure(num_observations: int, max_points: int | None, proposals: int, fits: int,
            seed: int, model_name: str = "hpbandster") -> dict[str, float]:
    """Per-proposal and per-refit medians for one setting, in seconds, and the densities' sizes."""
    sampler, settings = fitted_sampler(num_observations, max_points, seed, model_name)
    rng = np.random.default_rng(seed)
    fitted_budget = None if getattr(settings, "budget_rule", None) in EVERY_BUDGET_RULES else BUDGET

    per_refit = median_seconds(lambda: sampler.fit(fitted_budget, rng), fits)

    model = sampler.current_model(rng)  # fit once; propose() reuses it from here on
    assert model is not None and model.budget == fitted_budget

    per_proposal = median_seconds(timed_proposal(sampler, rng), proposals)
    assert sampler.current_model(rng) is model, "the model was refit between proposals"
    return {"proposal": per_proposal, "refit": per_refit,
            "good": model.good.num_points, "bad": model.bad.num_points}


def measure_running(num_observations: int, num_running: int, proposals: int, seed: int) -> float:
    """The tpe model's median seconds per proposal with ``num_running`` configurations running."""
    sampler, _ = fitted_sampler(num_observations, 512, seed, "tpe")
    rng = np.random.default_rng(seed)
    for config in benchmark_space(seed + 1).sample_configuration(num_running) if num_running else []:
        sampler.running.add(config.get_array()[sampler.space.model_indices], BUDGET)
    sampler.current_model(rng)
    return median_seconds(timed_proposal(sampler, rng), proposals)


def machine_description() -> str:
    import os

    return (f"{platform.platform()}; {platform.machine()} {platform.processor() or ''}".rstrip()
            + f"; {os.cpu_count()} CPUs; Python {platform.python_version()}; numpy {np.__version__};"
            f" scipy {scipy.__version__}; ConfigSpace {metadata.version('ConfigSpace')}")  # its __version__ lags


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000],
                        help="numbers of observations (default: 100 1000 10000)")
    parser.add_argument("--proposals", type=int, default=200, help="timed proposals per setting (median)")
    parser.add_argument("--fits", type=int, default=20, help="timed refits per setting (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="20 proposals and 3 refits per setting")
    parser.add_argument("--models", nargs="+", default=["hpbandster", "tpe"], choices=["hpbandster", "tpe"])
    parser.add_argument("--running", type=int, nargs="*", default=[32, 1024],
                        help="running configurations for the tpe model's second table (default: 32 1024)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.proposals, args.fits = 20, 3

    print(f"machine: {machine_description()}")
    samples = ", ".join(f"{name} {model_settings(name).num_samples}" for name in args.models)
    print(f"space: 10 dims (8 float, categorical 3 + 2); num_samples: {samples};"
          f" median of {args.proposals} proposals / {args.fits} refits")
    print()
    print("| model | observations | max_points_in_model | good + bad points | per proposal (ms) | per refit (ms) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    rows = []
    for name in args.models:
        for size in args.sizes:
            for max_points in (512, None):
                with one_blas_thread():
                    row = measure(size, max_points, args.proposals, args.fits, args.seed, name)
                rows.append(dict(row, model=name, observations=size, max_points_in_model=max_points))
                print(f"| {name} | {size:,} | {max_points if max_points else 'None (all)'} | {row['good']:,} +"
                      f" {row['bad']:,} | {1e3 * row['proposal']:.2f} | {1e3 * row['refit']:.2f} |", flush=True)
    running_rows = []
    if "tpe" in args.models and args.running:
        size = max(args.sizes)
        print(f"\nThe tpe model with configurations running (constant liar), {size:,} observations, 512 points\n")
        print("| running | per proposal (ms) |\n| ---: | ---: |")
        for num_running in [0, *args.running]:
            with one_blas_thread():
                seconds = measure_running(size, num_running, args.proposals, args.seed)
            running_rows.append({"observations": size, "running": num_running, "proposal": seconds})
            print(f"| {num_running:,} | {1e3 * seconds:.2f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine_description(), "rows": rows,
                                               "running": running_rows}))


if __name__ == "__main__":
    main(sys.argv[1:])
