"""How long an unregularised baseline must train (``python -m experiments.convergence``).

Trains (or reuses) the unregularised run of an experiment for ``--steps``
steps per seed as one vmapped sweep, with the cheap in-training scores every
``--every`` steps, and prints the median over seeds at every evaluation
together with the shortest length that meets the experiment's convergence
criterion (:func:`converged_at`):

- 2-D mixtures: the median high-quality fraction is >= 0.5 from T on (the
  run puts most of its mass on the modes, and keeps it there; issue #12);
- images: the median FD at T is within 10 % of the median FD at 2T (a
  plateau), so ``--steps`` must be at least twice the length it reports.

The config docstrings state the lengths this measured.

    python -m experiments.convergence --config digits_gan --steps 10000 --every 1000 \\
        --seeds 0,1,2,3 --workdir runs/convergence/digits_gan
"""

from typing import NamedTuple

import numpy as np

from experiments.study import members, sweeps
from regan_jax import stats
from regan_jax import workdir as workdir_lib

HQ_THRESHOLD = 0.5
FD_PLATEAU = 1.10


def step_values(histories: list[list[dict]], metric: str) -> dict[int, list[float]]:
    """``{step: [one value per run]}`` of ``metric`` at the steps where every run logged it."""
    by_step = [{r["step"]: r[metric] for r in h if r.get(metric) is not None} for h in histories]
    common = set.intersection(*(set(s) for s in by_step)) if by_step else set()
    return {step: [s[step] for s in by_step] for step in sorted(common)}


def medians(histories: list[list[dict]], metric: str) -> dict[int, float]:
    """``{step: median over runs}`` of :func:`step_values`."""
    return {step: float(np.median(v)) for step, v in step_values(histories, metric).items()}


def converged_at(curve: dict[int, float], metric: str) -> int | None:
    """The shortest evaluated length meeting the criterion (module docstring), or None.

    ``hq_fraction``: the first step from which every median is >= 0.5.
    ``fd``: the first step T whose median is <= 1.1 x the median at 2T (T and
    2T both evaluated).
    """
    if metric == "hq_fraction":
        return next(
            (t for t in curve if all(v >= HQ_THRESHOLD for s, v in curve.items() if s >= t)), None
        )
    if metric == "fd":
        return next(
            (t for t, v in curve.items() if 2 * t in curve and v <= FD_PLATEAU * curve[2 * t]), None
        )
    raise ValueError(f"no convergence criterion for metric {metric!r}; valid: hq_fraction, fd")


class Convergence(NamedTuple):
    """What :func:`measure` found: the metric, the seeds, ``{step: stats.cell}`` and the length."""

    name: str
    metric: str
    seeds: list
    cells: dict
    converged_at: int | None


def measure(base, seeds, workdir, *, progress: bool = True) -> Convergence:
    """Trains (or reuses) the unregularised run of ``base`` per seed, and its convergence.

    ``base`` carries the length (``steps``) and the evaluation interval
    (``eval.fd_every``); the runs go under ``workdir`` as one vmapped sweep.
    """
    runs = members.grid(base, ["none"], [], {}, seeds)
    sweeps.run_members(runs, workdir, progress=progress)
    histories = [workdir_lib.read_metrics(f"{workdir}/{m.name}") for m in runs]
    metric = "hq_fraction" if any("hq_fraction" in r for r in histories[0]) else "fd"
    cells = {step: stats.cell(values) for step, values in step_values(histories, metric).items()}
    curve = {step: cell["median"] for step, cell in cells.items()}
    return Convergence(
        base.name, metric, [m.seed for m in runs], cells, converged_at(curve, metric)
    )


def report(result: Convergence) -> str:
    """The median (and CI) at every evaluation, then the length that meets the criterion."""
    lines = [f"{result.name}: median {result.metric} over seeds {result.seeds}"]
    for step, cell in result.cells.items():
        lines.append(
            f"  step {step:>7}: {cell['median']:.4g}  [95 % CI {cell['low']:.4g}, "
            f"{cell['high']:.4g}]"
        )
    criterion = (
        "median HQ >= 0.5 from then on" if result.metric == "hq_fraction" else "FD(T) <= 1.1 FD(2T)"
    )
    length = result.converged_at
    lines.append(
        f"converged at: {length if length is not None else 'not within the run'} ({criterion})"
    )
    return "\n".join(lines)
