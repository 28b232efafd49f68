"""Asynchronous successive halving (``asynchronous=True``) and runs on simulated time."""

from __future__ import annotations

import math
import sys
from collections import Counter

import ConfigSpace as CS
import numpy as np
import pytest
from cli_in_process import run_cli
from mpi_launch import ROOT, run_command

import mpibohb.replay
from mpibohb import BOHB, HyperBand, RandomSearch, load_result, simulate
from mpibohb.ask_tell import Optimizer
from mpibohb.brackets import Job
from mpibohb.journal import JournalError, read_journal
from mpibohb.scheduling.asynchronous import Asynchronous
from mpibohb.scheduling.run_times import RunTimeSpread, run_time
from mpibohb.simulation import busy_fraction

TOY = f"{ROOT / 'examples' / 'toy_worker.py'}:MyWorker"


def space() -> CS.ConfigurationSpace:
    return CS.ConfigurationSpace({"x": (0.0, 1.0), "y": (-1.0, 1.0), "c": ["a", "b"]}, seed=0)


def loss_of(config: dict, budget: float) -> float:
    return (config["x"] - 0.2) ** 2 + config["y"] ** 2 + (0.1 if config["c"] == "b" else 0.0) + 1.0 / budget


def counts(jobs) -> Counter:
    return Counter(job.budget for job in jobs)


def assert_nothing_to_hand_out(optimizer: Optimizer) -> None:
    """A worker may wait only when no configuration can start and none can be promoted (its rung's
    top 1/eta, room in the next rung): asynchronous successive halving never leaves one idle."""
    schedule = optimizer.schedule
    if not isinstance(schedule, Asynchronous):
        return
    assert len(schedule.brackets) >= schedule.session_iterations and all(
        bracket.full for bracket in schedule.brackets.values()), "a worker waits while a configuration could start"
    for bracket in schedule.brackets.values():
        if bracket.ended:
            continue
        for rung, (room, planned) in enumerate(zip(bracket.plan.num_configs[1:], bracket.plan.num_configs)):
            assert bracket.rungs[rung].promotable(bracket.eta, room, planned) is None, \
                f"a worker waits while bracket {bracket.iteration} could promote from rung {rung}"


def run_with_random_order(optimizer: Optimizer, workers: int, seed: int, check_top: bool = True) -> list[Job]:
    """``workers`` jobs at a time, the one that finishes next chosen at random (stragglers
    anywhere); checks, at every promotion, that the promoted configuration was in the top
    ``1/eta`` of its rung's results so far."""
    rng = np.random.default_rng(seed)
    optimizer.start_session(optimizer.n_iterations, workers)
    running: list[Job] = []
    handed_out: list[Job] = []
    results: dict[tuple[int, float], dict[tuple, float]] = {}  # (bracket, budget) -> config_id -> loss so far
    last_budget: dict[tuple, float] = {}  # config_id -> the budget it last ran at
    while not optimizer.finished:
        while len(running) < workers:
            job = optimizer.ask()
            if job is None:
                assert_nothing_to_hand_out(optimizer)
                break
            if check_top and job.config_id in last_budget:  # a promotion
                lower = last_budget[job.config_id]
                rung = results.get((job.config_id[0], lower), {})
                assert job.config_id in rung, "promoted before its result at the budget below came"
                allowed = math.floor(len(rung) / 3 + 1e-9)
                assert allowed >= 1, f"promoted with {len(rung)} results at its rung: fewer than eta"
                assert rung[job.config_id] <= sorted(rung.values())[allowed - 1], "promoted from outside the top 1/eta"
            last_budget[job.config_id] = job.budget
            running.append(job)
            handed_out.append(job)
        assert running, "nothing running and nothing handed out, yet the run is not finished"
        job = running.pop(int(rng.integers(len(running))))
        loss = loss_of(job.config, job.budget)
        results.setdefault((job.config_id[0], job.budget), {})[job.config_id] = loss
        optimizer.tell(job, loss)
    assert optimizer.ask() is None and optimizer.num_running == 0
    return handed_out


