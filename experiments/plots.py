"""Drawing the study's figures (FIGURES.md) from ``results.csv`` rows.

Every figure function takes the rows of :func:`experiments.sweep.collect`,
the preset's name (for the caption) and, where a figure reads runs' files
or null references, the results directory; it returns a matplotlib
``Figure`` (Agg, no pyplot state), so notebooks can redraw any figure.

What a panel shows follows :mod:`experiments.cells`: per cell the median over
seeds with its 95 % bootstrap CI (a diverged run counting as the worst value);
x the effective strength (log) where the grid is calibrated, else the raw
value; max-norm radii on their own (top, reversed) axis; the unswept
baselines as horizontal bands (median line, CI band); the null references of
``nulls.json`` as dashed lines (a null far off the data's scale is written in
the panel instead of stretching it). A median or CI end at an infinite value
(diverged runs) is drawn at the panel's edge as a triangle.

The statistics are :mod:`experiments.cells`'; figures drawn from samples are
in :mod:`experiments.sample_figures`, 4a in :mod:`experiments.dirac_figures`,
4b in :mod:`experiments.stability_figures`, 9 in
:mod:`experiments.fidelity_figures`.
"""
import math
import textwrap
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from experiments import cells
from experiments.cells import METRICS, swept_targets

# Row selection lives in :mod:`experiments.cells`; the notebooks reach it from here too.
experiment_rows, experiments_present = cells.experiment_rows, cells.experiments_present

# One colour per penalty, fixed across figures (colour-blind-safe tab10 order).
COLOURS = {
    "none": "black", "l2": "tab:blue", "weight_decay": "tab:cyan", "l1": "tab:orange",
    "prox_l1": "tab:red", "elastic_net": "tab:purple", "group_l1": "tab:brown",
    "max_norm": "tab:olive", "spectral_norm": "tab:green", "r1": "tab:pink",
    "wgan_gp": "tab:gray", "custom": "gold",
}
LABELS = {
    "none": "none", "l2": "L2 (coupled)", "weight_decay": "weight decay (AdamW)",
    "l1": "L1 (subgradient)", "prox_l1": "L1 (proximal)", "elastic_net": "elastic net (prox)",
    "group_l1": "group L1 (prox)", "max_norm": "max-norm (top axis: radius)",
    "spectral_norm": "spectral norm (best lr)", "r1": "R1 penalty", "wgan_gp": "WGAN-GP",
    "custom": "custom",
}
SHORT = {
    "none": "none", "l2": "L2", "weight_decay": "AdamW", "l1": "L1 subgrad", "prox_l1": "L1 prox",
    "elastic_net": "elastic net", "group_l1": "group L1", "max_norm": "max-norm",
    "spectral_norm": "spectral norm", "r1": "R1", "wgan_gp": "WGAN-GP", "custom": "custom",
}
# Null references: (legend label, colour, dash pattern); {n}: the nulls' sample count.
NULL_STYLES = {
    "noise": ("null: noise", "dimgray", (0, (5, 2))),
    "shuffled": ("null: shuffled pixels", "rosybrown", (0, (5, 2, 1, 2))),
    "real": ("null: held-out real, N={n}", "darkcyan", (0, (2, 1.5))),
}
MIXTURE_REAL = "null: true mixture samples, N={n}"
PACGAN_LABEL = "PacGAN Table 1 (GAN, published)"
# PacGAN (Lin et al. 2018) Table 1, the unregularised GAN: modes, HQ fraction, reverse KL.
PACGAN = {"ring8": {"modes": 6.3, "hq_fraction": 0.982, "reverse_kl": 0.45},
          "grid25": {"modes": 17.3, "hq_fraction": 0.948, "reverse_kl": 0.70}}
