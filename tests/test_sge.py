"""The shipped SGE job script, ``jobscripts/sge.qsub``, on a real Grid Engine.

``tests/cluster/start_sge.sh`` installs and starts Son of Grid Engine (Debian packages; needs root
and apt-get) once per session, with the queue all.q on this host; ``tests/cluster/start_sge_hosts.sh``
adds two exec hosts in network namespaces and the queue hosts.q over them, for the job over two
hosts. Where a script cannot, the tests are skipped with its reason; when the ``CI`` environment
variable is set, they fail instead. Jobs are submitted with ``qsub -sync y`` (which waits, also
through requeues, and returns the job's final exit code) unless a test has to
act while the job runs; every job still known to SGE at the end of a test is deleted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from mpibohb.bracket_plans import runs_per_budget
from mpibohb.journal import read_journal

pytestmark = pytest.mark.scheduler
ROOT = Path(__file__).parent.parent
JOB_SCRIPT = ROOT / "jobscripts" / "sge.qsub"
START_SGE = ROOT / "tests" / "cluster" / "start_sge.sh"
START_SGE_HOSTS = ROOT / "tests" / "cluster" / "start_sge_hosts.sh"
HOSTS = ("sgenode1", "sgenode2")  # start_sge_hosts.sh's exec hosts, 2 slots each in the queue hosts.q
CLUSTER_EXAMPLE = ROOT / "examples" / "cluster.py"
VENV = Path(sys.prefix)  # the virtualenv running the tests has mpibohb and the mpich wheel's mpiexec
SLOTS = 4  # 1 master + 3 workers on a 2-CPU machine: the queue has 8 slots; evaluations mostly sleep
MIN_BUDGET, MAX_BUDGET, ETA = 9, 243, 3
SIGUSR1 = 10


def unavailable(reason: str) -> None:
    """Skip, or under CI fail: CI must really run these tests."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"Grid Engine is needed under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def start(script: Path) -> dict[str, str]:
    """Run a start script of tests/cluster; the environment of the settings.sh it names."""
    if not sys.platform.startswith("linux"):
        unavailable("Grid Engine tests need Linux")
    if os.geteuid() != 0:
        unavailable("Grid Engine tests need root (the start scripts install packages and start daemons)")
    if shutil.which("qsub") is None and shutil.which("apt-get") is None:
        unavailable("Grid Engine is not installed and there is no apt-get to install it")
    if not (VENV / "bin" / "activate").exists():
        unavailable(f"the tests must run in a virtualenv (the job script activates it); {VENV} is none")
    try:
        started = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        unavailable(f"{script.relative_to(ROOT)} did not finish within 900 s")
    if started.returncode != 0:
        unavailable(f"{script.relative_to(ROOT)} failed (exit {started.returncode}):\n{started.stderr[-3000:]}")
    source = started.stdout.strip().splitlines()[-1]  # ". /var/lib/gridengine/default/common/settings.sh"
    dumped = subprocess.run(["bash", "-c", f"{source} && env -0"], capture_output=True, text=True, check=True)
    return dict(item.split("=", 1) for item in dumped.stdout.split("\0") if "=" in item)


@pytest.fixture(scope="session")
def sge_env() -> dict[str, str]:
    """Start Grid Engine with tests/cluster/start_sge.sh; the environment of its settings.sh."""
    return start(START_SGE)


@pytest.fixture(scope="session")
def sge_hosts_env(sge_env: dict[str, str]) -> dict[str, str]:
    """Also start the exec hosts sgenode1 and sgenode2 (network namespaces) and their queue hosts.q."""
    return start(START_SGE_HOSTS)


@dataclass
class Job:
    """A submission of the job script."""

    job_id: int
    log: Path  # its output file (-j y: stdout and stderr), appended to by every rerun
    returncode: int | None = None  # with -sync y: the exit code of its last run

    @property
    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


