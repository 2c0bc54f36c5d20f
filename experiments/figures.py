"""Reproduces the study's figures: ``python -m experiments.figures --preset {smoke,cpu,full} --workdir DIR``.

1. trains every member of the preset's grids (:data:`experiments.presets.PRESETS`)
   that has no finished run under ``DIR/<experiment>/`` yet — members that
   share a compiled program as one vmapped program, through
   :func:`experiments.sweep.run_members` — and reuses the finished ones;
2. collects every finished run into ``DIR/results.csv`` (one row per run:
   labels, summary, full config; run paths relative to DIR);
3. draws the figures of FIGURES.md into ``DIR/figures/`` (PNG and PDF) and
   writes ``DIR/results.md`` (the table and the figure list).

``--no-train`` redraws from what DIR holds; ``--export DIR2`` also writes
web-sized PNG copies (how ``docs/study/figures`` was made). Redraw from a notebook with
:func:`load_results` and :func:`draw_figures`. The preset is recorded in
``DIR/preset.json``; a DIR trained with another preset is refused (its runs
hold other configs) unless ``--no-train``.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

import jax

import experiments
from experiments import (cells, dirac_figures, fidelity_figures, plots, presets, sample_figures,
                         stability_figures, study, sweep)
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
            record_path = None
            if grid.units == "effective":
                record_path = calibration_path(workdir, name, grid.on)
                if not record_path.exists():
                    if not calibrate:
                        raise ValueError(f"no calibration record at {str(record_path)!r}")
                    log(f"[{name}] calibrating ({grid.calibration_steps} steps x 2 seeds)")
                    calibration.save(record_path, calibration.measure(
                        study.with_regulariser(base, grid.on), steps=grid.calibration_steps,
                        seeds=(0, 1), progress=progress))
            members += study.grid(
                base, grid.penalties, grid.targets,
                {"strength": grid.strengths, "radius": grid.radii,
                 "learning_rate": grid.learning_rates}, grid.seeds,
                None if record_path is None else str(record_path), on=grid.on)
        out[name] = members
    return out


def calibration_path(workdir, experiment: str, on: str = "none") -> pathlib.Path:
    """Where a preset keeps an experiment's calibration record (one per regulariser)."""
    suffix = "" if on == "none" else f"-{on}"
    return pathlib.Path(workdir) / experiment / f"calibration{suffix}.json"


def train_preset(preset: str, workdir, *, jobs: int = 1, shard=(0, 1), progress: bool = True,
                 log=print) -> dict:
    """Calibrates and trains what ``preset`` needs under ``workdir`` (finished members reused).

    Args:
      preset: a name in :data:`experiments.presets.PRESETS`.
      workdir: the preset's directory (one sub-directory per experiment).
      jobs: worker processes that train the members (round-robin slices of
        each experiment), each pinned to its share of the CPU cores where the
        OS allows. Small vmapped programs use a second core poorly within one
        process; two single-core workers trained the digits GAN 1.5x faster
        than one two-core process on a 2-core CPU (issue #13).
      shard: ``(i, n)``: train only the i-th of n slices (what a worker, or a
        job of an array, does); calibration records must exist then.
      progress: a bar of member-steps over the whole preset, with its ETA.
      log: where to report what runs.

    Returns:
      ``{experiment: members}`` of the preset.

    Raises:
      ValueError: an unknown preset, a bad ``jobs`` or ``shard``.
      WorkdirError: ``workdir`` recorded for another preset.
      WorkerFailed: a worker failed (its log is named; finished members are kept).
    """
    workdir = pathlib.Path(workdir)
    if preset not in presets.PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(presets.PRESETS)}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard}")
    record = workdir / PRESET_FILE
    recorded = workdir_lib.read_json(record)["preset"] if record.exists() else preset
    if recorded != preset:
        raise workdir_lib.WorkdirError(f"{str(workdir)!r} holds the {recorded!r} preset; "
                                       f"use another --workdir for {preset!r}")
    if count > 1:  # a worker: the parent calibrated and owns the bar and the nulls
        members = preset_members(preset, workdir, calibrate=False)
        for name, ms in members.items():
            sweep.run_members(sweep.shard_members(ms, shard), workdir / name, progress=False,
                              log=log)
        return members
    workdir_lib.write_json(record, {"preset": preset})
    members = preset_members(preset, workdir, calibrate=True, progress=progress, log=log)
    t0 = time.perf_counter()
    with _PresetProgress(members, workdir, enabled=progress):
        if jobs == 1:
            for name, ms in members.items():
                log(f"[{name}] {len(ms)} runs")
                sweep.run_members(ms, workdir / name, progress=False, log=log)
        else:
            _run_workers(preset, workdir, jobs, log)
    for name, ms in members.items():
        null_references(workdir / name, ms[0].config)
    log(f"[{preset}] trained in {time.perf_counter() - t0:.0f} s")
    return members