OFF_SCALE = "median at the worst value (diverged runs), off scale"
NULL_REACH = 2.0  # a null further than this many data spans away is written, not drawn
UNBOUNDED = ("fd", "kid", "intra_fd", "recon", "elbo", "density")  # where NULL_REACH applies
SN_NOTE = "spectral norm: best of its lr sweep, selected on the same seeds (optimistic for it)"


class Line(NamedTuple):
    """A horizontal reference line: value, legend label, colour, dash pattern."""
    value: float
    label: str
    colour: str
    style: object


# ----------------------------------------------------------------------------
# Captions
# ----------------------------------------------------------------------------

def caption(rows, preset: str, *, figure: bool = True, dropped: bool = False) -> str:
    """``preset P · seeds 0,1 · N steps · ...``: what every figure and table states.

    ``dropped``: the figure's metric has no direction, so diverged runs are
    left out (said so) instead of counting as the worst value.
    """
    seeds = sorted({int(r["seed"]) for r in rows})
    steps = sorted({int(r["config.steps"]) for r in rows})
    diverged = ("diverged runs left out (a metric without a better direction)" if dropped else
                "a diverged run counts as the worst value (FD = +∞, modes = 0), never dropped")
    what = (f"median over seeds, bars/bands: 95 % bootstrap CI; {diverged}" if figure
            else "median [95 % bootstrap CI]")
    return (f"preset {preset} · seeds {','.join(map(str, seeds))} · "
            f"{'/'.join(map(str, steps))} steps · {what}")


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
    symbol = ("lr" if key.penalty == "spectral_norm" else
              ("r/r₀" if effective else "r") if key.penalty == "max_norm" else
              "e" if effective else "λ")
    return f"{symbol}={key.strength:.3g}"


# ----------------------------------------------------------------------------
# Drawing primitives
# ----------------------------------------------------------------------------

def _edge(value: float, bottom: float, top: float) -> float:
    """An infinite value at the panel's edge (its sign's side), a finite one as it is."""
    return value if math.isfinite(value) else (top if value > 0 else bottom)


def _series(ax, points, deferred: list, *, colour, label, ls="-", marker="o"):
    """Medians joined by a line with CI bars; infinite parts deferred to the panel's edges."""
    xs = np.array([x for x, _ in points], float)
    med, low, high = (np.array([getattr(c, f) for _, c in points], float)
                      for f in ("median", "low", "high"))
    finite = np.isfinite(med)
    ax.plot(xs[finite], med[finite], color=colour, ls=ls, marker=marker, ms=3.5, lw=1.2,
            label=label)
    bounded = finite & np.isfinite(low) & np.isfinite(high)
    if bounded.any():
        ax.errorbar(xs[bounded], med[bounded], yerr=[med[bounded] - low[bounded],
                                                     high[bounded] - med[bounded]],
                    fmt="none", ecolor=colour, elinewidth=1, capsize=2)
    for x, m, lo, hi in zip(xs[~bounded], med[~bounded], low[~bounded], high[~bounded]):
        deferred.append(lambda b, t, x=x, m=m, lo=lo, hi=hi: _overflow(ax, x, m, lo, hi, b, t,
                                                                      colour))


def _overflow(ax, x, median, low, high, bottom, top, colour):
    ax.vlines(x, _edge(low, bottom, top), _edge(high, bottom, top), color=colour, lw=1,
              ls=":")
    if not math.isfinite(median):
        ax.plot([x], [_edge(median, bottom, top)], marker="^" if median > 0 else "v",
                color=colour, mec="red", ms=6, ls="none", clip_on=False, zorder=5,
                label=OFF_SCALE)


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
            ax.axhline(_edge(med, bottom, top), color=colour, lw=2, ls=":",
                       label=f"{label} — {OFF_SCALE}")
        ax.axhspan(_edge(low, bottom, top), _edge(high, bottom, top), color=colour, alpha=0.07,
                   lw=0)
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
        text = ax.text(0.02, 0.97, textwrap.fill("off scale: " + "; ".join(far), 58),
                       transform=ax.transAxes, va="top", fontsize=6, color="0.3",
                       bbox=dict(facecolor="white", alpha=0.7, lw=0, pad=1))
        text.set_in_layout(False)


