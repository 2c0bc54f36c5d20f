"""The protocol-v2 scores in the evaluation: near-zero weights, generalisation, D overfitting.

References: numpy for the near-zero fraction, hand computation for r_t / r_v
through the evaluator, FD∞'s own function for the train-vs-held-out gap, and
the two nulls on the digits reference (training images plus small noise are
flagged as copies, held-out images are not), also as the study's null
references.
"""

import collections
import json

import jax
import numpy as np
import pytest

import experiments
from experiments import train as train_cli
from experiments.study import protocol_check, runner
from regan_jax import data, evaluation, metrics
from regan_jax.evaluation import generalisation


def test_near_zero_of_initial_matches_numpy():
    rng = np.random.default_rng(0)
    initial = {
        "a": {"kernel": rng.standard_normal((6, 5)) * 0.3, "bias": np.zeros(5)},
        "b": {"kernel": rng.standard_normal((5, 4)) * 2.0},
    }
    trained = jax.tree.map(lambda w: w * 1e-3 * rng.uniform(0, 2, w.shape), initial)
    stats = jax.jit(lambda p, p0: metrics.weight_stats(p, initial=p0))(trained, initial)
    count = sum(
        np.sum(np.abs(trained[k]["kernel"]) < 1e-3 * np.sqrt(np.mean(initial[k]["kernel"] ** 2)))
        for k in "ab"
    )
    assert float(stats["near_zero_of_initial"]) == pytest.approx(count / 50, abs=1e-7)
    assert 0 < count < 50
    summary = evaluation.weight_summary({"g": trained}, {"g": initial})
    assert summary["near_zero_g"] == pytest.approx(count / 50, abs=1e-7)
    assert "near_zero_g" not in evaluation.weight_summary({"g": trained})


@pytest.fixture(scope="module")
def digits_refs():
    test = data.load("digits", "test")
    train = data.load("digits", "train")
    rows, pool_rows = evaluation.null_halves(test.labels)
    held = evaluation.make_reference("digits", images=test.images[rows], labels=test.labels[rows])
    train_ref = evaluation.make_reference("digits", images=train.images, labels=train.labels)
    return held, train_ref, test.images[pool_rows]


def _from_pool(pool, noise):
    def sample_fn(key, n):
        rows = jax.random.choice(key, len(pool), (n,), replace=n > len(pool))
        x = pool[np.asarray(rows)]
        return np.clip(x + noise * np.asarray(jax.random.normal(key, x.shape)), -1, 1)

    return sample_fn


def test_evaluate_with_the_training_set_flags_the_memoriser_not_held_out_images(digits_refs):
    held, train, real_pool = digits_refs
    scores = {}
    for name, pool, noise in (("memoriser", train.images, 0.05), ("real", real_pool, 0.0)):
        scores[name] = evaluation.evaluate(
            _from_pool(pool, noise),
            jax.random.key(1),
            held,
            num_samples=148,
            batch_size=148,
            train=train,
            progress=False,
        )
    assert set(generalisation.GENERALISATION_METRICS) <= set(scores["real"])
    mem, real = scores["memoriser"], scores["real"]
    assert mem["copying_pixels"] < -3 and mem["copying_features"] < -3
    assert abs(real["copying_pixels"]) < 2 and abs(real["copying_features"]) < 2
    assert mem["memorisation_pixels"] > 0.8 and real["memorisation_pixels"] < 0.2
    # FD∞ is not asserted here: at N <= 148 against D = 64 features its line is
    # too noisy to order two scores (metrics.frechet_distance_infinity).


def test_the_fd_inf_gap_is_fd_inf_against_held_out_minus_against_train(digits_refs):
    held, train, _ = digits_refs
    samples = evaluation.memoriser_samples(train.images, jax.random.key(3), 148)
    features = np.asarray(held.feature_net.features(samples))
    key = jax.random.key(4)
    scores = generalisation.generalisation_scores(train, held, samples, features, key)
    key_held, key_train = jax.random.split(key)
    fd_held = metrics.frechet_distance_infinity(held.features, features, key=key_held)["fd_inf"]
    fd_train = metrics.frechet_distance_infinity(train.features, features, key=key_train)["fd_inf"]
    assert scores["fd_inf"] == pytest.approx(fd_held, rel=1e-12)
    assert scores["fd_inf_train"] == pytest.approx(fd_train, rel=1e-12)
    assert scores["fd_inf_gap"] == pytest.approx(fd_held - fd_train, rel=1e-12, abs=1e-12)
    assert scores["fd_inf_gap"] > 0  # copies of the training set: closer to it


