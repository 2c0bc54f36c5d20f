"""Shared drawing of the study's figures: strength panels, panel grids, captions, legends.

Every figure function takes the rows of :func:`experiments.study.results.collect`,
the preset's name (for the caption) and, where a figure reads runs' files
or null references, the results directory; it returns a matplotlib
``Figure`` (Agg, no pyplot state), so notebooks can redraw any figure.

What a panel shows follows :mod:`experiments.study.cells`: per cell the median over
seeds with its 95 % bootstrap CI (a diverged run counting as the worst value);
x the effective strength (log) where the grid is calibrated, else the raw
value; max-norm radii on their own (top, reversed) axis; the unswept
baselines as horizontal bands (median line, CI band); the null references of
``nulls.json`` as dashed lines (a null far off the data's scale is written in
the panel instead of stretching it). A median or CI end at an infinite value
(diverged runs) is drawn at the panel's edge as a triangle. Colours and labels
are the vocabulary's (:mod:`experiments.study.vocabulary`).
"""

import math
import pathlib
import textwrap
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from experiments.study import cells, vocabulary
from experiments.study.captions import (
    MIXTURE_REAL,
    NULL_STYLES,
    PACGAN_LABEL,
    caption,
    pacgan_numbers,
    sn_note,
)

OFF_SCALE = "median at the worst value (diverged runs), off scale"
NULL_REACH = 2.0  # a null further than this many data spans away is written, not drawn
UNBOUNDED = ("fd", "kid", "intra_fd", "recon", "elbo", "density")  # where NULL_REACH applies
RADIUS_NOTE = " (top axis: radius)"  # after max-norm's label in strength panels


class Line(NamedTuple):
    """A horizontal reference line: value, legend label, colour, dash pattern."""

    value: float
    label: str
    colour: str
    style: object


# ----------------------------------------------------------------------------
# Axis texts
# ----------------------------------------------------------------------------


def strength_label(rows) -> str:
    """The x-axis label: effective strength where calibrated, else raw λ."""
    if cells.is_effective(rows):
        return "effective strength (log; raw λ in results.csv)"
    return "raw strength λ (log; uncalibrated grid)"


def number(value: float) -> str:
    """3 significant digits, ∞ for an infinity (a diverged run's worst value)."""
    return ("∞" if value > 0 else "−∞") if math.isinf(value) else f"{value:.3g}"


def value_text(key, effective: bool) -> str:
    """``e=0.1`` / ``λ=0.01`` / ``r/r₀=1`` / ``lr=2e-4`` of a cell key ('' if unswept)."""
    if key.strength is None:
        return ""
    symbol = (
        "lr"
        if key.penalty == "spectral_norm"
        else ("r/r₀" if effective else "r")
        if key.penalty == "max_norm"
        else "e"
        if effective
        else "λ"
    )
    return f"{symbol}={key.strength:.3g}"


# ----------------------------------------------------------------------------
# Drawing primitives
# ----------------------------------------------------------------------------


def edge(value: float, bottom: float, top: float) -> float:
    """An infinite value at the panel's edge (its sign's side), a finite one as it is."""
    return value if math.isfinite(value) else (top if value > 0 else bottom)


def _series(ax, points, deferred: list, *, colour, label, ls="-", marker="o"):
    """Medians joined by a line with CI bars; infinite parts deferred to the panel's edges."""
    xs = np.array([x for x, _ in points], float)
    med, low, high = (
        np.array([getattr(c, f) for _, c in points], float) for f in ("median", "low", "high")
    )
    finite = np.isfinite(med)
    ax.plot(
        xs[finite], med[finite], color=colour, ls=ls, marker=marker, ms=3.5, lw=1.2, label=label
    )
    bounded = finite & np.isfinite(low) & np.isfinite(high)
    if bounded.any():
        ax.errorbar(
            xs[bounded],
            med[bounded],
            yerr=[med[bounded] - low[bounded], high[bounded] - med[bounded]],
            fmt="none",
            ecolor=colour,
            elinewidth=1,
            capsize=2,
        )
    for x, m, lo, hi in zip(xs[~bounded], med[~bounded], low[~bounded], high[~bounded]):
        deferred.append(
            lambda b, t, x=x, m=m, lo=lo, hi=hi: _overflow(ax, x, m, lo, hi, b, t, colour)
        )