def _finish(ax, deferred: list) -> None:
    """Draws what waited for the panel's limits, keeping those limits."""
    bottom, top = ax.get_ylim()
    for draw in deferred:
        draw(bottom, top)
    ax.set_ylim(bottom, top)


def _style(ax, ylabel: str, xlabel: str | None, log_x: bool = True) -> None:
    if log_x and ax.has_data():
        ax.set_xscale("log")
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=7.5)
    ax.set_ylabel(ylabel, fontsize=7.5)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, which="both", lw=0.4)


def null_lines(nulls, metric: str, *, mixture: bool = False) -> list[Line]:
    """The null references of ``metric`` in ``nulls.json`` (none where it has none)."""
    out = []
    for kind, (label, colour, style) in NULL_STYLES.items():
        value = cells.null_value(nulls, kind, metric)
        if value is not None:
            label = MIXTURE_REAL if mixture and kind == "real" else label
            out.append(Line(value, label.format(n=nulls["num_samples"]), colour, style))
    return out


def pacgan_numbers(name: str) -> dict | None:
    """PacGAN's published unregularised-GAN numbers of a mixture experiment (None: not one)."""
    return next((v for k, v in PACGAN.items() if name.startswith(k)), None)


def pacgan_lines(name: str, metric: str) -> list[Line]:
    """The published PacGAN GAN number of a mixture experiment's metric, if any."""
    table = pacgan_numbers(name) or {}
    return [Line(table[metric], PACGAN_LABEL, "indigo", "-.")] if metric in table else []


# ----------------------------------------------------------------------------
# Panels and figures
# ----------------------------------------------------------------------------

def strength_panel(ax, rows, metric: str, target: str, *, lines=(), on: str = "none",
                   legend: bool = False) -> None:
    """``metric`` against strength for every weight penalty on ``target``.

    Medians with CI bars per penalty (max-norm against its radius on a top
    axis, reversed so that stronger is to the right on both); the baselines
    as bands (``on='r1'``: penalties on top of R1, with the R1 and
    unregularised bands); then the reference ``lines`` (:func:`null_lines`).
    """
    table = cells.cells(rows, metric)
    deferred, radius_ax = [], None
    for penalty in cells.weight_penalties(rows, on):
        points = sorted((k.strength, c) for k, c in table.items()
                        if k[:3] == (on, penalty, target))
        if not points:
            continue
        axis = ax
        if penalty == "max_norm":
            radius_ax = radius_ax or _radius_axis(ax)
            axis = radius_ax
        label = LABELS[penalty] + ("" if on == "none" else f" + {SHORT.get(on, on)}")
        _series(axis, points, deferred, colour=COLOURS[penalty], label=label,
                ls="--" if penalty == "max_norm" else "-")
    for penalty, key in cells.baseline_keys(rows, cells.headline_metric(rows)).items():
        if key in table and (on == "none" or penalty in ("none", on)):
            _band(ax, table[key], deferred, colour=COLOURS[penalty],
                  label=f"baseline: {LABELS[penalty]}")
    _reference_lines(ax, lines, metric)
    _finish(ax, deferred)
    _style(ax, METRICS[metric].label, strength_label(rows))
    if radius_ax is not None:
        _style(radius_ax, "", "max-norm radius r/r₀ (reversed: stronger →)")
        radii = sorted({k.strength for k in table if k.penalty == "max_norm"})
        radius_ax.set_xticks(radii, [f"{r:g}" for r in radii])
        radius_ax.set_xticks([], minor=True)
        radius_ax.invert_xaxis()
        radius_ax.xaxis.label.set_color(COLOURS["max_norm"])
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
    _layout(fig, title, _shared_legend(fig))
    return fig


