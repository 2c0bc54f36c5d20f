"""The study's results as files: ``results.csv`` (one row per run) and the Markdown tables.

:func:`collect_results` gathers every finished run of a results directory
(:func:`experiments.study.results.collect`: labels, summary, full config) with the
study's own score of its samples (``sample_tv``, :func:`total_variation`) into
``results.csv``; :func:`results_table` writes one experiment's tables (the
references and baselines, then the weight penalties per target by strength,
then the penalties on top of R1) as :mod:`experiments.study.cells` reports
them, and :func:`write_results_md` all of them with the list of figures.
"""

import os
import pathlib

import numpy as np

from experiments.study import captions, cells, members, presets, results, vocabulary
from regan_jax import workdir as workdir_lib

RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
PRESET_FILE = "preset.json"


def collect_results(workdir) -> list[dict]:
    """Collects every finished run under ``workdir`` into ``workdir/results.csv``.

    The ``run`` column is relative to ``workdir`` so the directory can move;
    ``sample_tv`` is the total variation of an image run's final samples
    (:func:`total_variation`; empty for points).
    """
    workdir = pathlib.Path(workdir)
    rows = results.collect([workdir])
    for r in rows:
        r["run"] = os.path.relpath(r["run"], workdir)
    rows = with_sample_tv(rows, workdir)
    results.write_csv(workdir / RESULTS_CSV, rows)
    return rows


def load_results(workdir) -> tuple[list[dict], str]:
    """``(rows of results.csv, preset name)`` of a results directory."""
    workdir = pathlib.Path(workdir)
    preset = (
        workdir_lib.read_json(workdir / PRESET_FILE)["preset"]
        if (workdir / PRESET_FILE).exists()
        else "custom"
    )
    return results.read_csv(workdir / RESULTS_CSV), preset


TABLE_NOTE = (
    "Each line: a cell's median over seeds [95 % bootstrap CI] (a diverged run counts as the "
    "worst value: FD = +∞); Δ = the median paired difference against the reference run of the "
    "same seed (the unregularised run; R1 alone for penalties on top of R1) [95 % bootstrap CI]; "
    "p = paired t-test (†: exact sign test, where a diverged run makes a difference infinite), "
    "Holm-adjusted over every comparison of the experiment; d_z = mean Δ / sd Δ; a claim only "
    f"where the adjusted p < 0.05; unstable = {cells.UNSTABLE_RULE} (k/n runs); Fisher p "
    "= Fisher's exact two-sided test of the unstable k/n against the reference's; repair (in an "
    f"unstable setting) = '{cells.FIXES}' where the median FD falls within the stable baseline's "
    f"95 % CI or below it, '{cells.LESS_BROKEN}' where it is only below the setting's own "
    "unregularised median; a decoupled or proximal penalty's effective strength is a total over "
    "the run, its value per step beside it."
)


def _extras(rows, metric: str) -> list[str]:
    """The table's extra medians: mode counts (and the mixtures' quality scores)."""
    wanted = {
        "modes": ("robust_modes", "hq_fraction", "reverse_kl"),
        "robust_modes": ("modes", "hq_fraction", "reverse_kl"),
    }.get(metric, ("modes", "robust_modes"))
    return [m for m in wanted if cells.has_metric(rows, m)]


