"""regan_jax.metrics against independent float64 numpy / scipy references and closed forms."""

import itertools
import math
import warnings

import chex
import jax
import numpy as np
import pytest
import scipy.linalg
from _params import is_kernel_path, leaves_by_path, params_with_zeros

from regan_jax import metrics
from regan_jax.metrics import _kernels
from regan_jax.metrics import modes as modes_lib


def _rng(seed):
    return np.random.default_rng(seed)


def _gaussian_feats(rng, n, d, shift=0.0, scale=1.0):
    mixing = rng.normal(size=(d, d)) * scale / math.sqrt(d)
    return (rng.normal(size=(n, d)) @ mixing + shift).astype(np.float32)


# ----------------------------------------------------------------- references
def _fd_reference(a, b):
    """pytorch-fid's formula in float64 with scipy.linalg.sqrtm."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _mmd2_double_loop(x, y):
    """Unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3, written as explicit sums."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d = x.shape[1]

    def k(u, v):
        return (u @ v / d + 1.0) ** 3

    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy


def _prdc_brute_force(real, fake, k):
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)

    def dists(u, v):
        return np.sqrt(((u[:, None, :] - v[None, :, :]) ** 2).sum(-1))

    def radii(u):
        d = dists(u, u)
        return np.array([np.sort(np.delete(row, i))[k - 1] for i, row in enumerate(d)])

    r_real, r_fake = radii(real), radii(fake)
    d_rf = dists(real, fake)  # [N, M]
    inside_real = d_rf <= r_real[:, None]
    return {
        "precision": inside_real.any(axis=0).mean(),
        "recall": (d_rf <= r_fake[None, :]).any(axis=1).mean(),
        "density": inside_real.sum(axis=0).mean() / k,
        "coverage": (d_rf.min(axis=1) <= r_real).mean(),
    }


# ----------------------------------------------------------- Fréchet distance
def test_frechet_distance_matches_scipy_sqrtm():
    rng = _rng(0)
    a = _gaussian_feats(rng, 500, 16)
    b = _gaussian_feats(rng, 400, 16, shift=0.3, scale=1.5)
    ref = _fd_reference(a, b)
    assert ref > 1.0
    assert metrics.frechet_distance(a, b) == pytest.approx(ref, rel=1e-3)


def test_frechet_distance_identical_sets_is_zero():
    a = _gaussian_feats(_rng(1), 500, 16, shift=2.0, scale=3.0)
    assert abs(metrics.frechet_distance(a, a)) <= 1e-4


def test_frechet_distance_from_stats_diagonal_closed_form():
    rng = _rng(2)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    v1, v2 = rng.uniform(0.1, 3.0, 8), rng.uniform(0.1, 3.0, 8)
    v1[0], v2[1] = 0.0, 0.0  # singular covariances are fine
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = metrics.frechet_distance_from_stats(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_from_stats_full_covariances_match_sqrtm():
    rng = _rng(3)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = (
        np.sum((mu1 - mu2) ** 2)
        + np.trace(s1)
        + np.trace(s2)
        - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
    )
    got = metrics.frechet_distance_from_stats(mu1, s1, mu2, s2)
    assert got == pytest.approx(expected, rel=1e-8)


def test_feature_stats_matches_numpy():
    x = _gaussian_feats(_rng(4), 300, 5, shift=10.0)
    mu, sigma = metrics.feature_stats(x)
    chex.assert_trees_all_close(
        (np.asarray(mu, np.float64), np.asarray(sigma, np.float64)),
        (x.astype(np.float64).mean(0), np.cov(x.astype(np.float64), rowvar=False)),
        rtol=1e-4,
        atol=1e-5,
    )


def test_frechet_distance_bad_input():
    rng = _rng(5)
    a = _gaussian_feats(rng, 50, 4)
    with pytest.raises(ValueError, match="feature dimensions"):
        metrics.frechet_distance(a, _gaussian_feats(rng, 50, 5))
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.frechet_distance(a, a[:1])
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        metrics.frechet_distance(a[:, 0], a)
    nan = a.copy()
    nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="1 of 50 rows containing NaN"):
        metrics.frechet_distance(a, nan)
    with pytest.warns(RuntimeWarning, match="singular"):
        metrics.frechet_distance(a, a[:4])
    with pytest.raises(ValueError, match="different dimensions"):
        metrics.frechet_distance_from_stats(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match=r"sigma1 \[D, D\]"):
        metrics.frechet_distance_from_stats(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))


