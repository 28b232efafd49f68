"""Runs on simulated time: the real run loop against virtual workers, for planning and research.

>>> from mpibohb import HyperBand, simulate
>>> res = simulate(HyperBand(space, min_budget=1, max_budget=81), n_iterations=40, worker=compute,
...                n_workers=128, duration=lambda config, budget: budget * 60.0)

``compute`` still runs (for its loss), but each evaluation is taken to last
``duration(config, budget)`` simulated seconds on one of ``n_workers`` workers; the loop, the
optimizer, the journal (with a ``run_dir``) and the ``Result`` are the ones a real run uses, and
the ``Result``'s time stamps are simulated seconds from the start. So "how many workers pay off?"
has an answer in seconds: :func:`busy_fraction` of the result against ``n_workers``, and its
span (``max`` of the runs' ``finished``), for each ``n_workers`` tried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import checks
from .evaluation import sigint_watch
from .executors.simulated import Duration, SimulatedClock, SimulatedExecutor
from .result import Result
from .session import run_master


def simulate(optimizer: Any, n_iterations: int, worker: Any, n_workers: int, duration: Duration,
             timeout: float | None = None, resume: bool = False, overwrite: bool = False,
             previous_result: Any = None) -> Result:
    """Run ``optimizer`` (a :class:`~mpibohb.BOHB`, :class:`~mpibohb.HyperBand` or
    :class:`~mpibohb.RandomSearch`) for ``n_iterations`` with ``n_workers`` virtual workers, on a
    simulated clock; return its :class:`~mpibohb.Result` (time stamps in simulated seconds).

    Args:
        worker: what ``run`` takes: a :class:`~mpibohb.Worker` or a function; it gives the losses.
        duration: ``duration(config, budget)``: the simulated seconds of one evaluation (>= 0).
        timeout: an evaluation whose duration exceeds it fails with a timeout, at the limit
            (``None``, ``inf`` or more than 10**8 s: no limit, as for ``run``).
        resume, overwrite, previous_result: as for ``run`` (with the optimizer's ``run_dir``); a
            resume's simulated clock goes on from the journal's latest time stamp.

    Raises:
        ValueError: an argument ``run`` would refuse (see ``run``), a bad ``optimizer`` or
            ``n_workers``, or a ``duration`` that is not a finite number of seconds >= 0.
        RuntimeError: ``duration`` raised (the message names the job; the error is chained).
        RunDirectoryError: ``run_dir`` holds a run made by ``run``, not simulated.
    """
    if not callable(getattr(optimizer, "prepare_run", None)):
        raise ValueError(f"optimizer must be a BOHB, HyperBand or RandomSearch, got {optimizer!r:.100}")
    n_workers = checks.integer("n_workers", n_workers, minimum=1)
    if not callable(duration):
        raise ValueError(f"duration must be a function duration(config, budget) -> seconds, got {duration!r}")
    setup = optimizer.prepare_run(n_iterations, worker, timeout, resume, overwrite, previous_result)
    clock = SimulatedClock()  # a resume moves it on to the journal's latest time stamp
    executor = SimulatedExecutor(setup.compute, n_workers, duration, clock, setup.working_directory, setup.timeout,
                                 setup.checkpoint_root)
    with sigint_watch():  # a KeyboardInterrupt raised by compute is a failed run, a real Ctrl-C is not
        return run_master(optimizer, executor, setup.n_iterations, n_workers, setup.resume, setup.overwrite,
                          setup.previous_result, clock, setup.checkpoint_root)


def busy_fraction(result: Result, n_workers: int, until: Callable[[Result], float] | None = None) -> float:
    """The share of ``n_workers`` workers' time that went into evaluations, from the run's start to
    its last finished evaluation (or to ``until(result)``)."""
    runs = result.get_all_runs()
    if not runs:
        return 0.0
    end = until(result) if until is not None else max(run.time_stamps["finished"] for run in runs)
    busy = sum(min(run.time_stamps["finished"], end) - run.time_stamps["started"] for run in runs
               if run.time_stamps["started"] < end)
    return busy / (n_workers * end) if end > 0 else 0.0