class Submitter:
    """Submits the job script; deletes what is left of its jobs afterwards."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.env = env
        self.directory = directory
        self.job_ids: list[int] = []
        self.names: list[str] = []  # a copy of a job (qresub) has the job's name

    def __call__(self, variables: dict[str, str], *, limits: str | None = None, sync: bool = True,
                 timeout: float = 120, queue: str = "all.q") -> Job:
        """``qsub [-sync y] -q queue -pe mpi SLOTS [-l limits] -v variables jobscripts/sge.qsub``
        in the test's directory, the job script unmodified. The queue all.q has this host's slots;
        hosts.q, once start_sge_hosts.sh made it, those of two more hosts."""
        name = f"mpibohb-test-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        log = self.directory / f"{name}.log"
        command = ["qsub", "-N", name, "-wd", str(self.directory), "-o", str(log), "-q", queue,
                   "-pe", "mpi", str(SLOTS)]
        if sync:
            command += ["-sync", "y"]
        if limits:
            command += ["-l", limits]
        command += ["-v", ",".join(f"{key}={value}" for key, value in variables.items()), str(JOB_SCRIPT)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)
        submitted = None
        for line in process.stdout:  # "Your job 12 ("name") has been submitted" comes at once
            submitted = submitted or re.match(r"Your job (\d+) ", line)
            if submitted:
                self.job_ids.append(int(submitted.group(1)))
                break
        try:
            process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise AssertionError(f"job {name} still running after {timeout} s; its output:\n"
                                 f"{log.read_text()[-4000:] if log.exists() else '(none)'}") from None
        assert submitted, f"qsub did not submit the job: {process.stderr.read() if process.stderr else ''}"
        return Job(int(submitted.group(1)), log, process.returncode if sync else None)

    def known(self, job_id: int | str) -> bool:
        """SGE still has the job (pending, running or being deleted), by id or name."""
        return subprocess.run(["qstat", "-j", str(job_id)], capture_output=True, env=self.env,
                              timeout=30).returncode == 0

    def delete(self, job_id: int, timeout: float = 90) -> None:
        """``qdel``, then wait until SGE has forgotten the job (``qdel -f`` at the end)."""
        subprocess.run(["qdel", str(job_id)], capture_output=True, env=self.env, timeout=30)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.known(job_id):
            time.sleep(0.5)
        if self.known(job_id):
            subprocess.run(["qdel", "-f", str(job_id)], capture_output=True, env=self.env, timeout=30)
            raise AssertionError(f"job {job_id} was still there {timeout} s after qdel")

    def cleanup(self) -> None:
        for job_id in self.job_ids:
            if self.known(job_id):
                try:
                    self.delete(job_id, timeout=30)
                except AssertionError:
                    pass
        for name in self.names:  # copies the test did not see, e.g. after a failed assertion
            for _ in range(10):
                if not self.known(name):
                    break
                subprocess.run(["qdel", "-f", name], capture_output=True, env=self.env, timeout=30)
                time.sleep(1)


@pytest.fixture
def qsub(sge_env: dict[str, str], tmp_path: Path):
    submitter = Submitter(sge_env, tmp_path)
    yield submitter
    submitter.cleanup()


@pytest.fixture
def qsub_hosts(sge_hosts_env: dict[str, str], tmp_path: Path):
    """As ``qsub``, where the queue hosts.q of two exec hosts exists."""
    submitter = Submitter(sge_hosts_env, tmp_path)
    yield submitter
    submitter.cleanup()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.5)


def toy_variables(n_iterations: int, sleep: float, **more: str) -> dict[str, str]:
    """``-v`` knobs of the job script for examples/cluster.py on the toy worker."""
    args = f"--n_iterations {n_iterations} --sleep_interval {sleep} --min_budget {MIN_BUDGET} --max_budget {MAX_BUDGET}"
    return {"VENV": str(VENV), "SCRIPT": str(CLUSTER_EXAMPLE), "ARGS": args, **more}


def journal_types(run_dir: Path) -> list[str]:
    try:
        return [record["type"] for record in read_journal(run_dir)]
    except (OSError, ValueError):
        return []


def check_results(records: list[dict], n_iterations: int | None) -> None:
    """Each evaluation once, each one handed out first, none failed; with ``n_iterations``: exactly
    the evaluations of that many brackets."""
    results = [r for r in records if r["type"] == "result"]
    keys = [(tuple(r["config_id"]), float(r["budget"])) for r in results]
    assert len(keys) == len(set(keys)), [k for k, n in Counter(keys).items() if n > 1]
    handed_out = {(tuple(r["config_id"]), float(r["budget"])) for r in records if r["type"] in ("job", "resubmit")}
    assert set(keys) <= handed_out
    assert all(r["error"] is None for r in results), [r["error"] for r in results if r["error"]][:1]
    if n_iterations is not None:
        expected = runs_per_budget(n_iterations, MIN_BUDGET, MAX_BUDGET, ETA)
        assert Counter(budget for _, budget in keys) == Counter({b: n for b, n in expected.items() if n})


def check_complete(run_dir: Path, n_iterations: int) -> list[dict]:
    """The run in ``run_dir`` finished with exactly the evaluations of ``n_iterations`` brackets,
    each once; returns the journal's records."""
    records = read_journal(run_dir)
    assert records[0]["type"] == "header" and records[-1]["type"] == "end", [r["type"] for r in records[-5:]]
    check_results(records, n_iterations)
    return records


