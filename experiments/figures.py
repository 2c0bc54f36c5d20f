"""Reproduces the study's figures: ``python -m experiments.figures --preset {smoke,quick,full} --workdir DIR``.

1. trains every member of the preset's grids (:data:`experiments.presets.PRESETS`)
   that has no finished run under ``DIR/<experiment>/`` yet — members that
   share a compiled program as one vmapped program, through
   :func:`experiments.sweep.run_members` — and reuses the finished ones;
2. collects every finished run into ``DIR/results.csv`` (one row per run:
   labels, summary, full config; run paths relative to DIR);
3. draws the figures of FIGURES.md into ``DIR/figures/`` (PNG and PDF) and
   writes ``DIR/results.md`` (the table and the figure list).

``--no-train`` redraws from what DIR holds; ``--export DIR2`` also writes
web-sized PNG copies (how ``docs/figures`` was made). Redraw from a notebook with
:func:`load_results` and :func:`draw_figures`. The preset is recorded in
``DIR/preset.json``; a DIR trained with another preset is refused (its runs
hold other configs) unless ``--no-train``.
"""
import argparse
import os
import pathlib
import sys
import time

import jax

import experiments
from experiments import plots, presets, sample_figures, study, sweep
from regan_jax import config as config_lib
from regan_jax import calibration, data, evaluation, families
from regan_jax import workdir as workdir_lib

RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
PRESET_FILE = "preset.json"
FIGURES_DIR = "figures"


# ----------------------------------------------------------------------------
# Training the grids
# ----------------------------------------------------------------------------

def preset_members(preset: str, workdir=None, *, calibrate: bool = False,
                   progress: bool = True, log=print) -> dict:
    """``{experiment: [study.Member, ...]}`` of every grid in ``PRESETS[preset]``.

    Grids in effective units need the experiment's calibration record
    (:func:`calibration_path` under ``workdir``): with ``calibrate`` a missing
    one is measured and written first; without, a missing one raises.

    Raises:
      ValueError: an unknown preset (the valid ones are listed), or a missing
        calibration record.
    """
    if preset not in presets.PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(presets.PRESETS)}")
    out = {}
    for name, grids in presets.PRESETS[preset].items():
        members = []
        for grid in grids:
            base = experiments.load_config(grid.config, grid.overrides)
            record = None
            if grid.units == "effective":
                record = calibration_path(workdir, name, grid.on)
                if not record.exists():
                    if not calibrate:
                        raise ValueError(f"no calibration record at {str(record)!r}")
                    log(f"[{name}] calibrating ({grid.calibration_steps} steps x 2 seeds)")
                    calibration.save(record, calibration.measure(
                        study.with_regulariser(base, grid.on), steps=grid.calibration_steps,
                        seeds=(0, 1), progress=progress))
            members += study.grid(
                base, grid.penalties, grid.targets,
                {"strength": grid.strengths, "radius": grid.radii,
                 "learning_rate": grid.learning_rates}, grid.seeds,
                None if record is None else str(record), on=grid.on)
        out[name] = members
    return out


def calibration_path(workdir, experiment: str, on: str = "none") -> pathlib.Path:
    """Where a preset keeps an experiment's calibration record (one per regulariser)."""
    suffix = "" if on == "none" else f"-{on}"
    return pathlib.Path(workdir) / experiment / f"calibration{suffix}.json"


def train_preset(preset: str, workdir, *, progress: bool = True, log=print) -> dict:
    """Calibrates and trains what ``preset`` needs under ``workdir`` (finished members reused).

    Returns ``{experiment: sweep.run_members(...) counts}``.

    Raises:
      ValueError: an unknown preset, or ``workdir`` recorded for another preset.
    """
    workdir = pathlib.Path(workdir)
    if preset not in presets.PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(presets.PRESETS)}")
    record = workdir / PRESET_FILE
    recorded = workdir_lib.read_json(record)["preset"] if record.exists() else preset
    if recorded != preset:
        raise workdir_lib.WorkdirError(f"{str(workdir)!r} holds the {recorded!r} preset; "
                                       f"use another --workdir for {preset!r}")
    workdir_lib.write_json(record, {"preset": preset})
    members = preset_members(preset, workdir, calibrate=True, progress=progress, log=log)
    counts = {}
    for name, ms in members.items():
        t0 = time.perf_counter()
        log(f"[{name}] {len(ms)} runs")
        counts[name] = sweep.run_members(ms, workdir / name, progress=progress, log=log)
        null_references(workdir / name, ms[0].config)
        log(f"[{name}] done in {time.perf_counter() - t0:.0f} s")
    return counts


