"""Optimisation quality: the incumbent's regret (or loss) against budget and wall time, over seeds.

    python -m benchmarks.quality --problem counting_ones_8 --optimizers bohb,hb,rs --seeds 10
    python -m benchmarks.quality --problem all --engines mpibohb,hpbandster,optuna,dehb

For each problem (benchmarks/problems.py), engine and optimiser it makes ``--seeds`` runs of the
problem's ``n_iterations`` Hyperband iterations (brackets), each run a subprocess of
benchmarks/engines.py (mpibohb, HpBandSter) or benchmarks/peers.py (Optuna, DEHB, given the total
budget of mpibohb's BOHB run), ``--jobs`` at a time. Runs are kept under ``--out_dir`` as JSON and
reused when the command is run again, so an interrupted benchmark resumes; ``--fresh`` discards them.

Scoring, the same for every engine: after each finished evaluation, the incumbent is the
configuration with the lowest loss on the largest budget evaluated so far (HpBandSter's
trajectory rule). Its score is ``problem.score``: the regret of its noise-free, full-fidelity value
where the optimum is known, else its test error. Curves are taken at the same cumulative budgets
(sum of the budgets charged) and the same wall times for all engines, up to the smallest total
that every run of the problem reached, and give the mean and standard error over seeds. Per
problem it writes ``<problem>.png`` (score against budget and against wall time) and
``<problem>.json`` (the table's figures), and prints a markdown table.

Engines other than mpibohb run in their own virtual environments: benchmarks/hpbandster_env.sh and
benchmarks/peers_env.sh make them; an engine whose environment is missing is reported, not run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.problems import Problem, all_problems, get_problem
from benchmarks.processes import run_in_group
from mpibohb import schedule

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OPTIMIZER_NAMES = {"bohb": "BOHB", "hb": "HyperBand", "rs": "RandomSearch",
                   "optuna_tpe_hb": "TPE + Hyperband pruner", "dehb": "DEHB"}
ENGINES = {"mpibohb": sys.executable, "hpbandster": str(HERE / ".hpbandster-venv" / "bin" / "python"),
           "optuna": str(HERE / ".peers-venv" / "bin" / "python"), "dehb": str(HERE / ".peers-venv" / "bin" / "python")}
PEER_OPTIMIZER = {"optuna": "optuna_tpe_hb", "dehb": "dehb"}
RUN_TIMEOUT = 1800.0
COLOURS = {"BOHB": "tab:blue", "HyperBand": "tab:orange", "RandomSearch": "tab:green"}
LINE_STYLES = {"mpibohb": "-", "hpbandster": "--"}


@dataclass(frozen=True)
class RunSpec:
    """One optimisation run to make (or reuse)."""

    problem: Problem
    engine: str
    optimizer: str
    seed: int
    n_iterations: int
    path: Path

    @property
    def label(self) -> str:
        return f"{self.engine} {OPTIMIZER_NAMES[self.optimizer]}"


def fingerprint(engine: str) -> str:
    """A hash of the code a run of ``engine`` depends on: its runner, the problems, and mpibohb's own
    source for the mpibohb engine. Runs are reused only while it is unchanged."""
    files = [HERE / "problems.py", HERE / ("peers.py" if engine in PEER_OPTIMIZER else "engines.py")]
    if engine == "mpibohb":
        files += sorted((ROOT / "mpibohb").rglob("*.py"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def total_budget(problem: Problem, n_iterations: int) -> float:
    """The budget that mpibohb's BOHB and HyperBand spend in ``n_iterations`` brackets."""
    plans = (schedule.bracket_plan(i, problem.min_budget, problem.max_budget, problem.eta)
             for i in range(n_iterations))
    return float(sum(n * b for plan in plans for n, b in zip(plan.num_configs, plan.budgets)))


