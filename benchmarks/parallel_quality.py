"""BOHB's two models against the peers' own parallel modes, all on K simulated workers: the
incumbent's regret at equal total budget (issue 22: "in synchronous and asynchronous mode").

    python -m benchmarks.parallel_quality [--problems branin ...] [--seeds 10] [--workers 32]
                                          [--sigma 1.0] [--out_dir benchmarks/results/parallel]

Per problem (default: every one that trains no model), seed and K:

* mpibohb: ``benchmarks.asynchronous_quality.one_run`` (``mpibohb.simulate``, the problem's own
  ``n_iterations``) for BOHB with the tpe model, synchronous and asynchronous, and with HpBandSter's
  model, synchronous;
* the peers: ``benchmarks/parallel_peers.py`` in ``benchmarks/.peers-venv`` (Optuna's TPE with
  the constant liar and its Hyperband pruner; DEHB, asynchronous), given mpibohb's total budget.

Every engine gets the same run times (``benchmarks/run_times.py``, sigma ``--sigma``) and noise
(``problems.noise_generator(seed)``). The score is ``benchmarks/quality.py``'s: after each
finished evaluation (in order of finishing) the incumbent is the lowest loss on the largest budget
so far, scored by its regret; each cell is the mean ± s.e. over seeds at mpibohb's total budget.
Optuna is shown under both accountings (charged only its increments, as it runs, and each rung's
full budget, as the others). Verdicts: the tpe model, synchronous and asynchronous, against each
peer cell: better or worse beyond the combined s.e., else equal. Peer runs are kept as JSON under
``--out_dir``, named by a hash of the code they ran, and reused while it is unchanged; mpibohb's
runs are made anew (seconds each).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ablation import verdict
from benchmarks.asynchronous_quality import one_run
from benchmarks.problems import Problem, get_problem, offline_problems
from benchmarks.processes import run_in_group
from benchmarks.quality import ENGINES as PYTHONS
from benchmarks.quality import incumbent_steps, standard_error, step_values, total_budget

HERE = Path(__file__).resolve().parent
MPIBOHB_CELLS = {"tpe, synchronous": ("tpe", "synchronous"), "tpe, asynchronous": ("tpe", "asynchronous"),
                 "HpBandSter's model, synchronous": ("hpbandster", "synchronous")}
PEERS = {"optuna": "optuna_tpe_hb", "dehb": "dehb"}
PEER_SECONDS = 600  # a peer run that takes longer is killed and named


def peer_fingerprint() -> str:
    """A hash of the code a peer run depends on."""
    digest = hashlib.sha256()
    for name in ("parallel_peers.py", "peers.py", "engines.py", "problems.py", "run_times.py"):
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()[:10]


def peer_run(problem: Problem, engine: str, seed: int, workers: int, sigma: float, out_dir: Path) -> dict[str, Any]:
    """One peer run, made now or read from an earlier call with the same code."""
    budget = total_budget(problem, problem.n_iterations)
    path = out_dir / problem.name / f"{engine}-K{workers}-s{sigma:g}-seed{seed}-{peer_fingerprint()}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        command = [PYTHONS[engine], "-m", "benchmarks.parallel_peers", "--problem", problem.name, "--optimizer",
                   PEERS[engine], "--seed", str(seed), "--total_budget", repr(budget), "--workers", str(workers),
                   "--sigma", repr(sigma), "--out", str(path)]
        finished = run_in_group(command, PEER_SECONDS, cwd=HERE.parent)
        if finished.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({finished.returncode}): {finished.stderr[-2000:]}")
    return json.loads(path.read_text())


def peer_scores(problem: Problem, record: dict[str, Any], budget: float) -> dict[str, float]:
    """The peer's score at ``budget``, per accounting (Optuna: increments and full budgets)."""
    accountings = {"": record["runs"]}
    if any(run["charged"] != run["budget"] for run in record["runs"]):
        accountings = {", increments": record["runs"],
                       ", full budgets": [dict(run, charged=run["budget"]) for run in record["runs"]]}
    scores = {}
    for suffix, runs in accountings.items():
        budgets, _, values = incumbent_steps(runs, problem.score)
        scores[record["engine"] + suffix] = float(step_values(budgets, values, np.array([budget]))[0])
    return scores


def problem_scores(name: str, seeds: int, workers: int, sigma: float, out_dir: Path) -> dict[str, np.ndarray]:
    """Every cell's scores over seeds on one problem."""
    problem = get_problem(name)
    budget = total_budget(problem, problem.n_iterations)
    cells: dict[str, list[float]] = {}
    for seed in range(seeds):
        for label, (model, schedule) in MPIBOHB_CELLS.items():
            run = one_run(name, workers, schedule, seed, sigma, None, model)
            cells.setdefault(label, []).append(float(step_values(np.array(run["budgets"]), np.array(run["scores"]),
                                                                 np.array([budget]))[0]))
        for engine in PEERS:
            for label, score in peer_scores(problem, peer_run(problem, engine, seed, workers, sigma, out_dir),
                                            budget).items():
                cells.setdefault(label, []).append(score)
    return {label: np.array(values) for label, values in cells.items()}


def _cell(values: np.ndarray) -> str:
    return f"{np.mean(values):.4g} ± {standard_error(values):.2g}"


def print_table(rows: dict[str, dict[str, np.ndarray]], workers: int) -> None:
    """The scores, then the tpe model's verdicts against each peer cell."""
    labels = list(next(iter(rows.values())))
    peers = [label for label in labels if label not in MPIBOHB_CELLS]
    print(f"\nRegret at mpibohb's total budget, {workers} simulated workers, mean ± s.e. over seeds\n")
    print("| problem | " + " | ".join(labels) + " |")
    print("| --- |" + " ---: |" * len(labels))
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(_cell(cells[label]) for label in labels) + " |")
    print("\nThe tpe model (synchronous / asynchronous) against each peer: + better beyond the combined s.e., "
          "- worse, = within it\n")
    print("| problem | " + " | ".join(peers) + " |")
    print("| --- |" + " --- |" * len(peers))
    tally = {label: [0, 0, 0] for label in peers}
    for name, cells in rows.items():
        marks = []
        for peer in peers:
            pair = [verdict(cells[f"tpe, {schedule}"], cells[peer]) for schedule in ("synchronous", "asynchronous")]
            for mark in pair:
                tally[peer]["+=-".index(mark)] += 1
            marks.append(" / ".join(pair))
        print(f"| {name} | " + " | ".join(marks) + " |")
    print("| better / equal / worse (both schedules) | "
          + " | ".join("{} / {} / {}".format(*tally[peer]) for peer in peers) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", help="problem names (default: every one that trains no model)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--out_dir", default=str(HERE / "results" / "parallel"))
    args = parser.parse_args(argv)
    names = args.problems or offline_problems()
    for name in names:
        get_problem(name)
    if args.seeds < 1 or args.workers < 1 or args.sigma < 0:
        parser.error("--seeds and --workers must be at least 1, --sigma at least 0")
    missing = sorted({PYTHONS[engine] for engine in PEERS if not Path(PYTHONS[engine]).exists()})
    if missing:
        parser.error(f"no peer virtualenv ({', '.join(missing)}): run bash benchmarks/peers_env.sh first")
    rows = {}
    for name in names:
        started = time.perf_counter()
        rows[name] = problem_scores(name, args.seeds, args.workers, args.sigma, Path(args.out_dir))
        print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    print_table(rows, args.workers)


if __name__ == "__main__":
    main()
