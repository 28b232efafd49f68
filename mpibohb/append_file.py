"""A file of the run directory appended to line by line: each line flushed to the OS at once, on
disk (fsync) within a second, and checked, once a second at most, to be where it was opened.

A run directory can be taken away while the run goes on: a scratch purge, an ``rm -r``, a ``mv``,
a file system unmounted. The descriptor still writes, into a file nobody will read again. So a
write that finds its path no longer naming the file ends the run with :class:`RunFileError`, and
a file deleted (or out of reach) is first written back, so no record is lost: to its path (the
directory made again), or beside a file that took its place.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

from .files import RunFileError, file_error, make_run_directory, open_append, write_copy

logger = logging.getLogger(__name__)

FSYNC_INTERVAL = 1.0  # seconds between fsyncs, and between checks that the file is in place
RESUME_HINT = "what was recorded before is kept; once the file can be written, resume the run (resume=True)"
STALE_HINT = ("a network file system no longer knows the file (deleted from another host, or its server failed "
              "over): if the file is still there, resume the run (resume=True); else its records are lost")


def _hint(error: OSError) -> str:
    return STALE_HINT if error.errno == errno.ESTALE else RESUME_HINT


class WriteBackError(OSError):
    """No place could take the copy of a file taken away; the message names each one's reason."""


class DetachedError(OSError):
    """The path of a file being appended to no longer names it; ``strerror`` says how."""


