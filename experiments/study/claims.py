"""The study's verdicts on the published claims (``python -m experiments.claims --workdir DIR``).

Each claim is declared here, before the data (:data:`CLAIMS`): which
penalties on which networks, in which experiments, scored by which metric,
paired by seed with which reference, and the direction the claim predicts.
Every strength of the grid is compared; the comparisons of one part of a
claim form one family, Holm-adjusted together. The paired statistics are
those of :mod:`experiments.study.cells` (median Δ with its 95 % bootstrap CI; the
paired t-test, or the exact sign test where a diverged run makes Δ
infinite; d_z = mean Δ / sd Δ).

Each comparison is one cell (a penalty on a target at a strength, in one
experiment) against its reference, paired by seed, and is read by three
pre-declared tests, each with its metric's smallest effect of interest
(SESOI, :data:`experiments.study.vocabulary.METRICS`: FD 5, recall 0.05, ...;
``d_z`` 0.5, i.e. half the standard deviation of the differences, for a
metric without a natural unit):

- **claimed way**: the one-sided test that the cell moves the metric the way
  the claim predicts (paired t-test; the exact sign test where a diverged
  run makes Δ infinite);
- **against**: the one-sided test of the opposite direction;
- **equivalent**: two one-sided t-tests (TOST) that the mean Δ lies within
  ±SESOI (:func:`regan_jax.stats.equivalence_test`; never shown with a
  diverged run).

The *family* of a part is its comparisons across every cell, strength and
experiment (degenerate cells left out, below). Its ``2m`` directional tests
(claimed way and against, for ``m`` comparisons) are Holm-adjusted together,
so the family-wise error rate of every "claimed way" and "against" reading
is at most 0.05; its ``m`` equivalence tests are Holm-adjusted together, at
family-wise error rate 0.05.

A comparison reads (Lakens, Scheel & Isager 2018, "Equivalence testing for
psychological research", their four outcomes):

- **claimed way** / **against**: significant in that direction (Holm-adjusted
  p < 0.05) and not shown equivalent;
- **trivial**: significant in a direction *and* equivalent within ±SESOI
  (both Holm-adjusted p < 0.05): an effect too small to matter, shown to be
  real -- it counts as no effect, for the claim and against it alike;
- **equivalent**: equivalent and significant in neither direction;
- **—**: none of these (inconclusive).

(The "trivial" reading was added before study v2 was run, 2026-12-05: under
the earlier rule a significant effect below the SESOI decided a claim, e.g.
the first study's VAE held-out ELBO, 0.37 nats worse with weight decay,
contradicted "prevents overfitting" although its SESOI is 1 nat.)

Verdict of a part (declared before the data):

- **supported**: some comparison goes the claimed way (the claims are
  existential in the strength: "at some strength, on some network";
  comparisons against are listed beside);
- **contradicted**: none does, and some comparison goes against the claim;
- **no effect**: every comparison is equivalent or trivial: at no tested
  strength does the effect reach its SESOI;
- **inconclusive**: otherwise; **not tested**: the runs are not there.

A ``d_z``-margin TOST needs ``|t| < 0.5 sqrt(n) - t_{n-1, 0.95}``, impossible
below 13 seeds: with 5 seeds "no effect" is reachable only for metrics with a
natural unit.

Parts about the samples and the generator's map (smoothness, diversity)
count only cells that still train: a cell more than half of whose runs are
unstable (diverged, oscillating, collapsed or a final FD over twice the
stable unregularised median: `experiments.study.cells.UNSTABLE_RULE`) is
listed as *degenerate* and left out of the families and the verdict -- the
flattest samples and the shortest latent paths come from generators that
collapsed to one blurry output, which is not what "smoother" claims. (This
guard was added after the first look at the digits GAN's runs, where the
only significant smoothing, then read on total variation, was such a cell;
it is kept on the path-length and Jacobian parts that replaced total
variation, declared before their data. The sensitivity table gives every
guarded part's verdict without it.)

"Smoother" is the generator's mapping, not the samples' blur: a shorter
perceptual path length (``ppl``, Karras et al. 2019) or a better-conditioned
Jacobian (``jacobian_log_cond``, Odena et al. 2018), alternative readings of
the one word. Total variation (``sample_tv``: lower = blurrier) is shown
beside the path length and ``‖J‖_F`` (the map's scale) beside the condition
number (:data:`BESIDE`); neither is tested.

**Generalisation** ("a norm penalty prevents overfitting and improves
generalisation"). Overfitting is fitting the training set better than the
distribution; the claim's parts are the symptoms protocol v2 measures, in
the digits GAN and VAE at the full training set and at 100 training images
(``*_small_data``), for every weight penalty
(:data:`experiments.study.vocabulary.WEIGHT_PENALTIES`) on every network:

- *less memorisation*: the nearest-neighbour memorisation ratio in feature
  space (lower; its null is 0.05). The copying statistic C_T is shown beside
  it and not tested: its right value is 0 (≪ 0 copies, ≫ 0 underfits;
  Meehan et al. 2020), so a higher C_T is less copying only while C_T < 0,
  and a one-sided test of it would credit a penalty that pushes a model from
  copying into underfitting;
- *a smaller train-vs-held-out gap*: FD∞ against the held-out split minus
  against the training images (``fd_inf_gap``, GAN), the ELBO of the
  training images minus the held-out ELBO (``elbo_gap``, VAE);
- *less discriminator overfitting*: ``r_v`` (GAN);
- *better held-out quality* ("improves generalisation"): FD∞ against the
  held-out split (GAN), the held-out ELBO (VAE).

They join with ``all``: the claim is a conjunction, and ``all`` is an
intersection-union test -- supported only where every part is, each at
family-wise error 0.05, so the claim's false-support rate stays at most 0.05
with no correction across parts (``any`` over four parts would allow up to
0.2). ``all`` also keeps a penalty from counting as "copies less" because
its samples got worse: a lower memorisation ratio or a smaller gap from a
generator that drifted away from the data comes with a worse held-out FD∞,
which contradicts the claim. That, not the degenerate-cell guard, is these
parts' protection: the guard's threshold is the stable experiment's FD, under
which all five unregularised ``digits_gan_small_data`` runs are already
unstable (its config's docstring), so it would leave out every data-limited
cell, the cells the claim is about. A part whose symptom the unregularised
runs do not show (a memorisation ratio at its null) reads "no effect" at
best, and then so does the claim: there was no overfitting of that kind to
prevent; the parts' verdicts say which.

Mode claims on grid25 use the noise-robust count (``robust_modes``): under
the published one-sample rule uniform noise covers 20 of its 25 modes with
reverse KL 0.38 (the cpu study's noise null), more than the unregularised
GANs (18, 1.31), so neither the published count nor the reverse KL of its
histogram separates a GAN from noise there
(`experiments.study.cells.NOISE_ROBUST_MODES`); the published count is shown
beside it.

A claim joins its parts with ``all`` (every part must hold: "sparse *and*
more diverse") or ``any`` (alternative readings of one word: "stabilises",
"smoother"): ``all`` is contradicted when one part is, shows no effect when
one part does (and none is contradicted), and is supported when every part
is; ``any`` is supported when one part is, contradicted when every tested
part is, and shows no effect when every tested part shows no effect or is
contradicted, one at least showing no effect. Parts that are alternative
readings of one word of an ``all`` claim (``Part.word``: elastic net's
"smoother than L1") are first joined with ``any`` into that word's verdict,
which then counts as one part.
"""

