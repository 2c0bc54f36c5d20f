"""What a preset will cost, before it runs (``python -m experiments.study.plan --preset P``).

Lists, per experiment, the members of the preset's grids, the vmapped
programs they form on each of ``--jobs`` workers (the runner's split: each
worker takes a round-robin slice of every experiment,
:func:`experiments.study.sweeps.shard_members`, and groups its slice by
compiled program, :func:`regan_jax.program.program_key`), their steps and
member-steps, and each grid's seeds with the reason for them.

With ``--measured DIR`` (a study directory holding finished runs of the same
experiments, e.g. a slice of the preset: ``experiments.figures --shard 0/20``,
or a ``results.csv`` such as ``docs/study_v1/results.csv``) it also estimates the wall: a program of K members and S steps costs
``K S / rate(K)`` seconds of training, at the member-steps per second the
measured runs of that experiment reached in the measured group closest in
size to K, plus what the runs' wall profiles (:mod:`regan_jax.walltime`)
measured outside the steps: set-up and compilation once per program, the
in-training and final evaluation, I/O and the rest once per member. Runs
without a profile (before it was recorded, e.g. the first study's) price the
training wall ``wall_s`` alone.
Workers run side by side, so the preset's wall is the slowest worker's sum.
Calibration and the null references are not counted (each is one short run
per experiment). An experiment without measured runs is listed as unpriced:
the estimate is then a lower bound, and says so.

    python -m experiments.study.plan --preset cpu --jobs 2 --measured runs/slice
"""

import argparse
import collections
import math
import pathlib
import statistics
import sys
from typing import NamedTuple

from experiments.study import presets, results, runner, sweeps
from regan_jax import program
from regan_jax import workdir as workdir_lib

# summary.json fields: the training wall of a run (its steps' share of the profile where
# recorded) and the group it trained in.
WALL, TRAIN_WALL, MEMBERS, STEPS = "wall_s", "wall_train_s", "sweep_members", "steps"
# A group's profile outside its steps: once per program, and shared by its members.
PER_PROGRAM = ("wall_setup_s", "wall_compile_s")
PER_MEMBER = ("wall_eval_s", "wall_final_s", "wall_io_s", "wall_other_s")


class Program(NamedTuple):
    """One vmapped program of the plan: ``members`` members of ``experiment`` on ``worker``."""

    experiment: str
    worker: int
    members: int
    steps: int


class Rate(NamedTuple):
    """What the measured runs of one experiment say (medians over their rows).

    ``by_size``: group size K → training member-steps per second;
    ``program_s``: seconds per program outside the steps (set-up, compile);
    ``member_s``: seconds per member outside the steps (evaluation, I/O, rest).
    """

    by_size: dict
    program_s: float
    member_s: float


def programs(preset: str, jobs: int = 1) -> list[Program]:
    """The vmapped programs of ``preset`` trained by ``jobs`` workers, as the runner splits them
    (groups of at most :func:`experiments.study.presets.max_members`)."""
    out = []
    for name, grids in presets.PRESETS[preset].items():
        members = [m for grid in grids for m in runner.grid_members(grid)]
        max_members = presets.max_members(preset, name)
        for worker in range(jobs):
            groups = collections.defaultdict(list)
            for m in sweeps.shard_members(members, (worker, jobs)):
                groups[program.program_key(m.config)].append(m)
            for group in groups.values():
                for i in range(0, len(group), max_members):
                    chunk = group[i : i + max_members]
                    out.append(Program(name, worker, len(chunk), int(chunk[0].config.steps)))
    return out