class WorkerFailed(RuntimeError):
    """A worker process of ``train_preset(..., jobs > 1)`` exited non-zero."""


def _run_workers(preset: str, workdir: pathlib.Path, jobs: int, log) -> None:
    """Runs ``jobs`` worker processes (``--shard i/jobs``), each on its share of the cores."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    procs = []
    for i in range(jobs):
        log_path = workdir / f"worker-{i}.log"
        cmd = [sys.executable, "-m", "experiments.figures", "--preset", preset,
               "--workdir", str(workdir), "--shard", f"{i}/{jobs}", "--no-progress"]
        with open(log_path, "a") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        share = cpus[i * len(cpus) // jobs:(i + 1) * len(cpus) // jobs]
        if share:  # before the worker has imported jax and sized its thread pools
            os.sched_setaffinity(proc.pid, share)
        procs.append((proc, log_path))
        log(f"  worker {i}/{jobs} (pid {proc.pid}, cpus {share or 'all'}) -> {log_path}")
    failed = [(p.wait(), path) for p, path in procs]
    failed = [(rc, path) for rc, path in failed if rc != 0]
    if failed:
        raise WorkerFailed("; ".join(f"worker failed with exit {rc}: see {str(path)!r}"
                                     for rc, path in failed))


def _steps_done(run_dir: pathlib.Path, steps: int) -> int:
    """Steps a member has done: all if finished, else its last logged step."""
    if workdir_lib.is_finished(run_dir):
        return steps
    try:
        with open(run_dir / workdir_lib.METRICS_FILE, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            last = f.read().splitlines()[-1]
        return min(steps, int(json.loads(last)["step"]))
    except (OSError, IndexError, ValueError, KeyError):
        return 0


class _PresetProgress:
    """A bar of member-steps over a whole preset (with its ETA), polled from the run directories.

    A thread reads each member's last logged step every ``every`` seconds, so
    the bar counts the work of worker processes too.
    """

    def __init__(self, members: dict, workdir: pathlib.Path, *, enabled: bool = True,
                 every: float = 5.0):
        self._runs = [(workdir / name / m.name, m.config.steps)
                      for name, ms in members.items() for m in ms]
        self._enabled, self._every = enabled, every
        self._stop = threading.Event()

    def _done(self) -> int:
        return sum(_steps_done(run, steps) for run, steps in self._runs)

    def _poll(self, bar) -> None:
        while not self._stop.wait(self._every):
            bar.update(self._done() - bar.n)

    def __enter__(self):
        if self._enabled:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=sum(s for _, s in self._runs), initial=self._done(),
                             unit="member-step", unit_scale=True, desc="preset",
                             smoothing=0.05)
            self._thread = threading.Thread(target=self._poll, args=(self._bar,), daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._enabled:
            self._stop.set()
            self._thread.join()
            self._bar.update(self._done() - self._bar.n)
            self._bar.close()
        return False


def null_references(directory, config, *, seed: int = 0) -> dict:
    """The null references of an experiment, scored once and kept in ``directory/nulls.json``.

    ``{'num_samples': N, 'scores': {kind: scores}}``: the nulls of
    :func:`regan_jax.evaluation.null_scores` at the runs' sample count, or
    at the held-out pool's size where that is smaller (digits: 148 images;
    the figures say N). Empty scores where the data has no feature space.
    A family with its own evaluation scores its own nulls (``Family.null_scores``).
    """
    path = pathlib.Path(directory) / cells.NULLS_FILE
    if path.exists():
        return workdir_lib.read_json(path)
    family = families.get(config.model_type)
    reference = None if family.null_scores else evaluation.config_reference(config)
    scores, n = {}, config.eval.num_samples
    if family.null_scores is not None:  # a family scored by its own evaluation
        scores, n = family.null_scores(config, jax.random.key(seed))
    elif reference is not None:
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

    The ``run`` column is relative to ``workdir`` so the directory can move;
    ``sample_tv`` is the total variation of an image run's final samples
    (:func:`experiments.sample_figures.total_variation`; empty for points).
    """
    workdir = pathlib.Path(workdir)
    rows = sweep.collect([workdir])
    for r in rows:
        r["run"] = os.path.relpath(r["run"], workdir)
    rows = sample_figures.with_sample_tv(rows, workdir)
    sweep.write_csv(workdir / RESULTS_CSV, rows)
    return rows


