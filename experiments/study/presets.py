"""The study's presets as data: per preset, the sweep grids of each experiment.

``python -m experiments.figures --preset P`` (:mod:`experiments.study.runner`)
calibrates each experiment (:mod:`regan_jax.calibration`), trains every grid of ``PRESETS[P]``
(members that share a compiled program as one vmapped program), scores the
null references and draws the figures of FIGURES.md. A preset differs from
another only in these numbers -- the figures code has no per-preset branches.

Strengths are *effective* (``units='effective'``): 0.1, 1 and 10 mean a
penalty gradient at 10 %, 100 % and 1,000 % of the loss gradient (coupled)
or a total shrinkage over the run of 0.1, 1 and 10 weight sizes
(decoupled, proximal); max-norm radii are multiples of the initial unit norm.

- ``smoke``: for tests (tiny widths, 12 steps; the numbers mean nothing):
  every figure from the fewest compiled programs; the digits GAN with
  protocol v2, at the full training set and at 100 images
  (``digits_gan_small``: figure 13's second training size).
- ``cpu``: study v2 (issue #22) on a 2-core CPU, every run scored by
  protocol v2: the claim-bearing weight penalties on G, D and both of the
  digits GAN and on the VAE's encoder, decoder and both, each at full and at
  a small training set; the three unstable settings with R1 as the
  reference, at the seeds the stability claim's power plan asks for
  (:data:`V2_POWER`); the cycle GAN's translators and discriminators; ring8
  for diversity; the decisive cells on real 28x28 images
  (``fashion_mnist_gan_small``). Declared, not yet run, and not yet sized to
  its budget: ``python -m experiments.study.plan`` prices it. (The first
  study's ``cpu`` preset, 660 runs, is the one at commit 465b9db.)
- ``full``: the same protocol for a GPU: 8 seeds, six strengths, the full
  factorial on every experiment, twice the measured lengths, Fashion-MNIST;
  the unstable setting at the seeds its claim needs for 80 % power
  (:class:`PowerPlan`, from the ``cpu`` study's results as the pilot).
- ``length``: the length ablation (declared, not yet run): one penalty
  (weight decay on both networks) against the unregularised runs at e = 1,
  at the digits GAN's measured length and at twice it, as separate
  experiments (``digits_gan_length1x`` / ``_length2x``). An effective
  strength of a decoupled or proximal penalty is a shrinkage over the whole
  run, so at twice the length e = 1 is half the strength per step
  (:func:`experiments.study.members.strength_per_step`): whether a verdict
  changes between the two says whether it depends on the length.

Every grid states its seeds and why (``seeds_reason``): a budget, or a
:class:`PowerPlan` that :func:`grid_seeds` resolves with
:func:`regan_jax.stats.seeds_for_power` on a pilot's paired differences.
"""

import pathlib
from typing import NamedTuple

from experiments.study import cells, results
from experiments.study.vocabulary import BASELINES, WEIGHT_PENALTIES
from regan_jax import stats

# The first study's runs (issue #13's cpu preset), the pilot of a PowerPlan.
PILOT = pathlib.Path(__file__).resolve().parents[2] / "docs" / "study_v1" / "results.csv"


class PowerPlan(NamedTuple):
    """Seeds chosen by power: the pilot effect a grid is sized for and the Holm step it faces.

    :func:`grid_seeds` reads the pilot's paired differences of ``metric``
    between ``penalty`` on ``target`` at ``strength`` and the unregularised
    runs of ``experiment`` (same seeds), and asks
    :func:`regan_jax.stats.seeds_for_power` for ``power`` at Holm's step
    ``holm_rank`` of a family of ``family_size`` tests (the claim's
    directional family in the grid that uses the plan: 2 × its comparisons).

    The pilot effect is chosen after the pilot (the best of its cells), so
    even corrected for small samples it is optimistic, and rank 1 is the most
    lenient Holm step: the seeds are a lower bound.
    """

    experiment: str
    metric: str
    penalty: str
    target: str
    strength: float
    family_size: int
    holm_rank: int = 1
    power: float = 0.8
    pilot: str = str(PILOT)


