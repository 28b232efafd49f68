"""One evaluation, checked: :func:`evaluate` calls a compute function and turns what comes of it
into an :class:`Outcome`; it never raises for the user's faults.

User code failing is data: an exception or an invalid return value becomes an :class:`Outcome`
with ``loss=None`` and the reason in ``error``; the run goes on. An ``info`` too large to send and
store (:func:`max_info_bytes`) is replaced by a note; the loss stays. A time limit interrupts
``compute`` in the main thread (``SIGALRM``); :func:`sigint_watch` tells a real Ctrl-C, which
stops the run, from ``compute``'s own ``KeyboardInterrupt``.
"""

from __future__ import annotations

import builtins
import contextlib
import decimal
import errno
import logging
import math
import numbers
import os
import pickle
import re
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeGuard, cast

from .checkpoints import prepare as prepare_checkpoint_dir
from .files import RunFileError
from .launcher import flush_standard_streams
from .stopping import StopRequested, restore_outside_handlers
from .values import own_values

logger = logging.getLogger(__name__)

# passed only when compute names them (not through **kwargs): a directory per configuration costs disk
CHECKPOINT_ARGUMENTS = ("previous_budget", "checkpoint_dir")

MAX_INFO_VARIABLE = "MPIBOHB_MAX_INFO_BYTES"
DEFAULT_MAX_INFO_BYTES = 1_000_000
INFO_DROPPED = "<info dropped:"  # how the note that replaces a too large info starts
INFO_UNPICKLABLE = f"{INFO_DROPPED} it cannot be pickled"  # ... and one that could not travel (MPI)


@dataclass
class Outcome:
    """What came of one evaluation. ``loss is None`` means it failed; ``error`` says why."""

    loss: float | None
    info: Any = None
    error: str | None = None
    started: float = 0.0
    finished: float = 0.0
    worker: str = ""
    interrupted: int | None = None  # a stop signal that reached compute: run it again, do not record it

    @property
    def failed(self) -> bool:
        """True when the evaluation produced no usable loss."""
        return self.loss is None

    def loss_for_model(self) -> float:
        """The loss as the optimizer sees it: failed runs count as +inf."""
        return math.inf if self.loss is None else self.loss


class JobTimeoutError(BaseException):
    """The evaluation ran past its time limit. A ``BaseException``, as ``StopRequested`` is: a
    training loop's ``except Exception`` (skipping a bad batch) would swallow it and run on."""


GRACE_SECONDS = 5.0  # beyond ``timeout``, for the evaluation's own timeout to fire and its answer to arrive
GRACE_FRACTION = 0.1


def answer_deadline(timeout: float | None) -> float | None:
    """Seconds after an evaluation starts by which it must have answered, or be taken for stuck
    where its ``timeout`` cannot interrupt it (a blocking C call, a stopped process); ``None``: never."""
    return None if timeout is None else timeout * (1 + GRACE_FRACTION) + GRACE_SECONDS


def evaluate(compute: Callable[..., Any], config_id: tuple[int, int, int], config: dict[str, Any],
             budget: float, working_directory: str, worker_name: str = "",
             timeout: float | None = None, previous_budget: float | None = None,
             checkpoint_dir: str | None = None) -> Outcome:
    """Call ``compute`` and check what it returns; never raises for the user's faults.

    ``checkpoint_dir`` (when compute gets one) is created first; failing that is the run's failure
    (:class:`~mpibohb.files.RunFileError`), not the configuration's, and so is a ``compute`` that
    failed for want of disk space (``ENOSPC``, ``EDQUOT``).

    With ``timeout`` (seconds), an evaluation that runs longer is recorded as failed with reason
    "timeout". In the main thread it is interrupted by ``SIGALRM`` at the limit; in other threads
    (which cannot be interrupted) a late result is recorded as a timeout when it returns (the
    thread executor records it at the limit already, and discards the late result).
    """
    if checkpoint_dir is not None:
        _prepare_or_stop(checkpoint_dir, previous_budget, worker_name, config_id, budget)
    started, sigints, pid = time.time(), _SigintCount.count, os.getpid()
    try:
        given = {name: value for name, value in zip(CHECKPOINT_ARGUMENTS, (previous_budget, checkpoint_dir))
                 if value is not None}  # a first evaluation, or a compute without checkpoints: as before
        with _time_limit(timeout):
            returned = compute(config_id, own_values(config), budget, working_directory, **given)  # its own config
        if timeout is not None and time.time() - started > timeout:
            raise JobTimeoutError(f"timeout: ran {time.time() - started:.1f} s, limit {timeout:g} s")
        loss, info = check_returned(returned)
        error = None
    except BaseException as exc:  # noqa: BLE001 - user code failing is data, not a crash
        _end_a_forked_child(pid, exc)
        if not _failure_of_compute(exc, real_sigint=_SigintCount.count != sigints):
            raise
        _stop_for_a_full_disk(exc, config_id, budget, worker_name, started)
        loss, info = None, None
        error = _describe(exc, worker_name)
    _end_a_forked_child(pid)
    return Outcome(loss, bounded_info(info), error, started, time.time(), worker_name)


