"""A run directory's files: its lock, the journal appended to, and HpBandSter's ``configs.json`` and
``results.json`` beside it.

Every record is written and flushed before the master acts on it, and fsync'd at least once a
second and at the end (:mod:`mpibohb.append_file`, which also finds a file taken away while the
run goes on; what the records hold: :mod:`mpibohb.journal`). ``configs.json`` and
``results.json`` follow HpBandSter's ``json_result_logger`` line format, so
``hpbandster.core.result.logged_results_to_HBS_result(run_dir)`` reads them; they are derived
from the journal and rewritten from it on resume.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import threading
import weakref
from pathlib import Path
from typing import Any

from .append_file import AppendFile
from .files import RunFileError, file_error, make_run_directory, open_fd, open_update, replace_file
from .journal import CONFIGS, JOURNAL, RESULTS, Kind, Record, RunState, dumps, job_key, kind_of

logger = logging.getLogger(__name__)

LOCK = ".lock"


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
        self._lock_fd = -1  # .lock's, once acquired
        self._previous_holder = b""
        self._adopted: list[RunLock] = []
        _LOCKS.add(self)

    def acquire(self) -> None:
        """Lock the directory, then ``.lock``, and write this process's ``pid@host`` into it."""
        try:
            self._fds.append(os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        except OSError as exc:
            raise file_error(exc, self.path, "open") from None
        locked_directory = self._flock(self._fds[-1], self.path)
        if not locked_directory:
            logger.info("%s: this file system cannot lock a directory; the run is locked through %s only "
                        "(deleting it while the run goes on would let a second run in)", self.path, LOCK)
        self._fds.append(open_fd(self.path / LOCK, os.O_RDWR | os.O_CREAT))
        if not self._flock(self._fds[-1], self.path / LOCK) and not locked_directory:
            logger.warning("%s: this file system cannot lock; make sure one run at a time uses it", self.path)
        self._lock_fd = self._fds[-1]
        try:
            self._previous_holder = os.pread(self._lock_fd, 4096, 0)
            self._write_holder(f"{os.getpid()}@{socket.gethostname()}\n".encode())
        except OSError as exc:
            raise file_error(exc, self.path / LOCK, "write") from None

    def _write_holder(self, holder: bytes) -> None:
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, holder, 0)

    def restore_holder(self) -> None:
        """Put back the ``pid@host`` that ``.lock`` named before :meth:`acquire`, here and in the
        locks adopted (a run that was refused leaves ``status`` naming the run's own last process,
        not the refused one); before :meth:`close`."""
        for lock in (self, *self._adopted):
            if lock._previous_holder and lock._lock_fd in self._fds:
                with contextlib.suppress(OSError):
                    lock._write_holder(lock._previous_holder)

    def _flock(self, fd: int, path: Path) -> bool:
        """Lock ``fd``, opened on ``path``; False where the file system cannot.

        Raises:
            FileExistsError: another process holds the lock.
        """
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FileExistsError(f"{self.path} is in use by another mpibohb run (pid {self._holder(path)})") \
                    from None
            return False
        return True

    def _holder(self, path: Path) -> str:
        """``pid@host`` of the process that holds the lock on ``path``: from the kernel's table of
        locks where it tells (this host), else from ``.lock``, else ``unknown``."""
        pid = flock_holder(path)
        if pid is not None and pid > 0:
            return f"{pid}@{socket.gethostname()}"
        with contextlib.suppress(OSError):
            fd = os.open(self.path / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                holder = os.read(fd, 4096).decode(errors="replace").strip()
            finally:
                os.close(fd)
            if holder:
                return holder
        return "unknown"

    def adopt(self, other: RunLock) -> None:
        """Hold ``other``'s locks too, until :meth:`close`."""
        self._fds.extend(other._fds)
        other._fds = []
        self._adopted.append(other)

    def close(self) -> None:
        """Release the locks."""
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)

    def forget_in_child(self) -> None:
        """In a process that ``os.fork`` made (a multiprocessing worker of ``compute``): drop this
        process's copies of the locked descriptors, so that a child outliving the run does not
        hold its lock (an ``flock`` lasts while any copy is open); the parent's stay locked."""
        fds, self._fds, self._lock_fd = self._fds, [], -1
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


