"""What the study's figures and tables report about ``results.csv`` rows.

Rows are those of :func:`experiments.study.results.collect` (labels ``penalty``,
``target``, ``value``, ``regulariser``, ``seed``; the summary's scores;
``config.*``). The conventions every figure and table shares:

- **Roles.** A row is a *baseline* (``none``, ``spectral_norm``, ``r1``,
  ``wgan_gp``: no weight penalty), a *weight penalty* (regulariser
  ``none``) or a weight penalty *on top of* a regulariser (``regulariser ==
  'r1'``), compared with that regulariser's baseline.
- **Strength.** ``effective_strength`` where the run has one (calibrated
  grids, :mod:`regan_jax.calibration`), else the raw swept ``value``. A
  max-norm strength is a radius (r / initial unit norm; smaller = stronger)
  and never shares an axis with the others.
- **Cells.** The runs of one (regulariser, penalty, target, strength) over
  seeds, reported as the median with its 95 % percentile-bootstrap CI
  (:func:`regan_jax.stats.cell`).
- **Diverged runs count as the worst value, never dropped**: +inf for a
  lower-is-better metric (FD is None when a run diverged), 0 for a bounded
  higher-is-better score, -inf for the ELBO (each metric's ``worst`` in
  :data:`experiments.study.vocabulary.METRICS`). Metrics without a direction
  (sparsity) drop them, and the cell counts them as failed.
- **Baselines** none, R1 and WGAN-GP pool their runs; spectral normalisation
  is taken at the best learning rate of its sweep, selected on the same
  seeds (optimistic for the baseline).
- **Paired comparisons** (:func:`comparisons`): ``d_s = metric(run, seed s) -
  metric(reference, seed s)`` against the unregularised run (R1 for penalties
  on top of R1) of the same seed, ``inf - inf`` counted as no difference;
  median ``d`` with its bootstrap CI; the paired t-test when every ``d`` is
  finite, else the exact sign test (a diverged run has an infinite ``d``);
  Holm-adjusted over all comparisons of an experiment; a claim only where
  the adjusted p < 0.05.
- **Instability** (:func:`instability`): diverged, oscillating, collapsed or
  a final FD above twice the median of the *stable* unregularised runs
  (:func:`regan_jax.evaluation.stability.relative_flags`): an experiment's
  own where it is stable, the healthy experiment it was derived from where
  it is an unstable setting (:data:`STABLE_BASELINES`; never the broken
  baseline itself), as k/n with a Clopper–Pearson interval, and compared
  with the unregularised runs' k/n by Fisher's exact test
  (:func:`regan_jax.stats.fisher_exact`). In an unstable setting a cell
  *fixes* it when its median FD falls within the stable baseline's 95 % CI
  (or below it) and is *less broken* when its median is only below the
  setting's own unregularised median (:func:`repair`).
- **Modes on grid25** (:data:`NOISE_ROBUST_MODES`): uniform noise covers 20
  of grid25's 25 modes under the one-sample rule, more than the GANs, so
  there the headline and the claims use the noise-robust count
  (``robust_modes``), the published count beside it.
"""

import functools
import math
import pathlib
from typing import NamedTuple

import numpy as np
from scipy import stats as scipy_stats

from experiments.study import vocabulary
from regan_jax import stats
from regan_jax import workdir as workdir_lib
from regan_jax.evaluation import stability

ALPHA = 0.05
NULLS_FILE = "nulls.json"
# Each unstable setting and the stable experiment whose unregularised runs set its
# instability thresholds and the band it is judged against (module docstring).
STABLE_BASELINES = {
    "digits_gan_unstable": "digits_gan",
    "digits_gan_capacity": "digits_gan",
    "digits_gan_small_data": "digits_gan",
}
# Experiments whose mode claims and headline use the noise-robust count (module docstring).
NOISE_ROBUST_MODES = ("grid25_gan",)


class CellKey(NamedTuple):
    """One configuration: target and strength None for the pooled baselines."""

    regulariser: str
    penalty: str
    target: str | None
    strength: float | None


class Cell(NamedTuple):
    """A cell's median over seeds with its 95 % bootstrap CI.

    ``failed``: runs that diverged or had no finite score (counted as the
    worst value, or dropped for a metric without a direction).
    """

    median: float
    low: float
    high: float
    n: int
    failed: int


