"""The files of a run directory: a lock that deleting `.lock` cannot undo, no symbolic link
followed, private modes, one clear error when a file cannot be written, a bounded `info`."""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import re
import resource
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

import ConfigSpace as CS
import numpy as np
import pytest
from cli_in_process import run_cli
from mpi_launch import SCRIPTS, mpi_environment, run_command, run_mpi

from mpibohb import BOHB, load_result
from mpibohb.append_file import AppendFile
from mpibohb.bracket_plans import runs_per_budget
from mpibohb.brackets import Job
from mpibohb.evaluation import OutOfSpaceError
from mpibohb.executors.threads import ThreadExecutor
from mpibohb.files import RunFileError
from mpibohb.journal import read_journal
from mpibohb.run_directory import lock_run_directory

TOY = SCRIPTS / "toy_run.py"
TOY_RUNS = sum(runs_per_budget(4, 1, 27, 3).values())  # the toy run's 4 iterations: 69 evaluations


def toy(run_dir: Path, *args: str) -> list[str]:
    return [sys.executable, str(TOY), str(run_dir), *args]


def loss(config, budget):
    return (config["x"] - 0.3) ** 2 + 1 / budget


def small_run(run_dir: Path, **run_arguments) -> object:
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    return BOHB(space, min_budget=1, max_budget=27, eta=3, seed=7, run_dir=run_dir).run(
        n_iterations=1, worker=loss, **run_arguments)


def results_in(run_dir: Path) -> int:
    journal = run_dir / "journal.jsonl"
    return journal.read_text().count('"type":"result"') if journal.exists() else 0


def wait_until(condition, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended before {what}: {process.communicate()}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.02)


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"still running after {timeout} s:\n{err[-3000:]}") from None
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return process.returncode, out, err


# ---------------------------------------------------------------- the lock