def _prepare_or_stop(checkpoint_dir: str, previous_budget: float | None, worker_name: str,
                     config_id: tuple[int, int, int], budget: float) -> None:
    """Create the checkpoint directory; a failure is the run's, not the configuration's (a full disk,
    a quota, a read-only mount): :class:`EvaluationFileError` ends the run before the job."""
    try:
        prepare_checkpoint_dir(checkpoint_dir, previous_budget, worker_name)
    except OSError as exc:
        error = EvaluationFileError(f"cannot create the checkpoint directory {checkpoint_dir} ({type(exc).__name__}: "
                                    f"{exc.strerror or exc}); the run stops before {config_id} at budget {budget:g} "
                                    "ran, which runs on resume once the checkpoint root is writable again (a full "
                                    "disk, a quota, a read-only mount)")
        error.errno = exc.errno  # the message alone is printed: one OSError argument
        raise error from exc


class EvaluationFileError(RunFileError):
    """An evaluation met a failure of the run's, not the configuration's: its checkpoint directory
    cannot be made, or compute ran out of disk space (:class:`OutOfSpaceError`). The run stops
    with a ``stop`` record (a resume counts no crash), and the job runs again on resume."""


class OutOfSpaceError(EvaluationFileError):
    """``compute`` failed for want of disk space (``ENOSPC``, ``EDQUOT``): the run's failure, not the
    configuration's, so the run stops and the job runs again on resume. ``config_id``, ``budget``:
    the job; ``outcome``: the failed outcome it would have been, which is recorded once stops
    ended :data:`~mpibohb.executors.KEPT_AFTER_STOPS` earlier sessions while it ran (a configuration
    that fills any disk would otherwise stop every session)."""

    def __init__(self, message: str, config_id: tuple[int, int, int], budget: float, outcome: Outcome) -> None:
        super().__init__(message)
        self.config_id, self.budget, self.outcome = config_id, budget, outcome


def _stop_for_a_full_disk(exc: BaseException, config_id: tuple[int, int, int], budget: float,
                          worker_name: str, started: float) -> None:
    """Raise :class:`OutOfSpaceError` when ``exc`` came of a full disk or quota (``ENOSPC``,
    ``EDQUOT``, in ``exc`` or the exceptions it was raised from or while handling), unless a stop
    is among them (a ``finally`` that saved a checkpoint on the way out of a stop: the stop's exit).
    Recorded as failed, every later job would fail the same way."""
    full = _full_disk_error(exc)
    if full is None:
        return
    where = f" on {worker_name}" if worker_name else ""
    code = _full_disk_code(full)
    outcome = Outcome(None, None, _describe(exc, worker_name), started, time.time(), worker_name)
    error = OutOfSpaceError(f"{config_id} at budget {budget:g}{where}: compute failed for want of disk space "
                            f"({_disk_error_text(full, code)}); a full disk or quota is the run's failure, not the "
                            "configuration's: the run stops without recording this job, which runs again on resume "
                            "once there is space", config_id, budget, outcome)
    error.errno = code  # the message alone is printed: one OSError argument
    raise error from exc


def _disk_error_text(error: BaseException, code: int) -> str:
    """``OSError: [Errno 28] No space left on device: 'path'``, read without trusting the error's
    attributes (a user's subclass may raise in them); an error known by its text alone as its
    type and text."""
    if not _has_full_disk_code(error):
        return f"{type(error).__name__}: {_text_of(error):.300}"
    try:
        reason = error.strerror if isinstance(error.strerror, str) else os.strerror(code)
        name = error.filename if isinstance(error.filename, (str, bytes)) else None
    except Exception:  # noqa: BLE001 - a user's property
        reason, name = os.strerror(code), None
    where = f": {name!r:.300}" if name is not None else ""
    return f"{type(error).__name__}: [Errno {code}] {reason}{where}"


