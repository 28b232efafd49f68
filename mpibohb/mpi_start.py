"""Starting MPI in a rank, with a sentry for the ranks that will never start it.

``MPI_Init`` waits until every rank of the job has called it, and MPICH's launcher (hydra) does not
end the job when a rank exits before (MPICH issue 6124, closed as "wontfix"), nor does srun without
``--kill-on-bad-exit``: a rank whose script failed before it reached ``run()`` (a file or a GPU
missing for it) left the others waiting in ``MPI_Init`` until the allocation's time limit, each
spinning a core. ``MPI_Init`` holds the GIL, so no thread of the rank can look meanwhile: a small
process of its own (:mod:`mpibohb.mpi_start_sentry`) does, and ends the rank (under srun, its job
step) if a sibling rank has ended.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

logger = logging.getLogger("mpibohb")

_HYDRA_PROXY = "hydra_pmi_proxy"  # the process of MPICH's launcher that starts a node's ranks
_SLURM_STEP = "slurmstepd"  # the process of SLURM that starts a node's tasks of a job step (srun)
_ANCESTORS = 8  # wrappers between the launcher and the rank (a shell script, a profiler)
NOTICE_VARIABLE = "MPIBOHB_START_NOTICE_SECONDS"
DEFAULT_NOTICE_SECONDS = 60.0  # each node's first rank says why it still waits, once: MPI starts in seconds
_SENTRY = Path(__file__).with_name("mpi_start_sentry.py")


def start_mpi() -> Any:
    """Import ``mpi4py.MPI`` (which starts MPI), with a sentry beside it on Linux under MPICH's
    launcher (hydra) or srun; returns the module.

    Raises:
        ValueError: a bad ``MPIBOHB_START_NOTICE_SECONDS`` (see :func:`notice_seconds`).
    """
    if "mpi4py.MPI" in sys.modules:
        return sys.modules["mpi4py.MPI"]
    sentry = _start_sentry()
    try:
        from mpi4py import MPI
    finally:
        if sentry is not None:
            _end_sentry(*sentry)
    return MPI


def notice_seconds() -> float:
    """How long the first rank of each node waits in ``MPI_Init`` before it says why:
    ``MPIBOHB_START_NOTICE_SECONDS`` or 60 (a job whose ranks load data before ``run()`` may want more).

    Raises:
        ValueError: the variable is not a number of seconds > 0.
    """
    text = os.environ.get(NOTICE_VARIABLE, "").strip()
    if not text:
        return DEFAULT_NOTICE_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise ValueError(f"{NOTICE_VARIABLE}={text!r} is not a number of seconds > 0 (default "
                         f"{DEFAULT_NOTICE_SECONDS:.0f})")
    return seconds


class Watched(NamedTuple):
    """What a sentry watches: the launcher process that started this rank, and where the rank is."""

    launcher_pid: int
    local_ranks: int  # how many ranks the launcher process started on this node (0: not told)
    local_rank: int  # this rank's place among them
    world_rank: int
    world_size: int  # 0: not told
    step: str  # under srun, the job step (JOB.STEP) that the sentry cancels; "-" under hydra


def _start_sentry() -> tuple[subprocess.Popen, int] | None:
    """The sentry process and the write end of its pipe, or ``None`` where there is nothing to watch
    or no sentry can run: the ``sys.executable`` of a frozen application or of a program that
    embeds Python is that program, and a package in a zip file has no sentry file to run."""
    wait = notice_seconds()
    watched = _watched()
    if watched is None or not _a_python(sys.executable) or getattr(sys, "frozen", False) or not _SENTRY.is_file():
        return None
    read_end, write_end = os.pipe()  # not inherited by what the rank starts later (PEP 446)
    command = [sys.executable, "-I", "-S", str(_SENTRY), str(os.getpid()), *map(str, watched), str(wait)]
    try:
        # close_fds: the sentry must not hold the rank's PMI socket, which tells the launcher it died
        sentry = subprocess.Popen(command, stdin=read_end, stdout=subprocess.DEVNULL, close_fds=True)
    except OSError as error:
        logger.debug("no sentry for the start of MPI: %s", error)
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    return sentry, write_end


def _end_sentry(sentry: subprocess.Popen, write_end: int) -> None:
    """End the sentry once MPI has started: it has nothing to clean up, and one still starting
    (Python from a slow shared file system) would hold the rank."""
    os.close(write_end)
    sentry.kill()
    sentry.wait()


def _a_python(executable: str) -> bool:
    """Whether ``executable`` has a Python interpreter's name (``python3.11``, ``pypy3``)."""
    return Path(executable).name.lower().startswith(("python", "pypy"))


def _watched() -> Watched | None:
    """What this rank's sentry watches, or ``None``: another launcher, variables missing, no ``/proc``."""
    launcher = _launcher_process()
    if launcher is None:
        logger.debug("no sentry for the start of MPI: no launcher process of MPICH or SLURM among this rank's parents")
        return None
    pid, name = launcher
    env = os.environ
    if name == _HYDRA_PROXY:  # -pmi-port gives the rank in PMI_ID and no size
        values = (env.get("MPI_LOCALNRANKS", "0"), env.get("MPI_LOCALRANKID", ""),
                  env.get("PMI_RANK", env.get("PMI_ID", "")), env.get("PMI_SIZE", "0"))
        step = "-"
    else:
        values = (str(_slurm_tasks_here()), env.get("SLURM_LOCALID", ""), env.get("SLURM_PROCID", ""),
                  env.get("SLURM_STEP_NUM_TASKS", env.get("SLURM_NTASKS", "0")))
        step = f"{env.get('SLURM_JOB_ID', '')}.{env.get('SLURM_STEP_ID', '')}"
    if not all(value.isdigit() for value in values) or not re.fullmatch(r"-|\d+\.\d+", step):
        return None
    local_ranks, local_rank, world_rank, world_size = map(int, values)
    return Watched(pid, local_ranks, local_rank, world_rank, world_size, step)


def _slurm_tasks_here() -> int:
    """How many tasks of this job step srun started on this node (``SLURM_STEP_TASKS_PER_NODE``,
    such as ``2(x3),1``, at ``SLURM_NODEID``), or 0 when the variables do not tell."""
    counts: list[int] = []
    for item in os.environ.get("SLURM_STEP_TASKS_PER_NODE", "").split(","):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", item.strip())
        if match is None:
            return 0
        counts += [int(match[1])] * int(match[2] or 1)
    node = os.environ.get("SLURM_NODEID", "")
    return counts[int(node)] if node.isdigit() and int(node) < len(counts) else 0


def _launcher_process() -> tuple[int, str] | None:
    """The pid and name of the launcher process that started this rank (through at most a few
    wrappers): MPICH's ``hydra_pmi_proxy`` or SLURM's ``slurmstepd``; ``None`` for another
    launcher, or without ``/proc`` to tell (or where it hides other users' processes: hidepid)."""
    for pid, name in process_parents(_ANCESTORS):
        if name in (_HYDRA_PROXY, _SLURM_STEP):
            return pid, name
    return None


def process_parents(limit: int) -> Iterator[tuple[int, str | None]]:
    """This process's parent, the parent's parent, and so on up to ``limit`` of them, before pid 1:
    each as ``(pid, name)``, the name ``None`` where ``/proc`` does not tell, which ends the walk."""
    pid = os.getppid()
    for _ in range(limit):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            yield pid, None
            return
        yield pid, stat[stat.index("(") + 1:stat.rindex(")")]
        pid = int(stat[stat.rindex(")") + 2:].split()[1])
        if pid <= 1:
            return
