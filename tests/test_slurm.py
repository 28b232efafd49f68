"""The shipped SLURM job script on a real two-node SLURM (started by tests/cluster/start_slurm.sh:
two slurmd, node1 and node2, on this machine).

Each test submits ``jobscripts/slurm.sbatch`` unchanged, setting only its documented variables
(VENV, SCRIPT, SCRIPT_ARGS, RUN_DIR, MPI_LAUNCHER) and sbatch's own options, waits for the job by
polling ``scontrol show job`` (``sbatch --wait`` polls only every 10 s), and checks the run
directory. Each node has as many CPUs as the machine, so jobs with more tasks are submitted with
``--overcommit`` (without it they stay PENDING for ever).

Skipped when SLURM cannot be set up here (not root, no apt-get, ...), except under ``CI``, where
that fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mpibohb import load_result
from mpibohb.bracket_plans import runs_per_budget
from mpibohb.journal import read_journal

ROOT = Path(__file__).parent.parent
JOB_SCRIPT = ROOT / "jobscripts" / "slurm.sbatch"
START_SLURM = Path(__file__).parent / "cluster" / "start_slurm.sh"
VENV = Path(sys.prefix)  # the virtualenv running the tests (it has mpibohb, mpi4py and mpiexec)
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
                "BOOT_FAIL", "DEADLINE"}
TAG = f"mpibohb-test-{os.getpid()}"  # job names: singleton dependencies never wait on another session's jobs

pytestmark = [pytest.mark.slow, pytest.mark.scheduler]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def slurm():
    """Start (or reuse) the test SLURM; yield its SLURM_CONF, set in os.environ meanwhile."""
    if not (VENV / "bin" / "activate").exists():
        pytest.skip(f"the tests do not run in a virtualenv ({VENV} has no bin/activate) for the job script's VENV")
    try:
        started = subprocess.run(["bash", str(START_SLURM)], capture_output=True, text=True, timeout=900)
        failure = None if started.returncode == 0 else \
            f"exit {started.returncode}: {started.stderr.strip()[-2000:]}"
    except (OSError, subprocess.TimeoutExpired) as error:
        started, failure = None, repr(error)
    if failure is None:
        match = re.search(r"^export SLURM_CONF=(\S+)$", started.stdout, re.MULTILINE)
        failure = None if match else f"no 'export SLURM_CONF=' in its output: {started.stdout!r}"
    if failure is not None:
        message = f"SLURM could not be started here by {START_SLURM.relative_to(ROOT)}: {failure}"
        if in_ci():
            pytest.fail(message + "\n(CI is set: a SLURM that cannot start is a failure, not a skip)")
        pytest.skip(message)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", match.group(1))
        cancel_leftovers()
        yield match.group(1)


def cancel_leftovers() -> None:
    """Cancel the jobs of earlier test sessions that died without cleaning up (their pid is gone)."""
    queue = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True, timeout=60).stdout
    for job_id, name in (line.split(" ", 1) for line in queue.splitlines() if " " in line):
        pid = re.match(r"mpibohb-test-(\d+)-", name)
        if pid and not Path(f"/proc/{pid.group(1)}").exists():
            subprocess.run(["scancel", job_id], capture_output=True, timeout=60)


@pytest.fixture
def submit(slurm, tmp_path):
    """``submit(name, variables, *sbatch_options, cwd=ROOT)`` -> job id; cancels its jobs afterwards."""
    job_ids: list[str] = []

    def submit_job(name: str, variables: dict[str, str], *options: str, cwd: Path = ROOT) -> str:
        env = dict(os.environ, SLURM_CONF=slurm, **variables)
        command = ["sbatch", "--parsable", "--export=ALL", f"--job-name={TAG}-{name}",
                   f"--output={tmp_path}/%x-%j.out", *options, str(JOB_SCRIPT)]
        submitted = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=60)
        assert submitted.returncode == 0, f"{command} failed: {submitted.stderr}"
        job_ids.append(submitted.stdout.strip().split(";")[0])
        return job_ids[-1]

    yield submit_job
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(job_state(j).get("JobState") not in FINAL_STATES | {None}
                                                  for j in job_ids):
            time.sleep(0.5)


def job_state(job_id: str) -> dict[str, str]:
    """``scontrol show job``'s fields (JobState, ExitCode, Restarts, Reason, ...); {} once purged."""
    shown = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=60)
    return dict(re.findall(r"(\w+)=(\S*)", shown.stdout)) if shown.returncode == 0 else {}


