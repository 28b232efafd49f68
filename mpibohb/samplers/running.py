"""The configurations a sampler proposed whose results have not come back: the constant liar's points."""

from __future__ import annotations

import numpy as np


class RunningConfigurations:
    """Model vectors proposed and not yet observed, each with the budget it runs at and how often it
    runs there, in proposal order.

    A result removes the run of its vector at its budget only: a promotion of a configuration (never
    proposed at that budget) leaves a fresh proposal of the same vector at its own budget running. A
    replay proposes and observes in the journaled order, so a resumed run rebuilds the same set.
    """

    def __init__(self, num_dims: int) -> None:
        self.num_dims = num_dims
        self._entries: dict[tuple[bytes, float], tuple[np.ndarray, int]] = {}
        self._count = 0

    def __len__(self) -> int:
        """The number of runs (a configuration proposed twice at one budget counts twice)."""
        return self._count

    def add(self, vector: np.ndarray, budget: float) -> None:
        """A configuration was proposed for ``budget``: it runs there (once more)."""
        key = (vector.tobytes(), float(budget))
        _, count = self._entries.get(key, (vector, 0))
        self._entries[key] = (vector.copy(), count + 1)
        self._count += 1

    def remove(self, vector: np.ndarray, budget: float) -> None:
        """A result at ``budget`` came back: one run of that configuration there ended (nothing if
        none runs: a promotion's result, a warm start's)."""
        key = (vector.tobytes(), float(budget))
        entry = self._entries.get(key)
        if entry is None:
            return
        if entry[1] == 1:
            del self._entries[key]
        else:
            self._entries[key] = (entry[0], entry[1] - 1)
        self._count -= 1

    def points(self) -> np.ndarray:
        """One row per run, in proposal order of the configurations."""
        rows = [vector for vector, count in self._entries.values() for _ in range(count)]
        return np.array(rows).reshape(len(rows), self.num_dims)
