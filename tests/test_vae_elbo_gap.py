"""The VAE's training-set ELBO and its gap to the held-out ELBO (protocol v2).

References: the per-example ELBO written out in numpy float64 for a tiny MLP
VAE (both likelihoods), and the held-out ELBO itself when the training images
are the held-out images (same N, same noise: a gap of exactly 0). The run's
summary keys are checked in tests/test_protocol_v2.py's VAE run.
"""

import jax
import numpy as np
import pytest

from regan_jax import config as config_lib
from regan_jax import data, evaluation, families
from regan_jax.evaluation import evaluator
from regan_jax.families import vae as vae_family


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


def test_runs_with_other_parameters_and_keys_share_one_scoring_program():
    """A second run's parameters and key are arguments, not constants of a program of its
    own: scoring it compiles nothing new, and each still matches the float64 hand ELBO."""
    config, models, params = _tiny_vae("bernoulli")
    other = jax.tree.map(lambda a: a * 0.5, params)
    test = np.asarray(data.load("digits", "test").images[:6])
    vae = families.get("vae")
    first = vae.score_fn(config, models, params, jax.random.key(4))(test)["elbo"]
    compiled = vae_family._scores._cache_size()
    second = vae.score_fn(config, models, other, jax.random.key(5))(test)["elbo"]
    assert vae_family._scores._cache_size() == compiled
    std = config.model.gaussian_std
    for got, p, key in ((first, params, 4), (second, other, 5)):
        want = _elbo_by_hand(p, test, _eps(jax.random.key(key), 6), "bernoulli", std)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
