"""The journal of a run: what its records are, how they are written as JSON, read, and folded.

``journal.jsonl`` in a run directory holds one JSON object per line, in the order the master did
things; its ``"type"`` is one of :class:`Kind`. :data:`RECORDS` lists each kind's fields, and one
function per kind makes its records (:func:`header_record` ... :func:`lost_record`):

* ``header``: the first line, once per run directory: the format, the settings, the search
  space (ConfigSpace's JSON), the creation time and the warm start's observations;
* ``session``: each call of ``run`` (a resume adds one): its iterations, workers and executor;
* ``job``: a job handed out by the optimizer, with its configuration, worker and
  ``previous_budget`` (the largest budget its configuration succeeded on before, ``null`` the
  first time); ``resubmit``: one handed out again after a resume (not an ``ask`` of the optimizer);
* ``result``: what came of a job: loss (``null`` when it failed), info, error, times, worker,
  ``previous_budget``;
* ``stop`` (a stop signal: the session ended cleanly) and ``end`` (the run finished);
* ``dropped``: a job open since before a resume that the new session does not run again
  (``keep_busy``'s extra jobs: they used idle time of the session that ended, and the run does
  not need them); it has no result and is no longer open;
* under MPI, what the executor decides itself: ``retry`` (a failure held back and run again on
  another rank), ``interrupted`` (a stop signal reached compute: it runs again), ``retired`` and
  ``reinstated`` (a rank taken out of service, and back), and ``lost`` (a worker rank died, with
  the job it ran: the evidence a resume needs to blame that job, unless another rank's death came
  first since the job was handed out: then the launcher's kill of the others may explain it).

A config id is HpBandSter's triple ``[iteration, 0, index]``: the bracket, 0 (HpBandSter's middle
element, which mpibohb never varies) and the configuration's index in its bracket.

:func:`fold` reads the records into a :class:`RunState` (the jobs handed out, the results, the
jobs still open and the evidence against them, the sessions); every reader uses it: the
resume's replay (:mod:`mpibohb.replay`), ``load_result``, the rewrite of the HpBandSter files
and ``status``/``report`` (:mod:`mpibohb.summary`). Journals of format 1 written by earlier
versions lack some fields (a session's ``n_workers`` and ``executor``, a job's ``worker`` and ``previous_budget``):
readers take them as unknown. A torn last line (a crash mid-write) is ignored by the reader.
Writing the journal is :mod:`mpibohb.run_directory`'s job.
"""

from __future__ import annotations

import enum
import itertools
import json
import logging
import math
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .evaluation import info_note, max_info_bytes
from .values import choice_values, without_addresses

if TYPE_CHECKING:
    from .brackets import Job
    from .evaluation import Outcome

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
JOURNAL = "journal.jsonl"
CONFIGS = "configs.json"
RESULTS = "results.json"

Record = dict[str, Any]
JobKey = tuple[tuple[int, ...], float]  # a job: its config id and budget


class JournalError(ValueError):
    """The journal cannot be read or does not belong to this optimizer."""


class RunDirectoryError(ValueError):
    """The run directory holds a run that this call cannot continue (other settings)."""


# ---------------------------------------------------------------- the records


class Kind(str, enum.Enum):
    """The ``"type"`` of a journal record (the JSON holds its value)."""

    HEADER = "header"
    SESSION = "session"
    JOB = "job"
    RESUBMIT = "resubmit"
    RESULT = "result"
    STOP = "stop"
    END = "end"
    RETRY = "retry"
    INTERRUPTED = "interrupted"
    RETIRED = "retired"
    REINSTATED = "reinstated"
    LOST = "lost"
    DROPPED = "dropped"


@dataclass(frozen=True)
class Shape:
    """A kind's fields: those ``written`` (besides ``type``) by this version, and those
    ``required``: every journal has them and its readers need them (a record without one is
    refused, naming it); the others may be missing from older journals."""

    written: tuple[str, ...]
    required: tuple[str, ...] = ()


