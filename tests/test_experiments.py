"""The figures pipeline, the sweep's bad input, and the statistics behind every figure and table.

The statistics tests build rows by hand and compare with numpy and
:mod:`regan_jax.stats`; the end-to-end test runs ``python -m
experiments.figures --preset smoke`` in a subprocess and checks every figure,
``results.csv`` against the runs' ``summary.json`` files, and ``results.md``
against a recomputation of a cell's median and paired difference.
"""

import csv
import json
import math
import os
import pathlib
import subprocess
import sys

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy import stats as scipy_stats
from statsmodels.stats.power import TTestPower

import experiments
from experiments import figures, sweep
from experiments.study import (
    captions,
    cells,
    claims,
    presets,
    results,
    runner,
    tables,
    vocabulary,
)
from experiments.study import members as members_lib
from experiments.study.figures import output, panels
from regan_jax import config as config_lib
from regan_jax import stats, train

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMOKE_FIGURES = {
    "fig1_sparsity_digits_gan",
    "fig2a_mixture_samples",
    "fig2b_mixture_metrics",
    "fig3_quality",
    "fig4a_dirac",
    "fig4b_stability_digits_gan",
    "fig5_samples_digits_gan",
    "fig5_samples_digits_cgan",
    "fig6_vae_digits_vae",
    "fig7_cgan_digits_cgan",
    "fig8_stacked_stacked_digits_gan",
    "fig9_precision_recall_digits_gan",
    "fig10_smoothness_digits_gan",
    "fig11_on_r1_digits_gan",
    "fig12_translation_digits_cyclegan",
    "fig5_samples_digits_cyclegan",
    "fig13_generalisation",
    "fig17_verdicts",
    # digits_gan_small: the digits GAN at 100 training images (figure 13's second size).
    "fig1_sparsity_digits_gan_small",
    "fig4b_stability_digits_gan_small",
    "fig5_samples_digits_gan_small",
    "fig9_precision_recall_digits_gan_small",
    "fig10_smoothness_digits_gan_small",
}


def row(penalty, target, value, seed, name="digits_gan", regulariser=None, **scores):
    """A results.csv row with the labels, scores and the config keys the figures read."""
    if regulariser is None:
        regulariser = penalty if penalty in vocabulary.BASELINES else "none"
    return {
        "run": f"{name}/{regulariser}+{penalty}-{target}-{value}-{seed}",
        "penalty": penalty,
        "target": target,
        "value": value,
        "regulariser": regulariser,
        "seed": seed,
        "diverged": scores.pop("diverged", False),
        "config.name": name,
        "config.steps": 100,
        "config.penalty.g.kind": "none",
        "config.penalty.d.kind": "none",
        **scores,
    }


# ----------------------------------------------------------------------------
# Statistics (no training)
# ----------------------------------------------------------------------------

NONE_FDS = (60.0, 70.0, 65.0)
FDS = {
    (1e-3, 0): 40.0,
    (1e-3, 1): 44.0,
    (1e-3, 2): 90.0,
    (1e-2, 0): 30.0,
    (1e-2, 1): 50.0,
    (1e-2, 2): 35.0,
    (1e-1, 0): 10.0,
    (1e-1, 1): None,
    (1e-1, 2): 12.0,  # None: diverged
    (1.0, 0): None,
    (1.0, 1): None,
    (1.0, 2): 5.0,
}


def fds_at(value) -> list[float]:
    """The FDs of the l1 cell at ``value`` by seed, a diverged run counted as +inf."""
    return [math.inf if FDS[(value, s)] is None else FDS[(value, s)] for s in range(3)]


@pytest.fixture
def rows():
    out = [row("none", None, None, s, fd=fd) for s, fd in enumerate(NONE_FDS)]
    for (value, seed), fd in FDS.items():
        out.append(row("l1", "g", value, seed, fd=fd, diverged=fd is None))
    return out


def key(penalty, target, value, on="none"):
    return cells.CellKey(on, penalty, target, value)


