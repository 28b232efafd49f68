"""Growable columns: rows appended, inserted and removed in place, as a list of rows would be."""

from __future__ import annotations

import numpy as np
import pytest

from mpibohb.samplers.columns import Columns


@pytest.mark.parametrize("seed", range(20))
def test_random_inserts_and_removals_match_a_list_of_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    columns = Columns(np.empty((1, 3)), np.empty(1, dtype=np.intp))  # length 1: growth at once
    oracle: list[tuple[np.ndarray, int]] = []
    for step in range(300):
        if oracle and rng.random() < 0.4:
            at = int(rng.integers(len(oracle)))
            columns.remove(at)
            del oracle[at]
        else:
            at = int(rng.integers(len(oracle) + 1))
            vector = rng.random(3)
            columns.insert(at, vector, step)
            oracle.insert(at, (vector, step))
        assert columns.count == len(oracle)
    assert np.array_equal(columns.column(0), np.array([vector for vector, _ in oracle]).reshape(-1, 3))
    assert columns.column(1).tolist() == [step for _, step in oracle]


def test_append_returns_the_row_and_a_column_is_a_view_whose_writes_stay() -> None:
    columns = Columns(np.empty(2), np.empty(2))
    assert [columns.append(float(i), 10.0 * i) for i in range(5)] == [0, 1, 2, 3, 4]
    columns.column(1)[2] = -1.0
    assert columns.column(1).tolist() == [0.0, 10.0, -1.0, 30.0, 40.0]


def test_bad_rows_are_refused_by_name() -> None:
    columns = Columns(np.empty(4), np.empty(4))
    with pytest.raises(ValueError, match="2 values, got 1"):
        columns.insert(0, 1.0)
    with pytest.raises(IndexError, match="row 1 is outside 0..0"):
        columns.insert(1, 1.0, 2.0)
    with pytest.raises(IndexError, match="row 0 is outside"):
        columns.remove(0)
    with pytest.raises(ValueError, match="one length"):
        Columns(np.empty(4), np.empty(3))