import re
from typing import NamedTuple

import numpy as np
from scipy import stats as scipy_stats

from experiments.study import cells, tables, vocabulary
from regan_jax import stats

SUPPORTED, CONTRADICTED, NO_EFFECT, INCONCLUSIVE, NOT_TESTED = (
    "supported",
    "contradicted",
    "no effect",
    "inconclusive",
    "not tested",
)
# A comparison significant in a direction and equivalent within its SESOI (module docstring).
TRIVIAL = "trivial"
GENERATOR_SIDE = ("g", "both", "decoder")
# Shown beside a claim's metric, not tested: the published count beside the noise-robust
# one; C_T beside the memorisation ratio; blur beside the path length; the Jacobian's
# scale beside its conditioning (module docstring).
BESIDE = {
    "robust_modes": "modes",
    "memorisation_features": "copying_features",
    "ppl": "sample_tv",
    "jacobian_log_cond": "jacobian_fro",
    "content_accuracy": "cycle_error_a",
}


class Part(NamedTuple):
    """One testable reading of a claim.

    Attributes:
      name: what the part says, e.g. ``'sparser generator'``.
      metrics: ``{experiment: metric}``; ``'*'`` for every experiment.
      direction: ``'higher'``, ``'lower'`` or ``'better'`` (by each metric's
        own direction, :data:`experiments.study.vocabulary.METRICS`): what the claim
        predicts of the metric (cell minus reference).
      penalties: the cells' weight penalties.
      targets: the networks they are on.
      versus: the reference: ``'none'`` (the unregularised runs) or a
        penalty at the same target and strength.
      guard: leave degenerate cells (mostly unstable runs) out (module docstring).
      word: the word of an ``all`` claim that this part is one reading of: the
        parts of one word join with ``any`` first (module docstring); ``''``:
        the part stands alone.
    """

    name: str
    metrics: dict
    direction: str
    penalties: tuple
    targets: tuple
    versus: str = "none"
    guard: bool = False
    word: str = ""


class Claim(NamedTuple):
    """A published claim: its parts and how they join (``'all'`` or ``'any'``)."""

    name: str
    statement: str
    parts: tuple
    join: str = "all"


# grid25 reads diversity as the noise-robust mode count (module docstring).
_DIVERSITY = {
    "digits_gan": "recall",
    "ring8_gan": "reverse_kl",
    **dict.fromkeys(cells.NOISE_ROBUST_MODES, "robust_modes"),
    "stacked_digits_gan": "modes",
}
_IMAGES = ("digits_gan", "digits_cgan", "digits_vae", "stacked_digits_gan")
_L1 = ("l1", "prox_l1")
_L2 = ("l2", "weight_decay")
# The generalisation claim's experiments: each family at the full and a small training set.
_GANS = ("digits_gan", "digits_gan_small_data")
_VAES = ("digits_vae", "digits_vae_small_data")
_EVERY_NETWORK = ("g", "d", "encoder", "decoder", "both")

