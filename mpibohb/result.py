"""Read-only analysis of a run, with HpBandSter's ``Result`` API."""

from __future__ import annotations

import copy
import heapq
import json
import logging
import math
import numbers
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .values import own_values

if TYPE_CHECKING:
    from .journal import RunState

logger = logging.getLogger(__name__)

ConfigId = tuple[int, int, int]
LearningCurve = list[tuple[float, Any]]
_Parsed = TypeVar("_Parsed")


@dataclass(frozen=True)
class Run:
    """One evaluation: HpBandSter's ``Run`` fields. ``loss is None`` for a failed run, whose
    ``error_logs`` say why. ``time_stamps`` has ``submitted``, ``started`` and ``finished``, in
    seconds since the run's time reference."""

    config_id: ConfigId
    budget: float
    loss: float | None
    info: Any
    time_stamps: dict[str, float]
    error_logs: str | None = None
    worker: str = ""
    previous_budget: float | None = None  # the largest budget its configuration succeeded on before

    def __getitem__(self, key: str) -> Any:
        """HpBandSter's dict-style access to the fields: ``run["loss"]``."""
        if key not in self.__dataclass_fields__:
            raise KeyError(f"a Run has no field {key!r}; its fields: {', '.join(self.__dataclass_fields__)}")
        return getattr(self, key)

    def __repr__(self) -> str:
        return (f"Run(config_id={self.config_id}, budget={self.budget}, loss={self.loss}, "
                f"time_stamps={self.time_stamps}, error={'yes' if self.error_logs else 'no'})")


def _loss(run: Run) -> float:
    """A successful run's loss: what ``get_pandas_dataframe`` and ``get_fANOVA_data`` take by default."""
    return math.nan if run.loss is None else run.loss


def error_headline(text: str | None) -> str:
    """The line of an error text that names the error: its first (``KeyError on rank 1@host: 'y'``),
    or for a bare traceback (HpBandSter's logs) its last."""
    lines = (text or "").strip().splitlines()
    if not lines:
        return "(no error message)"
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


class _ConfigMapping(dict):
    """``get_id2config_mapping()``'s dict: looking up ``None`` (the incumbent of a run in which no
    evaluation succeeded) says so, instead of a bare ``KeyError: None``."""

    def __missing__(self, key: Any) -> Any:
        if key is None:
            raise KeyError("None: get_incumbent_id() is None because no evaluation succeeded; "
                           "res.failed_runs() holds the errors")
        raise KeyError(key)


def extract_HBS_learning_curves(runs: Iterable[Run]) -> list[LearningCurve]:  # noqa: N802 - HpBandSter's name
    """HpBandSter's default learning-curve extractor: one curve of ``(budget, loss)`` by increasing
    budget. Failed runs (loss ``None``) are left out, as HpBandSter's function of this name does.

    Args:
        runs: the runs of one configuration.

    Returns:
        ``[[(budget, loss), ...]]``; ``[[]]`` when no run succeeded.
    """
    return [[(run.budget, run.loss) for run in sorted(runs, key=lambda r: r.budget) if run.loss is not None]]


def extract_HB_learning_curves(runs: Iterable[Run]) -> list[LearningCurve]:  # noqa: N802 - HpBandSter's name
    """Like :func:`extract_HBS_learning_curves`, but failed runs stay in the curve with loss ``None``
    (the behaviour of HpBandSter's older extractor of this name)."""
    return [[(run.budget, run.loss) for run in sorted(runs, key=lambda r: r.budget)]]


