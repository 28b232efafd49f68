"""The ask/tell core: Hyperband brackets as small state machines plus a sampler.

No I/O, no clock, no threads: the caller passes the random generator and feeds results back.
``ask()`` hands out the next job or ``None`` (wait for a result, or everything is handed out);
``tell(job, loss)`` feeds a result back (``loss = inf`` for a failed run).
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .samplers import Proposal, Sampler
from .schedule import BracketPlan

ConfigId = tuple[int, int, int]
PlanFunction = Callable[[int], BracketPlan]


@dataclass(frozen=True)
class Job:
    """One evaluation to run: HpBandSter's config id triple ``(iteration, stage, index)``,
    the configuration, the budget, and what the sampler said about the configuration."""

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
    """Runs ``n_iterations`` brackets, starting the next one whenever all open brackets wait."""

    def __init__(self, sampler: Sampler, plan_of: PlanFunction, n_iterations: int,
                 rng: np.random.Generator) -> None:
        if isinstance(n_iterations, bool) or not isinstance(n_iterations, numbers.Integral) or n_iterations < 1:
            raise ValueError(f"n_iterations must be an integer >= 1, got {n_iterations!r}")
        n_iterations = int(n_iterations)
        self.sampler = sampler
        self.plan_of = plan_of
        self.n_iterations = n_iterations
        self.rng = rng
        self.brackets: list[Bracket] = []
        self._open: list[Bracket] = []  # started and not finished, oldest first
        self.num_running = 0

    @property
    def finished(self) -> bool:
        """True once every bracket of every iteration has all its results."""
        return len(self.brackets) == self.n_iterations and not self._open

    def ask(self) -> Job | None:
        """The next job, or ``None`` when every open bracket waits and no new one may start."""
        for bracket in self._open:
            job = bracket.next_job(self.rng)
            if job is not None:
                self.num_running += 1
                return job
        if len(self.brackets) < self.n_iterations:
            iteration = len(self.brackets)
            bracket = Bracket(iteration, self.plan_of(iteration), self.sampler)
            self.brackets.append(bracket)
            self._open.append(bracket)
            return self.ask()
        return None

    def tell(self, job: Job, loss: float) -> None:
        """Feed back the loss of ``job`` (``inf`` or NaN: failed, treated as +inf)."""
        loss = float(loss)
        if not math.isfinite(loss):
            loss = math.inf
        iteration, _, index = job.config_id
        if not 0 <= iteration < len(self.brackets):
            raise ValueError(f"unknown job {job.config_id}: no bracket {iteration}")
        bracket = self.brackets[iteration]
        bracket.record(index, job.budget, loss)
        self.num_running -= 1
        self.sampler.observe(bracket.entries[index].proposal.vector, job.budget, loss)
        if bracket.finished:
            self._open.remove(bracket)
            bracket.entries.clear()  # a finished bracket is never read again: free its configurations
