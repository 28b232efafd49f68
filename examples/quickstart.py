"""The HpBandSter quickstart's toy problem with mpibohb's BOHB.

    python examples/quickstart.py                      # one process, sequential
    mpiexec -n 4 python examples/quickstart.py         # rank 0 optimises, ranks 1-3 evaluate

One float ``x`` in [0, 1]; the loss is ``x`` plus Gaussian noise that shrinks as the budget grows.
"""

import argparse
import logging
import time

import ConfigSpace as CS
import numpy

from mpibohb import BOHB, Worker


class MyWorker(Worker):
    """The seed's toy worker; ``sleep_interval`` dramatises the speed-up of parallel workers."""

    def __init__(self, *args, sleep_interval=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.sleep_interval = sleep_interval
        self.rng = numpy.random.default_rng()

    def compute(self, config, budget, **kwargs):
        res = numpy.clip(config["x"] + self.rng.standard_normal() / budget, config["x"] / 2, 1.5 * config["x"])
        time.sleep(self.sleep_interval)
        return {"loss": float(res), "info": float(res)}

    @staticmethod
    def get_configspace():
        config_space = CS.ConfigurationSpace()
        config_space.add(CS.UniformFloatHyperparameter("x", lower=0, upper=1))
        return config_space


def main():
    parser = argparse.ArgumentParser(description="mpibohb quickstart: BOHB on a toy problem.")
    parser.add_argument("--min_budget", type=float, default=9, help="Minimum budget used during the optimization.")
    parser.add_argument("--max_budget", type=float, default=243, help="Maximum budget used during the optimization.")
    parser.add_argument("--n_iterations", type=int, default=4, help="Number of iterations performed by the optimizer.")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the optimizer's random generator.")
    parser.add_argument("--sleep_interval", type=float, default=0, help="Seconds each evaluation sleeps.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    bohb = BOHB(configspace=MyWorker.get_configspace(), min_budget=args.min_budget,
                max_budget=args.max_budget, seed=args.seed)
    res = bohb.run(n_iterations=args.n_iterations, worker=MyWorker(sleep_interval=args.sleep_interval))
    if res is None:  # a worker rank under mpiexec: the master prints the summary
        return

    id2config = res.get_id2config_mapping()
    incumbent = res.get_incumbent_id()
    all_runs = res.get_all_runs()
    print("Best found configuration:", id2config[incumbent]["config"])
    print("A total of %i unique configurations where sampled." % len(id2config.keys()))
    print("A total of %i runs where executed." % len(all_runs))
    print("Total budget corresponds to %.1f full function evaluations."
          % (sum([r.budget for r in all_runs]) / args.max_budget))


if __name__ == "__main__":
    main()
