"""In-process MPI tests, run by ``.ci/run`` as ``mpiexec -n 3 python -m pytest --with-mpi``.

Without ``--with-mpi`` pytest-mpi skips them; the same behaviour is also covered by the
subprocess tests in ``test_mpi_runtime.py``. Every ``run`` here passes ``workers_return=True``:
by default the worker ranks would end their process (pytest with them) when the run ends.
"""

from __future__ import annotations

import contextlib
import time

import ConfigSpace as CS
import pytest

from mpibohb import BOHB, RandomSearch


def space() -> CS.ConfigurationSpace:
    return CS.ConfigurationSpace({"x": (0.0, 1.0), "n": (1, 5)})


def loss(config, budget):
    return (config["x"] - 0.5) ** 2 + config["n"] / 10 + 1 / budget


@pytest.mark.mpi(min_size=2)
def test_rank_zero_gets_the_result_and_workers_get_none():
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    res = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=3).run(n_iterations=3, worker=loss, workers_return=True)
    if comm.Get_rank() == 0:
        assert res is not None
        assert len(res.get_all_runs()) == 9 + 3 + 1 + 5 + 1 + 3
        workers = {run.worker.split("@")[0] for run in res.get_all_runs()}
        assert workers <= {f"rank {r}" for r in range(1, comm.Get_size())}
    else:
        assert res is None
    comm.Barrier()


@pytest.mark.mpi(min_size=3)
def test_runs_on_a_sub_communicator():
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    color = 0 if world.Get_rank() < 2 else 1  # ranks 0,1 form one optimisation; rank 2 runs alone
    sub = world.Split(color, world.Get_rank())
    try:
        optimizer = RandomSearch(space(), min_budget=1, max_budget=1, seed=5)
        res = optimizer.run(n_iterations=4, worker=loss, comm=sub, workers_return=True)
        if sub.Get_rank() == 0:
            assert res is not None and len(res.get_all_runs()) == 4
            expected = "rank 1" if sub.Get_size() > 1 else "serial"
            assert {run.worker.split("@")[0] for run in res.get_all_runs()} == {expected}
        else:
            assert res is None
    finally:
        sub.Free()
    world.Barrier()


@pytest.mark.mpi(min_size=2)
def test_rank_zero_models_on_one_blas_thread_and_workers_keep_their_threads(monkeypatch):
    """Rank 0 shares its node with busy ranks: a second BLAS thread waiting for a core made its
    proposals up to 55x slower. The limit is process-wide, so only rank 0 (no compute) has it."""
    from mpi4py import MPI
    from threadpoolctl import ThreadpoolController, threadpool_limits

    from mpibohb.samplers import hpbandster_kde, tpe

    def blas_threads() -> set:
        return {lib["num_threads"] for lib in ThreadpoolController().select(user_api="blas").info()}

    comm = MPI.COMM_WORLD
    if not ThreadpoolController().select(user_api="blas"):
        pytest.skip("numpy here uses no BLAS library that threadpoolctl knows")
    seen_in_model, seen_in_compute = [], []
    original = hpbandster_kde.first_legal

    def first_legal(*args, **kwargs):  # both models rank their candidates with it
        seen_in_model.append(blas_threads())
        return original(*args, **kwargs)

    def compute(config, budget):
        seen_in_compute.append(blas_threads())
        return loss(config, budget)

    monkeypatch.setattr(hpbandster_kde, "first_legal", first_legal)
    monkeypatch.setattr(tpe, "first_legal", first_legal)
    with threadpool_limits(limits=2, user_api="blas"):
        BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=3).run(n_iterations=6, worker=compute,
                                                                     workers_return=True)
        after = blas_threads()
    try:  # every rank reaches the barrier, so a failed assertion ends the test instead of hanging it
        assert after == {2}
        if comm.Get_rank() == 0:
            assert seen_in_model and all(seen == {1} for seen in seen_in_model)
            assert not seen_in_compute
        else:
            assert not seen_in_model
            assert seen_in_compute and all(seen == {2} for seen in seen_in_compute)
    finally:
        comm.Barrier()


