"""The bookkeeping behind taking a failing worker rank out of service (no MPI needed)."""

from __future__ import annotations

from mpibohb.brackets import Job
from mpibohb.evaluation import Outcome
from mpibohb.health import RankHealth, rank_to_run_again


def job(index: int) -> Job:
    return Job((0, 0, index), {"x": index}, 1.0)


OK = Outcome(0.5, None, None, 0, 1, "w")
FAIL = Outcome(None, None, "OSError on rank 2@n: No space left on device\ntraceback", 0, 1, "w")


def test_a_failure_is_held_until_its_ranks_next_result_decides():
    health = RankHealth([1, 2], limit=3)
    assert health.observe(2, job(0), FAIL).record == []
    assert health.holding == 1
    verdict = health.observe(2, job(1), OK)  # the rank works: the failure was the configuration's
    assert [(j.config_id, o.loss) for j, o in verdict.record] == [((0, 0, 0), None), ((0, 0, 1), 0.5)]
    assert health.holding == 0 and health.in_service == {1, 2}


def test_a_rank_that_keeps_failing_while_others_succeed_is_retired_and_its_jobs_run_again():
    health = RankHealth([1, 2, 3], limit=3)
    health.observe(2, job(0), FAIL)
    health.observe(1, job(1), OK)
    health.observe(2, job(2), FAIL)
    verdict = health.observe(2, job(3), FAIL)
    [(rank, why)] = verdict.retired
    assert rank == 2 and "No space left" in why
    assert [(j.config_id, avoid) for j, _, avoid in verdict.again] == [((0, 0, 0), 2), ((0, 0, 2), 2), ((0, 0, 3), 2)]
    assert health.in_service == {1, 3}
    # a job that runs again is recorded with its next outcome, whatever it is
    assert health.observe(1, job(0), FAIL).record[0][1] is FAIL


def test_when_every_rank_fails_nobody_is_retired():
    health = RankHealth([1, 2], limit=2)
    for index in range(6):
        assert health.observe(1 + index % 2, job(index), FAIL).retired == []
    assert health.in_service == {1, 2}
    settled = health.settle()  # nothing else can run: ranks that never worked get their jobs run again
    assert settled.record == [] and len(settled.again) == 6


def test_settling_records_a_single_failure_of_a_rank_that_worked():
    health = RankHealth([1, 2], limit=3)
    health.observe(1, job(0), OK)
    health.observe(1, job(1), FAIL)
    health.observe(2, job(2), FAIL)
    settled = health.settle()
    assert [j.config_id for j, _ in settled.record] == [(0, 0, 1)]
    assert [j.config_id for j, _, _ in settled.again] == [(0, 0, 2)]


def test_a_retired_rank_whose_jobs_fail_elsewhere_too_comes_back():
    health = RankHealth([1, 2, 3], limit=3)
    health.observe(2, job(0), FAIL)
    health.observe(1, job(9), OK)  # another rank succeeds while rank 2's streak runs
    health.observe(2, job(1), FAIL)
    assert health.observe(2, job(2), FAIL).retired
    assert health.observe(1, job(0), FAIL).reinstated is None  # 1 of 3 failed again: not yet most
    assert health.observe(3, job(1), FAIL).reinstated == 2  # 2 of 3: they were the configurations' failures
    assert 2 in health.in_service and 2 not in health.retired


def test_a_fast_failing_rank_is_retired_by_the_first_success_elsewhere():
    # rank 2 fails at once, again and again, before the other ranks' first results arrive
    health = RankHealth([1, 2, 3], limit=3)
    for index in range(5):
        assert health.observe(2, job(index), FAIL).retired == []
    verdict = health.observe(1, job(9), OK)
    assert [rank for rank, _ in verdict.retired] == [2] and len(verdict.again) == 5
    assert [j.config_id for j, _ in verdict.record] == [(0, 0, 9)]


def test_without_a_limit_or_with_one_rank_failures_are_recorded_at_once():
    assert RankHealth([1, 2], limit=None).observe(1, job(0), FAIL).record[0][1] is FAIL
    assert RankHealth([1], limit=3).observe(1, job(0), FAIL).record[0][1] is FAIL


def test_a_lost_rank_leaves_service_and_its_held_failures_run_again():
    health = RankHealth([1, 2], limit=3)
    health.observe(2, job(0), FAIL)
    again = health.lost(2, "no answer")
    assert [(j.config_id, avoid) for j, _, avoid in again] == [((0, 0, 0), 2)]
    assert health.in_service == {1} and health.retired[2] == "no answer"


def test_a_rank_whose_failures_were_settled_is_still_retired_by_a_later_success_elsewhere():
    # rank 2 fails every job it can get before any other rank answers; nothing else can run, so its
    # failures run again elsewhere; the first success after that still convicts it
    health = RankHealth([1, 2, 3], limit=3)
    for index in range(3):
        health.observe(2, job(index), FAIL)
    assert len(health.settle().again) == 3 and health.holding == 0
    verdict = health.observe(1, job(0), OK)
    [(rank, why)] = verdict.retired
    assert rank == 2 and "last 3 evaluations failed" in why and verdict.again == []
    assert health.in_service == {1, 3}


