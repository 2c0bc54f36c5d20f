"""``results.csv``: one row per finished run, collected from run directories, and its CSV I/O.

A row holds the run directory, its study labels (``penalty``, ``target``,
``value``, ``regulariser``: :func:`experiments.study.members.describe`), its
seed, every key of its ``summary.json``, its calibration record's fields and
its full flattened config (``config.<key>``). :mod:`experiments.study.tables`
adds the study's own sample scores and writes the Markdown tables.
"""

import csv
import io
import json
import pathlib
import sys

from experiments.study import members
from regan_jax import config as config_lib
from regan_jax import effective_strength
from regan_jax import workdir as workdir_lib

# The first columns of results.csv: the run directory and its study labels.
LABELS = ("run", "penalty", "target", "value", "regulariser", "seed")


def collect(directories, out=None) -> list[dict]:
    """One row per finished run under ``directories``: labels, summary, flattened config.

    Columns: ``run`` (the run directory), the study labels ``penalty``,
    ``target``, ``value`` (:func:`experiments.study.members.describe`), ``seed``, every
    summary key, then ``config.<key>`` for every config field. Unfinished runs
    are skipped (and counted on stderr). Writes ``out`` atomically if given.

    Raises:
      ValueError: a directory that does not exist, or no finished run at all.
    """
    rows, unfinished, records = [], 0, {}
    for directory in map(pathlib.Path, directories):
        if not directory.is_dir():
            raise ValueError(f"collect: {str(directory)!r} is not a directory")
        for config_path in sorted(directory.rglob(workdir_lib.CONFIG_FILE)):
            run_dir = config_path.parent
            if not workdir_lib.is_finished(run_dir):
                unfinished += 1
                continue
            flat = config_lib.flatten(workdir_lib.read_json(config_path))
            labels = members.describe(flat)
            rows.append(
                {
                    "run": str(run_dir),
                    **labels,
                    "seed": flat["seed"],
                    **workdir_lib.read_json(run_dir / workdir_lib.SUMMARY_FILE),
                    **_calibration_columns(flat.get("eval.calibration"), records),
                    **{f"config.{k}": v for k, v in flat.items()},
                }
            )
    if unfinished:
        print(f"collect: skipped {unfinished} unfinished run(s)", file=sys.stderr)
    if not rows:
        raise ValueError(
            f"collect: no finished run (summary.json) under {', '.join(map(str, directories))}"
        )
    if out is not None:
        write_csv(out, rows)
    return rows


def _calibration_columns(path, records: dict) -> dict:
    """``calibration.<net>.<field>`` of a run's calibration record (none if it has none).

    ``records`` caches the records read so far by path.
    """
    if not path:
        return {}
    if path not in records:
        try:
            records[path] = effective_strength.load(path)
        except ValueError as e:  # Moved with its runs: the summaries keep the effective strengths.
            print(f"collect: no calibration columns: {e}", file=sys.stderr)
            records[path] = {"networks": {}}
    return {
        f"calibration.{net}.{field}": values[field]
        for net, values in records[path]["networks"].items()
        for field in effective_strength.FIELDS
    }


def write_csv(path, rows: list[dict]) -> None:
    """Writes rows as CSV (columns: labels, summary keys, config keys), atomically."""
    summary_keys = sorted(
        {k for r in rows for k in r}
        - set(LABELS)
        - {k for r in rows for k in r if k.startswith("config.")}
    )
    config_keys = sorted({k for r in rows for k in r if k.startswith("config.")})
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=[*LABELS, *summary_keys, *config_keys], extrasaction="raise"
    )
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _cell(v) for k, v in r.items()})
    workdir_lib.write_text_atomic(path, buffer.getvalue())


def read_csv(path) -> list[dict]:
    """Rows of a :func:`collect` CSV with numbers, booleans and empties parsed back."""
    with open(path, newline="") as f:
        return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def _parse_cell(text: str):
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
