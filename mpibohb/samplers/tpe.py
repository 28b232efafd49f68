"""BOHB with a TPE-style density-ratio model: ``BOHB(..., model="tpe")``.

The structure is BOHB's (Falkner et al., ICML 2018): Hyperband's brackets ask for configurations;
a "good" and a "bad" density are fitted to the results, candidates are drawn from the good one
and the one with the largest ratio good / bad that the space allows is proposed. What differs is
the density, along the lines of Optuna's TPE sampler and of Watanabe's ablation ("Tree-Structured
Parzen Estimator: Understanding Its Algorithm Components and Their Roles for Better Empirical
Performance", 2023); each difference is a setting, so ``benchmarks/ablation.py`` can measure it:

* ``bandwidth_rule="neighbours"``: each point gets its own bandwidth per continuous dimension, the
  larger gap to its neighbours, clipped below by the "magic clip" ``1 / min(100, n + 2)``; a
  discrete dimension gets Optuna's categorical smoothing, which shrinks as points accumulate
  (``"normal_reference"``: statsmodels' rule, one bandwidth per dimension, as HpBandSter);
* ``prior_weight``: a wide component (centre 0.5, bandwidth 1; uniform on discrete dimensions)
  with that weight against 1 per point;
* ``truncated``: continuous kernels are renormalised on the unit cube, so points near a bound are
  not penalised for the mass their kernels lose outside it;
* ``budget_rule="promoted"``: one model from every configuration evaluated so far, each at the
  largest budget it reached; the configurations whose loss there is within the best
  ``promotion_fraction`` (BOHB: ``1 / eta``) of all results at that budget, the ones successive
  halving would promote, rank first, by budget and then loss; the others after them, in the same
  order. ``"all"``: the same without that test, ranked by budget first and loss second (what
  Optuna's TPE does with a pruner's trials), so that a poor result at a large budget ranks above
  the best at a smaller one, and a bracket that starts at the largest budget puts poor
  configurations in the good set; ``"largest"``: BOHB's model of the largest budget with enough results;
  ``"stopped"``: that model, with every configuration whose largest budget is smaller added to
  the bad set; ``"quantile"``: one model of every configuration, ranked by the quantile of its
  loss among all results at its largest budget (larger budgets first among equal quantiles), so
  that the better of the few results a budget has early on (from a random start on many workers)
  does not rank above the best of a larger field;
* ``running_budget_rule="quantile"``: the rule while configurations it proposed are running (on
  several workers; serially nothing is running at a proposal and the runs are the same): there
  the first few results at a large budget come from the random start, and the promoted ranking
  put them first for long. Measured with 32 simulated workers, 100 seeds: better on six of the
  eight problems that train no model (Hartmann 6 0.077 against 0.122, counting ones N = 32 0.187
  against 0.236), equal on Branin; on Hartmann 3 worse in the mean by one run of the hundred
  that ended in the other basin (medians 0.0030 and 0.0033). Serially the quantile ranking was
  worse on counting ones N = 8, 16 and 32 (docs/benchmarks/experiments.md, "Ranked by quantile
  while configurations run"). It overrides ``budget_rule`` while configurations run; ``None`` keeps
  ``budget_rule`` throughout;
* ``running_trend_share=0.25``: while configurations it proposed are running (never serially), that
  share of the candidates is moved by the good set's trend, the mean of its best quarter less the
  mean of all of it, per continuous dimension (``good_set_trend``), before the ratio ranks them:
  on many workers the good set follows a slope more slowly than its spread shrinks (Hartmann 3 on
  32 workers, docs/benchmarks/experiments.md), and the moved candidates reach ahead of it. Measured
  with 32 simulated workers, 100 seeds, against no moved candidates: see
  docs/benchmarks/experiments.md, "The good set's trend while configurations run" (a share of 0.5
  was worse on Branin);
* ``multivariate=False``: candidates are drawn from, and ranked by, the product of each density's
  one-dimensional marginals (``parzen.ProductOfMarginals``), as Optuna's TPE does by default, so the
  ratio is a product of one ratio per dimension; ``True``: the joint densities, as BOHB's KDE. Near
  the good points the joint bad density is flat (its kernels are narrow, the prior component
  dominates), the joint ratio is the good density alone, and a categorical level missing from a small
  good set is never proposed again. Runs on 32 workers, whose first ~40 configurations are random,
  locked levels out that way; per dimension the bad points' share of a level counts and the lock
  opens. Serially the product was better on four of the eight problems that train no model, equal
  on two and worse on two (counting ones N = 4, Hartmann 3), and better than HpBandSter's model on
  all eight (BENCHMARKS.md, "The model, one change at a time");
* ``split="tpe"``: the good set is the best ``ceil(top_n_percent % of n)`` points, at most
  ``max_good_points`` (100; Optuna caps it at 25, which from 250 configurations on made Branin
  worse, serially and on 32 workers, and with the constant liar also Hartmann 6 in 20 dimensions;
  100 binds from 1,000 configurations on and keeps a proposal at 10,000 observations within twice
  the cost of HpBandSter's model: 0.57 against 0.34 ms, uncapped 0.78; docs/benchmarks/experiments.md,
  "The constant liar and a larger good set"), the bad set
  all the rest; ``"hpbandster"``: HpBandSter's sizes, each set
  at least ``min_points_in_model``;
* ``constant_liar=True``: while configurations it proposed are running, the bad density that ranks
  the candidates has them as bad points too (Optuna's TPE does so with ``constant_liar=True``), so
  that on many workers the proposals made before any of them returns do not crowd where the first
  went; serially nothing is running at a proposal and the runs are the same either way;
* 24 candidates (``num_samples``; HpBandSter: 64), drawn with the bandwidths widened 2x
  (``bandwidth_factor``; HpBandSter: 3x), and no configurations at random once the model exists
  (``random_fraction``; HpBandSter: 1/3): the prior component and the widened draws explore;
* unless small budgets mislead: with ``tau`` the agreement of successive budgets' rankings
  (Kendall's tau over the configurations promoted so far, ``agreement.py``, once
  ``min_agreement_pairs`` pairs exist), while tau is below ``trusted_agreement`` a share
  ``misled_random_fraction`` of the configurations is drawn at random: when small budgets rank
  configurations otherwise than large ones, the model learnt from them keeps away from regions
  that win at the largest budget, and only random draws find them (measured: on the SVM and
  gradient boosting benchmarks tau is near 0, on the others mostly above 0.3, where the rule
  draws nothing; BENCHMARKS.md); and the model is fitted by ``misled_budget_rule`` (``"largest"``:
  BOHB's model of the largest budget with enough results, which small budgets' rankings do not
  enter) instead of ``budget_rule`` (``None``: no change). So while small budgets mislead the
  random share and the budget the model is fitted on are HpBandSter's. With random draws alone boosting's test error was
  0.2071 +- 0.0048 (one run of ten at 0.241), with both 0.2017 +- 0.0027, HpBandSter's model's
  0.2014 +- 0.0023 (10 seeds each). ``misled_ramp=True`` gives the earlier share,
  ``misled_random_fraction * (1 - tau / trusted_agreement)``, which fell to almost nothing where
  tau hovers near 0.3, as on some SVM runs: there the model settled on a poor kernel.
  While configurations it proposed are running (never serially), ``misled_budget_rule`` acts
  below ``running_misled_agreement`` (0.4) where that is the larger (the random share keeps
  ``trusted_agreement``):
  on many workers the ranking across budgets puts configurations good at small budgets beside
  those good at the largest, and where the best region moves with the budget tau stays near 0.3
  (``shifting_optimum``, 32 simulated workers, 30 seeds: 0.0040 -> 0.0011 synchronous, 0.0036 ->
  0.0011 asynchronous, below DEHB's 0.0018; the eight other problems that train no model equal,
  their taus rarely below 0.4). Serially 0.4 was worse on Branin (0.0108 against 0.0071, 30
  seeds): ``None`` keeps ``trusted_agreement`` throughout (docs/benchmarks/experiments.md, "The
  largest budget's model while configurations run").

The defaults are the combination that ``benchmarks/ablation.py`` found best (``misled_budget_rule``:
equal within the s.e. on every problem measured, and the one that made boosting equal to
HpBandSter's model; ``misled_ramp=False``: measured with a one-off harness on the problems where
tau falls below 0.3, 40 seeds on the SVM); its tables (in BENCHMARKS.md) show what each component is worth.
"""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..space import CONTINUOUS, SearchSpace, impute_inactive
from . import Proposal
from .agreement import RankAgreement
from .kde import bounded_bandwidths, normal_reference_bandwidths
from .parzen import (
    Components,
    ParzenMixture,
    ProductOfMarginals,
    count_bandwidth,
    discrete_log_rows,
    neighbour_bandwidths,
)
from .random import RandomSampler
from .ranked import ResultTables
from .ranking import Density, first_legal, say_all_forbidden
from .running import RunningConfigurations