def output_of(tmp_path: Path, job_id: str) -> str:
    return "\n".join(path.read_text(errors="replace") for path in tmp_path.glob(f"*-{job_id}.out"))


def wait_for(job_id: str, tmp_path: Path, timeout: float, give_up_on: str | None = None) -> dict[str, str]:
    """Poll the job every 0.5 s until it reaches a final state; return its fields. Fail at once,
    cancelling the job, when its output shows ``give_up_on``."""
    deadline = time.monotonic() + timeout
    state: dict[str, str] = {}
    reason = f"not finished after {timeout} s"
    while time.monotonic() < deadline:
        state = job_state(job_id)
        if state.get("JobState") in FINAL_STATES:
            return state
        if give_up_on and give_up_on in output_of(tmp_path, job_id):
            reason = f"cancelled: its output shows {give_up_on!r}"
            break
        time.sleep(0.5)
    subprocess.run(["scancel", job_id], capture_output=True, timeout=60)
    if state.get("Reason") == "Resources":
        reason += " (more tasks than CPUs without --overcommit?)"
    raise AssertionError(f"job {job_id} {reason}: {state}\noutput:\n{output_of(tmp_path, job_id)[-4000:]}")


def check_run(run_dir: Path, n_iterations: int, min_budget: float, max_budget: float) -> list[dict]:
    """The run finished, every scheduled evaluation has exactly one result; return the journal."""
    records = read_journal(run_dir)
    assert records[-1]["type"] == "end", [r["type"] for r in records[-5:]]
    results = [(tuple(r["config_id"]), r["budget"]) for r in records if r["type"] == "result"]
    duplicates = [key for key, n in Counter(results).items() if n > 1]
    assert not duplicates, f"evaluations that ran twice: {duplicates}"
    expected = runs_per_budget(n_iterations, min_budget, max_budget, 3)
    assert Counter(budget for _, budget in results) == expected
    assert len(load_result(run_dir).get_all_runs()) == sum(expected.values())
    return records


def arguments(n_iterations: int, min_budget: float, max_budget: float, sleep_interval: float) -> str:
    return (f"--n_iterations {n_iterations} --min_budget {min_budget} --max_budget {max_budget} "
            f"--sleep_interval {sleep_interval}")


@pytest.mark.timeout(240)
def test_job_script_runs_bohb_over_several_ranks(submit, tmp_path):
    run_dir = tmp_path / "run"
    job = submit("basic", {"VENV": str(VENV), "RUN_DIR": str(run_dir),
                           "SCRIPT_ARGS": arguments(3, 9, 81, 0.1) + " --model hpbandster"},
                 "--ntasks=4", "--overcommit", "--time=5")
    state = wait_for(job, tmp_path, timeout=180)
    output = output_of(tmp_path, job)
    assert (state["JobState"], state["ExitCode"]) == ("COMPLETED", "0:0"), output[-4000:]
    assert "the run finished" in output
    records = check_run(run_dir, 3, 9, 81)
    assert [r["type"] for r in records].count("session") == 1
    ranks = {r["worker"].split("@")[0] for r in records if r["type"] == "result"}
    assert len(ranks) > 1 and ranks <= {"rank 1", "rank 2", "rank 3"}, ranks
    settings = load_result(run_dir).HB_config  # SCRIPT_ARGS reached the script: HpBandSter's model
    assert "model" not in settings and settings["num_samples"] == 64


