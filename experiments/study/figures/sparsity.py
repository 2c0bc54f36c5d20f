"""1. Sparsity: exactly-zero weights and all-zero units against strength, per target."""

from matplotlib.figure import Figure

from experiments.study.cells import swept_targets
from experiments.study.figures import registry
from experiments.study.figures.panels import figure_title, strength_figure


def fig_sparsity(rows, preset: str) -> Figure:
    """1. Exactly-zero weight fraction (and all-zero units, group L1's unit) vs strength."""
    targets = [t for t in swept_targets(rows) if t != "both"] or swept_targets(rows)
    return strength_figure(
        rows,
        ("sparsity", "filter_sparsity"),
        targets,
        figure_title(
            "1",
            "Sparsity vs strength",
            rows,
            preset,
            "(top row: exactly-zero weights; bottom: all-zero units/filters) — proximal "
            "steps give exact zeros, subgradient steps do not",
            dropped=True,
        ),
    )


@registry.register("fig1_sparsity", scope=registry.EXPERIMENT, kinds=("image_gan",))
def _sparsity(study, experiment):
    return fig_sparsity(experiment.rows, study.preset)
