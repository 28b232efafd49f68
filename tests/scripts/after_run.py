"""What the ranks of an MPI job do after ``run``; every rank runs this.

    mpiexec -n K python after_run.py [--workers_return]
                                     [--then sleep|raise|run_again|run_again_returning|unguarded|finalize]
                                     [--sleep S] [--pid_dir DIR] [--n_workers N] [--min_n_workers N]
                                     [--before raise|late|skip] [--own_excepthook] [--linger_thread] [--kept_error]

Every rank that gets past ``run`` prints ``AFTER RUN rank R: <what run returned>``.
``--then sleep``: after the run, rank 0 sleeps ``--sleep`` seconds (the analysis of a user's
script) before it prints ``RESULT <runs>``. ``raise``: rank 0 raises. ``run_again``: a second
``run`` follows the first; ``run_again_returning`` passes ``workers_return=True`` to the first.
``unguarded``: every rank reads the result, without ``if res is not None``. ``finalize``: rank 0
ends with ``MPI.Finalize()``.
``--pid_dir``: each rank writes its pid into DIR/<rank>, then ``ended`` into DIR/<rank>.run
when its run has ended. ``--n_workers`` and ``--min_n_workers`` go to ``run``; mpibohb's
warnings go to stderr. ``--before raise``: rank 2 raises before ``run`` (a user's mistake on one
rank). ``--before late``: the worker ranks call ``run`` 4 s after rank 0, which warns after 1 s
and prints ``RUN CPU <seconds>``, the CPU time its ``run`` took. ``--before skip``: rank 2 starts
MPI and ends its script without calling ``run`` (a run guarded by ``if rank == 0:``).
``--own_excepthook``: the script, after importing mpibohb, logs uncaught exceptions with a
``sys.excepthook`` of its own (as ``rich.traceback.install()`` or a logging recipe does).
``--linger_thread``: a non-daemonic thread sleeps 600 s from the start (a data loader's thread).
``--linger_pool``: the same in a ``ThreadPoolExecutor`` made after ``import mpibohb`` (whose exit
handler, registered after mpibohb's, waits for it).
``--kept_error``: after the run, every rank shows an error that a coroutine caught and kept in
``sys.last_value`` for a post-mortem, as IPython's ``run_code`` does.
"""

import argparse
import asyncio
import logging
import os
import sys
import threading
import time
from pathlib import Path

import ConfigSpace as CS

from mpibohb import HyperBand


def loss(config, budget):
    return (config["x"] - 0.3) ** 2 + 1.0 / budget


async def show_an_error():
    try:
        raise ZeroDivisionError("a cell's error")
    except ZeroDivisionError:
        sys.last_type, sys.last_value, sys.last_traceback = sys.exc_info()


def rank():
    return os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK") or "0"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers_return", action="store_true")
    parser.add_argument("--then", default="sleep", choices=["sleep", "raise", "run_again", "run_again_returning",
                                                          "unguarded", "finalize"])
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--pid_dir")
    parser.add_argument("--n_workers", type=int)
    parser.add_argument("--min_n_workers", type=int)
    parser.add_argument("--before", choices=["raise", "late", "skip"])
    parser.add_argument("--own_excepthook", action="store_true")
    parser.add_argument("--linger_thread", action="store_true")
    parser.add_argument("--linger_pool", action="store_true")
    parser.add_argument("--kept_error", action="store_true")
    args = parser.parse_args()
    if args.linger_thread:
        threading.Thread(target=time.sleep, args=(600,)).start()
    if args.linger_pool:
        from concurrent.futures import ThreadPoolExecutor  # its module registers its exit handler now

        ThreadPoolExecutor(1).submit(time.sleep, 600)
    if args.own_excepthook:
        sys.excepthook = lambda kind, error, trace: logging.critical("uncaught", exc_info=(kind, error, trace))
    logging.basicConfig(level=logging.WARNING)
    extra = {} if args.min_n_workers is None else {"min_n_workers": args.min_n_workers}
    if args.pid_dir:
        (Path(args.pid_dir) / rank()).write_text(str(os.getpid()))

    cs = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    opt = HyperBand(cs, min_budget=1, max_budget=9, eta=3, seed=3)
    first_returns = args.workers_return or args.then == "run_again_returning"
    if args.before == "raise" and rank() == "2":
        raise RuntimeError("rank 2 has no GPU")
    if args.before == "skip" and rank() == "2":
        from mpi4py import MPI

        print(f"SKIPPED RUN on rank {MPI.COMM_WORLD.Get_rank()}", flush=True)
        return
    if args.before == "late":
        from mpibohb.executors import mpi_protocol

        mpi_protocol.START_WARNING_SECONDS = 1.0
        if rank() != "0":
            time.sleep(4)
    cpu = time.process_time()
    res = opt.run(n_iterations=2, worker=loss, workers_return=first_returns, n_workers=args.n_workers, **extra)
    print(f"AFTER RUN rank {rank()}: {type(res).__name__}", flush=True)
    if args.kept_error:
        asyncio.run(show_an_error())
    if args.before == "late" and res is not None:
        print(f"RUN CPU {time.process_time() - cpu:.2f}", flush=True)
    if args.pid_dir:
        (Path(args.pid_dir) / f"{rank()}.run").write_text("ended")
    if args.then.startswith("run_again"):
        res = HyperBand(cs, min_budget=1, max_budget=9, eta=3, seed=4).run(
            n_iterations=1, worker=loss, workers_return=args.workers_return)
        print(f"AFTER SECOND RUN rank {rank()}: {type(res).__name__}", flush=True)
    if args.then == "unguarded":  # every rank analyses, also those that got None
        print(f"RESULT {len(res.get_all_runs())}", flush=True)
    if res is None:
        return
    if args.then == "raise":
        raise KeyError("the analysis on rank 0 failed")
    time.sleep(args.sleep)
    print(f"RESULT {len(res.get_all_runs())}", flush=True)
    if args.then == "finalize":  # as many mpi4py scripts end
        from mpi4py import MPI

        MPI.Finalize()
        print("FINALIZED", flush=True)


if __name__ == "__main__":
    main()
