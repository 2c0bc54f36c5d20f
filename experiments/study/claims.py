"""The study's verdicts on the published claims (``python -m experiments.claims --workdir DIR``).

Each claim is declared here, before the data (:data:`CLAIMS`): which
penalties on which networks, in which experiments, scored by which metric,
paired by seed with which reference, and the direction the claim predicts.
Every strength of the grid is compared; the comparisons of one part of a
claim form one family, Holm-adjusted together. The paired statistics are
those of :mod:`experiments.study.cells` (median Δ with its 95 % bootstrap CI; the
paired t-test, or the exact sign test where a diverged run makes Δ
infinite; d_z = mean Δ / sd Δ).

Verdict of a part (declared before the data):

- **supported**: at least one comparison goes the claimed way with a
  Holm-adjusted p < 0.05;
- **refuted**: none does, and every comparison's CI of Δ excludes the claimed
  direction (at no tested strength or network does the effect show, even
  within its interval);
- **inconclusive**: otherwise; **not tested**: the runs are not there.

Parts about the samples (smoothness, diversity) count only cells that still
train: a cell more than half of whose runs are unstable (diverged,
oscillating, collapsed or a final FD over twice the unregularised median:
`experiments.study.cells.UNSTABLE_RULE`) is listed as *degenerate* and left out of
the Holm family and the verdict -- the flattest samples come from generators
that collapsed to one blurry output, which is not what "smoother" claims.
(This guard was added after the first look at the digits GAN's runs, where
the only significant smoothing was such a cell; the verdicts say so.)

A claim joins its parts with ``all`` (every part must hold: "sparse *and*
more diverse") or ``any`` (alternative readings of one word: "stabilises"):
``all`` is refuted when one part is refuted and supported when every part is;
``any`` is supported when one part is and refuted when every part is.
"""
import re
from typing import NamedTuple

from experiments.study import cells, tables, vocabulary

SUPPORTED, REFUTED, INCONCLUSIVE, NOT_TESTED = ("supported", "refuted", "inconclusive",
                                                "not tested")
