"""Port of HpBandSter 0.7.4's hpbandster/examples/plot_example_6_analysis.py (the analysis of
example 5's run: the incumbent and the plots), changed only as README.md's "Porting an
HpBandSter script" lists: imports and load_result (1), plots that take the Result (7).

    python plot_example_6_analysis.py       # in the directory that holds example_5_run/
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


# The incumbent: the best configuration
inc_id = result.get_incumbent_id()

# Its runs; the last one is on the largest budget
inc_runs = result.get_runs_by_id(inc_id)
inc_run = inc_runs[-1]


# Its loss, its configuration and what the worker reported
inc_loss = inc_run.loss
inc_config = id2conf[inc_id]['config']
inc_test_loss = inc_run.info['test accuracy']

print('Best found configuration:')
print(inc_config)
print('It achieved accuracies of %f (validation) and %f (test).' % (1 - inc_loss, inc_test_loss))


# The losses by budget over time,
hpvis.losses_over_time(result)

# how many runs were running at once,
hpvis.concurrent_runs_over_time(result)

# and how many had finished.
hpvis.finished_runs_over_time(result)

# Spearman's rank correlation of the losses between budgets
hpvis.correlation_across_budgets(result)

# The losses of the configurations the model picked against the random ones
hpvis.model_vs_random(result)

plt.show()
