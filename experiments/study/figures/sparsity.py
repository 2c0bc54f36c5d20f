"""1. Sparsity: exactly-zero, near-zero weights and all-zero units against strength, per target."""

from matplotlib.figure import Figure

from experiments.study import cells, vocabulary
from experiments.study.cells import swept_targets
from experiments.study.figures import registry
from experiments.study.figures.panels import (
    figure_title,
    log_y_if_decades,
    panel_figure,
    strength_panel,
)

# Near zero beside exact zeros: a subgradient step never gives an exact zero, so the
# near-zero fraction (|w| < 1e-3 x the layer's initial RMS) is the fair comparison.
SPARSITY_METRICS = ("sparsity", "near_zero", "filter_sparsity")


def fig_sparsity(rows, preset: str) -> Figure:
    """1. Exactly-zero and near-zero weight fractions (and all-zero units) vs strength.

    One row per measure present, one column per target; a panel whose
    values span two decades or more has a (symmetric) log y axis.
    """
    targets = [t for t in swept_targets(rows) if t != "both"] or swept_targets(rows)

    def draw(metric, target):
        def panel(ax):
            strength_panel(ax, rows, metric, target)
            log_y_if_decades(ax, rows, metric, target)

        return panel

    present = [m for m in SPARSITY_METRICS if cells.has_metric(rows, m)]
    return panel_figure(
        [
            [(f"penalty on {vocabulary.target_label(t)}", draw(m, t)) for t in targets]
            for m in present
        ],
        figure_title(
            "1",
            "Sparsity vs strength",
            rows,
            preset,
            f"(rows: {'; '.join(vocabulary.metric(m).label for m in present)}) — proximal "
            "steps give exact zeros, subgradient steps do not; log y where values span decades",
            dropped=True,
        ),
    )


@registry.register("fig1_sparsity", scope=registry.EXPERIMENT, kinds=("image_gan",))
def _sparsity(study, experiment):
    return fig_sparsity(experiment.rows, study.preset)