_LOCKS: weakref.WeakSet[RunLock] = weakref.WeakSet()  # every RunLock of this process


def _forget_locks_in_child() -> None:
    for lock in list(_LOCKS):
        lock.forget_in_child()


os.register_at_fork(after_in_child=_forget_locks_in_child)


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

    ``resumed`` is the state of the journal already there (a resume, see :func:`~mpibohb.journal.fold`):
    the HpBandSter files are rewritten from it, so they agree with the journal whatever the crash
    left behind.

    Raises:
        RunFileError: a file cannot be opened or written (a full disk, a read-only file, a
            symbolic link in the place of one of the run's files).
    """

    def __init__(self, path: str | os.PathLike, resumed: RunState | None = None,
                 lock: RunLock | None = None) -> None:
        self.path = Path(path)
        self._lock = lock
        make_run_directory(self.path)
        rewrite_hpbandster_files(self.path, resumed)
        # what a results.json line needs later: when each open job was handed out; configs.json has a line per config
        self._submitted = {key: resumed.handed_out[key].submitted for key in resumed.open_jobs} if resumed else {}
        self._logged_configs = set(resumed.configs) if resumed else set()
        cut_torn_tail(self.path / JOURNAL)
        self._files: list[AppendFile] = []
        try:
            for name in (JOURNAL, CONFIGS, RESULTS):
                self._files.append(AppendFile(self.path / name))
        except BaseException:
            self.close()
            raise
        self._journal, self._configs, self._results = self._files
        self._appending = threading.Lock()

    def append(self, record: Record) -> None:
        """Write ``record`` to the journal, then its HpBandSter line if it has one (thread-safe:
        the MPI executor's death watch journals from its own thread)."""
        with self._appending:
            self._append(record)

    def _append(self, record: Record) -> None:
        self._journal.write_line(dumps(record))
        kind = kind_of(record)
        if kind in (Kind.JOB, Kind.RESUBMIT):
            self._submitted[job_key(record)] = record["submitted"]
        if kind is Kind.JOB and tuple(record["config_id"]) not in self._logged_configs:
            self._logged_configs.add(tuple(record["config_id"]))
            self._configs.write_line(dumps_hpbandster_config(record["config_id"], record))
        elif kind is Kind.RESULT:
            submitted = self._submitted.pop(job_key(record), record["started"])  # one result per job
            self._results.write_line(dumps_hpbandster_result(record, submitted))
        elif kind is Kind.DROPPED:
            self._submitted.pop(job_key(record), None)

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


def dumps_hpbandster_config(config_id: Any, entry: dict[str, Any]) -> str:
    """A ``configs.json`` line: ``[config_id, config, config_info]``."""
    return dumps([list(config_id), entry["config"], entry["config_info"]])


def dumps_hpbandster_result(record: Record, submitted: float) -> str:
    """A ``results.json`` line: ``[config_id, budget, time_stamps, result or null, exception or null]``
    with absolute time stamps, as HpBandSter's ``json_result_logger`` writes them."""
    stamps = {"submitted": submitted, "started": record["started"], "finished": record["finished"]}
    result = None if record["loss"] is None else {"loss": record["loss"], "info": record["info"]}
    line = [record["config_id"], record["budget"], stamps, result, record["error"]]
    try:
        return dumps(line)
    except (ValueError, TypeError, RecursionError):  # an info no JSON can hold: the journal's note for it
        assert result is not None
        result["info"] = json.loads(dumps({"info": record["info"]}))["info"]
        return dumps(line)


def rewrite_hpbandster_files(path: Path, state: RunState | None) -> None:
    """Rewrite ``configs.json`` and ``results.json`` from the journal's state (atomically); empty
    files for a new run (``None``)."""
    configs = [dumps_hpbandster_config(config_id, entry) for config_id, entry in state.configs.items()] if state else []
    results = [dumps_hpbandster_result(record, submitted) for record, submitted in state.results] if state else []
    for name, lines in ((CONFIGS, configs), (RESULTS, results)):
        replace_file(path / name, "".join(line + "\n" for line in lines))
