"""Graceful stop: SIGTERM, SIGINT and SIGUSR1 ask the master to stop; it records, then exits 99.

The signal handler only sets a flag, which the event loop and the executors check at safe
points, so nothing already received is lost. The exceptions are work that writes nothing and may
take long: a serial evaluation running in the master itself (``compute`` may run for hours) and
the replay of a journal on resume. The flag is then *interruptible* and the handler raises
:class:`StopRequested` at once.

A second stop signal, :data:`REPEAT_WINDOW` seconds or more after the first, ends the process at
once with exit code 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as the signal
itself would have: the way out of a stop that does not come. Signals within the window count as
copies of the first, since launchers and schedulers often deliver one request more than once.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, NoReturn

from .launcher import abort_world, flush_standard_streams, shared_world

logger = logging.getLogger("mpibohb")

EXIT_STOPPED = 99  # also what SGE takes as "requeue this job"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
REPEAT_WINDOW = 2.0  # seconds; e.g. scancel's SIGTERM reaches rank 0 directly and through mpiexec


class StopRequested(BaseException):
    """A stop signal arrived (a ``BaseException``, so ``except Exception`` in user code lets it pass)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class RunStopped(SystemExit):
    """``run`` was stopped by a signal after recording everything; exit code :data:`EXIT_STOPPED`."""

    def __init__(self, signum: int) -> None:
        super().__init__(EXIT_STOPPED)
        self.signum = signum


class StopFlag:
    """Set by the signal handler; checked by the loop and the executors."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.interruptible = False
        self.watching = False  # its handler is installed: the stop signals stop the run gracefully
        self._first_at = 0.0  # time.monotonic() of the first signal
        self._escort_first_at: float | None = None  # of the first the escort saw, before the handler ran

    @property
    def requested(self) -> bool:
        """True once a stop signal arrived."""
        return self.signum is not None

    @property
    def requested_at(self) -> float | None:
        """``time.monotonic()`` when the first stop signal was seen (``None``: none yet)."""
        return self._first_at if self.signum is not None else None

    def check(self) -> None:
        """Raise :class:`StopRequested` if a stop signal arrived."""
        if self.signum is not None:
            raise StopRequested(self.signum)

    @contextlib.contextmanager
    def interruptible_section(self) -> Iterator[None]:
        """While inside, a stop signal raises :class:`StopRequested` at once."""
        self.check()
        self.interruptible = True
        try:
            yield
        finally:
            self.interruptible = False

    def seen_by_escort(self, signum: int) -> None:
        """A stop signal, as the escort thread saw it arrive (at once, while the main thread may be
        stuck in a C call where the handler cannot run): a repeat after the window exits now."""
        now = time.monotonic()
        first = self._first_at if self.signum is not None else self._escort_first_at
        if first is None:
            self._escort_first_at = now
        elif now - first >= REPEAT_WINDOW:
            exit_at_once(signum)

    def note(self, signum: int) -> None:
        """A stop signal that a handler of compute's own took (the witness saw it): the run stops as
        if this flag's handler had seen it, and copies of it within the window are copies."""
        if self.signum is None:
            self.signum = signum
            self._first_at = self._escort_first_at if self._escort_first_at is not None else time.monotonic()

    def handle(self, signum: int, frame: Any = None) -> None:
        """The signal handler: the first signal asks to stop; another, after the window, exits."""
        if self.signum is not None:
            if time.monotonic() - self._first_at >= REPEAT_WINDOW:
                exit_at_once(signum)
            return
        self.signum, self._first_at = signum, time.monotonic()
        if self.interruptible:
            self.interruptible = False
            raise StopRequested(signum)


def exit_at_once(signum: int) -> NoReturn:
    """End the process now with exit code 128 + ``signum``; under MPI, end the whole job
    (``MPI_Abort``) with that code. What the run recorded before is in its run directory."""
    code = 128 + signum
    message = (f"mpibohb: {signal.Signals(signum).name} again while stopping: exiting at once (exit code {code}); "
               "what was recorded before is kept\n")
    flush_standard_streams()
    with contextlib.suppress(OSError):
        os.write(2, message.encode())
    world = shared_world()
    if world is not None:
        abort_world(world, code)
    os._exit(code)


