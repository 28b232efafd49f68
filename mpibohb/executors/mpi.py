"""Evaluate jobs on MPI ranks: rank 0 is the master, ranks 1..N-1 run
:func:`~mpibohb.executors.mpi_worker.serve`.

mpi4py is imported by this module and by ``mpi_protocol``, ``mpi_worker`` and ``exit_gate``
beside it, and nowhere else but :func:`mpibohb.launcher.launched_communicator`. The master keeps a
deadline per job when there is a ``timeout``, takes ranks that keep failing out of service
(:mod:`mpibohb.health`), and learns at once of a worker rank's death (:mod:`.watch`).

When the run ends, the worker ranks end their process (``SystemExit(0)``) unless ``run`` was
given ``workers_return=True``; they then wait at an exit gate (:mod:`.exit_gate`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import socket
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mpi4py import MPI

from ..blas import one_blas_thread
from ..brackets import Job
from ..checkpoints import directory_for
from ..evaluation import EvaluationFileError, Outcome, OutOfSpaceError, answer_deadline
from ..files import RunFileError
from ..health import (
    DEFAULT_RANK_FAILURE_LIMIT,
    MAX_EVIDENCED_DEATHS,
    RankHealth,
    Verdict,
    abandoned_job_reason,
    rank_to_run_again,
)
from ..journal import (
    JournalError,
    RunDirectoryError,
    interrupted_record,
    lost_record,
    reinstated_record,
    retired_record,
    retry_record,
)
from ..launcher import abort_world, note_run
from ..stopping import EXIT_STOPPED, RunStopped, StopFlag, ignore_stop_signals
from . import KEPT_AFTER_STOPS, kept_despite_full_disk
from .exit_gate import abort_at_exit, end_orphan, hold_at_exit, refuse_ranks_that_ended, watch_rank_zero_at_exit
from .mpi_protocol import (
    PROTOCOL_VERSION,
    TAG_JOB,
    TAG_OUTCOME,
    Backoff,
    JobKey,
    meet_in_run,
    probe,
    unpack_outcome,
    worker_name,
)
from .mpi_worker import RankZeroGoneError, serve
from .watch import Address, DeathWatch, WatchedRank

logger = logging.getLogger(__name__)

Journal = Callable[[dict[str, Any]], None]


class NoRanksLeftError(RuntimeError):
    """No worker rank is left to run jobs: every one is lost or out of service."""


@dataclass
class _Task:
    job: Job
    rank: int
    sent: float  # time.time()
    deadline: float | None  # time.monotonic() by which the rank must answer
    deaths_before: int  # worker deaths seen when it was sent: a later one's death blames it only if the first


class MPIExecutor:
    """The master's side: hands jobs to idle worker ranks and collects their outcomes."""

    def __init__(self, comm: MPI.Comm, working_directory: str, timeout: float | None = None,
                 ranks: dict[int, tuple[str, int]] | None = None,
                 rank_failure_limit: int | None = DEFAULT_RANK_FAILURE_LIMIT,
                 checkpoint_root: str | None = None) -> None:
        if comm.Get_size() < 2:
            raise ValueError(f"the MPI executor needs at least 2 ranks, got {comm.Get_size()}")
        self.comm = comm
        self.working_directory, self.checkpoint_root = working_directory, checkpoint_root
        self.timeout = timeout
        self.ranks = ranks or {}
        self.health = RankHealth(range(1, comm.Get_size()), rank_failure_limit)
        self.journal: Journal = lambda record: None
        self.watch: DeathWatch | None = None
        self.workers_end_with_run = False  # then they watch rank 0 at their exit gate
        self._idle: deque[int] = deque(range(1, comm.Get_size()))
        self._running: dict[JobKey, _Task] = {}
        self._again: deque[tuple[Job, int | None]] = deque()  # jobs to run again, and a rank to avoid
        self._lost: dict[int, str] = {}
        self._deaths: deque[tuple[int, str, bool]] = deque()  # from the watch thread: rank, reason, blames its job
        self._deaths_seen = 0  # by the watch thread, this session
        self._died_running: dict[JobKey, int] = {}
        self._stops: dict[JobKey, int] = {}  # job -> stops that reached it while it ran
        self._out_of_space: EvaluationFileError | None = None  # a full disk (or root): the run stops at the next look
        self._out_of_space_jobs: dict[JobKey, tuple[OutOfSpaceError, int]] = {}  # not yet judged by the rank health
        self._ran_out_before: set[JobKey] = set()  # jobs run again after their compute ran out of space, this session
        self._out_of_space_hosts: dict[JobKey, set[str]] = {}  # the nodes where it did
        self._backoff = Backoff()
        self._closed = False

    def describe(self, rank: int) -> str:
        """``rank R@host (pid P)``, as far as known."""
        host, pid = self.ranks.get(rank, ("?", None))
        return f"rank {rank}@{host}" + (f" (pid {pid})" if pid is not None else "")

    def set_journal(self, journal: Journal) -> None:
        """Where to journal what the executor decides itself (a job run again, a rank lost)."""
        self.journal = journal

    def note_earlier_deaths(self, deaths: dict[JobKey, int]) -> None:
        """Count a resumed job's journaled deaths: it is recorded as failed at its
        :data:`~mpibohb.health.MAX_EVIDENCED_DEATHS`-th, in whichever session that comes."""
        for key, count in deaths.items():
            self._died_running[key] = self._died_running.get(key, 0) + count


    def note_earlier_stops(self, stops: dict[JobKey, int]) -> None:
        """Jobs that stops reached while they ran in earlier sessions (see :meth:`_interrupted`)."""
        for key, count in stops.items():
            self._stops[key] = self._stops.get(key, 0) + count

    def next_worker(self) -> str:
        """The worker the next :meth:`submit` goes to."""
        return self.describe(self._idle[0]) if self._idle else ""

    def idle_count(self) -> int:
        """Worker ranks without a job.

        Raises:
            NoRanksLeftError: no rank is left in service.
            EvaluationFileError: a compute ran out of disk space, or a checkpoint directory could not be
                made (see :meth:`_receive`, :meth:`_kept`): no new job starts.
        """
        if self._out_of_space is not None:
            raise self._out_of_space
        if not self.health.in_service:
            reasons = "; ".join(f"{self.describe(r)}: {why}" for r, why in sorted(self.health.retired.items()))
            raise NoRanksLeftError(f"no worker rank is left to run jobs ({reasons}); what was recorded stays in the "
                                 "run directory: fix the nodes and resume")
        return len(self._idle)

    def submit(self, job: Job) -> None:
        """Send ``job`` to the longest-idle worker rank."""
        self._send(job, self._idle.popleft())

    def _send(self, job: Job, rank: int) -> None:
        key = (job.config_id, job.budget)
        limit = answer_deadline(self.timeout)
        self._running[key] = _Task(job, rank, time.time(), None if limit is None else time.monotonic() + limit,
                                   self._deaths_seen)
        message = (PROTOCOL_VERSION, key, job.config_id, job.config, job.budget, self.working_directory,
                   self.timeout, job.previous_budget, directory_for(self.checkpoint_root, job.config_id))
        self.comm.send(message, dest=rank, tag=TAG_JOB)
        self._backoff.reset()

    def wait(self, stop: StopFlag, until: float | None = None) -> list[tuple[Job, Outcome]]:
        """Poll until at least one outcome can be recorded, a rank is free for a new job (after a
        failure held back: see :mod:`mpibohb.health`), a stop is requested, or ``time.time()``
        reaches ``until``; return the outcomes.

        Called with a rank idle, the loop has nothing to hand out: held failures are settled.
        """
        if self._out_of_space is not None:  # what came with it is recorded: the run stops now
            raise self._out_of_space
        finished = self._act(self.health.settle()) if self._idle and self.health.holding else []
        idle = len(self._idle)
        finished += self.drain()
        while not finished and not stop.requested and len(self._idle) <= idle \
                and (until is None or time.time() < until):
            # a rank that runs a job again and comes back is a free rank: else failures held
            # meanwhile would wait for a settle that comes only with the next call
            idle = min(idle, len(self._idle))
            self.idle_count()  # raises when no rank is left, or a compute's disk is full
            if self.health.holding and not self._running and not self._again:
                finished = self._act(self.health.settle())  # nothing that runs could decide them
            self._backoff.sleep()
            finished += self.drain()
        return finished

    def drain(self) -> list[tuple[Job, Outcome]]:
        """Every outcome that can be recorded now, without blocking."""
        finished = self._take_deaths()
        status = MPI.Status()
        while probe(self.comm, MPI.ANY_SOURCE, TAG_OUTCOME, status):
            finished += self._receive(status.Get_source())
        finished += self._expire()
        self._dispatch_again()
        return finished

    def _receive(self, rank: int) -> list[tuple[Job, Outcome]]:
        message = self.comm.recv(source=rank, tag=TAG_OUTCOME)
        if message[0] != PROTOCOL_VERSION:
            raise RuntimeError(f"rank {rank} speaks protocol {message[0]}, the master {PROTOCOL_VERSION}: "
                               "every rank must run the same mpibohb version")
        _, key, fields, run_failure = message
        if run_failure is not None and fields is None:  # the checkpoint root's failure: the run stops at the next look
            error = EvaluationFileError(run_failure[1])
            error.errno = run_failure[0]
            self._out_of_space = self._out_of_space or error
            return []
        task = self._running.get(key)
        if task is None or task.rank != rank:
            self._late_answer(rank, key)
            return []
        del self._running[key]
        if rank in self.health.in_service:
            self._idle.append(rank)
        outcome = unpack_outcome(fields, rank)
        self._out_of_space_jobs.pop(key, None)
        if run_failure is not None:  # compute ran out of disk space: the rank health judges first (see _kept)
            full = OutOfSpaceError(run_failure[1], task.job.config_id, task.job.budget, outcome)
            full.errno = run_failure[0]
            self._out_of_space_jobs[key] = (full, rank)
            self._out_of_space_hosts.setdefault(key, set()).add(self._host(rank))
        if outcome.interrupted is not None:
            kept = self._interrupted(task, outcome)
            if kept is None:
                return []
            outcome = kept
        return self._act(self.health.observe(rank, task.job, outcome))

    def _interrupted(self, task: _Task, outcome: Outcome) -> Outcome | None:
        """A stop signal reached ``compute`` on its rank: it runs again (``None``), as what it returned
        may be a model trained part of the way; after :data:`KEPT_AFTER_STOPS` such stops, what it
        returned is kept (the outcome to record), a failure too: else a compute that fails and
        signals its own process group (a script's ``trap "kill 0" EXIT``) would run for ever."""
        key = (task.job.config_id, task.job.budget)
        stops = self._stops.get(key, 0)
        if stops >= KEPT_AFTER_STOPS:
            logger.warning("%s at budget %g: a stop signal reached it %d times; what compute returned is kept this "
                           "time, so that the run goes on", task.job.config_id, task.job.budget, stops + 1)
            return dataclasses.replace(outcome, interrupted=None)
        self._stops[key] = stops + 1
        logger.warning("%s at budget %g on %s: a stop signal reached compute, which ended; it will run again (not "
                       "recorded)", task.job.config_id, task.job.budget, self.describe(task.rank))
        self.journal(interrupted_record(task.job, self.describe(task.rank), outcome.interrupted))
        self._again.append((task.job, None))
        return None

    def _act(self, verdict: Verdict) -> list[tuple[Job, Outcome]]:
        """Carry out what :class:`RankHealth` decided; return the outcomes to record."""
        for rank, why in verdict.retired:
            if rank in self._idle:
                self._idle.remove(rank)
            logger.warning("taking %s out of service: %s (its failed jobs run again on other ranks; if they fail "
                           "there too, they were the configurations' failures and it comes back)",
                           self.describe(rank), why)
            self.journal(retired_record(self.describe(rank), why))
        back = verdict.reinstated
        if back is not None and back not in self._lost:
            logger.warning("%s is back in service: most jobs it had failed failed on other ranks too, so they were "
                           "the configurations' failures, not the rank's", self.describe(back))
            self.journal(reinstated_record(self.describe(back)))
            if back not in self._idle and all(task.rank != back for task in self._running.values()):
                self._idle.append(back)  # else it comes back to the idle ranks when its job ends
        for job, failure, avoid in verdict.again:
            self._run_again(job, failure, avoid)
        return self._kept(verdict.record)

    def _kept(self, record: list[tuple[Job, Outcome]]) -> list[tuple[Job, Outcome]]:
        """The outcomes to record, less those of a compute out of disk space that the rank health
        would record as the configuration's failure: one rank's full disk takes it out of service
        (its failures run again elsewhere), but when the other ranks fail too the disk is theirs as
        well, and the run stops at the next :meth:`idle_count` instead (the job runs again on resume;
        see :func:`~mpibohb.executors.kept_despite_full_disk` for a job that fills any disk)."""
        kept = []
        for job, outcome in record:
            key = (job.config_id, job.budget)
            if key not in self._out_of_space_jobs:
                self._out_of_space_hosts.pop(key, None)
                kept.append((job, outcome))
                continue
            full, rank = self._out_of_space_jobs[key]
            if key not in self._ran_out_before:  # its rank's disk may be full alone (the health check
                self.health.run_once_more(job)  # records a first failure): its outcome elsewhere is final
                self._run_again(job, outcome, rank)
                continue
            del self._out_of_space_jobs[key]
            self._out_of_space_hosts.pop(key, None)
            try:
                kept.append((job, kept_despite_full_disk(full, self._stops)))
            except OutOfSpaceError:
                self._out_of_space = self._out_of_space or full
        return kept

    def _run_again(self, job: Job, failure: Outcome, avoid: int) -> None:
        key = (job.config_id, job.budget)
        if self._out_of_space_jobs.pop(key, None) is not None:  # a full disk, judged only once it recurs elsewhere
            self._ran_out_before.add(key)
        first_line = (failure.error or "").splitlines()[0] if failure.error else ""
        logger.info("%s at budget %g failed on %s (%s): it runs again on another rank", job.config_id, job.budget,
                    self.describe(avoid), first_line)
        self.journal(retry_record(job, self.describe(avoid), failure.error))
        self._again.append((job, avoid))

    def _host(self, rank: int) -> str:
        return self.ranks.get(rank, ("?", None))[0]

    def _dispatch_again(self) -> None:
        """Jobs to run again go first, to an idle rank on another node if one is free (see
        :func:`~mpibohb.health.rank_to_run_again`)."""
        for _ in range(len(self._again)):
            job, avoid = self._again.popleft()
            full_on = self._out_of_space_hosts.get((job.config_id, job.budget), set())
            rank = rank_to_run_again(self._idle, avoid, self.health.in_service, self._host, full_on)
            if rank is None:
                self._again.append((job, avoid))
                continue
            self._idle.remove(rank)
            self._send(job, rank)

    def _late_answer(self, rank: int, key: JobKey) -> None:
        if rank not in self._lost:
            logger.warning("%s answered for %s, which it was not running; ignored", self.describe(rank), key)
            return
        logger.warning("%s answered after all, %s late; its job was recorded as failed and this answer is "
                       "discarded; the rank is back in service", self.describe(rank), self._lost.pop(rank))
        self.health.in_service.add(rank)
        self.health.retired.pop(rank, None)
        self._idle.append(rank)

    def _expire(self) -> list[tuple[Job, Outcome]]:
        """Jobs whose rank did not answer by the deadline: failed, and the rank is lost."""
        if self.timeout is None:
            return []
        now, expired = time.monotonic(), []
        for key, task in list(self._running.items()):
            if task.deadline is None or now <= task.deadline:
                continue
            del self._running[key]
            limit = answer_deadline(self.timeout) or 0.0
            why = (f"no answer {limit:.0f} s after its job was sent (timeout {self.timeout:g} s plus grace): it is "
                   "stuck where the timeout cannot interrupt it (a blocking C call, a stopped process)")
            self._lose(task.rank, why)
            error = f"JobTimeoutError on {self.describe(task.rank)}: {why}; the rank is taken out of service"
            logger.error("%s at budget %g: %s", task.job.config_id, task.job.budget, error)
            expired.append((task.job, Outcome(None, None, error, task.sent, time.time(), self.describe(task.rank))))
        return expired

    def _lose(self, rank: int, why: str) -> None:
        self._lost[rank] = why
        if rank in self._idle:
            self._idle.remove(rank)
        for job, failure, avoid in self.health.lost(rank, why):
            self._run_again(job, failure, avoid)

    def worker_died(self, rank: int, text: str, in_order: bool = True) -> None:
        """Called by the watch thread the moment ``rank``'s process ends: journal it first (the
        launcher may kill this process next), then leave the rest to the main thread. The death
        blames the job the rank ran only if no other worker death was seen since the job was sent,
        and the watch knows it came first (``in_order``): when one rank dies the launcher kills the
        others, and their deaths are no evidence."""
        task = next((t for t in list(self._running.values()) if t.rank == rank), None)
        # after another rank's death, this one may be the launcher's kill of the others: no blame
        blames = task is not None and in_order and task.deaths_before == self._deaths_seen
        self._deaths_seen += 1
        running = f" while running {task.job.config_id} at budget {task.job.budget:g}" if task else " while idle"
        if task is not None and not blames:
            running += " (after or with another rank's death: not counted against the job)"
        reason = f"{self.describe(rank)} ended{running}" + (f":\n{text.strip()}" if text.strip() else "")
        with contextlib.suppress(OSError):  # a journal that fails here fails the main thread's next write too
            self.journal(lost_record(self.describe(rank), reason, task.job if task is not None else None,
                                     blames_job=blames))
        print(f"mpibohb: {reason}", file=sys.stderr, flush=True)
        self._deaths.append((rank, reason, blames))

    def _take_deaths(self) -> list[tuple[Job, Outcome]]:
        """The main thread's part of a death: the rank is lost; its job runs again, and is recorded
        as failed at its :data:`~mpibohb.health.MAX_EVIDENCED_DEATHS`-th death (earlier sessions' count),
        counting only deaths that blame it (see :meth:`worker_died`)."""
        recorded = []
        while self._deaths:
            rank, reason, blames = self._deaths.popleft()
            task = next((t for t in self._running.values() if t.rank == rank), None)
            self._lose(rank, reason)
            if task is None:
                continue
            key = (task.job.config_id, task.job.budget)
            del self._running[key]
            self._died_running[key] = self._died_running.get(key, 0) + blames
            if blames and self._died_running[key] >= MAX_EVIDENCED_DEATHS:
                error = abandoned_job_reason(self._died_running[key], reason)
                recorded.append((task.job, Outcome(None, None, error, task.sent, time.time(), self.describe(rank))))
            else:
                self.health.run_once_more(task.job)
                self._again.append((task.job, rank))
        return recorded

    def close(self) -> None:
        """Tell every worker rank that answers to stop (all are idle once the loop is done); only once.
        A rank that never answered keeps the MPI job from ending: the job is aborted at exit."""
        if self._closed:
            return
        self._closed = True
        if self.watch is not None:
            self.watch.stop_reporting()
        for rank in range(1, self.comm.Get_size()):
            if rank not in self._lost:
                self.comm.send(None, dest=rank, tag=TAG_JOB)
        if self.watch is not None:  # after the stops: a worker rank never sees its socket close first
            self.watch.close(keep_connections=self.workers_end_with_run)
        if self._lost:
            lost = "; ".join(f"{self.describe(rank)}: {why}" for rank, why in sorted(self._lost.items()))
            logger.error("the run went on without lost worker ranks (%s); MPI cannot end a job while one of its "
                         "ranks does not answer, so the job is aborted when this process exits", lost)
            abort_at_exit(functools.partial(_abort_at_exit, f"mpibohb: ending the MPI job with MPI_Abort: lost "
                                                            f"worker ranks ({lost})"))


