"""What a node, a scheduler or a user's code can do to a run under a real ``mpiexec``: nothing
hangs, a broken rank does not fail the run, and no healthy evaluation is recorded as failed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mpi_launch import SCRIPTS, mpi_environment, mpiexec, run_command, run_mpi

from mpibohb import load_result
from mpibohb.journal import JournalError, read_journal

pytestmark = pytest.mark.mpiexec  # all but the two serial tests
HOSTILE = SCRIPTS / "hostile_run.py"
TOTAL_RUNS = 69  # HyperBand, budgets 1..27, eta 3, 4 iterations
ONE_ITERATION_RUNS = 40  # its first bracket: 27 + 9 + 3 + 1


def hostile(ranks: int, run_dir: Path, *args: str, timeout: float = 120):
    return run_mpi(ranks, HOSTILE, str(run_dir), *args, timeout=timeout)


def evaluations(run_dir: Path) -> list[tuple]:
    return sorted((r.config_id, r.budget, r.loss) for r in load_result(run_dir).get_all_runs())


def kinds(run_dir: Path) -> list[str]:
    return [record["type"] for record in read_journal(run_dir)]


@pytest.mark.parametrize("mode", ["stop", "c_block"])
def test_a_worker_stuck_outside_python_does_not_hang_the_run(mode, tmp_path):
    # rank 2 stops (SIGSTOP) or blocks in a C call in its second job; the timeout cannot interrupt it.
    # With "stop" rank 0 ends with MPI.Finalize(), which waited for the lost rank for ever
    finalize = ["--finalize"] if mode == "stop" else []
    finished = hostile(4, tmp_path / "run", "--mode", mode, "--timeout", "2", *finalize, timeout=150)
    assert finished.returncode != 0, "the job must end loudly: MPI cannot end with a rank that never answers"
    assert "lost worker ranks (rank 2@" in finished.stderr, finished.stderr[-3000:]
    assert f"RUNS {TOTAL_RUNS} FAILED 1" in finished.stdout, finished.stdout + finished.stderr[-3000:]
    failed = load_result(tmp_path / "run").failed_runs()
    assert len(failed) == 1 and "JobTimeoutError on rank 2@" in failed[0].error_logs
    assert "no answer" in failed[0].error_logs
    assert kinds(tmp_path / "run")[-1] == "end"


def test_a_serial_evaluation_stuck_outside_python_ends_the_process_and_resumes(tmp_path):
    command = [sys.executable, str(HOSTILE), str(tmp_path / "run"), "--mode", "blocked", "--timeout", "3"]
    stuck = run_command(command, timeout=90)
    assert stuck.returncode == 1 and stuck.seconds < 60, (stuck.returncode, stuck.seconds)
    assert "stuck where the timeout cannot interrupt it" in stuck.stderr, stuck.stderr[-3000:]
    finished = run_command(command, timeout=90)
    assert f"RUNS {TOTAL_RUNS} FAILED 1" in finished.stdout, finished.stdout + finished.stderr[-3000:]
    [failed] = load_result(tmp_path / "run").failed_runs()
    assert failed.config_id == (0, 0, 1) and "JobTimeoutError on serial@" in failed.error_logs


def test_a_broken_rank_is_taken_out_of_service_and_its_failures_run_again(tmp_path):
    finished = hostile(5, tmp_path / "run", "--mode", "broken")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"RUNS {TOTAL_RUNS} FAILED 0" in finished.stdout, finished.stdout
    records = read_journal(tmp_path / "run")
    retired = [r for r in records if r["type"] == "retired"]
    assert len(retired) == 1 and retired[0]["worker"].startswith("rank 2@"), (retired, kinds(tmp_path / "run"))
    assert "No space left on device" in retired[0]["reason"]
    retries = [r for r in records if r["type"] == "retry"]
    assert 3 <= len(retries) and all(r["worker"].startswith("rank 2@") for r in retries)
    results_on_2 = [r for r in records if r["type"] == "result" and r["worker"].startswith("rank 2@")]
    assert results_on_2 == []


def test_a_node_whose_disk_is_too_small_for_some_jobs_does_not_stop_the_run(tmp_path):
    # its first full disk came after successes, so the health check recorded it as the job's own,
    # and the run stopped (helper-93): such a job now runs again on another rank
    finished = hostile(3, tmp_path / "run", "--mode", "small_disk")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"RUNS {TOTAL_RUNS} FAILED 0" in finished.stdout, finished.stdout
    records = read_journal(tmp_path / "run")
    assert [r["type"] for r in records].count("stop") == 0 and records[-1]["type"] == "end"
    assert all(r["budget"] == 27 for r in records if r["type"] == "retry"), records


def test_a_disk_that_fills_for_every_rank_stops_the_run_and_never_hangs(tmp_path):
    # every rank held its failures and ran them again; when those came back held too, rank 0
    # waited for a settle that never came (1 in 3 runs hung before the fix; CI caught it)
    finished = hostile(3, tmp_path / "run", "--mode", "full_disk", timeout=60)
    assert finished.returncode == 1, finished.stderr[-3000:]
    said = [line for line in finished.stderr.splitlines() if line.startswith("mpibohb: error on rank 0@")]
    assert len(said) == 1 and "compute failed for want of disk space" in said[0], finished.stderr[-3000:]
    records = read_journal(tmp_path / "run")
    assert all(r["loss"] is not None for r in records if r["type"] == "result")
    assert records[-1]["type"] == "stop" and "want of disk space" in records[-1]["reason"]
    retried = Counter((tuple(r["config_id"]), r["budget"]) for r in records if r["type"] == "retry")
    assert max(retried.values()) == 1, retried  # a second full disk stops the run: no job runs a third time


def test_a_run_directory_purged_mid_run_ends_the_job_with_one_line_and_resumes_to_the_end(tmp_path):
    # a purge deleted the journal under rank 0, which wrote on into the deleted file: every
    # result after it was lost when the job ended
    run_dir = tmp_path / "run"
    purged = hostile(3, run_dir, "--mode", "purge", timeout=60)
    assert purged.returncode == 1, purged.stderr[-3000:]
    said = [line for line in purged.stderr.splitlines() if line.startswith("mpibohb: error on rank 0@")]
    assert len(said) == 1 and "it was deleted, or its file system unmounted, while the run wrote it; its records " \
        f"were written back to {run_dir}/journal.jsonl" in said[0], purged.stderr[-3000:]
    assert "Traceback" not in purged.stderr, purged.stderr[-3000:]
    written_back = read_journal(run_dir)
    assert sum(r["type"] == "result" for r in written_back) >= 4, kinds(run_dir)
    resumed = hostile(3, run_dir, "--mode", "none")
    assert f"RUNS {TOTAL_RUNS} FAILED 0" in resumed.stdout, resumed.stdout + resumed.stderr[-3000:]
    assert kinds(run_dir)[-1] == "end"


def test_a_nodes_full_disk_shared_by_two_ranks_stops_nothing_and_fails_nothing(tmp_path):
    # the health check ran rank 2's jobs again on rank 3, on the same full disk, and the run
    # stopped: a job that ran out of space now waits for another node (ranks 2 and 3 on "nodeb")
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a second node is simulated with unshare -u, which needs root")
    script = [sys.executable, str(HOSTILE), str(tmp_path / "run"), "--mode", "node_disk"]
    on_nodeb = ["unshare", "-u", "sh", "-c", 'hostname nodeb && exec "$@"', "sh", *script]
    finished = run_command([mpiexec(), "-n", "2", *script, ":", "-n", "2", *on_nodeb], timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"RUNS {TOTAL_RUNS} FAILED 0" in finished.stdout, finished.stdout
    records = read_journal(tmp_path / "run")
    assert records[-1]["type"] == "end" and not [r for r in records if r["type"] == "stop"]
    assert sorted(r["worker"].split("@")[0] for r in records if r["type"] == "retired") == ["rank 2", "rank 3"]


def test_without_health_checks_a_broken_rank_fails_many_evaluations(tmp_path):
    # the behaviour before: what max_rank_failures=3 (the default) prevents (a full disk, as in
    # the test above, would stop the run instead: with no check, nothing tells one node's disk from all's)
    finished = hostile(5, tmp_path / "run", "--mode", "bad_gpu", "--max_rank_failures", "none")
    assert finished.returncode == 0, finished.stderr[-3000:]
    failed = len(load_result(tmp_path / "run").failed_runs())
    assert failed >= 10, failed


def sessions_so_far(run_dir: Path) -> int:
    """Sessions in the journal; 0 before its first line is whole (it is being written now)."""
    try:
        return kinds(run_dir).count("session") if (run_dir / "journal.jsonl").exists() else 0
    except JournalError:
        return 0


def _kill_the_master_soon_after_each_start(run_dir: Path, kills: int, delay: float) -> None:
    command = [mpiexec(), "-n", "4", sys.executable, str(HOSTILE), str(run_dir), "--sleep", "0.05"]
    for attempt in range(kills):
        sessions = sessions_so_far(run_dir)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=mpi_environment(), start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if sessions_so_far(run_dir) > sessions:
                    break
                assert process.poll() is None, f"attempt {attempt}: the run ended before it was killed"
                time.sleep(0.02)
            else:
                raise AssertionError(f"attempt {attempt}: no new session within 60 s")
            time.sleep(delay)
            master = int((run_dir / ".lock").read_text().split("@")[0])
            os.kill(master, signal.SIGKILL)
            process.wait(timeout=60)
        finally:
            os.killpg(process.pid, signal.SIGKILL) if process.poll() is None else None


def test_ten_kills_of_the_master_blame_no_job(tmp_path):
    whole = hostile(4, tmp_path / "whole", "--sleep", "0.05")
    assert f"RUNS {TOTAL_RUNS} FAILED 0" in whole.stdout, whole.stderr[-3000:]
    run_dir = tmp_path / "killed"
    _kill_the_master_soon_after_each_start(run_dir, kills=10, delay=0.4)
    assert kinds(run_dir).count("session") == 10 and "end" not in kinds(run_dir)
    finished = hostile(4, run_dir, "--sleep", "0.05")
    assert f"RUNS {TOTAL_RUNS} FAILED 0" in finished.stdout, finished.stdout + finished.stderr[-3000:]
    assert evaluations(run_dir) == evaluations(tmp_path / "whole")
    assert "lost" not in kinds(run_dir)


def _ranks_of(launcher: int) -> dict[int, int]:
    """rank -> pid of the processes that ``launcher``'s hydra proxy started (each in a session of its own)."""
    ranks = {}
    for proxy in _children_of(launcher):
        for pid in _children_of(proxy):
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            rank = next((v.split(b"=")[1] for v in environ if v.startswith(b"PMI_RANK=")), None)
            if rank is not None:
                ranks[int(rank)] = pid
    return ranks


