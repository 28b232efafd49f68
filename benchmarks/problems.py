"""Benchmark problems that run offline, shared by every engine (mpibohb, HpBandSter, peers).

This module imports only numpy and ConfigSpace (0.6 or 1.x) at the top, so it runs unchanged in
the HpBandSter virtual environment (numpy < 2, ConfigSpace 0.6.1) and in the project's own.
scikit-learn is imported only by the problems that train a model (``trains_models``: mlp_digits,
svm_digits, boosting), when they first evaluate.

Every problem has a search space, a budget range with eta, and two functions of a configuration
(a plain dict):

* ``evaluate(config, budget, rng)``: what the optimiser sees at that budget (biased and noisy
  at small budgets);
* ``true_loss(config)``: what the report scores the incumbent by (noise-free at full fidelity
  for the synthetic problems, held-out test error at the largest budget for the MLP).

Where the optimum is known (``optimum`` is not None), the report shows the regret
``true_loss - optimum``.

Fidelity of the synthetic functions: ``z = budget / max_budget`` (so ``z = 1`` at the largest
budget). The bias follows BOCA (Kandasamy, Dasarathy, Schneider, Poczos: "Multi-fidelity Bayesian
Optimisation with Continuous Approximations", ICML 2017, the Branin and Hartmann functions of its
experiments, also in the authors' Dragonfly library):

* Branin: ``a (x2 - b x1^2 + c x1 - r)^2 + s (1 - t) cos(x1) + s`` with ``a = 1, r = 6, s = 10``,
  ``b = 5.1/(4 pi^2) - 0.01 (1 - z)``, ``c = 5/pi - 0.1 (1 - z)``, ``t = 1/(8 pi) + 0.005 (1 - z)``;
  x1 in [-5, 10], x2 in [0, 15]; minimum 0.397887 (three minimisers).
* Hartmann 3 and 6: ``-sum_i alpha_i(z) exp(-sum_j A_ij (x_j - P_ij)^2)`` with
  ``alpha(z) = (1.0, 1.2, 3.0, 3.2) - 0.1 (1 - z)``; x in the unit cube; minima -3.86278 (3-d)
  and -3.32237 (6-d), the usual A and P (Dixon & Szego 1978, as tabulated by Surjanovic & Bingham's
  Virtual Library of Simulation Experiments).

BOCA's fidelity has several components; here one scalar z drives all of b, c, t and alpha.
On top of the BOCA bias, this project adds Gaussian noise with standard deviation
``noise * (1 - z)``, i.e. none at the largest budget (``noise``: 1.0 for Branin, 0.05 for Hartmann).

Counting ones is the BOHB paper's toy problem (Falkner, Klein, Hutter: "BOHB: Robust and Efficient
Hyperparameter Optimization at Scale", ICML 2018, section 5.1): N binary categorical and N
continuous parameters in [0, 1]; the value is the number of categorical ones plus, for each
continuous x, the mean of ``budget`` Bernoulli(x) samples. The loss here is minus that value over
2N, so the optimum is -1 and the regret is the fraction of ones missed (the true loss uses the
expectation x instead of the samples). Budgets 9..729 with eta 3, as in the paper.

The problems after mlp_digits widen the set (issue 22) with log-scaled, integer, categorical and
conditional hyperparameters, budgets of other kinds, and more dimensions:

* ``svm_digits``: scikit-learn's ``SVC`` on load_digits (scaled to [0, 1]; the MLP's permutation,
  split 1080 / 359 / 358 for training / validation / test). The budget is the number of training
  points, 40..1080 with eta 3 (1080 = the whole training set), as in the BOHB paper's SVM
  benchmark (there a surrogate of an SVM on MNIST, here the real thing on a small data set):
  below 1080 the points are a random subset drawn from the run's noise generator, so small budgets
  are noisy as well as biased. Hyperparameters: C in [2^-5, 2^15] and gamma in [2^-15, 2^3], both
  log-scaled (the ranges of the grid recommended by Hsu, Chang, Lin: "A Practical Guide to Support
  Vector Classification", the LIBSVM guide), kernel in {rbf, poly, sigmoid}, degree in 2..5 only
  for kernel = poly (an EqualsCondition), coef0 in [0, 1] only for kernel in {poly, sigmoid} (an
  InCondition). The loss is the validation error; ``true_loss`` the test error of the model trained
  on the whole training set (cached). One evaluation takes under 0.2 s on average at 1080 points.
* ``boosting``: scikit-learn's ``HistGradientBoostingClassifier`` on ``make_classification``
  (3000 points, 20 features of which 10 informative and 5 redundant, 3 clusters per class, 2 % of
  labels flipped, class_sep 0.7, random_state 0; split 1000 / 1000 / 1000). The budget is the
  number of boosting rounds (``max_iter``, early stopping off), 3..81 with eta 3: four rungs like
  Branin's ladder, and affordable, about 5 ms per round here (so 0.1 to 0.4 s at 81 rounds, where 243
  rounds would take 1 to 2 s); a learning rate tuned on few rounds is biased upwards, the usual
  low-fidelity trap of boosting. Hyperparameters: learning_rate in [0.01, 1] and l2_regularization
  in [1e-6, 10] (log), max_leaf_nodes in 4..64 and min_samples_leaf in 2..200 (integers, log),
  max_features in [0.2, 1] (the fraction of features per split, drawn with a seed from the noise
  generator), limit_depth in {no, yes} and max_depth in 2..10 only when limit_depth = yes. Loss and
  ``true_loss`` as for the SVM (test error after 81 rounds, random_state 0).
* ``hartmann6_in_20``: Hartmann 6 (with the BOCA bias and noise above) embedded in 20 dimensions:
  x0..x5 are Hartmann's, x6..x19 change nothing; optimum -3.32237 as in 6-d. Embedding a
  low-dimensional function among dimensions without effect is the standard test of
  high-dimensional Bayesian optimisation since REMBO (Wang, Hutter, Zoghi, Matheson, de Freitas:
  "Bayesian Optimization in a Billion Dimensions via Random Embeddings", JAIR 2016; Branin in 25
  dimensions and more), with Hartmann 6 among others in ALEBO (Letham, Calandra, Rai, Bakshy:
  "Re-Examining Linear Embeddings for High-Dimensional Bayesian Optimization", NeurIPS 2020). It is
  also what hyperparameter optimisation meets in practice: many hyperparameters barely matter.
* ``shifting_optimum``: small budgets that rank configurations otherwise than the largest, the
  case Hyperband's brackets that start at larger budgets hedge against (Li, Jamieson, DeSalvo,
  Rostamizadeh, Talwalkar: "Hyperband", JMLR 2018), as a learning rate or a regularisation that
  looks best after a few epochs and is not the best after many. Two floats in [0, 1]; the loss is
  ``||x - c(t)||^2`` with ``t = log(budget) / log(max_budget)`` (0 at budget 1, 1 at the largest)
  and a centre that moves from ``(0.7, 0.7)`` at budget 1 to ``(0.3, 0.3)`` at the largest,
  ``c(t) = (0.7 - 0.4 t, 0.7 - 0.4 t)``, plus Gaussian noise of standard deviation
  ``0.01 (1 - t)``; budgets 1..27 (eta 3) like Branin's; optimum 0 at ``(0.3, 0.3)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ConfigSpace as CS
import numpy as np

Config = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """One benchmark problem: its space, budgets, what an evaluation returns and how it is scored."""

    name: str
    description: str
    make_space: Callable[[int | None], CS.ConfigurationSpace]
    evaluate: Callable[[Config, float, np.random.Generator], float]
    true_loss: Callable[[Config], float]
    min_budget: float
    max_budget: float
    eta: int
    n_iterations: int
    optimum: float | None = None
    trains_models: bool = False  # evaluations fit a scikit-learn model (seconds, not microseconds)

    def space(self, seed: int | None = None) -> CS.ConfigurationSpace:
        """A fresh ConfigurationSpace (seeded where the engine samples from it)."""
        return self.make_space(seed)

    def score(self, config: Config) -> float:
        """The regret of ``config`` where the optimum is known, else its true loss."""
        loss = self.true_loss(config)
        return loss if self.optimum is None else loss - self.optimum

    @property
    def measure(self) -> str:
        """The name of what ``score`` returns."""
        return "loss" if self.optimum is None else "regret"


def _new_space(seed: int | None, hyperparameters: list, conditions: list | None = None) -> CS.ConfigurationSpace:
    """A ConfigurationSpace with ``hyperparameters`` and ``conditions``, on ConfigSpace 0.6 and 1.x alike."""
    cs = CS.ConfigurationSpace(seed=seed)
    if hasattr(cs, "add"):  # ConfigSpace >= 1.0
        cs.add(hyperparameters + list(conditions or []))
    else:
        cs.add_hyperparameters(hyperparameters)
        cs.add_conditions(list(conditions or []))
    return cs


def _floats(names: list[str], lower: float, upper: float) -> list:
    return [CS.UniformFloatHyperparameter(name, lower, upper) for name in names]


# --- counting ones -------------------------------------------------------------------------------

def counting_ones(n: int) -> Problem:
    """The BOHB paper's counting ones with ``n`` categorical and ``n`` continuous parameters."""
    cats, conts = [f"cat{i}" for i in range(n)], [f"cont{i}" for i in range(n)]

    def make_space(seed: int | None) -> CS.ConfigurationSpace:
        return _new_space(seed, [CS.CategoricalHyperparameter(name, [0, 1]) for name in cats]
                          + _floats(conts, 0.0, 1.0))

    def ones(config: Config) -> float:
        return float(sum(int(config[name]) for name in cats))

    def evaluate(config: Config, budget: float, rng: np.random.Generator) -> float:
        samples = int(round(budget))
        probabilities = np.clip([float(config[name]) for name in conts], 0.0, 1.0)
        drawn = rng.binomial(samples, probabilities) / samples
        return -(ones(config) + float(np.sum(drawn))) / (2 * n)

    def true_loss(config: Config) -> float:
        return -(ones(config) + sum(float(config[name]) for name in conts)) / (2 * n)

    return Problem(f"counting_ones_{n}", f"counting ones, {n} categorical + {n} continuous", make_space,
                   evaluate, true_loss, min_budget=9, max_budget=729, eta=3, n_iterations=10, optimum=-1.0)


