"""minigrad.io: atomic writes and the nested-state container used by checkpoints."""
import json
import math
import os

import numpy as np
import pytest

from minigrad.io import atomic_write, atomic_write_json, atomic_write_text, load_tree, save_tree


def test_atomic_write_replaces_the_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "result.bin"
    atomic_write(path, lambda f: f.write(b"first"))
    atomic_write(path, lambda f: f.write(b"second"))
    assert path.read_bytes() == b"second"
    assert os.listdir(path.parent) == ["result.bin"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"good old bytes")

    def half_then_crash(f):
        f.write(b"half a new fi")
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_crash)
    assert path.read_bytes() == b"good old bytes"
    assert os.listdir(tmp_path) == ["checkpoint.npz"]


def test_text_and_json_helpers(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "héllo")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    atomic_write_json(tmp_path / "b.json", {"acc": np.float32(0.5), "m": np.eye(2, dtype=int)})
    assert json.loads((tmp_path / "b.json").read_text()) == {"acc": 0.5, "m": [[1, 0], [0, 1]]}
    with pytest.raises(TypeError, match="not JSON serialisable"):
        atomic_write_json(tmp_path / "c.json", {"x": object()})
    assert not (tmp_path / "c.json").exists()


def test_tree_round_trip_keeps_types(tmp_path):
    tree = {
        "model": {"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                  "0.bias": np.zeros(2, np.float64)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(4, np.float32)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0]}]},
        "rng": {"state": 2**127 + 12345, "flag": True, "none": None},
        "history": {"loss": [1.0, float("nan"), float("inf")]},
        "labels": np.array([1, 2], np.int64),
        "name": "run",
        "scalar": np.float64(2.5),
    }
    save_tree(tmp_path / "t.npz", tree)
    back = load_tree(tmp_path / "t.npz")
    np.testing.assert_array_equal(back["model"]["0.weight"], tree["model"]["0.weight"])
    assert back["model"]["0.weight"].dtype == np.float32
    assert back["model"]["0.bias"].dtype == np.float64
    assert list(back["optimizer"]["state"]) == [0]  # int keys stay ints
    assert back["optimizer"]["state"][0]["step"] == 3
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)  # tuples stay tuples
    assert back["rng"] == {"state": 2**127 + 12345, "flag": True, "none": None}
    loss = back["history"]["loss"]
    assert loss[0] == 1.0 and math.isnan(loss[1]) and loss[2] == math.inf
    assert back["labels"].tolist() == [1, 2] and back["name"] == "run" and back["scalar"] == 2.5


def test_tree_refuses_what_it_cannot_store_safely(tmp_path):
    with pytest.raises(TypeError, match=r"tree\['a'\]\[0\]: cannot save"):
        save_tree(tmp_path / "x.npz", {"a": [object()]})
    with pytest.raises(TypeError, match="object arrays"):
        save_tree(tmp_path / "x.npz", {"a": np.array([None, 1], dtype=object)})
    with pytest.raises(TypeError, match="dict key"):
        save_tree(tmp_path / "x.npz", {(1, 2): 3})
    assert not (tmp_path / "x.npz").exists()
    np.savez(tmp_path / "plain.npz", w=np.zeros(2))
    with pytest.raises(ValueError, match="not a minigrad state file"):
        load_tree(tmp_path / "plain.npz")


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back after it."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path):
    return oct(os.stat(path).st_mode & 0o777)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_files_get_the_umask_default_not_0600(tmp_path, umask):
    atomic_write_text(tmp_path / "a.json", "{}")
    assert _mode(tmp_path / "a.json") == oct(0o644)  # what open() gives under umask 022
    umask(0o027)
    atomic_write(tmp_path / "b.npz", lambda f: f.write(b"x"))
    assert _mode(tmp_path / "b.npz") == oct(0o640)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_overwriting_keeps_the_existing_files_mode(tmp_path, umask):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"old")
    for mode in (0o644, 0o604, 0o600):
        os.chmod(path, mode)
        atomic_write(path, lambda f: f.write(b"new"))
        assert _mode(path) == oct(mode) and path.read_bytes() == b"new"


@pytest.mark.skipif(os.name != "posix", reason="POSIX umask")
def test_umask_is_read_without_proc_too(umask, monkeypatch):
    import minigrad.io as mg_io
    umask(0o027)
    assert mg_io.current_umask() == 0o027

    def no_proc(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(mg_io, "open", no_proc, raising=False)  # the fallback path
    assert mg_io.current_umask() == 0o027
    assert os.umask(0o027) == 0o027  # ... which put the umask back


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


def test_json_writes_null_for_nan_and_infinities(tmp_path):
    obj = {"loss": [1.0, math.nan, np.float32("inf")], "nested": {"x": (-math.inf, 2)},
           "array": np.array([[np.nan, 0.5]]), "scalar": np.float64("nan"), "ok": True,
           "none": None}
    atomic_write_json(tmp_path / "r.json", obj)
    back = _strict_json((tmp_path / "r.json").read_text())  # the old bare NaN fails here
    assert back == {"loss": [1.0, None, None], "nested": {"x": [None, 2]},
                    "array": [[None, 0.5]], "scalar": None, "ok": True, "none": None}


def test_history_json_round_trips_nan(tmp_path):
    from minigrad.train import History
    history = History()
    history.append(0, {"loss": math.nan, "val_loss": math.inf})
    history.append(1, {"loss": 0.5, "val_loss": 0.25})
    path = history.save(tmp_path / "history.json")
    with open(path, encoding="utf-8") as f:
        assert _strict_json(f.read())["history"]["loss"] == [None, 0.5]
    back = History.load(path)
    assert math.isnan(back["loss"][0]) and back["loss"][1] == 0.5
    assert math.isnan(back["val_loss"][0])  # inf is stored as null too: it reads back as NaN
    assert back.epoch == [0, 1]


def test_load_tree_names_a_bare_npy_file(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match=r"weights\.npy is not a minigrad state file"):
        load_tree(path)
