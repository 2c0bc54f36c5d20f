"""Mode coverage and class-prediction metrics.

Mixture metrics take 2-D points and the mixture's centres; classifier metrics
take predicted labels or class probabilities (from an evaluation classifier):
class histograms against uniform, modes covered (also of stacked digits),
conditional accuracy and the Inception Score.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.special

from regan_jax.metrics import _checks as checks
from regan_jax.metrics import _kernels as kernels


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


# --------------------------------------------------------------------------- #
# Classifier predictions of class-conditional and unconditional samples
# --------------------------------------------------------------------------- #
def conditional_accuracy(pred_labels, target_labels) -> float:
    """Fraction of class-conditional samples classified as their target class."""
    pred, target = np.asarray(pred_labels), np.asarray(target_labels)
    if pred.ndim != 1 or pred.shape != target.shape or pred.shape[0] == 0:
        raise ValueError(f"pred_labels and target_labels must be non-empty [N] arrays of "
                         f"one length; got shapes {pred.shape} and {target.shape}.")
    return float(np.mean(pred == target))


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
