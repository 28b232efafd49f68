"""BOHB's two models against the peers' own parallel modes, all on K simulated workers: the
incumbent's regret at equal total budget (issue 22: "in synchronous and asynchronous mode").

    python -m benchmarks.parallel_quality [--problems branin ...] [--seeds 10] [--workers 32]
                                          [--sigma 1.0] [--peers optuna,dehb[,deephyper]]
                                          [--out_dir benchmarks/results/parallel]

Per problem (default: every one that trains no model), seed and K:

* mpibohb: ``benchmarks.asynchronous_quality.one_run`` (``mpibohb.simulate``, the problem's own
  ``n_iterations``) for BOHB with the tpe model, synchronous and asynchronous, and with HpBandSter's
  model, synchronous;
* the peers, given mpibohb's total budget: ``benchmarks/parallel_peers.py`` in
  ``benchmarks/.peers-venv`` (Optuna's TPE with the constant liar and its Hyperband pruner; DEHB,
  asynchronous) and, with ``--peers ...,deephyper``, ``benchmarks/deephyper_parallel.py`` in
  ``benchmarks/.deephyper-venv`` (CBO with its successive-halving stopper, asynchronous; about ten
  times slower than the others: CBO refits its surrogate after every result).

Every engine gets the same run times (``benchmarks/run_times.py``, sigma ``--sigma``) and noise
(``problems.noise_generator(seed)``). The score is ``benchmarks/quality.py``'s: after each
finished evaluation (in order of finishing) the incumbent is the lowest loss on the largest budget
so far, scored by its regret; each cell is the mean ± s.e. over seeds at a common budget. Every
engine is scored under both of ``benchmarks/quality.py``'s accountings, computed from the same runs
(``quality.charges``): each evaluation charged its full budget, read at mpibohb's total; or only
its increment over the same configuration's largest earlier budget (as Optuna's pruner runs),
read per seed at the smallest total of the cells. Verdicts: the tpe model, synchronous and
asynchronous, against each peer under each accounting: better or worse beyond the combined s.e.,
else equal. Peer runs are kept as JSON under
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
from benchmarks.quality import (
    ACCOUNTINGS,
    charges,
    incumbent_steps,
    one_thread_environment,
    standard_error,
    step_values,
    total_budget,
)
from benchmarks.quality import ENGINES as PYTHONS

HERE = Path(__file__).resolve().parent
MPIBOHB_CELLS = {"tpe, synchronous": ("tpe", "synchronous"), "tpe, asynchronous": ("tpe", "asynchronous"),
                 "HpBandSter's model, synchronous": ("hpbandster", "synchronous")}
PEERS = {"optuna": "optuna_tpe_hb", "dehb": "dehb", "deephyper": "cbo_sh"}
PEER_LABELS = {"optuna": "Optuna", "dehb": "DEHB", "deephyper": "DeepHyper"}
DEFAULT_PEERS = ("optuna", "dehb")
PEER_SECONDS = {"optuna": 600, "dehb": 600, "deephyper": 3600}  # a peer run that takes longer is killed and named
_RUNNER_FILES = {"deephyper": ("deephyper_parallel.py", "deephyper_peer.py")}  # besides parallel_peers.py's


def peer_fingerprint(engine: str) -> str:
    """A hash of the code a run of the peer ``engine`` depends on."""
    digest = hashlib.sha256()
    for name in ("parallel_peers.py", "peers.py", "engines.py", "problems.py", "run_times.py",
                 *_RUNNER_FILES.get(engine, ())):
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()[:10]


def peer_command(problem: Problem, engine: str, seed: int, workers: int, sigma: float, out: Path) -> list[str]:
    """The command line of one peer run, in the peer's virtualenv."""
    budget = total_budget(problem, problem.n_iterations)
    if engine == "deephyper":
        head = [PYTHONS[engine], "-m", "benchmarks.deephyper_parallel", "--problem", problem.name]
    else:
        head = [PYTHONS[engine], "-m", "benchmarks.parallel_peers", "--problem", problem.name, "--optimizer",
                PEERS[engine]]
    return head + ["--seed", str(seed), "--total_budget", repr(budget), "--workers", str(workers),
                   "--sigma", repr(sigma), "--out", str(out)]


def peer_run(problem: Problem, engine: str, seed: int, workers: int, sigma: float, out_dir: Path) -> dict[str, Any]:
    """One peer run, made now or read from an earlier call with the same code."""
    path = out_dir / problem.name / f"{engine}-K{workers}-s{sigma:g}-seed{seed}-{peer_fingerprint(engine)}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        command = peer_command(problem, engine, seed, workers, sigma, path)
        finished = run_in_group(command, PEER_SECONDS[engine], cwd=HERE.parent, env=one_thread_environment())
        if finished.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({finished.returncode}): {finished.stderr[-2000:]}")
    return json.loads(path.read_text())


Curves = dict[str, tuple[np.ndarray, np.ndarray]]  # accounting -> (cumulative budget, score) per evaluation


def peer_curves(problem: Problem, record: dict[str, Any]) -> Curves:
    """The peer's incumbent score against cumulative budget, under each accounting."""
    curves = {}
    for accounting in ACCOUNTINGS:
        runs = [dict(run, charged=charge) for run, charge in zip(record["runs"], charges(record["runs"], accounting))]
        budgets, _, values = incumbent_steps(runs, problem.score)
        curves[accounting] = (budgets, values)
    return curves


