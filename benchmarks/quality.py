"""Optimisation quality: the incumbent's regret (or loss) against budget and wall time, over seeds.

    python -m benchmarks.quality --problem counting_ones_8 --optimizers bohb,hb,rs --seeds 10
    python -m benchmarks.quality --problem all --engines mpibohb,hpbandster,optuna,dehb
    python -m benchmarks.quality --problem branin --engines mpibohb,optuna,dehb,deephyper --optimizers bohb,bohb_tpe

For each problem (benchmarks/problems.py), engine and optimiser it makes ``--seeds`` runs of the
problem's ``n_iterations`` Hyperband iterations (brackets), each run a subprocess of
benchmarks/engines.py (mpibohb, HpBandSter), benchmarks/peers.py (Optuna, DEHB) or
benchmarks/deephyper_peer.py (DeepHyper's CBO with its successive-halving stopper), the peers given
the total budget of mpibohb's BOHB run, ``--jobs`` at a time. Runs are kept under ``--out_dir`` as JSON and
reused when the command is run again, so an interrupted benchmark resumes; ``--fresh`` discards them.
The table also takes the runs of other engines and optimisers found there (made by today's code for
the same seeds), so peers run by separate commands share one table.

Scoring, the same for every engine: after each finished evaluation, the incumbent is the
configuration with the lowest loss on the largest budget evaluated so far (HpBandSter's
trajectory rule). Its score is ``problem.score``: the regret of its noise-free, full-fidelity value
where the optimum is known, else its test error.

Budget accounting, the same for every engine, twice (``ACCOUNTINGS``; see ``charges``): "full
budgets" charges each evaluation its budget (training from scratch); "increments" charges it only
what it adds to the largest budget at which the same configuration was evaluated successfully
earlier in the run (training continued from a checkpoint). Both are computed here from the same
run records: which evaluations an engine makes does not depend on how they are charged (the
``charged`` field the runners write is not used; the runners of Optuna and DeepHyper, whose trials
continue from rung to rung, charge increments to know when to stop, the others full budgets).
Curves are taken at the same cumulative budgets (sum of the
budgets charged), per accounting, and at the same wall times for all engines, up to the smallest
total that every run of the problem reached under that accounting, and give the mean and standard
error over seeds. Per problem it writes ``<problem>.png`` (score against budget under each
accounting and against wall time) and ``<problem>.json`` (the table's figures; the top-level
``common_budget``, ``budget_grid`` and each group's ``final_*``, ``tenth_*`` and ``budget_curve``
are those of "full budgets", ``accountings`` holds both), and prints a markdown table.

Engines other than mpibohb run in their own virtual environments: benchmarks/hpbandster_env.sh and
benchmarks/peers_env.sh and benchmarks/deephyper_env.sh make them; an engine whose environment is
missing is reported, not run.
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
from mpibohb import bracket_plans

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OPTIMIZER_NAMES = {"bohb": "BOHB", "bohb_tpe": "BOHB (model tpe)", "hb": "HyperBand", "rs": "RandomSearch",
                   "optuna_tpe_hb": "TPE + Hyperband pruner", "dehb": "DEHB",
                   "cbo_sh": "CBO (sampling) + successive halving"}
ENGINES = {"mpibohb": sys.executable, "hpbandster": str(HERE / ".hpbandster-venv" / "bin" / "python"),
           "optuna": str(HERE / ".peers-venv" / "bin" / "python"), "dehb": str(HERE / ".peers-venv" / "bin" / "python"),
           "deephyper": str(HERE / ".deephyper-venv" / "bin" / "python")}
PEER_OPTIMIZER = {"optuna": "optuna_tpe_hb", "dehb": "dehb", "deephyper": "cbo_sh"}
PEER_RUNNER = {"deephyper": "deephyper_peer.py"}  # the peers' runners other than peers.py
RUN_TIMEOUT = 1800.0
ACCOUNTINGS = ("full budgets", "increments")
COLOURS = {"BOHB": "tab:blue", "BOHB (model tpe)": "tab:red", "HyperBand": "tab:orange",
           "RandomSearch": "tab:green"}
HYPERBAND_FAMILY = ("bohb", "bohb_tpe", "hb", "rs")  # the optimisers an engine of mpibohb's family may run
MPIBOHB_ONLY = {"bohb_tpe"}  # optimisers HpBandSter does not have
LINE_STYLES = {"mpibohb": "-", "hpbandster": "--"}
PEER_COLOURS = {"optuna": "tab:purple", "deephyper": "tab:olive"}  # DEHB: tab:brown


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
    if engine in PEER_RUNNER:  # deephyper_peer.py uses peers.py's rungs and engines.py's Recorder
        files += [HERE / "engines.py", HERE / PEER_RUNNER[engine]]
    if engine == "mpibohb":
        files += sorted((ROOT / "mpibohb").rglob("*.py"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def total_budget(problem: Problem, n_iterations: int) -> float:
    """The budget that mpibohb's BOHB and HyperBand spend in ``n_iterations`` brackets."""
    plans = (bracket_plans.bracket_plan(i, problem.min_budget, problem.max_budget, problem.eta)
             for i in range(n_iterations))
    return float(sum(n * b for plan in plans for n, b in zip(plan.num_configs, plan.budgets)))


