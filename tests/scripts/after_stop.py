"""Life after a stopped run in a process that goes on, as a notebook does: the first evaluation
sends this process SIGINT (a stop), the script catches the ``SystemExit`` (exit code 99), then
sends SIGINT again: at once (a copy of the stop's signal: ignored, prints ``COPY IGNORED``) and
after the repeat window (prints ``KEYBOARDINTERRUPT`` when it arrives as Python's own).

    python tests/scripts/after_stop.py RUN_DIR
"""

import os
import signal
import sys
import time

import ConfigSpace as CS

from mpibohb import HyperBand
from mpibohb.stopping import REPEAT_WINDOW


def compute(config, budget):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # the stop interrupts this
    return config["x"]


if __name__ == "__main__":
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    try:
        HyperBand(configspace=space, min_budget=1, max_budget=9, seed=1, run_dir=sys.argv[1]).run(
            n_iterations=1, worker=compute)
    except SystemExit as stopped:
        print("STOPPED", stopped.code, flush=True)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
    print("COPY IGNORED", flush=True)
    time.sleep(REPEAT_WINDOW)
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        print("KEYBOARDINTERRUPT", flush=True)
    print("HANDLER IS PYTHON'S", signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
