"""Per-configuration run times for simulated workers: ``budget * exp(sigma * z(config))``.

``z`` is a standard normal from a hash of the configuration (BLAKE2b of its sorted items, to a
uniform, then the normal's inverse CDF), so every engine and schedule sees the same run time for
the same configuration. Used by ``benchmarks/asynchronous_quality.py`` (mpibohb) and
``benchmarks/parallel_peers.py`` (the peers, in their own virtualenv): no mpibohb import here.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

STANDARD_NORMAL = statistics.NormalDist()


def _plain(value: Any) -> Any:
    """A value whose repr is the same whatever type (numpy or Python) carries it."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return str(value)


def standard_normal(config: dict[str, Any]) -> float:
    """The configuration's z: BLAKE2b of its sorted items' repr, to a uniform, to a standard normal."""
    text = repr(sorted((str(name), _plain(value)) for name, value in config.items()))
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return STANDARD_NORMAL.inv_cdf((int.from_bytes(digest, "little") + 0.5) / 2**64)


def duration_of(sigma: float) -> Callable[[dict[str, Any], float], float]:
    """``duration(config, budget) = budget * exp(sigma * z(config))``."""
    def duration(config: dict[str, Any], budget: float) -> float:
        return budget * math.exp(sigma * standard_normal(config)) if sigma else float(budget)

    return duration
