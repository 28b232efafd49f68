"""The user's side: the ``Worker`` base class and the checked call of ``compute``.

User code failing is data: :func:`evaluate` turns an exception or an invalid return value into
an :class:`Outcome` with ``loss=None`` and the reason in ``error``; the run goes on. An ``info``
too large to send and store (:func:`max_info_bytes`) is replaced by a note; the loss stays.
"""

from __future__ import annotations

import contextlib
import copy
import copyreg
import decimal
import inspect
import logging
import math
import numbers
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from .checkpoints import prepare as prepare_checkpoint_dir
from .launcher import note_worker_class
from .stopping import restore_outside_handlers

logger = logging.getLogger(__name__)

_COMPUTE_ARGUMENTS = ("config_id", "config", "budget", "working_directory")
# passed only when compute names them (not through **kwargs): a directory per configuration costs disk
CHECKPOINT_ARGUMENTS = ("previous_budget", "checkpoint_dir")
# HpBandSter's Worker/Master arguments that the MPI communicator makes unnecessary.
HPBANDSTER_CONNECTION_ARGUMENTS = frozenset(
    {"run_id", "nameserver", "nameserver_port", "host", "id", "logger", "ping_interval",
     "job_queue_sizes", "dynamic_queue_size", "working_directory", "timeout"}
)


MAX_INFO_VARIABLE = "MPIBOHB_MAX_INFO_BYTES"
DEFAULT_MAX_INFO_BYTES = 1_000_000
INFO_DROPPED = "<info dropped:"  # how the note that replaces a too large info starts
INFO_UNPICKLABLE = f"{INFO_DROPPED} it cannot be pickled"  # ... and one that could not travel (MPI)


# HpBandSter's Worker(run_id, nameserver, nameserver_port, logger, host, id, timeout), by position
_WORKER_POSITIONAL = ("run_id", "nameserver", "nameserver_port", "logger", "host", "id", "timeout")


class Worker:
    """Base class of a problem: override :meth:`compute`.

    Both HpBandSter signatures work, because ``compute`` is called by keyword with the
    arguments it declares: ``compute(self, config, budget, **kwargs)`` and
    ``compute(self, config_id, config, budget, working_directory)``. HpBandSter's connection
    arguments (``run_id``, ``nameserver``, ``host``, ...) are accepted and ignored, apart from
    the attributes a ``compute`` may read, as in HpBandSter: ``self.run_id``, ``self.worker_id``
    (from ``id``), ``self.host`` (``host``, else this machine's name) and ``self.logger``.
    """

    run_id: Any = None
    worker_id: Any = None
    host: str = socket.gethostname()
    logger: logging.Logger = logging.getLogger("mpibohb.worker")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        note_worker_class()  # under MPI, a rank that defines a worker and never calls run() tells rank 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - HPBANDSTER_CONNECTION_ARGUMENTS)
        if unknown:
            raise TypeError(f"Worker got unexpected keyword arguments {unknown}")
        if len(args) > len(_WORKER_POSITIONAL):
            raise TypeError(f"Worker takes at most {len(_WORKER_POSITIONAL)} positional arguments "
                            f"{_WORKER_POSITIONAL}, got {len(args)}")
        given = dict(zip(_WORKER_POSITIONAL, args))
        twice = sorted(given.keys() & kwargs.keys())
        if twice:
            raise TypeError(f"Worker got {twice} both by position and by keyword")
        given.update(kwargs)
        if given:
            logger.debug("ignoring HpBandSter connection arguments %s", sorted(given))
        self.run_id, self.worker_id = given.get("run_id"), given.get("id")
        self.host = given.get("host") or Worker.host
        self.logger = given.get("logger") or Worker.logger

    def compute(self, config_id: tuple[int, int, int], config: dict[str, Any], budget: float,
                working_directory: str) -> dict[str, Any]:
        """Evaluate ``config`` at ``budget``; return ``{"loss": float, "info": anything}``.

        A ``compute`` that names them also gets ``previous_budget`` (the largest budget at which
        this configuration was evaluated successfully before in this run, ``None`` the first time)
        and ``checkpoint_dir`` (a directory of this configuration for the whole run, the same on
        every rank, created before the call), to continue training from a checkpoint."""
        raise NotImplementedError("subclasses of Worker must implement compute()")

    def run(self, *args: Any, **kwargs: Any) -> None:
        """HpBandSter's worker loop, which mpibohb does not have: raises ``RuntimeError`` saying
        what takes its place."""
        raise RuntimeError(_NO_WORKER_LOOP.format(call="Worker.run()"))

    def load_nameserver_credentials(self, *args: Any, **kwargs: Any) -> None:
        """HpBandSter's nameserver lookup, which mpibohb does not need: raises ``RuntimeError``."""
        raise RuntimeError(_NO_WORKER_LOOP.format(call="Worker.load_nameserver_credentials()"))


