"""The command line: ``python -m mpibohb COMMAND ...``.

* ``report RUN_DIR [--json]``: what a run did: settings, runs per budget, failures, budget used,
  the incumbent and its trajectory.
* ``status RUN_DIR [--json]``: how a run stands: running, stopped or finished, run time,
  runs finished, running and failed, best loss so far. A run whose journal has no stop or end
  record but whose process is gone (SIGKILL, a crash) shows as not running; see
  :func:`writer_status`.
* ``plot RUN_DIR [--out DIR]``: the pictures of :mod:`mpibohb.visualization` as PNG files.
* ``run --worker ... --run-dir ...``: an optimisation (see :mod:`mpibohb.runner`).

``report`` and ``plot`` also read a directory of HpBandSter's logs (``configs.json`` and
``results.json`` of its ``json_result_logger``, no journal).

A run directory that cannot be read gives a one-line ``mpibohb: ...`` message on stderr and exit
code 2. To add a command, write an ``add_<name>_command(subparsers)`` function that registers a
subparser with ``set_defaults(handler=...)`` (a function ``handler(args) -> exit code``), and
append it to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import liveness
from .journal import JOURNAL, JournalError, read_journal
from .result import Result, error_headline, has_hpbandster_logs, result_from_hpbandster_logs, result_from_records

EXIT_ERROR = 2
MAX_FAILURES_SHOWN = 10
_REQUIRED_KEYS = {
    "header": ("settings", "created"),
    "job": ("config_id", "budget", "config", "config_info", "submitted"),
    "resubmit": ("config_id", "budget", "config", "config_info", "submitted"),
    "result": ("config_id", "budget", "loss", "info", "error", "started", "finished"),
}


# ---------------------------------------------------------------- reading a run directory


def load_run(run_dir: str | Path) -> tuple[list[dict[str, Any]], Result]:
    """The journal records and the :class:`Result` of the run in ``run_dir``.

    Raises:
        JournalError: ``run_dir`` is missing, holds no journal, or its journal is empty or corrupt.
        OSError: the journal cannot be read.
    """
    path = Path(run_dir)
    if not path.exists():
        raise JournalError(f"{path}: no such run directory")
    if path.is_dir() and not (path / JOURNAL).exists():
        logged = " (HpBandSter's logs: report and plot read them)" if has_hpbandster_logs(path) else ""
        raise JournalError(f"{path}: not a run directory (it has no {JOURNAL}){logged}")
    try:
        records = read_journal(path)
        _check_records(records, path)
        return records, result_from_records(records)
    except JournalError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise JournalError(f"{path}: malformed journal ({type(exc).__name__}: {exc})") from None


def load_run_or_logs(run_dir: str | Path) -> tuple[list[dict[str, Any]] | None, Result]:
    """As :func:`load_run`; for a directory of HpBandSter's logs ``(None, its Result)``."""
    if has_hpbandster_logs(Path(run_dir)):
        return None, result_from_hpbandster_logs(run_dir)
    return load_run(run_dir)


def _check_records(records: list[Any], path: Path) -> None:
    """Raise :class:`JournalError` naming the first record that lacks what its type needs."""
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise JournalError(f"{path}: record {number} is not a JSON object: {str(record)[:80]}")
        missing = [key for key in _REQUIRED_KEYS.get(record.get("type"), ()) if key not in record]
        if missing:
            raise JournalError(f"{path}: record {number} ({record.get('type')}) lacks {', '.join(missing)}")


def run_state(records: list[dict[str, Any]]) -> tuple[str, dict[str, Any] | None]:
    """``("finished" | "stopped" | "running", the end or stop record or None)``.

    The last of the ``session``, ``stop`` and ``end`` records decides: a resumed run is running
    again. A run killed without a chance to write a record (SIGKILL, a crash) also looks running
    here; :func:`writer_status` tells whether its process is still there.
    """
    state, last = "running", None
    for record in records:
        kind = record.get("type")
        if kind == "session":
            state, last = "running", None
        elif kind in ("stop", "end"):
            state, last = ("finished" if kind == "end" else "stopped"), record
    return state, last


def unfinished_jobs(records: list[dict[str, Any]]) -> list[tuple[tuple[int, ...], float]]:
    """``(config_id, budget)`` of the jobs handed out (``job``/``resubmit``) without a result yet."""
    open_jobs: dict[tuple[tuple[int, ...], float], None] = {}
    for record in records:
        key = (tuple(record.get("config_id") or ()), record.get("budget"))
        if record.get("type") in ("job", "resubmit"):
            open_jobs[key] = None
        elif record.get("type") == "result":
            open_jobs.pop(key, None)
    return list(open_jobs)


