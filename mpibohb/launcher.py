"""Whether this process was started by an MPI launcher, and ending the whole job from one rank.

Nothing here imports mpi4py until it is needed: a process outside any launcher never loads MPI.
A rank whose process ends on an error while the others wait for it in a collective leaves the job
hanging for ever, spinning a core per rank (MPICH busy-polls); so under a launcher with more than
one process, an error that ends a rank ends the job (``MPI_Abort``), as ``python -m mpi4py`` does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from types import TracebackType
from typing import Any

# Set in every process started by an MPI launcher: MPICH's hydra and srun --mpi=pmi2 (PMI_SIZE),
# Open MPI (OMPI_COMM_WORLD_SIZE), PMIx launchers such as srun --mpi=pmix (PMIX_RANK).
_LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
_FORWARD_SECONDS = 0.3  # lets the launcher forward the message before Abort tears the job down
_INIT_SECONDS = 10  # MPI_Init waits for every rank: if the others have ended without MPI, exit anyway
# The pid of the rank that armed the hook. Processes a rank starts inherit the launcher's variables,
# and with them this one: they are not ranks, and starting MPI there would use the rank's own PMI socket.
_RANK_PID_VARIABLE = "MPIBOHB_RANK_PID"


def launched() -> bool:
    """Whether an MPI launcher started this process (or mpi4py is already imported)."""
    return "mpi4py.MPI" in sys.modules or any(name in os.environ for name in _LAUNCHER_VARIABLES)


def launched_communicator() -> Any:
    """``MPI.COMM_WORLD`` when this process was started by an MPI launcher (or mpi4py is already
    imported), else ``None``; mpi4py is not imported otherwise."""
    if launched():
        from mpi4py import MPI

        return MPI.COMM_WORLD
    return None


def _launched_with_others() -> bool:
    """Under a launcher that started more than one process, as far as its variables tell."""
    if not launched():
        return False
    sizes = [os.environ[name] for name in _SIZE_VARIABLES if name in os.environ]
    return not sizes or any(size != "1" for size in sizes)


def end_shared_job(exit_code: int, why: str) -> None:
    """Under MPI with more than one process, end every rank with ``exit_code`` (``MPI_Abort``),
    saying ``why`` first; otherwise return, and the caller ends this process as usual."""
    if not _launched_with_others() or not _a_rank():
        return
    loaded = sys.modules.get("mpi4py.MPI")
    if loaded is None or not loaded.Is_initialized():
        # Abort needs MPI, and MPI_Init waits for every rank: ranks that ended without MPI never come.
        # MPI_Init holds the GIL, so only the kernel can end the wait: SIGALRM's default action.
        with contextlib.suppress(ValueError):  # not the main thread: no alarm, as before
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(_INIT_SECONDS)
    from mpi4py import MPI

    if MPI.Is_finalized():
        return
    world = MPI.COMM_WORLD
    if world.Get_size() < 2:
        return
    try:
        print(f"mpibohb: {why} on rank {world.Get_rank()}: ending the whole MPI job (other ranks may wait for "
              "this one)", file=sys.stderr, flush=True)
        time.sleep(_FORWARD_SECONDS)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # MPICH's own "application called MPI_Abort" says less
    finally:
        world.Abort(exit_code)


def _a_rank() -> bool:
    """Whether this process is the one the launcher started (not a process a rank started)."""
    return os.environ.get(_RANK_PID_VARIABLE, str(os.getpid())) == str(os.getpid())


def abort_job_on_uncaught_exceptions() -> None:
    """Under an MPI launcher with more than one process, make an exception that ends this process
    (in the user's script too, before or after ``run``) end the whole job with exit code 1, after
    Python has printed it. Installed when :mod:`mpibohb` is imported; chains to the hook before it."""
    if not _launched_with_others() or not _a_rank() or getattr(sys.excepthook, "ends_mpi_job", False):
        return
    os.environ[_RANK_PID_VARIABLE] = str(os.getpid())
    previous = sys.excepthook

    def print_then_end_job(kind: type[BaseException], error: BaseException,
                           trace: TracebackType | None) -> None:
        try:
            previous(kind, error, trace)
        finally:
            end_shared_job(1, f"an uncaught {kind.__name__}")

    print_then_end_job.ends_mpi_job = True  # type: ignore[attr-defined]
    sys.excepthook = print_then_end_job
