"""When evaluations fail, the user is told at once and why; when none succeeds, the run says so,
the README's snippet still prints something, and ``python -m mpibohb run`` exits non-zero."""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import ConfigSpace as CS
import pytest
from cli_in_process import run_cli
from mpi_launch import mpiexec, run_command

from mpibohb import BOHB, Worker, load_result
from mpibohb.runner import EXIT_NO_SUCCESS

TYPO_WORKER = textwrap.dedent("""
    import ConfigSpace as CS
    from mpibohb import Worker

    class TypoWorker(Worker):
        def compute(self, config, budget, **kwargs):
            return {"loss": (config["y"] - 0.3) ** 2 + 1 / budget}  # the space has x, not y

        @staticmethod
        def get_configspace():
            return CS.ConfigurationSpace({"x": (0.0, 1.0)})
""")


class Typo(Worker):
    def compute(self, config, budget, **kwargs):
        return {"loss": (config["y"] - 0.3) ** 2 + 1 / budget}  # the space has x, not y


def x_space() -> CS.ConfigurationSpace:
    return CS.ConfigurationSpace({"x": (0.0, 1.0)})


def all_failing_run(caplog: pytest.LogCaptureFixture, **kwargs) -> tuple:
    with caplog.at_level(logging.WARNING, logger="mpibohb"):
        result = BOHB(configspace=x_space(), min_budget=9, max_budget=243, eta=3, seed=1, **kwargs).run(
            n_iterations=4, worker=Typo())
    return result, [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_first_failures_are_logged_with_the_error_and_where_it_ran(caplog):
    result, warnings = all_failing_run(caplog)
    assert len(result.failed_runs()) == len(result.get_all_runs()) == 69
    in_full = [w for w in warnings if w.startswith("run (")]
    assert len(in_full) == 3  # then summaries, not 69 lines
    assert all(" failed on serial@" in w and ": KeyError: 'y' (File " in w and __file__ in w and "in compute" in w
               for w in in_full), in_full
    assert "further failures are summarised" in in_full[-1] and "res.failed_runs()" in in_full[-1]
    summaries = [w for w in warnings if " more runs failed " in w]
    assert summaries and sum(int(w.split()[0]) for w in summaries) == 69 - 3
    assert all("most often KeyError: 'y'" in w for w in summaries)
    assert warnings[-1] == ("no evaluation succeeded: all 69 runs failed, most often with KeyError: 'y' (69 times); "
                            "there is no incumbent (see res.failed_runs())")


def test_with_a_run_dir_the_warnings_name_the_report_command(caplog, tmp_path):
    _, warnings = all_failing_run(caplog, run_dir=tmp_path / "run")
    assert f"python -m mpibohb report {tmp_path / 'run'}" in warnings[-1]


def test_each_new_type_of_error_is_logged_once_in_full_and_a_run_with_successes_ends_quietly(caplog):
    def sometimes(config, budget):
        if config["x"] < 0.5:
            raise ValueError(f"x too small: {config['x']:.4f}")  # a message that varies
        if config["x"] > 0.9:
            raise MemoryError("too big")
        return config["x"]

    with caplog.at_level(logging.WARNING, logger="mpibohb"):
        result = BOHB(configspace=x_space(), min_budget=9, max_budget=243, seed=1).run(n_iterations=4,
                                                                                        worker=sometimes)
    warnings = [r.getMessage() for r in caplog.records]
    in_full = [w for w in warnings if w.startswith("run (")]
    types = [w.split(": ", 1)[1].split(":")[0] for w in in_full]
    assert set(types) == {"ValueError", "MemoryError"} and len(in_full) == 3 + (types[:3].count("MemoryError") == 0)
    assert len(result.failed_runs()) > len(in_full)
    summaries = [w for w in warnings if " more runs failed " in w]
    # counted by type: the varying messages are one error, shown by its latest message
    assert any("most often ValueError (" in w and " times; the last: ValueError: x too small: 0." in w
               for w in summaries), summaries
    assert not any("no evaluation succeeded" in w for w in warnings)


def test_the_readme_snippet_prints_the_error_when_no_evaluation_succeeded(caplog):
    res, _ = all_failing_run(caplog)
    # the README's "Use" snippet, on rank 0:
    best = res.get_incumbent_id()
    shown = res.get_id2config_mapping()[best]["config"] if best else res.failed_runs()[0].error_logs
    assert best is None and shown.startswith("KeyError on serial@") and "config[\"y\"]" in shown
    with pytest.raises(KeyError, match="no evaluation succeeded"):  # HpBandSter's id2config[inc_id], unchanged
        res.get_id2config_mapping()[res.get_incumbent_id()]


@pytest.mark.processes  # a new interpreter's logging
def test_without_logging_configured_the_warnings_reach_stderr(tmp_path):
    (tmp_path / "typo_worker.py").write_text(TYPO_WORKER)
    script = tmp_path / "run.py"
    script.write_text("from mpibohb import BOHB\nfrom typo_worker import TypoWorker as W\n"
                      "BOHB(configspace=W.get_configspace(), min_budget=1, max_budget=9, seed=1).run(1, W())\n")
    finished = run_command([sys.executable, str(script)], timeout=120, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "failed on serial@" in finished.stderr and "KeyError: 'y'" in finished.stderr
    assert "no evaluation succeeded: all 13 runs failed" in finished.stderr


@pytest.mark.parametrize("ranks", [None, pytest.param(3, marks=pytest.mark.mpiexec)])
def test_the_command_line_run_exits_non_zero_when_no_evaluation_succeeded(tmp_path, ranks):
    (tmp_path / "typo_worker.py").write_text(TYPO_WORKER)
    run_dir = tmp_path / "run"
    arguments = ["run", "--worker", f"{tmp_path / 'typo_worker.py'}:TypoWorker", "--min-budget", "1",
                 "--max-budget", "9", "--n-iterations", "2", "--run-dir", str(run_dir), "--quiet"]
    if ranks is None:
        finished = run_cli(*arguments)
    else:
        finished = run_command([mpiexec(), "-n", str(ranks), sys.executable, "-m", "mpibohb", *arguments], timeout=120)
    assert finished.returncode == EXIT_NO_SUCCESS == 3, finished.stderr[-3000:]
    assert "finished: 19 runs, none succeeded" in finished.stderr
    assert "no evaluation succeeded: all 19 runs failed, most often with KeyError: 'y' (19 times)" in finished.stderr
    assert "incumbent None" not in finished.stdout
    assert len(load_result(run_dir).failed_runs()) == 19
    assert Path(run_dir / "journal.jsonl").exists()
