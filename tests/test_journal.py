"""The journal's records (one definition) and the fold every reader uses, on hand-made records
and on a journal written by mpibohb 0.1.0 (``tests/data/run_v1``), which must still resume."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import ConfigSpace as CS
import pytest

from mpibohb import BOHB, load_result
from mpibohb.brackets import Job
from mpibohb.evaluation import Outcome
from mpibohb.journal import (
    RECORDS,
    JournalError,
    Kind,
    RunDirectoryError,
    dropped_record,
    dumps,
    end_record,
    fold,
    header_record,
    interrupted_record,
    job_record,
    kind_of,
    lost_record,
    read_journal,
    reinstated_record,
    result_record,
    retired_record,
    retry_record,
    session_record,
    stop_record,
)
from mpibohb.replay import PendingJob, name_interrupted_jobs

sys.path.insert(0, str(Path(__file__).parent / "data"))
from make_run_v1 import evaluate  # noqa: E402  the worker that made the fixture

FIXTURE_V1 = Path(__file__).parent / "data" / "run_v1"
A, B, C = (Job((0, 0, i), {"x": i / 10}, 1.0, {"model_based_pick": False}) for i in range(3))


def ok(job: Job, loss: float = 0.5, when: float = 5.0) -> dict:
    return result_record(job, Outcome(loss, None, None, when, when + 1, "w1"), None)


def header() -> dict:
    return header_record({"seed": 1, "n_workers": 1}, "{}", [], created=1.0)


def session(executor: str = "SerialExecutor", started: float = 2.0, n_workers: int = 1) -> dict:
    return session_record(3, n_workers, executor, started=started)


def handed(job: Job, when: float = 3.0, worker: str = "w1", resubmit: bool = False) -> dict:
    return job_record(job, worker, resubmit=resubmit, submitted=when)


# ---------------------------------------------------------------- the records


def test_the_kinds_keep_the_strings_old_journals_hold() -> None:
    assert [kind.value for kind in Kind] == ["header", "session", "job", "resubmit", "result", "stop", "end",
                                              "retry", "interrupted", "retired", "reinstated", "lost", "dropped"]
    assert set(RECORDS) == set(Kind)
    assert kind_of({"type": "result"}) is Kind.RESULT and kind_of({"type": "later"}) is None


def test_each_constructor_writes_the_fields_of_its_kind_in_the_table() -> None:
    records = [header(), session(), handed(A), handed(A, resubmit=True), ok(A), stop_record(None, reason="full"),
               end_record(), retry_record(A, "w1", "ValueError"), interrupted_record(A, "w1", 15),
               retired_record("w1", "why"), reinstated_record("w1"), lost_record("w1", "ended", A),
               dropped_record(A, "not needed")]
    assert [kind_of(record) for record in records] == list(Kind)
    for record in records:
        kind = kind_of(record)
        assert list(record) == ["type", *RECORDS[kind].written], kind
        assert set(RECORDS[kind].required) <= set(RECORDS[kind].written)
        assert json.loads(dumps(record))["type"] == kind.value  # plain strings in the JSON
    assert list(lost_record("w1", "ended while idle")) == ["type", "worker", "reason", "time"]
    assert list(stop_record(15)) == ["type", "signal", "time"]  # a signal's stop has no reason


# ---------------------------------------------------------------- the fold


def test_fold_pairs_results_with_hand_outs_and_keeps_open_jobs_in_hand_out_order() -> None:
    state = fold([header(), session(), handed(A, 3.0), handed(B, 4.0, "w2"), handed(C, 4.5), ok(B),
                  session(started=9.0), handed(C, 10.0, "w3", resubmit=True), handed(A, 11.0, resubmit=True)])
    assert list(state.open_jobs) == [((0, 0, 0), 1.0), ((0, 0, 2), 1.0)]
    assert [(record["config_id"], submitted) for record, submitted in state.results] == [([0, 0, 1], 4.0)]
    assert state.handed_out[((0, 0, 2), 1.0)].submitted == 10.0 and state.handed_out[((0, 0, 2), 1.0)].worker == "w3"
    assert list(state.configs) == [(0, 0, 0), (0, 0, 1), (0, 0, 2)]
    assert state.state == "running" and len(state.sessions) == 2


def test_a_dropped_job_is_no_longer_open_and_its_session_death_is_not_counted() -> None:
    seen = []
    state = fold([header(), session(), handed(A), handed(B), session(), dropped_record(A, "not needed"),
                  handed(B, resubmit=True), session()],
                 on_dropped=lambda record, opened: seen.append((record["config_id"], opened is not None)))
    assert list(state.open_jobs) == [((0, 0, 1), 1.0)] and state.open_jobs[((0, 0, 1), 1.0)].deaths == 2
    assert seen == [([0, 0, 0], True)] and not state.results


def test_deaths_count_single_process_sessions_that_ended_without_a_stop() -> None:
    # session 1 dies while A and B run; session 2 stops cleanly while A runs; session 3 dies while A runs
    state = fold([header(), session(), handed(A), handed(B), session(), handed(A, resubmit=True),
                  stop_record(15), session(), handed(A, resubmit=True)])
    assert {key[0]: job.deaths for key, job in state.open_jobs.items()} == {(0, 0, 0): 2, (0, 0, 1): 1}


def test_under_mpi_only_lost_records_count_against_a_job() -> None:
    state = fold([header(), session("MPIExecutor"), handed(A), handed(B), lost_record("w1", "rank 1 ended", A),
                  lost_record("w2", "rank 2 ended while idle"), session("MPIExecutor"), handed(A, resubmit=True)])
    a, b = state.open_jobs.values()
    assert (a.deaths, a.evidence, b.deaths, b.evidence) == (0, ["rank 1 ended"], 0, [])
    assert state.lost == []  # the lost records were in the session before the latest


def test_under_mpi_kills_of_the_job_are_counted_apart_and_named_never_blamed(caplog) -> None:
    # three MPI sessions die without a record while A runs (B runs in the first only): a compute
    # calling MPI_Abort looks so, as does a kill from outside; the resume names A and blames nothing
    state = fold([header(), session("MPIExecutor"), handed(A), handed(B), session("MPIExecutor"),
                  handed(A, resubmit=True), session("MPIExecutor"), handed(A, resubmit=True)])
    a, b = state.open_jobs.values()
    assert (a.deaths, a.kills, b.deaths, b.kills) == (0, 3, 0, 1)
    pending = [PendingJob(A, kills=3), PendingJob(B, kills=1)]
    with caplog.at_level(logging.WARNING, logger="mpibohb"):
        name_interrupted_jobs(pending, state)
    named = [r.getMessage() for r in caplog.records if "without a stop record, 3 times" in r.getMessage()]
    assert len(named) == 1 and named[0].startswith("(0, 0, 0) at budget 1 was running when the MPI job ended")
    assert "MPI_Abort" in named[0]


def test_a_death_after_another_ranks_death_is_no_evidence() -> None:
    # rank 2's death came after rank 1's: the launcher's kill of the others may explain it
    state = fold([header(), session("MPIExecutor"), handed(A), handed(B), lost_record("w1", "rank 1 ended", A),
                  lost_record("w2", "rank 2 ended after", B, blames_job=False)])
    a, b = state.open_jobs.values()
    assert (a.evidence, b.evidence) == (["rank 1 ended"], [])
    assert [record["blames_job"] for record in state.lost] == [True, False]


def test_stop_end_and_spans() -> None:
    records = [header(), session(), handed(A, 3.0), ok(A, when=4.0), stop_record(15, when=6.0),
               session(started=20.0), handed(B, 21.0), session(started=30.0), handed(C, 31.0), end_record(40.0)]
    assert fold(records[:5]).state == "stopped" and fold(records[:5]).ending["signal"] == 15
    assert fold(records[:7]).state == "running"
    state = fold(records)
    assert state.state == "finished" and state.last_time == 40.0
    assert state.spans == [(1.0, 6.0), (20.0, 21.0), (30.0, 40.0)]  # the second session was killed after 21.0
    assert fold(records[:8]).session_spans(open_end=50.0)[-1] == (30.0, 50.0)


def test_a_result_of_a_job_not_open_is_kept_and_told_as_such() -> None:
    seen = []
    state = fold([header(), session(), ok(A)], on_result=lambda record, opened: seen.append(opened))
    assert seen == [None] and [submitted for _, submitted in state.results] == [5.0]  # when it started


def test_a_job_handed_out_again_after_its_result_is_open_again() -> None:
    """Never written by mpibohb; read one way everywhere, as the writer of results.json does."""
    state = fold([header(), session(), handed(A, 3.0), ok(A, when=5.0), handed(A, 7.0, resubmit=True),
                  ok(A, when=8.0)])
    assert [submitted for _, submitted in state.results] == [3.0, 7.0] and not state.open_jobs
    assert list(fold([header(), session(), handed(A), ok(A), handed(A, resubmit=True)]).open_jobs) == [
        (A.config_id, 1.0)]


def test_a_resume_refuses_a_journal_that_hands_out_a_finished_job_again(tmp_path: Path) -> None:
    run_dir = shutil.copytree(FIXTURE_V1, tmp_path / "v1")
    records = read_journal(run_dir)
    finished = next(record for record in records if record["type"] == "job")
    with open(run_dir / "journal.jsonl", "a") as journal:
        journal.write(json.dumps(dict(finished, type="resubmit")) + "\n")
    with pytest.raises(JournalError, match=r"resubmit for \[0, 0, 0\] at budget 1.0 that was never handed out, or "
                                           "had finished before"):
        v1_optimizer(run_dir).run(n_iterations=4, worker=evaluate, resume=True)


def test_a_journal_that_does_not_replay_names_what_differs(tmp_path: Path) -> None:
    """An edited configuration keeps its config id: the error names the hyperparameter, not two
    equal-looking ids. Nothing is written."""
    run_dir = shutil.copytree(FIXTURE_V1, tmp_path / "v1")
    lines = (run_dir / "journal.jsonl").read_text().splitlines()
    third_job = [i for i, line in enumerate(lines) if json.loads(line)["type"] == "job"][2]
    edited = json.loads(lines[third_job])
    edited["config"]["x"] = 0.5
    lines[third_job] = json.dumps(edited)
    (run_dir / "journal.jsonl").write_text("\n".join(lines) + "\n")
    before = read_journal(run_dir)
    with pytest.raises(JournalError, match=r"hands out \[0, 0, 2\] at budget 1.0, this optimizer asks otherwise "
                                           r"\(the configuration has x=\S+ instead of 0.5\); the run was made"):
        v1_optimizer(run_dir).run(n_iterations=4, worker=evaluate, resume=True)
    assert read_journal(run_dir) == before


def test_hooks_run_in_journal_order_and_the_job_hook_gives_the_handle() -> None:
    calls = []
    state = fold([header(), session(), handed(A), handed(B), ok(A)],
                 on_session=lambda record: calls.append("session"),
                 on_job=lambda record: calls.append(f"job {record['config_id']}") or record["config_id"],
                 on_result=lambda record, opened: calls.append(f"result {opened.handle}"))
    assert calls == ["session", "job [0, 0, 0]", "job [0, 0, 1]", "result [0, 0, 0]"]
    assert [opened.handle for opened in state.open_jobs.values()] == [[0, 0, 1]]


def test_a_record_without_a_required_field_is_refused_by_number() -> None:
    broken = ok(A)
    del broken["budget"]
    with pytest.raises(JournalError, match=r"record 4 \(result\) lacks budget"):
        fold([header(), session(), handed(A), broken])
    with pytest.raises(JournalError, match="not a header"):
        fold([session()])


@pytest.mark.parametrize("field, value", [("loss", "abc"), ("loss", True), ("budget", None), ("budget", "1")])
def test_a_result_whose_loss_or_budget_is_not_a_number_is_refused_by_number(field, value) -> None:
    broken = dict(ok(A), **{field: value})
    with pytest.raises(JournalError, match=rf"record 4 \(result\) has a {field} that is not a number: {value!r}"):
        fold([header(), session(), handed(A), broken])
    fold([header(), session(), handed(A), dict(ok(A), loss=None)])  # a failed run


def test_unknown_kinds_and_old_records_without_the_newer_fields_are_read() -> None:
    old_session = {"type": "session", "n_iterations": 3, "started": 2.0}  # before n_workers and executor
    old_job = {key: value for key, value in handed(A).items() if key != "worker"}
    state = fold([header(), old_session, {"type": "from_the_future", "x": 1}, old_job])
    assert state.handed_out[((0, 0, 0), 1.0)].worker == "" and state.open_jobs[((0, 0, 0), 1.0)].deaths == 1


# ---------------------------------------------------------------- a journal of mpibohb 0.1.0


def v1_optimizer(run_dir: Path, **kwargs: Any) -> BOHB:
    """The optimizer of the ``run_v1`` fixture, made when HpBandSter's model was BOHB's default."""
    space = CS.ConfigurationSpace({"x": (0.0, 1.0), "c": ["a", "b"]})
    return BOHB(space, min_budget=1, max_budget=9, eta=3, seed=8, run_dir=run_dir, **{"model": "hpbandster", **kwargs})


def test_a_run_of_the_old_default_model_is_refused_by_the_new_default_with_a_hint(tmp_path: Path) -> None:
    old = shutil.copytree(FIXTURE_V1, tmp_path / "v1")
    with pytest.raises(RunDirectoryError, match=r"its settings differ \(model: 'hpbandster' -> 'tpe', .*\); BOHB's "
                                                r"default model is 'tpe' since .*pass BOHB\(model='hpbandster'\)"):
        BOHB(CS.ConfigurationSpace({"x": (0.0, 1.0), "c": ["a", "b"]}), min_budget=1, max_budget=9, eta=3, seed=8,
             run_dir=old).run(n_iterations=4, worker=evaluate, resume=True)
    assert read_journal(old) == read_journal(FIXTURE_V1)  # nothing written


def test_a_v1_journal_resumes_like_a_run_that_was_never_interrupted(tmp_path: Path) -> None:
    """``run_v1`` (3 iterations, finished) extended to 4: the replay must rebuild the brackets, the
    model and the random stream, so the new iteration samples what an uninterrupted run of 4 does."""
    old = shutil.copytree(FIXTURE_V1, tmp_path / "v1")
    before = load_result(old)
    resumed = v1_optimizer(old).run(n_iterations=4, worker=evaluate, resume=True)
    fresh = v1_optimizer(tmp_path / "fresh").run(n_iterations=4, worker=evaluate)

    def key(result):
        return [(r.config_id, r.budget, r.loss, r.error_logs is None) for r in result.get_all_runs()]

    assert len(before.runs) == 22 and key(resumed)[:22] == key(before)
    assert key(resumed) == key(fresh) and len(resumed.runs) > 22
    assert {cid: entry["config"] for cid, entry in resumed.id2config.items()} == \
        {cid: entry["config"] for cid, entry in fresh.id2config.items()}
    kinds = [record["type"] for record in read_journal(old)]
    assert kinds[:2] == ["header", "session"] and kinds.count("session") == 2 and kinds[-1] == "end"
    assert key(load_result(old)) == key(resumed)
    results_json = [json.loads(line) for line in (old / "results.json").read_text().splitlines()]
    assert [(tuple(line[0]), line[1]) for line in results_json] == [(r.config_id, r.budget) for r in resumed.runs]
