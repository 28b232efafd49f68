"""The master's memory as evaluations accumulate: mpibohb and HpBandSter 0.7.4.

    python -m benchmarks.memory                              # 10,000 and 100,000 evaluations
    python -m benchmarks.memory --quick                      # 1,000 and 10,000, about a minute
    python -m benchmarks.memory --sizes 10000 --json rows.json

Run it with the project's virtualenv; the HpBandSter rows run in benchmarks/.hpbandster-venv
(made by benchmarks/hpbandster_env.sh; a row says so when it is missing).

Every row is one fresh subprocess (its own process group, killed at its timeout), run one at a
time. It imports everything, builds the search space and the optimizer, warms up (mpibohb: a
separate one-iteration run; HpBandSter: iteration 0 on the same master, whose runs are not
counted), then reads its resident set size (VmRSS in /proc/self/status) after a garbage
collection as the baseline, does the work and reads VmRSS again. Columns:

* RSS growth: VmRSS after the work (the optimizer's ``Result`` still alive) minus the baseline;
  it includes heap the allocator keeps after transient use (e.g. KDE arrays), as a process does;
* peak RSS: ``ru_maxrss`` of the subprocess over its whole life, imports included;
* bytes/evaluation: RSS growth / evaluations recorded; seconds: wall time of the work only.

The space is overhead.py's (8 UniformFloat, a categorical with 3 and one with 2 choices), the
budgets 1..27 with eta 3 (4 rungs), seed 0, and the worker returns ``config["x0"]`` at once.
A run stops at the first Hyperband iteration with at least N evaluations, so a row may show a
few more than N. What each row runs:

* mpibohb BOHB / RandomSearch run: ``opt.run(n_iterations, worker)`` in one process, without an
  MPI launcher, so the serial executor evaluates in the master's process; the zero-cost worker
  keeps nothing, so the growth is the master's (optimizer state, the run's records, ``Result``).
  With ``run_dir`` the journal and HpBandSter's configs.json/results.json are written to a
  temporary directory in /tmp (size reported, then deleted).
* mpibohb KDESampler fed N results: ``KDESampler.observe`` N times at one budget, then one fit
  (default ``max_points_in_model=512`` per KDE): the model's share alone.
* HpBandSter RandomSearch / BOHB run: the real master loop with one worker thread in the same
  process and a Pyro4 nameserver on 127.0.0.1 (free port), as hpbandster_reference.py runs it.
  HpBandSter's ``run`` returns a deep copy of all iteration data as its ``Result``; the row's
  text also gives the growth at the last result, before that copy.
* HpBandSter BOHB config generator fed N results: ``new_result`` N times at one budget, the
  model refit once at the end, as hpbandster_reference.py drives it. HpBandSter keeps every
  point at that budget; in a multi-budget run it drops results on budgets below that of its
  largest model, so this is what its model holds when all N results are on the top budget.

HpBandSter's loop is slow: here its RandomSearch makes about 100 evaluations per second, its BOHB
about 15 (its get_config scores 64 candidates one at a time with statsmodels' pdf), so its runs
above ``--hpbandster-rs-max`` / ``--hpbandster-bohb-max`` evaluations are not run; their rows
say so, with a time scaled linearly from the largest size measured (a lower bound: its master
scans every iteration for each job, and its model grows with every point).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.model_space import benchmark_space
from benchmarks.processes import run_in_group

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HPBANDSTER_PYTHON = HERE / ".hpbandster-venv" / "bin" / "python"
MIN_BUDGET, MAX_BUDGET, ETA, SEED = 1, 27, 3, 0
MIB = 2**20

# kind -> (engine, what ran); the order is the order of the rows for one size
KINDS = {
    "mpibohb-bohb": ("mpibohb", "BOHB run, serial (worker in the master's process)"),
    "mpibohb-bohb-rundir": ("mpibohb", "BOHB run, serial, with run_dir (journal in /tmp)"),
    "mpibohb-rs": ("mpibohb", "RandomSearch run, serial"),
    "mpibohb-kde": ("mpibohb", "KDESampler fed N results at one budget + 1 fit (cap 512)"),
    "hpbandster-rs": ("HpBandSter", "RandomSearch run, 1 worker thread, Pyro4 nameserver"),
    "hpbandster-bohb": ("HpBandSter", "BOHB run, 1 worker thread, Pyro4 nameserver"),
    "hpbandster-kde": ("HpBandSter", "BOHB config generator fed N results at one budget + 1 fit (all points)"),
}
# rough seconds per evaluation, only for timeouts and for the rows that are not run
SECONDS_PER_EVALUATION = {"mpibohb-bohb": 2e-3, "mpibohb-bohb-rundir": 2.5e-3, "mpibohb-rs": 1e-3,
                          "mpibohb-kde": 5e-4, "hpbandster-rs": 1 / 100, "hpbandster-bohb": 1 / 12,
                          "hpbandster-kde": 1e-3}


# ----------------------------------------------------------------------------- in the subprocess


def rss_bytes() -> int:
    """This process's resident set size (VmRSS), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_bytes() -> int:
    """The largest resident set size this process has had (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def settle() -> int:
    """VmRSS after a full garbage collection."""
    gc.collect()
    return rss_bytes()


def zero_cost(config: dict, budget: float) -> float:
    """The worker: no work, a loss that depends on the configuration."""
    return config["x0"]


def hyperband_evaluations(iteration: int, hpbandster: bool = False) -> int:
    """Evaluations in Hyperband iteration ``iteration`` (budgets 1..27, eta 3): mpibohb's
    ``ceil((s_max + 1) / (s + 1) * eta**s)`` first stage (the paper's), or HpBandSter's
    ``floor((s_max + 1) / (s + 1)) * eta**s``."""
    s_max = s_max_plus_one() - 1
    s = s_max - iteration % (s_max + 1)
    if hpbandster:
        first = (s_max + 1) // (s + 1) * ETA**s
    else:
        first = math.ceil((s_max + 1) / (s + 1) * ETA**s - 1e-9)
    return sum(max(1, math.floor(first * ETA**-i + 1e-9)) for i in range(s + 1))


def iterations_for(target: int, optimizer: str, start: int = 0, hpbandster: bool = False) -> tuple[int, int]:
    """The fewest iterations from ``start`` on that give at least ``target`` evaluations, and how many."""
    total, count = 0, 0
    while total < target:
        total += hyperband_evaluations(start + count, hpbandster) if optimizer == "bohb" else s_max_plus_one()
        count += 1
    return count, total


def s_max_plus_one() -> int:
    """Configurations per RandomSearch iteration (the number of rungs), in both engines."""
    return round(math.log(MAX_BUDGET / MIN_BUDGET, ETA)) + 1


def measured(evaluations: int, baseline: int, seconds: float, **extra: Any) -> dict[str, Any]:
    """The child's JSON line: growth since ``baseline``, peak and time."""
    return dict(extra, evaluations=evaluations, growth=settle() - baseline, peak=peak_bytes(), seconds=seconds)


def mpibohb_run_child(optimizer: str, target: int, with_run_dir: bool) -> dict[str, Any]:
    """A serial mpibohb run of at least ``target`` evaluations."""
    from mpibohb import BOHB, RandomSearch

    cls = {"bohb": BOHB, "rs": RandomSearch}[optimizer]

    def make(run_dir: Path | None) -> Any:
        model = {"model": "hpbandster"} if optimizer == "bohb" else {}  # like for like with HpBandSter's BOHB
        return cls(benchmark_space(SEED), min_budget=MIN_BUDGET, max_budget=MAX_BUDGET, eta=ETA, seed=SEED,
                   run_dir=run_dir, **model)

    run_dir = tempfile.mkdtemp(prefix="mpibohb-memory-", dir="/tmp") if with_run_dir else None
    try:
        make(None if run_dir is None else Path(run_dir) / "warmup").run(n_iterations=1, worker=zero_cost)
        n_iterations, expected = iterations_for(target, optimizer)
        opt = make(None if run_dir is None else Path(run_dir) / "run")
        baseline = settle()
        start = time.perf_counter()
        result = opt.run(n_iterations=n_iterations, worker=zero_cost)
        seconds = time.perf_counter() - start
        runs = len(result.get_all_runs())
        assert runs == expected, f"{runs} runs, expected {expected}"
        journal = sum(f.stat().st_size for f in (Path(run_dir) / "run").iterdir()) if run_dir else None
        return measured(runs, baseline, seconds, journal_bytes=journal)
    finally:
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)