def measured_rates(rows: list[dict]) -> dict[str, Rate]:
    """``{experiment: Rate}`` from finished runs' rows (:func:`experiments.study.results.collect`).

    A group's rate is ``K S / wall`` (the group's steps' wall ``wall_train_s``
    where the run recorded a profile, else its training wall ``wall_s``; the
    same in each member's summary); the rate at size K is the median over the
    measured groups of that size.
    """
    by_experiment = collections.defaultdict(lambda: collections.defaultdict(list))
    per_program = collections.defaultdict(list)
    per_member = collections.defaultdict(list)
    for r in rows:
        wall = _number(r.get(TRAIN_WALL)) or _number(r.get(WALL))
        steps = _number(r.get(STEPS))
        if not wall or not steps:
            continue
        k = int(_number(r.get(MEMBERS)) or 1)
        name = r["config.name"]
        by_experiment[name][k].append(k * steps / wall)
        per_program[name].append(sum(_number(r.get(f)) or 0.0 for f in PER_PROGRAM))
        per_member[name].append(sum(_number(r.get(f)) or 0.0 for f in PER_MEMBER) / k)
    return {
        name: Rate(
            {k: statistics.median(v) for k, v in sizes.items()},
            statistics.median(per_program[name]),
            statistics.median(per_member[name]),
        )
        for name, sizes in by_experiment.items()
    }


def _number(value):
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def program_seconds(p: Program, rate: Rate) -> float:
    """Estimated seconds of one program: training at the closest measured size, plus outside."""
    size = min(rate.by_size, key=lambda k: (abs(k - p.members), -k))
    return p.members * p.steps / rate.by_size[size] + rate.program_s + p.members * rate.member_s


def estimate(plan: list[Program], rates: dict[str, Rate], jobs: int) -> dict:
    """``{'workers': [s per worker], 'wall_s': slowest worker, 'unpriced': experiments}``."""
    workers = [0.0] * jobs
    unpriced = sorted({p.experiment for p in plan if p.experiment not in rates})
    for p in plan:
        if p.experiment in rates:
            workers[p.worker] += program_seconds(p, rates[p.experiment])
    return {"workers": workers, "wall_s": max(workers), "unpriced": unpriced}


def report(preset: str, plan: list[Program], rates: dict | None, jobs: int) -> str:
    """The plan as Markdown: per experiment members, programs, member-steps (and seconds)."""
    lines = [
        f"# Plan of the {preset!r} preset, {jobs} worker(s)",
        "",
        "| experiment | members | programs | steps | member-steps | est. s |",
        "|---|---|---|---|---|---|",
    ]
    by_name = collections.defaultdict(list)
    for p in plan:
        by_name[p.experiment].append(p)
    for name, ps in by_name.items():
        seconds = (
            f"{sum(program_seconds(p, rates[name]) for p in ps):.0f}"
            if rates and name in rates
            else "–"
        )
        lines.append(
            f"| {name} | {sum(p.members for p in ps)} | {len(ps)} | "
            f"{'/'.join(str(s) for s in sorted({p.steps for p in ps}))} | "
            f"{sum(p.members * p.steps for p in ps):,} | {seconds} |"
        )
    lines += ["", "Seeds:"]
    for name, grids in presets.PRESETS[preset].items():
        for grid in grids:
            seeds, reason = presets.grid_seeds(grid)
            lines.append(f"- {name} ({grid.config}, on {grid.on}): {len(seeds)} — {reason}")
    if rates is not None:
        est = estimate(plan, rates, jobs)
        bound = " (a lower bound: unpriced " + ", ".join(est["unpriced"]) + ")"
        lines += [
            "",
            f"Estimated wall: {est['wall_s'] / 60:.0f} min"
            f"{bound if est['unpriced'] else ''}; per worker "
            + ", ".join(f"{s / 60:.0f} min" for s in est["workers"]),
        ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", required=True, help=", ".join(presets.PRESETS))
    parser.add_argument("--jobs", type=int, default=1, help="workers (as experiments.figures)")
    parser.add_argument(
        "--measured", help="a study directory (or its results.csv) with finished runs to price from"
    )
    args = parser.parse_args(argv)
    if args.preset not in presets.PRESETS:
        parser.error(f"unknown preset {args.preset!r}; valid: {', '.join(presets.PRESETS)}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    rates = None
    if args.measured is not None:
        measured = pathlib.Path(args.measured)
        if not (measured.is_dir() or measured.suffix == ".csv" and measured.is_file()):
            parser.error(f"--measured {args.measured!r} is neither a directory nor a .csv file")
        try:
            rows = results.collect([measured]) if measured.is_dir() else results.read_csv(measured)
            rates = measured_rates(rows)
        except (ValueError, workdir_lib.WorkdirError) as e:
            parser.error(str(e))
    plan = programs(args.preset, args.jobs)
    print(report(args.preset, plan, rates, args.jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
