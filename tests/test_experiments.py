"""The figures pipeline, the sweep's bad input, and the statistics behind every figure and table.

The statistics tests build rows by hand and compare with numpy; the end-to-end
test runs ``python -m experiments.figures --preset smoke`` in a subprocess and
checks every figure, ``results.csv`` against the runs' ``summary.json`` files,
and ``results.md`` against a numpy recomputation of the best medians.
"""
import csv
import json
import os
import pathlib
import subprocess
import sys

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest

import experiments
from experiments import figures, plots, presets, sample_figures, study, sweep
from regan_jax import config as config_lib
from regan_jax import train

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMOKE_FIGURES = {
    "fig1_sparsity_digits_gan", "fig2a_mixture_samples", "fig2b_mixture_metrics",
    "fig3_quality", "fig4_stability_digits_gan", "fig5_samples_digits_gan",
    "fig5_samples_digits_cgan", "fig6_vae_digits_vae", "fig7_cgan_digits_cgan",
    "fig8_stacked_stacked_digits_gan", "fig9_precision_recall_digits_gan",
    "fig10_smoothness_digits_gan",
}


def row(penalty, target, value, seed, name="digits_gan", **scores):
    """A results.csv row with the labels, scores and the config keys the figures read."""
    return {"run": f"{name}/{penalty}-{seed}", "penalty": penalty, "target": target,
            "value": value, "seed": seed, "diverged": scores.pop("diverged", False),
            "config.name": name, "config.steps": 100, "config.penalty.g.kind": "none",
            "config.penalty.d.kind": "none", **scores}


# ----------------------------------------------------------------------------
# Statistics (no training)
# ----------------------------------------------------------------------------

FDS = {(1e-3, 0): 40.0, (1e-3, 1): 44.0, (1e-3, 2): 90.0,
       (1e-2, 0): 30.0, (1e-2, 1): 50.0, (1e-2, 2): 35.0,
       (1e-1, 0): 10.0, (1e-1, 1): None, (1e-1, 2): 12.0}  # None: diverged


@pytest.fixture
def rows():
    out = [row("none", None, None, s, fd=fd) for s, fd in enumerate((60.0, 70.0, 65.0))]
    for (value, seed), fd in FDS.items():
        out.append(row("l1", "g", value, seed, fd=fd, diverged=fd is None))
    return out


def test_cells_are_medians_and_ranges_over_the_seeds_that_scored(rows):
    table = plots.cells(rows, "fd")
    for value in (1e-3, 1e-2, 1e-1):
        scored = [fd for (v, _), fd in FDS.items() if v == value and fd is not None]
        cell = table[("l1", "g", value)]
        assert cell.median == pytest.approx(float(np.median(scored)))
        assert (cell.low, cell.high) == (min(scored), max(scored))
        assert (cell.scored, cell.failed) == (len(scored), 3 - len(scored))
    assert table[("none", None, None)].median == 65.0


def test_best_cell_skips_cells_with_a_diverged_seed(rows):
    # 1e-1 has the lowest median (11) but one seed diverged: 1e-2 (median 35) is best.
    value, cell = plots.best_cell(rows, "fd", "l1", "g")
    assert value == 1e-2 and cell.median == 35.0
    assert plots.best_cell(rows, "fd", "l1", "d") is None


def test_higher_is_better_metrics_pick_the_maximum():
    rows = [row("l1", "g", v, s, modes=m) for (v, s), m in
            {(0.1, 0): 3, (0.1, 1): 5, (1.0, 0): 7, (1.0, 1): 8}.items()]
    assert plots.best_cell(rows, "modes", "l1", "g")[0] == 1.0


def test_sparsity_reads_the_targeted_network():
    r = row("prox_l1", "d", 0.1, 0, sparsity_g=0.0, sparsity_d=0.4)
    assert plots.metric_value(r, "sparsity") == 0.4
    both = row("prox_l1", "both", 0.1, 0, sparsity_g=0.2, sparsity_d=0.4)
    assert plots.metric_value(both, "sparsity") == pytest.approx(0.3)
    assert plots.metric_value(row("l1", "g", 0.1, 0, diverged=True, sparsity_g=0.5),
                              "sparsity") is None


def test_results_table_reports_best_median_strength_and_divergence(rows):
    lines = figures.results_table(rows, "quick").splitlines()
    l1 = next(line for line in lines if line.startswith("| L1 (subgradient) | g |"))
    cells = [c.strip() for c in l1.strip("|").split("|")]
    assert cells[2:] == ["**35**", "30–50", "0.01", "1/9"]
    none = next(line for line in lines if line.startswith("| none |"))
    assert [c.strip() for c in none.strip("|").split("|")][2:] == ["**65**", "60–70", "—", "0/3"]
    assert "seeds 0,1,2" in lines[0] and "100 steps" in lines[0] and "preset quick" in lines[0]


def test_total_variation_matches_a_hand_computed_value():
    image = np.array([[0.0, 1.0], [1.0, -1.0]]).reshape(1, 2, 2, 1)
    # vertical |1-0| + |-1-1| = 3 over 2 pairs, horizontal |1-0| + |-1-1| = 3 over 2 pairs
    assert sample_figures.total_variation(image) == pytest.approx(1.5 + 1.5)
    flat = np.zeros((3, 4, 4, 3))
    assert sample_figures.total_variation(flat) == 0.0


