"""Evaluate jobs in a pool of threads of this process (for work that releases the GIL)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from ..optimizer import Job
from ..stopping import StopFlag
from ..worker import Outcome, evaluate

_STOP_CHECK_INTERVAL = 0.1  # seconds between looks at the stop flag while threads work


class ThreadExecutor:
    """``n_workers`` threads, each evaluating one job at a time."""

    def __init__(self, compute: Callable[..., Any], working_directory: str, n_workers: int,
                 timeout: float | None = None) -> None:
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
        self.compute = compute
        self.working_directory = working_directory
        self.n_workers = n_workers
        self.timeout = timeout
        self._host = socket.gethostname()
        self._pool = ThreadPoolExecutor(n_workers, thread_name_prefix="mpibohb-worker")
        self._running: dict[Future[Outcome], Job] = {}

    def idle_count(self) -> int:
        """Threads without a job."""
        return self.n_workers - len(self._running)

    def submit(self, job: Job) -> None:
        """Start ``job`` on a free thread."""
        future = self._pool.submit(self._evaluate, job)
        self._running[future] = job

    def _evaluate(self, job: Job) -> Outcome:
        name = f"{threading.current_thread().name}@{self._host}"
        return evaluate(self.compute, job.config_id, job.config, job.budget, self.working_directory, name,
                        self.timeout)

    def wait(self, stop: StopFlag) -> list[tuple[Job, Outcome]]:
        """Block until a job finishes or a stop is requested; return all finished ones, oldest
        submission first."""
        while not stop.requested:
            done, _ = wait(list(self._running), timeout=_STOP_CHECK_INTERVAL, return_when=FIRST_COMPLETED)
            if done:
                return self.drain()
        return []

    def drain(self) -> list[tuple[Job, Outcome]]:
        """The finished jobs, without blocking."""
        finished = [future for future in self._running if future.done()]
        return [(self._running.pop(future), future.result()) for future in finished]

    def close(self) -> None:
        """Stop the threads once their jobs end; do not wait for them (after a stop, jobs may
        still run; at a normal end none does)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
