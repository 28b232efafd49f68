"""Successive halving stage by stage, as HpBandSter runs it, and ``fill_tail``'s variant."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np

from ..brackets import Bracket, ConfigId, Job, PlanFunction
from ..samplers import Sampler


class EveryJobNeeded:
    """A policy whose every job handed out is the run's own: none is dropped at a resume."""

    def unneeded_jobs(self) -> list[Job]:
        """None: every job handed out is the run's own (see :meth:`.Schedule.unneeded_jobs`)."""
        return []

    def drop(self, job: Job) -> None:
        """Refused: the run needs every job it handed out.

        Raises:
            ValueError: always.
        """
        raise ValueError(f"{job.config_id} at budget {job.budget:g} is one of the run's own jobs: it cannot be dropped")


class Synchronous(EveryJobNeeded):
    """HpBandSter's rule: the oldest open bracket's next job; a new bracket starts only when every
    open one waits for results (up to the session's iterations)."""

    replays_sessions = False
    wake_at: float | None = None  # only a result changes what it hands out

    def __init__(self, sampler: Sampler, plan_of: PlanFunction, n_iterations: int) -> None:
        self.sampler, self.plan_of = sampler, plan_of
        self.n_iterations = self.session_iterations = n_iterations
        self.workers = 1
        self.brackets: list[Bracket] = []
        self._open: list[Bracket] = []  # started and not finished, in the order jobs come from them
        self._notices: list[str] = []
        self._retired: list[ConfigId] = []

    @property
    def finished(self) -> bool:
        """Every bracket of every iteration has all its results."""
        return len(self.brackets) == self.n_iterations and not self._open

    def start_session(self, n_iterations: int, workers: int, now: float | None = None) -> None:
        """The next jobs go to ``workers`` workers of a session of ``n_iterations`` iterations."""
        self.workers, self.session_iterations = max(1, int(workers)), min(int(n_iterations), self.n_iterations)

    def next_job(self, rng: np.random.Generator, now: float | None = None) -> Job | None:
        """The next job of the first open bracket that has one; a new bracket when none has."""
        while True:
            for bracket in self._open:
                job = bracket.next_job(rng)
                if job is not None:
                    self._handed_out(job)
                    return job
            if len(self.brackets) >= self.session_iterations:
                return None
            self._start_bracket()

    def _handed_out(self, job: Job) -> None:
        """Hook: ``job`` goes out."""

    def _start_bracket(self) -> None:
        iteration = len(self.brackets)
        bracket = Bracket(iteration, self.plan_of(iteration), self.sampler)
        self.brackets.append(bracket)
        self._open.append(bracket)

    def record(self, job: Job, loss: float, duration: float | None = None) -> tuple[np.ndarray, int | None]:
        """Store ``job``'s loss (its ``duration`` is not used); the configuration's vector, and its
        iteration if its bracket ended."""
        iteration, _, index = job.config_id
        if not 0 <= iteration < len(self.brackets):
            raise ValueError(f"unknown job {job.config_id}: no bracket {iteration}")
        bracket = self.brackets[iteration]
        stage = bracket.stage
        bracket.record(index, job.budget, loss)
        vector = bracket.entries[index].proposal.vector
        if bracket.stage != stage:
            self._retired.extend((iteration, 0, i) for i in bracket.retired)
            bracket.retired.clear()
            self._stage_changed()
        if not bracket.finished:
            return vector, None
        self._open.remove(bracket)
        bracket.entries.clear()  # a finished bracket is never read again: free its configurations
        return vector, iteration

    def _stage_changed(self) -> None:
        """Hook: a bracket moved to its next stage."""

    def pop_notices(self) -> list[str]:
        """Progress lines for the log since the last call."""
        notices, self._notices = self._notices, []
        return notices

    def pop_retired(self) -> list[ConfigId]:
        """The configurations no longer promotable since the last call: a stage's results ranked
        them below those promoted, or their bracket finished."""
        retired, self._retired = self._retired, []
        return retired


