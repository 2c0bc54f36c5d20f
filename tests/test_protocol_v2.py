"""The protocol-v2 scores in the evaluation: near-zero weights, generalisation, D overfitting.

References: numpy for the near-zero fraction, hand computation for r_t / r_v
through the evaluator, the VAE's training-set ELBO written out in numpy
float64 (and equal to the held-out ELBO on the held-out images), and the two nulls on the digits reference (training
images plus small noise are flagged as copies, held-out images are not).
"""

import json

import jax
import numpy as np
import pytest

from experiments import train as train_cli
from experiments.study import protocol_check
from regan_jax import config as config_lib
from regan_jax import data, evaluation, families, metrics
from regan_jax.evaluation import evaluator, generalisation


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


def _tiny_vae(likelihood):
    """A one-hidden-layer MLP VAE on digits (latent 3, width 8) and its initial parameters."""
    config = config_lib.base_config("vae", "digits")
    config.model.update(
        arch="mlp", latent_dim=3, g_width=8, d_width=8, mlp_layers=1, likelihood=likelihood
    )
    config.model.gaussian_std = 0.5
    models = families.get("vae").make_models(config.model, data.load("digits", "test").spec)
    params = {
        "encoder": models["encoder"].init(jax.random.key(1), np.zeros((1, 8, 8, 1)))["params"],
        "decoder": models["decoder"].init(jax.random.key(2), np.zeros((1, 3)))["params"],
    }
    return config, models, params


def _elbo_by_hand(params, x, eps, likelihood, gaussian_std):
    """Per-example ELBO, one z each: the MLP encoder and decoder and the negative ELBO in
    float64 (leaky ReLU 0.2 trunk, ReLU body; closed-form KL to N(0, I))."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    enc, dec = p["encoder"], p["decoder"]
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    h = x @ enc["trunk"]["dense_0"]["kernel"] + enc["trunk"]["dense_0"]["bias"]
    h = np.where(h > 0, h, 0.2 * h)
    mean, logvar = np.split(h @ enc["head"]["kernel"] + enc["head"]["bias"], 2, axis=1)
    z = mean + np.exp(logvar / 2) * eps
    h = np.maximum(z @ dec["body"]["dense_0"]["kernel"] + dec["body"]["dense_0"]["bias"], 0)
    out = h @ dec["body"]["out"]["kernel"] + dec["body"]["out"]["bias"]
    if likelihood == "bernoulli":
        t = (x + 1) / 2
        recon = np.sum(np.logaddexp(0, out) - t * out, axis=1)
    else:
        s = gaussian_std
        recon = np.sum(0.5 * ((x - out) / s) ** 2 + np.log(s) + 0.5 * np.log(2 * np.pi), axis=1)
    kl = 0.5 * np.sum(np.exp(logvar) + mean**2 - 1 - logvar, axis=1)
    return -(recon + kl)


def _eps(key, n, latent_dim=3):
    """The noise of example i of one batch of n: ``normal(split(key, n)[i], (1, K))``."""
    return np.concatenate(
        [np.asarray(jax.random.normal(k, (1, latent_dim))) for k in jax.random.split(key, n)]
    ).astype(np.float64)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_the_training_set_elbo_and_its_gap_match_a_float64_hand_computation(likelihood):
    config, models, params = _tiny_vae(likelihood)
    train = data.load("digits", "train").images[:20]
    test = data.load("digits", "test").images[:12]
    key = jax.random.key(7)
    score = families.get("vae").score_fn(config, models, params, key)
    held_out = evaluation.mean_scores(score, test, batch_size=64)
    # N = 12 held-out images, 20 training images: 12 rows of the training set.
    rows = evaluator.training_rows(20, 12, jax.random.key(3))
    out = evaluation.elbo_gap(score, train, held_out["elbo"], 12, jax.random.key(3), 64)
    std = config.model.gaussian_std
    want_held = _elbo_by_hand(params, test, _eps(key, 12), likelihood, std).mean()
    want_train = _elbo_by_hand(params, train[rows], _eps(key, 12), likelihood, std).mean()
    assert held_out["elbo"] == pytest.approx(want_held, rel=1e-5)
    assert out["elbo_train"] == pytest.approx(want_train, rel=1e-5)
    assert out["elbo_gap"] == pytest.approx(want_train - want_held, rel=1e-4, abs=1e-4)
    assert abs(want_train - want_held) > 1e-2  # the gap is not 0 by construction
    # Fewer training images than held-out ones: every one of them, in order.
    few = evaluation.elbo_gap(score, train[:5], held_out["elbo"], 12, jax.random.key(3), 64)
    want_few = _elbo_by_hand(params, train[:5], _eps(key, 5), likelihood, std).mean()
    assert few["elbo_train"] == pytest.approx(want_few, rel=1e-5)


def test_the_training_set_elbo_of_the_held_out_images_is_the_held_out_elbo():
    """Same images, same N, same noise (common random numbers): a gap of exactly 0."""
    config, models, params = _tiny_vae("bernoulli")
    test = data.load("digits", "test").images
    score = families.get("vae").score_fn(config, models, params, jax.random.key(0))
    held_out = evaluation.mean_scores(score, test, batch_size=100)
    out = evaluation.elbo_gap(score, test, held_out["elbo"], len(test), jax.random.key(1), 100)
    assert out == {"elbo_train": held_out["elbo"], "elbo_gap": 0.0}


def test_training_rows_are_distinct_sorted_and_seeded():
    assert np.array_equal(evaluator.training_rows(5, 12, jax.random.key(0)), np.arange(5))
    assert np.array_equal(evaluator.training_rows(12, 12, jax.random.key(0)), np.arange(12))
    rows = evaluator.training_rows(1500, 297, jax.random.key(0))
    assert len(rows) == len(np.unique(rows)) == 297
    assert np.all(np.diff(rows) > 0) and 0 <= rows[0] and rows[-1] < 1500
    assert np.array_equal(rows, evaluator.training_rows(1500, 297, jax.random.key(0)))
    assert not np.array_equal(rows, evaluator.training_rows(1500, 297, jax.random.key(1)))


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
