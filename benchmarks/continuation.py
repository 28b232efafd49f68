"""What continuing from checkpoints saves: ``examples/checkpointing.py`` with and without it.

    python -m benchmarks.continuation [--seeds 1 2 3] [--n_iterations 4] [--quick] [--json OUT]

For each seed, the example runs twice as a user runs it (``python examples/checkpointing.py
--seed S --run_dir <temporary>``, serially, ``OMP_NUM_THREADS=1`` so that one evaluation uses one
core): once continuing each promoted configuration from its checkpoint, once with
``--from_scratch`` (every budget trained from zero). Both runs evaluate the same configurations
at the same budgets (the losses do not depend on continuation: see the example). Per run: the wall
seconds of the whole process (start-up included), the epochs trained and the CPU seconds of
training that the example prints (its ``training_cpu_seconds``, summed over evaluations). The
table gives each and the ratio continued / from scratch; the machine may be shared with other
work, so CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.processes import run_in_group

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "checkpointing.py"
SEEDS = [1, 2, 3]
TIMEOUT = 900.0
_SUMMARY = re.compile(r"(\d+) evaluations, (\d+) epochs trained \((\S+) if every budget were trained from zero, "
                      r"(\S+) counting only increments\) in (\S+) CPU seconds")


def run_example(seed: int, n_iterations: int, from_scratch: bool) -> dict[str, Any]:
    """One run of the example; its figures."""
    with tempfile.TemporaryDirectory(prefix="mpibohb-continuation-") as run_dir:
        command = [sys.executable, str(EXAMPLE), "--seed", str(seed), "--n_iterations", str(n_iterations),
                   "--run_dir", run_dir] + (["--from_scratch"] if from_scratch else [])
        started = time.monotonic()
        completed = run_in_group(command, TIMEOUT, env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=ROOT)
        wall = time.monotonic() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({completed.returncode}):\n{completed.stderr[-2000:]}")
    match = _SUMMARY.search(completed.stdout)
    if match is None:
        raise RuntimeError(f"no summary line in the example's output:\n{completed.stdout[-2000:]}")
    evaluations, epochs, full, increments, cpu = match.groups()
    return {"seed": seed, "from_scratch": from_scratch, "evaluations": int(evaluations), "epochs": int(epochs),
            "budget_full": float(full), "budget_increments": float(increments), "cpu": float(cpu), "wall": wall}


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per seed: both runs side by side, with the ratios."""
    rows = []
    for seed in sorted({run["seed"] for run in runs}):
        continued = next(r for r in runs if r["seed"] == seed and not r["from_scratch"])
        scratch = next(r for r in runs if r["seed"] == seed and r["from_scratch"])
        rows.append({"seed": seed, "evaluations": continued["evaluations"],
                     "epochs": [continued["epochs"], scratch["epochs"]],
                     "cpu": [continued["cpu"], scratch["cpu"]], "wall": [continued["wall"], scratch["wall"]],
                     "ratio_epochs": continued["epochs"] / scratch["epochs"],
                     "ratio_cpu": continued["cpu"] / scratch["cpu"], "ratio_wall": continued["wall"] / scratch["wall"]})
    return rows


HEADER = ["| seed | evaluations | epochs trained: continued / from scratch | training CPU s: continued / from scratch "
          "| wall s: continued / from scratch | epochs ratio | CPU ratio | wall ratio |",
          "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The markdown table, with a line of means when there are several seeds."""
    lines = list(HEADER)
    for row in rows:
        lines.append(f"| {row['seed']} | {row['evaluations']} | {row['epochs'][0]} / {row['epochs'][1]} | "
                     f"{row['cpu'][0]:.1f} / {row['cpu'][1]:.1f} | {row['wall'][0]:.1f} / {row['wall'][1]:.1f} | "
                     f"{row['ratio_epochs']:.3f} | {row['ratio_cpu']:.3f} | {row['ratio_wall']:.3f} |")
    if len(rows) > 1:
        means = [statistics.fmean(row[key] for row in rows) for key in ("ratio_epochs", "ratio_cpu", "ratio_wall")]
        lines.append("| mean | | | | | " + " | ".join(f"{mean:.3f}" for mean in means) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--n_iterations", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="one seed, one iteration")
    parser.add_argument("--json", help="write the settings, rows and runs to this file as JSON")
    args = parser.parse_args(argv)
    seeds, n_iterations = ([1], 1) if args.quick else (args.seeds, args.n_iterations)
    runs = []
    for seed in seeds:
        for from_scratch in (False, True):
            run = run_example(seed, n_iterations, from_scratch)
            print(f"seed {seed} {'from scratch' if from_scratch else 'continued'}: {run['epochs']} epochs, "
                  f"{run['cpu']:.1f} CPU s, {run['wall']:.1f} s", file=sys.stderr, flush=True)
            runs.append(run)
    rows = summarize(runs)
    print(f"examples/checkpointing.py, {n_iterations} iterations (BOHB, budgets 1..27 epochs, eta 3), serial, "
          "OMP_NUM_THREADS=1:\n")
    print("\n".join(table(rows)))
    if args.json:
        Path(args.json).write_text(json.dumps({"n_iterations": n_iterations, "rows": rows, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
