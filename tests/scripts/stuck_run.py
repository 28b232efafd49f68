"""A serial run whose second evaluation is stuck where its timeout (1 s) cannot interrupt it: a
sleep with SIGALRM blocked (as in a C call that releases the GIL). The watchdog thread ends the
process.

    python tests/scripts/stuck_run.py RUN_DIR|none
"""

import signal
import sys
import time

import ConfigSpace as CS

from mpibohb import HyperBand

calls = []


def compute(config, budget):
    calls.append(budget)
    if len(calls) == 2:
        print("STUCK", flush=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(60)
        print("C CALL RETURNED", flush=True)
    return config["x"]


if __name__ == "__main__":
    run_dir = None if sys.argv[1] == "none" else sys.argv[1]
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    HyperBand(configspace=space, min_budget=1, max_budget=9, seed=1, run_dir=run_dir).run(
        n_iterations=1, worker=compute, timeout=1)
    print("FINISHED", flush=True)
