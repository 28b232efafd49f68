"""Processes that ``compute`` started and left running on a worker rank: ended when the rank's
loop ends, as they would keep the launcher waiting for their output pipes; daemonic
``multiprocessing`` children are left to ``multiprocessing``'s own exit handler, with a backstop.
No MPI here."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)

CHILDREN_GRACE_SECONDS = 2.0
EXIT_GRACE_SECONDS = 5.0  # multiprocessing's exit handler gets this long to end its own processes
_BACKSTOP_TICK = 0.2  # the backstop's polls while it waits, for the whole life of the process


def end_leftovers(left: set[int], name: str) -> None:
    """End ``left`` (children started since the loop began): SIGTERM then SIGKILL now, except
    ``multiprocessing``'s daemons (ended by its exit handler, with a backstop) and its resource
    tracker and fork server (which end with this process)."""
    daemons = left & _multiprocessing_daemons()
    end_children(left - daemons - _multiprocessing_servers(), name)
    if daemons:
        _kill_at_exit_if_they_outlive(daemons, name)


def children() -> set[int]:
    """The processes whose parent is this one (Linux's ``/proc``; elsewhere none are found)."""
    pid = os.getpid()
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.update(int(child) for child in task.read_text().split())
        except OSError:
            continue
    return found


def _multiprocessing_daemons() -> set[int]:
    """The pids of this process's daemonic ``multiprocessing`` children, which its exit handler ends."""
    if "multiprocessing" not in sys.modules:  # never imported: none, and no import for nothing
        return set()
    import multiprocessing
    return {child.pid for child in multiprocessing.active_children() if child.daemon and child.pid is not None}


def _multiprocessing_servers() -> set[int]:
    """The pids of ``multiprocessing``'s resource tracker and fork server: they end when this
    process does (the tracker cleans up after it first)."""
    found = set()
    for module, holder, attribute in (("multiprocessing.resource_tracker", "_resource_tracker", "_pid"),
                                      ("multiprocessing.forkserver", "_forkserver", "_forkserver_pid")):
        pid = getattr(getattr(sys.modules.get(module), holder, None), attribute, None)  # private: may change
        if isinstance(pid, int):
            found.add(pid)
    return found


def _kill_at_exit_if_they_outlive(pids: set[int], name: str) -> None:
    """Kill ``pids`` if they are still there :data:`EXIT_GRACE_SECONDS` after ``multiprocessing``'s
    exit handler began: that handler sends them SIGTERM and waits for them without a limit, so a
    daemonic helper that ignores SIGTERM would hold the job. Time before it (rank 0's analysis at
    the exit gate, a logger's flush) is not counted. One thread per process, started at the first
    call, not at exit: Python 3.12 refuses to start a thread while the interpreter shuts down."""
    _OUTLIVING.update(pids)
    _OUTLIVING_NAME[:] = [name]
    if _BACKSTOP_STARTED:
        return
    _BACKSTOP_STARTED.append(True)
    threading.Thread(target=_kill_the_rest, name="mpibohb-exit-backstop", daemon=True).start()


_OUTLIVING: set[int] = set()  # daemonic children of compute's that the backstop ends if they outlive the exit
_OUTLIVING_NAME: list[str] = []  # the rank's name, for its warning
_BACKSTOP_STARTED: list[bool] = []


def _kill_the_rest() -> None:
    spent = 0.0
    while spent < EXIT_GRACE_SECONDS:
        time.sleep(_BACKSTOP_TICK)
        spent += _BACKSTOP_TICK if _multiprocessing_exiting() else 0.0
    left = _OUTLIVING & children()
    if left:
        logger.warning("%s: killing %d processes that compute started and that outlived multiprocessing's exit "
                       "(pids %s)", _OUTLIVING_NAME[0], len(left), ", ".join(map(str, sorted(left))))
        _signal_all(left, signal.SIGKILL)


def _multiprocessing_exiting() -> bool:
    """Whether ``multiprocessing``'s exit handler has begun (its private flag, in Python 3.9 to 3.13;
    without it the backstop never fires)."""
    return bool(getattr(sys.modules.get("multiprocessing.util"), "_exiting", False))


def end_children(pids: set[int], name: str) -> None:
    """SIGTERM, then after a grace SIGKILL, the given child processes (and the process groups they
    lead); each is named in a warning."""
    if not pids:
        return
    logger.warning("%s: ending %d processes that compute started and left running (pids %s): they would keep the "
                   "MPI job from ending", name, len(pids), ", ".join(map(str, sorted(pids))))
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + CHILDREN_GRACE_SECONDS
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if not _reaped(pid)}
        time.sleep(0.05)
    _signal_all(pids, signal.SIGKILL)
    for pid in pids:
        _reaped(pid, block=True)


def _signal_all(pids: set[int], signum: int) -> None:
    own_group = os.getpgrp()
    for pid in pids:
        try:
            group = os.getpgid(pid)
            if group == pid and group != own_group:
                os.killpg(group, signum)  # its own children too, which may hold the output pipes
            else:
                os.kill(pid, signum)
        except ProcessLookupError:
            continue


def _reaped(pid: int, block: bool = False) -> bool:
    try:
        done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return True  # not ours to wait for, or already gone
    return done == pid
