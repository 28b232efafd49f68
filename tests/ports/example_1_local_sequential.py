"""Port of HpBandSter 0.7.4's hpbandster/examples/example_1_local_sequential.py (BOHB on the toy
problem, one worker), changed only as README.md's "Porting an HpBandSter script" lists: imports
(1), no nameserver (2), the worker passed to run (3), a seed (8).

    python example_1_local_sequential.py            # or: mpiexec -n 2 python example_1_local_sequential.py
"""
import logging

logging.basicConfig(level=logging.WARNING)

import argparse

import mpibohb  # HpBandSter's hpres (unused here, as there)
from mpibohb import BOHB
from toy_worker import MyWorker

parser = argparse.ArgumentParser(description='Example 1 - sequential and local execution.')
parser.add_argument('--min_budget', type=float, help='Minimum budget used during the optimization.', default=9)
parser.add_argument('--max_budget', type=float, help='Maximum budget used during the optimization.', default=243)
parser.add_argument('--n_iterations', type=int, help='Number of iterations performed by the optimizer', default=4)
args = parser.parse_args()

# Step 2: the worker (HpBandSter started it in a background thread; run() takes it here)
w = MyWorker(sleep_interval=0, nameserver='127.0.0.1', run_id='example1')

# Step 3: the optimizer; run() returns the Result
bohb = BOHB(configspace=w.get_configspace(),
            run_id='example1', nameserver='127.0.0.1',
            min_budget=args.min_budget, max_budget=args.max_budget,
            seed=1)
res = bohb.run(n_iterations=args.n_iterations, worker=w)

# Step 4: shut down (does nothing here)
bohb.shutdown(shutdown_workers=True)

# Step 5: the incumbent and what the run cost
id2config = res.get_id2config_mapping()
incumbent = res.get_incumbent_id()

print('Best found configuration:', id2config[incumbent]['config'])
print('A total of %i unique configurations where sampled.' % len(id2config.keys()))
print('A total of %i runs where executed.' % len(res.get_all_runs()))
print('Total budget corresponds to %.1f full function evaluations.'
      % (sum([r.budget for r in res.get_all_runs()]) / args.max_budget))
