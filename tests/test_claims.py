"""The claims' verdicts (experiments.study.claims) against hand-built rows and scipy."""

import pathlib

import numpy as np
import pytest
from scipy import stats as scipy_stats
from study_rows import study_row

from experiments.study import cells, claims, vocabulary

SEEDS = range(5)


def _row(name, penalty, target, strength, seed, diverged=False, **scores):
    return study_row(name, penalty, target, strength, seed, diverged=diverged, **scores)


def _cell(name, penalty, target, strength, values, metric, seeds=None):
    seeds = SEEDS if seeds is None else range(seeds)
    return [_row(name, penalty, target, strength, s, **{metric: v}) for s, v in zip(seeds, values)]


BASE = np.array([0.30, 0.32, 0.29, 0.31, 0.33])


def _part(metric="recall", direction="higher", penalties=("prox_l1",), versus="none"):
    return claims.Part("p", {"digits_gan": metric}, direction, penalties, ("g",), versus)


def _holm_by_hand(p):
    """Holm's step-down adjusted p-values, written out."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, (len(p) - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted


def _tost_by_hand(d, margin):
    n, se = d.size, d.std(ddof=1) / np.sqrt(d.size)
    return max(
        scipy_stats.t.sf((d.mean() + margin) / se, n - 1),
        scipy_stats.t.cdf((d.mean() - margin) / se, n - 1),
    )


def test_supported_one_sided_tests_and_their_holm_family_match_scipy():
    shift_1 = np.array([0.05, 0.07, 0.04, 0.06, 0.08])
    shift_10 = np.array([0.01, -0.02, 0.03, -0.01, 0.00])
    rows = (
        _cell("digits_gan", "none", None, None, BASE, "recall")
        + _cell("digits_gan", "prox_l1", "g", 1.0, BASE + shift_1, "recall")
        + _cell("digits_gan", "prox_l1", "g", 10.0, BASE + shift_10, "recall")
    )
    part = _part()
    tests = claims.part_tests(rows, part)
    assert [t.comparison.key.strength for t in tests] == [1.0, 10.0]
    claimed = [
        scipy_stats.ttest_1samp(d, 0.0, alternative="greater").pvalue for d in (shift_1, shift_10)
    ]
    against = [
        scipy_stats.ttest_1samp(d, 0.0, alternative="less").pvalue for d in (shift_1, shift_10)
    ]
    # One family of the 2m = 4 directional tests; the TOSTs (recall's SESOI 0.05) another.
    directional = _holm_by_hand(claimed + against)
    equivalent = _holm_by_hand([_tost_by_hand(d, 0.05) for d in (shift_1, shift_10)])
    for i, t in enumerate(tests):
        assert t.p_claimed == pytest.approx(claimed[i], rel=1e-9)
        assert t.p_against == pytest.approx(against[i], rel=1e-9)
        assert t.holm_claimed == pytest.approx(directional[i], rel=1e-9)
        assert t.holm_against == pytest.approx(directional[2 + i], rel=1e-9)
        assert t.holm_equivalent == pytest.approx(equivalent[i], rel=1e-9)
        assert t.margin == 0.05
    assert tests[0].favours and tests[0].comparison.difference["median"] == pytest.approx(0.06)
    assert tests[0].cell.median == pytest.approx(np.median(BASE + shift_1))
    assert tests[0].reference.median == pytest.approx(np.median(BASE))
    assert claims.reading(tests[0]) == "claimed way" and tests[0].holm_claimed < 0.05
    assert claims.part_verdict(part, tests) == claims.SUPPORTED
    assert claims.family(tests) == claims.Family(
        m=2, cells=1, strengths=2, experiments=1, left_out=0
    )


def test_contradicted_when_a_cell_goes_significantly_against_the_claim():
    rows = (
        _cell("digits_gan", "none", None, None, BASE, "recall")
        + _cell(
            "digits_gan",
            "prox_l1",
            "g",
            0.1,
            BASE + np.array([0.02, -0.03, 0.01, 0.0, 0.01]),
            "recall",
        )
        + _cell(
            "digits_gan",
            "prox_l1",
            "g",
            1.0,
            BASE - np.array([0.30, 0.32, 0.29, 0.33, 0.31]),
            "recall",
        )
    )
    part = _part()
    tests = claims.part_tests(rows, part)
    d = np.array([-0.30, -0.32, -0.29, -0.33, -0.31])
    p_against = scipy_stats.ttest_1samp(d, 0.0, alternative="less").pvalue
    assert tests[1].p_against == pytest.approx(p_against, rel=1e-9)
    assert tests[1].holm_against < 0.05 and claims.reading(tests[1]) == "against"
    assert not any(claims.reading(t) == "claimed way" for t in tests)
    assert claims.part_verdict(part, tests) == claims.CONTRADICTED


def test_no_effect_when_every_cell_is_equivalent_within_the_sesoi():
    """Recall's SESOI is 0.05: differences of about ±0.02 are shown to be smaller."""
    noise = {
        0.1: np.array([0.02, -0.03, 0.01, -0.01, 0.02]),
        1.0: np.array([-0.01, 0.01, 0.0, 0.02, -0.015]),
    }
    rows = _cell("digits_gan", "none", None, None, BASE, "recall")
    for strength, d in noise.items():
        rows += _cell("digits_gan", "prox_l1", "g", strength, BASE + d, "recall")
    part = _part()
    tests = claims.part_tests(rows, part)
    # TOST by hand (scipy's t distribution), then Holm over the two comparisons.
    expected = _holm_by_hand([_tost_by_hand(noise[t.comparison.key.strength], 0.05) for t in tests])
    for t, p in zip(tests, expected):
        assert t.p_equivalent == pytest.approx(
            _tost_by_hand(noise[t.comparison.key.strength], 0.05), rel=1e-9
        )
        assert t.holm_equivalent == pytest.approx(p, rel=1e-9) and p < 0.05
        assert claims.reading(t) == "equivalent"
    assert claims.part_verdict(part, tests) == claims.NO_EFFECT


