"""Whether this process was started by an MPI launcher, and ending the whole job from one rank.

Nothing here imports mpi4py until it is needed: a process outside any launcher never loads MPI.
A rank whose process ends on an error while the others wait for it in a collective leaves the job
hanging for ever, spinning a core per rank (MPICH busy-polls); so under a launcher with more than
one process, an error that ends a rank ends the job (``MPI_Abort``), as ``python -m mpi4py`` does;
and a rank that leaves its script without calling ``run()`` tells rank 0, which waits for it there.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, NoReturn

from .mpi_start import process_parents, start_mpi

# Set in every process started by an MPI launcher: MPICH's hydra and srun --mpi=pmi2 (PMI_SIZE),
# hydra with -pmi-port (PMI_PORT, and the rank in PMI_ID), Open MPI (OMPI_COMM_WORLD_SIZE), PMIx
# launchers such as srun --mpi=pmix (PMIX_RANK).
_LAUNCHER_VARIABLES = ("PMI_SIZE", "PMI_PORT", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
_FORWARD_SECONDS = 0.3  # lets the launcher forward the message before Abort tears the job down
_INIT_SECONDS = 60  # MPI_Init waits for every rank: if the others have ended without MPI, exit anyway
# The pid of the rank that armed the hook. Processes a rank starts inherit the launcher's variables,
# and with them this one: they are not ranks, and starting MPI there would use the rank's own PMI socket.
_RANK_PID_VARIABLE = "MPIBOHB_RANK_PID"
# Processes between a rank and a process it started that make the latter a rank of a nested job
_LAUNCHER_PROCESSES = frozenset({"mpiexec", "mpirun", "mpiexec.hydra", "hydra_pmi_proxy", "srun", "slurmstepd",
                                 "orted", "prted", "prterun"})
_RANK_VARIABLES = ("PMI_RANK", "PMI_ID", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
# A rank meant to take part in a run that reaches its exit without calling run() tells world rank 0
# with this tag on COMM_WORLD (mpibohb's own messages use a communicator of their own), so that a
# rank 0 waiting for it in run() fails saying why instead of waiting for ever. Tags go to 32767.
LEFT_WITHOUT_RUN_TAG = 32_123
_SEND_SECONDS = 2.0  # a message this small leaves at once; never hold an exit longer
_ran = False  # whether this process has called run()
_worker_class = False  # whether this process defined a Worker subclass (meant to take part in a run)
_returned_none = False  # whether run() returned None here, on a worker rank (workers_return=True)


def launched() -> bool:
    """Whether an MPI launcher started this process (or mpi4py is already imported)."""
    return "mpi4py.MPI" in sys.modules or any(name in os.environ for name in _LAUNCHER_VARIABLES)


def launched_rank() -> int | None:
    """This process's rank as its launcher's variables give it (``None`` without them); mpi4py is
    not imported."""
    for name in _RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def launched_communicator() -> Any:
    """``MPI.COMM_WORLD`` when this process was started by an MPI launcher (or mpi4py is already
    imported), else ``None``; mpi4py is not imported otherwise."""
    if launched():
        return start_mpi().COMM_WORLD
    return None


def _launched_with_others() -> bool:
    """Under a launcher that started more than one process, as far as its variables tell."""
    if not launched():
        return False
    sizes = [os.environ[name] for name in _SIZE_VARIABLES if name in os.environ]
    return not sizes or any(size != "1" for size in sizes)


def flush_standard_streams() -> None:
    """Flush ``sys.stdout`` and ``sys.stderr`` before an ``os._exit``, each even when the other (or
    itself) fails: user code may have closed or replaced them, and a signal handler may re-enter."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def abort_world(world: Any, exit_code: int) -> NoReturn:
    """``MPI_Abort`` on ``world`` with ``exit_code``, and this process ends with it at once: with
    some MPI libraries (MPICH's wheel) Abort returns on the calling rank until the launcher kills it,
    and the user's code after ``run`` must not run meanwhile (on a ``None`` result)."""
    flush_standard_streams()  # os._exit does not flush what the script printed
    try:
        world.Abort(exit_code)
    finally:
        os._exit(exit_code)


