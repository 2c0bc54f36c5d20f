"""Unpaired two-domain datasets with ground truth, for image-to-image translation.

Domain B is a plain image dataset (the one its shipped feature classifier
was trained on); domain A is the same kind of image under a known,
invertible, class-preserving transform T, **colour inversion**: pixel p of
maximum P becomes ``P - p`` (``1 - x`` on [0, 1]), which after the loader's
scaling to [-1, 1] is ``T(x) = -x`` (its own inverse, :func:`invert`). A
translator A -> B should therefore learn T⁻¹, and its outputs land in the
domain of the shipped classifier.

**Unpaired.** Each split's images are cut, by a seeded permutation
(``numpy.random.default_rng([UNPAIRED_SEED, split index])``, train 0,
test 1), into two disjoint halves: the first half's images (transformed)
are domain A, the second half's are domain B. Example i holds the i-th
image of each half, stacked on the channel axis: ``image = concat(T(x_a),
x_b)`` of shape ``(H, W, 2C)`` (the ``stacked_digits`` layout), so the
batch iterator, sharding and sweeps carry both domains with no change. The
pairing of row i is arbitrary and fixed; no loss of the translation family
uses it (each term is a mean over one domain's rows). An odd image is left
out. The label is ``K y_a + y_b`` (K = 10 classes per domain,
:func:`domain_labels`); labels serve evaluation only.

=========================  ==========  ===========  =================  ===========
name                       base        image        examples           classifier
=========================  ==========  ===========  =================  ===========
``unpaired_digits``        digits      8×8×(1+1)    750 / 148          digits
``unpaired_fashion_mnist`` IDX files   28×28×(1+1)  30,000 / 5,000     fashion_mnist
=========================  ==========  ===========  =================  ===========

(train / test examples: half of the base split's images each.)
``unpaired_fashion_mnist`` reads the IDX files that ``fashion_mnist`` finds
(:func:`regan_jax.data.idx_directory`: Debian's ``dataset-fashion-mnist``,
``$REGAN_DATA_DIR`` or ``config.data.idx_dir``); without them it raises
``FileNotFoundError`` saying how to get them (no catalog fallback: the TFDS
catalog has no such dataset).
"""

from typing import NamedTuple

import numpy as np

UNPAIRED_SEED = 0
CLASSES_PER_DOMAIN = 10


class Unpaired(NamedTuple):
    """An unpaired dataset: its base (domain B, and the name of its shipped classifier)."""

    base: str


UNPAIRED = {
    "unpaired_digits": Unpaired("digits"),
    "unpaired_fashion_mnist": Unpaired("fashion_mnist"),
}


def invert(x):
    """T = T⁻¹ on [-1, 1]: colour inversion ``1 - x`` of [0, 1] pixels is ``-x`` here."""
    return -x


def split_domains(images):
    """``[..., H, W, 2C] -> (a, b)``, each ``[..., H, W, C]`` (numpy or jax arrays)."""
    channels = images.shape[-1]
    if channels % 2:
        raise ValueError(
            f"unpaired images stack two domains on the channel axis; got {channels} channels"
        )
    return images[..., : channels // 2], images[..., channels // 2 :]


def domain_labels(labels):
    """``K y_a + y_b -> (y_a, y_b)``."""
    return labels // CLASSES_PER_DOMAIN, labels % CLASSES_PER_DOMAIN


def unpaired_arrays(
    images: np.ndarray,
    labels: np.ndarray,
    pixel_max: int,
    split_index: int,
    seed: int = UNPAIRED_SEED,
):
    """The unpaired examples of one split of a base dataset (module docstring).

    Args:
      images: ``uint8 [N, H, W, C]`` base images, pixels 0..``pixel_max``.
      labels: their labels ``[N]``.
      pixel_max: P, the inversion is ``P - p``.
      split_index: 0 for train, 1 for test (part of the permutation's seed).
      seed: the permutation's seed.

    Returns:
      ``(images uint8 [M, H, W, 2C], labels [M], a_index [M], b_index [M])``,
      M = N // 2; ``a_index``/``b_index``: the base rows of each example's A
      and B images (disjoint).
    """
    order = np.random.default_rng([seed, split_index]).permutation(len(images))
    half = len(images) // 2
    a_index, b_index = order[:half], order[half : 2 * half]
    inverted = (pixel_max - images[a_index].astype(np.int64)).astype(images.dtype)
    stacked = np.concatenate([inverted, images[b_index]], axis=-1)
    return (
        stacked,
        CLASSES_PER_DOMAIN * labels[a_index].astype(np.int64) + labels[b_index],
        a_index,
        b_index,
    )
