"""Checkpoint directories: one per configuration for the whole run, so that a promoted
configuration continues training instead of starting again from zero.

A ``compute`` that declares ``checkpoint_dir`` gets ``<root>/<iteration>_<0>_<index>/`` (the
config id's triple), created before the call; ``root`` is ``checkpoints/`` in the run directory
or the optimizer's ``checkpoint_root``. The master deletes a configuration's directory once it
can no longer be promoted (:class:`CheckpointKeeper`), keeping the incumbent's by default.
:func:`atomic_path` writes a checkpoint so that a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import cast

logger = logging.getLogger("mpibohb")

ConfigId = tuple[int, int, int]
CHECKPOINTS = "checkpoints"  # under the run directory, by default
_CONFIG_DIRECTORY = re.compile(r"\d+_\d+_\d+")
_UNFINISHED_WRITE = re.compile(r"\.tmp-\d+-[0-9a-f]{8}(\.|$)")  # atomic_path's temporary names
OWNER = ".mpibohb-run"  # in a checkpoint root: the run_id (journal header) of the run whose checkpoints it holds
KEEP_CHOICES = ("incumbent", "all", "none")


def checked_keep(keep: object) -> str:
    """``keep_checkpoints`` checked: one of :data:`KEEP_CHOICES`.

    Raises:
        ValueError: anything else, named.
    """
    if not isinstance(keep, str) or keep not in KEEP_CHOICES:
        raise ValueError(f"keep_checkpoints must be one of {', '.join(map(repr, KEEP_CHOICES))}, got {keep!r}")
    return keep


def directory_of(root: str, config_id: ConfigId) -> str:
    """The checkpoint directory of ``config_id`` under ``root``."""
    return os.path.join(root, "_".join(str(int(part)) for part in config_id))


def directory_for(root: str | None, config_id: ConfigId) -> str | None:
    """:func:`directory_of`, or ``None`` when the run keeps no checkpoints (``root`` is ``None``)."""
    return None if root is None else directory_of(root, config_id)


def config_directories(root: str) -> list[str]:
    """The names of the checkpoint directories in ``root`` (named like config ids), sorted."""
    if not os.path.isdir(root):
        return []
    return sorted(entry.name for entry in os.scandir(root) if _CONFIG_DIRECTORY.fullmatch(entry.name))


def claim_root(root: str, run: str, new_run: bool, overwrite: bool) -> None:
    """Make ``root`` the checkpoint root of the run ``run`` (its journal header's ``run_id``): a run
    never continues from another run's checkpoints, nor deletes them. A new run needs a root
    without checkpoint directories (``overwrite`` deletes them: only those, other files stay); a
    resumed run, one that holds no other run's (:data:`OWNER` says whose they are).

    Raises:
        FileExistsError: ``root`` holds another run's checkpoints.
        ValueError: ``root`` cannot be made a directory or written.
    """
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"checkpoint_root {root} cannot be made or written: {exc}") from None
    owner_file = os.path.join(root, OWNER)
    owner = Path(owner_file).read_text().strip() if os.path.isfile(owner_file) else None
    found = config_directories(root)
    foreign = bool(found) and (new_run or owner != run)
    if foreign and not overwrite:
        whose = "another run" if new_run or owner is not None else "an unknown run (no owner file)"
        resume = "" if owner is None else (", resume=True with the run directory of the run they belong to (the "
                                           "command line resumes its --run-dir)")
        raise FileExistsError(f"{root} holds the checkpoints of {whose} ({len(found)} directories: "
                              f"{', '.join(found[:3])}{', ...' if len(found) > 3 else ''}); this run would "
                              f"continue from them and delete them: delete them or pass overwrite=True{resume}, "
                              "or choose another checkpoint_root"
                              + ("" if new_run or owner is not None else
                                 f" (if they are this run's, moved here: move {OWNER} with them, a hidden file)"))
    if foreign:
        logger.warning("overwrite=True: deleting the %d checkpoint directories in %s", len(found), root)
        for name in found:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    if owner != run:
        Path(owner_file).write_text(run + "\n")


def prepare(directory: str, previous_budget: float | None, worker: str = "") -> None:
    """Create ``directory`` for an evaluation, if it is not there. A configuration that ran before
    (``previous_budget``) whose directory is missing here ran where this worker does not see its
    files: say so, since its training then starts from zero."""
    try:
        os.mkdir(directory)  # the file server answers whether it exists, not a local cache
    except FileExistsError:
        remove_unfinished_writes(directory)
        return
    except FileNotFoundError:
        os.makedirs(directory, exist_ok=True)  # the root is gone (deleted by hand?): make it again
    if previous_budget is not None:
        logger.warning("%s: the checkpoint directory %s was missing although this configuration ran before at "
                       "budget %g: is the checkpoint root on a file system that every node sees (or did an earlier "
                       "session end and delete it)? Its training starts from zero", worker or "this worker",
                       directory, previous_budget)


def remove_unfinished_writes(directory: str) -> None:
    """Delete what :func:`atomic_path` blocks that never ended (a killed process) left in
    ``directory``. Called before a configuration's job and at the end of the run, when its earlier
    jobs have ended or were given up (a job abandoned at its timeout, a rank taken for lost): only
    such a job's write can be lost, and its result no longer counts."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            if _UNFINISHED_WRITE.search(name):
                path = os.path.join(directory, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """A temporary file name beside ``path`` to write one file to; when the block ends without an
    error the file is flushed to disk and renamed to ``path`` in one step, so a reader (a rerun after
    a crash, a promoted job on another node) finds the old checkpoint or the new one, never half of
    one. The temporary name ends with ``path``'s suffix (``model.tmp-<pid>-<hex>.npy``), so savers
    that add a missing suffix (``numpy.save``) keep it.

    >>> with atomic_path(os.path.join(checkpoint_dir, "model.pt")) as temporary:
    ...     torch.save(state, temporary)

    Raises:
        IsADirectoryError: the block wrote a directory (a saver of several files): save into a
            directory of your own, or one file.
        FileNotFoundError: the block wrote nothing under the temporary name (e.g. ``numpy.save``
            to a name without ``.npy``, which it saves as ``<name>.npy``); what it wrote beside is removed.
    """
    target = os.fspath(path)
    stem, suffix = os.path.splitext(target)
    temporary = f"{stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}"
    try:
        yield temporary
        if os.path.isdir(temporary):
            raise IsADirectoryError(f"atomic_path is for one file, but {temporary} is a directory: save a "
                                    "directory of files into a directory of your own, then rename it")
        if not os.path.exists(temporary):
            elsewhere = sorted(glob.glob(glob.escape(temporary) + "*"))
            for stray in elsewhere:
                with contextlib.suppress(OSError):
                    os.unlink(stray)
            raise FileNotFoundError(
                f"atomic_path: nothing was written to {temporary}"
                + (f" (the saver wrote {', '.join(os.path.basename(name) for name in elsewhere)} instead: it adds "
                   f"a suffix of its own; give {os.path.basename(target)!r} that suffix, e.g. 'weights.npy' for "
                   "numpy.save)" if elsewhere else ""))
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    finally:
        if os.path.isdir(temporary) and not os.path.islink(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)


class IncumbentTracker:
    """The incumbent as :meth:`mpibohb.Result.get_incumbent_id` defines it (lowest loss on the
    largest budget with a usable run; a run is not usable when its configuration failed on a
    larger budget), kept up to date run by run."""

    def __init__(self) -> None:
        self._succeeded: dict[ConfigId, dict[float, float]] = {}  # config -> budget -> lowest loss
        self._failed_at: dict[ConfigId, float] = {}  # config -> the largest budget it failed on
        self._top = -math.inf
        self._at_top: dict[ConfigId, float] = {}  # usable runs on the top budget
        # kept as runs come, so that a result costs the same at 50,000 results as at 5,000
        self._best: tuple[float, ConfigId] | None = None  # the lowest (loss, id) in _at_top
        self._failed_since: list[ConfigId] = []  # failures not yet checked against _at_top

    def add(self, config_id: ConfigId, budget: float, loss: float | None) -> None:
        """One more run (``loss is None``: failed)."""
        if loss is None:
            self._failed_at[config_id] = max(budget, self._failed_at.get(config_id, -math.inf))
            self._failed_since.append(config_id)
            return  # what it makes unusable goes when the incumbent is asked for
        losses = self._succeeded.setdefault(config_id, {})
        losses[budget] = min(loss, losses.get(budget, math.inf))
        if self._failed_at.get(config_id, -math.inf) >= budget:
            return
        if budget > self._top:
            self._top, self._at_top, self._best = budget, {}, None
        if budget == self._top:
            self._at_top[config_id] = losses[budget]
            self._best = min(self._best or (math.inf, config_id), (losses[budget], config_id))

    @property
    def config_id(self) -> ConfigId | None:
        """The incumbent's id, or ``None`` before a usable run."""
        self._drop_unusable()
        return None if self._best is None else self._best[1]

    def _drop_unusable(self) -> None:
        """A failure on a larger budget than the top makes that configuration's top run unusable;
        when none is left the top falls back to the largest budget that still has one."""
        failed, self._failed_since = self._failed_since, []
        gone = [c for c in set(failed) if c in self._at_top and self._failed_at[c] >= self._top]
        for config_id in gone:
            del self._at_top[config_id]
        if gone and not self._at_top:
            usable = [(budget, config_id, loss) for config_id, losses in self._succeeded.items()
                      for budget, loss in losses.items() if self._failed_at.get(config_id, -math.inf) < budget]
            self._top = max((budget for budget, _, _ in usable), default=-math.inf)
            self._at_top = {config_id: loss for budget, config_id, loss in usable if budget == self._top}
        if gone:
            self._best = min(((loss, c) for c, loss in self._at_top.items()), default=None)


class CheckpointKeeper:
    """The master's side: deletes the directories of configurations that can no longer be promoted
    (the schedule says which). ``keep="incumbent"`` keeps the incumbent's and, while the incumbent
    could still fail on a larger budget and hand its place back, the best retired configuration's
    (the one it would fall back to); at the end of the run they are one. ``"all"`` keeps every
    directory, ``"none"`` deletes the incumbent's too. So at any moment the disk holds the
    directories of configurations that can still be promoted, plus at most those two."""

    def __init__(self, root: str, keep: str = "incumbent") -> None:
        self.root, self.keep = root, checked_keep(keep)
        self.incumbent = IncumbentTracker()
        self.best_retired = IncumbentTracker()  # over the runs of retired configurations: they are final
        self._runs: dict[ConfigId, list[tuple[float, float | None]]] = {}  # of configurations not retired
        self._kept: set[ConfigId] = set()  # retired, kept while protected

    def observe(self, config_id: ConfigId, budget: float, loss: float | None) -> None:
        """A run finished."""
        self.incumbent.add(config_id, budget, loss)
        self._runs.setdefault(config_id, []).append((budget, loss))
        self._settle()

    def retire(self, config_ids: Iterable[ConfigId]) -> None:
        """These configurations can no longer be promoted (their jobs have all finished)."""
        for config_id in config_ids:
            for budget, loss in self._runs.pop(config_id, ()):
                self.best_retired.add(config_id, budget, loss)
            if self.keep == "none":
                self._delete(config_id)
            elif self.keep == "incumbent":
                self._kept.add(config_id)
        self._settle()

    def finish(self) -> None:
        """The run ended: delete what is left that should not be, directories that a job abandoned
        at its timeout made again included, and in those kept, the files of unfinished writes."""
        protected = self._protected()
        for name in config_directories(self.root):
            config_id = cast(ConfigId, tuple(int(part) for part in name.split("_")))
            if self.keep != "all" and config_id not in protected:
                self._delete(config_id)
            else:
                remove_unfinished_writes(os.path.join(self.root, name))

    def _protected(self) -> set[ConfigId | None]:
        return {self.incumbent.config_id, self.best_retired.config_id} if self.keep == "incumbent" else set()

    def _settle(self) -> None:
        if not self._kept:
            return
        protected = self._protected()
        for config_id in [c for c in self._kept if c not in protected]:
            self._delete(config_id)
            self._kept.discard(config_id)

    def _delete(self, config_id: ConfigId) -> None:
        directory = directory_of(self.root, config_id)
        shutil.rmtree(directory, ignore_errors=True)
        if os.path.lexists(directory):
            logger.warning("could not delete the checkpoint directory %s", directory)