@pytest.mark.parametrize("family", [HyperBand, BOHB, RandomSearch])
@pytest.mark.parametrize("workers", [1, 4, 32])
def test_asynchronous_runs_what_synchronous_runs_and_promotes_only_from_the_top(family, workers):
    def optimizer(asynchronous: bool) -> Optimizer:
        return family(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=1,
                      asynchronous=asynchronous).make_optimizer(4)

    jobs = run_with_random_order(optimizer(True), workers, seed=workers)
    keys = [(job.config_id, job.budget) for job in jobs]
    assert len(keys) == len(set(keys)), "a configuration ran twice at one budget"
    assert counts(jobs) == counts(run_with_random_order(optimizer(False), workers, seed=workers))
    for config_id in {job.config_id for job in jobs}:  # each configuration climbs the ladder in order
        budgets = [job.budget for job in jobs if job.config_id == config_id]
        assert budgets == sorted(budgets)


@pytest.mark.parametrize("eta", [1.5, 2.5, math.e])
def test_with_a_non_integer_eta_asynchronous_runs_every_planned_evaluation(eta):
    # floor(n_k / eta) can be less than the plan's n_{k+1}: a complete rung promotes up to the plan
    def optimizer(asynchronous: bool) -> Optimizer:
        return HyperBand(configspace=space(), min_budget=1, max_budget=40, eta=eta, seed=3,
                         asynchronous=asynchronous).make_optimizer(6)

    for workers in (1, 8):
        jobs = run_with_random_order(optimizer(True), workers, seed=workers, check_top=False)
        assert counts(jobs) == counts(run_with_random_order(optimizer(False), workers, seed=workers, check_top=False))


@pytest.mark.parametrize("family", [HyperBand, BOHB])
def test_with_one_worker_asynchronous_evaluates_exactly_what_synchronous_does(family):
    # a promotion from a complete rung comes first: with one worker every rung completes before
    # its bracket goes on, as in HpBandSter's schedule, so the model and the decisions are the same
    def evaluations(asynchronous: bool) -> list:
        res = family(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=6,
                     asynchronous=asynchronous).run(n_iterations=7, worker=loss_of)
        return [(run.config_id, run.budget, run.loss) for run in res.get_all_runs()]

    assert evaluations(True) == evaluations(False)


def test_asynchronous_and_fill_tail_together_are_refused():
    with pytest.raises(ValueError, match="asynchronous.*fill_tail|fill_tail.*asynchronous"):
        HyperBand(configspace=space(), min_budget=1, max_budget=27, asynchronous=True, fill_tail=True)


def test_one_simulated_worker_evaluates_what_a_serial_run_evaluates(tmp_path):
    def make() -> HyperBand:
        return HyperBand(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=4, asynchronous=True)

    def compute(config, budget, **_):
        return loss_of(config, budget)

    serial = make().run(n_iterations=4, worker=compute)
    simulated = simulate(make(), n_iterations=4, worker=compute, n_workers=1, duration=lambda c, b: b)
    assert [(r.config_id, r.budget, r.loss) for r in simulated.get_all_runs()] == \
        [(r.config_id, r.budget, r.loss) for r in serial.get_all_runs()]
    assert busy_fraction(simulated, 1) == pytest.approx(1.0)


def test_a_resume_with_another_schedule_is_refused(tmp_path):
    def compute(config, budget, **_):
        return loss_of(config, budget)

    HyperBand(configspace=space(), min_budget=1, max_budget=27, seed=4, run_dir=tmp_path / "run").run(
        n_iterations=1, worker=compute)
    with pytest.raises(Exception, match="asynchronous"):
        HyperBand(configspace=space(), min_budget=1, max_budget=27, seed=4, run_dir=tmp_path / "run",
                  asynchronous=True).run(n_iterations=2, worker=compute, resume=True)