def load_results(workdir) -> tuple[list[dict], str]:
    """``(rows of results.csv, preset name)`` of a results directory."""
    workdir = pathlib.Path(workdir)
    preset = (workdir_lib.read_json(workdir / PRESET_FILE)["preset"]
              if (workdir / PRESET_FILE).exists() else "custom")
    return sweep.read_csv(workdir / RESULTS_CSV), preset


headline_metric = cells.headline_metric
TABLE_NOTE = (
    "Each line: a cell's median over seeds [95 % bootstrap CI] (a diverged run counts as the "
    "worst value: FD = +∞); Δ = the median paired difference against the reference run of the "
    "same seed (the unregularised run; R1 alone for penalties on top of R1) [95 % bootstrap CI]; "
    "p = paired t-test (†: exact sign test, where a diverged run makes a difference infinite), "
    "Holm-adjusted over every comparison of the experiment; d_z = mean Δ / sd Δ; a claim only "
    f"where the adjusted p < 0.05; unstable = {cells.UNSTABLE_RULE} (k/n runs).")


def _extras(rows, metric: str) -> list[str]:
    """The table's extra medians: mode counts (and the mixtures' quality scores)."""
    wanted = (("robust_modes", "hq_fraction", "reverse_kl") if metric == "modes"
              else ("modes", "robust_modes"))
    return [m for m in wanted if cells.has_metric(rows, m)]


def results_table(rows, preset: str, nulls=None) -> str:
    """The Markdown tables of one experiment (FIGURES.md's table).

    References (nulls, the published PacGAN numbers for the mixtures) and
    the baselines first, then one table per target of the weight penalties
    by strength, then the penalties on top of R1 (:data:`TABLE_NOTE`).
    """
    metric = cells.headline_metric(rows)
    spec = cells.METRICS[metric]
    extras = _extras(rows, metric)
    by_key = {c.key: c for c in cells.comparisons(rows, metric)}
    context = _TableContext(rows, metric, extras, by_key, cells.cells(rows, metric),
                            cells.instability(rows), cells.is_effective(rows))
    name = rows[0]["config.name"]
    parts = [f"### {name}\n",
             f"{plots.caption(rows, preset, figure=False)}; headline: {spec.label} "
             f"({'lower' if spec.lower else 'higher'} is better); strengths "
             f"{'effective (raw λ beside them)' if context.effective else 'raw λ'}; "
             f"{len([c for c in by_key.values() if c.p is not None])} comparisons in the "
             "Holm family.\n",
             "**References and baselines**\n", context.header(),
             *_reference_lines(nulls, name, metric, extras)]
    bases = cells.baseline_keys(rows, metric)
    parts += [context.line(_label(p), k) for p, k in bases.items()]
    if "spectral_norm" in bases:
        parts.append(f"\n{plots.SN_NOTE}.")
    for target in cells.swept_targets([r for r in rows if cells.role(r) == "weight"]):
        parts += [f"\n**Penalty on {plots.net_label(target)}** (Δ against the unregularised "
                  "run of the same seed)\n", context.header()]
        parts += [context.line(_label(k.penalty), k) for k in context.keys("none", target)]
    for on in sorted({cells.regulariser(r) for r in rows if cells.role(r).startswith("on_")}):
        parts += [f"\n**Penalties on top of {on.upper()}** (Δ against {on.upper()} alone, same "
                  "seed)\n", context.header()]
        parts += [context.line(f"{plots.LABELS[k.penalty]} + {on.upper()}", k)
                  for t in cells.swept_targets([r for r in rows if cells.regulariser(r) == on])
                  for k in context.keys(on, t)]
    return "\n".join(parts) + "\n"


