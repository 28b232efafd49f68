"""The examples run as users run them: ``python examples/quickstart.py``."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes  # as users run them: python examples/...
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# variables an MPI launcher sets; the example must run serially even if pytest runs under one
LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")


def run_example(name: str, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run an example in its own process group; kill the whole group if it exceeds ``timeout``."""
    environment = {key: value for key, value in os.environ.items() if key not in LAUNCHER_VARIABLES}
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), *arguments],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
        cwd=EXAMPLES.parent, start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"{name} did not finish in {timeout} s\n{stdout}\n{stderr}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_quickstart_runs_and_prints_the_incumbent() -> None:
    completed = run_example("quickstart.py")
    assert completed.returncode == 0, completed.stderr
    assert "Best found configuration" in completed.stdout, completed.stdout


def check_checkpointing_output(stdout: str) -> None:
    lines = dict(line.split(": ", 1) for line in stdout.splitlines() if line.startswith(("continued", "checkpoints")))
    assert int(lines["continued from a checkpoint"].split()[0]) > 0, stdout
    assert len(ast.literal_eval(lines["checkpoints left"])) == 1, stdout  # the incumbent's
    assert "13 evaluations, 21 epochs trained (27 if every budget were trained from zero" in stdout, stdout


def test_checkpointing_example_continues_promoted_configurations(tmp_path) -> None:
    completed = run_example("checkpointing.py", "--n_iterations", "1", "--max_budget", "9",
                            "--run_dir", str(tmp_path / "run"))
    assert completed.returncode == 0, completed.stderr
    check_checkpointing_output(completed.stdout)


@pytest.mark.mpiexec
def test_checkpointing_example_under_mpiexec(tmp_path) -> None:
    from mpi_launch import mpiexec, run_command

    completed = run_command([mpiexec(), "-n", "3", sys.executable, str(EXAMPLES / "checkpointing.py"),
                             "--n_iterations", "1", "--max_budget", "9", "--run_dir", str(tmp_path / "run")],
                            timeout=120)
    assert completed.returncode == 0, completed.stderr
    check_checkpointing_output(completed.stdout)