@pytest.mark.processes
def test_deleting_the_lock_file_does_not_let_a_second_run_in(tmp_path):
    run_dir = tmp_path / "run"
    first = subprocess.Popen(toy(run_dir, "--sleep", "0.2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=mpi_environment(), start_new_session=True)
    try:
        wait_until(lambda: results_in(run_dir) >= 2, first, "two results")
        (run_dir / ".lock").unlink()
        second = run_command(toy(run_dir, "--resume", "--sleep", "0.2"), timeout=60)
        assert second.returncode != 0, second.stdout
        assert f"is in use by another mpibohb run (pid {first.pid}@{socket.gethostname()})" in second.stderr
        assert first.poll() is None, "the first run ended before the second one started: the test proves nothing"
    finally:
        code, out, err = finish(first)
    assert code == 0, err[-3000:]
    assert f"RUNS {TOY_RUNS} FAILED 0" in out
    results = Counter((tuple(r["config_id"]), r["budget"]) for r in read_journal(run_dir) if r["type"] == "result")
    assert len(results) == TOY_RUNS and max(results.values()) == 1
    resumed = run_command(toy(run_dir, "--resume"), timeout=60)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"RUNS {TOY_RUNS} FAILED 0" in resumed.stdout


def test_the_lock_is_on_the_directory_and_the_lock_file_names_its_holder(tmp_path):
    lock = lock_run_directory(tmp_path / "run")
    try:
        assert (tmp_path / "run" / ".lock").read_text() == f"{os.getpid()}@{socket.gethostname()}\n"
        (tmp_path / "run" / ".lock").unlink()
        with pytest.raises(FileExistsError, match=f"in use by another mpibohb run \\(pid {os.getpid()}@"):
            lock_run_directory(tmp_path / "run")  # another open file description: refused as another process is
    finally:
        lock.close()
    lock_run_directory(tmp_path / "run").close()


@pytest.mark.processes
def test_a_refusal_names_the_process_that_holds_the_lock_it_met(tmp_path):
    # the other process holds .lock only (an older mpibohb, or a directory its file system would not
    # lock): this one takes the directory's lock, then meets .lock's; it must name the other one
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(run_dir / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('HELD', flush=True)\ntime.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "HELD"
        with pytest.raises(FileExistsError, match=f"in use by another mpibohb run \\(pid {holder.pid}@"):
            lock_run_directory(run_dir)
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()


@pytest.mark.processes
def test_a_process_that_compute_forked_does_not_hold_the_runs_lock(tmp_path):
    # the helper outlives the run (a data loader left running); a resume while it lives is let in
    finished = run_command([sys.executable, str(SCRIPTS / "forking_run.py"), str(tmp_path / "run")], timeout=60)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "RESUMED 19" in finished.stdout, finished.stdout + finished.stderr[-2000:]


def test_a_refused_resume_leaves_the_lock_file_naming_the_runs_own_last_process(tmp_path):
    small_run(tmp_path / "run")
    (tmp_path / "run" / ".lock").write_text("12345@a-node\n")  # as a killed run leaves it
    with pytest.raises(ValueError, match="settings differ"):
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, eta=3, seed=8,
             run_dir=tmp_path / "run").run(n_iterations=2, worker=loss, resume=True)
    assert (tmp_path / "run" / ".lock").read_text() == "12345@a-node\n"


def test_a_resume_with_another_search_space_says_what_differs(tmp_path):
    small_run(tmp_path / "run")
    other = CS.ConfigurationSpace(name="other", space={"x": (0.1, 1.0), "d": [1, 2]})
    with pytest.raises(ValueError, match=r"its search space differs \(d is new; x: lower 0\.0 -> 0\.1, "
                                         r"default_value 0\.5 -> 0\.55; its name changed\)"):
        BOHB(other, min_budget=1, max_budget=27, eta=3, seed=7, run_dir=tmp_path / "run").run(
            n_iterations=2, worker=loss, resume=True)


def _activations() -> list:
    """Two functions, new objects at new addresses on each call, as in a new process."""
    def relu(x: float) -> float:
        return max(0.0, x)

    def tanh(x: float) -> float:
        return x

    return [relu, tanh]


def test_a_run_whose_choices_are_functions_resumes_with_the_new_process_own_functions(tmp_path):
    first, second = _activations(), _activations()  # both kept alive: their addresses differ
    runs = []
    for functions, n_iterations, resume in ((first, 1, False), (second, 2, True)):
        space = CS.ConfigurationSpace({"x": (0.0, 1.0)}, seed=1)
        space.add(CS.CategoricalHyperparameter("act", functions, meta={"scale": lambda v: v}))
        runs.append(BOHB(space, min_budget=1, max_budget=9, eta=3, seed=7, run_dir=tmp_path / "run").run(
            n_iterations=n_iterations, worker=lambda config, budget: config["act"](config["x"]), resume=resume))
    configs = runs[1].get_id2config_mapping().values()
    assert len(runs[1].get_all_runs()) > len(runs[0].get_all_runs()) and all(
        any(entry["config"]["act"] is f for f in second) for entry in configs)


def test_choices_that_a_journal_cannot_tell_apart_are_said_at_the_start_and_refuse_a_resume(tmp_path, caplog):
    space = CS.ConfigurationSpace({"x": (0.0, 1.0), "c": ["inf", float("inf"), "a"]}, seed=1)
    said = r"parameter c: its values 'inf' and inf are both journaled as \"inf\", so a resume could not tell"
    BOHB(space, min_budget=1, max_budget=9, eta=3, seed=7, run_dir=tmp_path / "run").run(n_iterations=1, worker=loss)
    assert re.search(said + r".*; this run cannot be resumed", caplog.text), caplog.text
    with pytest.raises(ValueError, match=said):  # before, the Result read 'inf' back as inf
        BOHB(space, min_budget=1, max_budget=9, eta=3, seed=7, run_dir=tmp_path / "run").run(
            n_iterations=2, worker=loss, resume=True)


def test_a_space_json_cannot_hold_keeps_the_run_that_overwrite_would_have_replaced(tmp_path):
    small_run(tmp_path / "run")
    before = (tmp_path / "run" / "journal.jsonl").read_bytes()
    space = CS.ConfigurationSpace(seed=1)
    space.add(CS.UniformFloatHyperparameter("x", 0.0, 1.0, meta={("a", "b"): 1}))
    with pytest.raises(ValueError, match="cannot be written to the run's journal as JSON"):
        BOHB(space, min_budget=1, max_budget=9, eta=3, seed=7, run_dir=tmp_path / "run").run(
            n_iterations=1, worker=loss, overwrite=True)
    assert (tmp_path / "run" / "journal.jsonl").read_bytes() == before


def test_a_space_json_cannot_hold_is_refused_naming_the_meta_that_holds_what_it_cannot(tmp_path):
    space = CS.ConfigurationSpace(seed=1)
    space.add(CS.UniformFloatHyperparameter("x", 0.0, 1.0, meta={("a", "b"): 1}))
    with pytest.raises(ValueError, match=r"cannot be written to the run's journal as JSON \(the meta of x\): "
                                         "TypeError: keys must be"):
        BOHB(space, min_budget=1, max_budget=9, eta=3, seed=7, run_dir=tmp_path / "run").run(
            n_iterations=1, worker=loss)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- symbolic links and modes


@pytest.mark.parametrize("name", [".lock", "journal.jsonl"])
def test_a_symbolic_link_planted_as_a_run_file_is_refused_and_its_target_kept(tmp_path, name):
    precious = tmp_path / "precious.txt"
    precious.write_text("precious\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / name).symlink_to(precious)
    with pytest.raises(RunFileError, match=f"{name}: it is a symbolic link"):
        small_run(run_dir, resume=True)
    assert precious.read_text() == "precious\n"
    (run_dir / name).unlink()
    (run_dir / name).symlink_to(tmp_path / "not_there")  # a dangling link: a new journal or lock file
    with pytest.raises(RunFileError, match=f"{name}: it is a symbolic link"):
        small_run(run_dir, resume=True)
    assert not (tmp_path / "not_there").exists()


@pytest.mark.parametrize("name", ["configs.json", "results.json"])
def test_a_symbolic_link_planted_as_a_rewritten_file_is_replaced_not_followed(tmp_path, name):
    run_dir = tmp_path / "run"
    small_run(run_dir)
    precious = tmp_path / "precious.txt"
    precious.write_text("precious\n")
    (run_dir / name).unlink()
    (run_dir / name).symlink_to(precious)
    (run_dir / f"{name}.tmp").symlink_to(precious)  # where mpibohb wrote the new file before replacing the old
    small_run(run_dir, resume=True)  # rewrites configs.json and results.json from the journal
    assert precious.read_text() == "precious\n"
    assert not (run_dir / name).is_symlink()
    assert len(load_result(run_dir).get_all_runs()) == len((run_dir / "results.json").read_text().splitlines())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_run_files_are_private_whatever_the_umask(tmp_path):
    previous = os.umask(0o000)
    try:
        small_run(tmp_path / "run")
    finally:
        os.umask(previous)
    assert mode(tmp_path / "run") == 0o700
    for name in (".lock", "journal.jsonl", "configs.json", "results.json"):
        assert mode(tmp_path / "run" / name) == 0o600, name


def test_mpibohb_file_mode_shares_new_files_and_existing_files_keep_theirs(tmp_path, monkeypatch):
    monkeypatch.setenv("MPIBOHB_FILE_MODE", "640")
    small_run(tmp_path / "run")
    assert mode(tmp_path / "run") == 0o750
    assert {mode(tmp_path / "run" / name) for name in ("journal.jsonl", "configs.json", "results.json")} == {0o640}
    monkeypatch.delenv("MPIBOHB_FILE_MODE")
    os.chmod(tmp_path / "run" / "results.json", 0o644)
    small_run(tmp_path / "run", resume=True)  # rewrites results.json
    assert mode(tmp_path / "run" / "results.json") == 0o644
    assert mode(tmp_path / "run" / "journal.jsonl") == 0o640


@pytest.mark.parametrize("bad", ["abc", "999", "400", "0o1000"])
def test_a_bad_mpibohb_file_mode_is_refused_before_the_run(tmp_path, monkeypatch, bad):
    monkeypatch.setenv("MPIBOHB_FILE_MODE", bad)
    with pytest.raises(ValueError, match=f"MPIBOHB_FILE_MODE='{bad}' is not a file mode"):
        small_run(tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- files that cannot be written


def make_read_only(path: Path) -> None:
    """A file this process cannot write: immutable for root (who may write anything else), else mode 0444."""
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        return
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"as root, a read-only file needs chattr +i, which failed here: {made.stderr.strip()}")


def make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    os.chmod(path, 0o600)


@pytest.mark.processes
def test_a_read_only_journal_gives_one_clear_error_and_frees_the_lock(tmp_path):
    run_dir = tmp_path / "run"
    assert run_command(toy(run_dir, "--n_iterations", "1"), timeout=60).returncode == 0
    make_read_only(run_dir / "journal.jsonl")
    try:
        refused = run_command(toy(run_dir, "--resume"), timeout=60)
        assert refused.returncode == 1
        assert refused.stderr.count("Traceback") == 1, refused.stderr
        assert f"RunFileError: [Errno {1 if os.geteuid() == 0 else 13}] cannot open {run_dir}/journal.jsonl" \
            in refused.stderr
        with pytest.raises(RunFileError, match="cannot open .*journal.jsonl"):
            small_run(run_dir, resume=True)
        lock_run_directory(run_dir).close()  # this process does not hold the lock any more
    finally:
        make_writable(run_dir / "journal.jsonl")
    resumed = run_command(toy(run_dir, "--resume"), timeout=60)
    assert resumed.returncode == 0 and f"RUNS {TOY_RUNS} FAILED 0" in resumed.stdout, resumed.stderr[-3000:]


def mount_tmpfs(tmp_path: Path, size: str) -> Path:
    """A tmpfs of ``size`` at ``tmp_path / "disk"``; the test is skipped where it cannot be mounted
    (it needs root)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full or vanishing disk is simulated with a tmpfs, which needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    return disk


@pytest.fixture
def tiny_disk(tmp_path):
    """A 48 KiB file system (tmpfs; root only): a run on it fills it within one iteration."""
    disk = mount_tmpfs(tmp_path, "48k")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.processes
def test_a_full_disk_gives_one_clear_error_and_frees_the_lock(tiny_disk):
    run_dir = tiny_disk / "run"
    failed = run_command(toy(run_dir, "--n_iterations", "8"), timeout=60)
    assert failed.returncode == 1
    assert failed.stderr.count("Traceback") == 1, failed.stderr
    assert "RunFileError: [Errno 28] cannot write" in failed.stderr
    assert "No space left on device; what was recorded before is kept" in failed.stderr
    shutil.rmtree(run_dir)
    with pytest.raises(RunFileError, match="No space left on device") as raised:
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7, run_dir=run_dir).run(
            n_iterations=8, worker=loss)
    printed = "".join(traceback.format_exception(type(raised.value), raised.value, raised.value.__traceback__))
    assert raised.value.errno == 28 and printed.count("Traceback") == 1, printed
    lock_run_directory(run_dir).close()  # this process does not hold the lock any more
    recorded = read_journal(run_dir)  # what was written before the disk filled up is readable
    assert recorded[0]["type"] == "header" and any(r["type"] == "result" for r in recorded)
    shutil.rmtree(run_dir)
    (tiny_disk / "filler").write_bytes(bytes(48 * 1024 - 4096))  # one page left: .lock takes it
    with pytest.raises(RunFileError, match="cannot write .*journal.jsonl: No space left on device"):
        small_run(run_dir)  # the header does not fit
    lock_run_directory(run_dir).close()


def filling(budget_calls: list, fail_at: int, error: BaseException):
    """A compute whose ``fail_at``-th call raises ``error``, the disk's way of failing it."""

    def compute(config, budget):
        budget_calls.append(budget)
        if len(budget_calls) == fail_at:
            raise error
        return loss(config, budget)

    return compute


def full_disk_chained() -> BaseException:
    try:
        raise OSError(errno.EDQUOT, "Disk quota exceeded", "/scratch/model.pt")
    except OSError as disk:
        try:
            raise RuntimeError("saving the model failed") from disk  # as a framework wraps it
        except RuntimeError as wrapped:
            return wrapped


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device", "/scratch/x.bin"),
                                   full_disk_chained()], ids=["ENOSPC", "EDQUOT wrapped"])
@pytest.mark.parametrize("threads", [None, 2])
def test_a_compute_that_runs_out_of_disk_stops_the_run_and_fails_no_job(tmp_path, error, threads):
    # it was recorded as the configuration's failure, and every later job failed the same way
    run_dir, calls = tmp_path / "run", []
    with pytest.raises(RunFileError, match=r"\(0, 0, \d\) at budget \d+ on .*: compute failed for want of disk "
                                           r"space \(OSError: \[Errno \d+\] .*/scratch/.*the run stops without "
                                           "recording this job, which runs again on resume") as raised:
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7, run_dir=run_dir).run(
            n_iterations=4, worker=filling(calls, 5, error), n_workers=threads)
    assert raised.value.errno in (errno.ENOSPC, errno.EDQUOT)
    recorded = read_journal(run_dir)
    assert 0 < sum(r["type"] == "result" for r in recorded) < 10 and all(
        r["loss"] is not None for r in recorded if r["type"] == "result")
    resumed = BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7, run_dir=run_dir).run(
        n_iterations=4, worker=loss, resume=True, n_workers=threads)
    assert resumed.failed_runs() == [] and len(resumed.get_all_runs()) == TOY_RUNS


