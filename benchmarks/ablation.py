"""Which parts of BOHB's model explain its gap to Optuna's TPE: one change at a time, over seeds.

    python -m benchmarks.ablation                       # every variant, the offline problems, 10 seeds
    python -m benchmarks.ablation --seeds 3 --variants "HpBandSter (baseline)" "tpe"
    python -m benchmarks.ablation --peers optuna,dehb   # with the peers' rows (benchmarks/.peers-venv)
    python -m benchmarks.ablation --workers 32 --variants tpe "tpe, no constant liar" --seeds 20

Every variant is mpibohb's BOHB (Hyperband's brackets, the problem's ``n_iterations``, one worker,
simulated by ``mpibohb.simulate`` with one worker: the same evaluations as a serial run) with another
model: HpBandSter's (``KDESampler``, ``samplers/hpbandster_kde.py``) with one of its parameters changed, or
the "tpe" model (``ParzenSampler``, ``samplers/tpe.py``) with one of its components changed back
to HpBandSter's. The two rows "one bracket" change the schedule instead (``brackets=1``: every
configuration starts at the smallest budget), and spend a little more. Two rows check the
machinery: the tpe code set up as HpBandSter's model should score like the baseline.

Scoring is benchmarks/quality.py's: after each evaluation the incumbent is the lowest loss on the
largest budget so far, scored by its regret (noise-free, full fidelity); each cell is the mean ±
standard error over seeds at the same cumulative budget, the total of the problem's brackets
(every variant spends exactly that, the "one bracket" rows a little more). Peers (``--peers``) are
run by benchmarks/quality.py's machinery, given that total budget, and shown under both
accountings: Optuna charged only the increments between rungs (as it runs), and charged each
rung's full budget like the others (then it has spent more than the total, and is read at the
total). The problems that train models (``trains_models``: the MLP, the SVM, gradient boosting)
are left out unless named (``--problem mlp_digits``): one of their runs trains hundreds of models.

With ``--workers K`` (K > 1) the runs are synchronous (``--asynchronous``: asynchronous) on K
simulated workers, each evaluation lasting ``budget x exp(sigma z(config))``
(``benchmarks/run_times.py``, ``--sigma``, default 1.0, as ``benchmarks.parallel_quality``): what
the model does with results that come back while others run (the constant liar's rows). Peers
are not run then (``benchmarks.parallel_quality`` runs theirs).

Runs are kept as JSON under ``--out_dir`` (default ``benchmarks/results/ablation``), named by a
hash of the code they ran, and reused while it is unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.problems import Problem, get_problem, noise_generator, offline_problems
from benchmarks.quality import (
    PEER_OPTIMIZER,
    ROOT,
    engine_available,
    incumbent_steps,
    make_runs,
    specs_for,
    standard_error,
    step_values,
    total_budget,
)
from benchmarks.run_times import duration_of
from benchmarks.simulated import simulated_run

HPBANDSTER = "hpbandster"
TPE = "tpe"
# The tpe code set up as HpBandSter's model (up to details named in samplers/tpe.py).
AS_HPBANDSTER = {"top_n_percent": 15, "max_good_points": None, "num_samples": 64, "random_fraction": 1 / 3,
                 "bandwidth_factor": 3.0, "bandwidth_rule": "normal_reference", "magic_clip": False,
                 "prior_weight": 0.0, "truncated": False, "budget_rule": "largest", "split": "hpbandster",
                 "misled_budget_rule": None, "multivariate": True, "constant_liar": False,
                 "running_budget_rule": None, "running_trend_share": 0.0}


def _variants() -> dict[str, tuple[str, dict[str, Any]]]:
    """Label -> (model, changed settings). The first row is the baseline every row is compared with."""
    hp: dict[str, dict[str, Any]] = {
        "HpBandSter (baseline)": {},
        "HpBandSter, random_fraction 0": {"random_fraction": 0.0},
        "HpBandSter, bandwidth_factor 1": {"bandwidth_factor": 1.0},
        "HpBandSter, top_n_percent 10": {"top_n_percent": 10},
        "HpBandSter, num_samples 24": {"num_samples": 24},
        "HpBandSter, min_points_in_model 2(d+1)": {"min_points_in_model": "2(d+1)"},
        # not the model: the schedule (BOHB(brackets=1)), every iteration Hyperband's most aggressive bracket
        "HpBandSter, one bracket": {"brackets": 1},
    }
    as_hp: dict[str, dict[str, Any]] = {
        "tpe code as HpBandSter": {},
        "  + neighbour bandwidths, magic clip": {"bandwidth_rule": "neighbours", "magic_clip": True},
        "  + prior component": {"prior_weight": 1.0},
        "  + truncated kernels": {"truncated": True},
        "  + all budgets": {"budget_rule": "all"},
        "  + all budgets, promotable first": {"budget_rule": "promoted"},
        "  + TPE split (10%)": {"split": "tpe", "top_n_percent": 10},
        "  + product of marginals": {"multivariate": False},
    }
    # rows that change budget_rule keep it on many workers too (running_budget_rule None)
    tpe: dict[str, dict[str, Any]] = {
        "tpe": {},
        "tpe, normal_reference bandwidths": {"bandwidth_rule": "normal_reference"},
        "tpe, no magic clip": {"magic_clip": False},
        "tpe, no prior": {"prior_weight": 0.0},
        "tpe, untruncated kernels": {"truncated": False},
        "tpe, all budgets, by budget alone": {"budget_rule": "all", "running_budget_rule": None},
        "tpe, largest budget only": {"budget_rule": "largest", "running_budget_rule": None},
        "tpe, largest budget, stopped configurations bad": {"budget_rule": "stopped",
                                                            "running_budget_rule": None},
        "tpe, HpBandSter split (15%, sets >= d+1)": {"split": "hpbandster", "top_n_percent": 15},
        "tpe, top_n_percent 15": {"top_n_percent": 15},
        "tpe, random_fraction 1/3": {"random_fraction": 1 / 3},
        "tpe, bandwidth_factor 1": {"bandwidth_factor": 1.0},
        "tpe, bandwidth_factor 3": {"bandwidth_factor": 3.0},
        "tpe, num_samples 64": {"num_samples": 64},
        "tpe, min_points_in_model 2(d+1)": {"min_points_in_model": "2(d+1)"},
        # a run on 32 workers proposes its first wave and more at random: this is that start, serially
        "tpe, 64 random results first": {"min_points_in_model": 64},
        "tpe, small budgets always trusted": {"misled_random_fraction": 0.0, "misled_budget_rule": None},
        "tpe, misled: random draws, same model": {"misled_budget_rule": None},
        "tpe, misled: share falls as tau nears 0.3": {"misled_ramp": True},
        "tpe, misled below tau 0.4": {"trusted_agreement": 0.4},
        # the same runs as "tpe" unless --workers: while configurations run, the model of the largest
        # budget only below tau 0.3 (trusted_agreement), as serially (the default before 2026-12-08)
        "tpe, largest budget below tau 0.3 while running": {"running_misled_agreement": None},
        "tpe, joint densities (multivariate)": {"multivariate": True},
        # on one worker nothing is running at a proposal: the same runs as "tpe" unless --workers
        "tpe, no constant liar": {"constant_liar": False},
        # differs from "tpe" from 250 configurations on (10% of them above 25), serially too
        "tpe, good set at most 25 (Optuna's cap)": {"max_good_points": 25},
        # ranked by the quantile of a loss among its budget's results instead of budget first, serially too
        "tpe, ranked by quantile within the budget": {"budget_rule": "quantile", "running_budget_rule": None},
        # the same runs as "tpe" unless --workers: the promoted ranking while configurations run too
        "tpe, promoted ranking while configurations run": {"running_budget_rule": None},
        # the same runs as "tpe" unless --workers: no candidates moved along the good set's trend
        "tpe, no trend while configurations run": {"running_trend_share": 0.0},
        # not the model: the schedule (BOHB(brackets=1)); it spends a little more than Hyperband's brackets
        # (3,456 against 3,384 on branin) and is read at Hyperband's total like every row
        "tpe, one bracket": {"brackets": 1},
    }
    return ({label: (HPBANDSTER, changes) for label, changes in hp.items()}
            | {label: (TPE, dict(AS_HPBANDSTER, **changes)) for label, changes in as_hp.items()}
            | {label: (TPE, changes) for label, changes in tpe.items()})


VARIANTS = _variants()
BASELINE = next(iter(VARIANTS))
AS_HPBANDSTER_LABEL, TPE_LABEL = "tpe code as HpBandSter", "tpe"


def make_sampler(model: str, changes: dict[str, Any], space: Any) -> Any:
    """The sampler of a variant on ``space`` (an ``mpibohb.space.SearchSpace``)."""
    from mpibohb.samplers.hpbandster_kde import KDESampler, KDESettings
    from mpibohb.samplers.tpe import ParzenSampler, ParzenSettings

    changes = dict(changes)
    if changes.get("min_points_in_model") == "2(d+1)":
        changes["min_points_in_model"] = 2 * (len(space.dimensions) + 1)
    if model == HPBANDSTER:
        return KDESampler(space, replace(KDESettings(), **changes))
    return ParzenSampler(space, replace(ParzenSettings(), **changes))


def code_hash(model: str, workers: int = 1) -> str:
    """A hash of the code a variant's run depends on: mpibohb but the other model's files, the
    problems, and on several workers the run times."""
    other = {"tpe.py", "parzen.py", "running.py"} if model == HPBANDSTER else {"hpbandster_kde.py"}
    files = [p for p in sorted((ROOT / "mpibohb").rglob("*.py")) if p.name not in other]
    files += [ROOT / "benchmarks" / "problems.py", ROOT / "benchmarks" / "simulated.py"]
    if workers > 1:
        files.append(ROOT / "benchmarks" / "run_times.py")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def run_variant(problem: Problem, model: str, changes: dict[str, Any], seed: int, workers: int = 1,
                sigma: float = 1.0, asynchronous: bool = False) -> dict[str, list[float]]:
    """One BOHB run with the variant's model, serial or on ``workers`` simulated workers (run times
    spread by ``sigma``; ``asynchronous``: that schedule): cumulative budget and score after each
    evaluation."""
    from mpibohb import BOHB

    changes = dict(changes)
    brackets = changes.pop("brackets", None)  # the optimizer's, not the model's
    family = BOHB(problem.space(seed), min_budget=problem.min_budget, max_budget=problem.max_budget,
                  eta=problem.eta, seed=seed, model=model, brackets=brackets, asynchronous=asynchronous)
    if model == TPE:  # as BOHB(model="tpe") sets it
        changes = {"promotion_fraction": 1.0 / problem.eta, **changes}
    family._make_sampler = lambda: make_sampler(model, changes, family.space)  # type: ignore[method-assign]  # the variant's model
    noise = noise_generator(seed)
    started = time.perf_counter()
    duration = duration_of(sigma) if workers > 1 else (lambda config, budget: budget)
    run = simulated_run(family, problem.n_iterations, workers,
                        lambda config, budget: problem.evaluate(config, budget, noise), duration)
    budgets, _, scores = incumbent_steps(run.runs, problem.score)
    return {"budgets": budgets.tolist(), "scores": scores.tolist(), "seconds": time.perf_counter() - started}


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def variant_path(problem: Problem, label: str, seed: int, out_dir: Path, workers: int = 1, sigma: float = 1.0,
                 asynchronous: bool = False) -> Path:
    """Where the run of the variant ``label`` with ``seed`` is kept (the code's hash in its name)."""
    model, changes = VARIANTS[label]
    spec = hashlib.sha256(json.dumps([model, changes], sort_keys=True).encode()).hexdigest()[:6]
    parallel = f"-K{workers}-s{sigma:g}" if workers > 1 else ""  # serial runs keep their earlier names
    parallel += "-async" if asynchronous else ""
    return out_dir / problem.name / f"{slug(label)}-{spec}{parallel}-seed{seed}-{code_hash(model, workers)}.json"


def variant_runs(problem: Problem, label: str, seeds: int, out_dir: Path, workers: int = 1,
                 sigma: float = 1.0, asynchronous: bool = False) -> list[dict[str, list[float]]]:
    """The variant's runs on ``problem``, made now or read from an earlier call with the same code."""
    model, changes = VARIANTS[label]
    runs = []
    for seed in range(seeds):
        path = variant_path(problem, label, seed, out_dir, workers, sigma, asynchronous)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(run_variant(problem, model, changes, seed, workers, sigma, asynchronous)))
        runs.append(json.loads(path.read_text()))
    return runs