def test_cells_are_medians_with_bootstrap_cis_and_diverged_runs_count_as_worst(rows):
    table = cells.cells(rows, "fd")
    for value in (1e-3, 1e-2, 1e-1, 1.0):
        fds = fds_at(value)
        cell = table[key("l1", "g", value)]
        assert cell.median == float(np.median(fds))
        assert (cell.low, cell.high) == stats.bootstrap_ci(fds)
        assert (cell.n, cell.failed) == (3, sum(math.isinf(f) for f in fds))
    assert table[key("l1", "g", 1.0)].median == math.inf  # two of three diverged
    none = table[cells.CellKey("none", "none", None, None)]
    assert none.median == 65.0 and (none.low, none.high) == stats.bootstrap_ci(NONE_FDS)


def test_best_strength_counts_diverged_runs_as_the_worst_value(rows):
    # 1e-1: median of (10, inf, 12) = 12, the best; 1.0: median inf, never best.
    assert cells.best_strength(rows, "fd", "l1", "g") == 1e-1
    assert cells.best_strength(rows, "fd", "l1", "d") is None


def test_higher_is_better_metrics_pick_the_maximum_and_diverged_runs_score_zero():
    rows = [
        row("l1", "g", v, s, modes=m, diverged=m is None)
        for (v, s), m in {
            (0.1, 0): 3,
            (0.1, 1): 5,
            (1.0, 0): 7,
            (1.0, 1): 8,
            (10.0, 0): 9,
            (10.0, 1): None,
        }.items()
    ]
    assert cells.metric_value(rows[-1], "modes") == 0.0
    assert cells.cells(rows, "modes")[key("l1", "g", 10.0)].median == 4.5
    assert cells.best_strength(rows, "modes", "l1", "g") == 1.0


def test_effective_strength_is_the_x_and_raw_lambda_stays_in_value():
    r = row("prox_l1", "g", 14.687, 0, effective_strength=9.999999999999998, fd=1.0)
    assert cells.strength(r) == 10.0 and r["value"] == 14.687
    assert cells.strength(row("prox_l1", "g", 0.01, 0, fd=1.0)) == 0.01  # raw grid
    sn = row("spectral_norm", "both", 2e-4, 0, fd=1.0)
    assert cells.cell_key(sn) == cells.CellKey("spectral_norm", "spectral_norm", "both", 2e-4)
    on_r1 = row("prox_l1", "both", 3.0, 0, regulariser="r1", effective_strength=1.0)
    assert cells.role(on_r1) == "on_r1" and cells.cell_key(on_r1).regulariser == "r1"


def test_sparsity_reads_the_targeted_network_and_drops_diverged_runs():
    r = row("prox_l1", "d", 0.1, 0, sparsity_g=0.0, sparsity_d=0.4)
    assert cells.metric_value(r, "sparsity") == 0.4
    both = row("prox_l1", "both", 0.1, 0, sparsity_g=0.2, sparsity_d=0.4)
    assert cells.metric_value(both, "sparsity") == pytest.approx(0.3)
    assert (
        cells.metric_value(row("l1", "g", 0.1, 0, diverged=True, sparsity_g=0.5), "sparsity")
        is None
    )


def test_paired_comparisons_match_regan_jax_stats_and_are_holm_adjusted(rows):
    found = {c.key: c for c in cells.comparisons(rows, "fd")}
    d = np.array(fds_at(1e-2)) - np.array(NONE_FDS)
    c = found[key("l1", "g", 1e-2)]
    assert c.difference == stats.paired_difference(d, np.zeros(3))
    assert (c.test, c.p) == (
        "t",
        pytest.approx(scipy_stats.ttest_rel(fds_at(1e-2), NONE_FDS).pvalue),
    )
    assert c.d_z == pytest.approx(stats.effect_size(d, np.zeros(3)))
    # A diverged seed makes a difference infinite: the exact sign test, no d_z.
    diverged = found[key("l1", "g", 1e-1)]
    assert diverged.test == "sign" and diverged.d_z is None
    assert diverged.p == pytest.approx(scipy_stats.binomtest(1, 3).pvalue)
    ordered = [found[key("l1", "g", v)] for v in (1e-3, 1e-2, 1e-1, 1.0)]
    assert [o.p_holm for o in ordered] == pytest.approx(list(stats.holm([o.p for o in ordered])))
    for o in ordered:
        assert o.claim == (
            "n.s."
            if o.p_holm >= 0.05
            else "better"
            if np.mean(np.array(fds_at(o.key.strength)) - NONE_FDS) < 0
            else "worse"
        )