@pytest.mark.parametrize("error, code", [
    (RuntimeError("unable to write to file </torch_77_1>: No space left on device (28)"), errno.ENOSPC),
    (RuntimeError("Can't write data (file write failed: error message = 'Disk quota exceeded')"), errno.EDQUOT),
    (OSError("1000000 requested and 6144 written"), errno.ENOSPC)],
    ids=["shared memory", "quota", "numpy's short write"])
def test_an_error_that_only_says_the_disk_is_full_stops_the_run_too(tmp_path, error, code):
    # no errno: PyTorch's shared memory and h5py say it in words, and were the configurations' failures
    with pytest.raises(OutOfSpaceError, match=rf"compute failed for want of disk space \({type(error).__name__}: ") \
            as raised:
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7,
             run_dir=tmp_path / "run").run(n_iterations=1, worker=filling([], 3, error))
    assert raised.value.errno == code and raised.value.__cause__ is error


@pytest.mark.processes
def test_sqlites_full_disk_stops_the_run(tiny_disk, tmp_path):
    def compute(config_id, config, budget):  # each evaluation keeps its metrics in a database
        with contextlib.closing(sqlite3.connect(tiny_disk / "metrics.sqlite")) as db, db:
            db.execute("create table if not exists metrics (config text, values_ blob)")
            db.execute("insert into metrics values (?, ?)", (str(config_id), bytes(4096)))
        return loss(config, budget)

    with pytest.raises(OutOfSpaceError, match=r"want of disk space \(OperationalError: database or disk is full\)"):
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7,
             run_dir=tmp_path / "run").run(n_iterations=1, worker=compute)
    assert all(r["loss"] is not None for r in read_journal(tmp_path / "run") if r["type"] == "result")