NEVER = StopFlag()  # for callers without signal handling: never requested
_WAKEUP_PIPES: set[int] = set()  # the write ends that a SignalWitness made Python's wakeup fd
_ABSORBED: collections.Counter[int] = collections.Counter()  # see _absorb
_OURS: dict[int, tuple[Any, Any]] = {}  # stop signal -> (the handler mpibohb set, the one before it)


def _note_ours(sig: int, ours: Any, before: Any) -> None:
    _OURS[sig] = (ours, _OURS[sig][1] if sig in _OURS and _OURS[sig][0] == before else before)


def _forget_stop_handling_in_child() -> None:
    """In a child that ``os.fork`` made (a multiprocessing worker of ``compute``): a signal sent to
    it is not the run's. So its stop signals get back the handlers they had before mpibohb set its
    own (the run's flag, or the do-nothing one of worker ranks), and Python's wakeup fd, if it is a
    witness's pipe shared with the parent, is cleared. Then the signals that arrived meanwhile are
    let in (:func:`_hold_stop_signals_over_fork`)."""
    try:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, (ours, before) in _OURS.items():
            if signal.getsignal(sig) == ours:
                signal.signal(sig, before if before is not None else signal.SIG_DFL)
        previous = signal.set_wakeup_fd(-1)
        if previous != -1 and previous not in _WAKEUP_PIPES:
            signal.set_wakeup_fd(previous)  # a wakeup fd of the user's own (asyncio's, say): left as it was
    finally:
        _release_stop_signals_after_fork()


def _hold_stop_signals_over_fork() -> None:
    """Before ``os.fork``: the stop signals wait, in this thread and so in the child, until the child
    has its own handlers. Else a ``terminate()`` right after the child's start reached the run's
    handler in the child, which told the parent's witness, and a serial run stopped."""
    if _OURS:
        # read first: a pending handler may raise inside the call that blocks, after the change
        _HELD_OVER_FORK.mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _release_stop_signals_after_fork() -> None:
    mask = getattr(_HELD_OVER_FORK, "mask", None)
    if mask is not None:
        _HELD_OVER_FORK.mask = None
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


_HELD_OVER_FORK = threading.local()  # the signal mask from before the fork, per forking thread
os.register_at_fork(before=_hold_stop_signals_over_fork, after_in_parent=_release_stop_signals_after_fork,
                    after_in_child=_forget_stop_handling_in_child)


@contextlib.contextmanager
def stop_on_signals(flag: StopFlag, enabled: bool) -> Iterator[None]:
    """While active (and ``enabled``, in the main thread), the stop signals set ``flag``.

    After a stop, copies of the signal (within :data:`REPEAT_WINDOW`) are still ignored: the
    process is on its way out with exit code 99, which they must not change. A later signal goes
    to the handler from before the run (Python's: ``KeyboardInterrupt`` for SIGINT), so a session
    that caught the stop (a notebook) gets its Ctrl-C back; under MPI it ends the job at once.
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    restore_outside_handlers()  # a stopped run's handlers from before: this run starts from the process's own
    previous = {sig: signal.signal(sig, flag.handle) for sig in STOP_SIGNALS}
    for sig, before in previous.items():
        _note_ours(sig, flag.handle, before)
    flag.watching = True
    try:
        yield
    finally:
        flag.watching = False
        after = _after_stop(flag, previous) if flag.requested else None
        for sig, handler in previous.items():
            signal.signal(sig, after or handler)
            if after is not None:
                _note_ours(sig, after, flag.handle)


def _after_stop(flag: StopFlag, previous: Mapping[Any, Any]) -> Callable[[int, Any], None]:
    """The stop signals' handler once a stopped run has left: see :func:`stop_on_signals`."""
    # a handler of the run's own (its Ctrl-C counter) names the one it stands in for
    outside = {sig: getattr(handler, "handler_outside_run", handler) for sig, handler in previous.items()}

    def restore() -> None:
        for sig, handler in outside.items():
            if signal.getsignal(sig) is handle:
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)

    def handle(signum: int, frame: Any) -> None:
        if time.monotonic() - flag._first_at < REPEAT_WINDOW:
            return  # a copy of the stop's signal (a launcher, a scheduler)
        if shared_world() is not None:
            exit_at_once(signum)
        restore()
        before = outside.get(signum)
        if callable(before):
            before(signum, frame)
        elif before in (None, signal.SIG_DFL):
            signal.raise_signal(signum)

    handle.restore_outside_handlers = restore  # type: ignore[attr-defined]
    return handle


