"""DeepHyper's CBO with its successive-halving stopper on benchmarks/problems.py, as JSON.

    bash benchmarks/deephyper_env.sh               # once: makes benchmarks/.deephyper-venv
    benchmarks/.deephyper-venv/bin/python -m benchmarks.deephyper_peer --problem NAME --seed S \\
        --total_budget B --out FILE.json          # from the repository's root

Runs inside benchmarks/.deephyper-venv (pins in benchmarks/deephyper_env.sh); it does not import
mpibohb. DeepHyper is called as a library: ``CBO(HpProblem, random_state=S,
stopper=SuccessiveHalvingStopper(...), acq_optimizer="sampling")`` with CBO's defaults
otherwise (extra-trees surrogate, ``UCBd`` with its schedule), driven by ``search.search`` with
DeepHyper's serial evaluator (asyncio, one worker, ``MemoryStorage``) and an ``async def`` run
function. The ConfigSpace space is handed to ``HpProblem`` hyperparameter by hyperparameter
(ConfigSpace objects, so ranges and log scales are kept), and so are its conditions (EqualsCondition
and InCondition, as ``benchmarks.peers.conditions`` translates them for Optuna). DeepHyper fills an
inactive hyperparameter with a value of its own (its lower bound) in ``job.parameters``; the run
function drops it (``active_config``), so ``problem.evaluate`` and the records get the configuration
mpibohb would, without inactive hyperparameters. DeepHyper maximises: the
objective is ``-loss``. The acquisition optimiser is ``"sampling"`` rather than DeepHyper's default
``"mixedga"`` (``--acq_optimizer`` picks another), for time: see ``ACQ_OPTIMIZER``.

Rungs: the problem's, min_budget * eta^k up to max_budget (``benchmarks.peers.rungs``). The
stopper places its k-th halting budget at ``(min_steps - 1) + eta**(min_early_stopping_rate + k)``,
so ``stopper_settings`` picks ``min_steps`` and ``min_early_stopping_rate`` that reproduce the
problem's rungs (budgets 1..27, eta 3: 1, 0; budgets 9..729: 1, 2) with ``max_steps = max_budget``
and ``reduction_factor = eta``. Where no such settings exist (svm_digits: 40, 120, 360, 1080), a step
is ``min_budget`` of budget instead: the stopper sees the steps ``rung / min_budget`` (1, 3, 9, 27:
min_steps 1, rate 0) and the problem is evaluated at the rung's budget (``placement``); a problem
whose rungs neither way reproduces is refused. The run function also checks, before each
evaluation, that the rung's step equals the halting budget the job's own stopper is waiting for,
and fails otherwise: every observation the stopper gets is at a rung.

A job climbs the rungs: it evaluates ``problem.evaluate(config, rung, rng)`` (rng =
``problems.noise_generator(seed)``, as benchmarks/engines.py's Recorder), records ``-loss`` at
the rung's step and goes on while the stopper lets it. Each rung evaluation is one run. Budget
accounting as Optuna's in benchmarks/peers.py: the stopper continues a job (training goes on from
the previous rung), so a rung is charged its increment ``rung - previous rung``;
``benchmarks.quality.charges`` recomputes both accountings from the records. The run stops after
the evaluation with which the increments charged reach ``--total_budget`` (the job returns its last
objective and a callback stops the search), so it may overshoot by one increment.

The output, the same as benchmarks/engines.py's and benchmarks/peers.py's::

    {"engine": "deephyper", "optimizer": "cbo_sh" (or "cbo_sh_mixedga", ...), "problem", "seed", "wall",
     "runs": [{"config", "budget", "loss", "charged", "finished"}, ...]}   # in finishing order

``finished`` and ``wall`` are seconds since the optimisation started (after CBO was constructed),
the optimiser's overhead included.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.engines import Recorder, write_record
from benchmarks.peers import conditions, hyperparameters, rungs
from benchmarks.problems import Problem, get_problem

ENGINE, OPTIMIZER = "deephyper", "cbo_sh"
# CBO's acquisition optimiser: "sampling" (10,000 random candidates scored by the surrogate), not
# DeepHyper 0.13.2's default "mixedga" (a genetic algorithm), which took about 2 s per evaluation here
# (serial, loaded 2-core machine) against 0.09 s: too slow for the thousand-odd evaluations of a run.
ACQ_OPTIMIZER = "sampling"


class RungMismatchError(RuntimeError):
    """DeepHyper's stopper would halt at budgets other than the problem's rungs."""


def halting_budgets(min_steps: float, eta: float, min_early_stopping_rate: int, count: int) -> list[float]:
    """The first ``count`` halting budgets of DeepHyper's SuccessiveHalvingStopper (its formula)."""
    return [float((min_steps - 1) + eta ** (min_early_stopping_rate + k)) for k in range(count)]


