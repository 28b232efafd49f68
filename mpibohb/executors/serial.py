"""Evaluate each job in this process, when the loop waits for it."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from ..optimizer import Job
from ..stopping import StopFlag
from ..worker import Outcome, evaluate


class SerialExecutor:
    """One worker: the calling process itself."""

    def __init__(self, compute: Callable[..., Any], working_directory: str, timeout: float | None = None) -> None:
        self.compute = compute
        self.timeout = timeout
        self.working_directory = working_directory
        self.name = f"serial@{socket.gethostname()}"
        self._pending: Job | None = None

    def idle_count(self) -> int:
        """1 while no job is pending, else 0."""
        return 0 if self._pending else 1

    def submit(self, job: Job) -> None:
        """Remember ``job``; it runs in :meth:`wait`."""
        self._pending = job

    def wait(self, stop: StopFlag) -> list[tuple[Job, Outcome]]:
        """Run the pending job now; a stop signal interrupts it (it then runs again on resume)."""
        job, self._pending = self._pending, None
        if job is None:
            return []
        with stop.interruptible_section():
            outcome = evaluate(self.compute, job.config_id, job.config, job.budget, self.working_directory,
                               self.name, self.timeout)
        return [(job, outcome)]

    def drain(self) -> list[tuple[Job, Outcome]]:
        """Nothing runs in the background."""
        return []

    def close(self) -> None:
        """Nothing to stop."""
