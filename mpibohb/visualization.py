"""Pictures of a run, HpBandSter's ``hpbandster.visualization`` redone on a :class:`Result`.

Each function takes a :class:`~mpibohb.result.Result` (e.g. ``mpibohb.load_result(run_dir)``, of a
finished or a running run), or HpBandSter's argument, its ``get_all_runs()``, and returns a
:class:`matplotlib.figure.Figure` made by pyplot, as HpBandSter's were, so that ``plt.show()``
shows it; without a display matplotlib picks a backend that only draws to files. pyplot keeps
every figure until it is closed: close the ones you are done with (``plt.close(fig)``) when
making many::

    fig = losses_over_time(load_result("runs/a"))
    fig.savefig("losses.png", dpi=100)
    plt.show()  # or plt.close(fig)

When a picture cannot be drawn from the run (no successful run yet, a single budget, ...) the
function raises :class:`ValueError` saying why. Failed runs (loss ``None``) are left out of every
loss plot. matplotlib is an optional dependency: ``pip install matplotlib`` (the ``plot`` extra).

``python -m mpibohb plot RUN_DIR [--out DIR]`` writes all of them as PNG files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from .result import ConfigId, Result, Run

MIN_PAIRS = 3
"""Fewest configurations evaluated on both budgets for a correlation to be shown."""

__all__ = ["PLOTS", "budget_correlations", "concurrent_runs_over_time", "correlation_across_budgets",
           "finished_runs_over_time", "learning_curves", "losses_over_time", "model_vs_random",
           "performance_histogram_model_vs_random", "require_matplotlib"]


# ---------------------------------------------------------------- helpers


def _result_of(given: Any, plot: str, id2config: dict[ConfigId, Any] | None = None) -> Result:
    """The :class:`Result` a plot draws: ``given`` itself, or one made of HpBandSter's form of
    the argument, a list of runs (``res.get_all_runs()``); anything else is a TypeError naming it."""
    if isinstance(given, Result):
        return given
    if isinstance(given, (list, tuple)) and all(isinstance(run, Run) for run in given):
        return Result(list(given), dict(id2config or {}))
    raise TypeError(f"{plot} takes the Result (what run() returns, or mpibohb.load_result(run_dir)) or its "
                    f"get_all_runs(); got {type(given).__name__}")


def require_matplotlib() -> Any:
    """The ``matplotlib.figure.Figure`` class, or an ImportError naming the extra to install."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError('mpibohb.visualization needs matplotlib, which is not installed: pip install '
                          'matplotlib (or, in a checkout of mpibohb: pip install -e ".[plot]")',
                          name="matplotlib") from exc
    return Figure


def _figure(width: float = 8.0, height: float = 5.0) -> Any:
    """A new pyplot figure (``plt.show()`` shows it) with constrained layout (no overlapping labels)."""
    require_matplotlib()
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), layout="constrained")


def _shown(fig: Any, show: bool) -> Any:
    """``fig``, after ``plt.show()`` when HpBandSter's ``show=True`` asks for it."""
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return fig


def _budgets(result: Result) -> list[float]:
    """Every budget of the run: the settings' ladder and any budget a run used, ascending."""
    return sorted(set(result.settings.get("budgets") or ()) | {r.budget for r in result.runs})


def _budget_colors(result: Result, cmap: Any = None) -> dict[float, Any]:
    """One colour per budget, from dark (small) to light (large), readable on white; with a
    colour map of the user's (HpBandSter's ``cmap``), its colours in turn."""
    from matplotlib import colormaps

    budgets = _budgets(result)
    if cmap is not None:
        colors = getattr(cmap, "colors", None)  # a listed map (tab10): its own colours, one each
        return {b: colors[i % len(colors)] if colors is not None else cmap(i / max(len(budgets) - 1, 1))
                for i, b in enumerate(budgets)}
    steps = max(len(budgets) - 1, 1)
    return {b: colormaps["viridis"](0.85 * i / steps) for i, b in enumerate(budgets)}


def _successful(result: Result) -> list[Run]:
    """The runs with a loss; ValueError when there are none."""
    runs = [r for r in result.runs if r.loss is not None]
    if not runs:
        if result.runs:
            raise ValueError(f"no successful runs (all {len(result.runs)} finished runs failed)")
        raise ValueError("no finished runs yet")
    return runs


def _loss(run: Run) -> float:
    """The loss of a run that :func:`_successful` kept (so it has one)."""
    assert run.loss is not None
    return run.loss


def _finished(result: Result) -> list[Run]:
    """All finished runs (failed ones included); ValueError when there are none."""
    if not result.runs:
        raise ValueError("no finished runs yet")
    return list(result.runs)


