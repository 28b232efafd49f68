"""Port of HpBandSter 0.7.4's hpbandster/examples/example_4_cluster.py (BOHB on a cluster, results
pickled into a shared directory), changed only as README.md's "Porting an HpBandSter script"
lists: imports (1), no nameserver, host lookup or nameserver arguments (2), the --worker branch
deleted and the worker passed to run (3), a seed (8). One more line: ``import os``, which
HpBandSter's script used without importing it.

HpBandSter's SGE array job started a master task and worker tasks; here one MPI job runs this file
on every slot (see jobscripts/sge.qsub and jobscripts/slurm.sbatch):

    mpiexec -n 3 python example_4_cluster.py --run_id 1 --shared_directory DIR
"""
import logging

logging.basicConfig(level=logging.INFO)

import argparse
import os
import pickle
import time

import mpibohb  # HpBandSter's hpres (unused here, as there)
from mpibohb import BOHB
from toy_worker import MyWorker

parser = argparse.ArgumentParser(description='Example 1 - sequential and local execution.')
parser.add_argument('--min_budget', type=float, help='Minimum budget used during the optimization.', default=9)
parser.add_argument('--max_budget', type=float, help='Maximum budget used during the optimization.', default=243)
parser.add_argument('--n_iterations', type=int, help='Number of iterations performed by the optimizer', default=4)
parser.add_argument('--n_workers', type=int, help='Number of workers to run in parallel.', default=2)
parser.add_argument('--worker', help='Flag to turn this into a worker process', action='store_true')
parser.add_argument('--run_id', type=str, help='A unique run id for this optimization run. '
                    'An easy option is to use the job id of the clusters scheduler.')
parser.add_argument('--nic_name', type=str, help='Which network interface to use for communication.')
parser.add_argument('--shared_directory', type=str,
                    help='A directory that is accessible for all processes, e.g. a NFS share.')

args = parser.parse_args()

# The worker every rank builds (HpBandSter also ran one beside its master)
w = MyWorker(sleep_interval=0.5, run_id=args.run_id)

# The optimizer
bohb = BOHB(configspace=MyWorker.get_configspace(),
            run_id=args.run_id,
            min_budget=args.min_budget, max_budget=args.max_budget,
            seed=1)
res = bohb.run(n_iterations=args.n_iterations, min_n_workers=args.n_workers, worker=w)

# Keep the Result for a later analysis: pickle it into the shared directory
with open(os.path.join(args.shared_directory, 'results.pkl'), 'wb') as fh:
    pickle.dump(res, fh)

# Shut down (does nothing here)
bohb.shutdown(shutdown_workers=True)
