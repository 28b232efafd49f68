"""Master throughput with 4 MPI workers: DeepHyper's CBO (mpicomm evaluator) beside mpibohb's BOHB.

    bash benchmarks/deephyper_env.sh               # once: makes benchmarks/.deephyper-venv
    python -m benchmarks.deephyper_throughput [--workers 4] [--evaluations 200] \\
        [--acq_optimizers sampling,mixedga]        # from the repository's root, the project's venv

Both optimisers get the space of benchmarks/throughput.py (one float ``x`` in [0, 1]) and a
zero-cost objective (it returns ``x``), on ``workers + 1`` MPI ranks (rank 0 the master), and the
master's wall time of the search is timed; evaluations/s = evaluations / that time, and its inverse
is the master's seconds per result.

* DeepHyper: ``mpiexec -n 5`` of benchmarks/.deephyper-venv's python (its own mpi4py and MPICH
  wheel's mpiexec), ``Evaluator.create(run, method="mpicomm", method_kwargs={"storage":
  MemoryStorage()})`` (the default shared-window storage aborts under MPICH),
  ``CBO(HpProblem, random_state=0, acq_optimizer=A)`` with CBO's defaults otherwise, no stopper,
  ``search.search(evaluator, max_evals=N)``; each acquisition optimiser of ``--acq_optimizers``
  in turn ("mixedga" is DeepHyper 0.13.2's default, "sampling" what benchmarks.deephyper_peer
  uses). The scripts end with a barrier and ``MPI.Finalize()``.
* mpibohb: benchmarks/throughput.py's child (BOHB, budgets 9..243, eta 3, seed 0, zero-cost
  worker) on the project's ``mpiexec -n 5``, with the fewest Hyperband iterations that make at
  least N evaluations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEEPHYPER_PYTHON = HERE / ".deephyper-venv" / "bin" / "python"
TIMEOUT = 1800.0


def zero_cost(job: Any) -> float:
    """DeepHyper's run function on the worker ranks (importable: mpicomm pickles it by reference)."""
    return float(job.parameters["x"])


def deephyper_child(evaluations: int, acq_optimizer: str, out: str) -> None:
    """Runs on every rank under mpiexec, in benchmarks/.deephyper-venv; rank 0 writes ``out``."""
    from deephyper.evaluator import Evaluator
    from deephyper.evaluator.storage import MemoryStorage
    from deephyper.hpo import CBO, HpProblem
    from mpi4py import MPI

    problem = HpProblem()
    problem.add_hyperparameter((0.0, 1.0), "x")
    with tempfile.TemporaryDirectory(prefix="deephyper-throughput-") as log_dir:
        with Evaluator.create(zero_cost, method="mpicomm", method_kwargs={"storage": MemoryStorage()}) as evaluator:
            if evaluator is not None and evaluator.is_master:
                search = CBO(problem, random_state=0, log_dir=log_dir, checkpoint_history_to_csv=False,
                             acq_optimizer=acq_optimizer)
                start = time.perf_counter()
                results = search.search(evaluator, max_evals=evaluations)
                wall = time.perf_counter() - start
                Path(out).write_text(json.dumps({"runs": len(results), "wall": wall,
                                                 "workers": evaluator.num_workers}))
    MPI.COMM_WORLD.Barrier()
    MPI.Finalize()


def mpiexec_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                MKL_NUM_THREADS="1")


def run_deephyper(workers: int, evaluations: int, acq_optimizer: str) -> dict[str, Any]:
    mpiexec = DEEPHYPER_PYTHON.parent / "mpiexec"
    with tempfile.TemporaryDirectory() as out_dir:
        out = Path(out_dir) / "master.json"
        command = [str(mpiexec), "-n", str(workers + 1), str(DEEPHYPER_PYTHON), "-m", "benchmarks.deephyper_throughput",
                   "--child", "--evaluations", str(evaluations), "--acq_optimizers", acq_optimizer, "--out", str(out)]
        subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=mpiexec_env(), check=True,
                       cwd=ROOT)
        return dict(json.loads(out.read_text()))


def run_mpibohb(workers: int, evaluations: int) -> dict[str, Any]:
    from benchmarks import throughput
    from mpibohb import bracket_plans

    n_iterations, planned = 0, 0
    while planned < evaluations:
        plan = bracket_plans.bracket_plan(n_iterations, 9, 243, 3)
        planned += sum(plan.num_configs)
        n_iterations += 1
    master = throughput.launch(workers + 1, "--optimizer", "bohb", "--n_iterations", str(n_iterations),
                               timeout=TIMEOUT)[0]
    return {"runs": master["runs"], "wall": master["wall"], "workers": workers, "n_iterations": n_iterations}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--evaluations", type=int, default=200)
    parser.add_argument("--acq_optimizers", default="sampling,mixedga")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        deephyper_child(args.evaluations, args.acq_optimizers, args.out)
        return
    if not DEEPHYPER_PYTHON.exists():
        sys.exit("benchmarks/.deephyper-venv is missing: run bash benchmarks/deephyper_env.sh")
    print(f"{args.workers} MPI workers (mpiexec -n {args.workers + 1}), one float, zero-cost objective,"
          f" at least {args.evaluations} evaluations\n")
    print("| optimiser | evaluations | master seconds | evaluations/s | master seconds per result |")
    print("| --- | ---: | ---: | ---: | ---: |")
    rows = []
    runs: list[tuple[str, Any]] = [(f"DeepHyper CBO (acq_optimizer={name})", name)
                                   for name in args.acq_optimizers.split(",") if name]
    runs.append(("mpibohb BOHB (budgets 9..243, eta 3)", None))
    for label, acq in runs:
        row = run_deephyper(args.workers, args.evaluations, acq) if acq else run_mpibohb(args.workers, args.evaluations)
        row["optimiser"] = label
        rows.append(row)
        print(f"| {label} | {row['runs']} | {row['wall']:.2f} | {row['runs'] / row['wall']:,.1f} |"
              f" {row['wall'] / row['runs']:.4f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
