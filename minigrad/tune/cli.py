"""The ``sweep`` command line, for any training script that has a trial function.

A script wires it with :func:`add_sweep_arguments` and :func:`run_sweep_cli`
(or :func:`sweep_main`, which does both)::

    python demos/bees_vs_wasps.py sweep --optimizer adam,sgd,rmsprop,adagrad \\
        --lr 1e-2,1e-3,1e-4 --activation relu,tanh --epochs 5 [--halving] \\
        [--trials N] [--metric KEY --mode max|min] [--workers N] [--cluster ADDRESS] \\
        [--out DIR] [--data PATH]

Each hyperparameter option takes one value (fixed), a comma-separated list
(grid axis, or a random choice), or a range ``LOW..HIGH`` (random search with
``--trials``; log-uniform for learning rates and whenever HIGH/LOW >= 100).
``--param NAME=VALUES`` does the same for any other field the trial function
takes. Running the same command again continues an interrupted sweep.
"""
import argparse
import os

from .space import Choice, LogUniform, SearchSpace, Uniform

__all__ = ["add_sweep_arguments", "run_sweep_cli", "sweep_main", "SWEEP_PARAMS",
           "parse_values", "check_trials"]

#: The hyperparameter options: (option, config key, value type, help).
SWEEP_PARAMS = (
    ("--optimizer", "optimizer", str, "optimizers, e.g. adam,sgd,rmsprop,adagrad"),
    ("--lr", "lr", float, "learning rates, e.g. 1e-2,1e-3,1e-4 or a range 1e-4..1e-2"),
    ("--activation", "activation", str, "activations, e.g. relu,tanh,sigmoid"),
    ("--loss", "loss", str, "losses, e.g. cross_entropy,hinge"),
    ("--batch-size", "batch_size", int, "batch sizes, e.g. 16,32,64"),
    ("--size", "size", int, "image sides in pixels, e.g. 32,80"),
    ("--epochs", "epochs", int, "epochs per trial (default 5); with --halving the most any "
                                "trial gets"),
)
_LOG_SCALE = {"lr", "learning_rate", "weight_decay"}
_DEFAULT_EPOCHS = "5"


def _convert(text, kind, name):
    text = text.strip()
    if kind is None:  # --param: guess the type
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("none", "null"):
            return None
        for convert in (int, float):
            try:
                return convert(text)
            except ValueError:
                pass
        return text
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"--{name.replace('_', '-')}: {text!r} is not a valid "
                         f"{kind.__name__}") from None


def parse_values(text, kind=None, name="value"):
    """One option's text as a fixed value, a :class:`Choice` of a comma-separated
    list, or a :class:`LogUniform`/:class:`Uniform` range ``LOW..HIGH``."""
    if not isinstance(text, str):
        return text  # already typed (e.g. the script's own single-valued option)
    if ".." in text:
        low, _, high = text.partition("..")
        if kind not in (None, float):
            raise ValueError(f"--{name.replace('_', '-')}: ranges are for real numbers; "
                             f"list the {kind.__name__} values instead (e.g. 16,32,64)")
        low, high = float(low), float(high)
        if name in _LOG_SCALE or (0 < low < high and high / low >= 100):
            return LogUniform(low, high)
        return Uniform(low, high)
    values = [_convert(v, kind, name) for v in text.split(",") if v.strip()]
    if not values:
        raise ValueError(f"--{name.replace('_', '-')} got no values")
    return values[0] if len(values) == 1 else Choice(values)


def _add(parser, *flags, **kwargs):
    """Add an option unless the script's parser already has it (its definition wins)."""
    existing = getattr(parser, "_option_string_actions", {})
    if any(flag in existing for flag in flags):
        return
    parser.add_argument(*flags, **kwargs)


def add_sweep_arguments(parser):
    """Add the sweep's options to an ``argparse`` parser; returns the parser.

    Options the parser already defines (e.g. a script's own ``--data``) are
    kept as they are.
    """
    space = parser.add_argument_group("search space (VALUES: one value, a comma-separated "
                                      "list, or a range LOW..HIGH for random search)")
    for flag, key, kind, text in SWEEP_PARAMS:
        _add(space, flag, dest=key, metavar="VALUES",
             default=_DEFAULT_EPOCHS if key == "epochs" else None, help=text)
    _add(space, "--param", action="append", default=[], metavar="NAME=VALUES",
         help="any other field of the trial's config, e.g. --param augment=true,false "
              "(repeatable)")
    search = parser.add_argument_group("search")
    _add(search, "--trials", type=int, default=None, metavar="N",
         help="random search: N distinct trials drawn from the space (default: the full grid)")
    _add(search, "--seed", type=int, default=123,
         help="the trials' seed (split, initial weights, batch order) and the random "
              "search's (123)")
    _add(search, "--halving", action="store_true",
         help="successive halving: all trials train a little, the best 1/ETA continue")
    _add(search, "--eta", type=int, default=3, help="halving: keep the best 1/ETA (3)")
    _add(search, "--min-epochs", type=int, default=1,
         help="halving: epochs of the first rung (1); the next rungs train ETA times more, "
              "the last --epochs")
    _add(search, "--metric", default="val_accuracy",
         help="the history key that ranks the trials, its best epoch counting "
              "(val_accuracy)")
    _add(search, "--mode", choices=("auto", "max", "min"), default="auto",
         help="which way --metric improves: max, min, or auto (max for accuracies, min "
              "for anything else, e.g. losses; say max for val_f1, val_auc, ...)")
    run = parser.add_argument_group("where trials run")
    _add(run, "--data", metavar="PATH", default=None,
         help="image folder for every trial (default: the script's built-in data); with "
              "--cluster it must be readable at this path on every worker")
    _add(run, "--device", default=None, help="cpu or cuda for every trial")
    _add(run, "--workers", type=int, default=None, metavar="N",
         help="parallel trials on this machine (default: one per core, 1 with --device "
              "cuda); each gets its share of the cores")
    _add(run, "--cluster", metavar="ADDRESS", default=None,
         help="run the trials on a Dask scheduler, e.g. tcp://10.0.0.5:8786 (needs "
              "pip install 'minigrad[cluster]'; workers need the data and --out paths)")
    _add(run, "--out", metavar="DIR", default="runs/sweep",
         help="results folder (runs/sweep); run again with the same one to continue")
    _add(run, "--retry-failed", action="store_true",
         help="on a restart, run the trials recorded as failed again")
    _add(run, "--no-checkpoints", dest="checkpoints", action="store_false",
         help="do not keep per-trial checkpoints (halving then retrains survivors)")
    _add(run, "--no-plots", dest="plots", action="store_false",
         help="skip sweep_curves.png and sweep_params.png")
    _add(run, "--quiet", action="store_true", help="print only the summary")
    return parser


