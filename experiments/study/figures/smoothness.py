"""10. Smoothness of the generator's mapping against strength: does L2 make it smoother?

The smoothness of ``z -> x`` (protocol v2, :mod:`regan_jax.evaluation.smoothness`):
perceptual path length in the feature classifier's space, the RMS Frobenius
norm of the Jacobian ``J_G(z)`` and its mean log condition number; beside
them the total variation of the final samples, which measures blur /
sharpness, not smoothness (a blurrier generator has a lower one). One panel
row per target; the held-out images' total variation as its real null.
"""

import pathlib

from matplotlib.figure import Figure

from experiments.study import cells, vocabulary
from experiments.study.captions import caption, sn_note
from experiments.study.figures import registry
from experiments.study.figures.panels import null_lines, panel_figure, strength_panel
from experiments.study.tables import total_variation, with_sample_tv
from regan_jax import config as config_lib
from regan_jax import data
from regan_jax import workdir as workdir_lib

SMOOTHNESS_METRICS = ("ppl", "jacobian_fro", "jacobian_log_cond")
BLUR_METRIC = "sample_tv"


def fig_smoothness(
    rows,
    root,
    preset: str,
    real_tv: float | None = None,
    real_count: int | None = None,
    nulls=None,
) -> Figure:
    """10. Path length, ‖J‖_F and log cond J vs strength, total variation (blur) beside.

    ``real_tv``: the held-out images' total variation (of ``real_count``
    images), drawn as the real null of the blur column; ``nulls``: the
    experiment's ``nulls.json`` (lines where a null has the score).
    """
    if any(BLUR_METRIC not in r for r in rows):  # rows of an older results.csv
        rows = with_sample_tv(rows, root)
    tv_nulls = (
        None
        if real_tv is None
        else {"num_samples": real_count, "scores": {"real": {BLUR_METRIC: real_tv}}}
    )
    metrics = [m for m in (*SMOOTHNESS_METRICS, BLUR_METRIC) if cells.has_metric(rows, m)]

    def draw(metric, target):
        lines = null_lines(tv_nulls if metric == BLUR_METRIC else nulls, metric)
        return lambda ax: strength_panel(ax, rows, metric, target, lines=lines)

    panels = [
        [(f"{_short(m)} — penalty on {vocabulary.target_label(t)}", draw(m, t)) for m in metrics]
        for t in cells.swept_targets(rows)
    ]
    return panel_figure(
        panels,
        f"10. Smoothness — {rows[0]['config.name']}: perceptual path length, RMS ‖J_G(z)‖_F "
        "and mean log condition number of J_G(z) (the generator's map; rows: the penalised "
        "network); right: total variation of the final samples — blur / sharpness, not "
        "smoothness; ‖J‖_F and total variation have no better direction, so their diverged "
        "runs are left out; log cond J is +∞ where J_G(z) is singular (e.g. exact zeros), "
        f"drawn at the edge as a diverged run is{sn_note(rows)}\n{caption(rows, preset)}",
    )


def _short(metric: str) -> str:
    return "blur: total variation" if metric == BLUR_METRIC else vocabulary.metric(metric).short


def held_out_tv(root, row) -> tuple[float, int]:
    """Total variation of the held-out split of a run's dataset, and its size (the blur null)."""
    config = config_lib.from_json_dict(
        workdir_lib.read_json(pathlib.Path(root) / row["run"] / workdir_lib.CONFIG_FILE)
    )
    images = data.from_config(config.data, "test").images
    return total_variation(images), len(images)


def _has_smoothness(study, experiment) -> bool:
    """An image GAN (total variation at least), or a run with a smoothness score (the VAE)."""
    return experiment.kind == "image_gan" or cells.has_metric(experiment.rows, "ppl")


@registry.register(
    "fig10_smoothness", scope=registry.EXPERIMENT, kinds=("image_gan", "vae"), when=_has_smoothness
)
def _smoothness(study, experiment):
    return fig_smoothness(
        experiment.rows,
        study.root,
        study.preset,
        *held_out_tv(study.root, experiment.rows[0]),
        nulls=experiment.nulls,
    )
