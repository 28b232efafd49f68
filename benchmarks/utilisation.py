"""Worker utilisation of mpibohb and of HpBandSter 0.7.4 with K workers on a sleep workload.

    python -m benchmarks.utilisation [--workers 4 8 16 32] [--n_iterations 40] [--scale 0.1]
                                     [--long_iterations 120] [--quick] [--json OUT]

Workload (the same settings for both engines): BOHB on the quickstart's toy space (one float x in
[0, 1], loss x + 1/budget), budgets 1..27, eta 3, ``--n_iterations`` brackets; an evaluation sleeps
budget * scale seconds (default 0.1 s to 2.7 s) and notes, in its ``info``, when its sleep began
and ended and which worker ran it. Sleeping needs no CPU, so 33 processes fit on 2 cores.
HpBandSter's BOHB rounds bracket sizes down where mpibohb rounds up (the Hyperband paper), so it
runs ~5% fewer evaluations and less sleep: compare busy fractions, not walls alone. After the
sweep over K, one more run per engine at the largest K with ``--long_iterations`` brackets shows
how much of the idle time is the tail of the last brackets, which weighs less in a longer run.

Engines: mpibohb under ``mpiexec -n K+1`` (rank 0 optimises, ranks 1..K evaluate), launched with
this project's Python; "mpibohb fill_tail" the same with ``BOHB(..., fill_tail=True)``, which
starts the last brackets early instead of idling through their stages. HpBandSter in
``benchmarks/.hpbandster-venv`` (``bash benchmarks/hpbandster_env.sh``), in its "threads" set-up:
K worker threads in one process, a Pyro4 nameserver on 127.0.0.1 (free port),
``run(min_n_workers=K)``. Each run is a subprocess in its own process group with a timeout; one
that does not finish is killed and reported as "hung".

Figures per K and engine, computed by one function from the runs of the ``Result`` the run returns:

* evaluations: ``len(get_all_runs())``.
* run() wall: the child's clock around the ``run`` call. mpibohb: after a barrier of all ranks
  (MPI start-up and imports excluded; the final stop messages to the workers included).
  HpBandSter: after the nameserver started and all K workers registered (``wait_for_workers`` is
  called, and timed, before), so only the optimisation.
* span: max finished - min submitted, from the runs' ``time_stamps``.
* busy: sum over runs of (finished - started) / (K * span). The stamps are not taken at the same
  place: mpibohb's started and finished are read on the worker around ``compute``; HpBandSter's
  by its dispatcher when it sends the job and when the result's callback arrives, so they also
  hold the Pyro round trip.
* busy before last bracket: the same over [min submitted, t_last], t_last being when the first
  job of the last bracket was submitted. Until then an idle worker can always get a job (both
  engines start a new bracket when every open one waits), so idleness there is dispatch overhead:
  master and communication. After it, idleness is also the tail: stage barriers of the last
  brackets and their last long evaluations.
* gap: median time a worker spends between the end of one sleep and the start of its next,
  over the pairs whose next sleep began before t_last; read inside the worker function, so the
  same measurement for both engines. It is the per-job cost of master plus communication.
* sleep / K: the run's seconds of sleep divided by K, the shortest possible span.
* schedule bound (mpibohb rows only): busy fraction and span of ``schedule_bound``, a simulation
  that drives mpibohb's own ``Optimizer`` with K virtual workers and no master or communication
  cost. Between it and the measured busy fraction lies dispatch overhead; between it and 100% the
  schedule's tail. It is mpibohb's schedule: HpBandSter's brackets are smaller, so it has none.
* load: the 1-minute load average when the run ended: other jobs on the machine, and this run's own
  start-up (K+1 Python processes importing numpy and ConfigSpace under mpiexec).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.processes import run_in_group

ROOT = Path(__file__).resolve().parent.parent
HPBANDSTER_PYTHON = Path(__file__).resolve().parent / ".hpbandster-venv" / "bin" / "python"
MIN_BUDGET, MAX_BUDGET, ETA = 1.0, 27.0, 3
ENGINES = ("mpibohb", "mpibohb fill_tail", "HpBandSter")  # "mpibohb fill_tail": BOHB(..., fill_tail=True)
DEFAULT_ITERATIONS = 40  # of the sweep over K; rows written before they carried "n_iterations" had it


def toy_loss(config: dict[str, Any], budget: float) -> float:
    """The toy problem's loss: x + 1 / budget."""
    return float(config["x"]) + 1.0 / budget