@dataclass
class Result:
    """All runs of an optimisation and the configurations they evaluated.

    ``settings`` holds HpBandSter's ``HB_config`` keys (``eta``, ``min_budget``, ``max_budget``,
    ``budgets``, ``max_SH_iter``, ``time_ref``) and mpibohb's own (``seed``, ``optimizer``).
    ``warm_start`` holds the earlier runs the run was warm-started with, ``[config, budget, loss
    or None]``: a warm start from this ``Result`` passes them on with its own runs.
    """

    runs: list[Run]
    id2config: dict[ConfigId, dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)
    warm_start: list[list[Any]] = field(default_factory=list)

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "_grouped"}  # a cache

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("warm_start", [])  # a Result pickled before it had one

    def __getattr__(self, name: str) -> Any:
        if name == "data":  # HpBandSter's internal dict, which analysis scripts sometimes read
            raise AttributeError("Result.data is HpBandSter's internal dict of its Datum objects; here read the runs "
                                 "with get_all_runs() or get_runs_by_id(config_id), the configurations with "
                                 "get_id2config_mapping()")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def HB_config(self) -> dict[str, Any]:  # noqa: N802 - HpBandSter's name
        """HpBandSter's name for :attr:`settings`."""
        return self.settings

    def get_id2config_mapping(self) -> dict[ConfigId, dict[str, Any]]:
        """``{config_id: {"config": dict, "config_info": dict}}`` for every sampled configuration: a
        copy (as HpBandSter's), so that editing it leaves the ``Result`` as it was. A configuration's
        values are the space's own (an object among a categorical's choices is that object)."""
        return _ConfigMapping((cid, {key: own_values(value) if key == "config" else copy.deepcopy(value)
                                     for key, value in entry.items()}) for cid, entry in self.id2config.items())

    def get_all_runs(self, only_largest_budget: bool = False) -> list[Run]:
        """Every run in the order they finished; or, per configuration, only its largest budget."""
        if not only_largest_budget:
            return list(self.runs)
        largest: dict[ConfigId, Run] = {}
        for run in self.runs:
            if run.config_id not in largest or run.budget > largest[run.config_id].budget:
                largest[run.config_id] = run
        return [run for run in self.runs if largest[run.config_id] is run]

    def get_runs_by_id(self, config_id: Sequence[int]) -> list[Run]:
        """The runs of one configuration, by increasing budget."""
        return sorted(self._runs_by_id().get(cast(ConfigId, tuple(config_id)), ()), key=lambda r: r.budget)

    def _runs_by_id(self) -> dict[ConfigId, list[Run]]:
        """The runs grouped by configuration, made again when ``runs`` is replaced or changes length
        (a scan per configuration made learning curves quadratic: 237 s at 50,000 results)."""
        cached = self.__dict__.get("_grouped")
        if cached is None or cached[0] is not self.runs or cached[1] != len(self.runs):
            grouped: dict[ConfigId, list[Run]] = {}
            for run in self.runs:
                grouped.setdefault(run.config_id, []).append(run)
            cached = self.__dict__["_grouped"] = (self.runs, len(self.runs), grouped)  # the list itself: no id reuse
        return cached[2]

    def get_incumbent_id(self) -> ConfigId | None:
        """The configuration with the lowest loss on the largest budget that has a successful run,
        leaving out configurations that failed on a larger budget (they do not run there).

        HpBandSter looks at ``max_budget`` only; this agrees with it whenever some run succeeded on
        ``max_budget``, and otherwise falls back to the largest budget reached instead of
        returning ``None``. ``None`` only when no usable run succeeded.
        """
        run = self.get_incumbent_run()
        return None if run is None else run.config_id

    def get_incumbent_run(self) -> Run | None:
        """The run that makes :meth:`get_incumbent_id`'s choice: the incumbent's lowest loss on the
        budget it was chosen on. ``None`` when no usable run succeeded."""
        failed_at: dict[ConfigId, float] = {}  # config -> the largest budget it failed on
        for run in self.runs:
            if run.loss is None:
                failed_at[run.config_id] = max(run.budget, failed_at.get(run.config_id, -math.inf))
        usable = [r for r in self.runs if r.loss is not None and failed_at.get(r.config_id, -math.inf) < r.budget]
        if not usable:
            return None
        top_budget = max(r.budget for r in usable)
        return min((r for r in usable if r.budget == top_budget), key=lambda r: (r.loss, r.config_id))

    def get_incumbent_trajectory(self, all_budgets: bool = True, bigger_is_better: bool = True,
                                 non_decreasing_budget: bool = True) -> dict[str, list[Any]]:
        """How the incumbent changed over time, as HpBandSter computes it.

        Args:
            all_budgets: consider runs on every budget, not just ``max_budget``.
            bigger_is_better: a run on a larger budget than the incumbent's replaces it.
            non_decreasing_budget: a run on a smaller budget never replaces the incumbent.

        Returns:
            ``{"config_ids", "times_finished", "budgets", "losses"}``, one entry per change, and
            the last incumbent repeated at the time of the last finished run, failed ones
            included, unless that run's loss is the incumbent's (HpBandSter's closing point).
        """
        runs = sorted((r for r in self.runs if all_budgets or r.budget == self.settings.get("max_budget")),
                      key=lambda r: r.time_stamps["finished"])
        trajectory: dict[str, list[Any]] = {"config_ids": [], "times_finished": [], "budgets": [], "losses": []}
        best_loss, best_budget = math.inf, -math.inf
        for run, loss in ((r, r.loss) for r in runs if r.loss is not None):
            better = loss < best_loss or (bigger_is_better and run.budget > best_budget)
            if non_decreasing_budget and run.budget < best_budget:
                better = False
            if better:
                best_loss, best_budget = loss, run.budget
                _append(trajectory, run.config_id, run.time_stamps["finished"], run.budget, loss)
        if trajectory["losses"] and runs[-1].loss != best_loss:
            last = trajectory
            _append(trajectory, last["config_ids"][-1], runs[-1].time_stamps["finished"],
                    last["budgets"][-1], last["losses"][-1])
        return trajectory

    def get_incumbent_history(self) -> dict[str, list[Any]]:
        """How :meth:`get_incumbent_run`'s choice changed as the runs finished, in the format of
        :meth:`get_incumbent_trajectory`: one entry per change (when it changed, its budget and
        loss), and the last incumbent again at the time of the last finished run when that run
        changed nothing. Not in HpBandSter; ``report`` and ``plot`` show it.

        HpBandSter's trajectory keeps a configuration that later failed on a larger budget; here
        it leaves the incumbency then, as :meth:`get_incumbent_id` leaves it out, and its
        successor may have a larger loss or a smaller budget. When none is left (every successful
        configuration failed on a larger budget), the history ends at the last incumbent.
        """
        runs = sorted(self.runs, key=lambda r: r.time_stamps["finished"])
        history: dict[str, list[Any]] = {"config_ids": [], "times_finished": [], "budgets": [], "losses": []}
        failed_at: dict[ConfigId, float] = {}  # config -> the largest budget it failed on so far
        # per budget, its successful runs by (loss, config id); a run whose configuration failed
        # on its budget or above is unusable for good, so it leaves when it comes to the top
        heaps: dict[float, list[tuple[float, ConfigId, int, Run]]] = {}
        current: Run | None = None
        for order, run in enumerate(runs):
            if run.loss is None:
                failed_at[run.config_id] = max(run.budget, failed_at.get(run.config_id, -math.inf))
            else:
                heapq.heappush(heaps.setdefault(run.budget, []), (run.loss, run.config_id, order, run))
            incumbent = _top_usable(heaps, failed_at)
            if incumbent is None:
                current = None
            elif current is None or _key(incumbent) != _key(current):
                _append_run(history, incumbent, run.time_stamps["finished"])
                current = incumbent
        if current is not None and runs[-1].time_stamps["finished"] > history["times_finished"][-1]:
            _append_run(history, current, runs[-1].time_stamps["finished"])
        return history

    def num_iterations(self) -> int:
        """One more than the highest iteration (bracket) index that sampled a configuration, as
        HpBandSter counts: a bracket in between that sampled none counts too."""
        return 1 + max((cid[0] for cid in self.id2config), default=-1)

    def failed_runs(self) -> list[Run]:
        """The runs that produced no loss, with their ``error_logs``."""
        return [r for r in self.runs if r.loss is None]

    @property
    def time_ref(self) -> float | None:
        """The run's time reference (seconds since the epoch): every ``time_stamps`` entry is
        relative to it. ``None`` when the settings do not record one."""
        return self.settings.get("time_ref")

    def get_learning_curves(self, lc_extractor: Callable[[list[Run]], Any] = extract_HBS_learning_curves,
                            config_ids: Iterable[Sequence[int]] | None = None) -> dict[ConfigId, Any]:
        """The learning curves of configurations, as HpBandSter extracts them.

        Args:
            lc_extractor: called with the runs of one configuration (by increasing budget);
                returns its learning curves. Default: :func:`extract_HBS_learning_curves`.
            config_ids: the configurations to extract; default every sampled configuration.

        Returns:
            ``{config_id: lc_extractor(runs)}``, keyed by the config id as a tuple.
        """
        wanted = self.id2config if config_ids is None else config_ids
        return {cast(ConfigId, tuple(cid)): lc_extractor(self.get_runs_by_id(cid)) for cid in wanted}

    def budget_spent(self, increments_only: bool = False) -> float:
        """The budget of every run, failed ones included; with ``increments_only``, each run counts
        only what it adds to its configuration's ``previous_budget`` (training continued from a
        checkpoint, as a ``compute`` with ``checkpoint_dir`` can)."""
        if increments_only:
            return sum(run.budget - (run.previous_budget or 0.0) for run in self.runs)
        return sum(run.budget for run in self.runs)

    def get_pandas_dataframe(self, budgets: Sequence[float] | None = None,
                             loss_fn: Callable[[Run], float] = _loss,
                             with_previous_budget: bool = False) -> tuple[Any, Any]:
        """The successful runs as two pandas data frames, as HpBandSter builds them.

        Rows come by configuration (in sampling order), then by budget. Unlike HpBandSter, each
        row has its own run's budget (HpBandSter gives every row of a configuration the last one).

        Args:
            budgets: the budgets whose runs to include; default ``settings["budgets"]``.
            loss_fn: the value of the ``loss`` column for a run.
            with_previous_budget: ``df_y`` also has a ``previous_budget`` column (NaN on a
                configuration's first run): the budget the run continued from, if it did.

        Returns:
            ``(df_X, df_y)``: the configurations (a ``budget`` column added when more than one
            budget is included; inactive parameters are NaN) and a ``loss`` column.

        Raises:
            ImportError: pandas is not installed.
        """
        pandas = _import_pandas()
        budgets = self._budgets_or_all(budgets)
        order = {cid: position for position, cid in enumerate(self.id2config)}
        runs = [r for r in self.runs if r.loss is not None and r.budget in budgets]
        runs.sort(key=lambda r: (order.get(r.config_id, len(order)), r.budget))
        rows = [self._config_row(run, len(budgets) > 1) for run in runs]
        outcomes = [{"loss": loss_fn(r), **({"previous_budget": math.nan if r.previous_budget is None
                                              else r.previous_budget} if with_previous_budget else {})}
                    for r in runs]
        return pandas.DataFrame(rows), pandas.DataFrame(outcomes)

    def _budgets_or_all(self, budgets: Sequence[float] | None) -> Sequence[float]:
        """``budgets``, or by default the run's ladder (its runs' budgets if it has none)."""
        if budgets is not None:
            return budgets
        return self.settings.get("budgets") or sorted({r.budget for r in self.runs})

    def _config_row(self, run: Run, with_budget: bool) -> dict[str, Any]:
        """The run's configuration as a dict, with its ``budget`` when asked."""
        row = dict(self.id2config[run.config_id]["config"])
        if with_budget:
            row["budget"] = run.budget
        return row

    def get_fANOVA_data(self, config_space: Any, budgets: Sequence[float] | None = None,  # noqa: N802
                        loss_fn: Callable[[Run], float] = _loss,
                        failed_loss: float | None = None) -> tuple[Any, Any, Any]:
        """The runs as arrays for fANOVA (automl's ``fanova.fANOVA(X, y, space)``), as HpBandSter's
        method of this name gives them.

        Args:
            config_space: the run's ``ConfigurationSpace``; it is not changed.
            budgets: the budgets whose runs to include; default ``settings["budgets"]``.
            loss_fn: the value of ``y`` for a successful run.
            failed_loss: the value of ``y`` for a failed run; default ``None``: failed runs are left out.

        Returns:
            ``(X, y, space)``: ``X`` one row per run, each parameter's value (a categorical or
            ordinal one as the index of its value; NaN where a condition makes it inactive), in the
            order of ``space``'s parameters; ``space`` is a copy of ``config_space``, with a
            log-scaled parameter ``budget`` added when more than one budget is included.
        """
        import ConfigSpace
        import numpy

        budgets = self._budgets_or_all(budgets)
        runs = [r for r in self.runs if r.budget in budgets and (r.loss is not None or failed_loss is not None)]
        from .space import shared_choices

        space = copy.deepcopy(config_space, memo=shared_choices(config_space))  # the Result holds its objects
        if len(budgets) > 1 and "budget" in space:
            raise ValueError("get_fANOVA_data: the space has a hyperparameter named 'budget', the name of the column "
                             "it adds for the budgets of the runs; pass budgets=[one budget] to leave that column out")
        if len(budgets) > 1:
            space.add(ConfigSpace.UniformFloatHyperparameter("budget", min(budgets), max(budgets), log=True))
        rows, losses = [], []
        from .journal import journaled_values

        journaled = {parameter.name: journaled_values(parameter) for parameter in space.values()}
        for run in runs:
            values = self._config_row(run, len(budgets) > 1)
            rows.append([_fanova_value(parameter, values.get(parameter.name, _INACTIVE), journaled[parameter.name])
                         for parameter in space.values()])
            losses.append(failed_loss if run.loss is None else loss_fn(run))
        return numpy.array(rows, dtype=float).reshape(len(rows), len(space)), numpy.array(losses, dtype=float), space