def _label(penalty: str) -> str:
    """A penalty's name in the tables."""
    return plots.LABELS[penalty].split(" (top")[0]


class _TableContext:
    """What every line of an experiment's tables reads (one place to format a cell)."""

    def __init__(self, rows, metric, extras, comparisons, table, flags, effective):
        self.rows, self.metric, self.extras = rows, metric, extras
        self.comparisons, self.table, self.flags = comparisons, table, flags
        self.effective = effective
        self.extra_tables = {m: cells.cells(rows, m) for m in extras}

    def header(self) -> str:
        head = ["setting", "target", "strength", "raw λ (r, lr)",
                f"median {cells.short_name(self.metric)} [CI]", "Δ vs reference [CI]",
                "p (Holm)", "d_z", "claim", *(cells.short_name(m) for m in self.extras),
                "unstable"]
        return "| " + " | ".join(head) + " |\n|" + "---|" * len(head)

    def keys(self, on: str, target) -> list:
        return sorted((k for k in self.table if k.regulariser == on and k.target == target
                       and cells.role_of_key(k) != "baseline"),
                      key=lambda k: (list(study.PENALTIES).index(k.penalty), k.strength))

    def line(self, label: str, key) -> str:
        runs = cells.runs_of(self.rows, key)
        c = self.comparisons.get(key)
        raw = sorted({r["value"] for r in runs if r["value"] is not None})
        strength = "—" if key.strength is None or cells.role_of_key(key) == "baseline" \
            else f"{key.strength:.3g}"
        fields = [label, key.target or "—", strength,
                  ", ".join(f"{v:.3g}" for v in raw) or "—",
                  _ci(self.table.get(key), bold=c is not None and c.claim in ("better",)),
                  "—" if c is None else _ci(c.difference),
                  "—" if c is None or c.p_holm is None else
                  f"{cells.fmt(c.p_holm)}{'†' if c.test == 'sign' else ''}",
                  "—" if c is None or c.d_z is None else cells.fmt(c.d_z),
                  "—" if c is None else c.claim,
                  *(cells.fmt(None if self.extra_tables[m].get(key) is None
                         else self.extra_tables[m][key].median) for m in self.extras)]
        share = cells.unstable_fraction(runs, self.flags)
        fields.append("—" if share is None else f"{share.k}/{share.n}")
        return "| " + " | ".join(fields) + " |"


def _reference_lines(nulls, name: str, metric: str, extras) -> list[str]:
    """Table lines of the nulls and, for the mixtures, the published PacGAN GAN numbers."""
    lines = []
    published = plots.pacgan_numbers(name)
    for kind, (label, _, _) in plots.NULL_STYLES.items():
        value = cells.null_value(nulls, kind, metric)
        if value is None:
            continue
        if kind == "real" and published is not None:  # a mixture's real null: its own samples
            label = plots.MIXTURE_REAL
        label = label.format(n=nulls["num_samples"])
        extra = [cells.fmt(cells.null_value(nulls, kind, m)) for m in extras]
        lines.append("| " + " | ".join([label, "—", "—", "—", cells.fmt(value), *["—"] * 4, *extra,
                                        "—"]) + " |")
    if published and metric in published:
        extra = [cells.fmt(published.get(m)) for m in extras]
        lines.append("| " + " | ".join([plots.PACGAN_LABEL, "—", "—", "—",
                                        cells.fmt(published[metric]), *["—"] * 4, *extra, "—"]) + " |")
    return lines