CLAIMS = (
    Claim(
        "prevents_overfitting",
        "A norm penalty prevents overfitting and improves generalisation.",
        (
            Part(
                "less memorisation (nearest-neighbour memorisation ratio, features; C_T beside)",
                dict.fromkeys(_GANS + _VAES, "memorisation_features"),
                "lower",
                vocabulary.WEIGHT_PENALTIES,
                _EVERY_NETWORK,
            ),
            Part(
                "smaller train-vs-held-out gap (FD∞ held-out − train; VAE: ELBO train − held-out)",
                {**dict.fromkeys(_GANS, "fd_inf_gap"), **dict.fromkeys(_VAES, "elbo_gap")},
                "lower",
                vocabulary.WEIGHT_PENALTIES,
                _EVERY_NETWORK,
            ),
            Part(
                "less discriminator overfitting (r_v)",
                dict.fromkeys(_GANS, "r_v"),
                "lower",
                vocabulary.WEIGHT_PENALTIES,
                _EVERY_NETWORK,
            ),
            Part(
                "better held-out quality (FD∞ vs held-out; VAE: held-out ELBO)",
                {**dict.fromkeys(_GANS, "fd_inf"), **dict.fromkeys(_VAES, "elbo")},
                "better",
                vocabulary.WEIGHT_PENALTIES,
                _EVERY_NETWORK,
            ),
        ),
    ),
    Claim(
        "weight_decay_stabilises",
        "Weight decay stabilises GAN training.",
        (
            Part(
                "better final FD where training is unstable (optimiser, capacity, data)",
                dict.fromkeys(cells.STABLE_BASELINES, "fd"),
                "lower",
                _L2,
                ("d", "g", "both"),
            ),
            Part(
                "smaller FD rebound (second-half FD climb)",
                {**dict.fromkeys(cells.STABLE_BASELINES, "fd_rebound"), "digits_gan": "fd_rebound"},
                "lower",
                _L2,
                ("d", "g", "both"),
            ),
        ),
        join="any",
    ),
    Claim(
        "l1_sparse_diverse",
        "L1 makes generators sparse and samples more diverse.",
        (
            Part(
                "sparser generator (exactly-zero weights)",
                {"*": "sparsity"},
                "higher",
                _L1,
                GENERATOR_SIDE,
            ),
            Part(
                "more diverse samples (recall; reverse KL of the mode histogram; grid25: "
                "noise-robust modes)",
                _DIVERSITY,
                "better",
                _L1,
                GENERATOR_SIDE,
                guard=True,
            ),
        ),
    ),
    Claim(
        "l2_smoother",
        "L2 makes samples smoother.",
        (
            Part(
                "shorter perceptual path length (blur: total variation beside)",
                dict.fromkeys(_IMAGES, "ppl"),
                "lower",
                _L2,
                GENERATOR_SIDE,
                guard=True,
            ),
            Part(
                "better-conditioned generator Jacobian (log condition number; ‖J‖_F beside)",
                dict.fromkeys(_IMAGES, "jacobian_log_cond"),
                "lower",
                _L2,
                GENERATOR_SIDE,
                guard=True,
            ),
        ),
        join="any",
    ),
    Claim(
        "elastic_net_balances",
        "Elastic net balances the two (L1's sparsity, L2's smoothness).",
        (
            Part(
                "sparser than L2 at the same target and strength",
                {"*": "sparsity"},
                "higher",
                ("elastic_net",),
                GENERATOR_SIDE,
                versus="l2",
            ),
            Part(
                "smoother than proximal L1 at the same target and strength: shorter path length",
                dict.fromkeys(_IMAGES, "ppl"),
                "lower",
                ("elastic_net",),
                GENERATOR_SIDE,
                versus="prox_l1",
                guard=True,
                word="smoother than L1",
            ),
            Part(
                "smoother than proximal L1 at the same target and strength: "
                "better-conditioned Jacobian",
                dict.fromkeys(_IMAGES, "jacobian_log_cond"),
                "lower",
                ("elastic_net",),
                GENERATOR_SIDE,
                versus="prox_l1",
                guard=True,
                word="smoother than L1",
            ),
        ),
    ),
    # The cycle GAN's reading (issue #22, declared before study v2's data): a translator
    # that keeps content maps a digit to one of the same class; the cycle error (F(G(a))
    # back to a) is shown beside it and not tested -- an identity-like G keeps it low
    # without translating.
    Claim(
        "translators_keep_content",
        "A norm penalty on a cycle GAN's translators helps them keep content.",
        (
            Part(
                "higher content accuracy of G(a) (cycle error beside)",
                {"digits_cyclegan": "content_accuracy"},
                "higher",
                vocabulary.WEIGHT_PENALTIES,
                ("generators", "all"),
            ),
        ),
    ),
)


