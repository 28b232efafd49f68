"""Regenerates BENCHMARKS.md: quality, model cost, throughput, utilisation and memory, side by side.

    python -m benchmarks.report            # everything: hours on 2 cores (DeepHyper's runs take most)
    python -m benchmarks.report --quick    # every part on a small scale, ~5 minutes, into benchmarks/results-quick/

It makes the reference environments first (benchmarks/hpbandster_env.sh, peers_env.sh, deephyper_env.sh),
then runs these modules, each as ``python -m benchmarks.NAME`` in a subprocess (working directory:
the repository root) that prints its own table:

* benchmarks.quality on every problem: mpibohb (BOHB with either model, HyperBand, RandomSearch),
  HpBandSter, Optuna, DEHB and DeepHyper, 10 seeds;
* benchmarks.overhead and the model part of benchmarks.hpbandster_reference (in its virtualenv);
* benchmarks.throughput and the throughput part of benchmarks.hpbandster_reference;
* benchmarks.utilisation, benchmarks.fill_tail and benchmarks.memory;
* benchmarks.ablation: BOHB's model one change at a time, with Optuna and DEHB (their runs shared
  with benchmarks.quality);
* benchmarks.heterogeneous (simulated, run times that differ per configuration: synchronous,
  fill_tail and asynchronous), benchmarks.heterogeneous_mpi (the same on a real mpiexec run) and
  benchmarks.asynchronous_quality (asynchronous against synchronous BOHB, simulated).

Quality runs are kept in benchmarks/results/ and reused, so an interrupted report resumes; the
plots are copied to docs/benchmarks/. The figures in BENCHMARKS.md are read from the JSON the
scripts write; nothing is typed in by hand. ``--output`` names another file than BENCHMARKS.md;
``--only PART ...`` re-runs only those parts and takes the others from their last run. Where the
output holds sections the report does not make (measurements written by hand), it is left as it
is and the new document goes beside it, ``BENCHMARKS.report.md``, with a warning naming them.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import quality
from benchmarks import report_sections as sections
from benchmarks.processes import run_in_group

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PART_TIMEOUT = 4 * 3600
QUALITY_TIMEOUT = 48 * 3600  # DeepHyper's 110 runs alone take hours (an SVM run: about 15 min here)
PARTS = ("quality", "overhead", "hpbandster_reference", "throughput", "utilisation", "fill_tail", "memory",
         "ablation", "heterogeneous", "heterogeneous_mpi", "asynchronous_quality", "continuation")
# every engine and mpibohb's every optimiser, so that one command renders every quality table
QUALITY_ENGINES, QUALITY_OPTIMIZERS = ",".join(quality.ENGINES), ",".join(quality.HYPERBAND_FAMILY)
QUICK_ABLATION = ["--seeds", "2", "--problem", "branin", "counting_ones_4", "--variants", "HpBandSter (baseline)",
                  "tpe", "tpe, normal_reference bandwidths"]


def run_part(name: str, command: list[str], log_dir: Path) -> str | None:
    """Run one benchmark script; its output goes to ``log_dir/name.log``. The reason if it failed."""
    timeout = QUALITY_TIMEOUT if name == "quality" else PART_TIMEOUT
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(command)}", file=sys.stderr, flush=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    with open(log_dir / f"{name}.log", "w") as log:
        finished = run_in_group(command, timeout, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    if finished.timed_out:
        return f"timed out after {timeout} s"
    return None if finished.returncode == 0 else f"exit {finished.returncode}, see {log_dir / (name + '.log')}"


def run_and_record(name: str, command: list[str], work: Path) -> None:
    """Run one part and note its time and failure in ``work/parts.json`` (kept across ``--only`` runs)."""
    started = time.time()
    reason = run_part(name, command, work)
    parts_file = work / "parts.json"
    recorded = read_json(parts_file) or {}
    recorded[name] = {"seconds": time.time() - started, "failure": reason, "date": datetime.date.today().isoformat()}
    parts_file.write_text(json.dumps(recorded, indent=1))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def parts(args: argparse.Namespace, work: Path) -> dict[str, list[str]]:
    """The benchmark commands, by name."""
    python, hpbandster = sys.executable, str(HERE / ".hpbandster-venv" / "bin" / "python")
    quick = ["--quick"] if args.quick else []
    quality_runs = [python, "-m", "benchmarks.quality", "--problem", *args.problems_flag, "--seeds", str(args.seeds),
                    "--engines", QUALITY_ENGINES, "--optimizers", QUALITY_OPTIMIZERS, "--out_dir", str(args.results),
                    "--jobs", str(args.jobs)]
    if args.quick:
        quality_runs += ["--n_iterations", "4"]
    return {
        "quality": quality_runs,
        "overhead": [python, "-m", "benchmarks.overhead", *quick, "--json", str(work / "overhead.json")],
        "hpbandster_reference": [hpbandster, "-m", "benchmarks.hpbandster_reference", *quick, "--workers", "1", "4",
                                 "--json", str(work / "hpbandster_reference.json")],
        "throughput": [python, "-m", "benchmarks.throughput", "--ranks", "2", "5", *quick,
                       "--json", str(work / "throughput.json")],
        "utilisation": [python, "-m", "benchmarks.utilisation", *quick, "--json", str(work / "utilisation.json")],
        "fill_tail": [python, "-m", "benchmarks.fill_tail", *quick, "--json", str(work / "fill_tail.json")],
        "memory": [python, "-m", "benchmarks.memory", *quick, "--json", str(work / "memory.json")],
        "ablation": [python, "-m", "benchmarks.ablation", "--out_dir", str(args.results / "ablation"),
                     "--quality_dir", str(args.results), "--json", str(work / "ablation.json"),
                     *(QUICK_ABLATION if args.quick else ["--seeds", str(args.seeds), "--peers", "optuna,dehb"])],
        "heterogeneous": [python, "-m", "benchmarks.heterogeneous", *quick, "--json", str(work / "heterogeneous.json")],
        "heterogeneous_mpi": [python, "-m", "benchmarks.heterogeneous_mpi",
                              *(["--scale", "0.005", "--n_iterations", "1"] if args.quick else []),
                              "--json", str(work / "heterogeneous_mpi.json")],
        "asynchronous_quality": [python, "-m", "benchmarks.asynchronous_quality", *quick,
                                 "--model", "hpbandster", "tpe",
                                 "--json", str(work / "asynchronous_quality.json")],
        "continuation": [python, "-m", "benchmarks.continuation", *quick, "--json", str(work / "continuation.json")],
    }


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scale, for a smoke test of the whole report")
    parser.add_argument("--seeds", type=int, help="seeds per optimiser (default 10; 2 with --quick)")
    parser.add_argument("--only", nargs="+", choices=[*PARTS, "none"],
                        help="re-run only these parts, the others are read from their last JSON ('none': only"
                             " rebuild the document)")
    parser.add_argument("--output", help="default: BENCHMARKS.md; with --quick benchmarks/results-quick/BENCHMARKS.md")
    parser.add_argument("--jobs", type=int, default=2, help="quality runs at a time (default 2)")
    args = parser.parse_args(argv)
    args.seeds = args.seeds or (2 if args.quick else 10)
    args.problems_flag = ["branin", "--problem", "counting_ones_4"] if args.quick else ["all"]
    args.results = ROOT / "benchmarks" / ("results-quick" if args.quick else "results")
    args.output = args.output or str(args.results / "BENCHMARKS.md" if args.quick else ROOT / "BENCHMARKS.md")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    work = args.results / "report"
    work.mkdir(parents=True, exist_ok=True)
    for script in ("hpbandster_env.sh", "peers_env.sh", "deephyper_env.sh"):
        run_and_record(script, ["bash", str(HERE / script)], work)
    for name, command in parts(args, work).items():
        if not args.only or name in args.only:
            run_and_record(name, command, work)
    recorded = read_json(work / "parts.json") or {}
    failures = {name: part["failure"] for name, part in recorded.items() if part["failure"]}
    figures = Path(args.output).resolve().parent / "docs" / "benchmarks"
    context = {"command": "python -m benchmarks.report" + (" --quick" if args.quick else ""),
               "date": max(part["date"] for part in recorded.values()),
               "minutes": sum(part["seconds"] for part in recorded.values()) / 60,
               "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
               "failures": failures, "figures": os.path.relpath(figures, Path(args.output).resolve().parent),
               "jobs": args.jobs, "results": os.path.relpath(args.results, ROOT)}
    data = {name: read_json(work / f"{name}.json")
            for name in ("overhead", "hpbandster_reference", "throughput", "utilisation", "fill_tail", "memory",
                         "ablation", "heterogeneous", "heterogeneous_mpi", "asynchronous_quality", "continuation")}
    data["quality"] = sections.load_quality(args.results)
    data["versions"] = (work / "versions.txt").read_text() if (work / "versions.txt").exists() else ""
    written = write_document(Path(args.output), sections.document(context, data))
    if written == Path(args.output):  # else the kept document keeps its own figures too
        figures.mkdir(parents=True, exist_ok=True)
        for png in args.results.glob("*.png"):
            shutil.copy(png, figures / png.name)
    print(f"wrote {written}; its parts took {context['minutes']:.0f} min", file=sys.stderr)


def headings(text: str) -> list[str]:
    """The Markdown heading lines of ``text``, in order."""
    return [line.strip() for line in text.splitlines() if line.startswith("#")]


STAMP = re.compile(r"\n<!-- written by python -m benchmarks\.report, sha256 ([0-9a-f]{64}) -->\n\Z")


def stamped(text: str) -> str:
    """``text`` with a trailing comment holding its hash: a later report can tell whether the file
    is still as it wrote it."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{text}\n<!-- written by python -m benchmarks.report, sha256 {digest} -->\n"