FULL_DISK_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)
# errors that carry no code but say it: the C library's own words (h5py, a framework's RuntimeError,
# PyTorch's shared memory), and SQLite's SQLITE_FULL
FULL_DISK_TEXTS = ("no space left on device", "disk quota exceeded", "database or disk is full")
# numpy's tofile reports a short fwrite so, without a code; to a file, that is a full disk or quota
SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")
_CHAIN_LIMIT = 1000  # exceptions looked at in one chain: a longer one is not a disk's
_TEXT_LIMIT = 2_000  # characters of an error's text looked at: its message, not a log it quotes


def _full_disk_error(exc: BaseException) -> BaseException | None:
    """The first error of a full disk or quota among ``exc``, its causes and contexts, and the
    members of exception groups among them: an ``OSError`` with its code, else one whose text says
    so (:data:`FULL_DISK_TEXTS`); ``None`` when there is none or a stop is among them. Whatever the
    user's exceptions do (a ``__context__`` that raises, an ``errno`` of any type, a ``__str__``
    that raises), this looks and never raises."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    found: BaseException | None = None
    said: BaseException | None = None  # the first known by its text
    while pending and len(seen) < _CHAIN_LIMIT:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (StopRequested, KeyboardInterrupt)):
            return None
        if found is None and _has_full_disk_code(current):
            found = current
        elif said is None and _says_the_disk_is_full(current):
            said = current
        pending.extend(_linked(current))
    return found if found is not None else said  # not `or`: a user's __bool__ may raise


def _says_the_disk_is_full(error: BaseException) -> bool:
    """Its text says so (:data:`FULL_DISK_TEXTS`), or it is an ``OSError`` without a code whose
    whole text is numpy's short write (:data:`SHORT_WRITE`)."""
    text = _text_of(error)
    lowered = text.lower()
    if any(words in lowered for words in FULL_DISK_TEXTS):
        return True
    return (isinstance(error, OSError) and _errno_of(error) is None and SHORT_WRITE.fullmatch(text) is not None
            and not _file_size_limited())


def _file_size_limited() -> bool:
    """A limit on the size of files (``ulimit -f``): a short write may then be a file too large."""
    return resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY


def _text_of(error: BaseException) -> str:
    """``str(error)`` as a plain string, at most :data:`_TEXT_LIMIT` characters; empty if the
    user's ``__str__`` (or the string it returns) misbehaves."""
    try:
        text = str(error)
        return str.__str__(text)[:_TEXT_LIMIT] if isinstance(text, str) else ""
    except Exception:  # noqa: BLE001 - a user's __str__
        return ""


def _has_full_disk_code(error: BaseException) -> TypeGuard[OSError]:
    return isinstance(error, OSError) and _errno_of(error) in FULL_DISK_ERRNOS


def _full_disk_code(error: BaseException) -> int:
    """The error's code (``ENOSPC`` or ``EDQUOT``); for one known by its text, the code its text names."""
    code = _errno_of(error) if isinstance(error, OSError) else None
    if code is not None and code in FULL_DISK_ERRNOS:
        return code
    quota = getattr(errno, "EDQUOT", None)
    return quota if quota is not None and "quota" in _text_of(error).lower() else errno.ENOSPC


def _errno_of(error: OSError) -> int | None:
    try:
        code = error.errno
    except Exception:  # noqa: BLE001 - a user's property
        return None
    return code if isinstance(code, int) else None


def _linked(exc: BaseException) -> list[BaseException]:
    """The exceptions ``exc`` was raised from or while handling, and a group's members."""
    linked: list[object] = []
    for name in ("__cause__", "__context__"):
        with contextlib.suppress(Exception):  # a user's property
            linked.append(getattr(exc, name, None))
    if isinstance(exc, _EXCEPTION_GROUP):
        with contextlib.suppress(Exception):
            linked.extend(exc.exceptions)
    return [value for value in linked if isinstance(value, BaseException)]


def _end_a_forked_child(pid: int, exc: BaseException | None = None) -> None:
    """A process that ``compute`` forked and that came back here (``sys.exit`` or a ``return`` in
    the child) ends at once, with the exit code it asked for (0 after a return, 1 after an error):
    it would go on as a second optimizer, writing the same journal."""
    if os.getpid() == pid:
        return
    code = 0 if exc is None else 1
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    with contextlib.suppress(Exception):
        sys.stderr.write(f"mpibohb: a process forked by compute (pid {os.getpid()}) returned from it; it ends "
                         f"here with exit code {code} (end a forked child with os._exit)\n")
    flush_standard_streams()
    os._exit(code)


