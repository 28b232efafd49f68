"""Which job next: one policy per class behind :class:`Schedule`, so that the ask/tell
:class:`~mpibohb.ask_tell.Optimizer` keeps the sampler and the random generator, and a policy
decides.

* :class:`~.synchronous.Synchronous`: HpBandSter's rule; successive halving stage by stage, a new
  bracket only when every open one waits for results;
* :class:`~.synchronous.FillTail`: the same until the tail of a run is near, then every remaining
  bracket at once (``fill_tail=True``);
* :class:`~.asynchronous.Asynchronous`: promotions without stage barriers, no worker waits for a
  straggler (``asynchronous=True``);
* :class:`~.keep_busy.KeepBusy`: the same, and extra jobs for workers that would idle while the
  run's last jobs run (``asynchronous=True, keep_busy=True``).

Every policy decides only from the seed and the order of results (with their run times, which the
journal keeps), so a resume replays it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..brackets import ConfigId, Job, PlanFunction
from ..samplers import Sampler
from .asynchronous import Asynchronous
from .keep_busy import KeepBusy
from .synchronous import FillTail, Synchronous

KINDS = ("synchronous", "fill_tail", "asynchronous", "keep_busy")


class Schedule(Protocol):
    """A policy that decides which job runs next."""

    n_iterations: int
    replays_sessions: bool  # its choices depend on each session's iterations and workers
    wake_at: float | None  # after next_job gave None: when to ask again even without a result

    @property
    def finished(self) -> bool:
        """Every bracket of every iteration has all its results."""
        ...

    def start_session(self, n_iterations: int, workers: int, now: float | None = None) -> None:
        """The next jobs go to ``workers`` workers of a session of ``n_iterations`` iterations that
        started at ``now`` (the journal's time stamp)."""
        ...

    def next_job(self, rng: np.random.Generator, now: float | None = None) -> Job | None:
        """The next job, or ``None`` while nothing can be handed out (wait for a result). ``now``:
        the time stamp the journal gives the hand-out (``None``: unknown), so a replay asks at the
        same moment."""
        ...

    def record(self, job: Job, loss: float, duration: float | None = None) -> tuple[np.ndarray, int | None]:
        """Store ``job``'s loss; its configuration's vector, and the iteration of the bracket
        that this result finished (else ``None``). ``duration``: the seconds it ran, as the journal
        keeps them (``None``: unknown, or it failed); a policy may learn from it, and a replay
        gives it the same figures."""
        ...

    def unneeded_jobs(self) -> list[Job]:
        """The jobs handed out and not finished that the run no longer needs (``keep_busy``'s extra
        jobs, asked for at a session's start, after it adopted the extra brackets within its
        iterations): a resume drops them instead of running them again."""
        ...

    def drop(self, job: Job) -> None:
        """``job``, one of :meth:`unneeded_jobs`, will not run: the policy does not wait for it, and
        the sampler no longer counts it as running.

        Raises:
            ValueError: ``job`` is not one of :meth:`unneeded_jobs`.
        """
        ...

    def pop_notices(self) -> list[str]:
        """Progress lines the policy has for the log since the last call."""
        ...

    def pop_retired(self) -> list[ConfigId]:
        """The configurations that can no longer be promoted, since the last call (their
        checkpoints may go)."""
        ...


def make_schedule(kind: str, sampler: Sampler, plan_of: PlanFunction, n_iterations: int, eta: float,
                  plan_period: int) -> Schedule:
    """The policy ``kind`` (one of :data:`KINDS`) for ``n_iterations`` brackets; iteration ``i`` runs
    ``plan_of(i)``, which repeats every ``plan_period`` iterations."""
    if kind == "synchronous":
        return Synchronous(sampler, plan_of, n_iterations)
    if kind == "fill_tail":
        return FillTail(sampler, plan_of, n_iterations, plan_period)
    if kind == "asynchronous":
        return Asynchronous(sampler, plan_of, n_iterations, eta, plan_period)
    if kind == "keep_busy":
        return KeepBusy(sampler, plan_of, n_iterations, eta, plan_period)
    raise ValueError(f"no schedule {kind!r}; one of {', '.join(KINDS)}")
