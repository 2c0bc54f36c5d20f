"""The cycle-consistent GAN family: losses, step (vmap, 4 devices), data, scores, training.

References are independent: float64 numpy for the losses, scikit-learn's
digits for the unpaired data, single runs for vmapped members, one device
for four. The 4-device run happens in a subprocess (this file run as a
script) with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``.
"""

import functools
import json
import os
import shutil
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.datasets

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from _tiny_runs import flat, unkey  # noqa: E402

from regan_jax import config as config_lib  # noqa: E402
from regan_jax import data, losses, models, penalties, sweep  # noqa: E402
from regan_jax.data import unpaired  # noqa: E402
from regan_jax.evaluation import cyclegan as cyclegan_eval  # noqa: E402
from regan_jax.families import cyclegan  # noqa: E402

SHAPE = (4, 4, 2)  # one 4x4 grey image per domain
ROWS, STEPS = 8, 3


# --- losses ------------------------------------------------------------------------------


def test_least_squares_loss_by_hand():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=7), rng.normal(size=7)
    loss = losses.gan_loss("least_squares")
    d_ref = sum((r - 1) ** 2 for r in real) / 7 + sum(f**2 for f in fake) / 7
    g_ref = sum((f - 1) ** 2 for f in fake) / 7
    np.testing.assert_allclose(loss.d(jnp.float32(real), jnp.float32(fake)), d_ref, rtol=1e-6)
    np.testing.assert_allclose(loss.g(jnp.float32(fake)), g_ref, rtol=1e-6)
    np.testing.assert_allclose(loss.d(jnp.ones(3), jnp.zeros(3)), 0.0)  # D at its targets


def test_cycle_and_identity_losses_by_hand():
    rng = np.random.default_rng(1)
    a, ra, b, rb = (rng.uniform(-1, 1, (3, 4, 4, 1)) for _ in range(4))
    per_pixel = lambda x, y: np.sum(np.abs(x - y)) / x.size  # noqa: E731  (N·H·W·C entries)
    args = [jnp.float32(x) for x in (a, ra, b, rb)]
    np.testing.assert_allclose(
        cyclegan.cycle_consistency_loss(*args), per_pixel(ra, a) + per_pixel(rb, b), rtol=1e-6
    )
    np.testing.assert_allclose(
        cyclegan.identity_loss(*args), per_pixel(ra, a) + per_pixel(rb, b), rtol=1e-6
    )
    assert float(cyclegan.cycle_consistency_loss(args[0], args[0], args[2], args[2])) == 0.0


# --- the step ------------------------------------------------------------------------------


def tiny(gradient_penalty="none", spectral_norm=False, arch="mlp", identity_weight=0.5):
    """``(models, optimizers, loss_cfg, penalty_cfgs)`` of a few-unit cycle GAN; L2 on ``g``."""
    model_cfg = models.default_config()
    model_cfg.update(arch=arch, g_width=8, d_width=8, mlp_layers=1, spectral_norm=spectral_norm)
    nets = cyclegan.make_models(model_cfg, models.DataSpec(SHAPE, 100))
    optimizer_cfg = penalties.default_optimizer_config()
    optimizer_cfg.learning_rate = 1e-2
    penalty_cfgs = {net: penalties.default_penalty_config() for net in cyclegan.NETWORKS}
    penalty_cfgs["g"].update(kind="l2", strength=1e-2)
    optimizers = {
        net: penalties.build_optimizer(optimizer_cfg, cfg) for net, cfg in penalty_cfgs.items()
    }
    loss_cfg = cyclegan.loss_config()
    loss_cfg.update(gradient_penalty=gradient_penalty, identity_weight=identity_weight)
    return nets, optimizers, loss_cfg, penalty_cfgs


def batches(seed, count, rows=ROWS):
    rng = np.random.default_rng(seed)
    return [
        {
            "image": rng.uniform(-1, 1, (rows,) + SHAPE).astype(np.float32),
            "label": rng.integers(0, 100, rows).astype(np.int32),
        }
        for _ in range(count)
    ]


@functools.lru_cache(maxsize=None)
def setup():
    nets, optimizers, loss_cfg, penalty_cfgs = tiny()
    step = functools.partial(
        cyclegan.cyclegan_step,
        models=nets,
        optimizers=optimizers,
        loss_cfg=loss_cfg,
        penalty_cfgs=penalty_cfgs,
    )
    init = functools.partial(
        cyclegan.init_cyclegan_state, nets, optimizers, example_batch=batches(0, 1)[0]
    )
    return nets, step, init, loss_cfg


