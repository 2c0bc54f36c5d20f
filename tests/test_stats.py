"""Seed statistics of regan_jax.stats against scipy and hand-computed references."""

import math

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats.power import TTestPower

from regan_jax import stats


def _normal(seed, n, scale=1.0, shift=0.0):
    return shift + scale * np.random.default_rng(seed).standard_normal(n)


def _mean_difference(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


# --- bootstrap_ci ----------------------------------------------------------------------


@pytest.mark.parametrize("statistic", ["median", "mean"])
@pytest.mark.parametrize("n", [5, 8, 40])
def test_bootstrap_ci_matches_scipy_percentile_within_monte_carlo_error(statistic, n):
    x = _normal(n, n, scale=2.0, shift=1.0)
    low, high = stats.bootstrap_ci(x, statistic, n_resamples=20000, seed=1)
    ref = scipy.stats.bootstrap(
        (x,),
        getattr(np, statistic),
        n_resamples=20000,
        method="percentile",
        rng=np.random.default_rng(2),
    )
    # Independent draws on both sides: the endpoints differ by Monte-Carlo error
    # only, observed below 1.5 % of the sample range.
    tolerance = 0.03 * np.ptp(x)
    assert isinstance(low, float) and isinstance(high, float)
    assert low == pytest.approx(ref.confidence_interval.low, abs=tolerance)
    assert high == pytest.approx(ref.confidence_interval.high, abs=tolerance)
    assert low <= getattr(np, statistic)(x) <= high


def test_bootstrap_ci_is_the_documented_draw():
    # The documented resampling: one default_rng(seed) index matrix of shape [B, n],
    # percentiles by numpy's linear interpolation. Pins a seed's CI across versions.
    x, n_resamples, seed = _normal(3, 12), 500, 7
    indices = np.random.default_rng(seed).integers(0, x.size, (n_resamples, x.size))
    boot = np.median(x[indices], axis=-1)
    expected = np.quantile(boot, [0.05, 0.95])
    got = stats.bootstrap_ci(x, "median", confidence=0.9, n_resamples=n_resamples, seed=seed)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_bootstrap_ci_callable_statistic_reduces_last_axis():
    x = _normal(4, 10)
    trimmed = stats.bootstrap_ci(x, lambda s, axis: np.quantile(s, 0.5, axis=axis), n_resamples=300)
    assert trimmed == stats.bootstrap_ci(x, "median", n_resamples=300)
    with pytest.raises(ValueError, match="shape"):
        stats.bootstrap_ci(x, lambda s, axis: s, n_resamples=300)


def test_bootstrap_ci_degenerate_samples():
    assert stats.bootstrap_ci([0.3] * 7) == (0.3, 0.3)
    assert stats.bootstrap_ci([2.5]) == (2.5, 2.5)
    assert stats.bootstrap_ci([2.5], "mean") == (2.5, 2.5)
    np.testing.assert_allclose(stats.bootstrap_ci([0.1] * 6, "mean"), (0.1, 0.1), rtol=1e-15)


def test_bootstrap_ci_is_reproducible_and_seeded():
    x = _normal(5, 9)
    assert stats.bootstrap_ci(x, seed=3) == stats.bootstrap_ci(list(x), seed=3)
    assert stats.bootstrap_ci(x, "mean", seed=3) != stats.bootstrap_ci(x, "mean", seed=4)


def test_bootstrap_ci_covers_the_true_median_for_most_seeds():
    hits = 0
    for seed in range(200):
        low, high = stats.bootstrap_ci(_normal(10_000 + seed, 20), n_resamples=1000, seed=seed)
        hits += low <= 0.0 <= high
    assert 0.85 <= hits / 200 <= 0.99


def test_bootstrap_ci_keeps_infinities():
    # Diverged runs scored +inf: the median CI's upper end becomes inf, never NaN.
    x = [1.0, 2.0, 3.0, math.inf, math.inf]
    low, high = stats.bootstrap_ci(x, n_resamples=2000)
    assert 1.0 <= low <= 3.0 and high == math.inf
    assert stats.bootstrap_ci([math.inf] * 3) == (math.inf, math.inf)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=[]), "empty"),
        (dict(x=[1.0, math.nan, 2.0]), r"NaN at positions \[1\]"),
        (dict(x=[[1.0, 2.0]]), r"1-D.*\(1, 2\)"),
        (dict(x=[1.0, 2.0], confidence=1.0), "confidence.*1.0"),
        (dict(x=[1.0, 2.0], confidence=0.0), "confidence.*0.0"),
        (dict(x=[1.0, 2.0], confidence=math.nan), "confidence.*nan"),
        (dict(x=[1.0, 2.0], n_resamples=0), "n_resamples.*0"),
        (dict(x=[1.0, 2.0], n_resamples=10.5), "n_resamples.*10.5"),
        (dict(x=[1.0, 2.0], statistic="mode"), "statistic.*'mode'"),
        (dict(x=[-math.inf, math.inf], statistic="mean"), "NaN on"),
    ],
)
def test_bootstrap_ci_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stats.bootstrap_ci(**kwargs)