def _abort_at_exit(message: str) -> None:
    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)
    time.sleep(0.5)  # let the launcher forward what this process printed before Abort tears the job down
    abort_world(MPI.COMM_WORLD, 1)


def abort_on_error(comm: MPI.Comm, where: str) -> None:
    """Print the current exception tagged with rank and host, then end the whole MPI job.

    A mistake of the user's (a run directory that exists, settings that differ on resume) is
    printed as its message alone; anything else with its traceback.
    """
    error = sys.exc_info()[1]
    if isinstance(error, (FileExistsError, JournalError, RunDirectoryError, RunFileError, NoRanksLeftError)):
        text = f"mpibohb: error on {worker_name(comm)}: {error}"
    else:
        text = f"mpibohb: fatal error on {worker_name(comm)} in {where}:\n{traceback.format_exc()}"
    print(text, file=sys.stderr, flush=True)
    time.sleep(0.5)  # let the launcher forward the message before Abort tears the job down
    abort_world(MPI.COMM_WORLD, 1)


def run_spmd(comm: MPI.Comm, run_master: Callable[[MPIExecutor], Any], compute: Callable[..., Any],
             working_directory: str, timeout: float | None, graceful_stop: bool, workers_return: bool = False,
             rank_failure_limit: int | None = DEFAULT_RANK_FAILURE_LIMIT, checkpoint_root: str | None = None) -> Any:
    """Rank 0 runs ``run_master(executor)`` and returns what it returns; the other ranks serve
    jobs until told to stop, then end their process with ``SystemExit(0)`` (or, with
    ``workers_return``, return ``None``).

    An exception in mpibohb's own code on any rank ends the whole MPI job with a non-zero exit
    (``Abort``) instead of leaving it hanging. With ``graceful_stop`` the worker ranks ignore
    SIGTERM, SIGINT and SIGUSR1: the master records everything, then ends the job with exit code
    :data:`~mpibohb.stopping.EXIT_STOPPED` (busy workers cannot be waited for).

    Raises:
        RuntimeError: ranks of ``comm`` ended their process when an earlier run ended.
    """
    # a worker rank leaves stop signals to rank 0 from its first step in run: one that came while
    # it still met the others or connected its watch ended the job as an uncaught KeyboardInterrupt
    worker = comm.Get_rank() != 0
    restore_signals = ignore_stop_signals() if graceful_stop and worker else (lambda: None)
    try:
        refuse_ranks_that_ended(comm)
        meet_in_run(comm)  # before the collectives below, which would spin while a rank is late
        if not workers_return:
            hold_at_exit(comm)
        comm = comm.Dup()  # a communicator of our own: the user's messages in compute never meet ours
        try:
            ranks = comm.gather((socket.gethostname(), os.getpid()), root=0)
            if not worker:
                assert ranks is not None  # the root gets the list; the other ranks get None
                executor = MPIExecutor(comm, working_directory, timeout, dict(enumerate(ranks)),
                                       rank_failure_limit, checkpoint_root)
                executor.watch = _start_watch(executor)
                executor.workers_end_with_run = not workers_return
                comm.bcast(executor.watch.address() if executor.watch else None, root=0)
                return _master(comm, run_master, executor)
            address: Address | None = comm.bcast(None, root=0)
            watched = WatchedRank(address, comm.Get_rank())
            try:
                serve(comm, compute, watched)
            except RankZeroGoneError as gone:
                end_orphan(str(gone))
            except BaseException:
                abort_on_error(comm, "the worker loop")
        finally:
            comm.Free()
    finally:
        restore_signals()
    if workers_return:
        watched.close()
        note_run(returned_none=True)  # an error about None after this is likely the script's unguarded analysis
        return None
    watch_rank_zero_at_exit(watched)
    logger.debug("%s: the run has ended; this process ends (run(..., workers_return=True) keeps it)",
                 worker_name(MPI.COMM_WORLD))
    raise SystemExit(0)


def _start_watch(executor: MPIExecutor) -> DeathWatch | None:
    try:
        return DeathWatch(executor.worker_died)
    except OSError as exc:
        logger.info("no death watch (%s): a worker rank's death will carry no evidence", exc)
        return None


def _master(comm: MPI.Comm, run_master: Callable[[MPIExecutor], Any], executor: MPIExecutor) -> Any:
    try:
        with one_blas_thread():  # rank 0 computes nothing but the model (see mpibohb/blas.py)
            return run_master(executor)
    except RunStopped:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # MPICH's "application called MPI_Abort" is no error here
        abort_world(MPI.COMM_WORLD, EXIT_STOPPED)
    except BaseException:
        abort_on_error(comm, "the master")
