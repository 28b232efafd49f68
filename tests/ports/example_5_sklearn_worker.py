"""Stand-in for HpBandSter 0.7.4's example_5_pytorch_worker.py and example_5_keras_worker.py, with
their search space and ``Worker`` interface, but a scikit-learn MLP on ``load_digits`` (shipped
with scikit-learn: no download, no torch or keras, under 0.1 s per run) instead of a CNN on
MNIST. The budget is the number of epochs. Deterministic: the same configuration and budget give
the same loss in any process.

The space: learning rate (log, 1e-6 to 1e-1), optimizer (Adam or SGD), SGD momentum (only with
SGD), 1 to 3 "conv" layers of 4 to 64 units (log; the second and third only when there are that
many layers), dropout rate (0 to 0.9) and 8 to 256 units (log) in the last hidden layer. An MLP
has no convolutions or dropout: the layers become hidden layers of that width, and the dropout
rate becomes an L2 penalty (``alpha = dropout_rate / 100``).
"""

import warnings

import ConfigSpace as CS
import ConfigSpace.hyperparameters as CSH
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from mpibohb import Worker


class SklearnWorker(Worker):
    def __init__(self, N_train=1024, N_valid=384, **kwargs):
        super().__init__(**kwargs)
        x, y = load_digits(return_X_y=True)
        x = x / 16.0  # pixel values 0..16 -> 0..1
        self.x_train, self.y_train = x[:N_train], y[:N_train]
        self.x_validation, self.y_validation = x[N_train:N_train + N_valid], y[N_train:N_train + N_valid]
        self.x_test, self.y_test = x[N_train + N_valid:], y[N_train + N_valid:]

    def compute(self, config, budget, working_directory, *args, **kwargs):
        """Train for ``budget`` epochs; the loss is 1 - validation accuracy."""
        widths = [config['num_filters_1'], config.get('num_filters_2'), config.get('num_filters_3')]
        hidden = (*widths[:config['num_conv_layers']], config['num_fc_units'])
        model = MLPClassifier(hidden_layer_sizes=hidden, solver='adam' if config['optimizer'] == 'Adam' else 'sgd',
                              learning_rate_init=config['lr'], momentum=config.get('sgd_momentum', 0.9),
                              alpha=config['dropout_rate'] / 100, batch_size=64, max_iter=int(budget),
                              n_iter_no_change=int(budget) + 1, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', ConvergenceWarning)  # a few epochs never converge
            model.fit(self.x_train, self.y_train)
        validation_accuracy = model.score(self.x_validation, self.y_validation)
        return ({
            'loss': 1 - validation_accuracy,  # smaller is better
            'info': {'test accuracy': model.score(self.x_test, self.y_test),
                     'train accuracy': model.score(self.x_train, self.y_train),
                     'validation accuracy': validation_accuracy,
                     'number of parameters': sum(w.size for w in model.coefs_ + model.intercepts_),
                     }
        })

    @staticmethod
    def get_configspace():
        """HpBandSter's example 5 search space, written for ConfigSpace 1.2 (README item 6)."""
        cs = CS.ConfigurationSpace()

        lr = CSH.UniformFloatHyperparameter('lr', lower=1e-6, upper=1e-1, default_value=1e-2, log=True)
        optimizer = CSH.CategoricalHyperparameter('optimizer', ['Adam', 'SGD'])
        sgd_momentum = CSH.UniformFloatHyperparameter('sgd_momentum', lower=0.0, upper=0.99, default_value=0.9,
                                                      log=False)
        cs.add_hyperparameters([lr, optimizer, sgd_momentum])
        cs.add_condition(CS.EqualsCondition(sgd_momentum, optimizer, 'SGD'))

        num_conv_layers = CSH.UniformIntegerHyperparameter('num_conv_layers', lower=1, upper=3, default_value=2)
        num_filters_1 = CSH.UniformIntegerHyperparameter('num_filters_1', lower=4, upper=64, default_value=16, log=True)
        num_filters_2 = CSH.UniformIntegerHyperparameter('num_filters_2', lower=4, upper=64, default_value=16, log=True)
        num_filters_3 = CSH.UniformIntegerHyperparameter('num_filters_3', lower=4, upper=64, default_value=16, log=True)
        cs.add_hyperparameters([num_conv_layers, num_filters_1, num_filters_2, num_filters_3])
        cs.add_condition(CS.GreaterThanCondition(num_filters_2, num_conv_layers, 1))
        cs.add_condition(CS.GreaterThanCondition(num_filters_3, num_conv_layers, 2))

        dropout_rate = CSH.UniformFloatHyperparameter('dropout_rate', lower=0.0, upper=0.9, default_value=0.5,
                                                      log=False)
        num_fc_units = CSH.UniformIntegerHyperparameter('num_fc_units', lower=8, upper=256, default_value=32, log=True)
        cs.add_hyperparameters([dropout_rate, num_fc_units])

        return cs
