"""The bees-vs-wasps demo: model, one-call experiment, CLI; real-data learning (slow)."""
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image", reason="Pillow (a declared dependency) is not installed")

import minigrad as mg
from tests.helpers.repo import ROOT, shared_data


def _load_demo():
    spec = importlib.util.spec_from_file_location("bees_vs_wasps", ROOT / "demos" / "bees_vs_wasps.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bees_vs_wasps"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


demo = _load_demo()


def test_exercise_model_has_the_exercise_parameter_count():
    model = demo.build_model(4, "relu", 80)
    assert model.num_parameters() == 1_732_292
    small = demo.build_model(2, "tanh", 32)
    # convs 896 + 18,496 + 73,856; dense 2048*128 + 128; output 128*2 + 2
    assert small.num_parameters() == 93_248 + 262_272 + 258
    out = small(mg.tensor(np.zeros((3, 3, 32, 32), np.float32)))
    assert out.shape == (3, 2)
    assert any(type(m).__name__ == "Tanh" for m in small.modules())


@pytest.mark.parametrize("args, match", [
    ((4, "swish", 80), "unknown activation"), ((4, "relu", 4), "size"), ((1, "relu", 80), "classes"),
])
def test_build_model_rejects_bad_settings(args, match):
    with pytest.raises(ValueError, match=match):
        demo.build_model(*args)


def _tiny(tmp_path, **changes):
    config = dict(size=24, synthetic_images=480, epochs=4, out=str(tmp_path / "run"), seed=5)
    config.update(changes)
    return config


def test_run_experiment_on_synthetic_data_learns_and_writes_everything(tmp_path):
    result = demo.run_experiment(_tiny(tmp_path), verbose=0)
    out = tmp_path / "run"
    names = {"history.json", "result.json", "model.npz", "checkpoint.npz"}
    if demo.PlotUnavailable is not None and _has_matplotlib():
        names |= {"curves.png", "confusion.png"}
    assert names <= {p.name for p in out.iterdir()}
    assert result["classes"] == ["bee", "other_insect", "other_noinsect", "wasp"]
    assert (result["train_images"], result["val_images"]) == (384, 96)
    assert len(result["history"]["val_accuracy"]) == 4
    # Chance is 0.25 with four balanced classes; seeds 1-5 gave 0.59-0.77 here.
    assert result["val_accuracy"] > 0.45
    confusion = np.array(result["confusion"])
    assert confusion.shape == (4, 4) and confusion.sum() == 96
    assert json.loads((out / "result.json").read_text())["val_accuracy"] == result["val_accuracy"]
    saved = json.loads((out / "history.json").read_text())["history"]
    assert saved["val_loss"] == result["history"]["val_loss"]
    model = demo.build_model(4, "relu", 24)
    model.load(out / "model.npz")
    from minigrad.data import DataLoader
    from minigrad.train import evaluate
    _, val, _ = demo.load_data(demo.ExperimentConfig(**_tiny(tmp_path)))
    assert evaluate(model, DataLoader(val, 32)).accuracy == pytest.approx(result["val_accuracy"])
    assert result["val_loss"] == pytest.approx(result["history"]["val_loss"][-1])


def _has_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


def test_same_configuration_same_result(tmp_path):
    a = demo.run_experiment(_tiny(tmp_path, epochs=1, out=None, synthetic_images=96), verbose=0)
    b = demo.run_experiment(_tiny(tmp_path, epochs=1, out=None, synthetic_images=96), verbose=0)
    assert a["history"]["loss"] == b["history"]["loss"] and a["confusion"] == b["confusion"]


def test_class_count_and_names_come_from_the_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls, colour in (("ants", (60, 30, 20)), ("bees", (230, 180, 40))):
        (tmp_path / "photos" / cls).mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(rng.normal(colour, 30, (20, 20, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / cls / f"{i}.jpg")
    result = demo.run_experiment(_tiny(tmp_path, data=str(tmp_path / "photos"), epochs=1,
                                       cache=False), verbose=0)
    assert result["classes"] == ["ants", "bees"]
    assert np.array(result["confusion"]).shape == (2, 2)
    assert (result["train_images"], result["val_images"]) == (16, 4)


def test_cli_trains_quietly_and_prints_the_result(tmp_path, capsys):
    status = demo.main(["--size", "24", "--synthetic-images", "80", "--epochs", "1",
                        "--optimizer", "sgd", "--lr", "0.01", "--activation", "sigmoid",
                        "--out", str(tmp_path / "cli"), "--quiet"])
    assert status == 0
    assert capsys.readouterr().out.startswith("val_loss ")
    result = json.loads((tmp_path / "cli" / "result.json").read_text())
    assert result["config"]["optimizer"] == "sgd" and result["config"]["activation"] == "sigmoid"
    assert result["history"]["lr"] == [0.01]


def test_cli_trains_the_resnet_with_model_resnet(tmp_path, capsys):
    status = demo.main(["--model", "resnet", "--size", "16", "--synthetic-images", "40",
                        "--epochs", "1", "--out", str(tmp_path / "cli"), "--quiet"])
    assert status == 0
    result = json.loads((tmp_path / "cli" / "result.json").read_text())
    assert result["config"]["model"] == "resnet"
    with pytest.raises(SystemExit):  # the resnet's activation is fixed
        demo.main(["--model", "resnet", "--activation", "tanh", "--quiet"])
    assert "--activation applies to the exercise model" in capsys.readouterr().err


def test_cli_verbose_output_names_the_synthetic_set(tmp_path, capsys):
    demo.main(["train", "--size", "24", "--synthetic-images", "80", "--epochs", "1",
               "--out", str(tmp_path / "v")])
    out = capsys.readouterr().out
    assert "synthetic" in out and "not photos" in out and "--data" in out
    assert "Total params" in out and "Final validation loss" in out
    assert "true \\ predicted" in out and "Epoch 1/1" in out


def test_cli_missing_data_says_how_to_get_some(tmp_path, capsys):
    status = demo.main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "o")])
    assert status == 1
    err = capsys.readouterr().err
    assert "absent" in err and "--data" in err and "download_bee_vs_wasp" in err


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow on the way to inf
def test_cli_reports_divergence_without_a_traceback(tmp_path, capsys):
    status = demo.main(["--size", "24", "--synthetic-images", "80", "--epochs", "2",
                        "--optimizer", "sgd", "--lr", "1e12", "--out", str(tmp_path / "d"),
                        "--quiet"])
    assert status == 1
    assert "learning rate" in capsys.readouterr().err