def edited_by_hand(existing: str) -> bool:
    """Whether ``existing`` differs from what a report wrote (its stamp's hash), or has no stamp."""
    match = STAMP.search(existing)
    return match is None or hashlib.sha256(existing[: match.start()].encode()).hexdigest() != match.group(1)


def write_document(output: Path, text: str) -> Path:
    """Write ``text`` to ``output`` (stamped with its hash), unless ``output`` was changed since a
    report wrote it, or has no stamp (measurements written by hand into BENCHMARKS.md, in a section
    of their own or inside one the report makes): then beside it, as ``<stem>.report.md``, with a
    warning naming the sections the report does not make, and the figures in ``docs/benchmarks``
    are not replaced. Returns the path written."""
    if output.exists() and edited_by_hand(existing := output.read_text()):
        made = set(headings(text))
        lost = [heading for heading in headings(existing) if heading not in made]
        beside = output.with_name(output.stem + ".report.md")
        beside.write_text(stamped(text))
        own = f"{len(lost)} sections that the report does not make ({'; '.join(lost[:5])}" \
              f"{' ...' if len(lost) > 5 else ''})" if lost else "text that the report did not write"
        print(f"warning: {output} has {own}, which it would lose; wrote {beside} instead and left the figures in "
              "docs/benchmarks as they were: merge by hand, or move that text out (or the file away) and run again",
              file=sys.stderr)
        return beside
    output.write_text(stamped(text))
    return output


if __name__ == "__main__":
    main(sys.argv[1:])
