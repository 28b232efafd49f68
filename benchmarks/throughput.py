"""Evaluations per second with a zero-cost worker, and the CPU that idle ranks burn.

    python -m benchmarks.throughput [--ranks 2 3 5 9] [--n_iterations 200] [--quick]

For each number of MPI ranks K (K-1 workers) and each optimizer (RandomSearch, BOHB) it runs the
HpBandSter quickstart's toy problem (one float, budgets 9..243, eta 3) under
``mpiexec -n K`` with a worker that returns at once, and prints evaluations per second as seen
by the master (runs / wall time of ``run``). Then, per K, it runs one slow evaluation (3 s of
sleep) while the other workers have nothing to do, and prints the CPU time each rank used as a
percentage of the wall time: the cost of waiting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(optimizer: str, n_iterations: int, idle_probe: bool, out_dir: str) -> None:
    """Runs on every rank under mpiexec; writes one JSON file per rank into ``out_dir``."""
    import ConfigSpace as CS
    from mpi4py import MPI

    from mpibohb import BOHB, RandomSearch

    cs = CS.ConfigurationSpace()
    cs.add(CS.UniformFloatHyperparameter("x", lower=0, upper=1))
    comm = MPI.COMM_WORLD
    def slow_worker(config: dict[str, float], budget: float) -> float:
        time.sleep(3)
        return config["x"]

    def zero_cost_worker(config: dict[str, float], budget: float) -> float:
        return config["x"]

    if idle_probe:  # one configuration, one evaluation of 3 s; every other worker idles
        opt, worker = RandomSearch(cs, min_budget=1, max_budget=1, seed=0), slow_worker
        n_iterations = 1
    else:
        cls = {"bohb": BOHB, "rs": RandomSearch}[optimizer]
        model = {"model": "hpbandster"} if optimizer == "bohb" else {}  # like for like with HpBandSter's BOHB
        opt = cls(cs, min_budget=9, max_budget=243, eta=3, seed=0, **model)
        worker = zero_cost_worker
    comm.Barrier()
    wall, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    # worker ranks would end their process with the run; they must come back to write their CPU time
    res = opt.run(n_iterations=n_iterations, worker=worker, workers_return=True)
    wall = time.perf_counter() - wall
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    runs = len(res.get_all_runs()) if res is not None else None
    with open(Path(out_dir) / f"rank{comm.Get_rank()}.json", "w") as fh:
        json.dump({"rank": comm.Get_rank(), "wall": wall, "cpu": cpu_seconds, "runs": runs}, fh)


def launch(ranks: int, *args: str, timeout: float = 600) -> list[dict]:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as out_dir:
        command = [str(mpiexec if mpiexec.exists() else "mpiexec"), "-n", str(ranks), sys.executable,
                   "-m", "benchmarks.throughput", "--child", "--out_dir", out_dir, *args]
        subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=True, cwd=ROOT)
        return [json.loads((Path(out_dir) / f"rank{rank}.json").read_text()) for rank in range(ranks)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 3, 5, 9])
    parser.add_argument("--n_iterations", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="fewer iterations, for a smoke test")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--optimizer", default="rs", help=argparse.SUPPRESS)
    parser.add_argument("--idle_probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out_dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.optimizer, args.n_iterations, args.idle_probe, args.out_dir)
        return
    n_iterations = 20 if args.quick else args.n_iterations
    import mpi4py
    import numpy

    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {numpy.__version__}, mpi4py {mpi4py.__version__}")
    print(f"toy problem, budgets 9..243, eta 3, {n_iterations} iterations, zero-cost worker\n")
    print("| ranks | workers | optimizer | evaluations | seconds | evaluations/s |")
    print("|---:|---:|---|---:|---:|---:|")
    report: dict = {"n_iterations": n_iterations, "throughput": [], "idle": []}
    for ranks in args.ranks:
        for optimizer in ("rs", "bohb"):
            master = launch(ranks, "--optimizer", optimizer, "--n_iterations", str(n_iterations))[0]
            name = {"rs": "RandomSearch", "bohb": "BOHB"}[optimizer]
            report["throughput"].append({"ranks": ranks, "optimizer": name, "runs": master["runs"],
                                         "wall": master["wall"]})
            print(f"| {ranks} | {ranks - 1} | {name} | {master['runs']} | {master['wall']:.2f} | "
                  f"{master['runs'] / master['wall']:,.0f} |", flush=True)
    print("\nCPU while waiting: one 3 s evaluation on rank 1, all other workers idle (CPU time / wall time)\n")
    print("| ranks | master | busy worker (rank 1) | idle workers (mean) | idle workers (max) |")
    print("|---:|---:|---:|---:|---:|")
    for ranks in args.ranks:
        rows = launch(ranks, "--idle_probe")
        share = [row["cpu"] / row["wall"] * 100 for row in rows]
        idle = share[2:]
        report["idle"].append({"ranks": ranks, "master": share[0], "busy": share[1], "idle": idle})
        mean, peak = (f"{sum(idle) / len(idle):.1f}%", f"{max(idle):.1f}%") if idle else ("-", "-")
        print(f"| {ranks} | {share[0]:.1f}% | {share[1]:.1f}% | {mean} | {peak} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report))


if __name__ == "__main__":
    main()
