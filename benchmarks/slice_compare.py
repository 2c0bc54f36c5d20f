"""Two trainings of the same runs, compared: the same configs, the same results.

``benchmarks/preset_slice.sh`` trains one slice of the preset at two commits;
this says whether both did the same work (every run's ``config.json``) and got
the same results (its ``summary.json``, timing fields aside, numbers within
``--rtol``). Keys that only one side writes (a newer commit's config options
or scores) are listed, not counted as differences.

    python -m benchmarks.slice_compare BEFORE_DIR AFTER_DIR [--rtol 1e-6]
"""

import argparse
import json
import math
import pathlib
import sys

import experiments
from regan_jax.walltime import TIMING_FIELDS

# Summary fields that are wall-clock measurements in one commit or another (today's are
# TIMING_FIELDS; older commits wrote a subset).
_TIMING = frozenset(TIMING_FIELDS)


def flatten(tree, prefix: str = "") -> dict:
    """``{'a.b': leaf}`` of nested dicts (lists are leaves)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def same_value(a, b, rtol: float) -> bool:
    """Equal, numbers within ``rtol`` relative (NaN equals NaN), lists element by element."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y, rtol) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= rtol * max(abs(a), abs(b))
    return a == b


def _relative(value, root: str):
    """A string leaf with its side's directory replaced by ``<root>`` (a record's path)."""
    return value.replace(root, "<root>") if isinstance(value, str) and root else value


def compare(a: dict, b: dict, rtol: float, ignore=frozenset(), roots=("", "")) -> dict:
    """``{'differ': [...], 'only_a': [...], 'only_b': [...]}`` of two flattened JSON trees.

    ``roots``: each side's directory, read as the same place in string leaves.
    """
    fa = {k: _relative(v, roots[0]) for k, v in flatten(a).items() if k not in ignore}
    fb = {k: _relative(v, roots[1]) for k, v in flatten(b).items() if k not in ignore}
    return {
        "differ": sorted(k for k in fa.keys() & fb.keys() if not same_value(fa[k], fb[k], rtol)),
        "only_a": sorted(fa.keys() - fb.keys()),
        "only_b": sorted(fb.keys() - fa.keys()),
    }


def compare_runs(before, after, rtol: float = 1e-6) -> dict:
    """Every run of ``before`` (``*/*/summary.json``) against the same run of ``after``.

    Returns ``{'runs', 'missing', 'extra', 'config_differ', 'summary_differ',
    'config_only_*', 'summary_only_*'}``: the run count; runs ``after`` lacks; runs only
    ``after`` has (more work there); ``{run: [keys]}`` of the configs and summaries that
    differ; the union of keys only one side wrote.
    """
    before, after = pathlib.Path(before), pathlib.Path(after)
    runs = {p.parent.relative_to(before) for p in before.glob("*/*/summary.json")}
    extra = {p.parent.relative_to(after) for p in after.glob("*/*/summary.json")} - runs
    out = {
        "runs": 0,
        "missing": [],
        "extra": sorted(map(str, extra)),
        "config_differ": {},
        "summary_differ": {},
    }
    for side in ("config", "summary"):
        out[f"{side}_only_before"], out[f"{side}_only_after"] = set(), set()
    for summary in sorted(before.glob("*/*/summary.json")):
        run = summary.parent.relative_to(before)
        out["runs"] += 1
        if not (after / run / "summary.json").exists():
            out["missing"].append(str(run))
            continue
        for side, ignore in (("config", frozenset()), ("summary", _TIMING)):
            a = json.loads((before / run / f"{side}.json").read_text())
            b = json.loads((after / run / f"{side}.json").read_text())
            result = compare(a, b, rtol, ignore, (str(before), str(after)))
            if result["differ"]:
                out[f"{side}_differ"][str(run)] = result["differ"]
            out[f"{side}_only_before"].update(result["only_a"])
            out[f"{side}_only_after"].update(result["only_b"])
    for key in [k for k in out if k.endswith(("_before", "_after"))]:
        out[key] = sorted(out[key])
    return out


def report(result: dict, rtol: float) -> str:
    """The comparison in a few lines: counts first, then what differs."""
    lines = [
        f"runs: {result['runs']}; missing after: {result['missing'] or 'none'}; "
        f"only after: {result['extra'] or 'none'}",
        f"same work (config.json, every common key): "
        f"{result['runs'] - len(result['missing']) - len(result['config_differ'])}; "
        f"differ: {result['config_differ'] or 'none'}",
        f"same results (summary.json, timing aside, rtol {rtol:g}): "
        f"{result['runs'] - len(result['missing']) - len(result['summary_differ'])}; "
        f"differ: {result['summary_differ'] or 'none'}",
    ]
    for side in ("config", "summary"):
        for which in ("before", "after"):
            keys = result[f"{side}_only_{which}"]
            if keys:
                lines.append(f"{side} keys only {which}: {', '.join(keys)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.slice_compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rtol", type=float, default=1e-6)

    def body() -> int:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        for path in (args.before, args.after):
            if not pathlib.Path(path).is_dir():
                raise experiments.UsageError(f"{path!r} is not a directory")
        if not args.rtol >= 0:
            raise experiments.UsageError(f"--rtol must be >= 0, got {args.rtol}")
        result = compare_runs(args.before, args.after, args.rtol)
        print(report(result, args.rtol))
        differ = ("missing", "extra", "config_differ", "summary_differ")
        return 1 if any(result[k] for k in differ) else 0

    return experiments.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