def test_presets_are_valid_grids():
    for name, grids in presets.PRESETS.items():
        for experiment, grid in grids.items():
            assert grid.config.split(":")[0] == experiment
            study.check_names(grid.penalties, grid.targets,
                              "vae" if experiment.endswith("vae") else "gan")
            assert "none" in grid.penalties or name == "smoke"
            assert all(s > 0 for s in grid.strengths) and grid.seeds
    assert all(len(g.seeds) >= 3 for g in presets.PRESETS["full"].values())
    assert "fashion_mnist_gan" in presets.PRESETS["full"]


# ----------------------------------------------------------------------------
# Bad input: exit code 2, nothing written
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--penalties", ""], "zero members"),
    (["--seeds", ""], "zero members"),
    (["--targets", "", "--penalties", "l1"], "zero members"),
    (["--config.penalty.g.strenght=1"], "valid keys at penalty.g are"),
    (["--config.steps=many"], "expects type int"),
    (["--penalties", "l5"], "unknown penalty 'l5'"),
])
def test_sweep_bad_input_exits_nonzero_and_writes_nothing(tmp_path, capsys, args, message):
    workdir = tmp_path / "sweep"
    assert sweep.main(["--config", "digits_gan:smoke", "--workdir", str(workdir), *args]) == 2
    assert message in capsys.readouterr().err
    assert not workdir.exists()


def test_figures_refuses_a_workdir_of_another_preset(tmp_path, capsys):
    train.write_json(tmp_path / figures.PRESET_FILE, {"preset": "quick"})
    assert figures.main(["--preset", "smoke", "--workdir", str(tmp_path)]) == 2
    assert "holds the 'quick' preset" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [figures.PRESET_FILE]


def test_figures_rejects_an_unknown_preset(tmp_path):
    with pytest.raises(SystemExit) as e:
        figures.main(["--preset", "huge", "--workdir", str(tmp_path)])
    assert e.value.code == 2
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------
# End to end: the smoke preset (in the default suite: ~70 s on an idle 2-core CPU)
# ----------------------------------------------------------------------------

def run_figures(workdir, cache, *extra):
    # Tiny programs: XLA's optimisation passes cost more than they save (halves the run).
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": cache,
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"}
    return subprocess.run([sys.executable, "-m", "experiments.figures", "--preset", "smoke",
                           "--workdir", str(workdir), "--no-progress", *extra], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("smoke")
    cache = str(tmp_path_factory.mktemp("xla_cache"))
    result = run_figures(workdir, cache)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, cache


def test_smoke_preset_draws_every_figure(smoke_dir):
    workdir, _ = smoke_dir
    out = workdir / figures.FIGURES_DIR
    assert {p.stem for p in out.glob("*.png")} == SMOKE_FIGURES
    assert {p.stem for p in out.glob("*.pdf")} == SMOKE_FIGURES
    for stem in SMOKE_FIGURES:
        image = matplotlib.image.imread(out / f"{stem}.png")
        assert image.ndim == 3 and min(image.shape[:2]) > 200
        assert image[..., :3].std() > 0.05  # not blank
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF")


def test_smoke_results_csv_and_md_match_the_summaries(smoke_dir):
    workdir, _ = smoke_dir
    summaries = {str(p.parent.relative_to(workdir)): json.loads(p.read_text())
                 for p in workdir.rglob("summary.json")}
    members = figures.preset_members("smoke")
    assert len(summaries) == sum(len(m) for m in members.values())
    with open(workdir / figures.RESULTS_CSV, newline="") as f:
        raw = list(csv.DictReader(f))
    assert sorted(r["run"] for r in raw) == sorted(summaries)
    for r in sweep.read_csv(workdir / figures.RESULTS_CSV):
        summary = summaries[r["run"]]
        for key, value in summary.items():
            assert r[key] == pytest.approx(value) if isinstance(value, float) else r[key] == value
    # The digits table's prox_l1 line, recomputed from the summaries with numpy.
    fds = {}
    for run, s in summaries.items():
        if run.startswith("digits_gan/prox_l1"):
            config = train.read_json(workdir / run / train.CONFIG_FILE)
            fds.setdefault(config["penalty"]["g"]["strength"], []).append(s["fd"])
    value, median = min(((v, float(np.median(f))) for v, f in fds.items()), key=lambda x: x[1])
    md = (workdir / figures.RESULTS_MD).read_text()
    section = md.split("**digits_gan**", 1)[1].split("\n**", 1)[0]
    line = next(ln for ln in section.splitlines() if ln.startswith("| L1 (proximal) | g |"))
    assert f"**{median:.3g}**" in line and f"| {value:.3g} |" in line
    assert "preset smoke" in md and "12 steps" in md


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
        ax.axvspan(0 if colour == "tab:orange" else 1, 1 if colour == "tab:orange" else 2,
                   color=colour)
    FigureCanvasAgg(fig).print_png(str(tmp_path / "fig3_test.png"))
    figures.export_small_pngs({"fig3_test": tmp_path / "fig3_test.png"}, tmp_path / "web")
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
