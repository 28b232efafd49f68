"""Checkpoints: ``previous_budget`` and ``checkpoint_dir`` for a ``compute`` that names them, the
clean-up of the directories, the accounting of increments, and the helper that writes atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import ConfigSpace as CS
import numpy as np
import pytest
from cli_in_process import run_cli

from mpibohb import BOHB, HyperBand, Worker, atomic_path, load_result, simulate
from mpibohb.checkpoints import OWNER, IncumbentTracker, config_directories
from mpibohb.journal import read_journal
from mpibohb.result import Result, Run
from mpibohb.run_directory import LOCK, lock_run_directory


def space() -> CS.ConfigurationSpace:
    return CS.ConfigurationSpace({"x": (0.0, 1.0), "c": ["a", "b"]}, seed=0)


def loss_of(config: dict, budget: float) -> float:
    return (config["x"] - 0.3) ** 2 + (0.1 if config["c"] == "b" else 0.0) + 1.0 / budget


class Training:
    """A compute that continues from its checkpoint: reads the budget its directory holds, writes
    its own; records what it found and which directories existed when it ran."""

    def __init__(self, run_dir: Path | None = None) -> None:
        self.run_dir = run_dir
        self.snapshots: list[tuple[int, set[str]]] = []  # (results journaled before the call, dirs on disk)

    def __call__(self, config: dict, budget: float, previous_budget: float | None, checkpoint_dir: str) -> dict:
        assert os.path.isdir(checkpoint_dir)
        if self.run_dir is not None:
            journal = (self.run_dir / "journal.jsonl").read_text()
            self.snapshots.append((journal.count('"type":"result"'), set(os.listdir(Path(checkpoint_dir).parent))))
        state = Path(checkpoint_dir, "state.json")
        found = json.loads(state.read_text())["budget"] if state.exists() else None
        with atomic_path(state) as temporary:
            Path(temporary).write_text(json.dumps({"budget": budget}))
        return {"loss": loss_of(config, budget), "info": {"found": found, "previous_budget": previous_budget}}


def results(run_dir: Path) -> list[dict]:
    return [record for record in read_journal(run_dir) if record["type"] == "result"]


def name(config_id) -> str:
    return "_".join(map(str, config_id))


def check_found_what_the_previous_job_wrote(run_dir: Path) -> int:
    """Every job found its configuration's previous budget in its directory, and was told it; the
    number of jobs that continued."""
    continued = 0
    for record in results(run_dir):
        assert record["info"]["previous_budget"] == record["previous_budget"]
        assert record["info"]["found"] == record["previous_budget"], record
        continued += record["previous_budget"] is not None
    return continued


def still_promotable(run_dir: Path, asynchronous: bool) -> dict[str, int]:
    """For each configuration, how many results were journaled when it could no longer be promoted:
    synchronously when the stage of its last evaluation completed, asynchronously when its bracket
    did (its last result; the journal is in the order the master recorded them)."""
    records = results(run_dir)
    last_budget: dict[tuple, float] = {}
    for record in records:
        last_budget[tuple(record["config_id"])] = max(record["budget"], last_budget.get(tuple(record["config_id"]), 0))
    ends: dict[tuple, int] = {}
    for position, record in enumerate(records, start=1):
        group = record["config_id"][0] if asynchronous else (record["config_id"][0], record["budget"])
        ends[group] = position
    return {name(config_id): ends[config_id[0] if asynchronous else (config_id[0], budget)]
            for config_id, budget in last_budget.items()}


def incumbent_after(run_dir: Path, count: int, among: set[str] | None = None) -> str | None:
    """The incumbent after the first ``count`` results (of the configurations ``among`` only)."""
    runs = [Run(tuple(r["config_id"]), r["budget"], r["loss"], None, {}) for r in results(run_dir)[:count]
            if among is None or name(r["config_id"]) in among]
    incumbent = Result(runs, {}, {}).get_incumbent_id()
    return None if incumbent is None else name(incumbent)


def on_disk(root: Path) -> list[str]:
    return config_directories(str(root))


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_promoted_configuration_continues_from_its_checkpoint_and_the_disk_holds_only_what_can_be_promoted(
        tmp_path, asynchronous):
    run_dir = tmp_path / "run"
    training = Training(run_dir)
    opt = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=3, run_dir=run_dir, asynchronous=asynchronous)
    res = opt.run(n_iterations=4, worker=training)

    assert check_found_what_the_previous_job_wrote(run_dir) > 5
    ends = still_promotable(run_dir, asynchronous)
    for count, present in training.snapshots:
        retired = {config for config, end in ends.items() if end <= count}
        allowed = (set(ends) - retired) | {incumbent_after(run_dir, count), incumbent_after(run_dir, count, retired)}
        assert present - {OWNER, LOCK} <= allowed, (count, present - allowed)
    assert on_disk(run_dir / "checkpoints") == [name(res.get_incumbent_id())]


@pytest.mark.parametrize("keep", ["all", "none"])
def test_keep_checkpoints_all_keeps_every_directory_and_none_keeps_none(tmp_path, keep):
    run_dir = tmp_path / "run"
    res = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=1, run_dir=run_dir,
                    keep_checkpoints=keep).run(n_iterations=2, worker=Training())
    kept = on_disk(run_dir / "checkpoints")
    assert kept == (sorted(map(name, res.get_id2config_mapping())) if keep == "all" else [])
    check_found_what_the_previous_job_wrote(run_dir)


def test_checkpoint_root_holds_the_directories_and_threads_find_each_others_checkpoints(tmp_path):
    root = tmp_path / "scratch"
    opt = BOHB(space(), min_budget=1, max_budget=9, eta=3, seed=2, run_dir=tmp_path / "run", checkpoint_root=root,
               asynchronous=True, min_points_in_model=3)
    res = opt.run(n_iterations=3, worker=Training(), n_workers=3)
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert on_disk(root) == [name(res.get_incumbent_id())]
    assert check_found_what_the_previous_job_wrote(tmp_path / "run") > 0


def test_a_simulated_run_gives_checkpoints_too(tmp_path):
    opt = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=5, checkpoint_root=tmp_path / "c")
    res = simulate(opt, n_iterations=2, worker=Training(), n_workers=4, duration=lambda config, budget: budget)
    continued = [run for run in res.get_all_runs() if run.previous_budget is not None]
    assert continued and all(run.info["found"] == run.previous_budget for run in continued)


def test_a_compute_without_the_new_arguments_sees_no_change(tmp_path):
    seen: list[set[str]] = []

    class HpBandSterStyle(Worker):
        def compute(self, config, budget, **kwargs):
            seen.append(set(kwargs))
            return {"loss": loss_of(config, budget), "info": {}}

    def evaluations(worker, run_dir=None):
        res = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=7, run_dir=run_dir).run(
            n_iterations=3, worker=worker)
        return [(run.config_id, run.budget, run.loss) for run in res.get_all_runs()]

    plain = evaluations(lambda config, budget: loss_of(config, budget))
    assert evaluations(HpBandSterStyle(), tmp_path / "a") == plain
    assert seen and all(keys == {"config_id", "working_directory"} for keys in seen)
    assert not (tmp_path / "a" / "checkpoints").exists()
    with_previous = evaluations(lambda config, budget, previous_budget: loss_of(config, budget))
    assert with_previous == plain
    assert evaluations(Training(), tmp_path / "b") == plain


def test_checkpoint_dir_without_a_run_dir_or_root_is_refused_at_once():
    opt = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=1)
    with pytest.raises(ValueError, match="checkpoint_dir.*run_dir.*checkpoint_root"):
        opt.run(n_iterations=1, worker=Training())


def test_a_bad_keep_checkpoints_is_refused():
    with pytest.raises(ValueError, match="keep_checkpoints must be one of 'incumbent', 'all', 'none', got 'best'"):
        HyperBand(space(), keep_checkpoints="best")


def test_previous_budget_is_in_the_journal_the_runs_the_data_frame_and_the_report(tmp_path):
    run_dir = tmp_path / "run"
    HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=4, run_dir=run_dir).run(
        n_iterations=3, worker=lambda config, budget: loss_of(config, budget))
    jobs = [r for r in read_journal(run_dir) if r["type"] == "job"]
    assert all("previous_budget" in record for record in jobs)
    res = load_result(run_dir)
    by_config: dict = {}
    for run in res.get_all_runs():
        assert run.previous_budget == by_config.get(run.config_id)  # HyperBand: the stage before, if any
        by_config[run.config_id] = run.budget
    full, increments = res.budget_spent(), res.budget_spent(increments_only=True)
    assert full == sum(run.budget for run in res.get_all_runs())
    assert increments == sum(run.budget - (run.previous_budget or 0) for run in res.get_all_runs()) < full
    _, df_y = res.get_pandas_dataframe(with_previous_budget=True)
    assert list(df_y.columns) == ["loss", "previous_budget"] and df_y["previous_budget"].notna().sum() > 0
    _, plain_y = res.get_pandas_dataframe()
    assert list(plain_y.columns) == ["loss"]
    report = run_cli("report", str(run_dir))
    assert report.returncode == 0
    assert f"budget used: {full:g} " in report.stdout
    assert f"counting only increments (as when training continues from checkpoints): {increments:g}\n" in report.stdout
    results_json = (run_dir / "results.json").read_text().splitlines()
    assert all(len(json.loads(line)) == 5 for line in results_json)  # HpBandSter's line, untouched


def test_a_failed_evaluation_is_not_a_previous_budget(tmp_path):
    def sometimes_failing(config, budget, previous_budget):
        if budget == 3:
            raise RuntimeError("no")
        return {"loss": loss_of(config, budget), "info": previous_budget}

    res = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=4).run(n_iterations=1, worker=sometimes_failing)
    at_nine = [run for run in res.get_all_runs() if run.budget == 9]
    assert at_nine and all(run.previous_budget == 1 and run.info == 1 for run in at_nine)


def test_the_incumbent_tracker_agrees_with_result_get_incumbent_id():
    rng = np.random.default_rng(0)
    for trial in range(200):
        tracker, runs = IncumbentTracker(), []
        for _ in range(rng.integers(1, 30)):
            config_id = (0, 0, int(rng.integers(0, 6)))
            budget = float(rng.choice([1, 3, 9]))
            loss = None if rng.random() < 0.25 else float(rng.integers(0, 5))
            tracker.add(config_id, budget, loss)
            runs.append(Run(config_id, budget, loss, None, {}))
            if trial % 2 or rng.random() < 0.3:  # asked after every run, or now and then (failures pile up)
                assert tracker.config_id == Result(runs, {}, {}).get_incumbent_id(), (trial, runs)
        assert tracker.config_id == Result(runs, {}, {}).get_incumbent_id(), (trial, runs)


def test_atomic_path_replaces_the_file_whole_or_not_at_all(tmp_path):
    target = tmp_path / "model.pt"
    with atomic_path(target) as temporary:
        Path(temporary).write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        Path(temporary).write_text("half")
        raise RuntimeError("killed while saving")
    assert target.read_text() == "first" and os.listdir(tmp_path) == ["model.pt"]


KILLED_WHILE_SAVING = """
import os, sys
from mpibohb import atomic_path
with atomic_path(os.path.join(sys.argv[1], "state.json")) as temporary:
    open(temporary, "w").write("half")
    os._exit(1)