def evaluate(config: dict[str, Any], budget: float, scale: float) -> dict[str, Any]:
    """The worker of both engines: sleep budget * scale seconds, say when and where."""
    start = time.time()
    time.sleep(budget * scale)
    who = f"{os.getpid()}:{threading.get_ident()}"
    return {"loss": toy_loss(config, budget), "info": {"t0": start, "t1": time.time(), "who": who}}


def toy_space() -> Any:
    """The toy problem's ConfigSpace: one float x in [0, 1]."""
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=0)
    cs.add(CS.UniformFloatHyperparameter("x", lower=0, upper=1))
    return cs


def mpibohb_bohb(fill_tail: bool = False) -> Any:
    """mpibohb's BOHB on the toy space, as the mpibohb runs and ``schedule_bound`` use it."""
    from mpibohb import BOHB

    return BOHB(toy_space(), min_budget=MIN_BUDGET, max_budget=MAX_BUDGET, eta=ETA, seed=0, fill_tail=fill_tail,
                model="hpbandster")  # like for like with HpBandSter's BOHB


def schedule_bound(workers: int, n_iterations: int, scale: float, fill_tail: bool = False) -> dict[str, float]:
    """Busy fraction and span that a dispatcher with zero master and communication cost reaches
    with mpibohb's schedule and job order: ``bound_busy`` and ``bound_span`` (seconds).

    ``mpibohb.simulate`` runs mpibohb's real loop and optimizer (same brackets, same rule for
    starting one, oldest bracket first; with ``fill_tail``, that option) with ``workers`` virtual
    workers; an evaluation takes exactly budget * scale. It isolates the schedule's tail (the
    stage barriers of the last brackets) from dispatch overhead, which it does not have.
    """
    from benchmarks.simulated import simulated_run

    run = simulated_run(mpibohb_bohb(fill_tail), n_iterations, workers, toy_loss,
                        lambda config, budget: budget * scale)
    return {"bound_busy": run.busy, "bound_span": run.span}


def hyperband_sleep(n_iterations: int, scale: float) -> tuple[float, float]:
    """Total sleep of ``n_iterations`` Hyperband brackets and the longest chain of sleeps in one
    bracket, in seconds. mpibohb's plan (ceil, as in the Hyperband paper); HpBandSter's BOHB
    rounds the bracket sizes down, so it runs a few evaluations less."""
    s_max = int(math.floor(math.log(MAX_BUDGET / MIN_BUDGET) / math.log(ETA) + 1e-9))
    total = 0.0
    for iteration in range(n_iterations):
        s = s_max - iteration % (s_max + 1)
        n0 = int(math.ceil((s_max + 1) / (s + 1) * ETA ** s))
        total += sum(int(n0 * ETA ** -j) * MAX_BUDGET * ETA ** (j - s) for j in range(s + 1))
    chain = sum(MAX_BUDGET * ETA ** -j for j in range(s_max + 1))
    return total * scale, chain * scale


def run_records(runs: list[Any], time_ref: float) -> list[dict[str, Any]]:
    """The runs of a ``Result`` as plain dicts; sleep times relative to the run's time reference."""
    records = []
    for run in runs:
        info = run.info or {}
        records.append({"iteration": run.config_id[0], "budget": float(run.budget),
                        "submitted": run.time_stamps["submitted"], "started": run.time_stamps["started"],
                        "finished": run.time_stamps["finished"], "t0": info.get("t0", math.nan) - time_ref,
                        "t1": info.get("t1", math.nan) - time_ref, "who": info.get("who", "")})
    return records