def _overflow(ax, x, median, low, high, bottom, top, colour):
    ax.vlines(x, edge(low, bottom, top), edge(high, bottom, top), color=colour, lw=1, ls=":")
    if not math.isfinite(median):
        ax.plot(
            [x],
            [edge(median, bottom, top)],
            marker="^" if median > 0 else "v",
            color=colour,
            mec="red",
            ms=6,
            ls="none",
            clip_on=False,
            zorder=5,
            label=OFF_SCALE,
        )


def _band(ax, cell, deferred: list, *, colour, label):
    """A baseline: its median as a horizontal line and its CI as a band."""
    med, low, high = cell.median, cell.low, cell.high
    if math.isfinite(med):
        ax.axhline(med, color=colour, lw=1.1, label=label)
    if math.isfinite(med) and math.isfinite(low) and math.isfinite(high):
        ax.axhspan(low, high, color=colour, alpha=0.12, lw=0)
        return

    def draw(bottom, top):
        if not math.isfinite(med):
            ax.axhline(
                edge(med, bottom, top), color=colour, lw=2, ls=":", label=f"{label} — {OFF_SCALE}"
            )
        ax.axhspan(edge(low, bottom, top), edge(high, bottom, top), color=colour, alpha=0.07, lw=0)

    deferred.append(draw)


def _reference_lines(ax, lines, metric: str) -> None:
    """Dashed reference lines.

    On an unbounded metric's axis (FD, KID, ...) a line further than
    :data:`NULL_REACH` data spans away is written in the panel instead, so
    that it does not squash the data.
    """
    bottom, top = ax.get_ylim()
    reach = NULL_REACH * max(top - bottom, 1e-12)
    far = []
    for line in lines:
        if metric not in UNBOUNDED or bottom - reach <= line.value <= top + reach:
            ax.axhline(line.value, color=line.colour, ls=line.style, lw=1.1, label=line.label)
        else:
            far.append(f"{line.label.split(', N=')[0].removeprefix('null: ')} {line.value:.3g}")
    if far:
        text = ax.text(
            0.02,
            0.97,
            textwrap.fill("off scale: " + "; ".join(far), 58),
            transform=ax.transAxes,
            va="top",
            fontsize=6,
            color="0.3",
            bbox=dict(facecolor="white", alpha=0.7, lw=0, pad=1),
        )
        text.set_in_layout(False)


def finish(ax, deferred: list) -> None:
    """Draws what waited for the panel's limits, keeping those limits."""
    bottom, top = ax.get_ylim()
    for draw in deferred:
        draw(bottom, top)
    ax.set_ylim(bottom, top)


def style_axes(ax, ylabel: str, xlabel: str | None, log_x: bool = True) -> None:
    if log_x and ax.has_data():
        ax.set_xscale("log")
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=7.5)
    ax.set_ylabel(ylabel, fontsize=7.5)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, which="both", lw=0.4)


def log_y_if_decades(ax, rows, metric: str, target: str, decades: float = 2.0) -> None:
    """A symmetric-log y axis where ``metric``'s cells on ``target`` span ``decades`` or more.

    Read from the positive medians and CI ends of the cells drawn in the
    panel (the baselines' too); linear below the smallest of them, so that
    exact zeros stay on the axis (given a decade's height); the axis starts
    at 0 where no value is negative.
    """
    table = cells.cells(rows, metric)
    values = np.array(
        [v for k, c in table.items() if k.target in (target, None) for v in c[:3]], float
    )
    values = values[np.isfinite(values)]
    positive = values[values > 0]
    if positive.size and positive.max() >= positive.min() * 10**decades:
        bottom, top = ax.get_ylim()
        ax.set_yscale("symlog", linthresh=float(positive.min()), linscale=1.0)
        ax.set_ylim(0.0 if values.min() >= 0 else bottom, top)


