"""regan_jax.evaluation: shipped classifiers, weights checks, Inception-v3, the evaluator.

Numbers are asserted against independent float64 numpy / scipy references
(FD with scipy's sqrtm, PRDC by brute force, mode histograms by hand, torch's
bilinear formula written out) or closed forms (log 8, log 1000, 1 - e^{-9/2}).
"""

import hashlib
import json
import math
import os
import shutil

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from regan_jax import data, evaluation
from regan_jax.evaluation import classifier as classifier_lib
from regan_jax.evaluation import inception, train_classifier

FASHION_DIR = "/usr/share/datasets/fashion-mnist"

# summary.json keys of DESIGN.md, by the kind of run they apply to.
FEATURE_KEYS = {"fd", "kid", "precision", "recall", "density", "coverage"}
# One sample count for every image evaluation and one for every mixture one: the
# metrics' kernels compile once per array shape (several seconds each on CPU).
NUM_SAMPLES = 1000
NUM_POINTS = 2000
EXPECTED_KEYS = {
    "gan_images": FEATURE_KEYS | {"modes", "class_kl"},
    "mixture": {
        "modes",
        "robust_modes",
        "hq_fraction",
        "noise_hq_fraction",
        "reverse_kl",
        "at_noise_level",
    },
    "stacked_digits": FEATURE_KEYS | {"modes", "class_kl"},
    "cgan": FEATURE_KEYS | {"modes", "class_kl", "cond_accuracy"},
    "vae": FEATURE_KEYS | {"modes", "class_kl", "elbo"},
}


# ------------------------------------------------------------------ helpers
def _shuffled_pixels(images, seed):
    """Each image's pixels permuted independently (same pixel histogram, no structure)."""
    rng = np.random.default_rng(seed)
    flat = np.asarray(images).reshape(len(images), -1).copy()
    for row in flat:
        rng.shuffle(row)
    return flat.reshape(np.shape(images))


def _fd_reference(a, b):
    """pytorch-fid's formula in float64 with scipy.linalg.sqrtm."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _prdc_reference(real, fake, k):
    """Precision / recall / density / coverage by brute force in float64."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)

    def dists(u, v):  # exact differences (duplicates are at distance 0), 64 rows at a time
        return np.concatenate(
            [np.sqrt(((u[i : i + 64, None] - v[None]) ** 2).sum(-1)) for i in range(0, len(u), 64)]
        )

    def radii(u):
        return np.sort(dists(u, u), axis=1)[:, k]  # column 0 is the point itself

    r_real, r_fake = radii(real), radii(fake)
    d = dists(real, fake)
    in_real = d <= r_real[:, None]
    in_fake = d <= r_fake[None, :]
    return {
        "precision": in_real.any(0).mean(),
        "recall": in_fake.any(1).mean(),
        "density": in_real.sum() / (k * fake.shape[0]),
        "coverage": in_real.any(1).mean(),
    }


def _kl_to_uniform_reference(labels, num_classes):
    q = np.bincount(labels, minlength=num_classes) / len(labels)
    q = q[q > 0]
    return float(np.sum(q * np.log(num_classes * q)))


def _mode_reference(points, centres, sigma):
    """The VEEGAN / PacGAN protocol by hand: nearest centre, within 3 sigma, histogram."""
    d = np.linalg.norm(np.asarray(points, np.float64)[:, None] - centres[None], axis=-1)
    good = d.min(1) <= 3 * sigma
    labels = d.argmin(1)[good]
    return {
        "modes": len(np.unique(labels)),
        "hq_fraction": good.mean(),
        "reverse_kl": _kl_to_uniform_reference(labels, len(centres)),
    }


class Recorder:
    """A sampling function that remembers what it returned."""

    def __init__(self, fn):
        self.fn, self.drawn, self.labels = fn, [], []

    def __call__(self, key, n):
        out = self.fn(key, n)
        x, y = out if isinstance(out, tuple) else (out, None)
        self.drawn.append(np.asarray(x))
        self.labels.append(None if y is None else np.asarray(y))
        return out

    @property
    def samples(self):
        return np.concatenate(self.drawn)


def _resampler(images):
    """A "generator" drawing uniformly (with replacement) from ``images``."""

    def sample(key, n):
        return images[np.asarray(jax.random.randint(key, (n,), 0, len(images)))]

    return sample


