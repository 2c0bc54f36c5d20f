"""17. The verdicts at a glance: every comparison of every claim, as its effect in SESOI units.

One row per part of a claim (``experiments.study.claims.CLAIMS``), one dot per
comparison of that part (a cell against its reference, paired by seed): its
median paired Δ divided by the comparison's smallest effect of interest (the
margin of its equivalence test), signed so that the claimed direction is
positive. A dot's colour is the comparison's reading under the declared rule
(:func:`experiments.study.claims.reading`), its marker the network the
penalty is on. Inside ±1 an effect is smaller than the SESOI; a dot far right
that is not green did not survive its Holm family, one far left that is red
went significantly against the claim. Degenerate cells (a guarded part's
mostly unstable cells) and comparisons without a margin (fewer than two finite
pairs) are left out and counted in the title.
"""

import textwrap
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from experiments.study import claims
from experiments.study.figures import registry

READINGS = {  # reading -> (colour, label)
    "claimed way": ("tab:green", "claimed way (Holm p < 0.05)"),
    "against": ("tab:red", "against the claim (Holm p < 0.05)"),
    claims.TRIVIAL: ("tab:olive", "trivial (significant, inside the SESOI)"),
    "equivalent": ("tab:blue", "equivalent (TOST within the SESOI)"),
    "—": ("0.55", "neither"),
}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
CLIP = 100.0  # |Δ / SESOI| beyond this (a diverged run's infinite Δ included) sits at the edge


class Effect(NamedTuple):
    """One comparison as the figure draws it."""

    row: str  # "claim: part"
    x: float  # median Δ / margin, + = the claimed way, clipped to ±CLIP
    reading: str
    network: str  # claims.network_family of its experiment and target


def oriented_effect(test: claims.Test, part: claims.Part) -> float | None:
    """``test``'s median Δ over its SESOI margin, + where the claim predicts the change.

    None without a margin; clipped to ±:data:`CLIP` (an infinite Δ included).
    """
    if test.margin is None or not test.margin > 0:
        return None
    sign = claims.claimed_sign(part, test.metric)
    return float(np.clip(sign * test.comparison.difference["median"] / test.margin, -CLIP, CLIP))


def effects(results) -> tuple[list[Effect], list[str], int]:
    """``(effects, rows in drawing order, comparisons left out)`` of :func:`claims.verdicts`."""
    out, order, left_out = [], [], 0
    for v in results:
        for part, _, tests in v.parts:
            row = textwrap.fill(f"{v.claim.name}: {part.name.split(' (')[0]}", 48)
            order.append(row)
            for t in tests:
                x = None if t.degenerate else oriented_effect(t, part)
                if x is None:
                    left_out += 1
                    continue
                network = claims.network_family(t.experiment, t.comparison.key.target)
                out.append(Effect(row, x, claims.reading(t), network))
    return out, order, left_out


def fig_verdicts(results, preset: str) -> Figure:
    """17. Every comparison of every claim on one symmetric-log axis of Δ / SESOI."""
    drawn, order, left_out = effects(results)
    networks = sorted({e.network for e in drawn})
    marker = {n: MARKERS[i % len(MARKERS)] for i, n in enumerate(networks)}
    fig = Figure(figsize=(13, 0.5 * len(order) + 2.4), layout="constrained")
    ax = fig.add_subplot()
    ax.axvspan(-1, 1, color="0.92", zorder=0)
    ax.axvline(0, color="0.3", lw=0.8, zorder=1)
    for y, row in enumerate(order):
        mine = [e for e in drawn if e.row == row]
        # Spread a row's dots over its height in order of effect: no random jitter.
        offsets = np.linspace(-0.3, 0.3, len(mine)) if len(mine) > 1 else [0.0]
        for e, dy in zip(sorted(mine, key=lambda e: e.x), offsets):
            ax.scatter(
                e.x,
                y + dy,
                s=22,
                marker=marker[e.network],
                color=READINGS[e.reading][0],
                edgecolors="none",
                alpha=0.85,
                zorder=2,
            )
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(-CLIP * 1.3, CLIP * 1.3)
    ax.set_yticks(range(len(order)), order, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(
        "median paired Δ / SESOI, + = the way the claim predicts\n"
        f"(symmetric log; |x| ≥ {CLIP:g} at the edge; grey band: inside the SESOI)"
    )
    for colour, label in READINGS.values():
        ax.scatter([], [], color=colour, marker="o", label=label)
    for network in networks:
        ax.scatter([], [], color="0.2", marker=marker[network], label=network)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    fig.suptitle(
        f"17. Every comparison of every claim · preset {preset} · {len(drawn)} comparisons "
        f"({left_out} degenerate or without a margin left out)\ncolour: the declared rule's "
        "reading (experiments/study/claims.py); marker: the penalised network",
        fontsize=10,
    )
    return fig


def _rows(group) -> list:
    return [r for e in group.values() for r in e.rows]


def _any_comparison(study, group) -> bool:
    return any(tests for v in claims.verdicts(_rows(group)) for _, _, tests in v.parts)


@registry.register("fig17_verdicts", scope=registry.GROUP, when=_any_comparison)
def _verdicts(study, group):
    return fig_verdicts(claims.verdicts(_rows(group)), study.preset)
