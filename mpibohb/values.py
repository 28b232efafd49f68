"""Users' values as mpibohb hands them on: configurations copied so that their holder may edit
them, and reprs that read the same in every process."""

from __future__ import annotations

import re
from typing import Any

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")


def without_addresses(text: str) -> str:
    """``text`` with memory addresses left out (``<function relu at 0x7f..>`` as ``<function relu>``):
    they differ in every process and every copy, and a space must read the same in each."""
    return _ADDRESS.sub(">", text)


def own_values(value: Any) -> Any:
    """``value`` with its containers (dicts, lists, sets, tuples) copied, recursively, and every other
    object as itself: a configuration its holder may edit, whose choice objects stay the space's."""
    if isinstance(value, dict):
        return {key: own_values(item) for key, item in value.items()}
    if isinstance(value, (list, set)) or type(value) is tuple:
        return type(value)(own_values(item) for item in value)
    return value


def choice_values(hyperparameter: Any) -> tuple[Any, ...]:
    """A categorical's choices, an ordinal's sequence, a constant's value; ``()`` for the others
    (read by attribute, so that the journal needs no ConfigSpace import)."""
    values = getattr(hyperparameter, "choices", None) or getattr(hyperparameter, "sequence", None)
    if values is None and hasattr(hyperparameter, "value"):
        values = (hyperparameter.value,)
    return tuple(values or ())
