"""BOHB's candidate pick: the lazy ranking against the full one, and partial KDE sums."""

from __future__ import annotations

import math

import ConfigSpace as CS
import numpy as np
import pytest

from mpibohb.samplers import ranking
from mpibohb.samplers.hpbandster_kde import KDESampler, KDESettings
from mpibohb.samplers.kde import KDEParameters, MixedKDE
from mpibohb.samplers.ranking import LOG_FLOOR, SPLIT_MIN_POINTS, first_legal
from mpibohb.space import SearchSpace

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

    def counting_log_pdf(points: np.ndarray, precise: bool = True, data_rows: slice | None = None) -> np.ndarray:
        if data_rows is not None and data_rows.start > 0:
            tail_rows.append(len(points))
        return original(points, precise, data_rows)

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
    head = bad.log_pdf(candidates, precise, data_rows=slice(0, 1000))
    tail = bad.log_pdf(candidates, precise, data_rows=slice(1000, None))
    whole = bad.log_pdf(candidates, precise)
    assert np.all(head <= whole) and np.all(tail <= whole)
    np.testing.assert_allclose(np.logaddexp(head, tail), whole, rtol=0, atol=1e-9 if precise else 1e-5)


def test_partial_sums_reject_a_stepped_slice_and_give_minus_infinity_for_no_rows() -> None:
    _, bad, candidates = _models(6, 100)
    with pytest.raises(ValueError, match="step 1"):
        bad.log_pdf(candidates, data_rows=slice(0, 100, 2))
    assert np.all(bad.log_pdf(candidates, precise=False, data_rows=slice(50, 50)) == -np.inf)


def test_a_partial_sum_that_underflows_in_float32_is_recomputed_over_the_same_rows() -> None:
    """Ten data points at 0 and ten at 1, h = 0.08: at x = 1 the first ten's kernels are each
    exp(-78.125), their float32 sum below 1e-30, so the shifted path redoes those rows only."""
    data = np.array([[0.0]] * 10 + [[1.0]] * 10)
    kde = MixedKDE(KDEParameters(data, np.array([0.08]), ("c",), (0,)))
    expected = math.log(10) - 1 / (2 * 0.08**2)
    sums = kde.log_kernel_sums(np.array([[1.0]]), precise=False, data_rows=slice(0, 10))
    np.testing.assert_allclose(sums, [expected], rtol=0, atol=1e-6)


class _FakeKDE:
    """A stand-in with designed log-densities: candidate ``i`` (its point is ``[i]``) has
    ``head[i]`` over the first ``num_points // 8`` points and ``tail[i]`` over the rest."""

    def __init__(self, num_points: int, head: list[float], tail: list[float], splittable: bool = True) -> None:
        self.num_points, self.head, self.tail = num_points, np.array(head), np.array(tail)
        self.splittable = splittable
        self.calls: list[tuple[list[int], slice | None]] = []

    def log_pdf(self, points: np.ndarray, precise: bool = True, data_rows: slice | None = None) -> np.ndarray:
        indices = [int(i) for i in points[:, 0]]
        self.calls.append((indices, data_rows))
        if len(self.calls) > 100:
            raise RuntimeError("first_legal does not make progress")
        if data_rows is None:
            return np.logaddexp(self.head, self.tail)[indices]
        return (self.head if data_rows.start == 0 else self.tail)[indices]


def _candidates(count: int) -> np.ndarray:
    return np.arange(count, dtype=float)[:, None]


def test_a_bound_equal_to_an_exact_score_is_completed_before_that_score_is_offered() -> None:
    """Candidate 1's exact score equals candidate 0's bound; 0 has the lower index, so it must be
    completed (it could tie and come first) before 1 is offered."""
    tie = float(np.logaddexp(-2.0, -2.0))
    good = _FakeKDE(10, [0.0, 0.0], [-np.inf, -np.inf])
    bad = _FakeKDE(SPLIT_MIN_POINTS * 2, [tie, -2.0], [-5.0, -2.0])
    accept = _Recorder(set())
    assert first_legal(_candidates(2), good, bad, accept) == 1
    assert [indices for indices, _ in bad.calls] == [[0, 1], [1], [0]]


def test_head_and_tail_split_the_bad_points_without_gap_or_overlap() -> None:
    n = SPLIT_MIN_POINTS * 3 + 5
    bad = _FakeKDE(n, [-1.0, -3.0], [-1.0, -1.0])
    first_legal(_candidates(2), _FakeKDE(10, [0.0, 0.0], [-np.inf] * 2), bad, _Recorder(set()))
    slices = [rows for _, rows in bad.calls]
    assert slices[0] == slice(0, n // 8) and all(rows == slice(n // 8, n) for rows in slices[1:])


@pytest.mark.parametrize(("num_points", "splittable", "splits"),
                         [(SPLIT_MIN_POINTS - 1, True, False), (SPLIT_MIN_POINTS, True, True),
                          (SPLIT_MIN_POINTS * 4, False, False)])
def test_the_bad_kde_is_split_from_split_min_points_on_if_it_can_be(num_points: int, splittable: bool,
                                                                    splits: bool) -> None:
    bad = _FakeKDE(num_points, [-1.0, -3.0], [-1.0, -1.0], splittable)
    first_legal(_candidates(2), _FakeKDE(10, [0.0, 0.0], [-np.inf] * 2), bad, _Recorder(set()))
    assert bad.calls[0][1] == slice(0, num_points // 8 if splits else num_points)
    assert (len(bad.calls) > 1) == splits


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_nan_and_infinite_scores_come_last_and_every_candidate_is_offered_once() -> None:
    """A NaN or +inf bad density (a broken model, never BOHB's own) cannot stall the loop."""
    good = _FakeKDE(10, [0.0, -np.inf, 0.0, 0.0], [-np.inf] * 4)
    bad = _FakeKDE(SPLIT_MIN_POINTS, [np.nan, -3.0, np.inf, -2.0], [-np.inf, -1.0, -1.0, -1.0])
    accept = _Recorder({0, 1, 2, 3})
    assert first_legal(_candidates(4), good, bad, accept) is None
    assert accept.calls == [3, 1, 0, 2]


@pytest.mark.parametrize("seed", [0, 1])
def test_bohb_proposes_the_same_configurations_with_and_without_the_split(seed: int,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole sampler, 300 observations, 40 proposals: splitting at 16 points changes nothing."""
    def proposals() -> list[dict]:
        cs = CS.ConfigurationSpace(seed=seed)
        cs.add([CS.UniformFloatHyperparameter("x", 0.0, 1.0), CS.UniformFloatHyperparameter("y", 0.0, 1.0),
                CS.CategoricalHyperparameter("c", ["a", "b", "c"])])
        sampler = KDESampler(SearchSpace(cs), KDESettings(random_fraction=0.0, max_points_in_model=None))
        for config in cs.sample_configuration(300):
            loss = (config["x"] - 0.3) ** 2 + (config["y"] - 0.7) ** 2 + (config["c"] == "b") * 0.1
            sampler.observe(config.get_array(), 1.0, loss)
        rng = np.random.default_rng(seed)
        return [sampler.propose(1.0, rng).config for _ in range(40)]

    whole = proposals()
    monkeypatch.setattr(ranking, "SPLIT_MIN_POINTS", 16)
    assert proposals() == whole
