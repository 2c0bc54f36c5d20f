"""Seed statistics: what the study reports about a metric measured over seeds.

Every configuration ("cell") is trained with the same few seeds. For each cell
the study reports

* the **median over seeds** with its **95 % percentile-bootstrap CI**
  (:func:`cell`, built on :func:`bootstrap_ci`);
* the **paired difference** against the unregularised run of the *same seed*,
  ``d_s = metric(penalised, seed s) - metric(unregularised, seed s)``, as the
  median of ``d`` with its bootstrap CI (:func:`paired_difference`) and the
  standardized effect ``d_z`` (:func:`effect_size`);
* a **p-value** for "no difference" from a paired test (:func:`paired_test`;
  the paired t-test by default, because the exact sign-flip test cannot go
  below ``2 / 2**n`` with ``n`` seeds), **Holm-adjusted** over the family of
  comparisons that make up one claim (:func:`holm`).

A claim ("L1 improves FID on digits") is made only where the Holm-adjusted
test rejects at the stated level; a CI that excludes zero is not enough.

All functions take 1-D samples (lists or arrays), work in float64 with numpy,
and return Python floats. Bootstrap resampling is explicit: one
``numpy.random.default_rng(seed)`` per call, so a CI is a pure function of its
arguments.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypedDict

import numpy as np
from scipy import special

_STATISTICS: dict[str, Callable[..., np.ndarray]] = {"median": np.median, "mean": np.mean}
_TEST_METHODS = ("t", "sign_flip")
_ALTERNATIVES = ("two-sided", "greater", "less")
_MAX_SIGN_FLIP_N = 20
# Sign-flip sums that differ by less than this fraction of sum|d| are ties: far
# above the rounding of a sum of <= 20 terms (~ n * eps), far below a real gap.
_TIE_RTOL = 1e-10


class Summary(TypedDict):
    """A median (of a sample or of paired differences) with its bootstrap CI."""
    median: float
    low: float
    high: float
    n: int


# --------------------------------------------------------------------------- #
# Input checks
# --------------------------------------------------------------------------- #
def _sample(x, name: str) -> np.ndarray:
    """``x`` as a non-empty 1-D float64 array without NaN (infinities pass)."""
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sample; got shape {values.shape}")
    if values.size == 0:
        raise ValueError(f"{name} is empty; a statistic needs at least one value")
    nan_at = np.flatnonzero(np.isnan(values))
    if nan_at.size:
        raise ValueError(f"{name} holds NaN at positions {nan_at.tolist()}: {values.tolist()}")
    return values


def _differences(a, b) -> np.ndarray:
    """``d = a - b`` paired by position, without NaN."""
    a, b = _sample(a, "a"), _sample(b, "b")
    if a.size != b.size:
        raise ValueError(f"paired samples need equal lengths; got len(a)={a.size}, "
                         f"len(b)={b.size}")
    with np.errstate(invalid="ignore"):  # inf - inf is reported below
        d = a - b
    nan_at = np.flatnonzero(np.isnan(d))
    if nan_at.size:
        raise ValueError(f"a - b is NaN (inf - inf) at positions {nan_at.tolist()}")
    return d


def _finite(d: np.ndarray, what: str) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(d))
    if bad.size:
        raise ValueError(f"{what} needs finite differences; a - b is infinite at positions "
                         f"{bad.tolist()}: {d[bad].tolist()}")
    return d


def _median(x: np.ndarray, name: str) -> float:
    median = float(np.median(x))
    if math.isnan(median):
        raise ValueError(f"the median of {name} is undefined: its middle values are -inf "
                         f"and +inf ({np.sort(x).tolist()})")
    return median


def _check_confidence(confidence) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence!r}")


def _check_n_resamples(n_resamples) -> None:
    if (isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer))
            or n_resamples < 1):
        raise ValueError(f"n_resamples must be an integer >= 1; got {n_resamples!r}")


def _check_choice(value, choices: tuple[str, ...], name: str) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")


# --------------------------------------------------------------------------- #
# Bootstrap
# --------------------------------------------------------------------------- #
def _interpolate(below: float, above: float, fraction: float) -> float:
    """Linear interpolation as ``numpy.quantile`` does, but keeping infinities.

    numpy turns ``inf - inf`` into NaN even between two equal infinite
    neighbours; here equal neighbours give themselves, an infinite neighbour
    wins over a finite one, and between -inf and +inf the nearer one is taken.
    """
    if fraction == 0.0 or below == above:
        return below
    if math.isinf(below) and math.isinf(above):
        return below if fraction < 0.5 else above
    if math.isinf(below) or math.isinf(above):
        return below if math.isinf(below) else above
    if fraction < 0.5:
        return below + (above - below) * fraction
    return above - (above - below) * (1.0 - fraction)


def _quantile(sorted_values: np.ndarray, q: float) -> float:
    """The ``q`` quantile of sorted values (Hyndman–Fan type 7, numpy's default)."""
    position = (sorted_values.size - 1) * q
    index = math.floor(position)
    upper = min(index + 1, sorted_values.size - 1)
    return _interpolate(float(sorted_values[index]), float(sorted_values[upper]),
                        position - index)


def bootstrap_ci(x, statistic: str | Callable[..., np.ndarray] = "median",
                 confidence: float = 0.95, n_resamples: int = 10000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of a statistic of a 1-D sample.

    .. math::
      x^{*b}_i = x_{I_{bi}}, \\quad I_{bi} \\sim \\mathcal U\\{0, \\dots, n-1\\},
      \\qquad \\theta^{*b} = T(x^{*b}), \\qquad
      [\\mathrm{low}, \\mathrm{high}] = \\big[q_{\\alpha/2}(\\theta^*),\\;
      q_{1-\\alpha/2}(\\theta^*)\\big]

    where ``n = len(x)``, ``b = 1..B`` with ``B = n_resamples``, ``T`` is the
    statistic, ``alpha = 1 - confidence`` and ``q_p`` is the linear-interpolated
    (numpy default) quantile of the ``B`` bootstrap values. The index matrix
    ``I`` is drawn at once as ``default_rng(seed).integers(0, n, (B, n))``
    (the same draw as ``scipy.stats.bootstrap``), so it holds ``B * n``
    integers.

    Args:
      x: the sample, 1-D, at least one value, no NaN. Infinite values are
        allowed (a diverged run scored +inf): resamples holding them give an
        infinite statistic, and a quantile next to an infinite bootstrap value
        is that infinity (numpy would give NaN).
      statistic: ``'median'``, ``'mean'``, or a callable ``T(samples, axis=-1)``
        that reduces the last axis of the ``[B, n]`` resample matrix to ``[B]``
        values, as ``np.median`` does (it is called once on all resamples).
      confidence: the coverage ``1 - alpha``, in (0, 1).
      n_resamples: ``B >= 1``.
      seed: seed of ``numpy.random.default_rng``.

    Returns:
      ``(low, high)`` as Python floats. A one-value sample gives ``(T([x0]),
      T([x0]))``, that is ``(x0, x0)`` for the median and the mean; a constant
      sample ``c`` gives ``(c, c)`` for the median.

    Raises:
      ValueError: ``x`` empty, not 1-D or holding NaN; ``confidence`` outside
        (0, 1); ``n_resamples < 1``; an unknown statistic name; a callable whose
        output is not ``[B]``; a statistic that is NaN on some resample (the
        mean or an even-length median of a sample holding both -inf and +inf).
    """
    values = _sample(x, "x")
    _check_confidence(confidence)
    _check_n_resamples(n_resamples)
    if isinstance(statistic, str):
        _check_choice(statistic, tuple(_STATISTICS), "statistic")
        statistic = _STATISTICS[statistic]
    elif not callable(statistic):
        raise ValueError(f"statistic must be 'median', 'mean' or a callable; got {statistic!r}")

    indices = np.random.default_rng(seed).integers(0, values.size, (n_resamples, values.size))
    with np.errstate(invalid="ignore"):  # NaN from -inf + inf is reported below
        boot = np.asarray(statistic(values[indices], axis=-1), dtype=np.float64)
    if boot.shape != (n_resamples,):
        raise ValueError(f"statistic must reduce the [{n_resamples}, {values.size}] resamples "
                         f"along axis=-1 to shape ({n_resamples},); got shape {boot.shape}")
    nan_count = int(np.isnan(boot).sum())
    if nan_count:
        raise ValueError(f"the statistic is NaN on {nan_count} of {n_resamples} resamples of "
                         f"x={values.tolist()}")
    boot.sort()
    alpha = 1.0 - confidence
    return _quantile(boot, alpha / 2), _quantile(boot, 1.0 - alpha / 2)


def cell(x, confidence: float = 0.95, n_resamples: int = 10000, seed: int = 0) -> Summary:
    """The median over seeds of one cell, with its percentile-bootstrap CI.

    This is what tables and figures report per configuration.

    Returns:
      ``{'median', 'low', 'high', 'n'}``: ``median(x)``, the
      :func:`bootstrap_ci` of the median, and ``n = len(x)``.

    Raises:
      ValueError: as :func:`bootstrap_ci`.
    """
    values = _sample(x, "x")
    low, high = bootstrap_ci(values, "median", confidence, n_resamples, seed)
    return Summary(median=_median(values, "x"), low=low, high=high, n=int(values.size))


def paired_difference(a, b, confidence: float = 0.95, n_resamples: int = 10000,
                      seed: int = 0) -> Summary:
    """Median paired difference ``d = a - b`` with its percentile-bootstrap CI.

    .. math::
      d_s = a_s - b_s, \\qquad \\mathrm{median} = \\operatorname{median}_s d_s

    where ``s`` runs over positions (seeds): ``a[s]`` and ``b[s]`` must come from
    the same seed, e.g. the penalised and the unregularised run. The CI is
    :func:`bootstrap_ci` of the median of ``d`` (pairs are resampled together).

    Returns:
      ``{'median', 'low', 'high', 'n'}`` with ``n = len(a)``.

    Raises:
      ValueError: ``len(a) != len(b)``; ``a - b`` NaN anywhere (``inf - inf``);
        otherwise as :func:`bootstrap_ci`.
    """
    d = _differences(a, b)
    low, high = bootstrap_ci(d, "median", confidence, n_resamples, seed)
    return Summary(median=_median(d, "a - b"), low=low, high=high, n=int(d.size))


# --------------------------------------------------------------------------- #
# Tests and effect size
# --------------------------------------------------------------------------- #
def _t_test_pvalue(d: np.ndarray, alternative: str) -> float:
    n = d.size
    if n < 2:
        raise ValueError(f"the paired t-test needs at least 2 pairs; got n={n}")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0.0:
        if mean == 0.0:
            return 1.0
        t = math.copysign(math.inf, mean)  # the limit sd -> 0
    else:
        t = mean / (sd / math.sqrt(n))
    if alternative == "greater":
        return float(special.stdtr(n - 1, -t))
    if alternative == "less":
        return float(special.stdtr(n - 1, t))
    return float(min(1.0, 2.0 * special.stdtr(n - 1, -abs(t))))


def _sign_flip_sums(d: np.ndarray) -> np.ndarray:
    """All ``2**n`` sums ``sum_i s_i d_i`` over signs ``s``; element 0 is all ``+``."""
    sums = np.zeros(1)
    for value in d:
        sums = np.concatenate([sums + value, sums - value])
    return sums


def _sign_flip_pvalue(d: np.ndarray, alternative: str) -> float:
    if d.size > _MAX_SIGN_FLIP_N:
        raise ValueError(f"the exact sign-flip test enumerates 2**n sign patterns and allows "
                         f"n <= {_MAX_SIGN_FLIP_N}; got n={d.size}")
    sums = _sign_flip_sums(d)
    # The observed sum is taken from the enumeration so it rounds like the rest.
    observed, tolerance = sums[0], _TIE_RTOL * float(np.abs(d).sum())
    if alternative == "greater":
        extreme = sums >= observed - tolerance
    elif alternative == "less":
        extreme = sums <= observed + tolerance
    else:
        extreme = np.abs(sums) >= abs(observed) - tolerance
    return float(extreme.mean())


def paired_test(a, b, method: str = "t", alternative: str = "two-sided") -> float:
    """p-value of H0 "no difference" between paired samples ``a`` and ``b``.

    With ``d = a - b`` (paired by position, ``n = len(d)``):

    * ``method='t'`` (default), the paired t-test, equal to
      ``scipy.stats.ttest_rel(a, b)``:

      .. math::
        t = \\frac{\\bar d}{s_d / \\sqrt n}, \\qquad
        s_d^2 = \\frac{1}{n-1} \\sum_s (d_s - \\bar d)^2, \\qquad
        t \\sim t_{n-1} \\text{ under } H_0: \\mathbb E[d] = 0.

      It assumes the ``d_s`` independent and normally distributed (or ``n``
      large enough for the mean to be), and tests their *mean* (the study
      reports the median); heavy tails or outliers make it unreliable. It
      needs ``n >= 2``. Zero variance: all ``d == 0`` gives ``p = 1``; a
      nonzero constant ``d`` is the limit ``|t| -> inf``, i.e. ``p = 0``
      two-sided and on the side of its sign (``1`` on the other side).
      (scipy returns NaN in both cases.)

    * ``method='sign_flip'``, the exact paired permutation test of the mean
      difference: under H0 each ``d_s`` is symmetric about 0, so all ``2**n``
      sign patterns ``sigma`` are equally likely, and

      .. math::
        p_{\\text{two-sided}} = 2^{-n} \\#\\{\\sigma : |\\textstyle\\sum_s \\sigma_s d_s|
        \\ge |\\textstyle\\sum_s d_s|\\}

      (``>=`` / ``<=`` the signed sum for ``'greater'`` / ``'less'``; sums within
      ``1e-10 * sum|d|`` count as ties). It equals ``scipy.stats.permutation_test``
      with ``permutation_type='samples'`` run exhaustively. It allows
      ``n <= 20``. Its smallest attainable p is ``2 / 2**n`` two-sided
      (``1 / 2**n`` one-sided): 0.0625 at n = 5, 0.0078 at n = 8, so with five
      seeds it can never reject at 0.05 — which is why the study's default is
      the t-test.

    Args:
      a, b: paired samples of equal length, finite.
      method: ``'t'`` or ``'sign_flip'``.
      alternative: ``'two-sided'``, ``'greater'`` (``a`` tends to exceed ``b``,
        ``E[d] > 0``) or ``'less'``.

    Returns:
      The p-value as a Python float.

    Raises:
      ValueError: unknown method or alternative; unequal lengths; NaN or
        infinite differences; ``n < 2`` for the t-test; ``n > 20`` for the
        sign-flip test.
    """
    _check_choice(method, _TEST_METHODS, "method")
    _check_choice(alternative, _ALTERNATIVES, "alternative")
    d = _finite(_differences(a, b), "paired_test")
    if method == "t":
        return _t_test_pvalue(d, alternative)
    return _sign_flip_pvalue(d, alternative)


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni step-down adjusted p-values of a family of ``m`` tests.

    .. math::
      \\tilde p_{(i)} = \\min\\Big(1,\\; \\max_{j \\le i} (m - j + 1)\\, p_{(j)}\\Big)

    where ``p_(1) <= ... <= p_(m)`` are the p-values sorted ascending (ties in
    input order). Rejecting every hypothesis with ``p~ <= alpha`` is Holm's
    procedure at family-wise error rate ``alpha``. The adjusted values are
    non-decreasing in the sorted order, at most 1, and returned in the input
    order.

    Args:
      pvalues: 1-D, each in [0, 1]. An empty family gives an empty array.

    Returns:
      float64 array of the adjusted p-values, shaped like ``pvalues``.

    Raises:
      ValueError: not 1-D, NaN, or a value outside [0, 1].
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-D; got shape {p.shape}")
    bad = np.flatnonzero(~((p >= 0.0) & (p <= 1.0)))  # NaN fails both comparisons
    if bad.size:
        raise ValueError(f"p-values must lie in [0, 1]; got {p[bad].tolist()} at positions "
                         f"{bad.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def effect_size(a, b) -> float:
    """Standardized paired effect, Cohen's ``d_z``, of ``d = a - b``.

    .. math::
      d_z = \\frac{\\bar d}{s_d}, \\qquad
      s_d = \\sqrt{\\tfrac{1}{n-1} \\textstyle\\sum_s (d_s - \\bar d)^2}

    (the t statistic of :func:`paired_test` is ``d_z * sqrt(n)``). When
    ``s_d = 0`` the effect is ``+inf`` / ``-inf`` for a positive / negative
    constant difference and ``0.0`` when all ``d == 0``.

    Raises:
      ValueError: unequal lengths, fewer than 2 pairs, NaN or infinite
        differences.
    """
    d = _finite(_differences(a, b), "effect_size")
    if d.size < 2:
        raise ValueError(f"effect_size needs at least 2 pairs for a standard deviation; "
                         f"got n={d.size}")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / sd