def mpibohb_curves(run: dict[str, Any]) -> Curves:
    """``one_run``'s scores against its cumulative budget, under each accounting."""
    scores = np.array(run["scores"])
    return {"full budgets": (np.array(run["budgets"]), scores), "increments": (np.array(run["increments"]), scores)}


def seed_scores(name: str, seed: int, workers: int, sigma: float, out_dir: Path,
                peers: tuple[str, ...] = DEFAULT_PEERS) -> dict[str, dict[str, float]]:
    """Per accounting, every cell's score at the common budget of one seed: mpibohb's total with
    full budgets; with increments the smallest total of the cells (mpibohb's schedules spend less)."""
    problem = get_problem(name)
    curves: dict[str, Curves] = {label: mpibohb_curves(one_run(name, workers, schedule, seed, sigma, None, model))
                                 for label, (model, schedule) in MPIBOHB_CELLS.items()}
    for engine in peers:
        curves[PEER_LABELS[engine]] = peer_curves(problem, peer_run(problem, engine, seed, workers, sigma, out_dir))
    scores: dict[str, dict[str, float]] = {}
    for accounting in ACCOUNTINGS:
        common = total_budget(problem, problem.n_iterations)
        if accounting == "increments":
            common = min(float(budgets[-1]) for budgets, _ in (cell[accounting] for cell in curves.values()))
        reading = np.array([common * (1 + 1e-12)])  # a total reached up to float rounding counts
        scores[accounting] = {label: float(step_values(*cell[accounting], reading)[0])
                              for label, cell in curves.items()}
    return scores


def problem_scores(name: str, seeds: int, workers: int, sigma: float, out_dir: Path,
                   peers: tuple[str, ...] = DEFAULT_PEERS) -> dict[str, dict[str, np.ndarray]]:
    """Per accounting, every cell's scores over seeds on one problem."""
    per_seed = [seed_scores(name, seed, workers, sigma, out_dir, peers) for seed in range(seeds)]
    return {accounting: {label: np.array([scores[accounting][label] for scores in per_seed])
                         for label in per_seed[0][accounting]} for accounting in ACCOUNTINGS}


def _cell(values: np.ndarray) -> str:
    return f"{np.mean(values):.4g} ± {standard_error(values):.2g}"


def print_table(rows: dict[str, dict[str, dict[str, np.ndarray]]], workers: int,
                peers: tuple[str, ...] = DEFAULT_PEERS) -> None:
    """Per accounting the scores, then the tpe model's verdicts against each peer."""
    for accounting in ACCOUNTINGS:
        labels = list(next(iter(rows.values()))[accounting])
        print(f"\nRegret at the common budget, {accounting}, {workers} simulated workers, mean ± s.e. over seeds\n")
        print("| problem | " + " | ".join(labels) + " |")
        print("| --- |" + " ---: |" * len(labels))
        for name, by_accounting in rows.items():
            print(f"| {name} | " + " | ".join(_cell(by_accounting[accounting][label]) for label in labels) + " |")
    columns = [(PEER_LABELS[peer], accounting) for peer in peers for accounting in ACCOUNTINGS]
    print("\nThe tpe model (synchronous / asynchronous) against each peer: + better beyond the combined s.e., "
          "- worse, = within it\n")
    print("| problem | " + " | ".join(f"{peer}, {accounting}" for peer, accounting in columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    tally = {column: [0, 0, 0] for column in columns}
    for name, by_accounting in rows.items():
        marks = []
        for peer, accounting in columns:
            cells = by_accounting[accounting]
            pair = [verdict(cells[f"tpe, {schedule}"], cells[peer]) for schedule in ("synchronous", "asynchronous")]
            for mark in pair:
                tally[(peer, accounting)]["+=-".index(mark)] += 1
            marks.append(" / ".join(pair))
        print(f"| {name} | " + " | ".join(marks) + " |")
    print("| better / equal / worse (both schedules) | "
          + " | ".join("{} / {} / {}".format(*tally[column]) for column in columns) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", help="problem names (default: every one that trains no model)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--peers", default=",".join(DEFAULT_PEERS),
                        help=f"of {', '.join(PEERS)} (default: {','.join(DEFAULT_PEERS)}; deephyper is slow)")
    parser.add_argument("--out_dir", default=str(HERE / "results" / "parallel"))
    args = parser.parse_args(argv)
    peers = tuple(dict.fromkeys(peer.strip() for peer in args.peers.split(",") if peer.strip()))
    unknown = [peer for peer in peers if peer not in PEERS]
    if unknown or not peers:
        named = f"unknown {', '.join(map(repr, unknown))}" if unknown else "no peer named"
        parser.error(f"--peers: {named}; choose from {', '.join(PEERS)}")
    names = args.problems or offline_problems()
    for name in names:
        get_problem(name)
    if args.seeds < 1 or args.workers < 1 or args.sigma < 0:
        parser.error("--seeds and --workers must be at least 1, --sigma at least 0")
    missing = sorted({PYTHONS[engine] for engine in peers if not Path(PYTHONS[engine]).exists()})
    if missing:
        parser.error(f"no peer virtualenv ({', '.join(missing)}): run bash benchmarks/peers_env.sh first"
                     " (benchmarks/deephyper_env.sh for deephyper)")
    rows = {}
    for name in names:
        started = time.perf_counter()
        rows[name] = problem_scores(name, args.seeds, args.workers, args.sigma, Path(args.out_dir), peers)
        print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    print_table(rows, args.workers, peers)


if __name__ == "__main__":
    main()