def test_penalties_on_r1_are_paired_with_r1_and_spectral_norm_takes_its_best_lr():
    rows = [row("none", None, None, s, fd=50.0 + s) for s in range(3)]
    rows += [row("r1", None, None, s, fd=40.0 + s) for s in range(3)]
    rows += [
        row("spectral_norm", "both", lr, s, fd=fd + s)
        for lr, fd in ((1e-4, 45.0), (1e-3, 30.0))
        for s in range(3)
    ]
    rows += [row("l2", "d", 1.0, s, regulariser="r1", fd=38.0 + 2 * s) for s in range(3)]
    bases = cells.baseline_keys(rows, "fd")
    assert bases["spectral_norm"].strength == 1e-3
    found = {c.key: c for c in cells.comparisons(rows, "fd")}
    on_r1 = found[key("l2", "d", 1.0, "r1")]
    assert on_r1.reference == bases["r1"]
    assert on_r1.difference["median"] == pytest.approx(-1.0)  # (38, 40, 42) - (40, 41, 42)
    assert key("spectral_norm", "both", 1e-4, "spectral_norm") not in found
    table = tables.results_table(rows, "cpu")
    assert "Penalties on top of R1" in table and "best of its lr sweep" in table


def test_unstable_runs_use_the_relative_fd_flag_with_clopper_pearson_intervals(rows):
    flags = cells.instability(rows)
    # No final FD above 2 x the unregularised median (65): only the diverged runs.
    runs = [r for r in rows if r["penalty"] == "l1"]
    share = cells.unstable_fraction(runs, flags)
    assert (share.k, share.n) == (3, 12)  # the three diverged runs
    ci = scipy_stats.binomtest(3, 12).proportion_ci(0.95, method="exact")
    assert (share.low, share.high) == pytest.approx((ci.low, ci.high))
    blowup = row("l1", "g", 5.0, 0, fd=200.0)
    assert cells.instability(rows + [blowup])[blowup["run"]] == {
        "fd_blowup": True,
        "unstable": True,
    }


def test_results_table_reports_median_ci_paired_difference_and_claims(rows):
    md = tables.results_table(rows, "cpu")
    line = next(ln for ln in md.splitlines() if ln.startswith("| L1 (subgradient) | g | 0.01 |"))
    fields = [f.strip() for f in line.strip("|").split("|")]
    fds = fds_at(1e-2)
    low, high = stats.bootstrap_ci(fds)
    assert fields[4].replace("**", "") == (
        f"{cells.fmt(np.median(fds))} [{cells.fmt(low)}, {cells.fmt(high)}]"
    )
    d = stats.paired_difference(np.array(fds) - NONE_FDS, np.zeros(3))
    assert fields[5] == f"{cells.fmt(d['median'])} [{cells.fmt(d['low'])}, {cells.fmt(d['high'])}]"
    diverged = next(ln for ln in md.splitlines() if ln.startswith("| L1 (subgradient) | g | 1 |"))
    assert "∞" in diverged and "†" in diverged
    unstable, fisher = [f.strip() for f in diverged.strip("|").split("|")][-2:]
    # 2 of 3 runs unstable against none of the unregularised 3: Fisher's exact test.
    assert unstable == "2/3"
    assert fisher == cells.fmt(scipy_stats.fisher_exact([[2, 1], [0, 3]]).pvalue)
    assert "seeds 0,1,2" in md and "100 steps" in md and "preset cpu" in md