def test_inconclusive_when_neither_a_direction_nor_equivalence_is_shown():
    rows = _cell("digits_gan", "none", None, None, BASE, "recall") + _cell(
        "digits_gan",
        "prox_l1",
        "g",
        1.0,
        BASE + np.array([0.12, -0.15, 0.05, -0.08, 0.10]),
        "recall",
    )
    part = _part()
    tests = claims.part_tests(rows, part)
    d = tests[0].comparison.difference
    assert d["low"] < 0 < d["high"]
    assert tests[0].holm_claimed > 0.05 and tests[0].holm_against > 0.05
    assert tests[0].holm_equivalent > 0.05
    assert claims.part_verdict(part, tests) == claims.INCONCLUSIVE
    assert claims.part_verdict(_part(penalties=("l1",)), []) == claims.NOT_TESTED


def test_a_d_z_sesoi_is_half_the_standard_deviation_of_the_differences():
    """sample_tv has no natural unit: its margin is 0.5 sd(d), and TOST with 5 seeds can
    never show equivalence within half a standard deviation (|t| < 0.5 sqrt(5) - t_4)."""
    d = np.array([0.001, -0.002, 0.0015, 0.0, -0.0005])
    rows = _cell("digits_gan", "none", None, None, BASE, "sample_tv") + _cell(
        "digits_gan", "l2", "g", 1.0, BASE + d, "sample_tv"
    )
    part = _part("sample_tv", "lower", ("l2",))
    (t,) = claims.part_tests(rows, part)
    assert t.margin == pytest.approx(0.5 * d.std(ddof=1), rel=1e-9)
    assert t.p_equivalent == pytest.approx(_tost_by_hand(d, 0.5 * d.std(ddof=1)), rel=1e-6)
    assert t.p_equivalent > 0.05


def test_versus_a_penalty_pairs_same_target_and_strength():
    """Elastic net against L2: each strength against L2 at that strength, by seed."""
    rows = _cell("digits_gan", "none", None, None, np.zeros(5), "sparsity")
    for strength, l2, en in ((1.0, 0.0, 0.2), (10.0, 0.1, 0.1)):
        rows += _cell("digits_gan", "l2", "g", strength, np.full(5, l2), "sparsity")
        rows += _cell(
            "digits_gan",
            "elastic_net",
            "g",
            strength,
            en + np.array([0.0, 0.01, 0.02, 0.01, 0.0]),
            "sparsity",
        )
    for r in rows:
        r["sparsity_g"] = r.pop("sparsity")
    part = claims.Part("p", {"*": "sparsity"}, "higher", ("elastic_net",), ("g",), "l2")
    tests = claims.part_tests(rows, part)
    assert [
        (t.comparison.key.strength, t.comparison.reference.penalty, t.comparison.reference.strength)
        for t in tests
    ] == [(1.0, "l2", 1.0), (10.0, "l2", 10.0)]
    assert tests[0].comparison.difference["median"] == pytest.approx(0.21)
    assert tests[1].comparison.difference["median"] == pytest.approx(0.01)
    assert claims.part_verdict(part, tests) == claims.SUPPORTED