class AppendFile:
    """``path`` opened for appending whole lines (see the module's text).

    A write that fails (a full disk, a file made read-only, the file taken away) raises
    :class:`RunFileError` saying so, and every later write raises the same error. The data reach
    the disk at most a second after they were written: at once when the last fsync is older than
    that, else by a one-shot timer, so a quiet spell after a write does not leave it unsynced.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._real = Path(os.path.realpath(path))  # a later chdir, or a link pointed elsewhere, moves nothing
        self.handle = open_append(path)
        self._last_sync = self._last_check = time.monotonic()
        self._timer: threading.Timer | None = None
        self._timer_error: OSError | None = None
        self._lock = threading.Lock()
        self._failure: RunFileError | None = None
        self.written_back: Path | None = None  # where a deleted file's lines were written back
        self._said_moved = False  # a check found it moved, and said where

    @property
    def failed(self) -> bool:
        return self._failure is not None

    def write_line(self, line: str) -> None:
        if self._failure is not None:  # the same words again: the first may have gone to another thread
            raise RunFileError(self._failure.errno, self._failure.strerror)
        try:
            if self._timer_error is not None:
                error, self._timer_error = self._timer_error, None
                raise error
            self.handle.write(line + "\n")
            self.handle.flush()
            if time.monotonic() - self._last_check >= FSYNC_INTERVAL:
                self._last_check = time.monotonic()
                self._check_in_place()
            if time.monotonic() - self._last_sync >= FSYNC_INTERVAL:
                self.sync()
            elif self._timer is None:
                self._timer = threading.Timer(FSYNC_INTERVAL, self._timed_sync)
                self._timer.daemon = True
                self._timer.start()
        except DetachedError as exc:
            self._failure = RunFileError(exc.errno, f"cannot write {self.path}: {exc.strerror}")
            raise RunFileError(exc.errno, self._failure.strerror) from None
        except OSError as exc:
            self._failure = file_error(exc, self.path, "write", _hint(exc))
            raise RunFileError(exc.errno, self._failure.strerror) from None

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

    def _check_in_place(self) -> None:
        """Raise :class:`DetachedError` if the path no longer names the open file: moved (where
        Linux can name the place, which this confirms), else deleted or out of reach (unmounted,
        a network file system's ``.nfs`` rename), after writing it back. In the writing thread."""
        if self.written_back is not None or self._in_place():
            return
        now = self._now_at()
        if now is not None:
            self._said_moved = True
            raise DetachedError(errno.ENOENT, f"it was moved or replaced while the run wrote it (it is now {now}); its "
                                "records are in that file: put it back in place, then resume the run (resume=True)")
        try:
            where, missed = self.write_back()
        except WriteBackError as exc:
            raise DetachedError(errno.ENOENT, f"it was deleted, or its file system unmounted, while the run wrote it, "
                                f"and writing its records back failed ({exc}); it is tried once more as the run "
                                "closes, else they are lost when this process ends") from None
        raise DetachedError(errno.ENOENT, f"it was deleted, or its file system unmounted, while the run wrote it; "
                            f"its records were written back to {where}{self._what_next(where, missed)}")

    def _in_place(self) -> bool:
        here = os.fstat(self.handle.fileno())
        try:
            there = os.stat(self._real)
        except OSError:  # gone, or a stale handle of a network file system
            return False
        return os.path.samestat(here, there)

    def _now_at(self) -> Path | None:
        """Where the open file is now, if Linux names a place that is the same file, and not a
        network file system's ``.nfs`` name for a deleted one; else ``None``."""
        fd = self.handle.fileno()
        try:
            place = Path(os.readlink(f"/proc/self/fd/{fd}"))
            here, there = os.fstat(fd), os.stat(place)
        except OSError:
            return None
        if not os.path.samestat(here, there) or place.name.startswith(".nfs"):
            return None  # an unmounted file system's path names another file, or none
        return place

    def _what_next(self, where: Path, missed: str) -> str:
        if where == self._real:
            return ": resume the run (resume=True) to go on"
        return (f" ({missed}): put it as {self._real.name} in a run directory of its own, then resume that run "
                "(resume=True)")

    def write_back(self) -> tuple[Path, str]:
        """Copy what the open file holds (read through its descriptor, also when deleted) to its
        path, the directory made again, or beside a file that took its place, or at last to the
        temporary directory; where it went, and why the places before it could not take it.

        Raises:
            WriteBackError: no place could, each one's reason in the message.
        """
        self.handle.flush()
        name = f"{self._real.name}.written-back-{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
        missed: list[str] = []
        for place in (self._real, self._real.with_name(name), Path(tempfile.gettempdir()) / name):
            try:
                make_run_directory(place.parent)
                write_copy(self.handle.fileno(), place)
            except OSError as exc:
                reason = "another file stands there" if isinstance(exc, FileExistsError) else str(exc)
                missed.append(f"not at {place}: {reason}")
                continue
            self.written_back = place
            return place, "; ".join(missed)
        raise WriteBackError("; ".join(missed))

    def close(self) -> None:
        """Flush, fsync and close; the file is closed also when that fails (after a failed write,
        quietly: that error has been raised already). A file deleted since the last check is
        written back, and the run told so in the log."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if self.handle.closed:
                return
            try:
                self.handle.flush()
                os.fsync(self.handle.fileno())
                self._write_back_if_taken()
            except OSError as exc:
                if self._failure is None:
                    self._failure = file_error(exc, self.path, "write", _hint(exc))
                    raise RunFileError(exc.errno, self._failure.strerror) from None
            finally:
                with contextlib.suppress(OSError):  # the data that could not be flushed are lost either way
                    self.handle.close()

    def _write_back_if_taken(self) -> None:
        if self.written_back is not None or self._said_moved or self._in_place():
            return  # written back, or its move said already (a copy that failed is tried once more)
        now = self._now_at()
        if now is not None:
            logger.error("%s was moved or replaced while the run wrote it; it is now %s", self.path, now)
            return
        try:
            where, missed = self.write_back()
            logger.error("%s was deleted, or its file system unmounted, while the run wrote it; its records were "
                         "written back to %s%s", self.path, where, f" ({missed})" if missed else "")
        except WriteBackError as exc:  # logged, not raised: the run's own error, if any, is the one to see
            logger.error("%s was deleted while the run wrote it, and writing its records back failed: %s",
                         self.path, exc)