@pytest.mark.timeout(420)  # includes installing Grid Engine when the session starts with it
def test_job_script_runs_bohb_over_slots_and_resumes_on_resubmission(qsub, tmp_path):
    run_dir = tmp_path / "run"
    job = qsub(toy_variables(2, 0.05, RUN_DIR=str(run_dir)))
    assert job.returncode == 0, job.output
    assert f"the run in {run_dir} finished; exit 0" in job.output
    records = check_complete(run_dir, 2)
    assert [r["type"] for r in records].count("session") == 1
    assert not any(r["type"] == "stop" for r in records)
    workers = Counter(r["worker"].split("@")[0] for r in records if r["type"] == "result")
    assert set(workers) <= {f"rank {k}" for k in range(1, SLOTS)} and len(workers) > 1, workers

    # A new submission on the same run directory resumes it; one more iteration extends it.
    before = [r for r in records if r["type"] == "result"]
    again = qsub(toy_variables(3, 0.05, RUN_DIR=str(run_dir)))
    assert again.returncode == 0, again.output
    assert f"resuming the run in {run_dir}" in again.output
    records = check_complete(run_dir, 3)
    assert [r["type"] for r in records].count("session") == 2
    assert [r for r in records if r["type"] == "result"][: len(before)] == before


@pytest.mark.timeout(300)
def test_time_limit_stops_requeues_and_resumes_until_done(qsub, tmp_path):
    # h_rt 60 s, STOP_MARGIN 46 s: the job script asks mpibohb to stop after 14 s; it records
    # everything, the job exits 99, SGE queues it again and the rerun (same job id, so the same
    # default run directory) resumes, with the same limit. The work (about 27 s on 3 workers, after
    # 2-4 s of start-up in each piece) takes three pieces or more.
    job = qsub(toy_variables(3, 1.2, STOP_MARGIN="46"), limits="h_rt=0:1:0", timeout=240)
    output = job.output
    assert job.returncode == 0, output
    run_dirs = list((tmp_path / "runs").iterdir())
    assert run_dirs == [tmp_path / "runs" / f"sge-{job.job_id}"], run_dirs
    assert "will stop the run after 14 s (h_rt 60 s, STOP_MARGIN 46 s)" in output
    assert "stopped (STOP_AFTER=14 s reached, mpiexec exit code 99)" in output
    assert output.count(f"sge.qsub: job {job.job_id} ") >= 3 and "restarted=1" in output
    assert "warning" not in output
    # the last piece finishes; under load the stop may reach it as it ends, after its "end" record
    assert re.search(r"finished( before the stop \(.*\))?; exit 0", output.splitlines()[-1]), output[-2000:]

    records = check_complete(run_dirs[0], 3)
    types = [r["type"] for r in records]
    stops = [r for r in records if r["type"] == "stop"]
    assert len(stops) >= 2 and all(r["signal"] == SIGUSR1 for r in stops), stops
    assert types.count("session") == len(stops) + 1
    assert types.count("session") == output.count(f"sge.qsub: job {job.job_id} ")