def pilot_differences(plan: PowerPlan):
    """The pilot's paired differences (cell − unregularised, by seed) of ``plan``."""
    rows = cells.experiment_rows(results.read_csv(plan.pilot), plan.experiment)
    by_key = cells.seed_values(rows, plan.metric)
    cell = cells.CellKey("none", plan.penalty, plan.target, plan.strength)
    none = cells.baseline_keys(rows, plan.metric).get("none")
    if cell not in by_key or none is None:
        raise ValueError(
            f"the pilot {plan.pilot} has no {plan.metric} of {cell} and the "
            f"unregularised runs of {plan.experiment!r}"
        )
    return cells.paired(by_key[cell], by_key[none])


def grid_seeds(grid) -> tuple[tuple, str]:
    """``(seeds, reason)`` of a grid: its own, or those its :class:`PowerPlan` asks for."""
    plan = grid.seeds
    if not isinstance(plan, PowerPlan):
        return tuple(plan), grid.seeds_reason
    chosen = stats.seeds_for_power(
        pilot_differences(plan), cells.ALPHA, plan.power, plan.holm_rank, plan.family_size
    )
    n = chosen["seeds"]
    reason = (
        f"{n} seeds: {plan.power:.0%} power for a one-sided paired t-test at Holm's step "
        f"{plan.holm_rank} of {plan.family_size} (alpha' = {chosen['alpha_step']:.3g}) "
        f"against the pilot's {plan.metric} effect of {plan.penalty} on {plan.target} at "
        f"e = {plan.strength:g} in {plan.experiment}: d_z {chosen['d_z']:.2f} over "
        f"{chosen['pilot_n']} seeds, {chosen['d_z_corrected']:.2f} corrected for small "
        f"samples (a lower bound: the best pilot cell)"
    )
    return tuple(range(n)), reason


class StudyGrid(NamedTuple):
    """One sweep grid of an experiment (see :func:`experiments.study.members.grid`).

    Attributes:
      config: the experiment, ``NAME`` or ``NAME:smoke`` (``experiments/configs``).
      penalties: names from :data:`experiments.study.vocabulary.PENALTIES` (the baselines too).
      targets: networks (or ``'both'``) that the swept penalties go on.
      strengths: the grid of strengths (effective or raw λ, by ``units``).
      radii: the grid of max-norm radii (effective: multiples of the initial
        unit norm; raw: r).
      seeds: the seeds of every cell, or a :class:`PowerPlan` (:func:`grid_seeds`).
      overrides: ``(dotted key, value)`` pairs applied to the base config.
      units: ``'effective'`` (calibrated first) or ``'raw'``.
      on: the regulariser every member carries (``'r1'``: penalties on top of R1).
      learning_rates: spectral normalisation's own learning-rate sweep (empty:
        the config's rate).
      calibration_steps: steps of each calibration run (2 seeds).
      seeds_reason: why these seeds (a PowerPlan states its own).
      max_members: the largest group of its experiment trained as one vmapped
        program (the smallest of the experiment's grids counts,
        :func:`max_members`); 1 trains member by member.
    """

    config: str
    penalties: tuple
    targets: tuple
    strengths: tuple
    radii: tuple
    seeds: tuple
    overrides: tuple = ()
    units: str = "effective"
    on: str = "none"
    learning_rates: tuple = ()
    calibration_steps: int = 200
    seeds_reason: str = ""
    max_members: int = 64


def max_members(preset: str, experiment: str) -> int:
    """The largest vmapped group of ``experiment`` in ``preset`` (its grids' smallest)."""
    return min(g.max_members for g in PRESETS[preset][experiment])


