"""regan_jax.evaluation: shipped classifiers, weights checks, Inception-v3, the evaluator.

Numbers are asserted against independent float64 numpy references.
"""
import json
import pathlib
import shutil

import numpy as np
import pytest

from regan_jax import data, evaluation, metrics
from regan_jax.evaluation import classifier as classifier_lib


@pytest.fixture(scope="module")
def digits_test():
    return data.load("digits", "test")


@pytest.fixture(scope="module")
def digits_train():
    return data.load("digits", "train")


@pytest.fixture(scope="module")
def digits_clf():
    return evaluation.load_classifier("digits")


def _shuffled_pixels(images, seed):
    """Each image's pixels permuted independently (same pixel histogram, no structure)."""
    rng = np.random.default_rng(seed)
    flat = np.asarray(images).reshape(len(images), -1).copy()
    for row in flat:
        rng.shuffle(row)
    return flat.reshape(np.shape(images))


# --------------------------------------------------------------- classifiers
def test_digits_classifier_held_out_accuracy(digits_clf, digits_test):
    accuracy = np.mean(np.asarray(digits_clf.predict(digits_test.images)) == digits_test.labels)
    assert accuracy >= 0.97
    assert digits_clf.metadata["test_accuracy"] == pytest.approx(accuracy)


def test_digits_features_separate_real_from_shuffled(digits_clf, digits_train, digits_test):
    n = digits_test.images.shape[0]
    reference = digits_clf.features(digits_test.images)
    real = digits_clf.features(digits_train.images[:n])
    shuffled = digits_clf.features(_shuffled_pixels(digits_train.images[:n], seed=0))
    fd_real = metrics.frechet_distance(real, reference)
    fd_shuffled = metrics.frechet_distance(shuffled, reference)
    assert fd_shuffled > 5 * fd_real


def _copy_weights(tmp_path, name="digits"):
    for suffix in (".msgpack", ".json"):
        shutil.copy(classifier_lib.WEIGHTS_DIR / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path / f"{name}.msgpack"


def test_tampered_weights_are_refused(tmp_path):
    path = _copy_weights(tmp_path)
    payload = bytearray(path.read_bytes())
    payload[-1] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(ValueError, match="sha256"):
        evaluation.load_classifier("digits", path)


def test_weights_of_another_dataset_are_refused(tmp_path):
    path = _copy_weights(tmp_path)
    with pytest.raises(ValueError, match="'digits'.*not 'fashion_mnist'"):
        evaluation.load_classifier("fashion_mnist", path)
