"""Rank 0's death watch (mpibohb/executors/watch.py) with real sockets, in one process."""

from __future__ import annotations

import socket
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


def test_deaths_seen_alone_and_together():
    deaths: list[tuple[int, str, bool]] = []
    watch = DeathWatch(lambda rank, text, alone: deaths.append((rank, text, alone)))
    real_select, gate, parked = watch._selector.select, threading.Event(), threading.Event()
    gate.set()

    def gated_select(timeout=None):
        if not gate.is_set():
            parked.set()
            gate.wait()
        return real_select(timeout)

    watch._selector.select = gated_select  # type: ignore[method-assign]
    try:
        first, second, third = (_connect(watch, rank) for rank in (1, 2, 3))
        _until(lambda: len(watch._texts) == 3)
        first.sendall(b"Fatal Python error: Segmentation fault\n")
        first.close()  # alone: the watch wakes for it
        _until(lambda: len(deaths) == 1)
        gate.clear()  # park the watch before its next select, then end two ranks at once
        stranger = socket.create_connection(("127.0.0.1", watch.address()[1]), timeout=5)
        stranger.sendall(b"not one of ours\n")  # wakes the watch, which parks at the gate
        _until(parked.is_set)
        second.close()
        third.close()
        time.sleep(0.05)
        gate.set()
        _until(lambda: len(deaths) == 3)
        stranger.close()
    finally:
        gate.set()
        watch.close()
    assert deaths[0] == (1, "Fatal Python error: Segmentation fault\n", True)
    assert sorted(deaths[1:]) == [(2, "", False), (3, "", False)]
