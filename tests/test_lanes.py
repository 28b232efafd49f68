"""The test lanes (``tests/lanes.py``): a test that starts a process without its marker fails, the
markers select the lanes; and ``tests/cli_in_process.py`` leaves logging as it found it.

The lanes are checked on small test files run by ``pytester`` in this process, with the lanes
plugin and this repository's markers.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest
from cli_in_process import run_cli
from mpi_launch import ROOT

INI = (ROOT / "pytest.ini").read_text().replace("testpaths = tests\n", "")

STARTS_UNMARKED = '''
import os, subprocess, sys
import pytest

def test_subprocess_run():
    subprocess.run(["true"])

def test_popen_of_a_python():
    subprocess.Popen([sys.executable, "-c", "pass"]).wait()

def test_an_error_swallowed_by_the_code_under_test():
    try:
        subprocess.run(["true"])
    except BaseException:
        pass

def test_os_system():
    os.system("true")

def test_posix_spawn():
    os.waitpid(os.posix_spawn("/bin/true", ["true"], dict(os.environ)), 0)

def test_fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)

@pytest.fixture
def helper():
    subprocess.run(["true"])

def test_a_fixture_that_starts_one(helper):
    pass

@pytest.mark.processes
def test_mpiexec_marked_only_processes():
    subprocess.run(["mpiexec", "-n", "1", "true"])

def test_skipped_after_starting_one():
    try:
        subprocess.run(["true"])
    except BaseException:
        pytest.skip("as if the code had not started one")

def test_in_process():
    assert sum(range(4)) == 6
'''


def run_lanes(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makeini(INI)
    pytester.makepyfile(test_inner=source)
    return pytester.runpytest("-p", "lanes", "-p", "no:cacheprovider", *args)


def test_a_test_that_starts_a_process_without_its_marker_fails_naming_the_marker(pytester: pytest.Pytester) -> None:
    """Every way of starting a process is caught before the process starts (so this test starts none)."""
    result = run_lanes(pytester, STARTS_UNMARKED)
    python = sys.executable
    result.assert_outcomes(passed=1, failed=8, errors=1)  # test_in_process passes
    text = result.stdout.str()
    for name, how in [("test_subprocess_run", "subprocess: true"), ("test_popen_of_a_python", f"subprocess: {python}"),
                      ("test_an_error_swallowed_by_the_code_under_test", "subprocess: true"),
                      ("test_os_system", "os.system: true"), ("test_posix_spawn", "os.posix_spawn: /bin/true"),
                      ("test_fork", "os.fork: a fork"), ("test_a_fixture_that_starts_one", "subprocess: true"),
                      ("test_skipped_after_starting_one", "subprocess: true")]:
        assert f"test_inner.py::{name} starts a process ({how}) but is not marked 'processes'" in text, name
    assert ("test_inner.py::test_mpiexec_marked_only_processes starts a process (subprocess: mpiexec) but is not "
            "marked 'mpiexec'") in text


MARKED = '''
import os, subprocess
import pytest

pytestmark = pytest.mark.processes

def test_subprocess_run():
    subprocess.run(["true"], check=True)

def test_fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)

@pytest.mark.scheduler
def test_sbatch_or_anything():
    subprocess.run(["true"], check=True)
'''


@pytest.mark.processes  # the inner tests start `true` and a fork, as their markers allow
def test_a_marked_test_starts_its_processes(pytester: pytest.Pytester) -> None:
    run_lanes(pytester, MARKED).assert_outcomes(passed=3)


SELECTED = '''
import pytest

def test_unit():
    pass

@pytest.mark.slow
def test_slow_in_process():
    pass

@pytest.mark.processes
def test_processes():
    pass

@pytest.mark.mpiexec
def test_mpiexec():
    pass

@pytest.mark.scheduler
def test_scheduler():
    pass
'''


@pytest.mark.parametrize(("expression", "selected"), [
    ("fast", ["test_unit"]),
    ("not processes", ["test_unit", "test_slow_in_process"]),
    ("processes", ["test_processes", "test_mpiexec", "test_scheduler"]),
    ("processes and not mpiexec and not scheduler", ["test_processes"]),
    ("mpiexec", ["test_mpiexec"]),
    ("scheduler", ["test_scheduler"]),
])
def test_the_markers_select_the_lanes(pytester: pytest.Pytester, expression: str, selected: list[str]) -> None:
    result = run_lanes(pytester, SELECTED, "--collect-only", "-q", "-m", expression)
    assert [line.split("::")[1] for line in result.stdout.lines if "::" in line] == selected


def test_fast_is_given_not_written(pytester: pytest.Pytester) -> None:
    result = run_lanes(pytester, "import pytest\n\n@pytest.mark.fast\ndef test_x():\n    pass\n")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "'fast' is given automatically; do not mark it by hand" in result.stderr.str()


def test_a_fast_test_that_uses_much_cpu_is_named_at_the_end(pytester: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import lanes

    monkeypatch.setattr(lanes, "SLOW_CPU_SECONDS", -1.0)  # every test uses more than that
    result = run_lanes(pytester, SELECTED, "-m", "not processes")
    result.stdout.fnmatch_lines(["*= fast tests that used more CPU than a fast test should =*",
                                 "* s CPU  test_inner.py::test_unit  (speed it up, or mark it slow: tests/lanes.py)"])
    assert "test_slow_in_process  (" not in result.stdout.str()  # marked slow already


# ---------------------------------------------------------------- the in-process command line


def test_an_in_process_run_logs_to_its_stderr_and_leaves_logging_as_it_found_it(tmp_path: Path) -> None:
    root, package = logging.getLogger(), logging.getLogger("mpibohb")
    before = (root.handlers[:], root.level, package.handlers[:], package.level)
    run = run_cli("run", "--worker", f"{ROOT / 'examples' / 'toy_worker.py'}:MyWorker", "--min-budget", "9",
                  "--max-budget", "27", "--n-iterations", "1", "--run-dir", tmp_path / "run")
    assert run.returncode == 0 and re.search(r" mpibohb(\.\w+)* INFO ", run.stderr), run.stderr  # basicConfig's
    status = run_cli("status", tmp_path / "run")
    assert status.returncode == 0 and status.stdout.startswith(f"run {tmp_path / 'run'}: finished")
    assert (root.handlers, root.level, package.handlers, package.level) == before


def test_an_in_process_call_returns_the_exit_code_of_systemexit() -> None:
    shown = run_cli("--help")
    assert shown.returncode == 0 and shown.stdout.startswith("usage: mpibohb")
    wrong = run_cli("report")
    assert wrong.returncode == 2 and "the following arguments are required: RUN_DIR" in wrong.stderr