_INACTIVE = object()  # a parameter absent from a configuration (None may be one of its values)


def _fanova_value(parameter: Any, value: Any, journaled: dict[str, Any]) -> float:
    """A parameter's value as fanova reads it: the index of a categorical or ordinal value, 0 for
    a constant (fanova takes it for a category of one value), the number otherwise, NaN for an
    inactive parameter; ``journaled`` (:func:`~mpibohb.journal.journaled_values`) maps a value as
    a journal holds it back to the parameter's own.

    Raises:
        ValueError: ``value`` is not among the parameter's values in this space (a space changed
            since the run).
    """
    import ConfigSpace

    if value is _INACTIVE:
        return math.nan
    if isinstance(parameter, ConfigSpace.Constant):
        return 0.0
    for attribute in ("choices", "sequence"):
        options = getattr(parameter, attribute, None)
        if options is not None:
            if isinstance(value, (list, str)) and value not in list(options):  # a tuple read back as a list, say
                value = journaled.get(json.dumps(value), value)
            if value not in list(options):
                raise ValueError(f"get_fANOVA_data: {value!r} is not a value of {parameter.name} in the space given "
                                 f"({list(options)!r:.200}); give the space the run used")
            return float(list(options).index(value))
    return float(value) if isinstance(value, numbers.Real) else math.nan


