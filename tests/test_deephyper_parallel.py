"""DeepHyper's simulated parallel mode (benchmarks/deephyper_parallel.py) without DeepHyper: its
virtual clock with plain asyncio, and the run function's rungs on it with a stand-in job that has
the interface of a DeepHyper job."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from benchmarks import deephyper_parallel, deephyper_peer, problems
from benchmarks.parallel_peers import SimulatedRecorder
from benchmarks.run_times import duration_of

ROOT = Path(__file__).resolve().parent.parent


def on_virtual_clock(main: Any) -> Any:
    loop = deephyper_parallel.VirtualClockLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def test_sleepers_wake_in_simulated_time_order_at_their_simulated_times():
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        woke.append((name, asyncio.get_running_loop().time()))

    async def main() -> None:
        await asyncio.gather(sleeper("a", 5.0), sleeper("b", 1.0), sleeper("c", 3.0), sleeper("d", 86_400.0 * 7))

    on_virtual_clock(main)  # a week of simulated sleep: only a virtual clock ends before pytest's timeout
    assert [name for name, _ in woke] == ["b", "c", "a", "d"]
    assert [t for _, t in woke][:3] == pytest.approx([1.0, 3.0, 5.0])
    assert woke[-1][1] == pytest.approx(86_400.0 * 7)


def test_the_policy_hands_out_virtual_clock_loops_and_a_wake_from_a_thread_does_not_move_the_clock():
    loop = deephyper_parallel.VirtualClockPolicy().new_event_loop()
    assert isinstance(loop, deephyper_parallel.VirtualClockLoop)

    async def main() -> tuple[str, float]:
        running = asyncio.get_running_loop()
        answer: asyncio.Future[str] = running.create_future()
        threading.Timer(0.05, running.call_soon_threadsafe, (answer.set_result, "woken")).start()
        result = await answer  # no timer pending: the loop waits in real time for the thread
        return result, running.time()

    try:
        result, at = loop.run_until_complete(main())
    finally:
        loop.close()
    assert result == "woken" and at == 0.0


LATE_SLEEP = """
import asyncio
from benchmarks.deephyper_parallel import VirtualClockLoop
loop = VirtualClockLoop()
loop.now = 1.7e7
loop.run_until_complete(asyncio.sleep(0.3))
print(loop.time())
"""


@pytest.mark.processes
def test_timers_late_in_a_long_simulation_still_fire():
    """Past 2**24 s a clock resolution of 1e-9 vanishes in the sum now + resolution, and a timer
    due now never ran: the loop spun (found in review). In a subprocess, so that a spin ends."""
    finished = subprocess.run([sys.executable, "-c", LATE_SLEEP], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert finished.returncode == 0, finished.stderr
    assert float(finished.stdout) == pytest.approx(1.7e7 + 0.3)


def test_a_simulation_past_the_latest_time_is_refused():
    loop = deephyper_parallel.VirtualClockLoop()
    loop.now = deephyper_parallel.LATEST - 1.0
    try:
        with pytest.raises(OverflowError, match="simulated time past"):
            loop.run_until_complete(asyncio.sleep(2.0))
    finally:
        loop.close()


class StandInJob:
    """A DeepHyper job's interface as the run function uses it; the stopper halts at each rung
    (in steps) and stops the job after ``rungs_allowed`` records."""

    def __init__(self, parameters: dict[str, Any], steps: list[float], rungs_allowed: int) -> None:
        self.parameters, self.records = parameters, []
        self.stopper = self
        self._steps, self._allowed = steps, rungs_allowed

    def _compute_halting_budget(self) -> float:
        return self._steps[len(self.records)]

    def record(self, step: float, objective: float) -> None:
        self.records.append((step, objective))

    def stopped(self) -> bool:
        return len(self.records) >= self._allowed


def test_each_rung_is_evaluated_when_its_simulated_run_time_has_passed():
    problem = problems.branin()
    ladder = [1.0, 3.0, 9.0, 27.0]
    recorder, duration = SimulatedRecorder(problem, 0), duration_of(1.0)
    run = deephyper_peer.run_function(recorder, ladder, math.inf, wait=deephyper_parallel.simulated_wait(recorder, 1.0))
    configs = [{"x1": 0.1, "x2": 0.2}, {"x1": 0.7, "x2": 0.4}]
    jobs = [StandInJob(configs[0], ladder, 3), StandInJob(configs[1], ladder, 2)]

    async def main() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(run(job) for job in jobs)))

    outcomes = on_virtual_clock(main)
    ends = {json_key(c): [sum(duration(c, b - a) for a, b in zip([0.0, *ladder], ladder[: k + 1]))
                         for k in range(rungs)] for c, rungs in ((configs[0], 3), (configs[1], 2))}
    expected = sorted((t, json_key(c), ladder[k]) for c in configs for k, t in enumerate(ends[json_key(c)]))
    got = [(run["finished"], json_key(run["config"]), run["budget"]) for run in recorder.runs]
    assert [g[1:] for g in got] == [e[1:] for e in expected]  # the rungs of both jobs interleave by end time
    assert [g[0] for g in got] == pytest.approx([e[0] for e in expected])
    assert [o["metadata"]["last_rung"] for o in outcomes] == [9.0, 3.0]
    assert [len(job.records) for job in jobs] == [3, 2]


def json_key(config: dict[str, Any]) -> str:
    return repr(sorted(config.items()))
