"""Asynchronous successive halving that keeps the workers busy to the end (``keep_busy=True``).

An asynchronous run ends on the chains of promotions of its last configurations: one
configuration's evaluations run one after another, and with run times that differ per
configuration the slowest chain can outlast the rest of the run's work many times (BENCHMARKS.md,
"Heterogeneous run times": at s = 1 and 512 workers no schedule of the run's own evaluations can
be more than 34% to 61% busy). This policy hands out what :class:`.Asynchronous` does, and while
nothing of the run's own is left to hand out but some of it still runs, a free worker gets an
*extra* job: a promotion in an extra bracket, else a new configuration at the smallest budget.
Extra brackets are those of the iterations after the run's whose bracket starts at the smallest
budget (a new configuration's run time is the least known, so it starts where it is shortest). An
extra job is handed out only when it is predicted to end before the run's own jobs do, so extras
use idle time and hardly make the run longer; the run ends when its own brackets have ended and
no extra job runs.

Predictions come from the run times of the finished jobs (:mod:`.forecast`): an extra job must end,
predicted, before the latest predicted end of the run's own running jobs, with a pessimistic factor
for a new configuration; when one of them is past its predicted end, a guess of how long it still
runs is used for new configurations only, so that a wrong guess costs one short job. With nothing
to hand out, the policy names the moment to ask again (:attr:`KeepBusy.wake_at`), so that the loop
does not wait for a result that may be far away. Hand-out moments are the journal's, so a resume
replays every decision; an ask that hands out nothing is not journaled, so it leaves no trace.

Extra brackets keep their iteration numbers; a resume with more iterations adopts them as its
own, so an extended run continues them where they stand. The extra jobs that ran when a session
ended and are not adopted are dropped at the next session's start (:meth:`KeepBusy.unneeded_jobs`;
the journal records each drop, so that a replay drops the same): running them again would delay
the resumed run's own jobs for work the run does not need. A session that adopts the bracket of a
dropped job later hands it out again first, as one of the run's own.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable

import numpy as np

from ..brackets import AsyncBracket, Job, PlanFunction
from ..samplers import Sampler
from .asynchronous import Asynchronous
from .forecast import EXTRA_QUANTILE, OWN_QUANTILE, JobKey, RunEndForecast


class KeepBusy(Asynchronous):
    """:class:`.Asynchronous`, and extra jobs for workers that would idle while the run's own last
    jobs run (see the module's text)."""

    def __init__(self, sampler: Sampler, plan_of: PlanFunction, n_iterations: int, eta: float,
                 plan_period: int = 1) -> None:
        super().__init__(sampler, plan_of, n_iterations, eta, plan_period)
        self._extra: set[int] = set()  # iterations of the extra brackets
        self._last_extra = -1  # the highest iteration an extra bracket was started at
        self._smallest = min(plan_of(i).budgets[0] for i in range(plan_period))  # where extra brackets start
        self._open_extra: set[int] = set()  # ... not ended
        self._due_extra = _DueBrackets()
        self._extra_budget: dict[int, float] = {}  # extra iteration -> the budget of its jobs handed out
        self._extra_filling: AsyncBracket | None = None
        self._forecast = RunEndForecast(self.run_times, self._smallest)
        self.wake_at: float | None = None  # after a None from next_job: when to ask again, without a result
        self._extra_running: dict[JobKey, float | None] = {}  # running extra jobs -> predicted end
        self._seconds: dict[JobKey, float] = {}  # every running job -> its predicted run time
        self.extra_jobs = 0
        self._dropped: dict[int, list[Job]] = {}  # extra iteration -> its jobs dropped at a session's start
        self._again: deque[Job] = deque()  # dropped jobs of adopted brackets: handed out first
        self._unfilled: deque[AsyncBracket] = deque()  # adopted brackets not full, to be filled next

    @property
    def finished(self) -> bool:
        """Every bracket of the run's iterations has ended, and no extra job runs."""
        return len(self.brackets) - len(self._extra) >= self.n_iterations and self._open == 0 \
            and not self._extra_running

    def start_session(self, n_iterations: int, workers: int, now: float | None = None) -> None:
        """As :class:`.Asynchronous`; extra brackets within the session's iterations become its own,
        and the jobs that ran when the last session ended (they run again now) are predicted anew."""
        super().start_session(n_iterations, workers, now)
        for iteration in sorted(i for i in self._extra if i < self.session_iterations):
            self._adopt(iteration)
        own = self._forecast.restart()
        self._due_extra.unblock()  # whatever the order of a resume's first results and this call, as in its replay
        for key, seconds in list(self._seconds.items()):
            if key in own:
                if now is not None:
                    self._own_running(key, now + seconds)
            elif key in self._extra_running:
                self._extra_running[key] = None if now is None else now + seconds

    def unneeded_jobs(self) -> list[Job]:
        """The extra jobs that run (at a session's start: those that ran when the last session
        ended, and are not of a bracket this session adopted): a resume drops them, since they
        only used the idle time of a session that has ended."""
        return [self._job_of(key) for key in self._extra_running]

    def drop(self, job: Job) -> None:
        """``job``, an extra job that runs, will not, and the sampler no longer counts it as
        running. Its extra bracket keeps it as handed out, unfinished: a session that adopts the
        bracket hands it out again first (as the run's own), and until then nothing waits for it.

        Raises:
            ValueError: ``job`` is not an extra job that runs.
        """
        key = (job.config_id, job.budget)
        if key not in self._extra_running:
            raise ValueError(f"{job.config_id} at budget {job.budget:g} is not an extra job that runs: it cannot be "
                             "dropped")
        del self._extra_running[key]
        self._seconds.pop(key, None)
        iteration = job.config_id[0]
        self._extra_budget[iteration] -= job.budget  # handed out no more: an adoption counts it when it runs
        self._dropped.setdefault(iteration, []).append(job)
        vector, proposed_for = self._proposed(job)
        if job.budget == proposed_for:  # the proposal itself, which the sampler counts as running
            self.sampler.withdraw(vector, job.budget)

    def _proposed(self, job: Job) -> tuple[np.ndarray, float]:
        """The vector of ``job``'s configuration and the budget it was proposed for."""
        bracket = self.brackets[job.config_id[0]]
        return bracket.proposals[job.config_id[2]].vector, bracket.plan.budgets[0]

    def _job_of(self, key: JobKey) -> Job:
        config_id, budget = key
        bracket = self.brackets[config_id[0]]
        return bracket.job(config_id[2], bracket.plan.budgets.index(budget))

    def next_job(self, rng: np.random.Generator, now: float | None = None) -> Job | None:
        """The run's own next job; else, while its own jobs run, an extra one predicted to end before
        they do; else ``None`` (then :attr:`wake_at` may say when to ask again)."""
        self.wake_at = None
        if self._again:
            again = self._again.popleft()
            if self._tail is not None:
                self._tail.handed_out += again.budget
            vector, proposed_for = self._proposed(again)
            if again.budget == proposed_for:  # the proposal itself runs again
                self.sampler.restore(vector, again.budget)
            self._started(again, now, extra=False)
            return again
        job = super().next_job(rng, now)
        if job is not None:
            self._started(job, now, extra=False)
            return job
        if now is None or self.workers < 2:
            return None
        saved = self._due_extra.copy()  # an ask that hands out nothing is not journaled: it leaves no trace
        ahead, guess = self._forecast.run_end(now)
        job = None if ahead is None else self._extra_promotion(now, ahead)
        if job is None and (ahead is not None or guess is not None):
            job = self._extra_configuration(rng, now, max(ahead or now, guess or now))
        if job is None:
            self._due_extra = saved
            self.wake_at = self._forecast.wake_at(now)  # none may fit until a result comes, or until then
            return None
        if not self.extra_jobs:
            self._notices.append("asynchronous: the run's own jobs are all handed out; idle workers get extra "
                                 "configurations predicted to end before them (keep_busy)")
        self.extra_jobs += 1
        self._extra_budget[job.config_id[0]] = self._extra_budget.get(job.config_id[0], 0.0) + job.budget
        self._started(job, now, extra=True)
        return job

    def record(self, job: Job, loss: float, duration: float | None = None) -> tuple[np.ndarray, int | None]:
        """As :class:`.Asynchronous`; the run time also gives the configuration's factor."""
        key = (job.config_id, job.budget)
        self._forecast.own_ended(key)
        self._extra_running.pop(key, None)
        self._seconds.pop(key, None)
        self._forecast.learn(job, duration)  # before this result joins the run times, in the next line
        return super().record(job, loss, duration)

    def _started(self, job: Job, now: float | None, extra: bool) -> None:
        key = (job.config_id, job.budget)
        self._seconds[key] = seconds = self._forecast.seconds(job, EXTRA_QUANTILE if extra else OWN_QUANTILE) or 0.0
        end = None if now is None else now + seconds  # unpredicted: overdue from the start
        if extra:
            self._extra_running[key] = end
        elif end is not None:
            self._own_running(key, end)

    def _own_running(self, key: JobKey, end: float) -> None:
        if self._forecast.own_started(key, end):
            self._due_extra.unblock()  # the run's end moved later: promotions that did not fit may fit

    def _extra_promotion(self, now: float, end: float) -> Job | None:
        """A promotion due in an extra bracket (oldest bracket, highest rung first) that fits before
        ``end``."""
        def fits(bracket: AsyncBracket) -> Callable[[int, int], bool]:
            def accept(index: int, rung: int) -> bool:
                seconds = self._forecast.seconds(bracket.job(index, rung), EXTRA_QUANTILE)
                return seconds is not None and now + seconds <= end
            return accept

        due = self._due_extra
        while due.heap:
            iteration = due.heap[0]
            bracket = self.brackets[iteration]
            promotion = None if bracket.ended else bracket.promotion(accept=fits(bracket))
            self._take_retired(bracket)
            if promotion is not None:
                return bracket.job(*promotion)
            due.pop(blocked=not bracket.ended and bracket.has_promotion())  # due, but too long for now
        return None

    def _new_configuration(self, rng: np.random.Generator) -> Job | None:
        """As :class:`.Asynchronous`; an adopted extra bracket that is not full is filled next (a
        review found one left unfilled, and the run waiting for it for ever, when the bracket being
        filled at its adoption was not full)."""
        if (self._filling is None or self._filling.full) and self._unfilled:
            self._filling = self._unfilled.popleft()
        return super()._new_configuration(rng)

    def _extra_configuration(self, rng: np.random.Generator, now: float, end: float) -> Job | None:
        """A new configuration in the extra bracket being filled (the next one once it is full), at
        its smallest budget, if it fits before ``end``."""
        seconds = self._forecast.new_configuration_seconds()
        if seconds is None or now + seconds > end:
            return None
        bracket = self._extra_filling
        if bracket is None or bracket.full:
            iteration = self._next_extra_iteration()
            bracket = self.brackets[iteration] = AsyncBracket(iteration, self.plan_of(iteration), self.eta)
            self._extra_filling = bracket
            self._extra.add(iteration)
            self._open_extra.add(iteration)
            self._last_extra = max(self._last_extra, iteration)
        index = bracket.start(self.sampler.propose(self._smallest, rng))
        return bracket.job(index, 0)

    def _next_extra_iteration(self) -> int:
        """The next iteration after the run's and the extra ones whose bracket starts at the smallest
        budget: a new configuration's run time is the least known, so it starts where it is shortest."""
        iteration = max(self.session_iterations, self._last_extra + 1)
        while iteration in self.brackets or self.plan_of(iteration).budgets[0] > self._smallest:
            iteration += 1
        return iteration

    def _note_due(self, iteration: int, completed_rung: bool) -> None:
        if iteration in self._extra:
            self._due_extra.push(iteration)
        else:
            super()._note_due(iteration, completed_rung)

    def _bracket_ended(self, iteration: int) -> None:
        if iteration in self._extra:
            self._open_extra.discard(iteration)
        else:
            super()._bracket_ended(iteration)

    def _take_retired(self, bracket: AsyncBracket) -> None:
        for index in bracket.retired:
            self._forecast.forget((bracket.iteration, 0, index))
        super()._take_retired(bracket)

    def _adopt(self, iteration: int) -> None:
        """Extra bracket ``iteration`` becomes one of the run's own (a resume with more iterations)."""
        self._extra.discard(iteration)
        bracket = self.brackets[iteration]
        if iteration in self._open_extra:
            self._open_extra.discard(iteration)
            self._open += 1
            heapq.heappush(self._due, iteration)
            heapq.heappush(self._complete_due, iteration)
        if self._tail is not None:
            self._tail.handed_out += self._extra_budget.pop(iteration, 0.0)  # its tail counts what ran
        if self._extra_filling is bracket:
            self._extra_filling = None
            if not bracket.full:
                self._unfilled.append(bracket)  # filled once the bracket being filled is full
        for key in [key for key in self._extra_running if key[0][0] == iteration]:
            end = self._extra_running.pop(key)
            if end is not None:
                self._own_running(key, end)
        self._again.extend(self._dropped.pop(iteration, []))


class _DueBrackets:
    """The extra brackets that may have a promotion due (a heap, oldest first), and those whose due
    promotion did not fit before the run's end (looked at again once that end moves later)."""

    def __init__(self) -> None:
        self.heap: list[int] = []
        self._queued: set[int] = set()
        self._blocked: set[int] = set()

    def push(self, iteration: int) -> None:
        """``iteration`` may have a promotion due."""
        if iteration not in self._queued:
            self._queued.add(iteration)
            heapq.heappush(self.heap, iteration)

    def pop(self, blocked: bool) -> None:
        """The oldest has no promotion due (``blocked``: none that fits now)."""
        iteration = heapq.heappop(self.heap)
        self._queued.discard(iteration)
        if blocked:
            self._blocked.add(iteration)

    def unblock(self) -> None:
        """The run's end moved later: look at the blocked ones again."""
        for iteration in sorted(self._blocked):
            self.push(iteration)
        self._blocked.clear()

    def copy(self) -> _DueBrackets:
        """A copy to restore after an ask that hands out nothing."""
        copied = _DueBrackets()
        copied.heap, copied._queued, copied._blocked = list(self.heap), set(self._queued), set(self._blocked)
        return copied
