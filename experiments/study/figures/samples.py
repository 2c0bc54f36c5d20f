"""Figure 5, drawn from the runs' samples: sample grids at each penalty's best strength.

Each run's final samples are read from ``samples/final.npz`` in its run
directory. A panel shows one seed's samples: the seed whose score is the
median over the cell's seeds (the lower middle one for an even count), and
says so.
"""

import math

from matplotlib.figure import Figure

from experiments.study import cells, vocabulary
from experiments.study.captions import caption, sn_note
from experiments.study.cells import swept_targets
from experiments.study.figures import registry
from experiments.study.figures.panels import (
    final_samples,
    layout,
    panel_keys,
    score_text,
    value_text,
)
from experiments.study.vocabulary import target_label
from regan_jax import families, plotting


def fig_samples(rows, root, preset: str, metric: str = "fd") -> Figure:
    """5. Sample grids, one per penalty at its best strength (best median ``metric``).

    The best strength is selected on the same runs that are shown; the grid
    is the seed whose ``metric`` is the median over the seeds.
    """
    targets = swept_targets(rows)
    target = next((t for t in ("both", "all") if t in targets), (targets or [None])[0])
    table = cells.cells(rows, metric)
    panels = panel_keys(
        rows, metric, target, lambda p: cells.best_strength(rows, metric, p, target)
    )
    conditional = families.get(rows[0]["config.model_type"]).conditional  # 4 rows x 10 classes
    columns = min(3 if conditional else 6, len(panels))
    fig_rows = math.ceil(len(panels) / columns)
    width = 3.4 if conditional else 2.1
    fig = Figure(
        figsize=(
            max(7.5, width * columns + 0.2),
            (width * (0.4 if conditional else 1.0) + 0.8) * fig_rows + 1.2,
        ),
        dpi=110,
    )
    axes = fig.subplots(fig_rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (label, key) in zip(axes.ravel(), panels):
        run = cells.median_seed_run(rows, key, metric)
        if run is None:
            continue
        if not run.get("diverged"):
            grid = plotting.image_grid(
                final_samples(root, run)[: 40 if conditional else 36], 10 if conditional else 6
            )
            ax.imshow(
                grid[..., 0] if grid.shape[-1] == 1 else grid,
                cmap="gray",
                vmin=0,
                vmax=1,
                interpolation="nearest",
            )
        ax.set_title(
            f"{label} {value_text(key, cells.is_effective(rows))}\n"
            f"{score_text(table.get(key), metric)}\nseed {run['seed']} shown"
            f"{' (diverged)' if run.get('diverged') else ''}",
            fontsize=6.5,
        )
    score = vocabulary.metric(metric).short
    layout(
        fig,
        f"5. Samples — {rows[0]['config.name']}: each penalty on {target_label(target)} at "
        f"its best strength (best median {score} over the seeds, selected on these same runs); "
        f"the seed shown has the median {score}{sn_note(rows)}\n{caption(rows, preset)}",
    )
    return fig


@registry.register(
    "fig5_samples", scope=registry.EXPERIMENT, kinds=("image_gan", "cgan", "translation")
)
def _samples(study, experiment):
    metric = "intra_fd" if experiment.kind == "cgan" else "fd"
    return fig_samples(experiment.rows, study.root, study.preset, metric=metric)
