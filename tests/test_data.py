"""Builders, IDX reader, catalog path and mixtures of regan_jax.data.

Every test prepares data under a temporary data dir; nothing is downloaded.
"""

import functools
import gzip
import os
import struct

import jax
import numpy as np
import pytest
import sklearn.datasets
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking as tfds_mocking

from regan_jax import data
from regan_jax.data import builders

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(autouse=True)
def no_user_dirs(monkeypatch, tmp_path):
    """Environment that points nowhere real: no REGAN_DATA_DIR, TFDS dir in tmp."""
    monkeypatch.delenv("REGAN_DATA_DIR", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "env_tfds"))


def _sklearn_digits_scaled():
    digits = sklearn.datasets.load_digits()
    return digits.images.astype(np.float64) / 16 * 2 - 1, digits.target


# --- digits and stacked_digits ---------------------------------------------------------


def test_digits_matches_sklearn_with_fixed_split(cache):
    images, labels = _sklearn_digits_scaled()
    train, test = data.load("digits", data_dir=cache), data.load("digits", "test", data_dir=cache)
    assert (len(train), len(test)) == (1500, 297)
    for ds, part in ((train, slice(None, 1500)), (test, slice(1500, None))):
        assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int32
        assert ds.images.shape[1:] == (8, 8, 1) and ds.num_classes == 10
        assert ds.spec == data.DataSpec((8, 8, 1), 10, "digits")
        np.testing.assert_allclose(ds.images[..., 0], images[part], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(ds.labels, labels[part])
    assert train.images.min() == -1 and train.images.max() == 1
    assert set(np.unique(train.labels)) == set(range(10))


def test_prepared_once_as_array_record_under_data_dir(cache):
    data.load("digits", data_dir=cache)
    version_dir = os.path.join(cache, "regan_digits", "sklearn", "1.0.0")
    files = sorted(os.listdir(version_dir))
    assert "dataset_info.json" in files
    assert any(f.startswith("regan_digits-train.array_record") for f in files)
    before = {f: os.stat(os.path.join(version_dir, f)).st_mtime_ns for f in files}
    data.load("digits", data_dir=cache)
    assert {f: os.stat(os.path.join(version_dir, f)).st_mtime_ns for f in files} == before
    assert not [
        d
        for d in os.listdir(os.path.join(cache, "regan_digits", "sklearn"))
        if d.startswith("incomplete")
    ]


def test_default_data_dir_is_tfds_data_dir(tmp_path):
    data.load("digits", "test")
    assert os.path.isdir(tmp_path / "env_tfds" / "regan_digits")
    assert data.data_dir_or_default("/x") == "/x"


def test_stacked_digits_channels_are_labelled_digits(cache):
    images, labels = _sklearn_digits_scaled()
    ds = data.load("stacked_digits", size=200, test_size=40, seed=3, data_dir=cache)
    test = data.load("stacked_digits", "test", size=200, test_size=40, seed=3, data_dir=cache)
    assert (len(ds), len(test)) == (200, 40)
    assert ds.images.shape[1:] == (8, 8, 3) and ds.num_classes == 1000
    assert ds.labels.dtype == np.int32 and 0 <= ds.labels.min() and ds.labels.max() < 1000
    for split, part in ((ds, slice(None, 1500)), (test, slice(1500, None))):
        pool, pool_labels = images[part].reshape(-1, 64), labels[part]
        for image, label in zip(split.images, split.labels):
            for channel, digit in enumerate((label // 100, label // 10 % 10, label % 10)):
                dist = np.abs(pool - image[..., channel].reshape(1, 64)).max(axis=1)
                assert digit in pool_labels[dist < 1e-6], (label, channel)
    assert len(np.unique(ds.labels)) > 150  # 200 draws of 1,000 classes: few repeats.


def test_stacked_digits_seeded(cache):
    a = data.load("stacked_digits", size=50, test_size=10, seed=0, data_dir=cache)
    b = data.load("stacked_digits", size=50, test_size=10, seed=0, data_dir=cache)
    c = data.load("stacked_digits", size=50, test_size=10, seed=1, data_dir=cache)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.labels, c.labels)


@pytest.mark.parametrize("kwargs", [dict(size=0), dict(test_size=-1), dict(seed=-2)])
def test_stacked_digits_bad_sizes(cache, kwargs):
    with pytest.raises(ValueError, match="stacked_digits"):
        data.load("stacked_digits", data_dir=cache, **kwargs)


def test_unknown_name_split_and_mixture_name(cache):
    with pytest.raises(ValueError, match=r"'no_such_data' unknown.*digits.*ring8"):
        data.load("no_such_data", data_dir=cache)
    with pytest.raises(ValueError, match=r"splits \['train', 'test'\]; got 'validation'"):
        data.load("digits", "validation", data_dir=cache)
    with pytest.raises(ValueError, match="mixture"):
        data.load("ring8", data_dir=cache)


# --- IDX ---------------------------------------------------------------------------------


def _idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """The IDX encoding, written independently of the reader under test."""
    big_endian = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big_endian).tobytes()


def _write(path, payload: bytes, gz: bool):
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)


