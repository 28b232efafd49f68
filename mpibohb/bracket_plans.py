"""Pure budget arithmetic of Hyperband: the rung ladder and the bracket plans.

The ladder is ``max_budget * eta**-k`` for ``k = 0 .. s_max``; the number of rungs is counted
float-safely, so ``(min, max, eta) = (1, 243, 3)`` has six rungs ``1, 3, 9, 27, 81, 243``.

Bracket sizes follow the Hyperband paper (Li et al., 2018, Algorithm 1):
``n = ceil((s_max + 1) / (s + 1) * eta**s)`` configurations enter bracket ``s`` and
``n_i = floor(n * eta**-i)`` of them reach its stage ``i``. Brackets cycle from the most
aggressive (``s = s_max``, starting at the smallest budget) to the least (``s = 0``, all configs
at ``max_budget``); ``brackets=k`` cycles through the ``k`` most aggressive only (``k = 1``:
successive halving from the smallest budget in every iteration, as ASHA's default).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from . import checks

_RELATIVE_SLACK = 1e-9


def validate_budgets(min_budget: float, max_budget: float, eta: float) -> tuple[float, float, float]:
    """Raise ``ValueError`` naming the offending value when the budgets cannot form a ladder;
    return them as Python numbers (numpy's become Python's)."""
    min_budget = checks.real("min_budget", min_budget, above=0)
    max_budget = checks.real("max_budget", max_budget)
    eta = checks.real("eta", eta, above=1)
    if min_budget > max_budget:
        raise ValueError(f"min_budget ({min_budget!r}) must not exceed max_budget ({max_budget!r})")
    stages = _stages(min_budget, max_budget, eta)
    if stages + 1 > MAX_RUNGS:
        raise ValueError(f"min_budget {min_budget!r}, max_budget {max_budget!r} and eta {eta!r} make {stages + 1} "
                         f"budgets; at most {MAX_RUNGS} are allowed (a larger eta or min_budget gives fewer)")
    if stages * math.log(eta) > math.log(MAX_BRACKET_SIZE):
        raise ValueError(f"min_budget {min_budget!r}, max_budget {max_budget!r} and eta {eta!r} make a first bracket "
                         f"of about {eta:g}**{stages} configurations; at most {MAX_BRACKET_SIZE:.0e} are allowed "
                         "(a larger min_budget gives fewer)")
    return min_budget, max_budget, eta


MAX_RUNGS = 10_000  # more budgets than this is a typo (eta=1.0000001) and would take minutes to plan
MAX_BRACKET_SIZE = 1e9  # configurations in the most aggressive bracket, eta**s_max; more would never finish


def _stages(min_budget: float, max_budget: float, eta: float) -> int:
    ratio = (math.log(max_budget) - math.log(min_budget)) / math.log(eta)  # no overflow at 1e-300..1e300
    return int(math.floor(ratio + _RELATIVE_SLACK * max(1.0, ratio)))


def max_stages(min_budget: float, max_budget: float, eta: float) -> int:
    """Return ``s_max``: the largest ``k`` with ``max_budget * eta**-k >= min_budget`` (float-safe)."""
    validate_budgets(min_budget, max_budget, eta)
    return _stages(min_budget, max_budget, eta)


def rung_budgets(min_budget: float, max_budget: float, eta: float) -> list[float]:
    """Return the budget ladder from smallest to largest, ending at exactly ``max_budget``.

    >>> rung_budgets(1, 243, 3)
    [1.0, 3.0, 9.0, 27.0, 81.0, 243.0]
    """
    s_max = max_stages(min_budget, max_budget, eta)
    return [_ladder_value(min_budget, max_budget, eta, k) for k in range(s_max, -1, -1)]


def _ladder_value(min_budget: float, max_budget: float, eta: float, k: int) -> float:
    """``max_budget * eta**-k``, snapped to ``min_budget`` or to an integer when it is one up to
    rounding noise, so that budgets are exact (never 0.9999999)."""
    value = float(max_budget) / float(eta) ** k
    for exact in (float(min_budget), float(round(value))):
        if exact > 0 and abs(value - exact) <= _RELATIVE_SLACK * exact:
            return exact
    return value


@dataclass(frozen=True)
class BracketPlan:
    """How many configurations run at which budget in one successive-halving bracket."""

    s: int
    num_configs: tuple[int, ...]
    budgets: tuple[float, ...]

    @property
    def num_stages(self) -> int:
        """Number of stages (rungs used) in this bracket."""
        return len(self.budgets)


def checked_brackets(brackets: object, min_budget: float, max_budget: float, eta: float) -> int | None:
    """``brackets`` as the number of Hyperband's brackets a run cycles through (``None``: all of
    them, Hyperband's; so is their full number); ``ValueError`` naming a bad one."""
    if brackets is None:
        return None
    most = max_stages(min_budget, max_budget, eta) + 1
    value = checks.integer("brackets", brackets, minimum=1)
    if value > most:
        raise ValueError(f"brackets={value}: budgets {min_budget:g} to {max_budget:g} with eta {eta:g} make {most} "
                         f"bracket{'' if most == 1 else 's'}; give 1 to {most} (by default, all of them run)")
    return None if value == most else value


def brackets_phrase(brackets: int | None) -> str:
    """The words the settings line and ``report`` add for ``brackets`` (nothing for all of them)."""
    return "" if brackets is None else f", brackets={brackets} (the most aggressive)"


def bracket_plan(iteration: int, min_budget: float, max_budget: float, eta: float,
                 brackets: int | None = None) -> BracketPlan:
    """Return the plan of the bracket run as Hyperband iteration ``iteration`` (0-based), cycling
    through the ``brackets`` most aggressive brackets (``None``: all, Hyperband's)."""
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration!r}")
    validate_budgets(min_budget, max_budget, eta)
    cycle = _bracket_cycle(float(min_budget), float(max_budget), float(eta))  # one cache entry per value
    if brackets is not None:
        cycle = cycle[:checked_brackets(brackets, min_budget, max_budget, eta) or len(cycle)]
    return cycle[iteration % len(cycle)]


@functools.lru_cache(maxsize=64)
def _bracket_cycle(min_budget: float, max_budget: float, eta: float) -> tuple[BracketPlan, ...]:
    """The plans of iterations ``0 .. s_max``; iteration ``i`` runs the plan of ``i mod (s_max + 1)``."""
    ladder = rung_budgets(min_budget, max_budget, eta)
    s_max = len(ladder) - 1
    plans = []
    for s in range(s_max, -1, -1):
        first = math.ceil((s_max + 1) / (s + 1) * eta**s - _RELATIVE_SLACK)
        num_configs = tuple(max(1, math.floor(first * eta**-i + _RELATIVE_SLACK)) for i in range(s + 1))
        plans.append(BracketPlan(s=s, num_configs=num_configs, budgets=tuple(ladder[s_max - s :])))
    return tuple(plans)


def runs_per_budget(n_iterations: int, min_budget: float, max_budget: float, eta: float,
                    brackets: int | None = None) -> dict[float, int]:
    """Total number of evaluations per budget over ``n_iterations`` brackets."""
    totals: dict[float, int] = {b: 0 for b in rung_budgets(min_budget, max_budget, eta)}
    for iteration in range(n_iterations):
        plan = bracket_plan(iteration, min_budget, max_budget, eta, brackets)
        for n, budget in zip(plan.num_configs, plan.budgets):
            totals[budget] += n
    return totals
