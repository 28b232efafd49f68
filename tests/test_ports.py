"""HpBandSter 0.7.4's examples 1 to 8, ported with only the changes README.md lists
(``tests/ports/``), run serially and under ``mpiexec``: each must give under MPI what it gives
serially.

With one worker rank (``mpiexec -n 2``) a seeded run is identical to the serial one: the same
config ids, budgets, configurations and losses. With two (``-n 3``) BOHB samples while results are
still out, so its configurations differ; there the test checks that the run is equivalent: the
same settings and number of runs per iteration and budget, every loss the worker's loss for that
configuration and budget, both worker ranks used, the Result on rank 0 only.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from mpi_launch import ROOT, Finished, mpiexec, run_at_once

pytestmark = pytest.mark.mpiexec
PORTS = ROOT / "tests" / "ports"
# the ports import toy_worker as README.md says (a copy next to the script; here on the path), and
# the stand-in worker of examples 5 and 8 trains on one thread, so that no rank waits for another
ENVIRONMENT = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "examples"), str(PORTS)]),
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
MODES = {"serial": None, "mpi2": 2, "mpi3": 3}  # mpiexec -n 2: one worker rank; -n 3: two
SHORT = ["--min_budget", "81", "--max_budget", "243", "--n_iterations", "2"]  # 6 runs of 0.5 s


@dataclass
class Job:
    """One port to run in ``tmp_path / mode``: under ``mpiexec -n ranks`` (None: serially). A port
    that pickles its Result to ``pickled`` (relative to its directory) runs as it is; any other
    through run_port.py, which writes what its ``res`` holds."""

    mode: str
    ranks: int | None
    port: str
    args: list[str]
    pickled: str | None = None

    def command(self, out: Path) -> list[str]:
        """``[mpiexec -n ranks] python [run_port.py out] port args...``"""
        harness = [] if self.pickled else [str(PORTS / "run_port.py"), str(out)]
        python = [sys.executable, *harness, str(PORTS / self.port), *self.args]
        return python if self.ranks is None else [mpiexec(), "-n", str(self.ranks), *python]


def run_in_modes(tmp_path: Path, port: str, args: dict[str, list[str]],
                 pickled: str | None = None) -> dict[str, tuple[Finished, dict]]:
    """Run ``port`` serially, under ``mpiexec -n 2`` and ``-n 3`` at once, each in its own directory
    ``tmp_path / mode`` with ``args[mode]``; by mode, the process and a summary of its Result."""
    runs = run_each(tmp_path, [Job(mode, ranks, port, args[mode], pickled) for mode, ranks in MODES.items()])
    return {mode: runs[mode, port] for mode in MODES}


def run_each(tmp_path: Path, jobs: list[Job]) -> dict[tuple[str, str], tuple[Finished, dict]]:
    """Run every job at once; by ``(mode, port)``, the process and a summary of its Result."""
    outs = [tmp_path / job.mode / f"{job.port}.json" for job in jobs]
    for job in jobs:
        (tmp_path / job.mode).mkdir(exist_ok=True)
    finished = run_at_once([job.command(out) for job, out in zip(jobs, outs)], timeout=240,
                           cwds=[tmp_path / job.mode for job in jobs], environment=ENVIRONMENT)
    runs = {}
    for job, done, out in zip(jobs, finished, outs):
        key = (job.mode, job.port)
        assert done.returncode == 0, f"{key}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        assert "BAD TERMINATION" not in done.stdout + done.stderr, key
        summary = pickled_summary(tmp_path / job.mode / job.pickled) if job.pickled else json.loads(out.read_text())
        runs[key] = (done, summary)
    return runs


def settings(summary: dict) -> dict:
    """The run's settings, without the start time and the number of workers."""
    return {k: v for k, v in summary["HB_config"].items() if k not in ("time_ref", "n_workers")}


def runs_per_rung(summary: dict) -> Counter:
    """How many runs each (iteration, budget) had."""
    return Counter((config_id[0], budget) for config_id, budget, _, _ in summary["evaluations"])


def check_like_serial(runs: dict[str, tuple[Finished, dict]], loss_of) -> None:
    """mpi2 identical to serial; mpi3 equivalent (see the module's docstring)."""
    serial, one, two = (runs[mode][1] for mode in MODES)
    assert len(serial["evaluations"]) >= 6
    assert one["evaluations"] == serial["evaluations"]
    assert settings(one) == settings(serial) == settings(two)
    assert runs_per_rung(two) == runs_per_rung(serial)
    assert one["workers"] == ["rank 1"] and two["workers"] == ["rank 1", "rank 2"]
    for summary in (serial, two):
        for config_id, budget, config, loss in summary["evaluations"]:
            assert loss == loss_of(config, budget), (config_id, budget, config)


def toy_loss(config: dict, budget: float) -> float:
    """The loss of examples/toy_worker.py's MyWorker, the worker of examples 1 to 4."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from toy_worker import MyWorker
    finally:
        sys.path.remove(str(ROOT / "examples"))
    return MyWorker().compute(config=config, budget=budget)["loss"]


def printed(finished: Finished) -> list[str]:
    """The port's printed lines, without the wall time."""
    return [line for line in finished.stdout.splitlines() if "seconds to complete" not in line]


