"""The sentry of one rank while it starts MPI: a process of its own, standard library only.

Run as ``python -I -S mpi_start_sentry.py RANK_PID LAUNCHER_PID LOCAL_RANKS LOCAL_RANK WORLD_RANK
WORLD_SIZE STEP NOTICE_SECONDS`` by :mod:`mpibohb.mpi_start`, with the read end of a pipe as its
standard input: the rank closes the write end once ``MPI_Init`` has returned (or the rank has
died), and the sentry ends. Meanwhile, once a second, it looks at the rank's siblings, the
processes that the same launcher process started on this node (MPICH's ``hydra_pmi_proxy``, or
SLURM's ``slurmstepd`` under srun). If one has ended, it can no longer start MPI, and the launcher
would leave every other rank waiting in ``MPI_Init`` for ever (MPICH issue 6124, closed as
"wontfix"; srun without ``--kill-on-bad-exit``): the sentry says so and kills its rank, which
MPICH's launcher then sees as a failed process, so it ends the whole job; under srun it cancels
the job step first. On the first rank of each node it also says, once, that the start has taken
``NOTICE_SECONDS``: a rank on another node is out of its sight.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time

_LOOK_SECONDS = 1.0  # between two looks at the siblings: a wait in MPI_Init lasts seconds at least
# Siblings fewer than the launcher's count when the sentry starts may still be on their way (the
# launcher starts them one by one): counted short only after this long
_MISSING_GRACE_SECONDS = 10.0
_LAST_LOOK_SECONDS = 0.2  # before the kill: the rank may have left MPI_Init meanwhile
# a wrapper ended, its rank lives on: every process's environment is read again only this often
_CHECK_AGAIN_SECONDS = 10.0
_MAX_ANCESTORS = 64  # a process's parents looked at for a launcher: deeper is no job's rank
_SCANCEL_SECONDS = 30.0  # SLURM's controller answers in well under a second when it is well
_SLURM_PLACES = ("/usr/bin", "/usr/local/bin", "/opt/slurm/bin", "/usr/local/slurm/bin", "/opt/slurm/current/bin")


def _stat(pid: int) -> tuple[str, int, str] | None:
    """``(state, parent pid, start time)`` of a process, or ``None`` when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), fields[19]