def _idx_dir(root, gz=True, counts=(12, 5), seed=0):
    """A small MNIST-layout directory; returns it and the arrays written."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in zip(("train", "t10k"), counts):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        _write(root / f"{prefix}-images-idx3-ubyte", _idx_bytes(images), gz)
        _write(root / f"{prefix}-labels-idx1-ubyte", _idx_bytes(labels), gz)
        arrays[prefix] = images, labels
    return root, arrays


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trips(tmp_path, gz):
    rng = np.random.default_rng(1)
    for code, array in (
        (0x08, rng.integers(0, 256, (3, 4, 5)).astype(np.uint8)),
        (0x0B, rng.integers(-3000, 3000, (7,)).astype(np.int16)),
        (0x0D, rng.normal(size=(2, 3)).astype(np.float32)),
    ):
        path = tmp_path / f"a{code}"
        _write(path, _idx_bytes(array, code), gz)
        out = data.read_idx(str(path) + (".gz" if gz else ""))
        assert out.dtype == array.dtype and out.dtype.isnative
        np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_dataset_round_trips_exactly(tmp_path, gz):
    root, arrays = _idx_dir(tmp_path / "fm", gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = data.load("fashion_mnist", split, idx_dir=str(root), data_dir=str(tmp_path / "c"))
        images, labels = arrays[prefix]
        assert ds.images.shape == (len(images), 28, 28, 1) and ds.images.dtype == np.float32
        np.testing.assert_array_equal(ds.images[..., 0], images.astype(np.float32) * (2 / 255) - 1)
        np.testing.assert_allclose(ds.images[..., 0], images / 127.5 - 1, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(ds.labels, labels)
        assert ds.labels.dtype == np.int32 and ds.num_classes == 10


def test_mnist_from_regan_data_dir(tmp_path, monkeypatch):
    _, arrays = _idx_dir(tmp_path / "datasets" / "mnist", seed=4)
    monkeypatch.setenv("REGAN_DATA_DIR", str(tmp_path / "datasets"))
    ds = data.load("mnist", "test", data_dir=str(tmp_path / "c"))
    np.testing.assert_array_equal(ds.labels, arrays["t10k"][1])


def test_changed_idx_files_rebuild(tmp_path):
    cache = str(tmp_path / "c")
    root, _ = _idx_dir(tmp_path / "fm", seed=0)
    first = data.load("fashion_mnist", idx_dir=str(root), data_dir=cache)
    _, arrays = _idx_dir(tmp_path / "fm", seed=1, counts=(9, 5))
    second = data.load("fashion_mnist", idx_dir=str(root), data_dir=cache)
    assert len(first) == 12
    np.testing.assert_array_equal(second.labels, arrays["train"][1])


def test_missing_directory_and_split_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="IDX directory .*nowhere.* does not exist"):
        data.load("fashion_mnist", idx_dir=str(tmp_path / "nowhere"))
    root, _ = _idx_dir(tmp_path / "fm")
    os.remove(root / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(
        FileNotFoundError, match=r"no test split file t10k-labels-idx1-ubyte\[.gz\]"
    ):
        data.load("fashion_mnist", "train", idx_dir=str(root), data_dir=str(tmp_path / "c"))


def test_regan_data_dir_without_files_says_how_to_get_it(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("REGAN_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load("fashion_mnist", data_dir=str(tmp_path / "c"))


def test_nothing_local_and_no_download_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(builders, "DEBIAN_DATASETS_DIR", str(tmp_path / "no_debian"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load("fashion_mnist", data_dir=str(tmp_path / "c"), download=False)


def _corrupt(root, name, transform):
    path = root / name
    path.write_bytes(transform(path.read_bytes()))


@pytest.mark.parametrize(
    "name, transform, message",
    [
        ("train-images-idx3-ubyte.gz", lambda b: b[: len(b) // 2], "not a valid gzip file"),
        ("train-images-idx3-ubyte.gz", lambda b: b[:10] + bytes(len(b) - 10), "not a valid gzip"),
        ("train-images-idx3-ubyte", lambda b: b[:-7], r"needs exactly .*\(truncated\)"),
        ("train-images-idx3-ubyte", lambda b: b + b"xx", r"\(trailing bytes\)"),
        ("train-labels-idx1-ubyte", lambda b: b"\x12\x34" + b[2:], "magic number 0x1234"),
        (
            "train-labels-idx1-ubyte",
            lambda b: b[:2] + b"\x08\x03" + b[4:],
            "0x00000803; expected magic number 0x00000801",
        ),
        (
            "t10k-labels-idx1-ubyte",
            lambda b: b[:2] + b"\x0b" + b[3:],
            r"0x00000b01; expected magic number 0x00000801 \(uint8, 1 dims\)",
        ),
    ],
)
def test_bad_idx_files_raise_and_leave_no_cache(tmp_path, name, transform, message):
    root, _ = _idx_dir(tmp_path / "fm", gz=name.endswith(".gz"))
    _corrupt(root, name, transform)
    cache = tmp_path / "c"
    with pytest.raises(ValueError, match=message) as info:
        data.load("fashion_mnist", idx_dir=str(root), data_dir=str(cache))
    assert name in str(info.value)
    assert not list(cache.glob("**/dataset_info.json"))
    assert not list(cache.glob("**/incomplete*"))


@pytest.mark.parametrize(
    "what, message",
    [
        ("8x8 images", r"train-images-idx3-ubyte: images of shape \(8, 8\); .* expects \(28, 28\)"),
        ("label 42", r"train-labels-idx1-ubyte: label 42 at index 3 is not a class .*\(0..9\)"),
    ],
)
def test_idx_files_of_the_wrong_shape_or_classes_name_the_file(tmp_path, what, message):
    root, arrays = _idx_dir(tmp_path / "fm", gz=False)
    images, labels = arrays["train"]
    if what == "8x8 images":
        _write(root / "train-images-idx3-ubyte", _idx_bytes(images[:, :8, :8]), gz=False)
    else:
        labels = labels.copy()
        labels[3] = 42
        _write(root / "train-labels-idx1-ubyte", _idx_bytes(labels), gz=False)
    with pytest.raises(ValueError, match=message) as info:
        data.load("fashion_mnist", idx_dir=str(root), data_dir=str(tmp_path / "c"))
    assert len(str(info.value)) < 300  # one line naming the file, no pixel dump


def test_image_label_count_mismatch(tmp_path):
    root, _ = _idx_dir(tmp_path / "fm", gz=False)
    _write(root / "t10k-labels-idx1-ubyte", _idx_bytes(np.zeros(4, np.uint8)), gz=False)
    with pytest.raises(ValueError, match=r"5 images in .*t10k-images.* but 4 labels in .*t10k"):
        data.load("fashion_mnist", "test", idx_dir=str(root), data_dir=str(tmp_path / "c"))


@pytest.mark.fashion_mnist
def test_real_fashion_mnist_idx_files():
    if not os.path.isdir(FASHION_DIR):
        pytest.skip(f"{FASHION_DIR} absent (apt-get install dataset-fashion-mnist)")
    assert data.idx_directory("fashion_mnist") == FASHION_DIR
    for split, n in (("train", 60_000), ("test", 10_000)):
        images, labels = data.read_idx_split(FASHION_DIR, split)
        assert images.shape == (n, 28, 28, 1) and images.dtype == np.uint8
        np.testing.assert_array_equal(np.bincount(labels), np.full(10, n // 10))


@pytest.mark.fashion_mnist
@pytest.mark.slow
def test_real_fashion_mnist_load(tmp_path):
    if not os.path.isdir(FASHION_DIR):
        pytest.skip(f"{FASHION_DIR} absent (apt-get install dataset-fashion-mnist)")
    ds = data.load("fashion_mnist", "test", data_dir=str(tmp_path))
    images, labels = data.read_idx_split(FASHION_DIR, "test")
    assert ds.spec == data.DataSpec((28, 28, 1), 10, "fashion_mnist")
    np.testing.assert_allclose(ds.images, images / 127.5 - 1, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ds.labels, labels)


# --- TFDS catalog (mocked: no download) ---------------------------------------------------


@pytest.fixture
def mock_catalog(monkeypatch):
    """``tfds.testing.mock_data`` with TFDS 4.9.10's batched read fixed.

    Its mock stores ``partial(_getitems, generator=...)`` as an *instance*
    attribute, so ``__getitems__(keys)`` is called without the mock as
    ``self`` and raises TypeError; single-item reads are unaffected.
    """

    def getitems(record_keys, generator, serialized=False):
        assert not serialized
        return [generator[k] for k in record_keys]

    monkeypatch.setattr(tfds_mocking, "_getitems", getitems)
    return functools.partial(tfds.testing.mock_data, policy=tfds.testing.MockPolicy.USE_CODE)


def test_catalog_dataset_through_mock_data(tmp_path, mock_catalog):
    with mock_catalog(num_examples=6):
        ds = data.load("cifar10", "train", data_dir=str(tmp_path))
    assert ds.images.shape == (6, 32, 32, 3) and ds.images.dtype == np.float32
    assert -1 <= ds.images.min() and ds.images.max() <= 1
    assert ds.num_classes == 10 and ds.labels.dtype == np.int32
    assert 0 <= ds.labels.min() and ds.labels.max() < 10


def test_fashion_mnist_falls_back_to_catalog(tmp_path, monkeypatch, mock_catalog):
    monkeypatch.setattr(builders, "DEBIAN_DATASETS_DIR", str(tmp_path / "no_debian"))
    with mock_catalog(num_examples=4):
        ds = data.load("fashion_mnist", "test", data_dir=str(tmp_path))
    assert ds.images.shape == (4, 28, 28, 1) and ds.num_classes == 10


# --- mixtures -------------------------------------------------------------------------------


def test_mixture_centres_closed_form():
    ring = data.mixture("ring8")
    angles = np.arange(8) * np.pi / 4
    np.testing.assert_allclose(ring.centres, 2 * np.c_[np.cos(angles), np.sin(angles)], atol=1e-6)
    grid = data.mixture("grid25", spacing=1.5, sigma=0.1)
    assert {tuple(c) for c in grid.centres} == {
        (1.5 * i, 1.5 * j) for i in range(-2, 3) for j in range(-2, 3)
    }
    assert (ring.sigma, grid.sigma) == (0.02, 0.1)
    assert grid.spec == data.DataSpec((2,), 25, "grid25")


@pytest.mark.parametrize("name", data.MIXTURES)
def test_mixture_samples_have_the_stated_law(name):
    mix = data.mixture(name, sigma=0.05)
    n = 20_000
    points, labels = map(np.asarray, mix.sample_labelled(jax.random.key(0), n))
    assert points.shape == (n, 2) and points.dtype == np.float32 and labels.dtype == np.int32
    np.testing.assert_array_equal(points, np.asarray(mix.sample(jax.random.key(0), n)))
    nearest = np.argmin(((points[:, None] - mix.centres[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, labels)
    residual = points.astype(np.float64) - mix.centres[labels]
    np.testing.assert_allclose(residual.std(axis=0), 0.05, rtol=0.04)
    np.testing.assert_allclose(residual.mean(axis=0), 0, atol=0.002)
    m = mix.num_modes
    counts = np.bincount(labels, minlength=m)
    chi2 = ((counts - n / m) ** 2 / (n / m)).sum()
    assert chi2 < m + 6 * np.sqrt(2 * m)  # Far in the tail of chi²(M-1) if not uniform.
    assert not np.array_equal(points, np.asarray(mix.sample(jax.random.key(1), n)))


def test_mixture_bad_input():
    with pytest.raises(ValueError, match=r"'ring9' unknown.*ring8.*grid25"):
        data.mixture("ring9")
    with pytest.raises(ValueError, match="sigma must be > 0, got 0"):
        data.mixture("ring8", sigma=0)
