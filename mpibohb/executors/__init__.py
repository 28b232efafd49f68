"""Executors evaluate jobs: ``serial`` in this process, ``threads`` in a pool, ``mpi`` on ranks.

Every executor offers the same three calls to the event loop in :mod:`mpibohb.loop`:
``idle_count()``, ``submit(job)`` and ``wait()`` (block until at least one job finished and
return the finished ``(job, outcome)`` pairs), plus ``close()``.
"""

from __future__ import annotations

from typing import Protocol

from ..optimizer import Job
from ..worker import Outcome


class Executor(Protocol):
    """How jobs get evaluated."""

    def idle_count(self) -> int:
        """Number of workers that can take a job now."""
        ...

    def submit(self, job: Job) -> None:
        """Hand ``job`` to an idle worker."""
        ...

    def wait(self) -> list[tuple[Job, Outcome]]:
        """Block until at least one job has finished; return every finished one."""
        ...

    def close(self) -> None:
        """Stop the workers."""
        ...
