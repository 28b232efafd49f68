"""The files of a run directory: opened without following symbolic links, created private.

A run directory may sit in a shared place (a project's scratch space). A symbolic link planted
under one of mpibohb's file names must not make a run truncate or append to the link's target,
so every file is opened with ``O_NOFOLLOW`` and rewritten files are replaced (a link is replaced,
not followed). What a run writes (configurations, losses, the worker's ``info``) is its owner's:
new files get mode 0600 and a new run directory 0700, whatever the umask. The environment
variable ``MPIBOHB_FILE_MODE`` (octal, e.g. ``640``) sets another file mode; the directory then
gets the matching search bits (750). A file that exists keeps its mode, also when it is rewritten.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, TextIO

FILE_MODE_VARIABLE = "MPIBOHB_FILE_MODE"
DEFAULT_FILE_MODE = 0o600


class RunFileError(OSError):
    """A file of the run directory cannot be opened or written; the message says which and why."""


def file_mode() -> int:
    """The mode of new files: ``MPIBOHB_FILE_MODE`` (octal) or 0600.

    Raises:
        ValueError: the variable is not an octal mode that lets the owner read and write.
    """
    text = os.environ.get(FILE_MODE_VARIABLE, "").strip()
    if not text:
        return DEFAULT_FILE_MODE
    try:
        mode = int(text.removeprefix("0o"), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777 or mode & 0o600 != 0o600:
        raise ValueError(f"{FILE_MODE_VARIABLE}={text!r} is not a file mode such as 600 or 640 (octal; the owner "
                         "must be able to read and write)")
    return mode


def directory_mode(mode: int) -> int:
    """A directory mode for file mode ``mode``: search (x) wherever it has read (640 -> 750)."""
    return mode | (mode & 0o444) >> 2


def make_run_directory(path: str | os.PathLike) -> None:
    """Create ``path`` (and its parents, with the usual umask) if it does not exist; the run
    directory itself gets :func:`directory_mode`."""
    path = Path(path)
    if path.is_dir():
        return
    in_the_way = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if in_the_way is not None:
        where = "" if in_the_way == path else f": {in_the_way}"
        raise RunFileError(f"run_dir {path}{where} is a file, not a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = directory_mode(file_mode())
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not path.is_dir():
            raise
        return
    os.chmod(path, mode)  # exactly this mode, whatever the umask


def open_fd(path: Path, flags: int) -> int:
    """``os.open`` without following a symbolic link; a new file gets :func:`file_mode`.

    Raises:
        RunFileError: the file cannot be opened (a symbolic link, no permission, ...), saying why.
    """
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    mode = file_mode()
    try:
        if flags & os.O_CREAT:
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, flags | os.O_EXCL, mode)
                os.fchmod(fd, mode)  # exactly this mode, whatever the umask
                return fd
        return os.open(path, flags & ~os.O_CREAT)
    except OSError as exc:
        raise file_error(exc, path, "open") from None


def file_error(exc: OSError, path: Path, doing: str, hint: str = "") -> RunFileError:
    """A :class:`RunFileError` for ``exc``: what was being done to which file, why it failed, and
    ``hint``, what to do about it."""
    if os.path.islink(path):
        reason = "it is a symbolic link, and mpibohb does not follow links in a run directory; remove it"
    else:
        reason = exc.strerror or str(exc)
    return RunFileError(exc.errno, f"cannot {doing} {path}: {reason}{'; ' + hint if hint else ''}")


def open_append(path: Path) -> TextIO:
    """``path`` opened for appending text (created if missing), not through a symbolic link; the
    descriptor reads too, so a file deleted while open can be written back (``os.pread``)."""
    fd = open_fd(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    return os.fdopen(fd, "a", encoding="utf-8")


def open_update(path: Path) -> BinaryIO:
    """An existing ``path`` opened for reading and writing bytes, not through a symbolic link."""
    return os.fdopen(open_fd(path, os.O_RDWR), "rb+")


def refuse_link(path: Path) -> None:
    """Raise :class:`RunFileError` if ``path`` is a symbolic link (a file the run would write)."""
    if path.is_symlink():
        raise file_error(OSError(errno.ELOOP, os.strerror(errno.ELOOP)), path, "use")


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to a new file and put it in place of ``path`` in one step: a reader sees the
    old or the new file, and a symbolic link at ``path`` is replaced, never followed. The file
    keeps the mode it had (a new one gets :func:`file_mode`).

    Raises:
        RunFileError: the file cannot be written (a full disk, no permission, ...).
    """
    try:
        old = os.lstat(path)
        mode = stat.S_IMODE(old.st_mode) if stat.S_ISREG(old.st_mode) else file_mode()
    except FileNotFoundError:
        mode = file_mode()
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise file_error(exc, path.parent / f".{path.name}.tmp", "create") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), mode)
            file.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        raise file_error(exc, path, "write") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def write_copy(source_fd: int, path: Path) -> None:
    """Copy what the file open as ``source_fd`` holds (read with ``os.pread``, so also a deleted
    file) to a new file ``path``, a chunk at a time, on disk before it appears, and never in the
    place of another: :class:`FileExistsError` if ``path`` exists."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        offset = 0
        while chunk := os.pread(source_fd, 1 << 20, offset):
            offset += len(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        os.fsync(fd)
        try:
            os.link(temporary, path)  # fails if a file took the place, where a rename would replace it
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP) or os.path.lexists(path):
                raise
            os.rename(temporary, path)  # a file system without hard links
        _sync_directory(path.parent)
    finally:
        with contextlib.suppress(OSError):  # a copy linked in place stays a copy
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _sync_directory(path: Path) -> None:
    """fsync a directory, so that a file just put in it stays after a crash (where it can be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
