"""A rank that ends before it starts MPI, under MPICH's real ``mpiexec``: the others, waiting for it
in ``MPI_Init``, end the job instead of waiting for ever (MPICH issue 6124)."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mpi_launch import SCRIPTS, mpi_environment, mpiexec, run_command, run_mpi

from mpibohb import mpi_start

EARLY = SCRIPTS / "early_exit_run.py"
FAKE_LAUNCHER = SCRIPTS / "fake_launcher.py"
ENDED = "ranks on this node ended before starting MPI (their output above says why)"


def hydra() -> bool:
    """Whether the tests' ``mpiexec`` is MPICH's hydra (its proxy beside it), told without starting it."""
    return (Path(mpiexec()).parent / "hydra_pmi_proxy").exists() or shutil.which("hydra_pmi_proxy") is not None


needs_hydra = pytest.mark.skipif(not hydra(), reason="the sentry watches MPICH's launcher (hydra) only")


def two_nodes(hosts: str, *args: str) -> list[str]:
    """``mpiexec`` with one launcher process per host in ``hosts`` (``a:2,b:2``), all on this machine."""
    ranks = sum(int(host.split(":")[1]) for host in hosts.split(","))
    return [mpiexec(), "-launcher", "ssh", "-launcher-exec", str(SCRIPTS / "local_ssh"), "-hosts", hosts,
            "-n", str(ranks), sys.executable, str(EARLY), *args]


@pytest.mark.mpiexec
@needs_hydra
@pytest.mark.parametrize("end, after", [("exit1", 0), ("exit0", 3)])
def test_a_rank_that_ends_before_starting_mpi_ends_the_job(end, after, tmp_path):
    """Rank 2 ends before it imports mpibohb, at once or after the others started waiting for it:
    before, ranks 0 and 1 waited in MPI_Init for ever. (MPICH's launcher sees a rank killed by a
    signal, and ends the job itself.)"""
    finished = run_mpi(3, EARLY, str(tmp_path / "run"), "--rank", "2", "--end", end, "--after", str(after),
                       timeout=90)
    assert f"RANK 2 ENDS BEFORE MPI ({end})" in finished.stderr
    assert ENDED in finished.stderr, finished.stderr[-3000:]
    assert finished.returncode != 0
    assert "RESULT" not in finished.stdout


@pytest.mark.mpiexec
@needs_hydra
def test_a_rank_that_ends_before_mpi_on_another_node_ends_the_job(tmp_path):
    """Two launcher processes, as on two nodes: rank 2 ends on the second; rank 3 beside it sees it
    and ends, and the launcher then ends ranks 0 and 1 on the first."""
    finished = run_command(two_nodes("a:2,b:2", str(tmp_path / "run"), "--rank", "2", "--after", "2"), timeout=90)
    assert "mpibohb: rank 3: 1 of the 2 " + ENDED in finished.stderr, finished.stderr[-3000:]
    assert finished.returncode != 0
    assert "RESULT" not in finished.stdout


@pytest.mark.mpiexec
@needs_hydra
def test_a_sentry_that_cannot_write_its_message_still_ends_the_job(tmp_path):
    """The ranks' standard error is a full disk: the sentry's message fails, and it kills its rank
    all the same (it died of the failed write, and the job waited for ever)."""
    script = f"exec {sys.executable} {EARLY} {tmp_path / 'run'} --rank 2 --after 3 2>/dev/full"
    finished = run_command([mpiexec(), "-n", "3", "sh", "-c", script], timeout=90)
    assert finished.returncode != 0
    assert "RESULT" not in finished.stdout


DECOY = "import time; time.sleep(120)  # decoy"


@pytest.mark.mpiexec
@needs_hydra
@pytest.mark.parametrize("background", [False, True])
def test_another_job_of_as_many_ranks_on_the_node_does_not_keep_an_ended_rank_alive(tmp_path, background):
    """MPICH gives a rank no job identity in its environment, so the sentries took the ranks of
    another 3-rank job on the node for this job's: its rank 2, ended before MPI, counted as alive,
    and the job waited as long as the other ran (the test suite's own MPI jobs made this test above
    hang under load). ``background``: the other job's rank 2 runs under ``setsid``, which forks, so
    no launcher process is its parent any more."""
    python = [sys.executable, "-c", DECOY]
    ranks = ["-n", "2", *python, ":", "-n", "1", "setsid", *python] if background else ["-n", "3", *python]
    decoy = subprocess.Popen([mpiexec(), *ranks], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=mpi_environment(), start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(_processes_running(DECOY)) < 3:
            assert time.monotonic() < deadline and decoy.poll() is None, "the other job did not start"
            time.sleep(0.1)
        finished = run_command([mpiexec(), "-n", "3", sys.executable, str(EARLY), str(tmp_path / "run"), "--rank",
                                "2", "--after", "3"], timeout=90)
        assert decoy.poll() is None, "the other job ended first: nothing was tested"
    finally:
        os.killpg(decoy.pid, signal.SIGKILL)
        decoy.wait()
        for pid in _processes_running(DECOY):  # a rank in the background has no launcher to end it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert finished.returncode != 0 and "RESULT" not in finished.stdout
    assert ENDED in finished.stderr, finished.stderr[-3000:]


def _processes_running(code: str) -> list[int]:
    """The Python processes running ``python -c code`` (not the mpiexec that started them)."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")[1:3] == [b"-c", code.encode()]:
                found.append(int(name))
        except OSError:
            continue
    return found


