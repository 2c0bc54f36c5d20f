"""Sample-quality and diversity metrics for generative models.

Feature-space metrics take ``[N, D]`` feature arrays (from an evaluation
network): the Fréchet distance (FD / FID), the kernel distance (KID), and
precision / recall / density / coverage (PRDC). Mixture metrics take 2-D
points and the mixture's centres; classifier metrics take predicted labels or
class probabilities.

Pairwise work is done in row blocks (``block_size`` rows against a whole set),
so no ``N x N`` distance matrix is ever held at once.
"""
from __future__ import annotations

import warnings

import jax
import numpy as np
import scipy.special

from regan_jax import _metrics_checks as checks
from regan_jax import _metrics_kernels as kernels

__all__ = [
    "class_histogram_kl",
    "conditional_accuracy",
    "feature_stats",
    "frechet_distance",
    "frechet_distance_from_stats",
    "inception_score",
    "intra_class_frechet_distance",
    "kid",
    "mode_metrics",
    "modes_covered",
    "prdc",
    "stacked_modes",
]


# --------------------------------------------------------------------------- #
# Fréchet distance
# --------------------------------------------------------------------------- #
def _warn_if_singular(n: int, d: int, what: str) -> None:
    if n <= d:
        warnings.warn(f"{what}: N={n} samples <= D={d} dimensions, so the covariance is "
                      "singular and the Fréchet distance is strongly biased; use more "
                      "samples than feature dimensions.", RuntimeWarning, stacklevel=3)


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
            raise ValueError(f"mu{name} must be [D] and sigma{name} [D, D]; "
                             f"got shapes {mu.shape} and {s.shape}.")
        if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(s))):
            raise ValueError(f"mu{name} / sigma{name} contain NaN or Inf.")
    if mu1.shape != mu2.shape:
        raise ValueError(f"The two Gaussians have different dimensions: "
                         f"{mu1.shape[0]} vs {mu2.shape[0]}.")
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


# --------------------------------------------------------------------------- #
# Kernel distance
# --------------------------------------------------------------------------- #
def kid(feats_a, feats_b, *, num_subsets: int = 100, subset_size: int = 1000,
        key: jax.Array | None = None, return_std: bool = False):
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
        raise ValueError(f"kid needs subsets of at least 2 samples; got subset_size="
                         f"{subset_size}, Na={a.shape[0]}, Nb={b.shape[0]}.")
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
            raise ValueError(f"prdc with k={k} needs at least k+1={k + 1} samples in "
                             f"{name}; got {x.shape[0]}.")
    tallies = kernels.prdc_tallies(real, fake, k, min(block_size, real.shape[0]),
                                   min(block_size, fake.shape[0]))
    n, m = real.shape[0], fake.shape[0]
    return {"precision": int(tallies["precision"]) / m, "recall": int(tallies["recall"]) / n,
            "density": int(tallies["density"]) / (k * m),
            "coverage": int(tallies["coverage"]) / n}


# --------------------------------------------------------------------------- #
# Mode histograms: 2-D mixtures and classifier labels
# --------------------------------------------------------------------------- #
def _kl_to_uniform(counts: np.ndarray) -> float:
    """``KL(q || U_C) = sum_{q_c > 0} q_c log(C q_c)``, ``q = counts / sum(counts)``."""
    q = np.asarray(counts, np.float64) / np.sum(counts)
    return float(np.sum(scipy.special.xlogy(q, q * q.shape[0])))


