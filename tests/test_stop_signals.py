"""Stop signals while the master is busy, a second signal, and interrupts raised by compute:
nothing hangs, a healthy stop exits 99, and compute's own KeyboardInterrupt is a failed run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mpi_launch import SCRIPTS, mpi_environment, mpiexec, run_command

from mpibohb import EXIT_STOPPED, load_result
from mpibohb.bracket_plans import runs_per_budget
from mpibohb.journal import read_journal
from mpibohb.stopping import REPEAT_WINDOW, handlers_restored

TOY = SCRIPTS / "toy_run.py"
TOY_RUNS = sum(runs_per_budget(4, 1, 27, 3).values())


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=mpi_environment(), start_new_session=True)


def toy(run_dir: Path | str, *args: str, ranks: int | None = None) -> list[str]:
    python = [sys.executable, str(TOY), str(run_dir), *args]
    return python if ranks is None else [mpiexec(), "-n", str(ranks), *python]


def wait_for_line(stream, text: str, process: subprocess.Popen) -> list[str]:
    """Read ``stream`` until a line holds ``text``; the lines read."""
    lines = []
    for line in stream:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"the run ended without {text!r}: {process.wait()}; {''.join(lines)[-2000:]}")


def finish(process: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    """The exit code and remaining output; on timeout the process group is killed and the test fails."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"still running {timeout} s after the signal:\n{err[-3000:]}") from None
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return process.returncode, out, err


# ---------------------------------------------------------------- the master busy outside its loop


@pytest.mark.processes
def test_a_stop_signal_interrupts_the_replay_of_a_long_journal(tmp_path):
    run_dir = tmp_path / "run"
    made = run_command(toy(run_dir, "--n_iterations", "150"), timeout=180)
    assert made.returncode == 0, made.stderr[-3000:]
    journal = (run_dir / "journal.jsonl").read_bytes()
    resuming = start(toy(run_dir, "--n_iterations", "150", "--resume", "--verbose"))
    wait_for_line(resuming.stderr, "replaying the journal's", resuming)
    os.kill(resuming.pid, signal.SIGTERM)
    code, _, err = finish(resuming, timeout=30)
    assert code == EXIT_STOPPED, err[-3000:]
    assert "stopped by SIGTERM while the run resumed: nothing new was recorded" in err
    assert (run_dir / "journal.jsonl").read_bytes() == journal  # no session record, no stop record
    assert "resuming" not in err  # logged after the replay: it was interrupted


@pytest.mark.processes
@pytest.mark.parametrize("how", ["own_handler", "swallow_stop"])
def test_an_evaluation_a_stop_reached_is_not_recorded_whatever_compute_returns(tmp_path, how):
    # compute takes the SIGTERM itself and returns a partly trained model's loss (own_handler), or
    # catches the interruption and goes on (swallow_stop): either way the stop reached it, so its
    # result is not the evaluation's; it runs again on resume
    run_dir = tmp_path / "run"
    running = start(toy(run_dir, f"--{how}", "--sleep", "3", "--announce"))
    wait_for_line(running.stdout, "COMPUTING", running)
    os.kill(running.pid, signal.SIGTERM)
    code, _, err = finish(running, timeout=60)
    assert code == EXIT_STOPPED, err[-3000:]
    records = read_journal(run_dir)
    assert records[-1]["type"] == "stop" and not [r for r in records if r["type"] == "result"], records[-3:]


# ---------------------------------------------------------------- a second signal


@pytest.mark.processes
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_ends_a_stop_that_does_not_come(tmp_path, signum):
    # compute swallows the stop (it catches BaseException and sleeps on): the first signal asks,
    # nothing happens; the second, after the window, ends the process at once
    running = start(toy(tmp_path / "run", "--swallow_stop", "--sleep", "60", "--announce"))
    wait_for_line(running.stdout, "COMPUTING", running)
    os.kill(running.pid, signum)
    time.sleep(REPEAT_WINDOW + 0.5)  # not an assertion on time: a signal sooner is a copy of the first
    assert running.poll() is None, "the first signal ended the run: the test proves nothing"
    os.kill(running.pid, signum)
    code, _, err = finish(running, timeout=20)
    assert code == 128 + signum, err[-3000:]
    assert f"{signal.Signals(signum).name} again while stopping: exiting at once (exit code {128 + signum})" in err


