"""The 10-dimensional space and smooth loss of the model-cost and memory benchmarks.

Shared by ``overhead.py`` (mpibohb), ``hpbandster_reference.py`` (HpBandSter's venv, ConfigSpace
0.6) and ``memory.py`` (both), so the space is built for ConfigSpace 0.6 and 1.x alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def benchmark_space(seed: int) -> Any:
    """8 floats in [0, 1], a categorical with 3 and one with 2 choices."""
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=seed)
    hyperparameters: list[Any] = [CS.UniformFloatHyperparameter(f"x{i}", 0.0, 1.0) for i in range(8)]
    hyperparameters += [CS.CategoricalHyperparameter("c3", ["a", "b", "c"]),
                        CS.CategoricalHyperparameter("c2", ["p", "q"])]
    if hasattr(cs, "add"):  # ConfigSpace >= 1.0
        cs.add(hyperparameters)
    else:
        cs.add_hyperparameters(hyperparameters)
    return cs


def smooth_loss(config: dict) -> float:
    """A smooth function of the configuration with its optimum inside the cube."""
    xs = np.array([config[f"x{i}"] for i in range(8)])
    return (float(np.sum((xs - 0.3) ** 2) + 0.1 * math.sin(3.0 * xs[0]) + 0.05 * xs[1] * xs[2])
            + {"a": 0.0, "b": 0.2, "c": 0.4}[config["c3"]] + (0.1 if config["c2"] == "q" else 0.0))
