"""Test lanes: the markers that say which tests start processes, and the guard that keeps them true.

* ``processes``: the test starts child processes (Python scripts, ``bash``, ``mpiexec``...);
* ``mpiexec``: it starts ``mpiexec`` (implies ``processes``);
* ``scheduler``: it submits to SLURM or Grid Engine (implies ``processes``);
* ``slow``: it takes more than a few seconds in one process (the plot command's PNG files...);
* ``fast``: given automatically to every test without the markers above; ``pytest -m fast`` runs
  the unit tests of the core, in one process, in well under a minute.

The guard wraps every way this interpreter starts a process (``subprocess``, ``os.fork``,
``os.posix_spawn``, ``os.system``, multiprocessing) while a test's setup, call and teardown run:
a test that starts a process without the marker for it fails, naming the marker, so that a
forgotten marker cannot slip a slow test into the fast lane. A fast test that uses more than
``SLOW_CPU_SECONDS`` of CPU is named at the end of the run, as a candidate for ``slow``. A test
that imports ``mpi4py.MPI`` into pytest's own process fails too: MPI would start there, and every
later test in that process would take itself for a rank under a launcher. See docs/testing.md.
"""

from __future__ import annotations

import _posixsubprocess
import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

PROCESS_MARKERS = ("processes", "mpiexec", "scheduler")
SLOW_CPU_SECONDS = 3.0  # the whole fast lane uses about 15 s
MPI_LAUNCHERS = {"mpiexec", "mpirun", "mpiexec.hydra", "orterun"}
SCHEDULER_COMMANDS = {"sbatch", "srun", "salloc", "squeue", "scancel", "scontrol", "sinfo",
                      "qsub", "qstat", "qdel", "qconf", "qhost"}


class UnmarkedProcessError(AssertionError):
    """A test started a process without the marker that says so."""


_current: dict[str, Any] = {"item": None}  # the test whose setup, call or teardown runs now
_STARTED = pytest.StashKey[list]()  # on a test: what it started without its marker, for the report
_SLOW_FAST = pytest.StashKey[list]()  # on the session's config: (CPU seconds, node id) above SLOW_CPU_SECONDS


def pytest_configure(config: pytest.Config) -> None:
    """The markers are registered in pytest.ini; this installs the guard."""
    _install_guard()


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("fast") is not None:
            raise pytest.UsageError(f"{item.nodeid}: 'fast' is given automatically; do not mark it by hand")
        if item.get_closest_marker("mpiexec") or item.get_closest_marker("scheduler"):
            item.add_marker("processes")
        if item.get_closest_marker("processes") is None and item.get_closest_marker("slow") is None:
            item.add_marker("fast")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    outer, _current["item"] = _current["item"], item  # outer: a test running pytest itself (pytester)
    started = time.process_time()
    try:
        yield
    finally:
        _current["item"] = outer
    used = time.process_time() - started
    if used > SLOW_CPU_SECONDS and item.get_closest_marker("fast") is not None:
        item.config.stash.setdefault(_SLOW_FAST, []).append((used, item.nodeid))


@pytest.fixture(autouse=True)
def _mpi_stays_out_of_this_process(request: pytest.FixtureRequest) -> Generator[None, None, None]:
    """Fails a test that brought ``mpi4py.MPI`` into pytest's process (outside ``--with-mpi``)."""
    before = "mpi4py.MPI" in sys.modules
    yield
    if not before and "mpi4py.MPI" in sys.modules and not request.config.getoption("with_mpi", False):
        pytest.fail("this test imported mpi4py.MPI into pytest's own process: MPI started here, and later tests "
                    "in this process take themselves for ranks under a launcher (launcher.launched()); import "
                    "what it tests from a module without MPI, or start a process")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    slow = config.stash.get(_SLOW_FAST, [])
    if slow:
        terminalreporter.section("fast tests that used more CPU than a fast test should")
        for used, nodeid in sorted(slow, reverse=True):
            terminalreporter.line(f"{used:.1f} s CPU  {nodeid}  (speed it up, or mark it slow: tests/lanes.py)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, Any, None]:
    """A phase that started an unmarked process fails, even if the test swallowed the error."""
    report = (yield).get_result()
    started = item.stash.get(_STARTED, [])
    if started:
        if not report.failed:  # passed, or skipped after starting one
            report.outcome, report.longrepr = "failed", "\n".join(started)
        elif call.excinfo is None or not call.excinfo.errisinstance(UnmarkedProcessError):
            report.sections.append(("processes started without their marker", "\n".join(started)))
        item.stash[_STARTED] = []


def required_marker(program: str | None) -> str:
    """The marker a test needs to start ``program`` (None: unknown, e.g. a fork)."""
    name = Path(program).name if program else ""
    if name in SCHEDULER_COMMANDS:
        return "scheduler"
    return "mpiexec" if name in MPI_LAUNCHERS else "processes"


def _allowed(item: pytest.Item, needed: str) -> bool:
    if item.get_closest_marker("scheduler") is not None:
        return True
    if needed == "processes":
        return any(item.get_closest_marker(name) is not None for name in PROCESS_MARKERS)
    return item.get_closest_marker(needed) is not None


def _check(how: str, program: str | None) -> None:
    """Raise (and record for the report) if the running test may not start ``program``."""
    __tracebackhide__ = True
    item = _current["item"]
    if item is None:  # collection, or between tests
        return
    needed = required_marker(program)
    if _allowed(item, needed):
        return
    message = (f"{item.nodeid} starts a process ({how}: {program or 'a fork'}) but is not marked "
               f"'{needed}': add @pytest.mark.{needed} (see tests/lanes.py), or call the code in-process")
    item.stash.setdefault(_STARTED, []).append(message)
    raise UnmarkedProcessError(message)


def _first_word(args: Any) -> str | None:
    if isinstance(args, (str, bytes, os.PathLike)):
        words = os.fsdecode(args).split()
        return words[0] if words else None
    args = list(args)
    return os.fsdecode(args[0]) if args else None


def _guarded(function: Callable, how: str, program_of: Callable[..., str | None]) -> Callable:
    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        _check(how, program_of(*args, **kwargs))
        return function(*args, **kwargs)

    guarded.__wrapped_by_lanes__ = True
    return guarded


def _install_guard() -> None:
    """Wrap each way of starting a process once (subprocess binds its own fork_exec at import)."""
    if getattr(subprocess.Popen._execute_child, "__wrapped_by_lanes__", False):
        return
    subprocess.Popen._execute_child = _guarded(
        subprocess.Popen._execute_child, "subprocess",
        lambda self, args, executable, *rest, **kw: _first_word(args if executable is None else [executable]))
    for name in ("posix_spawn", "posix_spawnp"):
        setattr(os, name, _guarded(getattr(os, name), f"os.{name}", lambda path, *rest, **kw: os.fsdecode(path)))
    os.system = _guarded(os.system, "os.system", lambda command: _first_word(command))
    for name in ("fork", "forkpty"):
        setattr(os, name, _guarded(getattr(os, name), f"os.{name}", lambda: None))
    _posixsubprocess.fork_exec = _guarded(_posixsubprocess.fork_exec, "multiprocessing",
                                          lambda args, *rest, **kw: _first_word(args))
