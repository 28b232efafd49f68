"""A compute that uses a stop signal for itself (a helper process tells it "data ready" by
SIGUSR1; here it sends it itself), in a serial run of one job that resumes ``RUN_DIR``.

    python tests/scripts/self_signalling_run.py RUN_DIR

The run cannot tell that signal from a stop: each session stops (exit code 99) and the job runs
again, until stops have ended two sessions inside it; then what it returns is kept.
"""

import os
import signal
import sys

import ConfigSpace as CS

from mpibohb import RandomSearch


def compute(config, budget):
    signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    os.kill(os.getpid(), signal.SIGUSR1)
    return config["x"]


if __name__ == "__main__":
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    result = RandomSearch(space, min_budget=1, max_budget=1, seed=0, run_dir=sys.argv[1]).run(
        n_iterations=1, worker=compute, resume=True)
    print("RUNS", len(result.get_all_runs()), flush=True)
