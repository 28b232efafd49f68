"""Faults that must not wedge a run: torn journals, repeat crashes, odd user data, odd spaces."""

from __future__ import annotations

import builtins
import os
import signal
import sys
import threading
import time

import ConfigSpace as CS
import pytest
from cli_in_process import run_cli
from mpi_launch import SCRIPTS, run_command

from mpibohb import BOHB, load_result
from mpibohb.journal import read_journal


def loss(config, budget):
    return (config["x"] - 0.4) ** 2 + 1 / budget


def space():
    return CS.ConfigurationSpace({"x": (0.0, 1.0)})


def test_a_torn_last_line_that_parses_is_dropped_and_resumes_keep_working(tmp_path):
    run_dir = tmp_path / "run"
    whole = BOHB(space(), min_budget=1, max_budget=9, seed=4, run_dir=tmp_path / "whole").run(3, loss)
    BOHB(space(), min_budget=1, max_budget=9, seed=4, run_dir=run_dir).run(3, loss)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:15]) + lines[15].rstrip("\n"))  # a crash right after the closing brace
    assert len(read_journal(run_dir)) == 15
    BOHB(space(), min_budget=1, max_budget=9, seed=4, run_dir=run_dir).run(2, loss, resume=True)
    resumed = BOHB(space(), min_budget=1, max_budget=9, seed=4, run_dir=run_dir).run(3, loss, resume=True)
    key = [(r.config_id, r.budget, r.loss) for r in whole.get_all_runs()]
    assert [(r.config_id, r.budget, r.loss) for r in resumed.get_all_runs()] == key
    assert [(r.config_id, r.budget, r.loss) for r in load_result(run_dir).get_all_runs()] == key


def run_until_it_finishes(script: str, run_dir, stops: int, exit_code: int):
    """Run ``tests/scripts/<script> run_dir`` ``stops`` times, each ending with ``exit_code``, then
    once more to the end; the last run's output."""
    command = [sys.executable, str(SCRIPTS / script), str(run_dir)]
    for attempt in range(stops):
        ended = run_command(command, timeout=60)
        assert ended.returncode == exit_code, (attempt, ended.returncode, ended.stderr[-2000:])
    finished = run_command(command, timeout=60)
    assert finished.returncode == 0, finished.stderr[-2000:]
    return finished


@pytest.mark.processes
def test_a_job_that_kills_its_worker_three_times_is_recorded_as_failed(tmp_path):
    run_dir = tmp_path / "run"
    finished = run_until_it_finishes("crashing_run.py", run_dir, stops=3, exit_code=9)
    assert "RUNS 19 FAILED 1" in finished.stdout  # (1, 9, 3), 2 iterations: 9+3+1 + 5+1 = 19 runs
    failed = load_result(run_dir).failed_runs()
    assert [(r.config_id, r.budget) for r in failed] == [((0, 0, 2), 1.0)]
    assert "the run died 3 times while this job ran" in failed[0].error_logs


@pytest.mark.processes
def test_a_job_beside_one_that_kills_the_process_is_not_blamed_for_it(tmp_path):
    # Two threads: (0, 0, 2) kills the process while (0, 0, 3) sleeps beside it, twice. On its
    # last attempt each runs alone: (0, 0, 2) kills the process once more and is recorded as
    # failed on the next resume; (0, 0, 3) finishes.
    run_dir = tmp_path / "run"
    finished = run_until_it_finishes("bystander_run.py", run_dir, stops=3, exit_code=9)
    assert "RUNS 19 FAILED 1" in finished.stdout, finished.stdout
    runs = {(r.config_id, r.budget): r for r in load_result(run_dir).get_all_runs()}
    assert runs[((0, 0, 2), 1.0)].loss is None and "died 3 times" in runs[((0, 0, 2), 1.0)].error_logs
    assert runs[((0, 0, 3), 1.0)].loss is not None
    names = {((0, 0, 2), 1.0): "C", ((0, 0, 3), 1.0): "B"}
    sessions: list[list[str]] = []  # per session: C and B as they were handed out
    for record in read_journal(run_dir):
        if record["type"] == "session":
            sessions.append([])
        elif record["type"] in ("job", "resubmit") and (tuple(record["config_id"]), record["budget"]) in names:
            sessions[-1].append(names[(tuple(record["config_id"]), record["budget"])])
    # 1st session: both; 2nd: both again; 3rd: one suspect at a time, C dies; 4th: C abandoned, B runs
    assert sessions == [["C", "B"], ["C", "B"], ["C"], ["B"]], sessions


@pytest.mark.processes
def test_clean_stops_while_a_job_runs_do_not_count_as_its_crashes(tmp_path):
    # A stop (SIGTERM: a scancel, a time limit, Ctrl-C) records everything and interrupts the
    # running job on purpose: after three stops during the same job it still runs again.
    run_dir = tmp_path / "run"
    finished = run_until_it_finishes("stopping_run.py", run_dir, stops=3, exit_code=99)
    assert "RUNS 19 FAILED 0" in finished.stdout, finished.stdout
    assert [r["type"] for r in read_journal(run_dir)].count("stop") == 3


