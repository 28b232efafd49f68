"""What the master and the worker ranks say to each other, and how they wait for it.

Protocol (version :data:`PROTOCOL_VERSION`), tags :data:`TAG_JOB` and :data:`TAG_OUTCOME`:

* master -> worker: ``(version, job_key, config_id, config, budget, working_directory, timeout,
  previous_budget, checkpoint_dir)`` (``checkpoint_dir`` ``None`` when compute keeps no checkpoints),
  or ``None``: stop.
* worker -> master: ``(version, job_key, fields)`` where ``fields`` are the pickled bytes of
  ``(loss, info, error, started, finished, worker_name, interrupted)``, pickled apart so that a
  result that cannot be pickled (or unpickled) becomes a failed run, never a hang or a crash.

Both sides poll with ``Iprobe`` and a capped exponential backoff sleep, because a rank blocked in
``recv`` spins a full core with MPICH and Open MPI.
"""

from __future__ import annotations

import pickle
import socket
import time
from typing import Any

from mpi4py import MPI

from ..worker import Outcome

PROTOCOL_VERSION = 3
TAG_JOB = 11
TAG_OUTCOME = 12
JobKey = tuple[tuple[int, int, int], float]


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
    """The outcome's fields, pickled; a result that cannot be pickled becomes a failed run."""
    try:
        return pickle.dumps(_fields(outcome), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - any pickling failure of user data
        reason = f"the result of compute cannot be pickled: {type(exc).__name__}: {exc}"
        failed = Outcome(None, None, f"UnpicklableResult on {outcome.worker}: {reason}", outcome.started,
                         outcome.finished, outcome.worker, outcome.interrupted)
        return pickle.dumps(_fields(failed))


def _fields(outcome: Outcome) -> tuple[Any, ...]:
    return (outcome.loss, outcome.info, outcome.error, outcome.started, outcome.finished, outcome.worker,
            outcome.interrupted)


def unpack_outcome(fields: bytes, rank: int) -> Outcome:
    """The outcome a worker rank sent; one the master cannot unpickle becomes a failed run."""
    try:
        return Outcome(*pickle.loads(fields))
    except Exception as exc:  # noqa: BLE001 - user data the master cannot rebuild
        now = time.time()
        return Outcome(None, None, f"UnpicklableResult from rank {rank}: the master cannot unpickle the result: "
                       f"{type(exc).__name__}: {exc}", now, now, f"rank {rank}")
