"""A worker rank's exit backstop (mpibohb/executors/mpi_worker.py), in one process."""

from __future__ import annotations

import threading

from mpibohb.executors import mpi_worker


def test_several_runs_in_one_process_share_one_exit_backstop(monkeypatch):
    # with workers_return=True a worker rank can serve several runs; each left daemonic helpers
    monkeypatch.setattr(mpi_worker, "_OUTLIVING", set())
    monkeypatch.setattr(mpi_worker, "_OUTLIVING_NAME", [])

    def backstops() -> int:
        return sum(thread.name == "mpibohb-exit-backstop" for thread in threading.enumerate())

    started = backstops()
    for run, pids in enumerate(({2**22 + 1}, {2**22 + 2, 2**22 + 3})):  # no such children: nothing is killed
        mpi_worker._kill_at_exit_if_they_outlive(pids, f"rank 1 (run {run})")
    assert backstops() == max(started, 1)
    assert mpi_worker._OUTLIVING == {2**22 + 1, 2**22 + 2, 2**22 + 3}
    assert mpi_worker._OUTLIVING_NAME == ["rank 1 (run 1)"]
