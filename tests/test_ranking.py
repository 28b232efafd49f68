"""BOHB's candidate pick: the lazy ranking against the full one, and partial KDE sums."""

from __future__ import annotations

import numpy as np
import pytest

from mpibohb.samplers.kde import MixedKDE
from mpibohb.samplers.ranking import LOG_FLOOR, SPLIT_MIN_POINTS, first_legal

KINDS = ("c", "c", "c", "u", "o")
LEVELS = (0, 0, 0, 3, 4)


def _data(rng: np.random.Generator, n: int, centre: float, spread: float) -> np.ndarray:
    """``n`` points, continuous ones around ``centre``; discrete columns uniformly at random."""
    continuous = np.clip(rng.normal(centre, spread, size=(n, 3)), 0.0, 1.0)
    return np.column_stack([continuous, rng.integers(0, 3, n), rng.integers(0, 4, n)]).astype(float)


def _models(seed: int, num_bad: int) -> tuple[MixedKDE, MixedKDE, np.ndarray]:
    """A good KDE near 0.3, a bad one spread out with its points in ascending distance from 0.3
    (as ``KDESampler.fit`` orders them by loss), and 64 candidates drawn from the good KDE."""
    rng = np.random.default_rng(seed)
    good = MixedKDE.fit(_data(rng, 300, 0.3, 0.1), KINDS, LEVELS)
    bad_data = _data(rng, num_bad, 0.5, 0.3)
    bad_data = bad_data[np.argsort(np.abs(bad_data[:, :3] - 0.3).sum(axis=1), kind="stable")]
    bad = MixedKDE.fit(bad_data, KINDS, LEVELS)
    return good, bad, good.sample(rng, 64, bandwidth_factor=3.0)


def _full_order(candidates: np.ndarray, good: MixedKDE, bad: MixedKDE) -> np.ndarray:
    """The ranking BOHB defines: stable argsort of the floored ``log g - log l`` over all bad points."""
    log_good = np.maximum(good.log_pdf(candidates, precise=False), LOG_FLOOR)
    log_bad = np.maximum(bad.log_pdf(candidates, precise=False), LOG_FLOOR)
    return np.argsort(log_bad - log_good, kind="stable")


class _Recorder:
    """An ``accept`` that refuses the indices in ``refused`` and records every call."""

    def __init__(self, refused: set[int]) -> None:
        self.refused, self.calls = refused, []

    def __call__(self, index: int) -> int | None:
        self.calls.append(index)
        return None if index in self.refused else index


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("num_refused", [0, 1, 5, 20])
def test_lazy_pick_is_the_full_rankings_first_accepted_candidate(seed: int, num_refused: int) -> None:
    good, bad, candidates = _models(seed, SPLIT_MIN_POINTS + 1000)
    order = _full_order(candidates, good, bad)
    refused = set(int(i) for i in order[:num_refused])  # the best ones are forbidden
    accept = _Recorder(refused)
    assert first_legal(candidates, good, bad, accept) == int(order[num_refused])
    assert accept.calls == [int(i) for i in order[: num_refused + 1]]


def test_lazy_pick_agrees_where_densities_fall_below_the_floor() -> None:
    """Candidates far out, where many densities are below 1e-32: the floor decides the order."""
    good, bad, _ = _models(7, SPLIT_MIN_POINTS)
    rng = np.random.default_rng(7)
    candidates = np.column_stack([rng.uniform(-1.5, 2.5, size=(64, 3)), rng.integers(0, 3, 64),
                                  rng.integers(0, 4, 64)]).astype(float)
    order = _full_order(candidates, good, bad)
    floored = np.maximum(bad.log_pdf(candidates, precise=False), LOG_FLOOR) == LOG_FLOOR
    assert 5 <= floored.sum() <= 59  # the floor is in play, for some candidates only
    for num_refused in (0, 10, 30):
        accept = _Recorder(set(int(i) for i in order[:num_refused]))
        assert first_legal(candidates, good, bad, accept) == int(order[num_refused])
        assert accept.calls == [int(i) for i in order[: num_refused + 1]]


def test_lazy_pick_sums_the_tail_for_few_candidates() -> None:
    """The point of the lazy ranking: most candidates never need the rest of the bad KDE."""
    good, bad, candidates = _models(3, 4 * SPLIT_MIN_POINTS)
    tail_rows = []
    original = bad.log_pdf

    def counting_log_pdf(points: np.ndarray, precise: bool = True, rows: slice | None = None) -> np.ndarray:
        if rows is not None and rows.start > 0:
            tail_rows.append(len(points))
        return original(points, precise, rows)

    bad.log_pdf = counting_log_pdf  # type: ignore[method-assign]
    assert first_legal(candidates, good, bad, lambda i: i) == int(_full_order(candidates, good, bad)[0])
    assert 1 <= sum(tail_rows) < len(candidates) // 2


def test_when_every_candidate_is_refused_each_is_offered_once_in_order() -> None:
    good, bad, candidates = _models(1, SPLIT_MIN_POINTS)
    accept = _Recorder(set(range(len(candidates))))
    assert first_legal(candidates, good, bad, accept) is None
    assert accept.calls == [int(i) for i in _full_order(candidates, good, bad)]


def test_small_bad_kde_is_ranked_in_one_go_exactly_as_the_full_formula() -> None:
    good, bad, candidates = _models(2, SPLIT_MIN_POINTS - 1)
    accept = _Recorder(set(int(i) for i in _full_order(candidates, good, bad)[:3]))
    first_legal(candidates, good, bad, accept)
    assert accept.calls == [int(i) for i in _full_order(candidates, good, bad)[:4]]


def test_floored_ties_keep_the_candidates_order() -> None:
    """Candidates far from both KDEs all score the floor difference; the lower index comes first."""
    good, bad, _ = _models(4, SPLIT_MIN_POINTS)
    far = np.tile([[5.0, 5.0, 5.0, 0.0, 0.0]], (6, 1))
    accept = _Recorder({0, 1})
    assert first_legal(far, good, bad, accept) == 2
    assert accept.calls == [0, 1, 2]


@pytest.mark.parametrize("precise", [True, False])
def test_partial_sums_over_disjoint_rows_add_up_to_the_whole(precise: bool) -> None:
    _, bad, candidates = _models(5, 3000)
    head = bad.log_pdf(candidates, precise, rows=slice(0, 1000))
    tail = bad.log_pdf(candidates, precise, rows=slice(1000, None))
    whole = bad.log_pdf(candidates, precise)
    assert np.all(head <= whole) and np.all(tail <= whole)
    np.testing.assert_allclose(np.logaddexp(head, tail), whole, rtol=0, atol=1e-9 if precise else 1e-5)


def test_partial_sums_reject_a_stepped_slice_and_give_minus_infinity_for_no_rows() -> None:
    _, bad, candidates = _models(6, 100)
    with pytest.raises(ValueError, match="step 1"):
        bad.log_pdf(candidates, rows=slice(0, 100, 2))
    assert np.all(bad.log_pdf(candidates, precise=False, rows=slice(50, 50)) == -np.inf)