EFFECTIVE = (0.1, 1.0, 10.0)
EFFECTIVE_RADII = (0.5, 1.0, 2.0)
SEEDS = (0, 1, 2, 3, 4)
FULL_SEEDS = tuple(range(8))
FULL_EFFECTIVE = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
SMOKE_REASON = "a smoke test: the numbers mean nothing"
CPU_REASON = (
    "5 seeds: the 2-core CPU budget (<= 2 h), not chosen by power: at the best "
    "observed effect a cell needs about 10"
)
FULL_REASON = "8 seeds: the GPU budget, not chosen by power"
# Study v2 (issue #22). The penalties the generalisation claim's articles name (weight
# decay, coupled L2, proximal L1) on every network; L1 and elastic net where the sparsity
# and "balances" claims need them (group L1 and max-norm, which no claim names, are the
# full preset's).
_V2_SHORT = ("l2", "weight_decay", "prox_l1")
V2_SEEDS = tuple(range(8))
# One strength, declared before the data: e = 1, the calibrated unit (a penalty gradient as
# large as the loss gradient; one weight size of shrinkage over the run). The first study's
# effects were there (0.1 rarely moved a metric, 10 hurt almost everywhere), and one
# strength leaves no choice among strengths to correct for; the full preset sweeps six.
V2_STRENGTHS = (1.0,)
# ... and e = 0.1 for the penalties on a GAN's generator (G and both) in the two digits GANs
# of the generalisation claim: added after the first look at the e = 1 runs, where every
# generator-side cell of digits_gan had more than half its runs unstable (l2 on G: recall
# 0, 8/8), so the guarded claims about generators (smoother, more diverse) had no cell left
# to read. The families grow accordingly (the verdicts are existential in the strength).
V2_GENERATOR_STRENGTHS = (0.1,)
# The generalisation claim's largest parts (memorisation, the gap, held-out quality) span
# the GAN and the VAE: 3 penalties x 3 targets at e = 1 in each of the four experiments,
# the same 3 on G and both at e = 0.1 in the two GANs, and L1 and elastic net on G of the
# digits GAN at both strengths: 36 + 12 + 4 = 52 comparisons, 104 directional tests
# (tests/test_experiments.py counts them from CLAIMS and these grids).
V2_FAMILY = 104
V2_REASON = (
    "8 seeds: the 2-core CPU budget, not chosen by power (no pilot has these grids' protocol-v2 "
    f"effects); at Holm's first step of {V2_FAMILY} tests they give 80 % power for d_z >= 2.4"
)
# The cycle GAN's claim (translators_keep_content): 10 seeds, of which 5-9 were added after
# the first look at seeds 0-4 (disclosed in docs/results.md, where the 5-seed reading stands
# beside: adding seeds after a look is optional stopping).
V2_CYCLE_SEEDS = tuple(range(10))
V2_CYCLE_REASON = (
    "10 seeds, a budget: 5 declared, 5 added after the first look once the cycle GAN trained "
    "15x faster (not chosen by power; the 5-seed reading is reported beside)"
)
# Study v2's stability claim: L2 and weight decay on D and both in the optimiser and data
# settings (and on G, which the data setting trains for generalisation, where G and both
# are also at e = 0.1), weight decay on both in the capacity one (4 + 10 + 1 comparisons,
# 30 directional tests),
# sized for the cpu study's largest FD effect in the optimiser setting (weight decay on
# both at e = 1).
V2_POWER = PowerPlan("digits_gan_unstable", "fd", "weight_decay", "both", 1.0, family_size=30)
# The unstable setting's stability claim in the full preset: weight decay and L2 on G, D and
# both at six strengths, 36 comparisons, so 72 directional tests; sized for the cpu study's
# largest FD effect there (weight decay on both at e = 1).
UNSTABLE_POWER = PowerPlan(
    "digits_gan_unstable",
    "fd",
    "weight_decay",
    "both",
    1.0,
    family_size=2 * 2 * 3 * len(FULL_EFFECTIVE),
)


