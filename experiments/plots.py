"""Drawing the study's figures (FIGURES.md) from ``results.csv`` rows.

Every function here takes the rows of :func:`experiments.sweep.collect`
(one per run: study labels ``penalty``, ``target``, ``value``, ``seed``, the
summary's scores, ``config.*``), the directory the run paths are relative
to, and a caption line; it returns a matplotlib ``Figure`` (Agg, no pyplot
state), so notebooks can redraw any figure from a results directory.

Statistics are per cell (experiment, penalty, target, value): the median
over the seeds whose run finished with a score, and the min–max range as the
spread. A cell where some seed diverged (or produced no score) is marked
with a red ×, and never counts as a "best" setting.
"""
import math
import pathlib
import textwrap
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from experiments import study
from regan_jax import workdir

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
    "group_l1": "group L1 (prox)", "max_norm": "max-norm (x = radius r)",
    "spectral_norm": "spectral norm D", "r1": "R1 penalty", "wgan_gp": "WGAN-GP",
    "custom": "custom",
}
SHORT = {
    "none": "none", "l2": "L2", "weight_decay": "AdamW", "l1": "L1 subgrad", "prox_l1": "L1 prox",
    "elastic_net": "elastic net", "group_l1": "group L1", "max_norm": "max-norm",
    "spectral_norm": "spectral norm", "r1": "R1", "wgan_gp": "WGAN-GP", "custom": "custom",
}
# Metric: (axis label, lower is better?) -- None: no "better" direction.
METRICS = {
    "fd": ("Fréchet distance (features) ↓", True),
    "kid": ("KID ↓", True),
    "modes": ("modes covered ↑", False),
    "hq_fraction": ("high-quality fraction ↑", False),
    "reverse_kl": ("reverse KL to uniform ↓", True),
    "class_kl": ("KL(mode histogram ‖ uniform) ↓", True),
    "elbo": ("held-out ELBO (nats) ↑", False),
    "recon": ("reconstruction −log p(x|z) ↓", True),
    "cond_accuracy": ("classifier accuracy on samples ↑", False),
    "intra_fd": ("intra-class Fréchet distance ↓", True),
    "precision": ("precision ↑", False),
    "recall": ("recall ↑", False),
    "density": ("density ↑", False),
    "coverage": ("coverage ↑", False),
    "sample_tv": ("total variation of samples (lower = smoother)", None),
    "sparsity": ("fraction of exactly-zero weights", None),
    "filter_sparsity": ("fraction of all-zero units", None),
}
STRENGTH_LABEL = "strength λ (max-norm: radius r), log scale"


class Cell(NamedTuple):
    """The runs of one (experiment, penalty, target, value) over seeds."""
    median: float | None
    low: float | None
    high: float | None
    scored: int
    failed: int


# ----------------------------------------------------------------------------
# Selecting and summarising rows
# ----------------------------------------------------------------------------

def experiment_rows(rows, name: str) -> list[dict]:
    """The rows of one experiment (``config.name``)."""
    return [r for r in rows if r["config.name"] == name]


def experiments_present(rows) -> list[str]:
    """The experiment names in ``rows``, in first-seen order."""
    return list(dict.fromkeys(r["config.name"] for r in rows))


def metric_value(row: dict, metric: str):
    """``row``'s score, None if the run diverged or has none.

    ``sparsity``/``filter_sparsity`` read the targeted network's value (the
    mean over both for target ``both``).
    """
    if row.get("diverged"):
        return None
    if metric in ("sparsity", "filter_sparsity"):
        nets = _target_nets(row)
        values = [row.get(f"{metric}_{n}") for n in nets]
        return None if not values or None in values else float(np.mean(values))
    value = row.get(metric)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return float(value)


def cells(rows, metric: str) -> dict:
    """``{(penalty, target, value): Cell}`` of ``metric`` over seeds."""
    grouped = {}
    for r in rows:
        grouped.setdefault((r["penalty"], r["target"], r["value"]), []).append(metric_value(r, metric))
    out = {}
    for key, values in grouped.items():
        scored = [v for v in values if v is not None]
        out[key] = Cell(float(np.median(scored)) if scored else None,
                        min(scored) if scored else None, max(scored) if scored else None,
                        len(scored), len(values) - len(scored))
    return out