def mpibohb_child(workers: int, n_iterations: int, scale: float, out: str, fill_tail: bool = False) -> None:
    """Runs on every rank under mpiexec; rank 0 writes the runs to ``out``."""
    from mpi4py import MPI

    opt = mpibohb_bohb(fill_tail)
    MPI.COMM_WORLD.Barrier()
    start = time.perf_counter()
    result = opt.run(n_iterations=n_iterations, worker=lambda config, budget: evaluate(config, budget, scale))
    wall = time.perf_counter() - start
    if result is not None:
        records = run_records(result.get_all_runs(), result.HB_config["time_ref"])
        Path(out).write_text(json.dumps({"wall": wall, "setup": 0.0, "runs": records}))


def hpbandster_child(workers: int, n_iterations: int, scale: float, out: str) -> None:
    """One HpBandSter run with ``workers`` threads in this process; writes the runs to ``out``."""
    import logging

    import ConfigSpace as CS
    import hpbandster.core.nameserver as hpns
    import numpy as np
    from hpbandster.core.worker import Worker
    from hpbandster.optimizers import BOHB

    logging.basicConfig(level=logging.ERROR)

    class SleepWorker(Worker):
        def compute(self, config: Any, budget: float, **kwargs: Any) -> Any:
            return evaluate(config, budget, scale)

    cs = CS.ConfigurationSpace(seed=0)
    cs.add_hyperparameters([CS.UniformFloatHyperparameter("x", lower=0, upper=1)])
    np.random.seed(0)
    setup = time.perf_counter()
    run_id = f"utilisation{os.getpid()}"
    nameserver = hpns.NameServer(run_id=run_id, host="127.0.0.1", port=0)  # kept: it stops when collected
    host, port = nameserver.start()
    threads = [SleepWorker(run_id=run_id, nameserver=host, nameserver_port=port, host="127.0.0.1", id=index)
               for index in range(workers)]
    for thread in threads:
        thread.run(background=True)
    bohb = BOHB(configspace=cs, run_id=run_id, nameserver=host, nameserver_port=port, host="127.0.0.1",
                min_budget=MIN_BUDGET, max_budget=MAX_BUDGET, eta=ETA)
    bohb.wait_for_workers(workers)
    setup = time.perf_counter() - setup
    start = time.perf_counter()
    result = bohb.run(n_iterations=n_iterations, min_n_workers=workers)
    wall = time.perf_counter() - start
    records = run_records(result.get_all_runs(), result.HB_config["time_ref"])
    Path(out).write_text(json.dumps({"wall": wall, "setup": setup, "runs": records}))
    os._exit(0)  # Pyro4 threads linger; the figures are written


def launch(command: list[str], out: Path, timeout: float, env: dict[str, str] | None = None) -> dict | str:
    """Run ``command`` in its own process group; the JSON it wrote to ``out``, or why there is none."""
    finished = run_in_group(command, timeout, env=env, cwd=ROOT)
    if finished.timed_out:
        if out.exists():  # finished, then hung while shutting down
            return dict(json.loads(out.read_text()), note="hung after run() returned; killed")
        return f"hung (killed after {timeout:.0f} s)"
    if out.exists():
        return json.loads(out.read_text())
    return f"failed (exit {finished.returncode}): {finished.last_error_line()}"


def run_engine(engine: str, workers: int, n_iterations: int, scale: float, timeout: float) -> dict | str:
    """One run of ``engine`` with ``workers`` workers, in a subprocess."""
    settings = ["--workers", str(workers), "--n_iterations", str(n_iterations), "--scale", str(scale)]
    with tempfile.TemporaryDirectory(prefix="utilisation") as tmp:
        out = Path(tmp) / "result.json"
        child = ["-m", "benchmarks.utilisation", "--child", engine, "--out", str(out), *settings]
        if engine == "HpBandSter":
            if not HPBANDSTER_PYTHON.exists():
                return "HpBandSter venv missing: run bash benchmarks/hpbandster_env.sh"
            return launch([str(HPBANDSTER_PYTHON), *child], out, timeout)
        mpiexec = Path(sys.executable).parent / "mpiexec"
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   OMPI_MCA_rmaps_base_oversubscribe="1", PYTHONPATH=str(ROOT))
        command = [str(mpiexec if mpiexec.exists() else "mpiexec"), "-n", str(workers + 1), sys.executable, *child]
        return launch(command, out, timeout, env)


