"""HpBandSter 0.7.4's figures on the problems of overhead.py and throughput.py, for comparison.

    bash benchmarks/hpbandster_env.sh               # once: makes benchmarks/.hpbandster-venv
    benchmarks/.hpbandster-venv/bin/python -m benchmarks.hpbandster_reference [--quick]   # from the repository root

Runs inside that virtual environment (HpBandSter needs numpy < 2); it does not import mpibohb.

(a) Model cost. HpBandSter's BOHB config generator
    (``hpbandster.optimizers.config_generators.bohb.BOHB``, ``random_fraction=0``, other settings
    at their defaults) is driven directly on the space of overhead.py (8 UniformFloat, a categorical
    with 3 and one with 2 choices), all observations at one budget, losses from the same smooth
    function. Results go in through ``new_result(job)`` with a job-like object, as HpBandSter's
    master does. Per refit: the median time of one ``new_result`` call that refits the KDEs on all
    N observations (the point it adds is taken out again afterwards, so every refit sees N). Per
    proposal: the median time of ``get_config(budget)`` on the fitted model (it never refits).
    HpBandSter keeps every point in its KDEs, so compare with overhead.py's ``None (all)`` rows as
    well as its default ``512`` rows.
(b) Throughput. HpBandSter's own BOHB on the quickstart toy problem (one float, budgets 9..243,
    eta 3) with a worker that returns at once, 1 and 4 workers as threads of one process, a Pyro4
    nameserver on 127.0.0.1 (free port). Evaluations per second are runs / wall time of
    ``BOHB.run``, as throughput.py counts them for mpibohb. Each run is a subprocess in its own
    process group with a timeout; one that does not finish is killed and reported as "hung".
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from benchmarks.model_space import benchmark_space, smooth_loss
from benchmarks.processes import run_in_group
from benchmarks.timing import median_seconds

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 1.0


def job(index: int, config: dict, loss: float) -> SimpleNamespace:
    """What the config generator reads of HpBandSter's ``Job``."""
    return SimpleNamespace(id=(0, 0, index), kwargs={"budget": BUDGET, "config": config},
                           result={"loss": loss, "info": {}}, exception=None,
                           timestamps={"submitted": 0.0, "started": 0.0, "finished": 0.0})


def measure_model(num_observations: int, proposals: int, fits: int, seed: int) -> dict:
    from hpbandster.optimizers.config_generators import bohb as bohb_generator

    np.random.seed(seed)  # HpBandSter's generator draws from numpy's global state
    cs = benchmark_space(seed)
    generator = bohb_generator.BOHB(cs, random_fraction=0.0)
    configs = [c.get_dictionary() for c in cs.sample_configuration(num_observations + 1)]
    for index, config in enumerate(configs[:-1]):
        last = index == num_observations - 1
        generator.new_result(job(index, config, smooth_loss(config)), update_model=last)
    assert BUDGET in generator.kde_models, "no model was built"

    extra = job(num_observations, configs[-1], smooth_loss(configs[-1]))

    def refit() -> None:
        generator.new_result(extra)  # appends the point, refits on all of them
        generator.configs[BUDGET].pop()
        generator.losses[BUDGET].pop()

    per_refit = median_seconds(refit, fits)
    model = generator.kde_models[BUDGET]
    fallbacks = []

    def propose() -> None:
        _, info = generator.get_config(BUDGET)
        fallbacks.append(not info.get("model_based_pick", False))

    per_proposal = median_seconds(propose, proposals)
    assert generator.kde_models[BUDGET] is model, "the model was refit between proposals"
    return {"proposal": per_proposal, "refit": per_refit, "good": len(model["good"].data),
            "bad": len(model["bad"].data), "fallbacks": sum(fallbacks)}