def _budget_label(budget: float) -> str:
    return f"budget {budget:g}"


def _loss_axis(ax: Any, losses: Sequence[float]) -> None:
    """Label the y axis ``loss``; a log scale when all losses are positive and span >= 100x."""
    if losses and min(losses) > 0 and max(losses) / min(losses) >= 100:
        ax.set_yscale("log")
        ax.set_ylabel("loss (log scale)")
    else:
        ax.set_ylabel("loss")


def _title(fig: Any, result: Result, what: str) -> None:
    optimizer = result.settings.get("optimizer")
    fig.suptitle(what + (f" ({optimizer})" if optimizer else ""))


# ---------------------------------------------------------------- losses over time


def losses_over_time(result: Result | Sequence[Run], get_loss_from_run_fn: Callable[[Run], float] | None = None,
                     cmap: Any = None, show: bool = False) -> Any:
    """The loss of every successful run against the time it finished, one colour per budget, and
    how the incumbent changed (:meth:`Result.get_incumbent_history`) as a step line.

    HpBandSter's arguments: ``get_loss_from_run_fn`` plots another value of each run (its
    ``info['test loss']``, say), without the incumbent's line, which is of the loss; ``cmap`` colours
    the budgets; ``show`` calls ``plt.show()``.

    Raises:
        ValueError: no run has succeeded.
    """
    result = _result_of(result, "losses_over_time")
    runs = _successful(result)
    value = get_loss_from_run_fn or _loss
    fig = _figure()
    ax = fig.add_subplot()
    colors = _budget_colors(result, cmap)
    for budget in _budgets(result):
        on_budget = [r for r in runs if r.budget == budget]
        if on_budget:
            ax.scatter([r.time_stamps["finished"] for r in on_budget], [value(r) for r in on_budget], s=18,
                       color=colors[budget], alpha=0.8, label=f"{_budget_label(budget)} ({len(on_budget)} runs)",
                       gid="runs")
    if get_loss_from_run_fn is None:
        trajectory = result.get_incumbent_history()
        ax.step(trajectory["times_finished"], trajectory["losses"], where="post", color="black", linewidth=1.5,
                label="incumbent: the best on the largest\nbudget with a usable result", gid="incumbent")
        _mark_budget_changes(ax, trajectory)
    ax.set_xlabel("time since the run started (s)")
    _loss_axis(ax, [value(r) for r in runs])
    failed = len(result.failed_runs())
    if failed:
        ax.set_title(f"{failed} failed run{'' if failed == 1 else 's'} not shown", fontsize="small")
    _title(fig, result, "Losses over time")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")  # outside: no hidden points
    return _shown(fig, show)


def _mark_budget_changes(ax: Any, trajectory: dict[str, list[Any]]) -> None:
    """Mark where the incumbent moves to a larger budget: its loss may jump up there."""
    points = [(t, loss) for t, loss, budget, before in zip(trajectory["times_finished"][1:], trajectory["losses"][1:],
                                                           trajectory["budgets"][1:], trajectory["budgets"])
              if budget > before]
    if points:
        ax.scatter(*zip(*points), s=60, marker="^", facecolors="none", edgecolors="black", linewidths=1.2,
                   zorder=3, label="incumbent moves to a\nlarger budget", gid="budget_change")


# ---------------------------------------------------------------- runs over time


def concurrent_runs_over_time(result: Result | Sequence[Run], show: bool = False) -> Any:
    """How many runs were in progress (between ``started`` and ``finished``) over time (``show``:
    then ``plt.show()``, as in HpBandSter).

    Only finished runs are counted (failed ones included): the journal gives a start time with
    the result, so evaluations still running in a live run are not shown.

    Raises:
        ValueError: no run has finished.
    """
    result = _result_of(result, "concurrent_runs_over_time")
    runs = _finished(result)
    events = sorted([(r.time_stamps["started"], 1) for r in runs] + [(r.time_stamps["finished"], -1) for r in runs])
    times, counts, running = [0.0], [0], 0
    for time, change in events:
        running += change
        times.append(time)
        counts.append(running)
    fig = _figure(8.0, 4.5)
    ax = fig.add_subplot()
    ax.fill_between(times, counts, step="post", color="tab:blue", alpha=0.3, linewidth=0)
    ax.step(times, counts, where="post", color="tab:blue", linewidth=0.8, label="runs in progress",
            gid="concurrent")
    ax.set_xlabel("time since the run started (s)")
    ax.set_ylabel("runs in progress")
    ax.set_ylim(bottom=0, top=max(counts) + 1)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    span = times[-1] - times[0]
    mean = sum(c * (t1 - t0) for c, t0, t1 in zip(counts, times, times[1:])) / span if span > 0 else 0.0
    ax.set_title(f"at most {max(counts)}, on average {mean:.2f} over {span:.3g} s", fontsize="small")
    _title(fig, result, "Runs in progress over time")
    return _shown(fig, show)


