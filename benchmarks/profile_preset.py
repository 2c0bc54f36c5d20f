"""Where a study's wall goes: per experiment, each phase's share and member-steps per wall-second.

    python -m benchmarks.profile_preset STUDY_DIR [--calibration SECONDS] [--process SECONDS]

Reads the wall profile (:mod:`regan_jax.walltime`) in every finished run's
``summary.json`` under ``STUDY_DIR/<experiment>/`` and prints a Markdown
table: per experiment, its runs, the seconds of its training calls, the share
of each phase in them, and member-steps per wall-second. The members of a
vmapped group share one profile, so each counts ``1/K`` of it (K: its
``sweep_members``). A profile covers the last attempt of a run: the member-steps
are the summaries' ``steps``, exact for runs trained in one attempt (a study
slice). Runs without a profile (trained before it existed) are counted apart.

``--calibration`` and ``--process`` add what the summaries cannot hold, measured
outside: the calibration's seconds, and the whole command's (``--process``:
the row ``outside the training calls`` is its wall minus every group's).
"""

import argparse
import pathlib
import sys
from collections import defaultdict

from regan_jax import walltime
from regan_jax import workdir as workdir_lib

PHASES = walltime.PHASES


def profile(study_dir) -> dict[str, dict]:
    """``{experiment: {'runs', 'unprofiled', 'seconds', 'member_steps', '<phase>': seconds}}``.

    ``seconds`` is the experiment's summed group walls (``wall_group_s``, each
    member counting ``1/K`` of its group's), each phase likewise.

    Raises:
      ValueError: ``study_dir`` is not a directory, or holds no profiled run.
    """
    study_dir = pathlib.Path(study_dir)
    if not study_dir.is_dir():
        raise ValueError(f"{str(study_dir)!r} is not a directory")
    out = defaultdict(lambda: {"runs": 0, "unprofiled": 0, "seconds": 0.0, "member_steps": 0})
    for path in sorted(study_dir.glob(f"*/**/{workdir_lib.SUMMARY_FILE}")):
        experiment = path.relative_to(study_dir).parts[0]
        summary = workdir_lib.read_json(path)
        row = out[experiment]
        if walltime.TOTAL_FIELD not in summary:
            row["unprofiled"] += 1
            continue
        share = 1.0 / summary.get("sweep_members", 1)
        row["runs"] += 1
        row["member_steps"] += summary["steps"]
        row["seconds"] += share * summary[walltime.TOTAL_FIELD]
        for phase in PHASES:
            row[phase] = row.get(phase, 0.0) + share * summary[f"wall_{phase}_s"]
    if not any(r["runs"] for r in out.values()):
        raise ValueError(f"no finished run with a wall profile under {str(study_dir)!r}")
    return dict(out)


def total(rows: dict[str, dict]) -> dict:
    """The rows summed (the ``all`` row)."""
    keys = ("runs", "unprofiled", "seconds", "member_steps", *PHASES)
    return {k: sum(r.get(k, 0) for r in rows.values()) for k in keys}


def table(rows: dict[str, dict], calibration=None, process=None) -> str:
    """The Markdown table of :func:`profile`'s rows, an ``all`` row, and the outside lines."""
    head = ["experiment", "runs", "s", *PHASES, "member-steps/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def line(name, r):
        shares = [f"{r[p] / r['seconds']:.3f}" if r["seconds"] else "-" for p in PHASES]
        rate = f"{r['member_steps'] / r['seconds']:.0f}" if r["seconds"] else "-"
        runs = f"{r['runs']}" + (f" (+{r['unprofiled']} unprofiled)" if r["unprofiled"] else "")
        return f"| {name} | {runs} | {r['seconds']:.0f} | " + " | ".join([*shares, rate]) + " |"

    lines += [line(name, r) for name, r in sorted(rows.items())]
    everything = total(rows)
    lines.append(line("all", everything))
    if calibration is not None:
        lines.append(f"| calibration (measured apart) | | {calibration:.0f} |" + " |" * 8)
    if process is not None:
        outside = process - everything["seconds"]
        lines.append(f"| outside the training calls | | {outside:.0f} |" + " |" * 8)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_preset", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("study_dir")
    parser.add_argument("--calibration", type=float, help="the calibration's seconds")
    parser.add_argument("--process", type=float, help="the training command's seconds")
    args = parser.parse_args(argv)
    try:
        rows = profile(args.study_dir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(rows, args.calibration, args.process))
    return 0


if __name__ == "__main__":
    sys.exit(main())
