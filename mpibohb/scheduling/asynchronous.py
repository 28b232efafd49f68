"""Asynchronous successive halving inside Hyperband's brackets: no worker waits for a straggler.

A free worker gets, in this order: a promotion (a configuration in the top ``1/eta`` of the
results of its rung so far, not yet promoted, while the next rung has room in the bracket's
plan; oldest bracket, highest rung first), else a new configuration at the smallest budget of
the bracket being filled. Brackets fill one after the other with Hyperband's numbers of
configurations, so ``n_iterations`` starts the configurations that as many synchronous
iterations would, and the run does the same work; a bracket ends when it is full, nothing of it
runs, and nothing of it can be promoted. Promotions follow ASHA (Li et al., "A System for
Massively Parallel Hyperparameter Tuning", MLSys 2020), capped by Hyperband's plan.
"""

from __future__ import annotations

import heapq

import numpy as np

from ..brackets import AsyncBracket, Job
from ..samplers import Sampler
from . import PlanFunction


class Asynchronous:
    """Which job next, asynchronously (see the module's text). Its choices depend only on the seed
    and the order of results, not on sessions."""

    replays_sessions = False

    def __init__(self, sampler: Sampler, plan_of: PlanFunction, n_iterations: int, eta: float) -> None:
        self.sampler, self.plan_of, self.eta = sampler, plan_of, eta
        self.n_iterations = self.session_iterations = n_iterations
        self.brackets: list[AsyncBracket] = []
        self._due: list[int] = []  # heap of iterations whose bracket may have a promotion due
        self._open = 0

    @property
    def finished(self) -> bool:
        """Every bracket of every iteration has ended."""
        return len(self.brackets) >= self.n_iterations and self._open == 0

    def start_session(self, n_iterations: int, workers: int) -> None:
        """New brackets start up to the session's iterations; workers do not matter here."""
        self.session_iterations = min(int(n_iterations), self.n_iterations)

    def next_job(self, rng: np.random.Generator) -> Job | None:
        """A promotion due, else a new configuration, else ``None`` (wait for a result)."""
        while self._due:
            bracket = self.brackets[self._due[0]]
            promotion = bracket.promotion()
            if promotion is not None:
                return bracket.job(*promotion)
            heapq.heappop(self._due)  # nothing due there until its next result
        if not self.brackets or self.brackets[-1].full:
            if len(self.brackets) >= self.session_iterations:
                return None
            self.brackets.append(AsyncBracket(len(self.brackets), self.plan_of(len(self.brackets)), self.eta))
            self._open += 1
        bracket = self.brackets[-1]
        index = bracket.start(self.sampler.propose(bracket.plan.budgets[0], rng))
        return bracket.job(index, 0)

    def record(self, job: Job, loss: float) -> tuple[np.ndarray, int | None]:
        """Store ``job``'s loss; the configuration's vector, and its iteration if its bracket ended."""
        iteration, _, index = job.config_id
        if not 0 <= iteration < len(self.brackets):
            raise ValueError(f"unknown job {job.config_id}: no bracket {iteration}")
        bracket = self.brackets[iteration]
        bracket.record(index, job.budget, loss)
        vector = bracket.proposals[index].vector
        if not bracket.finished:
            heapq.heappush(self._due, iteration)  # the new result may make a promotion due
            return vector, None
        self._open -= 1
        bracket.release()
        return vector, iteration

    def pop_notices(self) -> list[str]:
        """No progress lines of its own."""
        return []