def stopper_settings(problem: Problem, step: float = 1.0) -> dict[str, Any]:
    """SuccessiveHalvingStopper's arguments whose halting budgets are the problem's rungs counted in
    steps of ``step`` budget; refuses (RungMismatchError) if none are (the stopper's rungs are an
    offset power series of eta)."""
    ladder = [rung / step for rung in rungs(problem)]
    eta = problem.eta
    rate = 0
    while eta ** (rate + 1) <= ladder[0]:
        rate += 1
    for r in range(rate, -1, -1):  # min_steps = 1 first, then shifted series
        min_steps = ladder[0] + 1 - eta ** r
        budgets = halting_budgets(min_steps, eta, r, len(ladder))
        if all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(budgets, ladder)):
            return {"max_steps": int(round(ladder[-1])), "min_steps": min_steps, "reduction_factor": eta,
                    "min_early_stopping_rate": r}
    raise RungMismatchError(f"{problem.name}: no min_steps/min_early_stopping_rate puts DeepHyper's halting "
                       f"budgets at the rungs {ladder}")


def placement(problem: Problem) -> tuple[dict[str, Any], float]:
    """The stopper's arguments and the budget of one of its steps: steps are budget units where the
    stopper can halt at the rungs so (kept first, so that runs made that way stay as they were),
    else ``min_budget`` units (rungs 1, eta, eta^2, ... in steps); RungMismatchError if neither fits."""
    try:
        return stopper_settings(problem), 1.0
    except RungMismatchError as error:
        try:
            return stopper_settings(problem, step=float(problem.min_budget)), float(problem.min_budget)
        except RungMismatchError:
            raise error from None


def active_config(config: dict[str, Any], space: Any) -> dict[str, Any]:
    """``config`` without the hyperparameters its conditions make inactive (DeepHyper sets every one
    of them), in ``config``'s order; a child is active when its parent is and the condition holds."""
    by_child = conditions(space)
    active: set[str] = set()
    for hp in hyperparameters(space):  # parents before children
        condition = by_child.get(hp.name)
        if condition is None or (condition.parent.name in active and _holds(condition, config[condition.parent.name])):
            active.add(hp.name)
    return {name: value for name, value in config.items() if name in active}


def _holds(condition: Any, value: Any) -> bool:
    """Whether an EqualsCondition or InCondition (the only ones ``conditions`` lets through) holds."""
    return bool(value in condition.values) if hasattr(condition, "values") else bool(value == condition.value)


def next_halting_budget(stopper: Any) -> float:
    """The budget at which the job's stopper next decides (DeepHyper 0.13's private method)."""
    compute = getattr(stopper, "_compute_halting_budget", None)
    if compute is None:
        raise RungMismatchError(f"{type(stopper).__name__} has no _compute_halting_budget: cannot check the rungs")
    return float(compute())


Wait = Callable[[dict[str, Any], float], Awaitable[None]]  # (configuration, increment): a rung's run time


