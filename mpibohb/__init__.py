"""mpibohb: BOHB, HyperBand and RandomSearch over MPI, with HpBandSter's API.

>>> from mpibohb import BOHB, HyperBand, RandomSearch, Worker
"""

import logging

from .optimizers import BOHB, HyperBand, RandomSearch
from .result import Result, Run, load_result
from .stopping import EXIT_STOPPED
from .worker import Worker

__all__ = ["BOHB", "EXIT_STOPPED", "HyperBand", "RandomSearch", "Result", "Run", "Worker", "load_result"]
__version__ = "0.1.0"

logging.getLogger("mpibohb").addHandler(logging.NullHandler())
