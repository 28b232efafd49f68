"""Evaluate jobs on MPI ranks: rank 0 is the master, ranks 1..N-1 run :func:`serve`.

The only module that imports mpi4py. Both sides poll with ``Iprobe`` and a capped exponential
backoff sleep, because a rank blocked in ``recv`` spins a full core with MPICH and Open MPI.

Protocol (version :data:`PROTOCOL_VERSION`), tags :data:`TAG_JOB` and :data:`TAG_OUTCOME`:

* master -> worker: ``(version, job_key, config_id, config, budget, working_directory, timeout)``,
  or ``None``: stop.
* worker -> master: ``(version, job_key, fields)`` where ``fields`` are the pickled bytes of
  ``(loss, info, error, started, finished, worker_name)``, pickled apart so that a result that
  cannot be pickled (or unpickled) becomes a failed run, never a hang or a crash.
"""

from __future__ import annotations

import logging
import pickle
import socket
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from mpi4py import MPI

from ..journal import JournalError, RunDirectoryError, RunFileError
from ..optimizer import Job
from ..stopping import RunStopped, StopFlag, ignore_stop_signals
from ..worker import Outcome, evaluate

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
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


class MPIExecutor:
    """The master's side: hands jobs to idle worker ranks and collects their outcomes."""

    def __init__(self, comm: MPI.Comm, working_directory: str, timeout: float | None = None) -> None:
        if comm.Get_size() < 2:
            raise ValueError(f"the MPI executor needs at least 2 ranks, got {comm.Get_size()}")
        self.comm = comm
        self.working_directory = working_directory
        self.timeout = timeout
        self._idle: deque[int] = deque(range(1, comm.Get_size()))
        self._running: dict[JobKey, tuple[Job, int]] = {}
        self._backoff = Backoff()
        self._closed = False

    def idle_count(self) -> int:
        """Worker ranks without a job."""
        return len(self._idle)

    def submit(self, job: Job) -> None:
        """Send ``job`` to the longest-idle worker rank."""
        rank = self._idle.popleft()
        key = (job.config_id, job.budget)
        self._running[key] = (job, rank)
        message = (PROTOCOL_VERSION, key, job.config_id, job.config, job.budget, self.working_directory,
                   self.timeout)
        self.comm.send(message, dest=rank, tag=TAG_JOB)
        self._backoff.reset()

    def wait(self, stop: StopFlag) -> list[tuple[Job, Outcome]]:
        """Poll until at least one outcome arrived or a stop is requested; return every outcome
        that is waiting."""
        finished = self.drain()
        while not finished and not stop.requested:
            self._backoff.sleep()
            finished = self.drain()
        return finished

    def drain(self) -> list[tuple[Job, Outcome]]:
        """Every outcome that has arrived, without blocking."""
        finished: list[tuple[Job, Outcome]] = []
        status = MPI.Status()
        while probe(self.comm, MPI.ANY_SOURCE, TAG_OUTCOME, status):
            finished.append(self._receive(status.Get_source()))
        return finished

    def _receive(self, rank: int) -> tuple[Job, Outcome]:
        message = self.comm.recv(source=rank, tag=TAG_OUTCOME)
        if message[0] != PROTOCOL_VERSION:
            raise RuntimeError(f"rank {rank} speaks protocol {message[0]}, the master {PROTOCOL_VERSION}: "
                               "every rank must run the same mpibohb version")
        _, key, fields = message
        job, _ = self._running.pop(key)
        self._idle.append(rank)
        return job, _unpickle_outcome(fields, rank)

    def close(self) -> None:
        """Tell every worker rank to stop (all are idle once the loop is done); only once."""
        if self._closed:
            return
        self._closed = True
        for rank in range(1, self.comm.Get_size()):
            self.comm.send(None, dest=rank, tag=TAG_JOB)


