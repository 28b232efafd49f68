"""``python -m mpibohb report|status`` on real run directories, called in-process
(``tests/cli_in_process.py``); the runs that are live, stopped by a signal or killed are
subprocesses.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import runpy
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ConfigSpace as CS
import pytest
from cli_in_process import CliCall, run_cli, run_cli_many

from mpibohb import BOHB, Result, load_result

REPO = Path(__file__).resolve().parent.parent
FIXTURE_V1 = REPO / "tests" / "data" / "run_v1"
MAKE_RUN = REPO / "tests" / "data" / "make_run_v1.py"
TIMEOUT = 180


def ok(process: CliCall) -> str:
    """The stdout of a call that must have succeeded."""
    assert process.returncode == 0 and "Traceback" not in process.stderr, process.stderr
    return process.stdout


def line_starting(text: str, prefix: str) -> str:
    """The one line of ``text`` that starts with ``prefix``."""
    found = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(found) == 1, (prefix, text)
    return found[0]


# ---------------------------------------------------------------- a finished run


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished run made by ``tests/data/make_run_v1.py``, its Result, and the outputs of
    report, report --json, status and status --json on it."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    runpy.run_path(str(MAKE_RUN))["main"](str(run_dir))
    report, report_json, status, status_json = run_cli_many(
        ["report", run_dir], ["report", run_dir, "--json"], ["status", run_dir], ["status", "--json", run_dir])
    return {"run_dir": run_dir, "result": load_result(run_dir), "report": ok(report), "status": ok(status),
            "report_json": json.loads(ok(report_json)), "status_json": json.loads(ok(status_json))}


def test_report_names_the_incumbent(finished: dict[str, Any]) -> None:
    result: Result = finished["result"]
    incumbent = result.get_incumbent_id()
    loss = min(r.loss for r in result.get_runs_by_id(incumbent) if r.budget == 9.0)
    line = line_starting(finished["report"], "incumbent:")
    assert line == f"incumbent: {incumbent}, loss {loss:.6g} at budget 9"
    config = result.id2config[incumbent]["config"]
    assert line_starting(finished["report"], "  config:") == f"  config: {json.dumps(config, sort_keys=True)}"


def test_report_counts_runs_per_budget(finished: dict[str, Any]) -> None:
    result: Result = finished["result"]
    text = finished["report"]
    assert text.splitlines()[0] == f"run {finished['run_dir']}: finished"
    assert line_starting(text, "runs:") == f"runs: {len(result.runs)} ({len(result.failed_runs())} failed)"
    assert "optimizer: bohb (model hpbandster), budgets 1, 3, 9 (eta 3), seed 8, 1 worker" in text
    for budget in (1.0, 3.0, 9.0):
        runs = [r for r in result.runs if r.budget == budget]
        failed = sum(r.loss is None for r in runs)
        best = min(r.loss for r in runs if r.loss is not None)
        row = [line.split() for line in text.splitlines() if line.split()[:1] == [f"{budget:g}"]]
        assert row == [[f"{budget:g}", str(len(runs)), str(len(runs)), str(failed), f"{best:.6g}"]]
    used = sum(r.budget for r in result.runs)
    assert line_starting(text, "budget used:") == f"budget used: {used:g} = {used / 9:.4g} x max_budget (9)"


def test_report_lists_failures_with_their_first_error_line(finished: dict[str, Any]) -> None:
    result: Result = finished["result"]
    text = finished["report"]
    failed = result.failed_runs()
    assert line_starting(text, "failures:") == f"failures: {len(failed)}"
    for run in failed:
        first = run.error_logs.splitlines()[0]
        assert f"  {run.config_id} at budget {run.budget:g}: {first}" in text.splitlines()
    assert "Traceback" not in text


TRAJECTORY_HEADING = ("incumbent trajectory (the best on the largest budget with a usable result: a larger "
                      "budget, or the incumbent failing on one, may bring a worse loss):")


def test_report_shows_the_trajectory(finished: dict[str, Any]) -> None:
    trajectory = finished["result"].get_incumbent_history()
    points = list(zip(trajectory["config_ids"], trajectory["times_finished"], trajectory["budgets"],
                      trajectory["losses"]))
    *changes, (last_id, last_time, last_budget, last_loss) = points
    # HpBandSter's trajectory repeats the last incumbent at the time of the last finished run
    assert (last_id, last_budget, last_loss) == (changes[-1][0], changes[-1][2], changes[-1][3])
    lines = finished["report"].splitlines()
    start = lines.index(TRAJECTORY_HEADING) + 2
    expected = [f"{t:.3f} {b:g} {x:.6g} {c}" + ("  (larger budget)" if i and b > changes[i - 1][2] else "")
                for i, (c, t, b, x) in enumerate(changes)]
    assert [" ".join(line.split(maxsplit=3)) for line in lines[start:-1]] == expected  # each change once
    assert any("(larger budget)" in line for line in expected)  # the run reaches larger budgets
    assert lines[-1] == f"  (still the incumbent when the last run finished, at {last_time:.3f} s)"


def test_report_json_has_the_same_information(finished: dict[str, Any]) -> None:
    result: Result = finished["result"]
    report = finished["report_json"]
    assert report["state"] == "finished" and report["sessions"] == 1 and report["n_iterations"] == 3
    settings = report["settings"]
    assert (settings["optimizer"], settings["budgets"], settings["eta"], settings["seed"], settings["n_workers"]) == \
           ("bohb", [1.0, 3.0, 9.0], 3, 8, 1)
    assert (report["runs"], report["failed"], report["configurations"], report["iterations"]) == \
           (len(result.runs), len(result.failed_runs()), len(result.id2config), 3)
    assert [(row["budget"], row["runs"], row["failed"]) for row in report["budgets"]] == \
           [(b, sum(r.budget == b for r in result.runs), sum(r.budget == b and r.loss is None for r in result.runs))
            for b in (1.0, 3.0, 9.0)]
    assert [(tuple(f["config_id"]), f["budget"], f["error"]) for f in report["failures"]] == \
           [(r.config_id, r.budget, r.error_logs.splitlines()[0]) for r in result.failed_runs()]
    used = sum(r.budget for r in result.runs)
    assert report["budget_used"] == used and report["budget_used_in_max_budget"] == pytest.approx(used / 9)
    incumbent = result.get_incumbent_id()
    assert report["incumbent"] == {
        "config_id": list(incumbent), "budget": 9.0, "config": result.id2config[incumbent]["config"],
        "loss": min(r.loss for r in result.get_runs_by_id(incumbent) if r.budget == 9.0)}
    trajectory = result.get_incumbent_trajectory()
    assert [(tuple(p["config_id"]), p["budget"], p["loss"]) for p in report["trajectory"]] == \
           list(zip(trajectory["config_ids"], trajectory["budgets"], trajectory["losses"]))


def test_status_of_a_finished_run(finished: dict[str, Any]) -> None:
    result: Result = finished["result"]
    records = [json.loads(line) for line in (finished["run_dir"] / "journal.jsonl").read_text().splitlines()]
    status = finished["status_json"]
    best = min(r.loss for r in result.runs if r.loss is not None)
    assert (status["state"], status["finished"], status["running"], status["failed"], status["best_loss"]) == \
           ("finished", len(result.runs), 0, len(result.failed_runs()), best)
    assert status["elapsed"] == pytest.approx(records[-1]["time"] - records[0]["created"])
    text = finished["status"].splitlines()
    assert text[0] == f"run {finished['run_dir']}: finished"
    failed = len(result.failed_runs())
    assert text[2] == f"runs: {len(result.runs)} finished ({len(result.runs) - failed} successful, {failed} failed), " \
                      "0 unfinished"
    assert text[3].startswith(f"best loss so far: {best:.6g} by ")


def test_help_lists_the_commands() -> None:
    process = run_cli("--help")
    text = ok(process)
    assert "report" in text and "status" in text and text.startswith("usage: mpibohb")


# ---------------------------------------------------------------- the saved run and a run with many failures


def test_report_on_the_saved_v1_run() -> None:
    report, as_json = run_cli_many(["report", FIXTURE_V1], ["report", "--json", FIXTURE_V1])
    assert line_starting(ok(report), "incumbent:") == "incumbent: (0, 0, 3), loss 0.166677 at budget 9"
    assert line_starting(report.stdout, "runs:") == "runs: 22 (3 failed)"
    summary = json.loads(ok(as_json))
    assert (summary["runs"], summary["failed"], summary["incumbent"]["config_id"]) == (22, 3, [0, 0, 3])


def always_fails(config: dict[str, Any], budget: float) -> float:
    """A worker whose every evaluation fails."""
    raise RuntimeError(f"out of memory at budget {budget:g}\nsecond line")


def test_report_of_a_run_where_everything_failed(tmp_path: Path) -> None:
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    result = BOHB(space, min_budget=1, max_budget=9, eta=3, seed=2, run_dir=tmp_path / "run").run(
        n_iterations=3, worker=always_fails)
    assert len(result.failed_runs()) > 10
    text, as_json = run_cli_many(["report", tmp_path / "run"], ["report", "--json", tmp_path / "run"])
    lines = ok(text).splitlines()
    shown = [line for line in lines if "RuntimeError" in line]
    assert len(shown) == 10
    assert all(re.fullmatch(r"  \(\d, 0, \d+\) at budget (\d): RuntimeError on \S+: out of memory at budget \1", line)
               for line in shown), shown
    assert f"  ... and {len(result.failed_runs()) - 10} more" in lines
    assert "incumbent: none (no run succeeded yet)" in lines
    summary = json.loads(ok(as_json))
    assert summary["incumbent"] is None and summary["trajectory"] == []
    assert len(summary["failures"]) == summary["failed"] == len(result.runs)


def resumed_copy(run_dir: Path, to: Path, pause: float, stopped: bool) -> list[dict[str, Any]]:
    """``run_dir``'s journal made into two sessions, the second ``pause`` seconds after the first
    ended (with a stop record, or killed without one); its records."""
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    middle = [i for i, r in enumerate(records) if r["type"] == "result"][len(records) // 4]
    first, second = records[:middle + 1], records[middle + 1:]
    first_end = max(r.get(k, 0) for r in first for k in ("created", "started", "submitted", "finished"))
    for record in second:
        for key in ("started", "submitted", "finished", "time"):
            if key in record:
                record[key] += pause
    session = {"type": "session", "n_iterations": 3, "n_workers": 1, "started": first_end + pause}
    stop = [{"type": "stop", "signal": 15, "time": first_end}] if stopped else []
    records = [*first, *stop, session, *second]
    to.mkdir()
    (to / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="tells a lock's holder from /proc/locks (Linux)")
def test_status_of_a_finished_run_that_a_resume_is_replaying(finished: dict[str, Any], tmp_path: Path) -> None:
    """A resume replays the journal before it writes anything, so the journal still ends with the
    run's ``end``: status names the process that holds the lock, instead of only "finished"."""
    replaying = copy_run(finished["run_dir"], tmp_path / "replaying", f"{os.getpid()}@{socket.gethostname()}")
    with open(replaying / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        as_json, text = run_cli_many(["status", "--json", replaying], ["status", replaying])
    status = json.loads(ok(as_json))
    assert (status["state"], status["resuming_pid"]) == ("finished", os.getpid())
    assert ok(text).splitlines()[0] == f"run {replaying}: finished; process {os.getpid()} holds its lock now: a " \
                                       "resume is starting (it replays the journal first)"
    assert finished["status_json"]["resuming_pid"] is None


def test_status_run_time_leaves_out_the_pause_between_sessions(finished: dict[str, Any], tmp_path: Path) -> None:
    runs = {"single": finished["run_dir"]}
    for name, stopped in (("stopped", True), ("killed", False)):
        records = resumed_copy(finished["run_dir"], tmp_path / name, pause=7200.0, stopped=stopped)
        runs[name] = tmp_path / name
    single, stopped, killed, text = run_cli_many(*(["status", "--json", d] for d in runs.values()),
                                                 ["status", runs["stopped"]])
    single, stopped, killed = (json.loads(ok(p)) for p in (single, stopped, killed))
    assert single["sessions"] == 1 and single["run_time"] == pytest.approx(single["elapsed"])
    span = records[-1]["time"] - 7200.0 - records[0]["created"]  # the original run's span
    for status in (stopped, killed):
        assert status["sessions"] == 2 and status["state"] == "finished"
        assert status["run_time"] == pytest.approx(span) and status["elapsed"] == pytest.approx(span + 7200.0)
    line = ok(text).splitlines()[1]
    assert re.fullmatch(r"run time: [\d.]+ s in 2 sessions \(2 h 00 min \d\d s of wall time since it was "
                        r"created, with the pauses between them\)", line), line


# ---------------------------------------------------------------- runs in progress


def test_status_of_a_journal_cut_short(finished: dict[str, Any], tmp_path: Path) -> None:
    """Journal prefixes as a crash or a live run leaves them: jobs handed out without results."""
    lines = (finished["run_dir"] / "journal.jsonl").read_text().splitlines(keepends=True)
    kinds = [json.loads(line)["type"] for line in lines]
    after_job = [i for i, kind in enumerate(kinds) if kind == "job"][5] + 1  # 5 runs done, the 6th handed out
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "journal.jsonl").write_text("".join(lines[:after_job]))
    # three results and the end record lost: three jobs without a result
    lost = [i for i, kind in enumerate(kinds) if kind == "result"][-3:] + [len(lines) - 1]
    (tmp_path / "three").mkdir()
    (tmp_path / "three" / "journal.jsonl").write_text("".join(line for i, line in enumerate(lines) if i not in lost))
    one, three, text = run_cli_many(["status", "--json", tmp_path / "one"], ["status", "--json", tmp_path / "three"],
                                    ["status", tmp_path / "three"])
    one, three = json.loads(ok(one)), json.loads(ok(three))
    assert (one["state"], one["finished"], one["running"]) == ("running", 5, 1)
    failed = sum(kinds[i] == "result" and json.loads(lines[i])["loss"] is None
                 for i in range(len(lines)) if i not in lost)
    total = len(finished["result"].runs)
    assert (three["state"], three["finished"], three["running"], three["failed"]) == \
           ("running", total - 3, 3, failed)
    assert three["elapsed"] > 0
    first, _, runs, _ = ok(text).splitlines()
    assert first.startswith(f"run {tmp_path / 'three'}: running (last record ")
    assert runs == f"runs: {total - 3} finished ({total - 3 - failed} successful, {failed} failed), 3 running"


