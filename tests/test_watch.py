"""Rank 0's death watch (mpibohb/executors/watch.py) with real sockets, in one process."""

from __future__ import annotations

import contextlib
import faulthandler
import io
import os
import resource
import signal
import socket
import sys
import threading
import time

import pytest

from mpibohb.executors.watch import HIGH_FD, DeathWatch, WatchedRank, fatal_signals_kill

TRACEBACK = "Fatal Python error: Segmentation fault\n\nCurrent thread 0x1 (most recent call first):\n  File \"run.py\""
MODULES = ", line 7 in compute\n\nExtension modules: numpy, scipy (total: 2)\n"


def _connect(watch: DeathWatch, rank: int, dies_on_traceback: str = "") -> socket.socket:
    """``dies_on_traceback``: "0" a traceback proves nothing, "1" it does, "2" and ends with "total"."""
    host, port, token = watch.address()
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.sendall(f"{rank} {token} {dies_on_traceback}\n".encode())
    return client


def _until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the watch thread did not get there in time"
        time.sleep(0.01)


def _gated(watch: DeathWatch) -> tuple[threading.Event, threading.Event]:
    """While ``gate`` is clear, the watch parks before its next ``select`` and sets ``parked``:
    what happens meanwhile comes to it in one wake-up, as to a busy rank 0."""
    real_select, gate, parked = watch._selector.select, threading.Event(), threading.Event()
    gate.set()

    def gated_select(timeout=None):
        if not gate.is_set():
            parked.set()
            gate.wait()
        return real_select(timeout)

    watch._selector.select = gated_select  # type: ignore[method-assign]
    return gate, parked


def test_deaths_seen_in_one_wake_up_come_in_the_order_they_happened():
    # A busy rank 0 wakes once for several deaths; the first is the culprit, so the order must
    # survive (epoll keeps it; select and poll would not, and then say so).
    deaths: list[tuple[int, str, bool]] = []
    watch = DeathWatch(lambda rank, text, in_order: deaths.append((rank, text, in_order)))
    gate, parked = _gated(watch)
    try:
        ranks = {rank: _connect(watch, rank) for rank in range(1, 8)}
        _until(lambda: len(watch._texts) == 7)
        ranks[1].sendall(b"Fatal Python error: Segmentation fault\n")
        ranks[1].close()  # alone: the watch wakes for it
        _until(lambda: len(deaths) == 1)
        gate.clear()  # park the watch before its next select, then end the others at once
        stranger = socket.create_connection(("127.0.0.1", watch.address()[1]), timeout=5)
        stranger.sendall(b"not one of ours\n")  # wakes the watch, which parks at the gate
        _until(parked.is_set)
        order = [5, 2, 7, 3, 6, 4]  # 5 crashes first, writing a traceback; the launcher kills the others
        ranks[5].sendall(b"Fatal Python error: Aborted\n")
        for rank in order:
            ranks[rank].close()
        time.sleep(0.05)
        gate.set()
        _until(lambda: len(deaths) == 7)
        stranger.close()
    finally:
        gate.set()
        watch.close()
    assert deaths[0] == (1, "Fatal Python error: Segmentation fault\n", True)
    in_order = sys.platform == "linux"  # epoll; elsewhere the order counts as lost
    assert {seen for _, _, seen in deaths[1:]} == {in_order}
    if in_order:
        assert [rank for rank, _, _ in deaths[1:]] == order
    assert deaths[1 + order.index(5)][1] == "Fatal Python error: Aborted\n"


def test_an_open_watch_gets_the_gil_quickly_and_gives_the_interval_back():
    # The launcher kills rank 0 about 3 ms after a worker dies; with Python's default 5 ms switch
    # interval the watch thread could not journal in time while the main thread ran Python.
    from mpibohb.executors.watch import SWITCH_INTERVAL

    before = sys.getswitchinterval()
    watch = DeathWatch(lambda rank, text, in_order: None)
    try:
        assert abs(sys.getswitchinterval() - min(before, SWITCH_INTERVAL)) < 1e-9 and SWITCH_INTERVAL <= 1e-3
    finally:
        watch.close()
    assert sys.getswitchinterval() == before


def test_a_rank_that_dies_on_a_traceback_is_reported_before_its_socket_closes(monkeypatch):
    # A dying process's socket can close after its launcher descriptor, and the launcher then kills
    # rank 0 first: the traceback, written before the process starts to end, must be enough.
    from mpibohb.executors import watch as watch_module

    monkeypatch.setattr(watch_module, "TRACEBACK_STALL_SECONDS", 3600.0)  # only the last line ends it
    monkeypatch.setattr(watch_module, "TRACEBACK_QUIET_SECONDS", 3600.0)
    deaths: list[tuple[int, str, bool]] = []
    watch = DeathWatch(lambda rank, text, in_order: deaths.append((rank, text, in_order)))
    try:
        complete, paused = _connect(watch, 1, "2"), _connect(watch, 2, "1")
        _until(lambda: len(watch._texts) == 2)
        complete.sendall(TRACEBACK.encode())
        paused.sendall(TRACEBACK.encode())  # Python 3.9: no module list
        time.sleep(0.1)
        assert deaths == []  # neither is known complete
        complete.sendall(MODULES.encode())
        _until(lambda: len(deaths) == 1)  # at its last line, although the socket is open
        assert deaths == [(1, TRACEBACK + MODULES, True)]
        monkeypatch.setattr(watch_module, "TRACEBACK_QUIET_SECONDS", 0.01)
        _until(lambda: len(deaths) == 2)  # the other, once it has paused that long
        assert deaths[1] == (2, TRACEBACK, True)
        complete.close()
        paused.close()
        time.sleep(0.1)
        assert len(deaths) == 2  # each death once
    finally:
        watch.close()


