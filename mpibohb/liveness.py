"""Is the process that writes a run directory still there? Read-only, for ``status`` and ``report``.

The run directory's lock is an ``flock`` (see :func:`mpibohb.run_directory.lock_run_directory`), which
a process releases when it dies but which has no test that does not take it. Taking it, even
shared and for a moment, could make a resume starting at that moment fail, so this only reads:
the ``pid@host`` the lock file names, ``kill(pid, 0)``, and on Linux ``/proc/locks``. A recycled
pid errs towards "alive".
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path
from typing import Any

from .run_directory import LOCK, flock_holder

logger = logging.getLogger(__name__)

WRITER_ALIVE, WRITER_GONE, WRITER_ELSEWHERE, WRITER_UNKNOWN = "alive", "gone", "elsewhere", "unknown"
_HOLDER = re.compile(r"(\d+)@(\S+)")


def writer_of(run_dir: str | Path, session_starts: list[Any]) -> dict[str, Any]:
    """``{"writer": ..., "writer_pid": pid or None, "writer_host": host or None}`` of a run the
    journal says is running, given when its sessions started (their records' ``started``);
    ``writer`` is one of ``WRITER_ALIVE``, ``WRITER_GONE``, ``WRITER_ELSEWHERE``,
    ``WRITER_UNKNOWN`` (see :func:`mpibohb.summary.writer_status`)."""
    path = Path(run_dir) / LOCK
    holder = _lock_holder(path, session_starts)
    pid, host = holder if holder is not None else (None, None)
    return {"writer": _writer(path, pid, host), "writer_pid": pid, "writer_host": host}


def locking_pid(run_dir: str | Path) -> int | None:
    """The pid of a process of this host that holds the run directory's lock now (-1: one that
    ``/proc/locks`` does not name), ``None`` when none does or this cannot be told: for a run the
    journal says has stopped or finished, a resume that is starting (it replays the journal before
    it writes anything)."""
    path = Path(run_dir) / LOCK
    holder = flock_holder(path.parent)
    return holder if holder is not None else flock_holder(path)


def _writer(path: Path, pid: int | None, host: str | None) -> str:
    if locking_pid(path.parent) is not None:
        return WRITER_ALIVE
    if pid is None:
        return WRITER_UNKNOWN
    if host != socket.gethostname():
        return WRITER_ELSEWHERE
    return WRITER_ALIVE if _process_exists(pid) else WRITER_GONE


def _lock_holder(path: Path, session_starts: list[Any]) -> tuple[int, str] | None:
    """The ``(pid, host)`` the lock file names, if it was written for the latest session.

    A lock file older than the session before the latest one was not written by the latest
    session's process (a file system that could not lock it), so it names nobody.
    """
    try:
        text, written = path.read_text(encoding="utf-8", errors="replace"), path.stat().st_mtime
    except OSError:
        return None
    match = _HOLDER.fullmatch(text.strip())
    if match is None or int(match.group(1)) <= 0:
        return None
    previous = session_starts[-2] if len(session_starts) >= 2 else None
    if isinstance(previous, (int, float)) and written < previous:
        logger.debug("%s predates the latest session; ignoring it", path)
        return None
    return int(match.group(1)), match.group(2)


def _process_exists(pid: int) -> bool:
    """Whether process ``pid`` of this host exists and is not a zombie (signal 0 sends nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's process, which exists
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
