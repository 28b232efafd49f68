"""A simulated run whose worker ends the process at the one evaluation at budget 27; every start
resumes ``argv[1]``. After three deaths a resume records that job as failed and finishes the run.

    python tests/scripts/dying_simulation.py RUN_DIR
"""

import os
import sys

import ConfigSpace as CS

from mpibohb import HyperBand, simulate


def compute(config, budget):
    if budget == 27:
        os._exit(7)
    return config["x"] + 1 / budget


if __name__ == "__main__":
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)}, seed=1)
    result = simulate(HyperBand(configspace=space, min_budget=1, max_budget=27, eta=3, seed=4, run_dir=sys.argv[1]),
                      n_iterations=1, worker=compute, n_workers=2, duration=lambda config, budget: budget, resume=True)
    print(f"{len(result.get_all_runs())} runs", flush=True)
