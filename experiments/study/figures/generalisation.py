"""13. Generalisation against strength: does a norm penalty keep a model from copying its
training set, at the full and at a small training set?

The protocol-v2 scores of :mod:`regan_jax.evaluation.generalisation`: the
copying statistic C_T (pixels and features), the memorisation ratio, D's
overfitting r_v (GANs) and the FD∞ gap between held-out and training sets;
the VAE's ELBO gap where the rows hold it. One panel row per experiment,
training-set size (the summary's ``train_size``) and target, one column per
score; the memoriser (training images plus noise) and held-out real nulls
of each experiment's ``nulls.json`` as horizontal lines.
"""

from matplotlib.figure import Figure

from experiments.study import cells, vocabulary
from experiments.study.captions import caption, sn_note
from experiments.study.figures import registry
from experiments.study.figures.panels import null_lines, panel_figure, strength_panel
from regan_jax import evaluation

GENERALISATION_PANELS = (
    "copying_pixels",
    "copying_features",
    "memorisation_pixels",
    "memorisation_features",
    "r_v",
    "fd_inf_gap",
    "elbo_gap",  # the VAE's, where its rows have it
)
NULL_KINDS = (evaluation.MEMORISER, "real")


def by_training_size(rows) -> dict:
    """``{train_size: rows}``, largest first (rows without one: key None, last)."""
    sizes = {}
    for r in rows:
        size = r.get("train_size")
        sizes.setdefault(None if size is None else int(size), []).append(r)
    return dict(sorted(sizes.items(), key=lambda item: -1 if item[0] is None else -item[0]))


def fig_generalisation(experiments: dict, preset: str) -> Figure:
    """13. Copying, memorisation, r_v and the FD∞ gap vs strength, per training-set size.

    Args:
      experiments: ``{name: (rows, nulls)}`` of the experiments with
        generalisation scores (``nulls``: their ``nulls.json`` or None).
      preset: the preset's name (the caption).
    """
    every_row = [r for rows, _ in experiments.values() for r in rows]
    metrics = [m for m in GENERALISATION_PANELS if cells.has_metric(every_row, m)]
    panels = []
    for name, (rows, nulls) in experiments.items():
        for size, sized in by_training_size(rows).items():
            for target in cells.swept_targets(sized):
                panels.append(
                    [
                        _panel(name, size, sized, nulls, metric, target)
                        if cells.has_metric(sized, metric)
                        else None
                        for metric in metrics
                    ]
                )
    return panel_figure(
        panels,
        "13. Generalisation vs strength at each training-set size (rows: experiment, its "
        "training images N and the penalised network): C_T ≪ 0 and memorisation ≫ 0.05 copy "
        "the training set; r_v and the FD∞ gap > 0 fit it better than held-out data; lines: "
        f"the memoriser (training images + N(0, {evaluation.MEMORISER_NOISE:g}²) noise) and "
        f"held-out real nulls; C_T has no better direction, so its diverged runs are left "
        f"out{sn_note(every_row)}\n{caption(every_row, preset)}",
    )


def _panel(name, size, rows, nulls, metric: str, target: str):
    lines = null_lines(nulls, metric, kinds=NULL_KINDS)
    title = (
        f"{name}, N={'?' if size is None else size}: "
        f"{vocabulary.metric(metric).short}, on {vocabulary.target_label(target)}"
    )
    return title, lambda ax: strength_panel(ax, rows, metric, target, lines=lines)


def _has_generalisation(study, experiments) -> bool:
    return any(cells.has_metric(e.rows, "copying_pixels") for e in experiments.values())


@registry.register(
    "fig13_generalisation",
    scope=registry.GROUP,
    kinds=("image_gan", "cgan", "stacked", "vae"),
    when=_has_generalisation,
)
def _generalisation(study, experiments):
    return fig_generalisation(
        {
            n: (e.rows, e.nulls)
            for n, e in experiments.items()
            if cells.has_metric(e.rows, "copying_pixels")
        },
        study.preset,
    )
