"""The checks of the public API's arguments: integers, real numbers and flags.

One rule for all of them: numpy scalars count as the Python numbers they stand for; ``True`` and
``False`` are refused where a number is wanted (Python counts them as integers, users do not);
a bad value raises ``ValueError`` naming the argument and the value; a good one comes back as a
Python ``int``, ``float`` or ``bool``, so that it prints, compares and serialises as one.
"""

from __future__ import annotations

import math
import numbers
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import TypeGuard


def is_integer(value: object) -> TypeGuard[numbers.Integral]:
    """True for a Python or numpy integer; False for a bool and for everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value: object) -> TypeGuard[numbers.Real]:
    """True for a Python or numpy integer or float, NaN and infinities included; False for a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def integer(name: str, value: object, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int``, if it is an integer within ``minimum`` and ``maximum`` (both included)."""
    return _integer(name, value, minimum, maximum, or_none=False)


def optional_integer(name: str, value: object, *, minimum: int | None = None,
                     maximum: int | None = None) -> int | None:
    """``None``, or ``value`` as :func:`integer` checks it."""
    return None if value is None else _integer(name, value, minimum, maximum, or_none=True)


def real(name: str, value: object, *, finite: bool = True, above: float | None = None,
         minimum: float | None = None, below: float | None = None, maximum: float | None = None,
         unit: str = "") -> float:
    """``value`` as a Python number (an integer stays an ``int``), if it is a real number within
    the bounds: ``above``/``below`` exclude theirs, ``minimum``/``maximum`` include theirs. NaN is
    always refused; infinities unless ``finite`` is false. ``unit`` names it in the message."""
    bounds = _Bounds(above, minimum, below, maximum)
    return _real(name, value, finite, bounds, unit, or_none=False)


def optional_real(name: str, value: object, *, finite: bool = True, above: float | None = None,
                  minimum: float | None = None, below: float | None = None, maximum: float | None = None,
                  unit: str = "") -> float | None:
    """``None``, or ``value`` as :func:`real` checks it."""
    bounds = _Bounds(above, minimum, below, maximum)
    return None if value is None else _real(name, value, finite, bounds, unit, or_none=True)


def flag(name: str, value: object) -> bool:
    """``value`` as a ``bool``: ``True``, ``False``, numpy's bools, or the integers 1 and 0."""
    if isinstance(value, (bool, np.bool_)) or (is_integer(value) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r:.200}")


@dataclass(frozen=True)
class _Bounds:
    """A range of numbers, each end excluded (``above``, ``below``), included or open (``None``)."""

    above: float | None = None
    minimum: float | None = None
    below: float | None = None
    maximum: float | None = None

    def contain(self, value: float) -> bool:
        return ((self.above is None or value > self.above) and (self.minimum is None or value >= self.minimum)
                and (self.below is None or value < self.below) and (self.maximum is None or value <= self.maximum))

    def __str__(self) -> str:
        ends = [f"{sign} {end:g}" for sign, end in
                ((">", self.above), (">=", self.minimum), ("<", self.below), ("<=", self.maximum)) if end is not None]
        return " and ".join(ends)


def _integer(name: str, value: object, minimum: int | None, maximum: int | None, or_none: bool) -> int:
    bounds = _Bounds(minimum=minimum, maximum=maximum)
    if is_integer(value) and bounds.contain(int(value)):
        return int(value)
    raise ValueError(_message(name, "an integer", bounds, or_none, value))


def _real(name: str, value: object, finite: bool, bounds: _Bounds, unit: str, or_none: bool) -> float:
    if is_real(value):
        number = int(value) if is_integer(value) else float(value)
        is_nan = isinstance(number, float) and math.isnan(number)
        is_finite = abs(number) <= sys.float_info.max  # neither an infinity nor an int no float can hold
        if not is_nan and (is_finite or not finite) and bounds.contain(number):
            return number
    kind = ("a finite number" if finite else "a number") + (f" of {unit}" if unit else "")
    raise ValueError(_message(name, kind, bounds, or_none, value))


def _message(name: str, kind: str, bounds: _Bounds, or_none: bool, value: object) -> str:
    wanted = " ".join(part for part in (kind, str(bounds), "or None" if or_none else "") if part)
    return f"{name} must be {wanted}, got {value!r:.200}"