_HANDED_OUT = ("config_id", "budget", "config", "config_info", "submitted", "worker", "previous_budget")
_RESULT = ("config_id", "budget", "loss", "info", "error", "started", "finished", "worker", "previous_budget")
RECORDS: dict[Kind, Shape] = {
    Kind.HEADER: Shape(("format", "settings", "configspace", "created", "warm_start", "run_id"),
                       ("settings", "created")),
    Kind.SESSION: Shape(("n_iterations", "n_workers", "started", "executor", "checkpoint_root")),
    Kind.JOB: Shape(_HANDED_OUT, _HANDED_OUT[:-2]),
    Kind.RESUBMIT: Shape(_HANDED_OUT, _HANDED_OUT[:-2]),
    Kind.RESULT: Shape(_RESULT, _RESULT[:-2]),
    Kind.STOP: Shape(("signal", "time", "reason")),  # reason: only when no signal stopped it
    Kind.END: Shape(("time",)),
    Kind.RETRY: Shape(("config_id", "budget", "worker", "error", "time")),
    Kind.INTERRUPTED: Shape(("config_id", "budget", "worker", "signal", "time")),
    Kind.RETIRED: Shape(("worker", "reason", "time")),
    Kind.REINSTATED: Shape(("worker", "time")),
    # the job's fields when it ran one; blames_job: whether its death counts against the job
    Kind.LOST: Shape(("worker", "reason", "time", "config_id", "budget", "blames_job")),
    Kind.DROPPED: Shape(("config_id", "budget", "reason", "time"), ("config_id", "budget")),
}


def _record(kind: Kind, **fields: Any) -> Record:
    return {"type": kind.value, **fields}


def _now(when: float | None) -> float:
    return time.time() if when is None else when


def header_record(settings: dict[str, Any], configspace: str, warm_start: list[list[Any]],
                  created: float | None = None) -> Record:
    """The first record: ``configspace`` is ConfigSpace's JSON text, ``warm_start`` the earlier
    runs fed to the model, as ``[config, budget, loss or None]``; ``run_id`` a random name of the
    run (its checkpoint root says whose it is)."""
    return _record(Kind.HEADER, format=FORMAT_VERSION, settings=settings, configspace=configspace,
                   created=_now(created), warm_start=warm_start, run_id=secrets.token_hex(8))


def session_record(n_iterations: int, n_workers: int, executor: str, started: float | None = None,
                   checkpoint_root: str | None = None) -> Record:
    """A call of ``run`` starts; ``executor`` is its executor's class name; ``checkpoint_root``
    where it keeps checkpoints (``None``: its compute keeps none)."""
    return _record(Kind.SESSION, n_iterations=n_iterations, n_workers=n_workers, started=_now(started),
                   executor=executor, checkpoint_root=checkpoint_root)


def job_record(job: Job, worker: str, resubmit: bool = False, submitted: float | None = None) -> Record:
    """``job`` handed out to ``worker`` (``resubmit``: again, after a resume)."""
    return _record(Kind.RESUBMIT if resubmit else Kind.JOB, config_id=list(job.config_id), budget=job.budget,
                   config=job.config, config_info=job.config_info, submitted=_now(submitted), worker=worker,
                   previous_budget=job.previous_budget)


def result_record(job: Job, outcome: Outcome, info: Any) -> Record:
    """What came of ``job``; ``info`` is the outcome's as it is stored (see :func:`storable_info`)."""
    return _record(Kind.RESULT, config_id=list(job.config_id), budget=job.budget, loss=outcome.loss, info=info,
                   error=outcome.error, started=outcome.started, finished=outcome.finished, worker=outcome.worker,
                   previous_budget=job.previous_budget)


def stop_record(signum: int | None, when: float | None = None, reason: str | None = None) -> Record:
    """A stop signal ended the session, after everything was recorded; or (``signum`` ``None``)
    ``reason`` did: a compute that ran out of disk space."""
    record = _record(Kind.STOP, signal=signum, time=_now(when))
    if reason is not None:
        record["reason"] = reason
    return record


def end_record(when: float | None = None) -> Record:
    """The run finished."""
    return _record(Kind.END, time=_now(when))