def test_the_run_time_spread_is_pooled_over_budgets_relative_to_their_means():
    spread = RunTimeSpread()
    for seconds in (1.0, 1.0, 1.0):
        spread.add(1, None, seconds)
    for seconds in (30.0, 30.0):  # another budget, or one continued from a checkpoint: its own mean
        spread.add(3, 1, seconds)
    assert spread.coefficient_of_variation(3) == 0.0
    assert spread.coefficient_of_variation(4) is None  # 3 degrees of freedom: too few to tell
    spread.add(9, None, 1.0)
    spread.add(9, None, 3.0)  # mean 2, standard deviation sqrt(2)
    assert spread.coefficient_of_variation(4) == pytest.approx(math.sqrt(2 / 4 / 4))
    assert run_time(None, 5.0, 9.0) is None and run_time(0.3, 5.0, 9.0) == 4.0  # a failed job says nothing


TAIL_ITERATIONS = 40


def tail_run(run_dir, spread: float, n_workers: int = 8):
    """An asynchronous HyperBand simulated on 8 workers, long enough for a tail; run time = budget x f,
    f = exp(spread x z), z a function of the configuration (standard deviation about 1)."""
    def make() -> HyperBand:
        return HyperBand(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=4, asynchronous=True,
                         run_dir=run_dir)

    def duration(config, budget):
        return budget * math.exp(spread * 3.4 * (config["x"] - 0.5))

    return make, lambda **kwargs: simulate(make(), n_iterations=TAIL_ITERATIONS, worker=lambda c, b: loss_of(c, b),
                                           n_workers=n_workers, duration=duration, **kwargs)


@pytest.mark.parametrize("spread, order", [(0.0, "chain"), (1.0, "spread")])
def test_the_tail_order_comes_from_the_run_times_and_the_journal_replays_it(tmp_path, monkeypatch, caplog, spread,
                                                                           order):
    """Equal run times: the tail starts its brackets longest chain first; spread run times: the single
    jobs first. The run times reach the policy from the journal in a replay, which takes the same
    decisions (a replay without them would not), and a run killed after the tail started resumes."""
    make, run = tail_run(tmp_path / "run", spread)
    with caplog.at_level("INFO", logger="mpibohb"):
        whole = run()
    said = "longest chain first" if order == "chain" else "single jobs of the largest budget first"
    assert sum("the tail starts (" in message and said in message for message in caplog.messages) == 1
    records = read_journal(tmp_path / "run")
    optimizer = make().make_optimizer(TAIL_ITERATIONS)
    mpibohb.replay.replay(optimizer, records)  # raises JournalError where it asks otherwise than the run did
    assert optimizer.finished and optimizer.schedule.tail_order == order
    if order == "chain":
        with monkeypatch.context() as patched:
            patched.setattr(mpibohb.replay, "run_time", lambda *_: None)
            with pytest.raises(JournalError, match="does not replay"):
                mpibohb.replay.replay(make().make_optimizer(TAIL_ITERATIONS), records)

    results = [i for i, record in enumerate(records) if record["type"] == "result"]
    kept = records[:results[int(len(results) * 0.9)] + 1]  # killed with a tenth of the results to come
    cut = make().make_optimizer(TAIL_ITERATIONS)
    mpibohb.replay.replay(cut, kept)
    assert cut.schedule.tail_order == order  # the tail had started before the kill
    journal = tmp_path / "run" / "journal.jsonl"
    journal.write_text("".join(journal.read_text().splitlines(keepends=True)[:len(kept)]))
    resumed = run(resume=True)
    evaluated = [(r.config_id, r.budget) for r in resumed.get_all_runs()]
    assert len(evaluated) == len(set(evaluated)) == len(whole.get_all_runs())


def test_an_asynchronous_run_resumes_where_it_stopped(tmp_path):
    def compute(config, budget, **_):
        return loss_of(config, budget)

    def make(run_dir) -> HyperBand:
        return HyperBand(configspace=space(), min_budget=1, max_budget=27, seed=4, run_dir=run_dir, asynchronous=True)

    whole = make(tmp_path / "whole").run(n_iterations=4, worker=compute)
    make(tmp_path / "parts").run(n_iterations=2, worker=compute)
    resumed = make(tmp_path / "parts").run(n_iterations=4, worker=compute, resume=True)
    assert [(r.config_id, r.budget, r.loss) for r in resumed.get_all_runs()] == \
        [(r.config_id, r.budget, r.loss) for r in whole.get_all_runs()]


