"""``python -m mpibohb ARGS`` in the test's own process: ``mpibohb.cli.main(ARGS)``, its output
captured, the exit code returned, logging and warnings as a new interpreter has them, and the
logging set-up undone afterwards, so that tests stay independent.

Starting a Python per call costs seconds of imports; in-process a call costs milliseconds. Tests
where the separate process is the point (signals, exit codes of a killed run, what an interpreter
imports, mpiexec) keep starting one (see docs/testing.md).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpibohb.cli import main

# what a new interpreter ignores (``python -c "import warnings; print(warnings.filters)"``)
IGNORED_BY_DEFAULT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


@dataclass
class CliCall:
    """What a command did, as a ``subprocess.CompletedProcess`` has it."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: Any, cwd: str | os.PathLike | None = None) -> CliCall:
    """``python -m mpibohb *args`` (in ``cwd``), in this process."""
    argv = [str(arg) for arg in args]
    out, err = io.StringIO(), io.StringIO()
    with _in_directory(cwd), _fresh_logging(), _forgetting_worker_files(argv), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _warnings_on_stderr():
        code = _exit_code(argv)
    return CliCall(argv, code, out.getvalue(), err.getvalue())


def run_cli_many(*commands: Any) -> list[CliCall]:
    """Several calls, one after the other."""
    return [run_cli(*command) for command in commands]


def _exit_code(argv: list[str]) -> int:
    """``main(argv)``'s return value, or the code of the SystemExit it raised, as the interpreter
    would make it (argparse exits for --help and bad arguments; ``run`` exits 99 on a signal)."""
    try:
        return main(argv)
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)
        return 1


@contextlib.contextmanager
def _fresh_logging() -> Iterator[None]:
    """Logging as a new interpreter has it (no root handlers: ``run`` calls ``basicConfig``), put
    back as it was afterwards: the root's and the ``mpibohb`` logger's handlers and levels."""
    root, package = logging.getLogger(), logging.getLogger("mpibohb")
    saved = [(logger, logger.handlers[:], logger.level) for logger in (root, package)]
    root.handlers = []
    try:
        yield
    finally:
        for logger, handlers, level in saved:
            for handler in logger.handlers:
                if handler not in handlers:
                    handler.close()
            logger.handlers, logger.level = handlers, level


@contextlib.contextmanager
def _warnings_on_stderr() -> Iterator[None]:
    """Warnings filtered as a new interpreter filters them and written to ``sys.stderr``, where
    they would show in a subprocess, instead of pytest's warnings summary."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        for category in IGNORED_BY_DEFAULT:
            warnings.simplefilter("ignore", category)
        try:
            yield
        finally:
            for shown in caught:
                sys.stderr.write(warnings.formatwarning(shown.message, shown.category, shown.filename,
                                                        shown.lineno, shown.line))


@contextlib.contextmanager
def _in_directory(cwd: str | os.PathLike | None) -> Iterator[None]:
    if cwd is None:
        yield
        return
    before = os.getcwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _forgetting_worker_files(argv: list[str]) -> Iterator[None]:
    """Drop the module ``run --worker path/to/file.py:Name`` imported (``sys.modules[file stem]``),
    so that a later call imports its own file of the same name."""
    where = argv[argv.index("--worker") + 1].rpartition(":")[0] if "--worker" in argv[:-1] else ""
    name = Path(where).stem if where.endswith(".py") else None
    before = sys.modules.get(name) if name else None
    try:
        yield
    finally:
        if name and sys.modules.get(name) is not before:
            if before is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = before
