"""``mpibohb.visualization`` and ``python -m mpibohb plot`` on real small runs.

The runs are made in-process with a cheap deterministic worker that fails for some
configurations; the plots are checked against the runs' data, the PNG files for being PNGs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import ConfigSpace as CS
import numpy as np
import pytest
from cli_in_process import run_cli, run_cli_many

from mpibohb import BOHB, Result, load_result

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")  # draws to files only: no display needed

import matplotlib.pyplot as plt  # noqa: E402 - after the skip

from mpibohb import visualization  # noqa: E402 - after the skip

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def evaluate(config: dict, budget: float) -> dict:
    """Fails (an exception) for ``x > 0.8``; otherwise a loss that falls with the budget."""
    if config["x"] > 0.8:
        raise ValueError(f"diverged: x={config['x']:.3f}")
    return {"loss": (config["x"] - 0.3) ** 2 + 1.0 / budget, "info": {"budget": budget}}


def always_fails(config: dict, budget: float) -> dict:
    raise RuntimeError("broken worker")


def make_run(run_dir: Path, worker: Any = evaluate, min_budget: float = 1, max_budget: float = 9,
             n_iterations: int = 4) -> Path:
    space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
    BOHB(space, min_budget=min_budget, max_budget=max_budget, eta=3, seed=3, run_dir=run_dir).run(
        n_iterations=n_iterations, worker=worker)
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run directories: ``full`` (three budgets, some failures), ``one_budget``, ``only_failed``,
    ``no_results`` (a real journal cut to its header, session and job records)."""
    base = tmp_path_factory.mktemp("vis")
    dirs = {"full": make_run(base / "full"),
            "one_budget": make_run(base / "one_budget", min_budget=9, max_budget=9, n_iterations=3),
            "only_failed": make_run(base / "only_failed", worker=always_fails, n_iterations=2)}
    no_results = base / "no_results"
    no_results.mkdir()
    lines = (dirs["full"] / "journal.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["type"] in ("header", "session", "job")]
    (no_results / "journal.jsonl").write_text("\n".join(kept) + "\n")
    dirs["no_results"] = no_results
    return dirs


@pytest.fixture(scope="module")
def full(runs: dict[str, Path]) -> Result:
    result = load_result(runs["full"])
    assert result.failed_runs() and len(result.failed_runs()) < len(result.runs)  # the run is as meant
    return result


@pytest.fixture(autouse=True)
def close_figures():
    """The plots are pyplot figures: each test starts and ends with none open."""
    plt.close("all")
    yield
    plt.close("all")


def successful(result: Result) -> list:
    return [r for r in result.runs if r.loss is not None]


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 1024, (path, len(data))


# ---------------------------------------------------------------- the plots' data


def test_hpbandsters_example_6_calls_work_as_written(full: Result) -> None:
    """HpBandSter's analysis example passes get_all_runs() (and the id2config mapping); ported by
    its imports alone, it draws the same pictures as from the Result."""
    all_runs, id2conf = full.get_all_runs(), full.get_id2config_mapping()
    figures = [visualization.losses_over_time(all_runs), visualization.concurrent_runs_over_time(all_runs),
               visualization.finished_runs_over_time(all_runs), visualization.correlation_across_budgets(full),
               visualization.performance_histogram_model_vs_random(all_runs, id2conf)]
    assert len(figures) == len(plt.get_fignums()) == 5
    from_runs = [c for c in figures[0].axes[0].collections if c.get_gid() == "runs"]
    from_result = [c for c in visualization.losses_over_time(full).axes[0].collections if c.get_gid() == "runs"]
    assert [c.get_offsets().tolist() for c in from_runs] == [c.get_offsets().tolist() for c in from_result]
    bars = [len(ax.patches) for ax in figures[4].axes]
    assert bars == [len(ax.patches) for ax in visualization.model_vs_random(full).axes]
    with pytest.raises(TypeError, match="losses_over_time takes the Result .* or its get_all_runs\\(\\); got dict"):
        visualization.losses_over_time({"runs": all_runs})


def test_hpbandsters_keyword_arguments_are_taken(full: Result, monkeypatch: pytest.MonkeyPatch) -> None:
    # show=, get_loss_from_run_fn= and cmap= were TypeErrors: the README says the calls port as written
    shown: list[int] = []
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: shown.append(len(plt.get_fignums())))
    all_runs, id2conf = full.get_all_runs(), full.get_id2config_mapping()
    visualization.losses_over_time(all_runs, show=True)
    visualization.concurrent_runs_over_time(all_runs, show=True)
    visualization.finished_runs_over_time(all_runs, show=True)
    visualization.correlation_across_budgets(full, show=True)
    visualization.performance_histogram_model_vs_random(all_runs, id2conf, show=True)
    assert shown == [1, 2, 3, 4, 5]
    doubled = visualization.losses_over_time(all_runs, get_loss_from_run_fn=lambda run: 2 * run.loss,
                                             cmap=plt.get_cmap("tab10"))
    plain = visualization.losses_over_time(all_runs)
    points, before = ({c.get_label(): c.get_offsets()[:, 1].tolist() for c in fig.axes[0].collections
                       if c.get_gid() == "runs"} for fig in (doubled, plain))
    assert points.keys() == before.keys() and all(points[k] == [2 * y for y in before[k]] for k in points)
    assert not [line for line in doubled.axes[0].lines if line.get_gid() == "incumbent"]  # of the loss, not shown
    first = next(c for c in doubled.axes[0].collections if c.get_gid() == "runs")
    assert tuple(first.get_facecolor()[0][:3]) == plt.get_cmap("tab10").colors[0]