def test_the_command_line_runs_asynchronously(tmp_path):
    run_dir = tmp_path / "run"
    base = ["--worker", TOY, "--min-budget", "9", "--max-budget", "243", "--run-dir", str(run_dir)]
    finished = run_cli("run", *base, "--n-iterations", "2", "--n-workers", "4", "--asynchronous")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert load_result(run_dir).HB_config["asynchronous"] is True
    assert ", asynchronous" in finished.stderr  # the settings line
    assert len(load_result(run_dir).get_all_runs()) == 57
    report, status = run_cli("report", str(run_dir)), run_cli("status", str(run_dir))
    assert report.returncode == 0 and "asynchronous" in report.stdout, report.stdout + report.stderr
    assert status.returncode == 0 and "finished" in status.stdout, status.stdout + status.stderr
    refused = run_cli("run", *base, "--n-iterations", "2", "--quiet")
    assert refused.returncode != 0 and "asynchronous: True -> False" in refused.stderr


def simulated(run_dir=None, n_iterations: int = 2, **kwargs):
    optimizer = HyperBand(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=4, asynchronous=True,
                          run_dir=run_dir, **kwargs.pop("optimizer", {}))
    return simulate(optimizer, n_iterations=n_iterations, worker=lambda c, b: loss_of(c, b), n_workers=4,
                    duration=kwargs.pop("duration", lambda c, b: b * (1 + c["x"])), **kwargs)


@pytest.mark.parametrize("arguments, message", [
    ({"resume": True, "overwrite": True}, "contradict each other"),
    ({"resume": True, "overwrite": "False"}, "overwrite must be True or False"),
    ({"resume": "no"}, "resume must be True or False"),
])
def test_simulate_refuses_what_run_refuses_and_the_run_it_was_to_continue_stays(tmp_path, arguments, message):
    simulated(tmp_path / "run")
    before = (tmp_path / "run" / "journal.jsonl").read_bytes()
    with pytest.raises(ValueError, match=message):
        simulated(tmp_path / "run", n_iterations=3, **arguments)
    assert (tmp_path / "run" / "journal.jsonl").read_bytes() == before
    with pytest.raises(ValueError, match="resume=True needs the optimizer's run_dir"):
        simulated(None, resume=True)
    with pytest.raises(ValueError, match="optimizer must be a BOHB, HyperBand or RandomSearch, got None"):
        simulate(None, n_iterations=1, worker=lambda c, b: 0.0, n_workers=1, duration=lambda c, b: b)


def test_a_resumed_simulation_goes_on_from_the_journals_clock(tmp_path):
    first = simulated(tmp_path / "run")
    end = max(run.time_stamps["finished"] for run in first.get_all_runs())
    resumed = simulated(tmp_path / "run", n_iterations=4, resume=True)
    new = [run for run in resumed.get_all_runs() if run.config_id[0] >= 2]
    assert new and min(run.time_stamps["started"] for run in new) >= end
    assert busy_fraction(resumed, 4) <= 1.0
    report = run_cli("report", str(tmp_path / "run"))
    assert report.returncode == 0 and "created: by mpibohb.simulate (time stamps in simulated seconds)" in report.stdout


def test_simulated_and_real_sessions_never_share_a_run_dir(tmp_path):
    simulated(tmp_path / "simulated")
    with pytest.raises(mpibohb.journal.RunDirectoryError, match="it was simulated"):
        HyperBand(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=4, asynchronous=True,
                  run_dir=tmp_path / "simulated").run(n_iterations=3, worker=lambda c, b: loss_of(c, b), resume=True)
    HyperBand(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=4, asynchronous=True,
              run_dir=tmp_path / "real").run(n_iterations=1, worker=lambda c, b: loss_of(c, b))
    before = (tmp_path / "real" / "journal.jsonl").read_bytes()
    with pytest.raises(mpibohb.journal.RunDirectoryError, match="it was run for real"):
        simulated(tmp_path / "real", n_iterations=3, resume=True)
    assert (tmp_path / "real" / "journal.jsonl").read_bytes() == before


