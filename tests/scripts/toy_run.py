"""The toy run of the reliability tests: x in [0, 1], BOHB on budgets 1..27 (eta 3), seeded.

    [mpiexec -n K] python toy_run.py RUN_DIR [--resume] [--n_iterations N] [--sleep S] [--verbose]
        [--raise KIND] [--info_bytes N] [--swallow_stop] [--announce] [--c_call S] [--fork_helpers]
        [--mark_after_run FILE] [--own_handler] [--threads T] [--close_stdout] [--end_helpers_at_once]
        [--subprocess S] [--fill DIR]

``--raise`` makes compute raise ``KeyboardInterrupt`` (``interrupt``) or ``asyncio.CancelledError``
(``cancel``) for every third configuration; ``--info_bytes`` returns an ``info`` of that many
bytes; ``--swallow_stop`` makes compute catch whatever interrupts it and go on sleeping, as code
that catches ``BaseException`` does; ``--announce`` prints ``COMPUTING`` as each evaluation
starts. ``--c_call S``: compute spends about S seconds in one C call (a key derivation), where
no Python signal handler runs, then prints ``C CALL DONE``. ``--fork_helpers``: the first
evaluation forks a helper process twice, 2.2 s apart (the first with a SIGTERM handler of its
own, which exits 0), ends it with ``terminate()`` (SIGTERM) and prints ``HELPER <exit code>``.
``--end_helpers_at_once``: the first evaluation starts a helper by fork, by spawn and as a
subprocess, ends each with ``terminate()`` as soon as it started, and prints ``ENDED <how> <exit
code>`` (``IGNORED`` if it still ran 20 s later). ``--subprocess S``: compute runs ``sleep S`` as a
subprocess and fails if it does not end well (``check=True``), as a training launched as a command does.
``--mark_after_run FILE``: the code after ``run`` writes ``FILE`` (a file, not the output, which
the launcher may drop when it ends the job). Rank 0 prints ``RUNS <runs> FAILED <failed>`` at the end.
RUN_DIR ``none`` runs without a run directory. ``--own_handler``: compute takes SIGTERM with a
handler of its own, as training frameworks do, and returns early with ``info`` ``{"stopped_early": True}``.
``--threads T`` runs with ``n_workers=T`` threads; ``--close_stdout``: compute puts a file in the
place of ``sys.stdout`` and closes it.
"""

import argparse
import asyncio
import hashlib
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ConfigSpace as CS

from mpibohb import BOHB


def rounds_for(seconds):
    """pbkdf2 rounds that take about ``seconds`` on this machine."""
    fastest = float("inf")
    for _ in range(3):  # the fastest of three: a busy moment would make the call too short
        started = time.perf_counter()
        hashlib.pbkdf2_hmac("sha256", b"x", b"y", 50_000)
        fastest = min(fastest, time.perf_counter() - started)
    return int(50_000 * seconds / max(fastest, 1e-6))


def sleep_handling_sigterm(seconds):
    """A helper process with a SIGTERM handler of its own (Python then writes to its wakeup fd)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    time.sleep(seconds)


def stop_early_on_sigterm(seconds):
    """Train for ``seconds``; a SIGTERM ends the training early, and the partly trained model's
    loss is returned (what a framework's own handler does)."""
    stopped = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.append(signum))
    print("COMPUTING", flush=True)
    for _ in range(int(seconds * 10)):
        if stopped:
            return {"loss": 1.0, "info": {"stopped_early": True}}
        time.sleep(0.1)
    return {"loss": 0.5, "info": {"stopped_early": False}}


def end_helpers_at_once():
    """Start a helper process three ways and end each at once with SIGTERM, as cleanup code does."""
    started = {
        "fork": multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,)),
        "spawn": multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,)),
        "exec": subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]),
    }
    for how, helper in started.items():
        if how != "exec":
            helper.start()
        helper.terminate()
    for how, helper in started.items():
        if how == "exec":
            try:
                code = helper.wait(timeout=20)
            except subprocess.TimeoutExpired:
                code = "IGNORED"
        else:
            helper.join(20)
            code = "IGNORED" if helper.exitcode is None else helper.exitcode
        helper.kill()
        print("ENDED", how, code, flush=True)


def make_compute(args):
    rounds = rounds_for(args.c_call) if args.c_call else 0

    def compute(config_id, config, budget):
        if args.fork_helpers and tuple(config_id) == (0, 0, 0) and budget == 1:
            for target in (sleep_handling_sigterm, time.sleep):  # e.g. a data loader per epoch
                helper = multiprocessing.get_context("fork").Process(target=target, args=(30,))
                helper.start()
                time.sleep(0.3)
                helper.terminate()
                helper.join()
                print("HELPER", helper.exitcode, flush=True)
                time.sleep(2.2)
        if args.end_helpers_at_once and tuple(config_id) == (0, 0, 0) and budget == 1:
            end_helpers_at_once()
        if args.own_handler:
            return stop_early_on_sigterm(args.sleep)
        if args.raise_ and config_id[2] % 3 == 1:
            raise {"interrupt": KeyboardInterrupt, "cancel": asyncio.CancelledError}[args.raise_]()
        try:
            if args.announce:
                print("COMPUTING", config_id, budget, flush=True)
            if args.close_stdout:  # a log file put in its place, closed, and never given back
                with open(os.devnull, "w") as log:
                    sys.stdout = log
            time.sleep(args.sleep)
            if args.subprocess:
                subprocess.run(["sleep", str(args.subprocess)], check=True)
            if rounds:
                hashlib.pbkdf2_hmac("sha256", b"x", b"y", rounds)
                print("C CALL DONE", flush=True)
        except BaseException:  # noqa: BLE001 - the point: code that swallows the stop
            if not args.swallow_stop:
                raise
            time.sleep(args.sleep)
        if args.fill:
            Path(args.fill, f"{'_'.join(map(str, config_id))}_{budget:g}.bin").write_bytes(bytes(8192))
        info = b"x" * args.info_bytes if args.info_bytes else {"budget": budget}
        return {"loss": (config["x"] - 0.3) ** 2 + 1 / budget, "info": info}

    return compute


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--n_iterations", type=int, default=4)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--raise", dest="raise_", choices=["interrupt", "cancel"])
    parser.add_argument("--info_bytes", type=int, default=0)
    parser.add_argument("--swallow_stop", action="store_true")
    parser.add_argument("--announce", action="store_true")
    parser.add_argument("--c_call", type=float, default=0.0)
    parser.add_argument("--fork_helpers", action="store_true")
    parser.add_argument("--mark_after_run")
    parser.add_argument("--own_handler", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--close_stdout", action="store_true", help="compute leaves sys.stdout closed")
    parser.add_argument("--end_helpers_at_once", action="store_true")
    parser.add_argument("--subprocess", type=float, default=0.0)
    parser.add_argument("--fill")
    args = parser.parse_args()
    if args.verbose:
        logging.basicConfig(level=logging.INFO)
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    run_dir = None if args.run_dir == "none" else args.run_dir
    result = BOHB(space, min_budget=1, max_budget=27, eta=3, seed=7, run_dir=run_dir).run(
        n_iterations=args.n_iterations, worker=make_compute(args), resume=args.resume, n_workers=args.threads)
    if args.mark_after_run:  # on rank 0 only, and never after a stop or an error (the job has ended)
        Path(args.mark_after_run).write_text(repr(result))
    if result is not None:
        print("RUNS", len(result.get_all_runs()), "FAILED", len(result.failed_runs()), flush=True)


if __name__ == "__main__":
    main()
