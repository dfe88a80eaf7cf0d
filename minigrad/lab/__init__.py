"""The optimization lab: gradient descent, loss functions and optimizers, made visible.

Everything runs on minigrad's own autograd, losses and optimizer classes (the ones
that train models), on problems small enough to see whole:

- :mod:`~minigrad.lab.landscapes`: 2-D test functions (an ill-conditioned bowl,
  Rosenbrock's valley, a saddle, Himmelblau's four minima), :func:`run_optimizer`,
  optimizer comparisons, learning rates that overshoot or crawl, lr schedules;
- :mod:`~minigrad.lab.batching`: batch vs mini-batch vs stochastic gradient descent;
- :mod:`~minigrad.lab.loss_functions`: loss curves and their gradients, line fits
  under outliers, hinge vs logistic classifiers;
- :mod:`~minigrad.lab.plots`: the figures (``pip install minigrad[plot]``).

``demos/optimization_lab.py`` drives it all from the command line; the
learning-rate range test lives in :mod:`minigrad.lr_finder`.
"""
from .batching import BatchRun, compare_batch_sizes, loss_surface
from .landscapes import (FUNCTIONS, HIMMELBLAU, ILL_CONDITIONED_BOWL, LR_REGIMES,
                         OPTIMIZER_SPECS, ROSENBROCK, SADDLE, SCHEDULES, TestFunction,
                         Trajectory, compare_optimizers, compare_schedules, get_function,
                         learning_rate_regimes, run_optimizer)
from .loss_functions import (BoundaryFit, LineFit, LossCurve, classification_loss_curves,
                             fit_classifiers, fit_lines, regression_loss_curves)
from .plots import (animate_trajectories, plot_batch_comparison, plot_classifiers,
                    plot_landscape, plot_line_fits, plot_loss_curves, plot_lr_finder,
                    plot_lr_regimes, plot_schedules)
from .toy_data import LineData, make_line_data, make_two_blobs

__all__ = ["TestFunction", "ILL_CONDITIONED_BOWL", "ROSENBROCK", "SADDLE", "HIMMELBLAU",
           "FUNCTIONS", "get_function", "OPTIMIZER_SPECS", "Trajectory", "run_optimizer",
           "compare_optimizers", "LR_REGIMES", "learning_rate_regimes", "SCHEDULES",
           "compare_schedules", "BatchRun", "compare_batch_sizes", "loss_surface",
           "LossCurve", "regression_loss_curves", "classification_loss_curves", "LineFit",
           "fit_lines", "BoundaryFit", "fit_classifiers", "LineData", "make_line_data",
           "make_two_blobs", "plot_landscape", "animate_trajectories", "plot_lr_regimes",
           "plot_schedules", "plot_batch_comparison", "plot_loss_curves", "plot_line_fits",
           "plot_classifiers", "plot_lr_finder"]
