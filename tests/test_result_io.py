"""A run directory written and read back: the journal, HpBandSter's configs.json/results.json, and
the Result analysis added for HpBandSter users (learning curves, pandas data frames).

Every run here is real (BOHB, serial, seeded); the worker fails for some configurations.
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

import ConfigSpace as CS
import pytest

from mpibohb import BOHB, Result, load_result
from mpibohb.journal import JournalError
from mpibohb.result import extract_HB_learning_curves, extract_HBS_learning_curves

sys.path.insert(0, str(Path(__file__).parent / "data"))
from make_run_v1 import evaluate  # noqa: E402  the worker that made the fixture

FIXTURE_V1 = Path(__file__).parent / "data" / "run_v1"


def make_run(run_dir: Path, seed: int = 8, resume: bool = False) -> Result:
    """A finished BOHB run (1, 3, 9; three iterations) journaled in ``run_dir``."""
    space = CS.ConfigurationSpace({"x": (0.0, 1.0), "c": ["a", "b"]})
    return BOHB(space, min_budget=1, max_budget=9, eta=3, seed=seed, run_dir=run_dir).run(
        n_iterations=3, worker=evaluate, resume=resume)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """``(run_dir, Result returned by run)`` of a run with both kinds of failure."""
    run_dir = tmp_path_factory.mktemp("io") / "run"
    result = make_run(run_dir)
    errors = [r.error_logs.splitlines()[0] for r in result.failed_runs()]
    assert any(e.startswith("ValueError") for e in errors) and any("finite" in e for e in errors), errors
    return run_dir, result


def journal_lines(run_dir: Path) -> list[str]:
    """The journal's lines, each with its newline."""
    return (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)


def absolute(result: Result, seconds: float) -> float:
    """A time stamp of ``result`` as seconds since the epoch."""
    return seconds + result.settings["time_ref"]


# ---------------------------------------------------------------- journal round trip


def test_load_result_gives_the_runs_of_run(finished: tuple[Path, Result]) -> None:
    run_dir, ran = finished
    loaded = load_result(run_dir)
    assert loaded.time_ref == ran.time_ref is not None
    def fields(result: Result) -> list[tuple]:
        return [(r.config_id, r.budget, r.loss, r.info, r.error_logs, r.worker, r.time_stamps) for r in result.runs]

    assert fields(loaded) == fields(ran)
    assert loaded.get_id2config_mapping() == ran.get_id2config_mapping()
    assert loaded.get_incumbent_id() == ran.get_incumbent_id() is not None
    assert loaded.num_iterations() == ran.num_iterations() == 3
    assert loaded.settings == ran.settings


def test_load_result_gives_the_trajectory_of_run(finished: tuple[Path, Result]) -> None:
    run_dir, ran = finished
    trajectory = ran.get_incumbent_trajectory()
    assert len(trajectory["config_ids"]) >= 2
    assert load_result(run_dir).get_incumbent_trajectory() == trajectory


def test_time_ref_is_the_journal_creation_time(finished: tuple[Path, Result]) -> None:
    run_dir, _ = finished
    header = json.loads(journal_lines(run_dir)[0])
    loaded = load_result(run_dir)
    assert loaded.time_ref == header["created"] == loaded.HB_config["time_ref"]
    assert Result([], {}).time_ref is None


def test_a_torn_last_line_drops_only_that_record(finished: tuple[Path, Result], tmp_path: Path) -> None:
    run_dir, ran = finished
    lines = journal_lines(run_dir)
    result_lines = [i for i, line in enumerate(lines) if json.loads(line)["type"] == "result"]
    cut = result_lines[10]  # an 11th result, torn while it was written
    (tmp_path / "journal.jsonl").write_text("".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2])
    loaded = load_result(tmp_path)
    assert len(loaded.runs) == 10
    assert [(r.config_id, r.budget, r.loss, r.error_logs) for r in loaded.runs] == \
           [(r.config_id, r.budget, r.loss, r.error_logs) for r in ran.runs[:10]]


