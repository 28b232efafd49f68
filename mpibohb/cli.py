"""The command line: ``python -m mpibohb COMMAND ...``.

* ``report RUN_DIR [--json]``: what a run did: settings, runs per budget, failures, budget used,
  the incumbent and its trajectory.
* ``status RUN_DIR [--json]``: how a run stands: running, stopped or finished, run time,
  runs finished, running and failed, best loss so far. A run whose journal has no stop or end
  record but whose process is gone (SIGKILL, a crash) shows as not running; see
  :func:`mpibohb.summary.writer_status`.
* ``plot RUN_DIR [--out DIR]``: the pictures of :mod:`mpibohb.visualization` as PNG files.
* ``run --worker ... --run-dir ...``: an optimisation (see :mod:`mpibohb.runner`).

``report`` and ``plot`` also read a directory of HpBandSter's logs (``configs.json`` and
``results.json`` of its ``json_result_logger``, no journal). This module parses the arguments
and prints; :mod:`mpibohb.summary` reads the run and works out what to show.

A run directory that cannot be read gives a one-line ``mpibohb: ...`` message on stderr and exit
code 2. To add a command, write an ``add_<name>_command(subparsers)`` function that registers a
subparser with ``set_defaults(handler=...)`` (a function ``handler(args) -> exit code``), and
append it to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import liveness
from .bracket_plans import brackets_phrase
from .journal import JournalError
from .launcher import end_shared_job, launched_rank
from .summary import load_run, load_run_or_logs, run_status, summarize, summarize_logs

EXIT_ERROR = 2
MAX_FAILURES_SHOWN = 10


# ---------------------------------------------------------------- text for a person


def _gone_phrase(writer: dict[str, Any]) -> str:
    why = ("was ended by its watchdog: a serial evaluation was stuck past its timeout (exit code 1)"
           if writer.get("ended_by_watchdog") else "is gone without a stop record (killed?)")
    return (f"not running: its process (pid {writer['writer_pid']} on {writer['writer_host']}) {why}; "
            "resume=True continues it")


def _elsewhere_phrase(writer: dict[str, Any]) -> str:
    return f"on {writer['writer_host']} (pid {writer['writer_pid']}; this host cannot check that it is alive)"


# ---------------------------------------------------------------- report


def _extra_brackets(summary: dict[str, Any]) -> str:
    """``; the others are keep_busy's extra brackets`` where a keep_busy run has more iterations than asked."""
    more = summary["iterations"] > summary["n_iterations"] and summary["settings"].get("keep_busy")
    return "; the others are keep_busy's extra brackets" if more else ""


def format_report(summary: dict[str, Any]) -> str:
    """``summary`` (see :func:`mpibohb.summary.summarize`) as text for a person."""
    settings = summary["settings"]
    lines = [f"run {summary['run_dir']}: {_report_state(summary)}", *_settings_lines(summary, settings),
             f"configurations: {summary['configurations']} sampled in {_plural(summary['iterations'], 'iteration')} "
             f"(of {summary['n_iterations']} asked for{_extra_brackets(summary)})",
             f"runs: {summary['runs']} ({summary['failed']} failed)", *_budget_lines(summary["budgets"])]
    lines += _failure_lines(summary["failures"])
    in_max = summary["budget_used_in_max_budget"]
    lines.append(f"budget used: {_number(summary['budget_used'])}"
                 + ("" if in_max is None else f" = {in_max:.4g} x max_budget ({_number(settings['max_budget'])})"))
    increments = summary.get("budget_used_increments")
    if increments is not None:
        lines.append(f"budget used counting only increments (as when training continues from checkpoints): "
                     f"{_number(increments)}")
    lines += _incumbent_lines(summary["incumbent"], summary["trajectory"])
    return "\n".join(lines)


def _report_state(summary: dict[str, Any]) -> str:
    if summary.get("writer") == liveness.WRITER_GONE:
        return _gone_phrase(summary)
    if summary.get("writer") == liveness.WRITER_ELSEWHERE:
        return f"{summary['state']} {_elsewhere_phrase(summary)}"
    return summary["state"]