def null_lines(nulls, metric: str, *, mixture: bool = False, kinds=None) -> list[Line]:
    """The null references of ``metric`` in ``nulls.json`` (none where it has none).

    ``kinds``: only these nulls (default: every one in ``NULL_STYLES``).
    """
    out = []
    for kind, (label, colour, style) in NULL_STYLES.items():
        if kinds is not None and kind not in kinds:
            continue
        value = cells.null_value(nulls, kind, metric)
        if value is not None:
            label = MIXTURE_REAL if mixture and kind == "real" else label
            out.append(Line(value, label.format(n=nulls["num_samples"]), colour, style))
    return out


def pacgan_lines(name: str, metric: str) -> list[Line]:
    """The published PacGAN GAN number of a mixture experiment's metric, if any."""
    table = pacgan_numbers(name) or {}
    return [Line(table[metric], PACGAN_LABEL, "indigo", "-.")] if metric in table else []


# ----------------------------------------------------------------------------
# Panels and figures
# ----------------------------------------------------------------------------


def strength_panel(
    ax, rows, metric: str, target: str, *, lines=(), on: str = "none", legend: bool = False
) -> None:
    """``metric`` against strength for every weight penalty on ``target``.

    Medians with CI bars per penalty (max-norm against its radius on a top
    axis, reversed so that stronger is to the right on both); the baselines
    as bands (``on='r1'``: penalties on top of R1, with the R1 and
    unregularised bands); then the reference ``lines`` (:func:`null_lines`).
    """
    table = cells.cells(rows, metric)
    deferred, radius_ax = [], None
    for penalty in cells.weight_penalties(rows, on):
        points = sorted((k.strength, c) for k, c in table.items() if k[:3] == (on, penalty, target))
        if not points:
            continue
        axis = ax
        if penalty == "max_norm":
            radius_ax = radius_ax or _radius_axis(ax)
            axis = radius_ax
        label = (
            vocabulary.penalty(penalty).label
            + (RADIUS_NOTE if penalty == "max_norm" else "")
            + ("" if on == "none" else f" + {vocabulary.penalty(on).short}")
        )
        _series(
            axis,
            points,
            deferred,
            colour=vocabulary.penalty(penalty).colour,
            label=label,
            ls="--" if penalty == "max_norm" else "-",
        )
    for penalty, key in cells.baseline_keys(rows, cells.headline_metric(rows)).items():
        if key in table and (on == "none" or penalty in ("none", on)):
            _band(
                ax,
                table[key],
                deferred,
                colour=vocabulary.penalty(penalty).colour,
                label=f"baseline: {vocabulary.penalty(penalty).label}",
            )
    _reference_lines(ax, lines, metric)
    finish(ax, deferred)
    style_axes(ax, vocabulary.metric(metric).label, strength_label(rows))
    if radius_ax is not None:
        style_axes(radius_ax, "", "max-norm radius r/r₀ (reversed: stronger →)")
        radii = sorted({k.strength for k in table if k.penalty == "max_norm"})
        radius_ax.set_xticks(radii, [f"{r:g}" for r in radii])
        radius_ax.set_xticks([], minor=True)
        radius_ax.invert_xaxis()
        radius_ax.xaxis.label.set_color(vocabulary.PENALTIES["max_norm"].colour)
    if legend:
        ax.legend(fontsize=6.5, loc="best", framealpha=0.8)


def _radius_axis(ax):
    twin = ax.twiny()
    twin.set_xscale("log")
    return twin


def panel_figure(panels, title: str, *, width: float = 3.6, height: float = 2.9) -> Figure:
    """A grid of panels with one legend under them.

    ``panels``: rows of ``(title, draw(ax))`` (None: a blank cell).
    """
    ncols = max(len(p) for p in panels)
    fig = Figure(figsize=(max(7.5, width * ncols + 0.4), height * len(panels) + 1.8), dpi=110)
    axes = fig.subplots(len(panels), ncols, squeeze=False)
    for i, row in enumerate(panels):
        for j in range(ncols):
            ax = axes[i, j]
            if j >= len(row) or row[j] is None:
                ax.axis("off")
                continue
            name, draw = row[j]
            draw(ax)
            ax.set_title(name, fontsize=8.5, pad=16 if _has_twin(ax) else 4)
    layout(fig, title, shared_legend(fig))
    return fig