def best_cell(rows, metric: str, penalty: str, target):
    """``(value, Cell)`` of the best median of ``metric`` over a penalty's strengths.

    Only cells where every seed finished with a score compete; None if none did.
    """
    lower = METRICS[metric][1]
    candidates = [(v, c) for (p, t, v), c in cells(rows, metric).items()
                  if p == penalty and t == target and c.scored and not c.failed]
    if not candidates:
        return None
    return (min if lower else max)(candidates, key=lambda vc: vc[1].median)


def swept_targets(rows) -> list[str]:
    """The targets the swept penalties of ``rows`` were put on, in a fixed order."""
    order = ["g", "d", "encoder", "decoder", "both"]
    present = {r["target"] for r in rows if r["target"] is not None}
    return [t for t in order if t in present] + sorted(present - set(order))


def penalties_present(rows, swept: bool) -> list[str]:
    """Penalty names in ``rows`` with (``swept``) or without a swept value, registry order."""
    present = {r["penalty"] for r in rows if (r["value"] is not None) == swept}
    return [p for p in list(study.PENALTIES) + ["custom"] if p in present]


def caption(rows, preset: str, *, figure: bool = True) -> str:
    """``preset P · seeds 0,1 (...) · N steps``: what every figure and table states."""
    seeds = sorted({int(r["seed"]) for r in rows})
    steps = sorted({int(r["config.steps"]) for r in rows})
    marks = "bars min–max; red ×: a seed diverged or has no finite score" if figure else "min–max"
    return (f"preset {preset} · seeds {','.join(map(str, seeds))} (median, {marks}) · "
            f"{'/'.join(map(str, steps))} steps")


def _target_nets(row) -> list[str]:
    nets = sorted(k[len("config.penalty."):-len(".kind")] for k in row
                  if k.startswith("config.penalty.") and k.endswith(".kind"))
    target = row["target"]
    return nets if target in (None, "both") else target.split(",")


# ----------------------------------------------------------------------------
# Panels
# ----------------------------------------------------------------------------

def strength_panel(ax, rows, metric: str, target: str, *, legend: bool = False) -> None:
    """``metric`` against strength on a log axis for every swept penalty on ``target``.

    Median line with min–max error bars; red × where a seed diverged; the
    unregularised run (and the baselines, if present) as horizontal bands.
    """
    table = cells(rows, metric)
    for penalty in penalties_present(rows, swept=True):
        points = sorted((v, c) for (p, t, v), c in table.items() if p == penalty and t == target)
        if not points:
            continue
        xs = np.array([v for v, _ in points], float)
        med = np.array([np.nan if c.median is None else c.median for _, c in points])
        low = np.array([np.nan if c.low is None else c.low for _, c in points])
        high = np.array([np.nan if c.high is None else c.high for _, c in points])
        style = "--" if penalty == "max_norm" else "-"
        ax.errorbar(xs, med, yerr=[med - low, high - med], color=COLOURS[penalty], ls=style,
                    marker="o", ms=3, lw=1.2, capsize=2, label=LABELS[penalty])
        failed = [v for v, c in points if c.failed]
        if failed:
            top = np.nanmax(med) if np.isfinite(med).any() else 0.0
            ax.scatter(failed, [top] * len(failed), marker="x", color="red", s=30, zorder=5)
    for penalty in penalties_present(rows, swept=False):
        cell = table.get((penalty, None, None))
        if cell is None or cell.median is None:
            continue
        ax.axhline(cell.median, color=COLOURS[penalty], lw=1, ls=":" if penalty != "none" else "-",
                   label=f"{LABELS[penalty]} (no weight penalty)")
        if penalty == "none":
            ax.axhspan(cell.low, cell.high, color="black", alpha=0.08)
    ax.set_xscale("log")
    ax.set_xlabel(STRENGTH_LABEL, fontsize=8)
    ax.set_ylabel(METRICS[metric][0], fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, which="both", lw=0.4)
    if legend:
        ax.legend(fontsize=6.5, loc="best", framealpha=0.8)