def _quiet(steps: int, fd_points: int, num_samples: int) -> tuple:
    """Overrides of a study run: its length, ``fd_points`` in-training FDs, final sample count.

    No intermediate sample grids or checkpoints: a vmapped group is short, and
    a sweep reuses finished members, so an interrupted preset loses at most
    the group in flight. Every study run is scored by protocol v2
    (``eval.protocol_v2``: the generalisation, D-overfitting, smoothness and
    near-zero scores of issue #21) -- the first study's runs (``docs/study_v1/``,
    run before protocol v2) were not.
    """
    return (
        ("steps", steps),
        ("eval.protocol_v2", True),
        ("eval.fd_every", max(1, steps // fd_points) if fd_points else 0),
        ("eval.num_samples", num_samples),
        ("log.every", max(1, steps // 20)),
        ("log.samples_every", 0),
        ("log.checkpoint_every", 0),
    )


_SMOKE = (
    ("eval.num_samples", 100),
    ("eval.fd_samples", 100),
    ("log.every", 4),
    ("log.samples_every", 0),
    ("log.checkpoint_every", 0),
)
_SMOKE_NO_FD = (*_SMOKE, ("eval.fd_every", 0))
# The digits GAN's smoke grids that figures 10 and 13 draw score protocol v2 (its evaluation
# costs several times a smoke member's training), also at a small training set.
_SMOKE_V2 = (*_SMOKE, ("eval.protocol_v2", True))
SMOKE_SMALL_TRAIN = 100


def _smoke(config: str, target: str) -> tuple:
    """One raw-unit prox L1 grid: the experiment's figure from one compiled program."""
    return (
        StudyGrid(
            f"{config}:smoke",
            ("prox_l1",),
            (target,),
            (1e-2, 1.0),
            (1.0,),
            (0,),
            _SMOKE_NO_FD,
            units="raw",
            seeds_reason=SMOKE_REASON,
        ),
    )


def _gan(
    config,
    steps,
    fd_points,
    num_samples,
    *,
    seeds=SEEDS,
    targets=("g", "d", "both"),
    penalties=WEIGHT_PENALTIES,
    baselines=BASELINES,
    strengths=EFFECTIVE,
    learning_rates=(),
    on_r1=("weight_decay", "l2"),
    extra=(),
    seeds_reason=CPU_REASON,
) -> tuple:
    """An unconditional or conditional GAN's grids: penalties, baselines, penalties on R1."""
    overrides = (*_quiet(steps, fd_points, num_samples), *extra)
    grids = [
        StudyGrid(
            config,
            (*baselines, *penalties),
            targets,
            strengths,
            EFFECTIVE_RADII,
            seeds,
            overrides,
            learning_rates=learning_rates,
            seeds_reason=seeds_reason,
        )
    ]
    if on_r1:
        grids.append(
            StudyGrid(
                config,
                on_r1,
                ("d",),
                strengths,
                EFFECTIVE_RADII,
                seeds,
                overrides,
                on="r1",
                seeds_reason=seeds_reason,
            )
        )
    return tuple(grids)


def _v2(
    config,
    steps,
    seeds,
    reason,
    *blocks,
    baselines=("none",),
    fd_points=10,
    samples=2000,
    max_members=64,
) -> tuple:
    """Study v2's grids of one experiment: one per ``(penalties, targets, strengths)`` block,
    ``baselines`` in the first (trained once whatever the targets); ``steps`` long,
    ``fd_points`` in-training FDs, ``samples`` scored at the end (:func:`_quiet`)."""
    return tuple(
        StudyGrid(
            config,
            (*(baselines if i == 0 else ()), *penalties),
            targets,
            strengths,
            (),
            seeds,
            _quiet(steps, fd_points, samples),
            seeds_reason=reason,
            max_members=max_members,
        )
        for i, (penalties, targets, strengths) in enumerate(blocks)
    )


def _length(times: int) -> tuple:
    """The length ablation's grid at ``times`` the digits GAN's measured length (5,000 steps)."""
    steps = 5000 * times
    return (
        StudyGrid(
            "digits_gan",
            ("none", "weight_decay"),
            ("both",),
            (1.0,),
            (),
            SEEDS,
            (("name", f"digits_gan_length{times}x"), *_quiet(steps, 10, 2000)),
            seeds_reason=CPU_REASON,
        ),
    )


PRESETS = {
    "smoke": {
        "digits_gan": (
            StudyGrid(
                "digits_gan:smoke",
                ("none", "prox_l1", "spectral_norm", "r1"),
                ("g", "both"),
                (0.1, 10.0),
                (1.0,),
                (0, 1),
                _SMOKE_V2,
                calibration_steps=2,
                seeds_reason=SMOKE_REASON,
            ),
            StudyGrid(
                "digits_gan:smoke",
                ("prox_l1",),
                ("both",),
                (1.0,),
                (1.0,),
                (0, 1),
                _SMOKE,  # figures 10 and 13 do not draw penalties on top of R1
                on="r1",
                calibration_steps=2,
                seeds_reason=SMOKE_REASON,
            ),
        ),
        # Figure 13's second training size: one program, raw units (no calibration), one
        # seed (a protocol-v2 evaluation costs far more than a smoke run's 12 steps).
        "digits_gan_small": (
            StudyGrid(
                "digits_gan:smoke",
                ("prox_l1",),
                ("both",),
                (1e-2, 1.0),
                (1.0,),
                (0,),
                (
                    ("name", "digits_gan_small"),
                    ("data.train_size", SMOKE_SMALL_TRAIN),
                    *_SMOKE_V2,
                ),
                units="raw",
                seeds_reason=SMOKE_REASON,
            ),
        ),
        "ring8_gan": _smoke("ring8_gan", "g"),
        "grid25_gan": _smoke("grid25_gan", "g"),
        "stacked_digits_gan": _smoke("stacked_digits_gan", "g"),
        "digits_vae": _smoke("digits_vae", "decoder"),
        "digits_cgan": _smoke("digits_cgan", "g"),
        "digits_cyclegan": _smoke("digits_cyclegan", "generators"),
    },
    # Study v2 (issue #22), sized for <= 2.5 h on a 2-core CPU with ``--jobs 2``
    # (``python -m experiments.study.plan --preset cpu --jobs 2 --measured DIR``
    # prices it from measured runs). Every run is scored by protocol v2, at one
    # pre-declared strength (V2_STRENGTHS). In priority order: an interrupted
    # run still answers the first claims.
    "cpu": {
        # Generalisation, sparsity, diversity, smoothness and elastic net: the
        # generalisation penalties on G, D and both of the stable digits GAN, and
        # L1 and elastic net (sparsity, "balances") on G.
        "digits_gan": _v2(
            "digits_gan",
            5000,
            V2_SEEDS,
            V2_REASON,
            (_V2_SHORT, ("g", "d", "both"), V2_STRENGTHS),
            (("l1", "elastic_net"), ("g",), (*V2_GENERATOR_STRENGTHS, *V2_STRENGTHS)),
            (_V2_SHORT, ("g", "both"), V2_GENERATOR_STRENGTHS),
        ),
        # The three unstable settings (stability; the small training set also
        # the generalisation claim's data-limited GAN), R1 as the reference, at
        # the seeds the stability claim's power plan asks for; the small
        # training set's generator-side cells also at V2_GENERATOR_STRENGTHS.
        "digits_gan_small_data": _v2(
            "digits_gan_small_data",
            5000,
            V2_POWER,
            "",
            (_V2_SHORT, ("g", "d", "both"), V2_STRENGTHS),
            (_V2_SHORT, ("g", "both"), V2_GENERATOR_STRENGTHS),
            baselines=("none", "r1"),
        ),
        "digits_gan_unstable": _v2(
            "digits_gan_unstable",
            5000,
            V2_POWER,
            "",
            (("l2", "weight_decay"), ("d", "both"), V2_STRENGTHS),
            baselines=("none", "r1"),
        ),
        # D 1,024 units wide: a member costs about 7 of the others' (100-170 s of
        # training on one core, measured), so only the first study's decisive cell,
        # weight decay on both, at a budget of 5 seeds (not chosen by power; R1's
        # reference is the other two settings').
        "digits_gan_capacity": _v2(
            "digits_gan_capacity",
            5000,
            SEEDS,
            CPU_REASON,
            (("weight_decay",), ("both",), V2_STRENGTHS),
        ),
        # The VAE: the generalisation penalties on the encoder, the decoder and both.
        **{
            name: _v2(
                name,
                4000,
                V2_SEEDS,
                V2_REASON,
                (_V2_SHORT, ("encoder", "decoder", "both"), V2_STRENGTHS),
            )
            for name in ("digits_vae", "digits_vae_small_data")
        },
        # Diversity on a mixture: the noise-robust reading of mode coverage.
        "ring8_gan": _v2(
            "ring8_gan",
            10000,
            SEEDS,
            CPU_REASON,
            (("l2", "weight_decay", "prox_l1", "elastic_net"), ("g",), V2_STRENGTHS),
            samples=2500,
        ),
        # Real 28x28 images: the first study's decisive cells (proximal L1 on G:
        # sparsity and the contradicted diversity; weight decay on both:
        # stability and generalisation; L2 on G: smoothness) at e = 1.
        "fashion_mnist_gan_small": _v2(
            "fashion_mnist_gan_small",
            16000,
            SEEDS,
            CPU_REASON,
            (("prox_l1", "l2"), ("g",), V2_STRENGTHS),
            (("weight_decay",), ("both",), V2_STRENGTHS),
            fd_points=8,
            samples=5000,
            max_members=1,  # vmapped, slower than its runs one by one (its config's docstring)
        ),
        # The cycle GAN: does a penalty on the translators help them keep content? At
        # its measured length (1,000 steps: its config's docstring), member by member (a
        # vmapped group of its convolutions costs 1.84 single steps per member:
        # BENCHMARKS.md, "The cycle GAN in a sweep"); the three penalties on the
        # translators, the discriminators and all four networks. Seeds 5-9 and the
        # discriminators / all cells were added after the first look (5 seeds, translators
        # only, inconclusive), once 6f96941 made a run 15x faster (V2_CYCLE_REASON).
        "digits_cyclegan": _v2(
            "digits_cyclegan",
            1000,
            V2_CYCLE_SEEDS,
            V2_CYCLE_REASON,
            (_V2_SHORT, ("generators", "discriminators", "all"), V2_STRENGTHS),
            fd_points=2,
            max_members=1,
        ),
    },
    # The same protocol for a GPU: 8 seeds, six strengths, every weight
    # penalty on every network of every experiment, penalties on top of R1,
    # runs twice the measured convergence length (the plateau holds past it:
    # FD(T) <= 1.1 FD(2T)); Fashion-MNIST (lengths not yet measured: run
    # experiments.convergence first); stacked digits scored on PacGAN's
    # 26,000 samples, at 40,000 steps (10,000 did not reach the plateau); the
    # unstable setting at the seeds its stability claim needs (UNSTABLE_POWER).
    "full": {
        **{
            name: _gan(
                name,
                steps,
                20,
                samples,
                seeds=seeds,
                strengths=FULL_EFFECTIVE,
                learning_rates=(1e-4, 2e-4, 5e-4, 1e-3),
                seeds_reason=reason,
            )
            for name, steps, samples, seeds, reason in (
                ("digits_gan", 10000, 10000, FULL_SEEDS, FULL_REASON),
                ("digits_gan_unstable", 10000, 10000, UNSTABLE_POWER, ""),
            )
        },
        **{
            name: _gan(
                name,
                steps,
                20,
                samples,
                seeds=FULL_SEEDS,
                strengths=FULL_EFFECTIVE,
                learning_rates=(1e-4, 2e-4, 5e-4, 1e-3),
                seeds_reason=FULL_REASON,
            )
            for name, steps, samples in (
                ("ring8_gan", 20000, 10000),
                ("grid25_gan", 40000, 10000),
                ("stacked_digits_gan", 40000, 26000),
                ("digits_cgan", 10000, 10000),
                ("fashion_mnist_gan", 20000, 10000),
                ("fashion_mnist_cgan", 20000, 10000),
            )
        },
        **{
            name: (
                StudyGrid(
                    name,
                    ("none", *WEIGHT_PENALTIES),
                    ("encoder", "decoder", "both"),
                    FULL_EFFECTIVE,
                    (0.25, 0.5, 1.0, 2.0, 4.0),
                    FULL_SEEDS,
                    _quiet(steps, 20, 10000),
                    seeds_reason=FULL_REASON,
                ),
            )
            for name, steps in (("digits_vae", 8000), ("fashion_mnist_vae", 20000))
        },
        **{
            name: _gan(
                name,
                steps,
                20,
                2000,  # the cycle GAN scores its held-out rows, not eval.num_samples samples
                seeds=FULL_SEEDS,
                strengths=FULL_EFFECTIVE,
                targets=("generators", "discriminators", "all"),
                baselines=("none", "spectral_norm", "r1"),
                on_r1=(),
                seeds_reason=FULL_REASON,
            )
            for name, steps in (("digits_cyclegan", 4000), ("fashion_mnist_cyclegan", 20000))
        },
    },
    # Declared, not yet run (module docstring): does a verdict depend on the run's length?
    "length": {"digits_gan_length1x": _length(1), "digits_gan_length2x": _length(2)},
}