_NO_WORKER_LOOP = (
    "{call} is HpBandSter's: mpibohb has no nameserver and no worker loop of its own. Give the worker to "
    "the optimizer, opt.run(n_iterations=..., worker=w), and run the same script on every process "
    "(under mpiexec rank 0 runs the optimizer and the other ranks evaluate inside run()); the README shows "
    "the four ways of running and the porting steps"
)


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


def as_compute_function(worker: Any) -> Callable[..., Any]:
    """Return a callable ``f(config_id, config, budget, working_directory, previous_budget=None,
    checkpoint_dir=None)`` for ``worker`` (see :func:`declares_checkpoint_dir`).

    ``worker`` is a :class:`Worker` (or any object with ``compute``), or a plain function
    returning a float or a dict with ``loss``, called ``f(config, budget)``, or by keyword like
    ``compute`` when its parameters all have compute's names in another order (see
    :func:`_wants_keywords`).

    Raises:
        ValueError: ``worker`` has no ``compute`` method and is not callable, or is a function
            that can be called neither way.
    """
    if isinstance(worker, (list, tuple)) and worker and all(callable(getattr(w, "compute", None)) for w in worker):
        raise ValueError(f"worker got a list of workers: pass one, and n_workers={len(worker)} to run() for as "
                         "many threads (each thread gets its own copy of it), or run under mpiexec (each rank builds "
                         "its own)")
    if isinstance(worker, type):
        raise ValueError(f"worker must be an object with a compute() method or a function, got the class "
                         f"{worker.__name__}; pass an instance: {worker.__name__}()")
    compute = getattr(worker, "compute", None)
    if isinstance(worker, Worker) and type(worker).compute is Worker.compute:  # a subclass that forgot it
        raise ValueError(f"worker {type(worker).__name__} does not define compute(config_id, config, budget, "
                         "working_directory), which mpibohb calls; Worker's own only raises NotImplementedError")
    if callable(compute):
        return _keyword_caller(compute)
    if callable(worker):
        return _function_caller(worker)
    raise ValueError(
        f"worker must have a compute() method or be a function f(config, budget); got {worker!r}"
    )


def thread_copies(worker: Any, compute: Callable[..., Any]) -> Callable[[], Callable[..., Any]]:
    """Call it before any evaluation: a function that gives each thread after the first its own
    compute. A worker object's is bound to a shallow copy of the object as it is now (its
    ``__dict__`` and slots, not pickling's hooks, which may drop attributes; its class's
    ``__copy__`` if it has one), as each rank under MPI builds its own worker and each thread had
    its own in HpBandSter: what ``compute`` sets on ``self`` stays its thread's, and the objects
    its attributes refer to (a dataset, a cache, a lock) are shared. ``compute`` (the first
    thread's, from :func:`as_compute_function`) serves a plain function, a module, and an object
    that cannot be copied or whose class defines ``__del__`` (with one warning)."""
    template = _shallow_copy(worker)
    if template is None:
        return lambda: compute

    def own_copy() -> Callable[..., Any]:
        copied = _shallow_copy(template)
        return as_compute_function(template if copied is None else copied)

    return own_copy


