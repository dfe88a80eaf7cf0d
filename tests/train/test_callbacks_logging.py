"""CSVLogger and TensorBoard callbacks; the TensorBoard files are read back with
tensorboardX's own protobuf messages."""
import csv
import io
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.repo import load_demo

import minigrad as mg
from minigrad import nn
from minigrad.data import DataLoader, TensorDataset
from minigrad.train import Callback, CSVLogger, TensorBoard, fit


def _loaders():
    rng = np.random.default_rng(0)
    labels = np.arange(120) % 3
    x = (np.eye(3)[labels] * 2 + rng.normal(0, 0.5, (120, 3))).astype(np.float32)
    data = TensorDataset(x, labels.astype(np.int64))
    data.classes = ["ant", "bee", "wasp"]
    return DataLoader(data, 16, shuffle=True, seed=1), DataLoader(data, 40)


def _fit(callbacks, epochs=3, val=True):
    mg.manual_seed(0)
    model = nn.Sequential(nn.Dense(3, 8), nn.ReLU(), nn.Dense(8, 3))
    train, val_loader = _loaders()
    return model, fit(model, train, val_loader if val else None, lr=0.05, epochs=epochs,
                      callbacks=callbacks, verbose=0)


def _rows(path, separator=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=separator))


# --------------------------------------------------------------------------- CSVLogger
def test_csv_logger_writes_a_header_and_one_row_per_epoch(tmp_path):
    path = tmp_path / "logs" / "run.csv"
    _, history = _fit([CSVLogger(path)])
    rows = _rows(path)
    keys = sorted(history.history)
    assert rows[0] == ["epoch"] + keys
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2]
    for i, row in enumerate(rows[1:]):
        assert [float(v) for v in row[1:]] == [history.history[k][i] for k in keys]


def test_csv_logger_appends_or_starts_afresh_and_takes_a_separator(tmp_path):
    path = tmp_path / "run.csv"
    _fit([CSVLogger(path, separator=";")], epochs=2)
    _fit([CSVLogger(path, separator=";", append=True)], epochs=2)
    rows = _rows(path, ";")
    assert rows[0][0] == "epoch" and len(rows) == 5  # one header, four epochs
    assert [r[0] for r in rows[1:]] == ["0", "1", "0", "1"]
    _fit([CSVLogger(path, separator=";")], epochs=1)
    assert len(_rows(path, ";")) == 2


def test_csv_logger_writes_na_for_a_metric_an_epoch_lacks(tmp_path):
    class FirstEpochOnly(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                logs["extra"] = 1.5

    path = tmp_path / "run.csv"
    _fit([FirstEpochOnly(), CSVLogger(path)], epochs=2)
    rows = _rows(path)
    column = rows[0].index("extra")
    assert rows[1][column] == "1.5" and rows[2][column] == "NA"


# --------------------------------------------------------------------------- TensorBoard
def _events(folder):
    """Every Event in the event files of ``folder``, parsed from the TFRecord framing
    (length, its CRC, the record, its CRC) with tensorboardX's protobuf Event."""
    from tensorboardX.proto.event_pb2 import Event
    events = []
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            offset += 12
            events.append(Event.FromString(data[offset:offset + length]))
            offset += length + 4
    return events


def _scalars(folder, tag):
    return {e.step: v.simple_value for e in _events(folder) for v in e.summary.value
            if v.tag == tag}


def test_tensorboard_writes_scalars_histograms_and_the_confusion_matrix(tmp_path):
    pytest.importorskip("tensorboardX")
    pytest.importorskip("matplotlib")
    from PIL import Image
    model, history = _fit([TensorBoard(tmp_path / "tb")], epochs=3)
    train_loss = _scalars(tmp_path / "tb" / "train", "epoch_loss")
    assert sorted(train_loss) == [0, 1, 2]
    np.testing.assert_allclose([train_loss[e] for e in range(3)], history["loss"], rtol=1e-6)
    val_accuracy = _scalars(tmp_path / "tb" / "validation", "epoch_accuracy")
    np.testing.assert_allclose([val_accuracy[e] for e in range(3)], history["val_accuracy"],
                               rtol=1e-6)
    assert list(_scalars(tmp_path / "tb" / "train", "epoch_lr").values()) == \
        pytest.approx([0.05] * 3)
    histograms = {(e.step, v.tag): v.histo for e in _events(tmp_path / "tb" / "train")
                  for v in e.summary.value if v.HasField("histo")}
    assert {tag for _, tag in histograms} == {"0.weight", "0.bias", "2.weight", "2.bias"}
    last = histograms[(2, "0.weight")]
    weight = model.state_dict()["0.weight"]
    assert last.num == weight.size
    assert last.min == pytest.approx(weight.min()) and last.max == pytest.approx(weight.max())
    images = [v.image for e in _events(tmp_path / "tb" / "validation") for v in e.summary.value
              if v.tag == "confusion_matrix"]
    assert len(images) == 1
    picture = Image.open(io.BytesIO(images[0].encoded_image_string))
    assert picture.size == (images[0].width, images[0].height) and picture.width > 100


def test_tensorboard_without_validation_data_writes_training_curves_only(tmp_path):
    pytest.importorskip("tensorboardX")
    _fit([TensorBoard(tmp_path / "tb", histogram_freq=0)], epochs=2, val=False)
    assert not (tmp_path / "tb" / "validation").exists()
    events = _events(tmp_path / "tb" / "train")
    assert not any(v.HasField("histo") for e in events for v in e.summary.value)
    assert sorted(_scalars(tmp_path / "tb" / "train", "epoch_loss")) == [0, 1]


def test_tensorboard_without_tensorboardx_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"minigrad\[tensorboard\]"):
        TensorBoard("logs")


def test_tensorboard_rejects_a_bad_histogram_frequency():
    pytest.importorskip("tensorboardX")
    with pytest.raises(ValueError, match="histogram_freq"):
        TensorBoard("logs", histogram_freq=-1)


def test_the_demo_logs_for_tensorboard_with_one_flag(tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    demo = load_demo("bees_vs_wasps")
    status = demo.main(["--size", "16", "--synthetic-images", "40", "--epochs", "2",
                        "--out", str(tmp_path / "run"), "--quiet",
                        "--tensorboard", str(tmp_path / "tb")])
    assert status == 0
    assert sorted(_scalars(tmp_path / "tb" / "validation", "epoch_loss")) == [0, 1]
