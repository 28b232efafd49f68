"""The SPMD runtime under a real ``mpiexec`` with several ranks (subprocesses with timeouts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ConfigSpace as CS
import pytest
from mpi_launch import ROOT, SCRIPTS, mpi_environment, mpiexec, run_command, run_mpi

from mpibohb import HyperBand

pytestmark = pytest.mark.mpiexec  # all but the single-process import check
SPMD = SCRIPTS / "spmd_run.py"
AFTER = SCRIPTS / "after_run.py"


def result_of(finished) -> dict:
    lines = [line for line in finished.stdout.splitlines() if line.startswith("RESULT ")]
    assert finished.returncode == 0, f"exit {finished.returncode}\n{finished.stdout[-2000:]}\n{finished.stderr[-4000:]}"
    assert len(lines) == 1, f"expected one RESULT line (rank 0 only), got {len(lines)}"
    return json.loads(lines[0][len("RESULT "):])


@pytest.mark.parametrize("ranks", [2, 3, 5, 8])
def test_quickstart_under_mpiexec(ranks, tmp_path):
    finished = run_mpi(ranks, ROOT / "examples" / "quickstart.py", timeout=180, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-4000:]
    assert finished.stdout.count("Best found configuration:") == 1
    assert "A total of 69 runs were executed." in finished.stdout
    assert "BAD TERMINATION" not in finished.stdout + finished.stderr


@pytest.mark.parametrize("optimizer", ["bohb", "bohb_tpe", "hb", "rs"])
def test_same_seed_same_evaluations_serial_threads_mpi(optimizer, tmp_path):
    args = ["--optimizer", optimizer, "--worker", "toy", "--n_iterations", "4"]
    serial = result_of(run_command([sys.executable, str(SPMD), *args], timeout=120, cwd=tmp_path))
    threads = result_of(run_command([sys.executable, str(SPMD), *args, "--n_workers", "1"], 120, tmp_path))
    mpi = result_of(run_mpi(2, SPMD, *args, timeout=120, cwd=tmp_path))

    def evaluations(result):
        return [(r["config_id"], r["budget"], r["config"], r["loss"]) for r in result["runs"]]

    assert len(serial["runs"]) >= 12
    assert {r["worker"].split("@")[0] for r in threads["runs"]} == {"mpibohb-worker_0"}
    assert evaluations(serial) == evaluations(threads) == evaluations(mpi)
    assert {r["worker"].split("@")[0] for r in mpi["runs"]} == {"rank 1"}


def test_more_workers_spread_the_work(tmp_path):
    result = result_of(run_mpi(5, SPMD, "--worker", "toy", "--n_iterations", "4", timeout=120, cwd=tmp_path))
    ranks = {r["worker"].split("@")[0] for r in result["runs"]}
    assert ranks == {"rank 1", "rank 2", "rank 3", "rank 4"}
    budgets = sorted({r["budget"] for r in result["runs"]})
    assert budgets == [1.0, 3.0, 9.0]


def test_user_failures_become_failed_runs_and_the_run_completes(tmp_path):
    finished = run_mpi(4, SPMD, "--worker", "faulty", "--timeout", "1", "--optimizer", "hb", timeout=120,
                       cwd=tmp_path)
    result = result_of(finished)
    runs = result["runs"]
    # (1, 9, 3) has 3 rungs; 3 iterations of HyperBand: 9+3+1 + 5+1 + 3 = 22 evaluations.
    assert len(runs) == 22
    errors = [r["error"] for r in runs if r["error"]]
    assert all(r["loss"] is None for r in runs if r["error"])
    for reason in ["RuntimeError on rank", "compute must return a dict", "the loss must be finite", "timeout"]:
        assert any(reason in e for e in errors), f"no failure mentions {reason!r}: {errors}"
    assert not any("pickle" in e for e in errors), errors
    # an info that cannot be pickled travels as a note with its repr; the run keeps its loss (1.0)
    noted = [r for r in runs if (r["info"] or "").startswith("<info dropped: it cannot be pickled")]
    assert noted and all(r["loss"] == 1.0 and "<unlocked _thread.lock object" in r["info"] for r in noted), runs
    warned = finished.stderr.count("cannot be pickled to travel to rank 0")
    assert 1 <= warned <= 3 and finished.stderr.count("<info dropped: it cannot be pickled") == 0  # once per rank
    assert any(r["loss"] is not None for r in runs)


def test_a_worker_that_dies_ends_the_job_nonzero_quickly(tmp_path):
    finished = run_mpi(4, SPMD, "--worker", "exit", "--n_iterations", "6", timeout=60, cwd=tmp_path)
    assert finished.returncode != 0
    assert finished.seconds < 30
    assert "RESULT" not in finished.stdout


def test_an_internal_error_on_the_master_aborts_the_job(tmp_path):
    finished = run_mpi(3, SPMD, "--worker", "internal", timeout=60, cwd=tmp_path)
    assert finished.returncode != 0
    assert finished.seconds < 30
    assert "fatal error on rank 0" in finished.stderr
    assert "simulated internal error" in finished.stderr


def test_an_internal_error_on_a_worker_aborts_the_job(tmp_path):
    finished = run_mpi(3, SPMD, "--worker", "worker_internal", timeout=60, cwd=tmp_path)
    assert finished.returncode != 0
    assert finished.seconds < 30
    assert "fatal error on rank 1" in finished.stderr
    assert "simulated internal error in the worker loop" in finished.stderr


def test_a_single_process_run_does_not_import_mpi4py(tmp_path):
    code = ("import sys; sys.argv = ['x', '--n_iterations', '1']; import runpy; "
            f"runpy.run_path({str(SPMD)!r}, run_name='__main__'); "
            "assert 'mpi4py' not in sys.modules, 'mpi4py was imported'")
    finished = run_command([sys.executable, "-c", code], timeout=120, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "RESULT " in finished.stdout


def test_worker_ranks_end_with_the_run_so_what_follows_runs_on_rank_0_only(tmp_path):
    """HpBandSter's examples analyse the Result after run(); on worker ranks that was None."""
    finished = run_mpi(3, AFTER, timeout=120, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("AFTER RUN") == 1 and "AFTER RUN rank 0: Result" in finished.stdout
    assert finished.stdout.count("RESULT 19") == 1


def test_rank_0_may_end_with_mpi_finalize_after_the_run(tmp_path):
    # MPI_Finalize on rank 0 waited for the worker ranks, which waited at their exit for rank 0's:
    # the job hung for ever, silently
    finished = run_mpi(3, AFTER, "--then", "finalize", timeout=60, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "RESULT 19" in finished.stdout and "FINALIZED" in finished.stdout


def test_workers_return_keeps_the_worker_ranks_going_with_none(tmp_path):
    finished = run_mpi(3, AFTER, "--workers_return", timeout=120, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    for rank, returned in [(0, "Result"), (1, "NoneType"), (2, "NoneType")]:
        assert f"AFTER RUN rank {rank}: {returned}" in finished.stdout
    assert finished.stdout.count("RESULT 19") == 1


@pytest.mark.parametrize("hook", [[], ["--own_excepthook"]])
def test_an_exception_on_rank_0_after_the_run_ends_the_job_with_its_code(tmp_path, hook):
    finished = run_mpi(3, AFTER, "--then", "raise", *hook, timeout=60, cwd=tmp_path)
    assert finished.returncode == 1, finished.stderr[-3000:]
    assert "KeyError: 'the analysis on rank 0 failed'" in finished.stderr


def test_a_second_run_after_the_worker_ranks_ended_is_an_error_not_a_hang(tmp_path):
    refused = run_mpi(3, AFTER, "--then", "run_again", timeout=60, cwd=tmp_path)
    assert refused.returncode != 0
    assert "ranks [1, 2] of this communicator ended their process when an earlier run() ended" in refused.stderr
    assert "pass workers_return=True to every run() of the script but the last" in refused.stderr
    finished = run_mpi(3, AFTER, "--then", "run_again_returning", timeout=60, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("AFTER SECOND RUN") == 1 and "AFTER SECOND RUN rank 0: Result" in finished.stdout


def test_worker_ranks_waiting_for_rank_0_to_exit_sleep(tmp_path):
    """While rank 0 works on after the run, the worker ranks' processes wait for it at exit,
    asleep: well below a tenth of a core each (a rank spinning in MPI would use a full one)."""
    pids = tmp_path / "pids"
    pids.mkdir()
    command = [mpiexec(), "-n", "3", sys.executable, str(AFTER), "--sleep", "4", "--pid_dir", str(pids)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=mpi_environment(), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (pids / "0.run").exists():  # rank 0's run has ended: it sleeps now
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        workers = [int((pids / str(rank)).read_text()) for rank in (1, 2)]
        before = [cpu_seconds(pid) for pid in workers]
        time.sleep(2)
        used = [cpu_seconds(pid) - start for pid, start in zip(workers, before)]
        assert not any((pids / f"{rank}.run").exists() for rank in (1, 2))  # they did not go on
        assert all(seconds <= 0.2 for seconds in used), used
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr[-3000:]
        assert stdout.count("RESULT 19") == 1
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if process.returncode is None:
            process.communicate()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_ignored_worker_counts_are_warned_about_once_on_rank_0(tmp_path):
    finished = run_mpi(3, AFTER, "--n_workers", "4", "--min_n_workers", "3", timeout=60, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stderr.count("WARNING:mpibohb:n_workers=4 is ignored under MPI: this MPI job has 2 worker "
                                 "ranks (the ranks besides rank 0); for 4 workers start mpiexec -n 5") == 1
    assert finished.stderr.count("WARNING:mpibohb:min_n_workers=3 is ignored (HpBandSter waited for that many "
                                 "workers): this MPI job has 2 worker ranks") == 1
    matching = run_mpi(3, AFTER, "--n_workers", "2", "--min_n_workers", "2", timeout=60, cwd=tmp_path)
    assert matching.returncode == 0 and "WARNING" not in matching.stderr, matching.stderr[-3000:]


@pytest.mark.parametrize("hook", [[], ["--own_excepthook"], ["--own_excepthook", "--linger_thread"],
                                  ["--own_excepthook", "--linger_pool"]])
def test_an_error_on_one_rank_before_run_ends_the_job_instead_of_a_hang(tmp_path, hook):
    """Ranks 0 and 1 wait in run() for rank 2, which raised: the job ends, saying why. With the
    script's own sys.excepthook in place of mpibohb's, rank 2's exit told rank 0 that it had not
    called run(), rank 0 raised that, and rank 1 waited for ever."""
    finished = run_mpi(3, AFTER, "--before", "raise", *hook, timeout=60, cwd=tmp_path)
    assert finished.returncode == 1, finished.stderr[-3000:]
    assert "RuntimeError: rank 2 has no GPU" in finished.stderr
    assert "an uncaught RuntimeError" in finished.stderr and "on rank 2: ending the whole MPI job" in finished.stderr
    assert "AFTER RUN" not in finished.stdout and "without calling run()" not in finished.stderr


def test_a_test_suite_with_a_failing_test_under_mpiexec_is_not_an_uncaught_error(tmp_path):
    """pytest keeps a failed test's exception in sys.last_value (for a post-mortem), where the check
    for an uncaught exception at exit read it as the script's own end, and aborted the job."""
    (tmp_path / "test_it.py").write_text(
        "import pytest\n"
        "import mpibohb  # noqa: F401\n"
        "@pytest.mark.xfail(strict=True)\n"
        "def test_expected_to_fail():\n"
        "    assert False\n")
    finished = run_command([mpiexec(), "-n", "2", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "test_it.py"], timeout=120, cwd=tmp_path)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert finished.stdout.count("1 xfailed") == 2 and "uncaught" not in finished.stderr


def test_an_error_kept_by_a_coroutine_for_a_post_mortem_is_not_an_uncaught_one(tmp_path):
    """A coroutine's frame has no caller once it ends, as the top of a script has none: IPython's
    shown errors aborted the job at exit (with the script's own excepthook, as IPython installs)."""
    finished = run_mpi(3, AFTER, "--own_excepthook", "--kept_error", "--sleep", "1", timeout=60, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "RESULT 19" in finished.stdout and "uncaught" not in finished.stderr


def test_runs_on_one_rank_communicators_leave_the_world_s_messages_to_the_script(tmp_path):
    """Each rank runs a study of its own on COMM_SELF, then rank 0 collects the others' results
    with ANY_SOURCE and ANY_TAG: only theirs arrive (a rank that leaves without run() tells rank 0,
    and these ranks did call it). A script that imports mpibohb without its optimizers, or only
    reads a run with load_result, sends nothing either."""
    (tmp_path / "own.py").write_text(
        "import sys\n"
        "from mpi4py import MPI\n"
        "import mpibohb\n"
        "world = MPI.COMM_WORLD\n"
        "rank = world.Get_rank()\n"
        "if sys.argv[1] == 'load':\n"
        "    mpibohb.load_result(sys.argv[2])\n"
        "if sys.argv[1] == 'run':\n"
        "    import ConfigSpace as CS\n"
        "    from mpibohb import RandomSearch\n"
        "    res = RandomSearch(CS.ConfigurationSpace({'x': (0.0, 1.0)}), seed=rank).run(\n"
        "        n_iterations=1 + 20 * rank, worker=lambda config, budget: config['x'], comm=MPI.COMM_SELF)\n"
        "if rank == 0:\n"
        "    got = sorted(world.recv(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG) for _ in range(world.Get_size() - 1))\n"
        "    print('GOT', got, flush=True)\n"
        "else:\n"
        "    world.send(f'from {rank}', dest=0, tag=1)\n")
    HyperBand(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=9, seed=1,
              run_dir=tmp_path / "done").run(n_iterations=1, worker=lambda config, budget: config["x"])
    for how in ("run", "import", "load"):
        finished = run_mpi(3, tmp_path / "own.py", how, str(tmp_path / "done"), timeout=60, cwd=tmp_path)
        assert finished.returncode == 0, finished.stderr[-3000:]
        assert "GOT ['from 1', 'from 2']" in finished.stdout, finished.stdout + finished.stderr[-3000:]


def test_an_unguarded_analysis_after_workers_return_names_the_guard(tmp_path):
    """With workers_return=True the worker ranks get None; a script that reads it on every rank
    ends the job (an error on a rank), and the message says what to write."""
    finished = run_mpi(3, AFTER, "--workers_return", "--then", "unguarded", timeout=60, cwd=tmp_path)
    assert finished.returncode == 1, finished.stderr[-3000:]
    assert "AttributeError: 'NoneType' object has no attribute 'get_all_runs'" in finished.stderr
    assert "mpibohb: run() returned None on this worker rank (workers_return=True): keep the analysis after " \
           "run() under `if res is not None:`" in finished.stderr, finished.stderr[-3000:]


def test_a_rank_that_ends_its_script_without_run_ends_the_job_instead_of_a_hang(tmp_path):
    """Rank 2 ends its script without calling run() (a run guarded by ``if rank == 0:``): rank 0
    and 1 would wait for it for ever; rank 2 tells rank 0 at its exit, and the job ends saying why."""
    finished = run_mpi(3, AFTER, "--before", "skip", timeout=60, cwd=tmp_path)
    assert finished.returncode == 1, finished.stderr[-3000:]
    assert "SKIPPED RUN on rank 2" in finished.stdout
    assert "RuntimeError: rank 2 has ended its script without calling run(), so this run would wait for it for " \
           "ever" in finished.stderr, finished.stderr[-3000:]
    assert "AFTER RUN" not in finished.stdout


def test_a_rank_that_comes_late_to_run_is_waited_for_asleep_with_a_warning(tmp_path):
    """The worker ranks call run() 4 s after rank 0: rank 0 says why it waits, sleeps meanwhile
    (a rank blocked in an MPI collective would spin a core for those 4 s), and the run goes on."""
    finished = run_mpi(3, AFTER, "--before", "late", timeout=90, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stderr.count("has waited 1 s in run() for the other ranks of its communicator: under mpiexec "
                                 "every process must call run()") == 1, finished.stderr[-3000:]
    assert finished.stdout.count("RESULT 19") == 1
    cpu = float(finished.stdout.split("RUN CPU ")[1].split()[0])
    assert cpu < 2.0, f"rank 0 used {cpu} s of CPU in run(), 4 s of which it waited"


def test_a_process_that_a_rank_starts_is_not_a_rank_an_error_there_ends_only_it(tmp_path):
    """compute runs a Python child through the shell (it inherits the rank's launcher variables
    and file descriptors); the child imports mpibohb and fails: only the child ends."""
    (tmp_path / "run.py").write_text(
        "import os, sys\n"
        "import ConfigSpace as CS\n"
        "from mpibohb import HyperBand\n"
        "def loss(config, budget):\n"
        "    code = os.system(f'{sys.executable} child.py')\n"
        "    return 1.0 if code else 0.5\n"
        "res = HyperBand(CS.ConfigurationSpace({'x': (0.0, 1.0)}), min_budget=1, max_budget=9, seed=3).run(\n"
        "    n_iterations=1, worker=loss)\n"
        "if res is not None:\n"
        "    print('RESULT', sorted({r.loss for r in res.get_all_runs()}), flush=True)\n")
    (tmp_path / "child.py").write_text("import mpibohb\nraise RuntimeError('child failed')\n")
    finished = run_mpi(2, tmp_path / "run.py", timeout=90, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "RESULT [1.0]" in finished.stdout  # every child failed, and said so by its exit code
    assert "RuntimeError: child failed" in finished.stderr and "ending the whole MPI job" not in finished.stderr
