"""``python -m mpibohb run``: the generic entry point that job scripts call; in-process
(``tests/cli_in_process.py``) unless the test runs it under ``mpiexec``."""

from __future__ import annotations

import runpy
import shutil
import sys
from collections import Counter

import pytest
from cli_in_process import run_cli
from mpi_launch import ROOT, SCRIPTS, mpiexec, run_command

from mpibohb import load_result
from mpibohb.bracket_plans import runs_per_budget

TOY = f"{ROOT / 'examples' / 'toy_worker.py'}:MyWorker"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mpibohb", "run", *args]


def test_run_a_worker_class_from_a_file_serially(tmp_path):
    run_dir = tmp_path / "run"
    finished = run_cli("run", "--worker", TOY, "--min-budget", "9", "--max-budget", "243", "--n-iterations", "2",
                       "--run-dir", str(run_dir), "--seed", "3", "--quiet")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "finished: 57 runs" in finished.stdout
    assert len(load_result(run_dir).get_all_runs()) == sum(runs_per_budget(2, 9, 243, 3).values()) == 57


@pytest.mark.mpiexec
def test_run_under_mpiexec_with_a_configspace_file_and_a_function(tmp_path):
    import ConfigSpace as CS

    space = CS.ConfigurationSpace({"x": (0.0, 1.0), "y": (1, 8), "c": ["a", "b", "c"]})
    space_file = tmp_path / "space.json"
    space.to_json(space_file)
    run_dir = tmp_path / "run"
    worker = f"{SCRIPTS / 'spmd_run.py'}:toy"
    command = [mpiexec(), "-n", "3", *cli("--worker", worker, "--configspace", str(space_file), "--optimizer", "hb",
                                          "--min-budget", "1", "--max-budget", "9", "--n-iterations", "3",
                                          "--run-dir", str(run_dir), "--quiet")]
    finished = run_command(command, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("finished: 22 runs") == 1
    runs = load_result(run_dir).get_all_runs()
    assert len(runs) == 22
    assert {r.worker.split("@")[0] for r in runs} == {"rank 1", "rank 2"}


@pytest.mark.mpiexec
def test_a_mistake_on_the_command_line_under_mpiexec_is_said_once(tmp_path):
    command = [mpiexec(), "-n", "3", *cli("--worker", TOY, "--min-b", "9", "--run-dir", str(tmp_path / "run"))]
    refused = run_command(command, timeout=60)
    assert refused.returncode == 2
    assert refused.stderr.count("error: the following arguments are required") == 1, refused.stderr
    assert refused.stderr.count("usage: mpibohb run") == 1


def test_fill_tail_from_the_command_line(tmp_path):
    run_dir = tmp_path / "run"
    base = ["--worker", TOY, "--min-budget", "9", "--max-budget", "243", "--run-dir", str(run_dir)]
    finished = run_cli("run", *base, "--n-iterations", "2", "--n-workers", "4", "--fill-tail")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert load_result(run_dir).HB_config["fill_tail"] is True
    assert ", fill_tail" in finished.stderr  # the settings line
    refused = run_cli("run", *base, "--n-iterations", "2", "--quiet")
    assert refused.returncode != 0 and "fill_tail: True -> False" in refused.stderr


def test_brackets_from_the_command_line(tmp_path):
    run_dir = tmp_path / "run"
    base = ["--worker", TOY, "--min-budget", "9", "--max-budget", "243", "--run-dir", str(run_dir)]
    finished = run_cli("run", *base, "--n-iterations", "2", "--brackets", "1")
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = load_result(run_dir)
    assert result.HB_config["brackets"] == 1
    runs = result.get_all_runs()
    assert Counter(run.budget for run in runs) == {9: 54, 27: 18, 81: 6, 243: 2}
    assert "brackets=1 (the most aggressive)" in finished.stderr  # the settings line
    refused = run_cli("run", *base, "--n-iterations", "2", "--quiet")
    assert refused.returncode != 0 and "brackets: 1 -> None" in refused.stderr
    random_search = run_cli("run", *base[:-1], str(tmp_path / "rs"), "--optimizer", "rs", "--n-iterations", "1",
                            "--brackets", "1", "--quiet")
    assert random_search.returncode != 0 and "RandomSearch runs every configuration at max_budget" \
        in random_search.stderr


def test_the_command_line_offers_every_model():
    """``--model``'s choices are the library's models (the runner keeps its own copy to start quickly)."""
    from mpibohb.runner import MODEL_CHOICES
    from mpibohb.samplers.models import MODELS
    assert sorted(MODEL_CHOICES) == sorted(MODELS)


def test_the_model_from_the_command_line(tmp_path):
    """BOHB's default model is tpe; ``--model hpbandster`` gives HpBandSter's, and a run resumes
    only with the model it started with; the random optimisers refuse ``--model``."""
    base = ["--worker", TOY, "--min-budget", "9", "--max-budget", "243", "--n-iterations", "1", "--quiet"]
    default = run_cli("run", *base, "--run-dir", str(tmp_path / "tpe"))
    chosen = run_cli("run", *base, "--run-dir", str(tmp_path / "hp"), "--model", "hpbandster")
    assert default.returncode == 0 and chosen.returncode == 0, default.stderr[-3000:] + chosen.stderr[-3000:]
    assert load_result(tmp_path / "tpe").HB_config["model"] == "tpe"
    assert "model" not in load_result(tmp_path / "hp").HB_config  # HpBandSter's keys, as before there was a choice
    assert load_result(tmp_path / "hp").HB_config["random_fraction"] == pytest.approx(1 / 3)
    refused = run_cli("run", *base, "--run-dir", str(tmp_path / "hp"))
    assert refused.returncode != 0 and "model: 'hpbandster' -> 'tpe'" in refused.stderr
    random = run_cli("run", *base, "--run-dir", str(tmp_path / "rs"), "--optimizer", "rs", "--model", "tpe")
    assert random.returncode != 0 and "--model is BOHB's" in random.stderr
    assert not (tmp_path / "rs").exists()


def test_running_again_resumes_and_extends(tmp_path):
    run_dir = tmp_path / "run"
    base = ["--worker", TOY, "--min-budget", "9", "--max-budget", "243", "--run-dir", str(run_dir), "--quiet"]
    assert run_cli("run", *base, "--n-iterations", "1").returncode == 0
    again = run_cli("run", *base, "--n-iterations", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(load_result(run_dir).get_all_runs()) == 57


def test_a_warm_start_from_the_command_line_and_its_mistake(tmp_path):
    base = ["--worker", TOY, "--min-budget", "9", "--max-budget", "243", "--n-iterations", "1"]
    assert run_cli("run", *base, "--run-dir", str(tmp_path / "first"), "--quiet").returncode == 0
    warm = run_cli("run", *base, "--run-dir", str(tmp_path / "second"), "--previous-result", str(tmp_path / "first"))
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert "warm start: 40 earlier runs fed to the model" in warm.stderr  # one iteration of budgets 9..243
    assert len(load_result(tmp_path / "second").get_all_runs()) == 40
    missing = run_cli("run", *base, "--run-dir", str(tmp_path / "third"), "--previous-result", str(tmp_path / "none"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"mpibohb: previous_result: no journal at {tmp_path / 'none'}"
    assert not (tmp_path / "third").exists()


def test_an_abbreviated_option_is_refused_not_guessed(tmp_path):
    abbreviated = run_cli("run", "--worker", TOY, "--min-b", "9", "--max-budget", "243", "--n-iterations", "1",
                          "--run-dir", str(tmp_path / "run"))
    assert abbreviated.returncode == 2 and "the following arguments are required: --min-budget" in abbreviated.stderr
    assert not (tmp_path / "run").exists()
    underscores = run_cli("run", "--worker", TOY, "--min_budget", "9", "--max_budget", "243", "--n_iterations", "1",
                          "--run_dir", str(tmp_path / "run"), "--quiet")  # as HpBandSter's examples spell them
    assert underscores.returncode == 0, underscores.stderr[-2000:]
    assert len(load_result(tmp_path / "run").get_all_runs()) == 40


def test_bad_worker_specs_give_one_line_errors(tmp_path):
    for spec, message in [("no_such_module:X", "cannot import"), ("nocolon", "must look like module:Name"),
                          (f"{ROOT / 'examples' / 'toy_worker.py'}:Missing", "has no 'Missing'"),
                          (f"{SCRIPTS / 'spmd_run.py'}:toy", "no get_configspace"),
                          (f"{SCRIPTS / 'spmd_run.py'}:Faulty", None)]:
        if message is None:  # a class whose __init__ needs arguments
            (tmp_path / "needs.py").write_text("class W:\n    def __init__(self, scale):\n        pass\n")
            spec, message = f"{tmp_path / 'needs.py'}:W", "W(scale) cannot be made without arguments"
        finished = run_cli("run", "--worker", spec, "--min-budget", "1", "--max-budget", "9", "--n-iterations", "1",
                           "--run-dir", str(tmp_path / "run"))
        assert finished.returncode == 2, (spec, finished.stderr[-2000:])
        assert message in finished.stderr and "Traceback" not in finished.stderr, finished.stderr[-2000:]


def test_a_configspace_file_that_is_not_one_is_refused_saying_so(tmp_path):
    (tmp_path / "space.json").write_text('{"a": 1}')
    finished = run_cli("run", "--worker", f"{SCRIPTS / 'spmd_run.py'}:toy", "--configspace",
                       str(tmp_path / "space.json"), "--min-budget", "1", "--max-budget", "9", "--n-iterations",
                       "1", "--run-dir", str(tmp_path / "run"))
    assert finished.returncode == 2
    assert finished.stderr.strip() == (f"mpibohb: --configspace: cannot read {tmp_path / 'space.json'}: not a "
                                       "ConfigSpace JSON file (it has no 'hyperparameters'; space.to_json(path) "
                                       "writes one)")


def test_a_malformed_configspace_file_is_one_line_too(tmp_path):
    (tmp_path / "space.json").write_text('{"hyperparameters": [{"name": "x"}]}')
    finished = run_cli("run", "--worker", f"{SCRIPTS / 'spmd_run.py'}:toy", "--configspace",
                       str(tmp_path / "space.json"), "--min-budget", "1", "--max-budget", "9", "--n-iterations",
                       "1", "--run-dir", str(tmp_path / "run"))
    assert finished.returncode == 2 and "Traceback" not in finished.stderr, finished.stderr[-2000:]
    assert finished.stderr.startswith(f"mpibohb: --configspace: cannot read {tmp_path / 'space.json'}: not a "
                                      "ConfigSpace JSON file (KeyError: ")


WORKER_FILES = {
    # a worker beside a module of its own, as README's porting step 1 has it
    "sibling": ("from neighbour import W\n", "class W:\n    def compute(self, config, budget, **kwargs):\n"
                "        return {'loss': 1.0 / budget, 'info': {}}\n    @staticmethod\n"
                "    def get_configspace():\n        import ConfigSpace as CS\n"
                "        return CS.ConfigurationSpace({'x': (0.0, 1.0)})\n"),
    # an HpBandSter example: its command line parsed at import (here one it refuses, as it refuses mpibohb's)
    "argparse": ("import argparse\nargparse.ArgumentParser().parse_args(['--run-dir', 'x'])\nclass W: pass\n", None),
    "syntax": ("class W\n    pass\n", None),
    "missing": ("import a_module_that_is_not_there\n", None),
}


@pytest.mark.parametrize("kind, message", [
    ("sibling", None),
    ("argparse", "ended the process (exit code 2): the file runs a script of its own when imported"),
    ("syntax", "raised SyntaxError"),
    ("missing", "raised ModuleNotFoundError: No module named 'a_module_that_is_not_there'"),
])
def test_a_worker_file_imports_its_neighbours_and_its_mistakes_are_one_line(tmp_path, kind, message):
    source, neighbour = WORKER_FILES[kind]
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / f"my.worker-{kind}.py").write_text(source)  # a name that is no module name
    if neighbour:
        (tmp_path / "elsewhere" / "neighbour.py").write_text(neighbour)
    finished = run_cli("run", "--worker", f"elsewhere/my.worker-{kind}.py:W", "--min-budget", "1", "--max-budget",
                       "9", "--n-iterations", "1", "--run-dir", "run", "--quiet", cwd=tmp_path)
    if message is None:
        assert finished.returncode == 0, finished.stderr[-3000:]
        return
    assert finished.returncode == 2 and "Traceback" not in finished.stderr, finished.stderr[-2000:]
    assert f"mpibohb: --worker: importing elsewhere/my.worker-{kind}.py " in finished.stderr
    assert message in finished.stderr


@pytest.mark.processes
def test_a_worker_files_neighbours_never_shadow_a_library_module_nor_the_worker_itself(tmp_path):
    """``fractions`` is first imported after the worker file is loaded (mpibohb's schedules need it);
    a neighbour of that name must not replace it, and a dashed worker name must not take its
    neighbour's module name."""
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "fractions.py").write_text("raise RuntimeError('the neighbour was imported')\n")
    (tmp_path / "w" / "my_worker.py").write_text("def helper():\n    return 1.0\n")
    (tmp_path / "w" / "my-worker.py").write_text(
        "from my_worker import helper\n"
        "class W:\n    def compute(self, config, budget, **kwargs):\n        return helper() / budget\n"
        "    @staticmethod\n    def get_configspace():\n        import ConfigSpace as CS\n"
        "        return CS.ConfigurationSpace({'x': (0.0, 1.0)})\n")
    finished = run_command([sys.executable, "-m", "mpibohb", "run", "--worker", "w/my-worker.py:W",
                            "--min-budget", "1", "--max-budget", "9", "--n-iterations", "1", "--run-dir", "run",
                            "--quiet"], timeout=120, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]


def test_a_get_configspace_that_raises_names_the_users_line(tmp_path):
    (tmp_path / "space_worker.py").write_text(
        "import ConfigSpace as CS\n"
        "class W:\n    def compute(self, config, budget, **kwargs):\n        return 1.0\n"
        "    @staticmethod\n    def get_configspace():\n"
        "        return CS.ConfigurationSpace({'lr': CS.UniformFloatHyperparameter('lr', 1e-1, 1e-6, log=True)})\n")
    finished = run_cli("run", "--worker", "space_worker.py:W", "--min-budget", "1", "--max-budget", "9",
                       "--n-iterations", "1", "--run-dir", "run", cwd=tmp_path)
    assert finished.returncode == 2 and "Traceback" not in finished.stderr, finished.stderr[-2000:]
    assert "the worker's get_configspace() raised ValueError" in finished.stderr
    assert f"({tmp_path / 'space_worker.py'}, line 7)" in finished.stderr


def readme_run_py() -> str:
    """The ``run.py`` of README.md's "Use" section."""
    text = (ROOT / "README.md").read_text()
    start = text.index("# run.py: every process runs this same file")
    return text[start:text.index("```", start)]


def test_the_readme_run_py_runs_as_a_script_and_as_a_worker_file(tmp_path, capsys):
    (tmp_path / "run.py").write_text(readme_run_py())
    runpy.run_path(str(tmp_path / "run.py"), run_name="__main__")  # as `python run.py` runs it
    assert capsys.readouterr().out.startswith("{'x': ")
    import ConfigSpace as CS

    CS.ConfigurationSpace({"x": (0.0, 1.0)}).to_json(tmp_path / "space.json")
    as_worker = run_cli("run", "--worker", "run.py:MyWorker", "--configspace", "space.json", "--min-budget", "9",
                        "--max-budget", "243", "--n-iterations", "1", "--run-dir", "run", "--quiet", cwd=tmp_path)
    assert as_worker.returncode == 0, as_worker.stderr[-3000:]
    assert as_worker.stdout.startswith("finished: 40 runs") and as_worker.stdout.count("\n") == 1  # no run of its own


@pytest.mark.mpiexec
def test_a_worker_file_missing_on_one_rank_ends_the_job_instead_of_a_hang(tmp_path):
    """Rank 2 starts in another directory (a file not on a shared file system): it cannot load the
    worker, so it ends the job rather than leave ranks 0 and 1 waiting for it in run()."""
    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(ROOT / "examples" / "toy_worker.py", tmp_path / "work" / "toy_worker.py")
    args = cli("--worker", "toy_worker.py:MyWorker", "--min-budget", "9", "--max-budget", "243", "--n-iterations",
               "1", "--run-dir", str(tmp_path / "run"), "--quiet")
    command = [mpiexec(), "-n", "2", *args, ":", "-n", "1", "-wdir", str(tmp_path / "elsewhere"), *args]
    finished = run_command(command, timeout=60, cwd=tmp_path / "work")
    assert finished.returncode == 2, finished.stderr[-3000:]
    assert "mpibohb: --worker: no file toy_worker.py" in finished.stderr
    assert "the error above on rank 2: ending the whole MPI job" in finished.stderr
    assert "finished:" not in finished.stdout


@pytest.mark.parametrize("ranks", [None, pytest.param(2, marks=pytest.mark.mpiexec)])
def test_a_worker_file_that_runs_at_import_is_refused_before_its_run_starts(tmp_path, ranks):
    """Without the ``__main__`` guard, importing the file for its worker would run its optimisation."""
    unguarded = readme_run_py().replace('if __name__ == "__main__":', "if True:")
    (tmp_path / "run.py").write_text(unguarded + "\nprint('THE FILE RAN ITS OWN OPTIMISATION')\n")
    args = ["--worker", "run.py:MyWorker", "--min-budget", "9", "--max-budget", "243", "--n-iterations", "1",
            "--run-dir", "run"]
    if ranks is None:
        finished = run_cli("run", *args, cwd=tmp_path)
    else:
        finished = run_command([mpiexec(), "-n", str(ranks), *cli(*args)], timeout=120, cwd=tmp_path)
    assert finished.returncode == 2, finished.stderr[-3000:]
    assert "--worker run.py:MyWorker: its file calls run() when it is imported" in finished.stderr
    assert 'put the file\'s run under `if __name__ == "__main__":`' in finished.stderr
    assert "Traceback" not in finished.stderr and "THE FILE RAN" not in finished.stdout
    assert not (tmp_path / "run").exists()
