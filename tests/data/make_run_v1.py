"""How ``tests/data/run_v1`` was made (mpibohb 0.1.0, journal format 1); kept for the record.

    python tests/data/make_run_v1.py OUT_DIR

The saved run is a regression fixture: ``tests/test_result_io.py`` checks that it keeps loading
with the counts, incumbent and loss observed when it was written. Do not regenerate it when the
optimizer changes; a new format gets a new fixture (``run_v2``) next to it.
"""

import sys

import ConfigSpace as CS

from mpibohb import BOHB


def evaluate(config: dict, budget: float) -> dict:
    """Deterministic: fails for large ``x`` with ``c == "b"`` (an exception) and for ``x > 0.9``
    (a NaN loss); otherwise a smooth loss that falls with the budget."""
    if config["c"] == "b" and config["x"] > 0.6:
        raise ValueError(f"diverged: x={config['x']:.3f} with c=b")
    if config["x"] > 0.9:
        return {"loss": float("nan"), "info": {"note": "nan"}}
    loss = (config["x"] - 0.3) ** 2 + (0.1 if config["c"] == "b" else 0.0) + 1.0 / budget
    return {"loss": loss, "info": {"budget": budget, "x": config["x"]}}


def main(out_dir: str) -> None:
    """Write the fixture run into ``out_dir``."""
    space = CS.ConfigurationSpace({"x": (0.0, 1.0), "c": ["a", "b"]})
    # HpBandSter's model, BOHB's default when the fixture was made (the argument came later)
    BOHB(space, min_budget=1, max_budget=9, eta=3, seed=8, run_dir=out_dir, model="hpbandster").run(
        n_iterations=3, worker=evaluate)


if __name__ == "__main__":
    main(sys.argv[1])
