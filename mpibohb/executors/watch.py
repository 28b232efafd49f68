"""Evidence of a worker rank's death: a socket from each worker rank to a thread of rank 0.

When one process of an MPI job dies, the launcher kills the others within a millisecond, so no
survivor can say afterwards who died first. A socket does: the kernel closes it the moment its
process ends, and rank 0's watch thread, blocked in ``select`` (no CPU), wakes at once and can
journal "rank R ended while it ran job J" before the launcher's kill reaches rank 0. When rank 0
itself is killed first (a scheduler, an operator, a node), it journals nothing, and the jobs it
interrupted are not blamed. A worker's fatal signal (a segfault, an abort) also writes its Python
traceback into the socket (``faulthandler``), which the record keeps.

Best effort by design: a worker rank that cannot connect (a firewall between nodes) runs without
a watch, and its deaths carry no evidence. Measured on one host: a worker's ``os._exit`` was
journaled in 10 of 10 tries, a kill of rank 0 or of ``mpiexec`` in 0 of 10.

The race is short: the launcher (MPICH's hydra) kills rank 0 about 2.6 ms after a worker's
``os._exit``. The watch thread needs the GIL several times on its way to the journal (after
``select``, each ``recv``, the write), and while rank 0's main thread runs Python (sampling,
journaling, a resume's replay) each of those waits up to Python's switch interval, 5 ms by
default: 11 ms in all (median), so a death at a busy moment, such as the start of a session,
left no record. While a watch is open, rank 0 runs with a switch interval of
:data:`SWITCH_INTERVAL`: 1.4 ms (median; at most 3.2 in 30 trials), so a death at a busy
moment is mostly journaled in time (``python -m benchmarks.watch_latency``). It costs nothing
while the watch thread sleeps in ``select``; the previous interval comes back when it closes.

A fatal signal gives an earlier word than the close: faulthandler writes the traceback before
the process starts to end, and ending takes a while (18 ms measured for a worker rank: its
threads and memory go first, then its descriptors). The launcher learns of the death only from
the descriptors, and the kernel closes those from the highest number down, so a watch socket
below the rank's launcher descriptor (``PMI_FD``) lost the race (16 sessions of 16). So a worker rank
whose fatal-signal handlers are the default ones (nothing would survive the signal after the
traceback) says so when it connects, and rank 0 journals its death as soon as the traceback is
complete: at its last line, the list of extension modules ("total"), which Python 3.10 and later
print when one is loaded (as numpy is), else once it has paused for :data:`TRACEBACK_QUIET_SECONDS`;
a rank that prints that line may pause for up to :data:`TRACEBACK_STALL_SECONDS` (a dying process
descheduled on a busy node) without its traceback being cut short. A worker rank
also moves its socket to a high descriptor number, so a death without a traceback (``os._exit``,
the kernel's OOM kill) keeps the head start of the socket's close over the launcher's.

The order of deaths matters: the first is the culprit, the launcher's kills follow it. A busy
rank 0 can wake once for several closed sockets; Linux's epoll then still lists them in the order
they became ready (its ready list is a queue), which this module checks once per process on
sockets of its own (:func:`epoll_keeps_order`); other selectors are taken to lose the order. A
socket read in the wake-up before keeps its earlier place in that queue; only a dying rank writes
(its traceback), so that place is its death's.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import fcntl
import logging
import os
import re
import resource
import secrets
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

Address = tuple[str, int, str]  # rank 0's host, port, and a token that a worker must show
CONNECT_SECONDS = 5.0
ORPHAN_GRACE_SECONDS = 3.0  # a closed socket, then no word from rank 0 for this long: rank 0 is gone
_OPEN_UNTIL_EXIT: list[socket.socket] = []  # rank 0's ends of the sockets of worker ranks that end with the run
_KEEPS_ORDER: list[bool] = []  # epoll_keeps_order's answer, once per process
SWITCH_INTERVAL = 5e-5  # seconds: how long the watch thread may wait for the GIL (see above)
TRACEBACK_QUIET_SECONDS = 0.005  # a dying rank's traceback that pauses this long is taken as complete
TRACEBACK_STALL_SECONDS = 0.05  # the same, for a traceback that ends with its "total" line
HIGH_FD = 1023  # where a worker rank moves its socket (lower when the descriptor limit is lower)
FATAL_SIGNALS = tuple(getattr(signal, name) for name in ("SIGSEGV", "SIGFPE", "SIGABRT", "SIGBUS", "SIGILL")
                      if hasattr(signal, name))
_TRACEBACK_END = re.compile(rb"\(total: \d+\)\n?$")  # faulthandler's last line (Python 3.10+): its module list


class DeathWatch:
    """Rank 0's side: a daemon thread that calls ``on_death(rank, text, in_order)`` when a worker
    rank's socket closes, unless ``close`` was called first (the normal end). ``text``: what the
    rank wrote before, e.g. a traceback; ``in_order``: the deaths come in the order they happened
    (false only for several in one wake-up of a selector that does not keep that order)."""

    def __init__(self, on_death: Callable[[int, str, bool], None]) -> None:
        self.on_death = on_death
        self.token = secrets.token_hex(16)
        self._listener = socket.create_server(("", 0))
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, data=None)
        self._texts: dict[int, bytearray] = {}
        self._dies_on_traceback: dict[int, bool] = {}  # ranks for which a traceback is a death: its "total" line?
        self._last_text: dict[int, float] = {}  # such a rank's traceback, not yet journaled: when it last grew
        self._reported: set[int] = set()  # ranks whose death was reported from their traceback
        self._closing = threading.Event()
        self._in_order = epoll_keeps_order() and isinstance(self._selector, getattr(selectors, "EpollSelector", ()))
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))
        self._thread = threading.Thread(target=self._watch, name="mpibohb-death-watch", daemon=True)
        self._thread.start()

    def address(self) -> Address:
        """Where worker ranks connect."""
        return socket.gethostname(), self._listener.getsockname()[1], self.token

    def stop_reporting(self) -> None:
        """From now on a closing socket is the normal end of a worker rank (call before telling the
        worker ranks to stop)."""
        self._closing.set()

    def close(self, keep_connections: bool = False) -> None:
        """Stop watching: from now on a closing socket is the normal end of a worker rank.

        With ``keep_connections`` the worker ranks' sockets stay open until this process ends, so
        that worker ranks waiting for it at their exit gate see when it ends (see
        :meth:`WatchedRank.orphaned`)."""
        self._closing.set()
        self._thread.join(timeout=2)
        sys.setswitchinterval(self._switch_interval)
        for key in list(self._selector.get_map().values()):
            connection: socket.socket = key.fileobj  # type: ignore[assignment]
            if keep_connections and key.data is not None:
                _OPEN_UNTIL_EXIT.append(connection)
            else:
                connection.close()
        self._selector.close()

    def _watch(self) -> None:
        while not self._closing.is_set():
            wait = min(0.5, TRACEBACK_QUIET_SECONDS / 2) if self._last_text else 0.5  # shorter: a traceback comes in
            try:
                events = self._selector.select(timeout=wait)
            except (OSError, ValueError):  # closed under us at the end
                return
            closed = []
            for key, _ in events:
                if key.data is None:
                    self._accept()
                elif (death := self._read(key.fileobj, key.data)) is not None:  # type: ignore[arg-type]
                    closed.append(death)
            ended = self._tracebacks_complete() + closed  # a traceback comes before any process's end
            in_order = len(ended) == 1 or self._in_order
            for rank, text in ended:
                self.on_death(rank, text, in_order)

    def _accept(self) -> None:
        try:
            connection, _ = self._listener.accept()
            connection.settimeout(CONNECT_SECONDS)
            hello = connection.recv(128).decode(errors="replace").split()
        except OSError:
            return
        if len(hello) not in (2, 3) or hello[1] != self.token or not hello[0].isdigit():
            connection.close()  # not one of ours
            return
        connection.setblocking(False)
        rank = int(hello[0])
        self._texts[rank] = bytearray()
        if hello[2:] in (["1"], ["2"]):
            self._dies_on_traceback[rank] = hello[2] == "2"
        self._selector.register(connection, selectors.EVENT_READ, data=rank)

    def _read(self, connection: socket.socket, rank: int) -> tuple[int, str] | None:
        """Take what ``rank`` wrote; ``(rank, its text)`` once its socket closed (not at the normal end).
        Reads to the end: a traceback and the close behind it are one death, in the place of its
        first byte among this wake-up's deaths."""
        for _ in range(32):  # 2 MiB at most per wake-up: a rank that keeps writing delays no other death
            try:
                data = connection.recv(1 << 16)
            except BlockingIOError:
                return None
            except OSError:
                data = b""
            if not data:
                break
            _append_bounded(self._texts[rank], data)
            if rank in self._dies_on_traceback and rank not in self._reported:
                self._last_text[rank] = time.monotonic()
        else:
            return None
        self._selector.unregister(connection)
        connection.close()
        text = self._texts.pop(rank, bytearray()).decode(errors="replace")
        self._last_text.pop(rank, None)
        return None if self._closing.is_set() or rank in self._reported else (rank, text)

    def _tracebacks_complete(self) -> list[tuple[int, str]]:
        """The deaths of ranks whose traceback is complete, or paused, before their socket closed:
        journaled now, as the launcher may kill this process when the socket closes."""
        now, complete = time.monotonic(), []
        for rank, last in list(self._last_text.items()):
            quiet = TRACEBACK_STALL_SECONDS if self._dies_on_traceback[rank] else TRACEBACK_QUIET_SECONDS
            if now - last >= quiet or _TRACEBACK_END.search(self._texts[rank][-40:]):
                del self._last_text[rank]
                self._reported.add(rank)
                if not self._closing.is_set():
                    complete.append((rank, self._texts[rank].decode(errors="replace")))
        return complete


