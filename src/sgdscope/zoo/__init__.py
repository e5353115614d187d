"""The papers' models, data sets, transforms and losses, usable on their own.

>>> model = build_model("simplecnn", input_shape=(3, 32, 32), num_classes=10, seed=0)
>>> ds = standardize(load_dataset("cifar10", val_size=5000, seed=0))
>>> loss_fn = build_loss("cross_entropy")

See ``docs/zoo.md`` for the names, options, parameter counts and data locations.
"""

from ._cache import cache_root
from ._errors import DataFormatError
from .datasets import list_datasets, load_dataset
from .losses import OneHotMSELoss, build_loss, list_losses
from .registry import build_model, count_parameters, list_models
from .splits import Dataset, Split
from .transforms import (
    channel_stats,
    grey_resize,
    normalize,
    random_crop_flip,
    resize,
    shuffle_labels,
    shuffle_train_labels,
    standardize,
    to_grayscale,
)

__all__ = [
    "build_model",
    "list_models",
    "count_parameters",
    "load_dataset",
    "list_datasets",
    "Dataset",
    "Split",
    "DataFormatError",
    "cache_root",
    "build_loss",
    "list_losses",
    "OneHotMSELoss",
    "channel_stats",
    "normalize",
    "standardize",
    "to_grayscale",
    "resize",
    "grey_resize",
    "random_crop_flip",
    "shuffle_labels",
    "shuffle_train_labels",
]
