"""Port of HpBandSter 0.7.4's hpbandster/examples/example_2_local_parallel_threads.py (BOHB with
workers in threads), changed only as README.md's "Porting an HpBandSter script" lists: imports
(1), no nameserver (2), the worker passed to run (3), n_workers for threads (4), a seed (8).

    python example_2_local_parallel_threads.py --n_workers 2      # or under mpiexec -n 3
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
parser.add_argument('--n_workers', type=int, help='Number of workers to run in parallel.', default=2)

args = parser.parse_args()

# Step 2: the workers; each sleeps half a second per evaluation to show the speed-up. HpBandSter
# started one per thread; here run() takes one, and n_workers says how many threads share it.
workers = []
for i in range(args.n_workers):
    w = MyWorker(sleep_interval=0.5, nameserver='127.0.0.1', run_id='example2', id=i)
    workers.append(w)

# Step 3: the optimizer; min_n_workers made HpBandSter wait until every worker was there
bohb = BOHB(configspace=w.get_configspace(),
            run_id='example2',
            min_budget=args.min_budget, max_budget=args.max_budget,
            seed=1)
res = bohb.run(n_iterations=args.n_iterations, min_n_workers=args.n_workers, worker=w, n_workers=args.n_workers)

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
