"""Peers of the Hyperband family (Optuna TPE + Hyperband pruner, DEHB) on benchmarks/problems.py, as JSON.

    bash benchmarks/peers_env.sh                   # once: makes benchmarks/.peers-venv
    benchmarks/.peers-venv/bin/python -m benchmarks.peers --problem NAME --optimizer optuna_tpe_hb|dehb \\
        --seed S --total_budget B --out FILE.json  # from the repository's root

Runs inside benchmarks/.peers-venv, whose pins (numpy < 2 for DEHB, Optuna, ConfigSpace,
scikit-learn) are set by benchmarks/peers_env.sh; the versions used are those installed there. It
does not import mpibohb. Each run is serial (one worker), seeds the optimiser with ``--seed``,
draws the problem's noise from ``problems.noise_generator(seed)`` and uses the problem's
min_budget, max_budget and eta. It stops after the evaluation with which the budget charged so far
(the sum of ``charged`` over evaluations) reaches ``--total_budget``, so it may overshoot by one
evaluation's charge.

* ``optuna_tpe_hb``: Optuna's ``TPESampler(seed=S)`` with its ``HyperbandPruner(min_resource=
  min_budget, max_resource=max_budget, reduction_factor=eta)``, driven by ask and tell; the study
  is named after problem and seed, since the pruner assigns trials to brackets by a hash of that
  name. Parameters are suggested with ``trial.suggest_*`` translated from the ConfigSpace space,
  parents first; a conditional one (EqualsCondition or InCondition; other conditions and forbidden
  clauses are refused) only when its parent's suggested value meets the condition.
  A trial climbs the rungs min_budget * eta^k (the budgets of the problem's Hyperband schedule up
  to max_budget), is evaluated at each rung with ``problem.evaluate(config, rung, rng)``, reports
  that loss at step ``rung`` and stops when the pruner says so. Each rung evaluation is one run.
  Budget accounting: Optuna's pruner assumes incremental training (a trial continues from its
  previous step), so a rung is charged only its increment ``rung - previous rung``, and a trial that
  reaches max_budget costs max_budget in all. This favours Optuna relative to the Hyperband family
  (and DEHB), which evaluate each budget from scratch and are charged the full budget: on these
  problems every evaluation is in fact made from scratch, at full cost in wall time.
* ``dehb``: DEHB (differential evolution within Hyperband brackets), fidelity = budget, one
  worker, driven by its ask and tell interface. The objective returns ``{"fitness": loss, "cost":
  budget}`` and each evaluation is charged its budget (DEHB evaluates from scratch, like
  Hyperband). ``DEHB.run`` was not used because none of its limits is in budget units: ``fevals``
  counts evaluations, ``brackets`` counts brackets and ``total_cost`` is wall-clock seconds (a
  timer); with one worker ``run`` is the same ask, evaluate, tell loop (same evaluations as
  ``run(fevals=N)``), so this loop only changes where it stops. DEHB's fidelities (max_budget *
  eta^-k, floats) are snapped to the rungs min_budget * eta^k against rounding error. DEHB writes
  its log (and would write its state) into ``output_path``, here a temporary directory removed
  afterwards; its loguru messages go to stderr at WARNING level. Conditional spaces go to DEHB as
  they are: its configurations leave inactive values out, as ConfigSpace's do.

The output, the same as benchmarks/engines.py's::

    {"engine": "optuna"|"dehb", "optimizer", "problem", "seed", "wall",
     "runs": [{"config", "budget", "loss", "charged", "finished"}, ...]}   # in finishing order

``finished`` and ``wall`` are seconds since the optimisation started (after the optimiser was
constructed), optimiser overhead included.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from benchmarks.engines import Recorder, plain, write_record
from benchmarks.problems import Problem, get_problem

ENGINES = {"optuna_tpe_hb": "optuna", "dehb": "dehb"}


def rungs(problem: Problem) -> list[float]:
    """The budgets min_budget * eta^k up to max_budget (the problem's Hyperband budgets)."""
    steps = int(math.floor(math.log(problem.max_budget / problem.min_budget, problem.eta) + 1e-9))
    ladder = [float(problem.min_budget * problem.eta ** k) for k in range(steps + 1)]
    ladder[-1] = float(problem.max_budget)
    return ladder


def snap(budget: float, ladder: list[float]) -> float:
    """``budget`` as the rung it equals up to rounding error (DEHB computes max * eta^-k)."""
    nearest = min(ladder, key=lambda rung: abs(rung - budget))
    return nearest if math.isclose(nearest, budget, rel_tol=1e-9) else float(budget)


# --- Optuna: TPE sampler + Hyperband pruner ------------------------------------------------------

def conditions(space: Any) -> dict[str, Any]:
    """The condition of each conditional hyperparameter of a ConfigSpace space (0.6 or 1.x), by the
    child's name. Only EqualsCondition and InCondition are translated: a NotImplementedError names
    any other condition, conjunctions included, and any forbidden clause."""
    import ConfigSpace as CS

    found = space.conditions if hasattr(space, "conditions") else space.get_conditions()
    forbiddens = space.forbidden_clauses if hasattr(space, "forbidden_clauses") else space.get_forbiddens()
    if forbiddens:
        raise NotImplementedError(f"the Optuna translator handles no forbidden clauses: {forbiddens[0]}")
    by_child = {}
    for condition in found:
        if type(condition) not in (CS.EqualsCondition, CS.InCondition):
            raise NotImplementedError(f"the Optuna translator handles EqualsCondition and InCondition only, not"
                                      f" {type(condition).__name__}: {condition}")
        by_child[condition.child.name] = condition
    return by_child


def hyperparameters(space: Any) -> list[Any]:
    """The hyperparameters of a ConfigSpace space (0.6 or 1.x), every parent before its children
    (otherwise in the space's order); see ``conditions`` for what is refused."""
    parents = {child: condition.parent.name for child, condition in conditions(space).items()}
    remaining = list(space.values()) if hasattr(space, "add") else list(space.get_hyperparameters())
    ordered: list[Any] = []
    while remaining:
        placed = {hp.name for hp in ordered}
        ready = [hp for hp in remaining if hp.name not in parents or parents[hp.name] in placed]
        if not ready:
            raise ValueError(f"circular conditions among {[hp.name for hp in remaining]}")
        ordered += ready
        remaining = [hp for hp in remaining if hp not in ready]
    return ordered


def active(condition: Any, config: dict[str, Any]) -> bool:
    """Whether ``condition`` (EqualsCondition or InCondition) holds for the values suggested so far; a
    child of an inactive parent is inactive."""
    import ConfigSpace as CS

    parent = condition.parent.name
    if parent not in config:
        return False
    if isinstance(condition, CS.EqualsCondition):
        return bool(config[parent] == plain(condition.value))
    return config[parent] in [plain(value) for value in condition.values]


def suggest_config(trial: Any, space: Any) -> dict[str, Any]:
    """A configuration from ``trial.suggest_*``: parents first, and a conditional hyperparameter only
    when its condition holds for its parent's suggested value (else it is left out, as ConfigSpace
    leaves out inactive values)."""
    by_child = conditions(space)
    config: dict[str, Any] = {}
    for hp in hyperparameters(space):
        if hp.name not in by_child or active(by_child[hp.name], config):
            config[hp.name] = suggest(trial, hp)
    return config


def suggest(trial: Any, hp: Any) -> Any:
    """``trial.suggest_*`` for one ConfigSpace hyperparameter, mirroring its type, range and log scale."""
    import ConfigSpace as CS

    if isinstance(hp, CS.UniformFloatHyperparameter):
        step = getattr(hp, "q", None)
        return trial.suggest_float(hp.name, hp.lower, hp.upper, log=bool(hp.log), step=None if hp.log else step)
    if isinstance(hp, CS.UniformIntegerHyperparameter):
        return trial.suggest_int(hp.name, int(hp.lower), int(hp.upper), log=bool(hp.log))
    if isinstance(hp, CS.CategoricalHyperparameter):
        return trial.suggest_categorical(hp.name, [plain(choice) for choice in hp.choices])
    if isinstance(hp, CS.OrdinalHyperparameter):  # Optuna has no ordinal type: its order is lost
        return trial.suggest_categorical(hp.name, [plain(value) for value in hp.sequence])
    if isinstance(hp, CS.Constant):
        return plain(hp.value)
    raise NotImplementedError(f"no Optuna counterpart for {type(hp).__name__} {hp.name}")


def optuna_trial(trial: Any, config: dict[str, Any], ladder: list[float], recorder: Recorder,
                 total_budget: float) -> tuple[str, float] | None:
    """Climb the rungs; ("complete" | "pruned", last loss), or None if the budget ran out first."""
    previous = 0.0
    for rung in ladder:
        loss = recorder(config, rung, charged=rung - previous)
        previous = rung
        trial.report(loss, step=int(round(rung)))
        if rung == ladder[-1]:
            return "complete", loss
        if recorder.charged >= total_budget:
            return None
        if trial.should_prune():
            return "pruned", loss
    raise AssertionError("unreachable: the ladder ends at max_budget")


def run_optuna(problem: Problem, seed: int, total_budget: float) -> Recorder:
    """Optuna's TPE sampler with its Hyperband pruner, one trial at a time, until the budget is spent."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    ladder = rungs(problem)
    if any(rung != round(rung) for rung in ladder):
        raise ValueError(f"Optuna's steps are integers; {problem.name} has budgets {ladder}")
    pruner = optuna.pruners.HyperbandPruner(min_resource=int(ladder[0]), max_resource=int(ladder[-1]),
                                            reduction_factor=int(problem.eta))
    study = optuna.create_study(study_name=f"{problem.name}-seed{seed}", direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
    space = problem.space(seed)
    recorder = Recorder(problem, seed)
    while recorder.charged < total_budget:
        trial = study.ask()
        config = suggest_config(trial, space)
        outcome = optuna_trial(trial, config, ladder, recorder, total_budget)
        if outcome is None:
            break
        state, loss = outcome
        if state == "complete":
            study.tell(trial, loss)
        else:
            study.tell(trial, state=TrialState.PRUNED)
    return recorder


# --- DEHB ----------------------------------------------------------------------------------------

def dehb_objective(recorder: Recorder, ladder: list[float]) -> Callable[..., dict[str, float]]:
    """DEHB's function: evaluates at fidelity = budget, charged the whole budget."""

    def objective(config: Any, fidelity: float, **kwargs: Any) -> dict[str, float]:
        budget = snap(float(fidelity), ladder)
        loss = recorder(dict(config), budget, charged=budget)
        return {"fitness": loss, "cost": budget}

    return objective


def run_dehb(problem: Problem, seed: int, total_budget: float) -> Recorder:
    """DEHB with one worker, by ask and tell, until the budget is spent; its files go to a temp dir."""
    from dehb import DEHB
    from loguru import logger

    ladder = rungs(problem)
    with tempfile.TemporaryDirectory(prefix="peers-dehb-") as output_path:
        try:
            optimizer = DEHB(cs=problem.space(seed), min_fidelity=problem.min_budget, max_fidelity=problem.max_budget,
                             eta=problem.eta, n_workers=1, seed=seed, output_path=output_path,
                             save_freq="end", log_level="WARNING")
            logger.remove()  # DEHB logs to stdout and to output_path/dehb.log: keep warnings, on stderr
            logger.add(sys.stderr, level="WARNING")
            recorder = Recorder(problem, seed)
            objective = dehb_objective(recorder, ladder)
            while recorder.charged < total_budget:
                job = optimizer.ask()
                optimizer.tell(job, objective(job["config"], job["fidelity"]))
        finally:
            logger.remove()
    return recorder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", required=True)
    parser.add_argument("--optimizer", choices=sorted(ENGINES), required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--total_budget", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    problem = get_problem(args.problem)
    engine = {"optuna_tpe_hb": run_optuna, "dehb": run_dehb}[args.optimizer]
    recorder = engine(problem, args.seed, args.total_budget)
    wall = time.perf_counter() - recorder.start
    record = {"engine": ENGINES[args.optimizer], "optimizer": args.optimizer, "problem": problem.name,
              "seed": args.seed, "wall": wall, "runs": recorder.runs}
    write_record(args.out, record)


if __name__ == "__main__":
    main(sys.argv[1:])
