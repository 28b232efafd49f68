"""Asynchronous successive halving inside Hyperband's brackets: no worker waits for a straggler.

A free worker gets, in this order: a promotion from a complete rung (one that has all its
planned results: its top configurations not yet promoted, up to the next rung's room in the
bracket's plan), else a new configuration at the smallest budget of the bracket being filled,
else an early promotion (a configuration in the top ``1/eta`` of the results of its rung so far,
not yet promoted, while the next rung has room; oldest bracket, highest rung first), else
nothing: no worker waits while there is work to hand out. Brackets fill one after the other
with Hyperband's numbers of configurations, so ``n_iterations`` starts the configurations that as
many synchronous iterations would, and the run does the same work; a bracket ends when it is
full, nothing of it runs, and nothing of it can be promoted. Early promotions follow ASHA (Li et
al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020), capped by Hyperband's
plan; ASHA's known weakness is promotions decided on few results (Hyper-Tune, VLDB 2022, delays
them), so here a promotion waits for its rung to complete while there is other work, which also
makes a run with one worker evaluate exactly what the synchronous schedule does. Measured
(``benchmarks.asynchronous_quality``, ``benchmarks.heterogeneous``): see BENCHMARKS.md.

Near the end of a session (the budget not yet handed out, per worker, no longer covers twice the
longest chain of budgets of a bracket not yet started, and is at most a quarter of the session's
budget; only with more than one worker, since one worker never idles), the brackets not yet
started are filled in another order: first those that start at the largest budget (their jobs
are the longest single jobs, whose run times spread the most), then the others longest chain of
budgets first, so that the run does not end waiting on the promotions of a bracket started last;
and promotions, early ones included, come before new configurations, so that chains of
promotions start as early as they can. Measured (``benchmarks.heterogeneous``) against filling
them in order, and against longest chain first alone, which was best with equal run times but
lost up to 6 points of busy fraction with run times spread per configuration. The lead of two
chains (``fill_tail``'s rule has one): with one, the single jobs at the largest budget started
so late that the slowest of them ended the run alone; the quarter: a tail from the start of a
short run is ASHA's order throughout, with the single jobs sampled before the model has any
result, and it found worse configurations. Budget stands in for run time; the rule depends on
each session's workers, which a resume replays.

That order is for run times that differ per configuration. When the run's own results show that
they hardly do (the run times of the jobs at one budget differ by at most
:data:`PREDICTABLE_SPREAD`, as a pooled coefficient of variation, :mod:`.run_times`, when the tail
starts), the tail starts its brackets longest chain of budgets first, single jobs included
(``fill_tail``'s rule): then the single jobs of the largest budget are not the ones that spread,
and starting them first leaves the chains of the other brackets to end the run. Measured
(``benchmarks.heterogeneous``, seeds 0 to 2, K = 32 and 128): with equal run times 98.2% to 98.3%
busy where the other order gives 96.0% to 96.3% (K = 32 to 1,024); with s = 0.3 95.0% and 95.1%
against 94.6% and 93.8%; with s = 0.5 92.1% and 88.1% against 93.8% and 91.0%, hence the choice
from the run times. The run times come with the results (:meth:`record`) and the journal keeps
them, so a resume replays the choice.

With spread run times (s = 0.5) the idle time left comes after the last new configuration: the
run ends on the top-rung job of a configuration promoted late, whose run time is known only once
its lower rung has run, so no order of the tail removes it (traced, and five other orders measured
and rejected: BENCHMARKS.md, "Heterogeneous run times"). :class:`.keep_busy.KeepBusy` gives that
idle time extra jobs instead.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np

from ..brackets import AsyncBracket, ConfigId, Job, PlanFunction
from ..samplers import Sampler
from .run_times import RunTimeSpread
from .synchronous import EveryJobNeeded, TailPlan

# The tail starts once the budget left per worker no longer covers this many longest chains: budget
# stands in for run time, and with run times spread per configuration the single jobs at the
# largest budget, which the tail starts at once, must start early enough for the slowest of them.
TAIL_LEAD = 2.0
# ... and once the budget left is at most this share of the session's: a tail from the start of a
# short run would sample the single-job brackets before the model has any results, and promote
# early throughout (ASHA's order); both found worse configurations (BENCHMARKS.md).
TAIL_SHARE = 0.25
# Run times count as predictable when their pooled coefficient of variation among the jobs at one
# budget is at most this; then the tail goes longest chain first. Log-normal factors with sigma s
# give sqrt(exp(s**2) - 1): 0.31 at s = 0.3, where longest chain first was busier at K = 32 and 128,
# 0.42 at s = 0.4, where it was busier at K = 128 only, 0.53 at s = 0.5, where it lost at both
# (benchmarks.heterogeneous, seeds 0 to 2; see BENCHMARKS.md).
PREDICTABLE_SPREAD = 0.35
# ... backed by at least this many results beyond the first of each budget (else: the spread order).
MIN_TIMED = 20


class Asynchronous(EveryJobNeeded):
    """Which job next, asynchronously (see the module's text). Its choices depend on the seed, the
    order of results, and each session's workers and iterations (the tail rule)."""

    replays_sessions = True
    wake_at: float | None = None

    def __init__(self, sampler: Sampler, plan_of: PlanFunction, n_iterations: int, eta: float,
                 plan_period: int = 1) -> None:
        self.sampler, self.plan_of, self.eta = sampler, plan_of, eta
        self.n_iterations = self.session_iterations = n_iterations
        self.plan_period = plan_period
        self.workers = 1
        self.brackets: dict[int, AsyncBracket] = {}  # by iteration, those started
        self._filling: AsyncBracket | None = None  # the bracket new configurations go to
        self._next = 0  # the next iteration in order; those below it are started or pending
        self._pending: list[tuple[float, int]] = []  # in the tail: heap of (priority, iteration) to start
        self._tail: TailPlan | None = None  # built at the first ask
        self._in_tail = False
        self._due: list[int] = []  # heap of iterations whose bracket may have a promotion due
        self._complete_due: list[int] = []  # heap of those that may have one from a complete rung
        self._open = 0
        self._retired: list[ConfigId] = []
        self.run_times = RunTimeSpread()
        self.tail_order: str | None = None  # "spread" or "chain" once a tail has started
        self._notices: list[str] = []

    @property
    def finished(self) -> bool:
        """Every bracket of every iteration has ended."""
        return len(self.brackets) >= self.n_iterations and self._open == 0

    def start_session(self, n_iterations: int, workers: int, now: float | None = None) -> None:
        """New brackets start up to the session's iterations, on ``workers`` workers."""
        iterations = min(int(n_iterations), self.n_iterations)
        if iterations != self.session_iterations:
            self._in_tail = False  # an extended run has its own tail ahead; what is pending starts first
        self.session_iterations, self.workers = iterations, max(1, int(workers))
        if self._tail is not None:
            self._tail.plan_up_to(self.session_iterations)

    def next_job(self, rng: np.random.Generator, now: float | None = None) -> Job | None:
        """A promotion from a complete rung, else a new configuration, else an early promotion (a
        worker would idle otherwise), else ``None`` (wait for a result)."""
        if self._in_tail:
            job = self._promotion(self._due) or self._new_configuration(rng)
        else:
            job = self._promotion(self._complete_due, complete_only=True) or self._new_configuration(rng) \
                or self._promotion(self._due)
        if job is not None and self._tail is not None:
            self._tail.handed_out += job.budget
        return job

    def _promotion(self, due: list[int], complete_only: bool = False) -> Job | None:
        while due:
            bracket = self.brackets[due[0]]
            promotion = None if bracket.ended else bracket.promotion(complete_only)
            self._take_retired(bracket)
            if promotion is not None:
                return bracket.job(*promotion)
            heapq.heappop(due)  # nothing due there until its next result
        return None

    def _new_configuration(self, rng: np.random.Generator) -> Job | None:
        if self._filling is None or self._filling.full:
            iteration = self._next_iteration()
            if iteration is None:
                return None
            self._filling = self.brackets[iteration] = AsyncBracket(iteration, self.plan_of(iteration), self.eta)
            self._open += 1
        bracket = self._filling
        index = bracket.start(self.sampler.propose(bracket.plan.budgets[0], rng))
        return bracket.job(index, 0)

    def _next_iteration(self) -> int | None:
        """The next bracket to start: in order, or in the tail the longest chain first."""
        if self._tail is None:
            self._tail = TailPlan(self.plan_of, self.plan_period, self.session_iterations)
        while self._next < self.session_iterations and self._next in self.brackets:
            self._next += 1  # adopted by this session (keep_busy's extra brackets): started already
        if not self._in_tail and self._tail_is_near():
            self._in_tail = True
            priority = self._choose_tail_order()
            for iteration in range(self._next, self.session_iterations):
                if iteration not in self.brackets:  # adopted ones have started
                    heapq.heappush(self._pending, (priority(self.plan_of(iteration).budgets), iteration))
            self._next = self.session_iterations
        if self._pending:
            return heapq.heappop(self._pending)[1]
        if self._next < self.session_iterations:
            self._next += 1
            return self._next - 1
        return None

    def _tail_is_near(self) -> bool:
        """The tail starts now (see :data:`TAIL_LEAD` and :data:`TAIL_SHARE`); one worker never idles,
        so it has none and evaluates what the synchronous schedule does."""
        tail = self._tail
        assert tail is not None
        return self.workers > 1 and self._next < self.session_iterations \
            and tail.is_near(self._next, self.workers, TAIL_LEAD) \
            and tail.budget - tail.handed_out <= TAIL_SHARE * tail.budget

    def _choose_tail_order(self) -> Callable[[tuple[float, ...]], float]:
        """The order of the tail's brackets: longest chain first when the run times so far are
        predictable (:data:`PREDICTABLE_SPREAD`), else the single jobs first (see the module's text)."""
        spread = self.run_times.coefficient_of_variation(MIN_TIMED)
        predictable = spread is not None and spread <= PREDICTABLE_SPREAD
        self.tail_order = "chain" if predictable else "spread"
        measured = "too few run times to tell" if spread is None else f"coefficient of variation {spread:.2f}"
        self._notices.append(f"asynchronous: the tail starts ({self.session_iterations - self._next} brackets left),"
                             f" {'longest chain first' if predictable else 'single jobs of the largest budget first'}"
                             f"; run times at one budget: {measured}")
        return _chain_priority if predictable else _spread_priority

    def record(self, job: Job, loss: float, duration: float | None = None) -> tuple[np.ndarray, int | None]:
        """Store ``job``'s loss and its run time (seconds; ``None``: unknown, e.g. failed); the
        configuration's vector, and its iteration if its bracket ended."""
        iteration, _, index = job.config_id
        bracket = self.brackets.get(iteration)
        if bracket is None:
            raise ValueError(f"unknown job {job.config_id}: no bracket {iteration}")
        completed_rung = bracket.record(index, job.budget, loss)
        if duration is not None:
            self.run_times.add(job.budget, job.previous_budget, duration)
        vector = bracket.proposals[index].vector
        self._take_retired(bracket)
        if not bracket.finished:
            self._note_due(iteration, completed_rung)
            return vector, None
        self._bracket_ended(iteration)
        bracket.retire_the_rest()
        self._take_retired(bracket)
        bracket.release()
        return vector, iteration

    def _note_due(self, iteration: int, completed_rung: bool) -> None:
        """A new result of ``iteration``'s bracket may make a promotion due (from a complete rung)."""
        heapq.heappush(self._due, iteration)
        if completed_rung:
            heapq.heappush(self._complete_due, iteration)

    def _bracket_ended(self, iteration: int) -> None:
        self._open -= 1

    def pop_notices(self) -> list[str]:
        """Progress lines for the log since the last call: the start of a tail, in which order."""
        notices, self._notices = self._notices, []
        return notices

    def _take_retired(self, bracket: AsyncBracket) -> None:
        if bracket.retired:
            self._retired.extend((bracket.iteration, 0, index) for index in bracket.retired)
            bracket.retired.clear()

    def pop_retired(self) -> list[ConfigId]:
        """The configurations of the brackets that ended since the last call (a configuration of a
        bracket still open may yet be promoted)."""
        retired, self._retired = self._retired, []
        return retired


def _spread_priority(budgets: tuple[float, ...]) -> float:
    """In the tail, brackets of one rung (single jobs at the largest budget) first, then the longest
    chain of budgets first (smaller starts earlier)."""
    return -math.inf if len(budgets) == 1 else -sum(budgets)


def _chain_priority(budgets: tuple[float, ...]) -> float:
    """In the tail with predictable run times, the longest chain of budgets first."""
    return -sum(budgets)