@pytest.mark.processes
def test_numpys_short_write_to_a_full_disk_stops_the_run(tiny_disk, tmp_path):
    def compute(config_id, config, budget):  # numpy says "N requested and M written", with no errno
        np.full(4096, config["x"]).tofile(tiny_disk / f"{'-'.join(map(str, config_id))}-{budget:g}.bin")
        return loss(config, budget)

    with pytest.raises(OutOfSpaceError, match=r"want of disk space \(OSError: \d+ requested and \d+ written\)"):
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7,
             run_dir=tmp_path / "run").run(n_iterations=1, worker=compute)
    assert all(r["loss"] is not None for r in read_journal(tmp_path / "run") if r["type"] == "result")


@pytest.mark.parametrize("error", [OSError("8 requested and 0 written; see the log"),
                                   OSError(errno.EIO, "8 requested and 0 written"),
                                   ValueError("8 requested and 0 written")],
                         ids=["more words", "another code", "not an OSError"])
def test_only_numpys_own_short_write_counts_as_a_full_disk(tmp_path, error):
    result = BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7,
                  run_dir=tmp_path / "run").run(n_iterations=1, worker=filling([], 3, error))
    assert len(result.failed_runs()) == 1


def test_a_short_write_under_a_file_size_limit_stays_the_configurations_failure(tmp_path):
    # with `ulimit -f` a short write may be a file too large for the limit: the configuration's (helper-96)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 30, hard))
    try:
        result = BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7,
                      run_dir=tmp_path / "run").run(n_iterations=1, worker=filling(
                          [], 3, OSError("1000000 requested and 6144 written")))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert len(result.failed_runs()) == 1