def test_simulate_takes_runs_working_directory_and_timeout(tmp_path):
    seen = set()

    def compute(config, budget, working_directory):
        seen.add(working_directory)
        return loss_of(config, budget)

    optimizer = HyperBand(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=4,
                          working_directory=tmp_path / "work")
    result = simulate(optimizer, n_iterations=1, worker=compute, n_workers=2, duration=lambda c, b: b,
                      timeout=math.inf)  # no limit, as for run
    assert seen == {str(tmp_path / "work")} and not result.failed_runs()


@pytest.mark.parametrize("duration, error, message", [
    (lambda c, b: c["absent"], RuntimeError, r"duration\(config, budget\) raised KeyError: 'absent' for \(0, 0, 0\) "
                                             r"at budget 1"),
    (lambda c, b: True, ValueError, "must be a finite number of seconds >= 0, got True"),
    (lambda c, b: "5", ValueError, "must be a finite number of seconds >= 0, got '5'"),
    (lambda c, b: 1e308, ValueError, r"the simulated clock \(1e\+308 s\) would pass every finite time"),
    (lambda c, b: 10**400, ValueError, "must be a finite number of seconds >= 0, got 1000"),
    (lambda c, b: np.array([1.0, 2.0]), ValueError,
     r"must be a finite number of seconds >= 0, got array\(\[1\., 2\.\]\)"),
])
def test_a_bad_duration_is_named_with_its_job(duration, error, message):
    with pytest.raises(error, match=message):
        simulated(duration=duration)


def test_a_duration_may_be_any_one_real_number():
    import decimal

    plain = simulated(duration=lambda c, b: 2.5 * b)
    for kind in (np.float32, np.array, decimal.Decimal, lambda seconds: np.array([seconds])):
        other = simulated(duration=lambda c, b, kind=kind: kind(str(2.5 * b)) if kind is decimal.Decimal
                          else kind(2.5 * b))
        assert [run.time_stamps for run in other.get_all_runs()] == [run.time_stamps for run in plain.get_all_runs()]


def test_a_real_ctrl_c_stops_a_simulation_without_run_dir_and_records_no_failure():
    import os
    import signal

    evaluations = []

    def compute(config, budget):
        evaluations.append(budget)
        if len(evaluations) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends
        return loss_of(config, budget)

    with pytest.raises(KeyboardInterrupt):
        simulate(HyperBand(configspace=space(), min_budget=1, max_budget=27, seed=4), n_iterations=4,
                 worker=compute, n_workers=4, duration=lambda c, b: b)
    assert len(evaluations) == 3


@pytest.mark.processes
@pytest.mark.timeout(120)
def test_a_job_that_kills_a_simulation_is_recorded_failed_at_a_simulated_time(tmp_path):
    """Three deaths while the job at budget 27 ran, then a resume records it as failed: its time
    stamps are simulated seconds, like the rest of the journal (a real time would mix clocks)."""
    run_dir = tmp_path / "run"
    command = [sys.executable, str(ROOT / "tests" / "scripts" / "dying_simulation.py"), str(run_dir)]
    ends = [run_command(command, timeout=60) for _ in range(4)]
    assert [end.returncode for end in ends] == [7, 7, 7, 0], [end.stderr[-2000:] for end in ends]
    records = read_journal(run_dir)
    failed = [r for r in records if r["type"] == "result" and r["error"]]
    assert len(failed) == 1 and failed[0]["budget"] == 27 and "AbandonedJob" in failed[0]["error"]
    latest = max(r["finished"] for r in records if r["type"] == "result" and not r["error"])
    assert latest <= failed[0]["started"] == failed[0]["finished"] < 10 * latest