def _shallow_copy(worker: Any) -> Any:
    """A new object with ``worker``'s attributes (not through a ``__getstate__`` alone, which may
    leave some out for pickling); ``None`` for what is not an object to copy, or cannot be copied."""
    if not callable(getattr(worker, "compute", None)) or inspect.ismodule(worker) or isinstance(worker, type):
        return None
    cls = type(worker)
    if getattr(cls, "__del__", None) is not None:
        _say_shared(f"its class {cls.__name__} defines __del__, which a copy would run on what the worker holds")
        return None
    try:
        if getattr(cls, "__copy__", None) is not None:
            return copy.copy(worker)  # the class says how it copies (pickling's hooks may drop attributes)
        try:
            copied = object.__new__(cls)
        except TypeError:  # a subclass of a builtin (dict, list): its own machinery copies it
            return copy.copy(worker)
        if hasattr(worker, "__dict__"):
            copied.__dict__.update(vars(worker))
        for name in copyreg._slotnames(cls):  # type: ignore[attr-defined]  # the names copy itself uses
            if hasattr(worker, name):
                object.__setattr__(copied, name, getattr(worker, name))
        return copied
    except Exception as exc:  # noqa: BLE001 - any copy that fails: share the object, and say so
        _say_shared(f"it could not be copied ({type(exc).__name__}: {exc})")
        return None


def _say_shared(why: str) -> None:
    logger.warning("every thread calls the same worker object, since %s: keep per-evaluation state out of self "
                   "(a class that defines __copy__ says how to copy it)", why)


def _function_caller(function: Callable[..., Any]) -> Callable[..., Any]:
    """Call a plain function by compute's keywords if it declares them, else as ``f(config, budget)``."""
    def positionally(config_id: Any, config: Any, budget: float, working_directory: str,
                     previous_budget: float | None = None, checkpoint_dir: str | None = None) -> Any:
        return function(config, budget)

    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # some builtins have no signature: trust the documented form
        return positionally
    if _names_checkpoint_arguments(signature) or _wants_keywords(signature):
        return _keyword_caller(function)
    try:
        signature.bind(None, None)
    except TypeError:
        unfilled = _unfilled(signature, ())[2:]  # the first two take config and budget
        raise ValueError(
            f"the worker function {getattr(function, '__name__', function)!r}{signature} cannot be called as "
            f"f(config, budget), nor by compute's argument names "
            f"{', '.join(_COMPUTE_ARGUMENTS + CHECKPOINT_ARGUMENTS)}"
            + (f": {', '.join(unfilled)} would have no value" if unfilled else "")
        ) from None
    return positionally


def _names_checkpoint_arguments(signature: inspect.Signature) -> bool:
    """Does a function name ``previous_budget`` or ``checkpoint_dir``? Then it is called by keyword
    (its other parameters need defaults, :func:`_keyword_caller` checks)."""
    return any(name in signature.parameters for name in CHECKPOINT_ARGUMENTS)


def _unfilled(signature: inspect.Signature, given: Iterable[str]) -> list[str]:
    """The parameters that a call passing ``given`` by keyword leaves without a value."""
    given = set(given)
    return [p.name for p in signature.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.default is p.empty
            and (p.name not in given or p.kind is p.POSITIONAL_ONLY)]


def _wants_keywords(signature: inspect.Signature) -> bool:
    """Is this a function in compute's names that ``f(config, budget)`` would call wrongly?

    Yes when every parameter has one of compute's names, one is ``config``, and they are not just
    ``config, budget`` in that order (``f(config_id, config, budget)``, ``f(budget, config)``,
    ``f(config)``, ``f(config, budget, working_directory)``);
    never with ``*args`` or positional-only parameters, which only the positional call serves. (A
    function that names a checkpoint argument is called by keyword anyway.)
    """
    parameters = list(signature.parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY) for p in parameters):
        return False
    named = [p.name for p in parameters if p.kind is not p.VAR_KEYWORD]
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    return ("config" in named and set(named) <= set(_COMPUTE_ARGUMENTS)
            and (positional[:2] != ["config", "budget"] or len(named) > 2))


