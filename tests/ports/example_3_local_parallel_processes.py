"""Port of HpBandSter 0.7.4's hpbandster/examples/example_3_local_parallel_processes.py (BOHB with
workers in other processes), changed only as README.md's "Porting an HpBandSter script" lists:
imports (1), no nameserver (2), the --worker branch deleted and its worker moved out of it (3),
a seed (8).

    mpiexec -n 3 python example_3_local_parallel_processes.py      # rank 0 optimises, ranks 1-2 evaluate
"""
import logging

logging.basicConfig(level=logging.INFO)

import argparse

import mpibohb  # HpBandSter's hpres (unused here, as there)
from mpibohb import BOHB
from toy_worker import MyWorker

parser = argparse.ArgumentParser(description='Example 3 - Local and Parallel Execution.')
parser.add_argument('--min_budget', type=float, help='Minimum budget used during the optimization.', default=9)
parser.add_argument('--max_budget', type=float, help='Maximum budget used during the optimization.', default=243)
parser.add_argument('--n_iterations', type=int, help='Number of iterations performed by the optimizer', default=4)
parser.add_argument('--n_workers', type=int, help='Number of workers to run in parallel.', default=2)
parser.add_argument('--worker', help='Flag to turn this into a worker process', action='store_true')

args = parser.parse_args()

# HpBandSter built this worker in the --worker process only; every rank builds it here
w = MyWorker(sleep_interval=0.5, nameserver='127.0.0.1', run_id='example3')

# The optimizer (as in example 2)
bohb = BOHB(configspace=MyWorker.get_configspace(),
            run_id='example3',
            min_budget=args.min_budget, max_budget=args.max_budget,
            seed=1)
res = bohb.run(n_iterations=args.n_iterations, min_n_workers=args.n_workers, worker=w)

# Step 4: shut down (does nothing here)
bohb.shutdown(shutdown_workers=True)

# Step 5: the incumbent, what the run cost and how long it took
id2config = res.get_id2config_mapping()
incumbent = res.get_incumbent_id()

all_runs = res.get_all_runs()

print('Best found configuration:', id2config[incumbent]['config'])
print('A total of %i unique configurations where sampled.' % len(id2config.keys()))
print('A total of %i runs where executed.' % len(res.get_all_runs()))
print('Total budget corresponds to %.1f full function evaluations.'
      % (sum([r.budget for r in all_runs]) / args.max_budget))
print('Total budget corresponds to %.1f full function evaluations.'
      % (sum([r.budget for r in all_runs]) / args.max_budget))
print('The run took  %.1f seconds to complete.'
      % (all_runs[-1].time_stamps['finished'] - all_runs[0].time_stamps['started']))
