"""A run whose worker misbehaves as a node, a library or a training script can; every rank runs it.

    [mpiexec -n K] python hostile_run.py RUN_DIR --mode MODE [--timeout S] [--max_rank_failures N]

The problem is the issue's toy: x in [0, 1], budgets 1..27, eta 3, HyperBand (so the evaluations do
not depend on the order of results), deterministic losses, sleeping ``--sleep`` s per budget unit.

Modes (``rank R`` is the MPI rank; the first job of a rank is its job 1):
  none       nothing goes wrong
  stop       rank 2 stops itself with SIGSTOP in its job 2 (a hung node)
  c_block    rank 2 blocks in an MPI recv that never completes in its job 2 (stuck in C)
  blocked    job (0, 0, 1) at budget 1 blocks SIGALRM and sleeps 120 s (a C call the timeout cannot
             interrupt, in a serial run)
  broken     every evaluation on rank 2 raises OSError at once (a full local disk)
  bad_gpu    every evaluation on rank 2 raises RuntimeError at once (a bad GPU)
  small_disk every evaluation on rank 1 at budget 27 raises OSError(ENOSPC) (a local disk too small
             for the largest checkpoints; its smaller ones succeed)
  full_disk  every evaluation after a rank's first raises OSError(ENOSPC) (a shared disk that fills up)
  node_disk  every evaluation on a host named ``nodeb`` raises OSError(ENOSPC) at its end (a node's full
             local disk; the test starts two ranks there, in UTS namespaces of their own)
  purge      job (0, 0, 3) at budget 1 deletes the run directory, then takes 1.5 s (a scratch purge or a
             user's ``rm -r`` while the run goes on)
  sigterm    compute installs its own SIGTERM handler (raising SystemExit, as training scripts do)
  child      compute starts a child process that outlives it, holding the output pipes
  pool       compute keeps a multiprocessing Pool (fork) for its next jobs, never closed (a data loader)
  spawn_pool the same with the spawn start method (which also starts multiprocessing's resource tracker)
  stubborn_daemon  each worker rank's job 1 leaves a daemonic multiprocessing helper running that
             ignores SIGTERM
  kill0      every job runs a shell script with the cleanup ``trap "kill 0" EXIT`` (its SIGTERM reaches
             the worker rank too); job (0, 0, 1) at budget 1 exits 1, so compute fails
  eintr      in its job 1, a worker rank's compute blocks in C's read() (through ctypes: C code that
             does not retry an interrupted call) while a SIGTERM reaches that rank alone
  exit       job (0, 0, 2) at budget 1 ends its process with os._exit(9) (like an out-of-memory kill)
  segfault   job (0, 0, 2) at budget 1 gets SIGSEGV (like a crash in a C library)
  fork_crash job (0, 0, 2) at budget 1 forks a child that gets SIGSEGV (a data loader's worker),
             and goes on

``--hole``: every rank opens a descriptor before MPI starts and closes it after (as a start
sentry's pipe or a user's file can), so the sockets it opens later take that low number.

Prints ``RUNS n FAILED f`` on rank 0 at the end.
"""

import argparse
import atexit
import logging
import multiprocessing.pool  # noqa: F401 - before run, as sklearn or torch import it: its exit handler then runs last
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import ConfigSpace as CS

from mpibohb import HyperBand

JOBS_DONE = 0
KEPT = []  # what compute keeps for its next jobs: a pool, a helper process


def square(value: float) -> float:
    return value * value


def rank() -> str:
    return os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK") or "0"


def sleep_ignoring_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)


def read_in_c_through_a_sigterm() -> None:
    """Block in libc's read() of a pipe; SIGTERM reaches this (main) thread 0.2 s in, the byte 0.4 s in."""
    import ctypes
    import threading

    libc = ctypes.CDLL(None, use_errno=True)
    read_end, write_end = os.pipe()
    main = threading.main_thread().ident
    threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGTERM)).start()
    threading.Timer(0.4, os.write, (write_end, b"x")).start()
    if libc.read(read_end, ctypes.create_string_buffer(1), 1) < 0:
        raise OSError(ctypes.get_errno(), "read() in C was interrupted by a signal")
    os.close(read_end)
    os.close(write_end)


