"""A discrete-event simulation of K workers driving mpibohb's real ``Optimizer``, with no master or
communication cost: what the schedule alone allows. Nothing is slept; a run takes seconds.

A freed worker asks at once; an evaluation takes ``duration(job)`` (for example its budget); the
optimizer is told ``loss(job)`` when it ends. Used by ``benchmarks/utilisation.py`` (the schedule
bound), ``benchmarks/schedule_orders.py`` and ``benchmarks/fill_tail.py``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mpibohb.ask_tell import Optimizer
from mpibohb.brackets import Job


@dataclass
class Simulated:
    """What a simulated run gives: the busy fraction, the span, and each evaluation as
    ``(finished, job, loss)`` in the order the results came in."""

    busy: float
    span: float
    evaluations: list[tuple[float, Job, float]] = field(default_factory=list)


def simulate(optimizer: Optimizer, workers: int, duration: Callable[[Job], float],
             loss: Callable[[Job], float], before_ask: Callable[[Optimizer], Any] | None = None) -> Simulated:
    """Run ``optimizer`` to the end with ``workers`` virtual workers; ``before_ask`` (a what-if)
    is called with the optimizer before every ask."""
    optimizer.start_session(optimizer.n_iterations, workers)
    now, work, running, count = 0.0, 0.0, [], itertools.count()  # running: heap of (end, count, job)
    evaluations = []
    while not optimizer.finished:
        if before_ask is not None:
            before_ask(optimizer)
        job = optimizer.ask() if len(running) < workers else None
        if job is not None:  # a free worker takes it now
            took = duration(job)
            work += took
            heapq.heappush(running, (now + took, next(count), job))
            continue
        now, _, job = heapq.heappop(running)  # every worker busy, or none has a job: next result
        value = loss(job)
        optimizer.tell(job, value)
        evaluations.append((now, job, value))
    return Simulated(work / (workers * now), now, evaluations)
