"""The claims' verdicts (experiments.study.claims) against hand-built rows and scipy."""
import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.study import claims

SEEDS = range(5)


def _row(name, penalty, target, strength, seed, diverged=False, **scores):
    row = {"config.name": name, "penalty": penalty, "target": target,
           "value": strength, "effective_strength": strength, "regulariser": "none",
           "seed": seed, "run": f"{name}/{penalty}-{target}-{strength}-seed{seed}",
           "diverged": diverged, "config.penalty.g.kind": "none", "config.penalty.d.kind": "none"}
    row.update(scores)
    return row


def _cell(name, penalty, target, strength, values, metric):
    return [_row(name, penalty, target, strength, s, **{metric: v})
            for s, v in zip(SEEDS, values)]


BASE = np.array([0.30, 0.32, 0.29, 0.31, 0.33])


def _part(metric="recall", direction="higher", penalties=("prox_l1",), versus="none"):
    return claims.Part("p", {"digits_gan": metric}, direction, penalties, ("g",), versus)


def test_supported_part_matches_scipy_t_test_and_holm():
    shift_1 = np.array([0.05, 0.07, 0.04, 0.06, 0.08])
    shift_10 = np.array([0.01, -0.02, 0.03, -0.01, 0.00])
    rows = (_cell("digits_gan", "none", None, None, BASE, "recall")
            + _cell("digits_gan", "prox_l1", "g", 1.0, BASE + shift_1, "recall")
            + _cell("digits_gan", "prox_l1", "g", 10.0, BASE + shift_10, "recall"))
    part = _part()
    tests = claims.part_tests(rows, part)
    assert [t.comparison.key.strength for t in tests] == [1.0, 10.0]
    p = [scipy_stats.ttest_1samp(d, 0.0).pvalue for d in (shift_1, shift_10)]
    # Holm by hand: the smaller p times 2, the larger max(that, itself).
    low, high = sorted(p)
    expected = {low: min(1, 2 * low), high: min(1, max(2 * low, high))}
    for t, raw in zip(tests, p):
        assert t.comparison.p == pytest.approx(raw, rel=1e-9)
        assert t.comparison.p_holm == pytest.approx(expected[raw], rel=1e-9)
    assert tests[0].favours and tests[0].comparison.difference["median"] == pytest.approx(0.06)
    assert tests[0].cell.median == pytest.approx(np.median(BASE + shift_1))
    assert tests[0].reference.median == pytest.approx(np.median(BASE))
    assert claims.part_verdict(part, tests) == claims.SUPPORTED


def test_refuted_when_every_interval_excludes_the_claimed_direction():
    rows = _cell("digits_gan", "none", None, None, BASE, "recall")
    for strength, shift in ((0.1, 0.0), (1.0, -0.05)):
        rows += _cell("digits_gan", "prox_l1", "g", strength,
                      BASE + shift + np.array([0, -0.01, -0.02, 0, -0.01]) * (shift != 0),
                      "recall")
    part = _part()
    tests = claims.part_tests(rows, part)
    assert all(t.comparison.difference["high"] <= 0 for t in tests)
    assert claims.part_verdict(part, tests) == claims.REFUTED


def test_inconclusive_when_an_interval_allows_the_effect():
    rows = (_cell("digits_gan", "none", None, None, BASE, "recall")
            + _cell("digits_gan", "prox_l1", "g", 1.0,
                    BASE + np.array([0.02, -0.03, 0.01, -0.01, 0.02]), "recall"))
    part = _part()
    tests = claims.part_tests(rows, part)
    d = tests[0].comparison.difference
    assert d["low"] < 0 < d["high"] and tests[0].comparison.p_holm > 0.05
    assert claims.part_verdict(part, tests) == claims.INCONCLUSIVE
    assert claims.part_verdict(_part(penalties=("l1",)), []) == claims.NOT_TESTED


