"""Feature-space distances between a real and a generated sample.

Each function takes ``[N, D]`` feature arrays (from an evaluation network):
the Fréchet distance (FD / FID) and its per-class mean, the kernel distance
(KID), and precision / recall / density / coverage (PRDC). Pairwise work is
done in row blocks (``block_size`` rows against a whole set), so no ``N x N``
distance matrix is ever held at once.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from regan_jax.metrics import _checks as checks
from regan_jax.metrics import _kernels as kernels


# --------------------------------------------------------------------------- #
# Fréchet distance
# --------------------------------------------------------------------------- #
def _warn_if_singular(n: int, d: int, what: str) -> None:
    if n <= d:
        warnings.warn(
            f"{what}: N={n} samples <= D={d} dimensions, so the covariance is "
            "singular and the Fréchet distance is strongly biased; use more "
            "samples than feature dimensions.",
            RuntimeWarning,
            stacklevel=3,
        )


def feature_stats(feats) -> tuple[jax.Array, jax.Array]:
    """Mean and unbiased covariance of a feature set.

    .. math::
      \\mu = \\frac1N \\sum_i x_i, \\qquad
      \\Sigma = \\frac{1}{N-1} \\sum_i (x_i - \\mu)(x_i - \\mu)^\\top

    Args:
      feats: ``[N, D]`` features, ``N >= 2``. A warning is issued when
        ``N <= D``: the covariance is then singular (rank ``< D``), and the FD
        computed from it is strongly biased.

    Returns:
      ``(mu [D], sigma [D, D])`` in float32.
    """
    x = checks.features("feats", feats)
    n, d = x.shape
    if n < 2:
        raise ValueError(f"feature_stats needs at least 2 samples for a covariance; got N={n}.")
    _warn_if_singular(n, d, "feature_stats")
    return kernels.moments(x, np.ones(n, bool))


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between two Gaussians given by their moments.

    .. math::
      d^2 = \\|\\mu_1 - \\mu_2\\|^2 + \\operatorname{tr}\\Sigma_1 + \\operatorname{tr}\\Sigma_2
            - 2 \\operatorname{tr} (\\Sigma_1 \\Sigma_2)^{1/2}

    The trace term is computed as :math:`\\sum_i \\sqrt{\\lambda_i}`, the
    eigenvalues of :math:`A = \\Sigma_1^{1/2} \\Sigma_2 \\Sigma_1^{1/2}`:
    :math:`\\Sigma_1\\Sigma_2` is similar to ``A``, and ``A`` is symmetric PSD,
    so a symmetric eigensolver is exact up to rounding (tiny negative
    eigenvalues are clipped to 0). ``sqrtm`` of the non-symmetric product, as
    pytorch-fid does, can return complex parts and needs an ``eps`` fudge on
    singular covariances.

    Args:
      mu1, mu2: ``[D]`` means.
      sigma1, sigma2: ``[D, D]`` covariances (symmetrised before use).

    Returns:
      The squared Fréchet distance as a Python float (clipped at 0: only
      rounding makes it negative).
    """
    # Host float64 on purpose: the trace term is a difference of O(tr Σ)
    # quantities, and float32 eigensolvers lose ~1e-3 relative accuracy on the
    # ill-conditioned covariances of network features; jax float64 would need
    # the process-global x64 flag. This runs once per evaluation, so speed and
    # jit do not matter here.
    mu1, mu2 = (np.asarray(m, np.float64) for m in (mu1, mu2))
    s1, s2 = (np.asarray(s, np.float64) for s in (sigma1, sigma2))
    for name, mu, s in (("1", mu1, s1), ("2", mu2, s2)):
        if mu.ndim != 1 or s.shape != (mu.shape[0], mu.shape[0]):
            raise ValueError(
                f"mu{name} must be [D] and sigma{name} [D, D]; got shapes {mu.shape} and {s.shape}."
            )
        if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(s))):
            raise ValueError(f"mu{name} / sigma{name} contain NaN or Inf.")
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"The two Gaussians have different dimensions: {mu1.shape[0]} vs {mu2.shape[0]}."
        )
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    root1 = _psd_sqrt(s1)
    eigenvalues = np.linalg.eigvalsh(root1 @ s2 @ root1)
    trace_sqrt = np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None)))
    diff = mu1 - mu2
    fd = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt
    return float(max(fd, 0.0))


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID).

    Heusel et al. 2017, "GANs trained by a two time-scale update rule converge
    to a local Nash equilibrium". See :func:`frechet_distance_from_stats`
    for the formula and :func:`feature_stats` for the moments.

    Args:
      feats_a, feats_b: ``[Na, D]`` and ``[Nb, D]`` features.

    Returns:
      The squared Fréchet distance (a Python float).
    """
    a, b = checks.features("feats_a", feats_a), checks.features("feats_b", feats_b)
    checks.same_dim(a, b, "feats_a and feats_b")
    return frechet_distance_from_stats(*feature_stats(a), *feature_stats(b))


def intra_class_frechet_distance(
    real_feats, real_labels, fake_feats, fake_labels, num_classes: int, *, min_samples: int = 2
) -> float:
    """Mean over classes of the Fréchet distance between per-class features.

    .. math::
      \\mathrm{IFD} = \\frac{1}{|\\mathcal C|} \\sum_{c \\in \\mathcal C}
        d^2_F\\big(X_{y=c},\\; Y_{y=c}\\big)

    Rule for small classes: :math:`\\mathcal C` holds the classes with at least
    ``min_samples`` (>= 2, needed for a covariance) real *and* fake samples;
    the others are skipped with a warning that names them, and if none is
    left a ``ValueError`` is raised. ``fake_labels`` are meant to be the
    conditioning labels of a class-conditional generator (so the evaluator
    controls every class's count); use :func:`modes_covered` on classifier
    predictions to measure dropped classes.

    Args:
      real_feats, fake_feats: ``[N, D]`` and ``[M, D]`` features.
      real_labels, fake_labels: ``[N]`` and ``[M]`` integer labels.
      num_classes: number of classes.
      min_samples: samples per class and set needed for the class to count.
    """
    real = checks.features("real_feats", real_feats)
    fake = checks.features("fake_feats", fake_feats)
    checks.same_dim(real, fake, "real_feats and fake_feats")
    real_y = checks.labels("real_labels", real_labels, num_classes)
    fake_y = checks.labels("fake_labels", fake_labels, num_classes)
    if real_y.shape[0] != real.shape[0] or fake_y.shape[0] != fake.shape[0]:
        raise ValueError(
            "Each label array must have one label per feature row; got "
            f"{real_y.shape[0]} labels for {real.shape[0]} real rows and "
            f"{fake_y.shape[0]} for {fake.shape[0]} fake rows."
        )
    if min_samples < 2:
        raise ValueError(
            f"min_samples must be >= 2 (a covariance needs 2 samples); got {min_samples}."
        )
    per_class = np.minimum(
        np.bincount(real_y, minlength=num_classes), np.bincount(fake_y, minlength=num_classes)
    )
    used = np.flatnonzero(per_class >= min_samples)
    skipped = np.flatnonzero(per_class < min_samples)
    if used.size == 0:
        raise ValueError(f"No class has >= {min_samples} real and fake samples.")
    if skipped.size:
        warnings.warn(
            f"intra_class_frechet_distance: skipped classes {skipped.tolist()} "
            f"(fewer than {min_samples} real or fake samples).",
            RuntimeWarning,
            stacklevel=2,
        )
    _warn_if_singular(int(per_class[used].min()), real.shape[1], "intra_class_frechet_distance")
    return float(
        np.mean(
            [
                frechet_distance_from_stats(
                    *kernels.moments(real, real_y == c), *kernels.moments(fake, fake_y == c)
                )
                for c in used
            ]
        )
    )


def frechet_distance_infinity(
    feats_a, feats_b, *, sizes=None, key: jax.Array | None = None, draws: int = 10
) -> dict[str, float]:
    """FD extrapolated to infinitely many samples (FD∞).

    Chong & Forsyth 2020, "Effectively unbiased FID and Inception score and
    where to find them" (CVPR): FD's bias is linear in ``1 / N``, so FD is
    measured at several ``N``, a least-squares line
    ``FD(N) = FD∞ + slope / N`` is fitted, and its intercept is the score.

    FD at size ``N`` is the mean over ``draws`` subset pairs; draw ``d``'s
    subsets are the first ``N`` rows of one random permutation of each set
    (``fold_in(key, d)`` split in two: ``a``, then ``b``), so within a draw
    they are nested and the line is smooth. With a few hundred images per
    set (digits' held-out split) one draw's FD scatters by ±5 around its
    mean at ``N ≈ 2 D`` and the extrapolation multiplies that; averaging
    draws is what makes the intercept usable there. Both sets are subsampled to
    the same ``N``: the paper keeps the real statistics fixed at 50,000
    images, whose bias is then a constant inside the intercept; with a
    held-out split of a few hundred images that constant is not small, and
    subsampling both sides removes both biases, so two sets of one
    distribution extrapolate to ≈ 0 (the real floor at equal ``N``).

    Args:
      feats_a, feats_b: ``[Na, D]`` and ``[Nb, D]`` features.
      sizes: the ``N`` values (at least 2 distinct, each ``2 <= N <=
        min(Na, Nb)``); default 5 values evenly spaced from
        ``min(max(min(Na, Nb) / 5, 2 D), min(Na, Nb) / 2)`` to ``min(Na, Nb)``:
        the line holds only well above ``N = D`` (below it the covariance is
        singular), and the paper's smallest ``N`` is about ``2.4 D``.
      key: PRNG key of the permutations (default ``jax.random.key(0)``).
      draws: subset pairs averaged at each size (>= 1).

    Returns:
      ``{'fd_inf': intercept, 'fd_slope': slope}`` as floats.
    """
    a, b = checks.features("feats_a", feats_a), checks.features("feats_b", feats_b)
    checks.same_dim(a, b, "feats_a and feats_b")
    most = min(a.shape[0], b.shape[0])
    lowest = min(max(most / 5, 2 * a.shape[1]), most / 2)
    sizes = (
        np.unique(np.linspace(lowest, most, 5).astype(int))
        if sizes is None
        else np.unique(np.asarray(sizes, int))
    )
    if sizes.size < 2 or sizes.min() < 2 or sizes.max() > most:
        raise ValueError(
            f"sizes must hold at least 2 distinct values in [2, {most}] "
            f"(min(Na, Nb)); got {sizes.tolist()}."
        )
    if draws < 1:
        raise ValueError(f"draws must be >= 1; got {draws}.")
    key = jax.random.key(0) if key is None else key
    _warn_if_singular(int(sizes.min()), a.shape[1], "frechet_distance_infinity")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    fds = np.zeros(sizes.size)
    for d in range(draws):
        key_a, key_b = jax.random.split(jax.random.fold_in(key, d))
        a_d = a[np.asarray(jax.random.permutation(key_a, a.shape[0]))]
        b_d = b[np.asarray(jax.random.permutation(key_b, b.shape[0]))]
        # Host moments: the device kernel would compile once per subset size.
        fds += [
            frechet_distance_from_stats(
                a_d[:n].mean(0), np.cov(a_d[:n].T), b_d[:n].mean(0), np.cov(b_d[:n].T)
            )
            for n in sizes
        ]
    fds /= draws
    design = np.stack([np.ones(sizes.size), 1.0 / sizes], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, fds, rcond=None)
    return {"fd_inf": float(intercept), "fd_slope": float(slope)}


# --------------------------------------------------------------------------- #
# Kernel distance
# --------------------------------------------------------------------------- #
def kid(
    feats_a,
    feats_b,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    key: jax.Array | None = None,
    return_std: bool = False,
):
    """Kernel distance (KID): unbiased MMD² with a cubic polynomial kernel.

    Bińkowski et al. 2018, "Demystifying MMD GANs". With
    :math:`k(x, y) = (x^\\top y / D + 1)^3` and subsets
    :math:`X, Y` of ``m`` rows each (drawn without replacement),

    .. math::
      \\widehat{\\mathrm{MMD}}^2_u = \\frac{1}{m(m-1)} \\sum_{i \\ne j} k(x_i, x_j)
        + \\frac{1}{m(m-1)} \\sum_{i \\ne j} k(y_i, y_j)
        - \\frac{2}{m^2} \\sum_{i, j} k(x_i, y_j),

    averaged over ``num_subsets`` independent subset pairs.

    Args:
      feats_a, feats_b: ``[Na, D]`` and ``[Nb, D]`` features.
      num_subsets: number of subset pairs averaged.
      subset_size: rows per subset; ``m = min(subset_size, Na, Nb) >= 2``.
      key: PRNG key for the subsets; the default ``jax.random.key(0)`` makes
        KID a deterministic function of the features.
      return_std: also return the standard deviation over subsets.

    Returns:
      The mean MMD² over subsets (a float; it can be slightly negative), or
      ``(mean, std)`` when ``return_std``.
    """
    a, b = checks.features("feats_a", feats_a), checks.features("feats_b", feats_b)
    checks.same_dim(a, b, "feats_a and feats_b")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError(
            f"kid needs subsets of at least 2 samples; got subset_size="
            f"{subset_size}, Na={a.shape[0]}, Nb={b.shape[0]}."
        )
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1; got {num_subsets}.")
    key = jax.random.key(0) if key is None else key
    values = np.asarray(kernels.kid_subsets(a, b, key, num_subsets, m), np.float64)
    return (float(values.mean()), float(values.std())) if return_std else float(values.mean())


# --------------------------------------------------------------------------- #
# Precision, recall, density, coverage
# --------------------------------------------------------------------------- #
def prdc(real_feats, fake_feats, k: int = 5, *, block_size: int = 512) -> dict[str, float]:
    """Precision, recall, density and coverage with exact k-NN balls.

    With :math:`r_k(x)` the distance from ``x`` to its k-th nearest neighbour
    in its own set (itself excluded) and closed balls
    :math:`B(x, r) = \\{y : \\|y - x\\| \\le r\\}`, for reals
    :math:`X_{1..N}` and fakes :math:`Y_{1..M}`:

    .. math::
      \\mathrm{precision} = \\frac1M \\sum_j 1[\\exists i: Y_j \\in B(X_i, r_k(X_i))]
      \\qquad
      \\mathrm{recall} = \\frac1N \\sum_i 1[\\exists j: X_i \\in B(Y_j, r_k(Y_j))]

      \\mathrm{density} = \\frac{1}{kM} \\sum_j \\sum_i 1[Y_j \\in B(X_i, r_k(X_i))]
      \\qquad
      \\mathrm{coverage} = \\frac1N \\sum_i 1[\\exists j: Y_j \\in B(X_i, r_k(X_i))]

    Precision / recall: Kynkäänniemi et al. 2019, "Improved precision and
    recall metric for assessing generative models". Density / coverage: Naeem
    et al. 2020, "Reliable fidelity and diversity metrics for generative
    models". Distances are computed ``block_size`` rows at a time; both sets
    are first shifted by the real mean (distances are unchanged, the Gram
    expansion loses less to cancellation).

    Args:
      real_feats, fake_feats: ``[N, D]`` and ``[M, D]`` features, ``N, M >= k + 1``.
      k: neighbourhood size.
      block_size: rows per distance block (memory ``~ block_size * max(N, M)``).

    Returns:
      ``{'precision', 'recall', 'density', 'coverage'}`` as Python floats.
    """
    real = checks.features("real_feats", real_feats)
    fake = checks.features("fake_feats", fake_feats)
    checks.same_dim(real, fake, "real_feats and fake_feats")
    if not (isinstance(k, int) and k >= 1):
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1; got {block_size}.")
    for name, x in (("real_feats", real), ("fake_feats", fake)):
        if x.shape[0] < k + 1:
            raise ValueError(
                f"prdc with k={k} needs at least k+1={k + 1} samples in {name}; got {x.shape[0]}."
            )
    tallies = kernels.prdc_tallies(
        real, fake, k, min(block_size, real.shape[0]), min(block_size, fake.shape[0])
    )
    n, m = real.shape[0], fake.shape[0]
    return {
        "precision": int(tallies["precision"]) / m,
        "recall": int(tallies["recall"]) / n,
        "density": int(tallies["density"]) / (k * m),
        "coverage": int(tallies["coverage"]) / n,
    }