def test_an_unstable_setting_is_judged_against_the_stable_experiments_baseline():
    """Thresholds from digits_gan's runs (median 30: unstable above 60), never from the broken
    baseline (median 280, whose own threshold 560 would call nothing but divergence unstable)."""
    stable = [row("none", None, None, s, fd=fd) for s, fd in enumerate((28.0, 30.0, 33.0))]
    name = "digits_gan_unstable"
    broken = [
        row("none", None, None, s, name=name, fd=fd) for s, fd in enumerate((250.0, 280.0, 300.0))
    ]
    fixed = [
        row("weight_decay", "d", 1.0, s, name=name, fd=fd)
        for s, fd in enumerate((25.0, 29.0, 31.0))
    ]
    better = [
        row("weight_decay", "d", 10.0, s, name=name, fd=fd)
        for s, fd in enumerate((120.0, 130.0, 140.0))
    ]
    mine = broken + fixed + better
    assert cells.stable_rows(stable + mine, name) == stable
    assert cells.stable_rows(stable + mine, "digits_gan") == stable
    flags = cells.instability(mine, stable)
    assert [flags[r["run"]]["unstable"] for r in mine] == [True] * 3 + [False] * 3 + [True] * 3
    assert not any(f["unstable"] for f in cells.instability(mine).values())  # the broken way
    stable_cell = cells.cells(stable, "fd")[key("none", None, None)]
    table = cells.cells(mine, "fd")
    none = table[key("none", None, None)]
    assert stable_cell.high >= 30.0  # the CI of the stable median holds the fixed cell's median
    assert (
        cells.repair(table[key("weight_decay", "d", 1.0)], none, stable_cell, "fd") == cells.FIXES
    )
    assert (
        cells.repair(table[key("weight_decay", "d", 10.0)], none, stable_cell, "fd")
        == cells.LESS_BROKEN
    )
    assert cells.repair(none._replace(median=400.0), none, stable_cell, "fd") == cells.NOT_BETTER
    md = tables.results_table(mine, "cpu", None, stable)
    assert f"| stable baseline: digits_gan, none | — | — | — | {cells.fmt(30.0)} [" in md
    lines = {
        ln.split("|")[3].strip(): [f.strip() for f in ln.strip("|").split("|")]
        for ln in md.splitlines()
        if ln.startswith("| weight decay (AdamW) | d |")
    }
    assert lines["1"][-3:] == [
        "0/3",
        cells.fmt(scipy_stats.fisher_exact([[0, 3], [3, 0]]).pvalue),
        "fixes",
    ]
    assert lines["10"][-3:] == ["3/3", "1", "less broken"]


@pytest.mark.parametrize("name", sorted(cells.STABLE_BASELINES))
def test_every_unstable_setting_loads_validates_and_names_its_stable_experiment(name):
    for spec in (f"experiments/configs/{name}.py", f"experiments/configs/{name}.py:smoke"):
        config = experiments.load_config(spec, [])
        config_lib.validate(config)
        assert config.name == name
    stable = experiments.load_config(f"experiments/configs/{cells.STABLE_BASELINES[name]}.py", [])
    assert stable.model_type == config.model_type and stable.data.name == config.data.name


def test_the_capacity_setting_gives_d_sixteen_times_gs_width():
    config = experiments.load_config("experiments/configs/digits_gan_capacity.py", [])
    assert (config.model.g_width, config.model.d_width) == (64, 1024)


def test_the_data_limited_vae_is_digits_vae_on_100_training_images():
    for arg in ("", ":smoke"):
        path = f"experiments/configs/digits_vae_small_data.py{arg}"
        config_lib.validate(experiments.load_config(path, []))
    small = experiments.load_config("experiments/configs/digits_vae_small_data.py", [])
    full = experiments.load_config("experiments/configs/digits_vae.py", [])
    assert config_lib.differing_keys(small, full) == [
        "data.train_size",
        "log.samples_every",
        "name",
    ]
    assert small.data.train_size == 100


def test_mixture_table_puts_the_published_pacgan_numbers_beside_the_baseline():
    rows = [
        row("none", None, None, s, name="ring8_gan", modes=m, hq_fraction=0.9, reverse_kl=0.5)
        for s, m in enumerate((6, 7, 8))
    ]
    nulls = {
        "num_samples": 100,
        "scores": {"noise": {"modes": 0, "hq_fraction": 0.0}, "real": {"modes": 8}},
    }
    md = tables.results_table(rows, "cpu", nulls)
    pacgan = next(ln for ln in md.splitlines() if ln.startswith(f"| {captions.PACGAN_LABEL}"))
    assert "| 6.3 |" in pacgan and "0.982" in pacgan and "0.45" in pacgan
    assert "| null: noise |" in md and "true mixture samples, N=100" in md
    assert "| none | — | — | — | 7 [" in md