def retry_record(job: Job, worker: str, error: str | None, when: float | None = None) -> Record:
    """``job`` failed on ``worker`` and runs again on another rank; the failure is not recorded."""
    return _record(Kind.RETRY, config_id=list(job.config_id), budget=job.budget, worker=worker, error=error,
                   time=_now(when))


def interrupted_record(job: Job, worker: str, signum: int | None, when: float | None = None) -> Record:
    """A stop signal reached ``job``'s compute on ``worker``: it runs again, not recorded as failed."""
    return _record(Kind.INTERRUPTED, config_id=list(job.config_id), budget=job.budget, worker=worker,
                   signal=signum, time=_now(when))


def retired_record(worker: str, reason: str, when: float | None = None) -> Record:
    """``worker`` is taken out of service."""
    return _record(Kind.RETIRED, worker=worker, reason=reason, time=_now(when))


def reinstated_record(worker: str, when: float | None = None) -> Record:
    """``worker`` is back in service."""
    return _record(Kind.REINSTATED, worker=worker, time=_now(when))


def lost_record(worker: str, reason: str, job: Job | None = None, when: float | None = None,
                blames_job: bool = True) -> Record:
    """``worker``'s process ended, while running ``job`` (``None``: while idle); ``blames_job``:
    the death counts against the job (no other worker was seen to die since it was handed out)."""
    record = _record(Kind.LOST, worker=worker, reason=reason, time=_now(when))
    if job is not None:
        record.update(config_id=list(job.config_id), budget=job.budget, blames_job=blames_job)
    return record


def dropped_record(job: Job, reason: str, when: float | None = None) -> Record:
    """``job``, open since before a resume, is not run again, for ``reason``."""
    return _record(Kind.DROPPED, config_id=list(job.config_id), budget=job.budget, reason=reason, time=_now(when))


def kind_of(record: Record) -> Kind | None:
    """The record's kind; ``None`` for a type this version does not know (readers skip it)."""
    try:
        return Kind(record.get("type"))
    except ValueError:
        return None


def job_key(record: Record) -> JobKey:
    """The job a record is about: its config id and budget."""
    return tuple(record["config_id"]), record["budget"]


# ---------------------------------------------------------------- JSON


def to_json(value: Any) -> Any:
    """``json.dumps``' fallback: numpy scalars and arrays as numbers and lists, anything else
    JSON does not know as its ``repr``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return _safe_repr(value)


def _finite(value: Any, depth: int = 0) -> Any:
    """``value`` with non-finite floats (which strict JSON has no word for) as strings, and
    anything nested too deep (or in a cycle) as a note."""
    if depth > 50:
        return "<nested too deep>"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, depth + 1) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return _finite(to_json(value), depth + 1)
    return value


def _safe_repr(value: Any) -> str:
    """``repr(value)`` without memory addresses (``<function relu at 0x7f..>`` as ``<function relu>``):
    they differ in every process, and a space that holds such a value must read the same on resume."""
    try:
        return without_addresses(repr(value))
    except Exception as exc:  # noqa: BLE001 - a user object whose repr fails
        return f"<{type(value).__name__} whose repr fails: {type(exc).__name__}>"


def _strict_json(value: Any) -> str:
    return json.dumps(value, default=to_json, allow_nan=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Strict JSON of ``value`` on one line; never fails on odd user data (a record's ``info``
    that cannot be written at all becomes a note saying so)."""
    try:
        return _strict_json(value)
    except (ValueError, TypeError, RecursionError):
        pass
    try:
        return _strict_json(_finite(value))
    except (ValueError, TypeError, RecursionError) as exc:
        if not (isinstance(value, dict) and "info" in value):
            raise
        note = f"<info not JSON-serialisable: {type(exc).__name__}: {_safe_repr(value['info'])[:200]}>"
        return dumps({**value, "info": note})



def as_journaled(value: Any) -> Any:
    """``value`` as a journal reads it back (tuples as lists, non-finite floats as strings, numpy
    scalars as numbers): what to compare a journaled value with."""
    return json.loads(dumps(value))


