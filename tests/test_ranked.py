"""The tpe model's results kept sorted as they arrive: the same ranks as sorting them all anew."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mpibohb.samplers.ranked import ResultTables, SortedRows, merged

BUDGETS = (1.0, 3.0, 9.0, 27.0)


def _lexsorted(losses: np.ndarray, budgets: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The ranking by a full sort: finite first, then key, then larger budget, then loss, then row."""
    return np.lexsort((np.arange(len(losses)), losses, -budgets, key, ~np.isfinite(losses)))


def _sorted_keys(tables: ResultTables, losses_at: dict[float, list[float]], key: str, fraction: float) -> np.ndarray:
    """Each configuration's key, computed as a sort of every budget's losses gives it."""
    n = tables.latest.count
    losses, budgets = tables.latest.losses[:n], tables.latest.budgets[:n]
    better = np.array([np.searchsorted(np.sort(losses_at[b]), loss, "left") for loss, b in zip(losses, budgets)])
    counts = np.array([len(losses_at[b]) for b in budgets])
    if key == "quantile":
        return (better + 0.5) / counts
    promotable = (better < np.maximum(1, np.ceil(fraction * counts))) & np.isfinite(losses)
    return (~promotable).astype(float)


def _results(seed: int, n: int) -> tuple[ResultTables, dict[float, list[float]]]:
    """Random results with many tied losses and failures; configurations come back at any budget,
    larger, equal or smaller than their largest so far."""
    rng = np.random.default_rng(seed)
    tables, losses_at, configs = ResultTables(2), {}, 0
    for _ in range(n):
        budget = float(rng.choice(BUDGETS))
        loss = math.inf if rng.random() < 0.15 else float(rng.integers(0, 6) / 5)  # ties within and across budgets
        if configs == 0 or rng.random() < 0.6:
            configs += 1
        config = int(rng.integers(0, configs))
        tables.add(np.full(2, float(config)), budget, loss)
        losses_at.setdefault(budget, []).append(loss)
    return tables, losses_at


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("key", [None, "promoted", "quantile"])
def test_latest_results_rank_as_a_full_sort_would(seed: int, key: str | None) -> None:
    tables, losses_at = _results(seed, n=int(np.random.default_rng(seed).integers(1, 300)))
    n = tables.latest.count
    expected_key = np.zeros(n) if key is None else _sorted_keys(tables, losses_at, key, 1 / 3)
    expected = _lexsorted(tables.latest.losses[:n], tables.latest.budgets[:n], expected_key)
    assert tables.ranked_latest(key, 1 / 3).tolist() == expected.tolist()


def test_latest_results_hold_each_configurations_largest_budget_and_latest_result_there() -> None:
    tables = ResultTables(1)
    for config, budget, loss in [(0, 1.0, 0.5), (0, 3.0, 0.4), (0, 1.0, 0.1), (0, 3.0, math.inf), (1, 9.0, 0.2)]:
        tables.add(np.array([float(config)]), budget, loss)
    assert tables.latest.count == 2
    assert (tables.latest.budgets[:2].tolist(), tables.latest.losses[:2].tolist()) == ([3.0, 9.0], [math.inf, 0.2])
    assert tables.ranked_latest().tolist() == [1, 0]


@pytest.mark.parametrize("seed", range(5))
def test_one_budgets_results_rank_by_loss_then_arrival(seed: int) -> None:
    tables, _ = _results(seed, 200)
    for budget, (results, _) in tables.by_budget.items():
        n = results.count
        expected = _lexsorted(results.losses[:n], results.budgets[:n], np.zeros(n))
        assert tables.ranked_at(budget).tolist() == expected.tolist()


def test_a_loss_that_is_neither_finite_nor_a_failure_is_refused() -> None:
    for loss in (math.nan, -math.inf):
        with pytest.raises(ValueError, match="finite or \\+inf"):
            ResultTables(1).add(np.zeros(1), 1.0, loss)


def test_sorted_rows_keep_order_through_insertions_and_removals() -> None:
    rng = np.random.default_rng(0)
    rows, kept = SortedRows(), {}
    for step in range(500):
        if kept and rng.random() < 0.3:
            row = int(rng.choice(list(kept)))
            rows.remove(row, kept.pop(row))
        else:
            kept[step] = float(rng.integers(0, 4)) if rng.random() < 0.9 else math.inf
            rows.add(step, kept[step])
        assert rows.rows.tolist() == sorted(kept, key=lambda row: (kept[row], row))
        assert rows.losses.tolist() == sorted(kept.values())


def test_removing_a_row_that_is_not_there_names_it() -> None:
    rows = SortedRows()
    rows.add(3, 0.5)
    with pytest.raises(KeyError, match="row 4 with loss 0.5"):
        rows.remove(4, 0.5)
    with pytest.raises(KeyError, match="row 3 with loss 0.7"):
        rows.remove(3, 0.7)


def test_a_tie_in_key_goes_to_the_larger_budget() -> None:
    order = merged([(np.array([10, 11]), np.array([0.0, 1.0])), (np.array([20, 21]), np.array([1.0, 2.0]))])
    assert order.tolist() == [10, 20, 11, 21]
