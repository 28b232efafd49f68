"""Arrays of one row per entry that grow by doubling, with rows inserted or removed in place."""

from __future__ import annotations

from typing import Any

import numpy as np


class Columns:
    """Several arrays of equal length moved together: a row is appended, inserted or removed in each
    at once, by memory moves; the arrays double when full. ``column(i)`` is a view of the first
    ``count`` rows of the ``i``-th array, so writes to it stay."""

    def __init__(self, *empty: np.ndarray) -> None:
        """``empty``: one array per column, of equal length (at least 1), giving its dtype and row shape."""
        if not empty or len({len(array) for array in empty}) != 1 or len(empty[0]) == 0:
            raise ValueError("Columns needs arrays of one length, at least 1")
        self._arrays = list(empty)
        self.count = 0

    def column(self, index: int) -> np.ndarray:
        """The first ``count`` rows of column ``index`` (a view)."""
        return self._arrays[index][: self.count]

    def insert(self, at: int, *values: Any) -> None:
        """Put a row of ``values`` (one per column) at ``at``, moving the rows from ``at`` on down one."""
        if len(values) != len(self._arrays):
            raise ValueError(f"a row has {len(self._arrays)} values, got {len(values)}")
        if not 0 <= at <= self.count:
            raise IndexError(f"row {at} is outside 0..{self.count}")
        if self.count == len(self._arrays[0]):
            self._arrays = [np.concatenate([array, np.empty_like(array)]) for array in self._arrays]
        end = self.count
        for array, value in zip(self._arrays, values):
            array[at + 1: end + 1] = array[at:end]  # numpy copies overlapping slices correctly
            array[at] = value
        self.count += 1

    def append(self, *values: Any) -> int:
        """Put a row of ``values`` at the end; return its number."""
        self.insert(self.count, *values)
        return self.count - 1

    def remove(self, at: int) -> None:
        """Take out row ``at``, moving the rows after it up one."""
        if not 0 <= at < self.count:
            raise IndexError(f"row {at} is outside 0..{self.count - 1}")
        end = self.count
        for array in self._arrays:
            array[at: end - 1] = array[at + 1: end]
        self.count -= 1
