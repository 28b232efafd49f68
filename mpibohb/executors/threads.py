"""Evaluate jobs in threads of this process (for work that releases the GIL).

Python cannot stop a thread. So that a ``timeout`` still bounds the run, a job that is past its
limit is recorded as failed ("timeout") at the limit, its thread is left to finish in the
background (its result is then discarded), and a fresh thread takes its place. Every thread is
a daemon: one that never returns does not keep the process alive at the end.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from .. import checks
from ..brackets import ConfigId, Job
from ..checkpoints import directory_for
from ..evaluation import EvaluationFileError, Outcome, OutOfSpaceError, evaluate
from ..stopping import StopFlag
from . import kept_despite_full_disk

logger = logging.getLogger(__name__)

_STOP_CHECK_INTERVAL = 0.1  # seconds between looks at the stop flag while threads work
_STOP_MARGIN = 0.05  # seconds: a job that ended this shortly before the stop's handler ran may be its victim


@dataclass
class _Task:
    """A job handed to the threads, and what the executor knows of it."""

    job: Job
    future: Future[Outcome] = field(default_factory=Future)
    started: float | None = None  # time.monotonic() when a thread took it
    ended: float | None = None  # time.monotonic() when its thread finished it
    thread: _WorkerThread | None = None


class _WorkerThread(threading.Thread):
    """Takes tasks from the queue until it gets ``None`` or is retired (abandoned after a timeout)."""

    def __init__(self, name: str, tasks: queue.Queue[_Task | None], run: Callable[[_Task], Outcome],
                 compute: Callable[..., Any]) -> None:
        super().__init__(name=name, daemon=True)
        self.tasks = tasks
        self.run_task = run
        self.compute = compute  # this thread's own
        self.retired = False

    def run(self) -> None:
        while not self.retired:
            task = self.tasks.get()
            if task is None:
                return
            task.thread, task.started = self, time.monotonic()
            try:
                outcome = self.run_task(task)
            except BaseException as exc:  # noqa: BLE001 - handed to the master, which re-raises it
                task.ended = time.monotonic()
                task.future.set_exception(exc)
            else:
                task.ended = time.monotonic()
                task.future.set_result(outcome)


class ThreadExecutor:
    """``n_workers`` threads, each evaluating one job at a time: the first with ``compute``, each
    later one (a replacement of a thread past its time limit too) with what ``new_compute()`` gives
    (:func:`~mpibohb.worker.thread_copies`; ``None``: ``compute`` again)."""

    def __init__(self, compute: Callable[..., Any], working_directory: str, n_workers: int,
                 timeout: float | None = None, checkpoint_root: str | None = None,
                 new_compute: Callable[[], Callable[..., Any]] | None = None) -> None:
        self.n_workers = checks.integer("n_workers", n_workers, minimum=1)
        self.compute = compute
        self._new_compute = new_compute
        self.working_directory, self.checkpoint_root = working_directory, checkpoint_root
        self.timeout = timeout
        self._host = socket.gethostname()
        self._tasks: queue.Queue[_Task | None] = queue.Queue()
        self._running: dict[Future[Outcome], _Task] = {}
        self._threads: list[_WorkerThread] = []  # every thread started, retired ones too
        self._stop: StopFlag | None = None  # the run's, from wait()
        self._earlier_stops: dict[tuple[ConfigId, float], int] = {}
        self._out_of_space: EvaluationFileError | None = None  # raised once what finished with it is recorded

    def _start_thread(self) -> None:
        compute = self.compute if not self._threads or self._new_compute is None else self._new_compute()
        thread = _WorkerThread(f"mpibohb-worker_{len(self._threads)}", self._tasks, self._evaluate, compute)
        self._threads.append(thread)
        thread.start()

    def set_journal(self, journal: Callable[[dict[str, Any]], None]) -> None:
        """Nothing to journal of its own."""

    def note_earlier_deaths(self, deaths: dict[tuple[ConfigId, float], int]) -> None:
        """A thread's death is not a worker's death: nothing to count."""


    def note_earlier_stops(self, stops: dict[tuple[ConfigId, float], int]) -> None:
        """Jobs that earlier sessions' stops ended while they ran: one that runs out of disk space
        again is recorded as failed after :data:`~mpibohb.executors.KEPT_AFTER_STOPS` of them."""
        self._earlier_stops = dict(stops)

    def next_worker(self) -> str:
        """Some thread of this process."""
        return f"threads@{self._host}"

    def idle_count(self) -> int:
        """Threads without a job.

        Raises:
            EvaluationFileError: a compute ran out of disk space, or a checkpoint directory could not
                be made (see :meth:`drain`): no new job starts.
        """
        self._raise_out_of_space()
        return self.n_workers - len(self._running)

    def _raise_out_of_space(self) -> None:
        if self._out_of_space is not None:
            raise self._out_of_space

    def submit(self, job: Job) -> None:
        """Start ``job`` on a free thread."""
        task = _Task(job)
        self._running[task.future] = task
        if sum(not thread.retired for thread in self._threads) < len(self._running):
            self._start_thread()  # threads start when jobs need them, so an early error leaks none
        self._tasks.put(task)

    def _evaluate(self, task: _Task) -> Outcome:
        thread = threading.current_thread()
        name = f"{thread.name}@{self._host}"
        job = task.job
        compute = thread.compute if isinstance(thread, _WorkerThread) else self.compute
        return evaluate(compute, job.config_id, job.config, job.budget, self.working_directory, name,
                        self.timeout, job.previous_budget, directory_for(self.checkpoint_root, job.config_id))

    def wait(self, stop: StopFlag, until: float | None = None) -> list[tuple[Job, Outcome]]:
        """Block until a job finishes (or runs past its time limit), a stop is requested, or
        ``time.time()`` reaches ``until``; return all finished ones, oldest submission first."""
        self._stop = stop
        while not stop.requested:
            self._raise_out_of_space()
            timeout = self._time_to_next_limit()
            if until is not None:
                timeout = max(0.0, min(timeout, until - time.time()))
            done, _ = wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
            finished = self.drain()
            if finished or (until is not None and time.time() >= until):
                return finished
        return []

    def _time_to_next_limit(self) -> float:
        """Seconds until the next look: the stop-check interval, or sooner if a job's limit comes first."""
        started = [task.started for task in self._running.values() if task.started is not None]
        if self.timeout is None or not started:
            return _STOP_CHECK_INTERVAL
        return min(_STOP_CHECK_INTERVAL, max(0.0, min(started) + self.timeout - time.monotonic()))

    def drain(self) -> list[tuple[Job, Outcome]]:
        """The finished jobs and those past their time limit, without blocking. Jobs that ended
        after a stop signal came are not recorded: the signal may have killed what ``compute``
        started, or ``compute`` caught it and returned a penalty. They run again on resume."""
        # the signal reaches this process before it kills compute's child, and Python runs the handler
        # (which notes the time) at once in a waiting main thread: a job it ended ends after that time
        stopped_at = self._stop.requested_at if self._stop is not None else None
        finished, dropped = [], []
        for future, task in list(self._running.items()):
            if self._past_limit(task) and not future.done():  # one done just now keeps its result
                finished.append((self._running.pop(future).job, self._abandon(task)))
            elif future.done():
                job = self._running.pop(future).job
                if stopped_at is not None and (task.ended is None or task.ended >= stopped_at - _STOP_MARGIN):
                    dropped.append(job)
                else:
                    finished.extend((job, outcome) for outcome in self._outcome(job, future))
        if dropped:
            logger.info("not recorded, as a stop signal came while they ran (they run again on resume): %s",
                        ", ".join(f"{job.config_id} at budget {job.budget:g}" for job in dropped))
        return finished

    def _outcome(self, job: Job, future: Future[Outcome]) -> list[Outcome]:
        """The outcome of a finished job, or none when its compute ran out of disk space: the run
        then stops at the next :meth:`idle_count` or :meth:`wait`, once the outcomes that came with
        it are recorded (see :func:`~mpibohb.executors.kept_despite_full_disk`)."""
        error = future.exception()
        if not isinstance(error, EvaluationFileError):
            return [future.result()]
        try:
            if isinstance(error, OutOfSpaceError):
                return [kept_despite_full_disk(error, self._earlier_stops)]
            raise error  # its checkpoint directory: the root's failure, never the job's
        except EvaluationFileError:
            self._out_of_space = self._out_of_space or error
            return []

    def _past_limit(self, task: _Task) -> bool:
        return self.timeout is not None and task.started is not None \
            and time.monotonic() - task.started > self.timeout

    def _abandon(self, task: _Task) -> Outcome:
        """Record a job past its limit as failed and retire its thread (the next job gets a fresh one)."""
        assert task.thread is not None and task.started is not None
        task.thread.retired = True
        still_running = sum(thread.retired and thread.is_alive() for thread in self._threads)
        if still_running > self.n_workers:
            logger.warning("%d evaluations past their time limit still run in abandoned threads (Python cannot "
                           "stop a thread); they use this process's CPU and memory", still_running)
        now, elapsed, where = time.time(), time.monotonic() - task.started, f"{task.thread.name}@{self._host}"
        return Outcome(None, None, f"JobTimeoutError on {where}: timeout: still running after {elapsed:.1f} s, "
                       f"limit {self.timeout:g} s; its thread was left to finish and its result is discarded",
                       now - elapsed, now, where)

    def close(self) -> None:
        """Let the threads end once their jobs end; do not wait for them (after a stop, jobs may
        still run; at a normal end none does)."""
        for _ in self._threads:
            self._tasks.put(None)
