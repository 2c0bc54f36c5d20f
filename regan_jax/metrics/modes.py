"""Mode coverage and class-prediction metrics.

Mixture metrics take 2-D points and the mixture's centres, and test them
against uniform noise in a box around the centres; classifier metrics
take predicted labels or class probabilities (from an evaluation classifier):
class histograms against uniform, modes covered (also of stacked digits),
conditional accuracy and the Inception Score.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special
import scipy.stats

from regan_jax.metrics import _checks as checks
from regan_jax.metrics import _kernels as kernels


# --------------------------------------------------------------------------- #
# Mode histograms: 2-D mixtures and classifier labels
# --------------------------------------------------------------------------- #
def _kl_to_uniform(counts: np.ndarray) -> float:
    """``KL(q || U_C) = sum_{q_c > 0} q_c log(C q_c)``, ``q = counts / sum(counts)``."""
    q = np.asarray(counts, np.float64) / np.sum(counts)
    return float(np.sum(scipy.special.xlogy(q, q * q.shape[0])))


def support_box(centres) -> tuple[np.ndarray, np.ndarray]:
    """The default support of a mixture's noise null: corners ``(low, high)``, float64 ``[2]``.

    The centres' bounding box, enlarged on every side by half the smallest
    distance between two centres:

    .. math::
      \\mathrm{low} = \\min_c c - \\tfrac{d}{2}, \\qquad
      \\mathrm{high} = \\max_c c + \\tfrac{d}{2}, \\qquad
      d = \\min_{c \\ne c'} \\lVert c - c' \\rVert

    (minimum and maximum per coordinate). The margin gives the outer modes
    the room every mode has around it inside its Voronoi cell (at least
    ``d / 2``), so the box is where a generator that ignored the modes would
    spread its samples: ``ring8`` with radius r gives ``[-1.383 r, 1.383 r]²``,
    ``grid25`` with spacing s gives ``[-2.5 s, 2.5 s]²``. ``Mixture.support``
    returns this box; the evaluator and the figures use it.

    Raises:
      ValueError: fewer than two centres, or two equal centres.
    """
    c = np.asarray(centres, np.float64)
    if c.ndim != 2 or c.shape[0] < 2:
        raise ValueError(f"support_box needs [M >= 2, D] centres; got shape {c.shape}.")
    d2 = np.sum((c[:, None] - c[None]) ** 2, axis=-1)
    np.fill_diagonal(d2, np.inf)
    margin = np.sqrt(d2.min()) / 2
    if not margin > 0:
        raise ValueError("support_box: two centres coincide; the margin would be 0.")
    return c.min(axis=0) - margin, c.max(axis=0) + margin


def _checked_support(support, dim: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        low, high = (np.asarray(corner, np.float64) for corner in support)
    except (TypeError, ValueError):
        raise ValueError(
            f"support must be a pair (low, high) of [{dim}] corners; got {support!r}."
        ) from None
    if low.shape != (dim,) or high.shape != (dim,) or not np.all(low < high):
        raise ValueError(
            f"support must be corners (low, high) of shape [{dim}] with "
            f"low < high; got {low!r}, {high!r}."
        )
    return low, high


def uniform_hq_probabilities(centres, radius: float, support, *, grid: int = 512) -> np.ndarray:
    """``p_c``: the chance that a uniform point of the box is a high-quality sample of mode ``c``.

    With the box :math:`B` = ``support`` and :math:`V_c` the Voronoi cell of
    centre ``c`` (the points assigned to it):

    .. math::
      p_c = \\frac{|\\{x \\in B \\cap V_c : \\lVert x - c \\rVert \\le R\\}|}{|B|},
      \\qquad R = \\mathrm{radius}.

    Closed form :math:`\\pi R^2 / |B|` when the disc lies inside the box and
    inside :math:`V_c`, i.e. when :math:`R` is at most half the distance to
    the nearest other centre (the discs of neighbouring modes do not
    overlap) -- the published settings (ring8 σ/r = 0.01, grid25 σ/s =
    0.025, ``R = 3σ``) are all in this case. Otherwise a deterministic
    midpoint rule: ``grid x grid`` cells over the disc's bounding square
    clipped to the box, counting the cell centres within ``R`` of ``c`` whose
    nearest centre is ``c`` (ties to the lower index, as the histogram's
    argmin). Its error comes from the cells cut by the region's boundary:
    under ``1e-3`` relative for ``grid = 512`` (checked against the exact
    area of a disc clipped by a box and a Voronoi edge), far below the
    resolution the binomial tests need.

    The regions are disjoint (a point has one nearest centre), so
    :math:`\\sum_c p_c` is the high-quality fraction of uniform noise.

    Args:
      centres: ``[M, 2]`` mixture centres.
      radius: the quality radius ``num_std * sigma``.
      support: the box, corners ``(low [2], high [2])``.
      grid: quadrature cells per axis when the closed form does not apply.

    Returns:
      float64 ``[M]``.
    """
    c = np.asarray(centres, np.float64)
    if c.ndim != 2 or c.shape[1] != 2:
        raise ValueError(f"centres must be [M, 2]; got shape {c.shape}.")
    if not radius > 0:
        raise ValueError(f"radius must be positive; got {radius}.")
    low, high = _checked_support(support, 2)
    area = float(np.prod(high - low))
    d2 = np.sum((c[:, None] - c[None]) ** 2, axis=-1)
    np.fill_diagonal(d2, np.inf)
    probs = np.empty(len(c))
    for i, centre in enumerate(c):
        inside_box = np.all(centre - radius >= low) and np.all(centre + radius <= high)
        if inside_box and 4 * radius**2 <= d2[i].min():
            probs[i] = np.pi * radius**2 / area
            continue
        lo, hi = np.maximum(centre - radius, low), np.minimum(centre + radius, high)
        if np.any(lo >= hi):
            probs[i] = 0.0
            continue
        step = (hi - lo) / grid
        axes = [lo[a] + step[a] * (np.arange(grid) + 0.5) for a in range(2)]
        points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
        # Only centres closer than 2R can own a point within R of this one.
        rivals = np.flatnonzero((d2[i] < 4 * radius**2) | (np.arange(len(c)) == i))
        dist2 = np.sum((points[:, None] - c[rivals][None]) ** 2, axis=-1)
        owned = rivals[np.argmin(dist2, axis=1)] == i
        near = np.sum((points - centre) ** 2, axis=-1) <= radius**2
        probs[i] = np.sum(owned & near) * step[0] * step[1] / area
    return probs


def mode_metrics(
    samples,
    centres,
    sigma: float,
    *,
    min_count: int = 1,
    num_std: float = 3.0,
    support=None,
    alpha: float = 0.05,
) -> dict[str, float | int | bool]:
    """Mode coverage, sample quality and reverse KL on a 2-D Gaussian mixture, against noise.

    Each sample is assigned to its nearest centre; it is *high quality* if it
    lies within ``R = num_std * sigma`` of that centre. With :math:`n_c` the
    number of high-quality samples assigned to centre ``c`` (of ``M``),
    :math:`K = \\sum_c n_c` and :math:`q_c = n_c / K`:

    .. math::
      \\mathrm{modes} = \\#\\{c : n_c \\ge \\mathrm{min\\_count}\\}, \\qquad
      \\mathrm{hq\\_fraction} = \\frac{K}{N}, \\qquad
      \\mathrm{reverse\\_kl} = \\mathrm{KL}(q \\,\\|\\, U_M)
        = \\sum_{c:\\, q_c > 0} q_c \\log (M q_c).

    The VEEGAN / PacGAN convention: only high-quality samples are counted,
    :math:`0 \\log 0 = 0` (no epsilon), and one sample makes a mode
    (``min_count=1``), so ``modes`` is comparable with the published tables.
    A run with no high-quality sample gets :math:`\\mathrm{reverse\\_kl} =
    \\log M`, the metric's worst value (never ``inf``).

    Against uniform noise in the box ``support``, where a point is a
    high-quality sample of mode ``c`` with probability :math:`p_c`
    (:func:`uniform_hq_probabilities`):

    .. math::
      \\mathrm{robust\\_modes} = \\#\\{c : P(\\mathrm{Bin}(N, p_c) \\ge n_c)
        < \\alpha / M\\}, \\qquad
      \\mathrm{noise\\_hq\\_fraction} = \\sum_c p_c, \\qquad
      \\mathrm{at\\_noise\\_level} = \\big[P(\\mathrm{Bin}(N, \\textstyle\\sum_c p_c)
        \\ge K) \\ge \\alpha\\big]

    (one-sided binomial tests; ``robust_modes`` ignores ``min_count``). The
    sources of the convention, why noise needs a test and what the tests
    cost: ``docs/metrics.md``.

    Args:
      samples: ``[N, 2]`` generated points.
      centres: ``[M, 2]`` mixture centres.
      sigma: the mixture components' standard deviation.
      min_count: high-quality samples a mode needs to count in ``modes``.
      num_std: the quality radius in units of ``sigma``.
      support: the noise null's box, corners ``(low [2], high [2])``;
        default :func:`support_box` of the centres (what
        ``regan_jax.data.Mixture.support`` returns).
      alpha: level of the binomial tests.

    Returns:
      ``{'modes': int, 'robust_modes': int, 'hq_fraction': float,
      'noise_hq_fraction': float, 'reverse_kl': float,
      'at_noise_level': bool}``.
    """
    x, c = checks.features("samples", samples), checks.features("centres", centres)
    checks.same_dim(x, c, "samples and centres")
    if x.shape[1] != 2:
        raise ValueError(f"mode_metrics takes 2-D points; got dimension {x.shape[1]}.")
    if not (sigma > 0 and num_std > 0):
        raise ValueError(f"sigma and num_std must be positive; got {sigma}, {num_std}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha}.")
    support = support_box(c) if support is None else support
    n, m = x.shape[0], c.shape[0]
    radius = num_std * sigma
    counts = np.asarray(kernels.mode_histogram(x, c, radius), np.int64)
    hq = int(counts.sum())
    p = uniform_hq_probabilities(c, radius, support)
    noise = float(min(p.sum(), 1.0))
    mode_pvalues = scipy.stats.binom.sf(counts - 1, n, p)  # P(Bin(N, p_c) >= n_c)
    return {
        "modes": int(np.sum(counts >= min_count)),
        "robust_modes": int(np.sum(mode_pvalues < alpha / m)),
        "hq_fraction": hq / n,
        "noise_hq_fraction": noise,
        "reverse_kl": _kl_to_uniform(counts) if hq else math.log(m),
        "at_noise_level": bool(scipy.stats.binom.sf(hq - 1, n, noise) >= alpha),
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
        raise ValueError(
            f"channel_preds must be [N, 3] (one digit per channel); got shape {preds.shape}."
        )
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
        raise ValueError(
            f"pred_labels and target_labels must be non-empty [N] arrays of "
            f"one length; got shapes {pred.shape} and {target.shape}."
        )
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
