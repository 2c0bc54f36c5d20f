"""Figure 17 (every comparison of every claim in SESOI units) against hand-built rows."""

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from study_rows import study_row

from experiments.study import claims
from experiments.study.figures import registry, verdicts

BASE = np.array([0.30, 0.32, 0.29, 0.31, 0.33])


def _row(name, penalty, target, strength, seed, **scores):
    kind = {"config.model_type": "gan", "config.data.name": "digits"}
    return study_row(name, penalty, target, strength, seed, **kind, **scores)


def _cell(penalty, target, strength, values, metric="recall"):
    return [
        _row("digits_gan", penalty, target, strength, s, **{metric: v})
        for s, v in enumerate(values)
    ]


def _verdict(rows, direction):
    part = claims.Part(
        "more diverse samples", {"digits_gan": "recall"}, direction, ("prox_l1",), ("g", "d")
    )
    tests = claims.adjust(claims.part_tests(rows, part))
    claim = claims.Claim("diverse", "L1 makes samples more diverse.", (part,))
    return claims.Verdict(claim, claims.part_verdict(part, tests), ((part, "x", tests),))


# Recall's SESOI is 0.05: a median Δ of -0.10 is -2 SESOIs, +0.01 is +0.2.
D_G = np.array([-0.10, -0.11, -0.09, -0.12, -0.10])
D_D = np.array([0.01, 0.012, 0.008, 0.011, 0.009])
ROWS = (
    _cell("none", None, None, BASE)
    + _cell("prox_l1", "g", 1.0, BASE + D_G)
    + _cell("prox_l1", "d", 1.0, BASE + D_D)
)


@pytest.mark.parametrize("direction, sign", [("higher", 1), ("lower", -1)])
def test_an_effect_is_its_median_difference_over_the_sesoi_signed_by_the_claim(direction, sign):
    drawn, order, left_out = verdicts.effects([_verdict(ROWS, direction)])
    assert order == ["diverse: more diverse samples"] and left_out == 0
    by_network = {e.network: e for e in drawn}
    assert by_network["GAN generator"].x == pytest.approx(sign * np.median(D_G) / 0.05)
    assert by_network["GAN discriminator"].x == pytest.approx(sign * np.median(D_D) / 0.05)
    # The readings are the rule's: -2 SESOIs at p << 0.05 is significant one way or the other.
    reading = by_network["GAN generator"].reading
    assert reading == ("against" if direction == "higher" else "claimed way")


def test_degenerate_cells_are_left_out_and_an_infinite_difference_sits_at_the_edge():
    verdict = _verdict(ROWS, "higher")
    ((part, _, tests),) = verdict.parts
    g = next(t for t in tests if t.comparison.key.target == "g")
    d = next(t for t in tests if t.comparison.key.target == "d")
    infinite = g._replace(
        comparison=g.comparison._replace(difference={**g.comparison.difference, "median": -np.inf})
    )
    out = verdict._replace(parts=((part, "x", [infinite, d._replace(degenerate=True)]),))
    drawn, _, left_out = verdicts.effects([out])
    assert left_out == 1
    assert [e.x for e in drawn] == [-verdicts.CLIP]


def test_the_figure_draws_one_dot_per_comparison_at_its_effect_in_its_readings_colour():
    verdict = _verdict(ROWS, "higher")
    drawn, _, _ = verdicts.effects([verdict])
    fig = verdicts.fig_verdicts([verdict], "test")
    (ax,) = fig.axes
    dots = [c for c in ax.collections if len(c.get_offsets())]
    xs = sorted(float(c.get_offsets()[0][0]) for c in dots)
    assert xs == pytest.approx(sorted(e.x for e in drawn))
    colours = {float(c.get_offsets()[0][0]): tuple(c.get_facecolor()[0][:3]) for c in dots}
    for e in drawn:
        nearest = min(colours, key=lambda x: abs(x - e.x))
        assert colours[nearest] == pytest.approx(to_rgba(verdicts.READINGS[e.reading][0])[:3])
    assert ax.get_xscale() == "symlog"


def test_the_figure_is_registered_for_a_study_with_claim_comparisons():
    specs = registry.figure_specs(ROWS, "/nonexistent", "test")
    assert "fig17_verdicts" in specs
    assert (
        registry.figure_specs(_cell("none", None, None, BASE), "/nonexistent", "test").get(
            "fig17_verdicts"
        )
        is None
    )