def test_step_losses_equal_a_float64_reference():
    nets, step, init, loss_cfg = setup()
    state, batch = init(jax.random.key(0)), batches(1, 1)[0]
    _, m = jax.jit(step)(state, batch)
    a, b = (np.asarray(x, np.float64) for x in unpaired.split_domains(batch["image"]))
    p = state.params

    def run(net, x):
        return np.asarray(nets[net].apply({"params": p[net]}, jnp.float32(x)), np.float64)

    fake_b, fake_a = run("g", a), run("f", b)
    mae = lambda x, y: np.mean(np.abs(x - y))  # noqa: E731
    cycle = mae(run("f", fake_b), a) + mae(run("g", fake_a), b)
    identity = mae(run("g", b), b) + mae(run("f", a), a)
    adversarial = np.mean((run("d_b", fake_b) - 1) ** 2) + np.mean((run("d_a", fake_a) - 1) ** 2)
    d_a = np.mean((run("d_a", a) - 1) ** 2) + np.mean(run("d_a", fake_a) ** 2)
    np.testing.assert_allclose(m["cycle"], cycle, rtol=1e-5)
    np.testing.assert_allclose(m["identity"], identity, rtol=1e-5)
    np.testing.assert_allclose(m["g_loss"], adversarial, rtol=1e-5)
    np.testing.assert_allclose(m["gen_loss"], adversarial + 10 * cycle + 0.5 * identity, rtol=1e-5)
    np.testing.assert_allclose(m["d_a_loss"], d_a, rtol=1e-5)


SEEDS, G_STRENGTH = (0, 1, 0), (0.0, 1e-2, 1e-1)


def single(k, stream):
    nets, step, init, _ = setup()
    state = init(jax.random.key(SEEDS[k]))
    state = state.replace(
        opt_state={
            **state.opt_state,
            "g": penalties.set_hyperparams(state.opt_state["g"], strength=G_STRENGTH[k]),
        }
    )
    jitted = jax.jit(step)
    for batch in stream:
        state, _ = jitted(state, batch)
    return state


def test_vmapped_members_equal_their_single_runs():
    _, step, init, _ = setup()
    streams = [batches(10 + k, STEPS) for k in range(len(SEEDS))]
    states = sweep.init_sweep(init, SEEDS, {"g": {"strength": G_STRENGTH}})
    vmapped = sweep.vmap_step(step, shared_batch=False)
    for t in range(STEPS):
        states, metrics = vmapped(
            states, jax.tree.map(lambda *x: np.stack(x), *[s[t] for s in streams])
        )
    assert metrics["cycle"].shape == (len(SEEDS),)
    finals = [sweep.member(states, k) for k in range(len(SEEDS))]
    for k, member in enumerate(finals):
        assert int(member.step) == STEPS and not bool(member.diverged)
        chex.assert_trees_all_close(
            unkey(member), unkey(single(k, streams[k])), rtol=1e-5, atol=1e-6
        )
    g0, g2 = (
        np.asarray(f.params["g"]["encode"]["dense_0"]["kernel"]) for f in (finals[0], finals[2])
    )
    assert not np.allclose(g0, g2)  # same seed, other strength: the hyperparameter reached it


def parallel_main(out):
    """Subprocess: 3 steps of a conv cycle GAN with R1 and spectral norm, on 1 and 4 devices."""
    from regan_jax import parallel

    assert jax.device_count() == 4, jax.devices()
    nets, optimizers, loss_cfg, penalty_cfgs = tiny("r1", spectral_norm=True, arch="dcgan")
    step = functools.partial(
        cyclegan.cyclegan_step,
        models=nets,
        optimizers=optimizers,
        loss_cfg=loss_cfg,
        penalty_cfgs=penalty_cfgs,
    )
    stream = batches(3, STEPS)
    init = cyclegan.init_cyclegan_state(nets, optimizers, jax.random.key(2), stream[0])
    results = {}
    for name, wrapped in (
        ("single", jax.jit(step)),
        ("shard_map", parallel.shard_map_step(step, parallel.make_mesh(4))),
    ):
        state = jax.tree.map(jnp.copy, init)
        for batch in stream:
            state, metrics = wrapped(state, batch)
        results.update(
            {f"{name}/{k}": v for k, v in flat({"state": state, "metrics": metrics}).items()}
        )
    np.savez(out, **results)


