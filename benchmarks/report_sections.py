"""The text of BENCHMARKS.md, built from the JSON that the benchmark scripts write (see report.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.problems import all_problems
from benchmarks.quality import ACCOUNTINGS, accounting_view, table
from benchmarks.utilisation import DEFAULT_ITERATIONS, bound_cell

MPIBOHB_BOHB, HPBANDSTER_BOHB = "mpibohb BOHB", "hpbandster BOHB"
MPIBOHB_TPE = "mpibohb BOHB (model tpe)"  # BOHB(model="tpe"), issue 22's candidate
# the optimisers mpibohb's BOHB is compared with under both accountings: group label -> column name
PEERS = {"optuna TPE + Hyperband pruner": "Optuna TPE + Hyperband pruner", "dehb DEHB": "DEHB",
         "deephyper CBO (sampling) + successive halving": "DeepHyper CBO + successive halving",
         HPBANDSTER_BOHB: "HpBandSter BOHB"}


def load_quality(results: Path) -> dict[str, dict]:
    """Every problem's summary that benchmarks.quality wrote, in report order."""
    loaded = {}
    for name in all_problems():
        path = results / f"{name}.json"
        if path.exists():
            loaded[name] = json.loads(path.read_text())
    return loaded


def compare(a: dict, b: dict) -> tuple[float, float, str]:
    """``a - b`` at the common budget, its standard error, and a verdict (lower is better)."""
    difference = a["final_mean"] - b["final_mean"]
    error = math.hypot(a["final_se"], b["final_se"])
    if not math.isfinite(difference) or not math.isfinite(error):
        verdict = "n/a"
    elif abs(difference) <= error:
        verdict = "equal within s.e."
    else:
        verdict = "better" if difference < 0 else "worse"
    return difference, error, verdict


def quality_targets(quality: dict[str, dict]) -> list[str]:
    """One row per problem: mpibohb BOHB against HpBandSter's BOHB and against HB / RS."""
    rows = ["| problem | measure | mpibohb BOHB | HpBandSter BOHB | vs HpBandSter BOHB | vs mpibohb HyperBand"
            " | vs mpibohb RandomSearch |", "| --- | --- | ---: | ---: | --- | --- | --- |"]
    for name, summary in quality.items():
        groups = summary["groups"]
        ours = groups.get(MPIBOHB_BOHB)
        if ours is None:
            continue
        cells = []
        for other in (HPBANDSTER_BOHB, "mpibohb HyperBand", "mpibohb RandomSearch"):
            if other in groups:
                difference, error, verdict = compare(ours, groups[other])
                cells.append(f"{verdict} ({difference:+.3g} ± {error:.2g})")
            else:
                cells.append("not run")
        theirs = groups.get(HPBANDSTER_BOHB)
        theirs_text = f"{theirs['final_mean']:.4g} ± {theirs['final_se']:.2g}" if theirs else "not run"
        rows.append(f"| {name} | {summary['measure']} | {ours['final_mean']:.4g} ± {ours['final_se']:.2g}"
                    f" | {theirs_text} | {' | '.join(cells)} |")
    return rows


