"""What a learner reads after a sweep: the ranked table, the best config, two plots.

- ``sweep_curves.png``: the validation accuracy (the sweep's metric) of every
  trial per epoch, overlaid; the best trial highlighted.
- ``sweep_params.png``: one panel per varied hyperparameter: each trial's best
  score against its value of that hyperparameter, with the mean per value;
  diverged and failed trials are drawn as red crosses at the worst end (the
  floor for an accuracy, above the highest score for a loss).

Plots need matplotlib (``pip install 'minigrad[plot]'``); without it
:func:`plot_sweep` raises :class:`minigrad.plot.PlotUnavailable`.
"""
import json
import math
from pathlib import Path

from ..plot import figure_class, save_figure
from ..train import metric_sign
from ..utils import is_number
from .space import canonical_json

__all__ = ["format_value", "format_table", "format_summary", "plot_sweep"]


def format_value(value):
    """A config value as a short string (floats in ``%g``, ``-`` for None)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _number(value, digits=4):
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(results, max_rows=None):
    """The ranked trials as an aligned text table: rank, trial id, the varied
    hyperparameters, best validation accuracy, final validation loss, epochs,
    seconds and status."""
    header = ["rank", "trial"] + list(results.varied)
    extra_metric = results.metric != "val_accuracy"
    if extra_metric:
        header.append(f"best {results.metric}")
    header += ["best val acc", "final val loss", "epochs", "seconds", "status"]
    rows = results.rows if max_rows is None else results.rows[:max_rows]
    lines = []
    for row in rows:
        cells = [str(row.get("rank", "")), row["trial_id"]]
        cells += [format_value(row["config"].get(name)) for name in results.varied]
        if extra_metric:
            cells.append(_number(row.get("score")))
        cells += [_number(row.get("best_val_accuracy")), _number(row.get("final_val_loss")),
                  str(row.get("epochs") or 0),
                  "-" if row.get("seconds") is None else f"{row['seconds']:.1f}",
                  row["status"]]
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h)
              for i, h in enumerate(header)]
    numeric = {0, *range(len(header) - 5, len(header) - 1)}
    if extra_metric:
        numeric.add(len(header) - 6)

    def fmt(cells):
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [fmt(header), fmt(["-" * w for w in widths])] + [fmt(c) for c in lines]
    if max_rows is not None and len(results.rows) > max_rows:
        out.append(f"... {len(results.rows) - max_rows} more in results.csv")
    return "\n".join(out)


def format_summary(results):
    """The table, the best configuration, failures, and what halving saved."""
    parts = [format_table(results)]
    counts = results.counts()
    parts.append("Trials: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    best = results.best
    if best is None:
        parts.append("No trial finished; see the errors above and in results.json.")
    else:
        score = best.get("score")
        where = f" at epoch {best['best_epoch']}" if best.get("best_epoch") else ""
        parts.append(f"Best: trial {best['trial_id']}, {results.metric} "
                     f"{_number(score)}{where}, config "
                     f"{json.dumps(best['config'], sort_keys=False)}")
    for row in results.rows:
        if row["status"] != "ok" and row.get("error"):
            parts.append(f"  {row['trial_id']} {row['status']}: "
                         f"{row['error'].splitlines()[0][:300]}")
    stats = results.halving
    if stats and "epochs_run" in stats:
        line = (f"Successive halving (rungs {stats['rungs']} epochs): trained "
                f"{stats['epochs_run']} epochs instead of {stats['epochs_full']} "
                f"({100 * stats['fraction_saved']:.0f}% fewer)")
        if stats.get("seconds_full_estimate"):
            line += (f"; {stats['seconds_run']:.0f}s of training instead of about "
                     f"{stats['seconds_full_estimate']:.0f}s")
        parts.append(line)
    if results.out_dir is not None:
        parts.append(f"Results: {results.out_dir / 'results.csv'} and results.json")
    return "\n".join(parts)


# --------------------------------------------------------------------------- plots
def _label(row, varied):
    return ", ".join(f"{k}={format_value(row['config'].get(k))}" for k in varied) \
        or row["trial_id"]


def plot_curves(results, path):
    """Validation metric per epoch for every trial, the best one highlighted."""
    Figure = figure_class("sweep plots")
    key = results.metric
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    best = results.best
    drawn = 0
    for row in reversed(results.rows):  # best drawn last, on top
        values = (row.get("history") or {}).get(key) or []
        points = [(i + 1, v) for i, v in enumerate(values) if v is not None]
        if not points:
            continue
        xs, ys = zip(*points)
        if best is not None and row is best:
            ax.plot(xs, ys, "o-", color="tab:red", linewidth=2.5, zorder=3,
                    label=f"best: {_label(row, results.varied)}")
        else:
            color = "0.55" if row["status"] == "ok" else "tab:orange"
            ax.plot(xs, ys, "-", color=color, linewidth=1, alpha=0.7, marker=".")
        drawn += 1
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(f"{key.replace('_', ' ')} of {drawn} trial(s)")
    ax.grid(True, alpha=0.3)
    _draw_chance(ax, results)
    if ax.get_legend_handles_labels()[0]:  # the best trial's curve, the chance level
        ax.legend(loc="best", fontsize=8)
    return save_figure(fig, path)


def chance_level(results):
    """What guessing scores on the sweep's metric (the trials' ``chance_accuracy``,
    e.g. 1/classes), or ``None`` when the metric is no accuracy or no trial says."""
    if "accuracy" not in results.metric:
        return None
    levels = [row.get("chance_accuracy") for row in results.rows
              if row.get("chance_accuracy") is not None]
    return max(levels) if levels else None


def _draw_chance(ax, results):
    """A dotted line at the chance level, so a "winner" at chance is seen as one."""
    level = chance_level(results)
    if level is not None:
        ax.axhline(level, color="0.4", linestyle=":", linewidth=1.2, zorder=1,
                   label=f"chance ({level:.3g})")


def _is_log_axis(values):
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and len(values) > 1 and max(values) / min(values) >= 50


def _worst_score(scores, sign):
    """Where failed trials go on a score axis: at or below 0 (or the lowest score) when
    higher is better; a little above the highest score when lower is better."""
    if sign > 0:
        return min(scores + [0.0])
    if not scores:
        return 0.0
    top = max(scores)
    return top + 0.05 * ((top - min(scores)) or abs(top) or 1.0)


def plot_params(results, path):
    """Each trial's best score against each varied hyperparameter (one panel each)."""
    Figure = figure_class("sweep plots")
    names = list(results.varied) or ["trial"]
    columns = min(3, len(names))
    rows_n = math.ceil(len(names) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.6 * rows_n), layout="constrained")
    axes = fig.subplots(rows_n, columns, squeeze=False).reshape(-1)
    ok = [r for r in results.rows if r["status"] == "ok" and r.get("score") is not None]
    bad = [r for r in results.rows if r not in ok]
    worst = _worst_score([r["score"] for r in ok],
                         metric_sign(results.metric, results.mode))
    for ax, name in zip(axes, names):
        value_of = (lambda r: r["trial_id"]) if name == "trial" else \
            (lambda r, n=name: r["config"].get(n))
        # Values are told apart by their JSON text: lists and dicts are not hashable,
        # and 1 == True == 1.0 in Python but not as hyperparameters.
        distinct = {}
        for row in results.rows:
            distinct.setdefault(canonical_json(value_of(row)), value_of(row))
        keys = list(distinct)
        numeric = all(is_number(v) and not isinstance(v, bool)  # True/False: categories
                      for v in distinct.values())
        if numeric:
            keys.sort(key=distinct.get)
        categorical = not numeric or len(keys) <= 8
        position = {key: i for i, key in enumerate(keys)}

        def x_of(row):
            value = value_of(row)
            return position[canonical_json(value)] if categorical else value

        for key in keys:
            scores = [r["score"] for r in ok if canonical_json(value_of(r)) == key]
            if scores:
                x = position[key] if categorical else distinct[key]
                ax.plot([x], [sum(scores) / len(scores)], "_", color="tab:blue",
                        markersize=22, markeredgewidth=2.5, zorder=2)
        ax.scatter([x_of(r) for r in ok], [r["score"] for r in ok],
                   color="0.3", s=22, zorder=3, label="trial")
        if bad:
            ax.scatter([x_of(r) for r in bad], [worst] * len(bad), marker="x",
                       color="tab:red", s=40, zorder=3, label="diverged/failed")
        if categorical:
            labels = [format_value(distinct[key]) for key in keys]
            ax.set_xticks(range(len(keys)), labels,
                          rotation=30 if max(len(label) for label in labels) > 6 else 0)
            ax.set_xlim(-0.5, len(keys) - 0.5)
        elif _is_log_axis(list(distinct.values())):
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel(f"best {results.metric.replace('_', ' ')}")
        ax.grid(True, alpha=0.3)
        _draw_chance(ax, results)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(f"Best {results.metric.replace('_', ' ')} per hyperparameter value "
                 f"(bar: mean)")
    return save_figure(fig, path)


def plot_sweep(results, out_dir):
    """Write ``sweep_curves.png`` and ``sweep_params.png`` into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    return [plot_curves(results, out_dir / "sweep_curves.png"),
            plot_params(results, out_dir / "sweep_params.png")]