def make_compute(mode: str, sleep: float, run_dir: str):
    def compute(config_id, config, budget):
        global JOBS_DONE
        JOBS_DONE += 1
        if mode == "stop" and rank() == "2" and JOBS_DONE == 2:
            os.kill(os.getpid(), signal.SIGSTOP)
        if mode == "c_block" and rank() == "2" and JOBS_DONE == 2:
            from mpi4py import MPI

            MPI.COMM_WORLD.recv(source=0, tag=4242)  # rank 0 never sends this
        if mode == "blocked" and tuple(config_id) == (0, 0, 1) and budget == 1:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(120)
        if mode == "broken" and rank() == "2":
            raise OSError(28, "No space left on device (simulated broken node)")
        if mode == "small_disk" and rank() == "1" and budget == 27:
            raise OSError(28, "No space left on device", "/local/checkpoint.pt")
        if mode == "node_disk" and socket.gethostname() == "nodeb":  # trains, then saves its checkpoint
            time.sleep(sleep * budget)
            raise OSError(28, "No space left on device", "/local/checkpoint.pt")
        if mode == "full_disk" and JOBS_DONE > 1:
            raise OSError(28, "No space left on device", "/shared/checkpoint.pt")
        if mode == "purge" and tuple(config_id) == (0, 0, 3) and budget == 1:
            shutil.rmtree(run_dir)
            time.sleep(1.5)
        if mode == "bad_gpu" and rank() == "2":
            raise RuntimeError("CUDA error: an illegal memory access was encountered (simulated broken node)")
        if mode == "sigterm":
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
        if mode == "child" and JOBS_DONE == 1:
            subprocess.Popen(["sleep", "600"])
        if mode == "stubborn_daemon" and JOBS_DONE == 1:
            helper = multiprocessing.get_context("fork").Process(target=sleep_ignoring_sigterm, daemon=True)
            helper.start()
            KEPT.append(helper)
        if mode == "kill0":  # the script's own SIGTERM ends it too: only its designated failure counts
            failing = tuple(config_id) == (0, 0, 1) and budget == 1
            subprocess.run(["sh", "-c", f"trap 'kill 0' EXIT; exit {int(failing)}"])
            if failing:
                raise RuntimeError("the training script failed")
        if mode == "eintr" and JOBS_DONE == 1 and rank() != "0":
            read_in_c_through_a_sigterm()
        if mode in ("pool", "spawn_pool"):
            if not KEPT:
                KEPT.append(multiprocessing.get_context("fork" if mode == "pool" else "spawn").Pool(2))
            KEPT[0].map(square, [config["x"]] * 4)
        if tuple(config_id) == (0, 0, 2) and budget == 1 and mode == "exit":
            time.sleep(0.3)
            os._exit(9)
        if tuple(config_id) == (0, 0, 2) and budget == 1 and mode == "fork_crash":
            child = os.fork()
            if child == 0:
                os.kill(os.getpid(), signal.SIGSEGV)
            os.waitpid(child, 0)
        if tuple(config_id) == (0, 0, 2) and budget == 1 and mode == "segfault":
            time.sleep(0.3)
            os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(sleep * budget)
        return {"loss": (config["x"] - 0.3) ** 2 + 1 / budget}

    return compute


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--mode", default="none")
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--n_iterations", type=int, default=4)
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--max_rank_failures", default="3")
    parser.add_argument("--linger", type=float, default=0.0, help="rank 0 sleeps this long after the run")
    parser.add_argument("--slow_atexit", type=float, default=0.0,
                        help="every rank's exit takes this long (a logger's flush at exit)")
    parser.add_argument("--hole", action="store_true", help="a low descriptor free after MPI starts (see above)")
    parser.add_argument("--finalize", action="store_true", help="rank 0 ends with MPI.Finalize() after the run")
    args = parser.parse_args()
    if args.hole:
        held = os.open(os.devnull, os.O_RDONLY)
        from mpi4py import MPI  # noqa: F401 - MPI starts here, below the held descriptor's number

        os.close(held)
    if args.slow_atexit:
        atexit.register(time.sleep, args.slow_atexit)
    logging.basicConfig(level=logging.WARNING)
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    limit = None if args.max_rank_failures == "none" else int(args.max_rank_failures)
    result = HyperBand(space, min_budget=1, max_budget=27, eta=3, seed=3, run_dir=args.run_dir).run(
        n_iterations=args.n_iterations, worker=make_compute(args.mode, args.sleep, args.run_dir), timeout=args.timeout,
        resume=True, max_rank_failures=limit)
    if result is not None:
        print("RUNS", len(result.get_all_runs()), "FAILED", len(result.failed_runs()), flush=True)
        time.sleep(args.linger)  # an analysis, while the worker ranks wait at their exit gate
        if args.finalize:
            from mpi4py import MPI

            MPI.Finalize()


if __name__ == "__main__":
    main()