def restore_outside_handlers() -> None:
    """Give the stop signals back the handlers they had before a stopped run (see :func:`_after_stop`),
    where that run's handlers are still in place: a new run (or a Ctrl-C counter) starts from them."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        getattr(signal.getsignal(sig), "restore_outside_handlers", lambda: None)()


def ignore_stop_signals() -> Callable[[], None]:
    """For worker ranks: leave stopping to the master, which ends the job once it has recorded.

    The stop signals go to a handler that does nothing (:func:`_absorb`) rather than to ``SIG_IGN``:
    an ignored signal stays ignored through ``exec``, so every subprocess or spawned pool worker
    that ``compute`` starts would ignore SIGTERM, and its ``terminate()`` would end nothing. Such
    children now die of a stop signal sent to the process group (see :class:`Arrival`).

    Returns a function that restores the previous handlers (call it when the worker loop ends,
    so that user code after ``run`` and later child processes get the signals again).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: _set_handler(sig, _absorb) for sig in STOP_SIGNALS}
    for sig, before in previous.items():
        _note_ours(sig, _absorb, before)

    def restore() -> None:
        for sig, handler in previous.items():
            _set_handler(sig, handler)  # a nested loop's _absorb keeps its restarting system calls

    return restore


def _set_handler(sig: int, handler: Any) -> Any:
    """``signal.signal``; for :func:`_absorb`, system calls it interrupts restart (in compute's C
    code too), as under ``SIG_IGN``. Returns the previous handler."""
    previous = signal.signal(sig, handler)
    if handler is _absorb:
        signal.siginterrupt(sig, False)
    return previous


def _absorb(signum: int, frame: Any) -> None:
    """A worker rank's stop-signal handler: ignores the signal, and counts it for a witness (see
    :attr:`Arrival.past_the_rank`), unless a handler of compute's own called it (PyTorch
    Lightning's chain to the handler before theirs): then the signal reached compute's code. A
    chain through C (a ``functools.partial`` of this handler) is not told apart."""
    if frame is None or sys._getframe(1) is frame:  # called by Python's signal dispatch itself
        _ABSORBED[signum] += 1


def _take_absorbed() -> collections.Counter[int]:
    """The stop signals :func:`_absorb` took since the last call (swapped in one step: a handler may
    run between any two lines)."""
    global _ABSORBED
    taken, _ABSORBED = _ABSORBED, collections.Counter()
    return taken


class Arrival(NamedTuple):
    """A stop signal that a :class:`SignalWitness` saw arrive: ``signum``, the first; ``past_the_rank``,
    whether one reached code of the user's (a handler of compute's own), not only a worker rank's
    do-nothing handler (which, like the process group, may still have killed compute's children)."""

    signum: int
    past_the_rank: bool


