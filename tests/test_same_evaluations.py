"""The same seeded runs give the same evaluations, journals, HpBandSter files and reports as they
did before the journal's records got one definition and one fold (issue 19): see
``tests/scripts/seeded_runs.py`` for the scenarios and how ``tests/data/seeded_runs.json`` was made."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mpi_launch import SCRIPTS, run_command

RECORDED = Path(__file__).parent / "data" / "seeded_runs.json"


@pytest.mark.processes  # the script runs in its own process, and starts the processes that crash or stop
def test_seeded_runs_evaluate_and_journal_what_they_did_before(tmp_path: Path) -> None:
    out = tmp_path / "digests.json"
    finished = run_command([sys.executable, str(SCRIPTS / "seeded_runs.py"), "--digests", str(out),
                            str(tmp_path / "runs")], timeout=280)
    assert finished.returncode == 0, finished.stderr[-3000:]
    recorded, now = json.loads(RECORDED.read_text()), json.loads(out.read_text())
    assert list(now) == list(recorded)
    differ = {name: {part for part in recorded[name]["digests"]
                     if recorded[name]["digests"][part] != now[name]["digests"].get(part)}
              for name in recorded}
    differ = {name: sorted(parts) for name, parts in differ.items() if parts}
    counts = {name: (now[name]["runs"], now[name]["failed"], now[name]["records"]) for name in differ}
    assert not differ, (f"these scenarios differ in these parts: {differ}; now (runs, failed, records) = "
                        f"{counts}; write the full form on both commits and compare (see seeded_runs.py)")