def journaled_values(hyperparameter: Any) -> dict[str, Any]:
    """A categorical, ordinal or constant ConfigSpace parameter's values by the JSON text of each
    as a journal holds it (:func:`as_journaled`), the first of equal texts winning; ``{}`` for
    another parameter. It maps a value read back from a journal to the parameter's own."""
    return {json.dumps(as_journaled(value)): value for value in reversed(choice_values(hyperparameter))}


def values_journaled_alike(configspace: Any) -> str | None:
    """What makes a run in ``configspace`` impossible to resume: two values of a categorical, ordinal
    or constant parameter that read back from a journal as the same value (``"inf"`` and
    ``float("inf")``, two lambdas, two objects without a ``__repr__`` of their own); ``None`` if none."""
    for hyperparameter in configspace.values():
        seen: dict[str, Any] = {}
        for value in choice_values(hyperparameter):
            text = json.dumps(as_journaled(value))
            if text in seen:
                return (f"the search space's parameter {hyperparameter.name}: its values {seen[text]!r:.80} and "
                        f"{value!r:.80} are both journaled as {text:.80}, so a resume could not tell which one ran "
                        "(make them differ as text: strings, functions with names of their own, a __repr__ that "
                        "tells objects apart)")
            seen[text] = value
    return None


_ITEMS_LOOKED_AT = 10_000  # the keys and items json_change looks at in all: it runs on rank 0


def json_change(value: Any) -> str | None:
    """What writing ``value`` as JSON (as the journal does) changes in it besides tuples becoming
    lists, named; ``None`` when nothing: a NaN or infinite float becomes a string, a value JSON does
    not know its ``repr``, a key that is not a string a string (among the first
    ``_ITEMS_LOOKED_AT`` keys and items only)."""
    try:
        json.dumps(value, allow_nan=False, default=_numbers_only)
    except ValueError as exc:
        return "a NaN or infinite float becomes a string" if "Out of range" in str(exc) else str(exc)
    except TypeError as exc:
        return f"a key {str(exc).rsplit(' ', 1)[-1]} becomes a string" if str(exc).startswith("keys must") else str(exc)
    except RecursionError:
        return "it is nested too deep and becomes a note"
    stack, left = [value], _ITEMS_LOOKED_AT
    while stack and left > 0:
        item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, (list, tuple)) else ()
        for key, child in itertools.islice(pairs, left):
            left -= 1
            if isinstance(item, dict) and not isinstance(key, str):
                return f"the key {_safe_repr(key)[:40]} becomes a string"
            if isinstance(child, (dict, list, tuple)):
                stack.append(child)
    return None


def _numbers_only(value: Any) -> Any:
    """``json.dumps``' fallback for :func:`json_change`: numpy numbers as :func:`to_json` writes
    them; anything else is a change."""
    if isinstance(value, (np.generic, np.ndarray)):
        return to_json(value)
    raise TypeError(f"a {type(value).__name__} becomes its repr")


def storable_info(info: Any) -> Any:
    """``info``, or a note when its JSON text (as the journal and ``results.json`` each store it) is
    over :func:`~mpibohb.evaluation.max_info_bytes`."""
    if info is None:
        return None
    try:
        size = len(dumps(info))  # ASCII: characters are bytes
    except (ValueError, TypeError, RecursionError):
        return info  # the journal stores a note saying so
    limit = max_info_bytes()
    return info_note(f"{size:,} bytes as JSON", limit) if size > limit else info


# ---------------------------------------------------------------- reading


def has_complete_line(path: Path) -> bool:
    """Does the file hold at least one line ended by a newline? (A crash can leave a torn one.)"""
    with open(path, "rb") as file:
        while chunk := file.read(1 << 16):
            if b"\n" in chunk:
                return True
    return False


def read_json_lines(path: Path) -> tuple[list[tuple[int, Any]], bool]:
    """The JSON value of every complete, non-blank line of ``path``, with its line number, and
    whether a torn last line (not ended by a newline: a crash mid-write) was dropped, with a warning.

    Raises:
        JournalError: a complete line is not JSON; the message names ``path:line``.
    """
    *lines, torn = path.read_text(encoding="utf-8", errors="replace").split("\n")
    if torn:  # a last line not ended by a newline was torn by a crash, even if it parses
        logger.warning("%s: ignoring a torn last line (%d characters)", path, len(torn))
    values = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            values.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise JournalError(f"{path}:{number}: not a JSON record ({exc.msg})") from None
    return values, bool(torn)