def strength_figure(rows, metrics, targets, title: str, *, width: float = 3.6,
                    height: float = 2.9) -> Figure:
    """A grid of :func:`strength_panel`: one row per metric, one column per target.

    One shared legend under the panels.
    """
    fig = Figure(figsize=(max(7.5, width * len(targets) + 0.4), height * len(metrics) + 1.6),
                 dpi=110)
    axes = fig.subplots(len(metrics), len(targets), squeeze=False)
    for i, metric in enumerate(metrics):
        for j, target in enumerate(targets):
            strength_panel(axes[i, j], rows, metric, target)
            axes[i, j].set_title(f"penalty on {_net_label(target)}", fontsize=9)
    _layout(fig, title, _shared_legend(fig, axes))
    return fig


def _net_label(target: str) -> str:
    return target.upper() if len(target) == 1 else target


def _layout(fig, title: str, legend_rows: int = 0) -> None:
    """Sets the wrapped suptitle and fits the panels between it and a bottom legend."""
    width, height = fig.get_size_inches()
    lines = [textwrap.fill(line, int(width * 14)) for line in title.split("\n")]
    title = "\n".join(lines)
    fig.suptitle(title, fontsize=9)
    top = 1 - (0.2 * title.count("\n") + 0.35) / height
    bottom = (0.22 * legend_rows + 0.05) / height if legend_rows else 0
    fig.tight_layout(rect=(0, bottom, 1, top))


def _shared_legend(fig, axes) -> int:
    """One legend under the panels with every labelled artist once; returns its rows."""
    handles, labels = {}, []
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = h
                labels.append(label)
    if labels:
        fig.legend([handles[lb] for lb in labels], labels, loc="lower center",
                   ncol=min(4, len(labels)), fontsize=7, frameon=False)
    return math.ceil(len(labels) / 4)


# ----------------------------------------------------------------------------
# The figures of FIGURES.md
# ----------------------------------------------------------------------------

def fig_sparsity(rows, preset: str) -> Figure:
    """1. Exactly-zero weight fraction (and all-zero units) vs λ on the targeted network."""
    targets = [t for t in swept_targets(rows) if t != "both"] or swept_targets(rows)
    return strength_figure(
        rows, ("sparsity", "filter_sparsity"), targets,
        f"1. Sparsity vs strength — {rows[0]['config.name']} — proximal steps give exact zeros, "
        f"subgradient steps do not\n{caption(rows, preset)}")


def fig_mixture_metrics(runs_by_experiment: dict, preset: str) -> Figure:
    """2b. Modes covered, high-quality fraction and reverse KL vs λ (rows: ring8, grid25)."""
    metrics = ("modes", "hq_fraction", "reverse_kl")
    names = sorted(runs_by_experiment, key=_mixture_order)
    fig = Figure(figsize=(3.6 * len(metrics) + 0.4, 2.9 * len(names) + 1.6), dpi=110)
    axes = fig.subplots(len(names), len(metrics), squeeze=False)
    all_rows = []
    for i, name in enumerate(names):
        rows = runs_by_experiment[name]
        all_rows += rows
        target = (swept_targets(rows) or ["g"])[0]
        for j, metric in enumerate(metrics):
            strength_panel(axes[i, j], rows, metric, target)
            axes[i, j].set_title(f"{name}, penalty on {target.upper()}", fontsize=9)
    _layout(fig, "2b. Mode collapse on 2-D mixtures vs strength: does L1 increase diversity?\n"
            f"{caption(all_rows, preset)}", _shared_legend(fig, axes))
    return fig


