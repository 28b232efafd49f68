"""The results a "tpe" model is fitted on, kept sorted as they arrive, and ranked without a full sort.

Each refit ranks every configuration. Sorting them all again at each refit (a five-key lexsort, and
a binary search of each configuration's loss among its budget's losses) cost 23 ms per refit at
50,000 results (``benchmarks/overhead.py``), and a master on 1,024 workers refits after nearly
every result. Here each budget keeps its rows sorted by (loss, row), and each configuration the
number of results at its budget better than its own, updated per result by at most two insertions
and a removal (memory moves) and one increment of a slice; a ranking merges the budgets' sorted
rows: the same order, with far fewer operations.

Losses are finite or ``+inf`` (a failure), one kind of failure, so that sorted losses sort the rows.
"""

from __future__ import annotations

import math

import numpy as np

from .columns import Columns


class SortedRows:
    """Row numbers with their losses, in order of (loss, row), and with ``counted`` per row a count
    (``better``); insertion and removal keep the order."""

    def __init__(self, counted: bool = False) -> None:
        self._columns = Columns(np.empty(16), np.empty(16, dtype=np.intp),
                                *([np.empty(16, dtype=np.intp)] if counted else []))
        self._counted = counted

    @property
    def count(self) -> int:
        """The number of rows."""
        return self._columns.count

    @property
    def losses(self) -> np.ndarray:
        """The losses, ascending."""
        return self._columns.column(0)

    @property
    def rows(self) -> np.ndarray:
        """The rows, in order of (loss, row)."""
        return self._columns.column(1)

    @property
    def better(self) -> np.ndarray:
        """Each row's count, in the same order (``counted`` only)."""
        return self._columns.column(2)

    def _position(self, row: int, loss: float) -> int:
        losses = self.losses
        low, high = np.searchsorted(losses, loss, "left"), np.searchsorted(losses, loss, "right")
        return int(low + np.searchsorted(self.rows[low:high], row))

    def add(self, row: int, loss: float, better: int = 0) -> None:
        """Insert ``row`` with ``loss`` (and its count) in its place."""
        self._columns.insert(self._position(row, loss), loss, row, *([better] if self._counted else []))

    def remove(self, row: int, loss: float) -> None:
        """Take out ``row``, which was added with ``loss``; ``KeyError`` if it is not here."""
        at = self._position(row, loss)
        if at == self.count or self.rows[at] != row:
            raise KeyError(f"row {row} with loss {loss} is not here")
        self._columns.remove(at)

    def count_result(self, loss: float) -> None:
        """A result with ``loss`` came: it is better than every row with a larger loss."""
        self.better[np.searchsorted(self.losses, loss, "right"):] += 1


class Table:
    """Model-dimension vectors with their budget and loss, one row each, appended."""

    def __init__(self, num_dims: int) -> None:
        self._columns = Columns(np.empty((16, num_dims)), np.empty(16), np.empty(16))

    @property
    def count(self) -> int:
        """The number of rows."""
        return self._columns.count

    @property
    def vectors(self) -> np.ndarray:
        """The vectors, one row each (a view: writes stay)."""
        return self._columns.column(0)

    @property
    def budgets(self) -> np.ndarray:
        """The budgets (a view: writes stay)."""
        return self._columns.column(1)

    @property
    def losses(self) -> np.ndarray:
        """The losses (a view: writes stay)."""
        return self._columns.column(2)

    def add(self, vector: np.ndarray, budget: float, loss: float) -> int:
        """Append a row; return its number."""
        return self._columns.append(vector, budget, loss)