def test_generalisation_scores_equal_the_metrics_computed_without_a_cache(digits_refs, monkeypatch):
    """The copying and memorisation scores, now from statistics kept by content, are bit for
    bit the metrics' own functions recomputing everything (the path before), cold and warm."""
    held, train, _ = digits_refs
    samples = evaluation.memoriser_samples(train.images, jax.random.key(5), 148)
    features = np.asarray(held.feature_net.features(samples))
    cells = generalisation.copying_cells(len(samples))
    flat = [x.reshape(len(x), -1) for x in (train.images, held.images, samples)]
    points = {"pixels": flat, "features": (train.features, held.features, features)}
    expected = {}
    for space, (t, p, q) in points.items():
        expected[f"copying_{space}"] = metrics.copying_statistic(t, p, q, num_cells=cells)
        expected[f"memorisation_{space}"] = metrics.memorisation_ratio(t, p, q)
    monkeypatch.setattr(generalisation, "_SPLIT_CACHE", collections.OrderedDict())
    for _ in ("cold", "warm"):
        scores = generalisation.generalisation_scores(
            train, held, samples, features, jax.random.key(6)
        )
        assert {name: scores[name] for name in expected} == expected
    assert len(generalisation._SPLIT_CACHE) == 2  # pixels and features, each fitted once
    assert expected["memorisation_pixels"] > 0.5  # memoriser samples: a score that can differ


def test_cached_split_statistics_are_keyed_by_content(monkeypatch):
    rng = np.random.default_rng(0)
    train, held = rng.standard_normal((60, 5)), rng.standard_normal((20, 5))
    monkeypatch.setattr(generalisation, "_SPLIT_CACHE", collections.OrderedDict())
    first = generalisation.cached_split_statistics(train, held, 3)
    assert generalisation.cached_split_statistics(train.copy(), held.copy(), 3) is first
    fresh = metrics.split_statistics(train, held, num_cells=3)
    np.testing.assert_array_equal(first.nearest_train, fresh.nearest_train)
    np.testing.assert_array_equal(first.held_out_cells, fresh.held_out_cells)
    assert not first.nearest_train.flags.writeable
    moved = held.copy()
    moved[0, 0] += 1e-9
    assert generalisation.cached_split_statistics(train, moved, 3) is not first
    assert generalisation.cached_split_statistics(train, held, 4).num_cells == 4
    # The oldest entry is dropped beyond SPLIT_CACHE_SIZE (2).
    assert len(generalisation._SPLIT_CACHE) == generalisation.SPLIT_CACHE_SIZE
    again = generalisation.cached_split_statistics(train, held, 3)
    assert again is not first
    generalisation.clear_split_cache()
    assert not generalisation._SPLIT_CACHE
    assert generalisation.cached_split_statistics(train, held, 3) is not again


def test_memoriser_samples_are_training_images_plus_clipped_noise():
    train = np.linspace(-1, 1, 5 * 4).reshape(5, 2, 2, 1).astype(np.float32)
    x = evaluation.memoriser_samples(train, jax.random.key(0), 5, noise=0.05)
    # Without replacement up to the set's size: each training image once, within the noise.
    nearest = np.argmin(((x[:, None] - train[None]) ** 2).reshape(5, 5, -1).sum(-1), axis=1)
    assert sorted(nearest) == list(range(5))
    assert np.all(np.abs(x - train[nearest]) < 0.05 * 6) and np.all(np.abs(x) <= 1)
    assert np.abs(x - train[nearest]).std() == pytest.approx(0.05, rel=0.5)
    assert evaluation.memoriser_samples(train, jax.random.key(0), 12).shape == (12, 2, 2, 1)
    with pytest.raises(ValueError, match="n >= 1"):
        evaluation.memoriser_samples(train, jax.random.key(0), 0)


def test_the_memoriser_null_needs_the_training_set(digits_refs):
    held, _, _ = digits_refs
    with pytest.raises(ValueError, match="needs the training set"):
        evaluation.null_scores(held, jax.random.key(0), 20, kinds=[evaluation.MEMORISER])


