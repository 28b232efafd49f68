"""A run directory written by HpBandSter's ``json_result_logger`` (``configs.json`` and
``results.json``, no journal) loads as a ``Result`` and warm-starts a run.

``tests/data/hpbandster_run`` is a real HpBandSter 0.7.4 run; its ``expected.json`` is what
HpBandSter's own ``logged_results_to_HBS_result`` read from it (see its ``make.py``).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import ConfigSpace as CS
import pytest

from mpibohb import BOHB, load_result
from mpibohb.journal import JOURNAL, JournalError, read_journal
from mpibohb.result import result_from_hpbandster_logs

DATA = Path(__file__).parent / "data" / "hpbandster_run"
EXPECTED = json.loads((DATA / "expected.json").read_text())


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    """A copy of the HpBandSter run's two log files, to damage."""
    for name in ("configs.json", "results.json"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


def run_key(config_id, budget, loss, info, time_stamps, error_logs) -> tuple:
    return (tuple(config_id), budget, loss, json.dumps(info, sort_keys=True),
            json.dumps(time_stamps, sort_keys=True), error_logs)


def test_loads_what_hpbandster_reads():
    result = load_result(DATA)
    assert result.HB_config == EXPECTED["HB_config"]
    assert result.time_ref == EXPECTED["HB_config"]["time_ref"]
    assert len(result.get_all_runs()) == EXPECTED["n_runs"] == 20
    assert list(result.get_incumbent_id()) == EXPECTED["incumbent"]
    assert result.num_iterations() == EXPECTED["num_iterations"]
    got = sorted(run_key(r.config_id, r.budget, r.loss, r.info, r.time_stamps, r.error_logs)
                 for r in result.get_all_runs())
    assert got == sorted(run_key(**run) for run in EXPECTED["runs"])
    mapping = result.get_id2config_mapping()
    assert [[list(cid), entry] for cid, entry in mapping.items()] == EXPECTED["id2config"]
    trajectory = result.get_incumbent_trajectory()
    assert dict(trajectory, config_ids=[list(c) for c in trajectory["config_ids"]]) == EXPECTED["trajectory"]


def test_failed_runs_and_model_picks_come_through():
    result = load_result(DATA)
    failed = result.failed_runs()
    assert len(failed) == 2
    assert all(r.loss is None and r.info is None and "ValueError: diverged" in r.error_logs for r in failed)
    picks = [entry["config_info"]["model_based_pick"] for entry in result.get_id2config_mapping().values()]
    assert any(picks) and not all(picks)


def test_runs_in_the_order_they_finished():
    runs = load_result(DATA).get_all_runs()
    finished = [r.time_stamps["finished"] for r in runs]
    assert finished == sorted(finished)
    assert runs[0].time_stamps["submitted"] == 0.0


def x_space() -> CS.ConfigurationSpace:
    return CS.ConfigurationSpace({"x": (0.0, 1.0)})


def toy_loss(config: dict, budget: float) -> float:
    return (config["x"] - 0.3) ** 2 + 1.0 / budget


def model_picks(result, first: int) -> int:
    """Model-based picks among a run's first configurations."""
    mapping = result.get_id2config_mapping()
    return sum(mapping[(0, 0, index)]["config_info"]["model_based_pick"] for index in range(first))


# a cold 1-d model needs this many results: 2 (d + 1) for HpBandSter's, d + 1 for tpe
@pytest.mark.parametrize(("model", "cold_start"), [("hpbandster", 4), ("tpe", 2)])
def test_warm_start_from_an_hpbandster_directory(tmp_path, model, cold_start):
    cold = BOHB(x_space(), min_budget=1, max_budget=9, eta=3, seed=2, model=model).run(n_iterations=1, worker=toy_loss)
    warm = BOHB(x_space(), min_budget=1, max_budget=9, eta=3, seed=2, model=model, run_dir=tmp_path / "warm").run(
        n_iterations=1, worker=toy_loss, previous_result=DATA)
    assert model_picks(cold, cold_start) == 0
    assert model_picks(warm, cold_start) >= 2
    observations = read_journal(tmp_path / "warm" / JOURNAL)[0]["warm_start"]
    expected = sorted((run["budget"], run["loss"] is None) for run in EXPECTED["runs"])
    assert sorted((budget, loss is None) for _, budget, loss in observations) == expected


def test_a_torn_last_line_is_dropped(copied, caplog):
    results = copied / "results.json"
    text = results.read_text()
    results.write_text(text[: text.rstrip("\n").rfind("\n") + 40])  # killed while writing the last line
    with caplog.at_level(logging.WARNING, logger="mpibohb"):
        result = load_result(copied)
    assert len(result.get_all_runs()) == EXPECTED["n_runs"] - 1
    assert "torn last line" in caplog.text


@pytest.mark.parametrize(("name", "number", "line", "message"), [
    ("results.json", 5, "garbage", r"results\.json:5: not a JSON record"),
    ("results.json", 3, "[[0, 0, 1], 1.0]", r"results\.json:3: not a line of HpBandSter's json_result_logger"),
    ("configs.json", 4, '[[0, 0], {"x": 0.5}, {}]', r"configs\.json:4: .*a config_id is three integers"),
])
def test_a_bad_line_is_named_by_file_and_line(copied, name, number, line, message):
    path = copied / name
    lines = path.read_text().splitlines()
    lines[number - 1] = line
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(JournalError, match=message):
        load_result(copied)


def test_results_of_configurations_that_configs_json_lacks_are_left_out_with_a_warning(copied, caplog):
    """HpBandSter's logger can leave results whose configuration configs.json lacks (its issue
    #68, where HpBandSter's own reader raises KeyError); the rest of the run still reads."""
    path = copied / "results.json"
    lines = path.read_text().splitlines()
    lines[1] = '[[7, 0, 0], 1.0, {"submitted": 1, "started": 1, "finished": 2}, null, "x"]'
    lines.append('[[7, 0, 1], 3.0, {"submitted": 1, "started": 1, "finished": 2}, {"loss": 0.1, "info": {}}, null]')
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="mpibohb"):
        result = load_result(copied)
    assert len(result.get_all_runs()) == EXPECTED["n_runs"] - 1
    assert all(run.config_id[0] != 7 for run in result.get_all_runs())
    assert "results.json: 2 results of configurations that configs.json does not hold were left out (the first " \
           "at line 2, of [7, 0, 0])" in caplog.text


