"""Port of HpBandSter 0.7.4's hpbandster/examples/plot_example_7_interactive_plot.py (learning
curves of example 5's run), changed only as README.md's "Porting an HpBandSter script" lists:
imports and load_result (1), and the lines of ``interactive_HBS_plot``, which has no counterpart,
deleted (7). What is left extracts the learning curves, by budget and by finishing time.

    python plot_example_7_interactive_plot.py       # in the directory that holds example_5_run/
"""

import matplotlib.pyplot as plt

import mpibohb
import mpibohb.visualization as hpvis

# Read the run of example 5 from its directory
result = mpibohb.load_result('example_5_run/')

# Every run
all_runs = result.get_all_runs()

# From config id to configuration
id2conf = result.get_id2config_mapping()

lcs = result.get_learning_curves()


def realtime_learning_curves(runs):
    """Another learning curve of one configuration: test accuracy against the time each run
    finished (instead of validation loss against budget)."""
    sr = sorted(runs, key=lambda r: r.budget)
    lc = list(filter(lambda t: t[1] is not None,
                     [(r.time_stamps['finished'], r.info['test accuracy']) for r in sr]))
    return [lc, ]


lcs = result.get_learning_curves(lc_extractor=realtime_learning_curves)