def disk_filler(full_for: dict, calls: list):
    """A compute whose configuration (0, 0, 4) runs out of disk space in each of the next
    ``full_for["sessions"]`` sessions (each session's first try of it counts one)."""

    def compute(config_id, config, budget):
        calls.append(tuple(config_id))
        if tuple(config_id) == (0, 0, 4) and budget == 1 and full_for["sessions"] > 0:
            full_for["sessions"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device", f"/scratch/{config_id}.bin")
        return loss(config, budget)

    return compute


@pytest.mark.parametrize("threads", [None, 2])
@pytest.mark.parametrize("full_sessions, failed", [(2, 0), (5, 1)])
def test_a_disk_that_stays_full_stops_each_session_and_a_job_that_fills_it_fails_at_the_third(
        tmp_path, threads, full_sessions, failed, caplog):
    # a stop for want of space wrote no stop record: each resume took the session for a crash, and
    # at the third the job was recorded as failed as if it had killed the run (AbandonedJob)
    run_dir, full_for, calls = tmp_path / "run", {"sessions": full_sessions}, []
    optimizer = dict(min_budget=1, max_budget=27, eta=3, seed=7, run_dir=run_dir)
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    for session in range(2):  # then the third session: the disk has space again, or the job fails
        with pytest.raises(OutOfSpaceError, match=r"\(0, 0, 4\) at budget 1 .*want of disk space"):
            BOHB(space, **optimizer).run(n_iterations=4, worker=disk_filler(full_for, calls), resume=True,
                                         n_workers=threads)
        stops = [r for r in read_journal(run_dir) if r["type"] == "stop"]
        assert len(stops) == session + 1 and stops[-1]["signal"] is None and "(0, 0, 4)" in stops[-1]["reason"]
    caplog.clear()
    finished = BOHB(space, **optimizer).run(n_iterations=4, worker=disk_filler(full_for, calls), resume=True,
                                            n_workers=threads)
    assert len(finished.get_all_runs()) == TOY_RUNS
    assert [run.config_id for run in finished.failed_runs()] == [(0, 0, 4)] * failed
    if failed:
        assert "[Errno 28] No space left on device" in finished.failed_runs()[0].error_logs
        assert "AbandonedJob" not in finished.failed_runs()[0].error_logs
        assert "ran out of disk space, and stops ended 2 earlier sessions while it ran" in caplog.text
    assert "without a stop record" not in caplog.text


class OddError(Exception):
    """An exception whose parts misbehave, as a user's may."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how

    @property
    def __context__(self):  # type: ignore[override]
        if self.how == "context raises":
            raise RuntimeError("no context")
        return None

    @__context__.setter
    def __context__(self, value):
        pass

    @property
    def __cause__(self):  # type: ignore[override]
        return 42 if self.how == "cause not an exception" else None

    @__cause__.setter
    def __cause__(self, value):
        pass


class OddErrnoError(OSError):
    def __str__(self):
        raise RuntimeError("no text")


class TrickyText(str):
    def __getitem__(self, index):
        raise RuntimeError("no slicing")

    def lower(self):
        raise RuntimeError("no lower")


class TrickyTextError(Exception):
    def __str__(self):
        return TrickyText("odd text")


class FalseOSError(OSError):
    def __bool__(self):
        raise RuntimeError("no truth value")


@pytest.mark.parametrize("error", [OddError("context raises"), OddError("cause not an exception"),
                                   OSError(["not", "a", "number"], "odd"), OddErrnoError(errno.EIO, "odd"),
                                   TrickyTextError()],
                         ids=["context raises", "cause", "errno list", "str raises", "str subclass"])
def test_odd_exceptions_of_compute_are_failed_runs_and_the_run_goes_on(error):
    # the check for a full disk walked into them and ended the run with its own traceback
    result = BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7).run(
        n_iterations=1, worker=filling([], 3, error))
    assert len(result.failed_runs()) == 1 and len(result.get_all_runs()) > 3


def test_a_full_disk_error_without_a_truth_value_still_stops_the_run(tmp_path):
    with pytest.raises(OutOfSpaceError, match=r"\(FalseOSError: \[Errno 28\] No space left on device\)"):
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7, run_dir=tmp_path / "r").run(
            n_iterations=1, worker=filling([], 3, FalseOSError(errno.ENOSPC, "No space left on device")))


def test_the_words_of_a_full_disk_count_only_in_an_errors_message_not_a_log_it_quotes():
    log = "epoch 1: warning: cache write skipped (No space left on device)\n" + "x" * 3000
    error = RuntimeError("training diverged: loss is NaN\n" + "y" * 2500 + log)
    result = BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7).run(
        n_iterations=1, worker=filling([], 3, error))
    assert len(result.failed_runs()) == 1


def test_a_full_disk_with_an_unreadable_message_still_stops_the_run(tmp_path):
    with pytest.raises(OutOfSpaceError, match=r"\(OddErrnoError: \[Errno 28\] No space left on device\)"):
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7, run_dir=tmp_path / "r").run(
            n_iterations=1, worker=filling([], 3, OddErrnoError(errno.ENOSPC, "No space left on device")))


def test_a_checkpoint_that_cannot_be_saved_on_the_way_out_of_a_stop_leaves_a_clean_stop(tmp_path):
    # compute's finally saved a checkpoint on a full disk while a SIGTERM stopped it: the run ended
    # with the disk's error (exit 1, no stop record) instead of the stop's exit code 99
    def compute(config, budget):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        finally:
            raise OSError(errno.ENOSPC, "No space left on device", "checkpoint.pt")

    with pytest.raises(SystemExit) as stopped:
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7,
             run_dir=tmp_path / "run").run(n_iterations=1, worker=compute)
    assert stopped.value.code == 99
    recorded = read_journal(tmp_path / "run")
    assert recorded[-1]["type"] == "stop" and recorded[-1]["signal"] == signal.SIGTERM
    assert not [r for r in recorded if r["type"] == "result"]


def test_outcomes_that_finished_beside_a_full_disk_are_recorded_before_the_run_stops(tmp_path):
    # the thread executor raised at the full disk's future and dropped the results it had taken
    gate = threading.Barrier(2)

    def compute(config_id, config, budget, working_directory):
        gate.wait(timeout=10)
        if config_id[2] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return 1.0

    executor = ThreadExecutor(compute, str(tmp_path), n_workers=2)
    jobs = [Job((0, 0, i), {"x": 0.5}, 1.0) for i in range(2)]
    for job in jobs:
        executor.submit(job)
    while not all(future.done() for future in executor._running):
        time.sleep(0.01)
    finished = executor.drain()
    assert [(job.config_id, outcome.loss) for job, outcome in finished] == [((0, 0, 0), 1.0)]
    with pytest.raises(OutOfSpaceError, match=r"\(0, 0, 1\) at budget 1"):
        executor.idle_count()
    executor.close()


def test_status_says_why_a_full_disk_stopped_the_run(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(OutOfSpaceError):
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7, run_dir=run_dir).run(
            n_iterations=1, worker=filling([], 3, OSError(errno.ENOSPC, "No space left on device")))
    said = run_cli("status", str(run_dir))
    assert said.returncode == 0 and "stopped ((0, 0, 2) at budget 1 on serial@" in said.stdout, said.stdout
    assert "want of disk space" in said.stdout


def test_other_errors_of_compute_stay_the_configurations_failures(tmp_path):
    calls = []
    result = BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, seed=7).run(
        n_iterations=1, worker=filling(calls, 3, FileNotFoundError(errno.ENOENT, "No such file", "data.csv")))
    assert len(result.failed_runs()) == 1 and "FileNotFoundError" in result.failed_runs()[0].error_logs


@pytest.mark.processes
def test_a_compute_that_fills_its_scratch_disk_stops_the_run_and_resumes_without_a_failure(tiny_disk, tmp_path):
    run_dir = tmp_path / "run"  # on another file system than the full one, as $HOME and a scratch disk
    stopped = run_command(toy(run_dir, "--fill", str(tiny_disk)), timeout=60)
    assert stopped.returncode == 1, stopped.stderr[-3000:]
    # compute's own traceback (where the disk filled), then the run's error
    assert "in compute\n" in stopped.stderr and "The above exception was the direct cause" in stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1].startswith("mpibohb.evaluation.OutOfSpaceError: (")
    assert "compute failed for want of disk space (OSError: [Errno 28] No space left on device" in stopped.stderr
    recorded = read_journal(run_dir)
    assert all(r["loss"] is not None for r in recorded if r["type"] == "result")
    assert recorded[-1]["type"] == "stop" and recorded[-1]["signal"] is None \
        and "compute failed for want of disk space" in recorded[-1]["reason"], recorded[-1]
    for written in tiny_disk.iterdir():
        written.unlink()
    resumed = run_command(toy(run_dir, "--resume", "--fill", str(tmp_path)), timeout=60)
    assert resumed.returncode == 0 and f"RUNS {TOY_RUNS} FAILED 0" in resumed.stdout, resumed.stderr[-3000:]


@pytest.mark.mpiexec
def test_a_compute_that_fills_the_ranks_shared_disk_under_mpi_ends_the_job_with_one_line(tiny_disk,
                                                                                                  tmp_path):
    run_dir = tmp_path / "run"
    stopped = run_mpi(3, TOY, str(run_dir), "--fill", str(tiny_disk), timeout=120)
    assert stopped.returncode == 1 and "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
    said = [line for line in stopped.stderr.splitlines() if line.startswith("mpibohb: error on rank 0@")]
    assert len(said) == 1 and ": compute failed for want of disk space (OSError: [Errno 28] No space left on " \
        "device" in said[0] and re.search(r"\(\d+, \d+, \d+\) at budget \d+ on rank [12]@", said[0]), said
    recorded = read_journal(run_dir)
    assert not [r for r in recorded if r["type"] == "lost"], recorded  # the rank health may retry first
    assert recorded[-1]["type"] == "stop" and "compute failed for want of disk space" in recorded[-1]["reason"]
    assert all(r["loss"] is not None for r in recorded if r["type"] == "result")
    for written in tiny_disk.iterdir():
        written.unlink()
    resumed = run_mpi(3, TOY, str(run_dir), "--resume", "--fill", str(tmp_path), timeout=120)
    assert resumed.returncode == 0 and f"RUNS {TOY_RUNS} FAILED 0" in resumed.stdout, resumed.stderr[-3000:]


# ---------------------------------------------------------------- a run directory taken away


def taking_away(run_dir: Path, at_call: int, take_away) -> object:
    """A compute that calls ``take_away(run_dir)`` at its ``at_call``-th call (a scratch purge, a
    user's ``rm -r`` or ``mv`` while the run goes on)."""
    calls = []

    def compute(config, budget):
        calls.append(budget)
        if len(calls) == at_call:
            take_away(run_dir)
        return loss(config, budget)

    return compute


def whole_run_losses(tmp_path: Path) -> list[float]:
    small_run(tmp_path / "whole")
    return [r["loss"] for r in read_journal(tmp_path / "whole") if r["type"] == "result"]


def test_a_run_directory_deleted_mid_run_is_written_back_and_the_run_resumes_to_the_same_end(tmp_path, monkeypatch):
    monkeypatch.setattr("mpibohb.append_file.FSYNC_INTERVAL", 0.0)  # check at every write, not once a second
    run_dir = tmp_path / "run"
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    with pytest.raises(RunFileError, match=r"journal.jsonl: it was deleted, or its file system unmounted, while the "
                                           rf"run wrote it; its records were written back to {run_dir}/journal.jsonl: "
                                           r"resume the run") as raised:
        BOHB(space, min_budget=1, max_budget=27, eta=3, seed=7, run_dir=run_dir).run(
            n_iterations=1, worker=taking_away(run_dir, 5, shutil.rmtree))
    assert raised.value.errno == errno.ENOENT
    written_back = read_journal(run_dir)
    assert written_back[0]["type"] == "header" and results_in(run_dir) == 5  # the fifth's result too
    assert len((run_dir / "results.json").read_text().splitlines()) == 4  # the fifth's line never came
    lock_run_directory(run_dir).close()  # the lock went with the deleted directory
    small_run(run_dir, resume=True)
    assert [r["loss"] for r in read_journal(run_dir) if r["type"] == "result"] == whole_run_losses(tmp_path)
    assert len((run_dir / "results.json").read_text().splitlines()) == results_in(run_dir)


def test_a_run_directory_moved_mid_run_stops_the_run_and_resumes_once_moved_back(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("mpibohb.append_file.FSYNC_INTERVAL", 0.0)
    run_dir, moved = tmp_path / "run", tmp_path / "moved"
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    with pytest.raises(RunFileError, match=r"it was moved or replaced while the run wrote it "
                                           rf"\(it is now {moved}/journal.jsonl\); its records are in that file"):
        BOHB(space, min_budget=1, max_budget=27, eta=3, seed=7, run_dir=run_dir).run(
            n_iterations=1, worker=taking_away(run_dir, 5, lambda path: path.rename(moved)))
    assert not run_dir.exists() and results_in(moved) == 5
    assert caplog.text.count("journal.jsonl was moved") == 0  # the error said it, once
    moved.rename(run_dir)
    small_run(run_dir, resume=True)
    assert [r["loss"] for r in read_journal(run_dir) if r["type"] == "result"] == whole_run_losses(tmp_path)


def test_a_deleted_journal_is_written_back_beside_a_file_that_took_its_place(tmp_path, monkeypatch):
    monkeypatch.setattr("mpibohb.append_file.FSYNC_INTERVAL", 0.0)
    run_dir = tmp_path / "run"

    def replace_the_journal(path: Path) -> None:
        (path / "journal.jsonl").unlink()
        (path / "journal.jsonl").write_text("someone else's\n")

    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    beside = rf"{run_dir}/journal.jsonl.written-back-{socket.gethostname()}-{os.getpid()}-\d+"
    with pytest.raises(RunFileError, match=f"written back to {beside} \\(not at {run_dir}/journal.jsonl: another file "
                                           "stands there\\): put it as journal.jsonl in a run directory of its own"):
        BOHB(space, min_budget=1, max_budget=27, eta=3, seed=7, run_dir=run_dir).run(
            n_iterations=1, worker=taking_away(run_dir, 3, replace_the_journal))
    assert (run_dir / "journal.jsonl").read_text() == "someone else's\n"
    [copy] = run_dir.glob("journal.jsonl.written-back-*")
    assert read_journal(copy)[0]["type"] == "header" and copy.read_text().count('"type":"result"') == 3


def test_a_journal_with_no_place_left_in_its_run_directory_is_written_back_to_the_temporary_one(tmp_path, monkeypatch):
    # the copy went there, and the message blamed "another file" at a path where none stood (helper-97)
    monkeypatch.setattr("mpibohb.append_file.FSYNC_INTERVAL", 0.0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    run_dir = tmp_path / "run"

    def a_file_in_its_place(path: Path) -> None:
        shutil.rmtree(path)
        path.write_text("not a directory")

    with pytest.raises(RunFileError, match=rf"written back to {tmp_path}/tmp/journal.jsonl.written-back-\S+ \(not at "
                                           rf"{run_dir}/journal.jsonl: run_dir {run_dir} is a file, not a directory; "):
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, eta=3, seed=7,
             run_dir=run_dir).run(n_iterations=1, worker=taking_away(run_dir, 4, a_file_in_its_place))
    copies = {path.name.split(".written-back-")[0]: path for path in (tmp_path / "tmp").iterdir()}
    assert sorted(copies) == ["configs.json", "journal.jsonl", "results.json"]
    assert copies["journal.jsonl"].read_text().count('"type":"result"') == 4


def test_a_run_directory_deleted_after_the_last_check_is_written_back_at_the_end(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("mpibohb.append_file.FSYNC_INTERVAL", 1e9)  # no check before the end
    run_dir = tmp_path / "run"
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    optimizer = BOHB(space, min_budget=1, max_budget=27, eta=3, seed=7, run_dir=run_dir)
    result = optimizer.run(n_iterations=1, worker=taking_away(run_dir, 1, shutil.rmtree))
    assert "was deleted, or its file system unmounted, while the run wrote it; its records were written back" \
        in caplog.text
    assert results_in(run_dir) == len(result.get_all_runs()) and read_journal(run_dir)[-1]["type"] == "end"


def test_a_compute_that_changes_directory_does_not_move_a_relative_run_directory(tmp_path, monkeypatch):
    # the path was looked up again at each check, from the new working directory (helper-96)
    monkeypatch.setattr("mpibohb.append_file.FSYNC_INTERVAL", 0.0)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    result = BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, eta=3, seed=7,
                  run_dir="run").run(n_iterations=1, worker=taking_away(tmp_path / "elsewhere", 3, os.chdir))
    assert results_in(tmp_path / "run") == len(result.get_all_runs()) and not (tmp_path / "elsewhere" / "run").exists()


def test_a_linked_run_directory_whose_target_is_purged_is_written_back_to_the_target(tmp_path, monkeypatch):
    monkeypatch.setattr("mpibohb.append_file.FSYNC_INTERVAL", 0.0)
    (tmp_path / "scratch").mkdir()
    target, link = tmp_path / "scratch" / "run", tmp_path / "latest"
    target.mkdir()
    link.symlink_to(target)
    with pytest.raises(RunFileError, match=f"written back to {target}/journal.jsonl: resume the run"):
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, eta=3, seed=7, run_dir=link).run(
            n_iterations=1, worker=taking_away(target, 4, shutil.rmtree))
    small_run(link, resume=True)
    assert [r["loss"] for r in read_journal(target) if r["type"] == "result"] == whole_run_losses(tmp_path)


def test_a_failed_write_repeats_its_first_words_to_every_later_writer(tmp_path, monkeypatch):
    # the MPI death watch's thread may meet the failure first; rank 0's main thread said only
    # "an earlier write failed" (helper-96)
    monkeypatch.setattr("mpibohb.append_file.FSYNC_INTERVAL", 0.0)
    journal = AppendFile(tmp_path / "journal.jsonl")
    journal.write_line("{}")
    (tmp_path / "journal.jsonl").unlink()
    with pytest.raises(RunFileError, match="it was deleted") as first:
        journal.write_line("{}")
    with pytest.raises(RunFileError) as later:
        journal.write_line("{}")
    assert str(later.value) == str(first.value)
    journal.close()
    assert (tmp_path / "journal.jsonl").read_text() == "{}\n{}\n"


@pytest.mark.processes
def test_a_run_directory_on_a_file_system_unmounted_mid_run_is_written_back(tmp_path, monkeypatch):
    # Linux named the detached file's place as "/run/journal.jsonl", the system's /run (helper-96)
    monkeypatch.setattr("mpibohb.append_file.FSYNC_INTERVAL", 0.0)
    disk = mount_tmpfs(tmp_path, "4m")
    run_dir = disk / "run"
    try:
        with pytest.raises(RunFileError, match=f"unmounted, while the run wrote it; its records were written back to "
                                               f"{run_dir}/journal.jsonl"):
            BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0)}), min_budget=1, max_budget=27, eta=3, seed=7,
                 run_dir=run_dir).run(n_iterations=1, worker=taking_away(disk, 5, lambda path: subprocess.run(
                     ["umount", "-l", str(path)], check=True)))
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
    assert results_in(run_dir) == 5  # on the directory under the mount point, which is what the path names now