@pytest.mark.mpiexec
@needs_hydra
@pytest.mark.parametrize("hosts, ended, says", [("a:2,b:1", 2, 0), ("a:1,b:2", 0, 1)])
def test_a_node_s_first_rank_says_why_it_waits_when_the_rank_that_ended_was_alone_on_its_node(hosts, ended, says,
                                                                                              tmp_path):
    """A rank alone on its node ends before MPI: nobody on its node can see it, MPICH's launcher
    waits for ever, and the first rank of each other node says why after MPIBOHB_START_NOTICE_SECONDS
    (the test ends the job). When rank 0 was the one, nobody said anything."""
    command = two_nodes(hosts, str(tmp_path / "run"), "--rank", str(ended))
    env = dict(mpi_environment(), MPIBOHB_START_NOTICE_SECONDS="3")
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env,
                               start_new_session=True)
    said = ""
    try:
        deadline = time.monotonic() + 60
        assert process.stderr is not None
        while time.monotonic() < deadline and "has waited" not in said:
            if select.select([process.stderr], [], [], 0.2)[0]:
                chunk = os.read(process.stderr.fileno(), 65536)
                if not chunk:
                    break  # mpiexec has ended
                said += chunk.decode(errors="replace")
        time.sleep(1.5)  # a second notice, if one came, would come now
        while select.select([process.stderr], [], [], 0)[0] and (chunk := os.read(process.stderr.fileno(), 65536)):
            said += chunk.decode(errors="replace")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert f"mpibohb: rank {says} has waited 3 s for the job's 3 ranks to start MPI" in said, said[-3000:]
    assert said.count("has waited") == 1
    assert "python -m mpi4py script.py" in said
    assert ENDED not in said


@pytest.mark.mpiexec
@needs_hydra
def test_a_rank_whose_wrapper_put_it_in_the_background_is_not_taken_for_one_that_ended(tmp_path):
    """Rank 0 runs under ``setsid``, which forks when its process leads its group (as the first task
    of srun does, and each rank under hydra) and ends; rank 0 lives on, 13 s late to run(). The
    others' sentries saw their sibling end and killed a healthy job."""
    run = str(tmp_path / "run")
    late = [sys.executable, str(EARLY), run, "--rank", "0", "--end", "late", "--after", "13"]
    finished = run_command([mpiexec(), "-n", "1", "setsid", *late, ":", "-n", "2", *late], timeout=90)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "RESULT 13" in finished.stdout and ENDED not in finished.stderr


@pytest.mark.mpiexec
def test_the_sentry_is_gone_once_mpi_has_started(tmp_path):
    """A healthy run: every rank's sentry ended when MPI had started; no rank has a process left."""
    finished = run_mpi(3, EARLY, str(tmp_path / "run"), timeout=90)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("CHILDREN 0") == 3 and "RESULT 13" in finished.stdout
    assert ENDED not in finished.stderr and "has waited" not in finished.stderr


@pytest.mark.mpiexec
@needs_hydra
def test_mpiexec_with_a_pmi_port_starts_one_run_over_mpi(tmp_path):
    """``mpiexec -pmi-port`` tells a rank its rank in PMI_ID and no size: each rank ran a run of
    its own, and the second failed on the first's run directory."""
    finished = run_command([mpiexec(), "-pmi-port", "-n", "3", sys.executable, str(EARLY), str(tmp_path / "run")],
                           timeout=90)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("RESULT 13") == 1 and finished.stdout.count("CHILDREN 0") == 3