def _children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("when", ["serving", "at_exit_gate"])
def test_worker_ranks_end_when_rank_0_and_their_launcher_are_killed(when, tmp_path):
    # A scheduler that kills a job's processes on its first host only (SGE's qdel) takes rank 0,
    # mpiexec and the hydra proxy there; the worker ranks, each in a session of its own, are left
    # with nobody to end them. They see rank 0's socket close and end themselves.
    run_dir = tmp_path / "run"
    command = [mpiexec(), "-n", "3", sys.executable, str(HOSTILE), str(run_dir), "--linger", "600",
               "--sleep", "0.5" if when == "serving" else "0.01", "--n_iterations", "2"]
    process = subprocess.Popen(command, env=mpi_environment(), start_new_session=True, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ranks: dict[int, int] = {}
    try:
        if when == "serving":
            deadline = time.monotonic() + 60
            while not (run_dir / "journal.jsonl").exists() or "job" not in kinds(run_dir):
                assert time.monotonic() < deadline and process.poll() is None, "the run did not start"
                time.sleep(0.2)
        else:
            assert "RUNS" in process.stdout.readline()  # the run has ended; rank 0 lingers
        ranks = _ranks_of(process.pid)
        assert sorted(ranks) == [0, 1, 2], ranks
        for pid in [process.pid, *_children_of(process.pid), ranks[0]]:  # mpiexec, the proxy, rank 0
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(_alive(ranks[rank]) for rank in (1, 2)):
            assert time.monotonic() < deadline, "worker ranks still running 30 s after rank 0 was killed"
            time.sleep(0.2)
    finally:
        for pid in [process.pid, *ranks.values()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=30)


@pytest.mark.parametrize("mode", ["exit", "segfault"])
def test_a_job_whose_process_dies_twice_under_mpi_is_recorded_as_failed(mode, tmp_path):
    # The evidence is journaled by a thread of rank 0 in the millisecond before the launcher kills
    # it; on a loaded machine it can miss one, and the job then just runs again (never a false
    # blame). On a slow launcher the job can also run again, and die, in the session it first
    # died in. So the run is resumed until it finishes, and the journal is what is checked: two
    # deaths, each journaled with the rank and the job, counted across sessions, and the job
    # recorded as failed at the second.
    run_dir = tmp_path / "run"
    sessions = 1
    while (ended := hostile(4, run_dir, "--mode", mode, timeout=60)).returncode != 0 and sessions < 7:
        sessions += 1
    # on failure, the deaths journaled and whether each blamed its job show why the run never ended
    deaths = [(r.get("config_id"), r.get("blames_job")) for r in read_journal(run_dir) if r["type"] == "lost"]
    assert ended.returncode == 0 and sessions >= 2, (sessions, deaths, ended.stderr[-1500:])
    assert f"RUNS {TOTAL_RUNS} FAILED 1" in ended.stdout, ended.stdout + ended.stderr[-3000:]
    # a bystander killed by the launcher before rank 0 may be journaled too, blaming nothing
    lost = [r for r in read_journal(run_dir) if r["type"] == "lost" and r.get("blames_job", True)]
    assert len(lost) == 2 and all(r["config_id"] == [0, 0, 2] and r["worker"].startswith("rank ") for r in lost)
    assert all("ended while running (0, 0, 2) at budget 1" in r["reason"] for r in lost)
    failed = load_result(run_dir).failed_runs()
    assert [(r.config_id, r.budget) for r in failed] == [((0, 0, 2), 1.0)]
    assert "ended 2 times while running this job" in failed[0].error_logs
    if mode == "segfault":
        assert "Fatal Python error: Segmentation fault" in failed[0].error_logs
        assert "hostile_run.py" in failed[0].error_logs  # the traceback of the crash


def test_a_fatal_signal_is_journaled_before_the_launcher_kills_rank_0(tmp_path):
    # The kernel closes a dying process's descriptors from the highest number down, and hydra kills
    # rank 0 as soon as the worker's own launcher descriptor closes. With a low descriptor free
    # after MPI started (--hole), the watch socket used to take it, close after the launcher's, and
    # no session journaled the death (0 of 16 by hand). Now the traceback, written before the
    # process starts to end, is journaled at once: every session journals its death.
    run_dir = tmp_path / "run"
    ended = hostile(4, run_dir, "--mode", "segfault", "--hole", timeout=60)
    lost = [r for r in read_journal(run_dir) if r["type"] == "lost" and r.get("blames_job", True)]
    assert ended.returncode != 0 and [r["config_id"] for r in lost] == [[0, 0, 2]], ended.stderr[-2000:]
    assert "Fatal Python error: Segmentation fault" in lost[0]["reason"]
    assert "hostile_run.py" in lost[0]["reason"]  # the whole traceback, not its first lines


def test_a_crash_of_a_process_that_compute_forked_is_not_its_ranks_death(tmp_path):
    # the child inherits the rank's faulthandler and watch socket: its traceback must not reach
    # rank 0 as the rank's, nor may its copy keep the socket open after the rank's death
    run_dir = tmp_path / "run"
    ended = hostile(3, run_dir, "--mode", "fork_crash", timeout=60)
    assert ended.returncode == 0 and f"RUNS {TOTAL_RUNS} FAILED 0" in ended.stdout, ended.stderr[-2000:]
    assert "lost" not in kinds(run_dir)


def test_a_stop_signal_caught_by_compute_is_not_a_failure(tmp_path):
    # compute installs its own SIGTERM handler, which raises SystemExit: the stop must not turn the
    # evaluations it interrupts into failed runs
    run_dir = tmp_path / "run"
    command = [mpiexec(), "-n", "3", sys.executable, str(HOSTILE), str(run_dir), "--mode", "sigterm",
               "--sleep", "0.2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=mpi_environment(), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (run_dir / "journal.jsonl").exists() or kinds(run_dir).count("result") < 5:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGTERM)  # a scheduler signals every process of the job
        _, stderr = process.communicate(timeout=60)
    finally:
        os.killpg(process.pid, signal.SIGKILL) if process.poll() is None else None
    assert process.returncode == 99
    assert "MPI_Abort" not in stderr, stderr  # a clean stop does not read like a crash
    assert load_result(run_dir).failed_runs() == []
    finished = hostile(3, run_dir, "--mode", "sigterm", "--sleep", "0.01")
    assert f"RUNS {TOTAL_RUNS} FAILED 0" in finished.stdout, finished.stdout + finished.stderr[-3000:]


def test_a_stop_signal_caught_by_compute_is_not_a_failure_serially(tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, str(HOSTILE), str(run_dir), "--mode", "sigterm", "--sleep", "0.2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=mpi_environment(), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (run_dir / "journal.jsonl").exists() or kinds(run_dir).count("result") < 3:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    finally:
        os.killpg(process.pid, signal.SIGKILL) if process.poll() is None else None
    assert process.returncode == 99
    assert load_result(run_dir).failed_runs() == []
    assert kinds(run_dir)[-1] == "stop"


def test_a_child_process_left_by_compute_does_not_hold_up_the_end(tmp_path):
    finished = hostile(3, tmp_path / "run", "--mode", "child", "--n_iterations", "1", "--sleep", "0", timeout=60)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "processes that compute started and left running" in finished.stderr
    assert finished.seconds < 45


@pytest.mark.parametrize("mode, after", [("pool", []), ("spawn_pool", []), ("pool", ["--linger", "7"]),
                                         ("pool", ["--slow_atexit", "7"])])
def test_a_pool_kept_by_compute_ends_with_the_run(tmp_path, mode, after):
    # killed by mpibohb before multiprocessing's exit handler ran, a pool worker holding the
    # pool's queue lock hung that handler, and the job; also when the backstop's grace passed
    # while the worker ranks waited for rank 0's analysis at the exit gate, or in a slow atexit
    finished = hostile(3, tmp_path / "run", "--mode", mode, "--n_iterations", "1", "--sleep", "0", *after, timeout=60)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"RUNS {ONE_ITERATION_RUNS} FAILED 0" in finished.stdout, finished.stdout + finished.stderr[-3000:]
    assert "left running" not in finished.stderr and "outlived" not in finished.stderr  # multiprocessing's to end


def test_a_daemonic_helper_of_compute_that_ignores_sigterm_does_not_hold_the_end(tmp_path):
    # multiprocessing's exit handler, to which such helpers are left, waits for them without a limit
    finished = hostile(3, tmp_path / "run", "--mode", "stubborn_daemon", "--n_iterations", "1", "--sleep", "0",
                       timeout=60)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"RUNS {ONE_ITERATION_RUNS} FAILED 0" in finished.stdout, finished.stdout + finished.stderr[-3000:]
    assert "that outlived multiprocessing's exit" in finished.stderr


def test_a_stop_signal_that_reaches_a_worker_rank_alone_interrupts_no_call_of_compute(tmp_path):
    # worker ranks ignore stop signals with a handler of their own: without SA_RESTART it made a
    # blocking call in compute's C code fail with EINTR (SIG_IGN never did), and the run failed
    finished = hostile(3, tmp_path / "run", "--mode", "eintr", "--n_iterations", "1", "--sleep", "0", timeout=60)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"RUNS {ONE_ITERATION_RUNS} FAILED 0" in finished.stdout, finished.stdout + finished.stderr[-3000:]
    assert "interrupted" not in kinds(tmp_path / "run")  # the signal reached no code of the user's


def test_a_compute_whose_script_signals_its_process_group_neither_loops_nor_runs_healthy_jobs_again(tmp_path):
    # `trap "kill 0" EXIT` reaches the worker rank: a failure then ran again for ever (a stop may
    # have caused it), and every healthy job ran three times
    finished = hostile(3, tmp_path / "run", "--mode", "kill0", "--n_iterations", "1", "--sleep", "0", timeout=90)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"RUNS {ONE_ITERATION_RUNS} FAILED 1" in finished.stdout, finished.stdout + finished.stderr[-3000:]
    records = read_journal(tmp_path / "run")
    interrupted = [(tuple(r["config_id"]), r["budget"]) for r in records if r["type"] == "interrupted"]
    assert interrupted == [((0, 0, 1), 1)] * 2  # then kept, as the configuration's failure


def test_a_run_without_trouble_names_the_worker_of_every_job(tmp_path):
    finished = run_command([sys.executable, str(HOSTILE), str(tmp_path / "serial"), "--n_iterations", "1",
                            "--sleep", "0"], timeout=60)
    assert finished.returncode == 0, finished.stderr[-3000:]
    jobs = [r for r in read_journal(tmp_path / "serial") if r["type"] == "job"]
    assert jobs and all(r["worker"].startswith("serial@") for r in jobs)
    mpi = hostile(3, tmp_path / "mpi", "--n_iterations", "1", "--sleep", "0")
    assert mpi.returncode == 0, mpi.stderr[-3000:]
    records = read_journal(tmp_path / "mpi")
    assert {r["worker"].split("@")[0] for r in records if r["type"] == "job"} <= {"rank 1", "rank 2"}
    assert [r["executor"] for r in records if r["type"] == "session"] == ["MPIExecutor"]


@pytest.mark.parametrize("mode", ["once", "always", "chained"])
def test_a_loss_returned_after_a_stop_reached_compute_on_its_rank_is_not_kept_at_first(tmp_path, mode):
    """compute's own handler ended training early when a stop reached its rank only: the partly
    trained loss was recorded as a healthy result (a serial run discarded it). It runs again;
    a compute that signals itself every time has its loss kept at the third evaluation."""
    run_dir = tmp_path / "run"
    finished = run_mpi(3, SCRIPTS / "self_signal.py", str(run_dir), mode, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    [line] = [x for x in finished.stdout.splitlines() if x.startswith("RESULT ")]
    runs = json.loads(line[len("RESULT "):])
    interrupted = [r for r in read_journal(run_dir) if r["type"] == "interrupted"]
    assert len(runs) == 4
    if mode in ("once", "chained"):
        assert not any(stopped for _, stopped in runs) and len(interrupted) == 4
    else:
        assert all(stopped for _, stopped in runs) and len(interrupted) == 8
        assert "a stop signal reached it 3 times; what compute returned is kept" in finished.stderr


def test_an_info_that_rank_0_cannot_unpickle_is_a_note_and_the_loss_is_kept(tmp_path):
    """The whole outcome was one pickle, so the healthy run was recorded as failed (helper-71)."""
    finished = run_mpi(3, SCRIPTS / "info_rank0_cannot_unpickle.py", str(tmp_path / "run"), timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    [line] = [x for x in finished.stdout.splitlines() if x.startswith("RESULT ")]
    runs = json.loads(line[len("RESULT "):])
    assert len(runs) == 4 and all(loss is not None for loss, _ in runs)
    note = "<info dropped: it cannot be pickled and rebuilt on rank 0 (RuntimeError"
    assert all(info.startswith(note) for _, info in runs)
    assert "rank 0 cannot unpickle an info" in finished.stderr