@pytest.mark.parametrize("port, args", [
    ("example_1_local_sequential.py", {"serial": [], "mpi2": [], "mpi3": []}),
    ("example_2_local_parallel_threads.py", {"serial": [*SHORT, "--n_workers", "1"],
                                             "mpi2": [*SHORT, "--n_workers", "1"], "mpi3": [*SHORT]}),
    ("example_3_local_parallel_processes.py", {"serial": [*SHORT], "mpi2": [*SHORT, "--n_workers", "1"],
                                               "mpi3": [*SHORT]}),
])
def test_examples_1_to_3_give_under_mpiexec_what_they_give_serially(tmp_path, port, args):
    runs = run_in_modes(tmp_path, port, args)
    check_like_serial(runs, toy_loss)
    for mode, (finished, _) in runs.items():
        assert finished.stdout.count("Best found configuration:") == 1, (mode, finished.stdout)
    assert printed(runs["mpi2"][0]) == printed(runs["serial"][0])
    assert "is ignored" not in runs["mpi3"][0].stderr  # min_n_workers and n_workers are both 2
    if port.startswith("example_3"):  # serially, min_n_workers=2 cannot be met: a warning says how
        assert runs["serial"][0].stderr.count("min_n_workers=2 is ignored") == 1


def test_example_4_pickles_the_result_of_rank_0(tmp_path):
    base = [*SHORT, "--run_id", "4", "--shared_directory", "."]
    runs = run_in_modes(tmp_path, "example_4_cluster.py",
                        {"serial": base, "mpi2": [*base, "--n_workers", "1"], "mpi3": base}, pickled="results.pkl")
    check_like_serial(runs, toy_loss)


def load_pickled(path: Path):
    """The Result pickled at ``path``: not None, so rank 0's."""
    with open(path, "rb") as fh:
        res = pickle.load(fh)
    assert res is not None, f"{path} holds None"
    return res


def pickled_summary(path: Path) -> dict:
    """What run_port.py writes, of the Result pickled at ``path``."""
    sys.path.insert(0, str(PORTS))
    try:
        from run_port import summary
    finally:
        sys.path.remove(str(PORTS))
    return json.loads(json.dumps(summary(load_pickled(path))))


def sklearn_loss(config: dict, budget: float) -> float:
    """The loss of the stand-in worker of examples 5 and 8, on one thread as in the ports."""
    from threadpoolctl import threadpool_limits

    sys.path.insert(0, str(PORTS))
    try:
        from example_5_sklearn_worker import SklearnWorker
    finally:
        sys.path.remove(str(PORTS))
    with threadpool_limits(1):
        return SklearnWorker().compute(config=config, budget=budget, working_directory=".")["loss"]


def test_examples_5_to_8_give_under_mpiexec_what_they_give_serially(tmp_path):
    """Example 5 logs a run into example_5_run/; 6 and 7 analyse it; 8 warm-starts from it."""
    five = run_in_modes(tmp_path, "example_5_mnist.py", dict.fromkeys(
        MODES, ["--n_iterations", "2", "--run_id", "5", "--shared_directory", "example_5_run"]),
        pickled="example_5_run/results.pkl")
    check_like_serial(five, sklearn_loss)

    eight_args = ["--n_iterations", "2", "--run_id", "8", "--previous_run_dir", "example_5_run/",
                  "--shared_directory", "example_8_run"]
    eights = [Job(mode, ranks, "example_8_mnist_continued.py", eight_args, "example_8_run/results.pkl")
              for mode, ranks in MODES.items()]
    analyses = [Job(mode, None, "plot_example_6_analysis.py", []) for mode in ("serial", "mpi2")]  # both logs
    analyses.append(Job("serial", None, "plot_example_7_interactive_plot.py", []))
    runs = run_each(tmp_path, eights + analyses)
    eight = {mode: runs[mode, "example_8_mnist_continued.py"] for mode in MODES}
    check_like_serial(eight, sklearn_loss)
    for mode in MODES:
        assert f"warm start: {len(five[mode][1]['evaluations'])} earlier runs fed to the model" in eight[mode][0].stderr

    six = {mode: runs[mode, "plot_example_6_analysis.py"][0] for mode in ("serial", "mpi2")}
    assert six["serial"].stdout == six["mpi2"].stdout
    res = load_pickled(tmp_path / "serial" / "example_5_run" / "results.pkl")
    incumbent = res.get_id2config_mapping()[res.get_incumbent_id()]["config"]
    assert six["serial"].stdout.splitlines()[:2] == ["Best found configuration:", str(incumbent)]
    seven = runs["serial", "plot_example_7_interactive_plot.py"][1]["learning_curves"]
    assert [config_id for config_id, _ in seven] == sorted(map(list, res.get_id2config_mapping()))
    for config_id, [curve] in seven:  # the test accuracies of the configuration's runs, by budget
        runs_by_budget = sorted(res.get_runs_by_id(tuple(config_id)), key=lambda r: r.budget)
        assert [accuracy for _, accuracy in curve] == [r.info["test accuracy"] for r in runs_by_budget]
