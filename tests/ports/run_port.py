"""Run a port as ``python PORT ARGS...`` would, then write the evaluations of the ``res`` it made
(or the learning curves ``lcs``, or nothing) to OUT as JSON. Under ``mpiexec`` only rank 0 gets there: the
worker ranks end inside ``run``.

    [mpiexec -n K] python run_port.py OUT PORT [ARGS...]
"""

import json
import runpy
import sys
from pathlib import Path


def evaluations(res):
    """``[config_id, budget, config, loss]`` of every run, in the order of their ids and budgets."""
    id2config = res.get_id2config_mapping()
    runs = sorted(res.get_all_runs(), key=lambda r: (r.config_id, r.budget))
    return [[list(r.config_id), r.budget, id2config[r.config_id]["config"], r.loss] for r in runs]


def summary(res):
    """What the tests compare: the evaluations, the settings and which workers evaluated."""
    return {"evaluations": evaluations(res), "HB_config": res.HB_config,
            "workers": sorted({run.worker.split("@")[0] for run in res.get_all_runs()})}


def main():
    out, port, *args = sys.argv[1:]
    sys.argv = [port, *args]
    names = runpy.run_path(port, run_name="__main__")
    written = {}  # example 6 only prints and plots
    if "res" in names:
        written = summary(names["res"])
    elif "lcs" in names:
        written = {"learning_curves": [[list(cid), curves] for cid, curves in sorted(names["lcs"].items())]}
    Path(out).write_text(json.dumps(written))


if __name__ == "__main__":
    main()
