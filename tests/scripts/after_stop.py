"""Life after a stopped run in a process that goes on, as a notebook does.

    python tests/scripts/after_stop.py RUN_DIR [--own_handler]

The first evaluation sends this process a stop signal (SIGINT; with ``--own_handler`` SIGTERM,
which compute takes with a handler of its own, as training frameworks do), and the script catches
the ``SystemExit`` (exit code 99). Then it sends the same signal again at once (a launcher's copy:
ignored, prints ``COPY IGNORED``), starts a second run without a run directory whose compute sends
SIGINT: a real Ctrl-C stops it (prints ``SECOND RUN INTERRUPTED``), it is not a failed evaluation;
then SIGINT after the repeat window (prints ``KEYBOARDINTERRUPT`` when it arrives as Python's own).
"""

import os
import signal
import sys
import time

import ConfigSpace as CS

from mpibohb import HyperBand
from mpibohb.stopping import REPEAT_WINDOW

OWN_HANDLER = "--own_handler" in sys.argv
STOP = signal.SIGTERM if OWN_HANDLER else signal.SIGINT


def compute(config, budget):
    if OWN_HANDLER:
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
    os.kill(os.getpid(), STOP)
    time.sleep(0.5)  # a stop that our handler sees interrupts this
    return config["x"]


def interrupting(config, budget):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
    return config["x"]


if __name__ == "__main__":
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    try:
        HyperBand(configspace=space, min_budget=1, max_budget=9, seed=1, run_dir=sys.argv[1]).run(
            n_iterations=1, worker=compute)
    except SystemExit as stopped:
        print("STOPPED", stopped.code, flush=True)
    os.kill(os.getpid(), STOP)
    time.sleep(0.2)
    print("COPY IGNORED", flush=True)
    try:
        HyperBand(configspace=space, min_budget=1, max_budget=9, seed=1).run(n_iterations=1, worker=interrupting)
        print("SECOND RUN WENT ON", flush=True)
    except KeyboardInterrupt:
        print("SECOND RUN INTERRUPTED", flush=True)
    time.sleep(REPEAT_WINDOW)
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        print("KEYBOARDINTERRUPT", flush=True)
    print("HANDLER IS PYTHON'S", signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
