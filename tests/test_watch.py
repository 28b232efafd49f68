"""Rank 0's death watch (mpibohb/executors/watch.py) with real sockets, in one process."""

from __future__ import annotations

import socket
import sys
import threading
import time

from mpibohb.executors.watch import DeathWatch


def _connect(watch: DeathWatch, rank: int) -> socket.socket:
    host, port, token = watch.address()
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.sendall(f"{rank} {token}\n".encode())
    return client


def _until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the watch thread did not get there in time"
        time.sleep(0.01)


def test_deaths_seen_in_one_wake_up_come_in_the_order_they_happened():
    # A busy rank 0 wakes once for several deaths; the first is the culprit, so the order must
    # survive (epoll keeps it; select and poll would not, and then say so).
    deaths: list[tuple[int, str, bool]] = []
    watch = DeathWatch(lambda rank, text, in_order: deaths.append((rank, text, in_order)))
    real_select, gate, parked = watch._selector.select, threading.Event(), threading.Event()
    gate.set()

    def gated_select(timeout=None):
        if not gate.is_set():
            parked.set()
            gate.wait()
        return real_select(timeout)

    watch._selector.select = gated_select  # type: ignore[method-assign]
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