def test_losses_over_time_matches_run(full: Result) -> None:
    fig = visualization.losses_over_time(full)
    ax = fig.axes[0]
    points = [c for c in ax.collections if c.get_gid() == "runs"]
    assert sum(len(c.get_offsets()) for c in points) == len(successful(full))
    assert len(points) == len({r.budget for r in successful(full)})  # one colour per budget
    (incumbent,) = [line for line in ax.lines if line.get_gid() == "incumbent"]
    trajectory = full.get_incumbent_history()
    assert incumbent.get_ydata()[-1] == trajectory["losses"][-1]
    top = max(full.settings["budgets"])
    best = min(r.loss for r in full.get_runs_by_id(full.get_incumbent_id()) if r.budget == top)
    assert incumbent.get_ydata()[-1] == best
    assert ax.get_xlabel().endswith("(s)") and ax.get_ylabel().startswith("loss")
    assert ax.get_legend() is not None


def test_the_incumbent_line_ends_on_the_incumbent_when_the_best_failed_on_a_larger_budget() -> None:
    from mpibohb.result import Run

    def run(index: int, budget: float, loss: float | None, finished: float) -> Run:
        return Run((0, 0, index), budget, loss, None, {"submitted": 0.0, "started": 0.0, "finished": finished},
                   None if loss is not None else "MemoryError")

    result = Result([run(1, 3, 0.36, 1.0), run(2, 3, 0.19, 2.0), run(2, 9, None, 3.0)],
                    {(0, 0, i): {"config": {"x": i / 10}, "config_info": {}} for i in (1, 2)})
    (incumbent,) = [line for line in visualization.losses_over_time(result).axes[0].lines
                    if line.get_gid() == "incumbent"]
    assert list(incumbent.get_ydata()) == [0.36, 0.19, 0.36]  # (0, 0, 2) leaves when it fails at 9


def test_losses_over_time_says_why_the_incumbent_jumps_up(full: Result) -> None:
    ax = visualization.losses_over_time(full).axes[0]
    (incumbent,) = [line for line in ax.lines if line.get_gid() == "incumbent"]
    assert "largest budget with a usable result" in incumbent.get_label().replace("\n", " ")
    trajectory = full.get_incumbent_history()
    moves = [(t, loss) for t, loss, budget, before in zip(trajectory["times_finished"][1:], trajectory["losses"][1:],
                                                          trajectory["budgets"][1:], trajectory["budgets"])
             if budget > before]
    assert moves  # the run's incumbent reaches larger budgets
    (marks,) = [c for c in ax.collections if c.get_gid() == "budget_change"]
    assert [tuple(point) for point in marks.get_offsets()] == moves
    assert "larger budget" in marks.get_label()


def test_concurrent_and_finished_runs_match_run(full: Result) -> None:
    ax = visualization.concurrent_runs_over_time(full).axes[0]
    (line,) = [line for line in ax.lines if line.get_gid() == "concurrent"]
    counts = line.get_ydata()
    assert counts[0] == 0 and counts[-1] == 0 and max(counts) == 1  # a serial run: one at a time
    ax = visualization.finished_runs_over_time(full).axes[0]
    (total,) = [line for line in ax.lines if line.get_gid() == "total"]
    assert total.get_ydata()[-1] == len(full.runs)
    per_budget = [line.get_ydata()[-1] for line in ax.lines if line.get_gid() == "budget"]
    assert sorted(per_budget) == sorted(sum(r.budget == b for r in full.runs) for b in {r.budget for r in full.runs})


