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
  comparisons that make up one claim (:func:`holm`);
* **equivalence** within a smallest effect of interest by two one-sided
  tests (:func:`equivalence_test`);
* the **seeds** a later study needs for a given power from a pilot's paired
  differences (:func:`seeds_for_power`, with :func:`corrected_effect_size`
  and :func:`t_test_power`);
* unstable-run counts of two cells compared by **Fisher's exact test**
  (:func:`fisher_exact`).

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
from scipy import stats as scipy_stats

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
        raise ValueError(f"paired samples need equal lengths; got len(a)={a.size}, len(b)={b.size}")
    with np.errstate(invalid="ignore"):  # inf - inf is reported below
        d = a - b
    nan_at = np.flatnonzero(np.isnan(d))
    if nan_at.size:
        raise ValueError(f"a - b is NaN (inf - inf) at positions {nan_at.tolist()}")
    return d


def _finite(d: np.ndarray, what: str) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(d))
    if bad.size:
        raise ValueError(
            f"{what} needs finite differences; a - b is infinite at positions "
            f"{bad.tolist()}: {d[bad].tolist()}"
        )
    return d


def _median(x: np.ndarray, name: str) -> float:
    median = float(np.median(x))
    if math.isnan(median):
        raise ValueError(
            f"the median of {name} is undefined: its middle values are -inf "
            f"and +inf ({np.sort(x).tolist()})"
        )
    return median


def _check_confidence(confidence) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence!r}")


def _check_n_resamples(n_resamples) -> None:
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, (int, np.integer))
        or n_resamples < 1
    ):
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
    return _interpolate(float(sorted_values[index]), float(sorted_values[upper]), position - index)


def bootstrap_ci(
    x,
    statistic: str | Callable[..., np.ndarray] = "median",
    confidence: float = 0.95,
    n_resamples: int = 10000,
    seed: int = 0,
) -> tuple[float, float]:
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
        raise ValueError(
            f"statistic must reduce the [{n_resamples}, {values.size}] resamples "
            f"along axis=-1 to shape ({n_resamples},); got shape {boot.shape}"
        )
    nan_count = int(np.isnan(boot).sum())
    if nan_count:
        raise ValueError(
            f"the statistic is NaN on {nan_count} of {n_resamples} resamples of x={values.tolist()}"
        )
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


def paired_difference(
    a, b, confidence: float = 0.95, n_resamples: int = 10000, seed: int = 0
) -> Summary:
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
def _t_test_pvalue(d: np.ndarray, alternative: str, null: float = 0.0) -> float:
    """The one-sample t-test of ``E[d] = null`` (``sd`` from ``d`` itself, so a shifted
    null keeps a constant ``d`` exactly constant)."""
    n = d.size
    if n < 2:
        raise ValueError(f"the paired t-test needs at least 2 pairs; got n={n}")
    mean, sd = float(d.mean()) - null, float(d.std(ddof=1))
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
        raise ValueError(
            f"the exact sign-flip test enumerates 2**n sign patterns and allows "
            f"n <= {_MAX_SIGN_FLIP_N}; got n={d.size}"
        )
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
        raise ValueError(
            f"p-values must lie in [0, 1]; got {p[bad].tolist()} at positions {bad.tolist()}"
        )
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
        raise ValueError(
            f"effect_size needs at least 2 pairs for a standard deviation; got n={d.size}"
        )
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / sd


def equivalence_test(a, b, margin: float) -> float:
    """p-value of H0 "the mean paired difference lies outside ``±margin``" (TOST).

    Two one-sided paired t-tests (Schuirmann 1987) of ``d = a - b``:

    .. math::
      p = \\max\\big(p(\\mathbb E[d] > -\\delta),\\; p(\\mathbb E[d] < \\delta)\\big)

    where ``delta = margin`` and each ``p`` is the one-sided one-sample
    t-test of :func:`paired_test` against the bound (``t = (d̄ ± delta) /
    (s_d / sqrt(n))``, as ``scipy.stats.ttest_1samp(d, ∓delta)``). Rejecting at ``alpha`` (``p < alpha``) shows ``|E[d]| <
    delta`` at level ``alpha``; the two tests need no multiplicity correction
    between them (an intersection-union test). With ``n`` pairs and a margin
    given as ``k * s_d`` (a standardized margin), ``t = d̄ / (s_d / sqrt(n))``
    must satisfy ``|t| < k sqrt(n) - t_{n-1, 1-alpha}``: at ``k = 0.5`` this
    is impossible below ``n = 13`` at ``alpha = 0.05``.

    Args:
      a, b: paired samples of equal length, finite, at least 2 pairs.
      margin: the smallest effect of interest ``delta > 0``, in the units of
        ``d``.

    Returns:
      The TOST p-value as a Python float (a constant ``d`` strictly inside
      the margin gives 0, on or outside it 1, as the limits of the t-test).

    Raises:
      ValueError: ``margin`` not a positive finite number; otherwise as
        :func:`paired_test` with ``method='t'``.
    """
    if not (
        isinstance(margin, (int, float, np.floating, np.integer))
        and math.isfinite(margin)
        and margin > 0
    ):
        raise ValueError(f"margin must be a positive finite number; got {margin!r}")
    d = _finite(_differences(a, b), "equivalence_test")
    return max(_t_test_pvalue(d, "greater", -margin), _t_test_pvalue(d, "less", margin))