"""


@pytest.mark.processes
def test_what_a_process_killed_while_saving_left_is_gone_by_the_next_job_and_the_runs_end(tmp_path):
    import subprocess
    import sys

    def killed_while_saving(config, budget, previous_budget, checkpoint_dir):
        stray = [name for name in os.listdir(checkpoint_dir) if name != "state.json"]
        subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, checkpoint_dir], timeout=60, check=False)
        assert len(os.listdir(checkpoint_dir)) == 1 + ("state.json" in os.listdir(checkpoint_dir))  # it left one
        with atomic_path(Path(checkpoint_dir, "state.json")) as temporary:
            Path(temporary).write_text(json.dumps({"budget": budget}))
        return {"loss": loss_of(config, budget), "info": {"stray": stray}}

    res = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=1, run_dir=tmp_path / "run").run(
        n_iterations=2, worker=killed_while_saving)
    runs = res.get_all_runs()
    assert any(run.budget > 1 for run in runs) and all(run.info["stray"] == [] for run in runs)
    root = tmp_path / "run" / "checkpoints"
    assert on_disk(root) == [name(res.get_incumbent_id())]
    assert os.listdir(root / name(res.get_incumbent_id())) == ["state.json"]


def test_a_resume_never_takes_over_another_runs_checkpoint_root(tmp_path):
    kwargs = dict(min_budget=1, max_budget=9, eta=3, seed=1)
    HyperBand(space(), run_dir=tmp_path / "b", checkpoint_root=tmp_path / "root_b", keep_checkpoints="all",
              **kwargs).run(n_iterations=2, worker=Training())
    theirs = on_disk(tmp_path / "root_b")
    HyperBand(space(), run_dir=tmp_path / "a", **kwargs).run(n_iterations=1, worker=Training())
    for holder in (tmp_path / "a" / LOCK, tmp_path / "root_b" / LOCK):
        holder.write_text("12345@a-node\n")  # as killed runs leave them
    with pytest.raises(FileExistsError, match="holds the checkpoints of another run"):
        HyperBand(space(), run_dir=tmp_path / "a", checkpoint_root=tmp_path / "root_b", **kwargs).run(
            n_iterations=2, worker=Training(), resume=True)
    assert on_disk(tmp_path / "root_b") == theirs
    assert [(path / LOCK).read_text() for path in (tmp_path / "a", tmp_path / "root_b")] == ["12345@a-node\n"] * 2


def test_a_resume_with_another_checkpoint_root_says_where_the_checkpoints_are(tmp_path, caplog):
    kwargs = dict(min_budget=1, max_budget=9, eta=3, seed=1, run_dir=tmp_path / "run", keep_checkpoints="all")
    HyperBand(space(), **kwargs).run(n_iterations=1, worker=Training())
    HyperBand(space(), checkpoint_root=tmp_path / "moved", **kwargs).run(n_iterations=2, worker=Training(),
                                                                         resume=True)
    assert f"checkpoint directories of this run are in {tmp_path / 'run' / 'checkpoints'}, not in " \
           f"{tmp_path / 'moved'} where this session keeps them" in caplog.text


def test_a_copied_run_directory_finds_its_checkpoints_and_says_nothing_about_them(tmp_path, caplog):
    # its journal names the original's checkpoint root: a resume of the copy warned that promoted
    # configurations would start from zero, though the copy's own root held their directories
    import shutil

    kwargs = dict(min_budget=1, max_budget=9, eta=3, seed=1, keep_checkpoints="all")
    HyperBand(space(), run_dir=tmp_path / "run", **kwargs).run(n_iterations=1, worker=Training())
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    caplog.clear()
    HyperBand(space(), run_dir=tmp_path / "copy", **kwargs).run(n_iterations=2, worker=Training(), resume=True)
    assert "start from zero" not in caplog.text, caplog.text


def test_the_incumbents_directory_stays_when_its_successor_fails_on_a_larger_budget(tmp_path):
    def failing_at_nine(config, budget, previous_budget, checkpoint_dir):
        if budget == 9:
            raise MemoryError("out of memory at 9 epochs")
        return Training()(config, budget, previous_budget, checkpoint_dir)

    res = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=1, run_dir=tmp_path / "run").run(
        n_iterations=1, worker=failing_at_nine)
    assert res.get_incumbent_id() is not None
    assert on_disk(tmp_path / "run" / "checkpoints") == [name(res.get_incumbent_id())]


@pytest.mark.parametrize("root, message", [("a_file", "checkpoint_root .*a_file is a file, not a directory"),
                                           ("", "checkpoint_root='' is empty"),
                                           ("a_file/root", "checkpoint_root .*a_file/root cannot be made or written")])
def test_an_unusable_checkpoint_root_is_refused_before_the_run_directory_is_written(tmp_path, root, message):
    (tmp_path / "a_file").write_text("not a directory")
    with pytest.raises(ValueError, match=message):
        HyperBand(space(), min_budget=1, max_budget=9, run_dir=tmp_path / "run",
                  checkpoint_root=str(tmp_path / root) if root else root).run(n_iterations=1, worker=Training())
    assert not (tmp_path / "run").exists()


def test_functions_that_name_a_checkpoint_argument_get_it_and_a_parameter_without_value_is_named(tmp_path):
    import functools

    def with_defaults(config, budget, checkpoint_dir=None, seed=0):
        assert checkpoint_dir is not None and seed == 0
        return loss_of(config, budget)

    def with_data(config, budget, checkpoint_dir, previous_budget, data):
        assert os.path.isdir(checkpoint_dir) and data == "X"
        return loss_of(config, budget)

    for number, worker in enumerate([with_defaults, functools.partial(with_data, data="X")]):
        res = HyperBand(space(), min_budget=1, max_budget=9, seed=1, checkpoint_root=tmp_path / str(number)).run(
            n_iterations=1, worker=worker)
        assert not res.failed_runs()

    def needs_lr(config, budget, checkpoint_dir, lr):
        return 0.0

    class NeedsLr(Worker):
        def compute(self, config, budget, lr, **kwargs):
            return 0.0

    for worker in (needs_lr, NeedsLr()):
        with pytest.raises(ValueError, match="lr would have no value"):
            HyperBand(space(), min_budget=1, max_budget=9, checkpoint_root=tmp_path / "x").run(1, worker)


def test_atomic_path_keeps_the_suffix_for_savers_that_add_one_and_refuses_a_directory(tmp_path):
    with atomic_path(tmp_path / "weights.npy") as temporary:
        np.save(temporary, np.arange(3))
    assert np.load(tmp_path / "weights.npy").tolist() == [0, 1, 2]
    with pytest.raises(IsADirectoryError, match="atomic_path is for one file"), \
            atomic_path(tmp_path / "model") as temporary:
        os.mkdir(temporary)
        Path(temporary, "part").write_text("1")
    assert sorted(os.listdir(tmp_path)) == ["weights.npy"]
    with pytest.raises(FileNotFoundError, match=r"atomic_path: nothing was written to .*\.dat \(the saver wrote "
                                                r".*\.dat\.npy instead: it adds a suffix of its own"), \
            atomic_path(tmp_path / "weights.dat") as temporary:
        np.save(temporary, np.arange(3))  # saved as <temporary>.npy
    assert sorted(os.listdir(tmp_path)) == ["weights.npy"]  # nothing left beside


def test_the_command_line_takes_the_checkpoint_settings(tmp_path):
    worker = tmp_path / "training.py"
    worker.write_text("import ConfigSpace as CS\n"
                      "def get_configspace():\n    return CS.ConfigurationSpace({'x': (0.0, 1.0)})\n"
                      "def train(config, budget, previous_budget, checkpoint_dir):\n"
                      "    return config['x'] + 1 / budget\n")
    space_file = tmp_path / "space.json"
    CS.ConfigurationSpace({"x": (0.0, 1.0)}).to_json(str(space_file))
    done = run_cli("run", "--worker", f"{worker}:train", "--configspace", str(space_file), "--min-budget", "1",
                   "--max-budget", "9", "--n-iterations", "2", "--run-dir", str(tmp_path / "run"), "--quiet",
                   "--checkpoint-root", str(tmp_path / "root"), "--keep-checkpoints", "all")
    assert done.returncode == 0, done.stderr
    assert len(on_disk(tmp_path / "root")) == len(load_result(tmp_path / "run").get_id2config_mapping())


def test_simulated_runs_own_their_checkpoint_roots_too(tmp_path):
    def run(run_dir, root, keep="incumbent", resume=False):
        opt = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=1, run_dir=tmp_path / run_dir,
                        checkpoint_root=tmp_path / root, keep_checkpoints=keep)
        return simulate(opt, n_iterations=2 if resume else 1, worker=Training(), n_workers=3,
                        duration=lambda config, budget: budget, resume=resume)

    run("a", "root_a", keep="all")
    theirs = on_disk(tmp_path / "root_a")
    run("b", "root_b")
    with pytest.raises(FileExistsError, match="holds the checkpoints of another run"):
        run("b", "root_a", keep="none", resume=True)  # both started at simulated time 0
    assert on_disk(tmp_path / "root_a") == theirs


def test_the_warning_names_the_latest_sessions_checkpoint_root(tmp_path, caplog):
    def session(n_iterations, root=None):
        HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=1, run_dir=tmp_path / "run", keep_checkpoints="all",
                  checkpoint_root=root).run(n_iterations=n_iterations, worker=Training(), resume=True)

    session(1)
    session(2, tmp_path / "b")
    caplog.clear()
    session(3)
    assert f"checkpoint directories of this run are in {tmp_path / 'b'}, not in " \
           f"{tmp_path / 'run' / 'checkpoints'} where this session keeps them" in caplog.text


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("workers", [1, 8])
def test_a_retired_configuration_never_runs_again_and_retires_before_its_bracket_ends(asynchronous, workers):
    optimizer = HyperBand(space(), min_budget=1, max_budget=27, eta=3, seed=2, asynchronous=asynchronous) \
        .make_optimizer(6)
    optimizer.start_session(6, workers)
    rng = np.random.default_rng(workers)
    running, retired, early, open_brackets = [], set(), 0, set()
    while not optimizer.finished:
        while len(running) < workers and (job := optimizer.ask()) is not None:
            assert job.config_id not in retired, f"{job.config_id} runs after it was retired"
            running.append(job)
            open_brackets.add(job.iteration)
        job = running.pop(int(rng.integers(len(running))))
        finished = optimizer.tell(job, loss_of(job.config, job.budget) * (1 + rng.random()))
        if finished is not None:
            open_brackets.discard(finished)
        for config_id in optimizer.pop_retired():
            assert config_id not in retired and all(r.config_id != config_id for r in running)
            retired.add(config_id)
            early += config_id[0] in open_brackets
    assert early > 0  # retired while their bracket still ran: their checkpoints went early


# ---------------------------------------------------------------- real processes: killed, resumed, MPI ranks


def check_continued_across_a_resume(run_dir: Path) -> list[dict]:
    """As :func:`check_found_what_the_previous_job_wrote`, but a job run again after a kill may find
    what its own first attempt wrote before the kill (its budget) instead."""
    records = read_journal(run_dir)
    again = {(tuple(r["config_id"]), r["budget"]) for r in records if r["type"] == "resubmit"}
    done = [r for r in records if r["type"] == "result"]
    for record in done:
        allowed = {record["previous_budget"]}
        if (tuple(record["config_id"]), record["budget"]) in again:
            allowed.add(record["budget"])
        assert record["info"]["previous_budget"] == record["previous_budget"]
        assert record["info"]["found"] in allowed, record
    return done


def incumbent_directory_only(run_dir: Path) -> None:
    assert on_disk(run_dir / "checkpoints") == [name(load_result(run_dir).get_incumbent_id())]


@pytest.mark.processes
@pytest.mark.parametrize("kill_after,schedule", [(14, ()), (45, ()), (25, ("--asynchronous",))])
def test_a_run_killed_and_resumed_finds_the_checkpoints_of_what_can_be_promoted(tmp_path, kill_after, schedule):
    from test_resume import check_complete_and_unique, command, evaluations, finish, start, wait_for_results

    reference = run_command_checked(command(tmp_path / "plain", *schedule))  # no checkpoints
    run_dir = tmp_path / "run"
    process = start(run_dir, "--sleep", "0.05", "--checkpoints", "incumbent", *schedule)
    wait_for_results(run_dir, kill_after, process)
    os.killpg(process.pid, 9)
    finish(process)
    resumed = run_command_checked(command(run_dir, "--resume", "--checkpoints", "incumbent", *schedule))
    check_complete_and_unique(run_dir)
    done = check_continued_across_a_resume(run_dir)
    assert any(r["previous_budget"] is not None for r in done[kill_after:])  # continued after the resume
    incumbent_directory_only(run_dir)
    assert evaluations(resumed.stdout) == evaluations(reference.stdout)


@pytest.mark.mpiexec
@pytest.mark.parametrize("schedule", [(), ("--asynchronous",)])
def test_under_mpiexec_a_configuration_promoted_to_another_rank_finds_its_checkpoint(tmp_path, schedule):
    from test_resume import check_complete_and_unique, command

    run_dir = tmp_path / "run"
    run_command_checked(command(run_dir, "--sleep", "0.05", "--checkpoints", "incumbent", *schedule, ranks=4))
    check_complete_and_unique(run_dir)
    check_found_what_the_previous_job_wrote(run_dir)
    rank_of: dict[tuple, str] = {}
    moved = 0
    for record in results(run_dir):
        key = tuple(record["config_id"])
        moved += record["previous_budget"] is not None and rank_of[key] != record["info"]["rank"]
        rank_of[key] = record["info"]["rank"]
    assert moved > 0 and len(set(rank_of.values())) == 3
    incumbent_directory_only(run_dir)


@pytest.mark.mpiexec
def test_under_mpiexec_a_killed_and_resumed_run_finds_its_checkpoints(tmp_path):
    from test_resume import check_complete_and_unique, command, finish, start, wait_for_results

    run_dir = tmp_path / "run"
    process = start(run_dir, "--sleep", "0.1", "--checkpoints", "incumbent", "--asynchronous", ranks=4)
    wait_for_results(run_dir, 20, process)
    os.killpg(process.pid, 9)
    finish(process, timeout=30)
    run_command_checked(command(run_dir, "--resume", "--checkpoints", "incumbent", "--asynchronous", ranks=4))
    check_complete_and_unique(run_dir)
    check_continued_across_a_resume(run_dir)
    incumbent_directory_only(run_dir)


def run_command_checked(command: list[str]):
    from mpi_launch import run_command

    finished = run_command(command, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def test_a_new_run_never_continues_from_another_runs_checkpoints(tmp_path, caplog):
    run_dir = tmp_path / "run"
    first = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=1, run_dir=run_dir, keep_checkpoints="all")
    first.run(n_iterations=1, worker=Training())
    (run_dir / "checkpoints" / "notes.txt").write_text("mine")
    again = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=2, run_dir=run_dir, keep_checkpoints="all")
    with pytest.raises(FileExistsError, match="already holds a run"):
        again.run(n_iterations=1, worker=Training())
    for name in ("journal.jsonl", "configs.json", "results.json"):  # deleted by hand: the checkpoints stay
        (run_dir / name).unlink()
    with pytest.raises(FileExistsError, match="holds the checkpoints of another run .* overwrite=True"):
        again.run(n_iterations=1, worker=Training())
    again.run(n_iterations=1, worker=Training(), overwrite=True)
    check_found_what_the_previous_job_wrote(run_dir)  # nothing found of the first run
    assert (run_dir / "checkpoints" / "notes.txt").read_text() == "mine"
    root = tmp_path / "root"
    HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=1, checkpoint_root=root).run(1, Training())
    with pytest.raises(FileExistsError, match="holds the checkpoints of another run"):
        HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=1, checkpoint_root=root).run(1, Training())


@pytest.mark.parametrize("with_run_dir", [True, False])
def test_a_checkpoint_root_in_use_by_a_running_run_is_refused(tmp_path, with_run_dir):
    """Two new runs that start together on one root would both find it empty and claim it (a
    hostile test saw them continue from each other's checkpoints): the running one holds it."""
    root = tmp_path / "shared"
    running = lock_run_directory(root)  # as a run that has started on it holds it
    run_dir = {"run_dir": tmp_path / "run"} if with_run_dir else {}
    second = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=4, checkpoint_root=root, **run_dir)
    try:
        with pytest.raises(FileExistsError, match=f"checkpoint_root {root} is in use by another mpibohb run "
                                                  rf"\(pid {os.getpid()}@"):
            second.run(n_iterations=1, worker=Training())
    finally:
        running.close()
    second.run(n_iterations=1, worker=Training())  # once it has ended, the root is free
    assert config_directories(str(root)) != []