def test_a_diverged_run_is_the_worst_fd_and_uses_the_sign_test():
    base = np.array([40.0, 45.0, 50.0, 42.0, 48.0])
    rows = _cell("digits_gan", "none", None, None, base, "fd")
    rows[0]["diverged"], rows[0]["fd"] = True, None  # the unregularised seed 0 diverged
    rows += _cell("digits_gan", "weight_decay", "d", 1.0, base - 5.0, "fd")
    part = claims.Part("p", {"digits_gan": "fd"}, "lower", ("weight_decay",), ("d",))
    (t,) = claims.part_tests(rows, part)
    assert t.comparison.test == "sign" and t.favours
    # Five negative differences (one of them -inf): the exact two-sided sign test.
    assert t.comparison.p == pytest.approx(scipy_stats.binomtest(0, 5).pvalue)
    assert t.comparison.p == pytest.approx(2 * 0.5**5)
    # One-sided in the claimed way (lower FD): all five below, 1/32; never equivalent.
    assert t.p_claimed == pytest.approx(scipy_stats.binomtest(0, 5, alternative="less").pvalue)
    assert t.p_claimed == pytest.approx(0.5**5) and t.p_against == 1.0
    assert t.p_equivalent == 1.0


@pytest.mark.parametrize(
    "parts,how,expected",
    [
        (("supported", "supported"), "all", "supported"),
        (("supported", "inconclusive"), "all", "inconclusive"),
        (("supported", "contradicted"), "all", "contradicted"),
        (("supported", "no effect"), "all", "no effect"),
        (("contradicted", "no effect"), "all", "contradicted"),
        (("supported", "not tested"), "all", "inconclusive"),
        (("not tested", "not tested"), "all", "not tested"),
        (("contradicted", "supported"), "any", "supported"),
        (("contradicted", "contradicted"), "any", "contradicted"),
        (("contradicted", "not tested"), "any", "contradicted"),
        (("contradicted", "no effect"), "any", "no effect"),
        (("no effect", "no effect"), "any", "no effect"),
        (("no effect", "inconclusive"), "any", "inconclusive"),
        (("contradicted", "inconclusive"), "any", "inconclusive"),
    ],
)
def test_join(parts, how, expected):
    assert claims.join(parts, how) == expected


def test_markdown_names_every_claim_and_its_cells():
    rows = _cell("digits_gan", "none", None, None, BASE, "recall") + _cell(
        "digits_gan", "prox_l1", "g", 1.0, BASE + 0.05, "recall"
    )
    text = claims.claims_markdown(rows)
    for claim in claims.CLAIMS:
        assert claim.statement in text
    assert "| digits_gan | recall | prox_l1 | g | 1 | 5 |" in text


def test_a_guarded_part_leaves_degenerate_cells_out():
    """Flat samples from a collapsed generator do not count as 'smoother'."""
    none_fd = np.array([30.0, 28.0, 29.0, 31.0, 27.0])
    rows = _cell("digits_gan", "none", None, None, BASE, "sample_tv")
    for r, fd in zip(rows, none_fd):
        r["fd"] = fd
    # Strength 10: far smoother, but 3 of 5 runs have FD > 2x the unregularised median (29).
    collapsed = _cell("digits_gan", "l2", "g", 10.0, BASE - 0.2, "sample_tv")
    for r, fd in zip(collapsed, (500.0, 480.0, 59.0, 40.0, 35.0)):
        r["fd"] = fd
    # Strength 1: mildly smoother, every run healthy.
    mild = _cell(
        "digits_gan", "l2", "g", 1.0, BASE - np.array([0.01, -0.01, 0.02, 0.0, 0.01]), "sample_tv"
    )
    for r, fd in zip(mild, none_fd + 1):
        r["fd"] = fd
    rows += collapsed + mild
    guarded = claims.Part("p", {"digits_gan": "sample_tv"}, "lower", ("l2",), ("g",), guard=True)
    tests = {t.comparison.key.strength: t for t in claims.part_tests(rows, guarded)}
    assert tests[10.0].degenerate and (tests[10.0].unstable.k, tests[10.0].unstable.n) == (3, 5)
    assert not tests[1.0].degenerate and tests[1.0].unstable.k == 0
    # The family is the healthy cell alone: its two directional tests, Holm over 2.
    assert tests[10.0].holm_claimed is None and tests[10.0].holm_equivalent is None
    assert tests[1.0].holm_claimed == pytest.approx(min(1.0, 2 * tests[1.0].p_claimed))
    assert tests[1.0].holm_equivalent == pytest.approx(tests[1.0].p_equivalent)
    assert claims.part_verdict(guarded, list(tests.values())) == claims.INCONCLUSIVE
    # Unguarded, the collapsed cell alone would carry the claim.
    unguarded = guarded._replace(guard=False)
    assert claims.part_verdict(unguarded, claims.part_tests(rows, unguarded)) == claims.SUPPORTED