def test_info_that_json_cannot_hold_is_journaled_as_a_note(tmp_path):
    cyclic: dict = {}
    cyclic["self"] = cyclic

    class Unprintable:
        def __repr__(self):
            raise RuntimeError("no repr")

    # 10 ** 5000: Python writes no int of over 4,300 digits (results.json then crashed the run)
    infos = [cyclic, Unprintable(), {"nan": float("nan"), "lock": threading.Lock()}, {"n": 10 ** 5000}]

    def worker(config_id, config, budget, working_directory):
        return {"loss": loss(config, budget), "info": infos[config_id[2] % 4]}

    class W:
        compute = staticmethod(worker)

    res = BOHB(space(), min_budget=1, max_budget=9, seed=1, run_dir=tmp_path / "run").run(2, W())
    loaded = load_result(tmp_path / "run")
    assert len(loaded.get_all_runs()) == len(res.get_all_runs()) == 19
    assert all(r.loss is not None for r in loaded.get_all_runs())
    texts = [str(r.info) for r in loaded.get_all_runs()]
    assert any("no repr" in t or "repr fails" in t for t in texts)
    # NaN as the string "nan" (strict JSON has no NaN), the lock as its repr
    assert any(isinstance(r.info, dict) and r.info.get("nan") == "nan" and "_thread.lock" in r.info.get("lock", "")
               for r in loaded.get_all_runs()), texts


@pytest.mark.parametrize("model", ["hpbandster", "tpe"])
def test_a_conditional_constant_does_not_break_model_proposals(model):
    cs = CS.ConfigurationSpace()
    a = CS.CategoricalHyperparameter("a", ["x", "y"], default_value="x")
    c = CS.Constant("c", 5)
    cs.add([a, c, CS.UniformFloatHyperparameter("u", 0.0, 1.0)])
    cs.add(CS.EqualsCondition(c, a, "y"))

    def objective(config, budget):
        return config["u"] + (0.0 if config["a"] == "y" else 0.5) + 1 / budget

    res = BOHB(cs, min_budget=1, max_budget=9, seed=0, random_fraction=0.0, model=model).run(
        n_iterations=4, worker=objective)
    assert not res.failed_runs()
    model_picks = [e for e in res.get_id2config_mapping().values() if e["config_info"]["model_based_pick"]]
    assert model_picks and any(e["config"].get("c") == 5 for e in model_picks)


def test_a_run_in_another_thread_records_a_job_past_its_timeout_and_returns():
    """Outside the main thread no SIGALRM interrupts a job (a Dask or Ray task, a web handler): the
    job past its timeout is recorded failed at its limit, and run returns to its caller; before, the
    watchdog ended the whole process, the caller's application with it."""
    release = threading.Event()

    def compute(config_id, config, budget):
        if tuple(config_id) == (0, 0, 1) and budget == 1:
            release.wait(30)  # past the timeout: a job stuck where nothing can interrupt it
        return loss(config, budget)

    returned: list = []
    caller = threading.Thread(target=lambda: returned.append(
        BOHB(space(), min_budget=1, max_budget=9, seed=1).run(n_iterations=1, worker=compute, timeout=0.5)))
    caller.start()
    caller.join(timeout=60)
    release.set()
    assert not caller.is_alive() and returned, "run did not return"
    failed = returned[0].failed_runs()
    assert [(run.config_id, run.budget) for run in failed] == [((0, 0, 1), 1.0)]
    assert "JobTimeoutError" in failed[0].error_logs
    serial = BOHB(space(), min_budget=1, max_budget=9, seed=1).run(n_iterations=1, worker=compute)
    assert len(returned[0].get_all_runs()) == len(serial.get_all_runs())


@pytest.mark.processes
@pytest.mark.timeout(120)
def test_an_evaluation_stuck_past_its_timeout_ends_a_serial_run_and_says_what_is_kept(tmp_path):
    """Stuck where SIGALRM cannot reach, the watchdog thread ends the process: never a hang. Without
    a run_dir the message says the results are lost instead of offering a resume; with one, status
    says that the watchdog ended the run, not that it was killed."""
    script = str(SCRIPTS / "stuck_run.py")
    lost = run_command([sys.executable, script, "none"], timeout=50)
    assert lost.returncode == 1 and "STUCK" in lost.stdout and "C CALL RETURNED" not in lost.stdout
    assert "the run had no run_dir, so its results are lost" in lost.stderr, lost.stderr[-2000:]
    assert "resume=True" not in lost.stderr
    kept = run_command([sys.executable, script, str(tmp_path / "kept")], timeout=50)
    assert kept.returncode == 1 and "it is recorded as failed: run again with resume=True" in kept.stderr
    status = run_cli("status", str(tmp_path / "kept"))
    assert "was ended by its watchdog: a serial evaluation was stuck past its timeout" in status.stdout, status.stdout