_TEXT_HALF = 1 << 19  # a traceback keeps this much of its start and of its end
_LEFT_OUT = b"\n[... mpibohb left out the middle of this text ...]\n"


def _append_bounded(text: bytearray, data: bytes) -> None:
    """``text += data``, keeping the start and the end of a text longer than 1 MiB: the crashing
    thread's stack may come last among many threads, and the module list's "total" line does."""
    text += data
    if len(text) <= 2 * _TEXT_HALF + len(_LEFT_OUT):
        return
    if text[_TEXT_HALF:_TEXT_HALF + len(_LEFT_OUT)] != _LEFT_OUT:
        text[_TEXT_HALF:_TEXT_HALF] = _LEFT_OUT
    del text[_TEXT_HALF + len(_LEFT_OUT):len(text) - _TEXT_HALF]


def epoll_keeps_order() -> bool:
    """Whether this kernel's epoll reports sockets closed one after another in that order: tried
    once per process on loopback sockets (a few milliseconds), since the kernel does not promise it."""
    if not _KEEPS_ORDER:
        _KEEPS_ORDER.append(_try_epoll_order())
    return _KEEPS_ORDER[0]


def _try_epoll_order(order: tuple[int, ...] = (3, 0, 5, 1, 4, 2)) -> bool:
    """Close sockets in ``order`` (not their order of creation) and see whether epoll reports them so."""
    if not hasattr(selectors, "EpollSelector"):
        return False
    opened: list[socket.socket] = []
    try:
        with selectors.EpollSelector() as selector, socket.create_server(("127.0.0.1", 0)) as listener:
            listener.settimeout(1.0)
            for index in range(len(order)):
                opened.append(socket.create_connection(listener.getsockname(), timeout=1.0))
                opened.append(listener.accept()[0])
                selector.register(opened[-1], selectors.EVENT_READ, data=index)
            for index in order:
                opened[2 * index].close()
            time.sleep(0.01)
            return tuple(key.data for key, _ in selector.select(timeout=1.0)) == order
    except OSError:
        return False
    finally:
        for each in opened:
            each.close()