def throughput_child(workers: int, n_iterations: int) -> None:
    """One HpBandSter run in this process; prints a JSON line with runs and wall time."""
    import ConfigSpace as CS
    import hpbandster.core.nameserver as hpns
    from hpbandster.core.worker import Worker
    from hpbandster.optimizers import BOHB

    logging.basicConfig(level=logging.ERROR)

    class ZeroCostWorker(Worker):
        def compute(self, config: Any, budget: float, **kwargs: Any) -> dict[str, Any]:
            return {"loss": config["x"], "info": {}}

    cs = CS.ConfigurationSpace(seed=0)
    cs.add_hyperparameter(CS.UniformFloatHyperparameter("x", lower=0, upper=1))
    np.random.seed(0)
    run_id = f"reference{os.getpid()}"
    ns = hpns.NameServer(run_id=run_id, host="127.0.0.1", port=0)
    host, port = ns.start()
    threads = []
    for index in range(workers):
        worker = ZeroCostWorker(run_id=run_id, nameserver=host, nameserver_port=port, host="127.0.0.1", id=index)
        worker.run(background=True)
        threads.append(worker)
    bohb = BOHB(configspace=cs, run_id=run_id, nameserver=host, nameserver_port=port, host="127.0.0.1",
                min_budget=9, max_budget=243, eta=3)
    start = time.perf_counter()
    result = bohb.run(n_iterations=n_iterations, min_n_workers=workers)
    wall = time.perf_counter() - start
    runs = len(result.get_all_runs())
    print(json.dumps({"workers": workers, "runs": runs, "wall": wall}), flush=True)
    bohb.shutdown(shutdown_workers=True)
    ns.shutdown()
    os._exit(0)  # Pyro4 threads may linger; the figures are out already


def run_throughput(workers: int, n_iterations: int, timeout: float) -> dict | str:
    command = [sys.executable, "-m", "benchmarks.hpbandster_reference", "--throughput_child", str(workers),
               "--n_iterations", str(n_iterations)]
    finished = run_in_group(command, timeout, cwd=ROOT)
    lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
    if finished.timed_out:
        return json.loads(lines[-1]) if lines else "hung"  # with a line: finished, then hung shutting down
    if finished.returncode != 0 or not lines:
        return f"failed (exit {finished.returncode}): {finished.last_error_line()}"
    return json.loads(lines[-1])


def machine_description() -> str:
    from importlib.metadata import version

    import scipy

    packages = ", ".join(f"{name} {version(name)}" for name in ("hpbandster", "ConfigSpace", "statsmodels", "Pyro4"))
    return (f"{platform.platform()}; {os.cpu_count()} CPUs; Python {platform.python_version()};"
            f" numpy {np.__version__}; scipy {scipy.__version__}; {packages}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000],
                        help="numbers of observations (default: 100 1000 10000)")
    parser.add_argument("--proposals", type=int, default=50, help="timed proposals per size (median)")
    parser.add_argument("--fits", type=int, default=10, help="timed refits per size (median)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--n_iterations", type=int, default=100, help="BOHB iterations per throughput run")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a throughput run counts as hung")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="10 proposals, 3 refits, 20 iterations: a smoke run of about a minute")
    parser.add_argument("--skip_model", action="store_true", help="only the throughput part")
    parser.add_argument("--skip_throughput", action="store_true", help="only the model part")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--throughput_child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.throughput_child is not None:
        throughput_child(args.throughput_child, args.n_iterations)
        return
    if args.quick:
        args.proposals, args.fits, args.n_iterations = 10, 3, 20
    logging.basicConfig(level=logging.ERROR)

    print(f"machine: {machine_description()}")
    report: dict = {"machine": machine_description(), "model": [], "throughput": []}
    if not args.skip_model:
        print("\n(a) HpBandSter BOHB config generator: 10 dims (8 float, categorical 3 + 2), num_samples=64,"
              f" every point in the KDEs; median of {args.proposals} proposals / {args.fits} refits\n")
        print("| observations | good + bad KDE points | per proposal (ms) | per refit (ms) | random fallbacks |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for size in args.sizes:
            row = measure_model(size, args.proposals, args.fits, args.seed)
            report["model"].append(dict(row, observations=size))
            print(f"| {size:,} | {row['good']:,} + {row['bad']:,} | {1e3 * row['proposal']:.2f}"
                  f" | {1e3 * row['refit']:.2f} | {row['fallbacks']} |", flush=True)
    if not args.skip_throughput:
        print(f"\n(b) HpBandSter BOHB, toy problem, budgets 9..243, eta 3, {args.n_iterations} iterations,"
              f" zero-cost threaded workers, nameserver on 127.0.0.1, timeout {args.timeout:.0f} s\n")
        print("| workers | evaluations | seconds | evaluations/s |")
        print("| ---: | ---: | ---: | ---: |")
        for workers in args.workers:
            ran = run_throughput(workers, args.n_iterations, args.timeout)
            if isinstance(ran, str):
                report["throughput"].append({"workers": workers, "status": ran})
                print(f"| {workers} | {ran} | | |", flush=True)
            else:
                report["throughput"].append(ran)
                print(f"| {workers} | {ran['runs']} | {ran['wall']:.2f} | {ran['runs'] / ran['wall']:,.0f} |",
                      flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh)


if __name__ == "__main__":
    main(sys.argv[1:])
