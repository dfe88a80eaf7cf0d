"""Data for training: image folders, datasets, seeded splits, augmentation, batches.

::

    from minigrad.data import ImageFolder, random_split, DataLoader, transforms
    full = ImageFolder("data/bee_vs_wasp", size=80)          # decoded once, uint8
    train, val = random_split(full, [0.8, 0.2], seed=123)
    train.transform = transforms.Compose([transforms.RandomHorizontalFlip(),
                                          transforms.RandomCrop(80, padding=4)])
    for x, y in DataLoader(train, batch_size=32, shuffle=True, seed=0):
        ...                                                   # x: float32 NCHW Tensor

``load_image_folder(path)`` does the exercise's whole protocol (and understands
folders already split into ``train/`` and ``val/``/``test/``);
``datasets.SyntheticInsects`` is a generated stand-in needing no download and
``datasets.download_bee_vs_wasp`` fetches the real photos.
"""
from . import datasets, transforms
from .dataset import (IMAGENET_MEAN, IMAGENET_STD, Dataset, ImageDataset, Subset,
                      TensorDataset, random_split, train_val_split)
from .datasets import SyntheticInsects, download_bee_vs_wasp
from .folder import (ImageFolder, default_cache_dir, find_split_folders, load_image_folder,
                     save_image_folder)
from .loader import DataLoader
from .sampler import DistributedSampler

__all__ = ["Dataset", "ImageDataset", "TensorDataset", "Subset", "random_split",
           "train_val_split",
           "ImageFolder", "load_image_folder", "find_split_folders", "save_image_folder",
           "default_cache_dir", "DataLoader", "DistributedSampler", "SyntheticInsects", "download_bee_vs_wasp",
           "datasets", "transforms", "IMAGENET_MEAN", "IMAGENET_STD"]
