"""Null references (regan_jax.evaluation.references) and the mode metrics' tests against noise.

The point of the noise null on mixtures: uniform points in the mixture's box
already get most modes by the published rule (one high-quality sample within
3σ counts a mode), so ``modes`` alone cannot tell a run from noise;
``robust_modes`` and ``at_noise_level`` can.
"""

import functools
import math

import jax
import numpy as np
import pytest

from regan_jax import data, evaluation, metrics

N_POINTS = 2500  # the mixture configs' eval.num_samples
# The study's geometries: ring8 at PacGAN's scale, grid25 with sigma 0.05.
MIXTURES = {"ring8": dict(radius=1.0, sigma=0.01), "grid25": dict(spacing=2.0, sigma=0.05)}
NOISE_ROBUST_AT_MOST = {"ring8": 1, "grid25": 2}
# Published-rule modes that 2,500 noise points get: M (1 - exp(-N p_c)) = 4.8 and 20.7.
NOISE_MODES_AT_LEAST = {"ring8": 3, "grid25": 17}
IMAGE_KEYS = {"fd", "kid", "precision", "recall", "density", "coverage", "modes", "class_kl"}


@pytest.fixture(scope="module", params=sorted(MIXTURES))
def mixture_nulls(request):
    reference = evaluation.make_reference(request.param, data_options=MIXTURES[request.param])
    return reference, evaluation.null_scores(reference, jax.random.key(0), N_POINTS)


@pytest.fixture(scope="module")
def digits_reference():
    return evaluation.make_reference("digits")


@pytest.fixture(scope="module")
def digits_nulls(digits_reference):
    # 148 = the 'real' pool: half of the 297 held-out digits.
    return evaluation.null_scores(digits_reference, jax.random.key(0), 148)


# ------------------------------------------------------------------ mixtures
def test_mixture_support_is_the_metrics_box():
    ring = data.mixture("ring8", radius=1.0)
    low, high = ring.support()
    half = math.sin(math.pi / 8)  # half the distance between neighbouring centres
    np.testing.assert_allclose(low, [-1 - half] * 2, rtol=1e-7)
    np.testing.assert_allclose(high, [1 + half] * 2, rtol=1e-7)
    low, high = data.mixture("grid25", spacing=2.0).support()
    np.testing.assert_allclose(np.stack([low, high]), [[-5, -5], [5, 5]], rtol=1e-7)


def test_uniform_noise_is_at_noise_level_though_the_published_rule_credits_modes(mixture_nulls):
    reference, nulls = mixture_nulls
    noise, name, m = nulls["noise"], reference.dataset, reference.num_classes
    assert set(nulls) == {"noise", "real"}
    assert noise["modes"] >= NOISE_MODES_AT_LEAST[name]  # the published rule is fooled ...
    assert noise["robust_modes"] <= NOISE_ROBUST_AT_MOST[name]  # ... the binomial test is not
    assert noise["at_noise_level"] is True
    assert evaluation.at_noise_level(noise, nulls) is True
    # The noise's HQ fraction is what the geometry says, within 4 binomial std.
    p = noise["noise_hq_fraction"]
    assert abs(noise["hq_fraction"] - p) < 4 * math.sqrt(p * (1 - p) / N_POINTS)
    assert 0 < noise["reverse_kl"] < math.log(m)


def test_true_mixture_samples_cover_every_mode_robustly(mixture_nulls):
    reference, nulls = mixture_nulls
    real, m = nulls["real"], reference.num_classes
    assert real["modes"] == real["robust_modes"] == m
    assert real["at_noise_level"] is False
    assert evaluation.at_noise_level(real, nulls) is False
    # P(|eps| <= 3) for a 2-D standard normal: the chi-square(2) CDF at 9, 1 - exp(-9/2).
    p = 1 - math.exp(-9 / 2)
    assert p == pytest.approx(0.98889, abs=1e-5)
    assert abs(real["hq_fraction"] - p) < 4 * math.sqrt(p * (1 - p) / N_POINTS)
    assert real["reverse_kl"] < 0.02


