"""4b. Stability of the image GANs: FD over training and the fraction of unstable runs.

Same conventions as :mod:`experiments.study.figures.panels`. The curves are the runs'
in-training FDs (``metrics.jsonl``, ``config.eval.fd_every``; fewer samples
than the final score): per step the median over a cell's seeds with its 95 %
bootstrap CI, a run that diverged counting as +inf after its last FD. A run
is unstable as :func:`experiments.study.cells.instability` says (diverged,
oscillating, collapsed, or a final FD above twice the unregularised median),
with the thresholds of the stable experiment in an unstable setting
(:func:`experiments.study.cells.stable_rows`), never of the broken baseline.
"""

import math
import pathlib

import numpy as np
from matplotlib.figure import Figure

from experiments.study import cells, vocabulary
from experiments.study.cells import swept_targets
from experiments.study.figures import registry
from experiments.study.figures.panels import (
    edge,
    figure_title,
    finish,
    layout,
    shared_legend,
    style_axes,
    value_text,
)
from regan_jax import workdir


def fig_stability(rows, root, preset: str, stable_rows=None) -> Figure:
    """4b. FD over training (middle strength, target both) and the unstable fraction per penalty.

    ``stable_rows``: the rows whose unregularised runs set the instability
    thresholds (default ``rows``).
    """
    fig = Figure(figsize=(12, 5.2), dpi=110)
    ax_fd, ax_bar = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    target = "both" if "both" in swept_targets(rows) else (swept_targets(rows) or [None])[0]
    middle, radius = cells.middle_strength(rows), cells.middle_strength(rows, radius=True)
    deferred = []
    for key in _curve_keys(rows, target, middle, radius):
        _curve(ax_fd, rows, root, key, deferred, cells.is_effective(rows))
    finish(ax_fd, deferred)
    style_axes(ax_fd, "Fréchet distance in training (fewer samples) ↓", "training step", False)
    ax_fd.set_title(
        f"FD over training: penalties on {target} at the middle strength "
        f"{middle:.3g}" + (f" (max-norm r/r₀ {radius:.3g})" if radius else ""),
        fontsize=8.5,
    )
    unstable_panel(ax_bar, rows, stable_rows)
    layout(
        fig,
        figure_title("4b", "Stability", rows, preset, f"(unstable = {cells.UNSTABLE_RULE})"),
        shared_legend(fig, [ax_fd], ncol=5),
    )
    return fig


def _curve_keys(rows, target, middle, radius) -> list:
    """The cells of 4b's curves: the baselines, then each penalty at the middle strength."""
    keys = list(cells.baseline_keys(rows, cells.headline_metric(rows)).values())
    for penalty in cells.weight_penalties(rows):
        value = radius if penalty == "max_norm" else middle
        keys.append(cells.CellKey("none", penalty, target, value))
    return keys


def _curve(ax, rows, root, key, deferred, effective: bool) -> None:
    """Median in-training FD over a cell's seeds with its CI band (diverged: +inf after)."""
    runs = cells.runs_of(rows, key)
    curves = [(r, _metric_curve(root, r["run"], "fd")) for r in runs]
    steps = sorted({s for _, c in curves for s in c})
    if not steps:
        return
    summaries = []
    for step in steps:
        values = [c.get(step, math.inf if r.get("diverged") else None) for r, c in curves]
        values = tuple(v for v in values if v is not None)
        summaries.append(cells.summarise(values) if values else None)
    xs = np.array([s for s, c in zip(steps, summaries) if c], float)
    med, low, high = (
        np.array([getattr(c, f) for c in summaries if c], float) for f in ("median", "low", "high")
    )
    where = value_text(key, effective)
    colour = vocabulary.penalty(key.penalty).colour
    ax.plot(
        xs,
        np.where(np.isfinite(med), med, np.nan),
        color=colour,
        marker="o",
        ms=3,
        lw=1.2,
        ls="--" if key.penalty == "max_norm" else "-",
        label=f"{vocabulary.penalty(key.penalty).label}{' ' + where if where else ''}",
    )
    ends, at = np.concatenate([low, high]), np.concatenate([xs, xs])
    finite = np.isfinite(ends)  # the band's finite ends count for the panel's limits
    ax.update_datalim(np.column_stack([at[finite], ends[finite]]))
    ax.autoscale_view()
    deferred.append(
        lambda b, t: ax.fill_between(
            xs,
            [edge(v, b, t) for v in low],
            [edge(v, b, t) for v in high],
            color=colour,
            alpha=0.08,
            lw=0,
        )
    )


def unstable_panel(ax, rows, stable_rows=None) -> None:
    """Unstable runs per penalty (all strengths, targets, seeds): k/n, Clopper–Pearson 95 %."""
    flags = cells.instability(rows, stable_rows)
    groups = [
        (
            vocabulary.penalty(p).label.split(" (")[0],
            p,
            [r for r in rows if r["penalty"] == p and cells.role(r) == "baseline"],
        )
        for p in cells.baselines_present(rows)
    ]
    groups += [
        (
            vocabulary.penalty(p).label,
            p,
            [r for r in rows if r["penalty"] == p and cells.role(r) == "weight"],
        )
        for p in cells.weight_penalties(rows)
    ]
    for on in sorted({cells.regulariser(r) for r in rows} - {"none", "spectral_norm"}):
        groups += [
            (
                f"{vocabulary.penalty(p).short} + {vocabulary.penalty(on).short}",
                p,
                [r for r in rows if r["penalty"] == p and cells.role(r) == f"on_{on}"],
            )
            for p in cells.weight_penalties(rows, on)
        ]
    for i, (_, penalty, runs) in enumerate(groups):
        share = cells.unstable_fraction(runs, flags)
        fraction = share.k / share.n
        ax.barh(i, fraction, color=vocabulary.penalty(penalty).colour, alpha=0.8)
        ax.errorbar(
            fraction,
            i,
            xerr=[[fraction - share.low], [share.high - fraction]],
            color="black",
            capsize=3,
            lw=1,
        )
        ax.text(
            1.02,
            i,
            f"{share.k}/{share.n}",
            va="center",
            fontsize=7,
            transform=ax.get_yaxis_transform(),
        )
    ax.set_yticks(range(len(groups)), [g[0] for g in groups], fontsize=7)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel(
        "fraction of runs unstable (all strengths, targets, seeds; bars: Clopper–Pearson 95 %)",
        fontsize=7.5,
    )
    ax.set_title("unstable runs (k/n at the right)", fontsize=8.5)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, lw=0.4, axis="x")


def _metric_curve(root, run: str, metric: str) -> dict:
    """``{step: value}`` of ``metric`` in a run's metrics.jsonl (finite values only)."""
    return {
        row["step"]: float(row[metric])
        for row in workdir.read_metrics(pathlib.Path(root) / run)
        if row.get(metric) is not None
    }


@registry.register("fig4b_stability", scope=registry.EXPERIMENT, kinds=("image_gan",))
def _stability(study, experiment):
    every_row = [r for e in study.experiments.values() for r in e.rows]
    return fig_stability(
        experiment.rows, study.root, study.preset, cells.stable_rows(every_row, experiment.name)
    )
