"""The SPMD runtime under a real ``mpiexec`` with several ranks (subprocesses with timeouts)."""

from __future__ import annotations

import json
import sys

import pytest
from mpi_launch import ROOT, SCRIPTS, run_command, run_mpi

SPMD = SCRIPTS / "spmd_run.py"


def result_of(finished) -> dict:
    lines = [line for line in finished.stdout.splitlines() if line.startswith("RESULT ")]
    assert finished.returncode == 0, f"exit {finished.returncode}\n{finished.stdout[-2000:]}\n{finished.stderr[-4000:]}"
    assert len(lines) == 1, f"expected one RESULT line (rank 0 only), got {len(lines)}"
    return json.loads(lines[0][len("RESULT "):])


@pytest.mark.parametrize("ranks", [2, 3, 5, 8])
def test_quickstart_under_mpiexec(ranks, tmp_path):
    finished = run_mpi(ranks, ROOT / "examples" / "quickstart.py", timeout=180, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-4000:]
    assert finished.stdout.count("Best found configuration:") == 1
    assert "A total of 69 runs were executed." in finished.stdout
    assert "BAD TERMINATION" not in finished.stdout + finished.stderr


@pytest.mark.parametrize("optimizer", ["bohb", "hb", "rs"])
def test_same_seed_same_evaluations_serial_threads_mpi(optimizer, tmp_path):
    args = ["--optimizer", optimizer, "--worker", "toy", "--n_iterations", "4"]
    serial = result_of(run_command([sys.executable, str(SPMD), *args], timeout=120, cwd=tmp_path))
    threads = result_of(run_command([sys.executable, str(SPMD), *args, "--n_workers", "1"], 120, tmp_path))
    mpi = result_of(run_mpi(2, SPMD, *args, timeout=120, cwd=tmp_path))

    def evaluations(result):
        return [(r["config_id"], r["budget"], r["config"], r["loss"]) for r in result["runs"]]

    assert len(serial["runs"]) >= 12
    assert {r["worker"].split("@")[0] for r in threads["runs"]} == {"mpibohb-worker_0"}
    assert evaluations(serial) == evaluations(threads) == evaluations(mpi)
    assert {r["worker"].split("@")[0] for r in mpi["runs"]} == {"rank 1"}


def test_more_workers_spread_the_work(tmp_path):
    result = result_of(run_mpi(5, SPMD, "--worker", "toy", "--n_iterations", "4", timeout=120, cwd=tmp_path))
    ranks = {r["worker"].split("@")[0] for r in result["runs"]}
    assert ranks == {"rank 1", "rank 2", "rank 3", "rank 4"}
    budgets = sorted({r["budget"] for r in result["runs"]})
    assert budgets == [1.0, 3.0, 9.0]


def test_user_failures_become_failed_runs_and_the_run_completes(tmp_path):
    finished = run_mpi(4, SPMD, "--worker", "faulty", "--timeout", "1", "--optimizer", "hb", timeout=120,
                       cwd=tmp_path)
    result = result_of(finished)
    runs = result["runs"]
    # (1, 9, 3) has 3 rungs; 3 iterations of HyperBand: 9+3+1 + 5+1 + 3 = 22 evaluations.
    assert len(runs) == 22
    errors = [r["error"] for r in runs if r["error"]]
    assert all(r["loss"] is None for r in runs if r["error"])
    for reason in ["RuntimeError on rank", "compute must return a dict", "the loss must be finite",
                   "cannot pickle", "timeout"]:
        assert any(reason in e for e in errors), f"no failure mentions {reason!r}: {errors}"
    assert any(r["loss"] is not None for r in runs)


def test_a_worker_that_dies_ends_the_job_nonzero_quickly(tmp_path):
    finished = run_mpi(4, SPMD, "--worker", "exit", "--n_iterations", "6", timeout=60, cwd=tmp_path)
    assert finished.returncode != 0
    assert finished.seconds < 30
    assert "RESULT" not in finished.stdout


def test_an_internal_error_on_the_master_aborts_the_job(tmp_path):
    finished = run_mpi(3, SPMD, "--worker", "internal", timeout=60, cwd=tmp_path)
    assert finished.returncode != 0
    assert finished.seconds < 30
    assert "fatal error on rank 0" in finished.stderr
    assert "simulated internal error" in finished.stderr


def test_an_internal_error_on_a_worker_aborts_the_job(tmp_path):
    finished = run_mpi(3, SPMD, "--worker", "worker_internal", timeout=60, cwd=tmp_path)
    assert finished.returncode != 0
    assert finished.seconds < 30
    assert "fatal error on rank 1" in finished.stderr
    assert "simulated internal error in the worker loop" in finished.stderr


def test_a_single_process_run_does_not_import_mpi4py(tmp_path):
    code = ("import sys; sys.argv = ['x', '--n_iterations', '1']; import runpy; "
            f"runpy.run_path({str(SPMD)!r}, run_name='__main__'); "
            "assert 'mpi4py' not in sys.modules, 'mpi4py was imported'")
    finished = run_command([sys.executable, "-c", code], timeout=120, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "RESULT " in finished.stdout
