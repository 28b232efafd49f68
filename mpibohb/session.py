"""The master's side of one call of ``run``: run directory, resume, warm start, graceful stop.

A resume rebuilds the optimizer by replaying its journal: a fresh optimizer with the journaled
seed is asked for jobs and told results in exactly the journaled order, which restores every
bracket and the random generator; jobs handed out but never finished are handed out again.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .executors import Executor
from .journal import FORMAT_VERSION, JOURNAL, LOCK, JournalError, RunDirectory, lock_run_directory, read_journal
from .loop import RunRecorder, run_loop
from .optimizer import Job, Optimizer
from .result import Result, load_result, result_from_records

logger = logging.getLogger("mpibohb")

EXIT_STOPPED = 99  # also what SGE takes as "requeue this job"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
_RESUME_INSENSITIVE = {"n_workers", "time_ref"}


class StopRequested(BaseException):
    """A stop signal arrived; raised from the signal handler, so it interrupts the master anywhere."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class RunStopped(SystemExit):
    """``run`` was stopped by a signal after recording everything; exit code :data:`EXIT_STOPPED`."""

    def __init__(self, signum: int) -> None:
        super().__init__(EXIT_STOPPED)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals(enabled: bool) -> Iterator[None]:
    """While active, SIGTERM, SIGINT and SIGUSR1 raise :class:`StopRequested` in the main thread."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, frame: Any) -> None:
        raise StopRequested(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def ignore_stop_signals() -> None:
    """For worker ranks: leave stopping to the master, which ends the job once it has recorded."""
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def open_run_directory(run_dir: str, resume: bool, overwrite: bool) -> list[dict[str, Any]] | None:
    """Check ``run_dir`` and return the journal records to resume from (``None``: a new run).

    Raises:
        FileExistsError: ``run_dir`` holds a run and neither ``resume`` nor ``overwrite`` is set.
        JournalError: its journal cannot be read.
    """
    path = Path(run_dir)
    journal = path / JOURNAL
    if not journal.exists() or journal.stat().st_size == 0:
        return None
    if overwrite:
        logger.warning("overwriting the run in %s", path)
        for name in os.listdir(path):
            if name == LOCK:
                continue
            target = path / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        return None
    if not resume:
        raise FileExistsError(f"{path} already holds a run ({journal}); pass resume=True to continue it "
                              "or overwrite=True to start afresh")
    return read_journal(journal)


def check_same_run(old: dict[str, Any], new: dict[str, Any], path: Path) -> None:
    """Raise ``ValueError`` naming what differs between a journaled run and this one."""
    old_settings = {k: v for k, v in old["settings"].items() if k not in _RESUME_INSENSITIVE}
    new_settings = {k: v for k, v in new["settings"].items() if k not in _RESUME_INSENSITIVE}
    differ = sorted(k for k in old_settings.keys() | new_settings.keys() if old_settings.get(k) != new_settings.get(k))
    if differ:
        shown = ", ".join(f"{k}: {old_settings.get(k)!r} -> {new_settings.get(k)!r}" for k in differ)
        raise ValueError(f"cannot resume the run in {path}: its settings differ ({shown})")
    if json.loads(old["configspace"]) != json.loads(new["configspace"]):
        raise ValueError(f"cannot resume the run in {path}: its search space differs")


def make_header(settings: dict[str, Any], configspace: Any, warm_start: list[list[Any]]) -> dict[str, Any]:
    """The journal's first record."""
    return {"type": "header", "format": FORMAT_VERSION, "settings": settings,
            "configspace": configspace_text(configspace), "created": time.time(),
            "warm_start": warm_start}


def configspace_text(configspace: Any) -> str:
    """The search space as ConfigSpace's JSON text."""
    buffer = io.StringIO()
    configspace.to_json(buffer)
    return buffer.getvalue()


def warm_start_observations(previous_result: Any) -> list[list[Any]]:
    """``[config, budget, loss or None]`` of every run of an earlier ``Result`` or run directory."""
    if previous_result is None:
        return []
    if not isinstance(previous_result, Result):
        previous_result = load_result(previous_result)
    configs = previous_result.get_id2config_mapping()
    return [[configs[run.config_id]["config"], run.budget, run.loss]
            for run in previous_result.get_all_runs() if run.config_id in configs]


