"""How long rank 0's death watch takes to journal a worker's death, against how long the launcher
lets rank 0 live after it (``mpibohb/executors/watch.py``).

    python -m benchmarks.watch_latency [--trials 30] [--launcher-trials 5]

1. The launcher: ``mpiexec -n 2``; rank 1 writes its time and calls ``os._exit``, rank 0 writes its
   time in a loop until the launcher kills it; the figure is rank 0's last time less rank 1's.
2. The watch: a real ``DeathWatch`` in this process and a process as rank 1, which connects,
   writes its time and calls ``os._exit``, while this process's main thread runs Python (as rank
   0 does while it samples, journals or replays); the figure is the time from that exit to the
   end of ``on_death``, which writes a journal line and a line on stderr as
   ``MPIExecutor.worker_died`` does. Once with the switch
   interval the watch sets, once with Python's default (5 ms).

A death leaves a record only when (2) is shorter than (1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RANK_SCRIPT = """
import os, sys, time
from mpi4py import MPI
comm, out = MPI.COMM_WORLD, sys.argv[1]
comm.Barrier()
if comm.Get_rank() == 1:
    time.sleep(0.2)
    with open(out + ".exit", "w") as f:
        f.write(repr(time.time()))
    os._exit(3)
fd = os.open(out + ".alive", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
while True:
    os.write(fd, (repr(time.time()) + "\\n").encode())
"""


def launcher_kill_ms(trials: int) -> list[float]:
    """Milliseconds rank 0 lived after rank 1's ``os._exit``, per ``mpiexec -n 2`` run."""
    mpiexec = Path(sys.executable).with_name("mpiexec")
    found: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "ranks.py"
        script.write_text(RANK_SCRIPT)
        for trial in range(trials):
            out = str(Path(scratch) / f"t{trial}")
            subprocess.run([str(mpiexec if mpiexec.exists() else "mpiexec"), "-n", "2", sys.executable, str(script),
                            out], capture_output=True, timeout=60, start_new_session=True)
            died = float(Path(out + ".exit").read_text())
            found.append(1000 * (float(Path(out + ".alive").read_text().split()[-1]) - died))
    return found


RANK_ONE = """
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall((sys.argv[2] + "\\n").encode())
time.sleep(0.3)
print(repr(time.time()), flush=True)
os._exit(0)
"""


def watch_ms(default_interval: bool, journal_fd: int) -> float:
    """Milliseconds from a connected process's exit to the end of ``on_death``, this process's main
    thread running Python meanwhile."""
    from mpibohb.executors.watch import DeathWatch

    done: list[float] = []

    def on_death(rank: int, text: str, in_order: bool) -> None:
        os.write(journal_fd, (json.dumps({"type": "lost", "rank": rank, "reason": text}) + "\n").encode())
        print(f"mpibohb: rank {rank} ended", file=sys.stderr, flush=True)
        done.append(time.time())

    watch = DeathWatch(on_death)
    if default_interval:
        sys.setswitchinterval(0.005)
    try:
        host, port, token = watch.address()
        rank = subprocess.Popen([sys.executable, "-c", RANK_ONE, str(port), f"1 {token}"], stdout=subprocess.PIPE,
                                text=True)
        start = time.monotonic()
        while not done and time.monotonic() - start < 5.0:
            sum(range(200))  # Python work holding the GIL, as rank 0's sampling or journaling
        died = float(rank.communicate(timeout=10)[0])
        return 1000 * (done[0] - died)
    finally:
        watch.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="watch trials per switch interval")
    parser.add_argument("--launcher-trials", type=int, default=5, help="mpiexec runs (0: skip)")
    args = parser.parse_args(argv)
    if args.launcher_trials:
        kills = launcher_kill_ms(args.launcher_trials)
        print(f"launcher: rank 0 lived {statistics.median(kills):.2f} ms (median; min {min(kills):.2f}, "
              f"max {max(kills):.2f}) after a worker's os._exit, {len(kills)} runs of mpiexec -n 2")
    from mpibohb.executors.watch import SWITCH_INTERVAL

    with tempfile.TemporaryFile() as journal, open(os.devnull, "w") as quiet:
        real_stderr, sys.stderr = sys.stderr, quiet
        try:
            rows = {default: [watch_ms(default, journal.fileno()) for _ in range(args.trials)]
                    for default in (False, True)}
        finally:
            sys.stderr = real_stderr
    for default, times in rows.items():
        interval = "Python's default 5 ms" if default else f"the watch's {SWITCH_INTERVAL * 1000:g} ms"
        print(f"watch, switch interval {interval}: journaled {statistics.median(times):.2f} ms after the death "
              f"(median; max {max(times):.2f}), {len(times)} trials, the main thread running Python")


if __name__ == "__main__":
    main(sys.argv[1:])
