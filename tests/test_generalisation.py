"""Copying, memorisation, discriminator overfitting and FD∞ against independent references.

References: ``scipy.stats.mannwhitneyu`` and brute-force float64 nearest
neighbours for C_T, hand computation for r_t / r_v, the closed-form FD of
two Gaussians and ``numpy.polyfit`` for FD∞. The nulls: a memoriser
(training images plus small noise) is flagged, held-out real data are not.
"""

import jax
import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import sklearn.cluster

from regan_jax import data, evaluation, metrics


def _brute_nn(q, t):
    d = np.sqrt(((q[:, None, :].astype(np.float64) - t[None, :, :]) ** 2).sum(-1))
    return d.min(axis=1)


def _reference_c_t(train, held, gen, num_cells, min_generated, seed):
    """C_T from scipy's Mann–Whitney U and brute-force NN distances (Meehan et al. 2020)."""
    kmeans = sklearn.cluster.KMeans(num_cells, n_init=10, random_state=seed).fit(train)
    cp, cq, ct = kmeans.predict(held), kmeans.predict(gen), kmeans.labels_
    num, den = 0.0, 0.0
    for c in range(num_cells):
        q, p, t = gen[cq == c], held[cp == c], train[ct == c]
        if len(q) < min_generated or len(p) == 0:
            continue
        u = scipy.stats.mannwhitneyu(_brute_nn(q, t), _brute_nn(p, t)).statistic
        m, n = len(q), len(p)
        z = (u - m * n / 2) / np.sqrt(m * n * (m + n + 1) / 12)
        num, den = num + len(p) / len(held) * z, den + len(p) / len(held)
    return num / den


@pytest.fixture(scope="module")
def digits():
    """Digits pixels flattened: train, held-out, and the two nulls (memoriser, real)."""
    train = data.load("digits", "train").images.reshape(1500, -1)
    test = data.load("digits", "test")
    rows, pool_rows = evaluation.null_halves(test.labels)
    test = test.images.reshape(297, -1)
    rng = np.random.default_rng(0)
    memoriser = train[rng.choice(1500, 300)] + 0.05 * rng.standard_normal((300, 64))
    # Held-out halves: one is the "held-out" set, the other plays a perfect generator.
    return {
        "train": train,
        "held": test[rows],
        "real": test[pool_rows],
        "memoriser": memoriser.astype(np.float32),
    }


def test_nearest_neighbour_distances_match_brute_force():
    rng = np.random.default_rng(1)
    q, t = rng.standard_normal((37, 5)), rng.standard_normal((53, 5)) + 3.0
    got = metrics.nearest_neighbour_distances(q, t, block_size=8)
    np.testing.assert_allclose(got, _brute_nn(q, t), rtol=1e-4)


def test_mann_whitney_z_matches_scipy_u_with_ties():
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 6, 40).astype(float), rng.integers(1, 8, 25).astype(float)
    u = scipy.stats.mannwhitneyu(x, y).statistic
    want = (u - 40 * 25 / 2) / np.sqrt(40 * 25 * 66 / 12)
    assert metrics.mann_whitney_z(x, y) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("which", ["memoriser", "real"])
def test_copying_statistic_matches_scipy_reference(digits, which):
    got = metrics.copying_statistic(
        digits["train"], digits["held"], digits[which], num_cells=5, min_generated=20, seed=3
    )
    want = _reference_c_t(digits["train"], digits["held"], digits[which], 5, 20, 3)
    assert got == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_copying_nulls_behave(digits):
    args = (digits["train"], digits["held"])
    c_memoriser = metrics.copying_statistic(*args, digits["memoriser"], num_cells=5)
    c_real = metrics.copying_statistic(*args, digits["real"], num_cells=5)
    assert c_memoriser < -5.0  # strongly negative: copying
    assert abs(c_real) < 2.0  # held-out images are not flagged
    r_memoriser = metrics.memorisation_ratio(*args, digits["memoriser"])
    r_real = metrics.memorisation_ratio(*args, digits["real"])
    assert r_memoriser > 0.9
    assert r_real < 0.15  # its null is q / 100 = 0.05
    assert r_memoriser == max(r_memoriser, r_real)


def test_memorisation_ratio_by_hand():
    train = np.array([[0.0], [10.0]])
    held = np.array([[1.0], [2.0], [3.0], [4.0], [5.0]])  # NN distances 1..5
    gen = np.array([[0.5], [9.0], [7.0], [10.2]])  # 0.5, 1, 3, 0.2
    # 50th percentile of {1..5} is 3: 0.5, 1 and 0.2 lie below, 3 does not.
    assert metrics.memorisation_ratio(train, held, gen, percentile=50) == 0.75


def test_copying_statistic_drops_cells_with_too_few_generated_samples(digits):
    # Every cell has fewer than 10,000 generated samples: nothing qualifies.
    assert np.isnan(
        metrics.copying_statistic(
            digits["train"], digits["held"], digits["real"], num_cells=5, min_generated=10_000
        )
    )


