"""Which of Hyperband's brackets an iteration runs with ``brackets="adaptive"``.

Hyperband cycles through its brackets as a hedge: when small budgets rank configurations
otherwise than the largest does, the brackets that start at larger budgets still find good ones.
The adaptive choice keeps the hedge while it is needed. When an iteration's bracket starts, and
small budgets have so far ranked configurations better than chance against the next larger budget
(Kendall's tau over promotions, :mod:`mpibohb.samplers.agreement`, above :data:`TRUSTED` over at
least :data:`MIN_PAIRS` pairs), the iteration runs Hyperband's most aggressive bracket; otherwise
(and while too few pairs tell) the next bracket of Hyperband's cycle. A run in which small budgets
never earn trust runs exactly Hyperband's brackets.

Hyper-Tune (Li et al., VLDB 2022) also chooses among Hyperband's brackets by how well each budget
predicts the largest; this rule is simpler, and uses the measure mpibohb's tpe model already reads.
Decisions depend only on the order of results, so a replay of the journal repeats them.
"""

from __future__ import annotations

from .bracket_plans import BracketPlan, bracket_plan, max_stages
from .samplers.agreement import RankAgreement

# Trust needs only a ranking better than chance: on every benchmark problem, boosting (tau 0.1 to
# 0.35) and the SVM (near 0) included, one bracket was never worse than Hyperband's, and 0.3 (the
# tpe model's threshold for its random draws) hedged on boosting in most iterations (BENCHMARKS.md).
TRUSTED = 0.0
MIN_PAIRS = 10  # as the tpe model's min_agreement_pairs

ConfigKey = tuple[int, int, int]


class AdaptiveBrackets:
    """The plans of a run's iterations, decided one by one as they start (see the module's text).

    Calling it with an iteration decides that iteration's plan (and those before it) once and for
    all; :meth:`forecast` says what a later iteration would run if nothing changed, deciding
    nothing; :meth:`observe` takes every result."""

    def __init__(self, min_budget: float, max_budget: float, eta: float) -> None:
        stages = max_stages(min_budget, max_budget, eta)
        self.cycle = tuple(bracket_plan(i, min_budget, max_budget, eta) for i in range(stages + 1))
        self.agreement = RankAgreement(MIN_PAIRS)
        self._plans: list[BracketPlan] = []  # of iterations 0 .. len - 1, decided
        self._hedged = 0  # iterations that followed Hyperband's cycle
        self._latest: dict[ConfigKey, tuple[float, float]] = {}  # configuration -> (largest budget, loss)
        self._was_trusted = False
        self._notices: list[str] = []

    def __call__(self, iteration: int) -> BracketPlan:
        """The plan iteration ``iteration`` runs, decided now if it is not yet."""
        while len(self._plans) <= iteration:
            self._plans.append(self._choose())
        return self._plans[iteration]

    def forecast(self, iteration: int) -> BracketPlan:
        """The plan of ``iteration`` if decided, else Hyperband's (no decision is made)."""
        if iteration < len(self._plans):
            return self._plans[iteration]
        return self.cycle[(self._hedged + iteration - len(self._plans)) % len(self.cycle)]

    @property
    def trusted(self) -> bool:
        """Whether small budgets have ranked as larger ones (see the module's text)."""
        tau = self.agreement.value()
        return tau is not None and tau > TRUSTED

    def _choose(self) -> BracketPlan:
        trusted = self.trusted
        if trusted != self._was_trusted:
            self._was_trusted = trusted
            self._notices.append(self._change_notice(trusted))
        if trusted:
            return self.cycle[0]
        plan = self.cycle[self._hedged % len(self.cycle)]
        self._hedged += 1
        return plan

    def _change_notice(self, trusted: bool) -> str:
        tau = self.agreement.value()
        measured = "too few promotions to tell" if tau is None else \
            f"Kendall's tau {tau:.2f} over {self.agreement.num_pairs} promotions"
        if trusted:
            return (f"brackets=adaptive: from iteration {len(self._plans)} on, the most aggressive bracket: small "
                    f"budgets rank configurations better than chance against the next budget ({measured})")
        return (f"brackets=adaptive: from iteration {len(self._plans)} on, Hyperband's brackets again: small budgets "
                f"rank configurations no better than chance against the next budget ({measured})")

    def pop_notices(self) -> list[str]:
        """Progress lines for the log since the last call: when the choice changes."""
        notices, self._notices = self._notices, []
        return notices

    def observe(self, config_id: ConfigKey, budget: float, loss: float) -> None:
        """A result: a configuration's loss at ``budget`` (non-finite: failed)."""
        previous = self._latest.get(config_id)
        if previous is not None and budget > previous[0]:
            self.agreement.add(previous[0], previous[1], budget, loss)
        if previous is None or budget >= previous[0]:
            self._latest[config_id] = (budget, loss)