def test_grid25_table_heads_with_the_noise_robust_count_the_published_one_beside():
    rows = [
        row(
            "none",
            None,
            None,
            s,
            name="grid25_gan",
            modes=m,
            robust_modes=r,
            hq_fraction=0.9,
            reverse_kl=1.3,
        )
        for s, (m, r) in enumerate(((18, 9), (17, 8), (19, 10)))
    ]
    nulls = {"num_samples": 100, "scores": {"noise": {"modes": 20, "robust_modes": 0}}}
    assert cells.headline_metric(rows) == "robust_modes"
    md = tables.results_table(rows, "cpu", nulls)
    header = next(ln for ln in md.splitlines() if ln.startswith("| setting |"))
    assert "| median robust modes [CI] |" in header and header.index("| modes |") > 0
    assert "| null: noise | — | — | — | 0 | — | — | — | — | 20 |" in md
    pacgan = next(ln for ln in md.splitlines() if ln.startswith(f"| {captions.PACGAN_LABEL}"))
    assert pacgan.startswith(f"| {captions.PACGAN_LABEL} | — | — | — | — | — | — | — | — | 17.3 |")
    assert "| none | — | — | — | 9 [" in md


def test_strength_panel_draws_diverged_cells_at_the_edge_and_nulls_as_lines(rows):
    ax = Figure().add_subplot()
    rows = rows + [row("max_norm", "g", r, s, fd=20.0 + r) for r in (0.5, 2.0) for s in range(3)]
    nulls = {"num_samples": 148, "scores": {"noise": {"fd": 80.0}, "real": {"fd": 1e5}}}
    panels.strength_panel(ax, rows, "fd", "g", lines=panels.null_lines(nulls, "fd"))
    labels = {lb for a in ax.figure.axes for lb in a.get_legend_handles_labels()[1]}
    max_norm = vocabulary.PENALTIES["max_norm"].label + panels.RADIUS_NOTE
    assert {panels.OFF_SCALE, "null: noise", "baseline: none", max_norm} <= labels
    assert all(math.isfinite(v) for v in ax.get_ylim())
    assert "held-out real 1e+05" in " ".join(t.get_text() for t in ax.texts)  # off scale
    assert len(ax.figure.axes) == 2 and ax.figure.axes[1].xaxis_inverted()  # radius axis


def test_total_variation_matches_a_hand_computed_value():
    image = np.array([[0.0, 1.0], [1.0, -1.0]]).reshape(1, 2, 2, 1)
    # vertical |1-0| + |-1-1| = 3 over 2 pairs, horizontal |1-0| + |-1-1| = 3 over 2 pairs
    assert tables.total_variation(image) == pytest.approx(1.5 + 1.5)
    flat = np.zeros((3, 4, 4, 3))
    assert tables.total_variation(flat) == 0.0


def test_presets_are_valid_grids():
    for name, experiments_ in presets.PRESETS.items():
        for experiment, grids in experiments_.items():
            for grid in grids:
                # The experiment is the config's name (a grid may rename its base config).
                config = experiments.load_config(grid.config)
                assert dict(grid.overrides).get("name", config.name) == experiment
                vocabulary.check_names(grid.penalties, grid.targets, config.model_type)
                assert all(s > 0 for s in grid.strengths) and grid.seeds
                # Every grid states why it has its seeds (a PowerPlan states its own).
                assert isinstance(grid.seeds, presets.PowerPlan) or grid.seeds_reason
            assert name == "smoke" or "none" in grids[0].penalties
    assert all(
        len(presets.grid_seeds(g)[0]) >= 3 for gs in presets.PRESETS["full"].values() for g in gs
    )
    assert "fashion_mnist_gan" in presets.PRESETS["full"]


