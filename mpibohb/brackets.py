""":class:`Job` (one evaluation) and the brackets as small state machines (:class:`Bracket`:
successive halving stage by stage; :class:`AsyncBracket`: promotions without waiting for the
stage). The policies of :mod:`mpibohb.scheduling` drive them, and :class:`mpibohb.ask_tell.Optimizer`
drives a policy. No I/O, no clock, no threads.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bracket_plans import BracketPlan
from .samplers import Proposal, Sampler

_SLACK = 1e-9  # ranks compared with len / eta, float-safely

ConfigId = tuple[int, int, int]
PlanFunction = Callable[[int], BracketPlan]


@dataclass(frozen=True)
class Job:
    """One evaluation to run: HpBandSter's config id triple ``(iteration, 0, index)`` (the bracket,
    HpBandSter's middle element, always 0, and the configuration's index in the bracket), the
    configuration, the budget, what the sampler said about the configuration, and the largest
    budget at which the configuration was evaluated successfully before (``None``: never), from
    which a ``compute`` that keeps checkpoints continues."""

    config_id: ConfigId
    config: dict[str, Any]
    budget: float
    config_info: dict[str, Any] = field(default_factory=dict)
    previous_budget: float | None = None

    @property
    def iteration(self) -> int:
        """The Hyperband iteration (bracket number) the job belongs to."""
        return self.config_id[0]


@dataclass
class _Entry:
    proposal: Proposal
    losses: dict[float, float] = field(default_factory=dict)

    def previous_budget(self) -> float | None:
        """The largest budget with a successful (finite) loss so far."""
        return max((budget for budget, loss in self.losses.items() if math.isfinite(loss)), default=None)


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
        self.retired: list[int] = []  # entries that can no longer be promoted, since the owner last took them

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
        return Job((self.iteration, 0, index), entry.proposal.config, self.budget, dict(entry.proposal.info),
                   entry.previous_budget())

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
            self.retired.extend(self._stage_members)
            return
        previous = self.plan.budgets[self.stage - 1]
        ranked = sorted(self._stage_members, key=lambda i: (self.entries[i].losses[previous], i))
        self._stage_members = ranked[: self.plan.num_configs[self.stage]]
        self.retired.extend(ranked[self.plan.num_configs[self.stage]:])
        self._queue.extend(self._stage_members)


class Rung:
    """The results of one budget of a bracket, and how many of them were promoted."""

    def __init__(self) -> None:
        self.ranked: list[tuple[float, int]] = []  # (loss, index), best first
        self._waiting: list[tuple[float, int]] = []  # heap of the results not promoted
        self.promoted = 0

    def add(self, index: int, loss: float) -> None:
        """The result of configuration ``index``."""
        bisect.insort(self.ranked, (loss, index))
        heapq.heappush(self._waiting, (loss, index))

    def promotable(self, eta: float, room: int, planned: int) -> int | None:
        """The best configuration not promoted yet, if it is in the top ``1/eta`` of the results so
        far (in the top ``room`` once all ``planned`` results are in: with a non-integer eta,
        ``floor(planned / eta)`` can be less than the plan's next rung) and fewer than ``room``
        were promoted."""
        if self.promoted >= room or not self._waiting:
            return None
        best = self._waiting[0]
        allowed = room if len(self.ranked) >= planned else math.floor(len(self.ranked) / eta + _SLACK)
        return best[1] if bisect.bisect_left(self.ranked, best) < allowed else None

    def take(self) -> None:
        """The configuration :meth:`promotable` named is promoted."""
        heapq.heappop(self._waiting)
        self.promoted += 1

    def close(self, room: int, planned: int) -> list[int]:
        """Once every planned result is in and ``room`` were promoted, the others can never be:
        they are returned, once."""
        if self.promoted < room or len(self.ranked) < planned or not self._waiting:
            return []
        closed = [index for _, index in self._waiting]
        self._waiting.clear()
        return closed


class AsyncBracket:
    """One bracket's configurations, run with promotions without stage barriers (which promotion
    comes when is the policy's choice: :mod:`mpibohb.scheduling.asynchronous`)."""

    def __init__(self, iteration: int, plan: BracketPlan, eta: float) -> None:
        self.iteration, self.plan, self.eta = iteration, plan, eta
        self.proposals: list[Proposal] = []
        self.rungs = [Rung() for _ in plan.budgets]
        self.started = 0
        self.ended = False
        self._running: set[tuple[int, float]] = set()  # (index, budget)
        self._succeeded: dict[int, float] = {}  # index -> the largest budget with a finite loss
        self.retired: list[int] = []  # configurations that can no longer be promoted, since the owner took them
        self._retired_set: set[int] = set()

    @property
    def full(self) -> bool:
        """Every configuration of the plan has started."""
        return self.started >= self.plan.num_configs[0]

    def promotion(self, complete_only: bool = False,
                  accept: Callable[[int, int], bool] | None = None) -> tuple[int, int] | None:
        """``(index, rung)`` of the next promotion due, highest rung first (``complete_only``: only
        from rungs that have all their planned results; ``accept(index, rung)``: only one it
        accepts); it counts as handed out."""
        for rung in range(len(self.rungs) - 2, -1, -1):
            if complete_only and not self.complete(rung):
                continue
            index = self.rungs[rung].promotable(self.eta, self.plan.num_configs[rung + 1], self.plan.num_configs[rung])
            if index is not None and (accept is None or accept(index, rung + 1)):
                self.rungs[rung].take()
                self._running.add((index, self.plan.budgets[rung + 1]))
                self._close(rung)
                return index, rung + 1
        return None

    def complete(self, rung: int) -> bool:
        """Every planned result of ``rung`` is in."""
        return len(self.rungs[rung].ranked) >= self.plan.num_configs[rung]

    def start(self, proposal: Proposal) -> int:
        """A new configuration at the bracket's smallest budget; its index."""
        self.proposals.append(proposal)
        self.started += 1
        index = len(self.proposals) - 1
        self._running.add((index, self.plan.budgets[0]))
        return index

    def job(self, index: int, rung: int) -> Job:
        """The job that runs configuration ``index`` at the budget of ``rung``."""
        proposal = self.proposals[index]
        return Job((self.iteration, 0, index), proposal.config, self.plan.budgets[rung], dict(proposal.info),
                   self._succeeded.get(index))

    def record(self, index: int, budget: float, loss: float) -> bool:
        """The result of configuration ``index`` at ``budget``; whether it completed its rung."""
        if (index, budget) not in self._running:
            raise ValueError(f"bracket {self.iteration} has no running job {index} at budget {budget}")
        self._running.remove((index, budget))
        rung = self.plan.budgets.index(budget)
        self.rungs[rung].add(index, loss)
        if math.isfinite(loss):
            self._succeeded[index] = max(budget, self._succeeded.get(index, budget))
        if rung == len(self.rungs) - 1:
            self._retire([index])  # the top rung: nothing above it
        else:
            self._close(rung)
        return len(self.rungs[rung].ranked) == self.plan.num_configs[rung]

    @property
    def finished(self) -> bool:
        """Full, nothing running, and nothing left to promote."""
        return self.ended or (self.full and not self._running and not self.has_promotion())

    def has_promotion(self) -> bool:
        """Some rung has a configuration that may be promoted now (without taking it)."""
        return any(rung.promotable(self.eta, room, planned) is not None
                   for rung, room, planned in zip(self.rungs[:-1], self.plan.num_configs[1:], self.plan.num_configs))

    def _close(self, rung: int) -> None:
        self._retire(self.rungs[rung].close(self.plan.num_configs[rung + 1], self.plan.num_configs[rung]))

    def _retire(self, indices: list[int]) -> None:
        self.retired.extend(indices)
        self._retired_set.update(indices)

    def retire_the_rest(self) -> None:
        """The bracket has finished: whatever was not retired yet is (a safeguard; a finished
        bracket's rungs have closed)."""
        self._retire([index for index in range(len(self.proposals)) if index not in self._retired_set])

    def release(self) -> None:
        """The bracket has ended: free its configurations and results."""
        self.ended = True
        self.proposals.clear()
        self.rungs.clear()
        self._succeeded.clear()
        self._retired_set.clear()