class FillTail(Synchronous):
    """``fill_tail``: as :class:`Synchronous` until the tail is near, then every remaining bracket.

    The tail is near when the budget not yet handed out, per worker, no longer covers the longest
    chain of stages (the sum of its budgets) of a bracket not yet started: that bracket could no
    longer end with the rest of the work even if every worker stayed busy. From then on jobs come
    from the bracket with the longest chain of stages left first (oldest first on ties). Budget
    stands in for run time. Its choices depend on each session's workers and iterations, which a
    resume replays.
    """

    replays_sessions = True

    def __init__(self, sampler: Sampler, plan_of: PlanFunction, n_iterations: int, plan_period: int) -> None:
        super().__init__(sampler, plan_of, n_iterations)
        if plan_period < 1:
            raise ValueError(f"fill_tail needs the period of the bracket plans, got plan_period={plan_period!r}")
        self.plan_period = plan_period
        self.brackets_before_tail: int | None = None  # brackets started when the tail started the rest
        self._tail: TailPlan | None = None  # built at the first ask
        self._reorder = False  # in the tail: a bracket changed stage since the last sort

    @property
    def tail_started(self) -> bool:
        """Every remaining bracket of the session has started."""
        return self.brackets_before_tail is not None

    def start_session(self, n_iterations: int, workers: int, now: float | None = None) -> None:
        """As :meth:`Synchronous.start_session`; a run extended has its own tail still ahead."""
        iterations = min(int(n_iterations), self.n_iterations)
        if iterations != self.session_iterations and self.tail_started:
            self.brackets_before_tail = None
            self._open.sort(key=lambda bracket: bracket.iteration)
        super().start_session(n_iterations, workers, now)
        if self._tail is not None:
            self._tail.plan_up_to(self.session_iterations)

    def next_job(self, rng: np.random.Generator, now: float | None = None) -> Job | None:
        """Start the tail when it is near; in the tail, the longest chain of stages first."""
        if self._tail is None:
            self._tail = TailPlan(self.plan_of, self.plan_period, self.session_iterations)
        started = len(self.brackets)
        if not self.tail_started and started < self.session_iterations and self._tail.is_near(started, self.workers):
            self.brackets_before_tail = started
            while len(self.brackets) < self.session_iterations:
                self._start_bracket()
            self._notices.append(f"fill_tail: starting every remaining bracket now ({self.session_iterations - started}"
                                 f" of {self.session_iterations}), to keep the workers busy to the end")
        if self.tail_started and self._reorder:
            self._open.sort(key=lambda b: (-sum(b.plan.budgets[b.stage:]), b.iteration))
            self._reorder = False
        return super().next_job(rng, now)

    def _start_bracket(self) -> None:
        super()._start_bracket()
        self._reorder = True

    def _handed_out(self, job: Job) -> None:
        assert self._tail is not None
        self._tail.handed_out += job.budget

    def _stage_changed(self) -> None:
        self._reorder = True


class TailPlan:
    """What fill_tail needs to know of the brackets of a session: the budget not yet handed out and
    the longest chain of stages among the brackets from a given iteration on.

    Plans repeat every ``period`` iterations, so this takes one cycle of plans, whatever the
    number of iterations (a session of 10**9 iterations plans at once).
    """

    def __init__(self, plan_of: PlanFunction, period: int, iterations: int) -> None:
        cycle = [plan_of(i) for i in range(period)]
        self._terms = [[n * b for n, b in zip(plan.num_configs, plan.budgets)] for plan in cycle]
        self._chains = [sum(plan.budgets) for plan in cycle]
        self.handed_out = 0.0  # budget of every job handed out, in every session
        self.plan_up_to(iterations)

    def plan_up_to(self, iterations: int) -> None:
        """Plan for a session that runs ``iterations`` iterations in all."""
        self.iterations = iterations
        self.budget = budget_of(self._terms, iterations)
        period = len(self._chains)
        self._last_cycle = max(0, iterations - period)  # from here on, fewer iterations than a cycle remain
        longest = [0.0]
        for i in range(iterations - 1, self._last_cycle - 1, -1):
            longest.append(max(longest[-1], self._chains[i % period]))
        self._longest_in_last_cycle = longest[::-1]  # from iteration _last_cycle + j on
        self._longest = max(longest[-1], *self._chains) if iterations >= period else longest[-1]

    def longest_chain_from(self, started: int) -> float:
        """The longest chain of stages of the brackets ``started .. iterations - 1`` (0 when none)."""
        if started < self._last_cycle:
            return self._longest
        return self._longest_in_last_cycle[min(started, self.iterations) - self._last_cycle]

    def is_near(self, started: int, workers: int, lead: float = 1.0) -> bool:
        """True when the budget left per worker no longer covers ``lead`` times the longest chain of
        the brackets not started (``started`` of them have)."""
        return (self.budget - self.handed_out) / workers <= lead * self.longest_chain_from(started)


EXACT_SUM_TERMS = 2_000_000  # Python's sum of this many floats takes some 30 ms


def budget_of(terms: list[list[float]], iterations: int) -> float:
    """The budget of iterations ``0 .. iterations - 1``: the sum of ``terms[i % len(terms)]``.

    Python's ``sum`` of every term in that order, as mpibohb has always computed it, so that a run
    and the replay of its journal make fill_tail's decisions to the last bit as before, while that
    is cheap; beyond (hundreds of thousands of iterations) the exact sum, rounded once.
    """
    cycles, rest = divmod(iterations, len(terms))
    per_cycle = sum(map(len, terms))
    count = cycles * per_cycle + sum(map(len, terms[:rest]))
    if count <= EXACT_SUM_TERMS:
        return sum(itertools.islice(itertools.cycle(itertools.chain.from_iterable(terms)), count))
    exact = cycles * sum(map(Fraction, itertools.chain.from_iterable(terms)))
    return float(exact + sum(map(Fraction, itertools.chain.from_iterable(terms[:rest]))))


