"""Seeded serial runs, written as JSON: what they evaluated and what they journaled.

    python tests/scripts/seeded_runs.py OUT.json WORK_DIR            # every scenario, in full
    python tests/scripts/seeded_runs.py --digests OUT.json WORK_DIR  # the same, as digests
    python tests/scripts/seeded_runs.py --phase NAME RUN_DIR         # one process of a scenario (internal)

A guard for refactoring: ``tests/test_same_evaluations.py`` runs this and compares the digests
with ``tests/data/seeded_runs.json``, recorded with the code before the journal's records got
one definition (commit 06f1beb). The script uses only the public API, ``run_master`` and the
plain JSON of a run directory, so that it runs on the code before and after. Per scenario it
keeps the runs (config id, budget, loss, the error's first line), the configurations, the
journal's sequence of record types, the lines of HpBandSter's files and ``report``/``status
--json``, without times; the digests are a hash of each of these, with the counts in clear.
When a digest differs, write the full form on both commits and compare. Regenerate the digests
only for a change of what runs evaluate that is meant (a new sampler, say), and say so.

Scenarios: BOHB, HyperBand and RandomSearch, each with and without ``fill_tail``; a warm start
from the BOHB run; a resume after a journal torn while a job was open; a job that kills its
process three times (abandoned on the fourth session); a run stopped twice by SIGTERM in compute.
One worker cannot show ``fill_tail``'s choices nor jobs that run side by side, so the ``sim_``
scenarios drive the master (``mpibohb.session.run_master``) with :class:`SimExecutor`: K virtual
workers on a simulated clock (a job takes its budget), deterministic where threads and ranks are
not: a fill_tail run stopped at 8 workers and resumed at 3, a job that kills the process beside
another (one process: both are blamed until each runs alone), and a job whose worker rank dies
twice (``lost`` evidence under an executor named ``MPIExecutor``).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import io
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import ConfigSpace as CS

from mpibohb import BOHB, EXIT_STOPPED, HyperBand, RandomSearch, load_result
from mpibohb.cli import main as cli_main
from mpibohb.evaluation import evaluate as evaluate_job
from mpibohb.session import run_master
from mpibohb.stopping import RunStopped, StopRequested

CLASSES = {"bohb": BOHB, "hyperband": HyperBand, "randomsearch": RandomSearch}
HOST = socket.gethostname()
TIME_KEYS = {"created", "elapsed", "run_time", "last_record_age", "time", "run_dir"}


def space() -> CS.ConfigurationSpace:
    return CS.ConfigurationSpace({"x": (0.0, 1.0), "c": ["a", "b"]}, seed=0)


def evaluate(config: dict, budget: float) -> dict:
    """Deterministic; fails for large ``x`` with ``c == "b"`` (an exception) and ``x > 0.93`` (NaN)."""
    if config["c"] == "b" and config["x"] > 0.7:
        raise ValueError(f"diverged: x={config['x']:.3f} with c=b")
    if config["x"] > 0.93:
        return {"loss": float("nan")}
    loss = (config["x"] - 0.3) ** 2 + (0.1 if config["c"] == "b" else 0.0) + 1.0 / budget
    return {"loss": loss, "info": {"budget": budget}}


def optimizer(kind: str, run_dir: Path, seed: int = 3, **extra: Any) -> Any:
    if kind == "bohb":  # the model these runs were recorded with, BOHB's default until 2026-12-04
        extra = {"model": "hpbandster", **extra}
    return CLASSES[kind](space(), min_budget=1, max_budget=9, eta=3, seed=seed, run_dir=str(run_dir), **extra)


# ---------------------------------------------------------------- one process of a scenario


def crashing(config_id: tuple, config: dict, budget: float) -> dict:
    if tuple(config_id) == (0, 0, 2) and budget == 1:
        os._exit(9)  # like a segfault or an out-of-memory kill
    return evaluate(config, budget)


def stopping(config_id: tuple, config: dict, budget: float) -> dict:
    flag = Path(os.environ["SEEDED_RUNS_STOPS"])
    if tuple(config_id) == (1, 0, 1) and budget == 3 and int(flag.read_text()) > 0:
        flag.write_text(str(int(flag.read_text()) - 1))
        os.kill(os.getpid(), signal.SIGTERM)  # a scancel while compute runs
    return evaluate(config, budget)


def phase(name: str, run_dir: Path) -> None:
    if name == "crash":
        optimizer("hyperband", run_dir, seed=2).run(n_iterations=2, worker=crashing, resume=True)
    elif name == "stop":
        optimizer("bohb", run_dir, seed=6).run(n_iterations=3, worker=stopping, resume=True)


def run_phase(name: str, run_dir: Path, expect: int, env: dict[str, str] | None = None) -> None:
    process = subprocess.run([sys.executable, __file__, "--phase", name, str(run_dir)], capture_output=True,
                             text=True, timeout=120, env={**os.environ, **(env or {})})
    if process.returncode != expect:
        raise SystemExit(f"phase {name} ended with {process.returncode}, not {expect}:\n{process.stderr[-3000:]}")


# ---------------------------------------------------------------- scenarios


def plain(kind: str, fill_tail: bool, run_dir: Path) -> None:
    optimizer(kind, run_dir, fill_tail=fill_tail).run(n_iterations=4, worker=evaluate)


def warm_start(run_dir: Path, earlier: Path) -> None:
    optimizer("bohb", run_dir, seed=5, previous_result=str(earlier)).run(n_iterations=3, worker=evaluate)


def torn_resume(run_dir: Path, fill_tail: bool) -> None:
    """Two iterations, then the journal cut after an open job with a torn line, then four."""
    optimizer("bohb", run_dir, seed=7, fill_tail=fill_tail).run(n_iterations=2, worker=evaluate)
    journal = run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    cut = max(i for i, line in enumerate(lines[:12]) if '"type":"job"' in line) + 1
    journal.write_text("".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2])
    optimizer("bohb", run_dir, seed=7, fill_tail=fill_tail).run(n_iterations=4, worker=evaluate, resume=True)


def crash_three_times(run_dir: Path) -> None:
    for _ in range(3):
        run_phase("crash", run_dir, expect=9)
    run_phase("crash", run_dir, expect=0)


def stopped_twice(run_dir: Path) -> None:
    flag = run_dir.parent / f"{run_dir.name}.stops"
    flag.write_text("2")
    for _ in range(2):
        run_phase("stop", run_dir, expect=EXIT_STOPPED, env={"SEEDED_RUNS_STOPS": str(flag)})
    run_phase("stop", run_dir, expect=0, env={"SEEDED_RUNS_STOPS": str(flag)})


def scenarios(work: Path) -> dict[str, Any]:
    """Run every scenario in ``work``; their run directories by name."""
    dirs = {}
    for kind in CLASSES:
        for fill_tail in (False, True):
            name = f"{kind}{'_fill_tail' if fill_tail else ''}"
            dirs[name] = work / name
            plain(kind, fill_tail, dirs[name])
    dirs["warm_start"] = work / "warm_start"
    warm_start(dirs["warm_start"], dirs["bohb"])
    for fill_tail in (False, True):
        name = f"torn_resume{'_fill_tail' if fill_tail else ''}"
        dirs[name] = work / name
        torn_resume(dirs[name], fill_tail)
    dirs["crash_three_times"] = work / "crash_three_times"
    crash_three_times(dirs["crash_three_times"])
    dirs["stopped_twice"] = work / "stopped_twice"
    stopped_twice(dirs["stopped_twice"])
    for fill_tail in (False, True):
        name = f"sim{'_fill_tail' if fill_tail else ''}"
        dirs[name] = work / name
        sim_fill_tail(dirs[name], fill_tail)
    for name, scenario in (("sim_deaths", sim_deaths), ("sim_lost", sim_lost)):
        dirs[name] = work / name
        scenario(dirs[name])
    return dirs


# ---------------------------------------------------------------- simulated workers


class Died(BaseException):
    """The master's process ends here (a kill): no stop record."""