def peer_rows(problem: Problem, engines: list[str], seeds: int, quality_dir: Path) -> dict[str, np.ndarray]:
    """Each peer's score at the problem's total budget, charged increments (as run) and full budgets."""
    specs = specs_for(problem, engines, [], seeds, None, quality_dir)
    failures = make_runs(specs, 1)
    rows: dict[str, list[float]] = {}
    common = total_budget(problem, problem.n_iterations)
    for spec in specs:
        if spec in failures or not spec.path.exists():
            continue
        record = json.loads(spec.path.read_text())
        accountings = {"as run": record["runs"]}
        if any(run["charged"] != run["budget"] for run in record["runs"]):
            accountings = {"increments": record["runs"],
                           "full budgets": [dict(run, charged=run["budget"]) for run in record["runs"]]}
        for accounting, runs in accountings.items():
            budgets, _, scores = incumbent_steps(runs, problem.score)
            rows.setdefault(f"{spec.label}, {accounting}", []).append(float(step_values(budgets, scores,
                                                                                      np.array([common]))[0]))
    return {label: np.array(values) for label, values in rows.items()}


def final_scores(runs: list[dict[str, list[float]]], budget: float) -> np.ndarray:
    return np.array([step_values(np.array(r["budgets"]), np.array(r["scores"]), np.array([budget]))[0]
                     for r in runs])


