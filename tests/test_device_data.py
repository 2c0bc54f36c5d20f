"""Batches made on the device (``data.device_feed``) and chunks of steps per dispatch.

The reference is the host iterator of ``regan_jax.data``: the device's batches
must be its batches bit for bit, and a run fed on the device must train what
the host-fed run trains -- bitwise for the MLP families (no convolution: the
compiled step is the same program), to float reassociation for a
convolutional family in a ``lax.scan`` chunk.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import experiments
from experiments import train as train_cli
from regan_jax import data, train
from regan_jax import steps as steps_lib


def _gathered(source, batch_size, seeds, steps):
    """``steps`` batches of the device feed (vmapped over members, jitted) and of the host."""
    cfg = data.default_config()
    cfg.name, cfg.batch_size = source.spec.name, batch_size
    host = data.make_iterator(cfg, 0, member_seeds=seeds, source=source)
    on_device = data.make_iterator(cfg, 0, member_seeds=seeds, source=source, on_device=True)
    feed = data.device_feed(source, batch_size)
    gather = jax.jit(jax.vmap(feed.gather, in_axes=(None, 0)))
    pairs = [
        (next(host), jax.device_get(gather(feed.arrays, next(on_device)))) for _ in range(steps)
    ]
    assert host.position == on_device.position
    return pairs


def test_dataset_rows_gathered_on_the_device_are_the_host_batches():
    """digits, 3 members (two share a seed), past an epoch boundary (28 batches of 64)."""
    source = data.load("digits", "train")
    pairs = _gathered(source, 64, [4, 1, 4], 30)
    for host, device in pairs:
        for name in ("image", "label"):
            assert host[name].dtype == device[name].dtype
            np.testing.assert_array_equal(device[name], host[name])
    np.testing.assert_array_equal(pairs[0][0]["image"][0], pairs[0][0]["image"][2])
    assert not np.array_equal(pairs[0][0]["image"][0], pairs[0][0]["image"][1])


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_drawn_on_the_device_is_the_host_draw(name):
    """Bitwise: the centres and sigma reach the compiled draw as values, not constants."""
    source = data.mixture(name, radius=1.0, sigma=0.01)
    for host, device in _gathered(source, 256, [0, 3], 5):
        np.testing.assert_array_equal(device["label"], host["label"])
        np.testing.assert_array_equal(device["image"], host["image"])


def test_chunks_stop_exactly_at_every_event():
    """``chunk_length`` against a brute-force walk over the steps."""
    config = experiments.load_config("digits_gan")
    config.steps, config.log.every, config.eval.fd_every = 137, 20, 30
    config.log.samples_every, config.log.checkpoint_every = 0, 45
    events = {s for s in range(1, 138) if s % 20 == 0 or s % 30 == 0 or s % 45 == 0 or s == 137}
    for per_call in (1, 4, 7, 500):
        step, stops = 0, []
        while step < config.steps:
            n = train.chunk_length(step, config, per_call)
            assert 1 <= n <= per_call
            step += n
            stops.append(step)
        assert events <= set(stops) and stops[-1] == 137
        # Between events, full chunks of per_call steps.
        starts = [0] + stops[:-1]
        for start, stop in zip(starts, stops):
            assert stop - start == per_call or stop in events


def _train(config_spec, overrides, root, **kwargs):
    configs = [
        experiments.load_config(config_spec, [("log.progress", "false"), *o]) for o in overrides
    ]
    dirs = [root / f"m{i}" for i in range(len(configs))]
    finals = train.train_members(configs, dirs, progress=False, **kwargs)
    return [jax.tree.leaves(jax.device_get(s.params)) for s in finals], dirs


GROUP = [
    [("seed", "0"), ("penalty.d.kind", "l2"), ("penalty.d.strength", "1e-3")],
    [("seed", "1"), ("penalty.d.kind", "l2"), ("penalty.d.strength", "1e-1")],
]
# Logging every 4 steps (the smoke configs' other events every 6) with chunks of 3:
# the 12 steps run as 3, 1, 2, 2, 3, 1 (stops at 4, 6, 8, 12) -- full chunks (one
# scan of 3) and short ones (the one-step program) both.
EVERY_4 = [("log.every", "4")]


def _chunks(config, per_call):
    step, lengths = 0, []
    while step < config.steps:
        lengths.append(train.chunk_length(step, config, per_call))
        step += lengths[-1]
    return lengths


@pytest.mark.parametrize(
    "spec,overrides",
    [
        ("ring8_gan:smoke", [m + EVERY_4 for m in GROUP]),
        pytest.param("digits_gan:smoke", [EVERY_4], marks=pytest.mark.slow),
    ],
)
def test_mlp_runs_fed_on_the_device_are_bitwise_the_host_fed_runs(tmp_path, spec, overrides):
    """A vmapped group (and, slow, one run) in chunks of up to 3 steps, bitwise the host-fed
    run. (The golden runs of tests/test_golden.py, recorded with host batches, check one step
    per call.)"""
    config = experiments.load_config(spec, overrides[0])
    assert _chunks(config, 3) == [3, 1, 2, 2, 3, 1]  # both compiled programs run
    expected, _ = _train(spec, overrides, tmp_path / "host", device_data=False)
    got, dirs = _train(spec, overrides, tmp_path / "dev", steps_per_call=3)
    for e, g in zip(expected, got):
        for a, b in zip(e, g):
            np.testing.assert_array_equal(b, a)
    # The logged metrics are those of the same steps.
    assert [r["step"] for r in train.read_metrics(dirs[0])] == [
        r["step"] for r in train.read_metrics(tmp_path / "host" / "m0")
    ]


def test_convolutional_run_in_chunks_equals_the_host_fed_run(tmp_path):
    """The cycle GAN's U-Nets in ``lax.scan`` chunks of 3: XLA compiles the loop body's
    convolutions apart from the one-step program, so the last bits may differ
    (measured 3e-8 after 12 steps); rtol 1e-5 bounds that, far below any change
    in what is computed (a skipped or repeated batch moves parameters by ~1e-3)."""
    assert _chunks(experiments.load_config("digits_cyclegan:smoke"), 3) == [3, 3, 3, 3]
    expected, _ = _train("digits_cyclegan:smoke", [[]], tmp_path / "host", device_data=False)
    got, _ = _train("digits_cyclegan:smoke", [[]], tmp_path / "dev", steps_per_call=3)
    moved = max(float(np.max(np.abs(a))) for a in expected[0])
    assert moved > 0
    for a, b in zip(expected[0], got[0]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "overrides",
    [[[]], [[("seed", "0")], [("seed", "1")]]],
    ids=["one_run", "group_of_2"],
)
def test_convolutional_run_one_step_per_call_is_bitwise_the_host_fed_run(tmp_path, overrides):
    """One step per call (the default), the cycle GAN fed on the device trains bitwise what
    it trains on host batches -- one run (the jitted step) and a vmapped group of two
    (``sweep.vmap_step``): a one-step chunk is the step itself, not a one-trip
    ``lax.scan``, whose convolutions XLA:CPU compiled apart (and ran 17x slower)."""
    config = experiments.load_config("digits_cyclegan:smoke", overrides[0])
    assert set(_chunks(config, 1)) == {1}
    expected, _ = _train("digits_cyclegan:smoke", overrides, tmp_path / "host", device_data=False)
    got, _ = _train("digits_cyclegan:smoke", overrides, tmp_path / "dev", steps_per_call=1)
    assert len(got) == len(overrides)
    for e, g in zip(expected, got):
        assert max(float(np.max(np.abs(a))) for a in e) > 0
        for a, b in zip(e, g):
            np.testing.assert_array_equal(b, a)


def test_a_one_step_chunk_is_the_step_and_longer_chunks_scan():
    """``scan_steps`` on a chunk of one: the step's own program (no loop in its jaxpr), its
    numbers; on a chunk of three: one ``scan``, the numbers of three calls in a row."""

    def step(state, x):
        state = state * 0.5 + jnp.sin(x)
        return state, {"state": state}

    xs = jnp.arange(6.0).reshape(3, 2)
    one = jax.make_jaxpr(steps_lib.scan_steps(step))(jnp.ones(2), xs[:1])
    assert "scan" not in str(one) and "while" not in str(one)
    got, metrics = jax.jit(steps_lib.scan_steps(step))(jnp.ones(2), xs[:1])
    expected = np.ones(2) * 0.5 + np.sin(np.arange(2.0))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_array_equal(metrics["state"], got)
    three = jax.make_jaxpr(steps_lib.scan_steps(step))(jnp.ones(2), xs)
    assert "scan" in str(three)
    got, metrics = jax.jit(steps_lib.scan_steps(step))(jnp.ones(2), xs)
    expected = np.ones(2)
    for x in np.arange(6.0).reshape(3, 2):
        expected = expected * 0.5 + np.sin(x)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_array_equal(metrics["state"], got)


def test_bad_steps_per_call_is_refused_before_anything_is_written(tmp_path, capsys):
    config = experiments.load_config("digits_gan:smoke")
    with pytest.raises(ValueError, match="steps_per_call must be an integer >= 1, got 0"):
        train.train_and_evaluate(config, tmp_path / "lib", steps_per_call=0)
    assert not (tmp_path / "lib").exists()
    code = train_cli.main(
        [
            "--config",
            "digits_gan:smoke",
            "--workdir",
            str(tmp_path / "cli"),
            "--steps-per-call",
            "0",
        ]
    )
    assert code == 2
    assert "--steps-per-call 0: expected an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()
