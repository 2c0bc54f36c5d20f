"""The batch iterator: deterministic, resumable, with member and device axes.

Image datasets: epoch e with seed s visits the N examples in the order
``numpy.random.default_rng([s, e]).permutation(N)``, cut into ``N // B``
batches of B (``drop_remainder``; otherwise ``ceil(N / B)``, the last one
smaller). Mixtures: batch i with seed s is
``mixture.sample_labelled(fold_in(key(s), i), B)``, one endless epoch.
The iterator's :attr:`BatchIterator.position` ``{'name', 'seed',
'batch_size', 'epoch', 'index'}`` is plain JSON; passing it back to
:func:`make_iterator` resumes with exactly the batches that would have come
next. (numpy's seeded ``Generator``, not global state, permutes the host-side
index arrays; JAX keys drive everything sampled.)

With members (a vmapped sweep group) the iterator owns the member axis: one
stacked ``[K, B, ...]`` batch per step, member k's rows exactly those of its
own single run. The training loop reads it through :func:`prefetch_to_device`
(``config.data.prefetch`` batches read ahead by a thread), or, where the data
live on the device, with ``on_device=True``: each step's descriptor (its rows,
or the mixture's key and index) instead of its batch, made into the same batch
inside the compiled step by :func:`regan_jax.data.device_feed`.

Why not grain: ``grain``'s ``MapDataset`` would give the same shape of
pipeline (random-access source, seeded shuffle, checkpointable position), but
its shuffle is its own permutation, so every recorded run (the study's
results, the bitwise resume and golden-hash tests) would change order; the
datasets here fit in memory and a batch is one numpy gather, so there is no
throughput for it to win on a 2-core CPU. The sources stay TFDS array_record
builders read with ``tfds.data_source``.
"""

import queue
import threading
from typing import Callable, Iterator, Sequence

import jax
import ml_collections
import numpy as np

from regan_jax.data.builders import load
from regan_jax.data.mixtures import MIXTURES, Mixture, mixture
from regan_jax.data.spec import ArrayDataset, DataSpec
from regan_jax.data.subset import training_subset

Batch = dict[str, np.ndarray]


def default_config() -> ml_collections.ConfigDict:
    """``config.data``: which dataset, the batch, and where data lives."""
    return ml_collections.ConfigDict(
        {
            "name": "digits",  # LOCAL_DATASETS, MIXTURES or a TFDS catalog name
            "batch_size": 64,  # global batch (all devices, per member)
            "drop_remainder": True,  # False: each epoch ends with a smaller batch
            "data_dir": "",  # prepared-data cache ('': $TFDS_DATA_DIR, ~/tensorflow_datasets)
            "idx_dir": "",  # fashion_mnist/mnist IDX files ('': REGAN_DATA_DIR, Debian, ...)
            "download": False,  # True: a TFDS catalog dataset may be downloaded
            "prefetch": 2,  # batches prefetch_to_device keeps ready
            "stacked_size": 10_000,  # stacked_digits train examples
            "stacked_test_size": 1_000,  # stacked_digits test examples
            "stacked_seed": 0,  # stacked_digits draws
            "ring_radius": 2.0,  # ring8 radius
            "grid_spacing": 2.0,  # grid25 spacing
            "sigma": 0.02,  # ring8/grid25 per-mode standard deviation
            "train_size": None,  # None: the whole training split; n: a class-stratified subset
            "train_subset_seed": 0,  # the subset's draw (the held-out split is never subsampled)
        }
    )


def from_config(
    data_cfg: ml_collections.ConfigDict, split: str = "train"
) -> ArrayDataset | Mixture:
    """The dataset ``data_cfg.name`` (an :class:`ArrayDataset`) or mixture.

    The ``'train'`` split is cut to ``data_cfg.train_size`` examples
    (:func:`regan_jax.data.subset.training_subset`); any other split is whole.

    Raises:
      ValueError: a ``train_size`` for a mixture, or larger than the split.
    """
    if data_cfg.name in MIXTURES:
        if data_cfg.train_size is not None:
            raise ValueError(
                f"train_size={data_cfg.train_size}: {data_cfg.name!r} is a mixture "
                "sampled on the fly; it has no training set to subsample"
            )
        return mixture(
            data_cfg.name,
            radius=data_cfg.ring_radius,
            spacing=data_cfg.grid_spacing,
            sigma=data_cfg.sigma,
        )
    dataset = load(
        data_cfg.name,
        split,
        data_dir=data_cfg.data_dir,
        idx_dir=data_cfg.idx_dir,
        download=data_cfg.download,
        size=data_cfg.stacked_size,
        test_size=data_cfg.stacked_test_size,
        seed=data_cfg.stacked_seed,
    )
    if split != "train":
        return dataset
    return training_subset(dataset, data_cfg.train_size, data_cfg.train_subset_seed)


