"""Does a verdict depend on the run's length? (``python -m experiments.study.length --workdir DIR``)

The ``length`` preset (:mod:`experiments.study.presets`) trains one penalty
(weight decay on both networks at e = 1) and the unregularised runs of an
experiment at its measured length and at twice it, as two experiments named
``<experiment>_length<k>x``. An effective strength of a decoupled or
proximal penalty is a shrinkage over the whole run, so at twice the length
e = 1 is half the strength per step.

This reads every claim of :data:`experiments.study.claims.CLAIMS` on each
length's runs as if they were the base experiment's (the rows relabelled),
with the claims' own tests, SESOIs and guard, and puts the readings side by
side: a part whose reading differs between the lengths depends on the length
at this strength. Each length's family is the one cell of the ablation, so
Holm adjusts only its two directional tests.
"""

import argparse
import pathlib
import re
import sys

import experiments
from experiments.study import cells, claims, tables
from experiments.study import results as results_lib

# ``<experiment>_length<k>x``: the ablation's experiment names.
LENGTH_NAME = re.compile(r"^(?P<base>.+)_length(?P<times>\d+)x$")


def lengths(rows) -> dict[str, tuple[str, int]]:
    """``{experiment: (base experiment, times its measured length)}`` of the ablation's rows."""
    out = {}
    for name in cells.experiments_present(rows):
        match = LENGTH_NAME.match(name)
        if match:
            out[name] = (match["base"], int(match["times"]))
    return out


def relabelled(rows, name: str, base: str) -> list[dict]:
    """The rows of experiment ``name``, named ``base`` (so the claims read them as base's)."""
    return [{**r, "config.name": base} for r in cells.experiment_rows(rows, name)]


def readings(rows) -> list[dict]:
    """One row per tested comparison and length: claim, part, cell, reading, Δ and p values."""
    out = []
    for name, (base, times) in sorted(lengths(rows).items(), key=lambda kv: kv[1]):
        for verdict in claims.verdicts(relabelled(rows, name, base)):
            for part, part_verdict, tests in verdict.parts:
                for t in tests:
                    key = t.comparison.key
                    out.append(
                        {
                            "claim": verdict.claim.name,
                            "part": part.name,
                            "metric": t.metric,
                            "cell": f"{key.penalty} on {key.target} at e = {key.strength:g}",
                            "times": times,
                            "steps": _steps(rows, name),
                            "reading": claims.reading(t),
                            "part verdict": part_verdict,
                            "difference": t.comparison.difference["median"],
                            "ci": (t.comparison.difference["low"], t.comparison.difference["high"]),
                            "holm_claimed": t.holm_claimed,
                            "holm_against": t.holm_against,
                        }
                    )
    return out


def _steps(rows, name: str) -> int:
    return int(float(cells.experiment_rows(rows, name)[0]["config.steps"]))


def depends_on_length(found: list[dict]) -> dict[tuple, bool]:
    """``{(claim, part, metric, cell): the readings differ between the lengths}``."""
    by = {}
    for r in found:
        by.setdefault((r["claim"], r["part"], r["metric"], r["cell"]), set()).add(r["reading"])
    return {k: len(v) > 1 for k, v in by.items()}


def markdown(rows) -> str:
    """The ablation as a Markdown table: each comparison's reading at every length."""
    found = readings(rows)
    if not found:
        return "No `<experiment>_length<k>x` runs with a tested comparison.\n"
    times = sorted({r["times"] for r in found})
    steps = {r["times"]: r["steps"] for r in found}
    head = " | ".join(f"{t}× ({steps[t]:,} steps): Δ [95 % CI], reading" for t in times)
    lines = [
        f"| claim | part | metric | cell | {head} | depends on length |",
        "|---|---|---|---|" + "---|" * len(times) + "---|",
    ]
    depends = depends_on_length(found)
    for key, differs in depends.items():
        at = {
            r["times"]: r for r in found if (r["claim"], r["part"], r["metric"], r["cell"]) == key
        }
        shown = []
        for t in times:
            r = at.get(t)
            shown.append(
                "–"
                if r is None
                else f"{cells.fmt(r['difference'])} [{cells.fmt(r['ci'][0])}, "
                f"{cells.fmt(r['ci'][1])}], "
                f"{r['reading']}"
            )
        lines.append(f"| {' | '.join(key)} | {' | '.join(shown)} | {'yes' if differs else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.study.length", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workdir", required=True, help="the length preset's directory")
    parser.add_argument("--out", help="write the markdown here (default: stdout)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    def body():
        path = pathlib.Path(args.workdir) / tables.RESULTS_CSV
        if not path.exists():
            raise experiments.UsageError(
                f"no {tables.RESULTS_CSV} in {args.workdir!r}: run "
                "python -m experiments.figures --preset length first"
            )
        text = markdown(results_lib.read_csv(path))
        experiments.write_or_print(text, args.out)
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
