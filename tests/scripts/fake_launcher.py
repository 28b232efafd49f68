"""A stand-in for the launcher process of one node, to test the start sentry without MPI.

    python fake_launcher.py [--siblings N] [--sibling_ends S] [--local_ranks L] [--local_rank R]
        [--step JOB.STEP] [--notice S] [--rank_starts S]

This process starts a "rank" and ``N`` sleeping siblings (default 2) as its children, as
``hydra_pmi_proxy`` or ``slurmstepd`` does. The rank starts mpibohb's sentry as ``mpi_start``
does, telling it that this process is its launcher, that ``L`` ranks are on the node (default
``N + 1``) and that it is the ``R``-th (default 0), world rank 5 of 8, with ``--step`` (default
``-``) and ``--notice`` (default 60 s); it "starts MPI" (closes the sentry's pipe) after
``--rank_starts`` seconds (default never). The first sibling ends after ``--sibling_ends`` seconds
(default never). This process prints ``RANK KILLED`` or ``RANK ENDED <code>`` when the rank ends,
or ``RANK WAITING`` after 15 s, and ``SENTRY GONE`` when the rank had no sentry left.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SENTRY = Path(__file__).resolve().parents[2] / "mpibohb" / "mpi_start_sentry.py"

parser = argparse.ArgumentParser()
parser.add_argument("--siblings", type=int, default=2)
parser.add_argument("--sibling_ends", type=float)
parser.add_argument("--local_ranks", type=int)
parser.add_argument("--local_rank", type=int, default=0)
parser.add_argument("--step", default="-")
parser.add_argument("--notice", type=float, default=60.0)
parser.add_argument("--rank_starts", type=float)
parser.add_argument("--as_rank", action="store_true")
args = parser.parse_args()


def be_the_rank() -> None:
    read_end, write_end = os.pipe()
    local_ranks = args.siblings + 1 if args.local_ranks is None else args.local_ranks
    sentry = subprocess.Popen([sys.executable, "-I", "-S", str(SENTRY), str(os.getpid()), str(os.getppid()),
                               str(local_ranks), str(args.local_rank), "5", "8", args.step, str(args.notice)],
                              stdin=read_end, stdout=subprocess.DEVNULL)
    os.close(read_end)
    time.sleep(60 if args.rank_starts is None else args.rank_starts)
    os.close(write_end)
    sentry.wait(timeout=10)
    print("SENTRY GONE", flush=True)


def be_the_launcher() -> None:
    def sleeper(seconds: float) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])

    siblings = [sleeper(60 if args.sibling_ends is None or i else args.sibling_ends) for i in range(args.siblings)]
    rank = subprocess.Popen([sys.executable, *sys.argv, "--as_rank"])
    try:
        code = rank.wait(timeout=15)
        print("RANK KILLED" if code == -signal.SIGKILL else f"RANK ENDED {code}", flush=True)
    except subprocess.TimeoutExpired:
        print("RANK WAITING", flush=True)
    finally:
        for process in [rank, *siblings]:
            process.kill()
            process.wait()


if args.as_rank:
    be_the_rank()
else:
    be_the_launcher()