def test_the_study_nulls_with_protocol_v2_flag_the_memoriser_not_held_out_images(tmp_path):
    config = experiments.load_config("digits_gan:smoke", [("eval.protocol_v2", "true")])
    nulls = runner.null_references(tmp_path, config)
    scores = nulls["scores"]
    assert set(scores) == {*evaluation.NULL_KINDS, evaluation.MEMORISER}
    mem, real = scores["memoriser"], scores["real"]
    for space in ("pixels", "features"):
        assert mem[f"copying_{space}"] < -3 and abs(real[f"copying_{space}"]) < 2
        assert mem[f"memorisation_{space}"] > 0.9 and real[f"memorisation_{space}"] < 0.2
    for metric in ("memorisation_pixels", "memorisation_features", "fd_inf_gap"):
        assert max(scores, key=lambda kind: scores[kind][metric]) == "memoriser", metric
    # The training set adds scores and the memoriser; the other nulls' scores stay.
    plain = evaluation.null_scores(
        evaluation.config_reference(config), jax.random.key(0), nulls["num_samples"]
    )
    for kind, values in plain.items():
        assert {k: scores[kind][k] for k in values} == pytest.approx(values), kind


def test_critic_scores_through_the_evaluator_by_hand(digits_refs):
    held, train, real_pool = digits_refs

    def critic_fn(images, labels):  # D = mean pixel + 0.5
        assert labels is None
        return images.reshape(len(images), -1).mean(axis=1) + 0.5

    scores = evaluation.evaluate(
        _from_pool(real_pool, 0.0),
        jax.random.key(2),
        held,
        num_samples=50,
        batch_size=50,
        train=train,
        critic_fn=critic_fn,
        progress=False,
    )
    samples, _ = evaluation.draw_samples(
        _from_pool(real_pool, 0.0),
        jax.random.split(jax.random.key(2))[0],
        50,
        held.sample_shape,
        batch_size=50,
    )
    d_train, d_held, d_gen = (
        critic_fn(x, None).astype(np.float64) for x in (train.images, held.images, samples)
    )
    assert scores["r_t"] == pytest.approx(np.mean(np.sign(d_train)), abs=1e-6)
    want = (d_train.mean() - d_held.mean()) / (d_train.mean() - d_gen.mean())
    assert scores["r_v"] == pytest.approx(want, rel=1e-4)


def test_a_protocol_v2_run_records_the_new_scores(tmp_path):
    workdir = tmp_path / "run"
    code = train_cli.main(
        [
            "--config",
            "digits_gan:smoke",
            "--workdir",
            str(workdir),
            "--no-progress",
            "--config.eval.protocol_v2=true",
            "--config.data.train_size=200",
        ]
    )
    assert code == 0
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["train_size"] == 200
    for key in (
        *generalisation.GENERALISATION_METRICS,
        *generalisation.CRITIC_METRICS,
        *generalisation.SMOOTHNESS_METRICS,
        "near_zero_g",
        "near_zero_d",
    ):
        assert key in summary, key
    assert -1 <= summary["r_t"] <= 1
    assert 0 <= summary["near_zero_g"] <= 1
    assert summary["ppl"] > 0 and summary["jacobian_fro"] > 0
    # Logged during training too, at the in-training FD's steps (digits_gan: fd_every > 0).
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    scored = [row for row in rows if "fd" in row]
    assert scored and all({"r_t", "r_v"} <= row.keys() for row in scored)


def test_a_protocol_v2_vae_run_scores_its_decoder(tmp_path):
    workdir = tmp_path / "vae"
    code = train_cli.main(
        [
            "--config",
            "digits_vae:smoke",
            "--workdir",
            str(workdir),
            "--no-progress",
            "--config.eval.protocol_v2=true",
        ]
    )
    assert code == 0
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["train_size"] == 1500
    for key in (
        *generalisation.GENERALISATION_METRICS,
        *generalisation.SMOOTHNESS_METRICS,
        "near_zero_encoder",
        "near_zero_decoder",
    ):
        assert key in summary, key
    assert "r_v" not in summary
    # The training images' ELBO at the held-out N (297 of the 1,500) and its gap.
    assert np.isfinite(summary["elbo_train"])
    assert summary["elbo_gap"] == pytest.approx(summary["elbo_train"] - summary["elbo"], abs=1e-9)


def test_protocol_check_refuses_a_bad_size_before_writing(tmp_path, capsys):
    code = protocol_check.main(["--workdir", str(tmp_path / "w"), "--train-sizes", "full,0"])
    assert code == 2
    assert "--train-sizes: '0' is neither 'full' nor a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