def command(spec: RunSpec) -> list[str]:
    """The subprocess that makes ``spec``'s JSON file."""
    common = ["--problem", spec.problem.name, "--seed", str(spec.seed), "--out", str(spec.path)]
    if spec.engine == "deephyper":
        budget = total_budget(spec.problem, spec.n_iterations)
        return [ENGINES[spec.engine], "-m", "benchmarks.deephyper_peer", "--total_budget", repr(budget), *common]
    if spec.engine in PEER_OPTIMIZER:
        budget = total_budget(spec.problem, spec.n_iterations)
        return [ENGINES[spec.engine], "-m", "benchmarks.peers", "--optimizer", spec.optimizer,
                "--total_budget", repr(budget), *common]
    return [ENGINES[spec.engine], "-m", "benchmarks.engines", "--engine", spec.engine, "--optimizer",
            spec.optimizer, "--n_iterations", str(spec.n_iterations), *common]


def one_thread_environment() -> dict[str, str]:
    """The environment of a run's subprocess: one BLAS/OpenMP thread (runs go side by side on few
    cores), and this repository on the path."""
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                PYTHONPATH=str(ROOT))


def execute(spec: RunSpec) -> str | None:
    """Make one run in a subprocess (own process group, timeout); the reason if it failed."""
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    finished = run_in_group(command(spec), RUN_TIMEOUT, cwd=ROOT, env=one_thread_environment())
    if finished.timed_out:
        return f"timed out after {RUN_TIMEOUT:.0f} s"
    if finished.returncode != 0 or not spec.path.exists():
        return f"exit {finished.returncode}: {finished.last_error_line()}"
    return None


def engine_available(engine: str) -> str | None:
    """Why ``engine`` cannot run here, or None."""
    python = Path(ENGINES[engine])
    if not python.exists():
        script = {"hpbandster": "hpbandster_env.sh", "deephyper": "deephyper_env.sh"}.get(engine, "peers_env.sh")
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


def charges(runs: list[dict[str, Any]], accounting: str) -> list[float]:
    """The budget charged for each evaluation of one run (records in the order they finished).

    "full budgets": each evaluation costs its ``budget`` (it trains from scratch).
    "increments": it costs ``budget - p``, where ``p`` is the largest budget below this one at
    which the same configuration (same config dict, compared as JSON with sorted keys) was
    evaluated earlier in the run with a finite loss, 0 if none: what the evaluation would cost
    if training continued from that earlier one's checkpoint. For Optuna's Hyperband pruner and
    DeepHyper's successive-halving stopper this is what their runners (``benchmarks.peers``,
    ``benchmarks.deephyper_peer``) charge as they run (a trial's rung minus its previous rung), and
    "full budgets" charges each of their rungs in full, as if every rung trained from scratch.
    """
    if accounting == "full budgets":
        return [float(run["budget"]) for run in runs]
    if accounting != "increments":
        raise ValueError(f"unknown accounting {accounting!r}: one of {ACCOUNTINGS}")
    done: dict[str, list[float]] = {}  # configuration -> budgets it was evaluated on successfully so far
    charged = []
    for run in runs:
        key, budget = json.dumps(run["config"], sort_keys=True), float(run["budget"])
        previous = max((b for b in done.get(key, []) if b < budget), default=0.0)
        charged.append(budget - previous)
        if run["loss"] is not None and math.isfinite(run["loss"]):
            done.setdefault(key, []).append(budget)
    return charged


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
    """Curves on common grids and the table's figures for every engine/optimiser group, under each
    accounting of ``ACCOUNTINGS`` (in ``accountings``; the top level repeats "full budgets")."""
    steps = {label: [incumbent_steps(record["runs"], scorer) for record in records]
             for label, records in groups.items()}
    longest = max(s[1][-1] for runs in steps.values() for s in runs)
    time_grid = np.geomspace(1e-3, max(longest, 2e-3), 200)
    accountings = {accounting: _at_budgets(problem, groups, steps, accounting) for accounting in ACCOUNTINGS}
    full = accountings["full budgets"]
    summary: dict[str, Any] = {"problem": problem.name, "measure": problem.measure,
                               "common_budget": full["common_budget"], "budget_grid": full["budget_grid"],
                               "time_grid": time_grid.tolist(), "groups": {}, "accountings": accountings}
    for label, runs in steps.items():
        at_time = np.array([step_values(t, s, time_grid) for _, t, s in runs])
        walls = np.array([record["wall"] for record in groups[label]])
        summary["groups"][label] = {
            "seeds": len(runs), **full["groups"][label],
            "evaluations": float(np.mean([len(record["runs"]) for record in groups[label]])),
            "wall_mean": float(walls.mean()), "wall_se": standard_error(walls),
            "time_curve": [c.tolist() for c in mean_and_error(at_time)]}
    return summary