class Test(NamedTuple):
    """One comparison of a part: a cell of ``experiment`` against its reference.

    ``p_claimed`` / ``p_against``: the one-sided tests of the claimed and the
    opposite direction; ``p_equivalent``: the TOST within ±``margin`` (the
    SESOI in the metric's units; None without two finite pairs); the
    ``holm_*`` fields their Holm-adjusted values in the part's families
    (None for a degenerate cell).
    """

    experiment: str
    metric: str
    comparison: cells.Comparison
    cell: cells.Cell
    reference: cells.Cell
    favours: bool  # goes the claimed way (by the sign the test judges)
    unstable: cells.Fraction  # of the cell's runs (cells.UNSTABLE_RULE)
    degenerate: bool = False  # a guarded part's cell with more than half its runs unstable
    p_claimed: float | None = None
    p_against: float | None = None
    p_equivalent: float | None = None
    margin: float | None = None
    holm_claimed: float | None = None
    holm_against: float | None = None
    holm_equivalent: float | None = None
    beside: tuple | None = None  # (metric, cell median, reference median): BESIDE


class Family(NamedTuple):
    """What a part's Holm families hold: ``m`` comparisons over so many cells (penalty ×
    target), strengths and experiments, with ``left_out`` degenerate ones."""

    m: int
    cells: int
    strengths: int
    experiments: int
    left_out: int


class Verdict(NamedTuple):
    claim: Claim
    verdict: str
    parts: tuple  # ((Part, verdict, [Test, ...]), ...)


def _metric(part: Part, experiment: str):
    return part.metrics.get(experiment, part.metrics.get("*"))


def _lower(part: Part, metric: str) -> bool:
    """Whether the part predicts a lower ``metric``."""
    if part.direction == "better":
        return bool(vocabulary.metric(metric).lower)
    return part.direction == "lower"


def claimed_sign(part: Part, metric: str) -> int:
    """+1 where ``part`` predicts a higher ``metric`` (cell minus reference), -1 a lower one."""
    return -1 if _lower(part, metric) else 1


def directional_pvalues(c: cells.Comparison, d: np.ndarray) -> tuple:
    """``(p_lower, p_higher)``: the one-sided tests that the cell's metric is lower / higher
    than its reference's (the paired t-test, or the exact sign test where some ``d`` is
    infinite; ``(None, None)`` with fewer than 2 pairs)."""
    if d.size < 2:
        return None, None
    if c.test == "t":
        zeros = np.zeros_like(d)
        return (
            stats.paired_test(d, zeros, alternative="less"),
            stats.paired_test(d, zeros, alternative="greater"),
        )
    nonzero = d[d != 0]
    if not nonzero.size:
        return 1.0, 1.0
    k = int((nonzero > 0).sum())
    return (
        scipy_stats.binomtest(k, nonzero.size, alternative="less").pvalue,
        scipy_stats.binomtest(k, nonzero.size, alternative="greater").pvalue,
    )


def equivalence(d: np.ndarray, sesoi: vocabulary.Sesoi) -> tuple:
    """``(TOST p, margin)`` of differences ``d`` within ±SESOI (module docstring).

    A ``d_z`` SESOI is ``value * sd(d)`` (zero-variance ``d``: equivalent exactly when
    every ``d`` is 0). ``(1.0, None)`` where a diverged run makes some ``d`` infinite;
    ``(None, None)`` with fewer than 2 pairs.
    """
    if d.size < 2:
        return None, None
    if not np.isfinite(d).all():
        return 1.0, None
    margin = sesoi.value if sesoi.scale == "units" else sesoi.value * float(d.std(ddof=1))
    if margin == 0.0:
        return (0.0 if not d.any() else 1.0), 0.0
    return stats.equivalence_test(d, np.zeros_like(d), margin), margin


def _beside(tables_by_metric: dict, key, reference) -> tuple | None:
    for metric, table in tables_by_metric.items():
        if key in table and reference in table:
            return metric, table[key].median, table[reference].median
    return None


def part_tests(rows, part: Part) -> list[Test]:
    """Every comparison of ``part`` in ``rows`` (all experiments), Holm-adjusted in its
    families (module docstring)."""
    tests = []
    for name in cells.experiments_present(rows):
        metric = _metric(part, name)
        mine = cells.experiment_rows(rows, name)
        if metric is None or not cells.has_metric(mine, metric):
            continue
        by_key = cells.seed_values(mine, metric)
        table = cells.cells(mine, metric)
        flags = cells.instability(mine, cells.stable_rows(rows, name))
        none = cells.baseline_keys(mine, metric).get("none")
        beside = {
            m: cells.cells(mine, m) for m in [BESIDE.get(metric)] if m and cells.has_metric(mine, m)
        }
        lower = _lower(part, metric)
        for key in sorted(by_key, key=lambda k: (k.penalty, k.target, k.strength)):
            if (
                key.regulariser != "none"
                or key.penalty not in part.penalties
                or key.target not in part.targets
            ):
                continue
            reference = none if part.versus == "none" else key._replace(penalty=part.versus)
            if reference not in by_key:
                continue
            c = cells.compare(key, reference, by_key)
            if c.difference is None:
                continue
            d = cells.paired(by_key[key], by_key[reference])
            sign = cells.judged_sign(c, d)
            favours = sign < 0 if lower else sign > 0
            unstable = cells.unstable_fraction(cells.runs_of(mine, key), flags)
            degenerate = part.guard and 2 * unstable.k > unstable.n
            p_lower, p_higher = directional_pvalues(c, d)
            p_equivalent, margin = equivalence(d, vocabulary.metric(metric).sesoi)
            tests.append(
                Test(
                    name,
                    metric,
                    c,
                    table[key],
                    table[reference],
                    favours,
                    unstable,
                    degenerate,
                    p_lower if lower else p_higher,
                    p_higher if lower else p_lower,
                    p_equivalent,
                    margin,
                    beside=_beside(beside, key, reference),
                )
            )
    return adjust(tests)


