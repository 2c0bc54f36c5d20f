"""2. Mode collapse on the 2-D mixtures: 2a final samples at one common strength, 2b mode
metrics against strength (with PacGAN's published numbers)."""

import math

import jax
import ml_collections
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from experiments.study import cells, vocabulary
from experiments.study.captions import caption, sn_note
from experiments.study.cells import swept_targets
from experiments.study.figures import registry
from experiments.study.figures.panels import (
    final_samples,
    layout,
    null_lines,
    pacgan_lines,
    panel_figure,
    panel_keys,
    score_text,
    strength_panel,
    value_text,
)
from experiments.study.vocabulary import target_label
from regan_jax import config as config_lib
from regan_jax import data

MIXTURE_COLUMNS = 7


def fig_mixture_scatter(runs_by_experiment: dict, root, preset: str) -> Figure:
    """2a. Final samples of ring8 / grid25 at one common strength for every penalty.

    Per mixture: the true mixture's samples and uniform noise in its support
    box (the two nulls), the baselines, then every weight penalty on G at the
    grid's middle strength (max-norm at the middle radius); black circles of
    radius 3σ around the true centres. The seed shown has the median modes
    covered.
    """
    names = sorted(runs_by_experiment, key=mixture_order)
    blocks = [_mixture_block(runs_by_experiment[n], root) for n in names]
    columns = min(MIXTURE_COLUMNS, max(len(b[1]) for b in blocks))
    fig_rows = sum(math.ceil(len(b[1]) / columns) for b in blocks)
    fig = Figure(figsize=(max(7.5, 1.75 * columns + 0.3), 2.3 * fig_rows + 1.4), dpi=110)
    axes = fig.subplots(fig_rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    row = 0
    notes = []
    for name, (mixture, panels, note) in zip(names, blocks):
        for i, (title, points, colour) in enumerate(panels):
            ax = axes[row + i // columns, i % columns]
            _scatter(ax, mixture, points, colour, f"{name}: {title}")
        row += math.ceil(len(panels) / columns)
        notes.append(f"{name}: {note}")
    all_rows = [r for rs in runs_by_experiment.values() for r in rs]
    layout(
        fig,
        "2a. Mode collapse on 2-D mixtures: final samples, every penalty at one common "
        f"strength ({'; '.join(notes)}); black circles: 3σ around the true modes; the seed shown "
        f"has the median modes covered{sn_note(all_rows)}\n{caption(all_rows, preset)}",
    )
    fig.subplots_adjust(hspace=0.6)  # tight_layout under-spaces rows of fixed-aspect axes
    return fig


def _mixture_block(rows, root):
    """``(mixture, [(title, points, colour)], note)`` of one mixture experiment."""
    mixture = _mixture(rows[0])
    target = "g" if "g" in swept_targets(rows) else (swept_targets(rows) or [None])[0]
    middle, radius = cells.middle_strength(rows), cells.middle_strength(rows, radius=True)
    table = cells.cells(rows, "modes")
    panels = []
    for label, key in panel_keys(
        rows, "modes", target, lambda p: radius if p == "max_norm" else middle
    ):
        run = cells.median_seed_run(rows, key, "modes")
        if run is None:
            panels.append((f"{label}\nnot run at this strength", None, "black"))
            continue
        where = value_text(key, cells.is_effective(rows))
        points = None if run.get("diverged") else final_samples(root, run)
        panels.append(
            (
                f"{label} {where}\n{score_text(table.get(key), 'modes')}\nseed "
                f"{run['seed']}{' diverged' if run.get('diverged') else ''}",
                points,
                vocabulary.penalty(key.penalty).colour,
            )
        )
    n = len(next((p for _, p, _ in panels if p is not None), np.zeros((2500, 2))))
    key = jax.random.key(0)
    low, high = mixture.support()
    noise = np.asarray(jax.random.uniform(key, (n, 2), minval=low, maxval=high))
    real = np.asarray(mixture.sample(jax.random.fold_in(key, 1), n))
    units = "effective" if cells.is_effective(rows) else "raw"
    note = f"on {target.upper() if target else '?'} at {units} strength {middle:.3g}" + (
        f", max-norm r/r₀ {radius:.3g}" if radius is not None else ""
    )
    return (
        mixture,
        [
            (f"real data\n(true mixture, N={n})", real, "darkcyan"),
            (f"uniform noise\n(support box, N={n})", noise, "dimgray"),
            *panels,
        ],
        note,
    )


def _scatter(ax, mixture, points, colour, title: str) -> None:
    ax.axis("on")
    ax.set_xticks([])
    ax.set_yticks([])
    low, high = mixture.support()
    if points is not None:
        ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, color=colour, lw=0)
    for centre in mixture.centres:
        ax.add_patch(Circle(centre, 3 * mixture.sigma, fill=False, color="black", lw=0.6, zorder=3))
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=6)


def _mixture(row):
    """The true 2-D mixture of a run (its ``config.data`` in the row)."""
    flat = {k[len("config.") :]: v for k, v in row.items() if k.startswith("config.data.")}
    data_cfg = ml_collections.ConfigDict(config_lib.unflatten(flat)["data"])
    return data.from_config(data_cfg)


def fig_mixture_metrics(runs_by_experiment: dict, preset: str, nulls_by_experiment=None) -> Figure:
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
            panels.append(
                [
                    (
                        f"{name}, penalty on {target_label(target)}",
                        _mixture_panel(rows, m, target, name, nulls),
                    )
                    for m in metrics
                    if cells.has_metric(rows, m)
                ]
            )
    return panel_figure(
        panels,
        "2b. Mode collapse on 2-D mixtures vs strength: does L1 increase "
        f"diversity?\n{caption(all_rows, preset)}",
        width=3.3,
        height=2.6,
    )


def _mixture_panel(rows, metric, target, name, nulls):
    lines = null_lines(nulls, metric, mixture=True) + pacgan_lines(name, metric)
    return lambda ax: strength_panel(ax, rows, metric, target, lines=lines)


def mixture_order(name: str):
    """ring8 before grid25 (easy before hard), others after by name."""
    return (0 if name.startswith("ring8") else 1 if name.startswith("grid25") else 2, name)


@registry.register("fig2a_mixture_samples", scope=registry.GROUP, kinds=("mixture",))
def _mixture_samples(study, experiments):
    return fig_mixture_scatter(
        {n: e.rows for n, e in experiments.items()}, study.root, study.preset
    )


@registry.register("fig2b_mixture_metrics", scope=registry.GROUP, kinds=("mixture",))
def _mixture_metrics(study, experiments):
    return fig_mixture_metrics(
        {n: e.rows for n, e in experiments.items()},
        study.preset,
        {n: e.nulls for n, e in study.experiments.items()},
    )