# --- cell and paired_difference --------------------------------------------------------


def test_cell_is_median_with_its_bootstrap_ci():
    x = _normal(6, 8)
    summary = stats.cell(x, n_resamples=500, seed=2)
    low, high = stats.bootstrap_ci(x, "median", n_resamples=500, seed=2)
    assert summary == {"median": float(np.median(x)), "low": low, "high": high, "n": 8}
    assert isinstance(summary["median"], float) and isinstance(summary["n"], int)


def test_paired_difference_median_matches_numpy():
    a, b = _normal(7, 10, shift=0.5), _normal(8, 10)
    result = stats.paired_difference(a, b, n_resamples=500, seed=1)
    assert result["median"] == float(np.median(a - b)) and result["n"] == 10
    assert (result["low"], result["high"]) == stats.bootstrap_ci(a - b, n_resamples=500, seed=1)
    assert result["low"] <= result["median"] <= result["high"]


def test_paired_difference_of_a_shift_is_the_shift():
    b = np.arange(10) * 0.5  # exact in binary, so a - b == 3 exactly
    assert stats.paired_difference(b + 3, b) == {"median": 3.0, "low": 3.0, "high": 3.0, "n": 10}


def test_paired_difference_rejects_unequal_lengths_and_inf_minus_inf():
    with pytest.raises(ValueError, match=r"len\(a\)=3, len\(b\)=4"):
        stats.paired_difference([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match=r"inf - inf.*\[1\]"):
        stats.paired_difference([1.0, math.inf], [0.0, math.inf])


# --- paired_test -----------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("n, shift", [(5, 0.8), (8, 0.3), (30, -0.2)])
def test_t_test_matches_scipy_ttest_rel(n, shift, alternative):
    a, b = _normal(10 + n, n, shift=shift), _normal(20 + n, n)
    expected = scipy.stats.ttest_rel(a, b, alternative=alternative).pvalue
    assert stats.paired_test(a, b, "t", alternative) == pytest.approx(expected, rel=0, abs=1e-12)


def test_t_test_zero_variance():
    b = np.arange(6.0)
    assert stats.paired_test(b, b) == 1.0
    assert stats.paired_test(b, b, alternative="greater") == 1.0
    assert stats.paired_test(b + 2, b) == 0.0
    assert stats.paired_test(b + 2, b, alternative="greater") == 0.0
    assert stats.paired_test(b + 2, b, alternative="less") == 1.0
    assert stats.paired_test(b - 2, b, alternative="less") == 0.0


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("n, shift", [(5, 0.5), (8, 0.3), (12, -0.4)])
def test_sign_flip_matches_exhaustive_scipy_permutation_test(n, shift, alternative):
    a, b = _normal(30 + n, n, shift=shift), _normal(40 + n, n)
    expected = scipy.stats.permutation_test(
        (a, b),
        _mean_difference,
        permutation_type="samples",
        n_resamples=np.inf,
        alternative=alternative,
        vectorized=True,
    ).pvalue
    got = stats.paired_test(a, b, "sign_flip", alternative)
    assert got == pytest.approx(expected, rel=0, abs=1e-12)


def test_sign_flip_smallest_p_and_ties():
    d = np.array([1.0, 2.0, 0.5, 3.0, 1.5])  # all positive: only +-all-signs are as extreme
    zeros = np.zeros(5)
    assert stats.paired_test(d, zeros, "sign_flip") == 2 / 2**5 == 0.0625
    assert stats.paired_test(d, zeros, "sign_flip", "greater") == 1 / 2**5
    assert stats.paired_test(d, zeros, "sign_flip", "less") == 1.0
    assert stats.paired_test(np.ones(8), np.zeros(8), "sign_flip") == 2 / 2**8
    assert stats.paired_test(zeros, zeros, "sign_flip") == 1.0
    # Integer differences tie exactly: |1 + 1 - 2| etc. By hand, d = (1, 1, 2):
    # sums over signs are 4, 0, 2, -2, 2, -2, 0, -4, so |sum| >= 4 twice of 8.
    assert stats.paired_test([1, 1, 2], [0, 0, 0], "sign_flip") == 0.25
    assert stats.paired_test([1, 1, 2], [0, 0, 0], "sign_flip", "less") == 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(a=[1, 2], b=[1, 2, 3]), r"len\(a\)=2, len\(b\)=3"),
        (dict(a=[1, 2], b=[0, 0], method="wilcoxon"), "method.*'wilcoxon'"),
        (dict(a=[1, 2], b=[0, 0], alternative="bigger"), "alternative.*'bigger'"),
        (dict(a=[1.0], b=[0.0]), "at least 2 pairs.*n=1"),
        (dict(a=np.ones(21), b=np.zeros(21), method="sign_flip"), "n <= 20.*n=21"),
        (dict(a=[1.0, math.inf], b=[0.0, 0.0]), r"infinite at positions \[1\]"),
        (dict(a=[1.0, math.nan], b=[0.0, 0.0]), "NaN"),
    ],
)
def test_paired_test_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stats.paired_test(**kwargs)