def verdict(values: np.ndarray, reference: np.ndarray) -> str:
    """'+' better than the reference beyond the combined standard error, '-' worse, '=' within it."""
    difference = float(np.mean(values) - np.mean(reference))
    error = math.hypot(standard_error(values), standard_error(reference))
    return "=" if abs(difference) <= error else ("+" if difference < 0 else "-")


def reference_of(label: str) -> str | None:
    """The row a row is compared with: HpBandSter's changes with the baseline, the additions to
    "tpe code as HpBandSter" with that row, the tpe model's changes and the peers with "tpe"."""
    if label == BASELINE:
        return None
    if label.startswith("  +"):
        return AS_HPBANDSTER_LABEL
    if label.startswith("tpe, ") or label not in VARIANTS:
        return TPE_LABEL
    return BASELINE


def table(columns: dict[str, dict[str, np.ndarray]], labels: list[str], references: dict[str, str | None]) -> str:
    """Rows: variants; columns: problems; cells: mean ± s.e. and the verdict against the row's reference."""
    problems = list(columns)
    lines = ["| model | compared with | " + " | ".join(problems) + " | better / equal / worse |",
             "| --- | --- | " + " | ".join("---:" for _ in problems) + " | --- |"]
    for label in labels:
        reference = references.get(label)
        cells, counts = [], {"+": 0, "=": 0, "-": 0}
        for name in problems:
            values = columns[name].get(label)
            if values is None or not len(values):
                cells.append("-")
                continue
            mark = ""
            if reference is not None and reference in columns[name]:
                mark = verdict(values, columns[name][reference])
                counts[mark] += 1
            cells.append(f"{np.mean(values):.4g} ± {standard_error(values):.2g} {mark}".rstrip())
        tally = "-" if reference is None else f"{counts['+']} / {counts['=']} / {counts['-']}"
        lines.append(f"| {label.strip()} | {(reference or '-').strip()} | " + " | ".join(cells) + f" | {tally} |")
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    offline = offline_problems()
    parser.add_argument("--problem", nargs="+", default=offline, help=f"default: {' '.join(offline)}")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help="labels of VARIANTS (default: all)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="simulated workers (default 1: serial)")
    parser.add_argument("--sigma", type=float, default=1.0, help="spread of run times with --workers above 1")
    parser.add_argument("--asynchronous", action="store_true", help="the asynchronous schedule (with --workers)")
    parser.add_argument("--peers", default="", help="of optuna, dehb, comma-separated (default: none)")
    parser.add_argument("--out_dir", default=str(ROOT / "benchmarks" / "results" / "ablation"))
    parser.add_argument("--quality_dir", default=str(ROOT / "benchmarks" / "results"),
                        help="where benchmarks.quality keeps the peers' runs (shared with it)")
    parser.add_argument("--json", help="also write the scores to this JSON file")
    args = parser.parse_args(argv)
    for name in args.problem:
        get_problem(name)
    unknown = [label for label in args.variants if label not in VARIANTS]
    args.peers = [name.strip() for name in args.peers.split(",") if name.strip()]
    if unknown or set(args.peers) - set(PEER_OPTIMIZER) or args.seeds < 1:
        parser.error(f"unknown variants {unknown} or peers {args.peers}, or --seeds below 1")
    if args.workers < 1 or not 0 <= args.sigma < math.inf:
        parser.error(f"--workers must be at least 1 and --sigma finite and >= 0, got {args.workers}, {args.sigma}")
    if args.asynchronous and args.workers == 1:
        parser.error("--asynchronous with one worker evaluates what the synchronous schedule does: give --workers")
    if args.workers > 1 and args.peers:
        parser.error("--peers runs serially; with --workers, python -m benchmarks.parallel_quality runs the peers")
    if BASELINE not in args.variants:
        args.variants.insert(0, BASELINE)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    out_dir = Path(args.out_dir)
    peers = [engine for engine in args.peers if not engine_available(engine)]
    for engine in sorted(set(args.peers) - set(peers)):
        print(f"{engine}: not run, {engine_available(engine)}", file=sys.stderr)
    columns: dict[str, dict[str, np.ndarray]] = {}
    peer_labels: list[str] = []
    for name in args.problem:
        problem = get_problem(name)
        budget = total_budget(problem, problem.n_iterations)
        columns[name] = {}
        for label in args.variants:
            started = time.monotonic()
            runs = variant_runs(problem, label, args.seeds, out_dir, args.workers, args.sigma, args.asynchronous)
            columns[name][label] = final_scores(runs, budget)
            print(f"  {name} {label.strip()}: {np.mean(columns[name][label]):.4g} ({time.monotonic() - started:.0f} s)",
                  file=sys.stderr, flush=True)
        if peers:
            columns[name].update(peer_rows(problem, peers, args.seeds, Path(args.quality_dir)))
            peer_labels += [label for label in columns[name] if label not in VARIANTS and label not in peer_labels]
    labels = args.variants + peer_labels
    references = {label: reference_of(label) for label in labels}
    schedule = ", asynchronous" if args.asynchronous else ""
    where = "serially" if args.workers == 1 else f"on {args.workers} simulated workers (sigma {args.sigma:g}{schedule})"
    print(f"Regret at the problems' total budget, {where}, mean ± s.e. over {args.seeds} seeds; after each figure"
          f" + better than the row it is compared with beyond the combined s.e., - worse, = within it.\n")
    print(table(columns, labels, references))
    if args.json:
        scores = {name: {label: values.tolist() for label, values in cells.items()} for name, cells in columns.items()}
        Path(args.json).write_text(json.dumps({"seeds": args.seeds, "references": references, "variants": VARIANTS,
                                               "scores": scores}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
