"""Executors evaluate jobs: ``serial`` in this process, ``threads`` in a pool, ``mpi`` on ranks,
``simulated`` on virtual workers with a simulated clock (:func:`mpibohb.simulate`).

Every executor offers the same calls to the event loop in :mod:`mpibohb.loop`: ``idle_count()``,
``next_worker()``, ``set_journal(journal)``, ``note_earlier_deaths(deaths)``,
``note_earlier_stops(stops)``, ``submit(job)``,
``wait(stop)`` (block until at least one job finished, or a stop was requested, and return the
finished ``(job, outcome)`` pairs), ``drain()`` (what has finished, without blocking, after a
stop) and ``close()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..brackets import ConfigId, Job
from ..evaluation import Outcome, OutOfSpaceError
from ..stopping import StopFlag

logger = logging.getLogger(__name__)

# Stops that reached a job while it ran (sessions ended, or runs again under MPI) before what
# compute returns after one is kept: a compute that uses a stop signal for itself would run for ever.
KEPT_AFTER_STOPS = 2


def kept_despite_full_disk(error: OutOfSpaceError, earlier_stops: Mapping[tuple[ConfigId, float], int]) -> Outcome:
    """The failed outcome of a job whose compute ran out of disk space, to record, once stops (a
    full disk's or a signal's) ended :data:`KEPT_AFTER_STOPS` earlier sessions while it ran (by
    ``earlier_stops``, per job): a configuration that fills any disk would stop every session.

    Raises:
        OutOfSpaceError: ``error``, before that: the run stops, and the job runs again on resume.
    """
    stopped_before = earlier_stops.get((error.config_id, error.budget), 0)
    if stopped_before < KEPT_AFTER_STOPS:
        raise error
    logger.warning("%s at budget %g ran out of disk space, and stops ended %d earlier sessions while it ran: it is "
                   "recorded as failed this time, so that the run goes on (a configuration that fills the disk)",
                   error.config_id, error.budget, stopped_before)
    return error.outcome


class Executor(Protocol):
    """How jobs get evaluated."""

    def set_journal(self, journal: Callable[[dict[str, Any]], None]) -> None:
        """Where to journal what the executor decides itself (e.g. a job run again on another worker)."""
        ...

    def note_earlier_deaths(self, deaths: dict[tuple[ConfigId, float], int]) -> None:
        """Jobs a resume hands out again, with how often their worker was seen to die while running
        them in earlier sessions (the journal's ``lost`` records), so that the rule for giving up on
        a job counts every session."""
        ...

    def note_earlier_stops(self, stops: dict[tuple[ConfigId, float], int]) -> None:
        """Jobs a resume hands out again, with how many earlier sessions a stop ended while they
        ran (a serial run keeps what such a job returns once it has been stopped this often)."""
        ...

    def next_worker(self) -> str:
        """The name of the worker the next :meth:`submit` goes to, for the journal."""
        ...

    def idle_count(self) -> int:
        """Number of workers that can take a job now."""
        ...

    def submit(self, job: Job) -> None:
        """Hand ``job`` to an idle worker."""
        ...

    def wait(self, stop: StopFlag, until: float | None = None) -> list[tuple[Job, Outcome]]:
        """Block until at least one job has finished, ``stop`` is requested, or the clock (the
        recorder's: ``time.time()`` but in a simulation) reaches ``until``; return every finished one."""
        ...

    def drain(self) -> list[tuple[Job, Outcome]]:
        """Every job that has finished by now, without blocking."""
        ...

    def close(self) -> None:
        """Stop the workers."""
        ...