# --- holm ------------------------------------------------------------------------------


def _holm_rejects(p, alpha):
    """Holm's procedure at level alpha, step by step: which hypotheses it rejects."""
    rejected = np.zeros(len(p), bool)
    for step, index in enumerate(sorted(range(len(p)), key=lambda i: p[i])):
        if p[index] > alpha / (len(p) - step):
            break
        rejected[index] = True
    return rejected


def _holm_brute_force(p):
    """Adjusted p-value = smallest alpha at which Holm's procedure rejects (capped at 1).

    The rejection set only changes at alpha = (m - k) p_j, so those are the candidates.
    """
    m = len(p)
    candidates = sorted({min(1.0, (m - k) * pj) for pj in p for k in range(m)} | {1.0})
    adjusted = np.ones(m)
    for i in range(m):
        adjusted[i] = next((a for a in candidates if _holm_rejects(p, a)[i]), 1.0)
    return adjusted


def test_holm_hand_computed_example():
    np.testing.assert_allclose(
        stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], rtol=1e-15
    )


@pytest.mark.parametrize("seed", range(6))
def test_holm_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 9))
    p = np.round(rng.uniform(0, 0.3, m) ** 2, 2)  # rounding makes ties
    adjusted = stats.holm(p)
    np.testing.assert_allclose(adjusted, _holm_brute_force(p), rtol=1e-12)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= 0) and np.all(adjusted >= p)


def test_holm_caps_at_one_and_keeps_order():
    adjusted = stats.holm([0.9, 0.2, 0.6])
    np.testing.assert_allclose(adjusted, [1.0, 0.6, 1.0], rtol=1e-15)
    assert adjusted.dtype == np.float64
    assert stats.holm([0.04]).tolist() == [0.04]
    assert stats.holm([]).shape == (0,)


