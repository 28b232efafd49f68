"""What ``report`` and ``status`` show of a run, as JSON-serialisable dicts, read from its journal
(or HpBandSter's logs) without touching the run. :mod:`mpibohb.cli` prints them."""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from typing import Any

from . import liveness
from .executors.serial import STUCK_ENDS_PROCESS
from .journal import JOURNAL, JournalError, RunState, fold, read_journal
from .result import (
    Result,
    error_headline,
    has_hpbandster_logs,
    result_from_hpbandster_logs,
    result_from_state,
)

_NO_WRITER = {"writer": None, "writer_pid": None, "writer_host": None, "ended_by_watchdog": False,
              "resuming_pid": None}


def load_run(run_dir: str | Path) -> tuple[RunState, Result]:
    """The journal's state and the :class:`Result` of the run in ``run_dir``.

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
    records = read_journal(path)  # its errors name the file
    try:
        state = fold(records)
        return state, result_from_state(state)
    except JournalError as exc:
        raise JournalError(f"{path}: {exc}") from None
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise JournalError(f"{path}: malformed journal ({type(exc).__name__}: {exc})") from None


def load_run_or_logs(run_dir: str | Path) -> tuple[RunState | None, Result]:
    """As :func:`load_run`; for a directory of HpBandSter's logs ``(None, its Result)``."""
    if has_hpbandster_logs(Path(run_dir)):
        return None, result_from_hpbandster_logs(run_dir)
    return load_run(run_dir)


def writer_status(run_dir: str | Path, state: RunState) -> dict[str, Any]:
    """Whether the process writing a running run is still there, without touching the run.

    Returns ``{"writer": ..., "writer_pid": pid or None, "writer_host": host or None,
    "ended_by_watchdog": bool, "resuming_pid": pid or None}``: ``ended_by_watchdog``, the last
    record is a serial job its watchdog failed before it ended the process
    (:data:`~mpibohb.executors.serial.STUCK_ENDS_PROCESS`); ``resuming_pid``, for a run the journal
    says has stopped or finished, a process of this host that holds its lock (a resume replaying
    the journal; -1 when ``/proc/locks`` names no pid); ``writer`` is ``None`` unless the journal
    says the run is running (:attr:`RunState.state`), else one of (see :mod:`mpibohb.liveness`)

    * ``"alive"``: its process exists on this host, or a process here holds the lock;
    * ``"gone"``: the lock file names a process of this host that no longer exists (or is a
      zombie) and no process here holds the lock: killed or crashed without a ``stop`` record;
    * ``"elsewhere"``: the lock file names another host, which this one cannot check;
    * ``"unknown"``: no lock file naming the current session's process (a journal copied without
      it, a file system that cannot lock, or a resume just writing it).

    It only reads, never takes the run's lock (:mod:`mpibohb.liveness` says why and how).
    """
    if state.state != "running":
        return dict(_NO_WRITER, resuming_pid=liveness.locking_pid(run_dir))
    writer = liveness.writer_of(run_dir, [session.get("started") for session in state.sessions])
    writer["resuming_pid"] = None
    last_error = state.results[-1][0].get("error") if state.results else None
    writer["ended_by_watchdog"] = (writer["writer"] == liveness.WRITER_GONE and isinstance(last_error, str)
                                   and STUCK_ENDS_PROCESS in last_error)
    return writer


# ---------------------------------------------------------------- report


def summarize(state: RunState, result: Result, run_dir: str) -> dict[str, Any]:
    """Everything ``report`` shows, as one JSON-serialisable dict."""
    settings = state.header["settings"]
    return {
        "run_dir": str(run_dir),
        "state": state.state,
        **writer_status(run_dir, state),
        "created": state.header["created"],
        "simulated": any(session.get("executor") == "SimulatedExecutor" for session in state.sessions),
        "sessions": len(state.sessions),
        "n_iterations": max((session.get("n_iterations", 0) for session in state.sessions), default=0),
        "settings": settings,
        "n_workers": _latest_workers(state),
        **_runs_summary(result, settings),
    }


