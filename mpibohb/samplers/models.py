"""BOHB's two models by name: ``"hpbandster"`` (``hpbandster_kde.py``) and ``"tpe"`` (``tpe.py``)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any, Union

import numpy as np

from ..space import SearchSpace
from . import Sampler
from .hpbandster_kde import KDESampler, KDESettings
from .tpe import ParzenSampler, ParzenSettings

MODELS = ("hpbandster", "tpe")
# BOHB's arguments whose None means "this model's default" (for the others None has a meaning of its own)
MODEL_DEFAULT_WHEN_NONE = ("top_n_percent", "num_samples", "random_fraction", "bandwidth_factor")
ModelSettings = Union[KDESettings, ParzenSettings]


def model_settings(model: Any, options: Mapping[str, Any] | None = None, **arguments: Any) -> ModelSettings:
    """The settings of ``model``: its defaults, with the arguments in their place (those of
    ``MODEL_DEFAULT_WHEN_NONE`` only when they are not ``None``), then ``options``: the model's
    other settings by name (``ParzenSettings``' fields that are not arguments; ``KDESettings`` has none).

    Raises:
        ValueError: an unknown model, an option the model does not have or that is one of the
            arguments, or a value out of range (named).
    """
    if not isinstance(model, str) or model not in MODELS:
        raise ValueError(f"model must be 'hpbandster' (HpBandSter's KDE, the BOHB paper's) or 'tpe' (a TPE-style"
                         f" Parzen estimator), got {model!r}")
    defaults = KDESettings() if model == "hpbandster" else ParzenSettings()
    given = {name: _plain_number(value) for name, value in arguments.items()
             if value is not None or name not in MODEL_DEFAULT_WHEN_NONE}
    settings = replace(defaults, **given, **_checked_options(model, options, arguments))
    if isinstance(settings, KDESettings):
        return settings.checked()  # numpy scalars become Python numbers, as everywhere else
    settings.validate()
    return replace(settings, **{name: value.item() for name, value in settings.as_dict().items()
                                if isinstance(value, np.generic)})  # Python numbers, as JSON needs


def _checked_options(model: str, options: Mapping[str, Any] | None, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as a dict of the model's settings; ``ValueError`` naming a name it does not know
    or one of the ``arguments`` (BOHB's own arguments are the way to set those)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping) or not all(isinstance(name, str) for name in options):
        raise ValueError(f"model_options must be a dict of setting names to values, got {options!r}")
    twice = sorted(name for name in options if name in arguments)
    if twice:
        raise ValueError(f"model_options sets {', '.join(map(repr, twice))}, an argument of BOHB's own:"
                         f" give it as that argument")
    settable = [f.name for f in fields(KDESettings if model == "hpbandster" else ParzenSettings)
                if f.name not in arguments]
    unknown = sorted(set(options) - set(settable))
    if unknown:
        offer = f"its other settings: {', '.join(settable)}" if settable else "it has none beyond BOHB's arguments"
        raise ValueError(f"model_options: model {model!r} has no setting {', '.join(map(repr, unknown))}; {offer}")
    return {name: _plain_number(value) for name, value in options.items()}


def _plain_number(value: Any) -> Any:
    """A real number that is not a Python or numpy one (``Fraction``) as a float, so that the
    journal records a number and a resume with the same options compares equal."""
    if isinstance(value, (bool, int, float, np.generic)) or not isinstance(value, numbers.Real):
        return value
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def model_sampler(space: SearchSpace, settings: ModelSettings) -> Sampler:
    """The sampler of a model's settings."""
    if isinstance(settings, ParzenSettings):
        return ParzenSampler(space, settings)
    return KDESampler(space, settings)


# tpe settings that BOHB's arguments do not set and whose default changed after runs were journaled
# with the earlier one: per change, the setting whose absence from a journal marks a run from before
# it, and the settings such a run keeps (as journaled, or the value a journal without them had)
TPE_CHANGES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("constant_liar", {"constant_liar": False, "max_good_points": 25}),  # 2026-12-05
    ("running_budget_rule", {"running_budget_rule": None}),  # 2026-12-05, later
    ("running_trend_share", {"running_trend_share": 0.0}),  # 2026-12-05, fourth session
    ("running_misled_agreement", {"running_misled_agreement": None}),  # 2026-12-08
)
TPE_KEPT_ON_RESUME: dict[str, Any] = {name: value for _, kept in TPE_CHANGES for name, value in kept.items()}


def kept_on_resume(settings: ModelSettings, journaled: dict[str, Any]) -> dict[str, Any]:
    """The tpe model's settings that a run journaled before a change of their defaults
    (:data:`TPE_CHANGES`) goes on with where they differ from ``settings``: as journaled, so that
    it replays and continues as it started. Empty for any other run: a later journal's settings
    are compared with the resumed run's like any others.

    Raises:
        ValueError: the journal holds a value the model refuses (named).
    """
    if not isinstance(settings, ParzenSettings) or journaled.get("model") != "tpe":
        return {}
    kept = {name: journaled.get(name, absent) for marker, names in TPE_CHANGES if marker not in journaled
            for name, absent in names.items()}
    changed = {name: value for name, value in kept.items() if getattr(settings, name) != value}
    try:
        replace(settings, **changed).validate()
    except ValueError as error:
        raise ValueError(f"the journal's tpe settings: {error}") from None
    return changed


def settings_record(settings: ModelSettings) -> dict[str, Any]:
    """The settings as a run records them; HpBandSter's model without a ``model`` key, as before it had one."""
    if isinstance(settings, ParzenSettings):
        return {"model": "tpe", **settings.as_dict()}
    return dict(settings.__dict__)
