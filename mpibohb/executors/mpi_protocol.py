"""What the master and the worker ranks say to each other, and how they wait for it.

Protocol (version :data:`PROTOCOL_VERSION`), tags :data:`TAG_JOB` and :data:`TAG_OUTCOME`:

* master -> worker: ``(version, job_key, config_id, config, budget, working_directory, timeout,
  previous_budget, checkpoint_dir)`` (``checkpoint_dir`` ``None`` when compute keeps no checkpoints),
  or ``None``: stop.
* worker -> master: ``(version, job_key, fields, None)`` where ``fields`` are the pickled bytes of
  ``(loss, info, error, started, finished, worker_name, interrupted)``, pickled apart so that a
  result that cannot be pickled (or unpickled) becomes a failed run, never a hang or a crash; or
  ``(version, job_key, fields, (errno, message))``: compute ran out of disk space
  (:class:`~mpibohb.evaluation.OutOfSpaceError`; ``fields``: the failure it would be, which the
  master records after repeated stops, else it stops the run); ``fields`` ``None``: another
  failure of the run's (:class:`~mpibohb.files.RunFileError`: its checkpoint root), which stops it.

Both sides poll with ``Iprobe`` and a capped exponential backoff sleep, because a rank blocked in
``recv`` spins a full core with MPICH and Open MPI.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import socket
import time
from typing import Any

from mpi4py import MPI

from ..evaluation import INFO_UNPICKLABLE, Outcome
from ..launcher import LEFT_WITHOUT_RUN_TAG, note_run

PROTOCOL_VERSION = 5  # 4: an outcome's info pickled apart; 5: the run's failures on a worker rank
TAG_JOB = 11
TAG_OUTCOME = 12
JobKey = tuple[tuple[int, int, int], float]
_INFO_REPR_CHARS = 1000  # of an info that cannot be pickled, this much of its repr travels instead
_WARNED_UNPICKLABLE: list[bool] = []
START_WARNING_SECONDS = 30.0  # a rank still alone in run() after this long says why it waits

logger = logging.getLogger(__name__)


class Backoff:
    """Pause between polls: first ``yields`` bare yields of the CPU, then sleeps from ``start``
    seconds doubling up to ``cap``. ``reset`` whenever a message went out or came in, since an
    answer is then likely soon; a long wait ends up polling every ``cap`` seconds at ~0% CPU."""

    def __init__(self, start: float = 1e-5, cap: float = 1e-2, yields: int = 20) -> None:
        self.start, self.cap, self.yields = start, cap, yields
        self.reset()

    def reset(self) -> None:
        """Poll fast again."""
        self.delay = self.start
        self.polls = 0

    def sleep(self) -> None:
        """Yield or sleep, then lengthen the next pause."""
        self.polls += 1
        if self.polls <= self.yields:
            time.sleep(0)
            return
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, self.cap)


def probe(comm: MPI.Comm, source: int, tag: int, status: MPI.Status | None = None) -> bool:
    """``Iprobe``, asked twice when the first answer is no: after a sleep, MPICH's first call may
    only move a message that arrived meanwhile through its progress engine, and without the second
    call the message would wait for the next poll (up to one backoff interval, 10 ms)."""
    return comm.Iprobe(source=source, tag=tag, status=status) or comm.Iprobe(source=source, tag=tag, status=status)


def worker_name(comm: MPI.Comm) -> str:
    """``rank R@host`` for outcomes and error messages."""
    return f"rank {comm.Get_rank()}@{socket.gethostname()}"


def pack_outcome(outcome: Outcome) -> bytes:
    """The outcome's fields, pickled; its ``info`` pickled apart, so that rank 0 keeps the loss when
    it cannot unpickle the info (a class only the workers import, a GPU tensor). An ``info`` that
    cannot be pickled is replaced by a note with its ``repr`` (the loss stays, as a serial run keeps
    it); any other part that cannot be pickled makes the run a failed one."""
    info = None
    if outcome.info is not None:
        try:
            info = pickle.dumps(outcome.info, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - any pickling failure of user data
            info = pickle.dumps(_unpicklable_info_note(outcome.info, f"{type(exc).__name__}: {exc}"))
    try:
        return pickle.dumps(_fields(dataclasses.replace(outcome, info=info)), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - any pickling failure of user data
        reason = f"{type(exc).__name__}: {exc}"
    failed = Outcome(None, None, f"UnpicklableResult on {outcome.worker}: the result of compute cannot be pickled: "
                     f"{reason}", outcome.started, outcome.finished, outcome.worker, outcome.interrupted)
    return pickle.dumps(_fields(failed))


def _unpicklable_info_note(info: Any, reason: str) -> str:
    """What travels instead of an ``info`` that cannot be pickled; said once per rank as a warning."""
    try:
        shown = repr(info)
    except Exception as exc:  # noqa: BLE001 - a user's __repr__
        shown = f"<repr failed: {type(exc).__name__}>"
    if len(shown) > _INFO_REPR_CHARS:
        shown = shown[:_INFO_REPR_CHARS] + "..."
    if not _WARNED_UNPICKLABLE:
        _WARNED_UNPICKLABLE.append(True)
        logger.warning("an info returned by compute cannot be pickled to travel to rank 0 (%s): it is replaced "
                       "by a note with its repr, and the loss is kept (said once per rank)", reason)
    return f"{INFO_UNPICKLABLE} ({reason}); its repr: {shown}>"


def _fields(outcome: Outcome) -> tuple[Any, ...]:
    return (outcome.loss, outcome.info, outcome.error, outcome.started, outcome.finished, outcome.worker,
            outcome.interrupted)


def unpack_outcome(fields: bytes, rank: int) -> Outcome:
    """The outcome a worker rank sent; one the master cannot unpickle becomes a failed run, an
    ``info`` alone that it cannot unpickle a note (the loss stays)."""
    try:
        outcome = Outcome(*pickle.loads(fields))
    except Exception as exc:  # noqa: BLE001 - user data the master cannot rebuild
        now = time.time()
        return Outcome(None, None, f"UnpicklableResult from rank {rank}: the master cannot unpickle the result: "
                       f"{type(exc).__name__}: {exc}", now, now, f"rank {rank}")
    if outcome.info is None:
        return outcome
    try:
        return dataclasses.replace(outcome, info=pickle.loads(outcome.info))
    except Exception as exc:  # noqa: BLE001 - an info of a class that rank 0 cannot import or rebuild
        reason = f"{type(exc).__name__}: {exc}"
    if not _WARNED_UNPICKLABLE:
        _WARNED_UNPICKLABLE.append(True)
        logger.warning("rank 0 cannot unpickle an info that compute returned on rank %d (%s): it is replaced by a "
                       "note, and the loss is kept (said once)", rank, reason)
    return dataclasses.replace(outcome, info=f"{INFO_UNPICKLABLE} and rebuilt on rank 0 ({reason})>")


def meet_in_run(comm: MPI.Comm) -> None:
    """Wait, sleeping, until every rank of ``comm`` has called ``run()``: a non-blocking barrier,
    since a rank blocked in a collective spins a core. A rank that waits past
    :data:`START_WARNING_SECONDS` warns (then every ten minutes): a script that calls ``run()``
    on some ranks only would otherwise wait without a word.

    Raises:
        RuntimeError: on rank 0 of ``MPI.COMM_WORLD``, a rank ended its script without calling
            ``run()`` (it says so at its exit: :func:`~mpibohb.launcher.tell_rank_zero_of_an_exit_without_run`).
    """
    note_run()
    request = comm.Ibarrier()
    backoff = Backoff(start=1e-3, cap=5e-2, yields=0)
    started = time.monotonic()
    warn_at = START_WARNING_SECONDS
    hears_exits = comm.Get_rank() == 0 and comm.Compare(MPI.COMM_WORLD) in (MPI.IDENT, MPI.CONGRUENT)
    while not request.Test():
        if hears_exits:
            _refuse_a_rank_that_left()
        backoff.sleep()
        waited = time.monotonic() - started
        if waited >= warn_at:
            warn_at += 600.0
            logger.warning("%s has waited %.0f s in run() for the other ranks of its communicator: under "
                           "mpiexec every process must call run() (rank 0 runs the optimizer in it, the "
                           "others evaluate); a rank that raised an error before says so above",
                           worker_name(comm), waited)


def _refuse_a_rank_that_left() -> None:
    status = MPI.Status()
    if MPI.COMM_WORLD.iprobe(source=MPI.ANY_SOURCE, tag=LEFT_WITHOUT_RUN_TAG, status=status):
        rank = status.Get_source()
        MPI.COMM_WORLD.recv(source=rank, tag=LEFT_WITHOUT_RUN_TAG)
        raise RuntimeError(
            f"rank {rank} has ended its script without calling run(), so this run would wait for it for ever: "
            "under mpiexec every process must call run() (rank 0 runs the optimizer in it, the others evaluate "
            "and end there); call it on every rank, not under `if rank == 0:`")
