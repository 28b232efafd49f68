"""The ask/tell core: brackets, promotion, overlapping brackets, seeding."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import ConfigSpace as CS
import numpy as np
import pytest

from mpibohb import BOHB, HyperBand, RandomSearch
from mpibohb.ask_tell import Optimizer
from mpibohb.brackets import Job
from mpibohb.samplers.random import RandomSampler
from mpibohb.scheduling import synchronous as synchronous_module
from mpibohb.scheduling.synchronous import EXACT_SUM_TERMS, FillTail, TailPlan, budget_of
from mpibohb.space import SearchSpace

LADDER = (9.0, 27.0, 81.0, 243.0)


def space(seed: int = 0) -> CS.ConfigurationSpace:
    cs = CS.ConfigurationSpace(seed=seed)
    cs.add([
        CS.UniformFloatHyperparameter("x", 0.0, 1.0),
        CS.UniformFloatHyperparameter("y", -1.0, 1.0),
        CS.CategoricalHyperparameter("c", ["a", "b"]),
    ])
    return cs


def loss_of(config: dict, budget: float) -> float:
    """Deterministic; lower budgets are biased upwards."""
    return (config["x"] - 0.2) ** 2 + config["y"] ** 2 + (0.1 if config["c"] == "b" else 0.0) + 1.0 / budget


def run_serially(optimizer: Optimizer, loss=loss_of) -> list[tuple[Job, float]]:
    """Ask and tell immediately, as a single worker does."""
    history = []
    while not optimizer.finished:
        job = optimizer.ask()
        assert job is not None, "one worker that always reports back never has to wait"
        value = loss(job.config, job.budget)
        optimizer.tell(job, value)
        history.append((job, value))
    assert optimizer.ask() is None
    assert optimizer.num_running == 0
    return history


def hyperband(n_iterations: int = 4, seed: int = 0) -> Optimizer:
    return HyperBand(configspace=space(), min_budget=9, max_budget=243, eta=3, seed=seed).make_optimizer(n_iterations)


def test_single_worker_hyperband_runs_the_table() -> None:
    history = run_serially(hyperband(4))
    budgets = Counter(job.budget for job, _ in history)
    assert dict(budgets) == {9.0: 27, 27.0: 21, 81.0: 13, 243.0: 8}
    assert all(job.budget in LADDER and type(job.budget) is float for job, _ in history)
    per_iteration = Counter(job.iteration for job, _ in history)
    assert dict(per_iteration) == {0: 27 + 9 + 3 + 1, 1: 12 + 4 + 1, 2: 6 + 2, 3: 4}
    # config ids are (iteration, 0, index), indices 0..n-1 for the n configs sampled in the bracket
    ids_by_iteration: dict[int, set[int]] = {}
    for job, _ in history:
        iteration, stage, index = job.config_id
        assert stage == 0
        ids_by_iteration.setdefault(iteration, set()).add(index)
    assert ids_by_iteration == {0: set(range(27)), 1: set(range(12)), 2: set(range(6)), 3: set(range(4))}


def test_one_config_per_id_and_budgets_increase_per_config() -> None:
    history = run_serially(hyperband(4))
    configs: dict[tuple, dict] = {}
    budgets: dict[tuple, list[float]] = {}
    for job, _ in history:
        assert configs.setdefault(job.config_id, job.config) == job.config
        budgets.setdefault(job.config_id, []).append(job.budget)
    for seen in budgets.values():
        assert seen == sorted(set(seen))
        assert all(LADDER.index(b) == LADDER.index(seen[0]) + k for k, b in enumerate(seen))


def test_successive_halving_promotes_the_best_by_loss() -> None:
    optimizer = hyperband(1)
    rng = np.random.default_rng(0)
    first_stage = [optimizer.ask() for _ in range(27)]
    assert all(job.budget == 9.0 for job in first_stage)
    assert optimizer.ask() is None  # the only bracket waits for its 27 results
    losses = rng.permutation(27).astype(float)
    for job, loss in zip(first_stage, losses):
        optimizer.tell(job, loss)
    second_stage = [optimizer.ask() for _ in range(9)]
    assert optimizer.ask() is None
    promoted = {job.config_id[2] for job in second_stage}
    assert promoted == {int(i) for i in np.argsort(losses)[:9]}
    assert all(job.budget == 27.0 for job in second_stage)
    for job in second_stage:  # the same configuration, now at the next budget
        assert job.config == first_stage[job.config_id[2]].config
    # at 27 the ranking is reversed: promotion uses the new losses only
    for job in second_stage:
        optimizer.tell(job, -losses[job.config_id[2]])
    third = {optimizer.ask().config_id[2] for _ in range(3)}
    assert third == set(sorted(promoted, key=lambda i: -losses[i])[:3])


def test_failed_runs_are_promoted_last() -> None:
    optimizer = hyperband(3)
    for _ in range(27 + 12):  # leave brackets 0 and 1 waiting
        optimizer.ask()
    third_bracket = [optimizer.ask() for _ in range(6)]
    assert {job.iteration for job in third_bracket} == {2}
    assert all(job.budget == 81.0 for job in third_bracket)
    outcomes = [math.inf, math.nan, 5.0, math.inf, 7.0, math.inf]
    for job, loss in zip(third_bracket, outcomes):
        optimizer.tell(job, loss)
    promoted = sorted(optimizer.ask().config_id[2] for _ in range(2))
    assert promoted == [2, 4]  # the two finite losses, ahead of inf and NaN

    optimizer = hyperband(3)
    for _ in range(27 + 12):
        optimizer.ask()
    third_bracket = [optimizer.ask() for _ in range(6)]
    for job, loss in zip(third_bracket, [math.inf, math.nan, math.inf, 3.0, math.inf, math.inf]):
        optimizer.tell(job, loss)
    promoted = [optimizer.ask().config_id[2] for _ in range(2)]
    assert promoted[0] == 3
    assert promoted[1] != 3  # then one of the failed ones: the bracket still runs to its end


def test_next_bracket_starts_when_all_open_brackets_wait() -> None:
    optimizer = hyperband(2)
    bracket_0 = [optimizer.ask() for _ in range(27)]
    assert {job.iteration for job in bracket_0} == {0}
    assert len(optimizer.schedule.brackets) == 1
    bracket_1 = [optimizer.ask() for _ in range(12)]
    assert {job.iteration for job in bracket_1} == {1}
    assert all(job.budget == 27.0 for job in bracket_1)
    assert optimizer.ask() is None  # both wait, n_iterations brackets are started
    assert len(optimizer.schedule.brackets) == 2
    assert optimizer.num_running == 39
    for job in bracket_0:
        optimizer.tell(job, loss_of(job.config, job.budget))
    job = optimizer.ask()
    assert job.iteration == 0 and job.budget == 27.0  # the older bracket goes first
    assert not optimizer.finished


def test_ask_returns_none_after_n_iterations_even_with_idle_workers() -> None:
    optimizer = RandomSearch(configspace=space(), min_budget=9, max_budget=243, eta=3, seed=0).make_optimizer(3)
    jobs = [optimizer.ask() for _ in range(12)]
    assert [job.config_id for job in jobs] == [(i, 0, j) for i in range(3) for j in range(4)]
    assert optimizer.ask() is None
    for job in jobs:
        optimizer.tell(job, 1.0)
    assert optimizer.finished
    assert optimizer.ask() is None


def test_tell_of_an_unknown_job_raises() -> None:
    optimizer = hyperband(1)
    job = optimizer.ask()
    with pytest.raises(ValueError, match="unknown job"):
        optimizer.tell(Job((5, 0, 0), job.config, 9.0), 1.0)
    with pytest.raises(ValueError):
        optimizer.tell(Job((0, 0, 17), job.config, 9.0), 1.0)  # never handed out
    with pytest.raises(ValueError):
        optimizer.tell(Job(job.config_id, job.config, 27.0), 1.0)  # wrong budget
    optimizer.tell(job, 1.0)
    with pytest.raises(ValueError):
        optimizer.tell(job, 1.0)  # told twice
    assert optimizer.num_running == 0


def test_n_iterations_is_validated() -> None:
    family = HyperBand(configspace=space(), min_budget=9, max_budget=243)
    for bad in (0, -1, 2.5, "3", True, None):
        with pytest.raises(ValueError, match="n_iterations"):
            family.make_optimizer(bad)  # type: ignore[arg-type]


def _bohb_history(seed: int, model: str) -> list[tuple]:
    optimizer = BOHB(configspace=space(), min_budget=9, max_budget=243, eta=3, seed=seed,
                     model=model).make_optimizer(4)
    return [(job.config_id, job.budget, job.config, job.config_info, loss) for job, loss in run_serially(optimizer)]


@pytest.mark.parametrize("model", ["hpbandster", "tpe"])
def test_seeded_bohb_runs_repeat_exactly(model: str) -> None:
    first = _bohb_history(seed=3, model=model)
    assert first == _bohb_history(seed=3, model=model)
    assert any(info["model_based_pick"] for *_, info, _ in first)  # the model was used
    other = _bohb_history(seed=4, model=model)
    assert [entry[2] for entry in other] != [entry[2] for entry in first]
    schedule = [(entry[0][0], entry[1]) for entry in first]
    assert [(entry[0][0], entry[1]) for entry in other] == schedule  # same brackets and budgets


@pytest.mark.parametrize("model", ["hpbandster", "tpe"])
def test_model_is_used_by_bohb_but_not_by_hyperband(model: str) -> None:
    bohb = BOHB(configspace=space(), min_budget=9, max_budget=243, seed=1, model=model).make_optimizer(4)
    hb = hyperband(4, seed=1)
    bohb_picks = [job.config_info["model_based_pick"] for job, _ in run_serially(bohb)]
    hb_picks = [job.config_info["model_based_pick"] for job, _ in run_serially(hb)]
    assert not any(hb_picks)
    assert sum(bohb_picks) >= 5


def test_finished_brackets_release_their_configurations() -> None:
    optimizer = hyperband(4)
    job = optimizer.ask()
    optimizer.tell(job, 1.0)
    assert len(optimizer.schedule.brackets[0].entries) > 0  # an open bracket keeps its entries
    run_serially(optimizer)
    assert all(bracket.finished and bracket.entries == [] for bracket in optimizer.schedule.brackets)


def run_with_workers(optimizer: Optimizer, workers: int) -> tuple[list[Job], float]:
    """Drive ``optimizer`` with ``workers`` virtual workers, each evaluation taking its budget in
    virtual time; return the jobs in hand-out order and the span."""
    import heapq

    optimizer.start_session(optimizer.n_iterations, workers)
    now, running, handed_out = 0.0, [], []
    while not optimizer.finished:
        job = optimizer.ask() if len(running) < workers else None
        if job is not None:
            handed_out.append(job)
            heapq.heappush(running, (now + job.budget, len(handed_out), job))
            continue
        now, _, job = heapq.heappop(running)
        optimizer.tell(job, loss_of(job.config, job.budget))
    return handed_out, now


def tail_hyperband(n_iterations: int, fill_tail: bool) -> Optimizer:
    return HyperBand(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=0,
                     fill_tail=fill_tail).make_optimizer(n_iterations)


def test_fill_tail_runs_the_same_evaluations_in_less_time_with_many_workers() -> None:
    default_jobs, default_span = run_with_workers(tail_hyperband(40, False), 32)
    tail_jobs, tail_span = run_with_workers(tail_hyperband(40, True), 32)
    assert Counter((j.iteration, j.budget) for j in tail_jobs) == Counter((j.iteration, j.budget) for j in default_jobs)
    assert len({(j.config_id, j.budget) for j in tail_jobs}) == len(tail_jobs)
    work = sum(job.budget for job in tail_jobs)
    # virtual time, not a clock: the schedule's own span (the default idles in its last brackets' stages)
    assert work / (32 * tail_span) > 0.9 > work / (32 * default_span)


def plan_work(plan) -> float:
    return sum(n * b for n, b in zip(plan.num_configs, plan.budgets))


def test_fill_tail_starts_every_remaining_bracket_once_the_budget_left_per_worker_is_one_chain() -> None:
    optimizer = tail_hyperband(40, True)
    plans = [optimizer.schedule.plan_of(i) for i in range(40)]
    left = [sum(plan_work(plan) for plan in plans)]  # budget not handed out yet
    asks = []  # per ask, before it: budget left per worker, longest chain not started, brackets started; then
    ask = optimizer.ask  # whether it started the tail and the brackets started after it

    def watched_ask():
        longest = max((sum(plan.budgets) for plan in plans[len(optimizer.schedule.brackets):]), default=0.0)
        before = (left[0] / 32, longest, len(optimizer.schedule.brackets), optimizer.schedule.tail_started)
        job = ask()
        asks.append((*before, optimizer.schedule.tail_started and not before[3], len(optimizer.schedule.brackets)))
        left[0] -= job.budget if job is not None else 0.0
        return job

    optimizer.ask = watched_ask
    jobs, _ = run_with_workers(optimizer, 32)
    assert left[0] == 0 and len(jobs) == 690
    trigger = next(i for i, a in enumerate(asks) if a[4])
    assert all(per_worker > longest for per_worker, longest, *_ in asks[:trigger]), "the tail started too early"
    per_worker, longest, started_before, _, _, started_after = asks[trigger]
    assert per_worker <= longest
    assert started_before < 40 and started_after == 40  # every remaining bracket at once
    assert started_before >= 30  # most brackets started by the rule: the tail is the last quarter or less


def test_fill_tail_hands_out_from_the_longest_chain_left_first_in_the_tail() -> None:
    optimizer = tail_hyperband(12, True)
    optimizer.start_session(12, 1000)  # the tail starts at the first ask: every bracket opens
    first = [optimizer.ask() for _ in range(27 + 27 + 27)]
    assert len(optimizer.schedule.brackets) == 12 and optimizer.schedule.tail_started
    # brackets 0, 4 and 8 (budgets 1, 3, 9, 27: the longest chain) give their first stages first, oldest first
    assert [job.iteration for job in first] == [0] * 27 + [4] * 27 + [8] * 27
    assert optimizer.ask().iteration == 1  # then the chain 3 + 9 + 27


def test_fill_tail_with_one_worker_changes_nothing() -> None:
    default_jobs, _ = run_with_workers(tail_hyperband(8, False), 1)
    tail_jobs, _ = run_with_workers(tail_hyperband(8, True), 1)
    assert [(j.config_id, j.budget, j.config) for j in tail_jobs] == [(j.config_id, j.budget, j.config)
                                                                     for j in default_jobs]


@pytest.mark.parametrize("asynchronous", [False, True])
def test_one_bracket_starts_every_configuration_at_the_smallest_budget(asynchronous: bool) -> None:
    """``brackets=1``: every iteration is Hyperband's most aggressive bracket, in either schedule,
    and the run evaluates what its plans say, each configuration once per budget."""
    optimizer = BOHB(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=0, brackets=1,
                     asynchronous=asynchronous).make_optimizer(6)
    jobs, _ = run_with_workers(optimizer, 8)
    first_budgets = {}
    for job in jobs:
        first_budgets.setdefault(job.config_id, job.budget)
    assert set(first_budgets.values()) == {1.0}
    assert Counter(job.budget for job in jobs) == {1.0: 6 * 27, 3.0: 6 * 9, 9.0: 6 * 3, 27.0: 6 * 1}
    assert len({(job.config_id, job.budget) for job in jobs}) == len(jobs)


@pytest.mark.parametrize("kind", ["fill_tail", "asynchronous"])
def test_the_tail_plans_the_budget_of_the_brackets_run(kind: str) -> None:
    """The tail rules plan from one cycle of plans: with 3 of 4 brackets the cycle is 3 long (a
    cycle of 4 would count the fourth bracket's budget in, from 5 iterations on)."""
    from mpibohb.bracket_plans import runs_per_budget

    optimizer = HyperBand(configspace=space(), min_budget=1, max_budget=27, eta=3, seed=0, brackets=3,
                          **{kind: True}).make_optimizer(5)
    optimizer.start_session(5, 8)
    optimizer.ask()
    planned = sum(budget * runs for budget, runs in runs_per_budget(5, 1, 27, 3, brackets=3).items())
    assert optimizer.schedule._tail.budget == planned == 108 * 3 + 99 * 2  # brackets s = 3, 2, 1, 3, 2


def test_brackets_is_kept_in_the_settings_and_refused_on_random_search() -> None:
    assert HyperBand(configspace=space(), min_budget=1, max_budget=27, brackets=2).settings()["brackets"] == 2
    assert BOHB(configspace=space(), min_budget=1, max_budget=27, brackets=4).settings()["brackets"] is None  # all
    with pytest.raises(ValueError, match="RandomSearch runs every configuration at max_budget and has no brackets"):
        RandomSearch(configspace=space(), brackets=1)
    with pytest.raises(ValueError, match="brackets=5: budgets 1 to 27 with eta 3 make 4 brackets"):
        BOHB(configspace=space(), min_budget=1, max_budget=27, brackets=5)


def test_fill_tail_must_be_a_boolean() -> None:
    with pytest.raises(ValueError, match="fill_tail must be True or False, got 'yes'"):
        HyperBand(configspace=space(), min_budget=1, max_budget=27, fill_tail="yes")


class OldTailPlan:
    """fill_tail's plan as mpibohb computed it before, over a list of every iteration's plan (the
    reference the new one, which takes one cycle of plans, must match to the last bit)."""

    def __init__(self, plan_of, period, iterations) -> None:
        self.plan_of = plan_of
        self.handed_out = 0.0
        self.plan_up_to(iterations)

    def plan_up_to(self, iterations: int) -> None:
        plans = [self.plan_of(i) for i in range(iterations)]
        self.budget = sum(n * b for plan in plans for n, b in zip(plan.num_configs, plan.budgets))
        self.longest = [0.0] * (iterations + 1)
        for i in range(iterations - 1, -1, -1):
            self.longest[i] = max(self.longest[i + 1], sum(plans[i].budgets))

    def longest_chain_from(self, started: int) -> float:
        return self.longest[started]

    def is_near(self, started: int, workers: int) -> bool:
        return (self.budget - self.handed_out) / workers <= self.longest[started]


LADDERS = [(1, 27, 3), (0.01, 1, 3), (9, 243, 3), (1e-3, 1, 2), (0.1, 10, 1.7), (1, 81, 3.5), (0.3, 1, 1.1)]


@pytest.mark.parametrize(("min_budget", "max_budget", "eta"), LADDERS)
def test_fill_tail_plans_what_it_planned_before_to_the_last_bit(min_budget, max_budget, eta) -> None:
    optimizer = HyperBand(configspace=space(), min_budget=min_budget, max_budget=max_budget, eta=eta,
                          fill_tail=True).make_optimizer(1)
    period = optimizer.schedule.plan_period
    for iterations in [*range(1, 3 * period + 3), 97, 1000]:
        plan_of = optimizer.schedule.plan_of
        old, new = OldTailPlan(plan_of, period, iterations), TailPlan(plan_of, period, iterations)
        assert new.budget == old.budget, iterations
        assert [new.longest_chain_from(i) for i in range(iterations + 1)] == old.longest, iterations


@pytest.mark.parametrize(("ladder", "workers", "n_iterations"), [
    ((0.01, 1, 3), 16, 30), ((1, 27, 3), 32, 40), ((1e-3, 1, 2), 64, 25), ((0.3, 1, 1.1), 64, 12)])
def test_fill_tail_hands_out_what_it_handed_out_before(monkeypatch, ladder, workers, n_iterations) -> None:
    def jobs():
        family = HyperBand(configspace=space(), min_budget=ladder[0], max_budget=ladder[1], eta=ladder[2], seed=3,
                           fill_tail=True)
        optimizer = family.make_optimizer(n_iterations)
        optimizer.start_session(n_iterations, workers)
        handed_out, _ = run_with_workers(optimizer, workers)
        return [(job.config_id, job.budget) for job in handed_out], optimizer.schedule.brackets_before_tail

    new = jobs()
    monkeypatch.setattr(synchronous_module, "TailPlan", OldTailPlan)
    assert new == jobs()
    assert new[1] is not None  # the tail started: the decision was made


@pytest.mark.timeout(60)
def test_fill_tail_hands_out_a_first_job_at_once_in_a_billion_iterations() -> None:
    optimizer = tail_hyperband(10**9, True)
    optimizer.start_session(10**9, 4)
    job = optimizer.ask()
    assert job is not None and job.config_id == (0, 0, 0) and not optimizer.schedule.tail_started
    optimizer.start_session(2 * 10**9, 4)  # a resume that extends the run plans as fast
    assert optimizer.ask() is not None


def test_the_budget_of_many_iterations_is_the_exact_sum_rounded_once() -> None:
    terms = [[0.1, 0.3, 1 / 3], [0.7], [1e-3, 2.5]]
    iterations = 3 * (EXACT_SUM_TERMS // 6) + 2  # just past the terms summed one by one: 2 of the next cycle's 3
    count = EXACT_SUM_TERMS // 6 * 6 + 3 + 1
    assert count > EXACT_SUM_TERMS
    expected = math.fsum(itertools.islice(itertools.cycle(itertools.chain.from_iterable(terms)), count))
    assert budget_of(terms, iterations) == expected
    assert budget_of(terms, 5) == sum([0.1, 0.3, 1 / 3, 0.7, 1e-3, 2.5, 0.1, 0.3, 1 / 3, 0.7])


def test_fill_tail_needs_the_period_of_the_plans() -> None:
    sampler = RandomSampler(SearchSpace(space()))
    with pytest.raises(ValueError, match="fill_tail needs the period of the bracket plans"):
        FillTail(sampler, lambda i: None, 4, 0)  # type: ignore[arg-type,return-value]