def feed_warm_start(optimizer: Optimizer, space: Any, observations: list[list[Any]]) -> None:
    """Give the sampler the earlier runs, failed ones as loss +inf; skip configs not in this space."""
    skipped = 0
    for config, budget, loss in observations:
        try:
            vector = space.vector_of(config)
        except Exception:  # noqa: BLE001 - any config the space rejects
            skipped += 1
            continue
        optimizer.sampler.observe(vector, float(budget), math.inf if loss is None else float(loss))
    if observations:
        logger.info("warm start: %d earlier runs fed to the model, %d skipped (not in this search space)",
                    len(observations) - skipped, skipped)


def replay(optimizer: Optimizer, records: list[dict[str, Any]]) -> list[Job]:
    """Bring ``optimizer`` to the journaled state; return the jobs still to run, in hand-out order.

    Raises:
        JournalError: the journal was written by an optimizer that asks differently.
    """
    handed_out: dict[tuple[tuple[int, ...], float], Job] = {}
    for record in records:
        kind = record.get("type")
        if kind == "job":
            job = optimizer.ask()
            if job is None or list(job.config_id) != record["config_id"] or job.budget != record["budget"] \
                    or job.config != record["config"]:
                raise JournalError(f"the journal does not replay: it hands out {record['config_id']} at budget "
                                   f"{record['budget']}, this optimizer {job and job.config_id}")
            handed_out[(job.config_id, job.budget)] = job
        elif kind == "result":
            job = handed_out.pop((tuple(record["config_id"]), record["budget"]))
            optimizer.tell(job, math.inf if record["loss"] is None else record["loss"])
    return list(handed_out.values())


def _prepare_directory(family: Any, n_workers: int, resume: bool, overwrite: bool,
                       warm_start: list[list[Any]]) -> tuple[list[dict[str, Any]] | None, RunDirectory, dict[str, Any]]:
    """Lock the run directory, check it, and open it for writing; return the records to replay
    (``None`` for a new run), the directory, and the run's header."""
    lock = lock_run_directory(family.run_dir)
    try:
        records = open_run_directory(family.run_dir, resume, overwrite)
        if records is not None and not family.seed_given:
            family.seed = records[0]["settings"]["seed"]  # a resume continues the journaled stream
        header = make_header(dict(family.settings(), n_workers=n_workers), family.configspace, warm_start)
        if records is not None:
            check_same_run(records[0], header, Path(family.run_dir))
            header = records[0]
        directory = RunDirectory(family.run_dir, records, lock)
    except BaseException:
        lock.close()
        raise
    if records is None:
        directory.append(header)
    return records, directory, header


def run_master(family: Any, executor: Executor, n_iterations: int, n_workers: int, resume: bool,
               overwrite: bool, previous_result: Any) -> Result:
    """Run the optimisation on this process with ``executor``; journal it when there is a run_dir."""
    warm_start = warm_start_observations(previous_result)
    records, directory, created = None, None, None
    if family.run_dir is not None:
        records, directory, header = _prepare_directory(family, n_workers, resume, overwrite, warm_start)
        warm_start, created = header["warm_start"], header["created"]
    settings = dict(family.settings(), n_workers=n_workers)
    optimizer = family.make_optimizer(n_iterations)
    feed_warm_start(optimizer, family.space, warm_start)
    pending = replay(optimizer, records) if records else []
    previous = result_from_records(records) if records else None
    recorder = RunRecorder(settings, directory, created, previous)
    if records:
        logger.info("resuming %s: %d runs done, %d to run again", family.run_dir, len(previous.runs), len(pending))
    recorder.journal({"type": "session", "n_iterations": n_iterations, "started": time.time()})
    try:
        with stop_on_signals(directory is not None):
            run_loop(optimizer, executor, recorder, pending)
        recorder.journal({"type": "end", "time": time.time()})
    except StopRequested as stop:
        recorder.journal({"type": "stop", "signal": stop.signum, "time": time.time()})
        logger.warning("%s: everything so far is in %s; run again with resume=True to continue (exit code %d)",
                       stop, family.run_dir, EXIT_STOPPED)
        raise RunStopped(stop.signum) from None
    finally:
        executor.close()
        if directory is not None:
            directory.close()
    return recorder.result()
