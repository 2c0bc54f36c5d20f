"""Checkpoints: round trip, retention, atomicity, and a SIGKILL-ed run resumed bit for bit."""

import json
import os
import signal
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _tiny_runs import unkey

from regan_jax import checkpoint, steps

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def make_state(seed, width=3):
    """A small TrainState with an Adam state and a typed key, values from ``seed``."""
    rng = np.random.default_rng(seed)
    params = {
        "g": {"kernel": jnp.asarray(rng.normal(size=(2, width)), jnp.float32)},
        "d": {
            "kernel": jnp.asarray(rng.normal(size=(width, 1)), jnp.float32),
            "bias": jnp.asarray(rng.normal(size=(1,)), jnp.float32),
        },
    }
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    opt_state = {net: optimizer.init(p) for net, p in params.items()}
    opt_state["d"] = opt_state["d"]._replace(count=jnp.asarray(seed, jnp.int32))
    return steps.TrainState(
        step=jnp.asarray(seed, jnp.int32),
        key=jax.random.key(seed),
        params=params,
        opt_state=opt_state,
        model_state={"d": {"batch_stats": {"u": jnp.full((1, width), float(seed))}}},
        diverged=jnp.asarray(seed % 2 == 1),
        diverged_step=jnp.asarray(-1, jnp.int32),
        diverged_reason=jnp.asarray(0, jnp.int32),
    )


def test_round_trip_restores_everything(tmp_path):
    saved = make_state(7)
    position = {"name": "digits", "seed": 0, "epoch": 3, "index": 11, "num_members": None}
    checkpoint.save(str(tmp_path), 7, saved, position)
    state, restored_position = checkpoint.restore_latest(str(tmp_path), make_state(2))
    assert restored_position == position
    assert jax.dtypes.issubdtype(state.key.dtype, jax.dtypes.prng_key)
    assert jax.random.key_impl(state.key) == jax.random.key_impl(saved.key)
    chex.assert_trees_all_equal(unkey(state), unkey(saved))
    chex.assert_trees_all_equal_dtypes(unkey(state), unkey(saved))
    # the restored key draws what the saved one drew
    np.testing.assert_array_equal(
        jax.random.normal(state.key, (3,)), jax.random.normal(saved.key, (3,))
    )


def test_keeps_the_latest_and_restores_the_latest(tmp_path):
    for step in (1, 2, 3):
        checkpoint.save(str(tmp_path), step, make_state(step), {"index": step}, keep=2)
    assert sorted(os.listdir(tmp_path)) == ["2", "3"]
    assert checkpoint.latest_step(str(tmp_path)) == 3
    state, position = checkpoint.restore_latest(str(tmp_path), make_state(0))
    assert position == {"index": 3} and int(state.step) == 3


def test_leftover_temporary_directory_is_not_a_checkpoint(tmp_path):
    """What a crash mid-save leaves behind (orbax's tmp dir) is ignored."""
    checkpoint.save(str(tmp_path), 3, make_state(3), {"index": 3})
    partial = tmp_path / "5.orbax-checkpoint-tmp"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "garbage").write_bytes(b"\x00" * 10)
    assert checkpoint.latest_step(str(tmp_path)) == 3
    state, position = checkpoint.restore_latest(str(tmp_path), make_state(0))
    assert position == {"index": 3}
    chex.assert_trees_all_equal(unkey(state), unkey(make_state(3)))
    checkpoint.save(str(tmp_path), 5, make_state(5), {"index": 5})  # the step can be redone
    assert checkpoint.latest_step(str(tmp_path)) == 5


def test_bad_input(tmp_path):
    assert checkpoint.restore_latest(str(tmp_path / "nothing"), make_state(0)) is None
    assert checkpoint.latest_step(str(tmp_path / "nothing")) is None
    checkpoint.save(str(tmp_path), 1, make_state(1), {})
    with pytest.raises(ValueError, match="checkpoint 1 already exists"):
        checkpoint.save(str(tmp_path), 1, make_state(1), {})
    with pytest.raises(ValueError, match="keep must be >= 1"):
        checkpoint.save(str(tmp_path), 2, make_state(1), {}, keep=0)
    with pytest.raises(ValueError, match="does not match the template"):
        checkpoint.restore_latest(str(tmp_path), make_state(0, width=4))


def _train(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    return subprocess.run(
        [sys.executable, os.path.join(HERE, "_tiny_runs.py"), "train", *map(str, args)],
        env=env,
        cwd=ROOT,
        timeout=600,
    )


def test_killed_run_resumes_bitwise(tmp_path):
    """SIGKILL during the save of checkpoint 4 (after checkpoint 2); resume; compare.

    The resumed run and a fresh, uninterrupted run of the same length are made
    by one process (one compiled step); their final states must be identical
    bit for bit: params, optimizer states, step, key.
    """
    interrupted, fresh = tmp_path / "interrupted", tmp_path / "fresh"
    killed = _train(6, "--die-saving", 4, interrupted)
    assert killed.returncode == -signal.SIGKILL
    left = sorted(os.listdir(interrupted / "checkpoints"))
    assert "2" in left and "4" not in left
    assert any(name.startswith("4.") and "tmp" in name for name in left), left
    assert checkpoint.latest_step(str(interrupted / "checkpoints")) == 2

    assert _train(6, interrupted, fresh).returncode == 0
    resumed_from = json.loads((interrupted / "resumed_from.json").read_text())
    assert resumed_from["step"] == 2
    assert (resumed_from["position"]["epoch"], resumed_from["position"]["index"]) == (0, 2)
    assert not (fresh / "resumed_from.json").exists()
    resumed, uninterrupted = np.load(interrupted / "final.npz"), np.load(fresh / "final.npz")
    assert sorted(resumed.files) == sorted(uninterrupted.files)
    assert int(resumed["step"]) == 6 and any("params" in k for k in resumed.files)
    for key in resumed.files:
        np.testing.assert_array_equal(resumed[key], uninterrupted[key], err_msg=key)
    assert sorted(n for n in os.listdir(interrupted / "checkpoints") if "tmp" not in n) == [
        "2",
        "4",
        "6",
    ]
