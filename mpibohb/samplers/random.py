"""Uniform random sampling from the ConfigSpace (its priors, conditions and forbidden clauses)."""

from __future__ import annotations

import ConfigSpace as CS
import numpy as np

from ..space import SearchSpace, plain_config
from . import Proposal


class RandomSampler:
    """Samples configurations independently of every observation."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self._private_space: CS.ConfigurationSpace | None = None

    def propose(self, budget: float, rng: np.random.Generator) -> Proposal:
        """A random configuration; ``budget`` is ignored.

        Raises:
            NoLegalConfigurationError: the forbidden clauses leave (almost) no legal configuration.
        """
        if self._private_space is None:
            # ConfigSpace samples from its own RandomState; seed a private copy from the run's generator.
            self._private_space = self.space.sampler_copy(int(rng.integers(2**31 - 1)))
        config = self.space.sample(self._private_space)
        # a copy: ConfigSpace's array may be a view into a larger block it sampled
        return Proposal(plain_config(config), np.array(config.get_array()), {"model_based_pick": False})

    def observe(self, vector: np.ndarray, budget: float, loss: float) -> None:
        """Random search learns nothing."""

    def withdraw(self, vector: np.ndarray, budget: float) -> None:
        """Random search keeps no running configurations."""

    def restore(self, vector: np.ndarray, budget: float) -> None:
        """Random search keeps no running configurations."""