def _hedges_factor(df: int) -> float:
    """``J(df) = Γ(df/2) / (sqrt(df/2) Γ((df-1)/2))``, the exact small-sample correction."""
    return math.exp(math.lgamma(df / 2) - math.lgamma((df - 1) / 2)) / math.sqrt(df / 2)


def corrected_effect_size(d) -> float:
    """The small-sample corrected paired effect ``g_z = J(n - 1) d_z`` of differences ``d``.

    .. math::
      g_z = J(n-1)\\, \\frac{\\bar d}{s_d}, \\qquad
      J(\\nu) = \\frac{\\Gamma(\\nu/2)}{\\sqrt{\\nu/2}\\,\\Gamma((\\nu-1)/2)}
      \\approx 1 - \\frac{3}{4\\nu - 1}

    (Hedges 1981; Hedges & Olkin 1985, eq. 5.10): ``d_z`` over ``n`` pairs
    overestimates ``|E[d]| / sd(d)`` by the factor ``1 / J(n - 1)``
    (0.80 at n = 5, 0.90 at n = 9); ``g_z`` removes that bias.

    Args:
      d: paired differences (1-D, finite), at least 3 (``J(1)`` is undefined).

    Raises:
      ValueError: fewer than 3 differences, NaN or infinite ones, or zero
        variance (an infinite effect gives no finite sample size).
    """
    d = _finite(_sample(d, "d"), "corrected_effect_size")
    if d.size < 3:
        raise ValueError(f"the corrected effect size needs at least 3 differences; got {d.size}")
    d_z = effect_size(d, np.zeros_like(d))
    if not math.isfinite(d_z):
        raise ValueError(f"the differences have zero variance ({d.tolist()}): d_z is infinite")
    return _hedges_factor(d.size - 1) * d_z


def t_test_power(effect: float, n: int, alpha: float) -> float:
    """Power of the one-sided paired t-test at level ``alpha`` with ``n`` pairs.

    .. math::
      1 - \\beta = P\\big(T'_{n-1}(\\lambda) > t_{n-1,\\,1-\\alpha}\\big),
      \\qquad \\lambda = \\delta_z \\sqrt n

    where ``T'`` is the noncentral t with ``n - 1`` degrees of freedom and
    noncentrality ``lambda``, ``delta_z = effect`` the true standardized
    effect in the tested direction (``E[d] / sd(d)``), and ``t_{n-1, 1-alpha}``
    the central t quantile. Normal, independent differences assumed.

    Raises:
      ValueError: ``n < 2`` or ``alpha`` outside (0, 1).
    """
    if n < 2:
        raise ValueError(f"the paired t-test needs n >= 2 pairs; got n={n}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}")
    critical = scipy_stats.t.ppf(1.0 - alpha, n - 1)
    return float(scipy_stats.nct.sf(critical, n - 1, effect * math.sqrt(n)))


class SeedPlan(TypedDict):
    """What :func:`seeds_for_power` chose and from what."""

    seeds: int
    d_z: float
    d_z_corrected: float
    alpha_step: float
    power: float
    pilot_n: int