def test_mixture_null_samples():
    reference = evaluation.make_reference("grid25", data_options=MIXTURES["grid25"])
    low, high = reference.mixture.support()
    noise = evaluation.null_samples(reference, "noise", jax.random.key(1), 4000)
    assert noise.shape == (4000, 2) and noise.dtype == np.float32
    assert np.all(noise >= low) and np.all(noise <= high)
    np.testing.assert_allclose(noise.min(0), low, atol=0.05)
    np.testing.assert_allclose(noise.max(0), high, atol=0.05)
    real = evaluation.null_samples(reference, "real", jax.random.key(1), 10)
    np.testing.assert_array_equal(real, reference.mixture.sample(jax.random.key(1), 10))
    with pytest.raises(ValueError, match="'shuffled' does not apply"):
        evaluation.null_samples(reference, "shuffled", jax.random.key(1), 10)
    with pytest.raises(ValueError, match="'blur' does not apply"):
        evaluation.null_scores(reference, jax.random.key(1), 10, kinds=["blur"])


# -------------------------------------------------------------------- images
def test_digits_null_halves_are_disjoint(digits_reference):
    half = evaluation.null_reference(digits_reference)
    rows, pool_rows = evaluation.null_halves(digits_reference.labels)
    assert len(half.images) == 149 and np.array_equal(
        half.features, digits_reference.features[rows]
    )
    pool = digits_reference.images[pool_rows]
    real = evaluation.null_samples(digits_reference, "real", jax.random.key(2), len(pool))
    # Every pool image once (no replacement), none of the reference half.
    flat = real.reshape(len(real), -1)
    assert len(np.unique(flat, axis=0)) == len(pool)
    np.testing.assert_array_equal(
        np.unique(flat, axis=0), np.unique(pool.reshape(len(pool), -1), axis=0)
    )
    ref_rows = {row.tobytes() for row in half.images.reshape(len(half.images), -1)}
    assert not any(row.tobytes() in ref_rows for row in flat)
    with pytest.raises(ValueError, match="148 held-out images"):
        evaluation.null_samples(digits_reference, "real", jax.random.key(2), 149)
    noise = evaluation.null_samples(digits_reference, "noise", jax.random.key(2), 50)
    assert noise.shape == (50, 8, 8, 1) and noise.min() >= -1 and noise.max() <= 1
    # More shuffled images than the pool holds: sources repeat, samples do not (each image
    # has its own permutation).
    shuffled = evaluation.null_samples(digits_reference, "shuffled", jax.random.key(2), 300)
    assert len(np.unique(shuffled.reshape(300, -1), axis=0)) == 300


def test_digits_real_null_is_far_below_noise_and_shuffled(digits_nulls):
    noise, shuffled, real = (digits_nulls[k] for k in ("noise", "shuffled", "real"))
    for scores in digits_nulls.values():
        assert IMAGE_KEYS <= scores.keys() and scores["num_samples"] == 148
    assert real["fd"] < 0.5 * min(noise["fd"], shuffled["fd"])
    assert real["kid"] < 0.5 * min(noise["kid"], shuffled["kid"])
    assert real["recall"] > 0.9 and max(noise["recall"], shuffled["recall"]) < 0.3
    assert real["coverage"] > 0.8 and max(noise["coverage"], shuffled["coverage"]) < 0.3