# ----------------------------------------------------------------------- KID
def test_kid_single_subset_equals_double_loop():
    rng = _rng(6)
    x = _gaussian_feats(rng, 24, 5)
    y = _gaussian_feats(rng, 24, 5, shift=0.5)
    ref = _mmd2_double_loop(x, y)
    assert abs(ref) > 1e-2
    got = metrics.kid(x, y, num_subsets=1, subset_size=1000)
    assert got == pytest.approx(ref, rel=1e-5)
    # Subsets of the whole set are permutations of it: every subset gives the same value.
    mean, std = metrics.kid(x, y, num_subsets=7, subset_size=24, return_std=True)
    assert mean == pytest.approx(ref, rel=1e-5)
    assert std <= 1e-5 * abs(ref)


def test_kid_subset_average_is_unbiased_for_the_full_set_estimate():
    # With m = Na, subsetting only the larger set keeps the estimator's expectation
    # equal to the full-set unbiased MMD^2 (with the 1/(Na Nb) cross term).
    rng = _rng(7)
    x = _gaussian_feats(rng, 16, 4)
    y = _gaussian_feats(rng, 60, 4, shift=0.4, scale=1.3)
    ref = _mmd2_double_loop(x, y)
    num_subsets = 400
    mean, std = metrics.kid(x, y, num_subsets=num_subsets, key=jax.random.key(3), return_std=True)
    assert std > 0
    assert abs(mean - ref) <= 4 * std / math.sqrt(num_subsets)


def test_kid_uses_its_key():
    rng = _rng(8)
    x, y = _gaussian_feats(rng, 40, 4), _gaussian_feats(rng, 40, 4, shift=0.2)
    kwargs = dict(num_subsets=3, subset_size=10)
    first = metrics.kid(x, y, key=jax.random.key(1), **kwargs)
    assert metrics.kid(x, y, key=jax.random.key(1), **kwargs) == first
    assert metrics.kid(x, y, key=jax.random.key(2), **kwargs) != first


def test_kid_bad_input():
    rng = _rng(9)
    x = _gaussian_feats(rng, 10, 3)
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.kid(x, x[:1])
    with pytest.raises(ValueError, match="feature dimensions"):
        metrics.kid(x, _gaussian_feats(rng, 10, 4))
    with pytest.raises(ValueError, match="NaN"):
        metrics.kid(x, np.full((10, 3), np.nan))


# ---------------------------------------------------------------------- PRDC
@pytest.mark.parametrize("k", [1, 3, 6])
def test_kth_smallest_matches_numpy_partition_with_ties(k):
    rng = np.random.default_rng(k)
    d2 = rng.integers(0, 5, size=(7, 9)).astype(np.float32)  # many ties
    d2[0] = 2.0  # a row of equal values
    expected = np.partition(d2, k - 1, axis=1)[:, k - 1]
    np.testing.assert_array_equal(np.asarray(_kernels.kth_smallest(d2, k)), expected)


def test_prdc_matches_brute_force():
    rng = _rng(10)
    real = _gaussian_feats(rng, 70, 4)
    fake = _gaussian_feats(rng, 55, 4, shift=0.7, scale=0.8)
    ref = _prdc_brute_force(real, fake, k=3)
    assert 0 < ref["precision"] < 1 and 0 < ref["coverage"] < 1
    chex.assert_trees_all_close(metrics.prdc(real, fake, k=3), ref, rtol=0, atol=1e-12)


def test_prdc_chunked_equals_unchunked():
    rng = _rng(11)
    real = _gaussian_feats(rng, 70, 4)
    fake = _gaussian_feats(rng, 55, 4, shift=0.5)
    whole = metrics.prdc(real, fake, k=3, block_size=1000)
    chunked = metrics.prdc(real, fake, k=3, block_size=7)
    chex.assert_trees_all_close(chunked, whole, rtol=0, atol=1e-12)
    chex.assert_trees_all_close(whole, _prdc_brute_force(real, fake, k=3), rtol=0, atol=1e-12)