class WatchedRank:
    """A worker rank's side: connect to rank 0's watch and send fatal-signal tracebacks there."""

    def __init__(self, address: Address | None, rank: int) -> None:
        self.socket: socket.socket | None = None
        self._had_faulthandler = faulthandler.is_enabled()
        self._silent_since: float | None = None
        if address is None:
            return
        host, port, token = address
        target = "127.0.0.1" if host == socket.gethostname() else host
        if self._had_faulthandler:
            faulthandler.disable()  # so the handlers seen below are those it would give back
        dies = (1 + _lists_extension_modules()) if fatal_signals_kill() else 0
        try:
            self.socket = _moved_high(socket.create_connection((target, port), timeout=CONNECT_SECONDS))
            # dies: 0, a traceback proves nothing; 1, it proves a death; 2, and it ends with a "total" line
            self.socket.sendall(f"{rank} {token} {dies}\n".encode())
        except OSError as exc:
            logger.info("rank %d runs without a death watch: cannot reach rank 0 at %s:%d (%s)", rank, target,
                        port, exc)
            self.socket = None
            if self._had_faulthandler:
                _faulthandler_on_stderr()
            return
        self.socket.setblocking(False)  # orphaned() peeks without waiting (no select: fds may be >= 1024)
        faulthandler.enable(file=self.socket.fileno(), all_threads=True)
        _CONNECTED.append(self)

    def orphaned(self, grace: float = ORPHAN_GRACE_SECONDS) -> bool:
        """True once rank 0's end of the socket has been closed for ``grace`` seconds: rank 0's
        process ended without this rank (killed with a launcher that could not end this rank, as
        when a scheduler kills a job's processes on the first host only). Rank 0 never writes, so
        a readable socket means it closed. The grace lets a last message from rank 0 arrive."""
        if self.socket is None:
            return False
        try:
            closed = self.socket.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:  # nothing to read: rank 0's end is open
            closed = False
        except OSError:
            closed = True
        if not closed:
            return False
        now = time.monotonic()
        if self._silent_since is None:
            self._silent_since = now
        return now - self._silent_since >= grace

    def stop_reporting(self) -> None:
        """Send no more tracebacks: give faulthandler back its earlier state."""
        if self.socket is None or not faulthandler.is_enabled():
            return
        faulthandler.disable()
        if self._had_faulthandler:
            _faulthandler_on_stderr()

    def close(self) -> None:
        """The normal end: stop reporting and close the socket."""
        if self.socket is None:
            return
        self.stop_reporting()
        self.socket.close()
        self.socket = None
        if self in _CONNECTED:
            _CONNECTED.remove(self)

    def forget_in_child(self) -> None:
        """In a process that ``os.fork`` made (a multiprocessing worker of ``compute``): that
        process's crash is not this rank's death, and its copy of the socket must not keep the
        socket open after this rank ends. The socket's descriptor becomes a copy of stderr, so a
        faulthandler still writing there writes to stderr; one that the user pointed elsewhere is
        left alone."""
        if self.socket is None or self.socket.fileno() < 0:
            return
        descriptor, self.socket = self.socket.detach(), None
        try:
            os.dup2(2, descriptor, inheritable=False)
        except OSError:  # no stderr: no faulthandler on this descriptor, and no socket
            if faulthandler.is_enabled():
                faulthandler.disable()
            with contextlib.suppress(OSError):
                os.close(descriptor)