logger = logging.getLogger(__name__)

BANDWIDTH_RULES = ("neighbours", "normal_reference")
BUDGET_RULES = ("promoted", "all", "largest", "stopped", "quantile")
EVERY_BUDGET_RULES = ("promoted", "all", "quantile")  # one model of every configuration, fitted as fit(None)
SPLIT_RULES = ("tpe", "hpbandster")


@dataclass(frozen=True)
class ParzenSettings:
    """The "tpe" model's parameters (see the module docstring); ``None`` counts mean: the default rule.

    ``min_points_in_model``: results needed before the model is used (``None``: dimensions + 1);
    with ``split="hpbandster"``, each of the two sets needs that many.
    """

    min_points_in_model: int | None = None
    top_n_percent: float = 10.0
    max_good_points: int | None = 100
    num_samples: int = 24
    random_fraction: float = 0.0
    bandwidth_factor: float = 2.0
    min_bandwidth: float = 1e-3
    max_points_in_model: int | None = 512
    bandwidth_rule: str = "neighbours"
    magic_clip: bool = True
    prior_weight: float = 1.0
    truncated: bool = True
    budget_rule: str = "promoted"  # not "budgets": a run's settings record the ladder under that name
    split: str = "tpe"
    promotion_fraction: float = 1 / 3
    misled_random_fraction: float = 1 / 3
    trusted_agreement: float = 0.3
    min_agreement_pairs: int = 10
    misled_budget_rule: str | None = "largest"
    running_misled_agreement: float | None = 0.4
    running_budget_rule: str | None = "quantile"
    misled_ramp: bool = False
    multivariate: bool = False
    constant_liar: bool = True
    running_trend_share: float = 0.25

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first parameter out of range."""
        counts = {"min_points_in_model": 1, "max_good_points": 1, "num_samples": 1, "max_points_in_model": 2,
                  "min_agreement_pairs": 1}
        for name, smallest in counts.items():
            value = getattr(self, name)
            if value is None and name not in ("num_samples", "min_agreement_pairs"):
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < smallest:
                raise ValueError(f"{name} must be a whole number >= {smallest}, got {value!r}")
        for name, choices in (("bandwidth_rule", BANDWIDTH_RULES), ("budget_rule", BUDGET_RULES),
                              ("split", SPLIT_RULES), ("misled_budget_rule", (*BUDGET_RULES, None)),
                              ("running_budget_rule", (*BUDGET_RULES, None))):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {getattr(self, name)!r}")
        for name in ("magic_clip", "truncated", "misled_ramp", "multivariate", "constant_liar"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        checks = [
            ("top_n_percent", _real(self.top_n_percent) and 0 < self.top_n_percent < 100,
             "between 0 and 100, both excluded"),
            ("random_fraction", _real(self.random_fraction) and 0.0 <= self.random_fraction <= 1.0, "between 0 and 1"),
            ("bandwidth_factor", _real(self.bandwidth_factor) and self.bandwidth_factor > 0, "above 0"),
            ("min_bandwidth", _real(self.min_bandwidth) and 0 < self.min_bandwidth <= 1, "above 0 and at most 1"),
            ("prior_weight", _real(self.prior_weight) and 0 <= self.prior_weight < math.inf, "finite and >= 0"),
            ("promotion_fraction", _real(self.promotion_fraction) and 0 < self.promotion_fraction <= 1,
             "above 0 and at most 1"),
            ("misled_random_fraction", _real(self.misled_random_fraction)
             and 0.0 <= self.misled_random_fraction <= 1.0, "between 0 and 1"),
            ("trusted_agreement", _real(self.trusted_agreement) and 0 < self.trusted_agreement <= 1,
             "above 0 and at most 1"),
            ("running_misled_agreement", self.running_misled_agreement is None
             or (_real(self.running_misled_agreement) and 0 < self.running_misled_agreement <= 1),
             "None or above 0 and at most 1"),
            ("running_trend_share", _real(self.running_trend_share) and 0.0 <= self.running_trend_share <= 1.0,
             "between 0 and 1"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{name} must be {allowed}, got {getattr(self, name)!r}")

    def as_dict(self) -> dict[str, Any]:
        """The settings by name, JSON-friendly."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and not math.isnan(value)


