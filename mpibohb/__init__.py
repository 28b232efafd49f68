"""mpibohb: BOHB, HyperBand and RandomSearch over MPI, with HpBandSter's API.

>>> from mpibohb import BOHB, HyperBand, RandomSearch, Worker

The public names are imported on first use (PEP 562), so ``python -m mpibohb status`` and
``report`` do not pay for ConfigSpace and scipy.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from .launcher import abort_job_on_uncaught_exceptions, tell_rank_zero_of_an_exit_without_run

if TYPE_CHECKING:
    from .checkpoints import atomic_path
    from .optimizers import BOHB, HyperBand, RandomSearch, json_result_logger
    from .result import Result, Run, load_result
    from .simulation import simulate
    from .stopping import EXIT_STOPPED
    from .worker import Worker

_HOMES = {"BOHB": "mpibohb.optimizers", "HyperBand": "mpibohb.optimizers", "RandomSearch": "mpibohb.optimizers",
          "Result": "mpibohb.result", "Run": "mpibohb.result", "load_result": "mpibohb.result",
          "EXIT_STOPPED": "mpibohb.stopping", "Worker": "mpibohb.worker", "json_result_logger": "mpibohb.optimizers",
          "simulate": "mpibohb.simulation", "atomic_path": "mpibohb.checkpoints"}

# HpBandSter's names that a ported script may still use, and what stands for them here
_HPBANDSTER_NAMES = {
    "logged_results_to_HBS_result": "HpBandSter's; here mpibohb.load_result(directory) reads HpBandSter's logs too",
    "core": "HpBandSter's package layout; import BOHB, HyperBand, RandomSearch, Worker, json_result_logger and "
            "load_result from mpibohb itself (README, 'Porting an HpBandSter script')",
}

__all__ = ["BOHB", "EXIT_STOPPED", "HyperBand", "RandomSearch", "Result", "Run", "Worker", "atomic_path",
           "json_result_logger", "load_result", "simulate"]
__version__ = "0.1.0"

# Under mpiexec, an error that ends one rank ends the job: the other ranks would wait for it for ever.
abort_job_on_uncaught_exceptions()
# ... and a rank that ends its script without calling run() says so to rank 0, which waits for it there.
tell_rank_zero_of_an_exit_without_run()

# No NullHandler on purpose: without any logging configuration Python prints WARNING and above to
# stderr, so that failing evaluations and refused directories show; progress (INFO) needs basicConfig.


def __getattr__(name: str) -> Any:
    """Import a public name from its module, or a submodule, the first time it is asked for."""
    home = _HOMES.get(name)
    if home is not None:
        value = getattr(importlib.import_module(home), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)
    elif name in _HPBANDSTER_NAMES:
        # ImportError, not AttributeError: ``from mpibohb import name`` replaces an AttributeError
        # with its own "cannot import name", and the hint would be lost
        raise ImportError(f"module 'mpibohb' has no attribute {name!r}: {_HPBANDSTER_NAMES[name]}", name=name)
    else:
        raise AttributeError(f"module 'mpibohb' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the public ones included before they are imported."""
    return sorted({*globals(), *__all__})