def test_better_follows_each_metrics_own_direction():
    """'More diverse' is a higher recall but a lower reverse KL of the mode histogram."""
    rows = (
        _cell("digits_gan", "none", None, None, BASE, "recall")
        + _cell("digits_gan", "prox_l1", "g", 1.0, BASE + 0.05 + BASE / 100, "recall")
        + _cell("ring8_gan", "none", None, None, BASE, "reverse_kl")
        + _cell("ring8_gan", "prox_l1", "g", 1.0, BASE - 0.2 - BASE / 100, "reverse_kl")
    )
    part = claims.Part(
        "p", {"digits_gan": "recall", "ring8_gan": "reverse_kl"}, "better", ("prox_l1",), ("g",)
    )
    tests = {t.experiment: t for t in claims.part_tests(rows, part)}
    assert tests["digits_gan"].favours and tests["ring8_gan"].favours
    assert tests["ring8_gan"].comparison.difference["median"] == pytest.approx(-0.2031)
    assert claims.part_verdict(part, list(tests.values())) == claims.SUPPORTED
    # Read as 'higher' everywhere, the lower reverse KL would count against the claim.
    higher = part._replace(direction="higher")
    assert not {t.experiment: t for t in claims.part_tests(rows, higher)}["ring8_gan"].favours


def test_markdown_prints_each_parts_family_and_the_guard_sensitivity():
    none_fd = np.array([30.0, 28.0, 29.0, 31.0, 27.0])
    rows = _cell("digits_gan", "none", None, None, BASE, "ppl")
    collapsed = _cell("digits_gan", "l2", "g", 10.0, BASE - 0.2 - BASE / 50, "ppl")
    for r, fd in zip(rows + collapsed, np.concatenate([none_fd, [500.0, 480, 470, 40, 35]])):
        r["fd"] = fd
    rows += collapsed
    text = claims.claims_markdown(rows)
    assert (
        "Family: m = 0 comparisons (0 penalty × target cells × 0 strengths × 0 experiments; "
        "1 degenerate left out). Directional: 0 one-sided tests"
    ) in text
    # Guarded, the only (collapsed) cell is left out; without the guard it carries the claim
    # (its other reading, the Jacobian, has no runs: 'any' of supported and not tested).
    assert (
        "| L2 makes samples smoother. | shorter perceptual path length (blur: total variation "
        "beside) | inconclusive | supported | 1 |"
    ) in text
    assert (
        "| L2 makes samples smoother. | better-conditioned generator Jacobian (log condition "
        "number; ‖J‖_F beside) | not tested | not tested | 0 |"
    ) in text
    assert (
        "| L2 makes samples smoother. | **the claim** | **inconclusive** | **supported** | |"
        in text
    )


def _claim(name):
    return next(c for c in claims.CLAIMS if c.name == name)


def test_grid25_reads_diversity_as_noise_robust_modes_with_the_published_count_beside():
    diversity = _claim("l1_sparse_diverse").parts[1]
    part = dict(diversity.metrics)
    assert part["grid25_gan"] == "robust_modes" and part["ring8_gan"] == "reverse_kl"
    rows = _cell("grid25_gan", "none", None, None, [9, 8, 10, 9, 11], "robust_modes") + _cell(
        "grid25_gan", "prox_l1", "g", 1.0, [12, 11, 14, 12, 13], "robust_modes"
    )
    for r, modes in zip(rows, [18, 17, 19, 18, 20, 21, 20, 22, 21, 23]):
        r["modes"] = modes
    (t,) = claims.part_tests(rows, diversity)
    assert t.metric == "robust_modes" and t.beside == ("modes", 21.0, 18.0)
    assert "| 12 (modes 21) | 9 (modes 18) (none) |" in claims.claims_markdown(rows)