def finished_runs_over_time(result: Result | Sequence[Run], show: bool = False) -> Any:
    """The cumulative number of finished runs (failed ones included) per budget, and in total
    (``show``: then ``plt.show()``, as in HpBandSter).

    Raises:
        ValueError: no run has finished.
    """
    result = _result_of(result, "finished_runs_over_time")
    runs = sorted(_finished(result), key=lambda r: r.time_stamps["finished"])
    fig = _figure(8.0, 4.5)
    ax = fig.add_subplot()
    colors = _budget_colors(result)
    for budget in _budgets(result):
        times = [r.time_stamps["finished"] for r in runs if r.budget == budget]
        if times:
            ax.step([0.0, *times], range(len(times) + 1), where="post", color=colors[budget],
                    label=f"{_budget_label(budget)} ({len(times)})", gid="budget")
    times = [r.time_stamps["finished"] for r in runs]
    ax.step([0.0, *times], range(len(times) + 1), where="post", color="black", linestyle="--",
            label=f"all budgets ({len(times)})", gid="total")
    ax.set_xlabel("time since the run started (s)")
    ax.set_ylabel("finished runs (cumulative)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    _title(fig, result, "Finished runs over time")
    return _shown(fig, show)


# ---------------------------------------------------------------- correlation across budgets


def budget_correlations(result: Result | Sequence[Run]) -> tuple[list[float], Any, Any]:
    """Spearman's rank correlation between the losses of the same configurations on two budgets.

    Returns:
        ``(budgets, rho, pairs)``: the budgets with a successful run, ascending; ``rho[i, j]``
        (NaN where fewer than :data:`MIN_PAIRS` configurations succeeded on both, or the losses
        on one of them are all equal); ``pairs[i, j]``, the number of such configurations.

    Raises:
        ValueError: fewer than two budgets have a successful run.
    """
    result = _result_of(result, "budget_correlations")
    import numpy as np
    from scipy.stats import spearmanr

    runs = _successful(result)
    if len(_budgets(result)) < 2:
        raise ValueError("only one budget")
    budgets = sorted({r.budget for r in runs})
    if len(budgets) < 2:
        raise ValueError(f"successful runs on one budget only ({budgets[0]:g})")
    losses: dict[float, dict[ConfigId, float]] = {b: {} for b in budgets}
    for run in runs:
        losses[run.budget][run.config_id] = _loss(run)
    n = len(budgets)
    rho = np.full((n, n), np.nan)
    pairs = np.zeros((n, n), dtype=int)
    for i, a in enumerate(budgets):
        for j, b in enumerate(budgets):
            common = sorted(set(losses[a]) & set(losses[b]))
            pairs[i, j] = len(common)
            if i == j:
                rho[i, j] = 1.0
            elif len(common) >= MIN_PAIRS:
                x, y = [losses[a][c] for c in common], [losses[b][c] for c in common]
                if len(set(x)) > 1 and len(set(y)) > 1:
                    rho[i, j] = float(spearmanr(x, y)[0])
    return budgets, rho, pairs


def correlation_across_budgets(result: Result | Sequence[Run], show: bool = False) -> Any:
    """A matrix of Spearman's rho between the losses of the same configurations on each pair of
    budgets, each cell annotated with rho and the number of configurations it is computed from;
    blank where fewer than :data:`MIN_PAIRS` configurations were evaluated on both budgets
    (``show``: then ``plt.show()``, as in HpBandSter).

    Raises:
        ValueError: fewer than two budgets have a successful run.
    """
    result = _result_of(result, "correlation_across_budgets")
    import numpy as np
    from matplotlib import colormaps

    budgets, rho, pairs = budget_correlations(result)
    n = len(budgets)
    size = min(4.0 + 0.9 * n, 12.0)
    fig = _figure(size + 1.2, size)
    ax = fig.add_subplot()
    cmap = colormaps["RdBu_r"].with_extremes(bad="0.92")
    image = ax.imshow(np.ma.masked_invalid(rho), cmap=cmap, vmin=-1, vmax=1)
    fontsize = 10 if n <= 6 else 7
    for i in range(n):
        for j in range(n):
            value = rho[i, j]
            text = f"n={pairs[i, j]}" if math.isnan(value) else f"{value:.2f}\nn={pairs[i, j]}"
            color = "white" if not math.isnan(value) and abs(value) > 0.6 else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=fontsize)
    labels = [f"{b:g}" for b in budgets]
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("budget")
    ax.set_ylabel("budget")
    fig.colorbar(image, ax=ax, shrink=0.8, label="Spearman's rho of the losses")
    ax.set_title(f"blank: fewer than {MIN_PAIRS} configurations on both budgets", fontsize="small")
    _title(fig, result, "Rank correlation of losses across budgets")
    return _shown(fig, show)