def fig_quality(runs_by_experiment: dict, preset: str) -> Figure:
    """3. FD and KID vs λ, one column per target, for each image GAN (digits; fashion_mnist)."""
    figures_rows = []
    for name, rows in runs_by_experiment.items():
        for metric in ("fd", "kid"):
            figures_rows.append((name, metric, rows))
    targets = swept_targets([r for _, _, rs in figures_rows for r in rs])
    fig = Figure(figsize=(max(7.5, 3.6 * len(targets) + 0.4), 2.9 * len(figures_rows) + 1.6),
                 dpi=110)
    axes = fig.subplots(len(figures_rows), len(targets), squeeze=False)
    for i, (name, metric, rows) in enumerate(figures_rows):
        for j, target in enumerate(targets):
            strength_panel(axes[i, j], rows, metric, target)
            axes[i, j].set_title(f"{name}: penalty on {_net_label(target)}", fontsize=9)
    all_rows = [r for rs in runs_by_experiment.values() for r in rs]
    _layout(fig, "3. Image quality vs strength (grey band: unregularised median, min–max; "
            f"dotted: baselines)\n{caption(all_rows, preset)}", _shared_legend(fig, axes))
    return fig


def fig_stability(rows, root, preset: str) -> Figure:
    """4. FD over training steps (each penalty at its best strength, target ``both``) and diverged fractions."""
    fig = Figure(figsize=(11, 4.4), dpi=110)
    ax_fd, ax_div = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1]})
    target = "both" if "both" in swept_targets(rows) else (swept_targets(rows) or [None])[0]
    for penalty in _all_penalties(rows):
        runs = representative_runs(rows, penalty, target, "fd")
        curves = [_metric_curve(root, r["run"], "fd") for r in runs]
        curves = [c for c in curves if c]
        if not curves:
            continue
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        if not steps:
            continue
        values = np.array([[c[s] for s in steps] for c in curves], float)
        value = runs[0]["value"]
        label = LABELS[penalty] + ("" if value is None else f" {value:.3g}")
        ax_fd.plot(steps, np.median(values, 0), color=COLOURS[penalty], marker="o", ms=3,
                   lw=1.2, ls="--" if penalty == "max_norm" else "-", label=label)
        ax_fd.fill_between(steps, values.min(0), values.max(0), color=COLOURS[penalty], alpha=0.12)
    ax_fd.set_xlabel("training step", fontsize=8)
    ax_fd.set_ylabel("Fréchet distance (in-training, fewer samples) ↓", fontsize=8)
    ax_fd.set_title(f"FD over training, {target if target else ''} at best strength", fontsize=9)
    ax_fd.legend(fontsize=6.5, ncol=2)
    ax_fd.grid(alpha=0.3, lw=0.4)
    names = _all_penalties(rows)
    fractions = [np.mean([bool(r.get("diverged")) for r in rows if r["penalty"] == p]) for p in names]
    counts = [sum(r["penalty"] == p for r in rows) for p in names]
    bars = ax_div.barh(range(len(names)), fractions, color=[COLOURS[p] for p in names])
    for bar, n, f in zip(bars, counts, fractions):
        ax_div.text(min(f + 0.02, 0.85), bar.get_y() + bar.get_height() / 2,
                    f"{round(f * n)}/{n}", va="center", fontsize=7)
    ax_div.set_yticks(range(len(names)), [LABELS[p] for p in names], fontsize=7)
    ax_div.set_xlim(0, 1)
    ax_div.invert_yaxis()
    ax_div.set_xlabel("fraction of runs diverged (all strengths, targets, seeds)", fontsize=8)
    ax_div.set_title("divergence", fontsize=9)
    _layout(fig, f"4. Stability — {rows[0]['config.name']}: FD while training (median over seeds, "
            f"shade min–max) and diverged runs\n{caption(rows, preset)}")
    return fig


def fig_vae(rows, preset: str) -> Figure:
    """6. VAE: ELBO, reconstruction error and sample FD vs λ, encoder vs decoder."""
    metrics = [m for m in ("elbo", "recon", "fd") if any(r.get(m) is not None for r in rows)]
    fig = strength_figure(rows, metrics, swept_targets(rows),
                          f"6. VAE — {rows[0]['config.name']}: penalty on the encoder vs the "
                          f"decoder\n{caption(rows, preset)}")
    return fig


