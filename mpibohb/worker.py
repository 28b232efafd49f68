"""The user's side: the ``Worker`` base class, and the compute function made of what ``run`` is
given (a worker object or a function; each thread after the first gets its own copy of an object).
The checked call of it is :mod:`.evaluation`'s.
"""

from __future__ import annotations

import copy
import copyreg
import inspect
import itertools
import logging
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

from .evaluation import CHECKPOINT_ARGUMENTS
from .launcher import note_worker_class

logger = logging.getLogger(__name__)

_COMPUTE_ARGUMENTS = ("config_id", "config", "budget", "working_directory")
# HpBandSter's Worker/Master arguments that the MPI communicator makes unnecessary.
HPBANDSTER_CONNECTION_ARGUMENTS = frozenset(
    {"run_id", "nameserver", "nameserver_port", "host", "id", "logger", "ping_interval",
     "job_queue_sizes", "dynamic_queue_size", "working_directory", "timeout"}
)

# HpBandSter's Worker(run_id, nameserver, nameserver_port, logger, host, id, timeout), by position
_WORKER_POSITIONAL = ("run_id", "nameserver", "nameserver_port", "logger", "host", "id", "timeout")


class Worker:
    """Base class of a problem: override :meth:`compute`.

    Both HpBandSter signatures work, because ``compute`` is called by keyword with the
    arguments it declares: ``compute(self, config, budget, **kwargs)`` and
    ``compute(self, config_id, config, budget, working_directory)``. HpBandSter's connection
    arguments (``run_id``, ``nameserver``, ``host``, ...) are accepted and ignored, apart from
    the attributes a ``compute`` may read, as in HpBandSter: ``self.run_id``, ``self.worker_id``
    (``id``; without one, a name of this process's own, as HpBandSter's, so that files named after it
    do not collide: ``mpibohb.run_<run_id>.worker.<host>.<pid>``, with ``.<n>`` for each thread's
    copy after the first), ``self.host`` (``host``, else this machine's name) and ``self.logger``.
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
        if self.worker_id is None:
            self.worker_id = _own_worker_id(self.run_id)
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
    numbers = itertools.count(1)

    def own_copy() -> Callable[..., Any]:
        copied = _shallow_copy(template)
        if copied is not None and isinstance(copied, Worker) and copied.worker_id == _own_worker_id(copied.run_id):
            copied.worker_id = f"{copied.worker_id}.{next(numbers)}"  # each thread's files its own
        return as_compute_function(template if copied is None else copied)

    return own_copy


def _own_worker_id(run_id: Any) -> str:
    """The ``worker_id`` of a :class:`Worker` made without ``id`` in this process (HpBandSter's form)."""
    return f"mpibohb.run_{run_id}.worker.{socket.gethostname()}.{os.getpid()}"


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