@pytest.mark.timeout(300)
def test_soft_limit_signal_and_qdel_stop_cleanly_and_a_resubmission_finishes(qsub, tmp_path):
    # SGE's own signals reach the job's whole process group. At s_rt (15 s) SGE sends SIGUSR1:
    # mpiexec gets it directly and passes it on once; mpibohb stops, the job exits 99 and SGE
    # queues it again. qdel on the rerun (the job has -notify) sends SIGUSR2, which the job script
    # turns into one SIGUSR1: the run stops cleanly again and SGE drops the job. Submitting again
    # with the run directory finishes the run. (The rerun is deleted early on purpose: SGE 8.1.9
    # would kill it at s_rt without requeueing it, which is why the job script keeps its own clock.)
    run_dir = tmp_path / "run"
    job = qsub(toy_variables(3, 0.9, RUN_DIR=str(run_dir)), limits="s_rt=0:0:15,h_rt=0:5:0", sync=False)
    wait_until(lambda: journal_types(run_dir).count("session") == 2, 120, "the rerun to resume the run")
    time.sleep(1.5)  # the rerun's master is past its start-up
    assert "restarted=1" in job.output
    qsub.delete(job.job_id)

    output = job.output
    assert "warning: -l s_rt is set" in output
    assert "stopped (SIGUSR1, mpiexec exit code 99)" in output
    assert "asking mpibohb to stop: SIGUSR2, SGE is about to kill the job" in output
    assert output.count(f"sge.qsub: job {job.job_id} ") == 2  # not requeued after qdel
    records = read_journal(run_dir)
    assert [r["type"] for r in records if r["type"] in ("session", "stop", "end")] == [
        "session", "stop", "session", "stop"]
    assert all(r["signal"] == SIGUSR1 for r in records if r["type"] == "stop")
    check_results(records, None)

    again = qsub(toy_variables(3, 0.9, RUN_DIR=str(run_dir)), timeout=120)
    assert again.returncode == 0, again.output
    assert f"resuming the run in {run_dir}" in again.output
    records = check_complete(run_dir, 3)
    assert [r["type"] for r in records].count("session") == 3


@pytest.mark.timeout(120)
@pytest.mark.parametrize("knob, message", [
    ("SCRIPT", "no script SCRIPT={value}"),
    ("VENV", "no Python environment at VENV={value}"),
])
def test_bad_submission_fails_with_message(qsub, tmp_path, knob, message):
    value = str(tmp_path / "does-not-exist")
    job = qsub(toy_variables(1, 0, **{knob: value}), timeout=60)
    assert job.returncode == 1, job.output
    assert "sge.qsub: error: " + message.format(value=value) in job.output
    assert job.output.rstrip().endswith("sge.qsub: exit 1")
    assert not (tmp_path / "runs").exists()


@pytest.mark.timeout(180)
def test_args_are_split_as_a_shell_splits_a_command_line(qsub, tmp_path):
    # ARGS last: SGE's -v reads a double-quoted part of a value past the commas that follow it.
    node_run = str(ROOT / "tests" / "scripts" / "node_run.py")
    note = "two words * 'quoted'"
    job = qsub({"VENV": str(VENV), "SCRIPT": node_run, "RUN_DIR": str(tmp_path / "run"),
                "ARGS": '--note "two words * \'quoted\'"'}, timeout=120)
    assert job.returncode == 0, job.output
    records = read_journal(tmp_path / "run")
    assert records[-1]["type"] == "end"
    check_results(records, None)
    assert {r["info"]["note"] for r in records if r["type"] == "result"} == {note}
    bad = qsub({"VENV": str(VENV), "SCRIPT": node_run, "RUN_DIR": str(tmp_path / "bad"),
                "ARGS": '--note "two words'}, timeout=60)
    assert bad.returncode == 1, bad.output
    assert 'sge.qsub: error: ARGS=--note "two words has an unmatched quote' in bad.output
    assert not (tmp_path / "bad").exists()