# ---------------------------------------------------------------- is the run's process still there?

def writer_status(run_dir: str | Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether the process writing a running run is still there, without touching the run.

    Returns ``{"writer": ..., "writer_pid": pid or None, "writer_host": host or None}``; ``writer``
    is ``None`` unless :func:`run_state` says running, else one of (see :mod:`mpibohb.liveness`)

    * ``"alive"``: its process exists on this host, or a process here holds the lock;
    * ``"gone"``: the lock file names a process of this host that no longer exists (or is a
      zombie) and no process here holds the lock: killed or crashed without a ``stop`` record;
    * ``"elsewhere"``: the lock file names another host, which this one cannot check;
    * ``"unknown"``: no lock file naming the current session's process (a journal copied without
      it, a file system that cannot lock, or a resume just writing it).

    It only reads, never takes the run's lock (:mod:`mpibohb.liveness` says why and how).
    """
    if run_state(records)[0] != "running":
        return {"writer": None, "writer_pid": None, "writer_host": None}
    return liveness.writer_of(run_dir, records)


def _gone_phrase(writer: dict[str, Any]) -> str:
    return (f"not running: its process (pid {writer['writer_pid']} on {writer['writer_host']}) is gone "
            "without a stop record (killed?); resume=True continues it")


def _elsewhere_phrase(writer: dict[str, Any]) -> str:
    return f"on {writer['writer_host']} (pid {writer['writer_pid']}; this host cannot check that it is alive)"


# ---------------------------------------------------------------- report


def summarize_logs(result: Result, run_dir: str) -> dict[str, Any]:
    """What ``report`` shows of a run HpBandSter logged: the keys of :func:`summarize`, those the
    logs do not hold (optimizer, seed, workers, sessions) ``None``."""
    header = {"created": result.settings.get("time_ref") or 0.0, "settings": dict(result.settings)}
    summary = summarize([header, {"type": "end"}], result, run_dir)  # ended: no writer to look for
    summary.update(state="logged by HpBandSter (no journal)", sessions=None, n_workers=None,
                   n_iterations=summary["iterations"])
    return summary


def summarize(records: list[dict[str, Any]], result: Result, run_dir: str) -> dict[str, Any]:
    """Everything ``report`` shows, as one JSON-serialisable dict."""
    header, settings = records[0], records[0]["settings"]
    runs = result.get_all_runs()
    max_budget = settings.get("max_budget")
    used = sum(r.budget for r in runs)
    return {
        "run_dir": str(run_dir),
        "state": run_state(records)[0],
        **writer_status(run_dir, records),
        "created": header["created"],
        "sessions": sum(r.get("type") == "session" for r in records),
        "n_iterations": max((r.get("n_iterations", 0) for r in records if r.get("type") == "session"), default=0),
        "settings": settings,
        "n_workers": _latest_workers(records),
        "iterations": result.num_iterations(),
        "configurations": len(result.id2config),
        "runs": len(runs),
        "failed": len(result.failed_runs()),
        "budgets": _budget_table(result),
        "failures": [{"config_id": list(r.config_id), "budget": r.budget, "error": error_headline(r.error_logs)}
                     for r in result.failed_runs()],
        "budget_used": used,
        "budget_used_in_max_budget": used / max_budget if max_budget else None,
        "incumbent": _incumbent(result),
        "trajectory": _trajectory(result),
    }


def _latest_workers(records: list[dict[str, Any]]) -> Any:
    """The workers of the latest session that journaled them, else the header's (a resume may use
    other ranks)."""
    counts = [r["n_workers"] for r in records if r.get("type") == "session" and "n_workers" in r]
    return counts[-1] if counts else records[0]["settings"].get("n_workers")


def _budget_table(result: Result) -> list[dict[str, Any]]:
    """Per budget: distinct configurations run, runs, failed runs, best loss."""
    budgets = sorted(set(result.settings.get("budgets") or ()) | {r.budget for r in result.runs})
    table = []
    for budget in budgets:
        runs = [r for r in result.runs if r.budget == budget]
        losses = [r.loss for r in runs if r.loss is not None]
        table.append({"budget": budget, "configurations": len({r.config_id for r in runs}), "runs": len(runs),
                      "failed": len(runs) - len(losses), "best_loss": min(losses, default=None)})
    return table


def _incumbent(result: Result) -> dict[str, Any] | None:
    """The incumbent's id, loss, budget and config (``None`` before any run succeeded)."""
    config_id = result.get_incumbent_id()
    if config_id is None:
        return None
    best = max((r for r in result.get_runs_by_id(config_id) if r.loss is not None), key=lambda r: r.budget)
    budget, loss = best.budget, best.loss  # the budget it was chosen on: its largest successful run
    return {"config_id": list(config_id), "loss": loss, "budget": budget,
            "config": result.id2config[config_id]["config"]}


