"""Samplers propose configurations for a budget and learn from observed losses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Proposal:
    """A configuration to evaluate, its vector and what the sampler says about it."""

    config: dict[str, Any]
    vector: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


class Sampler(Protocol):
    """What the optimizer needs of a sampler. Every random choice comes from ``rng``."""

    def propose(self, budget: float, rng: np.random.Generator) -> Proposal:
        """A new configuration to run at ``budget``."""
        ...

    def observe(self, vector: np.ndarray, budget: float, loss: float) -> None:
        """Learn that the configuration ``vector`` scored ``loss`` at ``budget`` (inf: failed)."""
        ...

    def withdraw(self, vector: np.ndarray, budget: float) -> None:
        """The configuration ``vector``, proposed for ``budget``, will not run there after all (a
        job dropped at a resume): it no longer counts as running."""
        ...

    def restore(self, vector: np.ndarray, budget: float) -> None:
        """The configuration ``vector``, proposed for ``budget`` and withdrawn, runs there after all
        (a dropped job handed out again): it counts as running again."""
        ...
