"""Rank 0 takes mpibohb's stop signals, then stays busy without looking at them (as a master
stuck in long work would); the other ranks wait as worker ranks do, ignoring the signals. Rank 0
prints ``BUSY <its pid>`` once every rank has its handlers in place.

    mpiexec -n 3 python busy_master.py SECONDS
"""

import os
import sys
import time

from mpi4py import MPI

from mpibohb.stopping import StopFlag, ignore_stop_signals, stop_on_signals

comm = MPI.COMM_WORLD
if comm.Get_rank() == 0:
    flag = StopFlag()
    with stop_on_signals(flag, enabled=True):
        comm.barrier()
        print("BUSY", os.getpid(), flush=True)
        end = time.monotonic() + float(sys.argv[1])
        while time.monotonic() < end:
            sum(range(10_000))
    print("DONE", flag.signum, flush=True)
else:
    ignore_stop_signals()
    comm.barrier()
    while not comm.Iprobe(source=0):
        time.sleep(0.01)