_CONNECTED: list[WatchedRank] = []  # this process's connected watches (one, in a worker rank)


def _forget_watches_in_child() -> None:
    """After ``os.fork``, in the child: see :meth:`WatchedRank.forget_in_child`."""
    while _CONNECTED:
        _CONNECTED.pop().forget_in_child()


os.register_at_fork(after_in_child=_forget_watches_in_child)



def _faulthandler_on_stderr() -> None:
    """faulthandler back on stderr, as before the watch: through ``sys.stderr``, or its descriptor
    where ``sys.stderr`` has none (a stream to a logger, ``contextlib.redirect_stderr``)."""
    try:
        faulthandler.enable(file=sys.stderr)
    except (AttributeError, ValueError, OSError, RuntimeError):
        with contextlib.suppress(ValueError, OSError, RuntimeError):
            faulthandler.enable(file=2)


def fatal_signals_kill() -> bool:
    """Whether every fatal signal faulthandler reports has the default action (ending the process)
    in this process now: then, after faulthandler's traceback, the process ends. A handler of a
    library's (a JVM's, which recovers from its own faults) makes a traceback no proof of a death.
    Read with ``sigaction``, since Python sees only the handlers it installed itself."""
    try:
        sigaction = ctypes.CDLL(None, use_errno=True).sigaction
        current = ctypes.create_string_buffer(512)  # larger than any libc's struct sigaction
        for signum in FATAL_SIGNALS:
            # the handler is the struct's first member in glibc, musl and macOS
            if sigaction(signum, None, current) != 0 or ctypes.c_void_p.from_buffer(current).value:
                return False
    except (OSError, AttributeError, TypeError):
        return False
    return True


def _lists_extension_modules() -> bool:
    """Whether faulthandler ends a traceback in this process with its list of extension modules
    (the "total" line): Python 3.10 and later, with one loaded from outside the standard library."""
    if sys.version_info < (3, 10):
        return False
    return any(name.partition(".")[0] not in sys.stdlib_module_names
               and str(getattr(module, "__file__", None) or "").endswith((".so", ".pyd"))
               for name, module in list(sys.modules.items()))


def _moved_high(connection: socket.socket) -> socket.socket:
    """``connection`` on a descriptor of a high number: at the process's end the kernel closes
    descriptors from the highest down, so rank 0 sees this one close before the launcher sees its
    own close (see the module's docstring). Unchanged when no such number is free."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    floor = HIGH_FD if limit == resource.RLIM_INFINITY else min(HIGH_FD, limit - 1)
    if connection.fileno() >= floor:
        return connection
    try:
        moved = socket.socket(fileno=fcntl.fcntl(connection.fileno(), fcntl.F_DUPFD_CLOEXEC, floor))
    except OSError:
        return connection
    moved.settimeout(connection.gettimeout())
    connection.close()
    return moved
