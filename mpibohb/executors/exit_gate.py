"""Worker ranks that end with the run wait at an *exit gate* until rank 0 exits too.

A non-blocking barrier, joined by every rank at interpreter exit and polled with a sleep: so the
worker ranks use no CPU while rank 0 analyses the result, and every rank reaches
``MPI_Finalize`` at about the same time (some MPI libraries busy-poll in it, and MPICH hangs
there if rank 0 leaves without it).
"""

from __future__ import annotations

import atexit
import functools
import os
import sys
from collections.abc import Callable

from mpi4py import MPI

from .mpi_protocol import Backoff, worker_name
from .watch import WatchedRank

_EXIT_GATES: list[MPI.Comm] = []  # duplicates of the communicators of runs whose worker ranks end
_RANK_ZERO: list[WatchedRank] = []  # this worker rank's watch on rank 0, while it waits at the gate
ABORTS_AT_EXIT: list[Callable[[], None]] = []  # rank 0's aborts at exit (lost ranks), also run by MPI.Finalize


def hold_at_exit(comm: MPI.Comm) -> None:
    """Collective over ``comm``: at interpreter exit, this rank waits (sleeping) until every rank
    of ``comm`` has reached its own interpreter exit."""
    if not _EXIT_GATES:
        # mpi4py finalizes MPI in a C-level exit hook, which runs after every Python atexit handler
        atexit.register(pass_exit_gates)
        MPI.Finalize = _after_the_exit_gates(MPI.Finalize)
    _EXIT_GATES.append(comm.Dup())


def abort_at_exit(abort: Callable[[], None]) -> None:
    """Run ``abort`` (which ends the job) at interpreter exit, or at an ``MPI.Finalize()`` of the
    script's, whichever comes first: with a worker rank lost, MPI cannot end the job otherwise."""
    atexit.register(abort)
    ABORTS_AT_EXIT.append(abort)
    MPI.Finalize = _after_the_exit_gates(MPI.Finalize)


def _after_the_exit_gates(finalize: Callable[[], None]) -> Callable[[], None]:
    """``MPI.Finalize`` for a script that calls it itself (on rank 0 after ``run``): the worker
    ranks wait at their exit for rank 0 to reach its own, and ``MPI_Finalize`` waited for them."""
    if getattr(finalize, "_passes_exit_gates", False):
        return finalize

    @functools.wraps(finalize)
    def passes_the_gates_first() -> None:
        for abort in ABORTS_AT_EXIT:  # lost worker ranks never reach the gate: the job ends here
            abort()
        pass_exit_gates()
        finalize()

    passes_the_gates_first._passes_exit_gates = True  # type: ignore[attr-defined]
    return passes_the_gates_first


def watch_rank_zero_at_exit(watched: WatchedRank) -> None:
    """While this worker rank waits at the exit gate, ``watched`` tells whether rank 0 still lives."""
    watched.stop_reporting()
    _RANK_ZERO[:] = [watched]


def pass_exit_gates() -> None:
    """At interpreter exit: a non-blocking barrier on every exit gate, polled with a sleep. A
    worker rank whose rank 0 ended without passing the gate ends its process (``os._exit(1)``):
    nobody else would end it when the launcher that started it is gone."""
    if not _EXIT_GATES or not MPI.Is_initialized() or MPI.Is_finalized():
        return
    requests = [gate.Ibarrier() for gate in _EXIT_GATES]
    backoff = Backoff(start=1e-3, cap=5e-2, yields=0)  # the wait may last hours: 20 polls a second
    while not MPI.Request.Testall(requests):
        if _RANK_ZERO and _RANK_ZERO[0].orphaned():
            end_orphan(f"{worker_name(MPI.COMM_WORLD)}: rank 0 has ended without passing the exit gate")
        backoff.sleep()
    for gate in _EXIT_GATES:
        gate.Free()
    _EXIT_GATES.clear()


def refuse_ranks_that_ended(comm: MPI.Comm) -> None:
    """Raise ``RuntimeError`` if ranks of ``comm`` ended their process with an earlier run (only
    its rank 0 is still there to see it); a run on them would wait for ever."""
    group = comm.Get_group()
    ended: set[int] = set()
    for gate in _EXIT_GATES:
        gate_group = gate.Get_group()
        workers = list(range(1, gate_group.Get_size()))
        ended.update(r for r in gate_group.Translate_ranks(workers, group) if r != MPI.UNDEFINED)
        gate_group.Free()
    group.Free()
    if ended:
        raise RuntimeError(
            f"ranks {sorted(ended)} of this communicator ended their process when an earlier run() ended "
            "(worker ranks end with the run by default): pass workers_return=True to every run() of the "
            "script but the last, and keep code that should run on rank 0 only under `if res is not None:`")


def end_orphan(why: str) -> None:
    """End this worker rank's process at once: its rank 0 is gone, so MPI cannot end the job (and
    ``MPI_Finalize`` or ``MPI_Abort`` could wait for ever on a launcher that was killed)."""
    try:
        print(f"mpibohb: {why} (its launcher was killed?): this process ends", file=sys.stderr, flush=True)
    except OSError:  # the launcher held the other end of stderr
        pass
    os._exit(1)
