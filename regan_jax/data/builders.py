"""TFDS array_record builders for the offline datasets, and :func:`load`.

Every image dataset goes through the same path: a TFDS builder prepares
array_record files once under the data dir (TFDS writes into an
``incomplete.*`` directory and renames it when done, so a half-written cache
is never taken as complete), and ``tfds.data_source`` reads them back by
random access. Preparing and reading need no TensorFlow: the features are
``tfds.features.Tensor`` (raw bytes, no PNG codec) and ``ClassLabel``.
Reading decodes each example in Python (about 0.2-0.5 ms each): the full
Fashion-MNIST takes 15-30 s to load, so callers should load a split once.

Local builders (unregistered, so they neither clash with the TFDS catalog's
``mnist``/``fashion_mnist`` nor touch TFDS's global registry on import):

- ``digits``: scikit-learn's 1,797 8×8 digits, pixels 0..16. Fixed split in
  scikit-learn's order: ``train`` = the first 1,500, ``test`` = the last 297.
- ``stacked_digits``: 8×8×3 images whose channels are three independently,
  uniformly drawn digits of the matching ``digits`` split; label
  ``100 a + 10 b + c`` (1,000 classes). Sizes and seed from options.
- ``fashion_mnist`` / ``mnist``: IDX files from a local directory
  (:func:`idx_directory`), 28×28×1, pixels 0..255; else the TFDS catalog.
- ``unpaired_digits`` / ``unpaired_fashion_mnist``: two disjoint halves of
  a split, one colour-inverted (domain A), stacked on the channel axis with
  the other (domain B), for image-to-image translation
  (:mod:`regan_jax.data.unpaired`).

Any other name is looked up in the TFDS catalog (prepared data, or a download
where the network allows). Examples keep their source index, and
:func:`load` returns them in source order.
"""

import contextlib
import hashlib
import io
import logging
import os

import numpy as np
import sklearn.datasets
import tensorflow_datasets as tfds

from regan_jax.data import idx, unpaired
from regan_jax.data.mixtures import MIXTURES
from regan_jax.data.spec import ArrayDataset

UNPAIRED_DATASETS = tuple(unpaired.UNPAIRED)
LOCAL_DATASETS = ("digits", "stacked_digits", "fashion_mnist", "mnist") + UNPAIRED_DATASETS
DEBIAN_DATASETS_DIR = "/usr/share/datasets"
DIGITS_TEST_SIZE = 297
_IDX_DATASETS = ("fashion_mnist", "mnist")
_HOW_TO_GET = {
    "fashion_mnist": "install Debian's package (`apt-get install dataset-fashion-mnist`, "
    "files in /usr/share/datasets/fashion-mnist) or set REGAN_DATA_DIR "
    "(or config.data.idx_dir) to a directory of its IDX files",
    "mnist": "set REGAN_DATA_DIR (or config.data.idx_dir) to a directory of the MNIST "
    "IDX files (train-images-idx3-ubyte[.gz], ...)",
}