# ---------------------------------------------------------------- model-based vs random picks


def _is_model_based(result: Result, config_id: ConfigId) -> bool:
    info = result.id2config.get(config_id, {}).get("config_info") or {}
    return bool(info.get("model_based_pick", False))


def _grid(fig: Any, n: int, sharey: bool = False) -> list[Any]:
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=sharey).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return list(axes[:n])


def model_vs_random(result: Result | Sequence[Run]) -> Any:
    """Per budget, histograms of the losses of configurations picked by the model and of those
    picked at random (``config_info["model_based_pick"]``; missing means random).

    Raises:
        ValueError: no run has succeeded.
    """
    result = _result_of(result, "model_vs_random")
    import numpy as np

    runs = _successful(result)
    budgets = sorted({r.budget for r in runs})
    cols = min(len(budgets), 3)
    rows = math.ceil(len(budgets) / cols)
    fig = _figure(4.0 * cols + 0.5, 3.4 * rows + 0.8)
    for ax, budget in zip(_grid(fig, len(budgets)), budgets):
        on_budget = [r for r in runs if r.budget == budget]
        groups = {"model-based": [_loss(r) for r in on_budget if _is_model_based(result, r.config_id)],
                  "random": [_loss(r) for r in on_budget if not _is_model_based(result, r.config_id)]}
        low, high = min(_loss(r) for r in on_budget), max(_loss(r) for r in on_budget)
        if high <= low:
            low, high = low - 0.5, high + 0.5
        bins = np.linspace(low, high, min(max(len(on_budget) // 2, 5), 20) + 1)
        for (name, losses), color in zip(groups.items(), ("tab:orange", "tab:blue")):
            if losses:
                ax.hist(losses, bins=bins, color=color, alpha=0.55, edgecolor=color,
                        label=f"{name} ({len(losses)})")
        ax.set_title(f"{_budget_label(budget)}: {len(on_budget)} successful runs", fontsize="medium")
        ax.set_xlabel("loss")
        ax.xaxis.get_major_locator().set_params(nbins=4)  # no crowded labels on a narrow range
        ax.set_ylabel("runs")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
    _title(fig, result, "Losses of model-based and random picks")
    return fig



def performance_histogram_model_vs_random(all_runs: Sequence[Run], id2conf: dict[ConfigId, Any],
                                          show: bool = False) -> Any:
    """HpBandSter's name and arguments for :func:`model_vs_random`: ``res.get_all_runs()`` and
    ``res.get_id2config_mapping()`` (``show``: then ``plt.show()``)."""
    return _shown(model_vs_random(_result_of(all_runs, "performance_histogram_model_vs_random", id2conf)), show)

# ---------------------------------------------------------------- learning curves


def learning_curves(result: Result | Sequence[Run]) -> Any:
    """Per configuration, its loss against the budget (:meth:`Result.get_learning_curves`),
    coloured by the largest budget the configuration reached; failed runs are left out.

    Raises:
        ValueError: no run has succeeded, or the run has one budget only.
    """
    result = _result_of(result, "learning_curves")
    _successful(result)
    budgets = _budgets(result)
    if len(budgets) < 2:
        raise ValueError("only one budget")
    colors = _budget_colors(result)
    fig = _figure()
    ax = fig.add_subplot()
    labelled: set[float] = set()
    curves = [curve for curves in result.get_learning_curves().values() for curve in curves if curve]
    for curve in sorted(curves, key=lambda c: c[-1][0]):  # draw the longest curves last, on top
        top = curve[-1][0]
        label = None if top in labelled else f"reached {_budget_label(top)}"
        labelled.add(top)
        ax.plot([b for b, _ in curve], [loss for _, loss in curve], marker="o", markersize=3, linewidth=1,
                alpha=0.7, color=colors[top], label=label, gid="curve")
    ax.set_xscale("log")
    ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("budget (log scale)")
    _loss_axis(ax, [loss for curve in curves for _, loss in curve])
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    _title(fig, result, f"Learning curves of {len(curves)} configurations")
    return fig


PLOTS: Sequence[str] = ("losses_over_time", "concurrent_runs_over_time", "finished_runs_over_time",
                        "correlation_across_budgets", "model_vs_random", "learning_curves")
"""The names of the plot functions, in the order ``python -m mpibohb plot`` writes them."""