@dataclass(frozen=True)
class ParzenModel:
    """The two densities; ``budget`` is the budget they were fitted on (``None``: every budget).

    ``scored``: the good and the bad density that candidates are ranked by while nothing is
    running (else :meth:`ParzenSampler.ranking_bad_density`), the two densities themselves or, not
    ``multivariate``, the products of their marginals; ``bad_data``: the bad density's points
    (subsampled, inactive values imputed), which the constant liar adds to; ``trend``: per
    continuous model dimension, the mean of the best quarter of the good points less the mean of
    all of them (``None`` below four good points; see :func:`good_set_trend`)."""

    budget: float | None
    good: ParzenMixture
    bad: ParzenMixture
    scored: tuple[Density, Density]
    bad_data: np.ndarray
    trend: np.ndarray | None = None


class ParzenSampler:
    """Proposes configurations from the "tpe" density-ratio model, or at random while it has none."""

    def __init__(self, space: SearchSpace, settings: ParzenSettings | None = None) -> None:
        self.space = space
        self.settings = settings or ParzenSettings()
        self.settings.validate()
        self.num_dims = len(space.dimensions)
        self.min_points = self.settings.min_points_in_model or self.num_dims + 1
        self._continuous = np.array([d.kind == CONTINUOUS for d in space.dimensions], dtype=bool)
        self._model_indices = space.model_indices
        self._template = space.constant_template()
        self._random = RandomSampler(space)
        self._all_forbidden = 0  # proposals whose model candidates were all forbidden
        self._results = ResultTables(self.num_dims)
        self._model: ParzenModel | None = None
        self._model_rule: str | None = None  # the budget rule the model was fitted by
        self._stale_budgets: set[float] = set()
        self.agreement = RankAgreement(self.settings.min_agreement_pairs)
        self.running = RunningConfigurations(self.num_dims)
        self._said_overridden = False  # see _say_overridden

    def observe(self, vector: np.ndarray, budget: float, loss: float) -> None:
        """Record a result (a loss that is not finite counts as ``+inf``, a failure); the model is
        refit lazily at the next proposal."""
        model_vector = np.asarray(vector, dtype=float)[self._model_indices]
        loss = float(loss) if math.isfinite(loss) else math.inf  # NaN, -inf: failures as +inf, one kind of them
        self.running.remove(model_vector, budget)
        before = self._results.add(model_vector, budget, loss)
        if before is not None and budget > before[0]:
            self.agreement.add(before[0], before[1], budget, loss)
        if self.settings.budget_rule != "largest" or self._model is None or budget >= (self._model.budget or 0.0):
            self._stale_budgets.add(budget)

    def withdraw(self, vector: np.ndarray, budget: float) -> None:
        """A proposal for ``budget`` will not run after all: it no longer counts as running."""
        self.running.remove(np.asarray(vector, dtype=float)[self._model_indices], budget)

    def restore(self, vector: np.ndarray, budget: float) -> None:
        """A withdrawn proposal for ``budget`` runs after all: it counts as running again."""
        self.running.add(np.asarray(vector, dtype=float)[self._model_indices], budget)

    def propose(self, budget: float, rng: np.random.Generator) -> Proposal:
        """A configuration for ``budget``: model-based, or random with probability
        :meth:`random_share`; it counts as running until it is observed (``constant_liar`` and
        ``running_budget_rule`` act on the running ones)."""
        proposal = self._propose(budget, rng)
        self.running.add(np.asarray(proposal.vector, dtype=float)[self._model_indices], budget)
        return proposal

    def _propose(self, budget: float, rng: np.random.Generator) -> Proposal:
        model = self.current_model(rng)
        if model is None or rng.random() < self.random_share():
            return self._random.propose(budget, rng)
        settings = self.settings
        candidates = model.good.sample(rng, settings.num_samples, settings.bandwidth_factor, not settings.multivariate)
        if settings.running_trend_share > 0 and len(self.running) and model.trend is not None:
            candidates = shifted_along(candidates, self._continuous, model.trend, settings.running_trend_share)
        good, bad = model.scored[0], self.ranking_bad_density(model, rng)
        picked = first_legal(candidates, good, bad, lambda index: self._legal(candidates[index]))
        if picked is not None:
            return Proposal(picked[0], picked[1], {"model_based_pick": True})
        self._all_forbidden += 1
        say_all_forbidden(self._all_forbidden, len(candidates))
        return self._random.propose(budget, rng)

    def ranking_bad_density(self, model: ParzenModel, rng: np.random.Generator) -> Density:
        """The bad density that ranks candidates now: the model's, or with ``constant_liar`` and
        configurations running (never serially), refitted with the running configurations among
        its points, as Optuna's TPE refits its "above" set with the running trials. (Adding them as
        components beside the model's, as fitted, was cheaper and worse: with 32 workers Hartmann 6
        in 20 dimensions read 0.18 instead of 0.12.)"""
        if not (self.settings.constant_liar and len(self.running)):
            return model.scored[1]
        data = impute_inactive(np.vstack([model.bad_data, self.running.points()]), self.space.dimensions, rng)
        mixture = ParzenMixture(self._components(data))
        return mixture if self.settings.multivariate else ProductOfMarginals(mixture)

    def random_share(self) -> float:
        """The probability of a random configuration: ``random_fraction``, more while small budgets
        mislead (see the module's text)."""
        settings = self.settings
        if settings.misled_random_fraction <= settings.random_fraction:
            return settings.random_fraction  # the rule cannot add: no need to read the agreement
        tau = self.agreement.value()
        if tau is None or tau >= settings.trusted_agreement:
            return settings.random_fraction
        misled = 1.0 - max(0.0, tau) / settings.trusted_agreement if settings.misled_ramp else 1.0
        return max(settings.random_fraction, settings.misled_random_fraction * misled)

    def _legal(self, candidate: np.ndarray) -> tuple[dict[str, Any], np.ndarray] | None:
        vector = self._template.copy()
        vector[self._model_indices] = candidate
        return self.space.config_of(vector)

    def current_model(self, rng: np.random.Generator) -> ParzenModel | None:
        """The model, refit if it has new data or its rule changed (:meth:`budget_rule`): of every
        budget, or of the largest with enough results."""
        rule = self.budget_rule()
        if not self._stale_budgets and rule == self._model_rule:
            return self._model
        fitted = None
        if rule in EVERY_BUDGET_RULES:
            fitted = self.fit(None, rng, rule)
        else:
            # the settings' "largest" refits only from budgets with new results (see observe), once
            # its model is of that rule; "stopped", and a rule taken while small budgets mislead,
            # from every budget
            every = rule == "stopped" or rule != self.settings.budget_rule or rule != self._model_rule
            for budget in sorted(self._results.by_budget if every else self._stale_budgets, reverse=True):
                fitted = self.fit(budget, rng, rule)
                if fitted is not None:
                    break
        if fitted is not None:
            self._model, self._model_rule = fitted, rule
        # else the model stays the one fitted before, by its own rule (a failed fit draws no random number)
        self._stale_budgets.clear()
        return self._model

    def budget_rule(self) -> str:
        """The rule the model is fitted by now: ``misled_budget_rule`` while small budgets mislead
        (the agreement below ``trusted_agreement``, or below ``running_misled_agreement`` if that is
        larger while configurations it proposed are running), else ``running_budget_rule`` while
        configurations run (never serially), else ``budget_rule``."""
        settings = self.settings
        if settings.misled_budget_rule is not None:
            tau = self.agreement.value()
            trusted = settings.trusted_agreement
            if settings.running_misled_agreement is not None and len(self.running):
                trusted = max(trusted, settings.running_misled_agreement)  # raises a user's, never lowers it
            if tau is not None and tau < trusted:
                return settings.misled_budget_rule
        if settings.running_budget_rule is not None and len(self.running):
            if not self._said_overridden:
                self._say_overridden()
            return settings.running_budget_rule
        return settings.budget_rule

    def _say_overridden(self) -> None:
        """Warn, once, that a ``budget_rule`` of the user's own gives way to ``running_budget_rule``
        (on several workers nearly always: something is running at most proposals)."""
        self._said_overridden = True
        rule, running = self.settings.budget_rule, self.settings.running_budget_rule
        if rule != ParzenSettings.budget_rule and running != rule:
            misled = self.settings.misled_budget_rule
            but = "" if misled is None else (f", but while small budgets mislead (tau below running_misled_agreement) "
                                             f"misled_budget_rule={misled!r} fits it")
            logger.warning("model_options budget_rule=%r acts only while no configuration is running: with "
                           "configurations running (on several workers nearly always) running_budget_rule=%r fits "
                           "the model; pass running_budget_rule=None to keep %r throughout%s (said once per run)",
                           rule, running, rule, but)

    def fit(self, budget: float | None, rng: np.random.Generator, rule: str | None = None) -> ParzenModel | None:
        """The good and bad densities of ``budget`` (``None``: of every configuration's largest
        budget) by ``rule`` (default: ``budget_rule``), or ``None`` while there are too few results."""
        rule = rule or self.settings.budget_rule
        tables = self._results
        if self.num_dims == 0 or (budget is not None and budget not in tables.by_budget):
            return None
        if budget is None:  # "promoted": what successive halving would promote first; "quantile": see the module's text
            results = tables.latest
            order = tables.ranked_latest(rule if rule in ("promoted", "quantile") else None,
                                         self.settings.promotion_fraction)
        else:
            results, order = tables.by_budget[budget][0], tables.ranked_at(budget)
        split = self._split(results.losses, order)
        if split is None:
            return None
        good_rows, bad_rows = split
        vectors = results.vectors
        good, bad_points = vectors[good_rows], vectors  # the bad set: bad_points[bad_rows]
        if budget is not None and rule == "stopped":
            below = tables.ranked_latest()
            below = below[tables.latest.budgets[below] < budget]
            bad_points = np.vstack([vectors[bad_rows], tables.latest.vectors[below]])
            bad_rows = np.arange(len(bad_points))
        good_data, bad_data = self._model_data(good, None, rng), self._model_data(bad_points, bad_rows, rng)
        good_density = ParzenMixture(self._components(good_data))
        bad_density = ParzenMixture(self._components(bad_data))
        scored: tuple[Density, Density] = (good_density, bad_density)
        if not self.settings.multivariate:
            scored = (ProductOfMarginals(good_density), ProductOfMarginals(bad_density))
        return ParzenModel(budget, good_density, bad_density, scored, bad_data,
                           good_set_trend(good[:, self._continuous]))

    def _split(self, losses: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Rows of the good and the bad set of results with ``losses`` ranked in ``order``, each set
        in rank order, or ``None`` (too few results)."""
        n = len(losses)
        num_finite = int(np.isfinite(losses).sum())
        top = self.settings.top_n_percent
        if self.settings.split == "hpbandster":
            num_good = min(num_finite, max(self.min_points, math.floor(top * n / 100)))
            num_bad = max(self.min_points, math.floor((100 - top) * n / 100))
            good, bad = order[:num_good], order[num_good: num_good + num_bad]
            return (good, bad) if min(len(good), len(bad)) >= self.min_points else None
        num_good = min(num_finite, math.ceil(top * n / 100), self.settings.max_good_points or n)
        if n < self.min_points or num_good < 1 or num_good >= n:
            return None
        return order[:num_good], order[num_good:]

    def _model_data(self, points: np.ndarray, rows: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
        """The points a density is made of: ``points[rows]`` (``None``: all of them; a random subset
        of ``max_points_in_model`` when more), inactive values imputed. Rows are drawn before
        points are copied: at 50,000 results the copy of them all cost more than the rest of a fit."""
        limit = self.settings.max_points_in_model
        count = len(points) if rows is None else len(rows)
        if limit is not None and count > limit:
            drawn = rng.choice(count, size=limit, replace=False)
            rows = drawn if rows is None else rows[drawn]
        return impute_inactive(points if rows is None else points[rows], self.space.dimensions, rng)

    def _components(self, data: np.ndarray) -> Components:
        """One component per point, with this model's bandwidths, and the prior's when it has weight."""
        settings, n = self.settings, len(data)
        cont = self._continuous
        dims = self.space.dimensions
        if settings.bandwidth_rule == "normal_reference":
            common = bounded_bandwidths(normal_reference_bandwidths(data), tuple(d.kind for d in dims),
                                        tuple(d.num_levels for d in dims), settings.min_bandwidth)
            sigmas = np.tile(common[cont], (n, 1))
            discrete = common[~cont]
        else:
            sigmas = np.column_stack([neighbour_bandwidths(data[:, c], settings.magic_clip, settings.min_bandwidth)
                                      for c in np.flatnonzero(cont)]) if cont.any() else np.empty((n, 0))
            discrete = np.array([count_bandwidth(dims[c].num_levels, n, settings.prior_weight, settings.min_bandwidth)
                                 for c in np.flatnonzero(~cont)])
        rows = [discrete_log_rows(dims[c].kind, dims[c].num_levels, data[:, c], bandwidth)
                for c, bandwidth in zip(np.flatnonzero(~cont), discrete)]
        weights = np.ones(n)
        if settings.prior_weight > 0:
            prior = np.where(cont, 0.5, 0.0)
            data, sigmas = np.vstack([data, prior]), np.vstack([sigmas, np.ones(int(cont.sum()))])
            rows = [np.vstack([r, np.zeros(r.shape[1])]) for r in rows]  # uniform over the levels
            weights = np.append(weights, settings.prior_weight)
        return Components(data, sigmas, tuple(rows), weights, cont, settings.truncated)


def good_set_trend(good: np.ndarray) -> np.ndarray | None:
    """Where the good set moves: the mean of its best quarter (``ceil(n / 4)`` rows of ``good``, in
    rank order) less the mean of all of it, per column (inactive values, NaN, left out; a column
    with none active moves 0); ``None`` for fewer than four rows."""
    if len(good) < 4 or good.shape[1] == 0:
        return None
    best = good[: math.ceil(len(good) / 4)]
    if np.isfinite(good).all():  # the common case, where nanmean's masks and the warning filter cost most
        trend = best.mean(axis=0) - good.mean(axis=0)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-inactive column: its mean is NaN
            trend = np.nanmean(best, axis=0) - np.nanmean(good, axis=0)
    return np.nan_to_num(trend, nan=0.0)


def shifted_along(candidates: np.ndarray, continuous: np.ndarray, trend: np.ndarray, share: float) -> np.ndarray:
    """The candidates with the first ``round(share x their number)`` moved by ``trend`` in the
    continuous columns, clipped to the unit cube (the rest as drawn)."""
    moved = int(round(share * len(candidates)))
    shifted = candidates.copy()
    shifted[:moved, continuous] = np.clip(shifted[:moved, continuous] + trend, 0.0, 1.0)
    return shifted