def results_table(rows, preset: str, nulls=None, stable_rows=None) -> str:
    """The Markdown tables of one experiment (FIGURES.md's table).

    References (nulls, the published PacGAN numbers for the mixtures, the
    stable baseline of an unstable setting) and the baselines first, then one
    table per target of the weight penalties by strength, then the penalties
    on top of R1 (:data:`TABLE_NOTE`). ``stable_rows``: the rows whose
    unregularised runs set the instability thresholds
    (:func:`experiments.study.cells.stable_rows`; default ``rows``).
    """
    metric = cells.headline_metric(rows)
    spec = vocabulary.metric(metric)
    extras = _extras(rows, metric)
    by_key = {c.key: c for c in cells.comparisons(rows, metric)}
    name = rows[0]["config.name"]
    stable = _stable_cell(stable_rows, metric) if name in cells.STABLE_BASELINES else None
    context = _TableContext(
        rows,
        metric,
        extras,
        by_key,
        cells.cells(rows, metric),
        cells.instability(rows, stable_rows),
        cells.is_effective(rows),
        stable,
    )
    parts = [
        f"### {name}\n",
        f"{captions.caption(rows, preset, figure=False)}; headline: {spec.label} "
        f"({'lower' if spec.lower else 'higher'} is better); strengths "
        f"{'effective (raw λ beside them)' if context.effective else 'raw λ'}; "
        f"{len([c for c in by_key.values() if c.p is not None])} comparisons in the "
        "Holm family.\n",
        "**References and baselines**\n",
        context.header(),
        *_reference_lines(nulls, name, metric, extras, stable is not None),
        *context.stable_line(cells.STABLE_BASELINES.get(name)),
    ]
    bases = cells.baseline_keys(rows, metric)
    parts += [context.line(vocabulary.penalty(p).label, k) for p, k in bases.items()]
    if "spectral_norm" in bases:
        parts.append(f"\n{captions.SN_NOTE}.")
    for target in cells.swept_targets([r for r in rows if cells.role(r) == "weight"]):
        parts += [
            f"\n**Penalty on {vocabulary.target_label(target)}** (Δ against the "
            "unregularised run of the same seed)\n",
            context.header(),
        ]
        parts += [
            context.line(vocabulary.penalty(k.penalty).label, k)
            for k in context.keys("none", target)
        ]
    for on in sorted({cells.regulariser(r) for r in rows if cells.role(r).startswith("on_")}):
        parts += [
            f"\n**Penalties on top of {on.upper()}** (Δ against {on.upper()} alone, same seed)\n",
            context.header(),
        ]
        parts += [
            context.line(f"{vocabulary.penalty(k.penalty).label} + {on.upper()}", k)
            for t in cells.swept_targets([r for r in rows if cells.regulariser(r) == on])
            for k in context.keys(on, t)
        ]
    return "\n".join(parts) + "\n"


def _stable_cell(stable_rows, metric: str):
    """The stable experiment's unregularised cell of ``metric`` (None where not run)."""
    if not stable_rows:
        return None
    none = cells.baseline_keys(stable_rows, metric).get("none")
    return None if none is None else cells.cells(stable_rows, metric).get(none)


class _TableContext:
    """What every line of an experiment's tables reads (one place to format a cell)."""

    def __init__(self, rows, metric, extras, comparisons, table, flags, effective, stable=None):
        self.rows, self.metric, self.extras = rows, metric, extras
        self.comparisons, self.table, self.flags = comparisons, table, flags
        self.effective, self.stable = effective, stable
        self.extra_tables = {m: cells.cells(rows, m) for m in extras}
        self.none = cells.baseline_keys(rows, metric).get("none")

    def header(self) -> str:
        head = [
            "setting",
            "target",
            "strength",
            "raw λ (r, lr)",
            f"median {vocabulary.metric(self.metric).short} [CI]",
            "Δ vs reference [CI]",
            "p (Holm)",
            "d_z",
            "claim",
            *(vocabulary.metric(m).short for m in self.extras),
            "unstable",
            "Fisher p",
            *(["repair"] if self.stable is not None else []),
        ]
        return "| " + " | ".join(head) + " |\n|" + "---|" * len(head)

    def stable_line(self, stable_name) -> list[str]:
        """The stable baseline's line in an unstable setting's references."""
        if self.stable is None:
            return []
        blanks = ["—"] * (4 + len(self.extras) + 3)
        return [
            f"| stable baseline: {stable_name}, none | — | — | — | {_ci(self.stable)} | "
            + " | ".join(blanks)
            + " |"
        ]

    def _fisher_and_repair(self, key, c, share) -> list[str]:
        reference = (
            None
            if c is None
            else cells.unstable_fraction(cells.runs_of(self.rows, c.reference), self.flags)
        )
        fields = [
            "—"
            if share is None or reference is None
            else cells.fmt(cells.unstable_pvalue(share, reference))
        ]
        if self.stable is not None:
            fixed = key != self.none and key in self.table and self.none in self.table
            fields.append(
                cells.repair(self.table[key], self.table[self.none], self.stable, self.metric)
                if fixed
                else "—"
            )
        return fields

    def keys(self, on: str, target) -> list:
        return sorted(
            (
                k
                for k in self.table
                if k.regulariser == on and k.target == target and cells.role_of_key(k) != "baseline"
            ),
            key=lambda k: (list(vocabulary.PENALTIES).index(k.penalty), k.strength),
        )

    def line(self, label: str, key) -> str:
        runs = cells.runs_of(self.rows, key)
        c = self.comparisons.get(key)
        raw = sorted({r["value"] for r in runs if r["value"] is not None})
        strength = (
            "—"
            if key.strength is None or cells.role_of_key(key) == "baseline"
            else _strength(key, runs, self.effective)
        )
        fields = [
            label,
            key.target or "—",
            strength,
            ", ".join(f"{v:.3g}" for v in raw) or "—",
            _ci(self.table.get(key), bold=c is not None and c.claim in ("better",)),
            "—" if c is None else _ci(c.difference),
            "—"
            if c is None or c.p_holm is None
            else f"{cells.fmt(c.p_holm)}{'†' if c.test == 'sign' else ''}",
            "—" if c is None or c.d_z is None else cells.fmt(c.d_z),
            "—" if c is None else c.claim,
            *(
                cells.fmt(
                    None
                    if self.extra_tables[m].get(key) is None
                    else self.extra_tables[m][key].median
                )
                for m in self.extras
            ),
        ]
        share = cells.unstable_fraction(runs, self.flags)
        fields.append("—" if share is None else f"{share.k}/{share.n}")
        fields += self._fisher_and_repair(key, c, share)
        return "| " + " | ".join(fields) + " |"