@pytest.mark.parametrize(
    "pvalues, match",
    [
        ([0.1, math.nan], r"\[nan\] at positions \[1\]"),
        ([0.1, 1.5], r"\[1.5\]"),
        ([-0.01], r"\[-0.01\]"),
        ([[0.1, 0.2]], "1-D"),
    ],
)
def test_holm_rejects_bad_input(pvalues, match):
    with pytest.raises(ValueError, match=match):
        stats.holm(pvalues)


# --- effect_size -----------------------------------------------------------------------


def test_effect_size_by_hand():
    # d = (2, 3, 2, 4): mean 2.75, s^2 = (0.5625 + 0.0625 + 0.5625 + 1.5625) / 3 = 2.75 / 3,
    # so d_z = 2.75 / sqrt(2.75 / 3) = sqrt(8.25).
    assert stats.effect_size([3, 5, 4, 7], [1, 2, 2, 3]) == pytest.approx(
        math.sqrt(8.25), rel=1e-14
    )
    a, b = _normal(50, 9, shift=0.4), _normal(51, 9)
    t = scipy.stats.ttest_rel(a, b).statistic
    assert stats.effect_size(a, b) == pytest.approx(t / math.sqrt(9), rel=1e-12)


def test_effect_size_zero_variance_and_bad_input():
    b = np.arange(4.0)
    assert stats.effect_size(b + 1, b) == math.inf
    assert stats.effect_size(b - 1, b) == -math.inf
    assert stats.effect_size(b, b) == 0.0
    with pytest.raises(ValueError, match="n=1"):
        stats.effect_size([1.0], [0.0])
    with pytest.raises(ValueError, match=r"len\(a\)=2, len\(b\)=1"):
        stats.effect_size([1.0, 2.0], [0.0])


# --- equivalence, power, Fisher ---------------------------------------------------------


def _tost_by_hand(d, margin):
    """Two one-sided t-tests written out with scipy's t distribution."""
    n, mean, sd = d.size, d.mean(), d.std(ddof=1)
    se = sd / math.sqrt(n)
    p_lower = scipy.stats.t.sf((mean + margin) / se, n - 1)  # H0: mean <= -margin
    p_upper = scipy.stats.t.cdf((mean - margin) / se, n - 1)  # H0: mean >= +margin
    return max(p_lower, p_upper)


@pytest.mark.parametrize(
    "seed,shift,margin", [(0, 0.0, 1.0), (1, 0.3, 0.5), (2, -0.2, 2.0), (3, 1.5, 1.0)]
)
def test_equivalence_test_matches_tost_by_hand(seed, shift, margin):
    a = _normal(seed, 8, scale=0.5, shift=shift)
    b = np.zeros(8)
    assert stats.equivalence_test(a, b, margin) == pytest.approx(
        _tost_by_hand(a - b, margin), rel=1e-10
    )
    # The same as scipy's one-sided ttest_1samp against each bound.
    p_lower = scipy.stats.ttest_1samp(a - b, -margin, alternative="greater").pvalue
    p_upper = scipy.stats.ttest_1samp(a - b, margin, alternative="less").pvalue
    assert stats.equivalence_test(a, b, margin) == pytest.approx(max(p_lower, p_upper), rel=1e-10)


def test_equivalence_test_constant_differences_and_bad_margin():
    assert stats.equivalence_test([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], 0.1) == 0.0
    assert stats.equivalence_test([2.0, 2.0, 2.0], [0.0, 0.0, 0.0], 1.0) == 1.0
    with pytest.raises(ValueError, match="margin"):
        stats.equivalence_test([1.0, 2.0], [0.0, 0.0], 0.0)