def _import_pandas() -> Any:
    """The pandas module, or an ImportError that says how to install it."""
    try:
        import pandas
    except ImportError as exc:
        raise ImportError("get_pandas_dataframe needs the package pandas, which is not installed: "
                          "pip install pandas", name="pandas") from exc
    return pandas


def _top_usable(heaps: dict[float, list[tuple[float, ConfigId, int, Run]]],
                failed_at: dict[ConfigId, float]) -> Run | None:
    """The usable run with the lowest (loss, config id) on the largest budget that has one; the
    unusable runs met on the way leave their heaps (each run leaves at most once)."""
    for budget in sorted(heaps, reverse=True):
        heap = heaps[budget]
        while heap and failed_at.get(heap[0][1], -math.inf) >= budget:
            heapq.heappop(heap)
        if heap:
            return heap[0][3]
    return None


def _key(run: Run) -> tuple[ConfigId, float, float | None]:
    return run.config_id, run.budget, run.loss


def _append_run(trajectory: dict[str, list[Any]], run: Run, time: float) -> None:
    _append(trajectory, run.config_id, time, run.budget, cast(float, run.loss))  # a successful run's


def _append(trajectory: dict[str, list[Any]], config_id: ConfigId, time: float, budget: float,
            loss: float) -> None:
    trajectory["config_ids"].append(config_id)
    trajectory["times_finished"].append(time)
    trajectory["budgets"].append(budget)
    trajectory["losses"].append(loss)


