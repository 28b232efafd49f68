"""Search spaces shared by the unit tests (real ConfigSpace spaces, no mocks); the test lanes
(tests/lanes.py: which tests start processes, pytest -m fast) and pytester are loaded here."""

from __future__ import annotations

import ConfigSpace as CS
import pytest

pytest_plugins = ["lanes", "pytester"]  # lanes: the markers processes, mpiexec, scheduler, fast; their guard


def make_mixed_space(seed: int = 1) -> CS.ConfigurationSpace:
    """Float, int, log float, log int, categorical, ordinal and a constant; ``f`` is active only
    when ``c == "a"``; ``c == "b"`` together with ``o == "hi"`` is forbidden."""
    cs = CS.ConfigurationSpace(seed=seed)
    cs.add([
        CS.UniformFloatHyperparameter("f", 0.0, 1.0),
        CS.UniformIntegerHyperparameter("i", 1, 10),
        CS.UniformFloatHyperparameter("lf", 1e-4, 1.0, log=True),
        CS.UniformIntegerHyperparameter("li", 1, 1000, log=True),
        CS.CategoricalHyperparameter("c", ["a", "b", "c"]),
        CS.OrdinalHyperparameter("o", ["lo", "mid", "hi"]),
        CS.Constant("k", "const"),
    ])
    cs.add(CS.EqualsCondition(cs["f"], cs["c"], "a"))
    cs.add(CS.ForbiddenAndConjunction(CS.ForbiddenEqualsClause(cs["c"], "b"), CS.ForbiddenEqualsClause(cs["o"], "hi")))
    return cs


@pytest.fixture
def mixed_space() -> CS.ConfigurationSpace:
    """See :func:`make_mixed_space`."""
    return make_mixed_space()
