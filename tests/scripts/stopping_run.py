"""A serial run whose job (0, 0, 2) at budget 1 asks for a clean stop (SIGTERM to its own
process) the first three times it runs, as a scancel or a time limit would; then it finishes.

    python stopping_run.py RUN_DIR
"""

import os
import signal
import sys
import time
from pathlib import Path

import ConfigSpace as CS

from mpibohb import HyperBand


def stopped_three_times(config_id, config, budget, working_directory):
    if tuple(config_id) == (0, 0, 2) and budget == 1:
        count = Path(working_directory) / "stops"
        stops = len(count.read_text()) if count.exists() else 0
        if stops < 3:
            count.write_text("x" * (stops + 1))
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # the stop interrupts this
    return config["x"] + 1 / budget


if __name__ == "__main__":
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    res = HyperBand(cs, min_budget=1, max_budget=9, eta=3, seed=2, run_dir=sys.argv[1]).run(
        n_iterations=2, worker=stopped_three_times, resume=True)
    print("RUNS", len(res.get_all_runs()), "FAILED", len(res.failed_runs()))