def test_logs_that_a_run_writes_while_they_are_read_read_whole(copied, monkeypatch):
    """A writer adds a configuration, then its result. Between the reader's two files it adds both:
    results.json read first misses the result; read second, the result would lack its configuration."""
    import mpibohb.result

    read = mpibohb.result._read_logged_lines
    writes = iter([True])

    def read_while_a_run_writes(path, parse):
        lines = read(path, parse)
        if next(writes, False):
            with open(copied / "configs.json", "a") as configs:
                configs.write('[[9, 0, 0], {"x": 0.5}, {"model_based_pick": false}]\n')
            with open(copied / "results.json", "a") as results:
                results.write('[[9, 0, 0], 1.0, {"submitted": 1795864500.0, "started": 1795864500.0, '
                              '"finished": 1795864501.0}, {"loss": 1.0, "info": {}}, null]\n')
        return lines

    monkeypatch.setattr(mpibohb.result, "_read_logged_lines", read_while_a_run_writes)
    assert len(load_result(copied).get_all_runs()) == EXPECTED["n_runs"]


def test_neither_journal_nor_hpbandster_logs(tmp_path):
    (tmp_path / "configs.json").write_text("")  # one of the two is not enough
    with pytest.raises(JournalError, match=r"no journal at .*journal\.jsonl .*configs\.json and results\.json"):
        load_result(tmp_path)


def test_a_run_without_results_yet(copied):
    (copied / "results.json").write_text("")
    result = load_result(copied)
    assert result.get_all_runs() == [] and len(result.id2config) == 15
    assert result.HB_config["budgets"] == [] and result.time_ref is None


def test_mpibohb_logs_read_as_hpbandster_logs_agree_with_the_journal():
    """mpibohb writes the same two files next to its journal: read as HpBandSter's, they agree."""
    run_dir = DATA.parent / "run_v1"
    journal, logs = load_result(run_dir), result_from_hpbandster_logs(run_dir)

    def runs(result):
        return sorted((r.config_id, r.budget, repr(r.loss), r.error_logs, r.time_stamps["finished"] + result.time_ref)
                      for r in result.get_all_runs())

    for from_logs, from_journal in zip(runs(logs), runs(journal), strict=True):
        assert from_logs[:4] == from_journal[:4]
        assert from_logs[4] == pytest.approx(from_journal[4], abs=1e-6)  # the same absolute time
    assert logs.get_id2config_mapping() == journal.get_id2config_mapping()
    assert logs.HB_config["budgets"] == journal.HB_config["budgets"]