def _assert_json_ready(summary):
    json.dumps(summary, allow_nan=False)
    assert all(v is None or isinstance(v, (int, float)) for v in summary.values())


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def digits_test():
    return data.load("digits", "test")


@pytest.fixture(scope="module")
def digits_train():
    return data.load("digits", "train")


@pytest.fixture(scope="module")
def digits_clf():
    return evaluation.load_classifier("digits")


@pytest.fixture(scope="module")
def digits_reference():
    return evaluation.make_reference("digits")


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
    fd_real, fd_shuffled = _fd_reference(real, reference), _fd_reference(shuffled, reference)
    assert fd_shuffled > 5 * fd_real


@pytest.mark.fashion_mnist
@pytest.mark.skipif(not os.path.isdir(FASHION_DIR), reason=f"{FASHION_DIR} missing")
def test_fashion_classifier_accuracy_and_features():
    clf = evaluation.load_classifier("fashion_mnist")
    test = data.load("fashion_mnist", "test")
    # The raw IDX train images (the tfds split reads all 60k records: seconds).
    train_pixels, _ = data.read_idx_split(FASHION_DIR, "train")
    train_images = (2.0 * train_pixels[:2000].reshape(2000, 28, 28, 1) / 255.0 - 1.0).astype(
        np.float32
    )
    accuracy = np.mean(np.asarray(clf.predict(test.images)) == test.labels)
    assert accuracy >= 0.90
    assert clf.metadata["test_accuracy"] == pytest.approx(accuracy)
    reference = clf.features(test.images[:2000])
    real = clf.features(train_images)
    shuffled = clf.features(_shuffled_pixels(train_images, seed=0))
    assert _fd_reference(shuffled, reference) > 20 * _fd_reference(real, reference)


def test_data_fingerprint_matches_the_train_split(digits_clf, digits_train):
    expected = hashlib.sha256(np.ascontiguousarray(digits_train.images, np.float32).tobytes())
    assert digits_clf.metadata["train_images_sha256"] == expected.hexdigest()
    assert digits_clf.metadata["train_size"] == len(digits_train.images)


def test_per_channel_classifier_classifies_each_channel(digits_clf, digits_test):
    x = digits_test.images
    stacked = np.concatenate([x[:50], x[50:100], x[100:150]], axis=-1)
    preds = np.asarray(classifier_lib.PerChannelClassifier(digits_clf).predict(stacked))
    for c in range(3):
        np.testing.assert_array_equal(
            preds[:, c], np.asarray(digits_clf.predict(stacked[..., c : c + 1]))
        )


def test_classifier_rejects_images_of_the_wrong_shape(digits_clf):
    with pytest.raises(ValueError, match=r"expects images \[N, 8, 8, 1\].*\(4, 28, 28, 1\)"):
        digits_clf.features(np.zeros((4, 28, 28, 1), np.float32))


# ------------------------------------------------------------- weights files
def _copy_weights(tmp_path, name="digits"):
    for suffix in (".msgpack", ".json"):
        shutil.copy(classifier_lib.WEIGHTS_DIR / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path / f"{name}.msgpack"


def _write_consistent(path, payload):
    """Writes ``payload`` as the weights and re-signs the metadata with its sha256."""
    path.write_bytes(payload)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["weights_sha256"] = hashlib.sha256(payload).hexdigest()
    meta_path.write_text(json.dumps(meta))


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


def test_weights_with_other_shapes_are_refused(tmp_path):
    path = _copy_weights(tmp_path)
    other = classifier_lib.ClassifierSpec(
        image_shape=(8, 8, 1),
        widths=(16, 64, 64),
        strides=(1, 2, 2),
        feature_dim=64,
        num_classes=10,
    )
    params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), classifier_lib.param_shapes(other))
    _write_consistent(path, flax.serialization.msgpack_serialize({"params": params}))
    with pytest.raises(ValueError, match="does not hold the 'digits' classifier's params"):
        evaluation.load_classifier("digits", path)


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = _copy_weights(tmp_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["architecture"]["widths"] = [16, 64, 64]
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="trained with architecture"):
        evaluation.load_classifier("digits", path)