# ----------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------


def experiment_rows(rows, name: str) -> list[dict]:
    """The rows of one experiment (``config.name``)."""
    return [r for r in rows if r["config.name"] == name]


def experiments_present(rows) -> list[str]:
    """The experiment names in ``rows``, in first-seen order."""
    return list(dict.fromkeys(r["config.name"] for r in rows))


def regulariser(row) -> str:
    """The row's regulariser label (``'none'`` for rows collected without one)."""
    return row.get("regulariser") or "none"


def _role(penalty: str, on: str) -> str:
    if penalty in vocabulary.WEIGHT_PENALTIES:
        return "weight" if on == "none" else f"on_{on}"
    return "baseline" if penalty in vocabulary.BASELINES else "custom"


def role(row) -> str:
    """``'baseline'``, ``'weight'``, ``'on_<regulariser>'`` or ``'custom'`` (module docstring)."""
    return _role(row["penalty"], regulariser(row))


def strength(row) -> float | None:
    """The row's strength: effective where calibrated, else the raw value (6 digits)."""
    if role(row) == "baseline":
        return None if row["value"] is None else float(row["value"])  # SN: its learning rate
    value = row.get("effective_strength")
    value = row["value"] if value is None else value
    return None if value is None else float(f"{float(value):.6g}")


def is_effective(rows) -> bool:
    """Whether the weight penalties of ``rows`` are in effective units."""
    return any(r.get("effective_strength") is not None for r in rows)


def cell_key(row) -> CellKey:
    """The cell a row belongs to (a pooled baseline: no target, no strength)."""
    target = row["target"] if role(row) != "baseline" or row["value"] is not None else None
    return CellKey(regulariser(row), row["penalty"], target, strength(row))


def swept_targets(rows) -> list[str]:
    """The targets the weight penalties of ``rows`` were put on, in a fixed order."""
    order = list(vocabulary.TARGETS)
    present = {r["target"] for r in rows if role(r) != "baseline" and r["target"] is not None}
    return [t for t in order if t in present] + sorted(present - set(order))


def weight_penalties(rows, on: str = "none") -> list[str]:
    """Weight penalties present with regulariser ``on``, in registry order."""
    present = {r["penalty"] for r in rows if role(r) != "baseline" and regulariser(r) == on}
    return [p for p in vocabulary.WEIGHT_PENALTIES if p in present]


def baselines_present(rows) -> list[str]:
    """The baselines with runs in ``rows``, in registry order."""
    present = {r["penalty"] for r in rows if role(r) == "baseline"}
    return [p for p in vocabulary.BASELINES if p in present]


def grid_strengths(rows, radius: bool = False) -> list[float]:
    """The sorted strengths (``radius``: max-norm radii) of the weight penalties."""
    return sorted(
        {
            strength(r)
            for r in rows
            if role(r) == "weight"
            and (r["penalty"] == "max_norm") == radius
            and strength(r) is not None
        }
    )


def middle_strength(rows, radius: bool = False) -> float | None:
    """The grid's middle strength (of an even count, the upper middle one)."""
    values = grid_strengths(rows, radius)
    return values[len(values) // 2] if values else None


def read_nulls(root, rows) -> dict | None:
    """``nulls.json`` of the experiment the runs of ``rows`` live in, or None."""
    path = (pathlib.Path(root) / rows[0]["run"]).parent / NULLS_FILE
    return workdir_lib.read_json(path) if path.exists() else None


def null_value(nulls, kind: str, metric: str) -> float | None:
    """A null reference's score (None where ``nulls.json`` has none)."""
    if not nulls:
        return None
    value = nulls.get("scores", {}).get(kind, {}).get(metric)
    return None if value is None or isinstance(value, bool) else float(value)


def fmt(value) -> str:
    """A number for a table: 3 significant digits, integers as integers, ∞ for infinities."""
    if value is None:
        return "—"
    value = float(value)
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.0f}" if value.is_integer() or abs(value) >= 1000 else f"{value:.3g}"


# ----------------------------------------------------------------------------
# Cells
# ----------------------------------------------------------------------------


