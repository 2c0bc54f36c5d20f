"""The claims' verdicts: ``python -m experiments.claims --workdir DIR [--out claims.md]``.

Reads ``DIR/results.csv`` (written by ``python -m experiments.figures``) and
prints or writes the verdicts of :mod:`experiments.study.claims` as markdown.
"""

import argparse
import pathlib
import sys

import experiments
from experiments.study import claims, tables


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.claims", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--workdir",
        required=True,
        help="a results directory of experiments.figures (its results.csv)",
    )
    parser.add_argument("--out", help="write the markdown here (default: stdout)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    def body():
        if not (pathlib.Path(args.workdir) / tables.RESULTS_CSV).exists():
            raise experiments.UsageError(
                f"no {tables.RESULTS_CSV} in {args.workdir!r}: run "
                "python -m experiments.figures first"
            )
        text = claims.claims_of(args.workdir)
        experiments.write_or_print(text, args.out)
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