GENERATOR_SIDE = ("g", "both", "decoder")


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
    """
    name: str
    metrics: dict
    direction: str
    penalties: tuple
    targets: tuple
    versus: str = "none"
    guard: bool = False


class Claim(NamedTuple):
    """A published claim: its parts and how they join (``'all'`` or ``'any'``)."""
    name: str
    statement: str
    parts: tuple
    join: str = "all"


_DIVERSITY = {"digits_gan": "recall", "ring8_gan": "reverse_kl", "grid25_gan": "reverse_kl",
              "stacked_digits_gan": "modes"}
_IMAGES = ("digits_gan", "digits_cgan", "digits_vae", "stacked_digits_gan")
_L1 = ("l1", "prox_l1")
_L2 = ("l2", "weight_decay")

CLAIMS = (
    Claim("weight_decay_stabilises", "Weight decay stabilises GAN training.", (
        Part("better final FD where training is unstable", {"digits_gan_unstable": "fd"},
             "lower", _L2, ("d", "g", "both")),
        Part("smaller FD rebound (second-half FD climb)",
             {"digits_gan_unstable": "fd_rebound", "digits_gan": "fd_rebound"},
             "lower", _L2, ("d", "g", "both")),
    ), join="any"),
    Claim("l1_sparse_diverse", "L1 makes generators sparse and samples more diverse.", (
        Part("sparser generator (exactly-zero weights)", {"*": "sparsity"}, "higher", _L1,
             GENERATOR_SIDE),
        Part("more diverse samples (recall; reverse KL of the mode histogram; modes)",
             _DIVERSITY, "better", _L1, GENERATOR_SIDE, guard=True),
    )),
    Claim("l2_smoother", "L2 makes samples smoother.", (
        Part("smoother samples (lower total variation)", dict.fromkeys(_IMAGES, "sample_tv"),
             "lower", _L2, GENERATOR_SIDE, guard=True),
    )),
    Claim("elastic_net_balances", "Elastic net balances the two (L1's sparsity, L2's smoothness).", (
        Part("sparser than L2 at the same target and strength", {"*": "sparsity"}, "higher",
             ("elastic_net",), GENERATOR_SIDE, versus="l2"),
        Part("smoother than proximal L1 at the same target and strength",
             dict.fromkeys(_IMAGES, "sample_tv"), "lower", ("elastic_net",), GENERATOR_SIDE,
             versus="prox_l1", guard=True),
    )),
)


class Test(NamedTuple):
    """One comparison of a part: a cell of ``experiment`` against its reference."""
    experiment: str
    metric: str
    comparison: cells.Comparison
    cell: cells.Cell
    reference: cells.Cell
    favours: bool  # goes the claimed way (by the sign the test judges)
    unstable: cells.Fraction  # of the cell's runs (cells.UNSTABLE_RULE)
    degenerate: bool = False  # a guarded part's cell with more than half its runs unstable


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


def part_tests(rows, part: Part) -> list[Test]:
    """Every comparison of ``part`` in ``rows`` (all experiments), Holm-adjusted together."""
    tests = []
    for name in cells.experiments_present(rows):
        metric = _metric(part, name)
        mine = cells.experiment_rows(rows, name)
        if metric is None or not cells.has_metric(mine, metric):
            continue
        by_key = cells.seed_values(mine, metric)
        table = cells.cells(mine, metric)
        flags = cells.instability(mine)
        none = cells.baseline_keys(mine, metric).get("none")
        for key in sorted(by_key, key=lambda k: (k.penalty, k.target, k.strength)):
            if (key.regulariser != "none" or key.penalty not in part.penalties
                    or key.target not in part.targets):
                continue
            reference = none if part.versus == "none" else key._replace(penalty=part.versus)
            if reference not in by_key:
                continue
            c = cells.compare(key, reference, by_key)
            if c.difference is None:
                continue
            sign = cells.judged_sign(c, cells.paired(by_key[key], by_key[reference]))
            favours = sign < 0 if _lower(part, metric) else sign > 0
            unstable = cells.unstable_fraction(cells.runs_of(mine, key), flags)
            degenerate = part.guard and 2 * unstable.k > unstable.n
            tests.append(Test(name, metric, c, table[key], table[reference], favours, unstable,
                              degenerate))
    adjusted = cells.holm_adjusted([t.comparison for t in tests],
                                   [not t.degenerate for t in tests])
    return [t._replace(comparison=c) for t, c in zip(tests, adjusted)]


def _supports(t: Test) -> bool:
    """Whether a test goes the claimed way at a Holm-adjusted p < 0.05."""
    return t.favours and t.comparison.p_holm is not None and t.comparison.p_holm < cells.ALPHA


def part_verdict(part: Part, tests: list[Test]) -> str:
    """The part's verdict from its tests (module docstring); degenerate cells do not count."""
    if not tests:
        return NOT_TESTED
    tests = [t for t in tests if not t.degenerate]
    if not tests:
        return INCONCLUSIVE
    if any(_supports(t) for t in tests):
        return SUPPORTED
    excluded = [t.comparison.difference["low"] >= 0 if _lower(part, t.metric)
                else t.comparison.difference["high"] <= 0 for t in tests]
    return REFUTED if all(excluded) else INCONCLUSIVE


def join(verdicts, how: str) -> str:
    """A claim's verdict from its parts' (module docstring)."""
    tested = [v for v in verdicts if v != NOT_TESTED]
    if not tested:
        return NOT_TESTED
    if how == "all":
        if REFUTED in tested:
            return REFUTED
        return SUPPORTED if len(tested) == len(verdicts) and set(tested) == {SUPPORTED} \
            else INCONCLUSIVE
    if SUPPORTED in tested:
        return SUPPORTED
    return REFUTED if len(tested) == len(verdicts) and set(tested) == {REFUTED} else INCONCLUSIVE


