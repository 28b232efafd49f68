"""A promoted configuration continues training from its checkpoint instead of starting from zero.

    python examples/checkpointing.py                        # serially
    mpiexec -n 4 python examples/checkpointing.py           # 3 worker ranks
    python examples/checkpointing.py --from_scratch         # the same run, every budget trained from zero

An MLP of scikit-learn on load_digits, trained epoch by epoch with ``partial_fit``; budget =
epochs. ``compute`` names ``checkpoint_dir`` and ``previous_budget``, so mpibohb gives each
configuration a directory for the whole run (``<run_dir>/checkpoints/<config id>/``, the same on
every rank) and says at which budget the configuration last ran. The model is saved there with
:func:`mpibohb.atomic_path`, so a crash never leaves half a file; the epochs it was trained for are
saved with it, and trusted over ``previous_budget`` (a job run again after a crash may find its
own checkpoint). When the run ends only the incumbent's directory is left.
"""

import argparse
import logging
import os
import pickle
import tempfile
import time
import warnings

import ConfigSpace as CS
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from mpibohb import BOHB, atomic_path

DIGITS = load_digits()
X_TRAIN, X_VALID, Y_TRAIN, Y_VALID = train_test_split(DIGITS.data / 16.0, DIGITS.target, test_size=0.3,
                                                      random_state=0)
FROM_SCRATCH = False  # --from_scratch: ignore the checkpoints, to measure what they save


def configspace() -> CS.ConfigurationSpace:
    return CS.ConfigurationSpace({
        "hidden_units": CS.UniformIntegerHyperparameter("hidden_units", 16, 256, log=True),
        "alpha": CS.UniformFloatHyperparameter("alpha", 1e-6, 1e-1, log=True),
        "learning_rate_init": CS.UniformFloatHyperparameter("learning_rate_init", 1e-4, 1e-1, log=True),
        "batch_size": CS.UniformIntegerHyperparameter("batch_size", 16, 256, log=True),
    }, seed=0)


def train(config, budget, previous_budget, checkpoint_dir):
    """Train to ``budget`` epochs, from the checkpoint when there is one; the validation error."""
    path = os.path.join(checkpoint_dir, "model.pkl")
    model, epochs = None, 0
    if os.path.exists(path) and not FROM_SCRATCH:  # a rerun after a crash may find its own: trust "epochs"
        with open(path, "rb") as file:
            saved = pickle.load(file)
        if saved["epochs"] <= budget:
            model, epochs = saved["model"], saved["epochs"]
    if model is None:
        model = MLPClassifier(hidden_layer_sizes=(config["hidden_units"],), alpha=config["alpha"],
                              learning_rate_init=config["learning_rate_init"], batch_size=config["batch_size"],
                              random_state=0)
    trained, cpu = int(round(budget)) - epochs, time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(trained):
            model.partial_fit(X_TRAIN, Y_TRAIN, classes=range(10))
    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        pickle.dump({"model": model, "epochs": int(round(budget))}, file)
    return {"loss": 1.0 - model.score(X_VALID, Y_VALID),
            "info": {"epochs_trained": trained, "continued_from": previous_budget if epochs else None,
                     "training_cpu_seconds": time.process_time() - cpu}}


def main():
    global FROM_SCRATCH
    parser = argparse.ArgumentParser(description="mpibohb: BOHB that continues training from checkpoints.")
    parser.add_argument("--n_iterations", type=int, default=4)
    parser.add_argument("--min_budget", type=float, default=1, help="epochs")
    parser.add_argument("--max_budget", type=float, default=27, help="epochs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--run_dir", default=os.path.join(tempfile.gettempdir(), "mpibohb-checkpointing"),
                        help="on a cluster: a directory every node sees (checkpoints go under it)")
    parser.add_argument("--from_scratch", action="store_true", help="train every budget from zero")
    args = parser.parse_args()
    FROM_SCRATCH = args.from_scratch
    logging.basicConfig(level=logging.WARNING)

    bohb = BOHB(configspace=configspace(), min_budget=args.min_budget, max_budget=args.max_budget, eta=3,
                seed=args.seed, run_dir=args.run_dir)
    started = time.time()
    res = bohb.run(n_iterations=args.n_iterations, worker=train, overwrite=True)
    if res is None:
        return  # a worker rank, with workers_return=True
    runs = res.get_all_runs()
    incumbent = res.get_incumbent_id()
    best = min((r for r in res.get_runs_by_id(incumbent) if r.loss is not None), key=lambda r: -r.budget)
    trained = [r.info for r in runs if r.info]
    print(f"{len(runs)} evaluations, {sum(i['epochs_trained'] for i in trained)} epochs trained "
          f"({res.budget_spent():g} if every budget were trained from zero, "
          f"{res.budget_spent(increments_only=True):g} counting only increments) in "
          f"{sum(i['training_cpu_seconds'] for i in trained):.1f} CPU seconds; {time.time() - started:.1f} s in all")
    continued = sum(r.info.get("continued_from") is not None for r in runs if r.info)
    print(f"continued from a checkpoint: {continued} evaluations")
    print(f"best configuration {incumbent}: validation error {best.loss:.4f} at {best.budget:g} epochs, "
          f"{res.get_id2config_mapping()[incumbent]['config']}")
    left = [name for name in sorted(os.listdir(os.path.join(args.run_dir, "checkpoints"))) if not name.startswith(".")]
    print(f"checkpoints left: {left}")  # the incumbent's (.mpibohb-run says which run they belong to)


if __name__ == "__main__":
    main()