def test_a_nan_or_non_numeric_logged_loss_is_a_failed_run(copied):
    # HpBandSter logged whatever compute returned (json writes NaN as NaN); mpibohb counts such a
    # run as failed everywhere, so the incumbent and a warm start never see it.
    results = copied / "results.json"
    lines = results.read_text().splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps([first[0], first[1], first[2], {"loss": float("nan"), "info": None}, None])
    lines[1] = lines[1].replace('"loss": ', '"loss": "abc", "was": ', 1)
    results.write_text("\n".join(lines) + "\n")
    runs = load_result(copied).get_all_runs()
    assert runs[0].loss is None
    assert runs[0].error_logs == "InvalidResultError: the logged loss nan is not a finite number"
    assert runs[1].loss is None and "the logged loss 'abc'" in runs[1].error_logs
    assert len(load_result(copied).failed_runs()) == len(load_result(DATA).failed_runs()) + 2


# ---------------------------------------------------------------- a run never writes over HpBandSter's logs


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (names and bytes)."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def logged_copy(tmp_path: Path) -> Path:
    """A copy of the whole HpBandSter run directory (its logs and the files beside them)."""
    return Path(shutil.copytree(DATA, tmp_path / "hpbandster_run"))


@pytest.mark.parametrize("how", ["new", "resume", "result_logger"])
def test_a_run_is_refused_in_a_directory_of_hpbandster_logs_and_leaves_it_as_it_was(logged_copy, how):
    from mpibohb import json_result_logger

    before = snapshot(logged_copy)
    where = ({"result_logger": json_result_logger(directory=str(logged_copy), overwrite=False)}
             if how == "result_logger" else {"run_dir": logged_copy})
    optimizer = BOHB(x_space(), min_budget=1, max_budget=9, eta=3, seed=2, **where)
    with pytest.raises(FileExistsError) as refused:
        optimizer.run(n_iterations=1, worker=toy_loss, resume=how == "resume")
    message = str(refused.value)
    assert "configs.json and results.json of another run" in message
    assert f"previous_result={str(logged_copy)!r}" in message and "overwrite=True" in message
    assert snapshot(logged_copy) == before  # not a byte changed, no file added (not even a lock)
    assert len(load_result(logged_copy).get_all_runs()) == EXPECTED["n_runs"]


def test_warm_start_from_the_refused_directory_as_the_message_says(logged_copy, tmp_path):
    optimizer = BOHB(x_space(), min_budget=1, max_budget=9, eta=3, seed=2, run_dir=logged_copy)
    with pytest.raises(FileExistsError):
        optimizer.run(n_iterations=1, worker=toy_loss)
    warm = BOHB(x_space(), min_budget=1, max_budget=9, eta=3, seed=2, run_dir=tmp_path / "new").run(
        n_iterations=1, worker=toy_loss, previous_result=logged_copy)
    assert model_picks(warm, 4) >= 2
    assert len(read_journal(tmp_path / "new")[0]["warm_start"]) == EXPECTED["n_runs"]


def test_overwrite_replaces_hpbandster_logs_with_a_warning(logged_copy, caplog):
    with caplog.at_level(logging.WARNING, logger="mpibohb"):
        result = BOHB(x_space(), min_budget=1, max_budget=9, eta=3, seed=2, run_dir=logged_copy).run(
            n_iterations=1, worker=toy_loss, overwrite=True)
    assert "overwrite=True: replacing configs.json and results.json" in caplog.text
    assert load_result(logged_copy).get_all_runs() == result.get_all_runs()  # now our run, with its journal
    assert (logged_copy / "make.py").read_bytes() == (DATA / "make.py").read_bytes()  # other files stay


def test_only_one_of_the_two_logs_is_refused_too_and_empty_ones_are_not(tmp_path):
    (tmp_path / "one").mkdir()
    shutil.copy(DATA / "results.json", tmp_path / "one" / "results.json")
    with pytest.raises(FileExistsError, match="holds results.json of another run"):
        BOHB(x_space(), min_budget=1, max_budget=9, seed=2, run_dir=tmp_path / "one").run(1, toy_loss)
    (tmp_path / "empty").mkdir()
    for name in ("configs.json", "results.json"):  # nothing to lose
        (tmp_path / "empty" / name).write_text("")
    result = BOHB(x_space(), min_budget=1, max_budget=9, seed=2, run_dir=tmp_path / "empty").run(1, toy_loss)
    assert load_result(tmp_path / "empty").get_all_runs() == result.get_all_runs()


def test_the_command_line_run_which_always_resumes_is_refused_too(logged_copy):
    from cli_in_process import run_cli
    from mpi_launch import ROOT

    before = snapshot(logged_copy)
    finished = run_cli("run", "--worker", f"{ROOT / 'examples' / 'toy_worker.py'}:MyWorker", "--min-budget", "9",
                       "--max-budget", "243", "--n-iterations", "1", "--run-dir", str(logged_copy), "--quiet")
    assert finished.returncode == 2, finished.stderr[-3000:]
    assert "configs.json and results.json of another run" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert snapshot(logged_copy) == before
