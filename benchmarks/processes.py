"""Subprocesses of the benchmarks: each in its own process group, killed with its group on a timeout.

Standard library only, so that every benchmark script can import it in any of the virtual
environments (the project's, HpBandSter's, the peers'). A benchmark that starts itself or another
benchmark does so as a module, ``[python, "-m", "benchmarks.NAME", ...]`` with ``cwd`` the
repository root, which ``-m`` puts first on the child's import path: no script edits that path.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finished:
    """How a subprocess ended: ``returncode`` is None when it was killed after the timeout."""

    returncode: int | None
    stdout: str
    stderr: str

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def last_error_line(self) -> str:
        """The last line it wrote to stderr (``no output`` when there is none)."""
        return ((self.stderr or "").strip().splitlines() or ["no output"])[-1]


def run_in_group(command: list[str], timeout: float, **popen_arguments: Any) -> Finished:
    """Run ``command`` in a new process group; on ``timeout`` kill the whole group. Output is
    captured as text unless ``stdout``/``stderr`` are given."""
    popen_arguments.setdefault("stdout", subprocess.PIPE)
    popen_arguments.setdefault("stderr", subprocess.PIPE)
    proc = subprocess.Popen(command, text=True, start_new_session=True, **popen_arguments)
    try:
        out, err = proc.communicate(timeout=timeout)
        return Finished(proc.returncode, out or "", err or "")
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return Finished(None, out or "", err or "")
