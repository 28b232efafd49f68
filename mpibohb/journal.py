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

import contextlib
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
from typing import Any

import numpy as np

from .files import RunFileError, file_error, make_run_directory, open_append, open_fd, open_update, replace_file
from .worker import info_note, max_info_bytes

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


_RESUME_HINT = "what was recorded before is kept; once the file can be written, resume the run (resume=True)"


def storable_info(info: Any) -> Any:
    """``info``, or a note when its JSON text (as the journal and ``results.json`` each store it) is
    over :func:`~mpibohb.worker.max_info_bytes`."""
    if info is None:
        return None
    try:
        size = len(dumps(info))  # ASCII: characters are bytes
    except (ValueError, TypeError, RecursionError):
        return info  # the journal stores a note saying so
    limit = max_info_bytes()
    return info_note(f"{size:,} bytes as JSON", limit) if size > limit else info


class _AppendFile:
    """A text file opened for appending whole lines, each flushed to the OS at once.

    The data reach the disk (fsync) at most a second after they were written: at once when the
    last fsync is older than that, else by a one-shot timer, so a quiet spell after a write does
    not leave it unsynced. A write that fails (a full disk, a file made read-only) raises
    :class:`RunFileError` saying so, and the file takes no more writes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = open_append(path)
        self._last_sync = time.monotonic()
        self._timer: threading.Timer | None = None
        self._timer_error: OSError | None = None
        self._lock = threading.Lock()
        self.failed = False

    def write_line(self, line: str) -> None:
        if self.failed:
            raise RunFileError(errno.EIO, f"cannot write {self.path}: an earlier write failed")
        try:
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
        except OSError as exc:
            self.failed = True
            raise file_error(exc, self.path, "write", _RESUME_HINT) from None

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
        """Flush, fsync and close; the file is closed also when that fails (after a failed write,
        quietly: that error has been raised already)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if self.handle.closed:
                return
            try:
                self.handle.flush()
                os.fsync(self.handle.fileno())
            except OSError as exc:
                if not self.failed:
                    self.failed = True
                    raise file_error(exc, self.path, "write", _RESUME_HINT) from None
            finally:
                with contextlib.suppress(OSError):  # the data that could not be flushed are lost either way
                    self.handle.close()


def lock_run_directory(path: str | os.PathLike) -> RunLock:
    """Take the run directory's lock, so that two masters never write one run; release it with
    the returned lock's ``close``.

    The lock is an ``flock`` on the directory itself, which deleting a file cannot undo; ``.lock``
    names the holder (``pid@host``, read by ``status``) and is locked as well, as mpibohb did
    before. Where the file system cannot lock a directory (NFS), ``.lock`` alone is the lock.

    Raises:
        FileExistsError: another process holds the lock (its pid in the message).
        RunFileError: ``.lock`` cannot be opened (e.g. it is a symbolic link).
    """
    path = Path(path)
    make_run_directory(path)
    lock = RunLock(path)
    try:
        lock.acquire()
    except BaseException:
        lock.close()
        raise
    return lock


class RunLock:
    """The locks of one run directory (see :func:`lock_run_directory`); ``close`` releases them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fds: list[int] = []  # closing them releases the locks

    def acquire(self) -> None:
        """Lock the directory, then ``.lock``, and write this process's ``pid@host`` into it."""
        try:
            self._fds.append(os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        except OSError as exc:
            raise file_error(exc, self.path, "open") from None
        locked_directory = self._flock(self._fds[-1])
        if not locked_directory:
            logger.info("%s: this file system cannot lock a directory; the run is locked through %s only "
                        "(deleting it while the run goes on would let a second run in)", self.path, LOCK)
        self._fds.append(open_fd(self.path / LOCK, os.O_RDWR | os.O_CREAT))
        if not self._flock(self._fds[-1]) and not locked_directory:
            logger.warning("%s: this file system cannot lock; make sure one run at a time uses it", self.path)
        try:
            os.ftruncate(self._fds[-1], 0)
            os.pwrite(self._fds[-1], f"{os.getpid()}@{socket.gethostname()}\n".encode(), 0)
        except OSError as exc:
            raise file_error(exc, self.path / LOCK, "write") from None

    def _flock(self, fd: int) -> bool:
        """Lock ``fd``; False where the file system cannot.

        Raises:
            FileExistsError: another process holds the lock.
        """
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FileExistsError(f"{self.path} is in use by another mpibohb run (pid {self._holder()})") from None
            return False
        return True

    def _holder(self) -> str:
        """``pid@host`` of the process that holds the lock: from ``.lock``, else (when it was
        deleted) from the kernel's table of locks, else ``unknown``."""
        with contextlib.suppress(OSError):
            fd = os.open(self.path / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                holder = os.read(fd, 4096).decode(errors="replace").strip()
            finally:
                os.close(fd)
            if holder:
                return holder
        pid = flock_holder(self.path) or flock_holder(self.path / LOCK)
        return f"{pid}@{socket.gethostname()}" if pid is not None and pid > 0 else "unknown"

    def close(self) -> None:
        """Release the locks."""
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)


def flock_holder(path: Path) -> int | None:
    """The pid of a process of this host that holds a lock on ``path``, from Linux's ``/proc/locks``
    (-1 for a lock that names no process); ``None`` when none does or this cannot be told."""
    try:
        status = path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    inode = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    for fields in map(str.split, table.splitlines()):
        if inode in fields and "->" not in fields:  # "->": a process waiting for the lock
            return int(fields[4]) if fields[4].lstrip("-").isdigit() else -1
    return None


class RunDirectory:
    """Writes a run's journal and its HpBandSter-compatible files.

    ``replayed`` are the records of the journal already there (a resume): the HpBandSter files
    are rewritten from them, so they agree with the journal whatever the crash left behind.

    Raises:
        RunFileError: a file cannot be opened or written (a full disk, a read-only file, a
            symbolic link in the place of one of the run's files).
    """

    def __init__(self, path: str | os.PathLike, replayed: list[dict[str, Any]] | None = None,
                 lock: RunLock | None = None) -> None:
        self.path = Path(path)
        self._lock = lock
        make_run_directory(self.path)
        replayed = replayed or []
        rewrite_hpbandster_files(self.path, replayed)
        self._submitted = {_key(r): r["submitted"] for r in replayed if r["type"] in ("job", "resubmit")}
        self._logged_configs = {tuple(r["config_id"]) for r in replayed if r["type"] == "job"}
        cut_torn_tail(self.path / JOURNAL)
        self._files: list[_AppendFile] = []
        try:
            for name in (JOURNAL, CONFIGS, RESULTS):
                self._files.append(_AppendFile(self.path / name))
        except BaseException:
            self.close()
            raise
        self._journal, self._configs, self._results = self._files
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
        """Flush, fsync and close every file, then release the lock, also when a file fails.

        Raises:
            RunFileError: a file could not be flushed (not raised again after a failed write).
        """
        errors = []
        for handle in self._files:
            try:
                handle.close()
            except RunFileError as exc:
                errors.append(exc)
        if self._lock is not None:
            self._lock.close()
        if errors:
            raise errors[0]


def cut_torn_tail(path: Path) -> None:
    """Cut a last line that a crash left without its newline, so that appends start on a fresh line."""
    if not path.exists():
        return
    with open_update(path) as handle:
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
        replace_file(path / name, "".join(line + "\n" for line in lines))