def metric_value(row: dict, metric: str) -> float | None:
    """``row``'s score, a diverged or unscored run counting as the metric's worst.

    ``sparsity``/``filter_sparsity``/``near_zero`` read the targeted network's value (the
    mean over both for target ``both``). None: dropped (a metric without a
    direction, of a diverged or unscored run).
    """
    spec = vocabulary.metric(metric)
    value = _raw_value(row, metric)
    if row.get("diverged") or value is None:
        return spec.worst
    return value


def _raw_value(row, metric):
    if metric in ("sparsity", "filter_sparsity", "near_zero"):
        values = [row.get(f"{metric}_{n}") for n in _target_nets(row)]
        return None if not values or None in values else float(np.mean(values))
    value = row.get(metric)
    if value is None or isinstance(value, bool) or not math.isfinite(float(value)):
        return None
    return float(value)


def _target_nets(row) -> list[str]:
    # A merged CSV has every experiment's columns: a network of this run has a value.
    nets = sorted(
        k[len("config.penalty.") : -len(".kind")]
        for k, v in row.items()
        if k.startswith("config.penalty.") and k.endswith(".kind") and v is not None
    )
    target = row["target"]
    if target in (None, "both"):
        return nets
    if "," in target or row.get("config.model_type") is None:
        return target.split(",")
    return list(vocabulary.target_networks(row["config.model_type"], target))  # a group, or one net


def has_metric(rows, metric: str) -> bool:
    """Whether any run of ``rows`` was scored with ``metric``."""
    return any(_raw_value(r, metric) is not None for r in rows)


def seed_values(rows, metric: str) -> dict:
    """``{CellKey: {seed: value}}`` of :func:`metric_value` (dropped runs left out)."""
    out = {}
    for r in rows:
        value = metric_value(r, metric)
        if value is not None:
            out.setdefault(cell_key(r), {})[int(r["seed"])] = value
    return out


@functools.lru_cache(maxsize=65536)
def summarise(values: tuple) -> Cell:
    """:func:`regan_jax.stats.cell` of a tuple of values (the median and its CI)."""
    s = stats.cell(list(values))
    return Cell(s["median"], s["low"], s["high"], s["n"], 0)


def cells(rows, metric: str) -> dict:
    """``{CellKey: Cell}`` of ``metric`` over seeds (module docstring); {} if unscored."""
    if not has_metric(rows, metric):
        return {}
    failed = {}
    for r in rows:
        if r.get("diverged") or _raw_value(r, metric) is None:
            failed[cell_key(r)] = failed.get(cell_key(r), 0) + 1
    out = {}
    for key, by_seed in seed_values(rows, metric).items():
        values = tuple(by_seed[s] for s in sorted(by_seed))
        out[key] = summarise(values)._replace(failed=failed.get(key, 0))
    return out


def better(metric: str, a: float, b: float) -> bool:
    """Whether ``a`` is strictly better than ``b`` (directionless metrics: never)."""
    lower = vocabulary.metric(metric).lower
    return False if lower is None else (a < b if lower else a > b)


def best_key(table: dict, keys, metric: str):
    """The key of ``keys`` with the best median in ``table`` (first of ties), or None."""
    best = None
    for key in keys:
        if key in table and (best is None or better(metric, table[key].median, table[best].median)):
            best = key
    return best


def best_strength(rows, metric: str, penalty: str, target, on: str = "none"):
    """The strength of ``penalty`` on ``target`` with the best median ``metric`` (or None)."""
    table = cells(rows, metric)
    keys = sorted((k for k in table if k[:3] == (on, penalty, target)), key=lambda k: k.strength)
    key = best_key(table, keys, metric)
    return None if key is None else key.strength


def headline_metric(rows) -> str:
    """An experiment's score: FD where images are scored, else modes covered (the
    noise-robust count on :data:`NOISE_ROBUST_MODES`)."""
    if has_metric(rows, "fd"):
        return "fd"
    robust = (
        rows and rows[0]["config.name"] in NOISE_ROBUST_MODES and has_metric(rows, "robust_modes")
    )
    return "robust_modes" if robust else "modes"


def baseline_keys(rows, metric: str) -> dict:
    """``{baseline: CellKey}``; spectral norm at its best learning rate by ``metric``."""
    out = {}
    table = cells(rows, metric)
    for penalty in baselines_present(rows):
        keys = sorted(
            {cell_key(r) for r in rows if role(r) == "baseline" and r["penalty"] == penalty},
            key=lambda k: k.strength or 0.0,
        )
        key = best_key(table, keys, metric) if len(keys) > 1 else keys[0]
        out[penalty] = key or keys[0]
    return out


