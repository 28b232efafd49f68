"""Rank 0 runs its models on one BLAS thread.

Under ``mpiexec`` rank 0 shares its node with busy worker ranks. OpenBLAS threads that wait for a
busy core made a proposal 30 to 55 times slower (a 64 x 20 by 20 x 512 product: 59 µs on one
thread, 2.2 ms on two with the other core busy), while the master's matrices are too small to gain
from a second thread. The limit is process-wide (OpenBLAS has one setting per process), so it is
set only where no compute runs beside the master: rank 0 of an MPI run.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from threadpoolctl import threadpool_limits


def one_blas_thread() -> AbstractContextManager[Any]:
    """While active, the BLAS libraries loaded in this process use one thread; the previous
    setting is restored on exit."""
    return threadpool_limits(limits=1, user_api="blas")