def test_prdc_identical_sets():
    x = _gaussian_feats(_rng(12), 40, 3)
    got = metrics.prdc(x, x, k=4)
    # Each real ball holds its centre and its k neighbours: density = (k + 1) / k.
    chex.assert_trees_all_close(
        got,
        {"precision": 1.0, "recall": 1.0, "density": 5 / 4, "coverage": 1.0},
        rtol=0,
        atol=1e-12,
    )


def test_prdc_disjoint_sets_score_zero():
    x = _gaussian_feats(_rng(13), 30, 3)
    got = metrics.prdc(x, x + 100.0, k=2)
    chex.assert_trees_all_close(
        got, {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}, rtol=0, atol=0
    )


def test_prdc_collapsed_generator_matches_brute_force():
    rng = _rng(17)
    real = _gaussian_feats(rng, 70, 4)
    fake = np.repeat(real[:1] + 0.05, 55, axis=0)  # every fake is the same point
    got = metrics.prdc(real, fake, k=3)
    assert got["recall"] == 0.0 and got["precision"] == 1.0
    chex.assert_trees_all_close(got, _prdc_brute_force(real, fake, k=3), rtol=0, atol=1e-12)


def test_prdc_bad_input():
    x = _gaussian_feats(_rng(14), 5, 3)
    with pytest.raises(ValueError, match="k\\+1=6 samples in fake_feats"):
        metrics.prdc(np.concatenate([x, x]), x, k=5)
    with pytest.raises(ValueError, match="positive integer"):
        metrics.prdc(x, x, k=0)
    with pytest.raises(ValueError, match="feature dimensions"):
        metrics.prdc(x, x[:, :2], k=2)


# --------------------------------------------------------------- 2-D mixtures
_RING = np.array([[2 * np.cos(t), 2 * np.sin(t)] for t in np.arange(8) * np.pi / 4])


def test_mode_metrics_hand_built():
    sigma = 0.05  # 3 sigma = 0.15
    samples = np.concatenate(
        [
            np.repeat(_RING[:1], 10, axis=0),  # 10 on mode 0
            _RING[1] + np.array([[0.1, 0.0]] * 5),  # 5 within 3 sigma of mode 1
            _RING[2] + np.array([[0.0, -0.14]]),  # 1 within 3 sigma of mode 2
            _RING[3] + np.array([[0.2, 0.0]]),  # outside 3 sigma of mode 3
            np.zeros((4, 2)),  # far from every mode
        ]
    )
    got = metrics.mode_metrics(samples, _RING, sigma)
    q = np.array([10, 5, 1]) / 16
    assert got["modes"] == 3
    assert got["hq_fraction"] == pytest.approx(16 / 21)
    assert got["reverse_kl"] == pytest.approx(np.sum(q * np.log(8 * q)), rel=1e-5)
    assert metrics.mode_metrics(samples, _RING, sigma, min_count=5)["modes"] == 2
    assert metrics.mode_metrics(samples, _RING, sigma, num_std=5.0)["modes"] == 4


def test_mode_metrics_extremes():
    balanced = metrics.mode_metrics(np.repeat(_RING, 3, axis=0), _RING, 0.1)
    # p_c = pi 0.3^2 / 5.531^2 = 0.0092 and P(Bin(24, p_c) >= 3) = 0.0014 < 0.05 / 8.
    noise = 8 * math.pi * 0.09 / (4 + 2 * _HALF) ** 2
    assert balanced == {
        "modes": 8,
        "robust_modes": 8,
        "hq_fraction": 1.0,
        "noise_hq_fraction": pytest.approx(noise),
        "reverse_kl": pytest.approx(0, abs=1e-6),
        "at_noise_level": False,
    }
    collapsed = metrics.mode_metrics(np.repeat(_RING[:1], 6, axis=0), _RING, 0.1)
    assert collapsed["modes"] == 1
    assert collapsed["reverse_kl"] == pytest.approx(math.log(8), rel=1e-6)
    with pytest.raises(ValueError, match="feature dimensions"):
        metrics.mode_metrics(np.zeros((5, 3)), _RING, 0.1)
    with pytest.raises(ValueError, match="positive"):
        metrics.mode_metrics(np.zeros((5, 2)), _RING, 0.0)
    with pytest.raises(ValueError, match="2-D points"):
        metrics.mode_metrics(np.zeros((5, 3)), np.zeros((4, 3)), 0.1)
    with pytest.raises(ValueError, match="alpha"):
        metrics.mode_metrics(np.zeros((5, 2)), _RING, 0.1, alpha=1.0)
    with pytest.raises(ValueError, match="low < high"):
        metrics.mode_metrics(np.zeros((5, 2)), _RING, 0.1, support=([1.0, 1.0], [0.0, 2.0]))