def test_versus_a_penalty_pairs_same_target_and_strength():
    """Elastic net against L2: each strength against L2 at that strength, by seed."""
    rows = _cell("digits_gan", "none", None, None, np.zeros(5), "sparsity")
    for strength, l2, en in ((1.0, 0.0, 0.2), (10.0, 0.1, 0.1)):
        rows += _cell("digits_gan", "l2", "g", strength, np.full(5, l2), "sparsity")
        rows += _cell("digits_gan", "elastic_net", "g", strength,
                      en + np.array([0.0, 0.01, 0.02, 0.01, 0.0]), "sparsity")
    for r in rows:
        r["sparsity_g"] = r.pop("sparsity")
    part = claims.Part("p", {"*": "sparsity"}, "higher", ("elastic_net",), ("g",), "l2")
    tests = claims.part_tests(rows, part)
    assert [(t.comparison.key.strength, t.comparison.reference.penalty,
             t.comparison.reference.strength) for t in tests] == [(1.0, "l2", 1.0),
                                                                   (10.0, "l2", 10.0)]
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
    assert t.comparison.p == pytest.approx(2 * 0.5 ** 5)


@pytest.mark.parametrize("parts,how,expected", [
    (("supported", "supported"), "all", "supported"),
    (("supported", "inconclusive"), "all", "inconclusive"),
    (("supported", "refuted"), "all", "refuted"),
    (("supported", "not tested"), "all", "inconclusive"),
    (("not tested", "not tested"), "all", "not tested"),
    (("refuted", "supported"), "any", "supported"),
    (("refuted", "refuted"), "any", "refuted"),
    (("refuted", "inconclusive"), "any", "inconclusive"),
    (("refuted", "not tested"), "any", "inconclusive"),
])
def test_join(parts, how, expected):
    assert claims.join(parts, how) == expected


def test_markdown_names_every_claim_and_its_cells():
    rows = (_cell("digits_gan", "none", None, None, BASE, "recall")
            + _cell("digits_gan", "prox_l1", "g", 1.0, BASE + 0.05, "recall"))
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
    mild = _cell("digits_gan", "l2", "g", 1.0, BASE - np.array([0.01, -0.01, 0.02, 0.0, 0.01]),
                 "sample_tv")
    for r, fd in zip(mild, none_fd + 1):
        r["fd"] = fd
    rows += collapsed + mild
    guarded = claims.Part("p", {"digits_gan": "sample_tv"}, "lower", ("l2",), ("g",), guard=True)
    tests = {t.comparison.key.strength: t for t in claims.part_tests(rows, guarded)}
    assert tests[10.0].degenerate and (tests[10.0].unstable.k, tests[10.0].unstable.n) == (3, 5)
    assert not tests[1.0].degenerate and tests[1.0].unstable.k == 0
    # The family is the healthy cell alone: its Holm p is its raw p.
    assert tests[10.0].comparison.p_holm is None
    assert tests[1.0].comparison.p_holm == pytest.approx(tests[1.0].comparison.p)
    assert claims.part_verdict(guarded, list(tests.values())) == claims.INCONCLUSIVE
    # Unguarded, the collapsed cell alone would carry the claim.
    unguarded = guarded._replace(guard=False)
    assert claims.part_verdict(unguarded, claims.part_tests(rows, unguarded)) == claims.SUPPORTED


def test_better_follows_each_metrics_own_direction():
    """'More diverse' is a higher recall but a lower reverse KL of the mode histogram."""
    rows = (_cell("digits_gan", "none", None, None, BASE, "recall")
            + _cell("digits_gan", "prox_l1", "g", 1.0, BASE + 0.05 + BASE / 100, "recall")
            + _cell("ring8_gan", "none", None, None, BASE, "reverse_kl")
            + _cell("ring8_gan", "prox_l1", "g", 1.0, BASE - 0.2 - BASE / 100, "reverse_kl"))
    part = claims.Part("p", {"digits_gan": "recall", "ring8_gan": "reverse_kl"}, "better",
                       ("prox_l1",), ("g",))
    tests = {t.experiment: t for t in claims.part_tests(rows, part)}
    assert tests["digits_gan"].favours and tests["ring8_gan"].favours
    assert tests["ring8_gan"].comparison.difference["median"] == pytest.approx(-0.2031)
    assert claims.part_verdict(part, list(tests.values())) == claims.SUPPORTED
    # Read as 'higher' everywhere, the lower reverse KL would count against the claim.
    higher = part._replace(direction="higher")
    assert not {t.experiment: t for t in claims.part_tests(rows, higher)}["ring8_gan"].favours