def space_from_args(args):
    """The :class:`SearchSpace` the parsed options describe."""
    params = {}
    for _, key, kind, _ in SWEEP_PARAMS:
        text = getattr(args, key, None)
        if text is not None:
            params[key] = parse_values(text, kind, key)
    for item in getattr(args, "param", None) or []:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ValueError(f"--param needs NAME=VALUES, got {item!r}")
        params[name] = parse_values(text, None, name)
    data = getattr(args, "data", None)
    if data:
        if not os.path.isdir(data):
            raise FileNotFoundError(f"--data {data!r} is not a folder")
        params["data"] = os.path.abspath(data)  # workers may start elsewhere
    if getattr(args, "device", None):
        params["device"] = args.device
    return SearchSpace(params)


def _describe_space(space, trials):
    parts = []
    for name in space.varied:
        spec = space.params[name]
        parts.append(f"{name} ({len(spec.values)})" if spec.values is not None
                     else f"{name} {spec!r}")
    if trials:
        return f"random search, {trials} trials over " + ", ".join(parts)
    return f"grid of {space.size} trials over " + (", ".join(parts) or "one configuration")


def check_trials(space, check, kind="grid", trials=None, seed=0):
    """Call ``check(config)`` on every configuration the sweep would run, before any
    runs: a bad value (an unknown optimizer in a list, say) is a ``ValueError`` now,
    not a failed trial later. The error names the configuration's varied values."""
    for config in space.expand(kind, trials, seed):
        try:
            check(config)
        except (ValueError, TypeError) as exc:
            varied = ", ".join(f"{name}={config[name]!r}" for name in space.varied)
            raise type(exc)(f"{exc} (in the trial {varied})" if varied else str(exc)) from exc


def run_sweep_cli(args, trial_fn, check=None):
    """Run the sweep that parsed ``args`` describe with ``trial_fn``; returns an exit status
    (0: at least one trial finished, 1: none did, 2: bad options, 130: interrupted).

    ``check(config)``, if given, vets every trial's configuration first (see
    :func:`check_trials`), as the script's own command would vet its options.
    """
    from .sweep import Halving, Sweep, SweepMetricError, SweepResultsError
    try:
        space = space_from_args(args)
        kind = "random" if args.trials is not None else "grid"
        if check is not None:
            check_trials(space, check, kind, args.trials, args.seed)
        halving = Halving(min_epochs=args.min_epochs, eta=args.eta) if args.halving else None
        workers = args.workers
        if workers is None and str(space.fixed.get("device", "")).startswith("cuda"):
            workers = 1  # one GPU: trials take turns on it
        sweep = Sweep(space, trial_fn, args.out, workers=workers, cluster=args.cluster,
                      halving=halving, kind=kind, trials=args.trials, seed=args.seed,
                      metric=args.metric, mode=getattr(args, "mode", "auto"),
                      checkpoints=args.checkpoints,
                      retry_failed=args.retry_failed, verbose=0 if args.quiet else 1,
                      plots=args.plots)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}")
        return 2
    if not args.quiet:
        print(f"Search: {_describe_space(space, args.trials)}")
    try:
        results = sweep.run()
    except KeyboardInterrupt:
        print(f"\nInterrupted. Finished trials are in {sweep.out_dir / 'results.csv'}; run the "
              f"same command again to continue.")
        return 130
    except (ImportError, ConnectionError, SweepResultsError, SweepMetricError) as exc:
        # --cluster without dask or unreachable; an --out folder holding something else;
        # or a --metric the trials do not record
        print(f"error: {exc}")
        return 2
    if args.quiet:
        print(results.summary())
    if results.best is None:
        counts = ", ".join(f"{n} {status}" for status, n in results.counts().items())
        print(f"error: no trial finished ({counts}); see {sweep.out_dir / 'results.csv'}")
        return 1
    return 0


def sweep_main(argv, trial_fn, prog=None, check=None):
    """``add_sweep_arguments`` + ``run_sweep_cli`` in one call: a script's ``sweep`` command
    (``check``: see :func:`run_sweep_cli`)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Hyperparameter sweep: grid or random search, optional "
                               "successive halving, trials in parallel processes or on a "
                               "Dask cluster; results ranked in DIR/results.csv.")
    add_sweep_arguments(parser)
    return run_sweep_cli(parser.parse_args(argv), trial_fn, check=check)