_EXCEPTION_GROUP = getattr(builtins, "BaseExceptionGroup", ())  # Python 3.11 and later


def _failure_of_compute(exc: BaseException, real_sigint: bool) -> bool:
    """Is ``exc`` the evaluation's failure, to be recorded? Anything ``compute`` raised (``SystemExit``,
    ``GeneratorExit``, an exception group, a ``KeyboardInterrupt`` of its own ``raise``) but what stops
    the run: mpibohb's own stop (``StopRequested``) and a real Ctrl-C, alone or in a group."""
    if isinstance(exc, _EXCEPTION_GROUP):
        return all(_failure_of_compute(inner, real_sigint) for inner in exc.exceptions)
    if isinstance(exc, KeyboardInterrupt):
        return not real_sigint
    return not isinstance(exc, StopRequested)


class _SigintCount:
    """How many SIGINTs Python's default handler raised as KeyboardInterrupt under :func:`sigint_watch`."""

    count = 0


@contextlib.contextmanager
def sigint_watch() -> Iterator[None]:
    """While inside, count the SIGINTs that Python's default handler turns into ``KeyboardInterrupt``
    (in the main thread, where that handler is in place: no run directory's stop handler), so that
    :func:`evaluate` tells a real Ctrl-C, which stops the run, from compute's own ``raise``. Once
    per run: swapping a signal handler costs a system call."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    restore_outside_handlers()  # after a stopped run in this process (a notebook): Python's handler first
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def interrupted(signum: int, frame: Any) -> None:
        _SigintCount.count += 1
        signal.default_int_handler(signum, frame)

    # a stopped run's handler gives this back after the run (see mpibohb.stopping): Python's instead
    interrupted.handler_outside_run = signal.default_int_handler  # type: ignore[attr-defined]
    signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is interrupted:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def max_info_bytes() -> int:
    """The largest ``info`` a run keeps, in bytes: ``MPIBOHB_MAX_INFO_BYTES`` or 1,000,000.

    Raises:
        ValueError: the variable is not a whole number of bytes >= 1.
    """
    text = os.environ.get(MAX_INFO_VARIABLE, "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_INFO_BYTES
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MAX_INFO_VARIABLE}={text!r} is not a number of bytes (a whole number >= 1, "
                         f"default {DEFAULT_MAX_INFO_BYTES})")
    return int(text)


def info_note(size: str, limit: int) -> str:
    """The note that stands for an ``info`` over the limit."""
    return f"{INFO_DROPPED} {size}, over the limit of {limit:,} bytes (set {MAX_INFO_VARIABLE} to keep larger ones)>"


class _ByteCounter:
    """A file for ``pickle`` that keeps nothing and counts the bytes written to it."""

    size = 0

    def write(self, data: Any) -> None:
        self.size += memoryview(data).nbytes


def bounded_info(info: Any) -> Any:
    """``info``, or a note when its pickle (as it travels to the master) is over :func:`max_info_bytes`;
    measured without keeping the pickle. An info that cannot be pickled is left alone (the MPI
    executor sends a note in its place; the others do not pickle it)."""
    if info is None:
        return None
    limit, counter = max_info_bytes(), _ByteCounter()
    try:
        pickle.Pickler(counter, protocol=pickle.HIGHEST_PROTOCOL).dump(info)
    except Exception:  # noqa: BLE001 - any pickling failure of user data
        return info
    return info_note(f"{counter.size:,} bytes pickled", limit) if counter.size > limit else info


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`JobTimeoutError` in the main thread after ``seconds``, once (a ``finally`` of
    compute's that saves a checkpoint may take its time); the caller's own ``ITIMER_REAL`` (a
    script's ``alarm``) is armed again afterwards, with the time it had left."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise JobTimeoutError(f"timeout: interrupted after the limit of {seconds:g} s")

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    callers_delay, callers_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        _disarm(previous)
        if callers_delay > 0:  # due during the evaluation: at once
            left = max(callers_delay - (time.monotonic() - started), 1e-6)
            signal.setitimer(signal.ITIMER_REAL, left, callers_interval)


def _disarm(previous: Any) -> None:
    """Stop the time limit and give ``SIGALRM`` back to ``previous``. An expiry can still be raised
    on the way out (a signal's handler runs between any two steps): it is dropped, since the job is
    past its limit anyway, so that no ``JobTimeoutError`` reaches the optimizer later."""
    while True:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            return
        except JobTimeoutError:
            continue


class InvalidResultError(ValueError):
    """``compute`` returned something that is not a usable result."""


def check_returned(returned: Any) -> tuple[float, Any]:
    """``(loss, info)`` from what ``compute`` returned, or :class:`InvalidResultError` saying why not."""
    if not isinstance(returned, dict) and (isinstance(returned, numbers.Real) or hasattr(returned, "item")):
        returned = {"loss": returned}  # a bare loss; _real_loss refuses bools and arrays of many numbers
    if not isinstance(returned, dict):
        kind = type(returned).__name__
        raise InvalidResultError(f"compute must return a dict with a 'loss', got {kind}: {returned!r:.200}")
    if "loss" not in returned:
        raise InvalidResultError(f"compute returned a dict without 'loss': keys {sorted(map(str, returned))}")
    loss = _real_loss(returned["loss"])
    if not math.isfinite(loss):
        given = returned["loss"]
        beyond = "" if isinstance(given, float) or math.isnan(loss) else f" ({given!r:.60} is beyond a float's range)"
        raise InvalidResultError(f"the loss must be finite, got {loss!r}{beyond}")
    _warn_of_other_keys(returned)
    return loss, returned.get("info")


_OTHER_KEYS_WARNED: set[str] = set()


def _warn_of_other_keys(returned: dict[Any, Any]) -> None:
    """Once per key: keys besides ``loss`` and ``info`` are not kept (HpBandSter's logs kept them)."""
    other = sorted(str(key) for key in returned if key not in ("loss", "info") and str(key) not in _OTHER_KEYS_WARNED)
    if other:
        _OTHER_KEYS_WARNED.update(other)
        logger.warning("compute returned %s besides 'loss' and 'info': mpibohb keeps only those two (HpBandSter's "
                       "results.json kept the whole dict); put what you want kept in 'info'", other)


def _describe(exc: BaseException, worker_name: str) -> str:
    """The failure's text: its type, where, its message and (not for ours) its traceback, at most
    :data:`MAX_ERROR_CHARS` (a 10 MB message was stored twice in every record and printed)."""
    where = f" on {worker_name}" if worker_name else ""
    message = _safe_str(exc)
    if isinstance(exc, (InvalidResultError, JobTimeoutError)):
        return _shortened(f"{type(exc).__name__}{where}: {message}")
    try:
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception as unformatted:  # noqa: BLE001 - an exception whose __str__ raises, in a chain or group
        trace = f"(its traceback could not be formatted: {type(unformatted).__name__})"
    return _shortened(f"{type(exc).__name__}{where}: {message}\n{trace}")


MAX_ERROR_CHARS = 20_000


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception as failed:  # noqa: BLE001 - the user's __str__ raised
        return f"<its message could not be read: {type(failed).__name__} in {type(exc).__name__}.__str__>"


def _shortened(text: str) -> str:
    """``text``, or its beginning and end around a note when it is over :data:`MAX_ERROR_CHARS`."""
    if len(text) <= MAX_ERROR_CHARS:
        return text
    half = MAX_ERROR_CHARS // 2
    return f"{text[:half]}\n... <{len(text) - 2 * half:,} characters left out> ...\n{text[-half:]}"


def real_number(value: Any) -> float | None:
    """``value`` as a float if it is one real number (not a bool): a number, a ``Decimal``, or a
    one-element array or tensor (numpy, torch, jax...) read with its ``item()``; else ``None``."""
    if not isinstance(value, numbers.Real) and callable(getattr(value, "item", None)):
        try:
            value = value.item()
        except Exception:  # noqa: BLE001 - numpy says ValueError, torch RuntimeError: both mean not one number
            return None
    if isinstance(value, decimal.Decimal):  # a real number that numbers.Real leaves out
        value = math.nan if value.is_nan() else float(value)  # float() refuses a signalling NaN
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:  # an int (or Fraction) beyond float's range
        return math.inf if cast(Any, value) > 0 else -math.inf


def _real_loss(loss: Any) -> float:
    """``loss`` as a float (see :func:`real_number`); anything else is an :class:`InvalidResultError`."""
    value = real_number(loss)
    if value is not None:
        return value
    if not isinstance(loss, numbers.Real) and callable(getattr(loss, "item", None)):
        shape = getattr(loss, "shape", "?")
        raise InvalidResultError(f"the loss must be one real number, got {type(loss).__name__} "
                                 f"of shape {tuple(shape) if shape != '?' else shape}: {loss!r:.200}")
    raise InvalidResultError(f"the loss must be a real number, got {type(loss).__name__}: {loss!r:.200}")
