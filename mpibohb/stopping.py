"""Graceful stop: SIGTERM, SIGINT and SIGUSR1 ask the master to stop; it records, then exits 99.

The signal handler only sets a flag, which the event loop and the executors check at safe
points, so nothing already received is lost. The one exception is a serial evaluation running
in the master itself: the flag is then *interruptible* and the handler raises
:class:`StopRequested` at once, since ``compute`` may run for hours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

EXIT_STOPPED = 99  # also what SGE takes as "requeue this job"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


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

    @property
    def requested(self) -> bool:
        """True once a stop signal arrived."""
        return self.signum is not None

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

    def handle(self, signum: int, frame: Any = None) -> None:
        """The signal handler."""
        self.signum = signum
        if self.interruptible:
            self.interruptible = False
            raise StopRequested(signum)


NEVER = StopFlag()  # for callers without signal handling: never requested


@contextlib.contextmanager
def stop_on_signals(flag: StopFlag, enabled: bool) -> Iterator[None]:
    """While active (and ``enabled``, in the main thread), the stop signals set ``flag``.

    After a stop the signals stay ignored: the process is on its way out with exit code 99, and a
    second signal (schedulers and launchers often send several) must not change that.
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, flag.handle) for sig in STOP_SIGNALS}
    flag.watching = True
    try:
        yield
    finally:
        flag.watching = False
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_IGN if flag.requested else handler)


def ignore_stop_signals() -> Callable[[], None]:
    """For worker ranks: leave stopping to the master, which ends the job once it has recorded.

    Returns a function that restores the previous handlers (call it when the worker loop ends,
    so that user code after ``run`` and later child processes get the signals again).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


class SignalWitness:
    """Tells whether a stop signal arrived during user code, even when that code installed its own
    handler (PyTorch Lightning and many training scripts do): Python writes the number of every
    signal that reaches one of its handlers to the wakeup fd, whichever handler runs.

    ``with SignalWitness() as witness: ...; witness.arrived()``; outside the main thread, where
    Python keeps no wakeup fd, it sees nothing.
    """

    def __init__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread()
        self._read, self._write = os.pipe()
        for fd in (self._read, self._write):
            os.set_blocking(fd, False)
        self._previous: int | None = None

    def __enter__(self) -> SignalWitness:
        self.rearm()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.active and self._previous is not None:
            signal.set_wakeup_fd(self._previous)
        os.close(self._read)
        os.close(self._write)

    def rearm(self) -> None:
        """Watch again (user code may have set a wakeup fd of its own); forget what came before."""
        if not self.active:
            return
        previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        if self._previous is None:
            self._previous = previous
        self.arrived()

    def arrived(self) -> int | None:
        """The first stop signal that arrived since the last call, else ``None``."""
        received = b""
        while True:
            try:
                chunk = os.read(self._read, 512)
            except BlockingIOError:
                break
            if not chunk:
                break
            received += chunk
        stops = [number for number in received if number in STOP_SIGNALS]
        return stops[0] if stops else None


@contextlib.contextmanager
def handlers_restored() -> Iterator[None]:
    """Whatever stop-signal handlers user code installs inside this block do not outlive it (in
    the main thread; elsewhere Python cannot change handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in before.items():
            if handler is not None and signal.getsignal(sig) != handler:
                signal.signal(sig, handler)