@pytest.mark.timeout(120)
def test_an_exception_outside_run_on_one_rank_ends_the_job(qsub, tmp_path):
    # The job script starts the script with python -m mpi4py: rank 2's exception before run()
    # aborts every rank (MPI_Abort) instead of leaving the others in MPI until h_rt.
    script = tmp_path / "fails_on_rank_2.py"
    script.write_text("from mpi4py import MPI\n"
                      "if MPI.COMM_WORLD.Get_rank() == 2:\n"
                      "    raise RuntimeError('rank 2 fails before run()')\n"
                      "MPI.COMM_WORLD.Barrier()\n")
    # (Started with plain python, the other ranks wait in the barrier: the job would outlast the 60 s.)
    # MPICH's own "Abort(1) on node 2" line is not checked: hydra drops it now and then (3 of 12).
    job = qsub({"VENV": str(VENV), "SCRIPT": str(script), "RUN_DIR": str(tmp_path / "run")}, timeout=60)
    assert job.returncode == 1, job.output
    assert "mpiexec failed with exit code 1" in job.output.splitlines()[-2], job.output


def processes_on(host: str) -> list[str]:
    """``pid name`` of each process in the network namespace of ``host``, its sge_execd aside."""
    pids = subprocess.run(["ip", "netns", "pids", f"mpibohb-{host}"], capture_output=True, text=True,
                          timeout=30).stdout.split()
    found = []
    for pid in pids:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:  # ended meanwhile
            continue
        if name != "sge_execd":
            found.append(f"{pid} {name}")
    return found


@pytest.mark.timeout(420)  # includes start_sge_hosts.sh when the session starts with it
def test_job_over_two_hosts_stops_goes_on_as_a_copy_and_finishes(qsub_hosts, tmp_path):
    # -q hosts.q -pe mpi 4: 2 slots on each of two exec hosts, each a network namespace with its own
    # host name (tests/cluster/start_sge_hosts.sh). The job script runs MPICH's mpiexec on the job's
    # master host; hydra reads $PE_HOSTFILE and starts the other host's ranks with `qrsh -inherit`.
    # STOP_AFTER=12: each piece stops after 12 s, of which start-up takes 2-4 s (the stop must reach
    # the other host's ranks through hydra); the work, about 20 s on 3 workers, takes 2 pieces or
    # more. A requeued job of several hosts would not start again here (SGE 8.1.9 keeps it off the
    # host of its slave tasks), so the job script submits a copy of the job, with the same RUN_DIR
    # in its context, and exits 0; the copies go on until the run is done. When the last one has
    # ended, SGE has ended every process it started on both hosts. No RUN_DIR is given: the first
    # job's default, runs/sge-<its id>, must carry over to the copies, which have other ids.
    job = qsub_hosts(toy_variables(2, 1.0, STOP_AFTER="12"), queue="hosts.q")
    assert job.returncode == 0, job.output
    run_dir = tmp_path / "runs" / f"sge-{job.job_id}"

    def copies() -> list[int]:  # any left at the end are deleted by name (Submitter.cleanup)
        return [int(n) for n in re.findall(r"continued by job (\d+), a copy of this job over 2 hosts", job.output)]

    wait_until(lambda: journal_types(run_dir)[-1:] == ["end"] and not any(map(qsub_hosts.known, copies())),
               240, "the copies of the job to finish the run")
    output = job.output
    assert list((tmp_path / "runs").iterdir()) == [run_dir], output
    pieces = re.findall(r"sge\.qsub: job (\d+) \(\S+\) on (\S+), 4 slot\(s\), restarted=0", output)
    assert [int(job_id) for job_id, _ in pieces] == [job.job_id, *copies()], pieces
    assert len(pieces) >= 2 and {host for _, host in pieces} <= set(HOSTS), pieces
    assert output.count("stopped (STOP_AFTER=12 s reached") == len(pieces) - 1, output
    assert "warning" not in output, output
    # The last piece may end just as its STOP_AFTER comes: the run is done either way.
    assert re.search(r"finished( before the stop \(.*\))?; exit 0$", output.splitlines()[-1]), output

    records = check_complete(run_dir, 2)
    types = [r["type"] for r in records]
    # A piece stopped while Python still started records no session and no stop: at most one each.
    assert 2 <= types.count("session") <= len(pieces), types
    stops = [r for r in records if r["type"] == "stop"]
    assert 1 <= len(stops) <= len(pieces) - 1 and all(r["signal"] == SIGUSR1 for r in stops), stops
    workers = Counter(r["worker"] for r in records if r["type"] == "result")  # "rank R@host"
    assert {worker.split("@")[1] for worker in workers} == set(HOSTS), workers
    assert {worker.split("@")[0] for worker in workers} == {"rank 1", "rank 2", "rank 3"}, workers

    wait_until(lambda: not any(processes_on(host) for host in HOSTS), 30, "the jobs' processes to end")