class SimExecutor:
    """K virtual workers on a simulated clock; a job takes its budget, ties go by hand-out order.

    ``kills``: the (config id, budget) whose evaluation ends the process (the master too: one
    process). ``stop_after``: a stop signal arrives once that many results came in.
    """

    def __init__(self, workers: int, kills: tuple = (), stop_after: int | None = None) -> None:
        self.free, self.running, self.order, self.now = list(range(workers)), [], itertools.count(), 0.0
        self.kills, self.stop_after, self.results = set(kills), stop_after, 0
        self.journal = lambda record: None

    def set_journal(self, journal: Any) -> None:
        self.journal = journal

    def note_earlier_deaths(self, deaths: Any) -> None:
        pass  # virtual workers leave no lost records

    def note_earlier_stops(self, stops: Any) -> None:
        pass  # nor stops inside a job

    def next_worker(self) -> str:
        return f"sim-{self.free[0]}"

    def idle_count(self) -> int:
        return len(self.free)

    def submit(self, job: Any) -> None:
        worker = self.free.pop(0)
        heapq.heappush(self.running, (self.now + job.budget, next(self.order), job, worker))

    def wait(self, stop: Any, until: float | None = None) -> list:  # until: no policy here names one
        if self.stop_after is not None and self.results >= self.stop_after:
            raise StopRequested(signal.SIGTERM)
        self.now, _, job, worker = heapq.heappop(self.running)
        if (job.config_id, job.budget) in self.kills:
            self.died(job, worker)
        self.free = sorted([*self.free, worker])
        self.results += 1
        return [(job, evaluate_job(lambda cid, config, budget, wd: evaluate(config, budget), job.config_id,
                                   job.config, job.budget, ".", f"sim-{worker}"))]

    def died(self, job: Any, worker: int) -> None:
        raise Died()

    def drain(self) -> list:
        return []

    def close(self) -> None:
        pass


