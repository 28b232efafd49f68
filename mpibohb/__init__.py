"""mpibohb: BOHB, HyperBand and RandomSearch over MPI, with HpBandSter's API.

>>> from mpibohb import BOHB, HyperBand, RandomSearch, Worker
"""

import logging

from .optimizers import BOHB, HyperBand, RandomSearch
from .result import Result, Run
from .worker import Worker

__all__ = ["BOHB", "HyperBand", "RandomSearch", "Result", "Run", "Worker"]
__version__ = "0.1.0"

logging.getLogger("mpibohb").addHandler(logging.NullHandler())