def sample_in_chunks(cs: Any, total: int, chunk: int = 1000) -> Any:
    """``total`` random configurations, made ``chunk`` at a time (the caller keeps none)."""
    while total > 0:
        batch = cs.sample_configuration(min(chunk, total))
        yield from (batch if isinstance(batch, list) else [batch])
        total -= chunk


def mpibohb_kde_child(target: int) -> dict[str, Any]:
    """mpibohb's KDESampler fed ``target`` results at one budget, then fit once."""
    import numpy as np

    from mpibohb.samplers.hpbandster_kde import KDESampler
    from mpibohb.space import SearchSpace

    cs = benchmark_space(SEED)
    rng = np.random.default_rng(SEED)
    KDESampler(SearchSpace(cs)).fit(1.0, rng)  # warm-up: imports and the first allocations
    sampler = KDESampler(SearchSpace(cs))
    baseline = settle()
    start = time.perf_counter()
    for config in sample_in_chunks(cs, target):
        sampler.observe(np.array(config.get_array()), float(MAX_BUDGET), zero_cost(config, MAX_BUDGET))
    model = sampler.current_model(rng)
    seconds = time.perf_counter() - start
    assert model is not None, "no model was built"
    return measured(target, baseline, seconds)


def hpbandster_kde_child(target: int) -> dict[str, Any]:
    """HpBandSter's BOHB config generator fed ``target`` results at one budget, refit once at the end."""
    from types import SimpleNamespace

    import numpy as np
    from hpbandster.optimizers.config_generators import bohb

    np.random.seed(SEED)
    cs = benchmark_space(SEED)
    generator = bohb.BOHB(cs)
    baseline = settle()
    start = time.perf_counter()
    for index, config in enumerate(sample_in_chunks(cs, target)):
        values = config.get_dictionary()
        job = SimpleNamespace(id=(0, 0, index), kwargs={"budget": float(MAX_BUDGET), "config": values},
                              result={"loss": zero_cost(values, MAX_BUDGET), "info": {}}, exception=None,
                              timestamps={"submitted": 0.0, "started": 0.0, "finished": 0.0})
        generator.new_result(job, update_model=index == target - 1)
    seconds = time.perf_counter() - start
    assert float(MAX_BUDGET) in generator.kde_models, "no model was built"
    return measured(target, baseline, seconds)