def command(spec: RunSpec) -> list[str]:
    """The subprocess that makes ``spec``'s JSON file."""
    common = ["--problem", spec.problem.name, "--seed", str(spec.seed), "--out", str(spec.path)]
    if spec.engine in PEER_OPTIMIZER:
        budget = total_budget(spec.problem, spec.n_iterations)
        return [ENGINES[spec.engine], "-m", "benchmarks.peers", "--optimizer", spec.optimizer,
                "--total_budget", repr(budget), *common]
    return [ENGINES[spec.engine], "-m", "benchmarks.engines", "--engine", spec.engine, "--optimizer",
            spec.optimizer, "--n_iterations", str(spec.n_iterations), *common]


def execute(spec: RunSpec) -> str | None:
    """Make one run in a subprocess (own process group, timeout); the reason if it failed."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(ROOT))
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    finished = run_in_group(command(spec), RUN_TIMEOUT, cwd=ROOT, env=env)
    if finished.timed_out:
        return f"timed out after {RUN_TIMEOUT:.0f} s"
    if finished.returncode != 0 or not spec.path.exists():
        return f"exit {finished.returncode}: {finished.last_error_line()}"
    return None


def engine_available(engine: str) -> str | None:
    """Why ``engine`` cannot run here, or None."""
    python = Path(ENGINES[engine])
    if not python.exists():
        script = "hpbandster_env.sh" if engine == "hpbandster" else "peers_env.sh"
        return f"its virtual environment is missing: run bash benchmarks/{script}"
    return None


def make_runs(specs: list[RunSpec], jobs: int) -> dict[RunSpec, str]:
    """Run every spec whose file is missing, ``jobs`` at a time; the failures with their reasons."""
    todo = [spec for spec in specs if not spec.path.exists()]
    failures: dict[RunSpec, str] = {}
    started = time.monotonic()
    print(f"  reusing {len(specs) - len(todo)} runs made by the same code, making {len(todo)}", file=sys.stderr)

    def one(spec: RunSpec) -> None:
        reason = execute(spec)
        if reason:
            failures[spec] = reason
        done = len([s for s in todo if s.path.exists()]) + len(failures)
        print(f"  [{done}/{len(todo)}, {time.monotonic() - started:.0f} s] {spec.problem.name} {spec.label}"
              f" seed {spec.seed}{': FAILED ' + reason if reason else ''}", file=sys.stderr, flush=True)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, todo))
    return failures


class Scorer:
    """``problem.score`` with a cache on disk (the MLP's test error trains a model)."""

    def __init__(self, problem: Problem, path: Path) -> None:
        self.problem, self.path = problem, path
        self.cache: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}

    def __call__(self, config: dict[str, Any]) -> float:
        key = json.dumps(config, sort_keys=True)
        if key not in self.cache:
            self.cache[key] = self.problem.score(config)
        return self.cache[key]

    def save(self) -> None:
        self.path.write_text(json.dumps(self.cache))