def _ci(summary, bold: bool = False) -> str:
    """``median [low, high]`` of a cell or a paired difference."""
    if summary is None:
        return "—"
    get = summary.get if isinstance(summary, dict) else lambda f: getattr(summary, f)
    median = f"**{cells.fmt(get('median'))}**" if bold else cells.fmt(get("median"))
    return f"{median} [{cells.fmt(get('low'))}, {cells.fmt(get('high'))}]"


def write_results_md(workdir, rows, preset: str, figure_files: dict) -> None:
    """Writes ``workdir/results.md``: the tables, then the list of figures."""
    parts = [f"# Results — preset `{preset}`\n",
             f"`python -m experiments.figures --preset {preset} --workdir {workdir}`; "
             f"{len(rows)} runs.\n", TABLE_NOTE + "\n"]
    order = list(presets.PRESETS.get(preset, {}))
    names = sorted(cells.experiments_present(rows),
                   key=lambda n: (order.index(n) if n in order else len(order), n))
    for name in names:
        mine = cells.experiment_rows(rows, name)
        parts.append(results_table(mine, preset, cells.read_nulls(workdir, mine)))
    parts.append("## Figures\n")
    for name, path in figure_files.items():
        parts.append(f"- `{name}`: ![{name}]({os.path.relpath(path, workdir)})")
    workdir_lib.write_text_atomic(pathlib.Path(workdir) / RESULTS_MD, "\n".join(parts) + "\n")


# ----------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------

def _experiment_kind(rows) -> str:
    """``'image_gan'``, ``'mixture'``, ``'stacked'``, ``'vae'``, ``'cgan'``, ``'translation'``
    or ``'other'``."""
    family = families.get(rows[0]["config.model_type"])
    dataset = rows[0]["config.data.name"]
    if dataset in data.MIXTURES:
        return "mixture"
    if family.make_evaluator is not None:  # scored by its own evaluation: translation
        return "translation"
    if family.score_fn is not None:  # a held-out ELBO: the VAE
        return "vae"
    if family.conditional:
        return "cgan"
    if dataset == "stacked_digits":
        return "stacked"
    return "image_gan" if family.adversarial else "other"


def figure_specs(rows, root, preset: str) -> dict:
    """``{file stem: () -> Figure}``: every figure of FIGURES.md that ``rows`` can support."""
    by_name = {n: cells.experiment_rows(rows, n) for n in cells.experiments_present(rows)}
    nulls = {n: cells.read_nulls(root, r) for n, r in by_name.items()}
    kinds = {n: _experiment_kind(r) for n, r in by_name.items()}
    specs = {}
    if preset in dirac_figures.DIRAC_PRESETS:
        specs["fig4a_dirac"] = lambda: dirac_figures.fig_dirac(preset)
    for name, r in by_name.items():
        specs.update(_experiment_specs(name, kinds[name], r, root, preset, nulls[name]))
    image_gans = [n for n in by_name if kinds[n] == "image_gan"]
    if image_gans:
        specs["fig3_quality"] = lambda: plots.fig_quality(
            {n: by_name[n] for n in image_gans}, preset, nulls)
    mixtures = {n: by_name[n] for n in by_name if kinds[n] == "mixture"}
    if mixtures:
        specs["fig2a_mixture_samples"] = (
            lambda: sample_figures.fig_mixture_scatter(mixtures, root, preset))
        specs["fig2b_mixture_metrics"] = lambda: plots.fig_mixture_metrics(mixtures, preset,
                                                                           nulls)
    return dict(sorted(specs.items()))