class ResultTables:
    """Every result, by budget (``by_budget``: the rows of each in order of (loss, row)), and per
    configuration its result at the largest budget it reached (``latest``, with ``latest_at``: the
    rows of each budget in that order, with the number of results at that budget better than each)."""

    def __init__(self, num_dims: int) -> None:
        self.num_dims = num_dims
        self.by_budget: dict[float, tuple[Table, SortedRows]] = {}
        self.latest = Table(num_dims)
        self.latest_at: dict[float, SortedRows] = {}
        self._rows_of_configs: dict[bytes, int] = {}

    def add(self, vector: np.ndarray, budget: float, loss: float) -> tuple[float, float] | None:
        """Record a result (``loss`` finite or ``+inf``); return the configuration's result at the
        largest budget before (its budget and loss), ``None`` if it had none."""
        if math.isnan(loss) or loss == -math.inf:
            raise ValueError(f"a loss must be finite or +inf (a failure), got {loss}")
        if budget not in self.by_budget:
            self.by_budget[budget] = (Table(self.num_dims), SortedRows())
        results, by_loss = self.by_budget[budget]
        by_loss.add(results.add(vector, budget, loss), loss)
        if budget in self.latest_at:
            self.latest_at[budget].count_result(loss)
        key = vector.tobytes()
        row = self._rows_of_configs.get(key)
        if row is None:
            self._rows_of_configs[key] = row = self.latest.add(vector, budget, loss)
            self._place(row, budget, loss)
            return None
        before = float(self.latest.budgets[row]), float(self.latest.losses[row])
        if budget >= before[0]:
            self.latest_at[before[0]].remove(row, before[1])
            self.latest.budgets[row], self.latest.losses[row] = budget, loss
            self._place(row, budget, loss)
        return before

    def _place(self, row: int, budget: float, loss: float) -> None:
        better = int(np.searchsorted(self.by_budget[budget][1].losses, loss, "left"))  # ties count for it
        self.latest_at.setdefault(budget, SortedRows(counted=True)).add(row, loss, better)

    def ranked_at(self, budget: float) -> np.ndarray:
        """The rows of ``budget``'s results, best first: by loss (failures last), then row."""
        return self.by_budget[budget][1].rows.copy()

    def ranked_latest(self, rule: str | None = None, promotion_fraction: float = 1.0) -> np.ndarray:
        """Rows of ``latest``, best first: finite losses before failures, then by the key of
        ``rule`` (smaller first), then larger budgets, then loss, then row. ``rule``: ``None`` (no key);
        ``"promoted"``: whether successive halving would not promote the row, its loss at its budget
        outside the best ``promotion_fraction`` of the results there (ties count for it);
        ``"quantile"``: the quantile of its loss among the results at its budget,
        ``(better + 1/2) / results``."""
        runs = []
        for budget in sorted(self.latest_at):
            rows, count = self.latest_at[budget], self.by_budget[budget][0].count
            keys = np.zeros(rows.count) if rule is None else _keys(rows, count, rule, promotion_fraction)
            runs.append((rows.rows, keys, int(np.searchsorted(rows.losses, math.inf))))
        finite = merged([(rows[:cut], keys[:cut]) for rows, keys, cut in runs])
        failed = merged([(rows[cut:], keys[cut:]) for rows, keys, cut in runs])
        return np.concatenate([finite, failed])


def _keys(rows: SortedRows, count: int, rule: str, promotion_fraction: float) -> np.ndarray:
    """Per row of one budget, in its order: the key of ``rule`` against that budget's ``count`` results."""
    if rule == "quantile":
        return (rows.better + 0.5) / count
    places = max(1, math.ceil(promotion_fraction * count))
    return (~((rows.better < places) & np.isfinite(rows.losses))).astype(float)


def merged(runs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The rows of several budgets in one order: by key (smaller first), then larger budget, each
    budget's own order kept. ``runs``: per budget, smallest budget first, its rows and their keys,
    the keys non-decreasing. A stable sort of the runs put end to end, largest budget first, is that
    merge (and numpy's stable sort finds the sorted runs: near linear time)."""
    if not runs:
        return np.empty(0, dtype=np.intp)
    rows = np.concatenate([run_rows for run_rows, _ in reversed(runs)])
    keys = np.concatenate([run_keys for _, run_keys in reversed(runs)])
    return rows[np.argsort(keys, kind="stable")]