# ------------------------------------------------------------------ generalisation
GAN_BASE = {  # digits_gan_small_data's unregularised runs, one value per seed
    "memorisation_features": np.array([0.40, 0.42, 0.38, 0.41, 0.44]),
    "fd_inf_gap": np.array([20.0, 22.0, 19.0, 24.0, 21.0]),
    "r_v": np.array([0.60, 0.55, 0.62, 0.58, 0.65]),
    "fd_inf": np.array([90.0, 110.0, 95.0, 120.0, 100.0]),
    "copying_features": np.array([-4.0, -5.0, -3.5, -4.5, -6.0]),
}
VAE_BASE = {  # digits_vae_small_data's
    "memorisation_features": np.array([0.30, 0.33, 0.28, 0.31, 0.35]),
    "elbo_gap": np.array([6.0, 7.5, 5.5, 6.5, 8.0]),
    "elbo": np.array([-31.0, -30.0, -32.5, -31.5, -29.0]),
}
NOISE = np.array([1.0, -0.5, 0.25, -1.0, 0.5])  # seed-to-seed jitter of a difference


def _runs(name, penalty, target, strength, scores):
    """One row per seed of ``scores = {metric: values}`` (several metrics per run)."""
    rows = []
    for seed in SEEDS:
        row = _row(name, penalty, target, strength, seed, **{m: v[seed] for m, v in scores.items()})
        rows.append(row)
    return rows


def _generalisation_rows(gan_shift, vae_shift):
    """digits_gan (stable FD ~28) and the two data-limited experiments: unregularised runs
    and one penalised cell each (weight decay on D, L2 on the decoder), whose metrics are the
    baseline's plus ``shift[metric]`` (a difference per seed). Every small-data GAN run has an
    FD of ~150: unstable by the stable experiment's threshold."""
    fd = {"fd": np.array([150.0, 160.0, 140.0, 155.0, 145.0])}
    return (
        _cell("digits_gan", "none", None, None, [28.0, 29.0, 27.0, 30.0, 28.5], "fd")
        + _runs("digits_gan_small_data", "none", None, None, {**GAN_BASE, **fd})
        + _runs(
            "digits_gan_small_data",
            "weight_decay",
            "d",
            0.1,
            {**{m: v + gan_shift.get(m, 0.0) for m, v in GAN_BASE.items()}, **fd},
        )
        + _runs("digits_vae_small_data", "none", None, None, VAE_BASE)
        + _runs(
            "digits_vae_small_data",
            "l2",
            "decoder",
            0.1,
            {m: v + vae_shift.get(m, 0.0) for m, v in VAE_BASE.items()},
        )
    )


def _generalisation(rows):
    (v,) = claims.verdicts(rows, (_claim("prevents_overfitting"),))
    return v.verdict, {
        part.name.split(" (")[0]: (verdict, tests) for part, verdict, tests in v.parts
    }


def test_generalisation_supported_when_every_symptom_shrinks_and_held_out_quality_improves():
    rows = _generalisation_rows(
        {
            "memorisation_features": -0.2 + NOISE / 100,
            "fd_inf_gap": -12.0 + NOISE,
            "r_v": -0.3 + NOISE / 50,
            "fd_inf": -20.0 + NOISE,
        },
        {
            "memorisation_features": -0.15 + NOISE / 100,
            "elbo_gap": -4 + NOISE / 5,
            "elbo": 3.0 + NOISE / 5,
        },
    )
    verdict, parts = _generalisation(rows)
    assert {name: v for name, (v, _) in parts.items()} == {
        "less memorisation": claims.SUPPORTED,
        "smaller train-vs-held-out gap": claims.SUPPORTED,
        "less discriminator overfitting": claims.SUPPORTED,
        "better held-out quality": claims.SUPPORTED,
    }
    assert verdict == claims.SUPPORTED
    # The gap part reads FD∞'s gap in the GAN and the ELBO's in the VAE, each by its own
    # unit; 'better' quality is a lower FD∞ but a higher ELBO.
    gap = {t.experiment: t for t in parts["smaller train-vs-held-out gap"][1]}
    assert (gap["digits_gan_small_data"].metric, gap["digits_gan_small_data"].margin) == (
        "fd_inf_gap",
        5.0,
    )
    assert (gap["digits_vae_small_data"].metric, gap["digits_vae_small_data"].margin) == (
        "elbo_gap",
        1.0,
    )
    quality = {t.experiment: t for t in parts["better held-out quality"][1]}
    assert quality["digits_vae_small_data"].metric == "elbo"
    assert quality["digits_vae_small_data"].favours and quality["digits_gan_small_data"].favours
    assert quality["digits_vae_small_data"].comparison.difference["median"] == pytest.approx(
        np.median(3.0 + NOISE / 5)
    )
    # Unguarded: every small-data GAN run is unstable by the stable threshold, none is left out.
    memorisation = parts["less memorisation"][1]
    gan = next(t for t in memorisation if t.experiment == "digits_gan_small_data")
    assert (gan.unstable.k, gan.unstable.n) == (5, 5) and not gan.degenerate
    assert claims.family(memorisation) == claims.Family(
        m=2, cells=2, strengths=1, experiments=2, left_out=0
    )
    # C_T is shown beside the memorisation ratio, not tested.
    assert gan.beside == ("copying_features", -4.5, -4.5)
    p = scipy_stats.ttest_1samp(-0.2 + NOISE / 100, 0.0, alternative="less").pvalue
    assert gan.p_claimed == pytest.approx(p, rel=1e-9)


