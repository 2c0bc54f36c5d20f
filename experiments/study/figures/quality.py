"""Image quality against strength: 3 (FD and KID of the image GANs) and 11 (penalties on
top of R1)."""

from matplotlib.figure import Figure

from experiments.study import cells
from experiments.study.captions import caption, sn_note
from experiments.study.cells import swept_targets
from experiments.study.figures import registry
from experiments.study.figures.panels import (
    figure_title,
    null_lines,
    panel_figure,
    strength_figure,
    strength_panel,
)
from experiments.study.vocabulary import target_label


def fig_quality(runs_by_experiment: dict, preset: str, nulls_by_experiment=None) -> Figure:
    """3. FD and KID vs strength, one column per target, per image GAN."""
    nulls_by_experiment = nulls_by_experiment or {}
    panels, all_rows = [], []
    for name, rows in runs_by_experiment.items():
        all_rows += rows
        for metric in ("fd", "kid"):
            if not cells.has_metric(rows, metric):
                continue
            lines = null_lines(nulls_by_experiment.get(name), metric)
            panels.append(
                [
                    (
                        f"{name}: penalty on {target_label(t)}",
                        lambda ax, r=rows, m=metric, t=t, ln=lines: strength_panel(
                            ax, r, m, t, lines=ln
                        ),
                    )
                    for t in swept_targets(rows)
                ]
            )
    return panel_figure(
        panels,
        "3. Image quality vs strength (bands: baselines without a weight "
        f"penalty){sn_note(all_rows)}\n{caption(all_rows, preset)}",
    )


def fig_on_regulariser(rows, preset: str, nulls=None, on: str = "r1") -> Figure:
    """11. Weight penalties on top of R1 against the R1 band (and the unregularised one)."""
    mine = [r for r in rows if cells.regulariser(r) == on or r["penalty"] == "none"]
    targets = swept_targets([r for r in mine if cells.role(r) == f"on_{on}"])
    headline = cells.headline_metric(rows)
    metrics = (headline, "kid") if headline == "fd" else (headline, "robust_modes")
    return strength_figure(
        mine,
        metrics,
        targets,
        figure_title(
            "11",
            f"Weight penalties on top of {on.upper()} "
            f"(bands: {on.upper()} alone, and no regulariser)",
            mine,
            preset,
        ),
        nulls=nulls,
        on=on,
    )


@registry.register("fig3_quality", scope=registry.GROUP, kinds=("image_gan",))
def _quality(study, experiments):
    return fig_quality(
        {n: e.rows for n, e in experiments.items()},
        study.preset,
        {n: e.nulls for n, e in study.experiments.items()},
    )


def _has_r1_cells(study, experiment) -> bool:
    rows = experiment.rows
    return any(cells.role(r) == "on_r1" for r in rows) and "r1" in cells.baselines_present(rows)


@registry.register("fig11_on_r1", scope=registry.EXPERIMENT, when=_has_r1_cells)
def _on_r1(study, experiment):
    return fig_on_regulariser(experiment.rows, study.preset, experiment.nulls)
