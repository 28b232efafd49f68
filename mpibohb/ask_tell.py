"""The ask/tell core: :class:`Optimizer` keeps the sampler and the random generator; a policy of
:mod:`mpibohb.scheduling` decides which job runs next. Above the brackets and the policies, so
that data flows one way: brackets <- scheduling <- ask_tell."""

from __future__ import annotations

import math

import numpy as np

from .brackets import ConfigId, Job
from .samplers import Sampler
from .scheduling import Schedule


class Optimizer:
    """The ask/tell core: a sampler, the random generator, and a policy that decides which job
    runs next (:mod:`mpibohb.scheduling`: HpBandSter's synchronous brackets, ``fill_tail``, or
    asynchronous promotions).

    ``ask()`` hands out the next job or ``None`` (wait for a result, or everything is handed out);
    ``tell(job, loss)`` feeds a result back and says which bracket it finished, if any.
    ``start_session`` says on how many workers, and up to how many iterations, the next jobs run.
    """

    def __init__(self, sampler: Sampler, schedule: Schedule, rng: np.random.Generator) -> None:
        self.sampler, self.schedule, self.rng = sampler, schedule, rng
        self.num_running = 0

    @property
    def n_iterations(self) -> int:
        """The iterations (brackets) of the run."""
        return self.schedule.n_iterations

    @property
    def replays_sessions(self) -> bool:
        """Whether the policy's choices depend on each session's iterations and workers (fill_tail,
        the asynchronous tail)."""
        return self.schedule.replays_sessions

    @property
    def finished(self) -> bool:
        """True once every bracket of every iteration has all its results."""
        return self.schedule.finished

    def start_session(self, n_iterations: int, workers: int, now: float | None = None) -> None:
        """The next jobs go to ``workers`` workers of a session that runs ``n_iterations`` iterations
        in all (at most this optimizer's). A resumed run replays each earlier session with its own
        figures, so that a policy that depends on them hands out what it handed out then."""
        self.schedule.start_session(n_iterations, workers, now)

    def drop_unneeded(self) -> list[Job]:
        """Drop the jobs handed out and not finished that the run no longer needs (``keep_busy``'s
        extra jobs, at a session's start: see :meth:`.Schedule.unneeded_jobs`); return them."""
        jobs = self.schedule.unneeded_jobs()
        for job in jobs:
            self.drop(job)
        return jobs

    def drop(self, job: Job) -> None:
        """``job``, handed out and not finished, will not run (a replay repeats a journaled drop).

        Raises:
            ValueError: the policy needs ``job``'s result.
        """
        self.schedule.drop(job)
        self.num_running -= 1

    def ask(self, now: float | None = None) -> Job | None:
        """The next job, or ``None`` when nothing can be handed out now. ``now``: the time stamp the
        journal gives the hand-out, which a policy may decide by (a replay passes the journaled one)."""
        job = self.schedule.next_job(self.rng, now)
        if job is not None:
            self.num_running += 1
        return job

    @property
    def wake_at(self) -> float | None:
        """After ``ask()`` gave ``None``: the moment to ask again even if no result comes (``None``:
        only a result changes the answer)."""
        return self.schedule.wake_at

    def tell(self, job: Job, loss: float, duration: float | None = None) -> int | None:
        """Feed back the loss of ``job`` (``inf`` or NaN: failed, treated as +inf) and the seconds it
        ran (:func:`~mpibohb.scheduling.run_times.run_time` of the time stamps the journal keeps, so
        that a replay tells the same; ``None``: unknown); return the iteration of the bracket this
        result finished, else ``None``."""
        loss = float(loss)
        if not math.isfinite(loss):
            loss = math.inf
        vector, finished = self.schedule.record(job, loss, duration)
        self.num_running -= 1
        self.sampler.observe(vector, job.budget, loss)
        return finished

    def pop_notices(self) -> list[str]:
        """Progress lines of the policy for the log, since the last call."""
        return self.schedule.pop_notices()

    def pop_retired(self) -> list[ConfigId]:
        """The configurations that can no longer be promoted, since the last call."""
        return self.schedule.pop_retired()