def _children(parent: int) -> dict[int, str]:
    """The live children of ``parent``, each with its start time (which tells a reused pid apart)."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None and stat[1] == parent and stat[0] not in "ZX":
                children[int(name)] = stat[2]
    return children


def _alive(pid: int, parent: int, started: str) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] == parent and stat[2] == started and stat[0] not in "ZX"


def _ranks_alive(step: str, launcher_pid: int) -> set[str]:
    """The ranks of this job that have a live process on this node, as the processes' environments
    tell: a rank whose wrapper (a launcher's child) ended, having put it in the background
    (``setsid`` forks when it leads its process group, as srun's task 0 does), still counts. Only
    a check before an end: a process of another job that looks the same only keeps a rank alive.
    MPICH's launcher gives no job identity in the environment, so there a process under another
    launcher process like ours (another job's ``hydra_pmi_proxy``), or one older than ours (another
    job's rank in the background), is not one of ours."""
    # the job, and the node as the launcher names it (two "nodes" may share one machine's /proc)
    job = ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_NODEID") if step != "-" else (
        "PMI_HOSTNAME", "PMI_SIZE", "PMI_PORT", "MPI_LOCALNRANKS")
    ranks = ("SLURM_PROCID",) if step != "-" else ("PMI_RANK", "PMI_ID")
    mine = {name: os.environ.get(name) for name in job}
    launcher = _launcher_identity(launcher_pid) if step == "-" else None
    alive = set()
    for name in os.listdir("/proc"):
        stat = _stat(int(name)) if name.isdigit() else None
        if stat is None or stat[0] in "ZX":
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                items = environ.read().decode(errors="replace").split("\0")
        except OSError:  # another user's process, or gone
            continue
        env = dict(item.split("=", 1) for item in items if "=" in item)
        rank = next((env[key] for key in ranks if key in env), None)
        if rank is not None and all(env.get(key) == value for key, value in mine.items()) \
                and not (launcher is not None and _of_another_job(int(name), int(stat[2]), launcher_pid, *launcher)):
            alive.add(rank)
    return alive


def _launcher_identity(launcher_pid: int) -> tuple[str, int] | None:
    """The launcher process's command name and start time (clock ticks), ``None`` when unreadable."""
    stat, name = _stat(launcher_pid), _command_name(launcher_pid)
    return None if stat is None or name is None else (name, int(stat[2]))


def _of_another_job(pid: int, started: int, launcher_pid: int, launcher: str, launched: int) -> bool:
    """Whether a process that looks like a rank of this job is another job's: it started before
    this job's launcher process, or it runs below another launcher process of the same name."""
    return started < launched or _under_another(pid, launcher_pid, launcher)


def _command_name(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip()
    except OSError:
        return None


def _under_another(pid: int, launcher_pid: int, launcher: str) -> bool:
    """Whether ``pid`` descends from a launcher process other than ``launcher_pid`` with its name
    (a rank of another job); one put in the background by a wrapper hangs below no launcher."""
    for _ in range(_MAX_ANCESTORS):
        stat = _stat(pid)
        if stat is None or stat[1] <= 1:
            return False
        pid = stat[1]
        if pid == launcher_pid:
            return False
        if _command_name(pid) == launcher:
            return True
    return False


def _say(text: str) -> None:
    """Write ``text`` to the rank's standard error, if it can be written (a full disk must not keep
    the sentry from its kill)."""
    try:
        os.write(2, f"mpibohb: {text}\n".encode())
    except OSError:
        pass


def _started(timeout: float) -> bool:
    """Whether the rank has left MPI_Init (or died) within ``timeout`` seconds: its pipe is closed."""
    ready, _, _ = select.select([0], [], [], timeout)
    return bool(ready)


def watch(rank_pid: int, launcher_pid: int, local_ranks: int, local_rank: int, world_rank: int, world_size: int,
          step: str, notice_seconds: float) -> None:
    """Look at the siblings until the rank has started MPI; end the rank (and under srun its job
    step) if one has ended. ``local_ranks``: how many the launcher started on this node (0: not
    told, none counted missing); ``local_rank``: this rank's place among them (the first one on
    each node gives the notice); ``world_size``: 0 when not told; ``step``: ``JOB.STEP`` under
    srun, ``-`` under MPICH's launcher."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a Ctrl-C to the job ends this process without a traceback
    began = time.monotonic()
    siblings = _children(launcher_pid)
    noticed = False
    checked_again = 0.0  # when the ranks' processes may be looked for again, after a wrapper ended
    while not _started(_LOOK_SECONDS):
        waited = time.monotonic() - began
        if len(siblings) < local_ranks and waited < _MISSING_GRACE_SECONDS:
            siblings.update(_children(launcher_pid))
        alive = sum(_alive(pid, launcher_pid, started) for pid, started in siblings.items())
        ended = len(siblings) - alive
        missing = local_ranks - len(siblings) if waited >= _MISSING_GRACE_SECONDS else 0
        # more children than ranks: the launcher started something else too, and what ended may be that
        told = local_ranks == 0 or len(siblings) <= local_ranks
        if told and (ended > 0 or missing > 0) and time.monotonic() >= checked_again:
            if len(_ranks_alive(step, launcher_pid)) < (local_ranks or len(siblings)):
                if not _started(_LAST_LOOK_SECONDS):
                    _end(rank_pid, world_rank, step, ended + missing, local_ranks or len(siblings))
                return
            checked_again = time.monotonic() + _CHECK_AGAIN_SECONDS
        if local_rank == 0 and not noticed and waited >= notice_seconds:
            noticed = True
            ranks = f"{world_size} ranks" if world_size else "ranks"
            first = "`mpiexec ... python -m mpi4py script.py`" if step == "-" else \
                "`srun --kill-on-bad-exit=1 ... python -m mpi4py script.py` (as the SLURM job script runs)"
            _say(f"rank {world_rank} has waited {notice_seconds:g} s for the job's {ranks} to start MPI "
                 "(each starts it in run()). Ranks still getting there are fine, but a rank that ended before (an "
                 "error in its output, or a lost node) leaves the others waiting for ever: end the job then. "
                 f"{first} starts MPI first on every rank, and an error on one then ends the job "
                 "(docs/reliability.md)")
        if os.getppid() != rank_pid:
            return  # the rank has died, and this process was handed to another parent


def _end(rank_pid: int, world_rank: int, step: str, ended: int, ranks_here: int) -> None:
    """Say why, then end the rank; under srun cancel its job step first: srun (without
    ``--kill-on-bad-exit``) would not end the step for a killed task."""
    launcher = "MPICH's mpiexec" if step == "-" else "srun"
    ending = "this rank" if step == "-" else f"the job step (scancel {step})"
    _say(f"rank {world_rank}: {ended} of the {ranks_here} ranks on this node ended before starting MPI (their "
         f"output above says why), and {launcher} would leave the others waiting for them for ever; ending "
         f"{ending} so that the whole job ends")
    if step != "-":
        try:
            subprocess.run([_scancel(), step], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           timeout=_SCANCEL_SECONDS, check=False)
        except (OSError, subprocess.SubprocessError) as error:
            _say(f"rank {world_rank}: scancel {step} failed ({error}); ending this rank only, and ranks on other "
                 "nodes may wait until the time limit")
    if os.getppid() == rank_pid:  # else the rank is gone (scancel ended it), and its pid may be another's now
        os.kill(rank_pid, signal.SIGKILL)  # MPI_Init holds the rank's GIL: no Python handler would run


def _scancel() -> str:
    """SLURM's ``scancel``: on the PATH, else where SLURM is commonly installed (``srun
    --export=NONE`` leaves the tasks a PATH of /bin and /usr/bin)."""
    for found in (shutil.which("scancel"), *(f"{place}/scancel" for place in _SLURM_PLACES)):
        if found and os.access(found, os.X_OK):
            return found
    return "scancel"  # not found: the error names it


if __name__ == "__main__":
    rank_pid, launcher_pid, ranks_here, rank_here, world_rank, world_size = (int(value) for value in sys.argv[1:7])
    watch(rank_pid, launcher_pid, ranks_here, rank_here, world_rank, world_size, sys.argv[7], float(sys.argv[8]))