def adjust(tests: list[Test]) -> list[Test]:
    """``tests`` with the ``holm_*`` fields: the directional tests (claimed way and against)
    of the counted comparisons Holm-adjusted as one family, their TOSTs as another."""
    counted = [i for i, t in enumerate(tests) if not t.degenerate and t.p_claimed is not None]
    directional = stats.holm(
        [tests[i].p_claimed for i in counted] + [tests[i].p_against for i in counted]
    )
    equivalent = stats.holm([tests[i].p_equivalent for i in counted])
    out = list(tests)
    for j, i in enumerate(counted):
        out[i] = out[i]._replace(
            holm_claimed=float(directional[j]),
            holm_against=float(directional[len(counted) + j]),
            holm_equivalent=float(equivalent[j]),
        )
    return out


def _significant(p) -> bool:
    return p is not None and p < cells.ALPHA


def reading(t: Test) -> str:
    """What one comparison shows: ``'claimed way'``, ``'against'``, ``'trivial'``,
    ``'equivalent'``, ``'degenerate'`` or ``'—'`` (nothing at the family's error rate)."""
    if t.degenerate:
        return "degenerate"
    equivalent = _significant(t.holm_equivalent)
    for direction, p in (("claimed way", t.holm_claimed), ("against", t.holm_against)):
        if _significant(p):
            return TRIVIAL if equivalent else direction
    return "equivalent" if equivalent else "—"


def part_verdict(part: Part, tests: list[Test]) -> str:
    """The part's verdict from its tests (module docstring); degenerate cells do not count."""
    if not tests:
        return NOT_TESTED
    readings = [reading(t) for t in tests if not t.degenerate]
    if not readings:
        return INCONCLUSIVE
    if "claimed way" in readings:
        return SUPPORTED
    if "against" in readings:
        return CONTRADICTED
    return NO_EFFECT if set(readings) <= {"equivalent", TRIVIAL} else INCONCLUSIVE


def family(tests: list[Test]) -> Family:
    """The size and make-up of a part's families (degenerate cells left out)."""
    counted = [t for t in tests if not t.degenerate and t.p_claimed is not None]
    keys = [t.comparison.key for t in counted]
    return Family(
        len(counted),
        len({(k.penalty, k.target) for k in keys}),
        len({k.strength for k in keys}),
        len({t.experiment for t in counted}),
        len(tests) - len(counted),
    )


def join(verdicts, how: str) -> str:
    """A claim's verdict from its parts' (module docstring)."""
    tested = [v for v in verdicts if v != NOT_TESTED]
    if not tested:
        return NOT_TESTED
    if how == "all":
        if CONTRADICTED in tested:
            return CONTRADICTED
        if NO_EFFECT in tested:
            return NO_EFFECT
        return (
            SUPPORTED
            if len(tested) == len(verdicts) and set(tested) == {SUPPORTED}
            else INCONCLUSIVE
        )
    if SUPPORTED in tested:
        return SUPPORTED
    if set(tested) == {CONTRADICTED}:
        return CONTRADICTED
    return (
        NO_EFFECT
        if NO_EFFECT in tested and set(tested) <= {NO_EFFECT, CONTRADICTED}
        else INCONCLUSIVE
    )


def claim_verdict(claim: Claim, part_verdicts) -> str:
    """A claim's verdict from its parts' (module docstring): the parts of one ``word`` joined
    with ``any`` first, then every word and lone part with the claim's ``join``."""
    words = {}
    for i, (part, verdict) in enumerate(zip(claim.parts, part_verdicts, strict=True)):
        words.setdefault(part.word or i, []).append(verdict)
    return join([join(v, "any") for v in words.values()], claim.join)


def verdicts(rows, claims=CLAIMS) -> list[Verdict]:
    """The verdict of every claim on ``rows`` (results.csv rows, :mod:`experiments.study.cells`)."""
    out = []
    for claim in claims:
        parts = []
        for part in claim.parts:
            tests = part_tests(rows, part)
            parts.append((part, part_verdict(part, tests), tests))
        out.append(Verdict(claim, claim_verdict(claim, [v for _, v, _ in parts]), tuple(parts)))
    return out


def unguarded(claims=CLAIMS) -> tuple:
    """``claims`` with every part's degenerate-cell guard off (the sensitivity table)."""
    return tuple(c._replace(parts=tuple(p._replace(guard=False) for p in c.parts)) for c in claims)


# ----------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------


def _p(p) -> str:
    return "—" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _median(t: Test, which: int) -> str:
    median = cells.fmt((t.cell, t.reference)[which].median)
    if t.beside is None:
        return median
    return f"{median} ({vocabulary.metric(t.beside[0]).short} {cells.fmt(t.beside[1 + which])})"