class GrowthAtLastResult:
    """A result logger for HpBandSter's master: reads VmRSS when the last expected result arrives."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.seen = 0
        self.rss: int | None = None

    def new_config(self, config_id: Any, config: Any, config_info: Any) -> None:
        """HpBandSter calls this for every new configuration; nothing to do."""

    def __call__(self, job: Any) -> None:
        self.seen += 1
        if self.seen == self.expected:
            self.rss = rss_bytes()


def hpbandster_run_child(optimizer: str, target: int) -> dict[str, Any]:
    """A real HpBandSter run: master, one worker thread and a nameserver in this process."""
    import logging

    import hpbandster.core.nameserver as hpns
    import numpy as np
    from hpbandster.core.worker import Worker
    from hpbandster.optimizers import BOHB, RandomSearch

    logging.basicConfig(level=logging.ERROR)

    class ZeroCostWorker(Worker):
        def compute(self, config: dict, budget: float, **kwargs: Any) -> dict:
            return {"loss": zero_cost(config, budget), "info": {}}

    np.random.seed(SEED)
    run_id = f"memory{os.getpid()}"
    nameserver = hpns.NameServer(run_id=run_id, host="127.0.0.1", port=0)  # must stay referenced
    host, port = nameserver.start()
    ZeroCostWorker(run_id=run_id, nameserver=host, nameserver_port=port, host="127.0.0.1", id=0).run(background=True)
    n_iterations, expected = iterations_for(target, optimizer, start=1, hpbandster=True)
    warmup = hyperband_evaluations(0, hpbandster=True) if optimizer == "bohb" else s_max_plus_one()
    logger = GrowthAtLastResult(warmup + expected)
    cls = {"bohb": BOHB, "rs": RandomSearch}[optimizer]
    master = cls(configspace=benchmark_space(SEED), run_id=run_id, nameserver=host, nameserver_port=port,
                 host="127.0.0.1", min_budget=MIN_BUDGET, max_budget=MAX_BUDGET, eta=ETA, result_logger=logger)
    master.run(n_iterations=1)  # warm-up iteration; its runs are in the final Result too
    baseline = settle()
    start = time.perf_counter()
    result = master.run(n_iterations=n_iterations)
    seconds = time.perf_counter() - start
    runs = len(result.get_all_runs()) - warmup
    assert runs == expected, f"{runs} runs, expected {expected}"
    return measured(runs, baseline, seconds, growth_before_result=(logger.rss or 0) - baseline)


def run_child(kind: str, target: int) -> None:
    """Measure one row in this process and print it as a JSON line."""
    if kind.startswith("mpibohb-") and kind != "mpibohb-kde":
        row = mpibohb_run_child(kind.split("-")[1], target, kind.endswith("rundir"))
    elif kind == "mpibohb-kde":
        row = mpibohb_kde_child(target)
    elif kind == "hpbandster-kde":
        row = hpbandster_kde_child(target)
    else:
        row = hpbandster_run_child(kind.split("-")[1], target)
    print(json.dumps(dict(row, versions=versions())), flush=True)
    if kind.startswith("hpbandster-"):
        os._exit(0)  # Pyro4 threads linger; the figures are out already


def versions() -> str:
    """The versions of what this process imported."""
    from importlib.metadata import PackageNotFoundError, version

    names = ("numpy", "scipy", "ConfigSpace", "statsmodels", "hpbandster", "Pyro4")
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return f"Python {platform.python_version()}; " + ", ".join(found)


# ----------------------------------------------------------------------------- in the parent


def launch(kind: str, target: int, timeout: float) -> dict[str, Any]:
    """Run one child in its own process group; its JSON row, or ``status`` and ``detail`` of a failure."""
    python = HPBANDSTER_PYTHON if kind.startswith("hpbandster-") else Path(sys.executable)
    if not python.exists():
        return {"status": "missing venv", "detail": f"{python} is missing (run benchmarks/hpbandster_env.sh)"}
    command = [str(python), "-m", "benchmarks.memory", "--child", kind, "--target", str(target)]
    finished = run_in_group(command, timeout, cwd=ROOT)
    if finished.timed_out:
        return {"status": "timeout", "detail": f"killed after the timeout of {timeout:.0f} s"}
    lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"status": "failed", "detail": f"exit {finished.returncode}: {finished.last_error_line()}"}
    return dict(json.loads(lines[-1]), status="ok")


def estimate_seconds(kind: str, target: int, done: dict[tuple[str, int], dict[str, Any]]) -> float:
    """Seconds ``kind`` would take for ``target`` evaluations: scaled linearly from the largest
    smaller size measured in this invocation, else from :data:`SECONDS_PER_EVALUATION`."""
    smaller = [(n, row) for (k, n), row in done.items() if k == kind and n < target and "seconds" in row]
    if smaller:
        n, row = max(smaller, key=lambda item: item[0])
        return row["seconds"] / row["evaluations"] * target
    return SECONDS_PER_EVALUATION[kind] * target


def table_row(kind: str, target: int, outcome: dict[str, Any]) -> dict[str, Any]:
    """One row of the table / JSON output."""
    engine, what = KINDS[kind]
    if outcome["status"] != "ok":
        return {"evaluations": target, "engine": engine, "what": f"{what}: {outcome['status']}, {outcome['detail']}",
                "rss_growth_mib": None, "peak_mib": None, "bytes_per_evaluation": None, "seconds": None,
                "status": outcome["status"], "target": target}
    notes = []
    if outcome.get("journal_bytes") is not None:
        notes.append(f"journal files {outcome['journal_bytes'] / MIB:.1f} MiB on disk")
    if outcome.get("growth_before_result") is not None:
        notes.append(f"{outcome['growth_before_result'] / MIB:.1f} MiB at the last result, before the Result copy")
    return {"evaluations": outcome["evaluations"], "engine": engine,
            "what": what + (f" ({'; '.join(notes)})" if notes else ""),
            "rss_growth_mib": round(outcome["growth"] / MIB, 2), "peak_mib": round(outcome["peak"] / MIB, 1),
            "bytes_per_evaluation": round(outcome["growth"] / outcome["evaluations"]),
            "seconds": round(outcome["seconds"], 2), "status": "ok", "target": target}


def markdown(row: dict[str, Any]) -> str:
    """``row`` as a markdown table line."""
    def cell(value: Any, pattern: str) -> str:
        return "—" if value is None else format(value, pattern)

    return (f"| {row['evaluations']:,} | {row['engine']} | {row['what']} | {cell(row['rss_growth_mib'], '.1f')}"
            f" | {cell(row['peak_mib'], '.0f')} | {cell(row['bytes_per_evaluation'], ',')}"
            f" | {cell(row['seconds'], '.1f')} |")


def machine_description() -> str:
    """Platform, CPUs and the parent's Python."""
    return f"{platform.platform()}; {os.cpu_count()} CPUs; parent Python {platform.python_version()}"