def busy_until(runs: list[dict[str, Any]], start: float, end: float) -> float:
    """Worker-seconds of (started, finished) intervals that fall inside [start, end]."""
    return sum(max(0.0, min(r["finished"], end) - max(r["started"], start)) for r in runs)


def median_gap(runs: list[dict[str, Any]], before: float) -> float:
    """Median seconds between a worker's end of sleep and its next start, for starts before ``before``."""
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_worker.setdefault(run["who"], []).append(run)
    gaps = []
    for own in by_worker.values():
        own.sort(key=lambda r: r["t0"])
        gaps += [b["t0"] - a["t1"] for a, b in zip(own, own[1:]) if b["t0"] < before]
    return statistics.median(gaps) if gaps else math.nan


def metrics(runs: list[dict[str, Any]], workers: int) -> dict[str, float]:
    """Span, busy fractions and gap of one run, the same for both engines."""
    first = min(r["submitted"] for r in runs)
    span = max(r["finished"] for r in runs) - first
    last_iteration = max(r["iteration"] for r in runs)
    t_last = min(r["submitted"] for r in runs if r["iteration"] == last_iteration)
    saturated = t_last - first
    return {"span": span, "busy": busy_until(runs, first, first + span) / (workers * span),
            "busy_before_last": busy_until(runs, first, t_last) / (workers * saturated) if saturated > 0 else math.nan,
            "before_last_share": saturated / span, "gap_ms": 1e3 * median_gap(runs, t_last),
            "ideal": sum(r["t1"] - r["t0"] for r in runs) / workers}


def row_of(engine: str, workers: int, outcome: dict | str) -> dict[str, Any]:
    """The row for the table and the JSON file."""
    row: dict[str, Any] = {"workers": workers, "engine": engine, "load": os.getloadavg()[0]}
    if isinstance(outcome, str):
        return dict(row, evaluations=None, wall=None, busy=None, status=outcome)
    figures = metrics(outcome["runs"], workers)
    return dict(row, evaluations=len(outcome["runs"]), wall=outcome["wall"], setup=outcome["setup"], **figures,
                status=outcome.get("note", "ok"))


def bound_cell(row: dict[str, Any]) -> str:
    """The schedule bound of a row, "-" where there is none (HpBandSter, rows of older runs)."""
    if row.get("bound_busy") is None:
        return "-"
    return f"{row['bound_busy']:.1%} (span {row['bound_span']:.1f} s)"


def format_row(row: dict[str, Any]) -> str:
    """One markdown table line."""
    if row["evaluations"] is None:
        return (f"| {row['workers']} | {row['n_iterations']} | {row['engine']} | | | | | | {bound_cell(row)} | | |"
                f" {row['load']:.1f} | {row['status']} |")
    return (f"| {row['workers']} | {row['n_iterations']} | {row['engine']} | {row['evaluations']} | {row['ideal']:.1f}"
            f" | {row['wall']:.1f} | "
            f"{row['span']:.1f} | {row['busy']:.1%} | {bound_cell(row)} | "
            f"{row['busy_before_last']:.1%} ({row['before_last_share']:.0%} of span) | "
            f"{row['gap_ms']:.1f} | {row['load']:.1f} | {row['status']} |")


def machine_line() -> str:
    import mpi4py
    import numpy

    return (f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {numpy.__version__}, mpi4py {mpi4py.__version__}, load average {os.getloadavg()[0]:.1f}; "
            f"{hpbandster_line()}")


