"""A family's own scores against strength: 6 (VAE), 7 (conditional GAN), 8 (stacked digits),
12 (cycle GAN)."""

from matplotlib.figure import Figure

from experiments.study.cells import swept_targets
from experiments.study.figures import registry
from experiments.study.figures.panels import figure_title, strength_figure


def fig_vae(rows, preset: str, nulls=None) -> Figure:
    """6. VAE: ELBO, reconstruction error and sample FD vs strength, encoder vs decoder."""
    return strength_figure(
        rows,
        ("elbo", "recon", "fd"),
        swept_targets(rows),
        figure_title("6", "VAE: penalty on the encoder vs the decoder", rows, preset),
        nulls=nulls,
    )


def fig_cgan(rows, preset: str, nulls=None) -> Figure:
    """7. Conditional GAN: classifier accuracy on conditional samples and intra-class FD."""
    return strength_figure(
        rows,
        ("cond_accuracy", "intra_fd", "fd"),
        swept_targets(rows),
        figure_title("7", "Conditional GAN", rows, preset),
        nulls=nulls,
    )


def fig_stacked(rows, preset: str, nulls=None) -> Figure:
    """8. Stacked digits: modes covered (of 1,000) and KL of the mode histogram to uniform."""
    return strength_figure(
        rows,
        ("modes", "class_kl"),
        swept_targets(rows),
        figure_title("8", "Stacked digits (1,000 modes)", rows, preset),
        nulls=nulls,
    )


def fig_translation(rows, preset: str, nulls=None) -> Figure:
    """12. Unpaired translation: FD of G(A) against held-out B and content accuracy of G(a)."""
    return strength_figure(
        rows,
        ("fd", "content_accuracy", "cycle_error_a"),
        swept_targets(rows),
        figure_title("12", "Unpaired translation (cycle GAN)", rows, preset),
        nulls=nulls,
    )


@registry.register("fig6_vae", scope=registry.EXPERIMENT, kinds=("vae",))
def _vae(study, experiment):
    return fig_vae(experiment.rows, study.preset, experiment.nulls)


@registry.register("fig7_cgan", scope=registry.EXPERIMENT, kinds=("cgan",))
def _cgan(study, experiment):
    return fig_cgan(experiment.rows, study.preset, experiment.nulls)


@registry.register("fig8_stacked", scope=registry.EXPERIMENT, kinds=("stacked",))
def _stacked(study, experiment):
    return fig_stacked(experiment.rows, study.preset, experiment.nulls)


@registry.register("fig12_translation", scope=registry.EXPERIMENT, kinds=("translation",))
def _translation(study, experiment):
    return fig_translation(experiment.rows, study.preset, experiment.nulls)