def serve(comm: MPI.Comm, compute: Callable[..., Any]) -> None:
    """The worker loop: receive a job, evaluate it, send the outcome; ``None`` stops."""
    name = worker_name(comm)
    backoff = Backoff()
    while True:
        if not probe(comm, 0, TAG_JOB):
            backoff.sleep()
            continue
        backoff.reset()
        message = comm.recv(source=0, tag=TAG_JOB)
        if message is None:
            return
        if message[0] != PROTOCOL_VERSION:
            raise RuntimeError(f"{name} speaks protocol {PROTOCOL_VERSION}, the master {message[0]}")
        _, key, config_id, config, budget, working_directory, timeout = message
        outcome = evaluate(compute, config_id, config, budget, working_directory, name, timeout)
        _send_outcome(comm, key, outcome)
        backoff.reset()


def _send_outcome(comm: MPI.Comm, key: JobKey, outcome: Outcome) -> None:
    """Send ``outcome``; one that cannot be pickled becomes a failed run instead of a hang."""
    try:
        fields = pickle.dumps(_fields(outcome), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - any pickling failure of user data
        reason = f"the result of compute cannot be pickled: {type(exc).__name__}: {exc}"
        fields = pickle.dumps(_fields(_failed(outcome, f"UnpicklableResult on {outcome.worker}: {reason}")))
    comm.send((PROTOCOL_VERSION, key, fields), dest=0, tag=TAG_OUTCOME)


def _fields(outcome: Outcome) -> tuple[Any, ...]:
    return (outcome.loss, outcome.info, outcome.error, outcome.started, outcome.finished, outcome.worker)


def _failed(outcome: Outcome, reason: str) -> Outcome:
    return Outcome(None, None, reason, outcome.started, outcome.finished, outcome.worker)


def _unpickle_outcome(fields: bytes, rank: int) -> Outcome:
    try:
        return Outcome(*pickle.loads(fields))
    except Exception as exc:  # noqa: BLE001 - user data the master cannot rebuild
        now = time.time()
        return Outcome(None, None, f"UnpicklableResult from rank {rank}: the master cannot unpickle the result: "
                       f"{type(exc).__name__}: {exc}", now, now, f"rank {rank}")


def abort_on_error(comm: MPI.Comm, where: str) -> None:
    """Print the current exception tagged with rank and host, then end the whole MPI job.

    A mistake of the user's (a run directory that exists, settings that differ on resume) is
    printed as its message alone; anything else with its traceback.
    """
    error = sys.exc_info()[1]
    if isinstance(error, (FileExistsError, JournalError, RunDirectoryError, RunFileError)):
        text = f"mpibohb: error on {worker_name(comm)}: {error}"
    else:
        text = f"mpibohb: fatal error on {worker_name(comm)} in {where}:\n{traceback.format_exc()}"
    print(text, file=sys.stderr, flush=True)
    time.sleep(0.5)  # let the launcher forward the message before Abort tears the job down
    MPI.COMM_WORLD.Abort(1)


def run_spmd(comm: MPI.Comm, run_master: Callable[[MPIExecutor], Any], compute: Callable[..., Any],
             working_directory: str, timeout: float | None, graceful_stop: bool) -> Any:
    """Rank 0 runs ``run_master(executor)`` and returns what it returns; the other ranks serve
    jobs until told to stop and return ``None``.

    An exception in mpibohb's own code on any rank ends the whole MPI job with a non-zero exit
    (``Abort``) instead of leaving it hanging. With ``graceful_stop`` the worker ranks ignore
    SIGTERM, SIGINT and SIGUSR1: the master records everything, then ends the job with exit code
    :data:`~mpibohb.stopping.EXIT_STOPPED` (busy workers cannot be waited for).
    """
    comm = comm.Dup()  # a communicator of our own: the user's messages in compute never meet ours
    try:
        if comm.Get_rank() == 0:
            return _master(comm, run_master, working_directory, timeout)
        restore_signals = ignore_stop_signals() if graceful_stop else (lambda: None)
        try:
            serve(comm, compute)
        except BaseException:
            abort_on_error(comm, "the worker loop")
        finally:
            restore_signals()
        return None
    finally:
        comm.Free()


def _master(comm: MPI.Comm, run_master: Callable[[MPIExecutor], Any], working_directory: str,
            timeout: float | None) -> Any:
    try:
        return run_master(MPIExecutor(comm, working_directory, timeout))
    except RunStopped as stopped:
        sys.stdout.flush()
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(stopped.code)
    except BaseException:
        abort_on_error(comm, "the master")
