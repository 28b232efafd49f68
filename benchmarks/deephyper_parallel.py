"""DeepHyper's CBO with its successive-halving stopper on K simulated workers, in its own
asynchronous mode, as JSON (``benchmarks/parallel_peers.py`` does the same for Optuna and DEHB).

    benchmarks/.deephyper-venv/bin/python -m benchmarks.deephyper_parallel --problem NAME --seed S \\
        --total_budget B --workers K [--sigma 1.0] --out FILE.json

Runs inside benchmarks/.deephyper-venv; it does not import mpibohb. The search is
``benchmarks.deephyper_peer.run_deephyper``'s (CBO, the stopper placed at the problem's rungs,
``acq_optimizer="sampling"``) with ``num_workers=K`` in DeepHyper's serial evaluator, which keeps K
jobs (coroutines of the run function) going at once and asks CBO for a new configuration as each
one ends: DeepHyper's asynchronous search, as its MPI evaluator runs it, with K workers.

Each rung of a job first sleeps ``increment * exp(sigma * z(config))`` seconds (``run_times.py``:
the run times every engine gets in ``benchmarks/parallel_quality.py``) on a virtual clock: an
asyncio event loop whose ``time()`` jumps to the next timer when nothing else is ready
(:class:`VirtualClockLoop`), so the K jobs end in the order a cluster would end them, in no real
time. As for the other peers no engine's own compute time is simulated: CBO's fitting and asking
happen between turns of the loop, with the clock stopped. Once the increments charged reach
``--total_budget`` the search stops at its next check and each job still running ends after its
current rung (seen at K = 32 on counting ones N = 4, seed 0: 31 rungs past the total in one run,
67 in another; the records up to the total were the same). The scoring never reads past
mpibohb's total, so the rungs past it do not count.

The output is ``benchmarks/deephyper_peer.py``'s, with ``finished`` the simulated time and
``workers`` and ``sigma`` added.
"""

from __future__ import annotations

import asyncio
import math
import selectors
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.deephyper_peer import ACQ_OPTIMIZER, ENGINE, OPTIMIZER, run_deephyper
from benchmarks.engines import Recorder, write_record
from benchmarks.parallel_peers import SimulatedRecorder, simulated_run_parser
from benchmarks.problems import Problem, get_problem
from benchmarks.run_times import duration_of

LATEST = 1e9  # simulated seconds; the loop's clock resolution (1e-6) must stay above the float spacing


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, when nothing is ready, moves its loop's clock on by the timeout instead of
    waiting for it."""

    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout is not None and timeout <= 0:
            return ready
        if timeout is None:  # no timer pending: only another thread can wake the loop, in real time
            return super().select(None)
        if not math.isfinite(self._loop.now + timeout) or self._loop.now + timeout > LATEST:
            raise OverflowError(f"simulated time past {LATEST:g} s: the virtual clock would stall")
        self._loop.now += timeout
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on simulated time: ``time()`` is ``now``, which jumps to the next timer when no
    callback is ready, so ``asyncio.sleep(t)`` takes ``t`` simulated seconds and no real ones."""

    def __init__(self) -> None:
        self.now = 0.0  # before the base class's __init__, which may read time()
        super().__init__(_JumpingSelector(self))
        # asyncio runs the timers due before now + resolution; at 1e-9 (the real clock's) that sum
        # rounds to now from 2**24 s on, and a timer due now would never run
        self._clock_resolution = 1e-6

    def time(self) -> float:
        return self.now


class VirtualClockPolicy(asyncio.DefaultEventLoopPolicy):
    """Hands out :class:`VirtualClockLoop` s (DeepHyper's evaluator makes its loop with
    ``asyncio.new_event_loop()``)."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return VirtualClockLoop()


def simulated_wait(recorder: SimulatedRecorder, sigma: float) -> Callable[[dict[str, Any], float], Awaitable[None]]:
    """The run function's ``wait``: sleep a rung's run time on the loop's clock, then set the
    recorder's time to the clock's, at which the rung is evaluated and recorded."""
    duration = duration_of(sigma)

    async def wait(config: dict[str, Any], increment: float) -> None:
        await asyncio.sleep(duration(config, increment))
        recorder.now = asyncio.get_running_loop().time()

    return wait


def run_parallel(problem: Problem, seed: int, total_budget: float, workers: int, sigma: float,
                 acq_optimizer: str = ACQ_OPTIMIZER) -> Recorder:
    """DeepHyper's asynchronous CBO with ``workers`` simulated workers, until the budget is spent."""
    recorder = SimulatedRecorder(problem, seed)
    wait = simulated_wait(recorder, sigma)

    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(VirtualClockPolicy())
    try:
        return run_deephyper(problem, seed, total_budget, acq_optimizer, workers=workers, into=recorder, wait=wait)
    finally:
        asyncio.set_event_loop_policy(previous)


def main(argv: list[str] | None = None) -> None:
    parser = simulated_run_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    if args.workers < 1 or args.sigma < 0:
        parser.error(f"--workers must be at least 1 and --sigma at least 0, got {args.workers} and {args.sigma}")
    problem = get_problem(args.problem)
    started = time.perf_counter()
    recorder = run_parallel(problem, args.seed, args.total_budget, args.workers, args.sigma)
    record = {"engine": ENGINE, "optimizer": OPTIMIZER, "problem": problem.name, "seed": args.seed,
              "workers": args.workers, "sigma": args.sigma, "wall": time.perf_counter() - started,
              "runs": recorder.runs}
    write_record(args.out, record)


if __name__ == "__main__":
    main(sys.argv[1:])
