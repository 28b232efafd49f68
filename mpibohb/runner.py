"""``python -m mpibohb run``: run an optimisation from the command line, on every rank alike.

    mpiexec -n 8 python -m mpibohb run --worker mypkg.problem:MyWorker --optimizer bohb \\
        --min-budget 9 --max-budget 243 --n-iterations 16 --run-dir runs/exp1

The worker is ``module:attribute`` (an importable module) or ``path/to/file.py:attribute``; the
attribute is a ``Worker`` subclass (instantiated without arguments), a ``Worker`` instance, or a
function ``f(config, budget)``. The search space comes from ``--configspace FILE`` (ConfigSpace
JSON) or else from the worker's ``get_configspace()``. The run always resumes from its run
directory, so a requeued or resubmitted job continues where it stopped.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import logging
import re
import shlex
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .checkpoints import KEEP_CHOICES

if TYPE_CHECKING:
    import ConfigSpace as CS

# the optimiser classes by their command-line names; ConfigSpace and the optimisers are imported
# only when a run starts, so that ``--help`` and the other subcommands start quickly
EXIT_NO_SUCCESS = 3
"""``run``'s exit code when the run finished but no evaluation succeeded (no incumbent)."""
OPTIMIZERS = {"bohb": "BOHB", "hyperband": "HyperBand", "hb": "HyperBand", "randomsearch": "RandomSearch",
              "rs": "RandomSearch"}
MODEL_CHOICES = ("tpe", "hpbandster")  # samplers.models.MODELS, kept here for a quick --help (a test compares them)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``run`` subcommand's options; each also under its underscore spelling (``--min_budget``),
    as HpBandSter's examples and the scripts of ``examples/`` write them."""
    parser.add_argument("--worker", required=True, help="module:Name or path/to/file.py:Name of the worker")
    parser.add_argument("--optimizer", default="bohb", choices=sorted(OPTIMIZERS), help="default: bohb")
    parser.add_argument("--model", choices=MODEL_CHOICES, default=None,
                        help="BOHB's model (default: tpe); hpbandster: HpBandSter's KDE, as the BOHB paper's")
    parser.add_argument("--configspace", help="ConfigSpace JSON file (default: the worker's get_configspace())")
    parser.add_argument("--min-budget", "--min_budget", type=float, required=True)
    parser.add_argument("--max-budget", "--max_budget", type=float, required=True)
    parser.add_argument("--eta", type=float, default=3)
    parser.add_argument("--n-iterations", "--n_iterations", type=int, required=True)
    parser.add_argument("--run-dir", "--run_dir", required=True, help="where the run is journaled and resumed from")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=None, help="seconds per evaluation")
    parser.add_argument("--n-workers", "--n_workers", type=int, default=None, help="threads, when not under MPI")
    parser.add_argument("--fill-tail", "--fill_tail", action="store_true",
                        help="start the last brackets early so that many workers stay busy to the end (fill_tail)")
    parser.add_argument("--asynchronous", action="store_true",
                        help="promote configurations without stage barriers: no worker waits for a straggler")
    parser.add_argument("--keep-busy", "--keep_busy", action="store_true",
                        help="with --asynchronous: while the run's last jobs run, idle workers evaluate extra "
                             "configurations predicted to end before them")
    parser.add_argument("--brackets", type=int, default=None,
                        help="cycle through this many of Hyperband's brackets, the most aggressive first "
                             "(default: all; 1: every configuration starts at the smallest budget)")
    parser.add_argument("--checkpoint-root", "--checkpoint_root", default=None,
                        help="where the checkpoint directories of a worker that takes checkpoint_dir go "
                             "(default RUN_DIR/checkpoints)")
    parser.add_argument("--keep-checkpoints", "--keep_checkpoints", choices=KEEP_CHOICES, default="incumbent",
                        help="which checkpoint directories stay once their configurations can no longer be promoted")
    parser.add_argument("--previous-result", "--previous_result", default=None, metavar="DIR",
                        help="warm start a new run from an earlier one: its run directory, or HpBandSter's logs "
                             "(configs.json, results.json); a resume keeps the warm start it began with")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def load_attribute(spec: str) -> Any:
    """The object named by ``module:attribute`` or ``path/to/file.py:attribute``.

    Raises:
        ValueError: the spec is malformed, or the module or attribute cannot be found.
    """
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise ValueError(f"--worker must look like module:Name or path/to/file.py:Name, got {spec!r}")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ValueError(f"--worker: no file {where}")
        module = _import_file(path)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ValueError(f"--worker: cannot import {where!r}: {exc}") from None
    try:
        return getattr(module, name)
    except AttributeError:
        raise ValueError(f"--worker: {where} has no {name!r}") from None


def _import_file(path: Path) -> Any:
    """The module of the Python file ``path``, able to import the modules beside it (its directory
    is added to ``sys.path``), under a name pickle can import again (a worker rank's results may
    hold its classes).

    Raises:
        ValueError: importing it failed or ended the process (a script's own command line).
    """
    # the stem, as before, when it is a module name (other code may import it by that name); else
    # a name of our own that no neighbour can have
    name = path.stem if path.stem.isidentifier() else "_mpibohb_worker_" + re.sub(r"\W", "_", path.stem)
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"--worker: Python cannot load {path} as a module")
    directory = str(path.resolve().parent)
    if directory not in sys.path:
        sys.path.append(directory)  # its neighbours import; last, so that they never shadow a library module
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except SystemExit as exit_:
        raise ValueError(f"--worker: importing {path} ended the process (exit code {exit_.code}): the file runs "
                         "a script of its own when imported (argparse's parse_args(), sys.exit()); put that "
                         "under if __name__ == \"__main__\":") from None
    except Exception as exc:
        from .optimizers import RunAtImportError

        if isinstance(exc, RunAtImportError):  # said in its own words by the caller
            raise
        raise ValueError(_import_failure(path, exc)) from None
    return module


