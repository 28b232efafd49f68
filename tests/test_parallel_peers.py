"""The peers' simulated parallel driver (benchmarks/parallel_peers.py), without the peers' virtualenv:
a stand-in with DEHB's ask and tell checks the order of results and the budget stop."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import parallel_peers, problems
from benchmarks.run_times import duration_of


class AskTell:
    """DEHB's interface: ask() hands out a job; tell(job, result) takes its result."""

    def __init__(self, fidelities: list[float]) -> None:
        self.fidelities, self.asked, self.told, self.out = fidelities, 0, [], 0
        self.most_out = 0

    def ask(self) -> dict[str, Any]:
        fidelity = self.fidelities[self.asked % len(self.fidelities)]
        self.asked += 1
        self.out += 1
        self.most_out = max(self.most_out, self.out)
        return {"config": {"x1": 0.1 * (self.asked % 7), "x2": 0.5}, "fidelity": fidelity, "number": self.asked}

    def tell(self, job: dict[str, Any], result: dict[str, float]) -> None:
        self.out -= 1
        self.told.append((job["number"], result["cost"]))


@pytest.mark.parametrize("workers", [1, 3])
def test_jobs_end_in_simulated_time_order_with_at_most_k_out(workers):
    problem = problems.branin()
    ladder = parallel_peers.rungs(problem)
    engine = AskTell([ladder[-1], ladder[0], ladder[1]])
    recorder = parallel_peers.SimulatedRecorder(problem, 0)
    pool = parallel_peers.Workers(workers)
    budget = 40 * ladder[-1]
    parallel_peers._drive_dehb(engine, parallel_peers.dehb_objective(recorder, ladder), recorder, pool, budget,
                               duration_of(1.0))
    finished = [run["finished"] for run in recorder.runs]
    took = [duration_of(1.0)(run["config"], run["budget"]) for run in recorder.runs]
    assert finished == sorted(finished) and finished[-1] == recorder.now > 0
    assert all(end >= seconds for end, seconds in zip(finished, took))  # no job ends before its run time
    if workers == 1:  # each job starts when the one before ends
        assert finished == pytest.approx([sum(took[: i + 1]) for i in range(len(took))])
    assert engine.most_out == workers and engine.out == 0  # every job asked was told
    assert len(engine.told) == engine.asked == len(recorder.runs)
    # asking stops once the finished evaluations' charge reaches the budget; the running ones finish
    charged_before_last_ask = sum(run["charged"] for run in recorder.runs[: engine.asked - workers])
    assert charged_before_last_ask < budget <= recorder.charged
    if workers == 1:  # one worker: each job ends before the next is asked, so results come in asking order
        assert [number for number, _ in engine.told] == list(range(1, engine.asked + 1))
    else:  # a long job asked first ends after shorter ones asked later
        assert [number for number, _ in engine.told] != list(range(1, engine.asked + 1))


def test_a_job_takes_its_budget_times_the_configurations_factor():
    pool = parallel_peers.Workers(2)
    duration = duration_of(1.0)
    slow, fast = {"x": 0.1}, {"x": 0.9}
    for config in (slow, fast):
        pool.start(duration(config, 9.0), config)
    ends = [pool.next_ending() for _ in range(2)]
    assert [end for end, _ in ends] == sorted(duration(c, 9.0) for c in (slow, fast))
    assert duration(slow, 9.0) == pytest.approx(3 * duration(slow, 3.0))
    assert duration_of(0.0)(slow, 9.0) == 9.0 and not pool.busy() and pool.free == 2