def _at_budgets(problem: Problem, groups: dict[str, list[dict]], steps: dict[str, list[tuple]],
                accounting: str) -> dict[str, Any]:
    """One accounting: the common budget (the smallest total any run reached), its grid, and per
    group the score at that budget and at a tenth of it (mean ± s.e.), the curve on the grid and
    the mean total a run spent."""
    spent = {label: [np.cumsum(charges(record["runs"], accounting)) for record in records]
             for label, records in groups.items()}
    common_budget = float(min(budgets[-1] for runs in spent.values() for budgets in runs))
    budget_grid = np.geomspace(problem.min_budget, common_budget, 200)
    result: dict[str, Any] = {"common_budget": common_budget, "budget_grid": budget_grid.tolist(), "groups": {}}
    for label, runs in steps.items():
        at_budget = np.array([step_values(b, s, budget_grid) for b, (_, _, s) in zip(spent[label], runs)])
        final = at_budget[:, -1]
        tenth = np.array([step_values(b, s, np.array([common_budget / 10]))[0]
                          for b, (_, _, s) in zip(spent[label], runs)])
        result["groups"][label] = {
            "final_mean": float(np.mean(final)), "final_se": standard_error(final),
            "tenth_mean": float(np.mean(tenth)) if np.isfinite(tenth).all() else None,
            "tenth_se": standard_error(tenth) if np.isfinite(tenth).all() else None,
            "budget_curve": [c.tolist() for c in mean_and_error(at_budget)],
            "spent_mean": float(np.mean([budgets[-1] for budgets in spent[label]]))}
    return result


def accounting_view(summary: dict[str, Any], accounting: str) -> dict[str, Any] | None:
    """``summary`` with the figures at budget of ``accounting`` in place of the top level's (None
    for a summary written before there were two accountings, whose top level mixed them)."""
    figures = summary.get("accountings", {}).get(accounting)
    if figures is None:
        return None
    groups = {label: {**group, **figures["groups"].get(label, {})} for label, group in summary["groups"].items()}
    return {**summary, "common_budget": figures["common_budget"], "budget_grid": figures["budget_grid"],
            "groups": groups, "accounting": accounting}


def standard_error(values: np.ndarray) -> float:
    """The standard error of the mean of ``values`` (0 for a single value)."""
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def table(summary: dict[str, Any]) -> str:
    """The markdown table of one problem's summary: the score at the common budget and at a tenth
    of it under each accounting (or, for a summary written before there were two, as the runs
    charged themselves), the budget a run spent under each, then evaluations and wall time per run."""
    measure = summary["measure"]
    views = [(f"{accounting}: ", view) for accounting in ACCOUNTINGS
             if (view := accounting_view(summary, accounting)) is not None] or [("", summary)]
    head = "".join(f" | {prefix}{measure} at budget {view['common_budget']:,.0f} | at {view['common_budget'] / 10:,.0f}"
                   for prefix, view in views)
    spent = len(views) > 1 and all("spent_mean" in view["groups"][label] for _, view in views
                                   for label in summary["groups"])
    head += f" | budget per run ({' / '.join(ACCOUNTINGS)})" if spent else ""
    lines = [f"| engine / optimiser | seeds{head} | evaluations per run | wall per run (s) |",
             "| --- | ---: |" + " ---: | ---: |" * len(views) + " ---: |" * spent + " ---: | ---: |"]
    for label, group in summary["groups"].items():
        cells = "".join(f" | {_score(view['groups'][label], 'final')} | {_score(view['groups'][label], 'tenth')}"
                        for _, view in views)
        if spent:
            cells += " | " + " / ".join(f"{view['groups'][label]['spent_mean']:,.0f}" for _, view in views)
        lines.append(f"| {label} | {group['seeds']}{cells}"
                     f" | {group['evaluations']:,.0f} | {group['wall_mean']:.3g} ± {group['wall_se']:.2g} |")
    return "\n".join(lines)


def _score(group: dict[str, Any], which: str) -> str:
    """``mean ± s.e.`` of a group's ``final`` or ``tenth`` score, "-" where a seed had none yet."""
    mean, error = group[f"{which}_mean"], group[f"{which}_se"]
    return "-" if mean is None else f"{mean:.4g} ± {error or 0:.2g}"


