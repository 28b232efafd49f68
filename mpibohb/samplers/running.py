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
        # one row per run, the runs of a (configuration, budget) side by side, in the order their
        # first run began (again at the end once none of theirs runs); ``_ids`` names the
        # (configuration, budget) of each row: points() is a slice, not 1,024 rows put together per proposal
        self._points = np.empty((16, num_dims))
        self._ids = np.empty(16, dtype=np.intp)
        self._id_of: dict[tuple[bytes, float], int] = {}
        self._next_id = 0
        self._count = 0

    def __len__(self) -> int:
        """The number of runs (a configuration proposed twice at one budget counts twice)."""
        return self._count

    def add(self, vector: np.ndarray, budget: float) -> None:
        """A configuration was proposed for ``budget``: it runs there (once more)."""
        key = (vector.tobytes(), float(budget))
        if key in self._id_of:
            at = int(np.flatnonzero(self._ids[: self._count] == self._id_of[key])[-1]) + 1
        else:
            self._id_of[key], self._next_id, at = self._next_id, self._next_id + 1, self._count
        if self._count == len(self._ids):
            self._points = np.concatenate([self._points, np.empty_like(self._points)])
            self._ids = np.concatenate([self._ids, np.empty_like(self._ids)])
        end = self._count
        self._points[at + 1: end + 1], self._ids[at + 1: end + 1] = self._points[at:end], self._ids[at:end]
        self._points[at], self._ids[at] = vector, self._id_of[key]
        self._count += 1

    def remove(self, vector: np.ndarray, budget: float) -> None:
        """A result at ``budget`` came back: one run of that configuration there ended (nothing if
        none runs: a promotion's result, a warm start's)."""
        key = (vector.tobytes(), float(budget))
        if key not in self._id_of:
            return
        rows = np.flatnonzero(self._ids[: self._count] == self._id_of[key])
        if len(rows) == 1:
            del self._id_of[key]
        at, end = int(rows[-1]), self._count
        self._points[at: end - 1], self._ids[at: end - 1] = self._points[at + 1: end], self._ids[at + 1: end]
        self._count -= 1

    def points(self) -> np.ndarray:
        """One row per run, in proposal order of the configurations."""
        return self._points[: self._count].copy()