@pytest.mark.timeout(240)
def test_second_submission_waits_then_extends_the_run_in_the_default_run_dir(submit, tmp_path):
    """Two submissions with one job name: --dependency=singleton runs them one after the other in
    runs/<job name> of the submit directory; the second (under srun) extends the first's run."""
    common = {"VENV": str(VENV), "SCRIPT": str(ROOT / "examples" / "cluster.py")}
    first = submit("again", dict(common, SCRIPT_ARGS=arguments(1, 9, 81, 0.1)),
                   "--ntasks=3", "--overcommit", "--time=5", cwd=tmp_path)
    second = submit("again", dict(common, SCRIPT_ARGS=arguments(2, 9, 81, 0.1), MPI_LAUNCHER="srun"),
                    "--ntasks=3", "--overcommit", "--time=5", cwd=tmp_path)
    first_state = wait_for(first, tmp_path, timeout=120)
    second_state = wait_for(second, tmp_path, timeout=120)
    for job, state in ((first, first_state), (second, second_state)):
        assert (state["JobState"], state["ExitCode"]) == ("COMPLETED", "0:0"), output_of(tmp_path, job)[-4000:]
    assert "srun --mpi=pmi2" in output_of(tmp_path, second)
    records = check_run(tmp_path / "runs" / f"{TAG}-again", 2, 9, 81)
    sessions = [r for r in records if r["type"] == "session"]
    assert [s["n_iterations"] for s in sessions] == [1, 2]
    first_end = next(r["time"] for r in records if r["type"] == "end")
    assert sessions[1]["started"] > first_end


@pytest.mark.timeout(420)
@pytest.mark.parametrize("launcher", ["mpiexec", "srun"])
def test_time_limit_stops_requeues_and_resumes(submit, tmp_path, launcher):
    """--time=1 with USR1 59 s before the limit: slurmctld checks time limits every 30 s, so the
    warning comes 1-31 s after the start, and the job script passes it on 10 s after the run
    started at the earliest. The run has about 40 s of work (109 evaluations of 1 s on 3 workers,
    brackets of up to 4 rungs), so its first start cannot finish it: it stops, is requeued, and
    resumes (each start makes at least 10 s of progress) until it is complete. Under srun,
    --kill-on-bad-exit kills the workers once rank 0 has exited with 99, and srun returns 137:
    the journal's stop record says the run stopped cleanly, and the job ends with 99, not requeued."""
    run_dir = tmp_path / "run"
    job = submit("limit", {"VENV": str(VENV), "RUN_DIR": str(run_dir), "SCRIPT_ARGS": arguments(5, 1, 27, 1),
                           "MPI_LAUNCHER": launcher},
                 "--ntasks=4", "--overcommit", "--time=1", "--signal=B:USR1@59")
    state = wait_for(job, tmp_path, timeout=360)
    output = output_of(tmp_path, job)
    if launcher == "srun":  # a clean stop, not requeued (a requeued srun start hangs here): submitting again resumes
        assert (state["JobState"], state["ExitCode"]) == ("FAILED", "99:0"), output[-4000:]
        assert "the run stopped cleanly (SIGUSR1; srun returned" in output and "not requeued under srun" in output
        assert read_journal(run_dir)[-1]["type"] == "stop"
        return
    assert (state["JobState"], state["ExitCode"]) == ("COMPLETED", "0:0"), output[-4000:]
    assert int(state["Restarts"]) >= 1, state
    assert "requeueing job" in output and "(restart 1)" in output, output[-4000:]
    records = check_run(run_dir, 5, 1, 27)
    kinds = [r["type"] for r in records]
    assert kinds.count("session") >= 2 and kinds.count("session") == kinds.count("stop") + 1, kinds
    assert all(r["signal"] == signal.SIGUSR1 for r in records if r["type"] == "stop")
    assert kinds.index("stop") < len(kinds) - 1 - kinds[::-1].index("session")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("variables, message", [
    ({"SCRIPT": "examples/no_such_script.py"}, "SCRIPT=examples/no_such_script.py not found"),
    ({"VENV": "/nonexistent/venv"}, "VENV=/nonexistent/venv is not a Python virtualenv"),
    ({"SCRIPT_ARGS": '--note "two words'}, 'SCRIPT_ARGS=--note "two words has an unmatched quote'),
], ids=["missing-script", "missing-venv", "unmatched-quote"])
def test_bad_submission_fails_with_its_reason_in_the_output(submit, tmp_path, variables, message):
    job = submit("bad", dict({"VENV": str(VENV), "RUN_DIR": str(tmp_path / "run")}, **variables),
                 "--ntasks=2", "--overcommit", "--time=2")
    state = wait_for(job, tmp_path, timeout=90)
    output = output_of(tmp_path, job)
    assert state["JobState"] == "FAILED" and state["ExitCode"] == "2:0", (state, output)
    assert message in output, output
    assert not (tmp_path / "run").exists()


