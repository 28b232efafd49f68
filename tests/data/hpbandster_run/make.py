"""How ``tests/data/hpbandster_run`` was made: a run of HpBandSter 0.7.4 itself. Regenerate with

    benchmarks/.hpbandster-venv/bin/python tests/data/hpbandster_run/make.py

from the repository root (the venv with HpBandSter 0.7.4; see benchmarks/hpbandster_env.sh).

It runs HpBandSter's BOHB (budgets 1, 3, 9, eta 3, 3 iterations) on one float ``x`` with a worker
that raises for ``x > 0.75``, logged by HpBandSter's ``json_result_logger`` into this directory
(``configs.json``, ``results.json``). Then it reads them back with HpBandSter's own
``logged_results_to_HBS_result`` and writes what that gives to ``expected.json``, which
``tests/test_hpbandster_logs.py`` compares ``mpibohb.load_result`` against (the test venv has no
HpBandSter). Time stamps and tracebacks differ from one regeneration to the next.
"""

import json
import logging
import os
import sys

import ConfigSpace as CS
import hpbandster.core.nameserver as hpns
import hpbandster.core.result as hpres
import numpy as np
from hpbandster.core.worker import Worker
from hpbandster.optimizers import BOHB

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_ID = "mpibohb_fixture"


class ToyWorker(Worker):
    """A smooth loss in ``x`` that falls with the budget; fails for ``x > 0.75``."""

    def compute(self, config, budget, **kwargs):
        if config["x"] > 0.75:
            raise ValueError(f"diverged: x={config['x']:.3f}")
        loss = (config["x"] - 0.3) ** 2 + 1.0 / budget
        return {"loss": loss, "info": {"x": config["x"], "budget": budget}}


def run_hpbandster(directory: str) -> None:
    """One BOHB run of HpBandSter, logged into ``directory``."""
    np.random.seed(3)
    space = CS.ConfigurationSpace(seed=3)
    space.add_hyperparameter(CS.UniformFloatHyperparameter("x", lower=0.0, upper=1.0))
    nameserver = hpns.NameServer(run_id=RUN_ID, host="127.0.0.1", port=0)  # a free port, not 9090
    host, port = nameserver.start()
    worker = ToyWorker(run_id=RUN_ID, nameserver=host, nameserver_port=port, host="127.0.0.1")
    worker.run(background=True)
    logger = hpres.json_result_logger(directory=directory, overwrite=True)
    bohb = BOHB(configspace=space, run_id=RUN_ID, nameserver=host, nameserver_port=port, host="127.0.0.1",
                min_budget=1, max_budget=9, eta=3, result_logger=logger)
    bohb.run(n_iterations=3)
    bohb.shutdown(shutdown_workers=True)
    nameserver.shutdown()


def hpbandster_reading(directory: str) -> dict:
    """What HpBandSter's ``logged_results_to_HBS_result`` makes of the logs in ``directory``."""
    result = hpres.logged_results_to_HBS_result(directory)
    runs = [{"config_id": list(r.config_id), "budget": r.budget, "loss": r.loss, "info": r.info,
             "time_stamps": r.time_stamps, "error_logs": r.error_logs} for r in result.get_all_runs()]
    mapping = result.get_id2config_mapping()
    trajectory = result.get_incumbent_trajectory()
    return {"HB_config": result.HB_config, "incumbent": list(result.get_incumbent_id()),
            "num_iterations": result.num_iterations(), "n_runs": len(runs), "runs": runs,
            "id2config": [[list(config_id), entry] for config_id, entry in mapping.items()],
            "trajectory": dict(trajectory, config_ids=[list(c) for c in trajectory["config_ids"]])}


def main(directory: str = HERE) -> None:
    """Run HpBandSter into ``directory`` and write its reading to ``expected.json``."""
    logging.basicConfig(level=logging.ERROR)
    run_hpbandster(directory)
    expected = hpbandster_reading(directory)
    with open(os.path.join(directory, "expected.json"), "w") as handle:
        json.dump(expected, handle, indent=1)
        handle.write("\n")
    failed = sum(run["loss"] is None for run in expected["runs"])
    print(f"{expected['n_runs']} runs, {failed} failed, incumbent {expected['incumbent']}")
    os._exit(0)  # Pyro4 threads may linger after the shutdown


if __name__ == "__main__":
    main(*sys.argv[1:])