class _ArrayRecordBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A builder of ``{'image': uint8, 'label', 'index'}`` examples from numpy arrays.

    Subclasses set ``IMAGE_SHAPE``, ``NUM_CLASSES``, ``PIXEL_MAX`` and
    implement ``_arrays(split) -> (images uint8 [N, H, W, C], labels [N])``.
    ``variant`` names the builder config: the cache directory of one set of
    options (``<data_dir>/<name>/<variant>/<version>``).
    """

    VERSION = tfds.core.Version("1.0.0")
    # TFDS 4.9's `code_path` (used to find checksum files; these builders have
    # none) needs the `importlib_resources` backport for classes inside a
    # package on Python >= 3.9. No path is the documented "no code file" value.
    code_path = None
    SPLITS = ("train", "test")
    IMAGE_SHAPE: tuple[int, ...]
    NUM_CLASSES: int
    PIXEL_MAX: int

    def __init__(self, *, variant: str, data_dir: str):
        super().__init__(
            data_dir=data_dir,
            file_format="array_record",
            config=tfds.core.BuilderConfig(name=variant),
        )

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    # Raw bytes: int64-list storage of uint8 pixels is 8x larger and slower.
                    "image": tfds.features.Tensor(
                        shape=self.IMAGE_SHAPE,
                        dtype=np.uint8,
                        encoding=tfds.features.Encoding.BYTES,
                    ),
                    "label": tfds.features.ClassLabel(num_classes=self.NUM_CLASSES),
                    "index": tfds.features.Scalar(dtype=np.int64),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing is downloaded.
        return {split: self._generate_examples(*self._arrays(split)) for split in self.SPLITS}

    def _generate_examples(self, images, labels):
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": image, "label": int(label), "index": i}

    def _arrays(self, split):
        raise NotImplementedError

    # TFDS prints "Downloading and preparing dataset ..." and "Dataset ... downloaded and
    # prepared" to stdout; these builders download nothing, and prepare quietly.
    def _log_download_bytes(self):
        pass

    def _log_download_done(self):
        pass


class ReganDigits(_ArrayRecordBuilder, skip_registration=True):
    IMAGE_SHAPE, NUM_CLASSES, PIXEL_MAX = (8, 8, 1), 10, 16

    def _arrays(self, split):
        return digits_arrays(split)


class ReganStackedDigits(_ArrayRecordBuilder, skip_registration=True):
    IMAGE_SHAPE, NUM_CLASSES, PIXEL_MAX = (8, 8, 3), 1000, 16

    def __init__(self, *, size: int, test_size: int, seed: int, data_dir: str):
        self._sizes = {"train": size, "test": test_size}
        self._seed = seed
        super().__init__(variant=f"train{size}_test{test_size}_seed{seed}", data_dir=data_dir)

    def _arrays(self, split):
        return stack_digits(
            *digits_arrays(split),
            self._sizes[split],
            np.random.default_rng([self._seed, self.SPLITS.index(split)]),
        )


class _IdxBuilder(_ArrayRecordBuilder, skip_registration=True):
    IMAGE_SHAPE, NUM_CLASSES, PIXEL_MAX = (28, 28, 1), 10, 255

    def __init__(self, *, directory: str, data_dir: str):
        self._directory = directory
        super().__init__(variant=_source_variant(directory), data_dir=data_dir)

    def _arrays(self, split):
        images, labels = idx.read_idx_split(self._directory, split)
        # Checked here, naming the files: TFDS's encoder would fail later with the
        # offending example's pixels in its message and no file name.
        image_path, label_path = idx.find_split_files(self._directory, split)
        if tuple(images.shape[1:]) != self.IMAGE_SHAPE:
            raise ValueError(
                f"{image_path}: images of shape {tuple(images.shape[1:3])}; "
                f"{self.name} expects {self.IMAGE_SHAPE[:2]}"
            )
        bad = np.flatnonzero(labels >= self.NUM_CLASSES)
        if bad.size:
            raise ValueError(
                f"{label_path}: label {int(labels[bad[0]])} at index {int(bad[0])} "
                f"is not a class of {self.name} (0..{self.NUM_CLASSES - 1}); "
                f"{bad.size} such label(s)"
            )
        return images, labels


class ReganFashionMnist(_IdxBuilder, skip_registration=True):
    pass


class ReganMnist(_IdxBuilder, skip_registration=True):
    pass


class ReganUnpairedDigits(_ArrayRecordBuilder, skip_registration=True):
    IMAGE_SHAPE, NUM_CLASSES, PIXEL_MAX = (8, 8, 2), unpaired.CLASSES_PER_DOMAIN**2, 16

    def __init__(self, *, data_dir: str):
        super().__init__(variant=f"invert_seed{unpaired.UNPAIRED_SEED}", data_dir=data_dir)

    def _arrays(self, split):
        images, labels = digits_arrays(split)
        return unpaired.unpaired_arrays(images, labels, self.PIXEL_MAX, self.SPLITS.index(split))[
            :2
        ]


class ReganUnpairedFashionMnist(_ArrayRecordBuilder, skip_registration=True):
    IMAGE_SHAPE, NUM_CLASSES, PIXEL_MAX = (28, 28, 2), unpaired.CLASSES_PER_DOMAIN**2, 255

    def __init__(self, *, directory: str, data_dir: str):
        self._directory = directory
        super().__init__(
            variant=f"invert_seed{unpaired.UNPAIRED_SEED}_{_source_variant(directory)}",
            data_dir=data_dir,
        )

    def _arrays(self, split):
        images, labels = idx.read_idx_split(self._directory, split)
        if tuple(images.shape[1:]) != (28, 28, 1):
            image_path, _ = idx.find_split_files(self._directory, split)
            raise ValueError(
                f"{image_path}: images of shape {tuple(images.shape[1:3])}; "
                f"{self.name} expects (28, 28)"
            )
        if labels.size and labels.max() >= unpaired.CLASSES_PER_DOMAIN:
            _, label_path = idx.find_split_files(self._directory, split)
            raise ValueError(
                f"{label_path}: label {int(labels.max())} is not a class of "
                f"{self.name} (0..{unpaired.CLASSES_PER_DOMAIN - 1})"
            )
        return unpaired.unpaired_arrays(images, labels, self.PIXEL_MAX, self.SPLITS.index(split))[
            :2
        ]


def _unpaired_builder(name: str, *, data_dir: str, idx_dir: str = ""):
    """The builder of the unpaired dataset ``name`` (:data:`regan_jax.data.unpaired.UNPAIRED`).

    Raises:
      FileNotFoundError: ``unpaired_fashion_mnist`` without its IDX files.
    """
    if name == "unpaired_digits":
        return ReganUnpairedDigits(data_dir=data_dir)
    base = unpaired.UNPAIRED[name].base
    directory = idx_directory(base, idx_dir, data_dir)
    if directory is None:
        raise FileNotFoundError(f"dataset {name!r} needs the {base} IDX files: {_HOW_TO_GET[base]}")
    return ReganUnpairedFashionMnist(directory=directory, data_dir=data_dir)


def digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: ``uint8 [N, 8, 8, 1]`` (0..16) and labels ``[N]``.

    ``train``: the first 1,797 - 297 = 1,500; ``test``: the last 297.
    """
    digits = sklearn.datasets.load_digits()
    images = digits.images.astype(np.uint8)[..., None]
    cut = len(images) - DIGITS_TEST_SIZE
    part = {"train": slice(None, cut), "test": slice(cut, None)}[split]
    return images[part], digits.target[part].astype(np.int64)


