"""``config.data.train_size``: a class-stratified, seeded subset of the training split only."""

import numpy as np
import pytest

import experiments
from experiments import train as train_cli
from regan_jax import config as config_lib
from regan_jax import data
from regan_jax.data import subset


def _digits_cfg(**fields):
    cfg = data.default_config()
    cfg.update(name="digits", **fields)
    return cfg


def test_subset_is_stratified_seeded_and_leaves_the_held_out_split_whole():
    full = data.load("digits", "train")
    small = data.from_config(_digits_cfg(train_size=200, train_subset_seed=3))
    assert len(small) == 200
    # Each class within one row of its proportional share (independent count).
    share = 200 * np.bincount(full.labels, minlength=10) / len(full)
    assert np.all(np.abs(np.bincount(small.labels, minlength=10) - share) < 1)
    # The rows are the split's own rows.
    flat = full.images.reshape(len(full), -1)
    assert all(np.any(np.all(flat == x.reshape(-1), axis=1)) for x in small.images)
    again = data.from_config(_digits_cfg(train_size=200, train_subset_seed=3))
    other = data.from_config(_digits_cfg(train_size=200, train_subset_seed=4))
    np.testing.assert_array_equal(small.images, again.images)
    assert not np.array_equal(small.images, other.images)
    test = data.from_config(_digits_cfg(train_size=200), "test")
    np.testing.assert_array_equal(test.images, data.load("digits", "test").images)
    assert data.from_config(_digits_cfg()).images.shape[0] == 1500


def test_stratified_indices_counts_sum_and_have_no_repeats():
    labels = np.array([0] * 7 + [1] * 2 + [2] * 1)
    rows = subset.stratified_indices(labels, 5, seed=0)
    assert rows.size == 5 and np.unique(rows).size == 5
    # Quotas 3.5, 1.0, 0.5: floors 3, 1, 0 and the leftover row to class 0 (ties: lower class).
    np.testing.assert_array_equal(np.bincount(labels[rows], minlength=3), [4, 1, 0])


@pytest.mark.parametrize(
    "value, message",
    [
        (
            "0",
            "config.data.train_size must be None (the whole training split) or an integer >= 1, got 0",
        ),
        ("5000", "train_size=5000 must lie in [1, 1500] (the training split has 1500 examples)"),
    ],
)
def test_a_bad_train_size_exits_2_naming_the_value_and_writes_nothing(
    tmp_path, capsys, value, message
):
    workdir = tmp_path / "run"
    code = train_cli.main(
        [
            "--config",
            "digits_gan:smoke",
            "--workdir",
            str(workdir),
            f"--config.data.train_size={value}",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not workdir.exists()


def test_train_size_round_trips_through_config_json_and_old_runs_read_as_whole():
    config = experiments.load_config("digits_gan:smoke", [("data.train_size", "200")])
    assert config.data.train_size == 200
    saved = config_lib.to_json_dict(config)
    assert config_lib.from_json_dict(saved).data.train_size == 200
    del saved["data"]["train_size"], saved["data"]["train_subset_seed"]  # a run from before
    old = config_lib.from_json_dict(saved)
    assert old.data.train_size is None and old.data.train_subset_seed == 0
    config_lib.validate(old)
