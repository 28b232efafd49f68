"""The configurations a sampler proposed whose results have not come back: the constant liar's points."""

from __future__ import annotations

import numpy as np

from .columns import Columns


class RunningConfigurations:
    """Model vectors proposed and not yet observed, each with the budget it runs at and how often it
    runs there, in proposal order.

    A result removes the run of its vector at its budget only: a promotion of a configuration (never
    proposed at that budget) leaves a fresh proposal of the same vector at its own budget running. A
    replay proposes and observes in the journaled order, so a resumed run rebuilds the same set.
    """

    def __init__(self, num_dims: int) -> None:
        self.num_dims = num_dims
        # one row per run, the runs of a (configuration, budget) side by side, in the order their
        # first run began (again at the end once none of theirs runs); the second column names the
        # (configuration, budget) of each row: points() is a slice, not 1,024 rows put together per proposal
        self._runs = Columns(np.empty((16, num_dims)), np.empty(16, dtype=np.intp))
        self._id_of: dict[tuple[bytes, float], int] = {}
        self._next_id = 0

    def __len__(self) -> int:
        """The number of runs (a configuration proposed twice at one budget counts twice)."""
        return self._runs.count

    def add(self, vector: np.ndarray, budget: float) -> None:
        """A configuration was proposed for ``budget``: it runs there (once more)."""
        key = (vector.tobytes(), float(budget))
        if key in self._id_of:
            at = int(np.flatnonzero(self._runs.column(1) == self._id_of[key])[-1]) + 1
        else:
            self._id_of[key], self._next_id, at = self._next_id, self._next_id + 1, self._runs.count
        self._runs.insert(at, vector, self._id_of[key])

    def remove(self, vector: np.ndarray, budget: float) -> None:
        """A result at ``budget`` came back: one run of that configuration there ended (nothing if
        none runs: a promotion's result, a warm start's)."""
        key = (vector.tobytes(), float(budget))
        if key not in self._id_of:
            return
        rows = np.flatnonzero(self._runs.column(1) == self._id_of[key])
        if len(rows) == 1:
            del self._id_of[key]
        self._runs.remove(int(rows[-1]))

    def points(self) -> np.ndarray:
        """One row per run, in proposal order of the configurations."""
        return self._runs.column(0).copy()