@pytest.mark.parametrize("flag", ["0", ""])
def test_a_rank_whose_traceback_may_not_end_it_is_reported_when_its_socket_closes(flag):
    # a handler of a library's (a JVM's) may survive the signal after faulthandler's traceback
    deaths: list[tuple[int, str, bool]] = []
    watch = DeathWatch(lambda rank, text, in_order: deaths.append((rank, text, in_order)))
    try:
        rank = _connect(watch, 3, flag)
        _until(lambda: len(watch._texts) == 1)
        rank.sendall((TRACEBACK + MODULES).encode())
        time.sleep(0.2)
        assert deaths == []
        rank.close()
        _until(lambda: len(deaths) == 1)
        assert deaths == [(3, TRACEBACK + MODULES, True)]
    finally:
        watch.close()


def test_a_traceback_proves_a_death_only_while_the_fatal_signals_kill():
    was_enabled = faulthandler.is_enabled()  # pytest enables it: its handlers are not the default
    faulthandler.disable()
    try:
        assert fatal_signals_kill()
        previous = signal.signal(signal.SIGFPE, lambda signum, frame: None)  # a handler that survives
        try:
            assert not fatal_signals_kill()
        finally:
            signal.signal(signal.SIGFPE, previous)
        faulthandler.enable()
        assert not fatal_signals_kill()
    finally:
        faulthandler.disable()
        if was_enabled:
            faulthandler.enable()


def test_a_worker_rank_moves_its_socket_high_and_says_whether_a_traceback_ends_it():
    # descriptors close from the highest number down at a process's end: the socket goes first
    watch = DeathWatch(lambda rank, text, in_order: None)
    was_enabled = faulthandler.is_enabled()
    watched = WatchedRank(watch.address(), 4)
    try:
        assert watched.socket is not None
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert watched.socket.fileno() >= min(HIGH_FD, limit - 1)
        _until(lambda: 4 in watch._texts)
        # the handlers seen were those under pytest's faulthandler; numpy is loaded: a "total" line
        assert watch._dies_on_traceback == {4: sys.version_info >= (3, 10)}
    finally:
        watched.close()
        watch.close()
    assert faulthandler.is_enabled() == was_enabled


def test_a_traceback_comes_before_a_close_seen_in_the_same_wake_up():
    # a busy rank 0 wakes once for a crash's traceback and the launcher's kill of another rank:
    # the crash came first, and only the first death blames its job
    deaths: list[tuple[int, str, bool]] = []
    watch = DeathWatch(lambda rank, text, in_order: deaths.append((rank, text, in_order)))
    gate, parked = _gated(watch)
    try:
        crashing, killed = _connect(watch, 1, "2"), _connect(watch, 2, "2")
        _until(lambda: len(watch._texts) == 2)
        gate.clear()
        stranger = socket.create_connection(("127.0.0.1", watch.address()[1]), timeout=5)
        stranger.sendall(b"not one of ours\n")  # wakes the watch, which parks at the gate
        _until(parked.is_set)
        crashing.sendall((TRACEBACK + MODULES).encode())
        killed.close()
        time.sleep(0.05)
        gate.set()
        _until(lambda: len(deaths) == 2)
        stranger.close()
        crashing.close()
    finally:
        gate.set()
        watch.close()
    assert [rank for rank, _, _ in deaths] == [1, 2]


def test_a_long_traceback_keeps_its_start_and_its_end():
    # many threads' stacks can pass 1 MiB; the crashing thread's may come last, and the "total" line does
    from mpibohb.executors.watch import _append_bounded

    text = bytearray()
    _append_bounded(text, b"Fatal Python error: Segmentation fault\n")
    for _ in range(3000):
        _append_bounded(text, b"  File \"loader.py\", line 1 in wait\n" * 20)
    _append_bounded(text, MODULES.encode())
    assert len(text) < (1 << 20) + 100
    assert text.startswith(b"Fatal Python error") and text.endswith(MODULES.encode())
    assert text.count(b"left out the middle") == 1


def test_the_watch_gives_faulthandler_back_where_stderr_has_no_descriptor():
    # a stream to a logger in place of sys.stderr: the normal end of a run raised there, and failed it
    watch = DeathWatch(lambda rank, text, in_order: None)
    was_enabled = faulthandler.is_enabled()
    faulthandler.enable()
    try:
        watched = WatchedRank(watch.address(), 6)
        with contextlib.redirect_stderr(io.StringIO()):
            watched.close()
        assert faulthandler.is_enabled()
    finally:
        watch.close()
        faulthandler.disable()
        if was_enabled:
            faulthandler.enable()


@pytest.mark.processes
def test_a_forked_child_of_a_worker_rank_does_not_hold_its_watch_socket():
    # were the child (a kept pool worker) to hold a copy, the rank's death would show only when the
    # child ends; stderr without a descriptor (redirect_stderr) made the child's hook fail before
    deaths: list[tuple[int, str, bool]] = []
    watch = DeathWatch(lambda rank, text, in_order: deaths.append((rank, text, in_order)))
    was_enabled = faulthandler.is_enabled()
    faulthandler.enable()  # as PYTHONFAULTHANDLER=1 would: the child's hook gave it back to stderr
    watched = WatchedRank(watch.address(), 7)
    child = None
    try:
        assert watched.socket is not None
        _until(lambda: 7 in watch._texts)
        with contextlib.redirect_stderr(io.StringIO()):
            child = os.fork()
            if child == 0:
                time.sleep(30)
                os._exit(0)
        watched.socket.close()  # the rank's death, as its process ends
        _until(lambda: len(deaths) == 1, seconds=5)
    finally:
        if child:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
        watched.socket = None
        watch.close()
        faulthandler.disable()
        if was_enabled:
            faulthandler.enable()
