"""The optimizers users know from HpBandSter: ``BOHB``, ``HyperBand`` and ``RandomSearch``."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from . import bracket_plans, checks
from .ask_tell import Optimizer
from .checkpoints import CHECKPOINTS, checked_keep
from .evaluation import max_info_bytes, sigint_watch
from .executors import Executor
from .executors.serial import SerialExecutor
from .executors.threads import ThreadExecutor
from .files import file_mode
from .journal import RunDirectoryError, values_journaled_alike
from .launcher import flush_standard_streams, launched_communicator, launched_rank, note_run
from .mpi_start import notice_seconds
from .result import Result
from .samplers import Sampler
from .samplers.hpbandster_kde import KDESettings, warn_about_min_points
from .samplers.models import kept_on_resume, model_sampler, model_settings, settings_record
from .samplers.random import RandomSampler
from .scheduling import make_schedule
from .session import configspace_text, run_master
from .space import SearchSpace
from .stopping import EXIT_STOPPED, RunStopped
from .worker import HPBANDSTER_CONNECTION_ARGUMENTS, as_compute_function, declares_checkpoint_dir, thread_copies

logger = logging.getLogger("mpibohb")


@dataclass(frozen=True)
class json_result_logger:  # noqa: N801 - HpBandSter's name, so ported scripts keep their line
    """HpBandSter's ``json_result_logger(directory, overwrite)`` for ``result_logger=``: it makes
    ``directory`` the optimizer's ``run_dir``, where ``configs.json`` and ``results.json`` are
    written live (with the journal); ``overwrite=True`` makes ``run`` start afresh there."""

    directory: str | os.PathLike[str]
    overwrite: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "overwrite", checks.flag("overwrite", self.overwrite))  # frozen: set it once here


@dataclass(frozen=True)
class RunSetup:
    """A run's checked arguments (see :meth:`_HyperbandFamily.prepare_run`): ``compute`` is the
    worker as a function, ``timeout`` ``None`` for no limit, ``overwrite`` includes HpBandSter's
    ``json_result_logger(overwrite=True)``, ``checkpoint_root`` ``None`` when compute keeps none."""

    n_iterations: int
    compute: Callable[..., Any]
    worker: Any  # as given: threads evaluate with copies of it (worker.thread_copies)
    timeout: float | None
    resume: bool
    overwrite: bool
    previous_result: Any
    working_directory: str
    checkpoint_root: str | None


class _HyperbandFamily:
    """What the three optimizers share: budgets, seed, search space, and ``run``.

    Args:
        configspace: the search space, a ``ConfigSpace.ConfigurationSpace``.
        eta: the successive-halving rate: 1/eta of a rung is promoted; budgets grow by eta.
        min_budget, max_budget: the smallest and largest budget a configuration is evaluated on.
        seed: makes the run repeatable (``None``: a random one, journaled for a resume).
        run_dir: where the run is journaled and resumed from (``None``: nothing is kept).
        previous_result: a warm start: an earlier ``Result`` or run directory (HpBandSter's logs too).
        result_logger: HpBandSter's ``json_result_logger(directory, overwrite)``, for ``run_dir``.
        fill_tail: start the last brackets early, so that many workers stay busy to the end.
        asynchronous: promotions without stage barriers: no worker waits for a straggler.
        keep_busy: with ``asynchronous``, idle workers get extra jobs while the run's last ones run.
        checkpoint_root: where a ``compute`` that takes ``checkpoint_dir`` keeps its checkpoints
            (``None``: ``<run_dir>/checkpoints``).
        keep_checkpoints: which checkpoint directories stay: ``"incumbent"``, ``"all"``, ``"none"``.
        brackets: cycle through Hyperband's ``brackets`` most aggressive brackets (``None``: all).
        **hpbandster_arguments: HpBandSter's connection arguments (``run_id``, ``nameserver``,
            ``host``, ...), accepted and ignored; ``working_directory`` is passed on to ``compute``.

    Raises:
        ValueError: an argument out of its range (the message names it); TypeError: an unknown one.
    """

    name = "hyperband"

    def __init__(self, configspace: Any = None, eta: float = 3, min_budget: float = 0.01,
                 max_budget: float = 1, seed: int | None = None, run_dir: str | os.PathLike[str] | None = None,
                 previous_result: Any = None, result_logger: json_result_logger | None = None,
                 fill_tail: bool = False, asynchronous: bool = False, keep_busy: bool = False,
                 checkpoint_root: str | os.PathLike[str] | None = None, keep_checkpoints: str = "incumbent",
                 brackets: int | None = None, **hpbandster_arguments: Any) -> None:
        unknown = sorted(set(hpbandster_arguments) - HPBANDSTER_CONNECTION_ARGUMENTS - {"shutdown_workers"})
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {unknown}")
        # HpBandSter's master passed its working_directory on to compute, and so does this one
        given_directory = hpbandster_arguments.pop("working_directory", None)
        self.working_directory = None if given_directory is None else os.fspath(given_directory)
        if hpbandster_arguments and launched_rank() in (None, 0):  # said once, not by every rank
            logger.info("ignoring HpBandSter arguments %s: mpibohb needs no nameserver or host",
                        sorted(hpbandster_arguments))
        min_budget, max_budget, eta = bracket_plans.validate_budgets(min_budget, max_budget, eta)
        self.space = SearchSpace(configspace)
        self.configspace = configspace
        self.eta, self.min_budget, self.max_budget = eta, min_budget, max_budget
        self.budgets = bracket_plans.rung_budgets(min_budget, max_budget, eta)
        if len(self.budgets) == 1 and min_budget < max_budget and self.name != "randomsearch" \
                and launched_rank() in (None, 0):
            logger.warning("min_budget=%g, max_budget=%g and eta=%g leave one budget, %g (the ladder max_budget * "
                           "eta**-k stops before it reaches min_budget): every configuration runs on max_budget "
                           "alone, without successive halving; min_budget <= max_budget / eta gives two budgets",
                           min_budget, max_budget, eta, max_budget)
        self.brackets = bracket_plans.checked_brackets(brackets, min_budget, max_budget, eta)
        given_seed = checks.optional_integer("seed", seed, minimum=0)
        self.seed_given = given_seed is not None
        self.seed = secrets.randbits(63) if given_seed is None else given_seed
        self.run_dir, self._logger_overwrites = _run_dir_and_overwrite(run_dir, result_logger)
        self.previous_result = previous_result
        self.fill_tail = checks.flag("fill_tail", fill_tail)
        self.asynchronous = checks.flag("asynchronous", asynchronous)
        if self.fill_tail and self.asynchronous:
            raise ValueError("fill_tail and asynchronous exclude each other: an asynchronous run has no stages to "
                             "wait for, so no tail of brackets to fill; pick one")
        self.keep_busy = checks.flag("keep_busy", keep_busy)
        if self.keep_busy and not self.asynchronous:
            raise ValueError("keep_busy=True needs asynchronous=True: it gives extra jobs to workers that the "
                             "asynchronous schedule would leave idle at the end of a run")
        if checkpoint_root is not None and not os.fspath(checkpoint_root).strip():
            raise ValueError(f"checkpoint_root={checkpoint_root!r} is empty: give a directory, or None for "
                             "<run_dir>/checkpoints")
        self.checkpoint_root = None if checkpoint_root is None else os.path.abspath(os.fspath(checkpoint_root))
        self.keep_checkpoints = checked_keep(keep_checkpoints)
        self._has_run = False

    def _make_sampler(self) -> Sampler:
        return RandomSampler(self.space)

    def plan(self, iteration: int) -> bracket_plans.BracketPlan:
        """The bracket this optimizer runs as iteration ``iteration``."""
        return bracket_plans.bracket_plan(iteration, self.min_budget, self.max_budget, self.eta, self.brackets)

    @property
    def plan_period(self) -> int:
        """Plans repeat every this many iterations."""
        return self.brackets or len(self.budgets)

    def kept_on_resume(self, journaled: dict[str, Any]) -> dict[str, Any]:
        """The model settings a resume keeps as journaled (BOHB's; the others have no model)."""
        return {}

    @contextlib.contextmanager
    def resumed_with(self, kept: dict[str, Any]) -> Iterator[None]:
        """Model settings kept for a resume (BOHB's; the others have none)."""
        yield

    def settings(self) -> dict[str, Any]:
        """The run's settings, with HpBandSter's ``HB_config`` keys."""
        return {"optimizer": self.name, "eta": self.eta, "min_budget": self.min_budget,
                "max_budget": self.max_budget, "budgets": list(self.budgets),
                "max_SH_iter": len(self.budgets), "seed": self.seed, "fill_tail": self.fill_tail,
                "asynchronous": self.asynchronous, "keep_busy": self.keep_busy, "brackets": self.brackets,
                "checkpoint_root": self.checkpoint_root,
                "keep_checkpoints": self.keep_checkpoints}

    def checkpoints_of(self, compute: Callable[..., Any]) -> str | None:
        """Where the checkpoint directories of a run of ``compute`` go: ``None`` when ``compute``
        does not name ``checkpoint_dir``, else ``checkpoint_root`` or ``<run_dir>/checkpoints``.

        Raises:
            ValueError: ``compute`` names ``checkpoint_dir`` but there is neither, or the root is a file.
        """
        if not declares_checkpoint_dir(compute):
            return None
        if self.checkpoint_root is None and self.run_dir is None:
            raise ValueError("compute takes a checkpoint_dir, which must outlive the jobs of a configuration: give "
                             "the optimizer a run_dir (checkpoints go to <run_dir>/checkpoints) or a checkpoint_root")
        root = self.checkpoint_root or os.path.abspath(os.path.join(str(self.run_dir), CHECKPOINTS))
        if os.path.exists(root) and not os.path.isdir(root):
            raise ValueError(f"checkpoint_root {root} is a file, not a directory")
        return root

    def run(self, *positional: Any, n_iterations: int | None = None, worker: Any = None,
            n_workers: int | None = None, comm: Any = None, timeout: float | None = None, resume: bool = False,
            overwrite: bool = False, previous_result: Any = None, workers_return: bool = False,
            max_rank_failures: int | None = 3,
            **hpbandster_run_arguments: Any) -> Result | None:
        """Run ``n_iterations`` brackets with ``worker``; return the :class:`Result` on the master.

        Every process of the job calls ``run`` the same way. Under an MPI launcher with more than
        one rank (or with ``comm`` given), rank 0 runs the optimizer and returns the ``Result``;
        the other ranks evaluate jobs, and when the run ends they end their process (exit code 0),
        as HpBandSter's worker processes did: code after ``run`` runs on rank 0 only. Their
        interpreters wait, sleeping, until rank 0's exits; an exception on rank 0 still ends the
        job (with rank 0's exit code). ``workers_return=True`` makes them return ``None`` instead.
        In a single process, evaluations run serially, or with ``n_workers`` in that many threads.

        With a ``run_dir``, every job and result is journaled there before the optimizer acts on
        it; SIGTERM, SIGINT or SIGUSR1 then stop the run after recording everything, and the
        process exits with code 99 (:data:`mpibohb.EXIT_STOPPED`).

        Args:
            n_iterations: number of Hyperband iterations (brackets).
            worker: a :class:`~mpibohb.Worker` or a function ``f(config, budget)``.
            Both may also come positionally, in either order: ``run(4, worker)``,
            ``run(worker, n_iterations=4)``, HpBandSter's ``run(4, worker=w)``.
            n_workers: threads to evaluate in when there is a single process (None: serially);
                under MPI the workers are the ranks but rank 0, and another ``n_workers`` is
                ignored with a warning.
            comm: an mpi4py communicator to run on; default ``MPI.COMM_WORLD`` under a launcher.
            timeout: seconds after which an evaluation is recorded as failed ("timeout");
                ``None``, ``inf`` or more than 10**8 s: no limit.
            resume: continue the run in ``run_dir`` (a new run if there is none): finished
                evaluations are kept, unfinished ones run again.
            overwrite: delete the run in ``run_dir`` and start afresh.
            previous_result: a ``Result`` or run directory whose evaluations warm-start the model
                (or give it to the optimizer, as HpBandSter did).
            workers_return: under MPI, worker ranks return ``None`` from ``run`` and go on with
                the script, for SPMD code that does more on every rank (and for every ``run`` of a
                script but its last); rank 0 returns the ``Result`` either way.
            max_rank_failures: under MPI, a worker rank whose last this many evaluations failed
                while other ranks succeeded is taken out of service, and those evaluations run
                again on other ranks (more than this many where configurations often fail on the
                other ranks: see docs/reliability.md); until its next result decides, a failure
                is held back, not recorded. ``None``: record every failure at once and keep every rank.

        HpBandSter's ``min_n_workers`` and ``iteration_kwargs`` are accepted and ignored; a
        ``min_n_workers`` larger than the run's workers is logged as a warning that says how to
        get them.

        Raises:
            ValueError: an argument of the wrong type or out of range (``n_iterations < 1``, a
                bad ``timeout``, ...; numpy numbers count as numbers, bools not), a worker
                without ``compute``, resuming a run with other settings, a search space whose
                forbidden clauses leave (almost) no legal configuration (``NoLegalConfigurationError``).
            RuntimeError: a second ``run`` of an optimizer without ``run_dir``; under MPI, a
                ``run`` after one whose worker ranks ended; a ``run`` while ``python -m mpibohb
                run`` imports the worker's file (:class:`RunAtImportError`).
            FileExistsError: ``run_dir`` holds a run and neither ``resume`` nor ``overwrite``.
            TypeError: an unknown keyword argument, more than two positional ones, or
                ``n_iterations`` or ``worker`` given twice.
        """
        note_run()  # on any communicator: this rank does not tell rank 0 at its exit that it left without run()
        _refuse_run_while_importing_worker()
        n_iterations, worker = _iterations_and_worker(positional, n_iterations, worker)
        n_workers = checks.optional_integer("n_workers", n_workers, minimum=1)
        max_rank_failures = checks.optional_integer("max_rank_failures", max_rank_failures, minimum=1)
        workers_return = checks.flag("workers_return", workers_return)
        unknown = sorted(set(hpbandster_run_arguments) - {"min_n_workers", "iteration_kwargs"})
        if unknown:
            raise TypeError(f"run() got unexpected keyword arguments {unknown}")
        if comm is not None and not callable(getattr(comm, "Get_size", None)):
            raise ValueError(f"comm must be an mpi4py communicator (e.g. MPI.COMM_WORLD) or None, got {comm!r}")
        if self._has_run and self.run_dir is None:
            raise RuntimeError(
                f"this {type(self).__name__} has run already, and without a run_dir a second run() would repeat "
                "the same evaluations (HpBandSter's run() continued instead). To run more iterations, give "
                "the optimizer a run_dir and call run() again with the new total and resume=True; or make a "
                "new optimizer with another seed")
        setup = self.prepare_run(n_iterations, worker, timeout, resume, overwrite, previous_result)
        comm = comm if comm is not None else launched_communicator()
        _warn_about_worker_counts(comm, n_workers, hpbandster_run_arguments.get("min_n_workers"))

        def master(executor: Executor, workers: int) -> Result:
            return run_master(self, executor, setup.n_iterations, workers, setup.resume, setup.overwrite,
                              setup.previous_result, checkpoint_root=setup.checkpoint_root)

        _refuse_lone_ranks_sharing_a_run_dir(comm, self.run_dir)
        try:
            with sigint_watch():  # a KeyboardInterrupt raised by compute is a failed run, a real Ctrl-C is not
                result = self._execute(master, setup, n_workers, comm, workers_return, max_rank_failures)
        except KeyboardInterrupt:
            if self.run_dir is None:  # with one, a Ctrl-C stops the run cleanly and keeps every result
                logger.warning("interrupted: this run has no run_dir, so its results end with it; give the optimizer "
                               "run_dir=... to keep every result and resume=True to continue after a stop")
            raise
        self._has_run = True  # on every rank, once the run has ended (a failed start may be retried)
        return result

    def prepare_run(self, n_iterations: Any, worker: Any, timeout: Any, resume: Any, overwrite: Any,
                    previous_result: Any) -> RunSetup:
        """The arguments that ``run`` and :func:`mpibohb.simulate` share, checked as ``run``
        documents them, and what follows from them (see :class:`RunSetup`).

        Raises:
            ValueError: a bad argument, or ``resume`` and ``overwrite`` that contradict each other
                or lack a run_dir (see ``run``).
        """
        note_run()  # run() and simulate(): this rank does not tell rank 0 at its exit that it left without run()
        n_iterations = checks.integer("n_iterations", n_iterations, minimum=1)
        timeout = _checked_timeout(timeout)
        resume, overwrite = checks.flag("resume", resume), checks.flag("overwrite", overwrite)
        if previous_result is not None and self.previous_result is not None \
                and previous_result is not self.previous_result:
            raise ValueError("previous_result was given to the optimizer and to run(); give it once")
        previous_result = self.previous_result if previous_result is None else previous_result
        if previous_result is not None and not callable(getattr(previous_result, "get_all_runs", None)) \
                and not isinstance(previous_result, (str, os.PathLike)):  # checked also when a resume will not read it
            raise ValueError(f"previous_result must be a Result or a run directory, got {previous_result!r:.100}")
        overwrite = overwrite or (self._logger_overwrites and not resume and not self._has_run)  # once, as HpBandSter
        if worker is None:
            raise ValueError("run() needs a worker: run(n_iterations=..., worker=MyWorker())")
        if resume and overwrite:
            raise ValueError("resume=True and overwrite=True contradict each other; pick one")
        if (resume or overwrite) and self.run_dir is None:
            raise ValueError(f"{'resume' if resume else 'overwrite'}=True needs the optimizer's run_dir: without "
                             "one nothing is kept to resume from (a kill loses the run); give run_dir=... to "
                             f"{type(self).__name__}")
        compute = as_compute_function(worker)
        self.make_optimizer(n_iterations)  # validates n_iterations identically on every rank
        self.space.check_unchanged()  # the space was changed after the optimizer was made: an error now
        if self.run_dir is not None:
            configspace_text(self.configspace)  # a space JSON cannot hold: an error before anything is deleted
            alike = values_journaled_alike(self.configspace)
            if alike and launched_rank() in (None, 0):
                logger.warning("%s; this run cannot be resumed", alike)
        self.space.check_samplable()  # forbidden clauses that leave no legal configuration: an error now, on every rank
        max_info_bytes(), file_mode(), notice_seconds()  # a bad MPIBOHB_* variable: the same
        working_directory = os.path.abspath(self.working_directory or self.run_dir or os.getcwd())
        if self.working_directory:
            os.makedirs(working_directory, exist_ok=True)
        return RunSetup(n_iterations, compute, worker, timeout, resume, overwrite,
                        previous_result, working_directory, self.checkpoints_of(compute))

    def _execute(self, master: Callable[[Executor, int], Result], setup: RunSetup, n_workers: int | None, comm: Any,
                 workers_return: bool, max_rank_failures: int | None = 3) -> Result:
        """Run ``master`` over MPI ranks (``comm`` of more than one rank), threads or in this process."""
        compute, directory, timeout, root = setup.compute, setup.working_directory, setup.timeout, setup.checkpoint_root
        if comm is not None and comm.Get_size() > 1:
            from .executors.mpi import run_spmd

            return run_spmd(comm, lambda executor: master(executor, comm.Get_size() - 1), compute,
                            directory, timeout, graceful_stop=self.run_dir is not None,
                            workers_return=workers_return, rank_failure_limit=max_rank_failures,
                            checkpoint_root=root)
        if n_workers is None and (timeout is None or threading.current_thread() is threading.main_thread()):
            return master(SerialExecutor(compute, directory, timeout, root), 1)
        # outside the main thread no SIGALRM interrupts a job past its timeout: one worker thread
        # runs the jobs, and one past its limit is recorded at it, instead of ending the process
        n_workers = n_workers or 1
        try:
            copies = thread_copies(setup.worker, compute) if n_workers > 1 else None  # before any evaluation
            return master(ThreadExecutor(compute, directory, n_workers, timeout, root, copies), n_workers)
        except RunStopped:
            logging.shutdown()  # threads cannot be interrupted: leave without waiting for them
            flush_standard_streams()  # compute may have closed or replaced them
            os._exit(EXIT_STOPPED)

    def make_optimizer(self, n_iterations: int) -> Optimizer:
        """A fresh ask/tell core for ``n_iterations`` brackets, seeded from ``seed``."""
        rng = np.random.default_rng(self.seed)
        n_iterations = checks.integer("n_iterations", n_iterations, minimum=1)
        sampler = self._make_sampler()
        kind = ("keep_busy" if self.keep_busy else "asynchronous") if self.asynchronous \
            else "fill_tail" if self.fill_tail else "synchronous"
        return Optimizer(sampler, make_schedule(kind, sampler, self.plan, n_iterations, self.eta, self.plan_period),
                         rng)

    def shutdown(self, shutdown_workers: bool = False) -> None:
        """HpBandSter compatibility: nothing to shut down, workers stop when ``run`` returns."""


def _run_dir_and_overwrite(run_dir: Any, result_logger: Any) -> tuple[str | None, bool]:
    """The run directory, from ``run_dir`` or HpBandSter's ``result_logger=json_result_logger(...)``,
    and whether that logger asked to overwrite."""
    if run_dir is not None and not os.fspath(run_dir):
        raise ValueError("run_dir is empty; give a directory (\".\" for the current one), or None for a run "
                         "without one")
    if result_logger is None:
        return (None if run_dir is None else os.fspath(run_dir)), False
    if type(result_logger) is not json_result_logger:  # a subclass's own methods would never be called
        raise ValueError(f"result_logger must be mpibohb.json_result_logger(directory) or None, got {result_logger!r}:"
                         " mpibohb writes configs.json and results.json live into the optimizer's run_dir, and "
                         "calls no logger of yours (read the results as they come with `python -m mpibohb "
                         "status` or mpibohb.load_result(run_dir))")
    directory = os.fspath(result_logger.directory)
    if run_dir is not None and os.path.abspath(os.fspath(run_dir)) != os.path.abspath(directory):
        raise ValueError(f"run_dir={os.fspath(run_dir)!r} and result_logger's directory {directory!r} differ;"
                         " give one of them")
    return directory, bool(result_logger.overwrite)


def _refuse_lone_ranks_sharing_a_run_dir(comm: Any, run_dir: str | None) -> None:
    """``srun`` without an MPI plugin starts every task as its own one-process MPI job; with a run
    directory they would all try to run the optimizer in it. Say so instead."""
    tasks = os.environ.get("SLURM_STEP_NUM_TASKS", "1")
    if run_dir is not None and (comm is None or comm.Get_size() == 1) and tasks.isdigit() and int(tasks) > 1:
        raise RuntimeError(f"srun started {tasks} tasks but MPI sees each as a job of its own: launch with "
                           "srun --mpi=pmi2 (pmix for Open MPI 5; see srun --mpi=list) or with mpiexec")


class RunAtImportError(RuntimeError):
    """``run()`` was called while ``python -m mpibohb run`` imported the file of its ``--worker``."""


_importing_worker: str | None = None  # the --worker spec while ``python -m mpibohb run`` imports it


@contextlib.contextmanager
def refusing_runs(worker_spec: str) -> Iterator[None]:
    """While active, ``run()`` raises :class:`RunAtImportError`: ``python -m mpibohb run`` imports
    the worker's file, and a run at its top level would start before the command's own run."""
    global _importing_worker
    previous, _importing_worker = _importing_worker, worker_spec
    try:
        yield
    finally:
        _importing_worker = previous


def _refuse_run_while_importing_worker() -> None:
    if _importing_worker is not None:
        raise RunAtImportError(
            f"--worker {_importing_worker}: its file calls run() when it is imported, so its own optimisation would "
            "start before this one; put the file's run under `if __name__ == \"__main__\":` (the command imports "
            "the file only to get the worker)")


def _warn_about_worker_counts(comm: Any, n_workers: int | None, min_n_workers: Any) -> None:
    """On rank 0: a warning when ``n_workers`` is ignored under MPI, or when HpBandSter's
    ``min_n_workers`` asks for more workers than the run has; each says how to get them."""
    mpi = comm is not None and comm.Get_size() > 1
    if mpi and comm.Get_rank() != 0:
        return
    if mpi:
        workers = comm.Get_size() - 1
        situation = f"this MPI job has {workers} worker rank{'' if workers == 1 else 's'} (the ranks besides rank 0)"
        if n_workers is not None and n_workers != workers:
            logger.warning("n_workers=%d is ignored under MPI: %s; for %d workers start mpiexec -n %d",
                           n_workers, situation, n_workers, n_workers + 1)
    elif n_workers is not None:
        workers, situation = n_workers, f"this run evaluates in n_workers={n_workers} threads"
    else:
        workers, situation = 1, "this run evaluates serially in one process"
    if checks.is_integer(min_n_workers) and min_n_workers > workers:
        threads = "" if mpi else f"pass n_workers={min_n_workers} to run() (threads, if compute releases the GIL) or "
        logger.warning("min_n_workers=%d is ignored (HpBandSter waited for that many workers): %s. For %d workers, "
                       "%sstart the script with mpiexec -n %d", min_n_workers, situation, min_n_workers, threads,
                       min_n_workers + 1)


def _iterations_and_worker(positional: tuple[Any, ...], n_iterations: Any, worker: Any) -> tuple[Any, Any]:
    """Sort ``run``'s positional arguments into the iteration count (an integer) and the worker."""
    if len(positional) > 2:
        raise TypeError(f"run() takes at most 2 positional arguments (n_iterations, worker), got {len(positional)}")
    counts = [value for value in positional if checks.is_integer(value)]
    for value in positional:
        is_count = checks.is_integer(value)
        if is_count and n_iterations is None:
            n_iterations = value
        elif not is_count and worker is None:
            worker = value
        elif len(counts) == 2:  # HpBandSter's run(n_iterations, min_n_workers)
            raise TypeError(f"run() got two counts, {counts[0]!r} and {counts[1]!r}: HpBandSter's second positional "
                            "argument, min_n_workers, goes by keyword here (min_n_workers=...), and the worker "
                            "as run(n_iterations, worker)")
        else:
            raise TypeError(f"run() got {'n_iterations' if is_count else 'worker'} twice")
    return (1 if n_iterations is None else n_iterations), worker


class HyperBand(_HyperbandFamily):
    """Hyperband (Li et al., 2018): successive halving brackets over random configurations."""

    name = "hyperband"


class RandomSearch(_HyperbandFamily):
    """Random search at ``max_budget``, as HpBandSter runs it: each iteration evaluates as many
    configurations as Hyperband has rungs, all on ``max_budget``."""

    name = "randomsearch"

    def __init__(self, configspace: Any = None, eta: float = 3, min_budget: float = 1,
                 max_budget: float = 1, **kwargs: Any) -> None:
        if kwargs.get("brackets") is not None:
            raise ValueError(f"brackets={kwargs['brackets']!r}: RandomSearch runs every configuration at max_budget "
                             "and has no brackets to choose; use HyperBand or BOHB")
        super().__init__(configspace, eta, min_budget, max_budget, **kwargs)

    def plan(self, iteration: int) -> bracket_plans.BracketPlan:
        """Every iteration: ``len(budgets)`` configurations at ``max_budget``."""
        return bracket_plans.BracketPlan(0, (len(self.budgets),), (float(self.max_budget),))


class BOHB(_HyperbandFamily):
    """BOHB (Falkner et al., 2018): Hyperband whose configurations come from a density-ratio model.

    ``model="tpe"`` (the default): a TPE-style Parzen estimator (``mpibohb/samplers/tpe.py``);
    ``model="hpbandster"``: HpBandSter's KDE (the BOHB paper's), for runs that reproduce or compare
    with HpBandSter. The model's parameters left ``None`` take that model's defaults (HpBandSter's:
    ``top_n_percent=15, num_samples=64, random_fraction=1/3, bandwidth_factor=3``).
    ``model_options`` sets the tpe model's other settings by name (``ParzenSettings`` in
    ``samplers/tpe.py``), e.g. ``{"constant_liar": False}``; HpBandSter's model has none beyond the
    arguments above. A name the model does not have, or one of the arguments, raises ``ValueError``.
    """

    name = "bohb"

    def __init__(self, configspace: Any = None, eta: float = 3, min_budget: float = 0.01,
                 max_budget: float = 1, min_points_in_model: int | None = None, top_n_percent: float | None = None,
                 num_samples: int | None = None, random_fraction: float | None = None,
                 bandwidth_factor: float | None = None, min_bandwidth: float = 1e-3,
                 max_points_in_model: int | None = 512, model: str = "tpe",
                 model_options: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(configspace, eta, min_budget, max_budget, **kwargs)
        self.model_options = dict(model_options) if isinstance(model_options, Mapping) else {}
        options: Any = model_options
        if model == "tpe" and (model_options is None or isinstance(model_options, Mapping)):
            # the tpe model ranks first what successive halving would promote: the best 1 / eta of a budget
            options = {"promotion_fraction": 1.0 / self.eta, **self.model_options}
        self.kde_settings = model_settings(
            model, options, min_points_in_model=min_points_in_model, top_n_percent=top_n_percent,
            num_samples=num_samples, random_fraction=random_fraction, bandwidth_factor=bandwidth_factor,
            min_bandwidth=min_bandwidth, max_points_in_model=max_points_in_model)
        if isinstance(self.kde_settings, KDESettings):
            warn_about_min_points(self.kde_settings, len(self.space.dimensions))

    def _make_sampler(self) -> Sampler:
        return model_sampler(self.space, self.kde_settings)

    def kept_on_resume(self, journaled: dict[str, Any]) -> dict[str, Any]:
        """The model settings a resume keeps as journaled, where they differ from this optimizer's:
        those whose default changed since (``samplers.models.kept_on_resume``).

        Raises:
            RunDirectoryError: one of them is a setting that ``model_options`` asks for: the run
                would not have it (named, with both values).
        """
        kept = kept_on_resume(self.kde_settings, journaled)
        asked = sorted(name for name in kept if name in self.model_options)
        if asked:
            journaled_values = ", ".join(f"{name}={kept[name]!r}" for name in asked)
            asked_values = ", ".join(f"{name}={self.model_options[name]!r}" for name in asked)
            raise RunDirectoryError(
                f"the run in {self.run_dir} was journaled before the defaults of its model settings changed"
                f" and goes on with {journaled_values}, where model_options asks for {asked_values}: resume it"
                f" without those options, or start a new run in another run_dir")
        return kept

    @contextlib.contextmanager
    def resumed_with(self, kept: dict[str, Any]) -> Iterator[None]:
        """Within the block, the model settings ``kept`` (:meth:`kept_on_resume`) replace this
        optimizer's; after it (a later fresh run of the same object included) they are its own again."""
        own = self.kde_settings
        self.kde_settings = replace(own, **kept)
        try:
            yield
        finally:
            self.kde_settings = own

    def settings(self) -> dict[str, Any]:
        """The run's settings, with the model's parameters."""
        return dict(super().settings(), **settings_record(self.kde_settings))


_NO_TIME_LIMIT = 1e8  # seconds (three years): a longer timeout is no limit (and overflows setitimer)


def _checked_timeout(timeout: Any) -> float | None:
    """``timeout`` as seconds, or ``None`` for no limit; ``ValueError`` naming a bad one."""
    seconds = checks.optional_real("timeout", timeout, finite=False, above=0, unit="seconds")
    return None if seconds is None or seconds > _NO_TIME_LIMIT else float(seconds)  # inf included
