"""The search space: ConfigSpace configurations <-> unit-cube vectors, kernel kinds per dimension.

A vector is ConfigSpace's own representation (``Configuration.get_array()``): floats and integers
in ``[0, 1]`` (log-scaled where the parameter is), categorical and ordinal values as their index,
``NaN`` for an inactive parameter. Constants carry no information and are left out of the model.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ConfigSpace as CS
import numpy as np
from ConfigSpace.exceptions import ForbiddenValueError
from ConfigSpace.hyperparameters import IntegerHyperparameter
from ConfigSpace.util import deactivate_inactive_hyperparameters

from .values import choice_values, without_addresses

CONTINUOUS, UNORDERED, ORDERED = "c", "u", "o"
MAX_SAMPLING_ROUNDS = 5_000  # ConfigSpace draws a batch of at least 5 configurations a round
RUN_SAMPLING_ATTEMPTS = 20  # a run's draws: 20 times the start check's, which a space passed
logger = logging.getLogger(__name__)


class NoLegalConfigurationError(ValueError):
    """Random configurations drawn from the search space (almost) never pass its forbidden clauses."""


class _TooManyRoundsError(Exception):
    pass


class _CountingRandomState(np.random.RandomState):
    """The random state of a private copy of the space, dealing RandomState's own numbers.

    ConfigSpace's ``sample_configuration`` draws batches through its space's random state, round
    after round, until a configuration passes the forbidden clauses: forever where (almost) none
    does. Each round asks this state at least once per hyperparameter, so counting the calls it
    serves bounds the rounds: past ``limit`` it raises instead of dealing.
    """

    def __init__(self, state: dict[str, Any] | tuple[Any, ...]) -> None:
        self._calls, self._limit = 0, math.inf
        super().__init__()
        self.set_state(state)

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_"):
            self._calls += 1
            if self._calls > self._limit:
                raise _TooManyRoundsError
        return super().__getattribute__(name)

    @contextlib.contextmanager
    def limited(self, limit: float) -> Iterator[None]:
        """At most ``limit`` calls inside."""
        self._calls, self._limit = 0, limit
        try:
            yield
        finally:
            self._limit = math.inf


@dataclass(frozen=True)
class ModelDimension:
    """One dimension the model sees: its position in the vector, its kind and its level count."""

    index: int
    name: str
    kind: str  # CONTINUOUS, UNORDERED or ORDERED (statsmodels' var_type letters)
    num_levels: int  # 0 for continuous


def shared_choices(configspace: CS.ConfigurationSpace) -> dict[int, Any]:
    """A ``copy.deepcopy`` memo under which a copy of ``configspace`` keeps its choice objects (not
    their containers, which a copy must own)."""
    return {id(value): value for hp in configspace.values() for value in choice_values(hp)
            if not isinstance(value, (dict, list, set))}


def _outline(configspace: CS.ConfigurationSpace) -> list[str]:
    """The hyperparameters and conditions of ``configspace`` as text, to tell a change that the
    samplers' fixed dimensions cannot follow (forbidden clauses are read live, so they may change)."""
    return [without_addresses(str(item)) for item in (*configspace.values(), *configspace.conditions)]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds (smaller to pickle, JSON-safe)."""
    return value.item() if isinstance(value, np.generic) else value


class SearchSpace:
    """A ConfigSpace ``ConfigurationSpace`` seen as vectors for the samplers.

    Raises:
        ValueError: ``configspace`` is not a ``ConfigurationSpace`` or has no hyperparameters.
    """

    def __init__(self, configspace: CS.ConfigurationSpace) -> None:
        if not isinstance(configspace, CS.ConfigurationSpace):
            raise ValueError(
                f"configspace must be a ConfigSpace.ConfigurationSpace, got {type(configspace).__name__}"
            )
        if len(configspace) == 0:
            raise ValueError("configspace has no hyperparameters; add at least one")
        self.configspace = configspace
        self.hyperparameters = list(configspace.values())
        self.has_conditions = bool(configspace.conditions)
        self.dimensions = [
            dim for i, hp in enumerate(self.hyperparameters) if (dim := _model_dimension(i, hp)) is not None
        ]
        self._integer_indices = [
            i for i, hp in enumerate(self.hyperparameters) if isinstance(hp, IntegerHyperparameter)
        ]
        self._index_kinds = [d.index for d in self.dimensions if d.kind != CONTINUOUS]
        self._said_few_legal = False
        self._said_illegal_draw = False
        self._made_from = _outline(configspace)

    def check_unchanged(self) -> None:
        """Raise if the ConfigSpace's hyperparameters or conditions were changed after this view of
        it was made (the samplers' dimensions were fixed then; its random draws would use the changed
        space).

        Raises:
            ValueError: naming what was added and removed.
        """
        made_from = self.__dict__.get("_made_from")  # None: pickled by a version before this check
        now = _outline(self.configspace)
        if made_from is not None and now != made_from:
            added = [item for item in now if item not in made_from]
            removed = [item for item in made_from if item not in now]
            change = "; ".join(f"{what}: {' | '.join(items)}"
                               for what, items in (("added", added), ("removed", removed)) if items)
            change = change or "the same items in another order"
            raise ValueError(f"the search space was changed after the optimizer was made ({change:.400}): make "
                             "BOHB/HyperBand/RandomSearch after the space is complete")

    @property
    def model_indices(self) -> np.ndarray:
        """Positions in the full vector of the dimensions the model uses (constants left out)."""
        return np.array([d.index for d in self.dimensions], dtype=int)

    def sampler_copy(self, seed: int) -> CS.ConfigurationSpace:
        """A private copy of the space whose sampling stream starts at ``seed``, for :meth:`sample`."""
        # the choice objects are shared, not copied: compute gets the space's own objects
        private = copy.deepcopy(self.configspace, memo=shared_choices(self.configspace))
        private.seed(seed)
        private.random = _CountingRandomState(private.random.get_state())
        return private

    def sample(self, private: CS.ConfigurationSpace, attempts: int = RUN_SAMPLING_ATTEMPTS) -> CS.Configuration:
        """A random configuration from ``private`` (a :meth:`sampler_copy`), as ConfigSpace draws it:
        up to ``attempts`` times :data:`MAX_SAMPLING_ROUNDS` batches (their number bounds the time
        this takes). A run's draws have more attempts than the check at its start
        (:meth:`check_samplable`, one), so that a space that passed the check, with few legal
        configurations, does not end the run later (a fuzz found 1 legal value in 8,000 ending 5
        of 6 runs mid-way, and their every resume); a draw past the first attempt warns.

        Raises:
            NoLegalConfigurationError: no attempt drew a configuration that passed the forbidden clauses.
        """
        counting = private.random
        if not isinstance(counting, _CountingRandomState):
            return self._legal(private.sample_configuration())
        for attempt in range(attempts):
            try:
                with counting.limited(MAX_SAMPLING_ROUNDS * len(self.hyperparameters)):
                    return self._legal(private.sample_configuration())
            except _TooManyRoundsError:
                if attempt == 0 and attempts > 1 and not self._said_few_legal:
                    self._said_few_legal = True
                    logger.warning("the search space's forbidden clauses leave few legal configurations: a random "
                                   "draw took over %s batches of ConfigSpace's; drawing on (up to %d times as many)",
                                   f"{MAX_SAMPLING_ROUNDS:,}", attempts)
        raise NoLegalConfigurationError(self._no_legal_configuration(attempts))

    def _legal(self, config: CS.Configuration) -> CS.Configuration:
        """``config`` as ConfigSpace drew it; the first time in this run that ConfigSpace's own check
        refuses one of its draws (ConfigSpace 1.2 sets parameters that conjunctions of conditions on
        a chain leave inactive: one draw in five in a fuzzed space), a warning says so. The draw is
        not changed: the journals of earlier runs hold such draws, and their resumes replay them."""
        if not self.has_conditions or self._said_illegal_draw:
            return config
        try:
            config.check_valid_configuration()
        except ValueError as exc:  # ConfigSpace's validation errors are ValueErrors
            self._said_illegal_draw = True
            logger.warning("ConfigSpace drew a configuration that its own check refuses (%s: %s); compute gets it "
                           "as drawn, as HpBandSter's did (ConfigSpace's sampler and its check disagree on some "
                           "conjunctions of conditions; said once per run)",
                           type(exc).__name__, (str(exc).splitlines() or [""])[0][:200])
        return config

    def check_samplable(self) -> None:
        """Draw one configuration from a throwaway copy where forbidden clauses could refuse every draw.

        Raises:
            NoLegalConfigurationError: see :meth:`sample`.
        """
        if self.configspace.forbidden_clauses:
            self.sample(self.sampler_copy(0), attempts=1)

    def _no_legal_configuration(self, attempts: int) -> str:
        clauses = "; ".join(str(clause) for clause in self.configspace.forbidden_clauses)
        return (f"the search space leaves (almost) no legal configuration to sample: ConfigSpace drew "
                f"{attempts * MAX_SAMPLING_ROUNDS:,} batches of random configurations and none passed its "
                f"forbidden clauses ({clauses}). Clauses that leave a parameter one value in thousands (x < y and "
                "x > y on floats, a clause on all but one value of an integer) do that: loosen them, or make such a "
                "parameter a constant")

    def constant_template(self) -> np.ndarray:
        """A full vector with every constant at its value (also a conditional constant, which the
        default configuration may leave NaN) and NaN elsewhere, for the samplers to fill in."""
        template = np.full(len(self.hyperparameters), np.nan)
        for i, hp in enumerate(self.hyperparameters):
            if isinstance(hp, CS.Constant):
                template[i] = hp.to_vector(hp.value)
        return template

    def vector_of(self, config: dict[str, Any]) -> np.ndarray:
        """The vector of a configuration given as a dict (inactive parameters -> NaN)."""
        return CS.Configuration(self.configspace, values=config).get_array()

    def config_of(self, vector: np.ndarray) -> tuple[dict[str, Any], np.ndarray] | None:
        """The configuration a (model-made) vector stands for and its exact vector, or ``None``
        when it is forbidden.

        Integer, categorical and ordinal entries are rounded to legal values first; inactive
        parameters are dropped.
        """
        vector = np.array(vector, dtype=float)
        for i in self._index_kinds:
            vector[i] = np.rint(vector[i])
        for i in self._integer_indices:
            hp = self.hyperparameters[i]
            vector[i] = hp.to_vector(hp.to_value(np.clip(vector[i], 0.0, 1.0)))
        if self.has_conditions:
            return self._config_with_conditions(vector)
        try:
            self.configspace.check_configuration_vector_representation(vector)
        except ValueError as exc:  # forbidden, or otherwise rejected by ConfigSpace
            logger.debug("model candidate rejected by ConfigSpace: %s", exc)
            return None
        return {hp.name: _plain(hp.to_value(v)) for hp, v in zip(self.hyperparameters, vector)}, vector

    def _config_with_conditions(self, vector: np.ndarray) -> tuple[dict[str, Any], np.ndarray] | None:
        values = {
            hp.name: hp.to_value(v) for hp, v in zip(self.hyperparameters, vector) if not np.isnan(v)
        }
        try:
            config = deactivate_inactive_hyperparameters(values, self.configspace)
            self.configspace.check_configuration_vector_representation(config.get_array())
        except (ForbiddenValueError, ValueError) as exc:  # ConfigSpace's validation errors are ValueErrors
            logger.debug("model candidate rejected by ConfigSpace: %s", exc)
            return None
        return plain_config(config), config.get_array()


def _model_dimension(index: int, hp: Any) -> ModelDimension | None:
    if isinstance(hp, CS.Constant):
        return None
    if isinstance(hp, CS.OrdinalHyperparameter):
        return ModelDimension(index, hp.name, ORDERED, len(hp.sequence))
    if isinstance(hp, CS.CategoricalHyperparameter):
        return ModelDimension(index, hp.name, UNORDERED, len(hp.choices))
    return ModelDimension(index, hp.name, CONTINUOUS, 0)


def plain_config(config: Any) -> dict[str, Any]:
    """A ``Configuration`` or mapping as a plain dict of Python scalars."""
    return {name: _plain(value) for name, value in dict(config).items()}


def impute_inactive(data: np.ndarray, dimensions: list[ModelDimension], rng: np.random.Generator) -> np.ndarray:
    """Fill NaN (inactive) entries the way HpBandSter's BOHB does.

    An inactive value is replaced by the value of that dimension in a random row where it is
    active, or, where no row has it active, by a uniform random value of the dimension.
    ``data`` holds the model dimensions only, one row per observation; a new array is returned.
    """
    data = np.array(data, dtype=float)
    for column, dim in enumerate(dimensions):
        missing = np.isnan(data[:, column])
        if not missing.any():
            continue
        present = data[~missing, column]
        if present.size:
            data[missing, column] = rng.choice(present, size=int(missing.sum()))
        elif dim.kind == CONTINUOUS:
            data[missing, column] = rng.random(int(missing.sum()))
        else:
            data[missing, column] = rng.integers(0, dim.num_levels, size=int(missing.sum()))
    return data