EXCEPTION_GROUP = getattr(builtins, "BaseExceptionGroup", None)  # Python 3.11 and later


class UnreadableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str exploded")


def raise_odd(kind: str):
    """A compute raising what odd code raises: an exception whose ``__str__`` raises, a
    ``GeneratorExit``, an exception group (anyio/trio wrap a cancellation in one)."""
    def compute(config, budget):
        if config["x"] < 0.5:
            if kind == "unreadable":
                raise UnreadableError()
            if kind == "generator_exit":
                raise GeneratorExit()
            raise EXCEPTION_GROUP("task group", [KeyboardInterrupt(), ValueError("bad batch")])
        return config["x"]
    return compute


@pytest.mark.parametrize("kind", ["unreadable", "generator_exit", pytest.param(
    "group", marks=pytest.mark.skipif(EXCEPTION_GROUP is None, reason="exception groups need Python 3.11"))])
def test_odd_exceptions_of_compute_are_failed_runs_and_a_resume_goes_on(tmp_path, kind):
    """They crashed the optimizer, and every resume crashed again on the same job (helper-71)."""
    run_dir = tmp_path / "run"
    first = BOHB(space(), min_budget=1, max_budget=9, seed=2, run_dir=run_dir).run(1, raise_odd(kind))
    failed = [r for r in first.get_all_runs() if r.loss is None]
    assert failed and len(failed) < len(first.get_all_runs())
    assert all(r.error_logs.split(" ")[0] in ("UnreadableError", "GeneratorExit", "BaseExceptionGroup")
               for r in failed), failed[0].error_logs
    again = BOHB(space(), min_budget=1, max_budget=9, seed=2, run_dir=run_dir).run(2, raise_odd(kind), resume=True)
    assert len(again.get_all_runs()) > len(first.get_all_runs())


def test_a_huge_error_message_is_stored_shortened(tmp_path):
    def compute(config, budget):
        raise ValueError("x" * 3_000_000)
    result = BOHB(space(), min_budget=1, max_budget=9, seed=2, run_dir=tmp_path / "run").run(1, compute)
    errors = [r.error_logs for r in result.get_all_runs()]
    assert errors and all(20_000 <= len(e) < 21_000 and "characters left out" in e for e in errors)
    assert (tmp_path / "run" / "journal.jsonl").stat().st_size < 2_000_000


def test_a_timeout_that_compute_s_except_exception_catches_still_ends_the_evaluation():
    """A training loop that skips failing batches (``except Exception``) swallowed the timeout and
    ran on, until the serial watchdog ended the whole process."""
    steps: list[int] = []

    def compute(config, budget):
        steps.append(0)
        for _ in range(100 if config["x"] > 0.5 else 1):
            steps[-1] += 1
            try:
                time.sleep(0.05)
            except Exception:  # noqa: BLE001, S110 - the user's code under test
                pass
        return config["x"]
    result = BOHB(space(), min_budget=1, max_budget=9, seed=2).run(1, compute, timeout=0.5)
    slow = [r for r in result.get_all_runs() if r.loss is None]
    assert slow and all("JobTimeoutError" in r.error_logs for r in slow)
    assert len(slow) < len(result.get_all_runs())
    assert max(steps) < 100, "the slow evaluations ran all their steps: the timeout did not end them"


def test_the_caller_s_own_timer_survives_a_run_with_a_timeout():
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: None)
    try:
        signal.setitimer(signal.ITIMER_REAL, 300)
        BOHB(space(), min_budget=1, max_budget=9, seed=2).run(1, loss, timeout=5)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 250 < left <= 300
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def fork_a_helper(config, budget):
    """A helper process that ends with ``sys.exit`` (not ``os._exit``): it came back into mpibohb."""
    child = os.fork()
    if child == 0:
        sys.exit(0)
    _, status = os.waitpid(child, 0)
    return {"loss": config["x"], "info": {"child_exit": os.waitstatus_to_exitcode(status)}}


@pytest.mark.processes
def test_a_forked_child_that_returns_from_compute_ends_there(tmp_path):
    """It went on as a second optimizer writing the same journal, which no resume could read."""
    run_dir = tmp_path / "run"
    result = BOHB(space(), min_budget=1, max_budget=9, seed=2, run_dir=run_dir).run(1, fork_a_helper)
    records = [r for r in read_journal(run_dir) if r["type"] == "result"]
    assert len(records) == len(result.get_all_runs()) == len({(tuple(r["config_id"]), r["budget"]) for r in records})
    assert [r["type"] for r in read_journal(run_dir)].count("end") == 1
    assert all(r.info["child_exit"] == 0 for r in result.get_all_runs())
    BOHB(space(), min_budget=1, max_budget=9, seed=2, run_dir=run_dir).run(2, fork_a_helper, resume=True)