def hpbandster_line() -> str:
    """Where HpBandSter's runs come from, or that its virtualenv is missing (its rows then fail)."""
    venv = HPBANDSTER_PYTHON.parent.parent
    if HPBANDSTER_PYTHON.exists():
        return f"HpBandSter 0.7.4 in {venv.name}"
    return f"HpBandSter: no {venv} (make it with: bash benchmarks/hpbandster_env.sh)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", help="numbers of workers K (default: 4 8 16 32)")
    parser.add_argument("--n_iterations", type=int, default=DEFAULT_ITERATIONS,
                        help=f"BOHB iterations (brackets) per run of the sweep over K (default {DEFAULT_ITERATIONS})")
    parser.add_argument("--scale", type=float, default=0.1, help="seconds of sleep per unit of budget")
    parser.add_argument("--long_iterations", type=int, default=120,
                        help="then one run per engine at the largest K with this many iterations, where the last"
                             " brackets' tail weighs less (default 120; 0: none)")
    parser.add_argument("--timeout", type=float, help="seconds per run before it is hung (default: from the work)")
    parser.add_argument("--quick", action="store_true",
                        help="K 4 8 unless given, 6 iterations (long run: 12), scale 0.05: about a minute")
    parser.add_argument("--json", help="write the rows to this file as JSON")
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_iterations, args.long_iterations, args.scale = 6, min(args.long_iterations, 12), 0.05
    args.workers = args.workers or ([4, 8] if args.quick else [4, 8, 16, 32])
    return args


def measure(workers: int, n_iterations: int, scale: float, timeout: float | None) -> list[dict[str, Any]]:
    """One run per engine with ``workers`` workers, printed as it ends; mpibohb's rows have the bound."""
    total, chain = hyperband_sleep(n_iterations, scale)
    timeout = timeout or 90 + 3 * (total / workers + chain)
    bounds = {engine: schedule_bound(workers, n_iterations, scale, fill_tail=engine.endswith("fill_tail"))
              for engine in ENGINES if engine.startswith("mpibohb")}  # before the runs: they take CPU
    rows = []
    for engine in ENGINES:
        rows.append(row_of(engine, workers, run_engine(engine, workers, n_iterations, scale, timeout)))
        rows[-1]["n_iterations"] = n_iterations
        rows[-1].update(bounds.get(engine, {}))
        print(format_row(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        if args.child == "HpBandSter":
            hpbandster_child(args.workers[0], args.n_iterations, args.scale, args.out)
        else:
            mpibohb_child(args.workers[0], args.n_iterations, args.scale, args.out, args.child.endswith("fill_tail"))
        return
    total, chain = hyperband_sleep(args.n_iterations, args.scale)
    print(machine_line())
    print(f"BOHB, toy space (x in [0, 1]), budgets {MIN_BUDGET:g}..{MAX_BUDGET:g}, eta {ETA}, "
          f"{args.n_iterations} iterations, sleep budget * {args.scale:g} s ({MIN_BUDGET * args.scale:g}.."
          f"{MAX_BUDGET * args.scale:g} s), {total:.0f} s of sleep in all (mpibohb's brackets;\n"
          f"HpBandSter's BOHB rounds bracket sizes down: fewer evaluations), longest chain in a bracket {chain:.1f} s."
          " Figures are noisy: the 2 cores are shared with other jobs (see load).\nschedule bound: busy fraction"
          " (and span) of mpibohb's schedule simulated with zero master and communication cost.\n")
    print("| workers K | iterations | engine | evaluations | sleep / K (s) | run() wall (s) | span (s) |"
          " busy fraction | schedule bound | busy before last bracket | median gap (ms) | load | status |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    rows, began = [], time.perf_counter()
    for workers in args.workers:
        rows += measure(workers, args.n_iterations, args.scale, args.timeout)
    if args.long_iterations:
        rows += measure(max(args.workers), args.long_iterations, args.scale, args.timeout)
    print()
    setups = [f"K={r['workers']}: {r['setup']:.2f} s" for r in rows if r["engine"] == "HpBandSter" and "setup" in r]
    if setups:
        print("HpBandSter nameserver + worker registration (not in run() wall): " + ", ".join(setups))
    print(f"total time of this benchmark: {time.perf_counter() - began:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
