"""The HpBandSter quickstart's toy worker, shared by the examples: ``MyWorker`` of HpBandSter's
``hpbandster/examples/commons.py``, for scripts ported from HpBandSter's examples (copy this file
next to the script and import ``from toy_worker import MyWorker``).

One float ``x`` in [0, 1]; the loss is ``x`` plus Gaussian noise that shrinks as the budget
grows, clipped to ``[x/2, 1.5 x]``. ``sleep_interval`` makes each evaluation take time, to show
the speed-up of parallel workers. Unlike HpBandSter's, the noise is drawn from a generator seeded
by ``x`` and the budget, so that a seeded run gives the same losses serially and under MPI.
"""

import time

import ConfigSpace as CS
import numpy

from mpibohb import Worker


class MyWorker(Worker):
    """Minimise ``x`` through a noisy, budget-dependent measurement."""

    def __init__(self, *args, sleep_interval=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.sleep_interval = sleep_interval

    def compute(self, config, budget, **kwargs):
        noise = numpy.random.default_rng([int(config["x"] * 2**53), int(budget * 2**10)]).standard_normal()
        res = numpy.clip(config["x"] + noise / budget, config["x"] / 2, 1.5 * config["x"])
        time.sleep(self.sleep_interval)
        return {"loss": float(res), "info": float(res)}

    @staticmethod
    def get_configspace():
        config_space = CS.ConfigurationSpace()
        config_space.add(CS.UniformFloatHyperparameter("x", lower=0, upper=1))
        return config_space


def add_common_arguments(parser):
    """The command-line arguments every example shares (HpBandSter's names)."""
    parser.add_argument("--min_budget", type=float, default=9, help="Minimum budget used during the optimization.")
    parser.add_argument("--max_budget", type=float, default=243, help="Maximum budget used during the optimization.")
    parser.add_argument("--n_iterations", type=int, default=4, help="Number of iterations performed by the optimizer.")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the optimizer's random generator.")
    parser.add_argument("--sleep_interval", type=float, default=0, help="Seconds each evaluation sleeps.")


def print_summary(res, max_budget):
    """Step 5 of the quickstart: the incumbent, and what the run cost."""
    id2config = res.get_id2config_mapping()
    incumbent = res.get_incumbent_id()
    all_runs = res.get_all_runs()
    print("Best found configuration:", id2config[incumbent]["config"])
    print("A total of %i unique configurations were sampled." % len(id2config.keys()))
    print("A total of %i runs were executed." % len(all_runs))
    print("Total budget corresponds to %.1f full function evaluations."
          % (sum([r.budget for r in all_runs]) / max_budget))