def shared_world() -> Any:
    """``MPI.COMM_WORLD`` when MPI is running in this process with more than one rank (initialized,
    not finalized), else ``None``; mpi4py is looked up, not imported: only an MPI process has it."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized() and mpi.COMM_WORLD.Get_size() > 1:
        return mpi.COMM_WORLD
    return None


def end_shared_job(exit_code: int, why: str) -> None:
    """Under MPI with more than one process, end every rank with ``exit_code`` (``MPI_Abort``),
    saying ``why`` first; otherwise return, and the caller ends this process as usual."""
    if not _launched_with_others() or not _a_rank():
        return
    loaded = sys.modules.get("mpi4py.MPI")
    if loaded is not None and loaded.Is_finalized():
        return
    rank = launched_rank()
    print(f"mpibohb: {why} on rank {'?' if rank is None else rank}: ending the whole MPI job (other ranks may "
          "wait for this one)", file=sys.stderr, flush=True)
    if loaded is None or not loaded.Is_initialized():
        # Abort needs MPI, and MPI_Init waits for every rank: ranks that ended without MPI never come.
        # MPI_Init holds the GIL, so only the kernel can end the wait: SIGALRM's default action.
        with contextlib.suppress(ValueError):  # not the main thread: no alarm, as before
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(_INIT_SECONDS)
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    if world.Get_size() < 2:
        signal.alarm(0)
        return
    try:
        time.sleep(_FORWARD_SECONDS)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # MPICH's own "application called MPI_Abort" says less
    finally:
        abort_world(world, exit_code)


def _a_rank() -> bool:
    """Whether a launcher started this process: not a process that a rank started (it inherits the
    rank's variables), unless a launcher stands between them (a nested job's rank). Without
    ``/proc`` to follow the parents, anything under a launcher is taken for a rank."""
    marker = os.environ.get(_RANK_PID_VARIABLE)
    if marker is None or marker == str(os.getpid()):
        return True
    for pid, name in process_parents(64):  # up to the rank that armed the hook
        if str(pid) == marker:
            return False
        if name is None or name in _LAUNCHER_PROCESSES:
            return True
    return True


# a generator's or coroutine's frame has no caller while it is not running: no top of a script
_SUSPENDABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ITERABLE_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _end_job_after_an_uncaught_exception() -> None:
    """At exit, before the interpreter waits for the script's threads: an exception ended the script,
    and :func:`abort_job_on_uncaught_exceptions`'s hook did not end the job (a ``sys.excepthook`` of
    the script's own, set after ``import mpibohb``, took its place): end it now, or the other ranks
    would wait for this one for ever."""
    if getattr(sys.excepthook, "ends_mpi_job", False):
        return  # mpibohb's hook is in place: it has ended the job, if an exception ended the script
    uncaught = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)  # set before any excepthook
    trace = getattr(sys, "last_traceback", None) or getattr(uncaught, "__traceback__", None)
    if uncaught is None or trace is None or trace.tb_frame.f_back is not None or \
            trace.tb_frame.f_code.co_flags & _SUSPENDABLE:
        return  # none, or one that a caller caught and kept (pytest, IPython's coroutine): not the script's end
    end_shared_job(1, f"an uncaught {type(uncaught).__name__} (the script's own sys.excepthook did not end "
                      "the job)")


def _before_the_threads_are_joined(function: Callable[[], None]) -> None:
    """Run ``function`` at the interpreter's exit before it waits for non-daemonic threads (which
    may never end): through ``threading``'s own hook where it has one, else with ``atexit`` (after
    that wait). That hook runs the last registered first, so ``function`` stays last: a
    ``ThreadPoolExecutor`` made after ``import mpibohb`` registers a hook that waits for its threads."""
    register = getattr(threading, "_register_atexit", None)  # private, since Python 3.9
    calls = getattr(threading, "_threading_atexits", None)  # private: the hooks, in the order registered
    try:
        (register or atexit.register)(function)
    except RuntimeError:  # too late for threading's hook: the interpreter is shutting down
        atexit.register(function)
        return
    if register is None or not isinstance(calls, list) or not calls:
        return
    ours = calls[-1]

    def register_before_ours(hook: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        register(hook, *args, **kwargs)
        if ours in calls:
            calls.remove(ours)
            calls.append(ours)

    threading._register_atexit = register_before_ours  # type: ignore[attr-defined]


def abort_job_on_uncaught_exceptions() -> None:
    """Under an MPI launcher with more than one process, make an exception that ends this process
    (in the user's script too, before or after ``run``) end the whole job with exit code 1, after
    Python has printed it. Installed when :mod:`mpibohb` is imported; chains to the hook before it.
    A hook that the script sets later takes its place: the job then ends at this process's exit
    (:func:`tell_rank_zero_of_an_exit_without_run`)."""
    if not _launched_with_others() or not _a_rank() or getattr(sys.excepthook, "ends_mpi_job", False):
        return
    os.environ[_RANK_PID_VARIABLE] = str(os.getpid())
    previous = sys.excepthook

    def print_then_end_job(kind: type[BaseException], error: BaseException,
                           trace: TracebackType | None) -> None:
        try:
            previous(kind, error, trace)
        finally:
            hint = _hint(error)
            if hint and _launched_with_others():
                print(f"mpibohb: {hint}", file=sys.stderr, flush=True)
            end_shared_job(1, f"an uncaught {kind.__name__}")

    print_then_end_job.ends_mpi_job = True  # type: ignore[attr-defined]
    sys.excepthook = print_then_end_job


def note_worker_class() -> None:
    """This process defined a subclass of ``Worker``: it means to take part in a run."""
    global _worker_class
    _worker_class = True


def note_run(returned_none: bool = False) -> None:
    """This process has called ``run()`` (on any communicator: at its exit it does not tell rank 0
    otherwise); ``returned_none``: it returned ``None`` there, on a worker rank."""
    global _ran, _returned_none
    _ran = True
    _returned_none = _returned_none or returned_none


def _hint(error: BaseException) -> str:
    """What the user's script likely did, where an error tells."""
    if _returned_none and "NoneType" in str(error):
        return ("run() returned None on this worker rank (workers_return=True): keep the analysis after run() "
                "under `if res is not None:`")
    return ""


def tell_rank_zero_of_an_exit_without_run() -> None:
    """Under an MPI launcher with more than one process, make a rank other than 0 that imported the
    optimizers (``from mpibohb import BOHB``) or defined a ``Worker`` subclass, and reaches its
    interpreter exit without having called ``run()``, tell world rank 0 (a message with
    :data:`LEFT_WITHOUT_RUN_TAG`): a script that uses mpibohb for ``load_result`` alone sends
    nothing. At that exit an uncaught exception ends the job instead, as the hook of
    :func:`abort_job_on_uncaught_exceptions` would have. Installed when :mod:`mpibohb` is imported."""
    if _launched_with_others() and _a_rank():
        atexit.register(_tell_rank_zero)
        _before_the_threads_are_joined(_end_job_after_an_uncaught_exception)


def _tell_rank_zero() -> None:
    world = shared_world()
    meant_to_run = _worker_class or "mpibohb.optimizers" in sys.modules  # load_result alone imports neither
    if _ran or not meant_to_run or world is None or world.Get_rank() == 0:
        return
    request = world.isend(None, dest=0, tag=LEFT_WITHOUT_RUN_TAG)
    deadline = time.monotonic() + _SEND_SECONDS
    while not request.Test() and time.monotonic() < deadline:
        time.sleep(0.01)
