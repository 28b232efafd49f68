"""Example 3 of the HpBandSter quickstart: workers in separate processes, one script for all.

    mpiexec -n 4 python examples/local_processes.py --sleep_interval 0.5

Every process runs this file. Rank 0 runs the optimizer, ranks 1..3 evaluate and end when the
run ends; HpBandSter's ``--worker`` flag, nameserver and ``time.sleep`` for start-up are not needed.
"""

import argparse
import logging

from toy_worker import MyWorker, add_common_arguments, print_summary

from mpibohb import BOHB


def main():
    parser = argparse.ArgumentParser(description="mpibohb: BOHB with MPI worker processes.")
    add_common_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    bohb = BOHB(configspace=MyWorker.get_configspace(), min_budget=args.min_budget,
                max_budget=args.max_budget, seed=args.seed)
    res = bohb.run(n_iterations=args.n_iterations, worker=MyWorker(sleep_interval=args.sleep_interval))
    print_summary(res, args.max_budget)  # rank 0 only: the worker ranks end with the run


if __name__ == "__main__":
    main()
