"""A serial run whose worker kills its own process on one job: (0, 0, 2) at budget 1.

    python crashing_run.py RUN_DIR
"""

import os
import sys

import ConfigSpace as CS

from mpibohb import HyperBand, Worker


class Crashing(Worker):
    def compute(self, config_id, config, budget, working_directory):
        if tuple(config_id) == (0, 0, 2) and budget == 1:
            os._exit(9)  # like a segfault or an out-of-memory kill
        return {"loss": config["x"] + 1 / budget}


if __name__ == "__main__":
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    res = HyperBand(cs, min_budget=1, max_budget=9, eta=3, seed=2, run_dir=sys.argv[1]).run(
        n_iterations=2, worker=Crashing(), resume=True)
    print("RUNS", len(res.get_all_runs()), "FAILED", len(res.failed_runs()))
