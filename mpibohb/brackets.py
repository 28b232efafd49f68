"""The ask/tell core: :class:`Job` (one evaluation), :class:`Bracket` (successive halving over one
plan, a small state machine) and :class:`Optimizer` (the brackets of a run plus a sampler).

No I/O, no clock, no threads: the caller passes the random generator and feeds results back.
``Optimizer.ask()`` hands out the next job or ``None`` (wait for a result, or everything is
handed out); ``tell(job, loss)`` feeds a result back (``loss = inf`` for a failed run).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from .samplers import Proposal, Sampler
from .schedule import BracketPlan

ConfigId = tuple[int, int, int]
PlanFunction = Callable[[int], BracketPlan]


@dataclass(frozen=True)
class Job:
    """One evaluation to run: HpBandSter's config id triple ``(iteration, 0, index)`` (the bracket,
    HpBandSter's middle element, always 0, and the configuration's index in the bracket), the
    configuration, the budget, and what the sampler said about the configuration."""

    config_id: ConfigId
    config: dict[str, Any]
    budget: float
    config_info: dict[str, Any] = field(default_factory=dict)

    @property
    def iteration(self) -> int:
        """The Hyperband iteration (bracket number) the job belongs to."""
        return self.config_id[0]


@dataclass
class _Entry:
    proposal: Proposal
    losses: dict[float, float] = field(default_factory=dict)


class Bracket:
    """Successive halving over one :class:`BracketPlan`; configurations are sampled lazily."""

    def __init__(self, iteration: int, plan: BracketPlan, sampler: Sampler) -> None:
        self.iteration = iteration
        self.plan = plan
        self.sampler = sampler
        self.stage = 0
        self.entries: list[_Entry] = []
        self._queue: deque[int] = deque()
        self._running: set[int] = set()
        self._stage_members: list[int] = []
        self._to_sample = plan.num_configs[0]

    @property
    def finished(self) -> bool:
        """True once the last stage has all its results."""
        return self.stage == self.plan.num_stages

    @property
    def budget(self) -> float:
        """The budget of the current stage."""
        return self.plan.budgets[self.stage]

    def next_job(self, rng: np.random.Generator) -> Job | None:
        """The next job of the current stage, or ``None`` while the stage waits for results."""
        if self.finished:
            return None
        if self._to_sample > 0:
            self._to_sample -= 1
            proposal = self.sampler.propose(self.budget, rng)
            self.entries.append(_Entry(proposal))
            index = len(self.entries) - 1
            self._stage_members.append(index)
        elif self._queue:
            index = self._queue.popleft()
        else:
            return None
        self._running.add(index)
        entry = self.entries[index]
        return Job((self.iteration, 0, index), entry.proposal.config, self.budget, dict(entry.proposal.info))

    def record(self, index: int, budget: float, loss: float) -> None:
        """Store the result of entry ``index``; advance the stage when it is complete."""
        if index not in self._running or budget != self.budget:
            raise ValueError(f"bracket {self.iteration} has no running job {index} at budget {budget}")
        self._running.remove(index)
        self.entries[index].losses[budget] = loss
        if self._to_sample == 0 and not self._queue and not self._running:
            self._advance()

    def _advance(self) -> None:
        self.stage += 1
        if self.finished:
            return
        previous = self.plan.budgets[self.stage - 1]
        ranked = sorted(self._stage_members, key=lambda i: (self.entries[i].losses[previous], i))
        self._stage_members = ranked[: self.plan.num_configs[self.stage]]
        self._queue.extend(self._stage_members)


class Optimizer:
    """Runs ``n_iterations`` brackets, starting the next one whenever all open brackets wait.

    With ``fill_tail``, the last brackets start earlier. Once the budget not yet handed out, per
    worker, is no more than the longest chain of stages (the sum of its budgets) of a bracket not
    yet started, every remaining bracket starts, and jobs come from the bracket with the longest
    chain of stages left first (oldest first on ties): that bracket could otherwise no longer end
    with the rest of the work even if every worker stayed busy. Budget stands in for run time.
    Without it, the stages of the last brackets run after the others while workers idle.
    ``start_session`` says on how many workers, and up to how many iterations, the next jobs run.
    ``plan_period``: iteration ``i`` runs the plan of iteration ``i mod plan_period`` (Hyperband's
    brackets cycle); fill_tail needs it to plan a session in time that does not grow with it.
    """

    def __init__(self, sampler: Sampler, plan_of: PlanFunction, n_iterations: int,
                 rng: np.random.Generator, fill_tail: bool = False, plan_period: int | None = None) -> None:
        if not _is_count(n_iterations):
            raise ValueError(f"n_iterations must be an integer >= 1, got {n_iterations!r}")
        n_iterations = int(n_iterations)
        if fill_tail and (plan_period is None or plan_period < 1):
            raise ValueError(f"fill_tail needs the period of the bracket plans, got plan_period={plan_period!r}")
        self.plan_period = plan_period
        self.sampler = sampler
        self.plan_of = plan_of
        self.n_iterations = n_iterations
        self.rng = rng
        self.brackets: list[Bracket] = []
        self._open: list[Bracket] = []  # started and not finished; oldest first until the tail starts
        self.num_running = 0
        self.fill_tail = bool(fill_tail)
        self.workers = 1  # of the session handing out jobs now (fill_tail reads it)
        self.session_iterations = n_iterations  # the iterations that session runs in all
        self.brackets_before_tail: int | None = None  # brackets started when fill_tail started the rest
        self._tail: _TailPlan | None = None  # built at the first ask with fill_tail
        self._reorder = False  # in the tail: a bracket changed stage since the last sort

    @property
    def finished(self) -> bool:
        """True once every bracket of every iteration has all its results."""
        return len(self.brackets) == self.n_iterations and not self._open

    @property
    def tail_started(self) -> bool:
        """True once fill_tail has started every remaining bracket of the session."""
        return self.brackets_before_tail is not None

    def start_session(self, n_iterations: int, workers: int) -> None:
        """The next jobs go to ``workers`` workers of a session that runs ``n_iterations`` iterations
        in all (at most this optimizer's). A resumed run replays each earlier session with its own
        figures, so that fill_tail hands out what it handed out then."""
        iterations = min(int(n_iterations), self.n_iterations)
        if iterations != self.session_iterations and self.brackets_before_tail is not None:
            self.brackets_before_tail = None  # a run extended: its own tail is still ahead
            self._open.sort(key=lambda bracket: bracket.iteration)
        self.workers, self.session_iterations = max(1, int(workers)), iterations
        if self._tail is not None:
            self._tail.plan_up_to(iterations)

    def ask(self) -> Job | None:
        """The next job, or ``None`` when every open bracket waits and no new one may start."""
        if self.fill_tail:
            self._follow_tail()
        while True:
            for bracket in self._open:
                job = bracket.next_job(self.rng)
                if job is not None:
                    self.num_running += 1
                    if self._tail is not None:
                        self._tail.handed_out += job.budget
                    return job
            if len(self.brackets) >= self.session_iterations:
                return None
            self._start_bracket()

    def _start_bracket(self) -> None:
        iteration = len(self.brackets)
        bracket = Bracket(iteration, self.plan_of(iteration), self.sampler)
        self.brackets.append(bracket)
        self._open.append(bracket)
        self._reorder = True

    def _follow_tail(self) -> None:
        """fill_tail: start every remaining bracket once the tail is near; in the tail, put the
        bracket with the longest chain of stages left first."""
        if self._tail is None:
            assert self.plan_period is not None  # checked in __init__
            self._tail = _TailPlan(self.plan_of, self.plan_period, self.session_iterations)
        started = len(self.brackets)
        if not self.tail_started and started < self.session_iterations and self._tail.is_near(started, self.workers):
            self.brackets_before_tail = started
            while len(self.brackets) < self.session_iterations:
                self._start_bracket()
        if self.tail_started and self._reorder:
            self._open.sort(key=lambda b: (-sum(b.plan.budgets[b.stage:]), b.iteration))
            self._reorder = False

    def tell(self, job: Job, loss: float) -> None:
        """Feed back the loss of ``job`` (``inf`` or NaN: failed, treated as +inf)."""
        loss = float(loss)
        if not math.isfinite(loss):
            loss = math.inf
        iteration, _, index = job.config_id
        if not 0 <= iteration < len(self.brackets):
            raise ValueError(f"unknown job {job.config_id}: no bracket {iteration}")
        bracket = self.brackets[iteration]
        stage = bracket.stage
        bracket.record(index, job.budget, loss)
        self._reorder = self._reorder or bracket.stage != stage
        self.num_running -= 1
        self.sampler.observe(bracket.entries[index].proposal.vector, job.budget, loss)
        if bracket.finished:
            self._open.remove(bracket)
            bracket.entries.clear()  # a finished bracket is never read again: free its configurations


def _is_count(value: object) -> bool:
    """An integer >= 1 (not a bool; numpy's integers are fine)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and int(value) >= 1


class _TailPlan:
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

    def is_near(self, started: int, workers: int) -> bool:
        """True when the budget left per worker no longer covers the longest chain of the brackets
        not started (``started`` of them have)."""
        return (self.budget - self.handed_out) / workers <= self.longest_chain_from(started)


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