def _starts_like_json(path: Path) -> bool:
    """The file's first byte that is not white space opens a JSON object, as a journal's first record does."""
    try:
        with open(path, "rb") as file:
            head = file.read(4096).lstrip()
    except OSError:
        return True  # reading it again says what is wrong
    return not head or head.startswith(b"{")


def read_journal(path: str | os.PathLike) -> list[Record]:
    """The records of a journal; a torn last line is dropped with a warning.

    Raises:
        JournalError: the file is missing, empty, of another format, or corrupt before its last line.
    """
    path = Path(path)
    given_a_file = not path.is_dir()
    if path.is_dir():
        path = path / JOURNAL
    if not path.is_file():
        raise JournalError(f"no journal at {path}")
    if given_a_file and path.name != JOURNAL and not _starts_like_json(path):  # a damaged journal says where
        raise JournalError(f"{path} is not a run directory nor its {JOURNAL}: give the directory that "
                           "run(run_dir=...) or HpBandSter's json_result_logger wrote (a Result pickled by a script "
                           "is read with pickle.load and given as it is)")
    numbered, torn_tail = read_json_lines(path)
    records = [record for _, record in numbered]
    if not records:
        torn = " (only a torn first line: the run was killed while it started)" if torn_tail else ""
        raise JournalError(f"{path} holds no complete record{torn}")
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict) or "type" not in record:
            raise JournalError(f"{path}: record {number} is not a journal record: {str(record)[:200]}")
    header = records[0]
    if kind_of(header) is not Kind.HEADER:
        raise JournalError(f"{path}: the first record is not a header: {str(header)[:200]}")
    if header.get("format") != FORMAT_VERSION:
        raise JournalError(f"{path}: journal format {header.get('format')!r}, this mpibohb reads {FORMAT_VERSION}")
    return records


# ---------------------------------------------------------------- folding the records


@dataclass
class HandOut:
    """The latest hand-out of a job (``job`` or ``resubmit``): when, and to which worker (``""``:
    the journal does not say)."""

    submitted: float
    worker: str = ""


@dataclass
class OpenJob:
    """A job handed out that has no result, with what the journal says against it: ``deaths``,
    how often a single-process session ended without a stop while it ran (nothing there tells an
    outside kill from the job's own), and ``evidence``, the reason of each ``lost`` record that
    names it and blames it (its worker rank was seen to die while running it, under MPI, before
    any other rank since it was handed out; a kill of the whole job leaves none). ``record``
    handed it out first; ``handle`` is what :func:`fold`'s ``on_job`` returned for it (the
    replay's ``Job``; ``None`` for a job that a ``resubmit`` opened, which mpibohb never writes)."""

    record: Record
    deaths: int = 0
    evidence: list[str] = field(default_factory=list)
    handle: Any = None
    stops: int = 0  # sessions that a stop ended while it ran
    kills: int = 0  # MPI sessions that ended without a stop record while it ran: never counted against it