def peer_comparison(quality: dict[str, dict], ours_label: str = MPIBOHB_BOHB) -> list[str]:
    """mpibohb's BOHB (``ours_label``: or another of its groups, e.g. the tpe model) against
    the peers of PEERS (those run) on every problem, under each accounting: the scores at that
    accounting's common budget and its verdict against each (better / equal within s.e. / worse:
    its own standing), then a tally per accounting."""
    ours_name = ours_label
    peers = [label for label in PEERS if any(label in summary["groups"] for summary in quality.values())]
    head = "".join(f" | {PEERS[label]} | {ours_name} vs {PEERS[label]}" for label in peers)
    rows = [f"| problem | measure | accounting | budget | {ours_name}{head} |",
            "| --- | --- | --- | ---: | ---: |" + " ---: | --- |" * len(peers)]
    verdicts: dict[str, dict[str, dict[str, str]]] = {a: {label: {} for label in peers} for a in ACCOUNTINGS}
    old = []
    for name, summary in quality.items():
        if ours_label not in summary["groups"]:
            continue
        if accounting_view(summary, ACCOUNTINGS[0]) is None:
            old.append(name)
            continue
        for accounting in ACCOUNTINGS:
            view = accounting_view(summary, accounting)
            assert view is not None
            ours = view["groups"][ours_label]
            cells = []
            for label in peers:
                theirs = view["groups"].get(label)
                if theirs is None:
                    cells.append("not run | -")
                    continue
                difference, error, verdict = compare(ours, theirs)
                verdicts[accounting][label][name] = verdict
                cells.append(f"{_mean_se(theirs)} | {verdict} ({difference:+.3g} ± {error:.2g})")
            rows.append(f"| {name} | {summary['measure']} | {accounting} | {view['common_budget']:,.0f}"
                        f" | {_mean_se(ours)} | {' | '.join(cells)} |")
    lines = rows + [""]
    if old:
        lines += [f"Not shown: {', '.join(old)} (summaries written before the two accountings, whose figures mix"
                  " them: re-run `python -m benchmarks.quality`).", ""]
    lines += [f"{ours_name} against each, problems counted by verdict:", "",
              "| accounting |" + "".join(f" vs {PEERS[label]} |" for label in peers),
              "| --- |" + " --- |" * len(peers)]
    for accounting in ACCOUNTINGS:
        lines.append(f"| {accounting} |" + "".join(f" {_tally(verdicts[accounting][label])} |" for label in peers))
    return lines


def _mean_se(group: dict[str, Any]) -> str:
    return f"{group['final_mean']:.4g} ± {group['final_se']:.2g}"


def _tally(verdicts: dict[str, str]) -> str:
    """"better on a, equal within s.e. on b, worse on c (names) of n"."""
    counts = {v: sum(1 for x in verdicts.values() if x == v) for v in ("better", "equal within s.e.", "worse")}
    worse = [name for name, verdict in verdicts.items() if verdict == "worse"]
    return (f"better on {counts['better']}, equal within s.e. on {counts['equal within s.e.']}, worse on"
            f" {counts['worse']}{' (' + ', '.join(worse) + ')' if worse else ''} of {len(verdicts)}")