# --- multi-fidelity Branin and Hartmann ----------------------------------------------------------

def _fidelity(budget: float, max_budget: float) -> float:
    return min(1.0, budget / max_budget)


def _branin_value(x1: float, x2: float, z: float) -> float:
    b = 5.1 / (4 * math.pi ** 2) - 0.01 * (1 - z)
    c = 5 / math.pi - 0.1 * (1 - z)
    t = 1 / (8 * math.pi) + 0.005 * (1 - z)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def branin(noise: float = 1.0) -> Problem:
    """Multi-fidelity Branin (BOCA bias plus noise shrinking with the budget), budgets 1..27."""
    max_budget = 27.0

    def make_space(seed: int | None) -> CS.ConfigurationSpace:
        return _new_space(seed, [CS.UniformFloatHyperparameter("x1", -5.0, 10.0),
                                 CS.UniformFloatHyperparameter("x2", 0.0, 15.0)])

    def evaluate(config: Config, budget: float, rng: np.random.Generator) -> float:
        z = _fidelity(budget, max_budget)
        return _branin_value(config["x1"], config["x2"], z) + noise * (1 - z) * float(rng.standard_normal())

    def true_loss(config: Config) -> float:
        return _branin_value(config["x1"], config["x2"], 1.0)

    return Problem("branin", "multi-fidelity Branin, 2 continuous", make_space, evaluate, true_loss,
                   min_budget=1, max_budget=max_budget, eta=3, n_iterations=32, optimum=0.397887357729738)


_HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_HARTMANN = {
    3: (np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]]),
        1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]),
        -3.86278214782076),
    6: (np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]),
        1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]),
        -3.32236801141551),
}


def _hartmann_value(x: np.ndarray, dims: int, z: float) -> float:
    a, p, _ = _HARTMANN[dims]
    alpha = _HARTMANN_ALPHA - 0.1 * (1 - z)
    return -float(alpha @ np.exp(-np.sum(a * (x - p) ** 2, axis=1)))


def hartmann(dims: int, noise: float = 0.05, embedded_in: int | None = None) -> Problem:
    """Multi-fidelity Hartmann in ``dims`` (3 or 6) dimensions, budgets 1..27; with ``embedded_in``, the
    space has that many dimensions, of which only the first ``dims`` (x0, x1, ...) change the value."""
    max_budget = 27.0
    total = embedded_in or dims
    if total < dims:
        raise ValueError(f"cannot embed Hartmann {dims} in {total} dimensions")
    names = [f"x{i}" for i in range(total)]

    def make_space(seed: int | None) -> CS.ConfigurationSpace:
        return _new_space(seed, _floats(names, 0.0, 1.0))

    def point(config: Config) -> np.ndarray:
        return np.array([float(config[name]) for name in names[:dims]])

    def evaluate(config: Config, budget: float, rng: np.random.Generator) -> float:
        z = _fidelity(budget, max_budget)
        return _hartmann_value(point(config), dims, z) + noise * (1 - z) * float(rng.standard_normal())

    def true_loss(config: Config) -> float:
        return _hartmann_value(point(config), dims, 1.0)

    if embedded_in is None:
        return Problem(f"hartmann{dims}", f"multi-fidelity Hartmann, {dims} continuous", make_space, evaluate,
                       true_loss, min_budget=1, max_budget=max_budget, eta=3, n_iterations=32,
                       optimum=_HARTMANN[dims][2])
    return Problem(f"hartmann{dims}_in_{total}",
                   f"multi-fidelity Hartmann {dims} embedded in {total} continuous ({total - dims} without effect)",
                   make_space, evaluate, true_loss, min_budget=1, max_budget=max_budget, eta=3, n_iterations=32,
                   optimum=_HARTMANN[dims][2])


