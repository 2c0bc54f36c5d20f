"""Draws samples from a run: ``python -m experiments.sample --workdir DIR --num N --out grid.png``.

Loads DIR's config and latest checkpoint (a finished run, or an interrupted
or still-training one: its latest checkpoint) and writes N samples as a PNG
grid, or a scatter with the true mode centres for 2-D data; ``--npz`` also
saves the arrays (``samples``, and ``labels`` for a conditional model). With
no ``--seed`` the latents are the run's own, so ``--num`` equal to
``config.log.num_images`` redraws the run's final grid. ``--class C`` draws
class C only (conditional models). Nothing in DIR is modified. Bad input
exits with code 2 and one line saying what was wrong, and writes nothing.
"""

import argparse
import contextlib
import pathlib
import sys

import numpy as np

import experiments
from regan_jax import plotting, program, sampling, workdir


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.sample", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workdir", required=True, help="the run directory")
    parser.add_argument("--num", required=True, type=int, help="how many samples (>= 1)")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="draw with jax.random.key(SEED) instead of the run's sample key",
    )
    parser.add_argument(
        "--class",
        dest="label",
        type=int,
        default=None,
        metavar="C",
        help="conditional models: every sample of class C",
    )
    parser.add_argument(
        "--npz", default=None, help="also save the samples (and labels) to this .npz file"
    )
    parser.add_argument(
        "--columns",
        type=int,
        default=None,
        metavar="K",
        help="grid columns (images only; default: one per class for an "
        "unconditional draw of a conditional model, else square)",
    )
    return parser.parse_args(argv)


def check_output(path: str, suffix: str, flag: str) -> pathlib.Path:
    """``path`` if it can be written as a new or replaced file named ``*suffix``.

    Raises:
      experiments.UsageError: a wrong suffix, an existing directory, or a
        parent path that runs through a file.
    """
    path = pathlib.Path(path)
    if path.suffix.lower() != suffix:
        raise experiments.UsageError(f"{flag} {str(path)!r} must end in {suffix}")
    if path.is_dir():
        raise experiments.UsageError(f"{flag} {str(path)!r} is a directory")
    parent = next(p for p in path.absolute().parents if p.exists())
    if not parent.is_dir():
        raise experiments.UsageError(f"{flag} {str(path)!r}: {str(parent)!r} is not a directory")
    return path


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def body():
        out = check_output(args.out, ".png", "--out")
        npz = None if args.npz is None else check_output(args.npz, ".npz", "--npz")
        if npz is not None and npz.absolute() == out.absolute():
            raise experiments.UsageError("--npz and --out name the same file")
        if args.columns is not None and args.columns < 1:
            raise experiments.UsageError(f"--columns must be >= 1, got {args.columns}")
        if args.num < 1:
            raise experiments.UsageError(f"--num must be >= 1, got {args.num}")
        run = sampling.load_run(args.workdir)
        if args.columns is not None and len(run.program.spec.shape) == 1:
            raise experiments.UsageError(
                f"--columns applies to image grids; {run.program.spec.name} samples are "
                "2-D points, drawn as a scatter"
            )
        samples, labels = sampling.draw(run, args.num, seed=args.seed, label=args.label)
        columns = args.columns or (
            None if args.label is not None else program.grid_columns(run.program)
        )
        title = (
            f"{run.config.name} seed {run.config.seed}, step {run.step}"
            + (f", class {args.label}" if args.label is not None else "")
            + (f", sample seed {args.seed}" if args.seed is not None else "")
        )
        # Both files go to temporaries first; they replace --npz and --out only once both
        # are written (an error in either leaves neither).
        with contextlib.ExitStack() as outputs:
            png_tmp = outputs.enter_context(workdir.atomic_path(out))
            plotting.save_samples_png(
                png_tmp,
                samples,
                title,
                columns=columns,
                centres=getattr(run.program.source, "centres", None),
            )
            if npz is not None:
                with open(outputs.enter_context(workdir.atomic_path(npz)), "wb") as f:
                    np.savez_compressed(
                        f, samples=samples, **({} if labels is None else {"labels": labels})
                    )
        written = str(out) + ("" if npz is None else f" and {npz}")
        print(f"wrote {args.num} samples of {args.workdir} (step {run.step}) to {written}")
        return 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