def model_cost(overhead: Any, reference: Any) -> list[str]:
    """Per proposal and per refit, mpibohb (capped and uncapped) against HpBandSter, by observations."""
    if not overhead or not reference or not reference.get("model"):
        return ["Model cost: not measured in this run (see the failures above)."]
    theirs = {row["observations"]: row for row in reference["model"]}
    rows = ["| mpibohb model | observations | mpibohb max_points_in_model | mpibohb per proposal (ms)"
            " | HpBandSter per proposal (ms) | ratio | mpibohb per refit (ms) | HpBandSter per refit (ms) | ratio |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in overhead["rows"]:
        other = theirs.get(row["observations"])
        if other is None:
            continue
        cap = row["max_points_in_model"] or "None (all)"
        rows.append(f"| {_model(row)} | {row['observations']:,} | {cap} | {1e3 * row['proposal']:.3g}"
                    f" | {1e3 * other['proposal']:.3g} | {other['proposal'] / row['proposal']:,.0f}x"
                    f" | {1e3 * row['refit']:.3g} | {1e3 * other['refit']:.3g}"
                    f" | {other['refit'] / row['refit']:,.0f}x |")
    return rows


def _model(row: dict[str, Any]) -> str:
    """The model of an overhead row (rows written before there were two are HpBandSter's)."""
    return row.get("model", "hpbandster")


def tpe_cost_row(overhead: Any) -> list[str]:
    """The tpe model's cost per proposal at 10,000 observations against the hpbandster model's (issue 22)."""
    rows = {(_model(row), row["max_points_in_model"]): row["proposal"]
            for row in (overhead or {}).get("rows", []) if row["observations"] == 10_000}
    pairs = {cap: rows[("tpe", cap)] / rows[("hpbandster", cap)] for cap in (512, None)
             if ("tpe", cap) in rows and ("hpbandster", cap) in rows}
    if 512 not in pairs:
        return []
    text = "; ".join(f"{ratio:.2g}x ({'every point' if cap is None else f'{cap} points'} in the densities)"
                     for cap, ratio in pairs.items())
    return [f"| `model=\"tpe\"` per proposal at 10,000 observations, 10 dims: within 2x of `model=\"hpbandster\"`"
            f" | {text} | {_met(pairs[512] <= 2)} with the default `max_points_in_model` |"]


def throughput(ours: Any, reference: Any) -> list[str]:
    """Evaluations per second with a zero-cost worker, BOHB, by number of workers."""
    if not ours or not reference or not reference.get("throughput"):
        return ["Throughput: not measured in this run (see the failures above)."]
    theirs = {row["workers"]: row for row in reference["throughput"]}
    rows = ["| workers | mpibohb BOHB evaluations/s (MPI ranks) | HpBandSter BOHB evaluations/s (threads) | ratio |",
            "| ---: | ---: | ---: | ---: |"]
    for row in ours["throughput"]:
        workers = row["ranks"] - 1
        if row["optimizer"] != "BOHB" or workers not in theirs:
            continue
        rate = row["runs"] / row["wall"]
        other = theirs[workers]
        if "status" in other:
            rows.append(f"| {workers} | {rate:,.0f} | {other['status']} | - |")
        else:
            other_rate = other["runs"] / other["wall"]
            rows.append(f"| {workers} | {rate:,.0f} | {other_rate:,.0f} | {rate / other_rate:,.0f}x |")
    return rows


def idle_cpu(ours: Any) -> list[str]:
    """CPU that waiting ranks use: one 3 s evaluation on rank 1 while the others idle."""
    if not ours or not ours.get("idle"):
        return []
    lines = ["CPU time over wall time while one worker evaluates for 3 s and every other rank waits"
             " (`benchmarks/throughput.py`):", "",
             "| ranks | master | busy worker | idle workers (mean) | idle workers (max) |",
             "| ---: | ---: | ---: | ---: | ---: |"]
    for row in ours["idle"]:
        idle = row["idle"]
        mean, peak = (f"{sum(idle) / len(idle):.1f}%", f"{max(idle):.1f}%") if idle else ("-", "-")
        lines.append(f"| {row['ranks']} | {row['master']:.1f}% | {row['busy']:.1f}% | {mean} | {peak} |")
    return lines + [""]


def utilisation(rows: Any) -> list[str]:
    """Busy fraction, its schedule bound, busy before the last bracket started, and the per-job gap,
    per K, number of iterations and engine. Rows without a bound (HpBandSter, older runs) show "-" there."""
    if not rows:
        return ["Utilisation: not measured in this run (see the failures above)."]
    lines = ["| workers K | iterations | engine | evaluations | sleep / K (s) | wall (s) | busy fraction"
             " | schedule bound | busy before the last bracket | median gap between jobs (ms) | status |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        head = f"| {row['workers']} | {_iterations(row)} | {row['engine']}"
        if row.get("evaluations") is None:
            lines.append(f"{head} | - | - | - | - | {bound_cell(row)} | - | - | {row['status']} |")
            continue
        lines.append(f"{head} | {row['evaluations']} | {row['ideal']:.1f}"
                     f" | {row['wall']:.1f} | {row['busy']:.1%} | {bound_cell(row)} | {row['busy_before_last']:.1%}"
                     f" ({row['before_last_share']:.0%} of the span) | {row['gap_ms']:.1f} | {row['status']} |")
    return lines


def _iterations(row: dict[str, Any]) -> int:
    """The row's number of iterations (rows written before it was recorded are of the sweep's default)."""
    return int(row.get("n_iterations", DEFAULT_ITERATIONS))


def memory(rows: Any) -> list[str]:
    """The master's memory by number of recorded evaluations."""
    if not rows:
        return ["Memory: not measured in this run (see the failures above)."]
    lines = ["| evaluations | engine | what ran | RSS growth (MiB) | peak RSS (MiB) | bytes/evaluation | seconds"
             " | status |", "| ---: | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        cells = [_number(row.get(key), digits) for key, digits in
                 (("rss_growth_mib", 1), ("peak_mib", 0), ("bytes_per_evaluation", 0), ("seconds", 0))]
        lines.append(f"| {row['evaluations']:,} | {row['engine']} | {row.get('what', '')} | {' | '.join(cells)}"
                     f" | {row.get('status', 'ok')} |")
    return lines


def _number(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def fill_tail(results: Any) -> list[str]:
    """The two tables of benchmarks/fill_tail.py, or a line saying it has not run."""
    from benchmarks import fill_tail as part

    if not results:
        return ["not run: `python -m benchmarks.report --only fill_tail`"]
    settings = results["settings"]
    return (["Ladders (min, max, eta): " + ", ".join(str(tuple(ladder)) for ladder in settings["ladders"])
             + f"; iterations {settings['iterations']}; K {settings['workers']}.", ""]
            + part.SCHEDULE_HEADER + [part.schedule_line(row) for row in results["schedules"]] + [""]
            + part.QUALITY_HEADER + [part.quality_line(row) for row in results["quality"]])


def heterogeneous(results: Any, real: Any) -> list[str]:
    """The tables of benchmarks/heterogeneous.py and benchmarks/heterogeneous_mpi.py, or lines saying
    they have not run."""
    from benchmarks import heterogeneous as part

    lines = []
    if not results:
        lines += ["Simulated: not run: `python -m benchmarks.report --only heterogeneous`"]
    else:
        cells = part.aggregate(results["rows"])
        lines += part.HEADER + [part.line(cell) for cell in cells] + [""]
        largest = max(cell["workers"] for cell in cells)
        lines += part.cost_lines(cells, largest, max(cell["sigma"] for cell in cells if cell["workers"] == largest))
    lines += [""]
    if not real:
        return lines + ["Real mpiexec run: not run: `python -m benchmarks.report --only heterogeneous_mpi`"]
    settings = real["settings"]
    lines += [f"A real run: `mpiexec -n {settings['ranks']}` ({settings['ranks'] - 1} sleeping workers), "
              f"{settings['n_iterations']} iterations, sleep = budget x f x {settings['scale']:g} s, "
              f"s = {settings['sigma']:g}; times from the run directory's Result.", "",
              "| schedule | evaluations | failed | work W / workers (s) | extra work | chain C (s) | span (s) | busy"
              " | bound |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    workers = settings["ranks"] - 1
    for row in real["rows"]:
        lines.append(f"| {row['schedule']} | {row['evaluations']} | {row['failed']} | {row['work'] / workers:.1f}"
                     f" | {row.get('extra', 0.0):.0%} | {row['chain']:.1f} | {row['span']:.1f} | {row['busy']:.1%}"
                     f" | {row['bound']:.1%} |")
    return lines


def asynchronous_quality(results: Any) -> list[str]:
    """The tables of benchmarks/asynchronous_quality.py, or a line saying it has not run."""
    from benchmarks import asynchronous_quality as part

    if not results:
        return ["Quality: not run: `python -m benchmarks.report --only asynchronous_quality`"]
    settings, rows = results["settings"], results["rows"]
    factor, models = settings.get("time_iterations"), ", ".join(settings.get("models", ["hpbandster"]))
    commands = settings.get("commands") or [settings.get("command", "python -m benchmarks.asynchronous_quality")]
    measured = f", measured on {settings['date']}" if settings.get("date") else ""
    lines = [f"Quality: BOHB synchronous against asynchronous, simulated, run time = budget x f with s ="
             f" {settings['sigma']:g}, {settings['seeds']} seeds, model {models}"
             f" ({' and '.join(f'`{command}`' for command in commands)}{measured}); regret of the incumbent,"
             " lower is better. With K = 1 the two schedules are identical by construction (one worker never waits),"
             " so asynchronous cannot be better there.", "",
             "(a) At equal total budget:", ""] + part.BUDGET_HEADER + [part.budget_line(row) for row in rows]
    if "cut" in rows[0]:
        grid = [1 + share * (factor - 1) for share in part.GRID]
        lines += ["", "(b) At equal simulated wall time, as a user with a fixed allocation sees it: the allocation T is"
                  " the span of the synchronous run with the problem's own iterations N, per seed (the time a"
                  " synchronous user needs for that run); each schedule gets the most iterations whose run ends by"
                  f" T, from the grid {', '.join(f'{share:g} N' for share in grid)} (the same bisection for both;"
                  " rounded up; spans are not monotone in"
                  " the iterations, so it is the boundary the search finds), and is read at T. Same T, seeds, noise"
                  " and f for both; with K = 1 N is the most that fits for both (every iteration lengthens the"
                  " span). Asynchronous can only gain what it saves in the tail, where synchronous idles at stage"
                  " barriers: more iterations fit in T. Columns: T and the iterations that fit are means over seeds"
                  " (range in brackets; \"n not by T\": seeds where even N iterations ended after T, read at T); budget"
                  " done by T: the sum of the budgets of the evaluations finished by T.",
                  ""]
        lines += part.TIME_HEADER + [part.time_line(row) for row in rows]
        lines += ["", f"(c) The allocation T cuts the run: both schedules with ceil({factor:g} x N) iterations, meant"
                  " to be more than fit in T (the table counts the seeds where a long run ended before T), read at T,"
                  " as a user sees it who sets n_iterations high and lets the allocation end the run."
                  " Before its tail (which may begin once 75% of the run's budget has been started)"
                  " the asynchronous schedule hands out the same jobs as the synchronous one, which starts the next"
                  " bracket whenever the open ones have no job and so never idles before its tail either; only the"
                  " order of jobs due together can differ. The column after the iterations: the largest share over"
                  " seeds of the asynchronous long run's budget started before T.", ""]
        lines += part.CUT_HEADER + [part.cut_line(row) for row in rows]
    return (lines + ["", "Where the criterion (at equal budget at least as good within the s.e.; at equal wall time"
                     " better) does not hold:", ""] + (part.shortfalls(rows) or ["- nowhere: it holds in every cell."]))


def ablation(results: Any) -> list[str]:
    """The table of benchmarks/ablation.py, or a line saying it has not run."""
    from benchmarks import ablation as part

    if not results:
        return ["not run: `python -m benchmarks.report --only ablation`"]
    columns = {name: {label: np.array(values, dtype=float) for label, values in cells.items()}
               for name, cells in results["scores"].items()}
    labels = list(results["references"])
    return [f"Regret at each problem's total budget, mean ± s.e. over {results['seeds']} seeds; after each figure"
            " + better than the row it is compared with beyond the combined s.e., - worse, = within it.", "",
            part.table(columns, labels, results["references"])]


def continuation(results: Any) -> list[str]:
    """The table of benchmarks/continuation.py, or a line saying it has not run."""
    from benchmarks import continuation as part

    if not results:
        return ["Not run: `python -m benchmarks.report --only continuation`"]
    return [f"`python -m benchmarks.continuation`: {results['n_iterations']} iterations, seeds "
            f"{', '.join(str(row['seed']) for row in results['rows'])}.", "", *part.table(results["rows"])]


def quality_sections(quality: dict[str, dict], figures: str) -> list[str]:
    """Each problem's table and plot."""
    lines = []
    problems = all_problems()
    for name, summary in quality.items():
        lines += [f"### {name}: {problems[name].description}", "", table(summary), "",
                  f"![{name}]({figures}/{name}.png)", ""]
        lines += [f"- {line}" for line in [*summary.get("failures", []), *summary.get("left_out", [])]]
    return lines


def document(context: dict[str, Any], data: dict[str, Any]) -> str:
    """The whole of BENCHMARKS.md."""
    from benchmarks import report_text

    failures = [f"- {name}: {reason}" for name, reason in context["failures"].items()] or ["- none"]
    lines = report_text.header(context) + ["", "Parts that failed in this run:", *failures, ""]
    lines += targets(data)
    lines += report_text.QUALITY_INTRO + quality_targets(data["quality"]) + [""]
    lines += report_text.ACCOUNTINGS_INTRO + peer_comparison(data["quality"]) + [""]
    if any(MPIBOHB_TPE in summary["groups"] for summary in data["quality"].values()):
        lines += report_text.TPE_INTRO + peer_comparison(data["quality"], MPIBOHB_TPE) + [""]
    lines += report_text.ABLATION_INTRO + ablation(data.get("ablation")) + [""]
    lines += report_text.SPEED_INTRO + ["#### Model cost per proposal and per refit", ""]
    lines += model_cost(data["overhead"], data["hpbandster_reference"]) + [""]
    lines += ["#### Evaluations per second, zero-cost worker", ""]
    lines += throughput(data["throughput"], data["hpbandster_reference"]) + [""]
    lines += idle_cpu(data["throughput"])
    lines += report_text.UTILISATION_INTRO + utilisation(data["utilisation"]) + [""]
    lines += report_text.FILL_TAIL_INTRO + fill_tail(data.get("fill_tail")) + [""]
    lines += report_text.MEMORY_INTRO + memory(data["memory"]) + [""]
    lines += report_text.HETEROGENEOUS_INTRO + heterogeneous(data.get("heterogeneous"), data.get("heterogeneous_mpi"))
    lines += [""] + asynchronous_quality(data.get("asynchronous_quality")) + [""]
    lines += report_text.CONTINUATION_INTRO + continuation(data.get("continuation")) + [""]
    lines += report_text.PROBLEMS_INTRO + quality_sections(data["quality"], context["figures"])
    return "\n".join(lines) + "\n"


def _met(condition: bool) -> str:
    return "yes" if condition else "**no**"


def quality_verdicts(quality: dict[str, dict], other: str) -> dict[str, str]:
    """mpibohb BOHB's verdict against ``other`` on every problem where both ran."""
    return {name: compare(summary["groups"][MPIBOHB_BOHB], summary["groups"][other])[2]
            for name, summary in quality.items()
            if MPIBOHB_BOHB in summary["groups"] and other in summary["groups"]}


def quality_target_rows(quality: dict[str, dict]) -> list[str]:
    """The quality targets: against HpBandSter's BOHB, and against HyperBand and RandomSearch."""
    rows = []
    verdicts = quality_verdicts(quality, HPBANDSTER_BOHB)
    worse = [name for name, verdict in verdicts.items() if verdict == "worse"]
    rows.append(f"| BOHB at least as good as HpBandSter's BOHB at equal budget (full budgets), every problem"
                f" | as good or better on"
                f" {len(verdicts) - len(worse)} of {len(verdicts)}{'; worse on ' + ', '.join(worse) if worse else ''}"
                f" | {_met(bool(verdicts) and not worse)} |")
    for other in ("mpibohb HyperBand", "mpibohb RandomSearch"):
        verdicts = quality_verdicts(quality, other)
        counts = {v: sum(1 for x in verdicts.values() if x == v) for v in ("better", "equal within s.e.", "worse")}
        worse = [name for name, verdict in verdicts.items() if verdict == "worse"]
        rows.append(f"| BOHB better than {other.split()[1]} (the BOHB paper's claim) | better on {counts['better']},"
                    f" equal within s.e. on {counts['equal within s.e.']}, worse on {counts['worse']}"
                    f"{' (' + ', '.join(worse) + ')' if worse else ''} of {len(verdicts)} | see counts |")
    return rows


def tpe_target_row(quality: dict[str, dict]) -> list[str]:
    """Issue 22's target: the tpe model no worse than any peer in any cell (problem x accounting),
    every peer run on every problem; per peer, its worse cells and the problems it ran."""
    problems = [name for name, summary in quality.items()
                if MPIBOHB_TPE in summary["groups"] and accounting_view(summary, ACCOUNTINGS[0]) is not None]
    if not problems:
        return []
    parts, met = [], True
    for label, column in PEERS.items():
        ran = [name for name in problems if label in quality[name]["groups"]]
        worse = [f"{name} ({accounting})" for name in ran for accounting in ACCOUNTINGS
                 if compare(_view_group(quality[name], accounting, MPIBOHB_TPE),
                            _view_group(quality[name], accounting, label))[2] == "worse"]
        met = met and not worse and len(ran) == len(problems)
        parts.append(f"{column}: worse in {len(worse)} of {len(ran) * len(ACCOUNTINGS)} cells"
                     f"{' (' + ', '.join(worse) + ')' if worse else ''}, run on {len(ran)} of {len(problems)} problems")
    return [f"| `model=\"tpe\"` no worse than any peer on any problem, both accountings | {'; '.join(parts)}"
            f" | {_met(met)} |"]


def _view_group(summary: dict[str, Any], accounting: str, label: str) -> dict[str, Any]:
    view = accounting_view(summary, accounting)
    assert view is not None
    return view["groups"][label]


def speed_target_rows(data: dict[str, Any]) -> list[str]:
    """Model cost, throughput and utilisation targets."""
    rows = []
    overhead, reference = data["overhead"], data["hpbandster_reference"]
    if overhead and reference and reference.get("model"):
        theirs = {row["observations"]: row["proposal"] for row in reference["model"]}
        ratios = {row["max_points_in_model"]: theirs[10_000] / row["proposal"] for row in overhead["rows"]
                  if row["observations"] == 10_000 and 10_000 in theirs and _model(row) == "hpbandster"}
        if ratios:
            text = "; ".join(f"{ratio:,.0f}x ({'every point' if cap is None else f'{cap} points'} in the KDE)"
                             for cap, ratio in ratios.items())
            default = ratios.get(512)
            verdict = _met(default is not None and default >= 100) + " with HpBandSter's model at 512 points"
            if ratios.get(None) is not None:
                verdict += " and with every point kept" if ratios[None] >= 100 else "; **no** with every point kept"
            rows.append(f"| per proposal at 10,000 observations, 10 dims: at least 100x cheaper than HpBandSter"
                        f" | {text} | {verdict} |")
    ours, theirs_rate = data["throughput"], reference.get("throughput") if reference else None
    if ours and theirs_rate:
        by_workers = {row["workers"]: row for row in theirs_rate if "runs" in row}
        ratios = {row["ranks"] - 1: (row["runs"] / row["wall"]) / (by_workers[row["ranks"] - 1]["runs"]
                                                                  / by_workers[row["ranks"] - 1]["wall"])
                  for row in ours["throughput"] if row["optimizer"] == "BOHB" and row["ranks"] - 1 in by_workers}
        if ratios:
            text = "; ".join(f"{ratio:,.0f}x with {workers} worker{'s' if workers > 1 else ''}"
                             for workers, ratio in sorted(ratios.items()))
            rows.append(f"| evaluations per second at least 20x HpBandSter's | {text}"
                        f" | {_met(min(ratios.values()) >= 20)} |")
    rows += utilisation_target_rows(data["utilisation"])
    return rows


def utilisation_target_rows(rows: Any) -> list[str]:
    """Busy fraction at least HpBandSter's at every K, and above 90% at K = 32, on the sweep's runs (the
    shortest); a longer run at K = 32, where there is one, is quoted beside the second."""
    measured = [row for row in rows or [] if row.get("busy") is not None]
    if not measured:
        return []
    short = min(_iterations(row) for row in measured)
    sweep = {(row["engine"], row["workers"]): row for row in measured if _iterations(row) == short}
    ks = sorted({workers for _, workers in sweep})
    pairs = [(k, sweep[("mpibohb", k)], sweep[("HpBandSter", k)]) for k in ks
             if ("mpibohb", k) in sweep and ("HpBandSter", k) in sweep]
    text = "; ".join(f"K={k}: {a['busy']:.1%} vs {b['busy']:.1%}" for k, a, b in pairs)
    lines = [f"| worker utilisation at least HpBandSter's at every K ({short} iterations) | {text}"
             f" | {_met(bool(pairs) and all(a['busy'] >= b['busy'] for _, a, b in pairs))} |"]
    if ("mpibohb", 32) in sweep:
        lines.append(_above_90_row(sweep, measured, short))
    return lines


def _above_90_row(sweep: dict[tuple[str, int], dict], measured: list[dict], short: int) -> str:
    """The K = 32 target: mpibohb by default (with the longer run beside it) and with fill_tail=True."""
    row, tail = sweep[("mpibohb", 32)], sweep.get(("mpibohb fill_tail", 32))
    longer = [r for r in measured if r["engine"] == "mpibohb" and r["workers"] == 32 and _iterations(r) > short]
    default = (f"{row['busy']:.1%} over the whole run{_bound_remark(row)}; {row['busy_before_last']:.1%} before the"
               " last bracket started (the rest is the tail of the last brackets' stages)"
               + "".join(f"; {r['busy']:.1%} in a run of {_iterations(r)} iterations"
                         + (f" (schedule bound {r['bound_busy']:.1%})" if r.get("bound_busy") else "") for r in longer))
    target = f"| worker utilisation above 90% at K = 32 ({short} iterations) |"
    if tail is None:
        return f"{target} {default} | {_met(row['busy'] > 0.9)} |"
    met = _met(row["busy"] > 0.9)
    if row["busy"] <= 0.9 < tail["busy"]:
        met = "yes with `fill_tail=True` (opt-in); **no** by default"
    return (f"{target} with `fill_tail=True`: {tail['busy']:.1%}{_bound_remark(tail)}. By default, HpBandSter's rule"
            f" (a new bracket only when every open one waits): {default} | {met} |")


def _bound_remark(row: dict[str, Any]) -> str:
    """What the schedule itself allows, in parentheses; nothing for rows of older runs, which have no bound."""
    if row.get("bound_busy") is None:
        return ""
    return (f" (the schedule itself allows {row['bound_busy']:.1%}: zero-cost simulation of the same"
            " brackets and job order)")


def targets(data: dict[str, Any]) -> list[str]:
    """The issue's targets with the measured figures and whether each was met."""
    return (["## Targets at a glance", "", "| target | measured | met |", "| --- | --- | --- |"]
            + quality_target_rows(data["quality"]) + tpe_target_row(data["quality"]) + speed_target_rows(data)
            + tpe_cost_row(data["overhead"]) + heterogeneous_target_rows(data.get("heterogeneous"))
            + asynchronous_quality_target_rows(data.get("asynchronous_quality")) + [""])


def asynchronous_quality_target_rows(results: Any) -> list[str]:
    """Issue 20's quality targets: asynchronous BOHB not worse at equal budget, better at equal wall
    time (the fitted runs; with K = 1 the two schedules are identical, so only K > 1 counts)."""
    if not results:
        return []
    rows = results["rows"]
    models = list(dict.fromkeys(row.get("model", "hpbandster") for row in rows))

    def count(cells: list[dict[str, Any]], criterion: str, words: tuple[str, ...]) -> str:
        """``n of m`` cells whose verdict is one of ``words``, overall and per model."""
        def tally(group: list[dict[str, Any]]) -> str:
            return f"{sum(row[criterion]['verdict'] in words for row in group)} of {len(group)}"

        per_model = [f"model {model}: {tally([row for row in cells if row.get('model', 'hpbandster') == model])}"
                     for model in models]
        return f"{tally(cells)} cells ({'; '.join(per_model)})"

    parallel = [row for row in rows if row["workers"] > 1]
    budget_met = all(row["budget"]["verdict"] != "worse" for row in rows)
    time_met = all(row["time"]["verdict"] == "better" for row in parallel)
    return [f"| asynchronous BOHB at least as good as synchronous at equal total budget (simulated, s = 1)"
            f" | {count(rows, 'budget', ('better', 'equal within s.e.'))} | {_met(budget_met)} |",
            f"| asynchronous BOHB better than synchronous at equal simulated wall time (K > 1; with K = 1 the"
            f" schedules are identical) | better in {count(parallel, 'time', ('better',))}; worse in"
            f" {count(parallel, 'time', ('worse',))} | {_met(time_met)} |"]


def heterogeneous_target_rows(results: Any) -> list[str]:
    """Issue 20's targets: asynchronous at least 97% busy in every cell; the master's cost per
    decision at the largest K under 1 ms."""
    from benchmarks import heterogeneous as part

    if not results:
        return []
    cells = part.aggregate(results["rows"])
    lines, costs = [], []
    for schedule, named in (("asynchronous", "asynchronous"), ("keep_busy", "asynchronous with `keep_busy=True`")):
        rows = [cell for cell in cells if cell["schedule"] == schedule]
        if not rows:
            continue
        met = [row for row in rows if row["busy"] >= 0.97]
        busy = ", ".join(f"{row['busy']:.1%}" for row in rows)
        seeds = max(row["seeds"] for row in rows)
        over = f"means over {seeds} seeds; " if seeds > 1 else ""
        lines.append(f"| {named} at least 97% busy in every cell (K x s, run times spread per configuration)"
                     f" | {len(met)} of {len(rows)} cells: {busy} ({over}each cell's bound in its section)"
                     f" | {_met(len(met) == len(rows))} |")
        largest = max(row["workers"] for row in rows)
        costs += [(row["wall"] / row["evaluations"], largest) for row in rows if row["workers"] == largest]
    cost, largest = max(costs)
    return lines + [f"| the master's cost per decision at K = {largest} under 1 ms | at most {cost * 1e6:,.0f} µs"
                    f" (wall per evaluation, asynchronous) | {_met(cost < 1e-3)} |"]