def test_image_at_noise_level(digits_nulls):
    floor = min(digits_nulls["shuffled"]["fd"], digits_nulls["noise"]["fd"])
    assert not evaluation.at_noise_level(digits_nulls["real"], digits_nulls)
    assert evaluation.at_noise_level(digits_nulls["shuffled"], digits_nulls)
    assert evaluation.at_noise_level(digits_nulls["noise"], digits_nulls)
    assert evaluation.at_noise_level({"fd": floor}, digits_nulls)
    assert not evaluation.at_noise_level({"fd": 0.99 * floor}, digits_nulls)
    assert evaluation.at_noise_level({"fd": None}, digits_nulls)  # non-finite samples
    only_noise = {"noise": digits_nulls["noise"]}
    noise_fd = only_noise["noise"]["fd"]
    assert evaluation.at_noise_level({"fd": floor}, only_noise) == (floor >= noise_fd)
    with pytest.raises(ValueError, match="'shuffled' or 'noise'"):
        evaluation.at_noise_level({"fd": 1.0}, {"real": digits_nulls["real"]})


def test_null_halves_split_every_class_evenly(digits_reference):
    labels = digits_reference.labels
    rows, pool_rows = evaluation.null_halves(labels)
    assert np.array_equal(np.sort(np.concatenate([rows, pool_rows])), np.arange(len(labels)))
    halves = [np.bincount(labels[r], minlength=10) for r in (rows, pool_rows)]
    assert np.max(np.abs(halves[0] - halves[1])) <= 1
    # Why not even/odd rows: in digits' held-out split they hold different class mixes.
    even, odd = (
        np.bincount(labels[r], minlength=10) for r in (slice(0, None, 2), slice(1, None, 2))
    )
    assert np.max(np.abs(even - odd)) > 15


def test_kid_real_null_is_zero_within_noise(digits_reference):
    """Two halves of one distribution: the unbiased KID is 0 up to its sampling noise.

    The first study's KID(real) was a quarter of KID(noise) because its
    halves were the even and odd rows, two different class mixes; its
    reported std was 0 because a subset of m = N rows is the whole set every
    time (the subsets' spread is not the estimator's sampling error).
    """
    feats, labels = digits_reference.features, digits_reference.labels
    rows, pool_rows = evaluation.null_halves(labels)
    m = min(len(rows), len(pool_rows))
    # Sampling noise of KID between random halves of the split (independent of null_halves).
    rng = np.random.default_rng(0)
    spread = []
    for _ in range(20):
        p = rng.permutation(len(feats))
        spread.append(metrics.kid(feats[p[:m]], feats[p[m : 2 * m]]))
    noise_sd = np.std(spread)
    balanced = metrics.kid(feats[rows], feats[pool_rows])
    interleaved = metrics.kid(feats[0::2], feats[1::2])
    assert abs(balanced) < 3 * noise_sd
    assert interleaved > 5 * noise_sd  # the old split: genuinely different halves


def test_stacked_digits_nulls_keep_channels_together():
    reference = evaluation.make_reference("stacked_digits")
    pool = reference.images[evaluation.null_halves(reference.labels)[1]]
    # As null_scores draws them below (one compile of each shape).
    sample_fn = functools.partial(evaluation.null_samples, reference, "shuffled")
    shuffled = sample_fn(jax.random.key(3), 200)
    assert shuffled.shape == (200, 8, 8, 3)

    def pixel_multiset(image):  # an image's (r, g, b) pixels, sorted: invariant to the permutation
        rows = image.reshape(-1, 3)
        return rows[np.lexsort(rows.T[::-1])].tobytes()

    sources = {pixel_multiset(image): i for i, image in enumerate(pool)}
    assert all(pixel_multiset(image) in sources for image in shuffled)  # channels moved together
    originals = pool[[sources[pixel_multiset(image)] for image in shuffled]]
    assert np.mean(np.all(shuffled == originals, axis=-1)) < 0.3  # pixels did move (0.12)

    nulls = evaluation.null_scores(reference, jax.random.key(0), 200)
    for scores in nulls.values():
        assert IMAGE_KEYS <= scores.keys()
    assert nulls["real"]["fd"] < 0.2 * min(nulls["noise"]["fd"], nulls["shuffled"]["fd"])
    assert nulls["real"]["modes"] > nulls["shuffled"]["modes"]
    assert evaluation.at_noise_level(nulls["shuffled"], nulls)
    assert not evaluation.at_noise_level(nulls["real"], nulls)