class BatchIterator:
    """An endless iterator of global batches ``{'image', 'label'}`` (numpy).

    Shapes: ``[B, *spec.shape]`` / ``[B]``, or ``[K, B, ...]`` with K members.

    Attributes:
      spec: the data's :class:`DataSpec`.
      position: JSON-serialisable position of the next batch.
      steps_per_epoch: batches per epoch (None for mixtures).
    """

    def __init__(
        self,
        fetch: Callable[[int, int], Batch],
        steps_per_epoch: int | None,
        spec: DataSpec,
        position: dict,
    ):
        self._fetch = fetch
        self.steps_per_epoch = steps_per_epoch
        self.spec = spec
        self._position = dict(position)

    @property
    def position(self) -> dict:
        return dict(self._position)

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        epoch, index = self._position["epoch"], self._position["index"]
        batch = self._fetch(epoch, index)
        index += 1
        if self.steps_per_epoch is not None and index == self.steps_per_epoch:
            epoch, index = epoch + 1, 0
        self._position.update(epoch=epoch, index=index)
        return batch

    def close(self) -> None:
        """Nothing to release (the same interface as :class:`Prefetcher`)."""


def make_iterator(
    data_cfg: ml_collections.ConfigDict,
    seed: int,
    *,
    position: dict | None = None,
    num_members: int | None = None,
    member_seeds: Sequence[int] | None = None,
    rows_per_step: int | None = None,
    source: ArrayDataset | Mixture | None = None,
    on_device: bool = False,
) -> BatchIterator:
    """The training batch iterator of ``data_cfg`` (see the module docstring).

    With members, batches get a leading member axis ``[K, B, ...]`` and member
    k sees exactly the batches of a single run with seed ``member_seeds[k]``
    (``num_members=K``: seeds ``seed, seed + 1, ..., seed + K - 1``). Members
    that share a seed share their data, as a sweep over strengths wants. Each
    member's own position is :func:`member_position`; a group resumes from
    :func:`group_position` of its members' positions.

    Args:
      data_cfg: ``config.data`` (:func:`default_config`).
      seed: data-order seed (>= 0).
      position: a :attr:`BatchIterator.position` to resume from (its dataset,
        seed(s) and batch size must match).
      num_members: K members with seeds ``seed + k``; None: no member axis.
      member_seeds: explicit member seeds (instead of ``num_members``).
      rows_per_step: rows of one batch, when a step consumes other than
        ``data_cfg.batch_size`` (a GAN with several discriminator steps).
      source: the data already loaded (default: ``from_config(data_cfg)``).
      on_device: yield each step's *descriptor* instead of its batch -- the
        rows to gather, or the mixture's key and batch index -- for
        :func:`regan_jax.data.device_feed`'s ``gather`` to turn into exactly
        the same batch inside the compiled step (same order, same position).

    Raises:
      ValueError: a negative seed, a non-positive batch size or member count,
        both ``num_members`` and ``member_seeds``, a batch larger than the
        dataset, or a position that does not belong to this iterator.
    """
    if num_members is not None and member_seeds is not None:
        raise ValueError(
            f"give num_members ({num_members}) or member_seeds ({member_seeds}), not both"
        )
    if num_members is not None:
        if num_members <= 0:
            raise ValueError(f"num_members must be > 0 or None, got {num_members}")
        member_seeds = [seed + k for k in range(num_members)]
    seeds = [seed] if member_seeds is None else [int(s) for s in member_seeds]
    batch_size = data_cfg.batch_size if rows_per_step is None else rows_per_step
    if not seeds or min(seeds) < 0 or batch_size <= 0:
        raise ValueError(
            f"make_iterator needs seeds >= 0 (at least one) and batch_size > 0; "
            f"got seeds {seeds}, batch_size {batch_size}"
        )
    source = from_config(data_cfg) if source is None else source
    start = {
        "name": data_cfg.name,
        "seed": seed if member_seeds is None else seeds,
        "batch_size": batch_size,
        "epoch": 0,
        "index": 0,
    }
    if position is not None:
        start = _checked_position(start, position)
    if isinstance(source, Mixture):
        fetch, steps = (
            (
                _mixture_descriptors(seeds)
                if on_device
                else _mixture_fetch(source, batch_size, seeds)
            ),
            None,
        )
    else:
        rows, steps = _array_rows(source, batch_size, seeds, data_cfg.drop_remainder)
        fetch = (
            (lambda epoch, index: {"rows": rows(epoch, index)})
            if on_device
            else _gathered(source, rows)
        )
    if steps is not None and start["index"] >= steps:
        raise ValueError(
            f"data position index {start['index']} is past the end of an epoch of {steps} batches"
        )
    if member_seeds is None:
        fetch = _drop_member_axis(fetch)
    return BatchIterator(fetch, steps, source.spec, start)


def member_position(position: dict, index: int) -> dict:
    """Member ``index``'s own position within a group iterator's ``position`` (its seed alone)."""
    seeds = position["seed"]
    return {**position, "seed": seeds[index] if isinstance(seeds, list) else seeds}


def group_position(positions: Sequence[dict]) -> dict:
    """The position of a group iterator whose members are at ``positions`` (their own).

    Raises:
      ValueError: members at different points of the data (a group steps together).
    """
    places = {(p["name"], p["batch_size"], p["epoch"], p["index"]) for p in positions}
    if len(places) != 1:
        raise ValueError(f"members of one group are at different data positions: {positions}")
    return {**positions[0], "seed": [p["seed"] for p in positions]}


