"""The claims' verdicts (experiments.study.claims) against hand-built rows and scipy."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.study import claims

SEEDS = range(5)


def _row(name, penalty, target, strength, seed, diverged=False, **scores):
    row = {
        "config.name": name,
        "penalty": penalty,
        "target": target,
        "value": strength,
        "effective_strength": strength,
        "regulariser": "none",
        "seed": seed,
        "run": f"{name}/{penalty}-{target}-{strength}-seed{seed}",
        "diverged": diverged,
        "config.penalty.g.kind": "none",
        "config.penalty.d.kind": "none",
    }
    row.update(scores)
    return row


def _cell(name, penalty, target, strength, values, metric):
    return [_row(name, penalty, target, strength, s, **{metric: v}) for s, v in zip(SEEDS, values)]


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
    rows = _cell("digits_gan", "none", None, None, BASE, "sample_tv")
    collapsed = _cell("digits_gan", "l2", "g", 10.0, BASE - 0.2 - BASE / 50, "sample_tv")
    for r, fd in zip(rows + collapsed, np.concatenate([none_fd, [500.0, 480, 470, 40, 35]])):
        r["fd"] = fd
    rows += collapsed
    text = claims.claims_markdown(rows)
    assert (
        "Family: m = 0 comparisons (0 penalty × target cells × 0 strengths × 0 experiments; "
        "1 degenerate left out). Directional: 0 one-sided tests"
    ) in text
    # Guarded, the only (collapsed) cell is left out; without the guard it carries the claim.
    assert (
        "| L2 makes samples smoother. | blurrier samples (lower total variation; a smoother "
        "generator is protocol v2's PPL / Jacobian) | inconclusive | supported | 1 |"
    ) in text
    assert (
        "| L2 makes samples smoother. | **the claim** | **inconclusive** | **supported** | |"
        in text
    )


def test_grid25_reads_diversity_as_noise_robust_modes_with_the_published_count_beside():
    part = dict(claims.CLAIMS[1].parts[1].metrics)
    assert part["grid25_gan"] == "robust_modes" and part["ring8_gan"] == "reverse_kl"
    rows = _cell("grid25_gan", "none", None, None, [9, 8, 10, 9, 11], "robust_modes") + _cell(
        "grid25_gan", "prox_l1", "g", 1.0, [12, 11, 14, 12, 13], "robust_modes"
    )
    for r, modes in zip(rows, [18, 17, 19, 18, 20, 21, 20, 22, 21, 23]):
        r["modes"] = modes
    (t,) = claims.part_tests(rows, claims.CLAIMS[1].parts[1])
    assert t.metric == "robust_modes" and t.beside == ("modes", 21.0, 18.0)
    assert "| 12 (modes 21) | 9 (modes 18) (none) |" in claims.claims_markdown(rows)
