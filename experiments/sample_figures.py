"""The study's figures drawn from samples: 2-D scatter plots, sample grids, smoothness.

Same conventions as :mod:`experiments.plots` (rows of ``results.csv``, the
results directory, the preset; a matplotlib ``Figure`` back). Each run's
final samples are read from ``samples/final.npz`` in its run directory. A
panel shows one seed's samples: the seed whose score is the median over the
cell's seeds (the lower middle one for an even count), and says so.
"""
import math
import pathlib

import jax
import ml_collections
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from experiments import cells
from experiments.plots import (COLOURS, SHORT, _layout, caption, mixture_order, sn_note,
                               net_label, number, strength_figure, swept_targets, value_text)
from regan_jax import config as config_lib
from regan_jax import data, families, plotting

MIXTURE_COLUMNS = 7


def _final_samples(root, run) -> np.ndarray:
    return np.load(pathlib.Path(root) / run["run"] / "samples" / "final.npz")["samples"]


def _score_text(cell, metric: str) -> str:
    """``median FD 35.2 [30.1, 50]`` of a cell (∞: diverged runs; None: unscored)."""
    name = cells.short_name(metric)
    if cell is None:
        return f"no {name}"
    return f"median {name} {number(cell.median)} [{number(cell.low)}, {number(cell.high)}]"


def _panel_keys(rows, metric: str, target, strength_of) -> list:
    """``(label, CellKey)`` per panel: the baselines, then each weight penalty.

    ``strength_of(penalty)``: the strength a weight penalty is shown at.
    """
    keys = [(SHORT[p], k) for p, k in cells.baseline_keys(rows, metric).items()]
    for penalty in cells.weight_penalties(rows):
        keys.append((SHORT[penalty], cells.CellKey("none", penalty, target,
                                                   strength_of(penalty))))
    return keys


# ----------------------------------------------------------------------------
# 2a. Mixture scatter plots
# ----------------------------------------------------------------------------

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
    _layout(fig, "2a. Mode collapse on 2-D mixtures: final samples, every penalty at one common "
            f"strength ({'; '.join(notes)}); black circles: 3σ around the true modes; the seed shown "
            f"has the median modes covered{sn_note(all_rows)}\n{caption(all_rows, preset)}")
    fig.subplots_adjust(hspace=0.6)  # tight_layout under-spaces rows of fixed-aspect axes
    return fig


def _mixture_block(rows, root):
    """``(mixture, [(title, points, colour)], note)`` of one mixture experiment."""
    mixture = _mixture(rows[0])
    target = "g" if "g" in swept_targets(rows) else (swept_targets(rows) or [None])[0]
    middle, radius = cells.middle_strength(rows), cells.middle_strength(rows, radius=True)
    table = cells.cells(rows, "modes")
    panels = []
    for label, key in _panel_keys(rows, "modes", target,
                                  lambda p: radius if p == "max_norm" else middle):
        run = cells.median_seed_run(rows, key, "modes")
        if run is None:
            panels.append((f"{label}\nnot run at this strength", None, "black"))
            continue
        where = value_text(key, cells.is_effective(rows))
        points = None if run.get("diverged") else _final_samples(root, run)
        panels.append((f"{label} {where}\n{_score_text(table.get(key), 'modes')}\nseed "
                       f"{run['seed']}{' diverged' if run.get('diverged') else ''}", points,
                       COLOURS.get(key.penalty, "gold")))
    n = len(next((p for _, p, _ in panels if p is not None), np.zeros((2500, 2))))
    key = jax.random.key(0)
    low, high = mixture.support()
    noise = np.asarray(jax.random.uniform(key, (n, 2), minval=low, maxval=high))
    real = np.asarray(mixture.sample(jax.random.fold_in(key, 1), n))
    units = "effective" if cells.is_effective(rows) else "raw"
    note = (f"on {target.upper() if target else '?'} at {units} strength {middle:.3g}"
            + (f", max-norm r/r₀ {radius:.3g}" if radius is not None else ""))
    return mixture, [(f"real data\n(true mixture, N={n})", real, "darkcyan"),
                     (f"uniform noise\n(support box, N={n})", noise, "dimgray"), *panels], note


def _scatter(ax, mixture, points, colour, title: str) -> None:
    ax.axis("on")
    ax.set_xticks([])
    ax.set_yticks([])
    low, high = mixture.support()
    if points is not None:
        ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, color=colour, lw=0)
    for centre in mixture.centres:
        ax.add_patch(Circle(centre, 3 * mixture.sigma, fill=False, color="black", lw=0.6,
                            zorder=3))
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=6)