def test_a_resume_after_a_torn_last_line_keeps_the_journal_readable(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    make_run(run_dir)
    lines = journal_lines(run_dir)
    (run_dir / "journal.jsonl").write_text("".join(lines[:10]) + lines[10][:20])
    resumed = make_run(run_dir, resume=True)
    assert len(load_result(run_dir).runs) == len(resumed.runs) == 22


def test_a_corrupt_line_in_the_middle_raises_journal_error_with_its_number(
        finished: tuple[Path, Result], tmp_path: Path) -> None:
    run_dir, _ = finished
    lines = journal_lines(run_dir)
    lines[6] = lines[6][: len(lines[6]) // 2] + "\n"
    (tmp_path / "journal.jsonl").write_text("".join(lines))
    with pytest.raises(JournalError, match=r"journal\.jsonl:7: not a JSON record"):
        load_result(tmp_path)


# ---------------------------------------------------------------- HpBandSter's files


def test_configs_json_has_hpbandsters_line_format(finished: tuple[Path, Result]) -> None:
    run_dir, ran = finished
    lines = [json.loads(line) for line in (run_dir / "configs.json").read_text().splitlines()]
    assert len(lines) == len(ran.id2config)
    for line in lines:
        assert len(line) == 3
        config_id, config, config_info = line
        assert isinstance(config_id, list) and len(config_id) == 3 and all(type(i) is int for i in config_id)
        assert isinstance(config, dict) and isinstance(config_info, dict)
        assert ran.id2config[tuple(config_id)] == {"config": config, "config_info": config_info}


def test_results_json_has_hpbandsters_line_format(finished: tuple[Path, Result]) -> None:
    run_dir, ran = finished
    lines = [json.loads(line) for line in (run_dir / "results.json").read_text().splitlines()]
    assert len(lines) == len(ran.runs)
    for line, run in zip(lines, ran.runs):
        assert len(line) == 5
        config_id, budget, stamps, result, exception = line
        assert tuple(config_id) == run.config_id and type(budget) is float and budget == run.budget
        assert set(stamps) == {"submitted", "started", "finished"}
        assert stamps["submitted"] <= stamps["started"] <= stamps["finished"]
        assert stamps["started"] == pytest.approx(absolute(ran, run.time_stamps["started"]), abs=1e-5)
        assert stamps["started"] > 1e9  # absolute epoch times, as HpBandSter writes them
        if run.loss is None:
            assert result is None and exception == run.error_logs and exception
        else:
            assert result == {"loss": run.loss, "info": run.info} and type(result["loss"]) is float
            assert exception is None


class Datum:
    """HpBandSter's ``base_iteration.Datum``, as far as its reader uses it."""

    def __init__(self, config: dict[str, Any], config_info: Any) -> None:
        self.config, self.config_info = config, config_info
        self.time_stamps: dict[float, dict[str, float]] = {}
        self.results: dict[float, Any] = {}
        self.exceptions: dict[float, Any] = {}


def read_like_hpbandster(directory: Path) -> tuple[dict[tuple[int, ...], Datum], dict[str, Any]]:
    """What ``hpbandster.core.result.logged_results_to_HBS_result`` reads, step by step:
    ``(data by config id, HB_config)``, time stamps made relative to ``time_ref`` as its
    ``Result._merge_results`` does."""
    data: dict[tuple[int, ...], Datum] = {}
    time_ref, budget_set = float("inf"), set()
    with open(directory / "configs.json") as handle:
        for line in handle:
            line = json.loads(line)
            if len(line) == 3:
                config_id, config, config_info = line
            if len(line) == 2:
                config_id, config = line
                config_info = "N/A"
            data[tuple(config_id)] = Datum(config, config_info)
    with open(directory / "results.json") as handle:
        for line in handle:
            config_id, budget, time_stamps, result, exception = json.loads(line)
            datum = data[tuple(config_id)]
            datum.time_stamps[budget], datum.results[budget], datum.exceptions[budget] = time_stamps, result, exception
            budget_set.add(budget)
            time_ref = min(time_ref, time_stamps["submitted"])
    budgets = sorted(budget_set)
    hb_config = {"eta": None if len(budgets) < 2 else budgets[1] / budgets[0], "min_budget": min(budget_set),
                 "max_budget": max(budget_set), "budgets": budgets, "max_SH_iter": len(budget_set),
                 "time_ref": time_ref}
    for datum in data.values():
        for stamps in datum.time_stamps.values():
            for key in stamps:
                stamps[key] -= time_ref
    return data, hb_config


def check_hpbandster_reader_reproduces(directory: Path, expected: Result) -> None:
    """HpBandSter's reading of ``directory`` gives the runs, configs and incumbent of ``expected``."""
    data, hb_config = read_like_hpbandster(directory)
    assert hb_config["budgets"] == expected.settings["budgets"] and hb_config["eta"] == expected.settings["eta"]
    assert hb_config["time_ref"] >= expected.time_ref
    assert {cid: {"config": d.config, "config_info": d.config_info} for cid, d in data.items()} == expected.id2config
    runs = {(cid, budget): (d.results[budget], d.exceptions[budget], d.time_stamps[budget])
            for cid, d in data.items() for budget in d.results}
    assert len(runs) == len(expected.runs)
    for run in expected.runs:
        result, exception, stamps = runs[(run.config_id, run.budget)]
        assert (None if result is None else result["loss"]) == run.loss
        assert (None if result is None else result["info"]) == run.info
        assert exception == run.error_logs
        for key, value in stamps.items():
            assert value + hb_config["time_ref"] == pytest.approx(absolute(expected, run.time_stamps[key]), abs=1e-5)
    on_max = [(d.results[hb_config["max_budget"]]["loss"], cid) for cid, d in data.items()
              if d.results.get(hb_config["max_budget"]) is not None]
    assert min(on_max)[1] == expected.get_incumbent_id()


def test_hpbandster_reader_reproduces_our_runs(finished: tuple[Path, Result]) -> None:
    run_dir, ran = finished
    check_hpbandster_reader_reproduces(run_dir, ran)


def test_hpbandster_reader_accepts_two_field_config_lines(finished: tuple[Path, Result], tmp_path: Path) -> None:
    run_dir, ran = finished
    shutil.copy(run_dir / "results.json", tmp_path / "results.json")
    lines = [json.loads(line)[:2] for line in (run_dir / "configs.json").read_text().splitlines()]
    (tmp_path / "configs.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
    data, _ = read_like_hpbandster(tmp_path)
    assert {cid: d.config for cid, d in data.items()} == {cid: e["config"] for cid, e in ran.id2config.items()}
    assert {d.config_info for d in data.values()} == {"N/A"}


# ---------------------------------------------------------------- learning curves


def test_learning_curves_are_losses_by_increasing_budget(finished: tuple[Path, Result]) -> None:
    _, ran = finished
    curves = ran.get_learning_curves()
    assert set(curves) == set(ran.id2config)
    promoted = [cid for cid in ran.id2config if len(ran.get_runs_by_id(cid)) == 3
                and all(r.loss is not None for r in ran.get_runs_by_id(cid))]
    assert promoted
    for cid in promoted:
        losses = {r.budget: r.loss for r in ran.runs if r.config_id == cid}
        assert curves[cid] == [[(1.0, losses[1.0]), (3.0, losses[3.0]), (9.0, losses[9.0])]]


def test_learning_curves_leave_out_failed_runs_as_hpbandster_does(finished: tuple[Path, Result]) -> None:
    _, ran = finished
    failed = {r.config_id: r.budget for r in ran.failed_runs()}
    curves, with_failures = ran.get_learning_curves(), ran.get_learning_curves(extract_HB_learning_curves)
    for cid, budget in failed.items():
        successful = [(r.budget, r.loss) for r in ran.get_runs_by_id(cid) if r.loss is not None]
        assert curves[cid] == [successful]
        assert (budget, None) in with_failures[cid][0] and len(with_failures[cid][0]) == len(successful) + 1


def test_learning_curves_of_chosen_configs_with_own_extractor(finished: tuple[Path, Result]) -> None:
    _, ran = finished
    chosen = [list(cid) for cid in list(ran.id2config)[:2]]
    curves = ran.get_learning_curves(lambda runs: [r.budget for r in runs], config_ids=chosen)
    assert list(curves) == [tuple(cid) for cid in chosen]
    for cid, budgets in curves.items():
        assert budgets == sorted(r.budget for r in ran.runs if r.config_id == cid)
    assert extract_HBS_learning_curves([]) == [[]]


# ---------------------------------------------------------------- pandas


def test_pandas_dataframe_has_every_successful_run_with_its_own_budget(finished: tuple[Path, Result]) -> None:
    _, ran = finished
    df_x, df_y = ran.get_pandas_dataframe()
    assert sorted(df_x.columns) == ["budget", "c", "x"] and list(df_y.columns) == ["loss"]
    rows = [(row.x, row.c, row.budget, loss) for row, loss in zip(df_x.itertuples(), df_y["loss"])]
    expected = [(ran.id2config[cid]["config"]["x"], ran.id2config[cid]["config"]["c"], r.budget, r.loss)
                for cid in ran.id2config for r in ran.get_runs_by_id(cid) if r.loss is not None]
    assert rows == expected  # HpBandSter's order: by configuration, then budget
    assert len(rows) == len(ran.runs) - len(ran.failed_runs())


def test_pandas_dataframe_on_chosen_budgets_with_a_loss_function(finished: tuple[Path, Result]) -> None:
    _, ran = finished
    df_x, df_y = ran.get_pandas_dataframe(budgets=[9])
    on_max = [r for r in ran.runs if r.budget == 9.0 and r.loss is not None]
    assert "budget" not in df_x.columns and len(df_x) == len(df_y) == len(on_max)
    df_x, df_y = ran.get_pandas_dataframe(budgets=[3, 9], loss_fn=lambda r: -r.loss)
    upper = [r for r in ran.runs if r.budget in (3.0, 9.0) and r.loss is not None]
    assert sorted(df_y["loss"]) == sorted(-r.loss for r in upper)
    assert set(df_x["budget"]) == {3.0, 9.0}


def test_pandas_dataframe_says_how_to_install_pandas(finished: tuple[Path, Result],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _, ran = finished
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pandas.*pip install pandas") as raised:
        ran.get_pandas_dataframe()
    assert raised.value.name == "pandas"


# ---------------------------------------------------------------- a saved run of mpibohb 0.1.0


def test_saved_v1_run_keeps_loading() -> None:
    result = load_result(FIXTURE_V1)
    assert len(result.runs) == 22 and len(result.id2config) == 17 and result.num_iterations() == 3
    assert {b: sum(r.budget == b for r in result.runs) for b in (1.0, 3.0, 9.0)} == {1.0: 9, 3.0: 8, 9.0: 5}
    assert [(r.config_id, r.budget) for r in result.failed_runs()] == [((0, 0, 1), 1.0), ((0, 0, 2), 1.0),
                                                                        ((1, 0, 1), 3.0)]
    assert result.failed_runs()[2].error_logs.startswith("InvalidResultError")
    assert result.get_incumbent_id() == (0, 0, 3)
    loss = min(r.loss for r in result.get_runs_by_id((0, 0, 3)) if r.budget == 9.0)
    assert math.isclose(loss, 0.16667672714778992, rel_tol=1e-12)
    assert result.settings["seed"] == 8 and result.settings["budgets"] == [1.0, 3.0, 9.0]


def test_saved_v1_run_reads_like_hpbandster() -> None:
    check_hpbandster_reader_reproduces(FIXTURE_V1, load_result(FIXTURE_V1))


def test_saved_v1_fixture_stays_small() -> None:
    assert sum(path.stat().st_size for path in FIXTURE_V1.iterdir()) < 50_000


def test_a_result_pickled_before_it_had_a_warm_start_reads_with_an_empty_one() -> None:
    older = Result([], {}, {"eta": 3})
    del older.__dict__["warm_start"]  # as a Result of 7406269 or before was pickled
    unpickled = pickle.loads(pickle.dumps(older))
    assert unpickled == Result([], {}, {"eta": 3}) and "warm_start=[]" in repr(unpickled)