def test_cli_resume_continues_the_run_under_other_names_of_its_settings(tmp_path, capsys):
    common = ["--size", "24", "--synthetic-images", "80", "--out", str(tmp_path / "r"), "--quiet"]
    assert demo.main(common + ["--epochs", "1", "--loss", "logistic"]) == 0
    # The registries' aliases and spellings name the same loss and optimizer.
    assert demo.main(common + ["--epochs", "2", "--resume", "--loss", "BCE",
                               "--optimizer", "Adam"]) == 0
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    assert history["epoch"] == [0, 1]


def test_settings_name_each_loss_optimizer_and_activation_once():
    def settings(**changes):
        return demo.experiment_settings(demo.ExperimentConfig(**changes))

    assert settings(loss="bce") == settings(loss="logistic") == settings(loss="Logistic")
    assert settings(loss="bce")["loss"] == "logistic"
    assert settings(loss="Cross-Entropy") == settings()
    assert settings(optimizer="AdamW")["optimizer"] == "adamw"
    assert settings(activation="ReLU") == settings() and settings(activation="Leaky_ReLU") \
        == settings(activation="leaky_relu")
    assert settings(loss="mse") != settings() and settings(lr=1e-3) == settings(lr=0.001)


def test_cli_resume_refuses_changed_settings_and_lists_them(tmp_path, capsys):
    out = tmp_path / "r"
    common = ["--size", "24", "--synthetic-images", "80", "--out", str(out), "--quiet"]
    assert demo.main(common + ["--epochs", "1"]) == 0
    checkpoint = (out / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    status = demo.main(common + ["--epochs", "2", "--resume", "--lr", "0.5", "--activation",
                                 "tanh", "--batch-size", "8", "--seed", "7"])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot resume") and "Traceback" not in err
    for change in ("seed 123 -> 7", "activation 'relu' -> 'tanh'", "lr 0.001 -> 0.5",
                   "batch_size 32 -> 8"):
        assert change in err
    assert "size" not in err.replace("batch_size", "")  # unchanged settings are not listed
    assert (out / "checkpoint.npz").read_bytes() == checkpoint  # nothing was trained
    # These used to end in a traceback from deep inside fit or load_state_dict.
    for flags, change in ((["--optimizer", "sgd"], "optimizer 'adam' -> 'sgd'"),
                          (["--size", "32"], "size 24 -> 32")):
        assert demo.main(common + ["--epochs", "2", "--resume"] + flags) == 1
        assert change in capsys.readouterr().err


def test_result_records_the_settings_a_resumed_run_used(tmp_path):
    config = _tiny(tmp_path, epochs=1, synthetic_images=80, lr=0.01)
    demo.run_experiment(config, verbose=0)
    result = demo.run_experiment({**config, "epochs": 2, "resume": True}, verbose=0)
    assert result["resumed"] and result["config"]["lr"] == 0.01
    assert result["history"]["lr"] == [0.01, 0.01]
    settings = demo.recorded_settings(tmp_path / "run" / demo.CHECKPOINT_FILE)
    assert settings == demo.experiment_settings(demo.ExperimentConfig(**config))
    with pytest.raises(demo.ExperimentError, match=r"lr 0.01 -> 0.5"):
        demo.run_experiment({**config, "epochs": 3, "resume": True, "lr": 0.5}, verbose=0)
    # The device and the cache are no part of the experiment: they may change.
    assert demo.experiment_settings(demo.ExperimentConfig(**config, cache=False)) == settings


def test_an_overwriting_run_keeps_the_folders_checkpoint_until_its_own_replaces_it(
        tmp_path, capsys):
    config = _tiny(tmp_path, epochs=1, synthetic_images=40)
    out = tmp_path / "run"
    checkpoint = out / demo.CHECKPOINT_FILE
    demo.run_experiment(config, verbose=0)
    first = checkpoint.read_bytes()

    class StopAtOnce(demo.Callback):
        def on_batch_end(self, step, logs=None):
            raise KeyboardInterrupt

    # A new run with other settings stopped before its first checkpoint (Ctrl-C) leaves
    # the earlier run's checkpoint, still resumable.
    with pytest.raises(KeyboardInterrupt):
        demo.run_experiment({**config, "lr": 0.1, "overwrite": True}, verbose=1,
                            callbacks=[StopAtOnce()])
    assert "first checkpoint replaces" in capsys.readouterr().out
    assert checkpoint.read_bytes() == first
    assert demo.run_experiment({**config, "epochs": 2, "resume": True}, verbose=0)["resumed"]
    # A new run that gets as far as a checkpoint replaces it, its settings inside.
    demo.run_experiment({**config, "lr": 0.1, "overwrite": True}, verbose=0)
    assert demo.recorded_settings(checkpoint)["lr"] == 0.1
    # A finished run of zero epochs writes no checkpoint and no curves: the earlier
    # run's are removed, so the folder describes one run; "Wrote" lists what it wrote.
    result = demo.run_experiment({**config, "epochs": 0, "overwrite": True}, verbose=1)
    said = capsys.readouterr().out
    assert not checkpoint.exists() and not (out / "curves.png").exists()
    assert "checkpoint.npz" not in said.split("Wrote ")[1].split(" to ")[0]
    assert "removed the earlier run's" in said
    assert set(result["files"]) >= {"history", "weights", "result"}
    assert "checkpoint" not in result["files"] and result["saved_epoch"] == 0


def test_a_folder_holding_a_run_is_refused_without_resume_or_overwrite(tmp_path, capsys):
    common = ["--size", "16", "--synthetic-images", "40", "--epochs", "1", "--quiet"]
    assert demo.main(common + ["--out", str(tmp_path / "r")]) == 0
    model = (tmp_path / "r" / "model.npz").read_bytes()
    capsys.readouterr()
    assert demo.main(common[:-3] + ["--epochs", "0", "--out", str(tmp_path / "r"),
                                    "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "holds another run's files" in err
    assert "--resume" in err and "--overwrite" in err
    assert (tmp_path / "r" / "model.npz").read_bytes() == model  # the trained model stays


def test_without_out_every_run_gets_a_new_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = ["--size", "16", "--synthetic-images", "40", "--epochs", "0", "--quiet"]
    assert demo.main(common) == 0 and demo.main(common) == 0
    runs = sorted((tmp_path / "runs" / "bees_vs_wasps").iterdir())
    assert len(runs) == 2 and all((run / "result.json").exists() for run in runs)
    result = json.loads((runs[1] / "result.json").read_text())
    assert result["config"]["out"] == str(Path("runs/bees_vs_wasps") / runs[1].name)
    with pytest.raises(demo.ExperimentError, match="--resume continues the run in --out"):
        demo.run_experiment(dict(size=16, epochs=1, resume=True), verbose=0)


def test_result_counts_epochs_from_one_and_lists_its_files(tmp_path):
    result = demo.run_experiment(_tiny(tmp_path, epochs=2, synthetic_images=40, size=16),
                                 verbose=0)
    accuracies = result["history"]["val_accuracy"]
    assert result["best_epoch"] == accuracies.index(max(accuracies)) + 1
    assert result["saved_epoch"] == 2 and result["epochs_trained"] == 2
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["files"] == result["files"] and {"weights", "checkpoint", "history",
                                                    "result"} <= set(saved["files"])
    assert all(Path(path).exists() for path in saved["files"].values())
    assert result["chance_accuracy"] == 0.25


def test_resume_for_no_more_epochs_than_done_is_refused(tmp_path, capsys):
    common = ["--size", "16", "--synthetic-images", "40", "--out", str(tmp_path / "r"),
              "--quiet"]
    assert demo.main(common + ["--epochs", "2"]) == 0
    before = (tmp_path / "r" / "result.json").read_bytes()
    capsys.readouterr()
    for epochs in ("1", "2"):
        assert demo.main(common + ["--epochs", epochs, "--resume"]) == 1
        err = capsys.readouterr().err
        assert f"for {epochs} epochs: it has done 2 already" in err and "Traceback" not in err
    assert (tmp_path / "r" / "result.json").read_bytes() == before


@pytest.mark.filterwarnings("ignore::minigrad.train.DivergenceWarning")  # lr 0.02: a bumpy start
def test_save_best_keeps_the_best_epochs_weights_and_says_which(tmp_path):
    from minigrad.data import DataLoader
    from minigrad.train import evaluate
    config = _tiny(tmp_path, epochs=4, synthetic_images=80, size=16, lr=0.02, save_best=True)
    result = demo.run_experiment(config, verbose=0)
    accuracies = result["history"]["val_accuracy"]
    assert result["saved_epoch"] == result["best_epoch"] == accuracies.index(max(accuracies)) + 1
    assert result["val_accuracy"] == pytest.approx(max(accuracies))
    model = demo.build_model(4, "relu", 16)
    model.load(tmp_path / "run" / "model.npz")
    _, val, _ = demo.load_data(demo.ExperimentConfig(**config))
    assert evaluate(model, DataLoader(val, 32)).accuracy == pytest.approx(max(accuracies))


def test_early_stopping_stops_when_val_accuracy_stalls(tmp_path):
    # lr 1e-9 leaves the model as it was: the accuracy stays at one level, so patience 1
    # stops after epoch 2.
    result = demo.run_experiment(_tiny(tmp_path, epochs=6, synthetic_images=40, size=16,
                                       optimizer="sgd", lr=1e-9, early_stopping=1), verbose=0)
    assert result["epochs_trained"] == 2 and result["stopped_early"]
    assert result["epochs"] == 6 and len(result["history"]["loss"]) == 2


def test_gpu_is_another_name_for_cuda(tmp_path, capsys):
    assert demo.ExperimentConfig(device="gpu").device == "cuda"
    assert demo.ExperimentConfig(device="GPU:0").device == "cuda:0"
    assert demo.build_parser().parse_args(["--device", "gpu"]).device == "cuda"
    with pytest.raises(SystemExit) as info:
        demo.main(["--device", "tpu", "--data", "/nowhere"])
    assert info.value.code == 2 and "--device must be cpu or cuda" in capsys.readouterr().err
    if not mg.cuda_available():  # the same clean error as --device cuda
        status = demo.main(["--device", "gpu", "--size", "16", "--synthetic-images", "40",
                            "--epochs", "1", "--out", str(tmp_path / "g"), "--quiet"])
        assert status == 1 and "cuda" in capsys.readouterr().err


def test_help_mentions_the_sweep_command(capsys):
    with pytest.raises(SystemExit):
        demo.main(["--help"])
    text = capsys.readouterr().out
    assert "sweep" in text and "sweep --help" in text


def test_an_image_size_that_cannot_fit_is_refused_before_allocating(tmp_path, capsys):
    estimate = demo.exercise_cnn_memory(5000, 32)
    assert estimate["parameters"] == 128 * 625 * 625 * 128 + 128 + 93_248 + 128 * 4 + 4
    small = demo.exercise_cnn_memory(80, 32)
    assert small["parameters"] == 1_732_292 and small["total"] < 1e9
    status = demo.main(["--size", "5000", "--synthetic-images", "40", "--epochs", "1",
                        "--out", str(tmp_path / "big"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("error: --size 5000 with --batch-size 32 needs about")
    assert "GB" in err and "free" in err and "Traceback" not in err
    assert not (tmp_path / "big").exists()


def test_sweep_checks_every_value_before_running_any_trial(tmp_path, capsys):
    status = demo.main(["sweep", "--optimizer", "adam,nadam", "--size", "16",
                        "--epochs", "1", "--out", str(tmp_path / "s"), "--quiet"])
    out = capsys.readouterr().out
    assert status == 2 and "unknown optimizer 'nadam'" in out and "optimizer='nadam'" in out
    assert not (tmp_path / "s" / "results.csv").exists()


def test_sweep_exits_non_zero_when_every_trial_failed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "run_experiment", _always_fails)
    status = demo.main(["sweep", "--lr", "1e-2,1e-3", "--size", "16", "--epochs", "1",
                        "--workers", "1", "--out", str(tmp_path / "s"), "--quiet"])
    out = capsys.readouterr().out
    assert status == 1 and "no trial finished (2 failed)" in out


def _always_fails(config, **kwargs):
    raise RuntimeError("the data went away")


def test_resuming_a_checkpoint_that_records_no_settings_says_so(tmp_path, capsys):
    from minigrad.io import load_tree, save_tree
    config = _tiny(tmp_path, epochs=1, synthetic_images=40)
    demo.run_experiment(config, verbose=0)
    checkpoint = tmp_path / "run" / demo.CHECKPOINT_FILE
    state = load_tree(checkpoint)  # as the demo wrote them before they recorded settings
    del state["callbacks"][demo.STATE_KEY]
    save_tree(checkpoint, state)
    assert demo.recorded_settings(checkpoint) is None
    with warnings.catch_warnings():  # the record is no state to resume: no warning
        warnings.simplefilter("error")
        result = demo.run_experiment({**config, "epochs": 2, "resume": True}, verbose=1)
    assert "cannot be checked" in capsys.readouterr().out and result["resumed"]
    assert demo.recorded_settings(checkpoint) == demo.experiment_settings(
        demo.ExperimentConfig(**config))


def test_cli_refuses_to_resume_an_unreadable_checkpoint_in_one_line(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / demo.CHECKPOINT_FILE).write_bytes(b"not an npz")
    status = demo.main(["--size", "24", "--synthetic-images", "80", "--epochs", "1",
                        "--resume", "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("error: cannot resume") and "Traceback" not in err


def test_cli_reports_data_errors_in_one_line(tmp_path, capsys):
    _save_pictures(tmp_path / "one", ["bees"], 5)
    (tmp_path / "none").mkdir()
    _save_pictures(tmp_path / "few", ["ants", "bees"], 2)
    for folder, message in (("one", "a classifier needs at least 2 classes"),
                            ("none", "has no class subfolders"),
                            ("few", "4 for training and 0 for validation")):
        status = demo.main(["--data", str(tmp_path / folder), "--size", "24", "--epochs", "1",
                            "--no-cache", "--out", str(tmp_path / "o"), "--quiet"])
        err = capsys.readouterr().err
        assert status == 1 and err.startswith("error: ") and message in err
        assert "Traceback" not in err


def test_cli_keeps_the_traceback_of_a_programming_error(monkeypatch):
    def broken(config, verbose=1, **kwargs):
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(demo, "run_experiment", broken)
    with pytest.raises(TypeError, match="unsupported operand"):
        demo.main(["--epochs", "1", "--quiet"])


def test_cli_keeps_the_traceback_of_a_value_error_raised_while_training(tmp_path,
                                                                        monkeypatch):
    def broken_fit(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")  # a library bug

    monkeypatch.setattr(demo, "fit", broken_fit)
    with pytest.raises(ValueError, match="could not be broadcast"):
        demo.main(["--size", "24", "--synthetic-images", "80", "--epochs", "1",
                   "--out", str(tmp_path / "b"), "--quiet"])


def _save_pictures(root, classes, per_class):
    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")


def test_sub_commands_dispatch(monkeypatch):
    seen = []
    monkeypatch.setitem(demo.COMMANDS, "sweep", lambda argv: seen.append(argv) or 7)
    assert demo.main(["sweep", "--lr", "1e-2,1e-3"]) == 7
    assert seen == [["--lr", "1e-2,1e-3"]]


def test_default_epochs_depend_on_the_data():
    assert demo.ExperimentConfig().resolved_epochs() == demo.SYNTHETIC_EPOCHS
    assert demo.ExperimentConfig(data="x").resolved_epochs() == 10
    assert demo.ExperimentConfig(epochs=3).resolved_epochs() == 3


# ----------------------------------------------------------------- real photos (slow)
@pytest.mark.slow
def test_exercise_protocol_learns_real_insect_photos(tmp_path):
    result = demo.run_experiment(dict(data=str(shared_data("hymenoptera")), epochs=10,
                                      out=None, cache=False), verbose=0)
    history = result["history"]
    confusion = np.array(result["confusion"])
    majority = confusion.sum(axis=1).max() / confusion.sum()
    assert result["classes"] == ["ants", "bees"]
    assert max(history["accuracy"]) > 0.8  # chance is 0.5
    assert result["best_val_accuracy"] > majority + 0.05


@pytest.mark.slow
def test_cifar10_comes_within_three_standard_errors_of_pytorch_in_six_epochs(tmp_path):
    result = demo.run_experiment(dict(data=str(shared_data("cifar10")), size=32, epochs=6,
                                      out=None, cache=False), verbose=0)
    assert len(result["classes"]) == 10 and result["val_images"] == 2000
    # PyTorch, same model, protocol and files: 0.625-0.640 over three seeds (the issue's
    # figure); PyTorch fed these very batches: 0.616 (seed 123). minigrad measured
    # 0.6075-0.6205 over seeds and kernel versions. One standard error on 2,000 test
    # images is about 0.011; the bound sits three of them under PyTorch's low end.
    assert result["val_accuracy"] >= 0.59
    assert result["history"]["accuracy"][-1] > 0.7


@pytest.mark.parametrize("args, match", [
    (["--optimizer", "adamm"], "unknown optimizer 'adamm'; known: adagrad, adam"),
    (["--loss", "l2"], "unknown loss 'l2'; known losses"),
    (["--size", "4"], "at least 8"),
    (["--lr", "0"], "--lr must be positive"),
    (["--cuda-graph"], "--cuda-graph needs --device cuda, not 'cpu'"),
    (["--tf32"], "--tf32 needs --device cuda, not 'cpu'"),
])
def test_cli_rejects_bad_settings_before_loading_data(args, match, capsys):
    with pytest.raises(SystemExit) as info:
        demo.main(args + ["--data", "/nowhere/at/all"])
    assert info.value.code == 2
    assert match in capsys.readouterr().err


def test_zero_epochs_still_evaluates_and_writes(tmp_path):
    result = demo.run_experiment(_tiny(tmp_path, epochs=0, synthetic_images=40), verbose=0)
    assert result["history"] == {} and 0 <= result["val_accuracy"] <= 1
    assert (tmp_path / "run" / "confusion.png").exists() == _has_matplotlib()


def test_without_matplotlib_the_demo_runs_and_says_how_to_get_plots(tmp_path, no_matplotlib,
                                                                     capsys):
    demo.run_experiment(_tiny(tmp_path, epochs=1, synthetic_images=40), verbose=2)
    assert "pip install 'minigrad[plot]'" in capsys.readouterr().out
    written = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"history.json", "result.json", "model.npz"} <= written
    assert not written & {"curves.png", "confusion.png"}


def test_ctrl_c_stops_in_one_line_keeps_the_checkpoint_and_resume_continues(tmp_path):
    import os
    import signal
    import subprocess
    import time
    out = tmp_path / "c"
    command = [sys.executable, str(ROOT / "demos" / "bees_vs_wasps.py"), "--size", "16",
               "--synthetic-images", "200", "--batch-size", "4", "--epochs", "200",
               "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    checkpoint = out / demo.CHECKPOINT_FILE
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert checkpoint.exists(), process.communicate()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("interrupted at epoch ") and "continue with --resume" in lines[0]
    done = len(demo.load_checkpoint(checkpoint)["history"]["epoch"])  # intact, readable
    assert done >= 1 and f"keeps epoch {done}" in lines[0]
    assert demo.main(["--size", "16", "--synthetic-images", "200", "--batch-size", "4",
                      "--epochs", str(done + 1), "--out", str(out), "--resume",
                      "--quiet"]) == 0
    assert json.loads((out / "history.json").read_text())["epoch"] == list(range(done + 1))


def test_cli_warns_when_a_finite_loss_climbs_far_above_its_start(tmp_path, capsys):
    status = demo.main(["--size", "16", "--synthetic-images", "80", "--batch-size", "8",
                        "--epochs", "1", "--lr", "100", "--out", str(tmp_path / "d"),
                        "--quiet"])
    err = capsys.readouterr().err
    assert status == 0 and err.startswith("warning: the training loss of epoch 1")
    assert "lower the learning rate (it is 100)" in err and len(err.splitlines()) == 1
    result = json.loads((tmp_path / "d" / "result.json").read_text())
    assert result["diverged"] and "diverging" in result["divergence"]
