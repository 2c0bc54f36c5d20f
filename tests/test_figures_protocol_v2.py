"""The protocol-v2 figures from hand-built rows: 1 (near zero, log axis), 10 (smoothness), 13
(generalisation per training-set size, with the memoriser and held-out nulls).

No training: each test builds ``results.csv``-like rows and checks what the
figure draws (panels, titles, axis scales, reference lines) against the rows.
"""

import json

import pytest
from matplotlib.figure import Figure

from experiments.study import captions, cells, vocabulary
from experiments.study.figures import generalisation, panels, registry, smoothness, sparsity

STRENGTHS = (0.1, 1.0, 10.0)


def row(name, penalty, target, value, seed, **scores):
    """A results.csv row of a digits GAN run with the keys the figures read."""
    regulariser = penalty if penalty in vocabulary.BASELINES else "none"
    return {
        "run": f"{name}/{penalty}-{target}-{value}-seed{seed}",
        "penalty": penalty,
        "target": target,
        "value": value,
        "regulariser": regulariser,
        "seed": seed,
        "diverged": False,
        "config.name": name,
        "config.steps": 12,
        "config.model_type": "gan",
        "config.data.name": "digits",
        "config.penalty.g.kind": "none",
        "config.penalty.d.kind": "none",
        **scores,
    }


def grid(name, targets, scores_of, seeds=(0, 1)):
    """The unregularised runs and proximal L1 on ``targets`` at :data:`STRENGTHS`."""
    rows = [row(name, "none", None, None, s, **scores_of(None, s)) for s in seeds]
    for target in targets:
        for value in STRENGTHS:
            rows += [row(name, "prox_l1", target, value, s, **scores_of(value, s)) for s in seeds]
    return rows


def titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.axison]


def line_labels(ax) -> set[str]:
    return set(ax.get_legend_handles_labels()[1])


def test_log_y_where_the_cells_span_two_decades():
    def scores(value, seed):
        spread = 0.0 if value is None else value * 1e-3 * (1 + seed)
        return {"sparsity_g": spread, "sparsity_d": 0.0}

    rows = grid("digits_gan", ("g",), scores)
    ax = Figure().add_subplot()
    panels.strength_panel(ax, rows, "sparsity", "g")
    panels.log_y_if_decades(ax, rows, "sparsity", "g")
    # Cells from 1e-4 to 2e-2: two decades or more, linear below the smallest positive value.
    assert ax.get_yscale() == "symlog"
    assert ax.yaxis.get_transform().linthresh == pytest.approx(1e-4)
    assert ax.get_ylim()[0] == 0  # fractions: no negative decades below the zeros
    flat = Figure().add_subplot()
    narrow = grid("digits_gan", ("g",), lambda v, s: {"sparsity_g": 0.5 + 0.01 * s})
    panels.log_y_if_decades(flat, narrow, "sparsity", "g")
    assert flat.get_yscale() == "linear"


def test_fig1_draws_near_zero_beside_exact_zeros_with_a_log_axis_where_needed():
    def scores(value, seed):
        near = 0.0 if value is None else min(1.0, value * 1e-3 * 10 ** (seed + 1))
        return {
            "sparsity_g": 0.0 if value is None else 0.2 + 0.01 * seed,
            "sparsity_d": 0.0,
            "near_zero_g": near,
            "near_zero_d": 0.0,
            "filter_sparsity_g": 0.0,
            "filter_sparsity_d": 0.0,
        }

    fig = sparsity.fig_sparsity(grid("digits_gan", ("g",), scores), "smoke")
    axes = [ax for ax in fig.axes if ax.axison]
    labels = [ax.get_ylabel() for ax in axes]
    assert labels == [vocabulary.metric(m).label for m in sparsity.SPARSITY_METRICS]
    # near_zero spans 1e-3 x 0.1 x 10 .. 1: log; exact zeros 0.2-0.21 and the
    # baseline's 0 (one value, no decades): linear.
    assert [ax.get_yscale() for ax in axes] == ["linear", "symlog", "linear"]


def test_fig10_puts_path_length_and_the_jacobian_beside_total_variation_per_target():
    def scores(value, seed):
        x = 1.0 if value is None else 1.0 / (1.0 + value)
        return {
            "ppl": 50 * x + seed,
            "jacobian_fro": 3 * x,
            "jacobian_log_cond": 2 + x,
            "sample_tv": 0.4 * x,
        }

    rows = grid("digits_gan", ("g", "both"), scores)
    nulls = {"num_samples": 148, "scores": {"real": {"ppl": 7.0, "fd": 6.0}}}
    fig = smoothness.fig_smoothness(rows, None, "smoke", 0.55, 297, nulls=nulls)
    axes = [ax for ax in fig.axes if ax.axison]
    metrics = (*smoothness.SMOOTHNESS_METRICS, smoothness.BLUR_METRIC)
    assert len(axes) == 2 * len(metrics)  # one row per target
    for i, target in enumerate(("G", "both")):
        row_axes = axes[i * len(metrics) : (i + 1) * len(metrics)]
        assert [ax.get_ylabel() for ax in row_axes] == [vocabulary.metric(m).label for m in metrics]
        assert all(ax.get_title().endswith(f"penalty on {target}") for ax in row_axes)
    real = captions.NULL_STYLES["real"][0]
    assert real.format(n=148) in line_labels(axes[0])  # the experiment's nulls where they exist
    assert real.format(n=297) in line_labels(axes[3])  # the held-out images' total variation
    assert not any(line_labels(ax) & {real.format(n=148)} for ax in axes[1:3])
    assert "blur" in vocabulary.metric("sample_tv").label
    assert "blur / sharpness, not smoothness" in fig.get_suptitle()


