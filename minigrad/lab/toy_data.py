"""Small seeded data sets for the lab: points around a line, two clouds of points."""
import numpy as np

__all__ = ["LineData", "make_line_data", "make_two_blobs"]


class LineData:
    """Points ``y = slope * x + intercept + noise``, some of them outliers.

    ``x`` and ``y`` are float32 column arrays (N, 1), ready for a ``Dense(1, 1)``;
    ``is_outlier`` marks the points moved off the line.
    """

    def __init__(self, x, y, slope, intercept, is_outlier):
        self.x, self.y = x, y
        self.slope, self.intercept = float(slope), float(intercept)
        self.is_outlier = is_outlier

    def __len__(self):
        return len(self.x)

    def true_line(self, x):
        """The noise-free line at ``x``."""
        return self.slope * np.asarray(x) + self.intercept


def make_line_data(n=200, slope=2.0, intercept=-1.0, noise=0.5, x_range=(-3.0, 3.0),
                   outlier_fraction=0.0, outlier_shift=(15.0, 25.0), seed=0):
    """Points around a line; ``outlier_fraction`` of them lifted by ``outlier_shift``.

    The outliers are all moved the same way (up) and sit at the right end of the
    x range, as a run of corrupted measurements would: that is the case where a
    squared loss tilts the fitted line towards them.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    if not 0 <= outlier_fraction < 1:
        raise ValueError(f"outlier_fraction must be in [0, 1), got {outlier_fraction}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(*x_range, n)
    y = slope * x + intercept + noise * rng.standard_normal(n)
    is_outlier = np.zeros(n, dtype=bool)
    n_out = int(round(outlier_fraction * n))
    if n_out:
        # The outliers are the points with the largest x (the top of the range).
        chosen = np.argsort(x)[-max(n_out * 3, n_out):]
        chosen = rng.choice(chosen, n_out, replace=False)
        is_outlier[chosen] = True
        y[chosen] += rng.uniform(*outlier_shift, n_out)
    return LineData(x.astype(np.float32).reshape(-1, 1), y.astype(np.float32).reshape(-1, 1),
                    slope, intercept, is_outlier)


def make_two_blobs(n=200, separation=3.0, spread=1.0, far_points=0, seed=0):
    """Two Gaussian clouds of 2-D points, labels 0 and 1 (int64), ``n`` points in all.

    ``far_points`` extra points of class 1 are placed far out on class 1's own side:
    they are classified correctly by any sensible boundary, so a loss that still
    counts them (logistic) differs from one that ignores them (hinge).
    """
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    centres = np.array([[-separation / 2, 0.0], [separation / 2, 0.0]])
    points = centres[labels] + spread * rng.standard_normal((n, 2))
    if far_points:
        far = np.array([4 * separation, 0.0]) + spread * rng.standard_normal((far_points, 2))
        points = np.concatenate([points, far])
        labels = np.concatenate([labels, np.ones(far_points, dtype=labels.dtype)])
    return points.astype(np.float32), labels.astype(np.int64)