def test_mode_metrics_without_high_quality_samples_gets_the_worst_reverse_kl():
    """A failed run's reverse KL is log M (a point mass against uniform): no inf, no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nothing = metrics.mode_metrics(np.zeros((5, 2)), _RING, 0.1)
    assert nothing["reverse_kl"] == math.log(8)
    assert nothing["modes"] == nothing["robust_modes"] == 0 and nothing["hq_fraction"] == 0.0
    assert nothing["at_noise_level"] is True


def test_mode_metrics_point_mass_at_one_centre():
    got = metrics.mode_metrics(np.repeat(_RING[5:6], 50, axis=0), _RING, 0.05)
    assert got["modes"] == 1 and got["robust_modes"] == 1 and got["hq_fraction"] == 1.0
    assert got["reverse_kl"] == math.log(8)  # exactly: q = (0, .., 1, .., 0)
    assert got["at_noise_level"] is False


# Half the distance between neighbouring ring centres: the support box's margin.
_HALF = 2 * math.sin(math.pi / 8)


def test_support_box_of_ring_and_grid():
    low, high = modes_lib.support_box(_RING)
    np.testing.assert_allclose(low, [-2 - _HALF, -2 - _HALF], rtol=1e-12)
    np.testing.assert_allclose(high, [2 + _HALF, 2 + _HALF], rtol=1e-12)
    grid = 2.0 * np.stack(np.meshgrid(np.arange(5) - 2, np.arange(5) - 2), -1).reshape(-1, 2)
    low, high = modes_lib.support_box(grid)
    np.testing.assert_array_equal(low, [-5, -5])
    np.testing.assert_array_equal(high, [5, 5])
    with pytest.raises(ValueError, match="coincide"):
        modes_lib.support_box(np.zeros((3, 2)))


def _monte_carlo_hq(centres, radius, support, n, seed):
    """High-quality counts per centre of n uniform points in the box, by brute force in float64."""
    low, high = (np.asarray(b, np.float64) for b in support)
    x = _rng(seed).uniform(low, high, size=(n, 2))
    counts = np.zeros(len(centres))
    for rows in np.array_split(np.arange(n), 20):
        d = np.linalg.norm(x[rows, None] - centres[None], axis=-1)
        near = d.min(1) <= radius
        counts += np.bincount(d.argmin(1)[near], minlength=len(centres))
    return counts


@pytest.mark.parametrize("radius", [0.15, 1.0])  # discs apart (closed form) / overlapping (grid)
def test_uniform_hq_probabilities_against_monte_carlo(radius):
    support = modes_lib.support_box(_RING)
    p = modes_lib.uniform_hq_probabilities(_RING, radius, support)
    if radius < _HALF:
        area = np.prod(support[1] - support[0])
        np.testing.assert_allclose(p, np.pi * radius**2 / area, rtol=1e-12)
    n = 400_000
    counts = _monte_carlo_hq(_RING, radius, support, n, seed=3)
    # 4 binomial standard deviations per mode.
    assert np.all(np.abs(counts / n - p) < 4 * np.sqrt(p * (1 - p) / n)), (counts / n, p)
    if radius > _HALF:
        assert np.all(p < 0.999 * np.pi * radius**2 / np.prod(support[1] - support[0]))


def test_uniform_hq_probabilities_quadrature_against_exact_area():
    """A disc of radius 6 cut by the box |y| <= 5 and by its Voronoi edge x = 5 (another centre
    at (10, 0)) and the box edge x = -5: area 2 [10 a + 2 (F(5) - F(a))], a = sqrt(11),
    F(x) = (x sqrt(36 - x^2) + 36 asin(x / 6)) / 2."""
    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    support = ([-5.0, -5.0], [15.0, 5.0])
    a = math.sqrt(11)

    def antiderivative(x):
        return (x * math.sqrt(36 - x * x) + 36 * math.asin(x / 6)) / 2

    exact = 2 * (10 * a + 2 * (antiderivative(5) - antiderivative(a))) / 200
    p = modes_lib.uniform_hq_probabilities(centres, 6.0, support)
    np.testing.assert_allclose(p, [exact, exact], rtol=1e-3)
    # A disc outside the box contributes nothing.
    far = modes_lib.uniform_hq_probabilities(np.array([[0.0, 0.0], [30.0, 0.0]]), 1.0, support)
    assert far[1] == 0.0 and far[0] == pytest.approx(np.pi / 200)


def test_mode_metrics_on_uniform_noise_is_calibrated():
    """Over many noise runs, robust_modes >= 1 (Bonferroni: family-wise) and at_noise_level False
    each happen at rate <= alpha (binomial tests are conservative), while the published
    rule credits most grid modes."""
    grid = 2.0 * np.stack(np.meshgrid(np.arange(5) - 2, np.arange(5) - 2), -1).reshape(-1, 2)
    support = modes_lib.support_box(grid)
    runs, n = 200, 2500
    x = _rng(11).uniform(*support, size=(runs, n, 2)).astype(np.float32)
    results = [metrics.mode_metrics(x[i], grid, 0.05, support=support) for i in range(runs)]
    bound = 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)
    assert np.mean([r["robust_modes"] >= 1 for r in results]) <= bound
    assert np.mean([not r["at_noise_level"] for r in results]) <= bound
    assert np.mean([r["modes"] for r in results]) > 19  # 25 (1 - exp(-1.77)) = 20.7


# ---------------------------------------------------------- classifier-based
def test_class_histogram_kl_closed_forms():
    assert metrics.class_histogram_kl(np.arange(50) % 10, 10) == pytest.approx(0, abs=1e-6)
    assert metrics.class_histogram_kl(np.full(7, 3), 10) == pytest.approx(math.log(10), rel=1e-6)
    labels = np.array([0, 0, 0, 1])
    probs = np.eye(3)[labels] * 0.8 + 0.2 / 3
    expected = 0.75 * math.log(3 * 0.75) + 0.25 * math.log(3 * 0.25)
    assert metrics.class_histogram_kl(labels, 3) == pytest.approx(expected, rel=1e-6)
    assert metrics.class_histogram_kl(probs, 3) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        metrics.class_histogram_kl(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="not logits"):
        metrics.class_histogram_kl(np.log(probs), 3)
    with pytest.raises(ValueError, match="expected 4"):
        metrics.class_histogram_kl(probs, 4)


def test_modes_covered_and_conditional_accuracy():
    labels = np.array([0, 0, 0, 2, 2, 5])
    assert metrics.modes_covered(labels, 10) == 3
    assert metrics.modes_covered(labels, 10, min_count=2) == 2
    assert metrics.conditional_accuracy(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
    with pytest.raises(ValueError, match="one length"):
        metrics.conditional_accuracy(np.array([1, 2]), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="integer"):
        metrics.modes_covered(np.array([0.0, 1.0]), 10)


def test_stacked_modes():
    every_mode = np.array(list(itertools.product(range(10), repeat=3)))
    full = metrics.stacked_modes(every_mode)
    assert full["modes"] == 1000 and full["class_kl"] == pytest.approx(0, abs=1e-5)
    got = metrics.stacked_modes(np.array([[1, 2, 3], [1, 2, 3], [0, 0, 0], [9, 9, 9]]))
    q = np.array([0.5, 0.25, 0.25])
    assert got["modes"] == 3
    assert got["class_kl"] == pytest.approx(np.sum(q * np.log(1000 * q)), rel=1e-6)
    # 123 and 321 are different modes: the channel order matters.
    assert metrics.stacked_modes(np.array([[1, 2, 3], [3, 2, 1]]))["modes"] == 2
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        metrics.stacked_modes(np.array([[1, 2, 10]]))
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        metrics.stacked_modes(np.array([[1, 2]]))


def test_intra_class_frechet_distance():
    rng = _rng(15)
    real = _gaussian_feats(rng, 90, 3)
    fake = _gaussian_feats(rng, 80, 3, shift=0.5)
    real_y, fake_y = np.arange(90) % 3, np.arange(80) % 3
    expected = np.mean([_fd_reference(real[real_y == c], fake[fake_y == c]) for c in range(3)])
    got = metrics.intra_class_frechet_distance(real, real_y, fake, fake_y, 3)
    assert got == pytest.approx(expected, rel=1e-3)
    # Class 3 has no fake samples: skipped, and said so.
    with pytest.warns(RuntimeWarning, match=r"skipped classes \[3\]"):
        got4 = metrics.intra_class_frechet_distance(real, real_y, fake, fake_y, 4)
    assert got4 == pytest.approx(expected, rel=1e-3)
    with pytest.raises(ValueError, match="No class"):
        metrics.intra_class_frechet_distance(real, real_y, fake[:3], fake_y[:3], 3)
    with pytest.raises(ValueError, match="one label per feature row"):
        metrics.intra_class_frechet_distance(real, real_y[:-1], fake, fake_y, 3)


def _inception_score_reference(probs, splits):
    """The original Salimans et al. loop, in float64."""
    probs = np.asarray(probs, np.float64)
    n, scores = len(probs), []
    for s in range(splits):
        part = probs[s * n // splits : (s + 1) * n // splits]
        py = part.mean(0)
        kl = np.sum(part * (np.log(part) - np.log(py)), axis=1)
        scores.append(np.exp(kl.mean()))
    return np.mean(scores), np.std(scores)


def test_inception_score():
    assert metrics.inception_score(np.full((100, 5), 1 / 5)) == pytest.approx(1.0, rel=1e-6)
    one_hot = np.eye(5)[np.arange(100) % 5]
    assert metrics.inception_score(one_hot, num_splits=10) == pytest.approx(5.0, rel=1e-6)
    probs = _rng(16).dirichlet(np.full(6, 0.3), size=103)
    got = metrics.inception_score(probs, num_splits=10, return_std=True)
    chex.assert_trees_all_close(got, _inception_score_reference(probs, 10), rtol=1e-4)
    with pytest.raises(ValueError, match="num_splits"):
        metrics.inception_score(probs[:5], num_splits=10)
    with pytest.raises(ValueError, match="not logits"):
        metrics.inception_score(np.log(probs))


# ----------------------------------------------------------------- weight statistics


def test_weight_stats_match_numpy():
    params = params_with_zeros()
    stats = jax.jit(lambda p: metrics.weight_stats(p, near_zero_tol=0.5))(params)
    kernels = {p: w for p, w in leaves_by_path(params).items() if is_kernel_path(p)}
    flat = np.concatenate([w.ravel() for w in kernels.values()])
    np.testing.assert_allclose(stats["sparsity"], np.mean(flat == 0), rtol=1e-6)
    np.testing.assert_allclose(stats["near_zero"], np.mean(np.abs(flat) <= 0.5), rtol=1e-6)
    np.testing.assert_allclose(stats["l1"], np.abs(flat).sum(), rtol=1e-5)
    np.testing.assert_allclose(stats["l2"], np.linalg.norm(flat), rtol=1e-5)
    filters = [np.all(w.reshape(-1, w.shape[-1]) == 0, axis=0) for w in kernels.values()]
    np.testing.assert_allclose(
        stats["zero_filter_fraction"], np.concatenate(filters).mean(), rtol=1e-6
    )
    for path, w in kernels.items():
        np.testing.assert_allclose(stats[f"l2/{path}"], np.linalg.norm(w), rtol=1e-5)
        np.testing.assert_allclose(stats[f"sparsity/{path}"], np.mean(w == 0), rtol=1e-6)
    assert not any("bias" in key for key in stats)
