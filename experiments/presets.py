"""The study's presets as data: per preset, one sweep grid per experiment.

``python -m experiments.figures --preset P`` trains every grid of ``PRESETS[P]``
(members that share a compiled program as one vmapped program) and draws the
figures of FIGURES.md from the results. A preset differs from another only in
these numbers — the figures code has no per-preset branches.

- ``smoke``: for tests (tiny widths, 12 steps; the numbers mean nothing). Its
  time is XLA compiles of its 6 programs: ~90 s on a 2-core CPU, ~50 s with
  ``XLA_FLAGS="--xla_backend_optimization_level=0
  --xla_llvm_disable_expensive_passes=true"`` (what the tests use).
- ``quick``: the whole figure set on a 2-core CPU in under 45 minutes:
  4 log-spaced strengths (+ the unregularised run as the λ = 0 band), 2 seeds,
  short training (500 steps; 1,000 for the 2-D mixtures). Every penalty on G
  and on D of the digits GAN and on G of ring8; the other experiments run the
  core penalties (none, L2, weight decay, L1 both ways; group L1 for the VAE),
  with the mode-collapse studies on the generator, the network the "L1
  increases diversity" claim is about.
- ``full``: the real study, meant for a GPU: 6 strengths, 3 seeds, default
  training lengths, every target, Fashion-MNIST too.
"""
from typing import NamedTuple

from experiments import study


class StudyGrid(NamedTuple):
    """One experiment's sweep grid (see :func:`experiments.study.grid`).

    Attributes:
      config: the experiment, ``NAME`` or ``NAME:smoke`` (``experiments/configs``).
      penalties: names from :data:`experiments.study.PENALTIES` (the baselines too).
      targets: networks (or ``'both'``) that the swept penalties go on.
      strengths: the log grid of λ.
      radii: the grid of max-norm radii r.
      seeds: the seeds of every cell.
      overrides: ``(dotted key, value)`` pairs applied to the base config.
    """
    config: str
    penalties: tuple
    targets: tuple
    strengths: tuple
    radii: tuple
    seeds: tuple
    overrides: tuple = ()


ALL_WEIGHT = ("none", *study.WEIGHT_PENALTIES)
GAN_PENALTIES = (*ALL_WEIGHT, "spectral_norm", "r1", "wgan_gp")
# quick: the cheaper subsets (the full preset runs every penalty everywhere).
QUICK_GAN = (*ALL_WEIGHT, "spectral_norm", "r1")
QUICK_CORE = ("none", "l2", "weight_decay", "l1", "prox_l1")
QUICK_VAE = (*QUICK_CORE, "group_l1")
QUICK_STRENGTHS = (1e-3, 1e-2, 1e-1, 1.0)
QUICK_RADII = (0.5, 1.0, 2.0, 4.0)


def _quiet(steps: int, fd_points: int, num_samples: int) -> tuple:
    """Overrides of a study run: its length, ``fd_points`` in-training FDs, final sample count.

    No intermediate sample grids or checkpoints: a vmapped group is short, and
    a sweep reuses finished members, so an interrupted preset loses at most
    the group in flight.
    """
    return (("steps", steps), ("eval.fd_every", max(1, steps // fd_points) if fd_points else 0),
            ("eval.num_samples", num_samples), ("log.every", max(1, steps // 20)),
            ("log.samples_every", 0), ("log.checkpoint_every", 0))


_SMOKE = (("eval.num_samples", 100), ("eval.fd_samples", 100), ("log.every", 4),
          ("log.samples_every", 0), ("log.checkpoint_every", 0))
_SMOKE_NO_FD = (*_SMOKE, ("eval.fd_every", 0))


def _smoke(config: str, target: str, penalties=("prox_l1",), overrides=_SMOKE_NO_FD):
    return StudyGrid(f"{config}:smoke", penalties, (target,), (1e-2, 1.0), (1.0,), (0,), overrides)


PRESETS = {
    "smoke": {
        "digits_gan": _smoke("digits_gan", "g", ("none", "prox_l1"), _SMOKE),
        "ring8_gan": _smoke("ring8_gan", "g"),
        "stacked_digits_gan": _smoke("stacked_digits_gan", "g"),
        "digits_vae": _smoke("digits_vae", "decoder"),
        "digits_cgan": _smoke("digits_cgan", "g"),
    },
    # In priority order: an interrupted quick run still has the main figures.
    "quick": {
        "digits_gan": StudyGrid("digits_gan", QUICK_GAN, ("g", "d"), QUICK_STRENGTHS,
                                QUICK_RADII, (0, 1), _quiet(500, 4, 1000)),
        "ring8_gan": StudyGrid("ring8_gan", QUICK_GAN, ("g",), QUICK_STRENGTHS, QUICK_RADII,
                               (0, 1), (*_quiet(1000, 0, 2500), ("data.batch_size", 128))),
        "stacked_digits_gan": StudyGrid("stacked_digits_gan", QUICK_CORE, ("g",),
                                        QUICK_STRENGTHS, QUICK_RADII, (0, 1),
                                        _quiet(500, 0, 5000)),
        "digits_vae": StudyGrid("digits_vae", QUICK_VAE, ("encoder", "decoder"),
                                QUICK_STRENGTHS, QUICK_RADII, (0, 1), _quiet(500, 0, 1000)),
        "digits_cgan": StudyGrid("digits_cgan", QUICK_CORE, ("both",), QUICK_STRENGTHS,
                                 QUICK_RADII, (0, 1), _quiet(500, 0, 1000)),
        "grid25_gan": StudyGrid("grid25_gan", QUICK_CORE, ("g",), QUICK_STRENGTHS, QUICK_RADII,
                                (0, 1), (*_quiet(1000, 0, 2500), ("data.batch_size", 128))),
    },
    "full": {
        name: StudyGrid(name, GAN_PENALTIES if kind == "gan" else ALL_WEIGHT,
                        targets, (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),
                        (0.25, 0.5, 1.0, 2.0, 4.0, 8.0), (0, 1, 2),
                        (("eval.fd_every", 500),) if name.startswith("digits") else ())
        for name, kind, targets in (
            ("digits_gan", "gan", ("g", "d", "both")),
            ("ring8_gan", "gan", ("g", "d", "both")),
            ("grid25_gan", "gan", ("g", "d", "both")),
            ("stacked_digits_gan", "gan", ("g", "d", "both")),
            ("digits_vae", "vae", ("encoder", "decoder", "both")),
            ("digits_cgan", "gan", ("g", "d", "both")),
            ("fashion_mnist_gan", "gan", ("g", "d", "both")),
            ("fashion_mnist_vae", "vae", ("encoder", "decoder", "both")),
            ("fashion_mnist_cgan", "gan", ("g", "d", "both")),
        )
    },
}