def mode_metrics(samples, centres, sigma: float, *, min_count: int = 1,
                 num_std: float = 3.0) -> dict[str, float]:
    """Mode coverage, sample quality and reverse KL on a 2-D Gaussian mixture.

    Each sample is assigned to its nearest centre; it is *high quality* if it
    lies within ``num_std * sigma`` of that centre. With :math:`n_c` the
    number of high-quality samples assigned to centre ``c`` (of ``M``) and
    :math:`q_c = n_c / \\sum_c n_c`:

    .. math::
      \\mathrm{modes} = \\#\\{c : n_c \\ge \\mathrm{min\\_count}\\}, \\qquad
      \\mathrm{hq\\_fraction} = \\frac{\\sum_c n_c}{N}, \\qquad
      \\mathrm{reverse\\_kl} = \\mathrm{KL}(q \\,\\|\\, U_M)
        = \\sum_{c:\\, q_c > 0} q_c \\log (M q_c).

    Convention (the VEEGAN / PacGAN protocol, Srivastava et al. 2017; Lin et
    al. 2018, arXiv:1712.04086, Table 1): the histogram counts only
    high-quality samples, and modes with :math:`q_c = 0` contribute
    :math:`0 \\log 0 = 0`, so no epsilon is added. PacGAN's released code does
    exactly this (``fjxmlzn/PacGAN``, ``synthetic_data_experiments/PacGAN/
    pacgan/extensions.py``: ``MetricLogger`` counts samples within 3 std of
    the nearest mode; ``stacked_MNIST_experiments/VEEGAN_experiment/model.py``:
    ``KLD(p, uniform)`` summing over ``p != 0``) and counts a mode from one
    sample, hence ``min_count=1`` by default. With no high-quality sample the
    histogram is undefined and ``reverse_kl`` is ``inf`` (with a warning).

    Args:
      samples: ``[N, 2]`` generated points.
      centres: ``[M, 2]`` mixture centres.
      sigma: the mixture components' standard deviation.
      min_count: high-quality samples a mode needs to count as covered.
      num_std: the quality radius in units of ``sigma``.

    Returns:
      ``{'modes': int, 'hq_fraction': float, 'reverse_kl': float}``.
    """
    x, c = checks.features("samples", samples), checks.features("centres", centres)
    checks.same_dim(x, c, "samples and centres")
    if not (sigma > 0 and num_std > 0):
        raise ValueError(f"sigma and num_std must be positive; got {sigma}, {num_std}.")
    counts = np.asarray(kernels.mode_histogram(x, c, num_std * sigma))
    if counts.sum() == 0:
        warnings.warn(f"mode_metrics: no sample lies within {num_std} sigma of a centre; "
                      "reverse_kl is inf.", RuntimeWarning, stacklevel=2)
    return {
        "modes": int(np.sum(counts >= min_count)),
        "hq_fraction": int(counts.sum()) / x.shape[0],
        "reverse_kl": _kl_to_uniform(counts) if counts.sum() else float("inf"),
    }


def _label_histogram(labels_or_probs, num_classes: int) -> np.ndarray:
    """Counts per class of ``[N]`` labels, or of the argmax of ``[N, C]`` probabilities."""
    if np.ndim(labels_or_probs) == 2:
        probs = checks.probabilities("probs", labels_or_probs)
        if probs.shape[1] != num_classes:
            raise ValueError(f"probs have {probs.shape[1]} classes; expected {num_classes}.")
        labels_or_probs = np.argmax(probs, axis=1)
    labels = checks.labels("labels", labels_or_probs, num_classes)
    return np.bincount(labels, minlength=num_classes)


def class_histogram_kl(labels_or_probs, num_classes: int) -> float:
    """KL divergence from the predicted-class histogram to uniform.

    .. math::
      \\mathrm{KL}(q \\,\\|\\, U_C) = \\sum_{c:\\, q_c > 0} q_c \\log (C q_c),
      \\qquad q_c = \\frac1N \\#\\{i : \\hat y_i = c\\}

    0 for perfectly balanced predictions, :math:`\\log C` when every sample
    gets the same class (the Stacked-MNIST "KL" of VEEGAN / PacGAN).

    Args:
      labels_or_probs: ``[N]`` integer predicted labels, or ``[N, C]`` class
        probabilities (the predicted label is the argmax).
      num_classes: ``C``.
    """
    return _kl_to_uniform(_label_histogram(labels_or_probs, num_classes))


def modes_covered(pred_labels, num_classes: int, min_count: int = 1) -> int:
    """Number of classes predicted for at least ``min_count`` samples.

    Args:
      pred_labels: ``[N]`` integer labels, or ``[N, C]`` class probabilities.
      num_classes: ``C``.
      min_count: samples a class needs to count as covered.
    """
    return int(np.sum(_label_histogram(pred_labels, num_classes) >= min_count))