def fig_cgan(rows, preset: str) -> Figure:
    """7. Conditional GAN: classifier accuracy on conditional samples and intra-class FD vs λ."""
    return strength_figure(rows, ("cond_accuracy", "intra_fd"), swept_targets(rows),
                           f"7. Conditional GAN — {rows[0]['config.name']}\n{caption(rows, preset)}")


def fig_stacked(rows, preset: str) -> Figure:
    """8. Stacked digits: modes covered (of 1,000) and KL of the mode histogram to uniform vs λ."""
    return strength_figure(rows, ("modes", "class_kl"), swept_targets(rows),
                           f"8. Stacked digits (1,000 modes) — {rows[0]['config.name']}\n"
                           f"{caption(rows, preset)}")


def fig_precision_recall(rows, preset: str) -> Figure:
    """9. Precision vs recall and density vs coverage: medians per (penalty, target, λ) cell."""
    fig = Figure(figsize=(10, 4.8), dpi=110)
    axes = fig.subplots(1, 2)
    for ax, (mx, my) in zip(axes, (("recall", "precision"), ("coverage", "density"))):
        cx, cy = cells(rows, mx), cells(rows, my)
        for penalty in _all_penalties(rows):
            keys = [k for k in cx if k[0] == penalty and cx[k].median is not None
                    and cy[k].median is not None]
            if not keys:
                continue
            xs, ys = [cx[k].median for k in keys], [cy[k].median for k in keys]
            swept = keys[0][2] is not None
            ax.scatter(xs, ys, color=COLOURS[penalty], s=18 if swept else 70,
                       marker="o" if swept else "*", label=LABELS[penalty], alpha=0.8,
                       edgecolors="black" if not swept else "none", linewidths=0.5)
        ax.set_xlabel(METRICS[mx][0], fontsize=8)
        ax.set_ylabel(METRICS[my][0], fontsize=8)
        ax.grid(alpha=0.3, lw=0.4)
        ax.tick_params(labelsize=7)
    axes[1].legend(fontsize=6.5, loc="best")
    _layout(fig, f"9. Fidelity vs diversity — {rows[0]['config.name']}: one dot per (penalty, "
            f"target, strength) median; stars: no weight penalty\n{caption(rows, preset)}")
    return fig


# ----------------------------------------------------------------------------
# Representative runs and curves
# ----------------------------------------------------------------------------

def representative_runs(rows, penalty: str, target, metric: str) -> list[dict]:
    """The seeds' runs of ``penalty``'s best cell on ``target`` (unswept: its runs).

    Falls back to the strongest setting when no cell finished on every seed
    (so a penalty that always diverges still shows what it did).
    """
    mine = [r for r in rows if r["penalty"] == penalty]
    if not mine:
        return []
    if mine[0]["value"] is None:
        return sorted(mine, key=lambda r: r["seed"])
    best = best_cell(rows, metric, penalty, target)
    on_target = [r for r in mine if r["target"] == target] or mine
    value = best[0] if best else max(r["value"] for r in on_target)
    return sorted((r for r in on_target if r["value"] == value), key=lambda r: r["seed"])


def representative_run(rows, penalty: str, target, metric: str):
    """``(row of the lowest seed, value)`` of :func:`representative_runs`, or ``(None, None)``."""
    runs = representative_runs(rows, penalty, target, metric)
    return (runs[0], runs[0]["value"]) if runs else (None, None)


def _metric_curve(root, run: str, metric: str) -> dict:
    """``{step: value}`` of ``metric`` in a run's metrics.jsonl (finite values only)."""
    return {row["step"]: float(row[metric])
            for row in workdir.read_metrics(pathlib.Path(root) / run)
            if row.get(metric) is not None}


def _mixture_order(name: str):
    """ring8 before grid25 (easy before hard), others after by name."""
    return (0 if name.startswith("ring8") else 1 if name.startswith("grid25") else 2, name)


def _all_penalties(rows) -> list[str]:
    present = {r["penalty"] for r in rows}
    return [p for p in list(study.PENALTIES) + ["custom"] if p in present]
