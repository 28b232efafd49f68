"""A compute that forks a helper which outlives the run (a data loader left running), then a
resume of the same run directory in the same process while the helper lives: the helper must
not hold the run's lock. Prints ``RESUMED <runs>``, or the refusal.

    python tests/scripts/forking_run.py RUN_DIR
"""

import os
import signal
import sys
import time

import ConfigSpace as CS

from mpibohb import HyperBand

helpers = []


def compute(config, budget):
    if not helpers:
        pid = os.fork()
        if pid == 0:  # the helper: outlives the run, and exits without cleaning up
            time.sleep(30)
            os._exit(0)
        helpers.append(pid)
    return config["x"] + 1 / budget


def run(n_iterations):
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    return HyperBand(configspace=space, min_budget=1, max_budget=9, seed=1, run_dir=sys.argv[1]).run(
        n_iterations=n_iterations, worker=compute, resume=True)


if __name__ == "__main__":
    run(1)
    try:
        print("RESUMED", len(run(2).get_all_runs()), flush=True)
    except FileExistsError as refused:
        print("REFUSED", refused, flush=True)
    finally:
        for pid in helpers:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