def reference_key(key: CellKey, baselines: dict):
    """What a cell is paired with: the unregularised runs, or its regulariser's baseline."""
    if key.penalty == "none" and key.regulariser == "none":
        return None
    reference = key.regulariser if key.penalty in vocabulary.WEIGHT_PENALTIES else "none"
    return baselines.get(reference)


def runs_of(rows, key: CellKey) -> list[dict]:
    """The rows of one cell, by seed."""
    return sorted((r for r in rows if cell_key(r) == key), key=lambda r: int(r["seed"]))


def median_seed_run(rows, key: CellKey, metric: str):
    """The run of a cell whose ``metric`` is the (lower) median over its seeds, or None."""
    runs = [r for r in runs_of(rows, key) if metric_value(r, metric) is not None]
    if not runs:
        return None
    ordered = sorted(runs, key=lambda r: (metric_value(r, metric), int(r["seed"])))
    return ordered[(len(ordered) - 1) // 2]


# ----------------------------------------------------------------------------
# Paired comparisons
# ----------------------------------------------------------------------------


class Comparison(NamedTuple):
    """A cell against its reference, paired by seed (module docstring).

    ``difference``: median ``d`` with its CI (None without a common seed);
    ``p``: unadjusted (None with fewer than 2 pairs); ``test``: ``'t'`` or
    ``'sign'``; ``d_z``: None where some ``d`` is infinite; ``p_holm`` and
    ``claim`` filled by :func:`comparisons`.
    """

    key: CellKey
    reference: CellKey
    difference: dict | None
    p: float | None
    test: str
    d_z: float | None
    p_holm: float | None = None
    claim: str = "—"


def paired(values: dict, reference: dict):
    """The differences ``values[s] - reference[s]`` over the seeds both have (``inf - inf`` = 0)."""
    seeds = sorted(set(values) & set(reference))
    a = np.array([values[s] for s in seeds], np.float64)
    b = np.array([reference[s] for s in seeds], np.float64)
    with np.errstate(invalid="ignore"):
        d = np.where(a == b, 0.0, a - b)
    return d


def compare(key: CellKey, reference: CellKey, by_key: dict) -> Comparison:
    """One :class:`Comparison` (unadjusted) from :func:`seed_values`."""
    d = paired(by_key.get(key, {}), by_key.get(reference, {}))
    if d.size == 0:
        return Comparison(key, reference, None, None, "t", None)
    difference = stats.paired_difference(d, np.zeros_like(d))
    finite = bool(np.isfinite(d).all())
    p, d_z = None, None
    if d.size >= 2 and finite:
        p, d_z = stats.paired_test(d, np.zeros_like(d)), stats.effect_size(d, np.zeros_like(d))
    elif d.size >= 2:
        nonzero = d[d != 0]
        p = (
            scipy_stats.binomtest(int((nonzero > 0).sum()), nonzero.size).pvalue
            if nonzero.size
            else 1.0
        )
    return Comparison(key, reference, difference, p, "t" if finite else "sign", d_z)


def comparisons(rows, metric: str) -> list[Comparison]:
    """Every cell but the unregularised one against its reference, Holm-adjusted.

    The family is every comparison of the experiment (baselines, weight
    penalties and penalties on top of R1 alike). The claim is ``better`` /
    ``worse`` (``higher`` / ``lower`` without a direction) where the
    Holm-adjusted p < :data:`ALPHA`, judged by the sign of the mean paired
    difference (t-test) or of the median (sign test); else ``n.s.``.
    """
    by_key = seed_values(rows, metric)
    bases = baseline_keys(rows, metric)
    keys = [
        k
        for k in by_key
        if reference_key(k, bases) is not None
        and (role_of_key(k) != "baseline" or k == bases.get(k.penalty))
    ]
    out = holm_adjusted([compare(k, reference_key(k, bases), by_key) for k in keys])
    return [c if c.p_holm is None else c._replace(claim=_claim(c, by_key, metric)) for c in out]


def holm_adjusted(comparisons: list, include=None) -> list[Comparison]:
    """``comparisons`` with ``p_holm`` filled: Holm over those that have a p (and that
    ``include``, a parallel list of bools, admits; the others keep ``p_holm`` None)."""
    include = [True] * len(comparisons) if include is None else include
    tested = [i for i, (c, ok) in enumerate(zip(comparisons, include)) if ok and c.p is not None]
    out = list(comparisons)
    for i, p_holm in zip(tested, stats.holm([out[i].p for i in tested]) if tested else []):
        out[i] = out[i]._replace(p_holm=float(p_holm))
    return out


def judged_sign(c: Comparison, d: np.ndarray) -> float:
    """The sign a comparison's test judges: the mean paired difference ``d`` (t-test) or the
    median (sign test)."""
    return float(np.mean(d)) if c.test == "t" else c.difference["median"]


def role_of_key(key: CellKey) -> str:
    """:func:`role` of a cell."""
    return _role(key.penalty, key.regulariser)


def _claim(c: Comparison, by_key: dict, metric: str) -> str:
    if c.p_holm >= ALPHA:
        return "n.s."
    sign = judged_sign(c, paired(by_key[c.key], by_key[c.reference]))
    lower = vocabulary.metric(metric).lower
    if sign == 0:
        return "n.s."
    if lower is None:
        return "higher" if sign > 0 else "lower"
    return "better" if (sign < 0) == lower else "worse"


# ----------------------------------------------------------------------------
# Instability
# ----------------------------------------------------------------------------

# What "unstable" means, for captions and tables (the thresholds are stability's).
UNSTABLE_RULE = (
    f"diverged, FD oscillating (rebound > {stability.REBOUND:g}×), collapsed to "
    f"under half the modes, or final FD > {stability.RELATIVE_FD:g}× the stable "
    "unregularised median (the stable experiment's in an unstable setting)"
)


def _unregularised(rows) -> list[dict]:
    return [r for r in rows if r["penalty"] == "none" and regulariser(r) == "none"]


def stable_rows(all_rows, name: str) -> list[dict]:
    """The rows whose unregularised runs set ``name``'s thresholds: the stable experiment's
    of :data:`STABLE_BASELINES` (none where it was not run), else ``name``'s own."""
    return experiment_rows(all_rows, STABLE_BASELINES.get(name, name))


def instability(rows, baseline_rows=None) -> dict:
    """``{run: relative_flags(...)}`` of every row against the final FDs of the unregularised
    runs of ``baseline_rows`` (default ``rows``; :func:`stable_rows` for an unstable setting:
    with no stable runs the FD criterion is None and the other three still count)."""
    baseline = [
        _raw_value(r, "fd")
        for r in _unregularised(rows if baseline_rows is None else baseline_rows)
        if not r.get("diverged")
    ]
    return {
        r["run"]: stability.relative_flags(
            None if r.get("diverged") else _raw_value(r, "fd"), baseline, r
        )
        for r in rows
    }


class Fraction(NamedTuple):
    """``k`` of ``n`` runs, with the 95 % Clopper–Pearson interval of k/n."""

    k: int
    n: int
    low: float
    high: float


def unstable_fraction(runs, flags: dict) -> Fraction | None:
    """The unstable runs among ``runs`` (None for no runs)."""
    n = len(runs)
    if not n:
        return None
    k = sum(bool(flags[r["run"]]["unstable"]) for r in runs)
    ci = scipy_stats.binomtest(k, n).proportion_ci(1 - ALPHA, method="exact")
    return Fraction(k, n, float(ci.low), float(ci.high))


def unstable_pvalue(share: Fraction, reference: Fraction) -> float:
    """Fisher's exact two-sided p of a cell's unstable k/n against its reference's."""
    return stats.fisher_exact(share.k, share.n, reference.k, reference.n)


FIXES, LESS_BROKEN, NOT_BETTER = "fixes", "less broken", "not better"


def repair(cell: Cell, own_baseline: Cell, stable_baseline: Cell, metric: str) -> str:
    """How far a cell repairs an unstable setting by its median ``metric`` (module docstring):
    :data:`FIXES` (within the stable baseline's CI or better), :data:`LESS_BROKEN` (better than
    the setting's own unregularised median only) or :data:`NOT_BETTER`."""
    bound = stable_baseline.high if vocabulary.metric(metric).lower else stable_baseline.low
    if cell.median == bound or better(metric, cell.median, bound):
        return FIXES
    return LESS_BROKEN if better(metric, cell.median, own_baseline.median) else NOT_BETTER
