"""Which worker ranks to trust: the bookkeeping behind taking a failing rank out of service.

A failed evaluation may be the configuration's fault or the node's (a bad GPU, a full local disk,
a missing library). Under MPI with several worker ranks, a failure is therefore *held*, not
recorded, until the evidence decides:

* the rank's next evaluation succeeds: the rank works, so the held failure is the configuration's
  and is recorded;
* the rank fails ``limit`` evaluations in a row while another rank succeeded since the first of
  them (more where configurations often fail on the other ranks: as many as a healthy rank shows
  in a row with a chance of :data:`HEALTHY_STREAK_CHANCE`, at most :data:`MOST_FAILURES_IN_A_ROW`):
  the rank is taken out of service and its held failures run again on other ranks;
* nothing else can run (every open bracket waits) and failures are held: a failure on a rank that
  has succeeded before and failed only once since is recorded, any other runs again on another
  rank. A job that runs again is recorded with that second outcome, whatever it is;
* when most of the jobs that a rank taken out of service had failed fail again on other ranks,
  they were the configurations' failures, not the rank's: it comes back into service.

Pure bookkeeping, no MPI: :class:`~mpibohb.executors.mpi.MPIExecutor` reports outcomes and acts on
the verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from .brackets import Job
from .evaluation import Outcome

DEFAULT_RANK_FAILURE_LIMIT = 3
HEALTHY_STREAK_CHANCE = 0.01  # how rarely a healthy rank may fail as often in a row as retires it
MOST_FAILURES_IN_A_ROW = 10
MAX_EVIDENCED_DEATHS = 2  # MPI: a job whose worker rank was seen to die this often while running it is failed


def abandoned_job_reason(deaths: int, last: str) -> str:
    """The error text of a job recorded as failed because its worker rank was seen to die
    ``deaths`` times while running it (``last``: the latest ``lost`` record's reason); one text
    whether the live run or a resume decides it."""
    return (f"AbandonedJob: its worker's process ended {deaths} times while running this job, each time while "
            "the master was there to see it (a segfault, an out-of-memory kill, os._exit); recorded as failed. "
            f"The last time: {last}")


def rank_to_run_again(idle: Sequence[int], avoid: int | None, in_service: Collection[int],
                      host_of: Callable[[int], str], full_on: Collection[str] = ()) -> int | None:
    """The idle rank a job runs again on, or ``None`` to wait for one: a rank on another node than
    ``avoid``'s and than the nodes where the job ran out of disk space (``full_on``), else any
    other rank, else ``avoid`` when no other rank is in service. A job that ran out of space waits
    for another node while one serves: a node's ranks share its disk, and a second full disk
    stops the run."""
    others = [rank for rank in idle if rank != avoid]
    shunned = set(full_on) | ({host_of(avoid)} if avoid is not None else set())
    elsewhere = next((rank for rank in others if host_of(rank) not in shunned), None)
    if elsewhere is not None:
        return elsewhere
    if full_on and any(host_of(rank) not in full_on for rank in in_service):
        return None
    if others:
        return others[0]
    return avoid if avoid in idle and set(in_service) == {avoid} else None


@dataclass
class Verdict:
    """What to do after an outcome: record these, run those again elsewhere, retire that rank."""

    record: list[tuple[Job, Outcome]] = field(default_factory=list)
    again: list[tuple[Job, Outcome, int]] = field(default_factory=list)  # (job, its failure, rank to avoid)
    retired: list[tuple[int, str]] = field(default_factory=list)  # (rank, why)
    reinstated: int | None = None  # a rank back in service


@dataclass
class _Streak:
    held: list[tuple[Job, Outcome]] = field(default_factory=list)
    successes_at_start: int = 0  # the run's count of successes when the streak began
    failures: int = 0  # in a row, held now or settled before: settling does not clear a rank's record
    last_error: str | None = None


class RankHealth:
    """Failure streaks of worker ranks; ``limit=None`` records every failure at once."""

    def __init__(self, ranks: Iterable[int], limit: int | None = DEFAULT_RANK_FAILURE_LIMIT) -> None:
        self.limit = limit
        self.in_service = set(ranks)
        self.retired: dict[int, str] = {}
        self._streaks: dict[int, _Streak] = {}
        self._worked: set[int] = set()  # ranks with a success
        self._successes = 0
        self._final: set[tuple[tuple[int, int, int], float]] = set()  # jobs running again: next outcome counts
        self._retried_from: dict[tuple[tuple[int, int, int], float], int] = {}  # job -> the retired rank it left
        self._settled_from: dict[tuple[tuple[int, int, int], float], int] = {}  # job run again -> rank it left
        self._trials: dict[int, list[int]] = {}  # retired rank -> [jobs run again, of those failed again]
        self._outcomes: dict[int, list[int]] = {}  # rank -> [outcomes, of those failed]
        self._all_outcomes = [0, 0]  # the sums over ranks: another rank's are these minus its own

    @property
    def holding(self) -> int:
        """Failures held now."""
        return sum(len(streak.held) for streak in self._streaks.values())

    def observe(self, rank: int, job: Job, outcome: Outcome) -> Verdict:
        """The outcome of ``job`` on ``rank``."""
        key = (job.config_id, job.budget)
        for counts in (self._outcomes.setdefault(rank, [0, 0]), self._all_outcomes):
            counts[0] += 1
            counts[1] += outcome.failed
        verdict = Verdict(reinstated=self._judge_retirement(key, outcome.failed))
        if not outcome.failed:
            self._successes += 1
            self._worked.add(rank)
            self._final.discard(key)
            self._settled_from.pop(key, None)
            verdict.record = [*self._streaks.pop(rank, _Streak()).held, (job, outcome)]
        elif (settled_from := self._settled_from.pop(key, None)) is not None and settled_from in self._streaks:
            # it failed here too: the configuration's failure, not evidence against the rank it left
            self._streaks[settled_from].failures -= 1
            self._final.discard(key)
            verdict.record = [(job, outcome)]
        elif self.limit is None or key in self._final or len(self.in_service) < 2:
            self._final.discard(key)
            verdict.record = [(job, outcome)]
        elif rank not in self.in_service:
            # taken out of service while it ran: held, it would wait for a rank that gets no more jobs
            self.run_once_more(job)
            verdict.again = [(job, outcome, rank)]
        else:
            streak = self._streaks.setdefault(rank, _Streak(successes_at_start=self._successes))
            streak.held.append((job, outcome))
            streak.failures += 1
            streak.last_error = outcome.error
        for failing in list(self._streaks):  # a success elsewhere may be what convicts a fast-failing rank
            streak = self._streaks[failing]
            if self.limit is not None and streak.failures >= self.limit \
                    and streak.failures >= self._streak_limit(failing, self.limit) \
                    and self._successes > streak.successes_at_start and len(self.in_service) > 1:
                self._retire(failing, verdict)
        return verdict

    def _streak_limit(self, rank: int, limit: int) -> int:
        """Failures in a row that retire ``rank``: ``limit``, or more where configurations fail often
        on the other ranks (their failure rate, with a prior of 1 in 10 worth 5 outcomes), so that a
        healthy rank reaches it with a chance of :data:`HEALTHY_STREAK_CHANCE`."""
        own = self._outcomes.get(rank, [0, 0])
        seen, failed = self._all_outcomes[0] - own[0], self._all_outcomes[1] - own[1]
        rate = (failed + 0.5) / (seen + 5)
        needed = math.ceil(math.log(HEALTHY_STREAK_CHANCE) / math.log(rate)) if rate < 1 else MOST_FAILURES_IN_A_ROW
        return max(limit, min(MOST_FAILURES_IN_A_ROW, needed))

    def _judge_retirement(self, key: tuple[tuple[int, int, int], float], failed: bool) -> int | None:
        """A job that a retired rank had failed ran again: return the rank if it is back in service."""
        rank = self._retried_from.pop(key, None)
        if rank is None or rank not in self._trials:
            return None
        trial = self._trials[rank]
        trial[1] += failed
        if 2 * trial[1] <= trial[0]:
            return None
        del self._trials[rank]
        self.retired.pop(rank, None)
        self.in_service.add(rank)
        return rank

    def _retire(self, rank: int, verdict: Verdict) -> None:
        streak = self._streaks.pop(rank)
        self.in_service.discard(rank)
        self._trials[rank] = [len(streak.held), 0]
        for job, _ in streak.held:
            self._retried_from[(job.config_id, job.budget)] = rank
        last = streak.last_error
        why = (f"its last {streak.failures} evaluations failed while other ranks succeeded; the last: "
               f"{last.splitlines()[0] if last else 'no error text'}")
        self.retired[rank] = why
        verdict.again += self._again(rank, streak)
        verdict.retired.append((rank, why))

    def _again(self, rank: int, streak: _Streak) -> list[tuple[Job, Outcome, int]]:
        for job, _ in streak.held:
            self.run_once_more(job)
        return [(job, outcome, rank) for job, outcome in streak.held]

    def run_once_more(self, job: Job) -> None:
        """``job`` runs again: its next outcome is recorded, whatever it is."""
        self._final.add((job.config_id, job.budget))

    def settle(self) -> Verdict:
        """Nothing else can run: record or run again every held failure (see the module's text)."""
        verdict = Verdict()
        for rank, streak in self._streaks.items():
            if rank in self._worked and len(streak.held) == 1:
                verdict.record.extend(streak.held)
                streak.failures -= 1  # recorded as the configuration's failure: no evidence against the rank
            else:
                verdict.again.extend(self._again(rank, streak))
                self._settled_from.update({(job.config_id, job.budget): rank for job, _ in streak.held})
            streak.held = []  # the streak goes on: a success elsewhere may still convict the rank
        return verdict

    def lost(self, rank: int, why: str) -> list[tuple[Job, Outcome, int]]:
        """``rank`` is gone (it died or never answers): out of service; its held failures run
        again on other ranks (a rank that hangs may well have failed them)."""
        self.in_service.discard(rank)
        self.retired[rank] = why
        self._trials.pop(rank, None)  # gone: no verdict on its failed jobs brings it back
        streak = self._streaks.pop(rank, None)
        return self._again(rank, streak) if streak else []
