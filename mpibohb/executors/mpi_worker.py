"""A worker rank's loop: receive a job, evaluate it, send the outcome, until told to stop."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from mpi4py import MPI

from ..evaluation import EvaluationFileError, OutOfSpaceError, evaluate
from ..stopping import SignalWitness, handlers_restored
from .leftovers import children, end_leftovers
from .mpi_protocol import PROTOCOL_VERSION, TAG_JOB, TAG_OUTCOME, Backoff, JobKey, pack_outcome, probe, worker_name
from .watch import WatchedRank

logger = logging.getLogger(__name__)



class RankZeroGoneError(Exception):
    """Rank 0's process ended while this worker rank waited for its next job."""


def serve(comm: MPI.Comm, compute: Callable[..., Any], watched: WatchedRank | None = None) -> None:
    """The worker loop: receive a job, evaluate it, send the outcome; ``None`` stops.

    A stop signal that reaches the rank while ``compute`` runs (the rank itself ignores them during
    a run with a run directory) marks the outcome as interrupted, so that the master runs the job
    again instead of recording what a stop made of it, when a handler of compute's own took it, or
    when the evaluation failed (the signal may have killed a process compute started); the handlers
    ``compute`` installs do not outlive it.

    Processes that ``compute`` started and left running are ended when the loop ends: they would
    keep the launcher waiting for their output. Daemonic ``multiprocessing`` children (a ``Pool``'s
    workers) are left to ``multiprocessing``'s own exit handler, which ends them in order (killed
    here first, one holding its pool's queue lock would hang that handler), with a backstop; its
    resource tracker and fork server end with this process.

    Raises:
        RankZeroGoneError: ``watched`` saw rank 0's process end while this rank waited for a job.
    """
    name = worker_name(comm)
    children_before = children()
    try:
        with SignalWitness() as witness:
            _serve(comm, compute, name, witness, watched or WatchedRank(None, comm.Get_rank()))
    finally:
        end_leftovers(children() - children_before, name)


def _serve(comm: MPI.Comm, compute: Callable[..., Any], name: str, witness: SignalWitness,
           watched: WatchedRank) -> None:
    backoff = Backoff()
    while True:
        if not probe(comm, 0, TAG_JOB):
            if backoff.delay >= backoff.cap and watched.orphaned():  # checked only once idle a while
                raise RankZeroGoneError(f"{name}: rank 0's process has ended while this rank waited for a job")
            backoff.sleep()
            continue
        backoff.reset()
        message = comm.recv(source=0, tag=TAG_JOB)
        if message is None:
            return
        if message[0] != PROTOCOL_VERSION:
            raise RuntimeError(f"{name} speaks protocol {PROTOCOL_VERSION}, the master {message[0]}")
        _, key, config_id, config, budget, working_directory, timeout, previous_budget, checkpoint_dir = message
        witness.rearm()
        try:
            with handlers_restored():
                outcome = evaluate(compute, config_id, config, budget, working_directory, name, timeout,
                                   previous_budget, checkpoint_dir)
        except OutOfSpaceError as full:  # rank 0 decides: stop the run (the job runs again), or record the failure
            comm.send((PROTOCOL_VERSION, key, pack_outcome(full.outcome), (full.errno, str(full))), dest=0,
                      tag=TAG_OUTCOME)
            continue
        except EvaluationFileError as exc:  # its checkpoint root's failure: rank 0 stops the run with it
            comm.send((PROTOCOL_VERSION, key, None, (exc.errno, str(exc))), dest=0, tag=TAG_OUTCOME)
            continue
        stop = witness.arrived()
        if stop is not None and (stop.past_the_rank or outcome.failed):  # cut short by its handler or killed children
            outcome = dataclasses.replace(outcome, interrupted=stop.signum)
        _send_outcome(comm, key, outcome)
        backoff.reset()


def _send_outcome(comm: MPI.Comm, key: JobKey, outcome: Any) -> None:
    comm.send((PROTOCOL_VERSION, key, pack_outcome(outcome), None), dest=0, tag=TAG_OUTCOME)
