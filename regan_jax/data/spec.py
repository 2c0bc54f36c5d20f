"""The in-memory dataset and the spec that models are built from."""

import dataclasses
from typing import NamedTuple

import numpy as np


class DataSpec(NamedTuple):
    """What a model needs to know about its data.

    Attributes:
      shape: one example's shape, ``(H, W, C)`` for images, ``(2,)`` for points.
      num_classes: label count (0: the dataset has no labels).
      name: the dataset name.
    """

    shape: tuple[int, ...]
    num_classes: int = 0
    name: str = ""


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
    """One split held in memory.

    Attributes:
      images: ``float32 [N, H, W, C]`` in [-1, 1] (pixel p of maximum P maps to
        ``2 p / P - 1``).
      labels: ``int32 [N]`` in ``[0, num_classes)`` (all zero when unlabelled).
      num_classes: label count (0: the dataset has no labels).
      name: the dataset name.
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str

    def __len__(self) -> int:
        return len(self.images)

    @property
    def spec(self) -> DataSpec:
        return DataSpec(
            shape=tuple(self.images.shape[1:]), num_classes=self.num_classes, name=self.name
        )
