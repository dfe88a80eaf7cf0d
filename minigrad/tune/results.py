"""A sweep's results: the ranked trials (:class:`SweepResults`), the files that hold
them (``results.json``, read back here; ``results.csv``, written from the rows) and
the errors a sweep raises about them."""
import csv
import io
import json
from pathlib import Path

RESULTS_FORMAT = "minigrad-sweep-results"
RESULTS_VERSION = 1

#: Columns of results.csv after the rank, id, status and the config's values.
_METRIC_COLUMNS = ("best_val_accuracy", "best_epoch", "final_val_accuracy", "final_val_loss",
                   "final_accuracy", "final_loss", "epochs", "rung", "seconds",
                   "images_per_second", "error")


class SweepResults:
    """A sweep's trials, ranked (``rows``, best first), with its summary.

    Each row is a dict: ``rank``, ``trial_id``, ``status`` (``ok``, ``diverged``,
    ``failed``), ``config``, ``seed``, ``history`` (per-epoch lists), ``score``
    (the best ``metric``, largest or smallest as ``mode`` says), ``best_val_accuracy``,
    ``best_epoch``, ``final_*`` metrics, ``epochs`` trained, ``epochs_run`` (in all
    calls, retraining included), ``rung`` (halving: the last rung it trained through),
    ``seconds``, ``images_per_second``, ``error``. ``varied`` names the
    hyperparameters that differ between trials; ``halving`` holds the epochs and
    seconds it saved.
    """

    def __init__(self, rows, varied, metric="val_accuracy", halving=None, out_dir=None,
                 search=None, mode="auto"):
        self.rows = list(rows)
        self.varied = list(varied)
        self.metric = metric
        self.mode = mode  # which way the metric improves (see minigrad.train.metric_sign)
        self.halving = halving
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.search = search or {}
        self.wall_seconds = None  # set by Sweep.run

    @property
    def best(self):
        """The best finished trial's row, or ``None`` when none finished."""
        return next((row for row in self.rows if row["status"] == "ok"), None)

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, index):
        return self.rows[index]

    def counts(self):
        """How many trials ended in each status."""
        out = {}
        for row in self.rows:
            out[row["status"]] = out.get(row["status"], 0) + 1
        return out

    def table(self, max_rows=None):
        """The ranked table as text (see :func:`minigrad.tune.report.format_table`)."""
        from .report import format_table
        return format_table(self, max_rows=max_rows)

    def summary(self):
        """The table, the best configuration and what halving saved, as text."""
        from .report import format_summary
        return format_summary(self)

    def plot(self, out_dir=None):
        """Write ``sweep_curves.png`` and ``sweep_params.png``; returns their paths."""
        from .report import plot_sweep
        return plot_sweep(self, out_dir or self.out_dir)

    @classmethod
    def load(cls, out_dir):
        """The results of a sweep from its ``results.json``."""
        data = read_results(Path(out_dir) / "results.json")
        if data is None:
            raise FileNotFoundError(f"no sweep results in {out_dir} (results.json is missing)")
        return cls(data["trials"], data.get("varied", []), data.get("metric", "val_accuracy"),
                   data.get("halving"), out_dir, data.get("search"), data.get("mode", "auto"))


class SweepResultsError(ValueError):
    """An existing results file that cannot be continued (unreadable, or not a sweep's)."""


class SweepMetricError(ValueError):
    """The sweep's ``metric`` is not in the trials' histories (e.g. a misspelt name)."""


def read_results(path):
    """The parsed results file, ``None`` when absent; a clear error when unreadable."""
    if not path.exists():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise SweepResultsError(f"{path} exists but cannot be read as sweep results ({exc}); "
                                f"move it away to start a new sweep in that folder") from None
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise SweepResultsError(f"{path} is not a minigrad sweep results file; choose "
                                f"another output folder")
    return data


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value).replace("\r", " ").replace("\n", " ")


def csv_text(rows, metric):
    """``results.csv``: one ranked row per trial, the config's values, then the metrics."""
    params = []
    for row in rows:
        for key in row["config"]:
            if key not in params:
                params.append(key)
    metric_columns = list(_METRIC_COLUMNS)
    if metric != "val_accuracy":
        metric_columns.insert(0, "score")
    taken = {"rank", "trial_id", "status", *metric_columns}
    param_columns = [(f"param_{p}" if p in taken else p, p) for p in params]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "trial_id", "status"] + [c for c, _ in param_columns]
                    + [f"best_{metric}" if c == "score" else c for c in metric_columns])
    for row in rows:
        writer.writerow([row.get("rank"), row["trial_id"], row["status"]]
                        + [_csv_value(row["config"].get(p)) for _, p in param_columns]
                        + [_csv_value(row.get(c)) for c in metric_columns])
    return out.getvalue()