# SLURM 22.05's pmi2 plugin rejects a PMI-1 request longer than 1024 bytes with this message; the
# mpich wheel's default network layer (UCX) sends such requests now and then when the ranks are on
# more than one node, and MPI then hangs at its start. The job script avoids it (see its srun branch).
PMI2_REJECTED = "mpi/pmi2: value not properly terminated in client request"
# SCRIPT_ARGS with quotes, a space and a glob: the script must get the words a shell would give it.
NOTE = "two words, *, 'quoted'"
NOTE_ARGUMENT = '--note "two words, *, \'quoted\'"'


@pytest.mark.timeout(300)
@pytest.mark.parametrize("launcher", ["mpiexec", "srun"])
def test_job_spans_two_nodes(submit, tmp_path, launcher):
    """--nodes=2 --ntasks-per-node=2 on the test cluster's two slurmd: rank 0 and rank 1 on node1,
    ranks 2 and 3 on node2, and the optimizer on node1 gets results from both nodes' workers."""
    run_dir = tmp_path / "run"
    job = submit(f"nodes-{launcher}", {"VENV": str(VENV), "RUN_DIR": str(run_dir), "MPI_LAUNCHER": launcher,
                                       "SCRIPT": str(ROOT / "tests" / "scripts" / "node_run.py"),
                                       "SCRIPT_ARGS": NOTE_ARGUMENT},
                 "--nodes=2", "--ntasks-per-node=2", "--overcommit", "--time=5")
    state = wait_for(job, tmp_path, timeout=150, give_up_on=PMI2_REJECTED)
    output = output_of(tmp_path, job)
    assert PMI2_REJECTED not in output, output[-4000:]
    assert (state["JobState"], state["ExitCode"]) == ("COMPLETED", "0:0"), output[-4000:]
    assert state["NodeList"] == "node[1-2]" and "start on node[1-2], 4 tasks" in output, (state, output[-4000:])
    assert ("MPIR_CVAR_CH4_NETMOD=ofi" in output) == (launcher == "srun"), output[-4000:]
    records = check_run(run_dir, 2, 1, 9)
    nodes = {(r["worker"].split("@")[0], r["info"]["node"]) for r in records if r["type"] == "result"}
    assert nodes == {("rank 1", "node1"), ("rank 2", "node2"), ("rank 3", "node2")}, nodes
    assert {r["info"]["note"] for r in records if r["type"] == "result"} == {NOTE}  # split as a shell would