def _has_twin(ax) -> bool:
    return any(other is not ax and other.bbox.bounds == ax.bbox.bounds for other in ax.figure.axes)


def strength_figure(rows, metrics, targets, title: str, *, nulls=None, on: str = "none") -> Figure:
    """:func:`strength_panel` s: one row per metric, one column per target, nulls drawn."""

    def draw(metric, target):
        lines = null_lines(nulls, metric)
        return lambda ax: strength_panel(ax, rows, metric, target, lines=lines, on=on)

    panels = [
        [(f"penalty on {vocabulary.target_label(t)}", draw(m, t)) for t in targets]
        for m in metrics
        if cells.has_metric(rows, m)
    ]
    return panel_figure(panels, title)


def layout(fig, title: str, legend_rows: int = 0) -> None:
    """Sets the wrapped suptitle and fits the panels between it and a bottom legend."""
    width, height = fig.get_size_inches()
    lines = [textwrap.fill(line, int(width * 14)) for line in title.split("\n")]
    title = "\n".join(lines)
    top = 1 - (0.17 * title.count("\n") + 0.3) / height
    bottom = (0.2 * legend_rows + 0.08) / height if legend_rows else 0
    fig.tight_layout(rect=(0, bottom, 1, top))  # before the suptitle: it would count it twice
    fig.suptitle(title, fontsize=9, y=1 - 0.08 / height)


def shared_legend(fig, axes=None, ncol: int | None = None) -> int:
    """One legend under the panels with every labelled artist once; returns its rows.

    ``ncol``: its columns (default: as many as fit the figure's width).
    """
    ncol = ncol or max(2, min(5, int(fig.get_figwidth() / 2.5)))
    handles, labels = {}, []
    for ax in fig.axes if axes is None else np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles and not label.startswith("_"):
                handles[label] = h
                labels.append(label)
    if labels:
        fig.legend(
            [handles[lb] for lb in labels],
            labels,
            loc="lower center",
            ncol=min(ncol, len(labels)),
            fontsize=7,
            frameon=False,
        )
    return math.ceil(len(labels) / ncol)


def figure_title(
    number: str, what: str, rows, preset: str, note: str = "", dropped: bool = False
) -> str:
    """``N. what — experiment note; SN note`` and the :func:`caption` line."""
    name = rows[0]["config.name"]
    extra = f" {note}" if note else ""
    return (
        f"{number}. {what} — {name}{extra}{sn_note(rows)}\n{caption(rows, preset, dropped=dropped)}"
    )


# ----------------------------------------------------------------------------
# Sample panels
# ----------------------------------------------------------------------------


def final_samples(root, run) -> np.ndarray:
    """A run's final samples (``samples/final.npz`` in its run directory)."""
    return np.load(pathlib.Path(root) / run["run"] / "samples" / "final.npz")["samples"]


def score_text(cell, metric: str) -> str:
    """``median FD 35.2 [30.1, 50]`` of a cell (∞: diverged runs; None: unscored)."""
    name = vocabulary.metric(metric).short
    if cell is None:
        return f"no {name}"
    return f"median {name} {number(cell.median)} [{number(cell.low)}, {number(cell.high)}]"


def panel_keys(rows, metric: str, target, strength_of) -> list:
    """``(label, CellKey)`` per panel: the baselines, then each weight penalty.

    ``strength_of(penalty)``: the strength a weight penalty is shown at.
    """
    keys = [(vocabulary.penalty(p).short, k) for p, k in cells.baseline_keys(rows, metric).items()]
    for penalty in cells.weight_penalties(rows):
        keys.append(
            (
                vocabulary.penalty(penalty).short,
                cells.CellKey("none", penalty, target, strength_of(penalty)),
            )
        )
    return keys
