"""A run in which one rank ends before it starts MPI, as a rank whose script fails before ``run()``
on one node does (an import error, a missing file or GPU there).

    mpiexec -n K python early_exit_run.py RUN_DIR [--rank R] [--end exit0|exit1|late] [--after S] [--frozen APP]

Rank ``R`` (the launcher's ``PMI_RANK``; default none) waits ``S`` seconds (default 0), then ends
before importing mpibohb, with exit code 0 (``exit0``) or 1 (``exit1``), or goes on (``late``). The
other ranks run HyperBand on x in [0, 1]. Rank 0 prints ``RESULT <runs>`` after the run and, after ``run()`` on
every rank, ``CHILDREN <n>``: the processes this rank still has. ``--frozen APP``: the script
sets ``sys.frozen`` and makes ``APP`` its ``sys.executable``, as an application that PyInstaller
made has them.
"""

import argparse
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("run_dir")
parser.add_argument("--rank", type=int, default=-1)
parser.add_argument("--end", choices=["exit0", "exit1", "late"], default="exit1")
parser.add_argument("--after", type=float, default=0.0)
parser.add_argument("--frozen", metavar="APP")
args = parser.parse_args()
if args.frozen:
    sys.frozen = True  # type: ignore[attr-defined]
    sys.executable = args.frozen

if os.environ.get("PMI_RANK") == str(args.rank):
    time.sleep(args.after)
    if args.end != "late":
        print(f"RANK {args.rank} ENDS BEFORE MPI ({args.end})", file=sys.stderr, flush=True)
        sys.exit(1 if args.end == "exit1" else 0)

import ConfigSpace as CS  # noqa: E402

from mpibohb import HyperBand  # noqa: E402


def children() -> int:
    """How many processes this one has (its sentry must be gone once MPI has started)."""
    count = 0
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as stat:
                text = stat.read()
        except (OSError, NotADirectoryError):
            continue
        if int(text[text.rindex(")") + 2:].split()[1]) == os.getpid():
            count += 1
    return count


space = CS.ConfigurationSpace(seed=1)
space.add(CS.UniformFloatHyperparameter("x", 0.0, 1.0))
optimizer = HyperBand(configspace=space, min_budget=1, max_budget=9, eta=3, run_dir=args.run_dir, seed=1)
result = optimizer.run(1, worker=lambda config, budget: {"loss": config["x"]}, workers_return=True)
print(f"CHILDREN {children()}", flush=True)
if result is not None:
    print(f"RESULT {len(result.get_all_runs())}", flush=True)
