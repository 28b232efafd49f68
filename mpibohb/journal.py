"""The run directory: an append-only journal, and HpBandSter's ``configs.json``/``results.json``.

``journal.jsonl`` holds one JSON object per line, in the order the master did things:

* ``{"type": "header", "format": 1, "settings": {...}, "configspace": "<ConfigSpace JSON>",
  "created": t, "warm_start": [...]}``: first line, once per run directory;
* ``{"type": "session", "n_iterations": n, "n_workers": k, "started": t}``: each call of ``run`` (a resume adds one);
* ``{"type": "job", "config_id": [i, s, k], "budget": b, "config": {...}, "config_info": {...},
  "submitted": t}``: a job handed out by the optimizer (``"resubmit"``: handed out again after a
  resume; not an ``ask`` of the optimizer);
* ``{"type": "result", "config_id": ..., "budget": ..., "loss": x or null, "info": ...,
  "error": "..." or null, "started": t, "finished": t, "worker": "..."}``;
* ``{"type": "stop", "signal": n, "time": t}`` and ``{"type": "end", "time": t}``;
* under MPI, what the executor decides itself: ``{"type": "retry", "config_id", "budget", "worker",
  "error", "time"}`` (a failure held back and run again on another rank), ``{"type": "interrupted",
  "config_id", "budget", "worker", "signal", "time"}`` (a stop signal reached compute: runs again),
  ``{"type": "retired", "worker", "reason", "time"}`` (a rank taken out of service) and
  ``{"type": "lost", "worker", "reason", "time"[, "config_id", "budget"]}`` (a worker rank died,
  with the job it ran: the evidence a resume needs to blame that job).

A ``job`` record also names the ``worker`` it went to, and a ``session`` record its ``executor``.

Every record is written and flushed before the master acts on it, and fsync'd at least once a
second and at the end. A torn last line (a crash mid-write) is ignored by the reader.
``configs.json`` and ``results.json`` follow HpBandSter's ``json_result_logger`` line format, so
``hpbandster.core.result.logged_results_to_HBS_result(run_dir)`` reads them; they are derived
from the journal and rewritten from it on resume.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
JOURNAL = "journal.jsonl"
CONFIGS = "configs.json"
RESULTS = "results.json"
LOCK = ".lock"
FSYNC_INTERVAL = 1.0


class JournalError(ValueError):
    """The journal cannot be read or does not belong to this optimizer."""


class RunDirectoryError(ValueError):
    """The run directory holds a run that this call cannot continue (other settings)."""


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
    try:
        return repr(value)
    except Exception as exc:  # noqa: BLE001 - a user object whose repr fails
        return f"<{type(value).__name__} whose repr fails: {type(exc).__name__}>"


def dumps(value: Any) -> str:
    """Strict JSON of ``value`` on one line; never fails on odd user data (a record's ``info``
    that cannot be written at all becomes a note saying so)."""
    options = {"default": to_json, "allow_nan": False, "separators": (",", ":")}
    try:
        return json.dumps(value, **options)
    except (ValueError, TypeError, RecursionError):
        pass
    try:
        return json.dumps(_finite(value), **options)
    except (ValueError, TypeError, RecursionError) as exc:
        if not (isinstance(value, dict) and "info" in value):
            raise
        note = f"<info not JSON-serialisable: {type(exc).__name__}: {_safe_repr(value['info'])[:200]}>"
        return dumps({**value, "info": note})


class _AppendFile:
    """A text file opened for appending whole lines, each flushed to the OS at once.

    The data reach the disk (fsync) at most a second after they were written: at once when the
    last fsync is older than that, else by a one-shot timer, so a quiet spell after a write does
    not leave it unsynced.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._last_sync = time.monotonic()
        self._timer: threading.Timer | None = None
        self._timer_error: OSError | None = None
        self._lock = threading.Lock()

    def write_line(self, line: str) -> None:
        if self._timer_error is not None:
            error, self._timer_error = self._timer_error, None
            raise error
        self.handle.write(line + "\n")
        self.handle.flush()
        if time.monotonic() - self._last_sync >= FSYNC_INTERVAL:
            self.sync()
        elif self._timer is None:
            self._timer = threading.Timer(FSYNC_INTERVAL, self._timed_sync)
            self._timer.daemon = True
            self._timer.start()

    def _timed_sync(self) -> None:
        try:
            self.sync()
        except OSError as exc:  # e.g. a full disk or quota on a network file system
            self._timer_error = exc

    def sync(self) -> None:
        with self._lock:
            self._timer = None
            if not self.handle.closed:
                os.fsync(self.handle.fileno())
            self._last_sync = time.monotonic()

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if not self.handle.closed:
                self.handle.flush()
                os.fsync(self.handle.fileno())
                self.handle.close()


def lock_run_directory(path: str | os.PathLike) -> TextIO:
    """Take the run directory's lock, so that two masters never write one run; release it by
    closing the returned file.

    Raises:
        FileExistsError: another process holds the lock (its pid in the message).
    """
    Path(path).mkdir(parents=True, exist_ok=True)
    handle = open(Path(path) / LOCK, "a+", encoding="utf-8")  # noqa: SIM115 - the lock lives as long as it
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            logger.warning("%s: this file system cannot lock (%s); make sure one run at a time uses it", path, exc)
            return handle
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise FileExistsError(f"{path} is in use by another mpibohb run (pid {holder})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}@{socket.gethostname()}\n")
    handle.flush()
    return handle