# --- small budgets that mislead --------------------------------------------------------------------

def shifting_optimum() -> Problem:
    """A bowl whose centre moves with the budget (see the module's text), budgets 1..27."""
    max_budget = 27.0
    names = ["x0", "x1"]

    def make_space(seed: int | None) -> CS.ConfigurationSpace:
        return _new_space(seed, _floats(names, 0.0, 1.0))

    def value(config: Config, t: float) -> float:
        centre = 0.7 - 0.4 * t
        return sum((float(config[name]) - centre) ** 2 for name in names)

    def evaluate(config: Config, budget: float, rng: np.random.Generator) -> float:
        t = min(1.0, math.log(max(budget, 1.0)) / math.log(max_budget))
        return value(config, t) + 0.01 * (1 - t) * float(rng.standard_normal())

    return Problem("shifting_optimum", "2 continuous, the optimum moves as the budget grows", make_space, evaluate,
                   lambda config: value(config, 1.0), min_budget=1, max_budget=max_budget, eta=3, n_iterations=32,
                   optimum=0.0)


# --- a real model: an MLP on scikit-learn's digits -----------------------------------------------

_DIGITS: dict[str, Any] = {}


def _digits() -> dict[str, Any]:
    """load_digits (ships with scikit-learn), scaled to [0, 1], split 60/20/20 with seed 0."""
    if not _DIGITS:
        try:
            from sklearn.datasets import load_digits
        except ImportError as error:
            raise ImportError("the mlp_digits problem needs scikit-learn: pip install -e '.[benchmarks]'") from error
        data = load_digits()
        order = np.random.default_rng(0).permutation(len(data.target))
        x, y = data.data[order] / 16.0, data.target[order]
        train, valid = int(0.6 * len(y)), int(0.8 * len(y))
        _DIGITS.update(train=(x[:train], y[:train]), valid=(x[train:valid], y[train:valid]),
                       test=(x[valid:], y[valid:]))
    return _DIGITS


def _train_mlp(config: Config, epochs: int, random_state: int) -> Any:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(int(config["hidden_units"]),), activation=config["activation"],
                          alpha=float(config["alpha"]), batch_size=int(config["batch_size"]),
                          learning_rate_init=float(config["learning_rate"]), max_iter=epochs,
                          n_iter_no_change=epochs + 1, tol=0.0, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(*_digits()["train"])
    return model


_TEST_ERRORS: dict[tuple, float] = {}


def _cached_test_error(cache: dict[tuple, float], config: Config, train: Callable[[], Any],
                       test: tuple[np.ndarray, np.ndarray]) -> float:
    """The test error of the model ``train()`` makes for ``config``, trained once per configuration
    (the report asks for an incumbent's true loss many times)."""
    key = tuple(sorted(config.items()))
    if key not in cache:
        cache[key] = 1.0 - float(train().score(*test))
    return cache[key]