def _trajectory(result: Result) -> list[dict[str, Any]]:
    """The incumbent trajectory (HpBandSter's defaults) as a list of points."""
    trajectory = result.get_incumbent_trajectory()
    return [{"time": t, "budget": b, "loss": x, "config_id": list(c)}
            for c, t, b, x in zip(trajectory["config_ids"], trajectory["times_finished"],
                                  trajectory["budgets"], trajectory["losses"])]


def format_report(summary: dict[str, Any]) -> str:
    """``summary`` (see :func:`summarize`) as text for a person."""
    settings = summary["settings"]
    lines = [f"run {summary['run_dir']}: {_report_state(summary)}", *_settings_lines(summary, settings),
             f"configurations: {summary['configurations']} sampled in {_plural(summary['iterations'], 'iteration')} "
             f"(of {summary['n_iterations']} asked for)",
             f"runs: {summary['runs']} ({summary['failed']} failed)", *_budget_lines(summary["budgets"])]
    lines += _failure_lines(summary["failures"])
    in_max = summary["budget_used_in_max_budget"]
    lines.append(f"budget used: {_number(summary['budget_used'])}"
                 + ("" if in_max is None else f" = {in_max:.4g} x max_budget ({_number(settings['max_budget'])})"))
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
    created = datetime.datetime.fromtimestamp(summary["created"]).strftime("%Y-%m-%d %H:%M:%S")
    return [f"optimizer: {settings.get('optimizer')}, budgets {budgets} (eta {settings.get('eta')}), "
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
             "incumbent trajectory (the best on the largest budget reached so far: a larger budget may bring a "
             "worse loss):", f"  {'time (s)':>10} {'budget':>10} {'loss':>12}  config id"]
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


def run_status(records: list[dict[str, Any]], result: Result, run_dir: str, now: float | None = None) -> dict[str, Any]:
    """Everything ``status`` shows, as one JSON-serialisable dict.

    ``state`` is the journal's (:func:`run_state`); ``writer`` etc. say whether a running run's
    process is still there (:func:`writer_status`). ``elapsed`` is wall time: from the run's
    creation to ``now`` while it runs, to its ``end`` or ``stop`` record, or its last record when
    its process is gone. ``run_time`` adds up only the time its sessions ran (:func:`session_spans`),
    leaving out the pauses between the sessions of a resumed run. ``running`` counts jobs handed
    out without a result (for a stopped run or one whose process is gone: the jobs a resume runs again).
    """
    now = time.time() if now is None else now
    state, last = run_state(records)
    writer = writer_status(run_dir, records)
    created = records[0]["created"]
    end = _last_time(records) if writer["writer"] == liveness.WRITER_GONE else now
    spans = session_spans(records, end)
    successful = [r for r in result.runs if r.loss is not None]
    best = min(successful, key=lambda r: r.loss, default=None)
    stop_signal = last.get("signal") if state == "stopped" else None
    return {
        "run_dir": str(run_dir),
        "state": state,
        "signal": stop_signal,
        "signal_name": _signal_name(stop_signal),
        **writer,
        "created": created,
        "elapsed": (end if last is None else last.get("time", now)) - created,
        "run_time": sum(stop - start for start, stop in spans),
        "sessions": len(spans),
        "last_record_age": now - _last_time(records),
        "finished": len(result.runs),
        "running": len(unfinished_jobs(records)),
        "failed": len(result.failed_runs()),
        "best_loss": None if best is None else best.loss,
        "best_config_id": None if best is None else list(best.config_id),
        "best_budget": None if best is None else best.budget,
    }


_TIME_KEYS = ("created", "started", "submitted", "finished", "time")


def _last_time(records: list[dict[str, Any]]) -> float:
    """The latest time stamp written in any record."""
    return max(_record_times(records))


def _record_times(records: list[dict[str, Any]]) -> list[float]:
    return [value for record in records for key in _TIME_KEYS if isinstance(value := record.get(key), (int, float))]