def incumbent_steps(runs: list[dict[str, Any]], scorer: Callable[[dict[str, Any]], float]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative budget, time and score after every evaluation (score NaN before the first); the
    incumbent is HpBandSter's: the lowest loss on the largest budget evaluated so far."""
    best_loss, best_budget, score = math.inf, -math.inf, math.nan
    budgets, times, scores = [], [], []
    spent = 0.0
    for run in runs:
        spent += run["charged"]
        loss, budget = run["loss"], run["budget"]
        if math.isfinite(loss) and (budget > best_budget or (budget == best_budget and loss < best_loss)):
            best_loss, best_budget, score = loss, budget, scorer(run["config"])
        budgets.append(spent)
        times.append(run["finished"])
        scores.append(score)
    return np.array(budgets), np.array(times), np.array(scores)


def step_values(xs: np.ndarray, ys: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The step function through ``(xs, ys)`` at ``grid`` (NaN before the first step)."""
    index = np.searchsorted(xs, grid, side="right") - 1
    return np.where(index >= 0, ys[np.clip(index, 0, None)], np.nan)


def mean_and_error(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over axis 0, NaN where any seed has no value yet."""
    mean = values.mean(axis=0)
    error = values.std(axis=0, ddof=1) / math.sqrt(len(values)) if len(values) > 1 else np.zeros_like(mean)
    return mean, error


def summarise(problem: Problem, groups: dict[str, list[dict]], scorer: Scorer) -> dict[str, Any]:
    """Curves on common grids and the table's figures for every engine/optimiser group."""
    steps = {label: [incumbent_steps(record["runs"], scorer) for record in records]
             for label, records in groups.items()}
    common_budget = min(s[0][-1] for runs in steps.values() for s in runs)
    longest = max(s[1][-1] for runs in steps.values() for s in runs)
    budget_grid = np.geomspace(problem.min_budget, common_budget, 200)
    time_grid = np.geomspace(1e-3, max(longest, 2e-3), 200)
    summary: dict[str, Any] = {"problem": problem.name, "measure": problem.measure, "common_budget": common_budget,
                               "budget_grid": budget_grid.tolist(), "time_grid": time_grid.tolist(), "groups": {}}
    for label, runs in steps.items():
        at_budget = np.array([step_values(b, s, budget_grid) for b, _, s in runs])
        at_time = np.array([step_values(t, s, time_grid) for _, t, s in runs])
        final = at_budget[:, -1]
        tenth = np.array([step_values(b, s, np.array([common_budget / 10]))[0] for b, _, s in runs])
        walls = np.array([record["wall"] for record in groups[label]])
        summary["groups"][label] = {
            "seeds": len(runs), "final_mean": float(np.mean(final)), "final_se": standard_error(final),
            "tenth_mean": float(np.mean(tenth)) if np.isfinite(tenth).all() else None,
            "tenth_se": standard_error(tenth) if np.isfinite(tenth).all() else None,
            "evaluations": float(np.mean([len(record["runs"]) for record in groups[label]])),
            "wall_mean": float(walls.mean()), "wall_se": standard_error(walls),
            "budget_curve": [c.tolist() for c in mean_and_error(at_budget)],
            "time_curve": [c.tolist() for c in mean_and_error(at_time)]}
    return summary


def standard_error(values: np.ndarray) -> float:
    """The standard error of the mean of ``values`` (0 for a single value)."""
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def table(summary: dict[str, Any]) -> str:
    """The markdown table of one problem's summary."""
    measure = summary["measure"]
    budget = summary["common_budget"]
    lines = [f"| engine / optimiser | seeds | {measure} at budget {budget:,.0f} | {measure} at {budget / 10:,.0f}"
             " | evaluations per run | wall per run (s) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, group in summary["groups"].items():
        tenth = "-" if group["tenth_mean"] is None else f"{group['tenth_mean']:.4g} ± {group['tenth_se'] or 0:.2g}"
        lines.append(f"| {label} | {group['seeds']} | {group['final_mean']:.4g} ± {group['final_se']:.2g} | {tenth}"
                     f" | {group['evaluations']:,.0f} | {group['wall_mean']:.3g} ± {group['wall_se']:.2g} |")
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> None:
    """Score against cumulative budget and against wall time, mean ± s.e. bands, log axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    grids = (np.array(summary["budget_grid"]), np.array(summary["time_grid"]))
    for label, group in summary["groups"].items():
        engine, optimizer = label.split(" ", 1)
        colour = COLOURS.get(optimizer, "tab:purple" if engine == "optuna" else "tab:brown")
        for axis, grid, key in zip(axes, grids, ("budget_curve", "time_curve")):
            mean, error = (np.array(c, dtype=float) for c in group[key])
            axis.plot(grid, mean, label=label, lw=1.5, color=colour, ls=LINE_STYLES.get(engine, ":"))
            axis.fill_between(grid, mean - error, mean + error, color=colour, alpha=0.12)
    positive = all(np.nanmin(np.array(g["budget_curve"][0], dtype=float)) > 0 for g in summary["groups"].values())
    for axis, xlabel in zip(axes, ("cumulative budget", "wall time (s)")):
        axis.set_xscale("log")
        axis.set_yscale("log" if positive else "linear")
        axis.set_xlabel(xlabel)
        axis.set_ylabel(f"incumbent {summary['measure']} (mean ± s.e.)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"{summary['problem']}: {summary['measure']} of the incumbent")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def specs_for(problem: Problem, engines: Iterable[str], optimizers: list[str], seeds: int,
              n_iterations: int | None, out_dir: Path) -> list[RunSpec]:
    """Every run the problem needs: Hyperband-family optimisers per engine, one optimiser per peer."""
    iterations = n_iterations or problem.n_iterations
    specs = []
    for seed in range(seeds):  # seed by seed, so that runs made side by side are of different engines
        for engine in engines:
            code = fingerprint(engine)
            for optimizer in [PEER_OPTIMIZER[engine]] if engine in PEER_OPTIMIZER else optimizers:
                path = out_dir / "runs" / problem.name / f"{engine}-{optimizer}-it{iterations}-seed{seed}-{code}.json"
                specs.append(RunSpec(problem, engine, optimizer, seed, iterations, path))
    return specs


def report_problem(problem: Problem, specs: list[RunSpec], failures: dict[RunSpec, str], out_dir: Path) -> str:
    """Summarise, plot and tabulate one problem; returns its markdown section."""
    groups: dict[str, list[dict]] = {}
    for spec in specs:
        if spec.path.exists():
            groups.setdefault(spec.label, []).append(json.loads(spec.path.read_text()))
    lines = [f"### {problem.name}: {problem.description}", ""]
    failed = [f"{spec.label} seed {spec.seed} failed: {reason}"
              for spec, reason in sorted(failures.items(), key=lambda item: item[0].path)]
    summary_path = out_dir / f"{problem.name}.json"
    summary_path.unlink(missing_ok=True)  # never leave an older summary behind
    if groups:
        scorer = Scorer(problem, out_dir / "runs" / problem.name / f"scores-{fingerprint('hpbandster')}.json")
        summary = summarise(problem, groups, scorer)
        summary["failures"] = failed
        scorer.save()
        summary_path.write_text(json.dumps(summary))
        plot(summary, out_dir / f"{problem.name}.png")
        lines += [table(summary), "", f"![{problem.name}]({problem.name}.png)", ""]
    lines += [f"- {line}" for line in failed]
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", action="append", required=True,
                        help=f"a problem name, repeatable, or 'all' ({', '.join(all_problems())})")
    parser.add_argument("--optimizers", default="bohb,hb,rs", help="of bohb, hb, rs (default: all three)")
    parser.add_argument("--engines", default="mpibohb,hpbandster",
                        help="of mpibohb, hpbandster, optuna, dehb (default: mpibohb,hpbandster)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--n_iterations", type=int, help="brackets per run (default: the problem's own)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at a time (default: CPUs)")
    parser.add_argument("--out_dir", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--fresh", action="store_true", help="discard earlier runs of these settings")
    args = parser.parse_args(argv)
    args.problems = list(all_problems()) if "all" in args.problem else args.problem
    args.optimizers = [name.strip() for name in args.optimizers.split(",") if name.strip()]
    args.engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    for name in args.problems:
        get_problem(name)
    unknown = sorted(set(args.optimizers) - {"bohb", "hb", "rs"}) + sorted(set(args.engines) - set(ENGINES))
    if unknown or args.seeds < 1:
        parser.error(f"unknown optimizers or engines: {unknown}" if unknown else "--seeds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = {engine: engine_available(engine) for engine in args.engines}
    engines = [engine for engine in args.engines if missing[engine] is None]
    for engine, reason in missing.items():
        if reason:
            print(f"{engine}: not run, {reason}", file=sys.stderr)
    any_failed = False
    for name in args.problems:
        problem = get_problem(name)
        specs = specs_for(problem, engines, args.optimizers, args.seeds, args.n_iterations, out_dir)
        if args.fresh:
            for spec in specs:
                spec.path.unlink(missing_ok=True)
        print(f"{problem.name}: {len(specs)} runs", file=sys.stderr, flush=True)
        failures = make_runs(specs, args.jobs)
        any_failed = any_failed or bool(failures)
        section = report_problem(problem, specs, failures, out_dir)
        (out_dir / f"{problem.name}.md").write_text(section + "\n")
        print(section, flush=True)
        print(flush=True)
    if any_failed:
        sys.exit("some runs failed: see the lines after each table")


if __name__ == "__main__":
    main(sys.argv[1:])