NULLS_FILE = "nulls.json"


def null_references(directory, config, *, seed: int = 0) -> dict:
    """The null references of an experiment, scored once and kept in ``directory/nulls.json``.

    ``{'num_samples': N, 'scores': {kind: scores}}``: the nulls of
    :func:`regan_jax.evaluation.null_scores` at the runs' sample count, or
    at the held-out pool's size where that is smaller (digits: 148 images;
    the figures say N). Empty scores where the data has no feature space.
    """
    path = pathlib.Path(directory) / NULLS_FILE
    if path.exists():
        return workdir_lib.read_json(path)
    reference = evaluation.config_reference(config)
    scores, n = {}, config.eval.num_samples
    if reference is not None:
        if reference.images is not None:  # the pool of 'real': the held-out odd rows
            n = min(n, len(reference.images) // 2)
        scores = evaluation.null_scores(reference, jax.random.key(seed), n)
    out = {"num_samples": n, "scores": scores}  # evaluate's scores: non-finite -> None
    workdir_lib.write_json(path, out)
    return out


# ----------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------

def collect_results(workdir) -> list[dict]:
    """Collects every finished run under ``workdir`` into ``workdir/results.csv``.

    The ``run`` column is relative to ``workdir`` so the directory can move.
    """
    workdir = pathlib.Path(workdir)
    rows = sweep.collect([workdir])
    for r in rows:
        r["run"] = os.path.relpath(r["run"], workdir)
    sweep.write_csv(workdir / RESULTS_CSV, rows)
    return rows


def load_results(workdir) -> tuple[list[dict], str]:
    """``(rows of results.csv, preset name)`` of a results directory."""
    workdir = pathlib.Path(workdir)
    preset = (workdir_lib.read_json(workdir / PRESET_FILE)["preset"]
              if (workdir / PRESET_FILE).exists() else "custom")
    return sweep.read_csv(workdir / RESULTS_CSV), preset


def headline_metric(rows) -> str:
    """The table's score of an experiment: FD where images are scored, else modes covered."""
    return "fd" if any(r.get("fd") is not None for r in rows) else "modes"


def results_table(rows, preset: str) -> str:
    """The Markdown table of one experiment (FIGURES.md's table).

    One line per penalty and target: the best median score over its strengths
    (only cells where every seed finished), the spread over seeds (min–max),
    the strength where it is reached, modes covered there (where the data has
    modes; for the 2-D mixtures, whose score is modes covered, the
    high-quality fraction and reverse KL there), and the runs that diverged
    out of all of that penalty's runs.
    """
    metric = headline_metric(rows)
    label, lower = plots.METRICS[metric][0], plots.METRICS[metric][1]
    extras = [m for m in (("hq_fraction", "reverse_kl") if metric == "modes" else ("modes",))
              if any(r.get(m) is not None for r in rows)]
    head = ["penalty", "target", f"best median {label}", "seeds min–max", "at λ (r)",
            *(f"{m} at best" for m in extras), "diverged"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    entries = [(p, None) for p in plots.penalties_present(rows, swept=False)]
    entries += [(p, t) for p in plots.penalties_present(rows, swept=True)
                for t in plots.swept_targets(rows) if any(
                    r["penalty"] == p and r["target"] == t for r in rows)]
    for penalty, target in entries:
        mine = [r for r in rows if r["penalty"] == penalty and r["target"] == target]
        diverged = sum(bool(r.get("diverged")) for r in mine)
        best = plots.best_cell(rows, metric, penalty, target)
        if best is None:
            cells = ["—"] * (3 + len(extras))
        else:
            value, cell = best
            at_best = [plots.cells(rows, m).get((penalty, target, value)) for m in extras]
            cells = [f"**{_fmt(cell.median)}**", f"{_fmt(cell.low)}–{_fmt(cell.high)}",
                     "—" if value is None else f"{value:.3g}",
                     *(_fmt(c.median) if c else "—" for c in at_best)]
        lines.append("| " + " | ".join([plots.LABELS[penalty], target or "—", *cells,
                                         f"{diverged}/{len(mine)}"]) + " |")
    direction = "lower" if lower else "higher"
    return (f"**{rows[0]['config.name']}** — {plots.caption(rows, preset, figure=False)}; "
            f"{label} ({direction} is better)\n\n" + "\n".join(lines) + "\n")


def _fmt(value) -> str:
    """A score for the table: 3 significant digits, integers and values >= 1000 as integers."""
    if value is None:
        return "—"
    value = float(value)
    return f"{value:.0f}" if value.is_integer() or abs(value) >= 1000 else f"{value:.3g}"


def write_results_md(workdir, rows, preset: str, figure_files: dict) -> None:
    """Writes ``workdir/results.md``: the tables, then the list of figures."""
    parts = [f"# Results — preset `{preset}`\n",
             f"`python -m experiments.figures --preset {preset} --workdir {workdir}`; "
             f"{len(rows)} runs. Medians over seeds; spread = min–max over seeds; "
             "a cell with a diverged seed never counts as best.\n"]
    order = list(presets.PRESETS.get(preset, {}))
    names = sorted(plots.experiments_present(rows),
                   key=lambda n: (order.index(n) if n in order else len(order), n))
    for name in names:
        parts.append(results_table(plots.experiment_rows(rows, name), preset))
    parts.append("## Figures\n")
    for name, path in figure_files.items():
        parts.append(f"- `{name}`: ![{name}]({os.path.relpath(path, workdir)})")
    workdir_lib.write_text_atomic(pathlib.Path(workdir) / RESULTS_MD, "\n".join(parts) + "\n")


# ----------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------

def figure_specs(rows, root, preset: str) -> dict:
    """``{file stem: () -> Figure}``: every figure of FIGURES.md that ``rows`` can support."""
    by_name = {n: plots.experiment_rows(rows, n) for n in plots.experiments_present(rows)}

    def kind(name):
        r = by_name[name][0]
        return families.get(r["config.model_type"]), r["config.data.name"]

    def unconditional_gan(family):
        return family.adversarial and not family.conditional

    image_gans = [n for n in by_name if unconditional_gan(kind(n)[0])
                  and kind(n)[1] not in data.MIXTURES and kind(n)[1] != "stacked_digits"]
    mixtures = [n for n in by_name if kind(n)[1] in data.MIXTURES]
    specs = {}
    for name in image_gans:
        rows_n = by_name[name]
        specs[f"fig1_sparsity_{name}"] = lambda r=rows_n: plots.fig_sparsity(r, preset)
        specs[f"fig4_stability_{name}"] = lambda r=rows_n: plots.fig_stability(r, root, preset)
        specs[f"fig5_samples_{name}"] = lambda r=rows_n: sample_figures.fig_samples(r, root, preset)
        specs[f"fig9_precision_recall_{name}"] = (
            lambda r=rows_n: plots.fig_precision_recall(r, preset))
        specs[f"fig10_smoothness_{name}"] = (
            lambda r=rows_n: sample_figures.fig_smoothness(r, root, preset,
                                                           _held_out_tv(root, r[0])))
    if image_gans:
        specs["fig3_quality"] = lambda: plots.fig_quality({n: by_name[n] for n in image_gans},
                                                          preset)
    if mixtures:
        chosen = {n: by_name[n] for n in mixtures}
        specs["fig2a_mixture_samples"] = (
            lambda: sample_figures.fig_mixture_scatter(chosen, root, preset))
        specs["fig2b_mixture_metrics"] = lambda: plots.fig_mixture_metrics(chosen, preset)
    for name in by_name:
        family, dataset = kind(name)
        if family.score_fn is not None:  # held-out ELBO: the VAE figure
            specs[f"fig6_vae_{name}"] = lambda r=by_name[name]: plots.fig_vae(r, preset)
        elif family.conditional:
            specs[f"fig7_cgan_{name}"] = lambda r=by_name[name]: plots.fig_cgan(r, preset)
            specs[f"fig5_samples_{name}"] = (
                lambda r=by_name[name]: sample_figures.fig_samples(r, root, preset,
                                                                   metric="intra_fd"))
        elif dataset == "stacked_digits":
            specs[f"fig8_stacked_{name}"] = lambda r=by_name[name]: plots.fig_stacked(r, preset)
    return dict(sorted(specs.items()))


def _held_out_tv(root, row) -> float:
    """Total variation of the held-out split of a run's dataset (the smoothness reference)."""
    config = config_lib.from_json_dict(workdir_lib.read_json(pathlib.Path(root) / row["run"] /
                                                         workdir_lib.CONFIG_FILE))
    return sample_figures.total_variation(data.from_config(config.data, "test").images)


def draw_figures(rows, root, preset: str, out_dir) -> dict:
    """Draws every figure of :func:`figure_specs` as PNG and PDF into ``out_dir``.

    Returns ``{stem: PNG path}``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.backends.backend_pdf import FigureCanvasPdf

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for stem, make in figure_specs(rows, root, preset).items():
        fig = make()
        for suffix, canvas in ((".png", FigureCanvasAgg), (".pdf", FigureCanvasPdf)):
            with workdir_lib.atomic_path(out_dir / f"{stem}{suffix}") as tmp:
                getattr(canvas(fig), f"print_{suffix[1:]}")(str(tmp))
        written[stem] = out_dir / f"{stem}.png"
    return written


def export_small_pngs(figure_files: dict, out_dir, max_width: int = 1200) -> None:
    """Writes web-sized copies of the PNGs into ``out_dir`` (e.g. ``docs/figures``).

    Each is resized to at most ``max_width`` pixels wide and stored with a
    256-colour palette (no dithering, so the plot colours stay distinct);
    sample-grid figures, whose pixels are grey, are stored as greyscale.
    """
    from PIL import Image

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stem, path in figure_files.items():
        grey = stem.startswith("fig5_samples") and "cgan" not in stem
        image = Image.open(path).convert("L" if grey else "RGB")
        scale = min(1.0, max_width / image.width)
        if scale < 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)),
                                 Image.LANCZOS)
        if not grey:
            image = image.quantize(colors=256, method=Image.Quantize.FASTOCTREE,
                                   dither=Image.Dither.NONE)
        with workdir_lib.atomic_path(out_dir / f"{stem}.png") as tmp:
            image.save(tmp, optimize=True)


def make_figures(preset: str, workdir, *, train_missing: bool = True, progress: bool = True,
                 export=None, log=print) -> dict:
    """The whole pipeline: train what is missing, collect, draw, write results.md.

    Returns ``{stem: PNG path}`` of the figures.
    """
    workdir = pathlib.Path(workdir)
    if train_missing:
        train_preset(preset, workdir, progress=progress, log=log)
    elif preset not in presets.PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(presets.PRESETS)}")
    rows = collect_results(workdir)
    written = draw_figures(rows, workdir, preset, workdir / FIGURES_DIR)
    write_results_md(workdir, rows, preset, written)
    if export is not None:
        export_small_pngs(written, export)
    log(f"figures: {len(written)} figures, {len(rows)} runs -> {workdir / RESULTS_MD}")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.figures",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", required=True, choices=list(presets.PRESETS))
    parser.add_argument("--workdir", required=True, help="results directory (reused)")
    parser.add_argument("--no-train", action="store_true",
                        help="redraw from the finished runs in --workdir only")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--export", metavar="DIR",
                        help="also write web-sized PNG copies into DIR (e.g. docs/figures)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()

    def body():
        make_figures(args.preset, args.workdir, train_missing=not args.no_train,
                     progress=not args.no_progress, export=args.export)
        print(f"figures: preset {args.preset} done in {time.perf_counter() - t0:.0f} s")
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
