"""A worker rank's exit backstop (mpibohb/executors/leftovers.py), in one process without MPI."""

from __future__ import annotations

import threading

from mpibohb.executors import leftovers


def test_several_runs_in_one_process_share_one_exit_backstop(monkeypatch):
    # with workers_return=True a worker rank can serve several runs; each left daemonic helpers
    monkeypatch.setattr(leftovers, "_OUTLIVING", set())
    monkeypatch.setattr(leftovers, "_OUTLIVING_NAME", [])

    def backstops() -> int:
        return sum(thread.name == "mpibohb-exit-backstop" for thread in threading.enumerate())

    started = backstops()
    for run, pids in enumerate(({2**22 + 1}, {2**22 + 2, 2**22 + 3})):  # no such children: nothing is killed
        leftovers._kill_at_exit_if_they_outlive(pids, f"rank 1 (run {run})")
    assert backstops() == max(started, 1)
    assert leftovers._OUTLIVING == {2**22 + 1, 2**22 + 2, 2**22 + 3}
    assert leftovers._OUTLIVING_NAME == ["rank 1 (run 1)"]