def _import_failure(path: Path, exc: Exception) -> str:
    """What went wrong importing ``path``, in a line, with the user's file and line where it was
    raised (a SyntaxError's message names them itself)."""
    at = "" if isinstance(exc, SyntaxError) else f" ({_user_line(exc, path.resolve().parent)})"
    return f"--worker: importing {path} raised {type(exc).__name__}: {exc}{at}"


def _user_line(exc: BaseException, directory: Path) -> str:
    """``file, line N`` of the innermost frame of ``exc`` in a file under ``directory`` (the
    user's code), else of its innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [frame for frame in frames if Path(frame.filename).resolve().is_relative_to(directory)]
    chosen = ours or list(frames)
    return f"{chosen[-1].filename}, line {chosen[-1].lineno}" if chosen else str(directory)


def make_worker(target: Any) -> Any:
    """A worker object from a class (instantiated without arguments), an instance or a function.

    Raises:
        ValueError: a class that cannot be made without arguments.
    """
    if not isinstance(target, type):
        return target
    try:
        inspect.signature(target).bind()
    except TypeError:
        raise ValueError(f"--worker: {target.__name__}{inspect.signature(target)} cannot be made without "
                         "arguments; point --worker at a module-level instance or a function instead") from None
    except ValueError:  # no signature to check (a builtin): just try
        pass
    return target()


def configspace_of(worker: Any, path: str | None) -> CS.ConfigurationSpace:
    """The search space from a ConfigSpace JSON file, or from ``worker.get_configspace()``."""
    if path is not None:
        import ConfigSpace as CS

        try:
            with open(path, encoding="utf-8") as file:
                fields = json.load(file)
            if not isinstance(fields, dict) or "hyperparameters" not in fields:
                raise ValueError("not a ConfigSpace JSON file (it has no 'hyperparameters'; space.to_json(path) "
                                 "writes one)")
            return CS.ConfigurationSpace.from_json(path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"--configspace: cannot read {path}: {exc}") from None
        except (KeyError, TypeError, AttributeError) as exc:  # what ConfigSpace raises on a malformed file
            raise ValueError(f"--configspace: cannot read {path}: not a ConfigSpace JSON file "
                             f"({type(exc).__name__}: {exc})") from None
    getter = getattr(worker, "get_configspace", None)
    if getter is None:
        raise ValueError("the worker has no get_configspace(); pass --configspace FILE")
    try:
        return getter()
    except Exception as exc:  # the user's code: one line, where it was raised
        module = sys.modules.get(getattr(worker, "__module__", None) or type(worker).__module__)
        home = Path(getattr(module, "__file__", None) or ".").resolve().parent
        raise ValueError(f"the worker's get_configspace() raised {type(exc).__name__}: {exc} "
                         f"({_user_line(exc, home)}); pass --configspace FILE, or make it take no arguments") from None


def _model_argument(args: argparse.Namespace) -> dict[str, str]:
    """``{"model": ...}`` for BOHB when ``--model`` is given; the other optimisers have no model."""
    if args.model is None:
        return {}
    if OPTIMIZERS[args.optimizer] != "BOHB":
        raise ValueError(f"--model is BOHB's; --optimizer {args.optimizer} draws configurations at random")
    return {"model": args.model}


def run_command(args: argparse.Namespace) -> int:
    """Run the optimisation the arguments describe; 0 when it finished, :data:`EXIT_NO_SUCCESS`
    when it finished without a successful evaluation (99 comes as SystemExit)."""
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    model = _model_argument(args)
    from . import optimizers

    try:
        with optimizers.refusing_runs(args.worker):  # a file that runs at import would start its own run first
            worker = make_worker(load_attribute(args.worker))
    except optimizers.RunAtImportError as exc:
        raise ValueError(str(exc)) from None
    optimizer = getattr(optimizers, OPTIMIZERS[args.optimizer])(
        configspace=configspace_of(worker, args.configspace), eta=args.eta, min_budget=args.min_budget,
        max_budget=args.max_budget, seed=args.seed, run_dir=args.run_dir, fill_tail=args.fill_tail,
        asynchronous=args.asynchronous, keep_busy=args.keep_busy, checkpoint_root=args.checkpoint_root,
        keep_checkpoints=args.keep_checkpoints, previous_result=args.previous_result,
        brackets=args.brackets, **model)
    result = optimizer.run(n_iterations=args.n_iterations, worker=worker, timeout=args.timeout,
                           n_workers=args.n_workers, resume=True)
    if result is None:  # a worker rank
        return 0
    runs, incumbent = result.get_all_runs(), result.get_incumbent_id()
    if incumbent is None:
        print(f"finished: {len(runs)} runs, none succeeded; see python -m mpibohb report "
              f"{shlex.quote(str(args.run_dir))}", file=sys.stderr)
        return EXIT_NO_SUCCESS
    config = result.get_id2config_mapping()[incumbent]["config"]
    print(f"finished: {len(runs)} runs, incumbent {incumbent} {config}; "
          f"see python -m mpibohb report {shlex.quote(str(args.run_dir))}")
    return 0
