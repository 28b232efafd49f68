"""A run with a run directory, for the kill-and-resume tests; every rank runs this.

    [mpiexec -n K] python resumable_run.py RUN_DIR [--resume] [--sleep S] [--n_workers T]
        [--fill_tail | --asynchronous [--keep_busy]] [--budget_sleep B] [--checkpoints KEEP] [--verbose]

Each rank writes its pid into RUN_DIR/../pids/<rank> so that a test can kill a chosen rank.
The worker is deterministic (its loss depends only on the config and the budget) and sleeps
``--sleep`` seconds per evaluation, plus ``--budget_sleep`` seconds per unit of budget. Rank 0
prints ``RESULT <json>`` when the run completes.
With ``--checkpoints`` the worker keeps a checkpoint (``train``): each evaluation reads the budget
its configuration's directory holds, puts it in ``info`` (``found``, with the worker's ``rank``)
and writes its own budget there; ``keep_checkpoints=KEEP``.
"""

import argparse
import json
import logging
import os
import time
from pathlib import Path

import ConfigSpace as CS

from mpibohb import BOHB, atomic_path


def loss(config, budget):
    time.sleep(SLEEP + BUDGET_SLEEP * budget)
    return (config["x"] - 0.3) ** 2 + 0.02 * config["n"] + {"a": 0.0, "b": 0.1}[config["c"]] + 1.0 / budget


def train(config, budget, previous_budget, checkpoint_dir):
    state = os.path.join(checkpoint_dir, "state.json")
    found = json.loads(Path(state).read_text())["budget"] if os.path.exists(state) else None
    value = loss(config, budget)
    with atomic_path(state) as temporary:
        Path(temporary).write_text(json.dumps({"budget": budget}))
    return {"loss": value, "info": {"found": found, "previous_budget": previous_budget, "rank": RANK}}


def main():
    global SLEEP, BUDGET_SLEEP
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--n_workers", type=int, default=None)
    parser.add_argument("--n_iterations", type=int, default=3)
    parser.add_argument("--fill_tail", action="store_true")
    parser.add_argument("--asynchronous", action="store_true")
    parser.add_argument("--keep_busy", action="store_true")
    parser.add_argument("--budget_sleep", type=float, default=0.0)
    parser.add_argument("--checkpoints", default=None, help="keep checkpoints: incumbent, all or none")
    parser.add_argument("--verbose", action="store_true", help="log mpibohb's progress lines to stderr")
    args = parser.parse_args()
    if args.verbose:
        logging.basicConfig(level=logging.INFO)
    SLEEP, BUDGET_SLEEP = args.sleep, args.budget_sleep
    global RANK
    rank = RANK = os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK") or "0"
    pids = Path(args.run_dir).parent / "pids"
    pids.mkdir(exist_ok=True)
    (pids / rank).write_text(str(os.getpid()))

    cs = CS.ConfigurationSpace({"x": (0.0, 1.0), "n": (1, 4), "c": ["a", "b"]})
    opt = BOHB(configspace=cs, min_budget=1, max_budget=27, eta=3, seed=11, run_dir=args.run_dir,
               fill_tail=args.fill_tail, asynchronous=args.asynchronous, keep_busy=args.keep_busy,
               keep_checkpoints=args.checkpoints or "incumbent")
    worker = loss if args.checkpoints is None else train
    res = opt.run(n_iterations=args.n_iterations, worker=worker, resume=args.resume, n_workers=args.n_workers)
    if res is not None:
        runs = [[list(r.config_id), r.budget, res.get_id2config_mapping()[r.config_id]["config"], r.loss]
                for r in res.get_all_runs()]
        print("RESULT " + json.dumps(runs), flush=True)


SLEEP = BUDGET_SLEEP = 0.0
RANK = "0"

if __name__ == "__main__":
    main()