def _keyword_caller(compute: Callable[..., Any]) -> Callable[..., Any]:
    """Call ``compute`` by keyword with the arguments it declares (all of compute's first four
    when it takes ``**kwargs``).

    Raises:
        ValueError: a parameter would have no value (neither one of compute's arguments nor with a
            default, or positional-only): every evaluation would fail.
    """
    signature = inspect.signature(compute)
    parameters = signature.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    names = [name for name in _COMPUTE_ARGUMENTS if takes_any or name in parameters]
    names += [name for name in CHECKPOINT_ARGUMENTS if name in parameters]
    unfilled = _unfilled(signature, names)
    if unfilled:
        raise ValueError(f"{getattr(compute, '__qualname__', compute)}{signature} cannot be called: "
                         f"{', '.join(unfilled)} would have no value (it is called by keyword with "
                         f"{', '.join(_COMPUTE_ARGUMENTS + CHECKPOINT_ARGUMENTS)}, those it declares; give the "
                         "others a default)")

    def call(config_id: Any, config: Any, budget: float, working_directory: str,
             previous_budget: float | None = None, checkpoint_dir: str | None = None) -> Any:
        values = {"config_id": config_id, "config": config, "budget": budget,
                  "working_directory": working_directory, "previous_budget": previous_budget,
                  "checkpoint_dir": checkpoint_dir}
        return compute(**{name: values[name] for name in names})

    call.declares_checkpoint_dir = "checkpoint_dir" in names  # type: ignore[attr-defined]
    return call


def declares_checkpoint_dir(compute: Callable[..., Any]) -> bool:
    """Does the user's ``compute`` (as :func:`as_compute_function` wraps it) name ``checkpoint_dir``?"""
    return bool(getattr(compute, "declares_checkpoint_dir", False))


class JobTimeoutError(Exception):
    """The evaluation ran past its time limit."""


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

    ``checkpoint_dir`` (when compute gets one) is created first; failing that is the run's failure.

    With ``timeout`` (seconds), an evaluation that runs longer is recorded as failed with reason
    "timeout". In the main thread it is interrupted by ``SIGALRM`` at the limit; in other threads
    (which cannot be interrupted) a late result is recorded as a timeout when it returns (the
    thread executor records it at the limit already, and discards the late result).
    """
    started, sigints = time.time(), _SigintCount.count
    try:
        if checkpoint_dir is not None:
            prepare_checkpoint_dir(checkpoint_dir, previous_budget, worker_name)
        given = {name: value for name, value in zip(CHECKPOINT_ARGUMENTS, (previous_budget, checkpoint_dir))
                 if value is not None}  # a first evaluation, or a compute without checkpoints: as before
        with _time_limit(timeout):
            returned = compute(config_id, dict(config), budget, working_directory, **given)  # its own config
        if timeout is not None and time.time() - started > timeout:
            raise JobTimeoutError(f"timeout: ran {time.time() - started:.1f} s, limit {timeout:g} s")
        loss, info = check_returned(returned)
        error = None
    except BaseException as exc:  # noqa: BLE001 - user code failing is data, not a crash
        if not _failure_of_compute(exc, real_sigint=_SigintCount.count != sigints):
            raise
        loss, info = None, None
        error = _describe(exc, worker_name)
    return Outcome(loss, bounded_info(info), error, started, time.time(), worker_name)


def _failure_of_compute(exc: BaseException, real_sigint: bool) -> bool:
    """Is ``exc`` the evaluation's failure, to be recorded? Any ``Exception``, ``SystemExit``, an
    ``asyncio.CancelledError``, and a ``KeyboardInterrupt`` that no real SIGINT caused (compute's
    own ``raise``). Not mpibohb's own stop (``StopRequested``) nor a real Ctrl-C: they stop the run."""
    if isinstance(exc, KeyboardInterrupt):
        return not real_sigint
    asyncio = sys.modules.get("asyncio")  # compute cannot raise its CancelledError without importing it
    cancelled = asyncio is not None and isinstance(exc, asyncio.CancelledError)
    return isinstance(exc, (Exception, SystemExit)) or cancelled


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
    executor records that as a failure; the others do not pickle it)."""
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
    """Raise :class:`JobTimeoutError` in the main thread after ``seconds``."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise JobTimeoutError(f"timeout: interrupted after the limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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
    return loss, returned.get("info")


def _describe(exc: BaseException, worker_name: str) -> str:
    where = f" on {worker_name}" if worker_name else ""
    if isinstance(exc, (InvalidResultError, JobTimeoutError)):
        return f"{type(exc).__name__}{where}: {exc}"
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"{type(exc).__name__}{where}: {exc}\n{trace}"


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
