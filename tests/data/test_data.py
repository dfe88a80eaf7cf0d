"""Datasets, random_split, transforms and the DataLoader."""
import threading

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import (IMAGENET_MEAN, IMAGENET_STD, DataLoader, Dataset, ImageDataset,
                           Subset, TensorDataset, random_split, train_val_split, transforms)


def _images(n=10, h=6, w=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8), np.arange(n) % 3


# ----------------------------------------------------------------- ImageDataset
def test_image_dataset_normalises_like_the_exercise():
    images, labels = _images()
    ds = ImageDataset(images, labels, ["a", "b", "c"])
    x, y = ds.get_batch(np.array([3, 1]))
    assert x.dtype == np.float32 and x.shape == (2, 3, 6, 5)
    assert y.dtype == np.int64 and y.tolist() == [0, 1]
    # The plain formulation: scale to [0, 1], subtract the mean, divide by the std.
    mean = np.array(IMAGENET_MEAN)[:, None, None]
    std = np.array(IMAGENET_STD)[:, None, None]
    expected = (images[3].transpose(2, 0, 1) / 255.0 - mean) / std
    np.testing.assert_allclose(x[0], expected, rtol=1e-5, atol=1e-5)


def test_image_dataset_item_and_metadata():
    images, labels = _images()
    ds = ImageDataset(images, labels, ["ant", "bee", "cat"], mean=(0, 0, 0), std=(1, 1, 1))
    x, y = ds[4]
    np.testing.assert_allclose(x, images[4].transpose(2, 0, 1) / 255.0, rtol=1e-6)
    assert y == 1 and isinstance(y, int)
    assert len(ds) == 10 and ds.num_classes == 3 and ds.image_size == (6, 5)
    assert ds.class_to_idx == {"ant": 0, "bee": 1, "cat": 2}
    assert ds.class_counts().tolist() == [4, 3, 3]
    assert "3 classes" in repr(ds)


@pytest.mark.parametrize("kwargs, match", [
    (dict(images=np.zeros((2, 4, 4), np.uint8)), "images must be"),
    (dict(images=np.zeros((2, 4, 4, 3), np.float32)), "uint8"),
    (dict(labels=np.array([0])), "labels must have shape"),
    (dict(labels=np.array([0, 5])), r"labels must lie in \[0, 2\)"),
    (dict(labels=np.array([0.0, 1.0])), "integers"),
    (dict(mean=(0.5, 0.5)), "one per channel"),
    (dict(std=(1, 0, 1)), "std must be positive"),
])
def test_image_dataset_rejects_bad_input(kwargs, match):
    args = dict(images=np.zeros((2, 4, 4, 3), np.uint8), labels=np.array([0, 1]),
                classes=["a", "b"])
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        ImageDataset(**args)


# ----------------------------------------------------------------- TensorDataset
def test_tensor_dataset_rows_and_tensors():
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    y = mg.tensor(np.arange(10))
    ds = TensorDataset(x, y)
    bx, by = ds.get_batch(np.array([7, 2]))
    assert bx.dtype == np.float64 and bx.tolist() == [[14, 15], [4, 5]]
    assert by.tolist() == [7, 2]
    assert [v.tolist() for v in ds[3]] == [[6.0, 7.0], 3]
    with pytest.raises(ValueError, match="share their first dimension"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))


# ----------------------------------------------------------------- random_split
def test_random_split_fractions_follow_pytorchs_rounding():
    ds = TensorDataset(np.arange(11))
    parts = random_split(ds, [0.8, 0.2], seed=123)
    # floor(8.8) = 8, floor(2.2) = 2, the one left over goes to the first part.
    assert [len(p) for p in parts] == [9, 2]
    together = np.concatenate([p.indices for p in parts])
    assert sorted(together.tolist()) == list(range(11))


def test_random_split_is_seeded_and_exact_counts_work():
    ds = TensorDataset(np.arange(50))
    a1, b1 = random_split(ds, [40, 10], seed=123)
    a2, b2 = random_split(ds, [40, 10], seed=123)
    a3, _ = random_split(ds, [40, 10], seed=124)
    assert a1.indices.tolist() == a2.indices.tolist() and b1.indices.tolist() == b2.indices.tolist()
    assert a1.indices.tolist() != a3.indices.tolist()
    # The split is the seeded permutation cut in order (a second formulation).
    perm = np.random.default_rng(123).permutation(50)
    assert a1.indices.tolist() == perm[:40].tolist()
    assert b1.indices.tolist() == perm[40:].tolist()