def _mixture(row):
    """The true 2-D mixture of a run (its ``config.data`` in the row)."""
    flat = {k[len("config."):]: v for k, v in row.items() if k.startswith("config.data.")}
    data_cfg = ml_collections.ConfigDict(config_lib.unflatten(flat)["data"])
    return data.from_config(data_cfg)


# ----------------------------------------------------------------------------
# 5. Sample grids
# ----------------------------------------------------------------------------

def fig_samples(rows, root, preset: str, metric: str = "fd") -> Figure:
    """5. Sample grids, one per penalty at its best strength (best median ``metric``).

    The best strength is selected on the same runs that are shown; the grid
    is the seed whose ``metric`` is the median over the seeds.
    """
    targets = swept_targets(rows)
    target = next((t for t in ("both", "all") if t in targets), (targets or [None])[0])
    table = cells.cells(rows, metric)
    panels = _panel_keys(rows, metric, target,
                         lambda p: cells.best_strength(rows, metric, p, target))
    conditional = families.get(rows[0]["config.model_type"]).conditional  # 4 rows x 10 classes
    columns = min(3 if conditional else 6, len(panels))
    fig_rows = math.ceil(len(panels) / columns)
    width = 3.4 if conditional else 2.1
    fig = Figure(figsize=(max(7.5, width * columns + 0.2),
                          (width * (0.4 if conditional else 1.0) + 0.8) * fig_rows + 1.2), dpi=110)
    axes = fig.subplots(fig_rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (label, key) in zip(axes.ravel(), panels):
        run = cells.median_seed_run(rows, key, metric)
        if run is None:
            continue
        if not run.get("diverged"):
            grid = plotting.image_grid(_final_samples(root, run)[:40 if conditional else 36],
                                       10 if conditional else 6)
            ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0,
                      vmax=1, interpolation="nearest")
        ax.set_title(f"{label} {value_text(key, cells.is_effective(rows))}\n"
                     f"{_score_text(table.get(key), metric)}\nseed {run['seed']} shown"
                     f"{' (diverged)' if run.get('diverged') else ''}", fontsize=6.5)
    score = cells.short_name(metric)
    _layout(fig, f"5. Samples — {rows[0]['config.name']}: each penalty on {net_label(target)} at "
            f"its best strength (best median {score} over the seeds, selected on these same runs); "
            f"the seed shown has the median {score}{sn_note(rows)}\n{caption(rows, preset)}")
    return fig


# ----------------------------------------------------------------------------
# 10. Smoothness
# ----------------------------------------------------------------------------

def total_variation(images: np.ndarray) -> float:
    """Mean anisotropic total variation of images ``[N, H, W, C]`` in [-1, 1].

    TV(x) = mean over pixels of |x[i+1, j] - x[i, j]| + |x[i, j+1] - x[i, j]|
    (channels averaged); the mean over the N images. Lower is smoother.
    """
    x = np.asarray(images, np.float64)
    vertical = np.abs(np.diff(x, axis=1)).mean(axis=(1, 2, 3))
    horizontal = np.abs(np.diff(x, axis=2)).mean(axis=(1, 2, 3))
    return float(np.mean(vertical + horizontal))


def with_sample_tv(rows, root) -> list[dict]:
    """Copies of ``rows`` with ``sample_tv``: :func:`total_variation` of the run's final samples.

    None where a run saved no samples or its samples are not images (points).
    """
    out = []
    for r in rows:
        path = pathlib.Path(root) / r["run"] / "samples" / "final.npz"
        samples = np.load(path)["samples"] if path.exists() else None
        tv = total_variation(samples) if samples is not None and samples.ndim == 4 else None
        out.append({**r, "sample_tv": tv})
    return out


def fig_smoothness(rows, root, preset: str, real_tv: float | None = None,
                   real_count: int | None = None) -> Figure:
    """10. Total variation of generated samples vs strength: does L2 make samples smoother?

    ``real_tv``: the held-out images' total variation (of ``real_count``
    images), drawn as the real null.
    """
    if any("sample_tv" not in r for r in rows):  # rows of an older results.csv
        rows = with_sample_tv(rows, root)
    nulls = (None if real_tv is None else
             {"num_samples": real_count, "scores": {"real": {"sample_tv": real_tv}}})
    return strength_figure(
        rows, ("sample_tv",), swept_targets(rows),
        f"10. Smoothness — {rows[0]['config.name']}: total variation of the final samples "
        f"(a run's saved samples)\n{caption(rows, preset, dropped=True)}",
        nulls=nulls)
