"""A compute whose own SIGUSR1 handler ends training early (as PyTorch Lightning's does) and which
signals itself; every rank runs this: ``mpiexec -n 3 python self_signal.py RUN_DIR MODE``.

MODE ``once``: the signal comes in the first evaluation of each configuration only (a stop that
reached one rank); ``always``: in every evaluation (a compute that uses the signal for itself);
``chained``: as ``once``, with a handler that then calls the one it replaced (PyTorch Lightning's do).
Rank 0 prints ``RESULT <json>``: each run's config id and whether it stopped early.
"""

import json
import os
import signal
import sys
from pathlib import Path

import ConfigSpace as CS

from mpibohb import RandomSearch

RUN_DIR, MODE = sys.argv[1], sys.argv[2]


def compute(config, budget):
    stopped = []
    before = signal.getsignal(signal.SIGUSR1)

    def handler(signum, frame):
        stopped.append(signum)
        if MODE == "chained" and callable(before):
            before(signum, frame)

    signal.signal(signal.SIGUSR1, handler)
    marker = Path(RUN_DIR).parent / f"signalled-{config['x']:.6f}"
    if MODE == "always" or not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs here: training ends early
    return {"loss": config["x"] + (1.0 if stopped else 0.0), "info": {"stopped_early": bool(stopped)}}


space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
result = RandomSearch(configspace=space, seed=3, run_dir=RUN_DIR).run(n_iterations=4, worker=compute)
if result is not None:
    runs = [[list(r.config_id), r.info["stopped_early"]] for r in result.get_all_runs()]
    print("RESULT " + json.dumps(runs), flush=True)
