"""Data-limited training sets: a class-stratified, seeded subset of a split."""

import numpy as np

from regan_jax.data.spec import ArrayDataset


def stratified_indices(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` row indices drawn without replacement, each class in proportion to its count.

    Class ``c`` with ``n_c`` of ``N`` rows gets ``floor(size n_c / N)`` rows,
    and the rows left over go to the classes with the largest remainders
    (ties: the lower class), so the counts sum to ``size`` and no class is
    off its share by a whole row. Rows within a class are a uniform draw
    (``numpy.random.default_rng(seed)``). Returned sorted (source order).

    Raises:
      ValueError: ``size`` not in ``[1, N]``.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if not 1 <= size <= n:
        raise ValueError(
            f"train_size={size} must lie in [1, {n}] (the training split has {n} examples)"
        )
    classes, counts = np.unique(labels, return_counts=True)
    quota = size * counts / n
    share = np.floor(quota).astype(int)
    leftover = size - share.sum()
    share[np.lexsort((classes, -(quota - share)))[:leftover]] += 1
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(np.flatnonzero(labels == c), k, replace=False) for c, k in zip(classes, share)
    ]
    return np.sort(np.concatenate(picked))


def training_subset(dataset: ArrayDataset, size: int | None, seed: int) -> ArrayDataset:
    """``dataset`` itself (``size`` None) or its :func:`stratified_indices` rows."""
    if size is None:
        return dataset
    rows = stratified_indices(dataset.labels, size, seed)
    return ArrayDataset(
        images=dataset.images[rows],
        labels=dataset.labels[rows],
        num_classes=dataset.num_classes,
        name=dataset.name,
    )