def test_non_msgpack_and_missing_weights_are_refused(tmp_path):
    path = _copy_weights(tmp_path)
    _write_consistent(path, b"\xc1 not msgpack")
    with pytest.raises(ValueError, match="not a flax msgpack file"):
        evaluation.load_classifier("digits", path)
    with pytest.raises(ValueError, match="train_classifier --dataset digits"):
        evaluation.load_classifier("digits", tmp_path / "absent.msgpack")
    with pytest.raises(ValueError, match="no feature classifier for dataset 'cifar10'"):
        evaluation.load_classifier("cifar10")


# ---------------------------------------------------------- train_classifier
def test_random_affine_without_distortion_is_the_identity(digits_test):
    x = jnp.asarray(digits_test.images[:16])
    out = train_classifier.random_affine(jax.random.key(0), x, 0.0, 0.0, 0.0)
    np.testing.assert_allclose(np.asarray(out), np.asarray(x), atol=1e-5)
    distorted = np.asarray(train_classifier.random_affine(jax.random.key(1), x))
    assert distorted.shape == x.shape
    assert distorted.min() >= -1 - 1e-5 and distorted.max() <= 1 + 1e-5  # convex combinations


@pytest.mark.slow  # ~20 s on 2 shared cores: mostly compiling the train step
def test_train_and_save_round_trip(tmp_path, digits_train, digits_test):
    config = train_classifier.TrainConfig(epochs=2, batch_size=100, learning_rate=3e-3)
    meta = train_classifier.train_and_save("digits", tmp_path, config, command="test")
    clf = evaluation.load_classifier("digits", tmp_path / "digits.msgpack")
    accuracy = np.mean(np.asarray(clf.predict(digits_test.images)) == digits_test.labels)
    assert meta["test_accuracy"] == pytest.approx(accuracy)
    assert accuracy > 0.5  # two epochs already learn far above chance (0.1)
    assert (
        meta["weights_sha256"]
        == hashlib.sha256((tmp_path / "digits.msgpack").read_bytes()).hexdigest()
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


# ---------------------------------------------------------------- inception
def _torch_bilinear(x, size):
    """torch's F.interpolate(mode='bilinear', align_corners=False), written out in float64."""
    x = np.asarray(x, np.float64)

    def taps(n_in):
        src = np.maximum((np.arange(size) + 0.5) * n_in / size - 0.5, 0.0)
        lo = np.floor(src).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), src - lo

    i0, i1, wi = taps(x.shape[1])
    j0, j1, wj = taps(x.shape[2])
    rows = x[:, i0] * (1 - wi)[None, :, None, None] + x[:, i1] * wi[None, :, None, None]
    return rows[:, :, j0] * (1 - wj)[None, None, :, None] + rows[:, :, j1] * wj[None, None, :, None]


@pytest.mark.parametrize("in_size,out_size", [(8, 299), (28, 299), (5, 13), (13, 5), (32, 32)])
def test_resize_bilinear_matches_torch_formula(in_size, out_size):
    x = np.random.default_rng(in_size).uniform(-1, 1, (2, in_size, in_size, 3)).astype(np.float32)
    out = inception.resize_bilinear(jnp.asarray(x), out_size)
    np.testing.assert_allclose(np.asarray(out), _torch_bilinear(x, out_size), atol=1e-5)