def measure_size(target: int, kinds: list[str], limits: dict[str, tuple[int, str]],
                 done: dict[tuple[str, int], dict[str, Any]], versions_seen: dict[str, str]) -> list[dict[str, Any]]:
    """The rows of one size, each printed as it finishes. A kind in ``limits`` (largest size, option)
    runs only up to that size; above it its row says so, with an estimated time."""
    rows = []
    for kind in kinds:
        estimate = estimate_seconds(kind, target, done)
        largest, option = limits.get(kind, (target, ""))
        if target > largest:
            outcome = {"status": "not run", "detail": f"above {option} {largest:,}; estimated"
                                                      f" {estimate / 60:.0f} min or more"}
        else:
            outcome = launch(kind, target, timeout=120 + 4 * estimate)
        if outcome["status"] == "ok":
            done[(kind, target)] = outcome
            versions_seen[KINDS[kind][0]] = outcome.pop("versions", "")
        rows.append(table_row(kind, target, outcome))
        print(markdown(rows[-1]), flush=True)
    return rows


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line; ``--quick`` sets the sizes and the HpBandSter limits."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000],
                        help="numbers of evaluations (default: 10000 100000)")
    parser.add_argument("--hpbandster-rs-max", type=int, default=10_000,
                        help="largest size at which HpBandSter's RandomSearch runs (default 10000)")
    parser.add_argument("--hpbandster-bohb-max", type=int, default=1_000,
                        help="largest size at which HpBandSter's BOHB runs, also run at this size when it is"
                             " not among --sizes (with mpibohb's BOHB beside it); 0: never (default 1000)")
    parser.add_argument("--quick", action="store_true",
                        help="sizes 1000 and 10000, HpBandSter's RandomSearch at 1000 only, its BOHB not run")
    parser.add_argument("--json", metavar="OUT", help="also write the rows to OUT as a JSON list")
    parser.add_argument("--child", choices=sorted(KINDS), help=argparse.SUPPRESS)
    parser.add_argument("--target", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.hpbandster_rs_max, args.hpbandster_bohb_max = [1_000, 10_000], 1_000, 0
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    if args.child:
        run_child(args.child, args.target)
        return
    started = time.perf_counter()
    print(f"machine: {machine_description()}")
    print(f"space: 10 dims (8 float, categorical 3 + 2); budgets {MIN_BUDGET}..{MAX_BUDGET}, eta {ETA};"
          " zero-cost worker; one subprocess per row, one at a time\n")
    print("| evaluations | engine | what ran | RSS growth (MiB) | peak RSS (MiB) | bytes/evaluation | seconds |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: |", flush=True)
    limits = {"hpbandster-rs": (args.hpbandster_rs_max, "--hpbandster-rs-max"),
              "hpbandster-bohb": (args.hpbandster_bohb_max, "--hpbandster-bohb-max")}
    extra = {args.hpbandster_bohb_max} - set(args.sizes) - {0}
    rows: list[dict[str, Any]] = []
    done: dict[tuple[str, int], dict[str, Any]] = {}
    versions_seen: dict[str, str] = {}
    for target in sorted(set(args.sizes) | extra):
        kinds = ["mpibohb-bohb", "hpbandster-bohb"] if target in extra else list(KINDS)
        rows += measure_size(target, kinds, limits, done, versions_seen)
    print()
    for engine, text in versions_seen.items():
        print(f"{engine} subprocesses: {text}")
    print(f"total: {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
