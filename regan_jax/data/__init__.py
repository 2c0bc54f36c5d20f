"""Data: TFDS array_record builders, the IDX reader, 2-D mixtures, the batch iterator.

``load(name, split)`` gives an image dataset in memory (float32 NHWC in
[-1, 1], int32 labels); ``mixture(name)`` a 2-D Gaussian mixture sampled on
the fly; ``make_iterator(config.data, seed)`` the resumable batch stream;
``device_feed`` the same batches made inside the compiled step.
"""

from regan_jax.data.builders import (
    DEBIAN_DATASETS_DIR,
    LOCAL_DATASETS,
    data_dir_or_default,
    idx_directory,
    load,
)
from regan_jax.data.device import DeviceFeed, device_feed, stack_descriptors
from regan_jax.data.idx import read_idx, read_idx_split
from regan_jax.data.mixtures import MIXTURES, Mixture, mixture
from regan_jax.data.pipeline import (
    BatchIterator,
    Prefetcher,
    default_config,
    from_config,
    group_position,
    make_iterator,
    member_position,
    prefetch_to_device,
)
from regan_jax.data.spec import ArrayDataset, DataSpec

__all__ = [
    "ArrayDataset",
    "BatchIterator",
    "DEBIAN_DATASETS_DIR",
    "DataSpec",
    "DeviceFeed",
    "LOCAL_DATASETS",
    "MIXTURES",
    "Mixture",
    "Prefetcher",
    "data_dir_or_default",
    "default_config",
    "device_feed",
    "from_config",
    "group_position",
    "idx_directory",
    "load",
    "make_iterator",
    "member_position",
    "mixture",
    "prefetch_to_device",
    "read_idx",
    "read_idx_split",
    "stack_descriptors",
]