def test_a_success_on_the_rank_itself_clears_its_settled_failures():
    health = RankHealth([1, 2, 3], limit=3)
    for index in range(3):
        health.observe(2, job(index), FAIL)
    health.settle()
    health.observe(2, job(3), OK)
    assert health.observe(1, job(4), OK).retired == [] and health.in_service == {1, 2, 3}


def test_failures_recorded_as_the_configurations_do_not_convict_a_rank():
    # rank 1 worked, then fails one configuration per stage; each is settled as the configuration's
    health = RankHealth([1, 2, 3], limit=3)
    health.observe(1, job(0), OK)
    for index in (1, 2, 3):
        health.observe(1, job(index), FAIL)
        assert [j.config_id for j, _ in health.settle().record] == [(0, 0, index)]
        assert health.observe(2, job(10 + index), OK).retired == []
    assert health.in_service == {1, 2, 3}


def test_failures_run_again_that_fail_elsewhere_too_do_not_convict_the_rank_they_left():
    health = RankHealth([1, 2, 3], limit=3)
    for index in range(3):
        health.observe(2, job(index), FAIL)
    again = health.settle().again
    for (failed_job, _, _), rank in zip(again, (1, 3, 1)):  # the configurations fail on other ranks too
        assert health.observe(rank, failed_job, FAIL).record[0][0] is failed_job
    assert health.observe(3, job(9), OK).retired == [] and 2 in health.in_service


def test_where_configurations_often_fail_a_rank_needs_a_longer_streak_to_be_retired():
    """Half the configurations fail on rank 1: three failures in a row on rank 2 are then a 1 in 8
    chance for a healthy rank, so they do not retire it; a streak as rare as 1 in 100 does."""
    health = RankHealth([1, 2, 3], limit=3)
    for index in range(20):
        health.observe(1, job(index), OK if index % 2 else FAIL)
    streak = []
    for index in range(10):
        streak.append(health.observe(2, job(100 + index), FAIL).retired)
        health.observe(1, job(200 + 2 * index), OK)  # a success elsewhere, and a failure: still half
        health.observe(1, job(201 + 2 * index), FAIL)
    first = next(index for index, retired in enumerate(streak) if retired)
    # rank 1's failure rate with the prior, (10 + k + 0.5) / (20 + 2k + 5) after k pairs, is about 0.45:
    # 0.45 ** 5 > 0.01 > 0.45 ** 6
    assert first + 1 == 6, streak
    assert health.in_service == {1, 3}


def test_where_configurations_rarely_fail_three_in_a_row_retire_a_rank():
    health = RankHealth([1, 2, 3], limit=3)
    for index in range(20):
        health.observe(1, job(index), OK)
    retired = [health.observe(2, job(100 + index), FAIL).retired or health.observe(1, job(200 + index), OK).retired
               for index in range(3)]
    assert [bool(r) for r in retired] == [False, False, True]


def test_a_failure_on_a_rank_retired_while_it_ran_runs_again_elsewhere_at_once():
    # held, it waited for the retired rank's next result, which never came: the run could hang
    health = RankHealth([1, 2, 3], limit=3)
    for index in range(3):
        health.observe(3, job(index), FAIL)  # rank 3 also runs job 9 meanwhile
    assert health.observe(1, job(3), OK).retired[0][0] == 3
    verdict = health.observe(3, job(9), FAIL)
    assert verdict.record == [] and [(j.config_id, avoid) for j, _, avoid in verdict.again] == [((0, 0, 9), 3)]
    assert health.holding == 0
    assert health.observe(1, job(9), FAIL).record[0][1] is FAIL  # its next outcome is recorded


def test_a_lost_rank_is_not_brought_back_by_its_failed_jobs_failing_elsewhere():
    # it was put back in service though it could never run a job again; "no rank left" never came
    health = RankHealth([1, 2, 3], limit=3)
    for index in range(3):
        health.observe(3, job(index), FAIL)
    retired = health.observe(1, job(3), OK)
    health.lost(3, "no answer")
    reinstated = [health.observe(1, again, FAIL).reinstated for again, _, _ in retired.again]
    assert reinstated == [None, None, None] and health.in_service == {1, 2}


NODES = {1: "a", 2: "a", 3: "b", 4: "b"}  # two ranks per node, as with one rank per GPU


def test_a_job_runs_again_on_another_node_when_one_is_free():
    assert rank_to_run_again([2, 3], 1, {1, 2, 3, 4}, NODES.get) == 3
    assert rank_to_run_again([2], 1, {1, 2, 3, 4}, NODES.get) == 2  # none free there: another rank
    assert rank_to_run_again([1], 1, {1, 2}, NODES.get) is None  # rank 2 will be free
    assert rank_to_run_again([1], 1, {1}, NODES.get) == 1  # the only rank left


def test_a_job_that_filled_a_nodes_disk_waits_for_another_node():
    # rank 2 shares rank 1's full disk: there the job would fill it again, and the run would stop
    assert rank_to_run_again([2], 1, {1, 2, 3, 4}, NODES.get, {"a"}) is None
    assert rank_to_run_again([2, 4], 1, {1, 2, 3, 4}, NODES.get, {"a"}) == 4
    assert rank_to_run_again([2], 1, {1, 2}, NODES.get, {"a"}) == 2  # one node: its other rank
    one_host = {1: "?", 2: "?"}.get  # hosts unknown: every rank counts as one node's
    assert rank_to_run_again([2], 1, {1, 2}, one_host, {"?"}) == 2