def test_a_checkpoint_root_that_cannot_take_a_directory_stops_the_run_and_fails_no_job(tmp_path):
    # mpibohb's own mkdir failed inside the evaluation: every later job was recorded as failed (11 of
    # 19), the run returned normally, and a resume could not undo it
    run_dir = tmp_path / "run"
    calls = []

    def training(config: dict, budget: float, previous_budget: float | None, checkpoint_dir: str) -> float:
        calls.append(budget)
        if len(calls) == 4:  # the root becomes unusable (here a file in its place; a full disk, a quota)
            root = Path(checkpoint_dir).parent
            for entry in root.iterdir():
                if entry.is_dir():
                    entry.rename(tmp_path / entry.name)
            (tmp_path / "saved").mkdir()
            for name in (OWNER, LOCK):
                if (root / name).exists():
                    (root / name).rename(tmp_path / "saved" / name)
            root.rmdir()
            root.write_text("not a directory")
        return loss_of(config, budget)

    with pytest.raises(OSError, match="cannot create the checkpoint directory .*the run stops before"):
        HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=0, run_dir=str(run_dir)).run(
            n_iterations=2, worker=training)
    assert [r for r in results(run_dir) if r["loss"] is None] == []
    last = read_journal(run_dir)[-1]  # a stop, not a kill: a resume counts no crash against the job
    assert last["type"] == "stop" and last["signal"] is None and "cannot create the checkpoint" in last["reason"]
    root = run_dir / "checkpoints"
    root.unlink()
    root.mkdir()
    for entry in (tmp_path / "saved").iterdir():
        entry.rename(root / entry.name)
    finished = HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=0, run_dir=str(run_dir)).run(
        n_iterations=2, worker=training, resume=True)
    assert finished.failed_runs() == [] and len(finished.get_all_runs()) == 9 + 3 + 1 + 5 + 1