def test_a_power_plan_asks_the_pilot_for_its_seeds():
    """The full preset's unstable grid: the pilot's paired FDs read with the csv module, the
    Hedges-corrected d_z, and statsmodels' sample size at Holm's first step of 72."""
    plan = presets.UNSTABLE_POWER
    with open(plan.pilot, newline="") as f:
        runs = [r for r in csv.DictReader(f) if r["config.name"] == plan.experiment]
    fd = {
        (r["penalty"], r["target"], r["effective_strength"] or None, int(r["seed"])): float(r["fd"])
        for r in runs
        if r["regulariser"] == "none" and r["fd"]
    }
    d = np.array(
        [fd[(plan.penalty, plan.target, "1.0", s)] - fd[("none", "", None, s)] for s in range(5)]
    )
    d_z = d.mean() / d.std(ddof=1)
    corrected = d_z * math.gamma(2) / (math.sqrt(2) * math.gamma(1.5))  # J(4)
    n = TTestPower().solve_power(
        effect_size=abs(corrected), alpha=0.05 / 72, power=0.8, alternative="larger"
    )
    (grid,) = [g for g in presets.PRESETS["full"]["digits_gan_unstable"] if g.on == "none"]
    seeds, reason = presets.grid_seeds(grid)
    assert plan.family_size == 72 and seeds == tuple(range(math.ceil(n)))
    assert f"d_z {d_z:.2f} over 5 seeds, {corrected:.2f} corrected" in reason
    assert reason.startswith(f"{math.ceil(n)} seeds: 80% power") and "step 1 of 72" in reason
    plain = presets.PRESETS["cpu"]["digits_gan"][0]
    assert presets.grid_seeds(plain) == (presets.V2_SEEDS, presets.V2_REASON)


def test_study_v2s_stated_power_is_statsmodels_at_holms_first_step():
    """V2_REASON's smallest d_z that 8 seeds detect with 80 % power at alpha 0.05 / 104."""
    d_z = TTestPower().solve_power(
        nobs=len(presets.V2_SEEDS),
        alpha=cells.ALPHA / presets.V2_FAMILY,
        power=0.8,
        alternative="larger",
    )
    assert f"{presets.V2_FAMILY} tests" in presets.V2_REASON
    assert f"d_z >= {d_z:.1f}" in presets.V2_REASON
    (grid,) = [g for g in presets.PRESETS["cpu"]["digits_gan_unstable"] if g.on == "none"]
    seeds, reason = presets.grid_seeds(grid)
    d = presets.pilot_differences(presets.V2_POWER)
    corrected = (d.mean() / d.std(ddof=1)) * math.gamma(2) / (math.sqrt(2) * math.gamma(1.5))
    n = TTestPower().solve_power(
        effect_size=abs(corrected), alpha=0.05 / 30, power=0.8, alternative="larger"
    )
    assert seeds == tuple(range(math.ceil(n))) and "step 1 of 30" in reason


def _directional_tests(part, preset="cpu"):
    """2 x the comparisons of a claim part against the unregularised runs in a preset's grids."""
    comparisons = 0
    for name in part.metrics:
        for grid in presets.PRESETS[preset].get(name, ()):
            if grid.on != "none":
                continue
            penalties = [p for p in grid.penalties if p in part.penalties]
            targets = [t for t in grid.targets if t in part.targets]
            comparisons += len(penalties) * len(targets) * len(grid.strengths)
    return 2 * comparisons


def test_study_v2s_power_plans_are_sized_for_the_families_the_claims_declare():
    """V2_FAMILY: the generalisation claim's largest part; V2_POWER: the stability claim's
    final-FD part, both counted from claims.CLAIMS over the cpu preset's grids."""
    by_name = {c.name: c for c in claims.CLAIMS}
    generalisation = by_name["prevents_overfitting"].parts
    assert max(_directional_tests(p) for p in generalisation) == presets.V2_FAMILY
    final_fd = by_name["weight_decay_stabilises"].parts[0]
    assert _directional_tests(final_fd) == presets.V2_POWER.family_size


def test_the_length_ablation_doubles_the_length_at_one_effective_strength():
    (short,), (long,) = (presets.PRESETS["length"][f"digits_gan_length{k}x"] for k in (1, 2))
    configs = [experiments.load_config(g.config, g.overrides) for g in (short, long)]
    assert [c.steps for c in configs] == [5000, 10000]
    assert short.penalties == long.penalties == ("none", "weight_decay")
    assert short.strengths == long.strengths == (1.0,) and short.units == "effective"