class MPIExecutor(SimExecutor):
    """Named so that the session record says MPI: a job's worker rank dies, the launcher ends the job."""

    def died(self, job: Any, worker: int) -> None:
        self.journal({"type": "lost", "worker": f"sim-{worker}", "reason": f"sim-{worker} ended",
                      "time": 0.0, "config_id": list(job.config_id), "budget": job.budget})
        raise Died()


def simulated(family: Any, executor: SimExecutor, n_iterations: int, workers: int) -> None:
    """One session of ``family`` with ``executor``; a stop or a death ends it as it would a process."""
    with contextlib.suppress(Died, RunStopped):
        run_master(family, executor, n_iterations, workers, resume=True, overwrite=False, previous_result=None)


def sim_fill_tail(run_dir: Path, fill_tail: bool) -> None:
    simulated(optimizer("bohb", run_dir, seed=9, fill_tail=fill_tail), SimExecutor(8, stop_after=30), 6, 8)
    simulated(optimizer("bohb", run_dir, seed=9, fill_tail=fill_tail), SimExecutor(3), 6, 3)


def sim_deaths(run_dir: Path) -> None:
    """(0, 0, 2) at budget 1 kills the process while (0, 0, 3) runs beside it."""
    for _ in range(4):
        simulated(optimizer("hyperband", run_dir, seed=2), SimExecutor(2, kills=[((0, 0, 2), 1.0)]), 2, 2)


def sim_lost(run_dir: Path) -> None:
    """(0, 0, 1) at budget 1 kills its worker rank, and with it the job, twice; three workers."""
    for _ in range(3):
        simulated(optimizer("bohb", run_dir, seed=4), MPIExecutor(3, kills=[((0, 0, 1), 1.0)]), 2, 3)


# ---------------------------------------------------------------- what a run did


def headline(error: str | None) -> str | None:
    return None if error is None else error.strip().splitlines()[0].replace(HOST, "HOST")


def without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return headline(value) if isinstance(value, str) and HOST in value else value


def cli_json(*args: str) -> Any:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main([*args, "--json"]) == 0
    return without_times(json.loads(out.getvalue()))


# fields that the report got after the digests were recorded; the guard compares what both have
# issue 21; simulated and ended_by_watchdog (report and status): 2026-12-06; resuming_pid (status): 2026-12-06;
# stop_reason (status): 2026-12-07
REPORT_FIELDS_ADDED_LATER = ("budget_used_increments", "simulated", "ended_by_watchdog", "resuming_pid", "stop_reason")
# issue 21; brackets and keep_busy: 2026-12-06
SETTINGS_ADDED_LATER = ("checkpoint_root", "keep_checkpoints", "brackets", "keep_busy")


def without_later_fields(report: dict[str, Any]) -> dict[str, Any]:
    report = {key: value for key, value in report.items() if key not in REPORT_FIELDS_ADDED_LATER}
    if isinstance(report.get("settings"), dict):
        report["settings"] = {k: v for k, v in report["settings"].items() if k not in SETTINGS_ADDED_LATER}
    return report


def lines_of(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def describe(run_dir: Path) -> dict[str, Any]:
    result = load_result(run_dir)
    results = [[cid, budget, None if res is None else res["loss"], headline(exc)]
               for cid, budget, _stamps, res, exc in lines_of(run_dir / "results.json")]
    return {
        "runs": [[list(r.config_id), r.budget, r.loss, headline(r.error_logs)] for r in result.get_all_runs()],
        "configs": [[list(cid), entry["config"], entry["config_info"]] for cid, entry in result.id2config.items()],
        "kinds": [record["type"] for record in lines_of(run_dir / "journal.jsonl")],
        "configs_json": [line[:2] for line in lines_of(run_dir / "configs.json")],
        "results_json": results,
        "report": without_later_fields(cli_json("report", str(run_dir))),
        "status": without_later_fields(cli_json("status", str(run_dir))),
    }


def digests(described: dict[str, Any]) -> dict[str, Any]:
    """Per scenario: its counts, and a hash of each part of its description."""
    def digest(value: Any) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]

    return {name: {"runs": len(part["runs"]), "failed": sum(run[2] is None for run in part["runs"]),
                   "records": len(part["kinds"]), "digests": {key: digest(value) for key, value in part.items()}}
            for name, part in described.items()}


def main(out: Path, work: Path, as_digests: bool) -> None:
    work.mkdir(parents=True, exist_ok=True)
    described = {name: describe(run_dir) for name, run_dir in scenarios(work).items()}
    if as_digests:
        described = digests(described)
    out.write_text("{\n" + ",\n".join(f"{json.dumps(name)}: {json.dumps(value, sort_keys=True)}"
                                       for name, value in described.items()) + "\n}\n")


if __name__ == "__main__":
    if sys.argv[1] == "--phase":
        phase(sys.argv[2], Path(sys.argv[3]))
    elif sys.argv[1] == "--digests":
        main(Path(sys.argv[2]), Path(sys.argv[3]), as_digests=True)
    else:
        main(Path(sys.argv[1]), Path(sys.argv[2]), as_digests=False)