def test_corrected_effect_size_is_hedges_exact_factor():
    d = np.array([1.0, 2.5, 0.5, 1.5, 3.0])
    d_z = d.mean() / d.std(ddof=1)
    df = d.size - 1
    j = math.gamma(df / 2) / (math.sqrt(df / 2) * math.gamma((df - 1) / 2))
    assert stats.corrected_effect_size(d) == pytest.approx(j * d_z, rel=1e-12)
    assert j == pytest.approx(1 - 3 / (4 * df - 1), abs=0.01)  # Hedges' approximation
    with pytest.raises(ValueError, match="at least 3"):
        stats.corrected_effect_size([1.0, 2.0])


@pytest.mark.parametrize(
    "effect,m,rank", [(1.65, 12, 1), (1.0, 12, 1), (0.5, 1, 1), (2.0, 69, 3), (0.8, 10, 10)]
)
def test_seeds_for_power_matches_statsmodels(effect, m, rank):
    # A pilot whose corrected effect is exactly `effect`: d_z = effect / J(4).
    z = np.array([-1.2, -0.4, 0.1, 0.5, 1.0])
    z = (z - z.mean()) / z.std(ddof=1)
    j = math.exp(math.lgamma(2) - math.lgamma(1.5)) / math.sqrt(2)
    pilot = z + effect / j
    plan = stats.seeds_for_power(pilot, alpha=0.05, power=0.8, holm_rank=rank, family_size=m)
    assert plan["d_z_corrected"] == pytest.approx(effect, rel=1e-12)
    assert plan["alpha_step"] == pytest.approx(0.05 / (m - rank + 1))
    n = TTestPower().solve_power(
        effect_size=effect, alpha=0.05 / (m - rank + 1), power=0.8, alternative="larger"
    )
    assert plan["seeds"] == math.ceil(n)
    assert plan["power"] >= 0.8
    assert stats.t_test_power(effect, plan["seeds"] - 1, plan["alpha_step"]) < 0.8
    assert stats.t_test_power(effect, plan["seeds"], plan["alpha_step"]) == pytest.approx(
        TTestPower().power(
            effect_size=effect, nobs=plan["seeds"], alpha=plan["alpha_step"], alternative="larger"
        ),
        rel=1e-8,
    )


def test_t_test_power_matches_a_simulation():
    """Monte Carlo with a fixed seed: the rejection rate of scipy's one-sided t-test."""
    rng = np.random.default_rng(0)
    n, effect, alpha, trials = 6, 1.2, 0.01, 20000
    d = rng.standard_normal((trials, n)) + effect
    p = scipy.stats.ttest_1samp(d, 0.0, axis=1, alternative="greater").pvalue
    rate = float(np.mean(p < alpha))
    assert stats.t_test_power(effect, n, alpha) == pytest.approx(
        rate, abs=4 * math.sqrt(rate * (1 - rate) / trials)
    )


def test_seeds_for_power_rejects_bad_input():
    with pytest.raises(ValueError, match="holm_rank"):
        stats.seeds_for_power([1.0, 2.0, 1.5], holm_rank=3, family_size=2)
    with pytest.raises(ValueError, match="zero variance"):
        stats.seeds_for_power([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="more than"):
        stats.seeds_for_power([0.001, -0.5, 0.5, 0.01], max_seeds=50)


@pytest.mark.parametrize(
    "table", [(2, 5, 0, 5), (0, 5, 5, 5), (3, 8, 1, 8), (4, 6, 4, 6), (1, 3, 7, 12), (0, 4, 0, 9)]
)
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_fisher_exact_matches_scipy(table, alternative):
    k_a, n_a, k_b, n_b = table
    ref = scipy.stats.fisher_exact(
        [[k_a, n_a - k_a], [k_b, n_b - k_b]], alternative=alternative
    ).pvalue
    assert stats.fisher_exact(k_a, n_a, k_b, n_b, alternative) == pytest.approx(ref, rel=1e-10)


def test_fisher_exact_rejects_bad_counts():
    with pytest.raises(ValueError, match="counts"):
        stats.fisher_exact(6, 5, 0, 5)