def _has_twin(ax) -> bool:
    return any(other is not ax and other.bbox.bounds == ax.bbox.bounds
               for other in ax.figure.axes)


def strength_figure(rows, metrics, targets, title: str, *, nulls=None,
                    on: str = "none") -> Figure:
    """:func:`strength_panel` s: one row per metric, one column per target, nulls drawn."""
    def draw(metric, target):
        lines = null_lines(nulls, metric)
        return lambda ax: strength_panel(ax, rows, metric, target, lines=lines, on=on)
    panels = [[(f"penalty on {net_label(t)}", draw(m, t)) for t in targets]
              for m in metrics if cells.has_metric(rows, m)]
    return panel_figure(panels, title)


def net_label(target: str) -> str:
    return target.upper() if len(target) == 1 else target


def _layout(fig, title: str, legend_rows: int = 0) -> None:
    """Sets the wrapped suptitle and fits the panels between it and a bottom legend."""
    width, height = fig.get_size_inches()
    lines = [textwrap.fill(line, int(width * 14)) for line in title.split("\n")]
    title = "\n".join(lines)
    top = 1 - (0.17 * title.count("\n") + 0.3) / height
    bottom = (0.2 * legend_rows + 0.08) / height if legend_rows else 0
    fig.tight_layout(rect=(0, bottom, 1, top))  # before the suptitle: it would count it twice
    fig.suptitle(title, fontsize=9, y=1 - 0.08 / height)


def _shared_legend(fig, axes=None, ncol: int | None = None) -> int:
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
        fig.legend([handles[lb] for lb in labels], labels, loc="lower center",
                   ncol=min(ncol, len(labels)), fontsize=7, frameon=False)
    return math.ceil(len(labels) / ncol)


def sn_note(rows) -> str:
    """``'; ' + SN_NOTE`` where ``rows`` hold spectral-norm runs (its lr was selected), else ''."""
    return f"; {SN_NOTE}" if any(r["penalty"] == "spectral_norm" for r in rows) else ""


def _title(number: str, what: str, rows, preset: str, note: str = "",
           dropped: bool = False) -> str:
    """``N. what — experiment note; SN note`` and the :func:`caption` line."""
    name = rows[0]["config.name"]
    extra = f" {note}" if note else ""
    return (f"{number}. {what} — {name}{extra}{sn_note(rows)}\n"
            f"{caption(rows, preset, dropped=dropped)}")


# ----------------------------------------------------------------------------
# The figures of FIGURES.md
# ----------------------------------------------------------------------------

def fig_sparsity(rows, preset: str) -> Figure:
    """1. Exactly-zero weight fraction (and all-zero units, group L1's unit) vs strength."""
    targets = [t for t in swept_targets(rows) if t != "both"] or swept_targets(rows)
    return strength_figure(
        rows, ("sparsity", "filter_sparsity"), targets,
        _title("1", "Sparsity vs strength", rows, preset,
               "(top row: exactly-zero weights; bottom: all-zero units/filters) — proximal "
               "steps give exact zeros, subgradient steps do not", dropped=True))


def fig_mixture_metrics(runs_by_experiment: dict, preset: str, nulls_by_experiment=None
                        ) -> Figure:
    """2b. Modes, robust modes, HQ fraction, reverse KL vs strength (a row per mixture × target).

    Lines: the noise and true-mixture nulls and the published PacGAN GAN numbers.
    """
    nulls_by_experiment = nulls_by_experiment or {}
    metrics = ("modes", "robust_modes", "hq_fraction", "reverse_kl")
    panels, all_rows = [], []
    for name in sorted(runs_by_experiment, key=mixture_order):
        rows = runs_by_experiment[name]
        all_rows += rows
        nulls = nulls_by_experiment.get(name)
        for target in swept_targets(rows):
            panels.append([(f"{name}, penalty on {net_label(target)}",
                            _mixture_panel(rows, m, target, name, nulls))
                           for m in metrics if cells.has_metric(rows, m)])
    return panel_figure(panels, "2b. Mode collapse on 2-D mixtures vs strength: does L1 increase "
                        f"diversity?\n{caption(all_rows, preset)}", width=3.3, height=2.6)