def test_correlation_matrix_matches_run(full: Result) -> None:
    from scipy.stats import spearmanr

    budgets, rho, pairs = visualization.budget_correlations(full)
    assert budgets == full.settings["budgets"]
    fig = visualization.correlation_across_budgets(full)
    matrix = fig.axes[0].images[0].get_array()
    assert matrix.shape == (len(budgets), len(budgets))
    # one cell recomputed by hand: the two smallest budgets
    losses = [{r.config_id: r.loss for r in successful(full) if r.budget == b} for b in budgets[:2]]
    common = sorted(set(losses[0]) & set(losses[1]))
    assert pairs[0, 1] == len(common) >= 3
    assert rho[0, 1] == pytest.approx(spearmanr([losses[0][c] for c in common], [losses[1][c] for c in common])[0])
    assert np.allclose(rho, rho.T, equal_nan=True)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert f"n={pairs[0, 1]}" in texts[1] and len(texts) == len(budgets) ** 2


def test_correlation_is_blank_below_three_pairs(full: Result) -> None:
    _budgets, rho, pairs = visualization.budget_correlations(full)
    assert np.all(np.isnan(rho[pairs < 3]))


def test_model_vs_random_counts_sum_to_successful_runs(full: Result) -> None:
    fig = visualization.model_vs_random(full)
    budgets = sorted({r.budget for r in successful(full)})
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == len(budgets)
    model_based = {cid for cid, entry in full.id2config.items() if entry["config_info"].get("model_based_pick")}
    assert model_based, "the run should have model-based picks"
    for ax, budget in zip(axes, budgets):
        on_budget = [r for r in successful(full) if r.budget == budget]
        heights = {c.patches[0].get_label(): sum(p.get_height() for p in c.patches) for c in ax.containers}
        assert sum(heights.values()) == len(on_budget)
        n_model = sum(r.config_id in model_based for r in on_budget)
        if n_model:
            assert heights[f"model-based ({n_model})"] == n_model


def test_learning_curves_match_run(full: Result) -> None:
    ax = visualization.learning_curves(full).axes[0]
    lines = [line for line in ax.lines if line.get_gid() == "curve"]
    curves = [c for cs in full.get_learning_curves().values() for c in cs if c]
    assert len(lines) == len(curves)
    assert sum(len(line.get_xdata()) for line in lines) == len(successful(full))


def test_edge_cases_raise_value_error(runs: dict[str, Path]) -> None:
    one = load_result(runs["one_budget"])
    with pytest.raises(ValueError, match="only one budget"):
        visualization.correlation_across_budgets(one)
    with pytest.raises(ValueError, match="only one budget"):
        visualization.learning_curves(one)
    visualization.losses_over_time(one)
    visualization.model_vs_random(one)
    failed = load_result(runs["only_failed"])
    for name in ("losses_over_time", "correlation_across_budgets", "model_vs_random", "learning_curves"):
        with pytest.raises(ValueError, match="no successful runs"):
            getattr(visualization, name)(failed)
    visualization.concurrent_runs_over_time(failed)
    visualization.finished_runs_over_time(failed)
    empty = load_result(runs["no_results"])
    assert not empty.runs and empty.id2config
    for name in visualization.PLOTS:
        with pytest.raises(ValueError, match="no finished runs"):
            getattr(visualization, name)(empty)


def test_missing_matplotlib_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, full: Result) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    advice = 'pip install matplotlib (or, in a checkout of mpibohb: pip install -e ".[plot]")'
    with pytest.raises(ImportError, match=re.escape(advice)):
        visualization.losses_over_time(full)


def test_every_plot_is_a_pyplot_figure_that_plt_show_shows(full: Result) -> None:
    assert plt.get_fignums() == []
    for count, name in enumerate(visualization.PLOTS, start=1):
        figure = getattr(visualization, name)(full)
        assert len(plt.get_fignums()) == count, name
        assert plt.gcf() is figure, name  # the current figure: plt.show() and plt.savefig() take it


# ---------------------------------------------------------------- python -m mpibohb plot


@pytest.mark.slow  # 18 PNG files
def test_the_plot_command_closes_its_figures(runs: dict[str, Path], tmp_path: Path) -> None:
    mine = plt.figure()  # a figure of the caller's, in the same process: left alone
    for _ in range(3):
        plotted = run_cli("plot", runs["full"], "--out", tmp_path)
        assert plotted.returncode == 0 and len(plotted.stdout.splitlines()) == len(visualization.PLOTS)
        assert plt.get_fignums() == [mine.number]