@pytest.mark.parametrize(
    "penalty,expected",
    [
        ("weight_decay", 1.0 / 5000),
        ("prox_l1", 1.0 / 5000),
        ("elastic_net", 1.0 / 5000),
        ("l2", 1.0),
        ("l1", 1.0),
        ("max_norm", None),
        ("none", None),
    ],
)
def test_strength_per_step_divides_a_per_run_strength_by_the_steps(penalty, expected):
    assert members_lib.strength_per_step(penalty, 1.0, 5000) == expected


# ----------------------------------------------------------------------------
# Bad input: exit code 2, nothing written
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--penalties", ""], "zero members"),
        (["--seeds", ""], "--seeds must be integers"),
        (["--targets", "", "--penalties", "l1"], "zero members"),
        (["--config.penalty.g.strenght=1"], "valid keys at penalty.g are"),
        (["--config.steps=many"], "expects type int"),
        (["--penalties", "l5"], "unknown penalty 'l5'"),
    ],
)
def test_sweep_bad_input_exits_nonzero_and_writes_nothing(tmp_path, capsys, args, message):
    workdir = tmp_path / "sweep"
    assert sweep.main(["--config", "digits_gan:smoke", "--workdir", str(workdir), *args]) == 2
    assert message in capsys.readouterr().err
    assert not workdir.exists()