def result_from_records(records: list[dict[str, Any]]) -> Result:
    """A :class:`Result` from journal records (see :mod:`mpibohb.journal`).

    Raises:
        JournalError: a record lacks a field its kind requires.
    """
    from .journal import fold

    return result_from_state(fold(records))


def result_from_state(state: RunState) -> Result:
    """A :class:`Result` from a journal's state (see :func:`mpibohb.journal.fold`): its runs in the
    order the results were journaled, time stamps relative to the journal's creation."""
    time_ref = state.header["created"]
    settings = dict(state.header["settings"], time_ref=time_ref)
    runs = []
    for record, submitted in state.results:
        stamps = {"submitted": submitted - time_ref, "started": record["started"] - time_ref,
                  "finished": record["finished"] - time_ref}
        runs.append(Run(tuple(record["config_id"]), record["budget"], record["loss"], record["info"], stamps,
                        record["error"], record.get("worker", ""), record.get("previous_budget")))
    return Result(runs, cast("dict[ConfigId, dict[str, Any]]", dict(state.configs)), settings,
                  list(state.header["warm_start"]))


def load_result(run_dir: Any) -> Result:
    """The :class:`Result` of the run in ``run_dir``: finished, still running, or killed mid-write.

    ``run_dir`` is an mpibohb run directory (or its ``journal.jsonl``), or a directory that
    HpBandSter's ``json_result_logger`` wrote, with ``configs.json`` and ``results.json`` but no
    journal (read by :func:`result_from_hpbandster_logs`).

    Raises:
        JournalError: ``run_dir`` holds neither a readable journal nor readable HpBandSter logs.
    """
    from .journal import CONFIGS, JOURNAL, RESULTS, JournalError, read_journal

    path = Path(run_dir)
    if has_hpbandster_logs(path):
        return result_from_hpbandster_logs(path)
    if path.is_dir() and not (path / JOURNAL).exists():
        raise JournalError(f"no journal at {path / JOURNAL} (mpibohb), nor {CONFIGS} and {RESULTS} "
                           f"(HpBandSter's json_result_logger) in {path}")
    records = read_journal(path)
    try:
        return result_from_records(records)
    except JournalError as exc:
        raise JournalError(f"{run_dir}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise JournalError(f"{run_dir}: a journal record lacks a field or has a bad value: {exc!r}") from None


def has_hpbandster_logs(path: Path) -> bool:
    """``path`` is a directory that HpBandSter's ``json_result_logger`` wrote, with no journal."""
    from .journal import CONFIGS, JOURNAL, RESULTS

    return path.is_dir() and not (path / JOURNAL).exists() and (path / CONFIGS).is_file() \
        and (path / RESULTS).is_file()


def result_from_hpbandster_logs(run_dir: str | os.PathLike) -> Result:
    """The :class:`Result` of a run logged by HpBandSter's ``json_result_logger``, with what
    HpBandSter's ``logged_results_to_HBS_result`` reads from ``configs.json`` and ``results.json``.

    Runs come in the order of ``results.json`` (the order they finished; a later line for the same
    configuration and budget replaces the earlier, as in HpBandSter), time stamps relative to
    ``time_ref``, the earliest ``submitted``. ``settings`` is the ``HB_config`` HpBandSter infers
    from the budgets run: ``budgets``, ``min_budget``, ``max_budget``, ``max_SH_iter`` (their
    number), ``eta`` (second budget / first; ``None`` with one budget) and ``time_ref`` (``None``
    without runs); the logs do not record ``seed``, ``optimizer`` or each run's ``worker``. A
    ``configs.json`` line without ``config_info`` (older HpBandSter) gets ``{}`` (HpBandSter: "N/A").
    A torn last line (HpBandSter killed mid-write) is dropped, as in a journal.

    A result of a configuration that ``configs.json`` lacks (HpBandSter's logger can leave such,
    its issue #68) is left out, with a warning that counts them.

    Raises:
        JournalError: another line is not JSON or not of HpBandSter's format; the message names
            ``file:line``.
    """
    from .journal import CONFIGS, RESULTS

    path = Path(run_dir)
    # results first: a writer adds a configuration before its result, so every result read has its
    # configuration in configs.json when that is read after it, also while a run writes them
    logged = _read_logged_lines(path / RESULTS, _logged_run)
    id2config = dict(entry for _, entry in _read_logged_lines(path / CONFIGS, _logged_config))
    runs: dict[tuple[ConfigId, float], Run] = {}
    orphans = [(number, run.config_id) for number, run in logged if run.config_id not in id2config]
    if orphans:  # HpBandSter's logger can leave such results (its issue #68); the rest still reads
        logger.warning("%s: %d results of configurations that %s does not hold were left out (the first at line "
                       "%d, of %s)", path / RESULTS, len(orphans), CONFIGS, orphans[0][0], list(orphans[0][1]))
    logged = [(number, run) for number, run in logged if run.config_id in id2config]
    for _, run in logged:
        runs[(run.config_id, run.budget)] = run
    time_ref = min((run.time_stamps["submitted"] for _, run in logged), default=None)
    relative = [replace(run, time_stamps={key: stamp - time_ref for key, stamp in run.time_stamps.items()})
                for run in runs.values() if time_ref is not None]  # no runs, no time_ref
    return Result(relative, id2config, _inferred_hb_config({run.budget for _, run in logged}, time_ref))


def _read_logged_lines(path: Path, parse: Callable[[Any], _Parsed]) -> list[tuple[int, _Parsed]]:
    """``(line number, parse(line))`` of every line of a ``json_result_logger`` file."""
    from .journal import JournalError, read_json_lines

    parsed = []
    for number, line in read_json_lines(path)[0]:
        try:
            parsed.append((number, parse(line)))
        except (KeyError, TypeError, ValueError) as exc:
            raise JournalError(f"{path}:{number}: not a line of HpBandSter's json_result_logger ({exc}): "
                               f"{str(line)[:200]}") from None
    return parsed


def _logged_config(line: Any) -> tuple[ConfigId, dict[str, Any]]:
    """A ``configs.json`` line ``[config_id, config, config_info]`` as an ``id2config`` entry."""
    if not isinstance(line, list) or len(line) not in (2, 3) or not isinstance(line[1], dict):
        raise ValueError("expected [config_id, config, config_info]")
    return _logged_config_id(line[0]), {"config": line[1], "config_info": line[2] if len(line) == 3 else {}}


def _logged_run(line: Any) -> Run:
    """A ``results.json`` line ``[config_id, budget, time_stamps, result, exception]`` as a run,
    with absolute time stamps."""
    if not isinstance(line, list) or len(line) != 5:
        raise ValueError("expected [config_id, budget, time_stamps, result or null, exception or null]")
    config_id, budget, stamps, result, exception = line
    stamps = {key: float(stamps[key]) for key in ("submitted", "started", "finished")}
    loss, info = (None, None) if result is None else (result["loss"], result.get("info"))
    if loss is not None and (isinstance(loss, bool) or not isinstance(loss, (int, float)) or not math.isfinite(loss)):
        # HpBandSter logged any loss; here, as for every run, a NaN, infinite or non-numeric one is a failure
        exception = exception or f"InvalidResultError: the logged loss {loss!r} is not a finite number"
        loss = None
    return Run(_logged_config_id(config_id), float(budget), loss, info, stamps, exception)


def _logged_config_id(value: Any) -> ConfigId:
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(i, int) for i in value)):
        raise ValueError(f"a config_id is three integers, not {value!r}")
    return tuple(value)


def _inferred_hb_config(budgets: set[float], time_ref: float | None) -> dict[str, Any]:
    """The ``HB_config`` that ``logged_results_to_HBS_result`` infers from the budgets run."""
    ladder = sorted(budgets)
    return {"eta": ladder[1] / ladder[0] if len(ladder) > 1 and ladder[0] > 0 else None,
            "min_budget": min(ladder, default=None), "max_budget": max(ladder, default=None),
            "budgets": ladder, "max_SH_iter": len(ladder), "time_ref": time_ref}
