"""Port of HpBandSter 0.7.4's hpbandster/examples/example_5_mnist.py (BOHB on a network's
hyperparameters, results logged live to a directory), changed only as README.md's "Porting an
HpBandSter script" lists: imports (1), no nameserver, host lookup or nameserver arguments (2),
the --worker branch deleted and the worker passed to run (3), a seed (8). The worker is a
stand-in: example_5_sklearn_worker.py (an MLP on scikit-learn's digits) replaces the PyTorch and
Keras workers, and with them the --backend choice between the two.

    mpiexec -n 3 python example_5_mnist.py --shared_directory DIR
"""
import argparse
import os
import pickle

from mpibohb import BOHB
import mpibohb

import logging
logging.basicConfig(level=logging.DEBUG)


parser = argparse.ArgumentParser(description='Example 5 - CNN on MNIST')
parser.add_argument('--min_budget', type=float, help='Minimum number of epochs for training.', default=1)
parser.add_argument('--max_budget', type=float, help='Maximum number of epochs for training.', default=9)
parser.add_argument('--n_iterations', type=int, help='Number of iterations performed by the optimizer', default=16)
parser.add_argument('--worker', help='Flag to turn this into a worker process', action='store_true')
parser.add_argument('--run_id', type=str, help='A unique run id for this optimization run. '
                    'An easy option is to use the job id of the clusters scheduler.')
parser.add_argument('--nic_name', type=str, help='Which network interface to use for communication.', default='lo')
parser.add_argument('--shared_directory', type=str,
                    help='A directory that is accessible for all processes, e.g. a NFS share.', default='.')

args = parser.parse_args()


# the stand-in for HpBandSter's PyTorch and Keras workers
from example_5_sklearn_worker import SklearnWorker as worker


# Log every result live into the shared directory (configs.json and results.json, which
# mpibohb.load_result reads back, also while the run goes on)
result_logger = mpibohb.json_result_logger(directory=args.shared_directory, overwrite=False)

# The worker every rank builds
w = worker(run_id=args.run_id, timeout=120)

# The optimizer
bohb = BOHB(configspace=worker.get_configspace(),
            run_id=args.run_id,
            result_logger=result_logger,
            min_budget=args.min_budget, max_budget=args.max_budget,
            seed=1,
            )
res = bohb.run(n_iterations=args.n_iterations, worker=w)

# Keep the Result
with open(os.path.join(args.shared_directory, 'results.pkl'), 'wb') as fh:
    pickle.dump(res, fh)

# Shut down (does nothing here)
bohb.shutdown(shutdown_workers=True)