def _sesoi(t: Test) -> str:
    sesoi = vocabulary.metric(t.metric).sesoi
    if sesoi.scale == "units":
        return cells.fmt(sesoi.value)
    return (
        f"{cells.fmt(sesoi.value)} sd = {cells.fmt(t.margin)}"
        if t.margin is not None
        else f"{cells.fmt(sesoi.value)} sd"
    )


def _tests_table(tests: list[Test]) -> str:
    lines = [
        (
            "| experiment | metric | penalty | target | strength | n | cell median | "
            "reference median | Δ median [95 % CI] | d_z | SESOI | p claimed way (Holm) | "
            "p against (Holm) | p equivalent (Holm) | reading | unstable |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tests:
        c, d = t.comparison, t.comparison.difference
        ref = c.reference.penalty if c.reference.penalty != "none" else "none"
        sign = "†" if c.test == "sign" else ""
        lines.append(
            f"| {t.experiment} | {t.metric} | {c.key.penalty} | {c.key.target} | "
            f"{cells.fmt(c.key.strength)} | {t.cell.n} | {_median(t, 0)} | "
            f"{_median(t, 1)} ({ref}) | {cells.fmt(d['median'])} "
            f"[{cells.fmt(d['low'])}, {cells.fmt(d['high'])}] | {cells.fmt(c.d_z)} | "
            f"{_sesoi(t)} | {_p(t.holm_claimed)}{sign} | {_p(t.holm_against)}{sign} | "
            f"{_p(t.holm_equivalent)} | {reading(t)} | {t.unstable.k}/{t.unstable.n} |"
        )
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def family_line(tests: list[Test]) -> str:
    """The part's families and their error rates, printed with its verdict."""
    f = family(tests)
    left = f"; {f.left_out} degenerate left out" if f.left_out else ""
    return (
        f"Family: m = {f.m} comparisons ({_count(f.cells, 'penalty × target cell')} × "
        f"{_count(f.strengths, 'strength')} × {_count(f.experiments, 'experiment')}{left}). "
        f"Directional: {2 * f.m} one-sided "
        f"tests (claimed way and against), Holm, family-wise error ≤ {cells.ALPHA:g}. "
        f"Equivalence: {f.m} TOSTs within ±SESOI, Holm, family-wise error ≤ "
        f"{cells.ALPHA:g}."
    )


def _hits(tests: list[Test], what: str) -> list[str]:
    return [
        f"{t.experiment} {t.comparison.key.penalty} on {t.comparison.key.target} at "
        f"{cells.fmt(t.comparison.key.strength)}"
        for t in tests
        if reading(t) == what
    ]


def _cells_of(tests: list[Test]) -> str:
    notes = [
        f"{label}: {', '.join(hits)}"
        for label, hits in (
            ("claimed way", _hits(tests, "claimed way")),
            ("against", _hits(tests, "against")),
        )
        if hits
    ]
    return f" ({'; '.join(notes)})" if notes else ""


def summary_table(results: list[Verdict]) -> str:
    """One line per claim: its verdict and each part's, with its family and the cells that
    went the claimed way or against it."""
    lines = ["| claim | verdict | parts |", "|---|---|---|"]
    for v in results:
        parts = "; ".join(
            f"{part.name}: **{verdict}** [m = {family(tests).m}]" + _cells_of(tests)
            for part, verdict, tests in v.parts
        )
        lines.append(f"| {v.claim.statement} | **{v.verdict}** | {parts} |")
    return "\n".join(lines)


def sensitivity_table(rows, claims=CLAIMS) -> str:
    """Every claim with a guarded part: its verdicts with and without the guard."""
    lines = [
        "| claim | part | with the guard | without the guard | degenerate cells |",
        "|---|---|---|---|---|",
    ]
    guarded = [i for i, c in enumerate(claims) if any(p.guard for p in c.parts)]
    selected = tuple(claims[i] for i in guarded)
    for on, off in zip(verdicts(rows, selected), verdicts(rows, unguarded(selected))):
        for (part, with_guard, tests), (_, without, _) in zip(on.parts, off.parts):
            left = sum(t.degenerate for t in tests)
            lines.append(
                f"| {on.claim.statement} | {part.name} | {with_guard} | {without} | "
                f"{left if part.guard else '— (unguarded part)'} |"
            )
        lines.append(
            f"| {on.claim.statement} | **the claim** | **{on.verdict}** | **{off.verdict}** | |"
        )
    return "\n".join(lines)


def _markdown(rst: str) -> str:
    """This module's docstring prose as markdown (roles dropped, double backticks single)."""
    return re.sub(r":\w+:`", "`", rst).replace("``", "`")


def claims_markdown(rows, claims=CLAIMS) -> str:
    """The verdicts as markdown: the summary table, every part's family and comparisons, then
    the sensitivity of the guarded parts to the degenerate-cell guard."""
    results = verdicts(rows, claims)
    parts = [
        "# The claims: verdicts\n",
        "## Every claim and where it was read\n",
        (
            "Each claim's verdict, then its readings per model family and network (the same "
            "tests, split by what they penalise, each keeping its whole part's Holm "
            "adjustment), with the comparisons that decide each: Δ = cell − unregularised "
            "(or the part's reference), median over seeds [95 % bootstrap CI], d_z, the "
            "Holm-adjusted p that decides it (for *no effect*: the least clear equivalence "
            "test, within ±SESOI), n = seeds; m = the part's comparisons (2m directional "
            "tests).\n"
        ),
        headline_markdown(rows, claims) + "\n",
        "## One cell for the whole claim\n",
        (
            "The cells that go the claimed way in every part of a claim joined with `all` "
            "(a supported `all` claim may rest on different cells in different parts); a "
            "description beside the verdicts, added after the first look at study v2's "
            "runs (`whole_cells`):\n"
        ),
        whole_cells_markdown(rows, claims) + "\n",
        "## The rule\n",
        _markdown(__doc__.split("\n\n", 1)[1].strip()) + "\n",
        summary_table(results) + "\n",
    ]
    for v in results:
        parts.append(f"## {v.claim.statement} — **{v.verdict}**\n")
        for part, verdict, tests in v.parts:
            parts.append(
                f"### {part.name} ({', '.join(part.penalties)} vs "
                f"{part.versus}; predicted: {part.direction}) — **{verdict}**\n"
            )
            if tests:
                parts += [family_line(tests) + "\n", _tests_table(tests) + "\n"]
            else:
                parts.append("No runs.\n")
    parts.append(
        "Δ = cell − reference, paired by seed; † = exact sign test (a diverged run); "
        "SESOI = the metric's smallest effect of interest (sd: in standard deviations "
        "of Δ, its value in the metric's units beside it); reading = what the "
        "Holm-adjusted tests show at 0.05; unstable = k/n runs, " + cells.UNSTABLE_RULE + ".\n"
    )
    parts += [
        "## Sensitivity: the degenerate-cell guard\n",
        (
            "The guard was added after the first look at the data (module docstring); the "
            "verdicts of every guarded part and its claim with the guard and without it (every "
            "cell counted, the families re-adjusted):\n"
        ),
        sensitivity_table(rows, claims),
    ]
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------
# The headline: every claim and its per-family readings, with the deciding numbers
# ----------------------------------------------------------------------------

# The networks a claim is read on (issue #22's table): a comparison's model family (from
# its experiment) and the network its penalty is on.
_NETWORK = {
    "g": "generator",
    "d": "discriminator",
    "both": "G and D",
    "encoder": "encoder",
    "decoder": "decoder",
    "generators": "translators",
    "discriminators": "discriminators",
    "all": "all four networks",
}


def _model(experiment: str) -> str:
    if "cyclegan" in experiment:
        return "cycle GAN"
    return "VAE" if "vae" in experiment else "GAN"


def network_family(experiment: str, target: str) -> str:
    """``'GAN generator'``, ``'VAE encoder'``, ``'cycle GAN translators'``, ...: the network
    a penalty on ``target`` in ``experiment`` is on (``'VAE both'`` reads ``'VAE encoder and
    decoder'``)."""
    model = _model(experiment)
    if model == "VAE":
        return "VAE encoder and decoder" if target == "both" else f"VAE {target}"
    return f"{model} {_NETWORK[target]}"


# What a part's ``'*'`` (every experiment) reads: one experiment of each model family.
_EVERY_MODEL = ("digits_gan", "digits_vae", "digits_cyclegan")


def _applies(part: Part, name: str) -> bool:
    """Whether ``part`` reads the network family ``name`` (whether or not it has runs there)."""
    experiments = [x for e in part.metrics for x in (_EVERY_MODEL if e == "*" else (e,))]
    return any(
        network_family(e, t) == name for e in experiments for t in part.targets if t in _NETWORK
    )


def _family_of(t: Test) -> str:
    return network_family(t.experiment, t.comparison.key.target)


def deciding(verdict: str, tests: list[Test]) -> Test | None:
    """The comparison that decides a part's ``verdict``: the strongest claimed-way one
    (supported), the strongest against (contradicted), the least clearly equivalent
    (no effect: every comparison is at least that close to 0), or the nearest to a
    directional decision (inconclusive)."""
    counted = [t for t in tests if not t.degenerate and t.p_claimed is not None]
    if not counted:
        return None

    def p(x):
        return 1.0 if x is None else x

    if verdict == SUPPORTED:
        return min(
            (t for t in counted if reading(t) == "claimed way"), key=lambda t: p(t.holm_claimed)
        )
    if verdict == CONTRADICTED:
        return min((t for t in counted if reading(t) == "against"), key=lambda t: p(t.holm_against))
    if verdict == NO_EFFECT:
        return max(counted, key=lambda t: p(t.holm_equivalent))
    return min(counted, key=lambda t: min(p(t.holm_claimed), p(t.holm_against)))


def deciding_numbers(t: Test) -> str:
    """One comparison as the headline states it: where, Δ median [95 % CI], d_z, the Holm p
    that decides it (the equivalence bound ±SESOI for a no-effect reading), seeds."""
    c, d = t.comparison, t.comparison.difference
    what = reading(t)
    if what in ("equivalent", TRIVIAL):
        p = f"TOST within ±{_sesoi(t)}: Holm p {_p(t.holm_equivalent)}"
    elif what == "against":
        p = f"Holm p {_p(t.holm_against)} against"
    else:
        p = f"Holm p {_p(t.holm_claimed)} claimed way"
        if what == "—":
            p += f", {_p(t.holm_against)} against"
    return (
        f"{c.key.penalty} on {c.key.target} at e = {cells.fmt(c.key.strength)}, "
        f"{t.experiment}: {t.metric} Δ {cells.fmt(d['median'])} "
        f"[{cells.fmt(d['low'])}, {cells.fmt(d['high'])}], d_z {cells.fmt(c.d_z)}, {p}, "
        f"n = {t.cell.n}"
    )


def family_verdicts(v: Verdict) -> list[tuple]:
    """``[(network family, verdict, [(part, part verdict, tests), ...]), ...]``: ``v``'s tests
    split by :func:`network_family` and read by the same rule, each keeping its whole part's
    Holm adjustment (a subset of an adjusted family is no less strict). A family is listed
    where some part has comparisons on it; a part that reads that network but has no runs
    there counts as *not tested* (so an ``all`` claim cannot be supported without it), a part
    that does not read it (r_v on a VAE) is left out of its join."""
    names = sorted({_family_of(t) for _, _, tests in v.parts for t in tests})
    out = []
    for name in names:
        parts = []
        for part, _, tests in v.parts:
            mine = [t for t in tests if _family_of(t) == name]
            if mine or _applies(part, name):
                parts.append((part, part_verdict(part, mine), mine))
        claim = v.claim._replace(parts=tuple(p for p, _, _ in parts))
        out.append((name, claim_verdict(claim, [pv for _, pv, _ in parts]), parts))
    return out


def _decided_by(claim_verdict_: str, parts) -> str:
    """The deciding comparisons of the parts whose verdict is the claim's (all of them when
    none is), one per part."""
    chosen = [x for x in parts if x[1] == claim_verdict_] or list(parts)
    lines = []
    for part, verdict, tests in chosen:
        t = deciding(verdict, tests)
        if t is not None:
            lines.append(f"*{part.name}* ({verdict}, m = {family(tests).m}): {deciding_numbers(t)}")
    return "<br>".join(lines) or "—"


def whole_cells(v: Verdict) -> list[tuple]:
    """``[(experiment, cell key, unstable fraction, parts read), ...]``: the cells that go
    the claimed way in *every* part of an ``all`` claim that reads their experiment, where
    at least two parts do (a cell read by one part says nothing about the whole claim).

    A supported ``all`` claim may rest on different cells in different parts (one copies
    less, another generalises better); these are the cells that carry the whole claim at
    once. (Added after the first look at study v2's runs, where the strongest
    "memorises less" cells were collapsed generators; a description beside the verdict,
    not a second test.)
    """
    by_cell = {}
    for part, _, tests in v.parts:
        for t in tests:
            by_cell.setdefault((t.experiment, t.comparison.key), {})[part.name] = t
    out = []
    for (experiment, key), tests in by_cell.items():
        parts = [p for p, _, ts in v.parts if any(t.experiment == experiment for t in ts)]
        if len(parts) >= 2 and all(
            p.name in tests and reading(tests[p.name]) == "claimed way" for p in parts
        ):
            out.append((experiment, key, next(iter(tests.values())).unstable, len(parts)))
    return sorted(out, key=lambda x: (x[0], x[1].penalty, x[1].target, x[1].strength))


def whole_cells_markdown(rows, claims=CLAIMS) -> str:
    """:func:`whole_cells` of every ``all`` claim with more than one part."""
    lines = []
    for v in verdicts(rows, claims):
        if v.claim.join != "all" or len(v.claim.parts) < 2:
            continue
        found = whole_cells(v)
        listed = "; ".join(
            f"{e} {k.penalty} on {k.target} at e = {cells.fmt(k.strength)} "
            f"({n} parts; unstable {u.k}/{u.n})"
            for e, k, u, n in found
        )
        lines.append(f"- {v.claim.statement} **{len(found)}**{': ' + listed if listed else ''}")
    return "\n".join(lines)


def headline_markdown(rows, claims=CLAIMS) -> str:
    """Every claim with its verdict and its per-family readings, each with the comparisons
    that decide it (Δ median [95 % CI], d_z, Holm p or the equivalence bound, seeds) and
    its parts' family sizes m (the Holm families are the whole part's)."""
    steps = {}
    for r in rows:
        if r.get("steps") not in (None, ""):
            steps.setdefault(r["config.name"], int(float(r["steps"])))
    lines = [
        "| claim | read on | verdict | decided by | steps |",
        "|---|---|---|---|---|",
    ]
    for v in verdicts(rows, claims):
        experiments = sorted({t.experiment for _, _, tests in v.parts for t in tests})
        length = ", ".join(f"{e} {steps[e]:,}" for e in experiments if e in steps) or "—"
        lines.append(
            f"| {v.claim.statement} | all | **{v.verdict}** | {_decided_by(v.verdict, v.parts)} "
            f"| {length} |"
        )
        for name, verdict, parts in family_verdicts(v):
            lines.append(f"| | {name} | {verdict} | {_decided_by(verdict, parts)} | |")
    return "\n".join(lines)


def claims_of(workdir) -> str:
    """:func:`claims_markdown` of a results directory's ``results.csv``.

    Raises:
      FileNotFoundError: ``workdir`` has no ``results.csv``.
    """
    rows, _ = tables.load_results(workdir)
    return claims_markdown(rows)