@dataclass
class RunState:
    """What a journal says, as :func:`fold` reads it.

    ``configs``: ``{config_id: {"config", "config_info"}}`` in the order first handed out;
    ``handed_out``: the latest hand-out of every job; ``results``: ``(result record, when its job
    was handed out)`` in order (the latest hand-out of the open job it closed; without one, when
    it started); ``open_jobs``: the jobs handed out without a result, in the order first handed
    out (a resume runs them again). ``ending``: the ``stop`` or ``end`` record that closed the
    latest session (``None``: it runs, or was killed). ``spans``: ``(start, end)`` of each
    session, from the header (the first) or its ``session`` record to its ``stop`` or ``end``;
    one killed without either ends at the latest time stamp before the next session; the
    latest, unclosed, ends at ``None``. ``lost``: the ``lost`` records of the latest session.
    ``last_time``: the latest time stamp of any record.
    """

    header: Record
    sessions: list[Record] = field(default_factory=list)
    configs: dict[tuple[int, ...], dict[str, Any]] = field(default_factory=dict)
    handed_out: dict[JobKey, HandOut] = field(default_factory=dict)
    results: list[tuple[Record, float]] = field(default_factory=list)
    open_jobs: dict[JobKey, OpenJob] = field(default_factory=dict)
    ending: Record | None = None
    spans: list[tuple[float, float | None]] = field(default_factory=list)
    lost: list[Record] = field(default_factory=list)
    last_time: float = 0.0

    @property
    def state(self) -> str:
        """``"running"`` (also a session killed without a record), ``"stopped"`` or ``"finished"``."""
        if self.ending is None:
            return "running"
        return "finished" if kind_of(self.ending) is Kind.END else "stopped"

    def session_spans(self, open_end: float) -> list[tuple[float, float]]:
        """:attr:`spans`, the unclosed latest session ending at ``open_end`` (at its start if later)."""
        return [(start, max(open_end, start) if end is None else end) for start, end in self.spans]


_TIME_KEYS = ("created", "started", "submitted", "finished", "time")


def record_times(record: Record) -> list[float]:
    """The time stamps written in ``record``."""
    return [value for key in _TIME_KEYS if isinstance(value := record.get(key), (int, float))]


def _check_numbers(record: Record, number: int) -> None:
    """A result's budget is a number and its loss a number or null: readers compute with them."""
    for name, value in (("budget", record["budget"]), ("loss", record["loss"])):
        if (value is not None or name == "budget") and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise JournalError(f"record {number} (result) has a {name} that is not a number: {value!r:.100}")


