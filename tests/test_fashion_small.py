"""The CPU-sized Fashion-MNIST configs build and train on tiny IDX fixtures (no real files)."""

import gzip
import json
import struct

import numpy as np
import pytest

import experiments
from benchmarks import fashion_candidates
from regan_jax import config as config_lib
from regan_jax import train

SMALL_CONFIGS = ["fashion_mnist_gan_small", "fashion_mnist_vae_small"]


def _write_idx(path, array: np.ndarray) -> None:
    """``array`` (uint8) in the IDX encoding, gzipped, written independently of the reader."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(f"{path}.gz", "wb") as f:
        f.write(header + array.astype(">u1").tobytes())


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    """Fashion-MNIST's file layout: 70 training and 20 test images of all 10 classes."""
    root = tmp_path_factory.mktemp("fashion_idx")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 70), ("t10k", 20)):
        _write_idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(root / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return root


@pytest.mark.parametrize("name", SMALL_CONFIGS)
def test_small_config_trains_two_steps_at_its_own_size(name, idx_dir, tmp_path):
    config = experiments.load_config(
        name,
        [
            ("data.idx_dir", str(idx_dir)),
            ("data.data_dir", str(tmp_path / "cache")),
            ("steps", "2"),
            ("eval.num_samples", "20"),
            ("eval.fd_samples", "20"),
            ("eval.fd_every", "2"),
            ("log.every", "1"),
            ("log.samples_every", "0"),
            ("log.checkpoint_every", "0"),
            ("log.progress", "false"),
        ],
    )
    full = experiments.load_config(name)
    assert (config.model.to_dict(), config.data.batch_size) == (
        full.model.to_dict(),
        full.data.batch_size,
    )
    train.train_and_evaluate(config, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 2 and not summary["diverged"]
    assert np.isfinite(summary["fd"])
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["step"] for r in rows] == [1, 2]


def test_every_benchmark_candidate_is_a_valid_config_with_its_overrides():
    for name, (base, overrides) in fashion_candidates.CANDIDATES.items():
        config = fashion_candidates.candidate_config(name)
        flat = config_lib.flatten(config)
        assert all(flat[key] == value for key, value in overrides.items()), name
        assert config.data.name == "fashion_mnist" and config.name == base
