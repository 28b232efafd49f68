"""A serial run whose second evaluation is stuck where its timeout (1 s) cannot interrupt it.

    python tests/scripts/stuck_run.py RUN_DIR|none gil|nogil

``nogil``: a sleep with SIGALRM blocked (a C call that releases the GIL): the watchdog thread ends
the process. ``gil``: a C call that keeps the GIL for 60 s (``ctypes.PyDLL``), where no Python
thread runs: the faulthandler backstop ends it (set to 2 s after the watchdog's moment here).
"""

import ctypes
import signal
import sys
import time

import ConfigSpace as CS

import mpibohb.executors.serial
from mpibohb import HyperBand

calls = []


def compute(config, budget):
    calls.append(budget)
    if len(calls) == 2:
        print("STUCK", flush=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        if sys.argv[2] == "gil":
            ctypes.PyDLL(None).sleep(60)
        else:
            time.sleep(60)
        print("C CALL RETURNED", flush=True)
    return config["x"]


if __name__ == "__main__":
    mpibohb.executors.serial.GIL_BACKSTOP_SECONDS = 2.0
    run_dir = None if sys.argv[1] == "none" else sys.argv[1]
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    HyperBand(configspace=space, min_budget=1, max_budget=9, seed=1, run_dir=run_dir).run(
        n_iterations=1, worker=compute, timeout=1)
    print("FINISHED", flush=True)
