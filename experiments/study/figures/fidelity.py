"""9. Fidelity vs diversity: precision against recall, density against coverage.

Same conventions as :mod:`experiments.study.figures.panels`: one point per cell (penalty ×
target × strength) at the medians over seeds, with both medians' 95 %
bootstrap CIs as a cross; a penalty's strengths joined in order; the
baselines and the null references as their own markers.
"""

import math

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from experiments.study import cells, vocabulary
from experiments.study.captions import NULL_STYLES
from experiments.study.cells import swept_targets
from experiments.study.figures import registry
from experiments.study.figures.panels import figure_title, layout, value_text
from experiments.study.vocabulary import target_label

TARGET_MARKERS = {"g": "o", "d": "s", "both": "^", "encoder": "o", "decoder": "s"}
BASELINE_MARKERS = {"none": "*", "spectral_norm": "D", "r1": "P", "wgan_gp": "X"}
BASELINE_SIZES = {"none": 15, "spectral_norm": 10, "r1": 8, "wgan_gp": 6}
NULL_MARKERS = {"noise": "x", "shuffled": "+", "real": "h", "memoriser": "d"}


def fig_precision_recall(rows, preset: str, nulls=None) -> Figure:
    """9. Precision vs recall and density vs coverage per penalty × target × strength.

    Colour per penalty, marker per target, the strength written beside each
    point; medians with CI crosses; the baselines (their own markers) and the
    nulls as points.
    """
    fig = Figure(figsize=(12, 5.8), dpi=110)
    axes = fig.subplots(1, 2)
    for ax, (mx, my) in zip(axes, (("recall", "precision"), ("coverage", "density"))):
        _pr_panel(ax, rows, mx, my, nulls)
    handles = _pr_legend(rows, nulls)
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=7, frameon=False)
    layout(
        fig,
        figure_title(
            "9",
            "Fidelity vs diversity",
            rows,
            preset,
            "(colour: penalty; marker: target; number: strength; "
            "crosses: 95 % CIs of both medians)",
        ),
        math.ceil(len(handles) / 5),
    )
    return fig


def _pr_panel(ax, rows, mx, my, nulls) -> None:
    """One fidelity-vs-diversity plane: baselines, then each penalty's strengths joined."""
    cx, cy = cells.cells(rows, mx), cells.cells(rows, my)
    both = set(cx) & set(cy)
    effective = cells.is_effective(rows)
    for penalty, key in cells.baseline_keys(rows, cells.headline_metric(rows)).items():
        if key in both:  # decreasing sizes: coinciding baselines stay visible
            _pr_point(
                ax,
                cx[key],
                cy[key],
                vocabulary.penalty(penalty).colour,
                marker=BASELINE_MARKERS[penalty],
                mec="black",
                mew=0.6,
                ms=BASELINE_SIZES[penalty],
                zorder=4,
            )
    groups = sorted({k[:3] for k in both if cells.role_of_key(k) != "baseline"}, key=str)
    for group in groups:
        keys = sorted((k for k in both if k[:3] == group), key=lambda k: k.strength)
        colour = vocabulary.penalty(group[1]).colour
        ax.plot(
            [cx[k].median for k in keys],
            [cy[k].median for k in keys],
            color=colour,
            lw=0.6,
            alpha=0.5,
        )
        for k in keys:
            _pr_point(
                ax,
                cx[k],
                cy[k],
                colour,
                marker=TARGET_MARKERS.get(k.target, "o"),
                ms=5,
                mfc="none" if k.regulariser != "none" else colour,
            )
            ax.annotate(
                value_text(k, effective).split("=")[1],
                (cx[k].median, cy[k].median),
                textcoords="offset points",
                xytext=(3, 3),
                fontsize=5.5,
                color=colour,
            )
    for kind, (_, colour, _) in NULL_STYLES.items():
        vx, vy = cells.null_value(nulls, kind, mx), cells.null_value(nulls, kind, my)
        if vx is not None and vy is not None:
            ax.plot(vx, vy, marker=NULL_MARKERS[kind], color=colour, ms=9, mew=1.5, ls="none")
    ax.set_xlabel(vocabulary.metric(mx).label, fontsize=8)
    ax.set_ylabel(vocabulary.metric(my).label, fontsize=8)
    ax.grid(alpha=0.3, lw=0.4)
    ax.tick_params(labelsize=7)


def _pr_point(ax, x, y, colour, **marker) -> None:
    """A median point with faint CI crosses (both medians' 95 % CIs)."""
    ax.errorbar(
        x.median,
        y.median,
        xerr=[[x.median - x.low], [x.high - x.median]],
        yerr=[[y.median - y.low], [y.high - y.median]],
        fmt="none",
        ecolor=colour,
        elinewidth=0.6,
        alpha=0.4,
    )
    ax.plot(x.median, y.median, color=colour, ls="none", **marker)


def _pr_legend(rows, nulls) -> list:
    handles = [
        Line2D([], [], color=vocabulary.penalty(p).colour, lw=3, label=vocabulary.penalty(p).label)
        for p in cells.weight_penalties(rows)
    ]
    handles += [
        Line2D(
            [],
            [],
            color="black",
            marker=TARGET_MARKERS.get(t, "o"),
            ls="none",
            label=f"on {target_label(t)}",
        )
        for t in swept_targets(rows)
    ]
    if any(cells.role(r).startswith("on_") for r in rows):
        handles.append(
            Line2D(
                [],
                [],
                color="black",
                marker="o",
                mfc="none",
                ls="none",
                label="hollow: on top of R1",
            )
        )
    handles += [
        Line2D(
            [],
            [],
            color=vocabulary.penalty(p).colour,
            marker=BASELINE_MARKERS[p],
            mec="black",
            ms=9,
            ls="none",
            label=f"baseline: {vocabulary.penalty(p).label}",
        )
        for p in cells.baselines_present(rows)
    ]
    n = nulls["num_samples"] if nulls else 0
    handles += [
        Line2D(
            [],
            [],
            color=colour,
            marker=NULL_MARKERS[kind],
            ms=8,
            ls="none",
            label=label.format(n=n),
        )
        for kind, (label, colour, _) in NULL_STYLES.items()
        if cells.null_value(nulls, kind, "precision") is not None
    ]
    return handles


@registry.register("fig9_precision_recall", scope=registry.EXPERIMENT, kinds=("image_gan",))
def _precision_recall(study, experiment):
    return fig_precision_recall(experiment.rows, study.preset, experiment.nulls)