def _mixture_panel(rows, metric, target, name, nulls):
    lines = null_lines(nulls, metric, mixture=True) + pacgan_lines(name, metric)
    return lambda ax: strength_panel(ax, rows, metric, target, lines=lines)


def fig_quality(runs_by_experiment: dict, preset: str, nulls_by_experiment=None) -> Figure:
    """3. FD and KID vs strength, one column per target, per image GAN."""
    nulls_by_experiment = nulls_by_experiment or {}
    panels, all_rows = [], []
    for name, rows in runs_by_experiment.items():
        all_rows += rows
        for metric in ("fd", "kid"):
            if not cells.has_metric(rows, metric):
                continue
            lines = null_lines(nulls_by_experiment.get(name), metric)
            panels.append([(f"{name}: penalty on {net_label(t)}",
                            lambda ax, r=rows, m=metric, t=t, ln=lines:
                            strength_panel(ax, r, m, t, lines=ln))
                           for t in swept_targets(rows)])
    return panel_figure(panels, "3. Image quality vs strength (bands: baselines without a weight "
                        f"penalty){sn_note(all_rows)}\n{caption(all_rows, preset)}")


def fig_vae(rows, preset: str, nulls=None) -> Figure:
    """6. VAE: ELBO, reconstruction error and sample FD vs strength, encoder vs decoder."""
    return strength_figure(rows, ("elbo", "recon", "fd"), swept_targets(rows),
                           _title("6", "VAE: penalty on the encoder vs the decoder", rows,
                                  preset), nulls=nulls)


def fig_cgan(rows, preset: str, nulls=None) -> Figure:
    """7. Conditional GAN: classifier accuracy on conditional samples and intra-class FD."""
    return strength_figure(rows, ("cond_accuracy", "intra_fd", "fd"), swept_targets(rows),
                           _title("7", "Conditional GAN", rows, preset), nulls=nulls)


def fig_stacked(rows, preset: str, nulls=None) -> Figure:
    """8. Stacked digits: modes covered (of 1,000) and KL of the mode histogram to uniform."""
    return strength_figure(rows, ("modes", "class_kl"), swept_targets(rows),
                           _title("8", "Stacked digits (1,000 modes)", rows, preset),
                           nulls=nulls)


def fig_translation(rows, preset: str, nulls=None) -> Figure:
    """12. Unpaired translation: FD of G(A) against held-out B and content accuracy of G(a)."""
    return strength_figure(rows, ("fd", "content_accuracy", "cycle_error_a"), swept_targets(rows),
                           _title("12", "Unpaired translation (cycle GAN)", rows, preset),
                           nulls=nulls)


def fig_on_regulariser(rows, preset: str, nulls=None, on: str = "r1") -> Figure:
    """11. Weight penalties on top of R1 against the R1 band (and the unregularised one)."""
    mine = [r for r in rows if cells.regulariser(r) == on or r["penalty"] == "none"]
    targets = swept_targets([r for r in mine if cells.role(r) == f"on_{on}"])
    headline = cells.headline_metric(rows)
    metrics = (headline, "kid") if headline == "fd" else (headline, "robust_modes")
    return strength_figure(mine, metrics, targets,
                           _title("11", f"Weight penalties on top of {on.upper()} "
                                  f"(bands: {on.upper()} alone, and no regulariser)", mine, preset),
                           nulls=nulls, on=on)


def mixture_order(name: str):
    """ring8 before grid25 (easy before hard), others after by name."""
    return (0 if name.startswith("ring8") else 1 if name.startswith("grid25") else 2, name)