@pytest.mark.timeout(200)
def test_a_rank_that_dies_under_srun_ends_the_job(submit, tmp_path):
    """Rank 2 ends its process at its first evaluation: srun --kill-on-bad-exit ends the step
    (rank 0 gets SIGTERM and records the stop, the rest are killed after KillWait: 5 s on the test
    cluster, 30 s by default), and the job fails with the reason instead of waiting for rank 2
    until its time limit."""
    run_dir = tmp_path / "run"
    job = submit("dies", {"VENV": str(VENV), "RUN_DIR": str(run_dir), "MPI_LAUNCHER": "srun",
                          "SCRIPT": str(ROOT / "tests" / "scripts" / "node_run.py"), "SCRIPT_ARGS": "--exit_rank 2"},
                 "--ntasks=3", "--overcommit", "--time=5")
    state = wait_for(job, tmp_path, timeout=150)
    output = output_of(tmp_path, job)
    assert state["JobState"] == "FAILED" and state["Restarts"] == "0", (state, output[-4000:])
    assert "task 2: Exited with exit code 3" in output and "requeueing" not in output, output
    # srun ends with the largest exit code of its tasks: rank 0's stop (99) or a kill (137, 143)
    assert ("the MPI job failed with exit status" in output
            or "without a signal to this script (a rank that died" in output), output
    records = read_journal(run_dir)
    assert records[-1]["type"] == "stop" and not any(r["type"] == "end" for r in records), records[-3:]


@pytest.mark.timeout(200)
def test_a_rank_that_exits_before_mpi_under_a_plain_srun_ends_the_step(slurm, tmp_path):
    """``srun python script.py`` without the job script (so without ``--kill-on-bad-exit`` and
    ``python -m mpi4py``): rank 2 exits 0 before it starts MPI, and rank 3's sentry on the same node
    cancels the step; before, ranks 0, 1 and 3 waited in MPI_Init until the time limit."""
    name = f"{TAG}-plain-srun"
    command = ["srun", "--mpi=pmi2", "--nodes=2", "--ntasks-per-node=2", "--overcommit", "--time=5",
               f"--job-name={name}", sys.executable, str(ROOT / "tests" / "scripts" / "early_exit_run.py"),
               str(tmp_path / "run"), "--rank", "2", "--end", "exit0", "--after", "2"]
    # the job script's reason for ofi: SLURM 22.05's pmi2 cuts UCX's longer start-up messages
    env = dict(os.environ, SLURM_CONF=slurm, MPIR_CVAR_CH4_NETMOD="ofi",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    srun = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        stdout, stderr = srun.communicate(timeout=120)
    finally:
        subprocess.run(["scancel", f"--name={name}"], capture_output=True, timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(srun.pid, signal.SIGKILL)
        srun.wait()
    said = stdout + stderr
    assert "RANK 2 ENDS BEFORE MPI (exit0)" in said, said[-3000:]
    assert "mpibohb: rank 3: 1 of the 2 ranks on this node ended before starting MPI" in said, said[-3000:]
    assert "ending the job step (scancel" in said and "RESULT" not in said
    assert srun.returncode != 0


@pytest.mark.timeout(300)
def test_an_admins_requeue_resumes_the_run_and_says_so(submit, tmp_path):
    """``scontrol requeue`` (an admin, or SLURM after a node failure) sends SIGTERM and queues the
    job again itself: the script says so instead of asking for a new submission, and the requeued
    job resumes the run to its end, every evaluation once."""
    run_dir = tmp_path / "run"
    job = submit("admin", {"VENV": str(VENV), "RUN_DIR": str(run_dir), "SCRIPT_ARGS": arguments(3, 1, 9, 0.5)},
                 "--ntasks=2", "--overcommit", "--time=5")
    deadline = time.monotonic() + 120
    while sum(r["type"] == "result" for r in read_journal_if_any(run_dir)) < 2:
        assert time.monotonic() < deadline, output_of(tmp_path, job)[-4000:]
        time.sleep(0.5)
    subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True, timeout=60)
    state = wait_for(job, tmp_path, timeout=240)
    output = output_of(tmp_path, job)
    assert (state["JobState"], state["ExitCode"], state["Restarts"]) == ("COMPLETED", "0:0", "1"), output[-4000:]
    assert "SLURM requeued the job" in output and "submit again" not in output, output[-4000:]
    records = check_run(run_dir, 3, 1, 9)
    assert [r["type"] for r in records].count("session") == 2


def read_journal_if_any(run_dir: Path) -> list[dict]:
    try:
        return read_journal(run_dir)
    except (OSError, ValueError):
        return []
