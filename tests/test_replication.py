"""experiments.study.replication: the direction of an effect in two experiments, side by side."""

import numpy as np
import pytest

from experiments.study import replication
from regan_jax import stats

SEEDS = range(6)


def _rows(name, penalty, target, values, metric="recall"):
    return [
        {
            "config.name": name,
            "penalty": penalty,
            "target": target,
            "value": 1.0 if target else None,
            "effective_strength": 1.0 if target else None,
            "regulariser": "none",
            "seed": s,
            "run": f"{name}/{penalty}-{target}-seed{s}",
            "diverged": False,
            "config.penalty.g.kind": "none",
            "config.penalty.d.kind": "none",
            metric: v,
        }
        for s, v in zip(SEEDS, values)
    ]


BASE = np.array([0.50, 0.52, 0.49, 0.51, 0.53, 0.48])
JITTER = np.array([0.004, -0.003, 0.002, -0.004, 0.001, 0.0])


@pytest.mark.parametrize(
    "source_shift,replica_shift,expected",
    [
        (-0.3, -0.2, "carries"),
        (-0.3, +0.2, "reverses"),
        (-0.3, 0.0, "source only"),
        (0.0, +0.2, "replica only"),
        (0.0, 0.0, "neither"),
    ],
)
def test_the_direction_is_read_from_both_bootstrap_intervals(source_shift, replica_shift, expected):
    # A zero shift is pure jitter around 0 (its CI holds 0); a shift keeps its sign.
    def cell(shift):
        return (
            BASE + shift + (JITTER if shift else np.array([0.01, -0.01, 0.02, -0.02, 0.0, 0.005]))
        )

    rows = (
        _rows("a", "none", None, BASE)
        + _rows("a", "prox_l1", "g", cell(source_shift))
        + _rows("b", "none", None, BASE)
        + _rows("b", "prox_l1", "g", cell(replica_shift))
    )
    (r,) = replication.replication_rows(rows, "a", "b", metrics=("recall",))
    assert r["agreement"] == expected
    for which, shift in (("source", source_shift), ("replica", replica_shift)):
        d = cell(shift) - BASE
        expected_difference = stats.paired_difference(d, np.zeros_like(d))
        assert r[which].difference["median"] == pytest.approx(np.median(d))
        assert r[which].difference["low"] == pytest.approx(expected_difference["low"])
        if d.std() > 0:
            assert r[which].d_z == pytest.approx(d.mean() / d.std(ddof=1))


def test_only_cells_both_experiments_have_are_listed_and_the_table_says_so():
    rows = (
        _rows("a", "none", None, BASE)
        + _rows("a", "prox_l1", "g", BASE - 0.3 + JITTER)
        + _rows("a", "l2", "g", BASE + JITTER)
        + _rows("b", "none", None, BASE)
        + _rows("b", "prox_l1", "g", BASE - 0.2 + JITTER)
    )
    table = replication.replication_markdown(rows, "a", "b", metrics=("recall",))
    (row,) = [ln for ln in table.splitlines() if ln.startswith("| prox_l1")]
    assert row.endswith("| carries |") and "n = 6" in row
    assert "l2" not in table


def test_the_command_line_names_a_missing_experiment_and_exits_2(tmp_path, capsys):
    assert replication.main(["--workdir", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err
