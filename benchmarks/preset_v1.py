"""The first study's cpu preset, trained by today's runner: the same work as a commit before study v2.

``bash benchmarks/preset_slice.sh BEFORE`` times a slice of the cpu preset at
BEFORE and at the checkout. Since study v2 (issue #22) today's ``cpu`` preset
trains other experiments scored by protocol v2, so against a commit from
before it (issue #25's 2550e99) the two sides would not do the same work.
This module holds that commit's ``cpu`` grids (issue #13's study,
``docs/study_v1/``) -- the same configs, penalties, targets, effective
strengths, seeds, lengths and scoring (protocol v1) -- and trains a round-robin
shard of them the way a preset worker does (``runner.train_preset`` with
``shard``): calibration records read from the directory, the compilation
cache, vmapped groups of up to 64 members. The shell script compares every
run's ``config.json`` with the other side's, so a difference in the work
shows.

    python -m benchmarks.preset_v1 --workdir DIR --shard 0/20
"""

import argparse
import pathlib
import sys

import experiments
from experiments import sweep
from experiments.study import runner, sweeps
from experiments.study.presets import EFFECTIVE, EFFECTIVE_RADII, SEEDS, StudyGrid
from regan_jax import xla

# 2550e99's experiments.study names (its ALL_WEIGHT and GAN_BASELINES), spelled out: today's
# vocabulary orders and names its penalties its own way.
V1_WEIGHT = ("l2", "weight_decay", "l1", "prox_l1", "elastic_net", "group_l1", "max_norm")
V1_GAN_BASELINES = ("none", "spectral_norm", "r1", "wgan_gp")
V1_REASON = "the first study's 5 seeds (issue #13's budget)"
V1_MAX_MEMBERS = 64


def _v1_overrides(steps: int, fd_points: int, num_samples: int) -> tuple:
    """2550e99's ``_quiet``: today's study overrides without protocol v2's scores.

    Written out rather than derived from today's ``presets._quiet``: this is a record of
    what 2550e99 ran, and must not follow later changes to the study's overrides.
    """
    return (
        ("steps", steps),
        ("eval.fd_every", max(1, steps // fd_points) if fd_points else 0),
        ("eval.num_samples", num_samples),
        ("log.every", max(1, steps // 20)),
        ("log.samples_every", 0),
        ("log.checkpoint_every", 0),
    )


def _gan(
    config,
    steps,
    fd_points,
    num_samples,
    *,
    targets=("g", "d", "both"),
    penalties=V1_WEIGHT,
    baselines=V1_GAN_BASELINES,
    learning_rates=(),
    on_r1=("weight_decay", "l2"),
) -> tuple:
    """2550e99's ``_gan``: penalties and baselines in one grid, penalties on R1 in another."""
    overrides = _v1_overrides(steps, fd_points, num_samples)
    grids = [
        StudyGrid(
            config,
            (*baselines, *penalties),
            targets,
            EFFECTIVE,
            EFFECTIVE_RADII,
            SEEDS,
            overrides,
            learning_rates=learning_rates,
            seeds_reason=V1_REASON,
        )
    ]
    if on_r1:
        grids.append(
            StudyGrid(
                config,
                on_r1,
                ("d",),
                EFFECTIVE,
                EFFECTIVE_RADII,
                SEEDS,
                overrides,
                on="r1",
                seeds_reason=V1_REASON,
            )
        )
    return tuple(grids)


CPU_V1 = {
    "digits_gan": _gan(
        "digits_gan", 5000, 10, 2000, learning_rates=(1e-4, 2e-4, 5e-4), on_r1=("weight_decay",)
    ),
    "digits_gan_unstable": _gan(
        "digits_gan_unstable",
        5000,
        10,
        2000,
        targets=("d", "both"),
        penalties=("l2", "weight_decay"),
        baselines=("none", "r1"),
        on_r1=(),
    ),
    "ring8_gan": _gan(
        "ring8_gan",
        10000,
        10,
        2500,
        targets=("g",),
        penalties=("l2", "weight_decay", "prox_l1", "elastic_net"),
        baselines=("none",),
        on_r1=(),
    ),
    "grid25_gan": _gan(
        "grid25_gan",
        20000,
        10,
        2500,
        targets=("g",),
        penalties=("l2", "prox_l1"),
        baselines=("none",),
        on_r1=(),
    ),
    "digits_vae": (
        StudyGrid(
            "digits_vae",
            ("none", "l2", "weight_decay", "prox_l1", "elastic_net"),
            ("decoder",),
            EFFECTIVE,
            EFFECTIVE_RADII,
            SEEDS,
            _v1_overrides(4000, 10, 2000),
            seeds_reason=V1_REASON,
        ),
    ),
    "digits_cgan": _gan(
        "digits_cgan",
        5000,
        0,
        2000,
        targets=("g", "d"),
        penalties=("weight_decay", "prox_l1"),
        baselines=("none",),
        on_r1=(),
    ),
}


def members(workdir) -> dict:
    """``{experiment: members}`` of :data:`CPU_V1`, strengths from ``workdir``'s records."""
    out = {}
    for name, grids in CPU_V1.items():
        out[name] = [
            m
            for grid in grids
            for m in runner.grid_members(grid, runner.calibration_path(workdir, name, grid.on))
        ]
    return out


def train_shard(workdir, shard: tuple[int, int], log=print) -> None:
    """Trains shard ``(i, n)`` of :data:`CPU_V1` under ``workdir``, as a preset worker does."""
    workdir = pathlib.Path(workdir)
    missing = [
        str(runner.calibration_path(workdir, name, grid.on))
        for name, grids in CPU_V1.items()
        for grid in grids
        if not runner.calibration_path(workdir, name, grid.on).exists()
    ]
    if missing:
        raise ValueError(f"no calibration record at {', '.join(sorted(set(missing)))}")
    xla.use_compilation_cache(workdir / runner.COMPILE_CACHE_DIR)
    for name, ms in members(workdir).items():
        # 2550e99's groups: up to 64 members (today's CPU default is 4).
        sweeps.run_members(
            sweeps.shard_members(ms, shard),
            workdir / name,
            max_members=V1_MAX_MEMBERS,
            progress=False,
            log=log,
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.preset_v1", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workdir", required=True, help="holds <experiment>/calibration*.json")
    parser.add_argument("--shard", default="0/1", help="train slice I of N (0-based), e.g. 0/20")

    def body() -> int:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        train_shard(args.workdir, sweep.parse_shard(args.shard))
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
