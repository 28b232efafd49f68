"""The master's side of one call of ``run``: run directory, warm start, resume, graceful stop.

A resume rebuilds the optimizer by replaying its journal (:mod:`mpibohb.replay`), then runs the
jobs left open before any new one.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .ask_tell import Optimizer
from .bracket_plans import brackets_phrase
from .brackets import Job
from .checkpoints import CHECKPOINTS, CheckpointKeeper, claim_root, config_directories
from .evaluation import EvaluationFileError
from .executors import Executor
from .executors.simulated import SimulatedClock, SimulatedExecutor
from .files import refuse_link
from .journal import (
    CONFIGS,
    JOURNAL,
    RESULTS,
    JournalError,
    Record,
    RunDirectoryError,
    RunState,
    dropped_record,
    end_record,
    fold,
    has_complete_line,
    header_record,
    journaled_values,
    read_journal,
    session_record,
    stop_record,
    to_json,
    values_journaled_alike,
)
from .loop import RunRecorder, record_outcomes, run_loop
from .replay import MAX_ATTEMPTS, PendingJob, give_up_on_repeat_crashes, name_interrupted_jobs, replay
from .result import Result, load_result, result_from_state
from .run_directory import LOCK, RunDirectory, RunLock, lock_run_directory
from .samplers.models import TPE_KEPT_ON_RESUME
from .samplers.random import RandomSampler
from .space import SearchSpace
from .stopping import EXIT_STOPPED, RunStopped, StopFlag, StopRequested, stop_on_signals

logger = logging.getLogger("mpibohb")


class RunFamily(Protocol):
    """What a run needs of the optimizer a user made (:class:`mpibohb.BOHB` and its kin, a floor
    above this module): its settings, its search space, and a fresh ask/tell core."""

    name: str
    run_dir: str | None
    seed: int
    seed_given: bool
    configspace: Any
    space: SearchSpace
    eta: float
    budgets: list[float]
    brackets: int | None
    fill_tail: bool
    asynchronous: bool
    keep_busy: bool
    keep_checkpoints: str

    def settings(self) -> dict[str, Any]: ...

    def kept_on_resume(self, journaled: dict[str, Any]) -> dict[str, Any]: ...

    def resumed_with(self, kept: dict[str, Any]) -> AbstractContextManager[None]: ...

    def make_optimizer(self, n_iterations: int) -> Optimizer: ...

# where checkpoints go and which stay may change on resume (a moved scratch directory, less disk)
_RESUME_INSENSITIVE = {"n_workers", "time_ref", "checkpoint_root", "keep_checkpoints"}
# a journal written before a setting existed had its default
_SETTINGS_ADDED_LATER = {"fill_tail": False, "asynchronous": False, "model": "hpbandster",  # BOHB's default then
                         "keep_busy": False, "checkpoint_root": None, "keep_checkpoints": "incumbent", "brackets": None}
_KIND_SETTINGS = ("optimizer", "model")  # named first; with another, the parameters only one has are left out


def open_run_directory(run_dir: str, resume: bool, overwrite: bool) -> list[Record] | None:
    """Check ``run_dir`` and return the journal records to resume from (``None``: a new run).

    Raises:
        FileExistsError: ``run_dir`` holds a run and neither ``resume`` nor ``overwrite`` is set,
            or holds ``configs.json``/``results.json`` of another run (HpBandSter's logs) without
            our journal, and ``overwrite`` is not set (``resume`` cannot continue those).
        JournalError: its journal cannot be read.
    """
    path = Path(run_dir)
    journal = path / JOURNAL
    ours = journal.exists() and journal.stat().st_size > 0 and has_complete_line(journal)
    if not ours:
        _refuse_or_replace_foreign_logs(path, overwrite)
    if not journal.exists() or journal.stat().st_size == 0:
        return None
    if not ours:  # killed while writing its header: nothing was recorded
        logger.warning("%s holds only a torn first line (the run was killed while it started): starting afresh",
                       journal)
        journal.unlink()
        return None
    if overwrite:
        # the checkpoints under it say for themselves whether they go (checkpoints.claim_root)
        kept = sorted(set(os.listdir(path)) - {JOURNAL, CONFIGS, RESULTS, LOCK, CHECKPOINTS})
        logger.warning("overwriting the run in %s%s", path,
                       f" (only its {JOURNAL}, {CONFIGS} and {RESULTS}; other files stay: {', '.join(kept[:5])}"
                       f"{', ...' if len(kept) > 5 else ''})" if kept else "")
        for name in (JOURNAL, CONFIGS, RESULTS):
            (path / name).unlink(missing_ok=True)
        return None
    if not resume:
        raise FileExistsError(f"{path} already holds a run ({journal}); pass resume=True to continue it "
                              "or overwrite=True to start afresh")
    refuse_link(journal)  # it would be read, then refused for appending
    return read_journal(journal)


def foreign_logs(path: Path) -> list[str]:
    """The non-empty ``configs.json``/``results.json`` in ``path`` (call it when it holds no journal
    of ours): another run's logs, e.g. HpBandSter's ``json_result_logger``. Empty ones lose nothing."""
    return [name for name in (CONFIGS, RESULTS) if (path / name).is_file() and (path / name).stat().st_size > 0]


def _refuse_or_replace_foreign_logs(path: Path, overwrite: bool) -> None:
    """A run writes its own ``configs.json`` and ``results.json``: never over another run's unasked.

    Raises:
        FileExistsError: ``path`` holds such files and ``overwrite`` is not set.
    """
    found = foreign_logs(path)
    if not found:
        return
    names = " and ".join(found)
    if not overwrite:
        raise FileExistsError(
            f"{path} holds {names} of another run (HpBandSter's json_result_logger?) but no mpibohb journal; "
            f"a run there would replace them, and resume=True cannot continue them. To warm-start from them, "
            f"pass previous_result={str(path)!r} (--previous-result on the command line) and choose another run_dir; "
            "to replace them, delete them or pass overwrite=True")
    logger.warning("overwrite=True: replacing %s in %s (another run's logs, no mpibohb journal)", names, path)


def check_same_run(old: dict[str, Any], new: dict[str, Any], path: Path) -> None:
    """Raise :class:`RunDirectoryError` naming what differs between a journaled run and this one."""
    old_settings, new_settings = ({k: v for k, v in _with_later_settings(header["settings"]).items()
                                   if k not in _RESUME_INSENSITIVE} for header in (old, new))
    differ = _differing_settings(old_settings, new_settings)
    if differ:
        shown = ", ".join(f"{k}: {old_settings.get(k)!r} -> {new_settings.get(k)!r}" for k in differ)
        hint = ""
        if old_settings.get("model") == "tpe" and "multivariate" in differ and "multivariate" not in old_settings:
            hint = ("; the run was journaled before the tpe model's products of marginals (2026-12-04): resume it"
                    " with the mpibohb version that started it")
        if differ[0] == "model" and old_settings.get("model") == "hpbandster":
            hint = ("; BOHB's default model is 'tpe' since 2026-12-04: pass BOHB(model='hpbandster')"
                    " (python -m mpibohb run --model hpbandster) to resume a run of HpBandSter's model")
        raise RunDirectoryError(f"cannot resume the run in {path}: its settings differ ({shown}){hint}")
    old_space, new_space = json.loads(old["configspace"]), json.loads(new["configspace"])
    if old_space != new_space:
        raise RunDirectoryError(f"cannot resume the run in {path}: its search space differs "
                                f"({space_differences(old_space, new_space)})")


def space_differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs between two ConfigSpace JSON serialisations, in words (the run's, then this one's)."""
    if not all(_hyperparameters_listed(space) for space in (old, new)):
        return "not a ConfigSpace serialisation"
    before, after = ({h.get("name"): h for h in space["hyperparameters"]} for space in (old, new))
    said = [f"{name} is gone" for name in before if name not in after]
    said += [f"{name} is new" for name in after if name not in before]
    for name in (n for n in before if n in after and before[n] != after[n]):
        keys = [k for k in {**before[name], **after[name]} if before[name].get(k) != after[name].get(k)]
        said.append(f"{name}: " + ", ".join(f"{k} {_changed(before[name].get(k), after[name].get(k))}" for k in keys))
    said += [f"its {key} changed" for key in ("conditions", "forbiddens", "name") if old.get(key) != new.get(key)]
    return "; ".join(said[:6] + ([f"and {len(said) - 6} more"] if len(said) > 6 else [])) or "its serialisation"


def _changed(old: Any, new: Any, width: int = 40) -> str:
    """``old -> new`` as reprs cut to ``width``, each from a little before where they first differ."""
    texts = repr(old), repr(new)
    first = next((i for i, (a, b) in enumerate(zip(*texts)) if a != b), min(map(len, texts)))
    start = max(0, first - width // 3) if max(map(len, texts)) > width else 0
    return " -> ".join(("..." if start else "") + text[start:start + width] for text in texts)


def _hyperparameters_listed(space: dict[str, Any]) -> bool:
    hyperparameters = space.get("hyperparameters")
    return isinstance(hyperparameters, list) and all(isinstance(h, dict) for h in hyperparameters)


def _with_later_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the defaults of those added later; ``model`` only for BOHB, the one optimizer with
    one, and the tpe model's settings only for it."""
    later = {k: v for k, v in _SETTINGS_ADDED_LATER.items() if k != "model" or settings.get("optimizer") == "bohb"}
    if settings.get("model") == "tpe":
        later.update(TPE_KEPT_ON_RESUME)
    return {**later, **settings}


def _differing_settings(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The settings that differ, the optimizer and the model first; with another optimizer or model,
    not those that only one of the two has (a model's settings): they differ because it does."""
    keys = old.keys() | new.keys()
    if any(old.get(kind) != new.get(kind) for kind in _KIND_SETTINGS):
        keys = old.keys() & new.keys()
    first = {kind: place for place, kind in enumerate(_KIND_SETTINGS)}
    return sorted((k for k in keys if old.get(k) != new.get(k)), key=lambda k: (first.get(k, len(first)), k))


def configspace_text(configspace: Any) -> str:
    """The search space as ConfigSpace's JSON text (numpy values, which it cannot write itself, as
    the journal writes them)."""
    buffer = io.StringIO()
    try:
        configspace.to_json(buffer, default=to_json)
    except (TypeError, ValueError) as exc:  # e.g. a meta dict with tuple keys, which JSON cannot hold
        metas = [hp.name for hp in configspace.values() if getattr(hp, "meta", None) and not _writable(hp.meta)]
        where = f" (the meta of {', '.join(metas)})" if metas else ""
        raise ValueError(f"the search space cannot be written to the run's journal as JSON{where}: "
                         f"{type(exc).__name__}: {exc}") from None
    return buffer.getvalue()


def _writable(value: Any) -> bool:
    """Whether the journal's JSON can hold ``value``."""
    try:
        json.dumps(value, default=to_json)
        return True
    except (TypeError, ValueError):
        return False


def warm_start_observations(previous_result: Any) -> list[list[Any]]:
    """``[config, budget, loss or None]`` of every run of an earlier ``Result`` or run directory,
    after those of the runs that it was warm-started with (``Result.warm_start``): a chain of warm
    starts carries every earlier run, as HpBandSter's, whose ``Result`` holds them as iteration -1."""
    if previous_result is None:
        return []
    if not callable(getattr(previous_result, "get_all_runs", None)):  # a Result, mpibohb's or HpBandSter's
        try:
            previous_result = load_result(previous_result)
        except JournalError as exc:  # "no journal at DIR" alone would read as if about run_dir
            raise JournalError(f"previous_result: {exc}") from None
    configs = previous_result.get_id2config_mapping()
    earlier = getattr(previous_result, "warm_start", None) or []  # HpBandSter's Result has none: its runs hold them
    return [list(observation) for observation in earlier] + [
        [configs[run.config_id]["config"], run.budget, run.loss]
        for run in previous_result.get_all_runs() if run.config_id in configs]


def feed_warm_start(optimizer: Optimizer, space: Any, observations: list[list[Any]]) -> None:
    """Give the sampler the earlier runs, failed ones as loss +inf; skip configs not in this space.
    Values as a journal holds them (a choice that is a tuple, as a list) are the space's own again."""
    skipped = 0
    choices = _journaled_choices(space.configspace)
    for config, budget, loss in observations:
        try:
            vector = space.vector_of({name: _from_journal(choices.get(name), value) for name, value in config.items()})
        except Exception:  # noqa: BLE001 - any config the space rejects
            skipped += 1
            continue
        optimizer.sampler.observe(vector, float(budget), math.inf if loss is None else float(loss))
    if observations:
        log = logger.warning if skipped else logger.info
        log("warm start: %d earlier runs fed to the %s, %d skipped (not in this search space)",
            len(observations) - skipped, "sampler, which samples at random and does not use them"
            if isinstance(optimizer.sampler, RandomSampler) else "model", skipped)


def _journaled_choices(configspace: Any) -> dict[str, dict[str, Any]]:
    """Per hyperparameter: its values by their journaled JSON text (:func:`journaled_values`)."""
    return {hyperparameter.name: journaled_values(hyperparameter) for hyperparameter in configspace.values()}


def _native(result: Result, space: Any) -> Result:
    """``result`` (read from the journal) with the space's own values where JSON changed them (a
    tuple read back as a list), as the runs of this session will have them."""
    choices = _journaled_choices(space.configspace)
    for entry in result.id2config.values():
        entry["config"] = {name: _from_journal(choices.get(name), value) for name, value in entry["config"].items()}
    return result


def _from_journal(choices: dict[str, Any] | None, value: Any) -> Any:
    if not choices or not isinstance(value, (list, str)):  # others read back as they were written
        return value
    return choices.get(json.dumps(value), value)


def _prepare_directory(family: RunFamily, run_dir: str, n_workers: int, resume: bool, overwrite: bool,
                       warm_start: Callable[[], list[list[Any]]],
                       now: float, checkpoint_root: str | None, executor: str
                       ) -> tuple[list[Record] | None, RunDirectory, Record, dict[str, Any]]:
    """Lock the run directory, check it (and, for a new run, that ``checkpoint_root`` holds no
    other run's checkpoints), and open it for writing; return the records to replay (``None`` for
    a new run), the directory, the run's header, and the model settings a resume keeps as
    journaled (``family.kept_on_resume``)."""
    lock_file = Path(run_dir) / LOCK
    lock_was_there, directory_was_there = lock_file.exists(), Path(run_dir).exists()
    lock = lock_run_directory(run_dir)
    try:
        # a new run's warm start is read before overwrite deletes anything (it may be this directory's run)
        early = None if resume else warm_start()
        records = open_run_directory(run_dir, resume, overwrite)
        alike = values_journaled_alike(family.configspace) if records is not None else None
        if alike:
            raise RunDirectoryError(f"cannot resume the run in {run_dir}: {alike}")
        if records is not None and not family.seed_given:
            family.seed = records[0]["settings"]["seed"]  # a resume continues the journaled stream
        kept = family.kept_on_resume(records[0]["settings"]) if records is not None else {}
        if records is not None:
            observations: list[list[Any]] = []  # a resume keeps the journaled warm start
        else:  # a new run (also resume=True on a directory without one)
            observations = early if early is not None else warm_start()
        header = header_record(dict(family.settings(), **kept, n_workers=n_workers),
                               configspace_text(family.configspace), observations, now)
        if records is not None:
            check_same_run(records[0], header, Path(run_dir))
            _refuse_another_clock(records, executor, Path(run_dir))
            header = records[0]
            if kept:
                logger.info("resuming with the model settings the run was journaled with, from before their "
                            "defaults changed: %s", ", ".join(f"{name}={value!r}" for name, value in kept.items()))
        if checkpoint_root is not None:
            if not _same_directory(checkpoint_root, run_dir):
                lock.adopt(lock_checkpoint_root(checkpoint_root))
            _claim_checkpoint_root(checkpoint_root, header, records, run_dir, overwrite)
        directory = RunDirectory(run_dir, fold(records) if records is not None else None, lock)
    except BaseException:
        if not lock_was_there:  # a refused directory (e.g. HpBandSter's logs) is left as it was
            lock_file.unlink(missing_ok=True)
        else:
            lock.restore_holder()
        lock.close()
        if not directory_was_there:  # a run refused before its first record leaves no empty directory
            with contextlib.suppress(OSError):
                Path(run_dir).rmdir()
        raise
    if records is None:
        try:
            directory.append(header)
        except BaseException:
            directory.close()  # releases the lock; quiet after a failed write
            raise
    return records, directory, header, kept


def run_master(family: RunFamily, executor: Executor, n_iterations: int, n_workers: int, resume: bool,
               overwrite: bool, previous_result: Any, clock: Callable[[], float] = time.time,
               checkpoint_root: str | None = None) -> Result:
    """Run the optimisation on this process with ``executor``; journal it when there is a run_dir.
    ``clock`` gives the time of the run's records (a simulated one in :func:`mpibohb.simulate`);
    with ``checkpoint_root``, the directories there of configurations that can no longer be
    promoted are deleted as the run goes (see :class:`~mpibohb.checkpoints.CheckpointKeeper`).

    Raises:
        RunStopped: a stop signal arrived (only with a run_dir); everything received is recorded.
    """
    opened = _open_run(family, executor, n_workers, resume, overwrite, previous_result, clock, checkpoint_root)
    stop = StopFlag()
    with stop_on_signals(stop, enabled=opened.directory is not None), family.resumed_with(opened.kept):
        try:
            optimizer, state, replayed = _rebuild(family, n_iterations, opened.warm_start, opened.records, stop)
            if state is not None and isinstance(clock, SimulatedClock):
                clock.continue_from(state.last_time)  # simulated seconds go on from the journal's, not from 0
            previous = _native(result_from_state(state), family.space) if state is not None else None
            recorder = RunRecorder(dict(family.settings(), n_workers=n_workers), opened.directory, opened.created,
                                   previous, clock, opened.warm_start)
            keeper, alone, pending = _start_session(family, executor, optimizer, recorder, state, replayed, previous,
                                                    n_iterations, n_workers, checkpoint_root)
            _run_until_done_or_stopped(optimizer, executor, recorder, alone, pending, stop, family.run_dir, keeper)
        finally:
            executor.close()
            if opened.directory is not None:
                opened.directory.close()
            if opened.root_lock is not None:
                opened.root_lock.close()
    return recorder.result()


@dataclass
class _OpenedRun:
    """A run's directory opened (or none), and what its journal gives the new session."""

    records: list[Record] | None  # to replay; None for a new run
    directory: RunDirectory | None
    created: float | None
    warm_start: list[list[Any]]
    kept: dict[str, Any]  # model settings a resume keeps as journaled
    root_lock: RunLock | None  # a checkpoint root of a run without run_dir (else the directory holds it)


def _open_run(family: RunFamily, executor: Executor, n_workers: int, resume: bool, overwrite: bool,
              previous_result: Any, clock: Callable[[], float], checkpoint_root: str | None) -> _OpenedRun:
    """Lock and open the run directory (a resume keeps the warm start journaled: previous_result is
    not read), or, without one, claim ``checkpoint_root`` for this run."""
    if family.run_dir is not None:
        records, directory, header, kept = _prepare_directory(
            family, family.run_dir, n_workers, resume, overwrite, lambda: warm_start_observations(previous_result),
            clock(), checkpoint_root, type(executor).__name__)
        if records is not None and previous_result is not None:
            logger.info("resuming: the run keeps the warm start it started with (%d earlier runs); "
                        "previous_result is not read again", len(header["warm_start"]))
        return _OpenedRun(records, directory, header["created"], header["warm_start"], kept, None)
    warm_start = warm_start_observations(previous_result)
    root_lock = None
    if checkpoint_root is not None:
        root_lock = lock_checkpoint_root(checkpoint_root)
        try:
            claim_root(checkpoint_root, secrets.token_hex(8), new_run=True, overwrite=overwrite)
        except BaseException:
            root_lock.close()
            raise
    return _OpenedRun(None, None, None, warm_start, {}, root_lock)


def _start_session(family: RunFamily, executor: Executor, optimizer: Optimizer, recorder: RunRecorder,
                   state: RunState | None, replayed: list[PendingJob], previous: Result | None, n_iterations: int,
                   n_workers: int, checkpoint_root: str | None
                   ) -> tuple[CheckpointKeeper | None, list[Job], list[Job]]:
    """Journal the session, settle the jobs a resume found open (drop those the run no longer
    needs, give up on those that kept killing the run), tell the executor their history; the
    checkpoint keeper and the jobs to run first (one at a time) and again."""
    session_started = recorder.clock()
    recorder.journal(session_record(n_iterations, n_workers, type(executor).__name__, session_started,
                                    checkpoint_root))
    if recorder.directory is not None:  # without one, nothing is kept (the executors' default)
        executor.set_journal(recorder.journal)
    optimizer.start_session(n_iterations, n_workers, session_started)  # where a replay starts it: at its record
    if state is not None:
        name_interrupted_jobs(replayed, state)
    replayed = _drop_unneeded(optimizer, recorder, replayed)
    _log_settings(family, n_iterations, n_workers)
    keeper = _checkpoint_keeper(checkpoint_root, family.keep_checkpoints, optimizer, previous)
    alone, pending = give_up_on_repeat_crashes(replayed, optimizer, recorder, keeper)
    executor.note_earlier_deaths({(e.job.config_id, e.job.budget): len(e.evidence) for e in replayed if e.evidence})
    executor.note_earlier_stops({(e.job.config_id, e.job.budget): e.stops for e in replayed if e.stops})
    if previous is not None:
        logger.info("resuming %s: %d runs done, %d to run again", family.run_dir, len(previous.runs),
                    len(alone) + len(pending))
    if alone:
        logger.warning("%d jobs were running each time the run died (%d times): they run again one at "
                       "a time, beside other jobs, to find the one that kills it", len(alone), MAX_ATTEMPTS - 1)
    return keeper, alone, pending


def _drop_unneeded(optimizer: Optimizer, recorder: RunRecorder, replayed: list[PendingJob]) -> list[PendingJob]:
    """Drop the open jobs the run no longer needs (``keep_busy``'s extra jobs that ran when the last
    session ended), journaled so that a replay drops them too; the open jobs left."""
    dropped = optimizer.drop_unneeded()
    if not dropped:
        return replayed
    now = recorder.clock()
    for job in dropped:
        recorder.journal(dropped_record(job, "an extra job (keep_busy) that ran when the last session ended: the "
                                             "run does not need it", now))
    logger.info("keep_busy: the extra jobs that ran when the last session ended are not run again (%d; they used "
                "its idle time, and the run does not need them)", len(dropped))
    keys = {(job.config_id, job.budget) for job in dropped}
    return [entry for entry in replayed if (entry.job.config_id, entry.job.budget) not in keys]


def _refuse_another_clock(records: list[Record], executor: str, path: Path) -> None:
    """Raise :class:`RunDirectoryError` if a simulated session would continue a real run, or a
    real one a simulated run: their time stamps (simulated seconds from 0, or Unix time) do not mix."""
    simulated = executor == SimulatedExecutor.__name__
    before = {record.get("executor") == SimulatedExecutor.__name__ for record in records if record["type"] == "session"}
    if before and before != {simulated}:
        made = "mpibohb.simulate" if simulated else "run"
        raise RunDirectoryError(f"cannot resume the run in {path} with {made}: it was "
                                f"{'run for real' if simulated else 'simulated'}, and simulated seconds and real "
                                "time stamps do not mix in one journal; give this run another run_dir")


def _rebuild(family: RunFamily, n_iterations: int, warm_start: list[list[Any]], records: list[Record] | None,
             stop: StopFlag) -> tuple[Optimizer, RunState | None, list[PendingJob]]:
    """A fresh optimizer, warm-started and brought to the journaled state (see
    :func:`~mpibohb.replay.replay`); the journal's state (``None`` for a new run); the jobs to
    run again.

    A long journal takes long to replay, and nothing is written meanwhile, so a stop signal
    interrupts this at once (a journal that does not replay leaves no record either).

    Raises:
        RunStopped: a stop signal arrived; nothing new was recorded.
    """
    try:
        with stop.interruptible_section():
            if records:
                logger.info("%s: replaying the journal's %d records", family.run_dir, len(records))
            optimizer = family.make_optimizer(n_iterations)
            feed_warm_start(optimizer, family.space, warm_start)
            state, replayed = replay(optimizer, records) if records else (None, [])
            optimizer.pop_notices()  # progress lines of the past, said when they happened
    except StopRequested as stopped:
        logger.warning("%s while the run resumed: nothing new was recorded; run again with resume=True (or the "
                       "same command line) to continue (exit code %d)", stopped, EXIT_STOPPED)
        raise RunStopped(stopped.signum) from None
    return optimizer, state, replayed


def _log_settings(family: RunFamily, n_iterations: int, n_workers: int) -> None:
    """One line at the start: what runs, on how many workers, where."""
    def count(n: int, noun: str) -> str:
        return f"{n} {noun}{'' if n == 1 else 's'}"

    budgets = ", ".join(f"{budget:g}" for budget in family.budgets)
    brackets = brackets_phrase(family.brackets)
    logger.info("%s: %s, budgets %s (eta %g)%s, %s, seed %d, %s%s%s", family.name, count(n_iterations, "iteration"),
                budgets, family.eta, brackets, count(n_workers, "worker"), family.seed,
                f"run_dir {family.run_dir}" if family.run_dir is not None else "no run_dir",
                ", fill_tail" if family.fill_tail else ", asynchronous" if family.asynchronous else "",
                ", keep_busy" if family.keep_busy else "")


def lock_checkpoint_root(root: str) -> RunLock:
    """Hold ``root`` for this session, as a run directory is held: two new runs that start together
    on one root would both find it without checkpoints and claim it.

    Raises:
        FileExistsError: another run holds it.
        ValueError: ``root`` cannot be made a directory or written.
    """
    try:
        return lock_run_directory(root)
    except FileExistsError as exc:
        raise FileExistsError(f"checkpoint_root {exc}") from None
    except OSError as exc:
        raise ValueError(f"checkpoint_root {root} cannot be made or written: {exc}") from None


def _same_directory(one: str, other: str) -> bool:
    with contextlib.suppress(OSError):
        return os.path.samefile(one, other)
    return False


def _claim_checkpoint_root(root: str, header: Record, records: list[Record] | None, run_dir: str,
                           overwrite: bool) -> None:
    """Claim ``root`` for the run whose ``header`` this is (see
    :func:`~mpibohb.checkpoints.claim_root`); on a resume with another root than the latest
    session's, say where the earlier checkpoints are."""
    run_id = header.get("run_id") or repr(header["created"])  # journals before run_id: the creation stamp
    claim_root(root, run_id, new_run=records is None, overwrite=overwrite)
    if records is None:
        return
    roots = [r["checkpoint_root"] for r in records if r["type"] == "session" and r.get("checkpoint_root")]
    before = roots[-1] if roots else \
        header["settings"].get("checkpoint_root") or os.path.abspath(os.path.join(run_dir, CHECKPOINTS))
    if os.path.abspath(before) == root:
        return
    elsewhere = sorted(set(config_directories(before)) - set(config_directories(root)))  # a copy in root counts
    if elsewhere:
        logger.warning("%d checkpoint directories of this run are in %s, not in %s where this session keeps them: "
                       "those configurations start from zero if promoted; move the directories there to continue "
                       "from them", len(elsewhere), before, root)


def _checkpoint_keeper(root: str | None, keep: str, optimizer: Optimizer,
                       previous: Result | None) -> CheckpointKeeper | None:
    """The keeper of the checkpoint directories under ``root`` (``None``: none kept), brought up to
    date with a resumed run: what was retired before (deleted again, in case the run died first)."""
    if root is None:
        return None
    keeper = CheckpointKeeper(root, keep)
    for run in previous.runs if previous is not None else ():
        keeper.observe(run.config_id, run.budget, run.loss)
    keeper.retire(optimizer.pop_retired())
    return keeper


def _run_until_done_or_stopped(optimizer: Optimizer, executor: Executor, recorder: RunRecorder, alone: list[Job],
                               pending: list[Job], stop: StopFlag, run_dir: str | None,
                               keeper: CheckpointKeeper | None = None) -> None:
    try:
        run_loop(optimizer, executor, recorder, pending, stop, alone=alone, keeper=keeper)
    except StopRequested as stopped:
        record_outcomes(optimizer, recorder, executor.drain(), keeper)
        recorder.session_ended()
        recorder.journal(stop_record(stopped.signum, recorder.clock()))
        logger.warning("%s: everything so far is in %s; run again with resume=True (or the same command line) to "
                       "continue (exit code %d)", stopped, run_dir, EXIT_STOPPED)
        raise RunStopped(stopped.signum) from None
    except EvaluationFileError as failed:  # a stop, not a kill: a resume must not count it against the jobs that ran
        record_outcomes(optimizer, recorder, executor.drain(), keeper)
        recorder.session_ended()
        with contextlib.suppress(OSError):  # the journal's disk may be the full one: the session then reads as killed
            recorder.journal(stop_record(None, recorder.clock(), reason=str(failed)))
        raise
    if keeper is not None:
        keeper.finish()
    recorder.session_ended()
    recorder.journal(end_record(recorder.clock()))