class RunDirectory:
    """Writes a run's journal and its HpBandSter-compatible files.

    ``replayed`` are the records of the journal already there (a resume): the HpBandSter files
    are rewritten from them, so they agree with the journal whatever the crash left behind.
    """

    def __init__(self, path: str | os.PathLike, replayed: list[dict[str, Any]] | None = None,
                 lock: TextIO | None = None) -> None:
        self.path = Path(path)
        self._lock = lock
        self.path.mkdir(parents=True, exist_ok=True)
        replayed = replayed or []
        rewrite_hpbandster_files(self.path, replayed)
        self._submitted = {_key(r): r["submitted"] for r in replayed if r["type"] in ("job", "resubmit")}
        self._logged_configs = {tuple(r["config_id"]) for r in replayed if r["type"] == "job"}
        cut_torn_tail(self.path / JOURNAL)
        self._journal = _AppendFile(self.path / JOURNAL)
        self._configs = _AppendFile(self.path / CONFIGS)
        self._results = _AppendFile(self.path / RESULTS)
        self._appending = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` to the journal, then its HpBandSter line if it has one (thread-safe:
        the MPI executor's death watch journals from its own thread)."""
        with self._appending:
            self._append(record)

    def _append(self, record: dict[str, Any]) -> None:
        self._journal.write_line(dumps(record))
        kind = record["type"]
        if kind in ("job", "resubmit"):
            self._submitted[_key(record)] = record["submitted"]
        if kind == "job" and tuple(record["config_id"]) not in self._logged_configs:
            self._logged_configs.add(tuple(record["config_id"]))
            self._configs.write_line(dumps_hpbandster_config(record))
        elif kind == "result":
            submitted = self._submitted.pop(_key(record), record["started"])  # one result per job
            self._results.write_line(dumps_hpbandster_result(record, submitted))

    def close(self) -> None:
        """Flush and fsync everything."""
        for handle in (self._journal, self._configs, self._results):
            handle.close()
        if self._lock is not None:
            self._lock.close()


def cut_torn_tail(path: Path) -> None:
    """Cut a last line that a crash left without its newline, so that appends start on a fresh line."""
    if not path.exists():
        return
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        end = handle.read().rfind(b"\n") + 1
        logger.warning("%s: cutting a torn last line of %d bytes", path, size - end)
        handle.truncate(end)


def _key(record: dict[str, Any]) -> tuple[tuple[int, ...], float]:
    return tuple(record["config_id"]), record["budget"]


def dumps_hpbandster_config(record: dict[str, Any]) -> str:
    """A ``configs.json`` line: ``[config_id, config, config_info]``."""
    return dumps([record["config_id"], record["config"], record["config_info"]])


def dumps_hpbandster_result(record: dict[str, Any], submitted: float) -> str:
    """A ``results.json`` line: ``[config_id, budget, time_stamps, result or null, exception or null]``
    with absolute time stamps, as HpBandSter's ``json_result_logger`` writes them."""
    stamps = {"submitted": submitted, "started": record["started"], "finished": record["finished"]}
    result = None if record["loss"] is None else {"loss": record["loss"], "info": record["info"]}
    return dumps([record["config_id"], record["budget"], stamps, result, record["error"]])


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


def read_journal(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a journal; a torn last line is dropped with a warning.

    Raises:
        JournalError: the file is missing, empty, of another format, or corrupt before its last line.
    """
    path = Path(path)
    if path.is_dir():
        path = path / JOURNAL
    if not path.is_file():
        raise JournalError(f"no journal at {path}")
    numbered, torn_tail = read_json_lines(path)
    records = [record for _, record in numbered]
    if not records:
        torn = " (only a torn first line: the run was killed while it started)" if torn_tail else ""
        raise JournalError(f"{path} holds no complete record{torn}")
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict) or "type" not in record:
            raise JournalError(f"{path}: record {number} is not a journal record: {str(record)[:200]}")
    header = records[0]
    if header.get("type") != "header":
        raise JournalError(f"{path}: the first record is not a header: {str(header)[:200]}")
    if header.get("format") != FORMAT_VERSION:
        raise JournalError(f"{path}: journal format {header.get('format')!r}, this mpibohb reads {FORMAT_VERSION}")
    return records


def rewrite_hpbandster_files(path: Path, records: list[dict[str, Any]]) -> None:
    """Rewrite ``configs.json`` and ``results.json`` from journal records (atomically)."""
    submitted: dict[tuple[tuple[int, ...], float], float] = {}
    configs, results, seen = [], [], set()
    for record in records:
        if record["type"] in ("job", "resubmit"):
            submitted[_key(record)] = record["submitted"]
            if record["type"] == "job" and tuple(record["config_id"]) not in seen:
                seen.add(tuple(record["config_id"]))
                configs.append(dumps_hpbandster_config(record))
        elif record["type"] == "result":
            results.append(dumps_hpbandster_result(record, submitted.get(_key(record), record["started"])))
    for name, lines in ((CONFIGS, configs), (RESULTS, results)):
        temporary = path / (name + ".tmp")
        temporary.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(temporary, path / name)
