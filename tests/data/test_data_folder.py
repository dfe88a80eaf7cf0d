"""ImageFolder: decoding, bad files, errors, the on-disk cache, split folders."""
import os
import warnings

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image", reason="Pillow (a declared dependency) is not installed")

from minigrad.data import (ImageFolder, SyntheticInsects, find_split_folders,
                           load_image_folder, save_image_folder)
from tests.helpers.repo import shared_data


def _write(path, colour, size=(12, 10), mode="RGB", fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new(mode, size, colour)
    image.save(path, format=fmt)
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "insects"
    _write(root / "wasp" / "w1.png", (250, 220, 20))
    _write(root / "wasp" / "w2.jpg", (240, 210, 30), size=(30, 18))
    _write(root / "bee" / "b1.png", (200, 120, 10))
    _write(root / "bee" / "nested" / "b2.bmp", (190, 110, 20))
    _write(root / "bee" / "grey.png", 128, mode="L")
    _write(root / "bee" / "alpha.png", (10, 20, 30, 40), mode="RGBA")
    (root / "README.md").write_text("files at the top level are not samples")
    (root / "bee" / ".DS_Store").write_bytes(b"\x00hidden")
    (root / ".ipynb_checkpoints").mkdir()
    return root


def test_image_folder_decodes_resizes_and_labels(folder):
    ds = ImageFolder(folder, size=(8, 6), mean=(0, 0, 0), std=(1, 1, 1))
    assert ds.classes == ["bee", "wasp"]  # sorted folder names; hidden folder ignored
    assert ds.images.shape == (6, 8, 6, 3) and ds.images.dtype == np.uint8
    assert ds.labels.tolist() == [0, 0, 0, 0, 1, 1]
    assert ds.paths == ["bee/alpha.png", "bee/b1.png", "bee/grey.png", "bee/nested/b2.bmp",
                        "wasp/w1.png", "wasp/w2.jpg"]
    assert ds.skipped == []
    # A flat-colour picture keeps its colour through resize; greyscale and RGBA become RGB.
    np.testing.assert_array_equal(ds.images[1], np.full((8, 6, 3), (200, 120, 10)))
    np.testing.assert_array_equal(ds.images[2], np.full((8, 6, 3), 128))
    np.testing.assert_array_equal(ds.images[0], np.full((8, 6, 3), (10, 20, 30)))
    x, y = ds[1]
    np.testing.assert_allclose(x[:, 0, 0], np.array([200, 120, 10]) / 255.0, rtol=1e-6)
    assert ds.samples[1] == (str(folder / "bee" / "b1.png"), 0)


def test_resize_matches_pillow_bilinear(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)
    (tmp_path / "c").mkdir()
    (tmp_path / "d").mkdir()
    Image.fromarray(pixels).save(tmp_path / "c" / "x.png")
    Image.fromarray(pixels[::-1]).save(tmp_path / "d" / "y.png")
    ds = ImageFolder(tmp_path, size=20)
    expected = np.asarray(Image.fromarray(pixels).resize((20, 20), Image.BILINEAR))
    np.testing.assert_array_equal(ds.images[0], expected)


def test_unreadable_files_are_skipped_with_one_warning(folder):
    (folder / "wasp" / "notes.txt").write_text("not an image")
    (folder / "wasp" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    truncated = (folder / "bee" / "b1.png").read_bytes()[:40]
    (folder / "bee" / "cut.png").write_bytes(truncated)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ImageFolder(folder, size=8)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "skipped 3 files" in messages[0]
    for name in ("notes.txt", "broken.jpg", "cut.png"):
        assert name in messages[0]
    assert len(ds) == 6 and sorted(ds.skipped) == ["bee/cut.png", "wasp/broken.jpg",
                                                     "wasp/notes.txt"]


def test_warning_names_only_a_few_of_many(tmp_path):
    _write(tmp_path / "a" / "ok.png", (1, 2, 3))
    _write(tmp_path / "b" / "ok.png", (1, 2, 3))
    for i in range(9):
        (tmp_path / "a" / f"bad{i}.dat").write_bytes(b"nope")
    with pytest.warns(UserWarning, match=r"skipped 9 files .*bad4\.dat, \.\.\.\)"):
        ImageFolder(tmp_path, size=4)


def test_missing_path_says_how_to_get_data(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        ImageFolder(tmp_path / "nowhere")
    message = str(info.value)
    assert "nowhere" in message and "download_bee_vs_wasp" in message
    assert "--data" not in message  # a library error; the demo adds its own flags
    with pytest.raises(FileNotFoundError, match="one subfolder of images per class"):
        load_image_folder(tmp_path / "nowhere")


def test_empty_folders_are_errors(tmp_path):
    with pytest.raises(ValueError, match="no class subfolders"):
        ImageFolder(tmp_path)
    (tmp_path / "bee").mkdir()
    (tmp_path / "wasp").mkdir()
    with pytest.raises(ValueError, match="contains no readable images"):
        ImageFolder(tmp_path)
    _write(tmp_path / "bee" / "b.png", (1, 1, 1))
    with pytest.raises(ValueError, match="class folder wasp contains no readable images"):
        ImageFolder(tmp_path)
    (tmp_path / "wasp" / "junk.txt").write_text("x")  # only junk: still empty, plus a warning
    with pytest.warns(UserWarning, match="skipped 1 file"):
        with pytest.raises(ValueError, match="wasp"):
            ImageFolder(tmp_path)
    file_path = tmp_path / "bee" / "b.png"
    with pytest.raises(NotADirectoryError):
        ImageFolder(file_path)


def test_16_bit_greyscale_is_scaled_not_clipped_to_white(tmp_path):
    grey16 = np.full((6, 5), 40000, np.uint16)  # 61% grey; convert("RGB") made it 255
    grey16[0, 0] = 65535
    (tmp_path / "a").mkdir()
    Image.fromarray(grey16).save(tmp_path / "a" / "g16.png")
    with Image.open(tmp_path / "a" / "g16.png") as opened:
        assert opened.mode.startswith("I;16")
    deep = np.full((6, 5), 3 << 29, np.int32)  # 32-bit values beyond 16 bits: 3/4 of 2**31
    _write(tmp_path / "b" / "ok.png", (1, 2, 3))
    Image.fromarray(deep).save(tmp_path / "b" / "deep.tif")
    ds = ImageFolder(tmp_path, size=(6, 5))
    g16 = ds.images[ds.paths.index("a/g16.png")]
    np.testing.assert_array_equal(g16[1:, :], np.full((5, 5, 3), 40000 >> 8))
    np.testing.assert_array_equal(g16[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(ds.images[ds.paths.index("b/deep.tif")],
                                  np.full((6, 5, 3), (3 << 29) >> 23))


def test_mac_resource_fork_folder_is_not_a_class(folder):
    # What unzipping a Mac-made archive leaves beside the classes.
    (folder / "__MACOSX" / "bee").mkdir(parents=True)
    (folder / "__MACOSX" / "bee" / "._b1.png").write_bytes(b"\x00\x05\x16\x07resource fork")
    ds = ImageFolder(folder, size=4)
    assert ds.classes == ["bee", "wasp"] and len(ds) == 6


def test_explicit_classes_must_match(folder):
    ds = ImageFolder(folder, size=4, classes=["wasp", "bee"])
    assert ds.classes == ["wasp", "bee"] and ds.labels.tolist() == [0, 0, 1, 1, 1, 1]
    with pytest.raises(ValueError, match=r"missing \['ant'\]"):
        ImageFolder(folder, size=4, classes=["ant", "bee", "wasp"])
    with pytest.raises(ValueError, match=r"unexpected \['wasp'\]"):
        ImageFolder(folder, size=4, classes=["bee"])


def test_cache_is_reused_and_invalidated(folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = ImageFolder(folder, size=8, cache=cache)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and first.cache_path == files[0]

    import minigrad.data.folder as folder_module
    calls = []
    original = folder_module._decode
    monkeypatch.setattr(folder_module, "_decode", lambda p, s: calls.append(p) or original(p, s))
    second = ImageFolder(folder, size=8, cache=cache)
    assert calls == []  # served from the cache: Pillow never ran
    np.testing.assert_array_equal(second.images, first.images)
    assert second.labels.tolist() == first.labels.tolist() and second.paths == first.paths

    size_9 = ImageFolder(folder, size=9, cache=cache)  # another size: another cache file
    assert len(calls) == 6 and len(list(cache.iterdir())) == 2
    _write(folder / "wasp" / "w3.png", (1, 2, 3))  # the folder changed: decode again
    third = ImageFolder(folder, size=8, cache=cache)
    assert len(third) == 7
    # The stale size-8 file is replaced, not kept beside the new one; size 9's stays.
    assert sorted(cache.iterdir()) == sorted([third.cache_path, size_9.cache_path])
    assert not first.cache_path.exists()


def test_stale_cache_removal_spares_other_folders_and_files(folder, tmp_path):
    cache = tmp_path / "cache"
    other = tmp_path / "other" / "insects"  # same folder name, another folder
    _write(other / "a" / "1.png", (1, 2, 3))
    _write(other / "b" / "1.png", (3, 2, 1))
    kept = ImageFolder(other, size=8, cache=cache).cache_path
    (cache / "notes.txt").write_text("mine")
    ImageFolder(folder, size=8, cache=cache)
    _write(folder / "wasp" / "w3.png", (1, 2, 3))
    newest = ImageFolder(folder, size=8, cache=cache).cache_path
    assert sorted(p.name for p in cache.iterdir()) == sorted([kept.name, newest.name,
                                                              "notes.txt"])


def test_runs_asking_for_another_class_order_keep_their_own_caches(folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    default = ImageFolder(folder, size=8, cache=cache)
    bee_first = ImageFolder(folder, size=8, cache=cache, classes=["bee", "wasp"])
    wasp_first = ImageFolder(folder, size=8, cache=cache, classes=["wasp", "bee"])
    assert wasp_first.labels.tolist() == [0, 0, 1, 1, 1, 1]  # wasp first, label 0
    assert wasp_first.paths[:2] == ["wasp/w1.png", "wasp/w2.jpg"]
    # The default order's cache is shared, the other order has its own, and neither run
    # deleted the other's: each is served from its cache.
    assert bee_first.cache_path == default.cache_path
    assert sorted(cache.iterdir()) == sorted([default.cache_path, wasp_first.cache_path])
    import minigrad.data.folder as folder_module
    monkeypatch.setattr(folder_module, "_decode", lambda p, s: pytest.fail("decoded again"))
    for classes, labels in ((["bee", "wasp"], bee_first.labels), (["wasp", "bee"],
                                                                  wasp_first.labels)):
        again = ImageFolder(folder, size=8, cache=cache, classes=classes)
        assert again.labels.tolist() == labels.tolist()


def test_damaged_cache_is_rebuilt(folder, tmp_path):
    cache = tmp_path / "cache"
    ds = ImageFolder(folder, size=8, cache=cache)
    ds.cache_path.write_bytes(b"not an npz")
    again = ImageFolder(folder, size=8, cache=cache)
    np.testing.assert_array_equal(again.images, ds.images)
    assert np.load(ds.cache_path)["images"].shape == ds.images.shape


def test_cache_keeps_the_skip_warning(folder, tmp_path):
    (folder / "bee" / "bad.png").write_bytes(b"nope")
    with pytest.warns(UserWarning, match="skipped 1 file"):
        ImageFolder(folder, size=8, cache=tmp_path / "c")
    with pytest.warns(UserWarning, match="skipped 1 file"):
        ImageFolder(folder, size=8, cache=tmp_path / "c")


def test_default_cache_dir_honours_the_environment(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_CACHE", str(tmp_path / "env-cache"))
    ds = ImageFolder(folder, size=8, cache=True)
    assert ds.cache_path.parent == tmp_path / "env-cache" and ds.cache_path.exists()


def test_split_folders_are_recognised(tmp_path):
    for split, count in (("train", 3), ("test", 2)):
        for cls, colour in (("cat", (200, 0, 0)), ("dog", (0, 200, 0))):
            for i in range(count):
                _write(tmp_path / split / cls / f"{i}.png", colour)
    _write(tmp_path / "test" / "cat" / "extra.png", (200, 0, 0))
    (tmp_path / "README.md").write_text("about")
    assert find_split_folders(tmp_path) == (tmp_path / "train", tmp_path / "test")
    train, val = load_image_folder(tmp_path, size=4)
    assert len(train) == 6 and len(val) == 5
    assert train.classes == val.classes == ["cat", "dog"]
    assert val.labels.tolist() == [0, 0, 0, 1, 1]
    # "val" wins over "test" when both exist; a class missing from val is an error.
    for cls in ("cat",):
        _write(tmp_path / "val" / cls / "0.png", (200, 0, 0))
    assert find_split_folders(tmp_path)[1] == tmp_path / "val"
    with pytest.raises(ValueError, match=r"missing \['dog'\]"):
        load_image_folder(tmp_path, size=4)


def test_unsplit_folder_gets_the_seeded_80_20_split(tmp_path):
    for i in range(10):
        _write(tmp_path / ("a" if i % 2 else "b") / f"{i}.png", (i * 20, 0, 0))
    assert find_split_folders(tmp_path) is None
    train, val = load_image_folder(tmp_path, size=4, seed=123)
    assert (len(train), len(val)) == (8, 2)
    perm = np.random.default_rng(123).permutation(10)
    assert train.indices.tolist() == perm[:8].tolist()
    again, _ = load_image_folder(tmp_path, size=4, seed=123)
    assert again.indices.tolist() == train.indices.tolist()
    with pytest.raises(ValueError, match="val_fraction"):
        load_image_folder(tmp_path, size=4, val_fraction=1.0)


@pytest.mark.parametrize("count", [2, 4])
def test_a_folder_too_small_to_split_is_an_error_before_training(tmp_path, count):
    for i in range(count):
        _write(tmp_path / "few" / ("a" if i % 2 else "b") / f"{i}.png", (i * 20, 0, 0))
    # 4 images at 0.2 split into 4 and 0: the old code only failed after epoch 1.
    with pytest.raises(ValueError, match=rf"image folder '.*few' holds {count} samples: "
                                         rf"val_fraction=0.2 splits them into {count} for "
                                         rf"training and 0 for validation"):
        load_image_folder(tmp_path / "few", size=4)
    train, val = load_image_folder(tmp_path / "few", size=4, val_fraction=0.5)
    assert len(train) >= 1 and len(val) >= 1


def test_save_image_folder_round_trips(tmp_path):
    ds = SyntheticInsects(12, size=24, seed=1)
    root = save_image_folder(ds, tmp_path / "synthetic")
    back = ImageFolder(root, size=24)
    assert back.classes == list(ds.classes)
    assert back.class_counts().tolist() == ds.class_counts().tolist()
    # PNG is lossless: every image comes back exactly, grouped by class.
    for label in range(4):
        np.testing.assert_array_equal(back.images[back.labels == label],
                                      ds.images[ds.labels == label])


def test_hymenoptera_folder_loads():
    train, val = load_image_folder(shared_data("hymenoptera"), size=80, seed=123)
    assert train.classes == ["ants", "bees"]
    assert (len(train), len(val)) == (247, 61)  # 308 images: floor(246.4)+1 / floor(61.6)
    assert train.dataset.images.shape == (308, 80, 80, 3)
    assert train.dataset.class_counts().tolist() == [154, 154]


def test_cifar10_is_taken_as_already_split():
    cifar10 = shared_data("cifar10")
    split = find_split_folders(cifar10)
    assert split == (cifar10 / "train", cifar10 / "test")
    assert sorted(os.listdir(split[1])) == ["airplane", "automobile", "bird", "cat", "deer",
                                            "dog", "frog", "horse", "ship", "truck"]
