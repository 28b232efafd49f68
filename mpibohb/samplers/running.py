"""The configurations a sampler proposed whose results have not come back: the constant liar's points."""

from __future__ import annotations

import numpy as np


class RunningConfigurations:
    """Model vectors proposed and not yet observed, each with how often it runs, in proposal order.

    A replay proposes and observes in the journaled order, so a resumed run rebuilds the same set.
    """

    def __init__(self, num_dims: int) -> None:
        self.num_dims = num_dims
        self._entries: dict[bytes, tuple[np.ndarray, int]] = {}

    def __len__(self) -> int:
        return sum(count for _, count in self._entries.values())

    def add(self, vector: np.ndarray) -> None:
        """A configuration was proposed: it runs (once more)."""
        key = vector.tobytes()
        _, count = self._entries.get(key, (vector, 0))
        self._entries[key] = (vector.copy(), count + 1)

    def remove(self, vector: np.ndarray) -> None:
        """A result came back: one run of that configuration ended (nothing if it is not running:
        warm-start results, promotions)."""
        key = vector.tobytes()
        entry = self._entries.get(key)
        if entry is None:
            return
        if entry[1] == 1:
            del self._entries[key]
        else:
            self._entries[key] = (entry[0], entry[1] - 1)

    def points(self) -> np.ndarray:
        """One row per run, in proposal order of the configurations."""
        rows = [vector for vector, count in self._entries.values() for _ in range(count)]
        return np.array(rows).reshape(len(rows), self.num_dims)