def stack_digits(
    images: np.ndarray, labels: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``size`` 3-channel images from three uniformly drawn digits each.

    For draws a, b, c (indices into ``images``) the example is
    ``concat(images[a], images[b], images[c])`` on the channel axis, label
    ``100 labels[a] + 10 labels[b] + labels[c]``.
    """
    draws = rng.integers(0, len(images), size=(size, 3))
    stacked = np.concatenate([images[draws[:, c]] for c in range(3)], axis=-1)
    return stacked, labels[draws] @ np.array([100, 10, 1])


def data_dir_or_default(data_dir: str = "") -> str:
    """``data_dir``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
    return os.path.expanduser(
        data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    )


def idx_directory(name: str, idx_dir: str = "", data_dir: str = "") -> str | None:
    """The directory of ``name``'s IDX files, or None to use the TFDS catalog.

    Looked up in order: ``idx_dir``; ``$REGAN_DATA_DIR`` (its subdirectory
    ``fashion-mnist``/``fashion_mnist`` if present, else itself); Debian's
    ``/usr/share/datasets/<name with dashes>``; TFDS's manual dir
    ``<data_dir>/downloads/manual[/<name>]``. The first two are explicit
    requests: missing or holding no ``train`` files, they raise.

    Raises:
      FileNotFoundError: an explicit directory that is missing or lacks the files.
    """
    if idx_dir:
        idx.find_split_files(idx_dir, "train")
        return idx_dir
    env = os.environ.get("REGAN_DATA_DIR", "")
    if env:
        candidates = [os.path.join(env, name.replace("_", "-")), os.path.join(env, name), env]
        found = [d for d in candidates if _has_idx(d)]
        if not found:
            raise FileNotFoundError(
                f"REGAN_DATA_DIR={env!r}: no {name} IDX files "
                f"(train-images-idx3-ubyte[.gz], ...) in any of "
                f"{candidates}; {_HOW_TO_GET[name]}"
            )
        return found[0]
    manual = os.path.join(data_dir_or_default(data_dir), "downloads", "manual")
    for directory in (
        os.path.join(DEBIAN_DATASETS_DIR, name.replace("_", "-")),
        os.path.join(manual, name),
        manual,
    ):
        if _has_idx(directory):
            return directory
    return None


def load(
    name: str,
    split: str = "train",
    *,
    data_dir: str = "",
    idx_dir: str = "",
    download: bool = False,
    size: int = 10_000,
    test_size: int = 1_000,
    seed: int = 0,
) -> ArrayDataset:
    """One split of an image dataset, prepared once and read via ``tfds.data_source``.

    Pixels p with maximum P (16 for the digits, 255 otherwise) become
    ``2 p / P - 1`` in [-1, 1].

    Args:
      name: one of :data:`LOCAL_DATASETS` or a TFDS catalog name.
      split: ``'train'`` or ``'test'`` (catalog datasets: any TFDS split).
      data_dir: cache of prepared datasets ('' -> :func:`data_dir_or_default`).
      idx_dir: ``fashion_mnist``/``mnist`` (and ``unpaired_fashion_mnist``) IDX
        directory (see :func:`idx_directory`).
      download: whether a catalog dataset may be downloaded (default: no; nothing
        is downloaded unless asked).
      size, test_size, seed: ``stacked_digits`` split sizes and seed.

    Returns:
      The split as an :class:`ArrayDataset`, in source order.

    Raises:
      ValueError: a mixture or unknown name (the message lists the valid
        ones), an unknown split, invalid sizes, a bad IDX file.
      FileNotFoundError: missing IDX directory/files, or a missing
        ``fashion_mnist``/``mnist`` (the message says how to get it).
    """
    if name in MIXTURES:
        raise ValueError(f"{name!r} is a 2-D mixture; use regan_jax.data.mixture({name!r})")
    with _absl_errors_only():  # TFDS warns "Using custom data configuration" for every builder.
        return _load(name, split, data_dir, idx_dir, download, size, test_size, seed)


def _load(name, split, data_dir, idx_dir, download, size, test_size, seed) -> ArrayDataset:
    """:func:`load` after its name check (absl's warnings already silenced)."""
    data_dir = data_dir_or_default(data_dir)
    if name == "digits":
        builder = ReganDigits(variant="sklearn", data_dir=data_dir)
    elif name == "stacked_digits":
        if size <= 0 or test_size <= 0 or seed < 0:
            raise ValueError(
                f"stacked_digits needs size > 0, test_size > 0, seed >= 0; got "
                f"size={size}, test_size={test_size}, seed={seed}"
            )
        builder = ReganStackedDigits(size=size, test_size=test_size, seed=seed, data_dir=data_dir)
    elif name in UNPAIRED_DATASETS:
        builder = _unpaired_builder(name, data_dir=data_dir, idx_dir=idx_dir)
    elif name in _IDX_DATASETS:
        directory = idx_directory(name, idx_dir, data_dir)
        if directory is None:
            return _load_catalog(name, split, data_dir, download, hint=_HOW_TO_GET[name])
        builder = {"fashion_mnist": ReganFashionMnist, "mnist": ReganMnist}[name](
            directory=directory, data_dir=data_dir
        )
    else:
        return _load_catalog(name, split, data_dir, download)
    if split not in builder.SPLITS:
        raise ValueError(f"dataset {name!r} has splits {list(builder.SPLITS)}; got {split!r}")
    _prepare_quietly(builder)
    source = tfds.data_source(
        f"{builder.name}/{builder.builder_config.name}",
        split=split,
        data_dir=data_dir,
        download=False,
    )
    images, labels, index = _read_all(source, ("image", "label", "index"))
    order = np.argsort(index)
    return _to_dataset(name, images[order], labels[order], builder.NUM_CLASSES, builder.PIXEL_MAX)


@contextlib.contextmanager
def _absl_errors_only():
    """absl's (TFDS's) log records below ERROR dropped while the block runs."""
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl_logger.setLevel(level)


def _prepare_quietly(builder) -> None:
    """``builder.download_and_prepare()`` (once per cache) without TFDS's progress bars: a
    project builder's first run is a second or two of local work."""
    with contextlib.redirect_stderr(io.StringIO()):
        builder.download_and_prepare()


def _load_catalog(name, split, data_dir, download, hint=None) -> ArrayDataset:
    """A TFDS catalog dataset: prepared under ``data_dir``, or downloaded if ``download``."""
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise ValueError(
            f"dataset {name!r} unknown: expected one of {list(LOCAL_DATASETS)}, "
            f"a mixture {list(MIXTURES)}, or a TFDS catalog name "
            f"(e.g. cifar10, celeb_a)"
        ) from e
    try:
        source = tfds.data_source(name, split=split, data_dir=data_dir, download=download)
    except Exception as e:  # Any failure to prepare/download: say what to do instead.
        if hint is None and not download:
            raise FileNotFoundError(
                f"dataset {name!r} is not prepared under {data_dir!r} and downloads are off "
                "(set config.data.download=true, or download=True in regan_jax.data.load, "
                "to let TFDS download it)"
            ) from e
        if hint is None:
            raise
        raise FileNotFoundError(
            f"dataset {name!r}: no local IDX files and the TFDS catalog "
            f"copy under {data_dir!r} is not available ({e}); "
            f"{hint}"
        ) from e
    features = builder.info.features
    if "image" not in features:
        raise ValueError(f"dataset {name!r} has no 'image' feature; it has {list(features)}")
    labelled = "label" in features and isinstance(features["label"], tfds.features.ClassLabel)
    if labelled:
        images, labels = _read_all(source, ("image", "label"))
    else:
        (images,) = _read_all(source, ("image",))
        labels = np.zeros(len(images), np.int32)
    return _to_dataset(name, images, labels, features["label"].num_classes if labelled else 0, 255)


def _read_all(source, keys) -> list[np.ndarray]:
    """Every example of a random-access data source, stacked per key."""
    examples = source.__getitems__(range(len(source)))
    return [np.stack([np.asarray(e[k]) for e in examples]) for k in keys]


def _to_dataset(name, images, labels, num_classes, pixel_max) -> ArrayDataset:
    if images.ndim == 3:
        images = images[..., None]
    scaled = images.astype(np.float32) * np.float32(2.0 / pixel_max) - np.float32(1.0)
    return ArrayDataset(
        images=scaled, labels=labels.astype(np.int32), num_classes=int(num_classes), name=name
    )


def _has_idx(directory: str) -> bool:
    try:
        idx.find_split_files(directory, "train")
    except FileNotFoundError:
        return False
    return True


def _source_variant(directory: str) -> str:
    """A cache name that changes when the IDX files do (path, sizes, mtimes)."""
    digest = hashlib.sha1(os.path.realpath(directory).encode())
    for split in _ArrayRecordBuilder.SPLITS:
        for path in idx.find_split_files(directory, split):
            stat = os.stat(path)
            digest.update(f"{os.path.basename(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return "idx_" + digest.hexdigest()[:12]