def mlp_digits() -> Problem:
    """scikit-learn's MLPClassifier on load_digits; budget = epochs (1..27); loss = error rate."""
    max_budget = 27

    def make_space(seed: int | None) -> CS.ConfigurationSpace:
        return _new_space(seed, [
            CS.UniformFloatHyperparameter("learning_rate", 1e-4, 1e-1, log=True),
            CS.UniformFloatHyperparameter("alpha", 1e-6, 1e-1, log=True),
            CS.UniformIntegerHyperparameter("hidden_units", 8, 128, log=True),
            CS.UniformIntegerHyperparameter("batch_size", 32, 512, log=True),
            CS.CategoricalHyperparameter("activation", ["relu", "tanh", "logistic"]),
        ])

    def evaluate(config: Config, budget: float, rng: np.random.Generator) -> float:
        model = _train_mlp(config, int(round(budget)), int(rng.integers(2 ** 31)))
        return 1.0 - float(model.score(*_digits()["valid"]))

    def true_loss(config: Config) -> float:
        return _cached_test_error(_TEST_ERRORS, config, lambda: _train_mlp(config, max_budget, random_state=0),
                                  _digits()["test"])

    return Problem("mlp_digits", "MLP on load_digits, 5 hyperparameters (test error of the incumbent)",
                   make_space, evaluate, true_loss, min_budget=1, max_budget=max_budget, eta=3, n_iterations=12,
                   trains_models=True)


# --- more real models: an SVM on digits (budget = training points), gradient boosting (budget = rounds) -

def _sklearn_missing(problem: str) -> ImportError:
    return ImportError(f"the {problem} problem needs scikit-learn: pip install -e '.[benchmarks]'")


_SVM_DATA: dict[str, Any] = {}


def _svm_data() -> dict[str, Any]:
    """load_digits scaled to [0, 1], the MLP's permutation (seed 0), split 1080 / 359 / 358: the training
    set is exactly the largest budget, 40 * 3^3 points."""
    if not _SVM_DATA:
        try:
            from sklearn.datasets import load_digits
        except ImportError as error:
            raise _sklearn_missing("svm_digits") from error
        data = load_digits()
        order = np.random.default_rng(0).permutation(len(data.target))
        x, y = data.data[order] / 16.0, data.target[order]
        _SVM_DATA.update(train=(x[:1080], y[:1080]), valid=(x[1080:1439], y[1080:1439]), test=(x[1439:], y[1439:]))
    return _SVM_DATA