def plot(summary: dict[str, Any], path: Path) -> None:
    """Score against cumulative budget under each accounting and against wall time, mean ± s.e.
    bands, log axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    views = [view for accounting in ACCOUNTINGS if (view := accounting_view(summary, accounting)) is not None]
    panels = [(view["accounting"], np.array(view["budget_grid"]), view, "budget_curve") for view in views]
    panels.append(("wall time", np.array(summary["time_grid"]), summary, "time_curve"))
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5))
    for label in summary["groups"]:
        engine, optimizer = label.split(" ", 1)
        colour = COLOURS.get(optimizer, PEER_COLOURS.get(engine, "tab:brown"))
        for axis, (_, grid, view, key) in zip(axes, panels):
            mean, error = (np.array(c, dtype=float) for c in view["groups"][label][key])
            axis.plot(grid, mean, label=label, lw=1.5, color=colour, ls=LINE_STYLES.get(engine, ":"))
            axis.fill_between(grid, mean - error, mean + error, color=colour, alpha=0.12)
    positive = all(np.nanmin(np.array(view["groups"][label][key][0], dtype=float)) > 0
                   for _, _, view, key in panels[:-1] for label in summary["groups"])
    for axis, (name, _, _, _) in zip(axes, panels):
        axis.set_xscale("log")
        axis.set_yscale("log" if positive else "linear")
        axis.set_xlabel("wall time (s)" if name == "wall time" else f"cumulative budget, {name} charged")
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
                if engine != "mpibohb" and optimizer in MPIBOHB_ONLY:
                    continue
                path = out_dir / "runs" / problem.name / f"{engine}-{optimizer}-it{iterations}-seed{seed}-{code}.json"
                specs.append(RunSpec(problem, engine, optimizer, seed, iterations, path))
    return specs


def kept_runs(problem: Problem, made: list[RunSpec], seeds: int, n_iterations: int | None,
              out_dir: Path) -> tuple[list[RunSpec], list[str]]:
    """The runs of the other engines and optimisers already under ``out_dir`` by today's code, so
    that engines run by separate commands share one table: groups with all ``seeds`` seeds, and a
    line for each group with only some (left out: its figures would be of other seeds)."""
    asked = {spec.path for spec in made}  # the path names everything a run is (a Problem compares by identity)
    others: dict[str, list[RunSpec]] = {}
    for spec in specs_for(problem, ENGINES, list(HYPERBAND_FAMILY), seeds, n_iterations, out_dir):
        if spec.path not in asked:
            others.setdefault(spec.label, []).append(spec)
    complete: list[RunSpec] = []
    partial: list[str] = []
    for label, group in others.items():
        present = sum(spec.path.exists() for spec in group)
        if present == len(group):
            complete += group
        elif present:
            partial.append(f"{label}: left out, {present} of {len(group)} seeds made")
    return complete, partial


def report_problem(problem: Problem, specs: list[RunSpec], failures: dict[RunSpec, str], out_dir: Path,
                   left_out: Iterable[str] = ()) -> str:
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
        summary["left_out"] = list(left_out)
        scorer.save()
        summary_path.write_text(json.dumps(summary))
        plot(summary, out_dir / f"{problem.name}.png")
        lines += [table(summary), "", f"![{problem.name}]({problem.name}.png)", ""]
    lines += [f"- {line}" for line in [*failed, *left_out]]
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", action="append", required=True,
                        help=f"a problem name, repeatable, or 'all' ({', '.join(all_problems())})")
    parser.add_argument("--optimizers", default="bohb,hb,rs",
                        help="of bohb (model hpbandster), bohb_tpe (model tpe), hb, rs (default: bohb,hb,rs)")
    parser.add_argument("--engines", default="mpibohb,hpbandster",
                        help="of mpibohb, hpbandster, optuna, dehb, deephyper (default: mpibohb,hpbandster)")
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
    unknown = sorted(set(args.optimizers) - set(HYPERBAND_FAMILY)) + sorted(set(args.engines) - set(ENGINES))
    if unknown or args.seeds < 1:
        parser.error(f"unknown optimizers or engines: {unknown}" if unknown else "--seeds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    os.environ["OMP_NUM_THREADS"] = "1"  # the Scorer trains models here (boosting uses OpenMP): one thread, as a run
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
        kept, partial = kept_runs(problem, specs, args.seeds, args.n_iterations, out_dir)
        section = report_problem(problem, specs + kept, failures, out_dir, partial)
        (out_dir / f"{problem.name}.md").write_text(section + "\n")
        print(section, flush=True)
        print(flush=True)
    if any_failed:
        sys.exit("some runs failed: see the lines after each table")


if __name__ == "__main__":
    main(sys.argv[1:])
