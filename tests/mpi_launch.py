"""Start ``mpiexec -n K python ...`` for tests: a new session, a timeout, the group killed after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).parent / "scripts"
ROOT = Path(__file__).parent.parent


def mpiexec() -> str:
    """The ``mpiexec`` next to this Python (the mpich wheel's), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else "mpiexec"


def mpi_environment() -> dict[str, str]:
    """The environment for an MPI child: Open MPI may run as root and oversubscribe."""
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


@dataclass
class Finished:
    """What a launched command did."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_command(command: list[str], timeout: float, cwd: str | os.PathLike | None = None) -> Finished:
    """Run ``command`` in its own session; on timeout kill its whole process group and raise."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=mpi_environment(), cwd=cwd, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"{command} still running after {timeout} s; killed.\n"
                             f"stdout:\n{stdout[-3000:]}\nstderr:\n{stderr[-3000:]}") from None
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # leftovers of a launcher that exited first
        except ProcessLookupError:
            pass
    return Finished(process.returncode, stdout, stderr, time.monotonic() - started)


def run_at_once(commands: Sequence[Sequence[str]], timeout: float,
                cwds: Sequence[str | os.PathLike | None] | None = None,
                environment: dict[str, str] | None = None) -> list[Finished]:
    """Run ``commands`` side by side (in ``cwds``), each in its own session, with ``environment``
    added to the MPI child environment; after ``timeout`` seconds in all, kill every process group
    and raise."""
    started = time.monotonic()
    env = dict(mpi_environment(), **(environment or {}))
    processes = [subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env, cwd=cwd, start_new_session=True)
                 for command, cwd in zip(commands, cwds or [None] * len(commands))]
    finished = []
    try:
        for command, process in zip(commands, processes):
            left = max(0.1, timeout - (time.monotonic() - started))
            try:
                stdout, stderr = process.communicate(timeout=left)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{list(command)} still running after {timeout} s; killed.") from None
            finished.append(Finished(process.returncode, stdout, stderr, time.monotonic() - started))
        return finished
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # a timeout, or leftovers of a launcher that exited first
            except ProcessLookupError:
                pass
            if process.returncode is None:
                process.communicate()


def run_mpi(ranks: int, script: str | os.PathLike, *args: str, timeout: float = 120,
            cwd: str | os.PathLike | None = None) -> Finished:
    """``mpiexec -n ranks python script args...``"""
    return run_command([mpiexec(), "-n", str(ranks), sys.executable, str(script), *args], timeout, cwd)


def run_python_many(*commands: Sequence[Any], timeout: float = 180) -> list[subprocess.CompletedProcess]:
    """Several ``python *args`` calls at once in the repository (each import takes seconds); their
    completed processes, in order. Any still running when this returns is killed."""
    processes = [subprocess.Popen([sys.executable, *map(str, args)], cwd=ROOT, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for args in commands]
    try:
        done = []
        for process in processes:
            stdout, stderr = process.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
        return done
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
