"""A cluster run whose results say where they were evaluated; every rank runs this.

    sbatch jobscripts/slurm.sbatch   with SCRIPT=tests/scripts/node_run.py

Each evaluation sleeps ``--sleep`` seconds (so that every worker gets jobs) and returns, in its
``info``, the SLURM node (``SLURMD_NODENAME``) of the process that evaluated it.
Takes the job script's ``--run_dir`` and resumes from it, as ``examples/cluster.py`` does.
``--exit_rank R`` makes MPI rank R end its process (``os._exit(3)``) at its first evaluation.
``--note TEXT`` goes into every result's ``info`` as it arrived (to check how the job script splits
its arguments).
"""

import argparse
import os
import time

import ConfigSpace as CS

from mpibohb import HyperBand


def evaluate(config, budget):
    if os.environ.get("PMI_RANK") == EXIT_RANK:
        os._exit(3)
    time.sleep(SLEEP)
    return {"loss": (config["x"] - 0.3) ** 2 + 1.0 / budget,
            "info": {"node": os.environ.get("SLURMD_NODENAME"), "note": NOTE}}


def main():
    global SLEEP, EXIT_RANK, NOTE
    parser = argparse.ArgumentParser()
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--n_iterations", type=int, default=2)
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument("--exit_rank", help="this MPI rank ends its process at its first evaluation")
    parser.add_argument("--note", help="goes into every result's info")
    args = parser.parse_args()
    SLEEP, EXIT_RANK, NOTE = args.sleep, args.exit_rank, args.note
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    optimizer = HyperBand(configspace=space, min_budget=1, max_budget=9, eta=3, seed=5, run_dir=args.run_dir)
    result = optimizer.run(n_iterations=args.n_iterations, worker=evaluate, resume=True)
    if result is not None:
        print(f"{len(result.get_all_runs())} runs", flush=True)


SLEEP = 0.0
EXIT_RANK = None
NOTE = None

if __name__ == "__main__":
    main()
