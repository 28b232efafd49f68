"""The models' numerical work runs on one BLAS thread.

Rank 0 shares its node with busy worker ranks. OpenBLAS threads that wait for a busy core made a
proposal up to 50 times slower (a 64 x 20 by 20 x 512 product: 59 µs on one thread, 2.2 ms on two
with the other core busy), while the master's matrices are too small to gain from a second thread.
The limit holds during a proposal only, so a compute function in the same process keeps its threads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from threadpoolctl import ThreadpoolController

Function = TypeVar("Function", bound=Callable[..., Any])
_controller: ThreadpoolController | None = None


def _blas() -> ThreadpoolController:
    """The BLAS libraries loaded in this process (found once: a search costs about 2 ms)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


def on_one_blas_thread(function: Function) -> Function:
    """``function`` with the BLAS libraries limited to one thread while it runs (about 20 µs a call)."""

    @functools.wraps(function)
    def limited(*args: Any, **kwargs: Any) -> Any:
        with _blas().limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return limited  # type: ignore[return-value]