def test_generalisation_contradicted_when_copying_less_comes_with_worse_held_out_quality():
    """A generator that drifts away from the data copies less and has a smaller gap -- and a
    worse held-out FD∞, which contradicts 'improves generalisation' and so the claim."""
    rows = _generalisation_rows(
        {
            "memorisation_features": -0.2 + NOISE / 100,
            "fd_inf_gap": -12.0 + NOISE,
            "r_v": -0.3 + NOISE / 50,
            "fd_inf": 40.0 + NOISE,
        },
        {"memorisation_features": -0.15 + NOISE / 100, "elbo_gap": -4 + NOISE / 5},
    )
    verdict, parts = _generalisation(rows)
    assert parts["less memorisation"][0] == claims.SUPPORTED
    quality = {t.experiment: t for t in parts["better held-out quality"][1]}
    assert claims.reading(quality["digits_gan_small_data"]) == "against"
    assert parts["better held-out quality"][0] == claims.CONTRADICTED
    assert verdict == claims.CONTRADICTED


def test_generalisation_no_effect_when_every_difference_is_within_its_sesoi():
    gan_shift = {
        "memorisation_features": NOISE / 200,
        "fd_inf_gap": NOISE / 5,
        "r_v": NOISE / 100,
        "fd_inf": NOISE / 5,
    }
    vae_shift = {"memorisation_features": NOISE / 200, "elbo_gap": NOISE / 20, "elbo": NOISE / 20}
    verdict, parts = _generalisation(_generalisation_rows(gan_shift, vae_shift))
    assert {v for v, _ in parts.values()} == {claims.NO_EFFECT}
    for _, tests in parts.values():
        for t in tests:
            d = (gan_shift if t.experiment.startswith("digits_gan") else vae_shift)[t.metric]
            assert t.margin == vocabulary.metric(t.metric).sesoi.value
            assert t.p_equivalent == pytest.approx(_tost_by_hand(d, t.margin), rel=1e-6)
    assert verdict == claims.NO_EFFECT


def test_generalisation_reads_every_weight_penalty_on_every_network_and_two_training_sizes():
    claim = _claim("prevents_overfitting")
    assert claim.join == "all" and not any(p.guard for p in claim.parts)
    for part in claim.parts:
        assert part.penalties == vocabulary.WEIGHT_PENALTIES
        assert {"g", "d", "encoder", "decoder", "both"} <= set(part.targets)
    experiments = {e for p in claim.parts for e in p.metrics}
    assert experiments == {
        "digits_gan",
        "digits_gan_small_data",
        "digits_vae",
        "digits_vae_small_data",
    }
    # C_T has no direction: it is never a verdict's metric.
    assert not {"copying_features", "copying_pixels"} & {
        m for c in claims.CLAIMS for p in c.parts for m in p.metrics.values()
    }


# ------------------------------------------------------------------ smoothness
def test_smoother_is_the_path_length_with_blur_beside_not_total_variation():
    rows = _cell("digits_gan", "none", None, None, BASE * 100, "ppl") + _cell(
        "digits_gan", "weight_decay", "g", 1.0, BASE * 100 - 5 + NOISE, "ppl"
    )
    for r, tv in zip(rows, [0.50, 0.52, 0.49, 0.51, 0.50, 0.40, 0.41, 0.39, 0.42, 0.40]):
        r["sample_tv"] = tv
    (v,) = claims.verdicts(rows, (_claim("l2_smoother"),))
    (ppl_part, ppl_verdict, (t,)), (_, jacobian_verdict, _) = v.parts
    assert t.metric == "ppl" and t.beside == ("sample_tv", 0.40, 0.50)
    assert (ppl_verdict, jacobian_verdict, v.verdict) == (
        claims.SUPPORTED,
        claims.NOT_TESTED,
        claims.SUPPORTED,
    )
    assert "sample_tv" not in {
        m for c in claims.CLAIMS for p in c.parts for m in p.metrics.values()
    }
    assert "(sample_tv 0.4) |" in claims.claims_markdown(rows)