@pytest.mark.processes
def test_a_second_signal_ends_a_serial_evaluation_stuck_in_a_c_call(tmp_path):
    # no Python handler runs inside the C call: a thread sees the signals on the wakeup fd
    run_dir = tmp_path / "run"
    running = start(toy(run_dir, "--c_call", "30", "--announce"))
    wait_for_line(running.stdout, "COMPUTING", running)
    time.sleep(1)  # COMPUTING comes a few bytecodes before the C call, where the handler would still run
    os.kill(running.pid, signal.SIGTERM)
    time.sleep(REPEAT_WINDOW + 0.5)  # not an assertion on time: a signal sooner is a copy of the first
    assert running.poll() is None
    os.kill(running.pid, signal.SIGTERM)
    code, out, err = finish(running, timeout=20)
    assert code == 128 + signal.SIGTERM, err[-3000:]
    assert "C CALL DONE" not in out
    assert "SIGTERM again while stopping: exiting at once (exit code 143)" in err
    assert all(record["type"] != "result" for record in read_journal(run_dir))


@pytest.mark.parametrize("ranks", [None, pytest.param(2, marks=pytest.mark.mpiexec)])
@pytest.mark.processes
def test_a_sigterm_to_a_process_that_compute_forked_is_not_a_stop_of_the_run(tmp_path, ranks):
    # the forked child shares the parent's wakeup fd and stop handling (the run's flag serially,
    # "ignore" on worker ranks) unless mpibohb gives it back the handlers from before
    finished = run_command(toy(tmp_path / "run", "--fork_helpers", "--n_iterations", "1", ranks=ranks), timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("HELPER ") == 2
    assert "HELPER 0" in finished.stdout  # its own handler ran, and its wakeup byte did not reach the run
    assert f"HELPER {-signal.SIGTERM}" in finished.stdout  # no handler of its own: SIGTERM's default action
    assert "RUNS 40 FAILED 0" in finished.stdout  # the whole run, not stopped


@pytest.mark.parametrize("ranks", [None, pytest.param(2, marks=pytest.mark.mpiexec)])
@pytest.mark.processes
def test_helpers_that_compute_ends_with_sigterm_at_once_end_and_the_run_goes_on(tmp_path, ranks):
    # serially a SIGTERM before the forked child had its handlers back stopped the whole run;
    # under MPI every subprocess and spawned helper of compute ignored SIGTERM (SIG_IGN is inherited)
    finished = run_command(toy(tmp_path / "run", "--end_helpers_at_once", "--n_iterations", "1", ranks=ranks),
                           timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    ended = sorted(line for line in finished.stdout.splitlines() if line.startswith("ENDED "))
    assert ended == [f"ENDED {how} {-signal.SIGTERM}" for how in ("exec", "fork", "spawn")], finished.stdout
    assert "RUNS 40 FAILED 0" in finished.stdout


@pytest.mark.mpiexec
def test_a_stop_to_the_process_group_records_no_failure_of_a_subprocess_it_killed(tmp_path):
    # a scheduler's SIGTERM reaches compute's subprocess too, which no longer inherits the worker
    # rank's SIG_IGN: its death (CalledProcessError) was recorded as the configuration's failure
    run_dir = tmp_path / "run"
    running = start(toy(run_dir, "--announce", "--subprocess", "5", ranks=2))
    wait_for_line(running.stdout, "COMPUTING", running)
    time.sleep(0.5)
    os.killpg(running.pid, signal.SIGTERM)
    code, _, err = finish(running, timeout=30)
    assert code == EXIT_STOPPED, err[-3000:]
    assert load_result(run_dir).failed_runs() == [], err[-3000:]


@pytest.mark.processes
@pytest.mark.parametrize("swallow", [False, True], ids=["fails", "returns"])
def test_a_stop_to_the_process_group_records_nothing_that_threads_ran_then(tmp_path, swallow):
    # with n_workers threads, the jobs that the stop ended were recorded: failed (their subprocess
    # killed by the SIGTERM) or, when compute caught that, with the loss it returned after the stop
    run_dir = tmp_path / "run"
    running = start(toy(run_dir, "--announce", "--subprocess", "5", "--threads", "2",
                        *(["--swallow_stop"] if swallow else [])))
    wait_for_line(running.stdout, "COMPUTING", running)
    time.sleep(0.5)
    os.killpg(running.pid, signal.SIGTERM)
    code, _, err = finish(running, timeout=30)
    assert code == EXIT_STOPPED, err[-3000:]
    records = read_journal(run_dir)
    assert [r for r in records if r["type"] == "result"] == [], err[-3000:]
    assert records[-1]["type"] == "stop"


@pytest.mark.processes
def test_copies_of_one_signal_stop_the_run_cleanly(tmp_path):
    run_dir = tmp_path / "run"
    running = start(toy(run_dir, "--sleep", "60", "--announce"))
    wait_for_line(running.stdout, "COMPUTING", running)
    os.kill(running.pid, signal.SIGTERM)
    os.kill(running.pid, signal.SIGTERM)  # as scancel's, which reaches rank 0 directly and through mpiexec
    code, _, err = finish(running, timeout=30)
    assert code == EXIT_STOPPED, err[-3000:]
    assert read_journal(run_dir)[-1]["type"] == "stop"


@pytest.mark.mpiexec
def test_a_second_signal_under_mpi_aborts_the_job_with_its_code():
    running = start([mpiexec(), "-n", "3", sys.executable, str(SCRIPTS / "busy_master.py"), "60"])
    rank0 = int(wait_for_line(running.stdout, "BUSY", running)[-1].split()[1])
    os.kill(running.pid, signal.SIGTERM)  # mpiexec passes SIGTERM on to every rank
    time.sleep(REPEAT_WINDOW + 0.5)
    assert running.poll() is None
    # the second reaches rank 0 only (as scancel's does), so the job ends through rank 0's handler;
    # what MPICH and the handler print on the way out is not asserted: hydra may drop it when it aborts
    os.kill(rank0, signal.SIGTERM)
    code, out, err = finish(running, timeout=30)
    assert code == 128 + signal.SIGTERM, err[-3000:]
    assert "DONE" not in out


# ---------------------------------------------------------------- interrupts raised by compute


@pytest.mark.mpiexec
@pytest.mark.parametrize("kind", ["interrupt", "cancel"])
@pytest.mark.parametrize("ranks", [None, 3])
def test_an_interrupt_raised_by_compute_is_a_failed_run(tmp_path, kind, ranks):
    run_dir = tmp_path / "run"
    finished = run_command(toy(run_dir, "--raise", kind, ranks=ranks), timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    runs = load_result(run_dir).get_all_runs()
    assert len(runs) == TOY_RUNS
    failed = [run for run in runs if run.loss is None]
    assert failed and all(run.config_id[2] % 3 == 1 for run in failed)
    name = {"interrupt": "KeyboardInterrupt", "cancel": "CancelledError"}[kind]
    assert all(run.error_logs.startswith(name) for run in failed), failed[0].error_logs


@pytest.mark.processes
def test_a_real_sigint_still_stops_a_run_without_a_run_directory():
    running = start(toy("none", "--sleep", "60", "--announce"))
    wait_for_line(running.stdout, "COMPUTING", running)
    os.kill(running.pid, signal.SIGINT)
    code, out, err = finish(running, timeout=30)
    assert code != 0 and "RUNS" not in out, out
    assert "KeyboardInterrupt" in err
    assert "interrupted: this run has no run_dir, so its results end with it; give the optimizer run_dir=" in err


@pytest.mark.mpiexec
@pytest.mark.parametrize("ranks", [None, 3])
def test_a_real_sigint_stops_a_run_with_a_run_directory_cleanly(tmp_path, ranks):
    run_dir = tmp_path / "run"
    after_run = tmp_path / "after_run"
    running = start(toy(run_dir, "--sleep", "60", "--announce", "--mark_after_run", str(after_run), ranks=ranks))
    wait_for_line(running.stdout, "COMPUTING", running)
    os.kill(running.pid, signal.SIGINT)  # to mpiexec under MPI: it passes it on to every rank
    code, _, err = finish(running, timeout=30)
    assert code == EXIT_STOPPED, err[-3000:]
    assert read_journal(run_dir)[-1]["type"] == "stop"
    assert not after_run.exists()  # the script's code after run() never runs on a stopped run's result


ABORTING = """
import sys, time
from mpi4py import MPI
from mpibohb.launcher import abort_world
if MPI.COMM_WORLD.Get_rank() == 0:
    abort_world(MPI.COMM_WORLD, 3)
    open(sys.argv[1], "w").write("ran")  # MPICH's MPI_Abort returns on the calling rank
else:
    time.sleep(30)
"""


@pytest.mark.mpiexec
def test_a_rank_that_aborts_the_job_runs_nothing_after_the_abort(tmp_path):
    marker = tmp_path / "after_abort"
    running = start([mpiexec(), "-n", "2", sys.executable, "-c", ABORTING, str(marker)])
    code, _, err = finish(running, timeout=60)
    assert code == 3, err[-3000:]
    assert not marker.exists()


@pytest.mark.processes
@pytest.mark.parametrize("how", ["ours", "own_handler"])
def test_after_a_caught_stop_ctrl_c_is_pythons_again(tmp_path, how):
    # a session that goes on after the stop (a notebook catches SystemExit): a copy of the stop's
    # signal is still ignored (also when compute's own handler took the stop), a later Ctrl-C is
    # a KeyboardInterrupt, not an exit at once, and it stops a second run as a real Ctrl-C
    command = [sys.executable, str(SCRIPTS / "after_stop.py"), str(tmp_path / "run")]
    finished = run_command(command + (["--own_handler"] if how == "own_handler" else []), timeout=60)
    assert finished.returncode == 0, finished.stdout + finished.stderr[-3000:]
    assert finished.stdout.split("\n")[:5] == ["STOPPED 99", "COPY IGNORED", "SECOND RUN INTERRUPTED",
                                               "KEYBOARDINTERRUPT", "HANDLER IS PYTHON'S True"], \
        finished.stdout + finished.stderr[-2000:]


@pytest.mark.processes
def test_a_compute_that_signals_itself_still_gets_its_job_recorded(tmp_path):
    # what reaches the run as a stop may be compute's own use of the signal: after stops ended
    # two sessions inside the same job, what it returns is kept, so the run cannot loop for ever
    command = [sys.executable, str(SCRIPTS / "self_signalling_run.py"), str(tmp_path / "run")]
    ends = [run_command(command, timeout=60) for _ in range(3)]
    assert [end.returncode for end in ends] == [EXIT_STOPPED, EXIT_STOPPED, 0], [e.stderr[-1500:] for e in ends]
    assert "RUNS 1" in ends[2].stdout and "a stop signal reached it in 3 sessions" in ends[2].stderr
    kinds = [record["type"] for record in read_journal(tmp_path / "run")]
    assert kinds.count("stop") == 2 and kinds.count("result") == 1 and kinds[-1] == "end"


@pytest.mark.processes
def test_a_threads_run_stops_with_99_when_compute_left_sys_stdout_closed(tmp_path):
    """The stop's flush of sys.stdout raised, so the run ended with a traceback and exit code 1,
    which a job script does not requeue (helper-71)."""
    running = start(toy(tmp_path / "run", "--threads", "2", "--close_stdout", "--announce", "--sleep", "30"))
    wait_for_line(running.stdout, "COMPUTING", running)
    os.kill(running.pid, signal.SIGTERM)
    code, _, err = finish(running, timeout=30)
    assert code == EXIT_STOPPED, err[-3000:]


def test_a_default_action_that_compute_leaves_is_warned_about_once_and_undone(caplog):
    """compute that gives SIGTERM its default action is killed by a stop (no stop record, no
    requeue, and under MPI exit code 15): the user is told so, once."""
    def the_runs(signum, frame):  # stands for the run's handler (a worker rank's, the run's flag)
        pass

    outside = signal.signal(signal.SIGTERM, the_runs)
    try:
        with caplog.at_level("WARNING", logger="mpibohb"):
            for _ in range(2):
                with handlers_restored():
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                assert signal.getsignal(signal.SIGTERM) is the_runs
    finally:
        signal.signal(signal.SIGTERM, outside)
    warned = [r.getMessage() for r in caplog.records if "its default action" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("compute left SIGTERM at its default action")



def _restarts_system_calls(signum: int) -> bool:
    """SA_RESTART in the handler's flags, read with glibc's ``sigaction`` (Linux x86-64 and
    aarch64: a pointer, a 128-byte mask, then the flags)."""
    import ctypes
    current = ctypes.create_string_buffer(512)
    assert ctypes.CDLL(None, use_errno=True).sigaction(signum, None, current) == 0
    return bool(ctypes.c_int.from_buffer(current, 8 + 128).value & 0x10000000)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads glibc's struct sigaction")
def test_the_inner_of_nested_worker_loops_gives_back_restarting_system_calls():
    # restore() set the outer loop's do-nothing handler back with signal.signal, which drops
    # SA_RESTART: compute's blocking C calls in the outer loop then failed with EINTR on a stop
    from mpibohb.stopping import STOP_SIGNALS, ignore_stop_signals

    restore_outer = ignore_stop_signals()
    try:
        assert all(_restarts_system_calls(sig) for sig in STOP_SIGNALS)
        ignore_stop_signals()()
        assert all(_restarts_system_calls(sig) for sig in STOP_SIGNALS)
    finally:
        restore_outer()


def test_threads_keep_a_result_that_ended_before_the_stop_and_drop_one_that_ended_after(tmp_path):
    # drain() dropped every job it found done once a stop was requested, also one that returned
    # before the signal came and was still waiting to be recorded (the master busy journaling)
    import threading

    from mpibohb.brackets import Job
    from mpibohb.executors.threads import ThreadExecutor
    from mpibohb.stopping import StopFlag
    from mpibohb.worker import as_compute_function

    release = threading.Event()

    def compute(config: dict, budget: float) -> float:
        if config["slow"]:
            release.wait(10)
        return 1.0

    executor = ThreadExecutor(as_compute_function(compute), str(tmp_path), 2)
    stop = StopFlag()
    try:
        early, late = Job((0, 0, 0), {"slow": False}, 1.0), Job((0, 0, 1), {"slow": True}, 1.0)
        executor.submit(early)
        executor.submit(late)
        deadline = time.monotonic() + 10
        while not any(future.done() for future in executor._running):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(2 * 0.05)  # past the margin for victims of the stop
        stop.handle(signal.SIGTERM)  # the stop's handler, as the signal would run it
        release.set()
        while not all(future.done() for future in executor._running):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        executor._stop = stop  # as wait(stop) leaves it
        assert [job.config_id for job, _ in executor.drain()] == [(0, 0, 0)]
        assert executor._running == {}
    finally:
        release.set()
        executor.close()
