"""Does an effect's direction carry from one experiment to another? (issue #22's Fashion-MNIST replication)

    python -m experiments.study.replication --workdir runs/study_v2 \\
        --source digits_gan --replica fashion_mnist_gan_small

For every cell of the replica (a penalty on a target at a strength) that the
source experiment also has, and every metric both experiments scored, the
paired effect against each experiment's own unregularised runs (median Δ over
seeds with its 95 % bootstrap CI, d_z: :func:`experiments.study.cells.compare`)
side by side, and what the two say together:

- **carries**: both CIs exclude 0 on the same side;
- **reverses**: both exclude 0, on opposite sides;
- **source only** / **replica only**: one CI excludes 0, the other holds 0;
- **neither**: both hold 0.

This is a description of direction, not a test: the replica's claims are read
by :mod:`experiments.study.claims` only where a claim names it, and its CIs are
not Holm-adjusted (a 95 % CI per row).
"""

import argparse
import sys

from experiments.study import cells, tables, vocabulary

# The metrics a replication reads by default: quality, diversity, generalisation, smoothness
# and sparsity (of the penalised networks, as the study reads it).
METRICS = (
    "fd_inf",
    "fd",
    "recall",
    "precision",
    "memorisation_features",
    "fd_inf_gap",
    "r_v",
    "ppl",
    "jacobian_log_cond",
    "sparsity",
    "near_zero",
)


def _side(difference) -> int:
    """+1 / -1 where the CI excludes 0 above / below, 0 where it holds 0."""
    if difference["low"] > 0:
        return 1
    return -1 if difference["high"] < 0 else 0


def agreement(source, replica) -> str:
    """What two paired differences (``{'median', 'low', 'high'}``) say together (module doc)."""
    a, b = _side(source), _side(replica)
    if a and b:
        return "carries" if a == b else "reverses"
    if a or b:
        return "source only" if a else "replica only"
    return "neither"


def _effects(rows, name: str, metric: str) -> dict:
    """``{cell key: Comparison}`` of ``name``'s weight-penalty cells against its unregularised
    runs on ``metric`` (no regulariser underneath): :func:`experiments.study.cells.comparisons`
    (its Holm adjustment over the experiment is not read here)."""
    mine = cells.experiment_rows(rows, name)
    if not cells.has_metric(mine, metric):
        return {}
    return {
        c.key: c
        for c in cells.comparisons(mine, metric)
        if c.key.penalty in vocabulary.WEIGHT_PENALTIES
        and c.key.regulariser == "none"
        and c.difference is not None
    }


def replication_rows(rows, source: str, replica: str, metrics=METRICS) -> list[dict]:
    """One dict per (cell, metric) that both experiments have: the two comparisons and their
    :func:`agreement`."""
    out = []
    for metric in metrics:
        theirs, ours = _effects(rows, source, metric), _effects(rows, replica, metric)
        for key in sorted(ours.keys() & theirs.keys(), key=lambda k: (k.penalty, k.target)):
            s, r = theirs[key], ours[key]
            out.append(
                {
                    "key": key,
                    "metric": metric,
                    "source": s,
                    "replica": r,
                    "agreement": agreement(s.difference, r.difference),
                }
            )
    return out


def _effect(c: cells.Comparison) -> str:
    d = c.difference
    return (
        f"{cells.fmt(d['median'])} [{cells.fmt(d['low'])}, {cells.fmt(d['high'])}], "
        f"d_z {cells.fmt(c.d_z)}, n = {d['n']}"
    )


def replication_markdown(rows, source: str, replica: str, metrics=METRICS) -> str:
    """:func:`replication_rows` as a markdown table."""
    lines = [
        f"| cell | metric | {source}: Δ [95 % CI], d_z | {replica}: Δ [95 % CI], d_z | direction |",
        "|---|---|---|---|---|",
    ]
    for r in replication_rows(rows, source, replica, metrics):
        k = r["key"]
        lines.append(
            f"| {k.penalty} on {k.target} at e = {cells.fmt(k.strength)} | "
            f"{vocabulary.metric(r['metric']).short} | {_effect(r['source'])} | "
            f"{_effect(r['replica'])} | {r['agreement']} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.study.replication", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workdir", required=True, help="a study directory with results.csv")
    parser.add_argument("--source", default="digits_gan")
    parser.add_argument("--replica", default="fashion_mnist_gan_small")
    args = parser.parse_args(argv)
    try:
        rows, _ = tables.load_results(args.workdir)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    present = cells.experiments_present(rows)
    for flag, name in (("--source", args.source), ("--replica", args.replica)):
        if name not in present:
            print(
                f"error: {flag} {name!r} has no runs in {args.workdir}; present: "
                f"{', '.join(present)}",
                file=sys.stderr,
            )
            return 2
    print(replication_markdown(rows, args.source, args.replica))
    return 0


if __name__ == "__main__":
    sys.exit(main())