def stacked_modes(channel_preds, min_count: int = 1) -> dict[str, float]:
    """Stacked-digits mode metrics: one of 1,000 modes per three-digit sample.

    The mode of a sample whose channels are classified as digits
    :math:`(d_0, d_1, d_2)` is :math:`100 d_0 + 10 d_1 + d_2`.

    Args:
      channel_preds: ``[N, 3]`` integer digit predictions, one per channel.
      min_count: samples a mode needs to count as covered.

    Returns:
      ``{'modes': int (of 1000), 'class_kl': KL of the mode histogram to uniform}``.
    """
    preds = np.asarray(channel_preds)
    if preds.ndim != 2 or preds.shape[1] != 3:
        raise ValueError(f"channel_preds must be [N, 3] (one digit per channel); "
                         f"got shape {preds.shape}.")
    digits = checks.labels("channel_preds (flattened)", preds.reshape(-1), 10).reshape(-1, 3)
    counts = _label_histogram(digits @ np.array([100, 10, 1]), 1000)
    return {"modes": int(np.sum(counts >= min_count)), "class_kl": _kl_to_uniform(counts)}


def conditional_accuracy(pred_labels, target_labels) -> float:
    """Fraction of class-conditional samples classified as their target class."""
    pred, target = np.asarray(pred_labels), np.asarray(target_labels)
    if pred.ndim != 1 or pred.shape != target.shape or pred.shape[0] == 0:
        raise ValueError(f"pred_labels and target_labels must be non-empty [N] arrays of "
                         f"one length; got shapes {pred.shape} and {target.shape}.")
    return float(np.mean(pred == target))


def intra_class_frechet_distance(real_feats, real_labels, fake_feats, fake_labels,
                                 num_classes: int, *, min_samples: int = 2) -> float:
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
        raise ValueError("Each label array must have one label per feature row; got "
                         f"{real_y.shape[0]} labels for {real.shape[0]} real rows and "
                         f"{fake_y.shape[0]} for {fake.shape[0]} fake rows.")
    if min_samples < 2:
        raise ValueError(f"min_samples must be >= 2 (a covariance needs 2 samples); "
                         f"got {min_samples}.")
    per_class = np.minimum(np.bincount(real_y, minlength=num_classes),
                           np.bincount(fake_y, minlength=num_classes))
    used = np.flatnonzero(per_class >= min_samples)
    skipped = np.flatnonzero(per_class < min_samples)
    if used.size == 0:
        raise ValueError(f"No class has >= {min_samples} real and fake samples.")
    if skipped.size:
        warnings.warn(f"intra_class_frechet_distance: skipped classes {skipped.tolist()} "
                      f"(fewer than {min_samples} real or fake samples).",
                      RuntimeWarning, stacklevel=2)
    _warn_if_singular(int(per_class[used].min()), real.shape[1], "intra_class_frechet_distance")
    return float(np.mean([
        frechet_distance_from_stats(*kernels.moments(real, real_y == c),
                                    *kernels.moments(fake, fake_y == c))
        for c in used]))


def inception_score(probs, num_splits: int = 10, *, return_std: bool = False):
    """Inception Score analogue for any classifier's class probabilities.

    Salimans et al. 2016, "Improved techniques for training GANs". The rows
    are cut into ``num_splits`` contiguous splits (boundaries
    ``floor(s N / S)``, as in the original code); for each split ``S_s``

    .. math::
      \\mathrm{IS}_s = \\exp\\Big(\\frac{1}{|S_s|} \\sum_{i \\in S_s}
        \\mathrm{KL}\\big(p(y \\mid x_i) \\,\\|\\, \\bar p_s(y)\\big)\\Big),
      \\qquad \\bar p_s = \\frac{1}{|S_s|} \\sum_{i \\in S_s} p(y \\mid x_i).

    1 for identical predictions, ``C`` for confident predictions spread
    evenly over ``C`` classes.

    Args:
      probs: ``[N, C]`` class probabilities (softmax outputs).
      num_splits: number of splits, ``1 <= num_splits <= N``.
      return_std: also return the standard deviation over splits.

    Returns:
      The mean of the split scores, or ``(mean, std)`` when ``return_std``.
    """
    p = checks.probabilities("probs", probs)
    if not 1 <= num_splits <= p.shape[0]:
        raise ValueError(f"num_splits must lie in [1, N={p.shape[0]}]; got {num_splits}.")
    scores = np.asarray(kernels.split_inception_scores(p, num_splits), np.float64)
    return (float(scores.mean()), float(scores.std())) if return_std else float(scores.mean())