@pytest.mark.parametrize(
    "sparser,path,jacobian,expected",
    [
        ("supported", "supported", "inconclusive", "supported"),
        ("supported", "inconclusive", "supported", "supported"),
        ("supported", "inconclusive", "inconclusive", "inconclusive"),
        ("supported", "contradicted", "no effect", "no effect"),
        ("supported", "contradicted", "contradicted", "contradicted"),
        ("contradicted", "supported", "supported", "contradicted"),
    ],
)
def test_elastic_nets_smoother_than_l1_is_either_reading_then_joined_with_sparser(
    sparser, path, jacobian, expected
):
    claim = _claim("elastic_net_balances")
    assert [p.word for p in claim.parts] == ["", "smoother than L1", "smoother than L1"]
    assert claims.claim_verdict(claim, [sparser, path, jacobian]) == expected


# ------------------------------------------------------------------ docs agree with CLAIMS
def test_the_figures_claims_table_names_every_claim_and_the_metrics_it_tests():
    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "FIGURES.md").read_text()
    table = text.split("## The claims", 1)[1].split("## Rules", 1)[0]
    for claim in claims.CLAIMS:
        (row,) = [ln for ln in table.splitlines() if ln.startswith(f"| {claim.statement} |")]
        for part in claim.parts:
            for metric in part.metrics.values():
                assert f"`{metric}`" in row, (claim.name, metric)
        for metric in {claims.BESIDE.get(m) for p in claim.parts for m in p.metrics.values()}:
            assert metric is None or f"`{metric}`" in row, (claim.name, metric)


def test_a_significant_effect_inside_the_sesoi_is_trivial_and_decides_nothing():
    """Lakens' fourth outcome: Δ ≈ -0.01 recall with tiny spread is significant against the
    claim and equivalent within ±0.05, so it reads "trivial" and the part "no effect"."""
    d = np.array([-0.010, -0.011, -0.009, -0.0105, -0.0095, -0.010, -0.0102, -0.0098])
    base = np.linspace(0.4, 0.6, d.size)
    rows = _cell("digits_gan", "none", None, None, base, "recall", seeds=d.size)
    rows += _cell("digits_gan", "prox_l1", "g", 1.0, base + d, "recall", seeds=d.size)
    part = _part()
    (t,) = claims.part_tests(rows, part)
    p_against = scipy_stats.ttest_1samp(d, 0.0, alternative="less").pvalue
    assert t.p_against == pytest.approx(p_against, rel=1e-9) and t.holm_against < 0.05
    assert t.holm_equivalent == pytest.approx(_tost_by_hand(d, 0.05), rel=1e-9)
    assert t.holm_equivalent < 0.05
    assert claims.reading(t) == claims.TRIVIAL
    assert claims.part_verdict(part, [t]) == claims.NO_EFFECT
    # The same shift ten times larger leaves the SESOI: against, and the part contradicted.
    rows = _cell("digits_gan", "none", None, None, base, "recall", seeds=d.size)
    rows += _cell("digits_gan", "prox_l1", "g", 1.0, base + 10 * d, "recall", seeds=d.size)
    (t,) = claims.part_tests(rows, part)
    assert claims.reading(t) == "against"
    assert claims.part_verdict(part, [t]) == claims.CONTRADICTED


def test_the_cycle_gans_content_claim_reads_content_accuracy_with_cycle_error_beside():
    """Content accuracy up by 0.1 on the translators: supported; the cycle error is beside."""
    rows = _cell("digits_cyclegan", "none", None, None, BASE + 0.5, "content_accuracy")
    rows += _cell(
        "digits_cyclegan",
        "weight_decay",
        "generators",
        1.0,
        BASE + 0.6 + NOISE / 100,
        "content_accuracy",
    )
    for r, err in zip(rows, [0.30, 0.31, 0.29, 0.30, 0.32, 0.20, 0.21, 0.19, 0.22, 0.20]):
        r["cycle_error_a"] = err
    (v,) = claims.verdicts(rows, (_claim("translators_keep_content"),))
    ((_, verdict, (t,)),) = v.parts
    d = (BASE + 0.6 + NOISE / 100) - (BASE + 0.5)
    assert t.p_claimed == pytest.approx(
        scipy_stats.ttest_1samp(d, 0.0, alternative="greater").pvalue, rel=1e-9
    )
    assert t.beside == ("cycle_error_a", 0.20, 0.30)
    assert verdict == v.verdict == claims.SUPPORTED


