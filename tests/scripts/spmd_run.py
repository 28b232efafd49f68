"""An SPMD test run: every rank runs this; rank 0 prints the result as one JSON line.

    [mpiexec -n K] python spmd_run.py --optimizer bohb --worker toy [--n_workers 2] [--timeout 1]

Workers:
  toy      deterministic smooth loss of x, y, c and the budget
  faulty   by config index: raises, returns a string, a NaN loss, an unpicklable info (which
           succeeds with a note for its info), runs past the timeout; every other config succeeds
  exit     rank 2 ends its process with os._exit(3) on its first job
  internal the master's own code raises after 5 results (a simulated mpibohb bug)
  worker_internal  the worker loop's own code raises on rank 1 (a simulated mpibohb bug)
"""

import argparse
import functools
import json
import math
import os
import sys
import threading
import time

import ConfigSpace as CS

import mpibohb
from mpibohb import BOHB, HyperBand, RandomSearch

OPTIMIZERS = {"bohb": BOHB, "bohb_tpe": functools.partial(BOHB, model="tpe"), "hb": HyperBand, "rs": RandomSearch}


def space():
    cs = CS.ConfigurationSpace()
    cs.add([CS.UniformFloatHyperparameter("x", 0.0, 1.0), CS.UniformIntegerHyperparameter("y", 1, 8),
            CS.CategoricalHyperparameter("c", ["a", "b", "c"])])
    return cs


def toy(config, budget):
    bias = {"a": 0.0, "b": 0.2, "c": 0.5}[config["c"]]
    return (config["x"] - 0.3) ** 2 + 0.01 * config["y"] + bias + 1.0 / budget


class Faulty(mpibohb.Worker):
    """HpBandSter's compute signature; fails in a different way for each config index."""

    def compute(self, config_id, config, budget, working_directory):
        kind = config_id[2] % 6
        if kind == 0:
            raise RuntimeError("user code failed on purpose")
        if kind == 1:
            return "not a dict"
        if kind == 2:
            return {"loss": math.nan}
        if kind == 3:
            return {"loss": 1.0, "info": threading.Lock()}  # a lock cannot be pickled
        if kind == 4 and budget == 1:
            time.sleep(5)
        return {"loss": toy(config, budget), "info": {"rank": os.environ.get("PMI_RANK")}}


def exiting(config, budget):
    rank = os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK")
    if rank == "2":
        os._exit(3)
    time.sleep(0.05)
    return toy(config, budget)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--optimizer", default="bohb", choices=sorted(OPTIMIZERS))
    parser.add_argument("--worker", default="toy", choices=["toy", "faulty", "exit", "internal", "worker_internal"])
    parser.add_argument("--n_iterations", type=int, default=3)
    parser.add_argument("--n_workers", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    worker = {"toy": toy, "faulty": Faulty(), "exit": exiting, "internal": toy, "worker_internal": toy}[args.worker]
    if args.worker == "worker_internal" and os.environ.get("PMI_RANK") == "1":
        import mpibohb.executors.mpi_worker as mpi_worker

        def broken_send(comm, key, outcome):
            raise KeyError("simulated internal error in the worker loop")

        mpi_worker._send_outcome = broken_send
    if args.worker == "internal":
        import mpibohb.ask_tell

        original, calls = mpibohb.ask_tell.Optimizer.tell, []

        def broken_tell(self, job, loss, *rest):
            calls.append(job)
            if len(calls) > 5:
                raise KeyError("simulated internal error")
            return original(self, job, loss, *rest)

        mpibohb.ask_tell.Optimizer.tell = broken_tell

    opt = OPTIMIZERS[args.optimizer](configspace=space(), min_budget=1, max_budget=9, eta=3, seed=args.seed)
    res = opt.run(n_iterations=args.n_iterations, worker=worker, n_workers=args.n_workers, timeout=args.timeout)
    if res is None:
        print("worker rank done", file=sys.stderr)
        return
    runs = [{"config_id": list(r.config_id), "budget": r.budget, "loss": r.loss, "worker": r.worker,
             "config": res.get_id2config_mapping()[r.config_id]["config"],
             "error": (r.error_logs or "").splitlines()[0] if r.error_logs else None,
             "info": r.info if isinstance(r.info, str) else None}
            for r in res.get_all_runs()]
    print("RESULT " + json.dumps({"runs": runs, "incumbent": list(res.get_incumbent_id() or [])}))


if __name__ == "__main__":
    main()
