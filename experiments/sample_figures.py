"""The study's figures drawn from samples: 2-D scatter plots, sample grids, smoothness.

Same conventions as :mod:`experiments.plots` (rows of ``results.csv``, the
results directory, a caption line; a matplotlib ``Figure`` back). Each run's
final samples are read from ``samples/final.npz`` in its run directory.
"""
import math
import pathlib

import ml_collections
import numpy as np
from matplotlib.figure import Figure

from experiments import study
from experiments.plots import (COLOURS, SHORT, _all_penalties, _layout, _mixture_order, caption,
                               representative_run, strength_figure, swept_targets)
from regan_jax import config as config_lib
from regan_jax import data, families, plotting


def fig_mixture_scatter(runs_by_experiment: dict, root, preset: str) -> Figure:
    """2a. Final samples of ring8 / grid25, one panel per penalty at its best strength (seed 0).

    ``runs_by_experiment``: ``{experiment: rows}``. Best = best median modes
    covered over the strengths (ties: median high-quality fraction).
    """
    names = sorted(runs_by_experiment, key=_mixture_order)
    penalties = sorted({p for rs in runs_by_experiment.values() for p in _all_penalties(rs)},
                       key=list(study.PENALTIES).index)
    fig = Figure(figsize=(max(7.5, 1.7 * len(penalties) + 0.3), 2.2 * len(names) + 1.2), dpi=110)
    axes = fig.subplots(len(names), len(penalties), squeeze=False)
    all_rows = []
    for i, name in enumerate(names):
        rows = runs_by_experiment[name]
        all_rows += rows
        target = (swept_targets(rows) or [None])[0]
        for j, penalty in enumerate(penalties):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            run, value = representative_run(rows, penalty, target, "modes")
            if run is None:
                ax.axis("off")
                continue
            points = np.load(pathlib.Path(root) / run["run"] / "samples" / "final.npz")["samples"]
            centres = _mixture_centres(run)
            ax.scatter(points[:, 0], points[:, 1], s=0.5, alpha=0.35, color=COLOURS[penalty])
            ax.scatter(centres[:, 0], centres[:, 1], marker="x", s=10, color="red", lw=0.7)
            span = np.abs(centres).max() * 1.4 + 0.5
            ax.set_xlim(-span, span)
            ax.set_ylim(-span, span)
            ax.set_aspect("equal")
            where = "" if value is None else f" λ={value:.3g}" if penalty != "max_norm" else f" r={value:.3g}"
            modes = run.get("modes")
            ax.set_title(f"{SHORT[penalty]}{where}\n"
                         f"{'diverged' if run.get('diverged') else f'{modes} modes'}", fontsize=6.5)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    _layout(fig, "2a. Mode collapse on 2-D mixtures: samples (dots) and modes (red ×), each "
            "penalty on G at its best strength (best median modes covered), seed 0\n"
            f"{caption(all_rows, preset)}")
    return fig


def fig_samples(rows, root, preset: str, metric: str = "fd") -> Figure:
    """5. Sample grids (seed 0), one per penalty at its best strength (best median ``metric``)."""
    names = _all_penalties(rows)
    target = "both" if "both" in swept_targets(rows) else (swept_targets(rows) or [None])[0]
    conditional = families.get(rows[0]["config.model_type"]).conditional  # 4 rows x 10 classes
    columns = min(3 if conditional else 6, len(names))
    fig_rows = math.ceil(len(names) / columns)
    panel_width = 3.4 if conditional else 2.1
    panel_height = panel_width * (0.4 if conditional else 1.0) + 0.7
    fig = Figure(figsize=(max(7.5, panel_width * columns + 0.2), panel_height * fig_rows + 1.1),
                 dpi=110)
    axes = fig.subplots(fig_rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, penalty in zip(axes.ravel(), names):
        run, value = representative_run(rows, penalty, target, metric)
        if run is None:
            continue
        final = np.load(pathlib.Path(root) / run["run"] / "samples" / "final.npz")
        grid = plotting.image_grid(final["samples"][:40 if conditional else 36], 10 if conditional else 6)
        ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        score = run.get(metric)
        where = "" if value is None else f"{' r' if penalty == 'max_norm' else ' λ'}={value:.3g}"
        ax.set_title(f"{SHORT[penalty]}{where}\n"
                     f"{'diverged' if run.get('diverged') else f'{metric.upper()} {score:.3g}'}",
                     fontsize=7)
    _layout(fig, f"5. Samples — {rows[0]['config.name']}, each penalty on {target} at its best "
            f"strength (best median {metric.upper()}), seed 0\n{caption(rows, preset)}")
    return fig


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
    """Copies of ``rows`` with ``sample_tv``: :func:`total_variation` of the run's final samples."""
    out = []
    for r in rows:
        path = pathlib.Path(root) / r["run"] / "samples" / "final.npz"
        tv = total_variation(np.load(path)["samples"]) if path.exists() else None
        out.append({**r, "sample_tv": tv})
    return out


def fig_smoothness(rows, root, preset: str, real_tv: float | None = None) -> Figure:
    """10. Total variation of generated samples vs λ: does L2 make samples smoother?

    ``real_tv``: the held-out images' total variation, stated in the title.
    """
    rows = with_sample_tv(rows, root)
    real = "" if real_tv is None else f"; held-out images: {real_tv:.3f}"
    return strength_figure(
        rows, ("sample_tv",), swept_targets(rows),
        f"10. Smoothness — {rows[0]['config.name']}: total variation of the final samples "
        f"(64 per run){real}\n{caption(rows, preset)}")


def _mixture_centres(row) -> np.ndarray:
    """The true mode centres of a run's 2-D mixture (its ``config.data`` in the row)."""
    flat = {k[len("config."):]: v for k, v in row.items() if k.startswith("config.data.")}
    data_cfg = ml_collections.ConfigDict(config_lib.unflatten(flat)["data"])
    return data.from_config(data_cfg).centres
