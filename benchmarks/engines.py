"""One optimisation run of one engine on one problem, written as JSON: the unit of benchmarks.quality.

    python -m benchmarks.engines --engine mpibohb|hpbandster --optimizer bohb|bohb_tpe|hb|rs \\
        --problem NAME --seed S --n_iterations N --out FILE.json

The mpibohb engine runs in the project's virtual environment; the hpbandster engine runs in
benchmarks/.hpbandster-venv (``bash benchmarks/hpbandster_env.sh``), where numpy < 2 and ConfigSpace
0.6.1 are installed: this module imports neither engine at the top and uses only what
``benchmarks.problems`` needs.

Both engines run serially with one worker (mpibohb: in-process; HpBandSter: one worker thread and a
Pyro4 nameserver on 127.0.0.1, its documented local set-up). The worker function records every
evaluation when it returns: configuration, budget, loss, and seconds since the optimisation
started, so both engines are timed the same way, master overhead included; the wall time ends
when ``run`` returns (HpBandSter's nameserver and worker start-up before it and their shutdown
after it are not counted). Noise comes from ``problems.noise_generator(seed)``, a stream apart
from the optimiser's; the optimiser gets ``seed`` too (HpBandSter has no seed argument: its
config generators draw from numpy's global state and the ConfigurationSpace's, and both are
seeded).

The output, shared with benchmarks/peers.py::

    {"engine", "optimizer", "problem", "seed", "wall",
     "runs": [{"config", "budget", "loss", "charged", "finished"}, ...]}   # in finishing order
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.problems import Problem, get_problem, noise_generator

OPTIMIZERS = {"bohb": "BOHB", "bohb_tpe": "BOHB", "hb": "HyperBand", "rs": "RandomSearch"}
OPTIONS = {"bohb": {"model": "hpbandster"}, "bohb_tpe": {"model": "tpe"}}  # mpibohb's; "bohb" is HpBandSter's model


def plain(value: Any) -> Any:
    """A JSON-friendly copy of a configuration value (numpy scalars become Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def write_record(out: str, record: dict[str, Any]) -> None:
    """Write a run's JSON to ``out`` whole or not at all (a reader never sees half of it)."""
    Path(out + ".part").write_text(json.dumps(record))
    os.replace(out + ".part", out)


class Recorder:
    """The worker function: evaluates the problem and records each evaluation, with the budget it is
    charged (its own budget unless said otherwise), as it returns."""

    def __init__(self, problem: Problem, seed: int) -> None:
        self.problem = problem
        self.rng = noise_generator(seed)
        self.runs: list[dict[str, Any]] = []
        self.charged = 0.0
        self.start = time.perf_counter()
        self.wall = 0.0

    def stop_clock(self) -> None:
        """The optimisation is over: its wall time ends here (shutting an engine down is not counted)."""
        self.wall = time.perf_counter() - self.start

    def __call__(self, config: dict[str, Any], budget: float, charged: float | None = None) -> float:
        config = {name: plain(value) for name, value in config.items()}
        loss = float(self.problem.evaluate(config, float(budget), self.rng))
        charged = float(budget if charged is None else charged)
        self.charged += charged
        self.runs.append({"config": config, "budget": float(budget), "loss": loss, "charged": charged,
                          "finished": time.perf_counter() - self.start})
        return loss


def run_mpibohb(problem: Problem, optimizer: str, seed: int, n_iterations: int) -> Recorder:
    """One serial mpibohb run."""
    import mpibohb

    cls = getattr(mpibohb, OPTIMIZERS[optimizer])
    opt = cls(problem.space(seed), min_budget=problem.min_budget, max_budget=problem.max_budget,
              eta=problem.eta, seed=seed, **OPTIONS.get(optimizer, {}))
    recorder = Recorder(problem, seed)
    opt.run(n_iterations=n_iterations, worker=recorder)
    recorder.stop_clock()
    return recorder


def run_hpbandster(problem: Problem, optimizer: str, seed: int, n_iterations: int) -> Recorder:
    """One HpBandSter run: nameserver on 127.0.0.1, one worker thread."""
    if optimizer == "bohb_tpe":  # BOHB with a model HpBandSter does not have
        raise ValueError(f"HpBandSter has no optimizer {optimizer!r}")
    import hpbandster.core.nameserver as hpns
    import hpbandster.optimizers as hpo
    from hpbandster.core.worker import Worker

    recorder = Recorder(problem, seed)

    class ProblemWorker(Worker):
        def compute(self, config: dict, budget: float, **kwargs: Any) -> dict:
            return {"loss": recorder(config, budget), "info": {}}

    np.random.seed(seed)
    run_id = f"bench{os.getpid()}"
    nameserver = hpns.NameServer(run_id=run_id, host="127.0.0.1", port=0)
    host, port = nameserver.start()
    worker = ProblemWorker(run_id=run_id, nameserver=host, nameserver_port=port, host="127.0.0.1", id=0)
    worker.run(background=True)
    cls = getattr(hpo, OPTIMIZERS[optimizer])
    opt = cls(configspace=problem.space(seed), run_id=run_id, nameserver=host, nameserver_port=port,
              host="127.0.0.1", min_budget=problem.min_budget, max_budget=problem.max_budget, eta=problem.eta)
    recorder.start = time.perf_counter()
    opt.run(n_iterations=n_iterations, min_n_workers=1)
    recorder.stop_clock()
    opt.shutdown(shutdown_workers=True)
    nameserver.shutdown()
    return recorder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["mpibohb", "hpbandster"], required=True)
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), required=True)
    parser.add_argument("--problem", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--n_iterations", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    problem = get_problem(args.problem)
    engine = {"mpibohb": run_mpibohb, "hpbandster": run_hpbandster}[args.engine]
    recorder = engine(problem, args.optimizer, args.seed, args.n_iterations)
    record = {"engine": args.engine, "optimizer": args.optimizer, "problem": problem.name, "seed": args.seed,
              "wall": recorder.wall, "runs": recorder.runs}
    write_record(args.out, record)
    sys.stdout.flush()
    os._exit(0)  # HpBandSter's Pyro4 threads may linger; the record is written


if __name__ == "__main__":
    main(sys.argv[1:])
