"""Example 1 of the HpBandSter quickstart, with mpibohb: BOHB on the toy problem.

    python examples/quickstart.py                      # one process, sequential
    mpiexec -n 4 python examples/quickstart.py         # rank 0 optimises, ranks 1-3 evaluate

No nameserver, no host, no port: under ``mpiexec`` the communicator connects the processes.
"""

import argparse
import logging

from toy_worker import MyWorker, add_common_arguments, print_summary

from mpibohb import BOHB


def main():
    parser = argparse.ArgumentParser(description="mpibohb quickstart: BOHB on a toy problem.")
    add_common_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    bohb = BOHB(configspace=MyWorker.get_configspace(), min_budget=args.min_budget,
                max_budget=args.max_budget, seed=args.seed)
    # under mpiexec the worker ranks end when the run ends, so what follows runs on rank 0 only
    res = bohb.run(n_iterations=args.n_iterations, worker=MyWorker(sleep_interval=args.sleep_interval))
    print_summary(res, args.max_budget)


if __name__ == "__main__":
    main()