def test_random_split_without_seed_follows_manual_seed():
    ds = TensorDataset(np.arange(30))
    mg.manual_seed(5)
    first = random_split(ds, [0.5, 0.5])[0].indices.tolist()
    mg.manual_seed(5)
    assert random_split(ds, [0.5, 0.5])[0].indices.tolist() == first


@pytest.mark.parametrize("lengths", [[5, 4], [0.7, 0.2], [1.2, -0.2], []])
def test_random_split_rejects_bad_lengths(lengths):
    with pytest.raises(ValueError):
        random_split(TensorDataset(np.arange(10)), lengths, seed=0)


def test_subsets_share_images_but_not_transforms():
    images, labels = _images(n=12)
    ds = ImageDataset(images, labels, ["a", "b", "c"])
    train, val = random_split(ds, [0.5, 0.5], seed=1)
    train.transform = transforms.RandomHorizontalFlip(p=1.0)
    xt, yt = train.get_batch(np.array([0]))
    xv, yv = val.get_batch(np.array([0]))
    i, j = train.indices[0], val.indices[0]
    np.testing.assert_array_equal(xt[0], ds.normalize(images[i:i + 1, :, ::-1])[0])
    np.testing.assert_array_equal(xv[0], ds.normalize(images[j:j + 1])[0])
    assert yt[0] == labels[i] and yv[0] == labels[j]
    assert train.classes == ["a", "b", "c"] and train.labels.tolist() == labels[train.indices].tolist()
    nested = Subset(train, [1, 0])
    assert nested.get_batch(np.array([0]))[1][0] == labels[train.indices[1]]
    with pytest.raises(IndexError):
        Subset(ds, [12])


