"""Benchmark runs on ``mpibohb.simulate``'s clock, as the rows that benchmarks/quality.py scores.

The benchmarks that need K workers without K processes (``ablation``, ``fill_tail``,
``utilisation``'s schedule bound) run the public simulator: the real run loop, optimizer and
``Result``, with no master or communication cost on the simulated clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Config = dict[str, Any]


@dataclass
class SimulatedRun:
    """The busy fraction, the span (simulated seconds) and the evaluations in finishing order, each
    ``{"config", "budget", "loss", "charged", "finished"}`` (charged: the budget)."""

    busy: float
    span: float
    runs: list[dict[str, Any]]


def simulated_run(family: Any, n_iterations: int, workers: int, loss: Callable[[Config, float], float],
                  duration: Callable[[Config, float], float]) -> SimulatedRun:
    """Run ``family`` (a ``BOHB``, ``HyperBand`` or ``RandomSearch``) for ``n_iterations`` with
    ``workers`` virtual workers; an evaluation gives ``loss(config, budget)`` and lasts
    ``duration(config, budget)``."""
    from mpibohb import simulate
    from mpibohb.simulation import busy_fraction

    result = simulate(family, n_iterations=n_iterations, worker=loss, n_workers=workers, duration=duration)
    failed = [run for run in result.get_all_runs() if run.loss is None]
    if failed:  # simulate records a raising loss as a failed run; a benchmark's loss must not fail
        raise RuntimeError(f"{len(failed)} evaluations failed; the first: {failed[0].error_logs}")
    configs = result.get_id2config_mapping()
    runs = [{"config": configs[run.config_id]["config"], "budget": run.budget, "loss": run.loss,
             "charged": run.budget, "finished": run.time_stamps["finished"]} for run in result.get_all_runs()]
    span = runs[-1]["finished"] if runs else 0.0
    return SimulatedRun(busy_fraction(result, workers), span, runs)