@pytest.mark.slow  # ~20 s of CPU (a subprocess that compiles the step twice)
def test_four_devices_equal_one(tmp_path):
    out = str(tmp_path / "parallel.npz")
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        PYTHONPATH=ROOT,
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
    )
    subprocess.run(
        [sys.executable, os.path.abspath(__file__), "parallel", out],
        check=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    results = dict(np.load(out))
    single_keys = [k for k in results if k.startswith("single/")]
    assert any("batch_stats" in k for k in single_keys)  # spectral norm's state is carried
    assert float(results["single/metrics/gp"]) > 0 and int(results["single/state/step"]) == 3
    for key in single_keys:
        expected, got = results[key], results[key.replace("single/", "shard_map/")]
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=key)


# --- data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def test_unpaired_digits_are_disjoint_inverted_and_labelled(cache):
    digits = sklearn.datasets.load_digits()
    pixels, targets = digits.images.astype(np.float64), digits.target
    for split, part, n in (("train", slice(None, 1500), 750), ("test", slice(1500, None), 148)):
        ds = data.load("unpaired_digits", split, data_dir=cache)
        assert ds.spec == data.DataSpec((8, 8, 2), 100, "unpaired_digits") and len(ds) == n
        _, _, a_index, b_index = unpaired.unpaired_arrays(
            digits.images[part].astype(np.uint8)[..., None],
            targets[part],
            16,
            ("train", "test").index(split),
        )
        assert not set(a_index) & set(b_index)  # disjoint images
        assert len(set(a_index) | set(b_index)) == 2 * n  # each image used once
        src, lab = pixels[part], targets[part]
        # A: colour inversion 1 - x of the [0, 1] pixels, in [-1, 1]: 2 (16 - p) / 16 - 1
        np.testing.assert_allclose(ds.images[..., 0], 2 * (16 - src[a_index]) / 16 - 1, atol=1e-6)
        np.testing.assert_allclose(ds.images[..., 1], 2 * src[b_index] / 16 - 1, atol=1e-6)
        np.testing.assert_array_equal(ds.labels, 10 * lab[a_index] + lab[b_index])
        label_a, label_b = unpaired.domain_labels(ds.labels)
        np.testing.assert_array_equal(label_a, lab[a_index])
        a, b = unpaired.split_domains(ds.images)
        np.testing.assert_allclose(unpaired.invert(a)[..., 0], 2 * src[a_index] / 16 - 1, atol=1e-6)
        np.testing.assert_array_equal(b, ds.images[..., 1:])
    # The test split's rows come from the last 297 digits only: disjoint from train.
    assert len(data.load("unpaired_digits", "test", data_dir=cache)) == 297 // 2


def _write_idx(path, array):
    import gzip
    import struct

    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    with gzip.open(str(path) + ".gz", "wb") as f:
        f.write(header + array.astype(">u1").tobytes())