LIVE_RUN = """
import sys, time
from pathlib import Path
import ConfigSpace as CS
from mpibohb import BOHB

evaluations = 0

def evaluate(config, budget):
    global evaluations
    evaluations += 1
    while evaluations > 3:  # the fourth evaluation hangs until the run is stopped
        time.sleep(0.02)
    return config["x"] + 1.0 / budget

space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
BOHB(space, min_budget=1, max_budget=9, eta=3, seed=3, run_dir=sys.argv[1]).run(n_iterations=2, worker=evaluate)
"""


def wait_for_records(journal: Path, results: int, jobs: int, process: subprocess.Popen) -> None:
    """Wait until ``journal`` holds at least this many result and job records."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        kinds = [json.loads(line)["type"] for line in journal.read_text().splitlines()] if journal.exists() else []
        if kinds.count("result") >= results and kinds.count("job") >= jobs:
            return
        time.sleep(0.1)
    raise AssertionError(f"{journal} did not reach {results} results")


@pytest.mark.processes
def test_status_of_a_live_run_then_stopped(tmp_path: Path) -> None:
    script, run_dir = tmp_path / "live.py", tmp_path / "run"
    script.write_text(textwrap.dedent(LIVE_RUN))
    process = subprocess.Popen([sys.executable, str(script), str(run_dir)], cwd=REPO, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_records(run_dir / "journal.jsonl", results=3, jobs=4, process=process)
        live, live_text = run_cli_many(["status", "--json", run_dir], ["status", run_dir])
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 99
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    live = json.loads(ok(live))
    assert (live["state"], live["finished"], live["running"], live["failed"]) == ("running", 3, 1, 0)
    assert live_text.stdout.splitlines()[2] == "runs: 3 finished (3 successful, 0 failed), 1 running"
    stopped, stopped_text, report = run_cli_many(["status", "--json", run_dir], ["status", run_dir],
                                                 ["report", run_dir])
    stopped = json.loads(ok(stopped))
    assert (stopped["state"], stopped["signal"], stopped["finished"], stopped["running"]) == \
           ("stopped", signal.SIGTERM, 3, 1)
    assert ok(stopped_text).splitlines()[0] == \
           f"run {run_dir}: stopped by SIGTERM; run again with resume=True (or the same command line) to continue"
    assert "1 unfinished" in stopped_text.stdout
    assert ok(report).splitlines()[0] == f"run {run_dir}: stopped"


KILLABLE_RUN = """
import sys, time
import ConfigSpace as CS
from mpibohb import BOHB

