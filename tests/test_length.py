"""experiments.study.length: the claims read at each length, side by side (hand-built rows)."""

import numpy as np
import pytest
from scipy import stats as scipy_stats
from study_rows import study_row

from experiments.study import length

SEEDS = range(5)
BASE = np.array([10.0, 11.0, 9.5, 10.5, 12.0])


def _row(name, penalty, target, strength, seed, steps, **scores):
    kind = "weight_decay" if penalty == "weight_decay" else "none"
    return study_row(
        name,
        penalty,
        target,
        strength,
        seed,
        **{"config.steps": steps, "run": f"{name}/{penalty}-{seed}"},
        **{"config.penalty.g.kind": kind, "config.penalty.d.kind": kind},
        **scores,
    )


def _experiment(times, shift):
    name, steps = f"digits_gan_length{times}x", 5000 * times
    return [_row(name, "none", None, None, s, steps, ppl=v) for s, v in zip(SEEDS, BASE)] + [
        _row(name, "weight_decay", "both", 1.0, s, steps, ppl=v)
        for s, v in zip(SEEDS, BASE + shift)
    ]


# At 1x weight decay shortens the path length clearly; at 2x it does nothing consistent.
SHIFT_1X = np.array([-3.0, -2.5, -3.5, -2.8, -3.1])
SHIFT_2X = np.array([0.4, -0.6, 0.3, -0.2, 0.1])


@pytest.fixture
def rows():
    return _experiment(1, SHIFT_1X) + _experiment(2, SHIFT_2X)


def test_lengths_parse_the_ablations_experiment_names(rows):
    assert length.lengths(rows) == {
        "digits_gan_length1x": ("digits_gan", 1),
        "digits_gan_length2x": ("digits_gan", 2),
    }
    assert length.lengths([{"config.name": "digits_gan"}]) == {}


def test_each_length_is_read_by_the_smoothness_claim_as_the_base_experiment(rows):
    found = [r for r in length.readings(rows) if r["metric"] == "ppl"]
    assert [(r["times"], r["steps"], r["cell"]) for r in found] == [
        (1, 5000, "weight_decay on both at e = 1"),
        (2, 10000, "weight_decay on both at e = 1"),
    ]
    one, two = found
    assert one["difference"] == pytest.approx(np.median(SHIFT_1X))
    # The claimed way (lower) at 1x: the one-sided paired t-test, Holm over the 2 directional tests.
    p = scipy_stats.ttest_1samp(SHIFT_1X, 0.0, alternative="less").pvalue
    assert one["holm_claimed"] == pytest.approx(min(1.0, 2 * p))
    assert one["reading"] == "claimed way"
    assert two["reading"] == "—"  # neither direction nor equivalence within d_z 0.5 at 5 seeds


def test_a_part_whose_reading_changes_with_the_length_depends_on_it(rows):
    depends = length.depends_on_length(length.readings(rows))
    key = ("l2_smoother", next(k[1] for k in depends if k[2] == "ppl"), "ppl")
    assert depends[(*key, "weight_decay on both at e = 1")] is True
    same = length.depends_on_length(
        length.readings(_experiment(1, SHIFT_1X) + _experiment(2, SHIFT_1X))
    )
    assert same[(*key, "weight_decay on both at e = 1")] is False
    table = length.markdown(rows)
    assert "1× (5,000 steps)" in table and "2× (10,000 steps)" in table
    assert "| yes |" in table


def test_the_command_needs_a_results_csv(tmp_path, capsys):
    assert length.main(["--workdir", str(tmp_path)]) == 2
    assert "run python -m experiments.figures --preset length first" in capsys.readouterr().err