def test_fig10_without_protocol_v2_draws_total_variation_only():
    rows = grid("digits_gan", ("g",), lambda v, s: {"sample_tv": 0.3 + 0.01 * s})
    fig = smoothness.fig_smoothness(rows, None, "smoke", 0.5, 297)
    assert [ax.get_ylabel() for ax in fig.axes if ax.axison] == [
        vocabulary.metric("sample_tv").label
    ]


GENERALISATION = {
    "copying_pixels": 1.0,
    "copying_features": 0.5,
    "memorisation_pixels": 0.05,
    "memorisation_features": 0.06,
    "r_v": 0.1,
    "fd_inf_gap": 2.0,
}
NULLS = {
    "num_samples": 74,
    "scores": {
        kind: {m: v * (-5 if kind == "memoriser" else 1) for m, v in GENERALISATION.items()}
        for kind in ("noise", "real", "memoriser")
    },
}


def generalisation_rows(name, train_size, targets):
    def scores(value, seed):
        return {**{m: v + 0.1 * seed for m, v in GENERALISATION.items()}, "train_size": train_size}

    return grid(name, targets, scores)


def test_by_training_size_groups_rows_largest_first():
    rows = generalisation_rows("a", 100, ("g",)) + generalisation_rows("a", 1500, ("g",))
    groups = generalisation.by_training_size(rows + [{"train_size": None}])
    assert list(groups) == [1500, 100, None]
    assert all(r["train_size"] == 1500 for r in groups[1500]) and len(groups[1500]) == 8


def test_fig13_has_a_row_per_training_size_and_target_with_the_memoriser_and_real_nulls():
    experiments = {
        "digits_gan": (generalisation_rows("digits_gan", 1500, ("g", "both")), NULLS),
        "digits_gan_small": (generalisation_rows("digits_gan_small", 100, ("both",)), None),
    }
    fig = generalisation.fig_generalisation(experiments, "smoke")
    axes = [ax for ax in fig.axes if ax.axison]
    columns = [m for m in generalisation.GENERALISATION_PANELS if m in GENERALISATION]
    assert len(axes) == 3 * len(columns)  # no ELBO gap in these rows: no column for it
    heads = ("digits_gan, N=1500", "digits_gan, N=1500", "digits_gan_small, N=100")
    for i, (head, target) in enumerate(zip(heads, ("G", "both", "both"))):
        for ax, metric in zip(axes[i * len(columns) :], columns):
            short = vocabulary.metric(metric).short
            assert ax.get_title() == f"{head}: {short}, on {target}"
    memoriser = captions.NULL_STYLES["memoriser"][0].format(n=74)
    real = captions.NULL_STYLES["real"][0].format(n=74)
    for ax in axes[: 2 * len(columns)]:  # digits_gan's nulls: memoriser and real, no noise
        assert {memoriser, real} <= line_labels(ax)
        assert "null: noise" not in line_labels(ax)
        drawn = {ln.get_label(): ln.get_ydata()[0] for ln in ax.get_lines()}
        metric = columns[axes.index(ax) % len(columns)]
        assert drawn[memoriser] == pytest.approx(NULLS["scores"]["memoriser"][metric])
    assert not any(line_labels(ax) & {memoriser, real} for ax in axes[2 * len(columns) :])


def test_fig13_is_registered_for_runs_with_generalisation_scores_only(tmp_path):
    rows = generalisation_rows("digits_gan", 1500, ("g",))
    (tmp_path / "digits_gan").mkdir()
    (tmp_path / "digits_gan" / cells.NULLS_FILE).write_text(json.dumps(NULLS))
    specs = registry.figure_specs(rows, tmp_path, "smoke")
    assert "fig13_generalisation" in specs
    fig = specs["fig13_generalisation"]()
    assert any(
        captions.NULL_STYLES["memoriser"][0].format(n=74) in line_labels(ax) for ax in fig.axes
    )
    plain = [{k: v for k, v in r.items() if k not in GENERALISATION} for r in rows]
    assert "fig13_generalisation" not in registry.figure_specs(plain, tmp_path, "smoke")