def seeds_for_power(
    pilot_differences,
    alpha: float = 0.05,
    power: float = 0.8,
    holm_rank: int = 1,
    family_size: int = 1,
    max_seeds: int = 10000,
) -> SeedPlan:
    """Seeds a cell needs for ``power`` at the Holm step it will face, from a pilot.

    From the pilot's paired differences ``d`` (``n_0`` seeds):

    1. the small-sample corrected effect ``g_z = J(n_0 - 1) d_z``
       (:func:`corrected_effect_size`), taken as ``|g_z|``: the planned test is
       one-sided in the direction the pilot shows;
    2. the level of Holm's step ``holm_rank`` in a family of ``m =
       family_size`` tests, ``alpha' = alpha / (m - holm_rank + 1)`` (rank 1,
       the smallest p-value, faces ``alpha / m``);
    3. the smallest ``n >= 2`` whose one-sided paired t-test at ``alpha'`` has
       power ``>= power`` against ``|g_z|`` (:func:`t_test_power`; power
       grows with ``n``, so the first ``n`` found by doubling and bisection
       is the smallest).

    A pilot effect chosen as the best of several cells is still inflated
    after the correction (winner's curse); plan from a cell chosen before
    looking, or read the answer as a lower bound.

    Args:
      pilot_differences: the pilot's paired differences (>= 3, finite, not
        constant).
      alpha: the family-wise level.
      power: the wanted power ``1 - beta``, in (0, 1).
      holm_rank: the cell's rank among the family's p-values (1 = smallest).
      family_size: ``m``, the tests in the Holm family.
      max_seeds: give up above this many.

    Returns:
      :class:`SeedPlan`: ``seeds`` (the n), ``d_z`` and ``d_z_corrected`` of
      the pilot, ``alpha_step``, ``power`` (attained at ``seeds``) and
      ``pilot_n``.

    Raises:
      ValueError: as :func:`corrected_effect_size`; ``alpha`` or ``power``
        outside (0, 1); ``holm_rank`` outside ``1..family_size``; a zero
        effect or one needing more than ``max_seeds``.
    """
    d = _finite(_sample(pilot_differences, "pilot_differences"), "seeds_for_power")
    for name, value in (("alpha", alpha), ("power", power)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must lie in (0, 1); got {value!r}")
    if not 1 <= holm_rank <= family_size:
        raise ValueError(f"holm_rank must lie in 1..family_size={family_size}; got {holm_rank}")
    corrected = corrected_effect_size(d)
    effect = abs(corrected)
    alpha_step = alpha / (family_size - holm_rank + 1)

    def enough(n):
        return t_test_power(effect, n, alpha_step) >= power

    high = 2
    while not enough(high):
        if high >= max_seeds:
            raise ValueError(
                f"an effect of |g_z| = {effect:.3g} needs more than "
                f"{max_seeds} seeds for power {power} at alpha' = {alpha_step:.3g}"
            )
        high = min(2 * high, max_seeds)
    low = high // 2  # not enough (or below 2)
    while high - low > 1:
        middle = (low + high) // 2
        if middle >= 2 and enough(middle):
            high = middle
        else:
            low = middle
    return SeedPlan(
        seeds=high,
        d_z=effect_size(d, np.zeros_like(d)),
        d_z_corrected=corrected,
        alpha_step=alpha_step,
        power=t_test_power(effect, high, alpha_step),
        pilot_n=int(d.size),
    )


def fisher_exact(k_a: int, n_a: int, k_b: int, n_b: int, alternative: str = "two-sided") -> float:
    """Fisher's exact test of two proportions ``k_a / n_a`` and ``k_b / n_b``.

    Conditioning on the margins of the 2x2 table ``[[k_a, n_a - k_a], [k_b,
    n_b - k_b]]``, ``k_a`` is hypergeometric under H0 "equal proportions":

    .. math::
      P(X = x) = \\binom{K}{x}\\binom{N - K}{n_a - x} \\Big/ \\binom{N}{n_a},
      \\qquad K = k_a + k_b, \\; N = n_a + n_b.

    ``'greater'`` (``a``'s proportion higher): ``P(X >= k_a)``; ``'less'``:
    ``P(X <= k_a)``; ``'two-sided'``: the sum of ``P(X = x)`` over every
    ``x`` no more probable than the observed (relative tolerance 1e-7, as
    ``scipy.stats.fisher_exact``). E.g. 2/5 unstable vs 0/5: p = 0.444.

    Raises:
      ValueError: counts not integers with ``0 <= k <= n``, ``n >= 1``; an
        unknown alternative.
    """
    _check_choice(alternative, _ALTERNATIVES, "alternative")
    for k, n in ((k_a, n_a), (k_b, n_b)):
        if not (
            isinstance(k, (int, np.integer))
            and isinstance(n, (int, np.integer))
            and 0 <= k <= n
            and n >= 1
        ):
            raise ValueError(f"counts must be integers 0 <= k <= n, n >= 1; got k={k!r}, n={n!r}")
    total, positives = n_a + n_b, k_a + k_b
    support = range(max(0, positives - n_b), min(positives, n_a) + 1)
    probability = {
        x: math.comb(positives, x) * math.comb(total - positives, n_a - x) / math.comb(total, n_a)
        for x in support
    }
    if alternative == "greater":
        p = sum(v for x, v in probability.items() if x >= k_a)
    elif alternative == "less":
        p = sum(v for x, v in probability.items() if x <= k_a)
    else:
        observed = probability[k_a] * (1 + 1e-7)
        p = sum(v for v in probability.values() if v <= observed)
    return float(min(1.0, p))