def summarize_logs(result: Result, run_dir: str) -> dict[str, Any]:
    """What ``report`` shows of a run HpBandSter logged: the keys of :func:`summarize`, those the
    logs do not hold (optimizer, seed, workers, sessions) ``None``."""
    settings = dict(result.settings)
    return {"run_dir": str(run_dir), "state": "logged by HpBandSter (no journal)", **_NO_WRITER,
            "created": settings.get("time_ref") or 0.0, "simulated": False, "sessions": None,
            "n_iterations": result.num_iterations(), "settings": settings, "n_workers": None,
            **_runs_summary(result, settings)}


def _runs_summary(result: Result, settings: dict[str, Any]) -> dict[str, Any]:
    """The part of a report that the runs give."""
    runs = result.get_all_runs()
    max_budget = settings.get("max_budget")
    used = result.budget_spent()
    return {
        "iterations": result.num_iterations(),
        "configurations": len(result.id2config),
        "runs": len(runs),
        "failed": len(result.failed_runs()),
        "budgets": _budget_table(result),
        "failures": [{"config_id": list(r.config_id), "budget": r.budget, "error": error_headline(r.error_logs)}
                     for r in result.failed_runs()],
        "budget_used": used,
        "budget_used_in_max_budget": used / max_budget if max_budget else None,
        "budget_used_increments": (result.budget_spent(increments_only=True)
                                   if any(r.previous_budget is not None for r in runs) else None),
        "incumbent": _incumbent(result),
        "trajectory": _trajectory(result),
    }


def _latest_workers(state: RunState) -> Any:
    """The workers of the latest session that journaled them, else the header's (a resume may use
    other ranks)."""
    counts = [session["n_workers"] for session in state.sessions if "n_workers" in session]
    return counts[-1] if counts else state.header["settings"].get("n_workers")


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
    best = result.get_incumbent_run()
    if best is None:
        return None
    return {"config_id": list(best.config_id), "loss": best.loss, "budget": best.budget,
            "config": result.id2config[best.config_id]["config"]}


def _trajectory(result: Result) -> list[dict[str, Any]]:
    """How the incumbent changed (:meth:`Result.get_incumbent_history`), as a list of points."""
    trajectory = result.get_incumbent_history()
    return [{"time": t, "budget": b, "loss": x, "config_id": list(c)}
            for c, t, b, x in zip(trajectory["config_ids"], trajectory["times_finished"],
                                  trajectory["budgets"], trajectory["losses"])]


# ---------------------------------------------------------------- status


def run_status(state: RunState, result: Result, run_dir: str, now: float | None = None) -> dict[str, Any]:
    """Everything ``status`` shows, as one JSON-serialisable dict.

    ``state`` is the journal's (:attr:`RunState.state`); ``writer`` etc. say whether a running
    run's process is still there (:func:`writer_status`). ``elapsed`` is wall time: from the
    run's creation to ``now`` while it runs, to its ``end`` or ``stop`` record, or its last record
    when its process is gone. ``run_time`` adds up only the time its sessions ran
    (:attr:`RunState.spans`), leaving out the pauses between the sessions of a resumed run.
    ``running`` counts jobs handed out without a result (for a stopped run or one whose process
    is gone: the jobs a resume runs again).
    """
    now = time.time() if now is None else now
    writer = writer_status(run_dir, state)
    created = state.header["created"]
    end = state.last_time if writer["writer"] == liveness.WRITER_GONE else now
    spans = state.session_spans(end)
    successful = [r for r in result.runs if r.loss is not None]
    best = min(successful, key=lambda r: math.inf if r.loss is None else r.loss, default=None)
    stop_signal = state.ending.get("signal") if state.state == "stopped" and state.ending else None
    return {
        "run_dir": str(run_dir),
        "state": state.state,
        "signal": stop_signal,
        "signal_name": _signal_name(stop_signal),
        "stop_reason": state.ending.get("reason") if state.state == "stopped" and state.ending else None,
        **writer,
        "created": created,
        "elapsed": (end if state.ending is None else state.ending.get("time", now)) - created,
        "run_time": sum(stop - start for start, stop in spans),
        "sessions": len(spans),
        "last_record_age": now - state.last_time,
        "finished": len(result.runs),
        "running": len(state.open_jobs),
        "failed": len(result.failed_runs()),
        "best_loss": None if best is None else best.loss,
        "best_config_id": None if best is None else list(best.config_id),
        "best_budget": None if best is None else best.budget,
    }


def _signal_name(number: Any) -> str | None:
    if number is None:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