def _experiment_specs(name, kind, rows, root, preset, nulls) -> dict:
    """The figures of one experiment (by its kind)."""
    specs = {}
    if kind == "image_gan":
        specs[f"fig1_sparsity_{name}"] = lambda: plots.fig_sparsity(rows, preset)
        specs[f"fig4b_stability_{name}"] = lambda: stability_figures.fig_stability(rows, root, preset)
        specs[f"fig5_samples_{name}"] = lambda: sample_figures.fig_samples(rows, root, preset)
        specs[f"fig9_precision_recall_{name}"] = (
            lambda: fidelity_figures.fig_precision_recall(rows, preset, nulls))
        specs[f"fig10_smoothness_{name}"] = (
            lambda: sample_figures.fig_smoothness(rows, root, preset, *_held_out_tv(root, rows[0])))
    elif kind == "vae":
        specs[f"fig6_vae_{name}"] = lambda: plots.fig_vae(rows, preset, nulls)
    elif kind == "cgan":
        specs[f"fig7_cgan_{name}"] = lambda: plots.fig_cgan(rows, preset, nulls)
        specs[f"fig5_samples_{name}"] = (
            lambda: sample_figures.fig_samples(rows, root, preset, metric="intra_fd"))
    elif kind == "stacked":
        specs[f"fig8_stacked_{name}"] = lambda: plots.fig_stacked(rows, preset, nulls)
    elif kind == "translation":
        specs[f"fig12_translation_{name}"] = lambda: plots.fig_translation(rows, preset, nulls)
        specs[f"fig5_samples_{name}"] = lambda: sample_figures.fig_samples(rows, root, preset)
    if any(cells.role(r) == "on_r1" for r in rows) and "r1" in cells.baselines_present(rows):
        specs[f"fig11_on_r1_{name}"] = lambda: plots.fig_on_regulariser(rows, preset, nulls)
    return specs


def _held_out_tv(root, row) -> tuple[float, int]:
    """Total variation of the held-out split of a run's dataset and its size (the smoothness null)."""
    config = config_lib.from_json_dict(workdir_lib.read_json(pathlib.Path(root) / row["run"] /
                                                         workdir_lib.CONFIG_FILE))
    images = data.from_config(config.data, "test").images
    return sample_figures.total_variation(images), len(images)


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
    """Writes web-sized copies of the PNGs into ``out_dir`` (e.g. ``docs/study/figures``).

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


def make_figures(preset: str, workdir, *, train_missing: bool = True, jobs: int = 1,
                 progress: bool = True, export=None, log=print) -> dict:
    """The whole pipeline: train what is missing (``jobs`` workers), collect, draw, write results.md.

    Returns ``{stem: PNG path}`` of the figures.
    """
    workdir = pathlib.Path(workdir)
    if train_missing:
        train_preset(preset, workdir, jobs=jobs, progress=progress, log=log)
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
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes that train (each on its share of the cores)")
    parser.add_argument("--shard", default=None, metavar="i/N",
                        help="train only slice i of N and stop (a worker, or a job array); "
                             "the calibration records must exist")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--export", metavar="DIR",
                        help="also write web-sized PNG copies into DIR (e.g. docs/study/figures)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()

    def body():
        if args.jobs < 1:
            raise experiments.UsageError(f"--jobs must be >= 1, got {args.jobs}")
        shard = None if args.shard is None else sweep.parse_shard(args.shard)
        if shard is not None:
            train_preset(args.preset, args.workdir, shard=shard, progress=False)
            print(f"figures: shard {args.shard} of {args.preset} trained")
            return 0
        try:
            make_figures(args.preset, args.workdir, train_missing=not args.no_train,
                         jobs=args.jobs, progress=not args.no_progress, export=args.export)
        except WorkerFailed as e:  # one line; the worker's log holds its own error
            print(f"error: {e}; run the same command again to resume", file=sys.stderr)
            return 1
        print(f"figures: preset {args.preset} done in {time.perf_counter() - t0:.0f} s")
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
