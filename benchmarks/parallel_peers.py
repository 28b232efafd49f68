"""The peers on K simulated workers (their own parallel modes), as JSON: Optuna's TPE with its
Hyperband pruner and DEHB, each asynchronous, on a simulated clock.

    benchmarks/.peers-venv/bin/python -m benchmarks.parallel_peers --problem NAME \\
        --optimizer optuna_tpe_hb|dehb --seed S --total_budget B --workers K [--sigma 1.0] --out FILE.json

Runs inside benchmarks/.peers-venv like ``benchmarks/peers.py``, whose translation of the space,
rungs and accounting it uses; it does not import mpibohb. K virtual workers take jobs as they
become free; a job of budget b on configuration c takes ``b * exp(sigma * z(c))`` simulated
seconds (``benchmarks/run_times.py``: the run times mpibohb's schedules get in
``benchmarks/asynchronous_quality.py``). The problem is evaluated when the job ends, in the order
jobs end, so each engine learns results in the order a cluster would deliver them. No engine's
own compute time is simulated. New jobs are handed out while the budget charged for finished
evaluations is below ``--total_budget``; the jobs still running then finish (the run overshoots by
up to K jobs; the scoring reads the incumbent at the total).

* ``optuna_tpe_hb``: ``TPESampler(seed=S, constant_liar=True)`` (Optuna's advice for distributed
  runs: running trials count as bad) with ``HyperbandPruner`` as in ``peers.py``. Each worker runs
  one trial rung by rung; a rung's job is charged, and takes the time of, its increment (Optuna's
  pruner assumes training continues), reports at step = rung, and the trial stops when pruned.
* ``dehb``: DEHB's ask and tell with up to K jobs asked before their results are told (its
  asynchronous mode without Dask: ``n_workers=1`` only keeps DEHB from starting a Dask cluster; the
  bracket manager hands out a job of a waiting bracket's next rung, or starts a new bracket, as in
  its parallel ``run``). Each job is charged its budget.

The output is ``benchmarks/peers.py``'s, with ``finished`` the simulated time and ``workers`` and
``sigma`` added.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from benchmarks.engines import Recorder, write_record
from benchmarks.peers import ENGINES, dehb_objective, rungs, suggest_config
from benchmarks.problems import Problem, get_problem
from benchmarks.run_times import duration_of


class SimulatedRecorder(Recorder):
    """``Recorder`` whose evaluations finish at the simulated time ``now``."""

    now = 0.0

    def __call__(self, config: dict[str, Any], budget: float, charged: float | None = None) -> float:
        loss = super().__call__(config, budget, charged)
        self.runs[-1]["finished"] = self.now
        return loss


class Workers:
    """K virtual workers: the jobs running, by the simulated time they end."""

    def __init__(self, count: int) -> None:
        self.free = count
        self._running: list[tuple[float, int, Any]] = []
        self._order = itertools.count()  # equal end times: the job started first ends first

    def start(self, ends: float, job: Any) -> None:
        self.free -= 1
        heapq.heappush(self._running, (ends, next(self._order), job))

    def busy(self) -> bool:
        return bool(self._running)

    def next_ending(self) -> tuple[float, Any]:
        ends, _, job = heapq.heappop(self._running)
        self.free += 1
        return ends, job


def run_optuna(problem: Problem, seed: int, total_budget: float, workers: int, sigma: float) -> Recorder:
    """Optuna's TPE (constant liar) with its Hyperband pruner on ``workers`` simulated workers."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    ladder = rungs(problem)
    pruner = optuna.pruners.HyperbandPruner(min_resource=int(ladder[0]), max_resource=int(ladder[-1]),
                                            reduction_factor=int(problem.eta))
    study = optuna.create_study(study_name=f"{problem.name}-seed{seed}", direction="minimize", pruner=pruner,
                                sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True))
    space, duration = problem.space(seed), duration_of(sigma)
    recorder, pool = SimulatedRecorder(problem, seed), Workers(workers)

    def start_rung(trial: Any, config: dict[str, Any], index: int) -> None:
        increment = ladder[index] - (ladder[index - 1] if index else 0.0)
        pool.start(recorder.now + duration(config, increment), (trial, config, index))

    def fill() -> None:
        while pool.free and recorder.charged < total_budget:
            trial = study.ask()
            start_rung(trial, suggest_config(trial, space), 0)

    fill()
    while pool.busy():
        recorder.now, (trial, config, index) = pool.next_ending()
        rung = ladder[index]
        loss = recorder(config, rung, charged=rung - (ladder[index - 1] if index else 0.0))
        trial.report(loss, step=int(round(rung)))
        if index == len(ladder) - 1:
            study.tell(trial, loss)
        elif trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
        elif recorder.charged < total_budget:
            start_rung(trial, config, index + 1)
        fill()
    return recorder


def run_dehb(problem: Problem, seed: int, total_budget: float, workers: int, sigma: float) -> Recorder:
    """DEHB by ask and tell with up to ``workers`` jobs out at once; its files go to a temp dir."""
    from dehb import DEHB
    from loguru import logger

    ladder, duration = rungs(problem), duration_of(sigma)
    with tempfile.TemporaryDirectory(prefix="parallel-peers-dehb-") as output_path:
        try:
            optimizer = DEHB(cs=problem.space(seed), min_fidelity=problem.min_budget, max_fidelity=problem.max_budget,
                             eta=problem.eta, n_workers=1, seed=seed, output_path=output_path,
                             save_freq="end", log_level="WARNING")
            logger.remove()
            logger.add(sys.stderr, level="WARNING")
            recorder, pool = SimulatedRecorder(problem, seed), Workers(workers)
            objective = dehb_objective(recorder, ladder)
            _drive_dehb(optimizer, objective, recorder, pool, total_budget, duration)
        finally:
            logger.remove()
    return recorder


def _drive_dehb(optimizer: Any, objective: Callable[..., dict[str, float]], recorder: SimulatedRecorder,
                pool: Workers, total_budget: float, duration: Callable[[dict[str, Any], float], float]) -> None:
    def fill() -> None:
        while pool.free and recorder.charged < total_budget:
            job = optimizer.ask()
            pool.start(recorder.now + duration(dict(job["config"]), float(job["fidelity"])), job)

    fill()
    while pool.busy():
        recorder.now, job = pool.next_ending()
        optimizer.tell(job, objective(job["config"], job["fidelity"]))
        fill()


def simulated_run_parser(description: str) -> argparse.ArgumentParser:
    """The command line of one simulated parallel run (here and ``benchmarks.deephyper_parallel``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--problem", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--total_budget", type=float, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--out", required=True)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = simulated_run_parser(__doc__.splitlines()[0])
    parser.add_argument("--optimizer", choices=sorted(ENGINES), required=True)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    problem = get_problem(args.problem)
    engine = {"optuna_tpe_hb": run_optuna, "dehb": run_dehb}[args.optimizer]
    started = time.perf_counter()
    recorder = engine(problem, args.seed, args.total_budget, args.workers, args.sigma)
    record = {"engine": ENGINES[args.optimizer], "optimizer": args.optimizer, "problem": problem.name,
              "seed": args.seed, "workers": args.workers, "sigma": args.sigma,
              "wall": time.perf_counter() - started, "runs": recorder.runs}
    write_record(args.out, record)


if __name__ == "__main__":
    main()