def test_discriminator_overfitting_by_hand():
    d_train = np.array([2.0, 1.0, -1.0, 4.0])  # mean 1.5, signs 1 1 -1 1
    d_held = np.array([0.5, 1.5])  # mean 1.0
    d_gen = np.array([-2.0, -0.5, -1.0])  # mean -3.5 / 3
    out = metrics.discriminator_overfitting(d_train, d_held, d_gen)
    assert out["r_t"] == pytest.approx(0.5)
    assert out["r_v"] == pytest.approx((1.5 - 1.0) / (1.5 + 3.5 / 3))


def _closed_form_fd(mu1, s1, mu2, s2):
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def test_frechet_distance_infinity_is_the_fitted_line_and_near_the_true_fd():
    rng = np.random.default_rng(4)
    d = 8
    mu1, mu2 = np.zeros(d), np.full(d, 0.3)
    s1, s2 = np.eye(d), np.diag(np.linspace(0.5, 2.0, d))
    a = rng.multivariate_normal(mu1, s1, 4000).astype(np.float32)
    b = rng.multivariate_normal(mu2, s2, 4000).astype(np.float32)
    sizes = [100, 200, 400, 800, 1600]
    key = jax.random.key(7)
    out = metrics.frechet_distance_infinity(a, b, sizes=sizes, key=key, draws=2)
    # The documented subsets: per draw d, the first N rows of one permutation per set.
    fds = np.zeros(len(sizes))
    for d in range(2):
        key_a, key_b = jax.random.split(jax.random.fold_in(key, d))
        pa, pb = (np.asarray(jax.random.permutation(k, 4000)) for k in (key_a, key_b))
        fds += [
            _closed_form_fd(
                a[pa[:n]].mean(0), np.cov(a[pa[:n]].T), b[pb[:n]].mean(0), np.cov(b[pb[:n]].T)
            )
            for n in sizes
        ]
    fds /= 2
    slope, intercept = np.polyfit(1.0 / np.array(sizes), fds, 1)
    assert out["fd_inf"] == pytest.approx(intercept, rel=1e-3, abs=1e-3)
    assert out["fd_slope"] == pytest.approx(slope, rel=1e-3)
    true_fd = _closed_form_fd(mu1, s1, mu2, s2)
    assert abs(out["fd_inf"] - true_fd) < abs(fds[0] - true_fd) / 4
    # Sampling noise left after the bias: the mean term alone has standard
    # deviation ~ 2 sqrt(|Δμ|² tr(Σ) / (d N)) ≈ 0.05 at N = 1,600; 3 sigma.
    assert out["fd_inf"] == pytest.approx(true_fd, abs=0.15)


def test_frechet_distance_infinity_of_one_distribution_is_near_zero():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 3000, 6)).astype(np.float32)
    out = metrics.frechet_distance_infinity(a, b, sizes=[150, 300, 600, 1200, 2400])
    assert abs(out["fd_inf"]) < 0.02
    assert metrics.frechet_distance(a[:150], b[:150]) > 0.05  # the bias it removes


def test_frechet_distance_infinity_refuses_bad_sizes():
    x = np.zeros((10, 2), np.float32) + np.arange(10)[:, None]
    with pytest.raises(
        ValueError, match=r"sizes must hold at least 2 distinct values in \[2, 10\]"
    ):
        metrics.frechet_distance_infinity(x, x, sizes=[5, 20])


def test_split_statistics_give_the_scores_bit_for_bit_and_fit_once(digits, monkeypatch):
    """One split_statistics serves every generated set, with exactly the scores without it."""
    splits = metrics.split_statistics(digits["train"], digits["held"], num_cells=5, seed=3)
    fits = []
    monkeypatch.setattr(sklearn.cluster.KMeans, "fit", lambda *a, **k: fits.append(a))
    for which in ("memoriser", "real"):
        got = metrics.copying_statistic(
            None, None, digits[which], num_cells=5, seed=3, splits=splits
        )
        got_ratio = metrics.memorisation_ratio(None, None, digits[which], splits=splits)
        monkeypatch.undo()
        assert got == metrics.copying_statistic(
            digits["train"], digits["held"], digits[which], num_cells=5, seed=3
        )
        assert got == pytest.approx(
            _reference_c_t(digits["train"], digits["held"], digits[which], 5, 20, 3), rel=1e-4
        )
        assert got_ratio == metrics.memorisation_ratio(
            digits["train"], digits["held"], digits[which]
        )
        monkeypatch.setattr(sklearn.cluster.KMeans, "fit", lambda *a, **k: fits.append(a))
    assert fits == []
    with pytest.raises(ValueError, match="num_cells=5, seed=3"):
        metrics.copying_statistic(None, None, digits["real"], num_cells=4, seed=3, splits=splits)