@pytest.mark.mpiexec
@needs_hydra
def test_a_frozen_application_is_not_started_again_as_the_sentry(tmp_path):
    """In an application that PyInstaller made, ``sys.executable`` is the application: run as the
    sentry, it ran the user's script again, twice on each rank."""
    app, mark = tmp_path / "app", tmp_path / "app_ran"
    app.write_text(f"#!/bin/sh\ntouch {mark}\n")
    app.chmod(0o755)
    finished = run_mpi(3, EARLY, str(tmp_path / "run"), "--frozen", str(app), timeout=90)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "RESULT 13" in finished.stdout
    assert not mark.exists()


def fake_launcher(*args: str):
    return run_command([sys.executable, str(FAKE_LAUNCHER), *args], timeout=60)


@pytest.mark.processes
@pytest.mark.parametrize("step", ["-", "999999.0"])
def test_the_sentry_ends_its_rank_when_a_sibling_ends(step):
    """Under srun (a step) it runs scancel first; here the step does not exist, and the kill comes all the same."""
    finished = fake_launcher("--sibling_ends", "1", "--step", step)
    assert "RANK KILLED" in finished.stdout, finished.stdout + finished.stderr
    launcher = "MPICH's mpiexec" if step == "-" else "srun"
    ending = "this rank" if step == "-" else "the job step (scancel 999999.0)"
    said = (f"mpibohb: rank 5: 1 of the 3 ranks on this node ended before starting MPI (their output above says "
            f"why), and {launcher} would leave the others waiting for them for ever; ending {ending}")
    assert said in finished.stderr, finished.stderr


@pytest.mark.processes
def test_the_sentry_leaves_a_rank_that_starts_mpi_and_ends_itself():
    finished = fake_launcher("--rank_starts", "2")
    assert "SENTRY GONE" in finished.stdout and "RANK ENDED 0" in finished.stdout, finished.stdout + finished.stderr
    assert "mpibohb" not in finished.stderr


@pytest.mark.processes
def test_the_sentry_does_not_count_more_children_than_ranks():
    """The launcher started a process that is not a rank (more children than ranks): it may end."""
    finished = fake_launcher("--sibling_ends", "1", "--local_ranks", "2", "--rank_starts", "3")
    assert "RANK ENDED 0" in finished.stdout, finished.stdout + finished.stderr
    assert "ended before starting MPI" not in finished.stderr


@pytest.mark.processes
@pytest.mark.parametrize("local_rank", [0, 1])
def test_only_the_first_rank_of_a_node_gives_the_notice_once(local_rank):
    finished = fake_launcher("--notice", "0.5", "--local_rank", str(local_rank), "--rank_starts", "3.5")
    assert "RANK ENDED 0" in finished.stdout, finished.stdout + finished.stderr
    notice = "mpibohb: rank 5 has waited 0.5 s for the job's 8 ranks to start MPI"
    assert finished.stderr.count(notice) == (1 if local_rank == 0 else 0), finished.stderr


@pytest.mark.parametrize("text", ["0", "-1", "soon", "nan"])
def test_a_bad_notice_time_is_an_error_naming_the_variable(text, monkeypatch):
    monkeypatch.setenv(mpi_start.NOTICE_VARIABLE, text)
    with pytest.raises(ValueError, match="MPIBOHB_START_NOTICE_SECONDS=.* is not a number of seconds > 0"):
        mpi_start.notice_seconds()


def test_the_notice_time_defaults_to_a_minute_and_reads_the_variable(monkeypatch):
    monkeypatch.delenv(mpi_start.NOTICE_VARIABLE, raising=False)
    assert mpi_start.notice_seconds() == 60
    monkeypatch.setenv(mpi_start.NOTICE_VARIABLE, " 600 ")
    assert mpi_start.notice_seconds() == 600


@pytest.mark.parametrize("tasks, node, count", [("2(x3),1", "1", 2), ("2(x3),1", "3", 1), ("4", "0", 4),
                                                ("2(x3),1", "4", 0), ("2(x3)", "", 0), ("two", "0", 0), ("", "0", 0)])
def test_the_tasks_srun_started_on_this_node_are_read_from_its_variables(tasks, node, count, monkeypatch):
    monkeypatch.setenv("SLURM_STEP_TASKS_PER_NODE", tasks)
    monkeypatch.setenv("SLURM_NODEID", node)
    assert mpi_start._slurm_tasks_here() == count