class SignalWitness:
    """Tells whether a stop signal arrived during user code, even when that code installed its own
    handler (PyTorch Lightning and many training scripts do): Python writes the number of every
    signal that reaches one of its handlers to the wakeup fd, whichever handler runs.

    ``with SignalWitness() as witness: ...; witness.arrived()``; outside the main thread, where
    Python keeps no wakeup fd, it sees nothing. :meth:`escort` adds a thread that reads the
    signals as they arrive, for a main thread that may be stuck in a C call.
    """

    def __init__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread()
        self._read, self._write = os.pipe()
        for fd in (self._read, self._write):
            os.set_blocking(fd, False)
        self._previous: int | None = None
        self._lock = threading.Lock()
        self._seen = bytearray()  # what the escort read and arrived() has not yet reported
        self._escort_wake: tuple[int, int] | None = None

    def __enter__(self) -> SignalWitness:
        self.rearm()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.active and self._previous is not None:
            signal.set_wakeup_fd(self._previous)  # first: no signal may write to a pipe being closed
        if self._escort_wake is not None:
            os.write(self._escort_wake[1], b"x")  # ends the escort, which closes the pipes
        else:
            self._close()

    def _close(self) -> None:
        _WAKEUP_PIPES.discard(self._write)
        for fd in (self._read, self._write, *(self._escort_wake or ())):
            with contextlib.suppress(OSError):
                os.close(fd)

    def rearm(self) -> None:
        """Watch again (user code may have set a wakeup fd of its own); forget what came before."""
        if not self.active:
            return
        previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        _WAKEUP_PIPES.add(self._write)
        if self._previous is None:
            self._previous = previous
        self.arrived()

    def _drain(self) -> bytes:
        """What the wakeup fd holds now (the caller holds the lock)."""
        received = b""
        while True:
            try:
                chunk = os.read(self._read, 512)
            except BlockingIOError:
                break
            if not chunk:
                break
            received += chunk
        return received

    def arrived(self) -> Arrival | None:
        """The stop signals that arrived since the last call (``None``: none did)."""
        absorbed = _take_absorbed()  # before the drain: a signal between the two then errs towards a stop
        with self._lock:
            received = bytes(self._seen) + self._drain()
            self._seen.clear()
        stops = [number for number in received if number in STOP_SIGNALS]
        if not stops:
            return None
        # more arrivals than the rank's own handler took: one reached a handler of the user's (two
        # signals within one C call write two bytes for one call: a stop too many, never one too few)
        past = any(stops.count(number) > absorbed[number] for number in set(stops))
        return Arrival(stops[0], past)

    def escort(self, flag: StopFlag) -> None:
        """Start a thread that hands every stop signal to ``flag`` as it arrives
        (:meth:`StopFlag.seen_by_escort`), while ``flag`` watches the stop signals: so a repeated
        stop ends the process even while the main thread is stuck in a C call. It sleeps in
        ``select`` in between, and ends with the witness."""
        if not self.active or self._escort_wake is not None:
            return
        self._escort_wake = os.pipe()
        threading.Thread(target=self._escort, args=(flag,), name="mpibohb-stop-escort", daemon=True).start()

    def _escort(self, flag: StopFlag) -> None:
        assert self._escort_wake is not None
        wake = self._escort_wake[0]
        while True:
            ready, _, _ = select.select([self._read, wake], [], [])
            if wake in ready:
                self._close()
                return
            with self._lock:
                received = self._drain()
                self._seen += received
            for number in received:
                if number in STOP_SIGNALS and flag.watching:
                    flag.seen_by_escort(number)


@contextlib.contextmanager
def handlers_restored() -> Iterator[None]:
    """Whatever stop-signal handlers user code installs inside this block do not outlive it (in
    the main thread; elsewhere Python cannot change handlers). A default action left there is
    warned about, once per signal: a stop signal during that code killed the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in before.items():
            if handler is not None and signal.getsignal(sig) != handler:
                if signal.getsignal(sig) == signal.SIG_DFL and sig not in _WARNED_DEFAULT_ACTION:
                    _WARNED_DEFAULT_ACTION.add(sig)
                    logger.warning("compute left %s at its default action (signal.SIG_DFL; asyncio's "
                                   "remove_signal_handler does so too): a stop signal while it runs kills this "
                                   "process instead of stopping the run cleanly (exit code 99, a requeue); mpibohb "
                                   "gives the handler back after each evaluation", signal.Signals(sig).name)
                _set_handler(sig, handler)


_WARNED_DEFAULT_ACTION: set[int] = set()