def test_unpaired_fashion_mnist_from_idx_files(tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path / "fm"
    root.mkdir()
    arrays = {}
    for prefix, n in (("train", 10), ("t10k", 7)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        _write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
        arrays[prefix] = images.astype(np.float64), labels
    ds = data.load(
        "unpaired_fashion_mnist", "test", idx_dir=str(root), data_dir=str(tmp_path / "c")
    )
    images, labels = arrays["t10k"]
    order = np.random.default_rng([unpaired.UNPAIRED_SEED, 1]).permutation(7)
    a_index, b_index = order[:3], order[3:6]
    assert ds.images.shape == (3, 28, 28, 2)
    np.testing.assert_allclose(ds.images[..., 0], (255 - images[a_index]) / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(ds.images[..., 1], images[b_index] / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(ds.labels, 10 * labels[a_index] + labels[b_index])


def test_unpaired_fashion_mnist_without_files_says_how(tmp_path, monkeypatch):
    monkeypatch.delenv("REGAN_DATA_DIR", raising=False)
    monkeypatch.setattr(data.builders, "DEBIAN_DATASETS_DIR", str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        data.load("unpaired_fashion_mnist", data_dir=str(tmp_path / "c"))


@pytest.mark.fashion_mnist
@pytest.mark.slow
def test_real_unpaired_fashion_mnist(tmp_path):
    if data.idx_directory("fashion_mnist") is None:
        pytest.skip("no Fashion-MNIST IDX files (apt-get install dataset-fashion-mnist)")
    ds = data.load("unpaired_fashion_mnist", "test", data_dir=str(tmp_path))
    assert ds.images.shape == (5000, 28, 28, 2)
    label_a, label_b = unpaired.domain_labels(ds.labels)
    assert set(np.unique(label_a)) == set(range(10)) == set(np.unique(label_b))


# --- scores ----------------------------------------------------------------------------------


def test_scores_against_independent_computations(cache):
    from regan_jax import metrics
    from regan_jax.evaluation import load_classifier

    test = data.load("unpaired_digits", "test", data_dir=cache)
    held = cyclegan_eval.held_out("unpaired_digits", test)
    digits = sklearn.datasets.load_digits()
    plain = digits.images[1500:].astype(np.float32)[..., None] / 8 - 1
    _, _, a_index, b_index = unpaired.unpaired_arrays(
        digits.images[1500:].astype(np.uint8)[..., None], digits.target[1500:], 16, 1
    )
    clf = load_classifier("digits")
    # The true inverse: G(A) are the plain sources of A, compared with B's plain images.
    real = cyclegan_eval.score_translations(held, unpaired.invert, unpaired.invert)
    feats = np.asarray(clf.features(plain))
    np.testing.assert_allclose(
        real["fd"], metrics.frechet_distance(feats[b_index], feats[a_index]), rtol=1e-4
    )
    expected = np.mean(np.asarray(clf.predict(plain[a_index])) == digits.target[1500:][a_index])
    assert real["content_accuracy"] == pytest.approx(expected) and expected > 0.9
    assert real["cycle_error_a"] == real["cycle_error_b"] == 0.0
    # A translator that halves and inverts: F(G(a)) = a / 4, error (3/4) mean |a|.
    half = cyclegan_eval.score_translations(held, lambda x: -x / 2, lambda x: -x / 2)
    a = 2 * (16 - digits.images[1500:][a_index].astype(np.float64)) / 16 - 1
    assert half["cycle_error_a"] == pytest.approx(0.75 * np.mean(np.abs(a)), rel=1e-6)
    nulls = cyclegan_eval.null_scores(
        experiments_config("digits_cyclegan"), jax.random.key(0), test
    )
    assert (
        nulls["real"]["fd"] < nulls["identity"]["fd"] and nulls["real"]["fd"] < nulls["noise"]["fd"]
    )
    assert nulls["identity"]["cycle_error_a"] == 0.0 and nulls["noise"]["cycle_error_a"] > 0.5
    assert cyclegan_eval.score_translations(
        held, lambda x: x * np.nan, unpaired.invert
    ) == dict.fromkeys(cyclegan_eval.SCORES)


def experiments_config(name, *overrides):
    import experiments

    return experiments.load_config(name, overrides)


# --- config, study targets -------------------------------------------------------------------


def test_config_schema_and_validation():
    config = experiments_config("digits_cyclegan:smoke")
    assert sorted(config.optimizer.keys()) == sorted(cyclegan.NETWORKS)
    assert config.loss.kind == "least_squares" and config.loss.cycle_weight == 10.0
    for key, value, message in (
        ("data.name", "digits", "needs an unpaired"),
        ("loss.d_steps", 2, "d_steps must be 1"),
        ("loss.cycle_weight", -1.0, "cycle_weight must be >= 0"),
    ):
        bad = config_lib.copy_config(config)
        config_lib.override(bad, key, value)
        with pytest.raises(ValueError, match=message):
            config_lib.validate(bad)
    gan = experiments_config("digits_gan")
    assert "cycle_weight" not in gan.loss  # other families' schema is unchanged


def test_study_target_groups():
    from experiments.study import members, vocabulary

    base = experiments_config("digits_cyclegan:smoke")
    # No 'both': 'all' already names every network, and a target reads back as given.
    assert vocabulary.targets("cyclegan") == cyclegan.NETWORKS + (
        "generators",
        "discriminators",
        "all",
    )
    with pytest.raises(ValueError, match="both"):
        members.member_config(base, "prox_l1", "both", 1e-3, 0)
    for target, nets in (
        ("generators", {"g", "f"}),
        ("discriminators", {"d_a", "d_b"}),
        ("all", set(cyclegan.NETWORKS)),
        ("d_b", {"d_b"}),
    ):
        config = members.member_config(base, "prox_l1", target, 1e-3, 0)
        on = {n for n in cyclegan.NETWORKS if config.penalty[n].kind == "prox_l1"}
        assert on == nets
        labels = members.describe(config_lib.flatten(config_lib.to_json_dict(config)))
        assert (labels["penalty"], labels["target"], labels["value"]) == ("prox_l1", target, 1e-3)
    gan = members.member_config(experiments_config("digits_gan:smoke"), "l1", "both", 1e-3, 0)
    assert members.describe(config_lib.flatten(config_lib.to_json_dict(gan)))["target"] == "both"
    # The study's tables read a group's sparsity as the mean over its networks.
    from experiments.study import cells

    row = {
        "target": "generators",
        "penalty": "prox_l1",
        "config.model_type": "cyclegan",
        "sparsity_g": 0.2,
        "sparsity_f": 0.4,
        "sparsity_d_a": 0.0,
        "sparsity_d_b": 0.0,
        **{f"config.penalty.{n}.kind": "none" for n in cyclegan.NETWORKS},
    }
    assert cells.metric_value(row, "sparsity") == pytest.approx(0.3)


# --- training end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, cache):
    from regan_jax import train

    workdir = tmp_path_factory.mktemp("cyclegan")
    config = experiments_config(
        "digits_cyclegan:smoke",
        ("data.data_dir", cache),
        ("log.progress", "false"),
        ("log.tensorboard", "false"),
    )
    state = train.train_and_evaluate(config, workdir)
    return config, workdir, state


def test_smoke_training_writes_the_scores(smoke_run):
    config, workdir, state = smoke_run
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["steps"] == 12 and summary["diverged"] is False
    assert set(cyclegan_eval.SCORES) <= set(summary)
    assert {f"sparsity_{n}" for n in cyclegan.NETWORKS} <= set(summary)
    rows = [json.loads(r) for r in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "fd" in r] == [6, 12]
    # The summary's scores are those of the final state, recomputed here.
    test = data.load("unpaired_digits", "test", data_dir=config.data.data_dir)
    held = cyclegan_eval.held_out("unpaired_digits", test)
    nets = cyclegan.make_models(config.model, test.spec)
    g = lambda x: nets["g"].apply({"params": state.params["g"]}, jnp.asarray(x))  # noqa: E731
    f = lambda x: nets["f"].apply({"params": state.params["f"]}, jnp.asarray(x))  # noqa: E731
    again = cyclegan_eval.score_translations(held, g, f)
    for key in cyclegan_eval.SCORES:
        assert summary[key] == pytest.approx(again[key], rel=1e-4, abs=1e-6), key


def test_a_run_loads_its_test_split_once(tmp_path, cache, monkeypatch):
    """The sampler's pool and the evaluation share one load (issue #25, item 2c)."""
    from regan_jax import train
    from regan_jax.data import pipeline

    loads, load = [], pipeline.load

    def counted(name, split="train", **kwargs):
        loads.append(split)
        return load(name, split, **kwargs)

    monkeypatch.setattr(pipeline, "load", counted)
    config = experiments_config(
        "digits_cyclegan:smoke",
        ("data.data_dir", cache),
        ("log.progress", "false"),
        ("log.tensorboard", "false"),
    )
    train.train_and_evaluate(config, tmp_path / "run")
    assert sorted(loads) == ["test", "train"]


def test_samples_are_translation_strips(smoke_run, tmp_path):
    from experiments import sample as sample_cli
    from regan_jax import sampling

    config, workdir, state = smoke_run
    run = sampling.load_run(workdir)
    strips, labels = sampling.draw(run, 3, seed=1)
    assert strips.shape == (3, 26, 17, 1) and labels is None
    pool = data.load("unpaired_digits", "test", data_dir=config.data.data_dir).images
    a, b = strips[:, :8, :8], strips[:, :8, 9:]
    rows = [int(np.flatnonzero((pool[..., :1] == a[i]).all(axis=(1, 2, 3)))[0]) for i in range(3)]
    np.testing.assert_array_equal(b, pool[rows][..., 1:])  # a and b of one held-out row
    g_of_a = run.program.models["g"].apply({"params": state.params["g"]}, jnp.asarray(a))
    np.testing.assert_allclose(strips[:, 9:17, :8], g_of_a, atol=1e-5)
    assert np.all(strips[:, 8, :] == 0.0) and np.all(strips[:, :, 8] == 0.0)  # grey lines
    assert (
        sample_cli.main(["--workdir", str(workdir), "--num", "4", "--out", str(tmp_path / "t.png")])
        == 0
    )


def test_resumed_run_equals_uninterrupted(smoke_run, tmp_path):
    from regan_jax import train

    config, workdir, state = smoke_run
    resumed = tmp_path / "resumed"
    shutil.copytree(workdir, resumed)
    os.remove(resumed / "summary.json")
    shutil.rmtree(resumed / "checkpoints" / "12")  # as if stopped after the step-6 checkpoint
    final = train.train_and_evaluate(config, resumed)
    chex.assert_trees_all_equal(unkey(final), unkey(state))
    first, second = (json.loads((w / "summary.json").read_text()) for w in (workdir, resumed))
    for key in cyclegan_eval.SCORES:
        assert first[key] == second[key], key


if __name__ == "__main__":
    if sys.argv[1] == "parallel":
        parallel_main(sys.argv[2])