def test_checkpoint_directories_moved_without_their_owner_file_are_refused_with_the_way_out(tmp_path):
    # a shell's `mv old/* new/` leaves the hidden owner file behind; the message offered only
    # deleting them, overwrite=True (which deletes them) or another root
    kwargs = dict(min_budget=1, max_budget=9, eta=3, seed=1, run_dir=tmp_path / "run", keep_checkpoints="all")
    HyperBand(space(), **kwargs).run(n_iterations=1, worker=Training())
    (tmp_path / "new").mkdir()
    for entry in config_directories(str(tmp_path / "run" / "checkpoints")):
        (tmp_path / "run" / "checkpoints" / entry).rename(tmp_path / "new" / entry)
    with pytest.raises(FileExistsError, match=f"move {OWNER} with them"):
        HyperBand(space(), checkpoint_root=tmp_path / "new", **kwargs).run(n_iterations=2, worker=Training(),
                                                                           resume=True)
    (tmp_path / "run" / "checkpoints" / OWNER).rename(tmp_path / "new" / OWNER)
    resumed = HyperBand(space(), checkpoint_root=tmp_path / "new", **kwargs).run(n_iterations=2, worker=Training(),
                                                                                 resume=True)
    assert resumed.failed_runs() == []


def test_overwriting_a_run_does_not_say_its_checkpoints_stay_before_deleting_them(tmp_path, caplog):
    run_dir = tmp_path / "run"
    HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=1, run_dir=run_dir, keep_checkpoints="all").run(
        n_iterations=1, worker=Training())
    (run_dir / "notes.txt").write_text("mine")
    caplog.clear()
    HyperBand(space(), min_budget=1, max_budget=9, eta=3, seed=2, run_dir=run_dir).run(
        n_iterations=1, worker=Training(), overwrite=True)
    said = caplog.text
    assert "other files stay: notes.txt)" in said and "deleting the 9 checkpoint directories" in said, said
    assert (run_dir / "notes.txt").read_text() == "mine"