@pytest.mark.timeout(420)  # includes start_sge_hosts.sh when the session starts with it
def test_qdel_stops_a_job_over_two_hosts_and_no_copy_goes_on(qsub_hosts, tmp_path):
    # qdel (with -notify: SIGUSR2 first) is the user's "no more": the run stops cleanly, and the
    # job script, which continues a stopped job over several hosts as a copy, makes none.
    run_dir = tmp_path / "run"
    job = qsub_hosts(toy_variables(3, 0.9, RUN_DIR=str(run_dir)), queue="hosts.q", sync=False)
    wait_until(lambda: "session" in journal_types(run_dir), 120, "the run to start")
    time.sleep(1.5)  # the master is past its start-up
    qsub_hosts.delete(job.job_id)
    wait_until(lambda: not qsub_hosts.known(qsub_hosts.names[-1]), 30, "no job of that name to be left")
    output = job.output
    assert "asking mpibohb to stop: SIGUSR2, SGE is about to kill the job" in output, output
    assert "continued by job" not in output and "exit 99: SGE queues" in output, output
    records = read_journal(run_dir)
    assert records[-1]["type"] == "stop" and records[-1]["signal"] == SIGUSR1, records[-3:]
    check_results(records, None)
    wait_until(lambda: not any(processes_on(host) for host in HOSTS), 30, "the job's processes to end")


@pytest.mark.timeout(420)  # includes start_sge_hosts.sh when the session starts with it
def test_ranks_that_die_on_one_host_end_the_job_and_a_resubmission_finishes(qsub_hosts, tmp_path):
    # A host's part of the job dies (SIGKILL to its ranks and its hydra proxy, as in a node crash or
    # the out-of-memory killer): mpiexec on the job's master host ends the job at once, the job
    # script says how to go on and makes no copy (the run did not stop, it failed). What was
    # recorded stays; a submission with the same RUN_DIR runs what was running again and finishes.
    run_dir = tmp_path / "run"
    job = qsub_hosts(toy_variables(3, 0.9, RUN_DIR=str(run_dir)), queue="hosts.q", sync=False)
    wait_until(lambda: journal_types(run_dir).count("result") >= 10, 120, "ten results")
    master = re.search(r"sge\.qsub: job \d+ \(\S+\) on (\S+),", job.output).group(1)
    other, = set(HOSTS) - {master}
    killed = [line.split()[0] for line in processes_on(other) if line.split()[1] in ("python", "hydra_pmi_proxy")]
    assert len(killed) == 3, processes_on(other)  # its 2 ranks and the proxy that started them
    subprocess.run(["kill", "-9", *killed], check=True, timeout=30)
    wait_until(lambda: not qsub_hosts.known(job.job_id), 60, "the job to end")

    output = job.output
    assert f"submit again with -v RUN_DIR={run_dir} to resume" in output, output
    assert "continued by job" not in output and "exit 99" not in output, output
    wait_until(lambda: not any(processes_on(host) for host in HOSTS), 30, "the job's processes to end")
    before = [r for r in read_journal(run_dir) if r["type"] == "result"]
    assert len(before) >= 10
    check_results(read_journal(run_dir), None)

    again = qsub_hosts(toy_variables(3, 0.9, RUN_DIR=str(run_dir)), queue="hosts.q", timeout=180)
    assert again.returncode == 0, again.output
    assert re.search(rf"resuming {re.escape(str(run_dir))}: {len(before)} runs done, [1-9]\d* to run again",
                     again.output), again.output
    records = check_complete(run_dir, 3)
    assert [r for r in records if r["type"] == "result"][: len(before)] == before