# ---------------------------------------------------------------- info


def test_an_info_over_the_limit_is_replaced_by_a_note_and_the_loss_kept(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MPIBOHB_MAX_INFO_BYTES", "20000")

    def worker(config_id, config, budget):
        kind = config_id[2] % 3
        info = [b"x" * 30_000, np.linspace(0, 1, 2000), {"small": 1}][kind]  # too large: pickled; as JSON; fine
        return {"loss": loss(config, budget), "info": info}

    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    result = BOHB(space, min_budget=1, max_budget=27, seed=7, run_dir=tmp_path / "run").run(
        n_iterations=1, worker=worker)
    for res in (result, load_result(tmp_path / "run")):
        runs = res.get_all_runs()
        assert all(run.loss is not None for run in runs)
        infos = {run.config_id[2] % 3: run.info for run in runs}
        assert infos[0] == ("<info dropped: 30,018 bytes pickled, over the limit of 20,000 bytes "
                            "(set MPIBOHB_MAX_INFO_BYTES to keep larger ones)>")
        assert infos[1].startswith("<info dropped: ") and " bytes as JSON, over the limit of 20,000 bytes" in infos[1]
        assert infos[2] == {"small": 1}
    assert sum(len((tmp_path / "run" / name).read_bytes()) for name in ("journal.jsonl", "results.json")) < 60_000
    assert "<info dropped: 30,018 bytes pickled" in caplog.text


@pytest.mark.mpiexec
def test_a_200_mb_info_under_mpi_is_not_sent_nor_stored(tmp_path):
    run_dir = tmp_path / "run"
    finished = run_mpi(3, TOY, str(run_dir), "--n_iterations", "1", "--info_bytes", str(200 * 2**20), timeout=180)
    assert finished.returncode == 0, finished.stderr[-3000:]
    runs = load_result(run_dir).get_all_runs()
    assert runs and all(run.loss is not None for run in runs)
    framing = len(pickle.dumps(b"x" * 2**20, protocol=pickle.HIGHEST_PROTOCOL)) - 2**20  # the same for 200 MiB
    assert {run.info for run in runs} == {f"<info dropped: {200 * 2**20 + framing:,} bytes pickled, over the limit "
                                          "of 1,000,000 bytes (set MPIBOHB_MAX_INFO_BYTES to keep larger ones)>"}
    assert sum(path.stat().st_size for path in run_dir.iterdir()) < 100_000


def test_a_bad_mpibohb_max_info_bytes_is_refused_before_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MPIBOHB_MAX_INFO_BYTES", "1MB")
    with pytest.raises(ValueError, match="MPIBOHB_MAX_INFO_BYTES='1MB' is not a number of bytes"):
        small_run(tmp_path / "run")


@pytest.mark.mpiexec
def test_a_full_disk_under_mpi_ends_the_job_with_one_line(tiny_disk):
    failed = run_mpi(3, TOY, str(tiny_disk / "run"), "--n_iterations", "8", timeout=120)
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert "Traceback" not in failed.stderr, failed.stderr[-3000:]
    assert "mpibohb: error on rank 0@" in failed.stderr and ": [Errno 28] cannot write " in failed.stderr