def test_figures_refuses_a_workdir_of_another_preset(tmp_path, capsys):
    train.write_json(tmp_path / tables.PRESET_FILE, {"preset": "cpu"})
    assert figures.main(["--preset", "smoke", "--workdir", str(tmp_path)]) == 2
    assert "holds the 'cpu' preset" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [tables.PRESET_FILE]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--jobs", "0"], "--jobs must be >= 1, got 0"),
        (["--shard", "2/2"], "--shard 2/2: need 0 <= i < N"),
        (["--shard", "half"], "--shard must look like i/N"),
    ],
)
def test_figures_bad_jobs_or_shard_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    assert figures.main(["--preset", "smoke", "--workdir", str(tmp_path / "w"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_preset_progress_counts_finished_and_logged_steps(tmp_path):
    """The whole-preset bar: a finished run counts all its steps, a running one its last logged."""
    finished, running, fresh = (tmp_path / n for n in ("a", "b", "c"))
    for d in (finished, running):
        d.mkdir()
        (d / train.METRICS_FILE).write_text('{"step": 100}\n{"step": 250}\n')
    train.write_json(finished / train.SUMMARY_FILE, {"steps": 400})
    assert runner._steps_done(finished, 400) == 400
    assert runner._steps_done(running, 400) == 250
    assert runner._steps_done(fresh, 400) == 0


def test_figures_rejects_an_unknown_preset(tmp_path):
    with pytest.raises(SystemExit) as e:
        figures.main(["--preset", "huge", "--workdir", str(tmp_path)])
    assert e.value.code == 2
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------
# End to end: the smoke preset (in the default suite: ~2 minutes on an idle 2-core CPU)
# ----------------------------------------------------------------------------


def run_figures(workdir, cache, *extra):
    # Tiny programs: XLA's optimisation passes cost more than they save (halves the run).
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": cache,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.figures",
            "--preset",
            "smoke",
            "--workdir",
            str(workdir),
            "--no-progress",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("smoke")
    cache = str(tmp_path_factory.mktemp("xla_cache"))
    result = run_figures(workdir, cache)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, cache


def test_smoke_preset_draws_every_figure(smoke_dir):
    workdir, _ = smoke_dir
    out = workdir / runner.FIGURES_DIR
    assert {p.stem for p in out.glob("*.png")} == SMOKE_FIGURES
    assert {p.stem for p in out.glob("*.pdf")} == SMOKE_FIGURES
    for stem in SMOKE_FIGURES:
        image = matplotlib.image.imread(out / f"{stem}.png")
        assert image.ndim == 3 and min(image.shape[:2]) > 200
        assert image[..., :3].std() > 0.05  # not blank
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF")


def test_smoke_results_csv_and_md_match_the_summaries(smoke_dir):
    workdir, _ = smoke_dir
    summaries = {
        str(p.parent.relative_to(workdir)): json.loads(p.read_text())
        for p in workdir.rglob("summary.json")
    }
    members = runner.preset_members("smoke", workdir)  # its calibration records
    assert len(summaries) == sum(len(m) for m in members.values())
    with open(workdir / tables.RESULTS_CSV, newline="") as f:
        raw = list(csv.DictReader(f))
    assert sorted(r["run"] for r in raw) == sorted(summaries)
    for r in results.read_csv(workdir / tables.RESULTS_CSV):
        summary = summaries[r["run"]]
        for key, value in summary.items():
            assert r[key] == pytest.approx(value) if isinstance(value, float) else r[key] == value
        # sample_tv: the total variation of the run's own final samples (images), else empty.
        samples = np.load(workdir / r["run"] / "samples" / "final.npz")["samples"]
        expected = tables.total_variation(samples) if samples.ndim == 4 else None
        assert r["sample_tv"] == (None if expected is None else pytest.approx(expected))

    # The digits table's prox_l1 line on G at effective 0.1, recomputed from the summaries.
    def fds(prefix):
        return np.array([summaries[f"digits_gan/{prefix}-seed{s}"]["fd"] for s in (0, 1)])

    penalised, none = fds("prox_l1-g-e0.1"), fds("none")
    low, high = stats.bootstrap_ci(penalised)
    d = stats.paired_difference(penalised - none, np.zeros(2))
    raw = train.read_json(workdir / "digits_gan/prox_l1-g-e0.1-seed0" / train.CONFIG_FILE)
    md = (workdir / tables.RESULTS_MD).read_text()
    section = md.split("### digits_gan", 1)[1].split("\n### ", 1)[0]
    on_g = section.split("**Penalty on G**", 1)[1]
    line = next(ln for ln in on_g.splitlines() if ln.startswith("| L1 (proximal) | g | 0.1 "))
    fields = [f.strip().replace("**", "") for f in line.strip("|").split("|")]
    fmt = cells.fmt
    # A proximal penalty's effective strength is a total over the run: per step beside it.
    assert fields[2] == f"0.1 ({0.1 / raw['steps']:.2g}/step)"
    assert fields[3] == fmt(raw["penalty"]["g"]["strength"])
    assert fields[4] == f"{fmt(np.median(penalised))} [{fmt(low)}, {fmt(high)}]"
    assert fields[5] == f"{fmt(d['median'])} [{fmt(d['low'])}, {fmt(d['high'])}]"
    assert "preset smoke" in md and "12 steps" in md and "null: held-out real, N=" in section
    assert "**Penalties on top of R1**" in section


def test_smoke_rerun_reuses_the_finished_runs(smoke_dir):
    workdir, cache = smoke_dir
    before = {p: p.stat().st_mtime_ns for p in workdir.rglob("summary.json")}
    result = run_figures(workdir, cache)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 to train" in result.stdout
    assert {p: p.stat().st_mtime_ns for p in workdir.rglob("summary.json")} == before


def test_export_small_pngs_resizes_and_keeps_plot_colours(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure(figsize=(20, 5), dpi=100)  # 2000 x 500 pixels
    ax = fig.add_subplot()
    for colour in ("tab:orange", "tab:olive"):  # neighbours that a coarse palette merges
        ax.axvspan(
            0 if colour == "tab:orange" else 1, 1 if colour == "tab:orange" else 2, color=colour
        )
    FigureCanvasAgg(fig).print_png(str(tmp_path / "fig3_test.png"))
    output.export_small_pngs({"fig3_test": tmp_path / "fig3_test.png"}, tmp_path / "web")
    image = Image.open(tmp_path / "web" / "fig3_test.png")
    assert image.size == (1200, 300)
    colours = {c for _, c in image.convert("RGB").getcolors(1 << 16)}
    for name in ("tab:orange", "tab:olive"):
        rgb = tuple(round(255 * v) for v in matplotlib.colors.to_rgb(name))
        assert min(sum(abs(a - b) for a, b in zip(rgb, c)) for c in colours) <= 6


def test_conditional_turns_a_gan_config_into_a_cgan_config_only():
    cgan = config_lib.conditional(experiments.load_config("digits_gan"))
    assert (cgan.name, cgan.model_type) == ("digits_cgan", "cgan")
    assert "kind" not in cgan.model  # model_type alone names the family
    config_lib.validate(cgan)
    with pytest.raises(ValueError, match="takes a 'gan' config, got model_type 'vae'"):
        config_lib.conditional(config_lib.base_config("vae", "digits"))