def _settings_lines(summary: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    budgets = ", ".join(_number(b) for b in settings.get("budgets", ()))
    if summary["sessions"] is None:  # HpBandSter's logs
        return [f"budgets {budgets} (eta {settings.get('eta')}); HpBandSter's logs hold no optimizer, seed "
                "or worker count"]
    workers, at_start = summary["n_workers"], settings.get("n_workers")
    started_with = "" if workers == at_start else f" (started with {at_start})"
    created = "by mpibohb.simulate (time stamps in simulated seconds)" if summary.get("simulated") else \
        datetime.datetime.fromtimestamp(summary["created"]).strftime("%Y-%m-%d %H:%M:%S")
    schedule = "".join(f", {name}" for name in ("asynchronous", "keep_busy", "fill_tail") if settings.get(name))
    schedule += brackets_phrase(settings.get("brackets"))
    if settings.get("optimizer") == "bohb":  # a journal without the key is of HpBandSter's model
        schedule = f" (model {settings.get('model', 'hpbandster')}){schedule}"
    return [f"optimizer: {settings.get('optimizer')}{schedule}, budgets {budgets} (eta {settings.get('eta')}), "
            f"seed {settings.get('seed')}, {_plural(workers, 'worker')}{started_with}",
            f"created: {created}, {_plural(summary['sessions'], 'session')}"]


def _plural(count: Any, noun: str) -> str:
    """``1 worker``, ``2 workers``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _budget_lines(table: list[dict[str, Any]]) -> list[str]:
    lines = [f"  {'budget':>10} {'configs':>8} {'runs':>6} {'failed':>7}  best loss"]
    for row in table:
        best = "-" if row["best_loss"] is None else f"{row['best_loss']:.6g}"
        lines.append(f"  {_number(row['budget']):>10} {row['configurations']:>8} {row['runs']:>6} "
                     f"{row['failed']:>7}  {best}")
    return lines


def _failure_lines(failures: list[dict[str, Any]]) -> list[str]:
    if not failures:
        return ["failures: none"]
    lines = [f"failures: {len(failures)}"]
    for failure in failures[:MAX_FAILURES_SHOWN]:
        lines.append(f"  {_config_id(failure['config_id'])} at budget {_number(failure['budget'])}: "
                     f"{failure['error']}")
    if len(failures) > MAX_FAILURES_SHOWN:
        lines.append(f"  ... and {len(failures) - MAX_FAILURES_SHOWN} more")
    return lines


def _incumbent_lines(incumbent: dict[str, Any] | None, trajectory: list[dict[str, Any]]) -> list[str]:
    if incumbent is None:
        return ["incumbent: none (no run succeeded yet)"]
    lines = [f"incumbent: {_config_id(incumbent['config_id'])}, loss {incumbent['loss']:.6g} "
             f"at budget {_number(incumbent['budget'])}",
             f"  config: {json.dumps(incumbent['config'], sort_keys=True)}",
             "incumbent trajectory (the best on the largest budget with a usable result: a larger budget, or the "
             "incumbent failing on one, may bring a worse loss):",
             f"  {'time (s)':>10} {'budget':>10} {'loss':>12}  config id"]
    *changes, last = trajectory
    if changes and _same_incumbent(changes[-1], last):  # HpBandSter repeats it at the last run's time
        lines += [_trajectory_line(point, before) for point, before in zip(changes, [None, *changes])]
        return [*lines, f"  (still the incumbent when the last run finished, at {last['time']:.3f} s)"]
    return lines + [_trajectory_line(point, before) for point, before in zip(trajectory, [None, *trajectory])]


def _same_incumbent(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a["config_id"], a["budget"], a["loss"]) == (b["config_id"], b["budget"], b["loss"])


def _trajectory_line(point: dict[str, Any], before: dict[str, Any] | None) -> str:
    larger = before is not None and point["budget"] > before["budget"]
    return (f"  {point['time']:>10.3f} {_number(point['budget']):>10} {point['loss']:>12.6g}  "
            f"{_config_id(point['config_id'])}{'  (larger budget)' if larger else ''}")


def _number(value: float) -> str:
    return f"{value:g}"


def _config_id(config_id: Sequence[int]) -> str:
    return "(" + ", ".join(str(i) for i in config_id) + ")"


# ---------------------------------------------------------------- status


def format_status(status: dict[str, Any]) -> str:
    """``status`` (see :func:`mpibohb.summary.run_status`) as text for a person."""
    state, writer = status["state"], status.get("writer")
    if state == "stopped":
        cause = f"by {status['signal_name']}" if status["signal_name"] else f"({status.get('stop_reason')})"
        state = f"stopped {cause}; run again with resume=True (or the same command line) to continue"
    elif writer == liveness.WRITER_GONE:
        state = _gone_phrase(status)
    elif state == "running":
        state = f"running (last record {_duration(status['last_record_age'])} ago)"
        state += f" {_elsewhere_phrase(status)}" if writer == liveness.WRITER_ELSEWHERE else ""
        state += " (no .lock names its process, so whether it is alive cannot be told: it may have been " \
            "killed, or the directory copied)" if writer == liveness.WRITER_UNKNOWN else ""
    if status.get("resuming_pid") is not None:
        holder = "a process" if status["resuming_pid"] < 0 else f"process {status['resuming_pid']}"
        state += f"; {holder} holds its lock now: a resume is starting (it replays the journal first)"
    successful = status["finished"] - status["failed"]
    running = "running" if status["state"] == "running" and writer != liveness.WRITER_GONE else "unfinished"
    lines = [f"run {status['run_dir']}: {state}", _run_time_line(status),
             f"runs: {status['finished']} finished ({successful} successful, {status['failed']} failed), "
             f"{status['running']} {running}"]
    if status["best_loss"] is None:
        lines.append("best loss so far: none")
    else:
        lines.append(f"best loss so far: {status['best_loss']:.6g} by {_config_id(status['best_config_id'])} "
                     f"at budget {_number(status['best_budget'])}")
    return "\n".join(lines)


def _run_time_line(status: dict[str, Any]) -> str:
    """``run time: ...``; for a resumed run also the wall time, pauses between sessions included."""
    line = f"run time: {_duration(status['run_time'])}"
    if status["sessions"] > 1:
        line += (f" in {status['sessions']} sessions ({_duration(status['elapsed'])} of wall time since it was "
                 "created, with the pauses between them)")
    return line


def _duration(seconds: float) -> str:
    """``seconds`` as ``1 h 02 min 03 s``, ``2 min 03 s`` or ``4.2 s``."""
    if seconds < 60:
        return f"{max(seconds, 0.0):.{1 if seconds >= 1 else 3}f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


# ---------------------------------------------------------------- commands


def _print_json(value: dict[str, Any]) -> None:
    print(json.dumps(value, indent=2))


def report_command(args: argparse.Namespace) -> int:
    """``report RUN_DIR [--json]``."""
    state, result = load_run_or_logs(args.run_dir)
    summary = summarize(state, result, args.run_dir) if state is not None else summarize_logs(result, args.run_dir)
    if args.json:
        _print_json(summary)
    else:
        print(format_report(summary))
    return 0


def status_command(args: argparse.Namespace) -> int:
    """``status RUN_DIR [--json]``."""
    state, result = load_run(args.run_dir)
    status = run_status(state, result, args.run_dir)
    if args.json:
        _print_json(status)
    else:
        print(format_status(status))
    return 0


_LOGS_TOO = "a run directory (holding journal.jsonl), or one of HpBandSter's logs (configs.json, results.json)"


def _add_run_dir_command(subparsers: Any, name: str, summary: str, description: str,
                         handler: Callable[[argparse.Namespace], int],
                         run_dir_help: str = "a run directory (holding journal.jsonl)") -> None:
    parser = subparsers.add_parser(name, help=summary, description=description, allow_abbrev=False)
    parser.add_argument("run_dir", metavar="RUN_DIR", help=run_dir_help)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(handler=handler)


def add_report_command(subparsers: Any) -> None:
    """Register ``report``."""
    _add_run_dir_command(subparsers, "report", "summarise a run: settings, runs, failures, incumbent",
                         "Summarise the run in RUN_DIR from its journal (or HpBandSter's logs).", report_command,
                         _LOGS_TOO)


def add_status_command(subparsers: Any) -> None:
    """Register ``status``."""
    _add_run_dir_command(subparsers, "status", "how a run stands: running, stopped or finished, counts",
                         "Show how the run in RUN_DIR stands, from its journal.", status_command)


def add_run_command(subparsers: Any) -> None:
    """Register ``run`` (see :mod:`mpibohb.runner`)."""
    from . import runner

    exit_codes = (f"Exit codes: 0 finished; {runner.EXIT_NO_SUCCESS} finished, but no evaluation succeeded (see "
                  "report); 2 bad arguments or run directory; 99 stopped by a signal: run the same command again "
                  "to resume; 1 an evaluation stuck past --timeout where it cannot be interrupted (serial), or an "
                  "error under mpiexec.")
    parser = subparsers.add_parser("run", help="run an optimisation (on every rank under mpiexec/srun)",
                                   allow_abbrev=False,
                                   description=runner.__doc__.split("\n\n")[0].replace("``", ""), epilog=exit_codes)
    runner.add_arguments(parser)
    parser.set_defaults(handler=runner.run_command)


def plot_command(args: argparse.Namespace) -> int:
    """``plot RUN_DIR [--out DIR]``: every plot of :mod:`mpibohb.visualization` as a PNG file. In
    ``--out``, a file of a plot's name that ``plot`` did not write is kept (exit code 2).

    A plot that cannot be drawn from the run (e.g. one budget only) is skipped with a line saying
    why. Without matplotlib: a one-line error and exit code 2.
    """
    try:
        from . import visualization

        visualization.require_matplotlib()
    except ImportError as exc:
        print(f"mpibohb: {exc}", file=sys.stderr)
        return EXIT_ERROR
    _state, result = load_run_or_logs(args.run_dir)
    own = Path(args.run_dir) / "plots"  # plot's own folder: what is there is replaced
    out = Path(args.out) if args.out is not None else own
    checked = out.resolve() != own.resolve()
    if out.exists() and not out.is_dir():
        print(f"mpibohb: {'--out ' if checked else ''}{out} is a file, not a directory", file=sys.stderr)
        return EXIT_ERROR
    out.mkdir(parents=True, exist_ok=True)
    plt = _pyplot_for_files()
    kept = []
    for name in visualization.PLOTS:
        path = out / f"{name}.png"
        if checked and path.exists() and not _plotted_here(path):
            kept.append(path)
            continue
        try:
            figure = getattr(visualization, name)(result)
        except ValueError as exc:
            print(f"skipped {name}: {exc}")
            continue
        try:
            _save_in_one_step(figure, path)
        finally:
            plt.close(figure)  # pyplot keeps every figure until it is closed
        print(path)
    for path in kept:
        print(f"mpibohb: kept {path}: a file that mpibohb plot did not write (it lacks the PNG stamp "
              f"'Software: {PLOT_STAMP}', which versions before 2026-12-06 did not set); move it, or give "
              "another --out", file=sys.stderr)
    return EXIT_ERROR if kept else 0


PLOT_STAMP = "mpibohb plot"  # in each PNG's Software field: plot replaces only files that carry it


def _save_in_one_step(figure: Any, path: Path) -> None:
    """Save ``figure`` as a PNG under a new temporary name beside ``path`` (created exclusively: a
    link planted there is never followed, and two plots at once never share it), then rename it to
    ``path``: a viewer watching the folder never sees half a file."""
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png.partial")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # the mode savefig would have given it
        with os.fdopen(fd, "wb") as file:
            figure.savefig(file, dpi=100, format="png", metadata={"Software": PLOT_STAMP})
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def _plotted_here(path: Path) -> bool:
    """Whether ``path`` is a PNG that ``plot`` wrote (its text chunks come before the image data)."""
    try:
        with open(path, "rb") as file:
            head = file.read(65536)
    except OSError:
        return False
    return head.startswith(b"\x89PNG") and b"Software\x00" + PLOT_STAMP.encode() in head


def _pyplot_for_files() -> Any:
    """pyplot with the file-only Agg backend (no window, no display needed), unless pyplot is in use
    in this process already (switching would close the caller's figures)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def add_plot_command(subparsers: Any) -> None:
    """Register ``plot`` (needs matplotlib, the ``plot`` extra)."""
    parser = subparsers.add_parser("plot", help="draw the plots of a run as PNG files (needs matplotlib)",
                                   description="Draw the plots of the run in RUN_DIR (finished or running) "
                                               "as PNG files, print their paths and the plots skipped.",
                                   allow_abbrev=False)
    parser.add_argument("run_dir", metavar="RUN_DIR", help=_LOGS_TOO)
    parser.add_argument("--out", metavar="DIR", default=None, help="where to write the PNG files "
                        "(default: RUN_DIR/plots)")
    parser.set_defaults(handler=plot_command)


COMMANDS: list[Callable[[Any], None]] = [add_report_command, add_status_command, add_run_command,
                                         add_plot_command]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command of :data:`COMMANDS`."""
    from . import __version__

    # allow_abbrev=False everywhere: a job script's --max-b must fail, not pass for --max-budget
    parser = _OneRankParser(prog="mpibohb", description="BOHB, HyperBand and RandomSearch over MPI.",
                            allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"mpibohb {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    subparsers.required = True
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


class _OneRankParser(argparse.ArgumentParser):
    """Under ``mpiexec`` every rank parses the same arguments: only rank 0 prints a mistake (or the
    help), once instead of once per rank; every rank exits with argparse's code."""

    def _print_message(self, message: str, file: Any = None) -> None:
        if launched_rank() in (None, 0):
            super()._print_message(message, file)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (2 when the run directory cannot be read).

    Raises:
        SystemExit: from argparse, for ``--help``, ``--version`` and bad arguments.
    """
    args = build_parser().parse_args(argv)
    package_logger = logging.getLogger("mpibohb")
    if args.command != "run" and not package_logger.handlers:  # a live run's torn last line is no news
        package_logger.addHandler(logging.NullHandler())
    try:
        return args.handler(args)
    except BrokenPipeError:  # the reader (e.g. `head`) has gone: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (JournalError, OSError, ValueError) as exc:
        message = " ".join(str(exc).split())
        print(f"mpibohb: {message}", file=sys.stderr, flush=True)
        if args.command == "run":  # under mpiexec the other ranks may wait for this one in run()
            end_shared_job(EXIT_ERROR, "the error above")
        return EXIT_ERROR