def run_function(recorder: Recorder, ladder: list[float], total_budget: float, step: float = 1.0,
                 space: Any = None, wait: Wait | None = None) -> Callable[[Any], Awaitable[dict[str, Any]]]:
    """DeepHyper's run function: climbs the rungs (budgets; the stopper counts in units of ``step``)
    while the stopper lets the job go on. With ``space``, inactive hyperparameters are dropped; with
    ``wait``, each rung first awaits ``wait(config, increment)`` (a simulated run time)."""

    async def run(job: Any) -> dict[str, Any]:
        config = dict(job.parameters) if space is None else active_config(dict(job.parameters), space)
        previous, loss = 0.0, math.nan
        for rung in ladder:
            expected = next_halting_budget(job.stopper)
            if not math.isclose(expected, rung / step, rel_tol=1e-9):
                raise RungMismatchError(f"the stopper halts next at step {expected}, the rung is step {rung / step}")
            if wait is not None:
                await wait(config, rung - previous)
            loss = recorder(config, rung, charged=rung - previous)
            previous = rung
            job.record(rung / step, -loss)
            if recorder.charged >= total_budget or job.stopped():
                break
        return {"objective": -loss, "metadata": {"last_rung": previous}}

    return run


def run_deephyper(problem: Problem, seed: int, total_budget: float, acq_optimizer: str = ACQ_OPTIMIZER,
                  workers: int = 1, into: Recorder | None = None, wait: Wait | None = None) -> Recorder:
    """CBO with the successive-halving stopper until the budget is spent: one serial worker, or
    ``workers`` jobs at once in DeepHyper's serial evaluator (coroutines; ``wait`` gives them run
    times, ``benchmarks.deephyper_parallel``). ``into``: where the runs go (default: a new recorder)."""
    from deephyper.evaluator import Evaluator
    from deephyper.evaluator.callback import Callback
    from deephyper.evaluator.storage import MemoryStorage
    from deephyper.hpo import CBO, HpProblem
    from deephyper.stopper import SuccessiveHalvingStopper

    ladder = rungs(problem)
    settings, step = placement(problem)
    space = problem.space(seed)
    hp_problem = HpProblem()
    for hp in hyperparameters(space):
        hp_problem.add_hyperparameter(hp)
    by_child = conditions(space)
    if by_child:
        hp_problem.add_conditions(list(by_child.values()))

    class BudgetSpent(Callback):
        """Stops the search once the increments charged reach the total budget."""

        @property
        def search_stopped(self) -> bool:
            return recorder.charged >= total_budget

    with tempfile.TemporaryDirectory(prefix="deephyper-peer-") as log_dir:
        search = CBO(hp_problem, random_state=seed, log_dir=log_dir, verbose=0,
                     stopper=SuccessiveHalvingStopper(**settings), checkpoint_history_to_csv=False,
                     acq_optimizer=acq_optimizer)
        recorder = into if into is not None else Recorder(problem, seed)
        run = run_function(recorder, ladder, total_budget, step, space if by_child else None, wait)
        evaluator = Evaluator.create(run, method="serial",
                                     method_kwargs={"num_workers": workers, "callbacks": [BudgetSpent()],
                                                    "storage": MemoryStorage()})
        search.search(evaluator, max_evals=-1)
        recorder.stop_clock()
    return recorder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--total_budget", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--acq_optimizer", default=ACQ_OPTIMIZER, choices=["sampling", "mixedga", "ga"],
                        help=f"CBO's acquisition optimiser (default: {ACQ_OPTIMIZER}; DeepHyper's is mixedga)")
    args = parser.parse_args(argv)
    problem = get_problem(args.problem)
    recorder = run_deephyper(problem, args.seed, args.total_budget, args.acq_optimizer)
    record = {"engine": ENGINE, "optimizer": OPTIMIZER if args.acq_optimizer == ACQ_OPTIMIZER
              else f"{OPTIMIZER}_{args.acq_optimizer}", "problem": problem.name, "seed": args.seed,
              "wall": recorder.wall, "runs": recorder.runs}
    write_record(args.out, record)


if __name__ == "__main__":
    main(sys.argv[1:])
