"""RandomResizedCrop, RandomRotation, ColorJitter and Normalize: torchvision's names,
arguments and sampling rules, on channels-last uint8 batches (Normalize: float NCHW)."""
import math

import numpy as np
import pytest
from tests.helpers.repo import load_demo

Image = pytest.importorskip("PIL.Image")

from minigrad.data import DataLoader, ImageDataset, transforms as T  # noqa: E402


def _batch(n=6, h=20, w=24, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


# --------------------------------------------------------------------------- RandomResizedCrop
def test_resized_crop_boxes_follow_torchvisions_sampling():
    crop = T.RandomResizedCrop(16, scale=(0.3, 0.6), ratio=(0.5, 2.0))
    rng = np.random.default_rng(1)
    for _ in range(300):
        top, left, h, w = crop.crop_box(40, 50, rng)
        assert 0 <= top <= 40 - h and 0 <= left <= 50 - w
        # rounding to whole pixels moves the area and ratio a little past the bounds
        assert 0.3 * 2000 * 0.9 <= h * w <= 0.6 * 2000 * 1.1
        assert 0.5 * 0.85 <= w / h <= 2.0 * 1.15


def test_resized_crop_falls_back_to_the_largest_central_crop_within_the_ratios():
    rng = np.random.default_rng(0)
    impossible = dict(scale=(4.0, 5.0))  # never fits: ten draws fail
    assert T.RandomResizedCrop(8, **impossible).crop_box(20, 24, rng) == (0, 0, 20, 24)
    assert T.RandomResizedCrop(8, ratio=(2.0, 3.0), **impossible).crop_box(20, 24, rng) == \
        (4, 0, 12, 24)  # too tall for the ratios: full width, height 24/2
    assert T.RandomResizedCrop(8, ratio=(0.25, 0.5), **impossible).crop_box(20, 24, rng) == \
        (0, 7, 20, 10)  # too wide: full height, width 20*0.5


def test_resized_crop_of_the_whole_image_is_pillows_resize():
    images = _batch()
    whole = T.RandomResizedCrop((10, 12), scale=(1.0, 1.0), ratio=(24 / 20, 24 / 20))
    out = whole(images, np.random.default_rng(0))
    assert out.shape == (6, 10, 12, 3) and out.dtype == np.uint8
    expected = np.asarray(Image.fromarray(images[2]).resize((12, 10), Image.BILINEAR))
    np.testing.assert_array_equal(out[2], expected)
    same = T.RandomResizedCrop((20, 24), scale=(1.0, 1.0), ratio=(1.2, 1.2))
    np.testing.assert_array_equal(same(images, np.random.default_rng(0)), images)


def test_resized_crop_repeats_with_the_generator_and_handles_grey_and_alpha():
    crop = T.RandomResizedCrop(8)
    for channels in (1, 3, 4):
        images = _batch(c=channels)
        a = crop(images, np.random.default_rng(5))
        assert a.shape == (6, 8, 8, channels)
        np.testing.assert_array_equal(a, crop(images, np.random.default_rng(5)))
    with pytest.raises(ValueError, match="interpolation"):
        T.RandomResizedCrop(8, interpolation="lanczos2")
    with pytest.raises(ValueError, match="scale"):
        T.RandomResizedCrop(8, scale=(0.5, 0.1))
    with pytest.raises(ValueError, match=r"^RandomResizedCrop: size must be at least 1"):
        T.RandomResizedCrop((8, 0))
    with pytest.raises(TypeError, match=r"^RandomCrop: size must be an int or a pair of ints"):
        T.RandomCrop("8")


# --------------------------------------------------------------------------- RandomRotation
def test_rotation_turns_counter_clockwise_and_fills_the_corners():
    images = _batch(h=9, w=9)
    quarter = T.RandomRotation((90, 90))(images, np.random.default_rng(0))
    np.testing.assert_array_equal(quarter, np.rot90(images, k=1, axes=(1, 2)))
    np.testing.assert_array_equal(T.RandomRotation(0)(images, np.random.default_rng(0)),
                                  images)
    tilted = T.RandomRotation((45, 45), fill=(7, 8, 9))(_batch(h=30, w=30),
                                                        np.random.default_rng(0))
    assert tilted[0, 0, 0].tolist() == [7, 8, 9] and tilted[0, -1, -1].tolist() == [7, 8, 9]


def test_rotation_angles_are_uniform_in_the_range():
    # A bar from the centre to the right edge: where its pixels land tells the angle drawn.
    images = np.zeros((400, 21, 21, 1), np.uint8)
    images[:, 10, 13:21] = 255
    out = T.RandomRotation(30)(images, np.random.default_rng(3))[..., 0] > 0
    ys, xs = np.nonzero(out.reshape(400, -1))[1] // 21, np.nonzero(out.reshape(400, -1))[1] % 21
    owner = np.nonzero(out.reshape(400, -1))[0]
    dy = np.bincount(owner, 10 - ys, 400) / np.bincount(owner, minlength=400)
    dx = np.bincount(owner, xs - 10, 400) / np.bincount(owner, minlength=400)
    angles = np.degrees(np.arctan2(dy, dx))  # counter-clockwise is positive
    assert angles.min() >= -33 and angles.max() <= 33
    assert abs(angles.mean()) < 3 and angles.std() == pytest.approx(30 / math.sqrt(3), rel=0.15)


# --------------------------------------------------------------------------- ColorJitter
def test_color_jitter_factors_do_what_torchvision_says():
    images = _batch()
    rng = np.random.default_rng(0)
    brighter = T.ColorJitter(brightness=(2.0, 2.0))(images, rng)
    np.testing.assert_allclose(brighter, np.clip(images * 2.0, 0, 255), atol=1)
    grey = T.ColorJitter(saturation=(0.0, 0.0))(images, rng).astype(int)
    assert np.abs(grey - grey[..., :1]).max() <= 1  # no colour left
    luma = images @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(grey[..., 0], luma, atol=1.5)
    flat = T.ColorJitter(contrast=(0.0, 0.0))(images, rng).astype(int)
    assert np.ptp(flat.reshape(6, -1), axis=1).max() <= 1  # every pixel the grey mean
    turned = T.ColorJitter(hue=(0.5, 0.5))(images, rng)
    assert not np.array_equal(turned, images)
    np.testing.assert_allclose(turned.max(-1), images.max(-1), atol=1)  # V stays
    np.testing.assert_array_equal(T.ColorJitter()(images, rng), images)


def test_color_jitter_keeps_alpha_and_grey_images_get_brightness_only():
    rgba = _batch(c=4)
    out = T.ColorJitter(0.5, 0.5, 0.5, 0.2)(rgba, np.random.default_rng(0))
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    grey = _batch(c=1)
    np.testing.assert_array_equal(T.ColorJitter(saturation=0.9, hue=0.4)(grey, np.random.default_rng(0)),
                                  grey)


def test_color_jitter_checks_its_ranges_as_torchvision():
    assert T.ColorJitter(brightness=1.5).brightness == (0.0, 2.5)
    assert T.ColorJitter(hue=0.25).hue == (-0.25, 0.25)
    with pytest.raises(ValueError, match="hue"):
        T.ColorJitter(hue=0.6)
    with pytest.raises(ValueError, match="non-negative"):
        T.ColorJitter(contrast=-0.1)


# --------------------------------------------------------------------------- Normalize
def test_normalize_works_per_channel_on_float_nchw_batches():
    x = np.random.default_rng(0).random((4, 3, 5, 5)).astype(np.float32)
    out = T.Normalize([0.5, 0.4, 0.3], [0.2, 0.25, 0.5])(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, 1], (x[:, 1] - 0.4) / 0.25, rtol=1e-6)
    with pytest.raises(TypeError, match="float images"):
        T.Normalize([0.5], [0.2])(np.zeros((1, 1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="C = 3"):
        T.Normalize([0.5] * 3, [0.2] * 3)(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="std must not be 0"):
        T.Normalize([0.5], [0.0])


# --------------------------------------------------------------------------- in a loader
def test_the_loader_repeats_the_new_augmentations_with_its_seed():
    recipe = T.Compose([T.RandomResizedCrop(12, scale=(0.5, 1.0)), T.RandomHorizontalFlip(),
                        T.RandomRotation(15), T.ColorJitter(0.3, 0.3, 0.3, 0.05)])
    data = ImageDataset(_batch(n=20), np.arange(20) % 2, ["a", "b"], transform=recipe)
    first = [x.numpy() for x, _ in DataLoader(data, 8, shuffle=True, seed=4)]
    again = [x.numpy() for x, _ in DataLoader(data, 8, shuffle=True, seed=4, prefetch=0)]
    other = [x.numpy() for x, _ in DataLoader(data, 8, shuffle=True, seed=5)]
    assert first[0].shape == (8, 3, 12, 12)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_the_demos_augment_flag_augments_the_training_split_only():
    demo = load_demo("bees_vs_wasps")
    config = demo.ExperimentConfig(size=16, synthetic_images=40, augment=True)
    train, val, _ = demo.load_data(config)
    names = [type(t).__name__ for t in train.transform.transforms]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip", "RandomRotation",
                     "ColorJitter"]
    assert getattr(val, "transform", None) is None
    x, _ = next(iter(DataLoader(train, 8, seed=0)))
    assert x.shape == (8, 3, 16, 16)