def verdicts(rows, claims=CLAIMS) -> list[Verdict]:
    """The verdict of every claim on ``rows`` (results.csv rows, :mod:`experiments.study.cells`)."""
    out = []
    for claim in claims:
        parts = []
        for part in claim.parts:
            tests = part_tests(rows, part)
            parts.append((part, part_verdict(part, tests), tests))
        out.append(Verdict(claim, join([v for _, v, _ in parts], claim.join), tuple(parts)))
    return out


# ----------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------



def _p(p) -> str:
    return "—" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _tests_table(tests: list[Test]) -> str:
    lines = ["| experiment | metric | penalty | target | strength | n | cell median | "
             "reference median | Δ median [95 % CI] | d_z | p (Holm) | claimed way | unstable |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in tests:
        c, d = t.comparison, t.comparison.difference
        ref = c.reference.penalty if c.reference.penalty != "none" else "none"
        lines.append(
            f"| {t.experiment} | {t.metric} | {c.key.penalty} | {c.key.target} | "
            f"{cells.fmt(c.key.strength)} | {t.cell.n} | {cells.fmt(t.cell.median)} | "
            f"{cells.fmt(t.reference.median)} ({ref}) | {cells.fmt(d['median'])} "
            f"[{cells.fmt(d['low'])}, {cells.fmt(d['high'])}] | {cells.fmt(c.d_z)} | "
            f"{_p(c.p_holm)}{'†' if c.test == 'sign' else ''} | {'yes' if t.favours else 'no'} | "
            f"{t.unstable.k}/{t.unstable.n}{' degenerate' if t.degenerate else ''} |")
    return "\n".join(lines)


def summary_table(results: list[Verdict]) -> str:
    """One line per claim: its verdict and each part's, with the supporting cells."""
    lines = ["| claim | verdict | parts |", "|---|---|---|"]
    for v in results:
        parts = "; ".join(f"{part.name}: **{verdict}**" + _support(tests)
                          for part, verdict, tests in v.parts)
        lines.append(f"| {v.claim.statement} | **{v.verdict}** | {parts} |")
    return "\n".join(lines)


def _support(tests: list[Test]) -> str:
    hits = [t for t in tests if _supports(t)]
    if not hits:
        return ""
    return " (" + ", ".join(f"{t.experiment} {t.comparison.key.penalty} on "
                            f"{t.comparison.key.target} at {cells.fmt(t.comparison.key.strength)}"
                            for t in hits) + ")"


def _markdown(rst: str) -> str:
    """This module's docstring prose as markdown (roles dropped, double backticks single)."""
    return re.sub(r":\w+:`", "`", rst).replace("``", "`")


def claims_markdown(rows, claims=CLAIMS) -> str:
    """The verdicts as markdown: the summary table, then every part's comparisons."""
    results = verdicts(rows, claims)
    parts = ["# The claims: verdicts\n", _markdown(__doc__.split("\n\n", 1)[1].strip()) + "\n",
             summary_table(results) + "\n"]
    for v in results:
        parts.append(f"## {v.claim.statement} — **{v.verdict}**\n")
        for part, verdict, tests in v.parts:
            parts.append(f"### {part.name} ({', '.join(part.penalties)} vs "
                         f"{part.versus}; predicted: {part.direction}) — **{verdict}**\n")
            parts.append(_tests_table(tests) + "\n" if tests else "No runs.\n")
    parts.append("Δ = cell − reference, paired by seed; † = exact sign test (a diverged run); "
                 "the Holm family is the part's comparisons across experiments (degenerate "
                 "cells left out); unstable = k/n runs, " + cells.UNSTABLE_RULE + ".")
    return "\n".join(parts) + "\n"


def claims_of(workdir) -> str:
    """:func:`claims_markdown` of a results directory's ``results.csv``.

    Raises:
      FileNotFoundError: ``workdir`` has no ``results.csv``.
    """
    rows, _ = tables.load_results(workdir)
    return claims_markdown(rows)