class Prefetcher:
    """A :class:`BatchIterator` read ahead onto devices by a background thread.

    ``jax.device_put(batch, sharding)`` of the next ``size`` batches happens
    in the thread while the accelerator runs the current step, so the step
    never waits on the host's gather and copy. :attr:`position` is that of the
    next batch *yielded* (not of the read-ahead), so it can be checkpointed.
    An error in the thread is raised by the ``next`` that would have got the
    batch. :meth:`close` (or ``with``) stops the thread.

    Attributes:
      spec: the data's :class:`DataSpec`.
      position: JSON-serialisable position of the next batch yielded.
    """

    def __init__(self, iterator: BatchIterator, size: int, sharding):
        self.spec = iterator.spec
        self._position = iterator.position
        self._queue = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(iterator, sharding), daemon=True)
        self._thread.start()

    @property
    def position(self) -> dict:
        return dict(self._position)

    def _fill(self, iterator, sharding):
        try:
            while not self._stop.is_set():
                self._put((jax.device_put(next(iterator), sharding), iterator.position, None))
        except Exception as e:  # Handed to the consumer, raised there.
            self._put((None, None, e))

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self):
        return self

    def __next__(self):
        batch, position, error = self._queue.get()
        if error is not None:
            raise error
        self._position = position
        return batch

    def close(self):
        self._stop.set()
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def prefetch_to_device(
    iterator: BatchIterator, size: int = 2, sharding=None
) -> "Prefetcher | BatchIterator":
    """Wraps ``iterator`` in a :class:`Prefetcher` keeping ``size`` batches ready.

    The training loop reads its batches through this (``config.data.prefetch``).

    Args:
      iterator: a :class:`BatchIterator`.
      size: batches kept ready (``config.data.prefetch``); 0 returns
        ``iterator`` itself (no thread).
      sharding: where to put them (e.g. a ``NamedSharding`` over a mesh's
        ``'batch'`` axis); None: the default device.

    Raises:
      ValueError: ``size`` < 1.
    """
    if size < 0:
        raise ValueError(f"prefetch size must be >= 0, got {size}")
    return Prefetcher(iterator, size, sharding) if size else iterator


def _checked_position(start: dict, position: dict) -> dict:
    for key in ("name", "seed", "batch_size"):
        if position.get(key) != start[key]:
            raise ValueError(
                f"data position {position} does not belong to this iterator: "
                f"{key} is {position.get(key)!r}, the iterator has {start[key]!r}"
            )
    if not (
        isinstance(position.get("epoch"), int)
        and isinstance(position.get("index"), int)
        and position["epoch"] >= 0
        and position["index"] >= 0
    ):
        raise ValueError(f"data position {position} needs integer epoch >= 0 and index >= 0")
    return {**start, "epoch": position["epoch"], "index": position["index"]}


def _array_rows(dataset: ArrayDataset, batch_size: int, seeds: list[int], drop_remainder: bool):
    """``rows(epoch, index) -> int32 [K, b]``, each member's dataset rows, and the epoch length."""
    n = len(dataset)
    if batch_size > n:
        raise ValueError(
            f"batch_size {batch_size} is larger than dataset {dataset.name!r} ({n} examples)"
        )
    steps = n // batch_size if drop_remainder else -(-n // batch_size)
    orders = {}  # Only the current epoch's permutations are kept.

    def rows(epoch, index):
        if epoch not in orders:
            orders.clear()
            orders[epoch] = [np.random.default_rng([seed, epoch]).permutation(n) for seed in seeds]
        return np.stack(
            [order[index * batch_size : (index + 1) * batch_size] for order in orders[epoch]]
        ).astype(np.int32)

    return rows, steps


def _gathered(dataset: ArrayDataset, rows):
    def fetch(epoch, index):
        taken = rows(epoch, index)
        return {"image": dataset.images[taken], "label": dataset.labels[taken]}

    return fetch


def _mixture_fetch(source: Mixture, batch_size: int, seeds: list[int]):
    keys = [jax.random.key(seed) for seed in seeds]

    def fetch(epoch, index):
        del epoch  # A mixture's stream is one endless epoch.
        points, labels = zip(
            *(source.sample_labelled(jax.random.fold_in(key, index), batch_size) for key in keys)
        )
        return {"image": np.stack(points), "label": np.stack(labels)}

    return fetch


def _mixture_descriptors(seeds: list[int]):
    """The descriptors of :func:`_mixture_fetch`'s batches: each member's base key and the index."""
    keys = np.stack([np.asarray(jax.random.key_data(jax.random.key(s))) for s in seeds])

    def fetch(epoch, index):
        del epoch
        return {"key": keys, "index": np.full((len(seeds),), index, np.int32)}

    return fetch


def _drop_member_axis(fetch):
    return lambda epoch, index: {k: v[0] for k, v in fetch(epoch, index).items()}
