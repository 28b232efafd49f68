"""An ``info`` that only the worker ranks can unpickle (a GPU tensor where rank 0 has no GPU, a
class of a module only the workers import): ``mpiexec -n 3 python info_rank0_cannot_unpickle.py
RUN_DIR``. Rank 0 prints ``RESULT <json>``: each run's loss and info."""

import json
import sys

import ConfigSpace as CS
from mpi4py import MPI

from mpibohb import RandomSearch


def rebuild() -> str:
    if MPI.COMM_WORLD.Get_rank() == 0:
        raise RuntimeError("Attempting to deserialize object on a CUDA device")
    return "tensor"


class TensorOnTheWorkers:
    def __reduce__(self):
        return rebuild, ()


def compute(config, budget):
    return {"loss": config["x"], "info": {"logits": TensorOnTheWorkers()}}


space = CS.ConfigurationSpace({"x": (0.0, 1.0)})
result = RandomSearch(configspace=space, seed=2, run_dir=sys.argv[1]).run(n_iterations=4, worker=compute)
if result is not None:
    print("RESULT " + json.dumps([[r.loss, r.info] for r in result.get_all_runs()]), flush=True)