def _strength(key, runs, effective: bool) -> str:
    """A cell's strength; an effective one that is a total over the run with its value per
    step beside it (:func:`experiments.study.members.strength_per_step`)."""
    steps = {r.get("config.steps") for r in runs} - {None}
    per_step = (
        members.strength_per_step(key.penalty, key.strength, int(steps.pop()))
        if effective and len(steps) == 1
        else None
    )
    if per_step is None or per_step == key.strength:
        return f"{key.strength:.3g}"
    return f"{key.strength:.3g} ({per_step:.2g}/step)"


def _reference_lines(nulls, name: str, metric: str, extras, stable: bool = False) -> list[str]:
    """Table lines of the nulls and, for the mixtures, the published PacGAN GAN numbers."""
    lines, tail = [], ["—"] * (3 if stable else 2)  # unstable, Fisher p (, repair)
    published = captions.pacgan_numbers(name)
    for kind, (label, _, _) in captions.NULL_STYLES.items():
        value = cells.null_value(nulls, kind, metric)
        if value is None:
            continue
        if kind == "real" and published is not None:  # a mixture's real null: its own samples
            label = captions.MIXTURE_REAL
        label = label.format(n=nulls["num_samples"])
        extra = [cells.fmt(cells.null_value(nulls, kind, m)) for m in extras]
        lines.append(
            "| "
            + " | ".join([label, "—", "—", "—", cells.fmt(value), *["—"] * 4, *extra, *tail])
            + " |"
        )
    if published and (metric in published or any(m in published for m in extras)):
        extra = [cells.fmt(published.get(m)) for m in extras]
        lines.append(
            "| "
            + " | ".join(
                [
                    captions.PACGAN_LABEL,
                    "—",
                    "—",
                    "—",
                    cells.fmt(published.get(metric)),
                    *["—"] * 4,
                    *extra,
                    *tail,
                ]
            )
            + " |"
        )
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
    parts = [
        f"# Results — preset `{preset}`\n",
        f"`python -m experiments.figures --preset {preset} --workdir {workdir}`; "
        f"{len(rows)} runs.\n",
        TABLE_NOTE + "\n",
    ]
    order = list(presets.PRESETS.get(preset, {}))
    names = sorted(
        cells.experiments_present(rows),
        key=lambda n: (order.index(n) if n in order else len(order), n),
    )
    for name in names:
        mine = cells.experiment_rows(rows, name)
        parts.append(
            results_table(
                mine, preset, cells.read_nulls(workdir, mine), cells.stable_rows(rows, name)
            )
        )
    parts.append("## Figures\n")
    for name, path in figure_files.items():
        parts.append(f"- `{name}`: ![{name}]({os.path.relpath(path, workdir)})")
    workdir_lib.write_text_atomic(pathlib.Path(workdir) / RESULTS_MD, "\n".join(parts) + "\n")


def total_variation(images: np.ndarray) -> float:
    """Mean anisotropic total variation of images ``[N, H, W, C]`` in [-1, 1].

    TV(x) = mean over pixels of |x[i+1, j] - x[i, j]| + |x[i, j+1] - x[i, j]|
    (channels averaged); the mean over the N images. Lower is smoother.
    """
    x = np.asarray(images, np.float64)
    vertical = np.abs(np.diff(x, axis=1)).mean(axis=(1, 2, 3))
    horizontal = np.abs(np.diff(x, axis=2)).mean(axis=(1, 2, 3))
    return float(np.mean(vertical + horizontal))


def with_sample_tv(rows, root) -> list[dict]:
    """Copies of ``rows`` with ``sample_tv``: :func:`total_variation` of the run's final samples.

    None where a run saved no samples or its samples are not images (points).
    """
    out = []
    for r in rows:
        path = pathlib.Path(root) / r["run"] / "samples" / "final.npz"
        samples = np.load(path)["samples"] if path.exists() else None
        tv = total_variation(samples) if samples is not None and samples.ndim == 4 else None
        out.append({**r, "sample_tv": tv})
    return out