def test_the_headline_reads_each_network_with_its_deciding_numbers():
    """Recall up 0.1 with weight decay on G, down 0.3 on D: the claim is supported (on some
    network), its generator reading supported and its discriminator reading contradicted,
    each decided by its own comparison, Holm-adjusted in the whole part (2 x 2 tests)."""
    up, down = BASE + 0.1 + NOISE / 100, BASE - 0.3 + NOISE / 100
    rows = _cell("digits_gan", "none", None, None, BASE, "recall")
    rows += _cell("digits_gan", "weight_decay", "g", 1.0, up, "recall")
    rows += _cell("digits_gan", "weight_decay", "d", 1.0, down, "recall")
    for r in rows:
        r["steps"] = 5000
    part = claims.Part(
        "more recall", {"digits_gan": "recall"}, "higher", ("weight_decay",), ("g", "d")
    )
    claim = claims.Claim("c", "A penalty raises recall.", (part,))
    (v,) = claims.verdicts(rows, (claim,))
    assert v.verdict == claims.SUPPORTED
    by_family = {name: verdict for name, verdict, _ in claims.family_verdicts(v)}
    assert by_family == {
        "GAN generator": claims.SUPPORTED,
        "GAN discriminator": claims.CONTRADICTED,
    }
    d_up, d_down = up - BASE, down - BASE
    p = [
        scipy_stats.ttest_1samp(d_up, 0.0, alternative="greater").pvalue,
        scipy_stats.ttest_1samp(d_down, 0.0, alternative="greater").pvalue,
        scipy_stats.ttest_1samp(d_up, 0.0, alternative="less").pvalue,
        scipy_stats.ttest_1samp(d_down, 0.0, alternative="less").pvalue,
    ]
    holm = _holm_by_hand(p)
    table = claims.headline_markdown(rows, (claim,))
    (generator,) = [ln for ln in table.splitlines() if "| GAN generator |" in ln]
    (discriminator,) = [ln for ln in table.splitlines() if "| GAN discriminator |" in ln]
    assert f"d_z {cells.fmt(d_up.mean() / d_up.std(ddof=1))}" in generator
    assert f"Holm p {claims._p(holm[0])} claimed way" in generator
    assert f"Δ {cells.fmt(np.median(d_down))}" in discriminator
    assert f"Holm p {claims._p(holm[3])} against" in discriminator and "n = 5" in discriminator
    assert "digits_gan 5,000" in table.splitlines()[2]


def test_whole_cells_are_the_cells_that_go_the_claimed_way_in_every_part():
    """Weight decay on G raises recall and lowers FD (both parts the claimed way); on D it
    raises recall but raises FD: only G carries the whole claim, though each part is
    supported by some cell."""
    jitter = NOISE / 100
    rows = []
    for penalty, target, recall, fd in (
        ("none", None, BASE, BASE * 100),
        ("weight_decay", "g", BASE + 0.2 + jitter, BASE * 100 - 20 + NOISE),
        ("weight_decay", "d", BASE + 0.2 + jitter, BASE * 100 + 20 + NOISE),
    ):
        for row, f in zip(_cell("digits_gan", penalty, target, 1.0, recall, "recall"), fd):
            row["fd"] = f
            rows.append(row)
    parts = (
        claims.Part(
            "more recall", {"digits_gan": "recall"}, "higher", ("weight_decay",), ("g", "d")
        ),
        claims.Part("lower FD", {"digits_gan": "fd"}, "lower", ("weight_decay",), ("g", "d")),
    )
    (v,) = claims.verdicts(rows, (claims.Claim("c", "A penalty helps.", parts),))
    assert [pv for _, pv, _ in v.parts] == [claims.SUPPORTED, claims.SUPPORTED]
    ((experiment, key, unstable, n),) = claims.whole_cells(v)
    assert (experiment, key.penalty, key.target, n) == ("digits_gan", "weight_decay", "g", 2)
    assert "**1**: digits_gan weight_decay on g at e = 1 (2 parts" in claims.whole_cells_markdown(
        rows, (v.claim,)
    )
