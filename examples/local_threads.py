"""Example 2 of the HpBandSter quickstart: several workers as threads of one process.

    python examples/local_threads.py --n_workers 4 --sleep_interval 0.5

Threads help when ``compute`` releases the GIL (numpy, scikit-learn, PyTorch, sleeping, I/O).
"""

import argparse
import logging
import time

from toy_worker import MyWorker, add_common_arguments, print_summary

from mpibohb import BOHB


def main():
    parser = argparse.ArgumentParser(description="mpibohb: BOHB with thread workers.")
    add_common_arguments(parser)
    parser.add_argument("--n_workers", type=int, default=4, help="Number of worker threads.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    bohb = BOHB(configspace=MyWorker.get_configspace(), min_budget=args.min_budget,
                max_budget=args.max_budget, seed=args.seed)
    started = time.time()
    res = bohb.run(n_iterations=args.n_iterations, worker=MyWorker(sleep_interval=args.sleep_interval),
                   n_workers=args.n_workers)
    print_summary(res, args.max_budget)
    print("Wall time with %d threads: %.1f s" % (args.n_workers, time.time() - started))


if __name__ == "__main__":
    main()