class Squares(Dataset):
    """A plain user dataset, only ``__len__`` and ``__getitem__``: sample i is ([i, i*i], i)."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return np.array([i, i * i], np.float32), i


def test_a_subset_of_a_plain_dataset_applies_its_transform():
    seen = []

    def negate(batch, rng):
        seen.append(rng)
        return -batch

    plain = Subset(Squares(), [4, 1])
    x, y = plain.get_batch(np.array([0, 1]))
    assert x.tolist() == [[4, 16], [1, 1]] and y.tolist() == [4, 1]
    augmented = Subset(Squares(), [4, 1])
    augmented.transform = negate  # what Subset's docstring promises
    x, y = augmented.get_batch(np.array([0, 1]), np.random.default_rng(0))
    assert x.tolist() == [[-4, -16], [-1, -1]] and y.tolist() == [4, 1]
    assert isinstance(seen[-1], np.random.Generator)
    (xb, yb), = list(DataLoader(augmented, batch_size=2, seed=0))  # through the loader too
    assert xb.numpy().tolist() == [[-4, -16], [-1, -1]] and yb.numpy().tolist() == [4, 1]
    assert len(seen) == 2
    assert augmented[1][0].tolist() == [-1, -1]  # one sample: a generator is made for it
    assert plain.get_batch(np.array([0]))[0].tolist() == [[4, 16]]  # the parent is untouched


# ----------------------------------------------------------------- transforms
def test_horizontal_flip_flips_the_chosen_images_only():
    images, _ = _images(n=64)
    rng = np.random.default_rng(0)
    out = transforms.RandomHorizontalFlip(p=0.5)(images, rng)
    chosen = np.random.default_rng(0).random(64) < 0.5  # the same draw, made again
    np.testing.assert_array_equal(out[chosen], images[chosen][:, :, ::-1])
    np.testing.assert_array_equal(out[~chosen], images[~chosen])
    assert 10 < chosen.sum() < 54
    vflip = transforms.RandomVerticalFlip(p=1.0)(images, rng)
    np.testing.assert_array_equal(vflip, images[:, ::-1])


def test_random_crop_matches_a_per_image_loop():
    images, _ = _images(n=8, h=7, w=9)
    crop = transforms.RandomCrop((7, 9), padding=2)
    out = crop(images, np.random.default_rng(3))
    rng = np.random.default_rng(3)  # replay the offsets and crop image by image
    top = rng.integers(0, 7 + 4 - 7 + 1, size=8)
    left = rng.integers(0, 9 + 4 - 9 + 1, size=8)
    for k in range(8):
        padded = np.zeros((11, 13, 3), np.uint8)
        padded[2:9, 2:11] = images[k]
        np.testing.assert_array_equal(out[k], padded[top[k]:top[k] + 7, left[k]:left[k] + 9])
    small = transforms.RandomCrop(4, padding_mode="reflect")(images, rng)
    assert small.shape == (8, 4, 4, 3)
    with pytest.raises(ValueError, match="larger than"):
        transforms.RandomCrop(20)(images, rng)
    with pytest.raises(ValueError, match="padding_mode"):
        transforms.RandomCrop(4, padding_mode="wrap")


def test_compose_applies_in_order_and_leaves_input_alone():
    images, _ = _images(n=4)
    before = images.copy()
    t = transforms.Compose([transforms.RandomHorizontalFlip(1.0),
                            transforms.RandomVerticalFlip(1.0)])
    out = t(images, np.random.default_rng(0))
    np.testing.assert_array_equal(out, before[:, ::-1, ::-1])
    np.testing.assert_array_equal(images, before)
    assert "RandomHorizontalFlip" in repr(t)
    with pytest.raises(TypeError):
        transforms.Compose([3])


def test_transforms_refuse_channels_first_batches():
    # A model's NCHW input with the top row lit: a "horizontal" flip used to move the
    # lit row to the bottom (a vertical flip), silently.
    x = np.zeros((1, 3, 4, 4), np.float32)
    x[0, :, 0, :] = 1
    ds = TensorDataset(x, np.zeros(1, np.int64), transform=transforms.RandomHorizontalFlip(p=1))
    with pytest.raises(ValueError, match=r"channels-first \(B, C, H, W\).*ImageDataset"):
        next(iter(DataLoader(ds, batch_size=1, prefetch=0)))
    rng = np.random.default_rng(0)
    nchw_uint8 = np.zeros((2, 3, 8, 8), np.uint8)
    for transform in (transforms.RandomVerticalFlip(), transforms.RandomCrop(4)):
        with pytest.raises(ValueError, match=r"RandomCrop|RandomVerticalFlip"):
            transform(nchw_uint8, rng)
    with pytest.raises(ValueError, match="C = 1, 3 or 4"):
        transforms.RandomHorizontalFlip()(np.zeros((2, 8, 8, 5), np.uint8), rng)


def test_transforms_accept_channels_last_images_of_any_size():
    rng = np.random.default_rng(0)
    tiny = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)  # uint8: NHWC
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(p=1)(tiny, rng),
                                  tiny[:, :, ::-1])
    grey = np.zeros((3, 10, 7, 1), np.float32)  # float channels-last is fine too
    assert transforms.RandomCrop((6, 5), padding=1)(grey, rng).shape == (3, 6, 5, 1)


def test_train_val_split_refuses_an_empty_part():
    train, val = train_val_split(TensorDataset(np.arange(10)), 0.2, seed=123)
    assert (len(train), len(val)) == (8, 2)
    assert train.indices.tolist() == random_split(TensorDataset(np.arange(10)), [0.8, 0.2],
                                                  seed=123)[0].indices.tolist()
    for n in (1, 2, 4):  # 4 at 0.2: floor(3.2) + 1 left over = 4 and 0
        with pytest.raises(ValueError, match=rf"tiny set holds {n} sample.*val_fraction=0.2 "
                                             rf"splits .* into {n} for training and 0 for "
                                             rf"validation"):
            train_val_split(TensorDataset(np.arange(n)), 0.2, seed=0, what="tiny set")
    with pytest.raises(ValueError, match="val_fraction must lie strictly between 0 and 1"):
        train_val_split(TensorDataset(np.arange(10)), 0.0)


# ----------------------------------------------------------------- DataLoader
def _dataset(n=70):
    images = np.zeros((n, 4, 4, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(n)  # pixel (0, 0) of the red channel encodes the index
    return ImageDataset(images, np.arange(n) % 4, list("abcd"), mean=(0, 0, 0), std=(1, 1, 1))


def _ids(x):
    return np.rint(x.numpy()[:, 0, 0, 0] * 255).astype(int).tolist()


def test_loader_batches_cover_the_data_once():
    loader = DataLoader(_dataset(), batch_size=32, shuffle=True, seed=0)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [32, 32, 6]
    x, y = batches[0]
    assert isinstance(x, mg.Tensor) and x.dtype == np.float32 and x.shape == (32, 3, 4, 4)
    assert y.dtype == np.int64 and x.device == "cpu"
    ids = sum((_ids(b[0]) for b in batches), [])
    assert sorted(ids) == list(range(70))
    assert [yy for b in batches for yy in b[1].numpy().tolist()] == [i % 4 for i in ids]


def test_loader_drop_last_and_no_shuffle():
    loader = DataLoader(_dataset(), batch_size=32, drop_last=True)
    assert len(loader) == 2
    ids = sum((_ids(x) for x, _ in loader), [])
    assert ids == list(range(64))


def test_loader_is_seeded_per_epoch_and_resumable():
    a = DataLoader(_dataset(), batch_size=16, shuffle=True, seed=7)
    b = DataLoader(_dataset(), batch_size=16, shuffle=True, seed=7)
    epoch0 = [_ids(x) for x, _ in a]
    epoch1 = [_ids(x) for x, _ in a]
    assert epoch0 != epoch1  # a new order each epoch
    assert [_ids(x) for x, _ in b] == epoch0
    b.set_epoch(1)  # jump straight to epoch 1, as a resumed run does
    assert [_ids(x) for x, _ in b] == epoch1
    c = DataLoader(_dataset(), batch_size=16, shuffle=True, seed=8)
    assert [_ids(x) for x, _ in c] != epoch0


def test_loader_prefetch_gives_identical_batches_with_augmentation():
    ds = ImageDataset(*_images(n=50), classes=list("abc"),
                      transform=transforms.Compose([transforms.RandomHorizontalFlip(),
                                                    transforms.RandomCrop((6, 5), padding=1)]))
    threaded = [x.numpy() for x, _ in DataLoader(ds, 8, shuffle=True, seed=3, prefetch=3)]
    inline = [x.numpy() for x, _ in DataLoader(ds, 8, shuffle=True, seed=3, prefetch=0)]
    assert len(threaded) == len(inline) == 7
    for t, i in zip(threaded, inline):
        np.testing.assert_array_equal(t, i)


def test_loader_without_seed_follows_manual_seed():
    mg.manual_seed(11)
    first = [_ids(x) for x, _ in DataLoader(_dataset(), 10, shuffle=True)]
    mg.manual_seed(11)
    assert [_ids(x) for x, _ in DataLoader(_dataset(), 10, shuffle=True)] == first


def test_loader_stops_its_thread_when_abandoned():
    before = threading.active_count()
    for _ in range(3):
        for x, _ in DataLoader(_dataset(), batch_size=4, prefetch=2):
            break  # leave early: the worker must not stay blocked on a full queue
    assert threading.active_count() == before


def test_loader_passes_worker_errors_to_the_caller():
    class Broken(Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            if i == 7:
                raise RuntimeError("sample 7 is broken")
            return np.zeros(2, np.float32), i

    with pytest.raises(RuntimeError, match="sample 7 is broken"):
        list(DataLoader(Broken(), batch_size=3))


def test_loader_stacks_a_plain_dataset_and_full_batch_mode():
    (x, y), = list(DataLoader(Squares(), batch_size=5))  # batch gradient descent: one batch
    assert x.numpy().tolist() == [[i, i * i] for i in range(5)] and y.numpy().tolist() == [0, 1, 2, 3, 4]
    assert len(list(DataLoader(Squares(), batch_size=1))) == 5  # stochastic: one per step


@pytest.mark.parametrize("kwargs, error", [
    (dict(batch_size=0), ValueError), (dict(batch_size=2.5), ValueError),
    (dict(prefetch=-1), ValueError), (dict(device="tpu"), ValueError),
])
def test_loader_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        DataLoader(_dataset(), **kwargs)
