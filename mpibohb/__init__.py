"""mpibohb: BOHB, HyperBand and RandomSearch over MPI, with HpBandSter's API.

>>> from mpibohb import BOHB, HyperBand, RandomSearch, Worker

The public names are imported on first use (PEP 562), so ``python -m mpibohb status`` and
``report`` do not pay for ConfigSpace and scipy.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .optimizers import BOHB, HyperBand, RandomSearch
    from .result import Result, Run, load_result
    from .stopping import EXIT_STOPPED
    from .worker import Worker

_HOMES = {"BOHB": "optimizers", "HyperBand": "optimizers", "RandomSearch": "optimizers",
          "Result": "result", "Run": "result", "load_result": "result",
          "EXIT_STOPPED": "stopping", "Worker": "worker"}

__all__ = ["BOHB", "EXIT_STOPPED", "HyperBand", "RandomSearch", "Result", "Run", "Worker", "load_result"]
__version__ = "0.1.0"

logging.getLogger("mpibohb").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mpibohb' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