def test_fid_average_pool_ignores_padding():
    # FIDInceptionA/C/E_1 pool with count_include_pad=False: border outputs average
    # only the neighbours inside the image.
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 3))
    expected = np.zeros_like(x)
    for i in range(5):
        for j in range(6):
            window = x[:, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
            expected[:, i, j] = window.mean(axis=(1, 2))
    out = inception._avg_pool_3x3(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-6)


def test_inception_param_count_is_torchvisions():
    # torchvision's inception_v3 has 27,161,264 parameters (its documented
    # num_params); without AuxLogits (3,326,696) and the 1000-class fc
    # (2,049,000) the trunk that pytorch-fid reads has 21,785,568.
    shapes = inception.variable_shapes()
    assert sum(math.prod(x.shape) for x in jax.tree.leaves(shapes["params"])) == 21_785_568


def _fake_state_dict(seed=0):
    """A pytorch-fid-shaped state dict of random arrays (torch layouts).

    He-scaled conv weights and batch-norm statistics near (0, 1) keep the
    activations of the 94 conv layers finite.
    """
    rng = np.random.default_rng(seed)
    state = {}
    for key, (_, _, shape) in inception.torch_key_map().items():
        if key.endswith("conv.weight"):
            value = rng.normal(size=shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        elif key.endswith(("bn.weight", "bn.running_var")):
            value = rng.uniform(0.5, 1.5, size=shape)
        else:  # bn.bias, bn.running_mean
            value = rng.normal(size=shape) * 0.1
        state[key] = value.astype(np.float32)
        if key.endswith("bn.running_var"):
            state[key.replace("running_var", "num_batches_tracked")] = np.array(0)
    state["fc.weight"] = np.zeros((1008, 2048), np.float32)
    state["fc.bias"] = np.zeros((1008,), np.float32)
    return state


def test_torch_state_dict_maps_onto_flax_variables():
    state = _fake_state_dict()
    variables = inception.variables_from_torch(state)
    assert jax.tree.structure(variables) == jax.tree.structure(inception.variable_shapes())
    conv = state["Mixed_6b.branch7x7_2.conv.weight"]  # torch [O, I, kh, kw] = [128, 128, 1, 7]
    kernel = np.asarray(variables["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"])
    assert kernel.shape == (1, 7, 128, 128)
    for o, i, h, w in [(0, 0, 0, 0), (3, 5, 0, 6), (127, 64, 0, 2)]:
        assert kernel[h, w, i, o] == conv[o, i, h, w]
    bn = variables["batch_stats"]["Mixed_7c"]["branch_pool"]["bn"]
    np.testing.assert_array_equal(bn["var"], state["Mixed_7c.branch_pool.bn.running_var"])
    np.testing.assert_array_equal(bn["mean"], state["Mixed_7c.branch_pool.bn.running_mean"])
    scale = variables["params"]["Conv2d_1a_3x3"]["bn"]["scale"]
    np.testing.assert_array_equal(scale, state["Conv2d_1a_3x3.bn.weight"])


def test_wrong_state_dicts_are_refused():
    state = _fake_state_dict()
    with pytest.raises(ValueError, match=r"fc.weight has shape \(1000, 2048\)"):
        inception.variables_from_torch({**state, "fc.weight": np.zeros((1000, 2048), np.float32)})
    missing = dict(state)
    del missing["Mixed_5b.branch1x1.conv.weight"]
    with pytest.raises(ValueError, match="1 missing keys.*Mixed_5b.branch1x1.conv.weight"):
        inception.variables_from_torch(missing)
    with pytest.raises(ValueError, match="1 unexpected keys.*AuxLogits"):
        inception.variables_from_torch({**state, "AuxLogits.fc.weight": np.zeros((1000, 768))})
    bad = {**state, "Conv2d_1a_3x3.conv.weight": np.zeros((32, 1, 3, 3), np.float32)}
    with pytest.raises(ValueError, match=r"Conv2d_1a_3x3.conv.weight has shape \(32, 1, 3, 3\)"):
        inception.variables_from_torch(bad)


def test_load_inception_refuses_bad_files(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        evaluation.load_inception(tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("not numpy")
    with pytest.raises(ValueError, match="not a NumPy .npz"):
        evaluation.load_inception(tmp_path / "text.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        evaluation.load_inception(tmp_path / "one.npy")


@pytest.mark.slow
def test_inception_features_shape_and_determinism(tmp_path):
    np.savez(tmp_path / "fid.npz", **_fake_state_dict())
    net = evaluation.load_inception(tmp_path / "fid.npz", batch_size=2)
    grey = np.random.default_rng(0).uniform(-1, 1, (3, 8, 8, 1)).astype(np.float32)
    first, second = np.asarray(net.features(grey)), np.asarray(net.features(grey))
    assert first.shape == (3, 2048) and np.all(np.isfinite(first))
    assert np.abs(first[0] - first[1]).max() > 1e-3 * np.abs(first).max()  # inputs matter
    np.testing.assert_array_equal(first, second)
    # Grey images are repeated to RGB; the padded last batch does not leak into row 2.
    np.testing.assert_allclose(
        np.asarray(net.features(np.repeat(grey, 3, axis=-1))), first, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(np.asarray(net.features(grey[2:])), first[2:], rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- evaluator
@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_samples_cover_every_mode(name):
    reference = evaluation.make_reference(name)
    mixture = reference.mixture
    sampler = Recorder(mixture.sample)
    summary = evaluation.evaluate(sampler, jax.random.key(1), reference, num_samples=NUM_POINTS)
    assert EXPECTED_KEYS["mixture"] <= summary.keys()
    expected = _mode_reference(sampler.samples, mixture.centres, mixture.sigma)
    assert summary["modes"] == expected["modes"] == mixture.num_modes
    assert summary["robust_modes"] == mixture.num_modes and summary["at_noise_level"] is False
    assert summary["hq_fraction"] == pytest.approx(expected["hq_fraction"], abs=1e-12)
    assert summary["reverse_kl"] == pytest.approx(expected["reverse_kl"], rel=1e-6)
    # P(|eps| <= 3) for a 2-D standard normal is 1 - exp(-9/2); 4 binomial std.
    p = 1 - math.exp(-4.5)
    assert abs(summary["hq_fraction"] - p) < 4 * math.sqrt(p * (1 - p) / NUM_POINTS)
    assert summary["reverse_kl"] < 0.02
    assert summary["nonfinite_samples"] == 0 and summary["num_samples"] == NUM_POINTS
    _assert_json_ready(summary)


def test_collapsed_mixture_samples_cover_one_mode():
    reference = evaluation.make_reference("ring8")
    centre, sigma = reference.mixture.centres[3], reference.mixture.sigma

    def collapsed(key, n):
        return centre + sigma * jax.random.normal(key, (n, 2))

    summary = evaluation.evaluate(collapsed, jax.random.key(0), reference, num_samples=NUM_POINTS)
    assert summary["modes"] == summary["robust_modes"] == 1
    assert summary["reverse_kl"] == pytest.approx(math.log(8), rel=1e-6)


def test_nonfinite_samples_are_reported_not_scored(digits_reference):
    ring = evaluation.make_reference("ring8")

    def broken(key, n):
        x = np.array(ring.mixture.sample(key, n))
        x[::7, 1] = np.nan
        return x

    with pytest.warns(RuntimeWarning, match="286 of 2000 samples are not finite"):
        summary = evaluation.evaluate(
            broken, jax.random.key(0), ring, num_samples=NUM_POINTS, batch_size=1000
        )
    assert summary["nonfinite_samples"] == 286  # ceil(1000 / 7) per batch
    assert all(summary[k] is None for k in EXPECTED_KEYS["mixture"])
    _assert_json_ready(summary)

    images = digits_reference.images

    def inf_images(key, n):
        x = _resampler(images)(key, n).copy()
        x[0, 0, 0, 0] = np.inf
        return x

    with pytest.warns(RuntimeWarning, match="not finite"):
        summary = evaluation.evaluate(
            inf_images, jax.random.key(0), digits_reference, num_samples=NUM_SAMPLES, batch_size=500
        )
    assert summary["nonfinite_samples"] == 2
    names = evaluation.metric_names(digits_reference)
    assert EXPECTED_KEYS["gan_images"] <= set(names)
    assert all(summary[k] is None for k in names)
    _assert_json_ready(summary)


def test_digits_evaluator_scores_real_images_near_zero(digits_reference, digits_clf, digits_train):
    resampled = Recorder(_resampler(digits_reference.images))  # the reference's own distribution
    train = Recorder(_resampler(digits_train.images))  # real digits by other writers
    bad = Recorder(lambda key, n: _shuffled_pixels(_resampler(digits_train.images)(key, n), 0))
    summaries = [
        evaluation.evaluate(sampler, jax.random.key(0), digits_reference, num_samples=NUM_SAMPLES)
        for sampler in (resampled, train, bad)
    ]
    same, real, shuffled = summaries
    for summary in summaries:
        assert EXPECTED_KEYS["gan_images"] <= summary.keys()
        _assert_json_ready(summary)
    ref_feats = np.asarray(digits_clf.features(digits_reference.images))
    for recorder, summary in zip((resampled, train, bad), summaries):
        feats = np.asarray(digits_clf.features(recorder.samples))
        assert summary["fd"] == pytest.approx(_fd_reference(ref_feats, feats), rel=1e-3, abs=1e-3)
        preds = np.argmax(np.asarray(digits_clf.logits(recorder.samples)), axis=1)
        assert summary["modes"] == len(np.unique(preds))
        assert summary["class_kl"] == pytest.approx(_kl_to_uniform_reference(preds, 10), rel=1e-6)
        if recorder is not resampled:  # copies of reference points sit exactly on k-NN ball edges
            for name, value in _prdc_reference(ref_feats, feats, k=5).items():
                assert summary[name] == pytest.approx(value, abs=1e-3), name
    assert same["fd"] < 0.01 * shuffled["fd"] and real["fd"] < 0.2 * shuffled["fd"]
    assert same["kid"] < 0.01 * shuffled["kid"] and real["kid"] < 0.2 * shuffled["kid"]
    assert same["precision"] > 0.95 and same["coverage"] > 0.95 and shuffled["precision"] < 0.5
    assert same["modes"] == real["modes"] == 10


def test_conditional_samples_get_accuracy_and_intra_class_fd(digits_reference, digits_clf):
    images, labels = digits_reference.images, digits_reference.labels
    pools = [np.flatnonzero(labels == c) for c in range(10)]

    def conditional(shift):
        def sample(key, n):
            k_label, k_pick = jax.random.split(key)
            y = np.asarray(jax.random.randint(k_label, (n,), 0, 10))
            u = np.asarray(jax.random.uniform(k_pick, (n,)))
            source = (y + shift) % 10  # shift != 0: images of the wrong class
            idx = [pools[c][int(v * len(pools[c]))] for c, v in zip(source, u)]
            return images[idx], y

        return Recorder(sample)

    right, wrong = conditional(0), conditional(3)
    with pytest.warns(RuntimeWarning):  # ~30 reference images per class in 64-d
        s_right = evaluation.evaluate(
            right, jax.random.key(0), digits_reference, num_samples=NUM_SAMPLES
        )
        s_wrong = evaluation.evaluate(
            wrong, jax.random.key(0), digits_reference, num_samples=NUM_SAMPLES
        )
    assert EXPECTED_KEYS["cgan"] | {"intra_fd"} <= s_right.keys()
    for recorder, summary in ((right, s_right), (wrong, s_wrong)):
        preds = np.argmax(np.asarray(digits_clf.logits(recorder.samples)), axis=1)
        y = np.concatenate(recorder.labels)
        assert summary["cond_accuracy"] == pytest.approx(np.mean(preds == y), abs=1e-12)
    assert s_right["cond_accuracy"] > 0.95 and s_wrong["cond_accuracy"] < 0.1
    assert s_right["intra_fd"] < 0.5 * s_wrong["intra_fd"]
    _assert_json_ready(s_right)


def _stacked(images, labels, rng, n):
    draws = rng.integers(0, len(images), size=(n, 3))
    stacked = np.concatenate([images[draws[:, c]] for c in range(3)], axis=-1)
    return stacked, labels[draws] @ np.array([100, 10, 1])


def test_stacked_digits_counts_modes_of_1000(digits_test, digits_clf):
    rng = np.random.default_rng(0)
    ref_images, ref_labels = _stacked(digits_test.images, digits_test.labels, rng, 400)
    reference = evaluation.make_reference("stacked_digits", images=ref_images, labels=ref_labels)
    assert reference.num_classes == 1000
    pool, _ = _stacked(digits_test.images, digits_test.labels, rng, 2000)
    sampler = Recorder(_resampler(pool))
    summary = evaluation.evaluate(sampler, jax.random.key(0), reference, num_samples=NUM_SAMPLES)
    assert EXPECTED_KEYS["stacked_digits"] <= summary.keys()
    x = sampler.samples
    digits = np.stack([np.asarray(digits_clf.predict(x[..., c : c + 1])) for c in range(3)], axis=1)
    modes = digits @ np.array([100, 10, 1])
    assert summary["modes"] == len(np.unique(modes)) > 500  # ~1000 (1 - e^-1) distinct
    assert summary["class_kl"] == pytest.approx(_kl_to_uniform_reference(modes, 1000), rel=1e-6)

    collapsed = evaluation.evaluate(
        lambda key, n: np.repeat(pool[:1], n, axis=0),
        jax.random.key(0),
        reference,
        num_samples=NUM_SAMPLES,
    )
    assert collapsed["modes"] == 1
    assert collapsed["class_kl"] == pytest.approx(math.log(1000), rel=1e-6)


def test_vae_elbo_is_the_mean_over_reference_images(digits_reference):
    def elbo_fn(x):
        return -jnp.sum(jnp.square(x - 0.25), axis=(1, 2, 3))

    summary = evaluation.evaluate(
        _resampler(digits_reference.images),
        jax.random.key(0),
        digits_reference,
        num_samples=NUM_SAMPLES,
        batch_size=128,
        elbo_fn=elbo_fn,
    )
    assert EXPECTED_KEYS["vae"] <= summary.keys()
    x = np.asarray(digits_reference.images, np.float64)
    assert summary["elbo"] == pytest.approx(
        -np.mean(np.sum((x - 0.25) ** 2, axis=(1, 2, 3))), rel=1e-6
    )


def test_cheap_evaluation_is_fd_only(digits_reference):
    summary = evaluation.evaluate(
        _resampler(digits_reference.images),
        jax.random.key(0),
        digits_reference,
        num_samples=NUM_SAMPLES,
        cheap=True,
    )
    assert set(summary) == {"num_samples", "nonfinite_samples", "fd"}


def test_weight_summary_matches_numpy_on_kernels_with_zero_units():
    rng = np.random.default_rng(0)
    g_kernel = rng.normal(size=(4, 6)).astype(np.float32)
    g_kernel[:, [1, 4]] = 0.0  # two all-zero output units
    g_kernel[0, 0] = 0.0  # one more zero weight, unit 0 stays alive
    d_kernel = rng.normal(size=(3, 3, 2, 5)).astype(np.float32)
    d_kernel[..., 2] = 0.0  # one all-zero filter
    params = {
        "g": {"Dense_0": {"kernel": g_kernel, "bias": np.zeros(6, np.float32)}},
        "d": {"Conv_0": {"kernel": d_kernel, "bias": np.ones(5, np.float32)}},
    }
    summary = evaluation.weight_summary(params)
    assert set(summary) == {
        f"{name}_{net}" for net in ("g", "d") for name in ("sparsity", "norm", "filter_sparsity")
    }
    for net, kernel in (("g", g_kernel), ("d", d_kernel)):  # biases are not counted
        k = kernel.astype(np.float64)
        columns = k.reshape(-1, k.shape[-1])
        assert summary[f"sparsity_{net}"] == pytest.approx(np.mean(k == 0), abs=1e-7)
        assert summary[f"norm_{net}"] == pytest.approx(np.sqrt(np.sum(k**2)), rel=1e-6)
        assert summary[f"filter_sparsity_{net}"] == pytest.approx(
            np.mean(np.all(columns == 0, axis=0)), abs=1e-7
        )
    assert summary["filter_sparsity_g"] == pytest.approx(2 / 6)


def test_draw_samples_checks_what_the_sampler_returns():
    with pytest.raises(ValueError, match=r"shape \(5, 3\), expected \(5, 2\)"):
        evaluation.draw_samples(lambda key, n: np.zeros((n, 3)), jax.random.key(0), 5, (2,))
    with pytest.raises(ValueError, match="num_samples and batch_size must be >= 1"):
        evaluation.draw_samples(lambda key, n: np.zeros((n, 2)), jax.random.key(0), 0, (2,))
    x, y = evaluation.draw_samples(
        lambda key, n: (np.zeros((n, 2)), np.arange(n)), jax.random.key(0), 7, (2,), batch_size=3
    )
    assert x.shape == (7, 2) and y.tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_progress_bars_show_on_request(capsys):
    ring = evaluation.make_reference("ring8")
    evaluation.evaluate(
        ring.mixture.sample, jax.random.key(0), ring, num_samples=NUM_POINTS, progress=True
    )
    assert "sampling" in capsys.readouterr().err
    evaluation.evaluate(
        ring.mixture.sample, jax.random.key(0), ring, num_samples=NUM_POINTS, progress=False
    )
    assert "sampling" not in capsys.readouterr().err


def test_make_reference_needs_a_feature_space():
    with pytest.raises(ValueError, match="no shipped feature classifier.*load_inception"):
        evaluation.make_reference("cifar10", images=np.zeros((4, 32, 32, 3)), labels=np.zeros(4))
    with pytest.raises(ValueError, match="both images and labels"):
        evaluation.make_reference("digits", images=np.zeros((4, 8, 8, 1)))