evaluations, deadline = 0, time.monotonic() + 60  # never outlives a test that forgot it

def evaluate(config, budget):
    global evaluations
    evaluations += 1
    while evaluations > 3 and time.monotonic() < deadline:  # the fourth evaluation sleeps
        time.sleep(0.02)
    return config["x"] + 1.0 / budget

space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
BOHB(space, min_budget=1, max_budget=9, eta=3, seed=3, run_dir=sys.argv[1]).run(n_iterations=2, worker=evaluate)
"""


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group of ``process`` (started in a new session) and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run SIGKILLed while its fourth evaluation sleeps: ``status``/``report`` on it while it
    lived, and after the kill."""
    tmp_path = tmp_path_factory.mktemp("killed")
    script, run_dir = tmp_path / "killable.py", tmp_path / "run"
    script.write_text(textwrap.dedent(KILLABLE_RUN))
    process = subprocess.Popen([sys.executable, str(script), str(run_dir)], cwd=REPO, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for_records(run_dir / "journal.jsonl", results=3, jobs=4, process=process)
        live = run_cli_many(["status", "--json", run_dir], ["status", run_dir], ["report", "--json", run_dir])
        os.killpg(process.pid, signal.SIGKILL)
        zombie = run_cli_many(["status", "--json", run_dir])[0] if wait_until_zombie(process.pid) else None
    finally:
        kill_group(process)
    assert process.returncode == -signal.SIGKILL
    dead = run_cli_many(["status", "--json", run_dir], ["status", run_dir], ["report", "--json", run_dir],
                        ["report", run_dir])
    return {"run_dir": run_dir, "pid": process.pid, "live": [ok(p) for p in live], "dead": [ok(p) for p in dead],
            "zombie": None if zombie is None else ok(zombie)}


def wait_until_zombie(pid: int) -> bool:
    """Wait until our killed child ``pid`` is a zombie (dead, not yet reaped) whose other threads
    have ended too (until then they hold its files, and its lock); False without /proc."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if (Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
                    and os.listdir(f"/proc/{pid}/task") == [str(pid)]):
                return True
        except OSError:
            return False
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} is not a zombie 10 s after SIGKILL")


def gone_phrase(pid: int) -> str:
    return (f"not running: its process (pid {pid} on {socket.gethostname()}) is gone without a stop record "
            "(killed?); resume=True continues it")


@pytest.mark.processes  # the killed fixture
def test_status_of_a_live_run_names_its_living_process(killed: dict[str, Any]) -> None:
    status_json, text, report_json = killed["live"]
    status, report = json.loads(status_json), json.loads(report_json)
    assert (status["state"], status["writer"], status["writer_pid"], status["writer_host"], status["running"]) == \
           ("running", "alive", killed["pid"], socket.gethostname(), 1)
    assert (report["state"], report["writer"]) == ("running", "alive")
    first, _, runs, _ = text.splitlines()
    assert first.startswith(f"run {killed['run_dir']}: running (last record ") and first.endswith(" ago)")
    assert runs == "runs: 3 finished (3 successful, 0 failed), 1 running"


@pytest.mark.processes  # the killed fixture
def test_status_of_a_sigkilled_run_says_not_running(killed: dict[str, Any]) -> None:
    status_json, text, report_json, report = killed["dead"]
    status, summary = json.loads(status_json), json.loads(report_json)
    assert (status["state"], status["writer"], status["writer_pid"], status["running"]) == \
           ("running", "gone", killed["pid"], 1)
    assert (summary["state"], summary["writer"], summary["writer_pid"]) == ("running", "gone", killed["pid"])
    records = [json.loads(line) for line in (killed["run_dir"] / "journal.jsonl").read_text().splitlines()]
    last = max(r.get(key, 0) for r in records for key in ("created", "started", "submitted", "finished"))
    assert status["elapsed"] == pytest.approx(last - records[0]["created"])  # stops at the kill
    first, _, runs, _ = text.splitlines()
    assert first == f"run {killed['run_dir']}: {gone_phrase(killed['pid'])}"
    assert runs == "runs: 3 finished (3 successful, 0 failed), 1 unfinished"
    assert report.splitlines()[0] == first
    assert line_starting(report, "configurations:") == "configurations: 4 sampled in 1 iteration (of 2 asked for)"


@pytest.mark.processes  # the killed fixture
def test_status_of_a_sigkilled_run_not_yet_reaped_says_not_running(killed: dict[str, Any]) -> None:
    if killed["zombie"] is None:
        pytest.skip("no /proc to see the zombie in")
    assert json.loads(killed["zombie"])["writer"] == "gone"


def copy_run(run_dir: Path, to: Path, lock: str | None, extra: Sequence[dict[str, Any]] = ()) -> Path:
    """A copy of ``run_dir``'s journal with ``extra`` records appended and a lock file naming ``lock``."""
    to.mkdir()
    records = "".join(json.dumps(record) + "\n" for record in extra)
    (to / "journal.jsonl").write_text((run_dir / "journal.jsonl").read_text() + records)
    if lock is not None:
        (to / ".lock").write_text(lock + "\n")
    return to


@pytest.mark.processes  # the killed fixture
def test_status_when_the_writer_cannot_be_checked_or_holds_the_lock(killed: dict[str, Any], tmp_path: Path) -> None:
    """Another host, a lock file from before the latest session, and a resume that has taken the
    lock but not yet written its pid: running, whatever the dead pid in the lock file."""
    dead, host = f"{killed['pid']}@{socket.gethostname()}", f"not-{socket.gethostname()}"
    elsewhere = copy_run(killed["run_dir"], tmp_path / "elsewhere", f"{killed['pid']}@{host}")
    stale = copy_run(killed["run_dir"], tmp_path / "stale", dead,
                     [{"type": "session", "n_iterations": 2, "n_workers": 1, "started": time.time()}])
    os.utime(stale / ".lock", (1.0, 1.0))  # written before the first session: not by the latest one
    held = copy_run(killed["run_dir"], tmp_path / "held", dead)
    with open(held / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        elsewhere_json, elsewhere_text, stale_json, stale_text, held_json, held_text = run_cli_many(
            ["status", "--json", elsewhere], ["status", elsewhere], ["status", "--json", stale], ["status", stale],
            ["status", "--json", held], ["status", held])
    elsewhere_status = json.loads(ok(elsewhere_json))
    assert (elsewhere_status["writer"], elsewhere_status["writer_host"]) == ("elsewhere", host)
    first = ok(elsewhere_text).splitlines()[0]
    assert re.fullmatch(rf"run {re.escape(str(elsewhere))}: running \(last record .+ ago\) on {host} "
                        rf"\(pid {killed['pid']}; this host cannot check that it is alive\)", first), first
    assert json.loads(ok(stale_json))["writer"] == "unknown"
    assert ok(stale_text).splitlines()[0].endswith(" ago) (no .lock names its process, so whether it is alive "
                                                   "cannot be told: it may have been killed, or the directory copied)")
    if Path("/proc/locks").exists():
        assert json.loads(ok(held_json))["writer"] == "alive"
        assert ok(held_text).splitlines()[0].startswith(f"run {held}: running (last record ")


@pytest.mark.processes  # the killed fixture
def test_report_counts_the_workers_of_the_latest_session(killed: dict[str, Any], tmp_path: Path) -> None:
    resumed = copy_run(killed["run_dir"], tmp_path / "resumed", None,
                       [{"type": "session", "n_iterations": 2, "n_workers": 3, "started": time.time()}])
    text, as_json = run_cli_many(["report", resumed], ["report", "--json", resumed])
    assert "seed 3, 3 workers (started with 1)" in line_starting(ok(text), "optimizer:")
    assert line_starting(text.stdout, "created:").endswith(", 2 sessions")
    summary = json.loads(ok(as_json))
    assert (summary["n_workers"], summary["settings"]["n_workers"], summary["writer"]) == (3, 1, "unknown")


# ---------------------------------------------------------------- bad inputs


def _bad_inputs(root: Path) -> dict[str, Path]:
    """Run directories that cannot be read, by name."""
    cases = {name: root / name for name in ("missing", "no_journal", "empty", "garbage", "not_objects",
                                            "corrupt_middle", "bad_record", "pickled")}
    for name, path in cases.items():
        if name not in ("missing", "pickled"):
            path.mkdir()
    (cases["pickled"]).write_bytes(b"\x80\x04\x95 a Result pickled by a script")
    (cases["empty"] / "journal.jsonl").write_text("")
    (cases["garbage"] / "journal.jsonl").write_bytes(b"\x00\xffnot json at all\nstill not json\n")
    (cases["not_objects"] / "journal.jsonl").write_text("[1, 2, 3]\n42\n")
    lines = (FIXTURE_V1 / "journal.jsonl").read_text().splitlines(keepends=True)
    (cases["corrupt_middle"] / "journal.jsonl").write_text("".join(lines[:4] + ["{\"type\": \"res\n"] + lines[4:]))
    broken = json.loads(lines[3])
    del broken["budget"]
    (cases["bad_record"] / "journal.jsonl").write_text("".join(lines[:3] + [json.dumps(broken) + "\n"] + lines[4:]))
    return cases


@pytest.fixture(scope="module")
def bad_input_calls(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], CliCall]:
    """``report`` and ``status`` on every bad input, by ``(case, command)``."""
    cases = _bad_inputs(tmp_path_factory.mktemp("bad"))
    keys = [(name, command) for name in cases for command in ("report", "status")]
    done = run_cli_many(*([command, cases[name]] for name, command in keys))
    return dict(zip(keys, done))


@pytest.mark.parametrize("command", ["report", "status"])
@pytest.mark.parametrize("case, says", [
    ("missing", "no such run directory"), ("no_journal", "not a run directory"), ("empty", "empty"),
    ("garbage", "journal.jsonl:1: not a JSON record"), ("not_objects", "record 1 is not a journal record"),
    ("corrupt_middle", "journal.jsonl:5: not a JSON record"), ("bad_record", "record 4 (result) lacks budget"),
    ("pickled", "is not a run directory nor its journal.jsonl"),
])
def test_bad_input_gives_one_line_and_exit_code_2(bad_input_calls: dict, case: str, says: str, command: str) -> None:
    process = bad_input_calls[(case, command)]
    assert process.returncode == 2, (process.stdout, process.stderr)
    assert process.stdout == "" and "Traceback" not in process.stderr
    lines = process.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mpibohb: ") and says in lines[0], process.stderr


def test_report_shows_an_incumbent_chosen_below_the_largest_successful_budget() -> None:
    """Configurations that failed on a larger budget are not incumbents, so the incumbent can sit
    on a budget below the largest that has a successful run: the report shows it there."""
    from mpibohb.result import Run
    from mpibohb.summary import _incumbent

    def run(index: int, budget: float, loss: float | None) -> Run:
        return Run((0, 0, index), budget, loss, None, {"submitted": 0.0, "started": 0.0, "finished": 1.0},
                   None if loss is not None else "MemoryError")

    runs = [run(5, 1, 1.3), run(6, 1, 1.4), run(7, 1, 2.0), run(5, 3, 0.63), run(6, 3, 0.7), run(5, 9, None),
            run(6, 9, None)]
    id2config = {(0, 0, i): {"config": {"x": i / 10}, "config_info": {}} for i in (5, 6, 7)}
    assert _incumbent(Result(runs, id2config)) == {"config_id": [0, 0, 7], "loss": 2.0, "budget": 1,
                                                   "config": {"x": 0.7}}


def test_report_and_plot_end_on_the_incumbent_when_the_best_failed_on_a_larger_budget(tmp_path: Path) -> None:
    """Every configuration fails at budget 9, so the incumbent is the best at 3 among those that did
    not fail above it; report's trajectory and plot's incumbent line must end there, not on the
    best loss at 3 (HpBandSter's trajectory)."""
    from mpibohb import HyperBand

    def fails_at_9(config: dict[str, Any], budget: float) -> float:
        if budget == 9:
            raise RuntimeError("out of memory")
        return float(config["x"])

    run_dir = tmp_path / "run"
    cs = CS.ConfigurationSpace({"x": (0.0, 1.0)}, seed=1)
    result = HyperBand(cs, min_budget=1, max_budget=9, seed=1, run_dir=run_dir).run(n_iterations=1, worker=fails_at_9)
    incumbent = result.get_incumbent_run()
    assert incumbent is not None and incumbent.config_id != result.get_incumbent_trajectory()["config_ids"][-1]
    report = json.loads(ok(run_cli("report", run_dir, "--json")))
    assert report["incumbent"]["config_id"] == report["trajectory"][-1]["config_id"] == list(incumbent.config_id)
    assert report["trajectory"][-1]["loss"] == incumbent.loss
    assert ok(run_cli("report", run_dir)).splitlines()[-1].endswith(str(incumbent.config_id))


def test_report_and_plot_read_hpbandsters_logs_and_status_says_why_not(tmp_path: Path) -> None:
    """tests/data/hpbandster_run was written by HpBandSter 0.7.4 (its make.py): no journal."""
    logs = Path(__file__).parent / "data" / "hpbandster_run"
    expected = load_result(logs)
    report, as_json, plot, status = run_cli_many(["report", logs], ["report", logs, "--json"],
                                                 ["plot", logs, "--out", tmp_path], ["status", logs])
    text = ok(report)
    assert text.startswith(f"run {logs}: logged by HpBandSter (no journal)\nbudgets 1, 3, 9 (eta 3.0);")
    assert f"runs: {len(expected.get_all_runs())} ({len(expected.failed_runs())} failed)" in text
    assert "(1, 0, 0) at budget 3: ValueError: diverged: x=" in text  # the traceback's last line
    assert f"incumbent: {_config_id_text(expected.get_incumbent_id())}, loss" in text
    summary = json.loads(ok(as_json))
    assert summary["incumbent"]["config_id"] == list(expected.get_incumbent_id())
    assert (summary["sessions"], summary["n_workers"], summary["writer"]) == (None, None, None)
    assert len(ok(plot).splitlines()) == 6 and len(list(tmp_path.glob("*.png"))) == 6
    assert status.returncode == 2 and "HpBandSter's logs: report and plot read them" in status.stderr


def _config_id_text(config_id: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, config_id)) + ")"