def session_spans(records: list[dict[str, Any]], open_end: float) -> list[tuple[float, float]]:
    """``(start, end)`` of each session of the run: from the header (the first) or its ``session``
    record to its ``stop`` or ``end`` record; a session killed without one (SIGKILL, a crash) ends
    at its last record, and one still open (the latest, running) at ``open_end``."""
    spans: list[tuple[float, float]] = []
    start: float | None = None
    latest = records[0]["created"]  # the latest time stamp so far
    first_session = True
    for record in records:
        kind = record.get("type")
        if kind == "header":
            start = record["created"]
        elif kind == "session" and first_session:  # the first session's span began with the header
            first_session = False
        elif kind == "session":
            if start is not None:  # the session before was killed: it ended at its last record
                spans.append((start, latest))
            start = record.get("started", latest)
        elif kind in ("stop", "end") and start is not None:
            spans.append((start, record.get("time", latest)))
            start = None
        latest = max([latest, *_record_times([record])])
    if start is not None:
        spans.append((start, max(open_end, start)))
    return spans


def _signal_name(number: Any) -> str | None:
    if number is None:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def format_status(status: dict[str, Any]) -> str:
    """``status`` (see :func:`run_status`) as text for a person."""
    state, writer = status["state"], status.get("writer")
    if state == "stopped":
        state = f"stopped by {status['signal_name']}; run again with resume=True to continue"
    elif writer == liveness.WRITER_GONE:
        state = _gone_phrase(status)
    elif state == "running":
        state = f"running (last record {_duration(status['last_record_age'])} ago)"
        state += f" {_elsewhere_phrase(status)}" if writer == liveness.WRITER_ELSEWHERE else ""
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
    records, result = load_run_or_logs(args.run_dir)
    summary = summarize(records, result, args.run_dir) if records is not None else summarize_logs(result, args.run_dir)
    if args.json:
        _print_json(summary)
    else:
        print(format_report(summary))
    return 0


def status_command(args: argparse.Namespace) -> int:
    """``status RUN_DIR [--json]``."""
    records, result = load_run(args.run_dir)
    status = run_status(records, result, args.run_dir)
    if args.json:
        _print_json(status)
    else:
        print(format_status(status))
    return 0


_LOGS_TOO = "a run directory (holding journal.jsonl), or one of HpBandSter's logs (configs.json, results.json)"


def _add_run_dir_command(subparsers: Any, name: str, summary: str, description: str,
                         handler: Callable[[argparse.Namespace], int],
                         run_dir_help: str = "a run directory (holding journal.jsonl)") -> None:
    parser = subparsers.add_parser(name, help=summary, description=description)
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
                  "to resume.")
    parser = subparsers.add_parser("run", help="run an optimisation (on every rank under mpiexec/srun)",
                                   description=runner.__doc__.split("\n\n")[0], epilog=exit_codes)
    runner.add_arguments(parser)
    parser.set_defaults(handler=runner.run_command)


def plot_command(args: argparse.Namespace) -> int:
    """``plot RUN_DIR [--out DIR]``: every plot of :mod:`mpibohb.visualization` as a PNG file.

    A plot that cannot be drawn from the run (e.g. one budget only) is skipped with a line saying
    why. Without matplotlib: a one-line error and exit code 2.
    """
    try:
        from . import visualization

        visualization.require_matplotlib()
    except ImportError as exc:
        print(f"mpibohb: {exc}", file=sys.stderr)
        return EXIT_ERROR
    _records, result = load_run_or_logs(args.run_dir)
    out = Path(args.out) if args.out is not None else Path(args.run_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    plt = _pyplot_for_files()
    for name in visualization.PLOTS:
        try:
            figure = getattr(visualization, name)(result)
        except ValueError as exc:
            print(f"skipped {name}: {exc}")
            continue
        path = out / f"{name}.png"
        partial = out / f".{name}.png.partial"  # a viewer watching the folder never sees half a file
        try:
            figure.savefig(partial, dpi=100, format="png")
        finally:
            plt.close(figure)  # pyplot keeps every figure until it is closed
        os.replace(partial, path)
        print(path)
    return 0


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
                                               "as PNG files, print their paths and the plots skipped.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help=_LOGS_TOO)
    parser.add_argument("--out", metavar="DIR", default=None, help="where to write the PNG files "
                        "(default: RUN_DIR/plots)")
    parser.set_defaults(handler=plot_command)


COMMANDS: list[Callable[[Any], None]] = [add_report_command, add_status_command, add_run_command,
                                         add_plot_command]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command of :data:`COMMANDS`."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="mpibohb", description="BOHB, HyperBand and RandomSearch over MPI.")
    parser.add_argument("--version", action="version", version=f"mpibohb {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    subparsers.required = True
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


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
        print(f"mpibohb: {message}", file=sys.stderr)
        return EXIT_ERROR
