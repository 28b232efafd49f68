"""A run in two threads whose job (0, 0, 2) at budget 1 kills the whole process, while the job
beside it, (0, 0, 3) at budget 1, is still sleeping: a bystander that dies with it every time.

    python bystander_run.py RUN_DIR
"""

import os
import sys
import time

import ConfigSpace as CS

from mpibohb import HyperBand


def crash_or_sleep(config_id, config, budget):
    if tuple(config_id) == (0, 0, 2) and budget == 1:
        time.sleep(0.5)
        os._exit(9)  # like a segfault or an out-of-memory kill
    if tuple(config_id) == (0, 0, 3) and budget == 1:
        time.sleep(2)
    return config["x"] + 1 / budget


if __name__ == "__main__":
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    res = HyperBand(cs, min_budget=1, max_budget=9, eta=3, seed=2, run_dir=sys.argv[1]).run(
        n_iterations=2, worker=crash_or_sleep, n_workers=2, resume=True)
    print("RUNS", len(res.get_all_runs()), "FAILED", len(res.failed_runs()))