@pytest.mark.slow  # a few seconds: out of the fast lane
def test_the_plot_command_keeps_a_file_of_the_same_name_that_it_did_not_write(runs: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    mine = tmp_path / "losses_over_time.png"
    mine.write_text("my precious")
    plotted = run_cli("plot", runs["full"], "--out", tmp_path)
    assert plotted.returncode == 2
    assert plotted.stderr.strip() == (f"mpibohb: kept {mine}: a file that mpibohb plot did not write (it lacks "
                                      "the PNG stamp 'Software: mpibohb plot', which versions before 2026-12-06 did "
                                      "not set); move it, or give another --out")
    assert mine.read_text() == "my precious"
    written = [str(tmp_path / f"{name}.png") for name in visualization.PLOTS if name != "losses_over_time"]
    assert plotted.stdout.splitlines() == written
    again = run_cli("plot", runs["full"], "--out", tmp_path)  # its own files it replaces
    assert again.returncode == 2 and again.stdout.splitlines() == written
    mine.unlink()
    (runs["full"] / "plots").mkdir(exist_ok=True)
    (runs["full"] / "plots" / "losses_over_time.png").write_text("an older version's plot, without the stamp")
    assert run_cli("plot", runs["full"]).returncode == 0  # RUN_DIR/plots is plot's own folder
    (runs["full"] / "plots" / "losses_over_time.png").write_text("an older version's plot, without the stamp")
    assert run_cli("plot", runs["full"], "--out", runs["full"] / "plots").returncode == 0  # named as --out too


def test_the_plot_command_never_writes_through_a_link_and_leaves_no_temporary_file(runs: dict[str, Path],
                                                                                  tmp_path: Path) -> None:
    out, precious = tmp_path / "shared", tmp_path / "precious.txt"
    out.mkdir()
    precious.write_text("my precious")
    (out / ".losses_over_time.png.partial").symlink_to(precious)  # planted by someone else in a shared folder
    plotted = run_cli("plot", runs["full"], "--out", out)
    assert plotted.returncode == 0, plotted.stderr
    assert precious.read_text() == "my precious" and not (out / "losses_over_time.png").is_symlink()
    assert sorted(path.name for path in out.iterdir()) == sorted(
        [".losses_over_time.png.partial"] + [f"{name}.png" for name in visualization.PLOTS])
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    refused = run_cli("plot", runs["full"], "--out", a_file)
    assert refused.returncode == 2 and refused.stderr.strip() == f"mpibohb: --out {a_file} is a file, not a directory"


@pytest.mark.slow  # 18 PNG files
def test_plot_command(runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    full, custom, one, failed, empty = run_cli_many(
        ["plot", runs["full"]], ["plot", runs["full"], "--out", out], ["plot", runs["one_budget"]],
        ["plot", runs["only_failed"]], ["plot", runs["no_results"]])
    with monkeypatch.context() as without:
        for name in ("matplotlib", "matplotlib.figure"):  # imported in this process already
            without.setitem(sys.modules, name, None)
        missing = run_cli("plot", runs["full"])
    for process in (full, custom, one, failed, empty):
        assert process.returncode == 0 and not process.stderr, process.stderr
    assert full.stdout.splitlines() == [str(runs["full"] / "plots" / f"{n}.png") for n in visualization.PLOTS]
    assert custom.stdout.splitlines() == [str(out / f"{n}.png") for n in visualization.PLOTS]
    for path in [*(runs["full"] / "plots").iterdir(), *out.iterdir()]:
        assert_png(path)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.png" for n in visualization.PLOTS)

    assert "skipped correlation_across_budgets: only one budget" in one.stdout.splitlines()
    assert "skipped learning_curves: only one budget" in one.stdout.splitlines()
    assert str(runs["one_budget"] / "plots" / "losses_over_time.png") in one.stdout.splitlines()

    failed_lines = failed.stdout.splitlines()
    assert [line.split(":")[0] for line in failed_lines if line.startswith("skipped")] == [
        "skipped losses_over_time", "skipped correlation_across_budgets", "skipped model_vs_random",
        "skipped learning_curves"]
    assert all("no successful runs" in line for line in failed_lines if line.startswith("skipped"))
    for name in ("concurrent_runs_over_time", "finished_runs_over_time"):
        assert_png(runs["only_failed"] / "plots" / f"{name}.png")

    assert empty.stdout.splitlines() == [f"skipped {n}: no finished runs yet" for n in visualization.PLOTS]

    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("mpibohb: ") and len(missing.stderr.strip().splitlines()) == 1
    assert "pip install matplotlib" in missing.stderr
