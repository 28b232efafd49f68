"""Port of HpBandSter 0.7.4's hpbandster/examples/example_8_mnist_continued.py (BOHB warm-started
from the runs of example 5), changed only as README.md's "Porting an HpBandSter script" lists:
imports and load_result (1), no nameserver, host lookup or nameserver arguments (2), the
--worker branch deleted and the worker passed to run (3), a seed (8). The worker is the stand-in
of example_5_sklearn_worker.py, as in the port of example 5, without the --backend choice.

    mpiexec -n 3 python example_8_mnist_continued.py --previous_run_dir EX5_DIR --shared_directory DIR
"""
import argparse
import os
import pickle

from mpibohb import BOHB
import mpibohb

import logging
logging.basicConfig(level=logging.DEBUG)


parser = argparse.ArgumentParser(description='Example 1 - sequential and local execution.')
parser.add_argument('--min_budget', type=float, help='Minimum number of epochs for training.', default=3)
parser.add_argument('--max_budget', type=float, help='Maximum number of epochs for training.', default=9)
parser.add_argument('--n_iterations', type=int, help='Number of iterations performed by the optimizer', default=4)
parser.add_argument('--worker', help='Flag to turn this into a worker process', action='store_true')
parser.add_argument('--run_id', type=str, help='A unique run id for this optimization run. '
                    'An easy option is to use the job id of the clusters scheduler.')
parser.add_argument('--nic_name', type=str, help='Which network interface to use for communication.', default='lo')
parser.add_argument('--shared_directory', type=str,
                    help='A directory that is accessible for all processes, e.g. a NFS share.', default='.')
parser.add_argument('--previous_run_dir', type=str, help='A directory that contains a config.json and '
                    'results.json for the same configuration space.', default='./example_5_run/')

args = parser.parse_args()


# the stand-in for HpBandSter's PyTorch and Keras workers
from example_5_sklearn_worker import SklearnWorker as worker


# Log every result live into the shared directory
result_logger = mpibohb.json_result_logger(directory=args.shared_directory, overwrite=False)

# The worker every rank builds
w = worker(run_id=args.run_id, timeout=120)


# The runs of example 5 (same search space), to warm-start the model with
previous_run = mpibohb.load_result(args.previous_run_dir)


# The optimizer, told about the earlier runs
bohb = BOHB(configspace=worker.get_configspace(),
            run_id=args.run_id,
            result_logger=result_logger,
            min_budget=args.min_budget, max_budget=args.max_budget,
            previous_result=previous_run,
            seed=1,
            )
res = bohb.run(n_iterations=args.n_iterations, worker=w)

# Keep the Result
with open(os.path.join(args.shared_directory, 'results.pkl'), 'wb') as fh:
    pickle.dump(res, fh)

# Shut down (does nothing here)
bohb.shutdown(shutdown_workers=True)