def _train_svm(config: Config, x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.svm import SVC

    kernel = config["kernel"]
    model = SVC(C=float(config["C"]), kernel=kernel, gamma=float(config["gamma"]),
                degree=int(config["degree"]) if kernel == "poly" else 3,
                coef0=float(config["coef0"]) if kernel in ("poly", "sigmoid") else 0.0)
    return model.fit(x, y)


_SVM_TEST_ERRORS: dict[tuple, float] = {}


def svm_digits() -> Problem:
    """scikit-learn's SVC on load_digits; budget = training points (40..1080); loss = error rate."""
    max_budget = 1080

    def make_space(seed: int | None) -> CS.ConfigurationSpace:
        kernel = CS.CategoricalHyperparameter("kernel", ["rbf", "poly", "sigmoid"])
        degree = CS.UniformIntegerHyperparameter("degree", 2, 5)
        coef0 = CS.UniformFloatHyperparameter("coef0", 0.0, 1.0)
        return _new_space(seed, [
            CS.UniformFloatHyperparameter("C", 2.0 ** -5, 2.0 ** 15, log=True),
            CS.UniformFloatHyperparameter("gamma", 2.0 ** -15, 2.0 ** 3, log=True),
            kernel, degree, coef0,
        ], [CS.EqualsCondition(degree, kernel, "poly"), CS.InCondition(coef0, kernel, ["poly", "sigmoid"])])

    def evaluate(config: Config, budget: float, rng: np.random.Generator) -> float:
        x, y = _svm_data()["train"]
        points = min(int(round(budget)), len(y))
        if points < len(y):  # a random subset: the noise of small budgets
            chosen = rng.choice(len(y), size=points, replace=False)
            x, y = x[chosen], y[chosen]
        return 1.0 - float(_train_svm(config, x, y).score(*_svm_data()["valid"]))

    def true_loss(config: Config) -> float:
        return _cached_test_error(_SVM_TEST_ERRORS, config, lambda: _train_svm(config, *_svm_data()["train"]),
                                  _svm_data()["test"])

    return Problem("svm_digits", "SVM on load_digits, 5 hyperparameters (2 conditional), budget = training points"
                   " (test error of the incumbent)", make_space, evaluate, true_loss,
                   min_budget=40, max_budget=max_budget, eta=3, n_iterations=16, trains_models=True)


_BOOSTING_DATA: dict[str, Any] = {}


def _boosting_data() -> dict[str, Any]:
    """make_classification (binary, 20 features, 10 informative, 5 redundant, 3 clusters per class,
    2 % labels flipped, class_sep 0.7, random_state 0), 3000 points split 1000 / 1000 / 1000."""
    if not _BOOSTING_DATA:
        try:
            from sklearn.datasets import make_classification
        except ImportError as error:
            raise _sklearn_missing("boosting") from error
        x, y = make_classification(n_samples=3000, n_features=20, n_informative=10, n_redundant=5,
                                   n_clusters_per_class=3, flip_y=0.02, class_sep=0.7, random_state=0)
        _BOOSTING_DATA.update(train=(x[:1000], y[:1000]), valid=(x[1000:2000], y[1000:2000]),
                              test=(x[2000:], y[2000:]))
    return _BOOSTING_DATA


def _train_boosting(config: Config, rounds: int, random_state: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        learning_rate=float(config["learning_rate"]), max_iter=rounds, max_leaf_nodes=int(config["max_leaf_nodes"]),
        min_samples_leaf=int(config["min_samples_leaf"]), l2_regularization=float(config["l2_regularization"]),
        max_features=float(config["max_features"]),
        max_depth=int(config["max_depth"]) if config["limit_depth"] == "yes" else None,
        early_stopping=False, random_state=random_state)
    return model.fit(*_boosting_data()["train"])


_BOOSTING_TEST_ERRORS: dict[tuple, float] = {}


def boosting() -> Problem:
    """HistGradientBoostingClassifier on a fixed make_classification; budget = boosting rounds (3..81)."""
    max_budget = 81

    def make_space(seed: int | None) -> CS.ConfigurationSpace:
        limit_depth = CS.CategoricalHyperparameter("limit_depth", ["no", "yes"])
        max_depth = CS.UniformIntegerHyperparameter("max_depth", 2, 10)
        return _new_space(seed, [
            CS.UniformFloatHyperparameter("learning_rate", 0.01, 1.0, log=True),
            CS.UniformIntegerHyperparameter("max_leaf_nodes", 4, 64, log=True),
            CS.UniformIntegerHyperparameter("min_samples_leaf", 2, 200, log=True),
            CS.UniformFloatHyperparameter("l2_regularization", 1e-6, 10.0, log=True),
            CS.UniformFloatHyperparameter("max_features", 0.2, 1.0),
            limit_depth, max_depth,
        ], [CS.EqualsCondition(max_depth, limit_depth, "yes")])

    def evaluate(config: Config, budget: float, rng: np.random.Generator) -> float:
        model = _train_boosting(config, int(round(budget)), int(rng.integers(2 ** 31)))
        return 1.0 - float(model.score(*_boosting_data()["valid"]))

    def true_loss(config: Config) -> float:
        return _cached_test_error(_BOOSTING_TEST_ERRORS, config,
                                  lambda: _train_boosting(config, max_budget, random_state=0), _boosting_data()["test"])

    return Problem("boosting", "gradient boosting on make_classification, 7 hyperparameters (1 conditional),"
                   " budget = rounds (test error of the incumbent)", make_space, evaluate, true_loss,
                   min_budget=3, max_budget=max_budget, eta=3, n_iterations=12, trains_models=True)


def noise_generator(seed: int) -> np.random.Generator:
    """The generator of a run's evaluation noise: a stream of its own, apart from the
    ``default_rng(seed)`` stream that an optimiser seeded with ``seed`` may draw from."""
    return np.random.default_rng([seed, 1])


def all_problems() -> dict[str, Problem]:
    """Every problem by name, in report order."""
    problems = [counting_ones(n) for n in (4, 8, 16, 32)] + [branin(), hartmann(3), hartmann(6), mlp_digits()]
    problems += [svm_digits(), boosting(), hartmann(6, embedded_in=20), shifting_optimum()]
    return {problem.name: problem for problem in problems}


def offline_problems() -> list[str]:
    """The names of the problems whose evaluations train no model, in report order: the defaults of
    the benchmarks that run many variants (the others take minutes per run)."""
    return [name for name, problem in all_problems().items() if not problem.trains_models]


def get_problem(name: str) -> Problem:
    """The problem called ``name``; a ValueError lists the known names otherwise."""
    problems = all_problems()
    if name not in problems:
        raise ValueError(f"unknown problem {name!r}; known: {', '.join(problems)}")
    return problems[name]