@contextlib.contextmanager
def _rank_zero_plays_the_watch():
    """A communicator of its own; rank 0 runs the body (calling ``worker_died`` as the watch
    thread would, for ranks that stay alive), the worker ranks take the jobs sent to them until
    rank 0 is done, so a failed assertion ends the test instead of hanging it."""
    from mpi4py import MPI

    from mpibohb.executors.mpi_protocol import TAG_JOB

    comm = MPI.COMM_WORLD.Dup()
    try:
        yield comm
    finally:
        done = comm.Ibarrier()
        while not done.Test():
            if comm.Get_rank() > 0 and comm.Iprobe(source=0, tag=TAG_JOB):
                comm.recv(source=0, tag=TAG_JOB)
            time.sleep(0.01)
        comm.Free()


@pytest.mark.mpi(min_size=3)
def test_a_death_journaled_before_a_resume_counts_toward_giving_up_on_the_job(tmp_path):
    # A job that died once in an earlier session (note_earlier_deaths) is recorded as failed at
    # its next death; a job without that history runs again on another rank.
    from mpibohb.brackets import Job
    from mpibohb.executors.mpi import MPIExecutor

    resumed, fresh = Job((0, 0, 2), {"x": 0.1}, 1.0), Job((0, 0, 3), {"x": 0.2}, 1.0)
    with _rank_zero_plays_the_watch() as comm:
        if comm.Get_rank() == 0:
            journal: list[dict] = []
            after_resume = MPIExecutor(comm, str(tmp_path))
            after_resume.set_journal(journal.append)
            after_resume.note_earlier_deaths({(resumed.config_id, resumed.budget): 1})
            after_resume.submit(resumed)  # to rank 1
            after_resume.worker_died(1, "")
            [(job, outcome)] = after_resume.drain()
            assert job == resumed and "ended 2 times while running this job" in (outcome.error or "")
            assert [r["type"] for r in journal] == ["lost"]

            first_session = MPIExecutor(comm, str(tmp_path))
            first_session.submit(fresh)  # to rank 1
            first_session.worker_died(1, "")
            assert first_session.drain() == []  # it runs again, on rank 2


@pytest.mark.mpi(min_size=3)
def test_a_death_after_another_ranks_death_does_not_count_against_its_job(tmp_path):
    # When one rank dies the launcher kills the others; a death seen after another since its job
    # was sent, or with it, blames nothing. A job sent again after a death and dying again is
    # blamed twice.
    from mpibohb.brackets import Job
    from mpibohb.executors.mpi import MPIExecutor

    culprit, bystander = Job((0, 0, 2), {"x": 0.1}, 1.0), Job((0, 0, 3), {"x": 0.2}, 1.0)
    with _rank_zero_plays_the_watch() as comm:
        if comm.Get_rank() == 0:
            journal: list[dict] = []
            both_running = MPIExecutor(comm, str(tmp_path))
            both_running.set_journal(journal.append)
            both_running.submit(culprit)  # to rank 1
            both_running.submit(bystander)  # to rank 2
            both_running.worker_died(1, "")
            both_running.worker_died(2, "")
            assert both_running.drain() == []  # each runs again (no rank is left to run them)
            assert [(r["config_id"], r["blames_job"]) for r in journal] == [([0, 0, 2], True), ([0, 0, 3], False)]
            assert "not counted against the job" in journal[1]["reason"]

            together: list[dict] = []  # seen in one wake-up of a watch that lost their order
            seen_together = MPIExecutor(comm, str(tmp_path))
            seen_together.set_journal(together.append)
            seen_together.submit(culprit)  # to rank 1
            seen_together.submit(bystander)  # to rank 2
            seen_together.worker_died(1, "", in_order=False)
            seen_together.worker_died(2, "", in_order=False)
            assert [r["blames_job"] for r in together] == [False, False]

            sent_again = MPIExecutor(comm, str(tmp_path))
            sent_again.submit(culprit)  # to rank 1
            sent_again.worker_died(1, "")
            assert sent_again.drain() == []  # sent again, to rank 2, after the first death
            sent_again.worker_died(2, "")
            [(job, outcome)] = sent_again.drain()
            assert job == culprit and "ended 2 times while running this job" in (outcome.error or "")