class _Folder:
    """Applies records one at a time to a :class:`RunState` (see :func:`fold`)."""

    def __init__(self, header: Record, on_session: Callable[[Record], None] | None,
                 on_job: Callable[[Record], Any] | None,
                 on_result: Callable[[Record, OpenJob | None], None] | None,
                 on_dropped: Callable[[Record, OpenJob | None], None] | None = None) -> None:
        self.state = RunState(header)
        self.on_session, self.on_job, self.on_result, self.on_dropped = on_session, on_job, on_result, on_dropped
        self._running: set[JobKey] = set()  # handed out since the latest session record, unless it stopped
        self._one_process = True  # sessions journaled before the executor was named counted every death
        self._span_start: float | None = None
        self._first_session = True
        self._handlers: dict[Kind, Callable[[Record], None]] = {
            Kind.HEADER: self._header, Kind.SESSION: self._session, Kind.JOB: self._job,
            Kind.RESUBMIT: self._resubmit, Kind.RESULT: self._result, Kind.STOP: self._ending,
            Kind.END: self._ending, Kind.LOST: self._lost, Kind.DROPPED: self._dropped}

    def apply(self, record: Record, number: int) -> None:
        """Apply the journal's ``number``-th record (1 is the header)."""
        kind = kind_of(record)
        if kind is None:
            return
        missing = [name for name in RECORDS[kind].required if name not in record]
        if missing:
            raise JournalError(f"record {number} ({kind.value}) lacks {', '.join(missing)}")
        if kind is Kind.RESULT:
            _check_numbers(record, number)
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(record)
        self.state.last_time = max([self.state.last_time, *record_times(record)])

    def finish(self) -> RunState:
        """The state after the last record, whose session counts as ended (a resume reads it so)."""
        self._count_deaths()
        if self._span_start is not None:
            self.state.spans.append((self._span_start, None))
        return self.state

    def _header(self, record: Record) -> None:
        self._span_start = self.state.last_time = record["created"]

    def _session(self, record: Record) -> None:
        self._count_deaths()
        self._running, self._one_process = set(), record.get("executor") != "MPIExecutor"
        self.state.sessions.append(record)
        self.state.ending, self.state.lost = None, []
        if self._first_session:  # the first session's span began with the header
            self._first_session = False
        else:
            if self._span_start is not None:  # the session before was killed: it ended at its last record
                self.state.spans.append((self._span_start, self.state.last_time))
            self._span_start = record.get("started", self.state.last_time)
        if self.on_session is not None:
            self.on_session(record)

    def _count_deaths(self) -> None:
        """The session ended (died) while ``_running`` ran: count it where nothing tells why (under
        MPI apart, as ``kills``: a kill of the whole job, which blames nothing)."""
        for key in self._running & self.state.open_jobs.keys():
            if self._one_process:
                self.state.open_jobs[key].deaths += 1
            else:
                self.state.open_jobs[key].kills += 1

    def _hand_out(self, record: Record) -> JobKey:
        key = job_key(record)
        self.state.configs.setdefault(key[0], {"config": record["config"], "config_info": record["config_info"]})
        earlier = self.state.handed_out.get(key)
        worker = record.get("worker") or (earlier.worker if earlier else "")
        self.state.handed_out[key] = HandOut(record["submitted"], worker)
        self._running.add(key)
        return key

    def _job(self, record: Record) -> None:
        key = self._hand_out(record)
        handle = self.on_job(record) if self.on_job is not None else None
        self.state.open_jobs[key] = OpenJob(record, handle=handle)

    def _resubmit(self, record: Record) -> None:
        key = self._hand_out(record)  # a job open since before a resume: it keeps its place in open_jobs
        self.state.open_jobs.setdefault(key, OpenJob(record))

    def _result(self, record: Record) -> None:
        key = job_key(record)
        opened = self.state.open_jobs.pop(key, None)
        submitted = record["started"] if opened is None else self.state.handed_out[key].submitted
        self.state.results.append((record, submitted))
        if self.on_result is not None:
            self.on_result(record, opened)

    def _dropped(self, record: Record) -> None:
        key = job_key(record)
        opened = self.state.open_jobs.pop(key, None)
        self._running.discard(key)
        if self.on_dropped is not None:
            self.on_dropped(record, opened)

    def _ending(self, record: Record) -> None:
        if record["type"] == Kind.STOP.value:
            for key in self._running & self.state.open_jobs.keys():
                self.state.open_jobs[key].stops += 1
        self._running = set()  # a clean stop interrupted its jobs on purpose
        self.state.ending = record
        if self._span_start is not None:
            self.state.spans.append((self._span_start, record.get("time", self.state.last_time)))
            self._span_start = None

    def _lost(self, record: Record) -> None:
        self.state.lost.append(record)
        key = (tuple(record.get("config_id", ())), record.get("budget"))
        if key in self.state.open_jobs and record.get("blames_job", True):  # journals before 2026-12-04 lack it
            self.state.open_jobs[key].evidence.append(record.get("reason") or "its worker rank died")


def fold(records: Iterable[Record], on_session: Callable[[Record], None] | None = None,
         on_job: Callable[[Record], Any] | None = None,
         on_result: Callable[[Record, OpenJob | None], None] | None = None,
         on_dropped: Callable[[Record, OpenJob | None], None] | None = None) -> RunState:
    """Read journal records (the header first, as :func:`read_journal` gives them) into a
    :class:`RunState`, calling the hooks in journal order: ``on_session(record)`` at each
    ``session``, ``on_job(record)`` at each ``job`` (what it returns becomes the open job's
    ``handle``), ``on_result(record, its open job or None)`` at each ``result`` (``None``:
    its job was not open) and ``on_dropped`` likewise at each ``dropped``. Records of a kind
    this version does not know are skipped.

    Raises:
        JournalError: the first record is not a header, or a record lacks a field its kind
            requires (see :data:`RECORDS`); the message names the record's number.
    """
    numbered = enumerate(records, start=1)
    _, header = next(numbered, (1, None))
    if not isinstance(header, dict) or kind_of(header) is not Kind.HEADER:
        raise JournalError(f"the first record is not a header: {str(header)[:200]}")
    folder = _Folder(header, on_session, on_job, on_result, on_dropped)
    folder.apply(header, 1)
    for number, record in numbered:
        folder.apply(record, number)
    return folder.finish()
