"""Losses against float64 numpy references: GAN losses, WGAN-GP, R1, negative ELBO, L2."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from regan_jax import losses

REAL = np.array([2.0, -0.5, 0.3, -3.0, 1.2])
FAKE = np.array([-1.0, 0.7, -2.5, 0.1, 4.0])


def softplus(x):
    return np.logaddexp(0.0, x)


NUMPY_GAN_LOSSES = {
    # -log sigmoid(real) - log(1 - sigmoid(fake)); generator -log sigmoid(fake).
    "non_saturating": (
        lambda r, f: np.mean(-np.log(1 / (1 + np.exp(-r))) - np.log(1 - 1 / (1 + np.exp(-f)))),
        lambda f: np.mean(-np.log(1 / (1 + np.exp(-f)))),
    ),
    "hinge": (
        lambda r, f: np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)),
        lambda f: -np.mean(f),
    ),
    "wasserstein": (lambda r, f: np.mean(f) - np.mean(r), lambda f: -np.mean(f)),
    # LSGAN, targets 1 (real) and 0 (fake); generator target 1.
    "least_squares": (
        lambda r, f: np.mean((r - 1) ** 2) + np.mean(f**2),
        lambda f: np.mean((f - 1) ** 2),
    ),
}


@pytest.mark.parametrize("name", sorted(losses.GAN_LOSSES))
def test_gan_losses_match_closed_form(name):
    assert set(NUMPY_GAN_LOSSES) == set(losses.GAN_LOSSES)
    loss = losses.gan_loss(name)
    d_ref, g_ref = NUMPY_GAN_LOSSES[name]
    real, fake = jnp.asarray(REAL, jnp.float32), jnp.asarray(FAKE, jnp.float32)
    np.testing.assert_allclose(loss.d(real, fake), d_ref(REAL, FAKE), rtol=1e-6)
    np.testing.assert_allclose(loss.g(fake), g_ref(FAKE), rtol=1e-6)


def test_non_saturating_is_stable_for_large_logits():
    loss = losses.gan_loss("non_saturating")
    big = jnp.array([200.0, -200.0])
    np.testing.assert_allclose(
        loss.d(big, -big),
        np.mean(softplus(-np.array([200.0, -200.0])) + softplus(np.array([-200.0, 200.0]))),
    )
    chex.assert_tree_all_finite(jax.grad(loss.g)(big))


def test_unknown_names_raise():
    with pytest.raises(
        ValueError, match=r"unknown GAN loss 'lsgan'.*'hinge', 'least_squares', 'non_saturating'"
    ):
        losses.gan_loss("lsgan")
    with pytest.raises(ValueError, match=r"unknown gradient penalty 'dragan'.*'r1'"):
        losses.gradient_penalty_fn("dragan")
    with pytest.raises(ValueError, match=r"unknown likelihood 'laplace'"):
        losses.negative_elbo(
            jnp.zeros((1, 2)), jnp.zeros((1, 2)), jnp.zeros((1, 1)), jnp.zeros((1, 1)), "laplace"
        )


# --- gradient penalties ------------------------------------------------------------------


def linear_d(w):
    return lambda x: jnp.sum(x * w, axis=tuple(range(1, x.ndim)))


@pytest.mark.parametrize("norm,expected", [(1.0, 0.0), (3.0, 4.0), (0.25, 0.5625)])
def test_gradient_penalty_of_linear_d(norm, expected):
    """∇D = w everywhere, so GP = (‖w‖ - 1)² whatever the interpolates."""
    rng = np.random.default_rng(7)
    w = rng.normal(size=(1, 4, 4, 2))
    w = jnp.asarray(norm * w / np.linalg.norm(w), jnp.float32)
    real, fake = (jnp.asarray(rng.normal(size=(6, 4, 4, 2)), jnp.float32) for _ in range(2))
    gp = jax.jit(losses.gradient_penalty, static_argnums=0)(
        linear_d(w), real, fake, jax.random.key(3)
    )
    np.testing.assert_allclose(gp, expected, atol=1e-5)


A = np.random.default_rng(0).normal(size=(3, 4))
B = np.random.default_rng(1).normal(size=(4,))


def small_d(x):
    """D(x) = tanh(x A) b, per example (works for jax and numpy inputs)."""
    xp = jnp if isinstance(x, jax.Array) else np
    return xp.tanh(x @ xp.asarray(A, x.dtype)) @ xp.asarray(B, x.dtype)


def fd_grad(f, x, h=1e-6):
    """Central finite differences of a scalar-per-example f, float64."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape[1:]):
        step = np.zeros_like(x)
        step[(slice(None),) + idx] = h
        grad[(slice(None),) + idx] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


def test_gradient_penalty_matches_finite_differences():
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    key = jax.random.key(4)
    gp = losses.gradient_penalty(
        small_d, jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32), key
    )
    eps = np.asarray(jax.random.uniform(key, (5,)), np.float64)[:, None]  # the documented draw
    interpolates = eps * real + (1 - eps) * fake
    norms = np.linalg.norm(fd_grad(small_d, interpolates), axis=-1)
    np.testing.assert_allclose(gp, np.mean((norms - 1) ** 2), rtol=1e-4)


def test_gradient_penalty_has_finite_gradient_at_zero_input_gradient():
    """A constant D has ∇_x D = 0; GP = 1 and its gradient wrt D's weights is finite."""
    real = jnp.ones((3, 2, 2, 1))

    def gp_of(w):
        return losses.gradient_penalty(linear_d(w), real, -real, jax.random.key(0))

    value, grad = jax.jit(jax.value_and_grad(gp_of))(jnp.zeros((1, 2, 2, 1)))
    np.testing.assert_allclose(value, 1.0)
    chex.assert_tree_all_finite(grad)


def test_r1_penalty_of_quadratic_d():
    """D(x) = ½ xᵀQx + cᵀx has ∇D = Qx + c, so R1 = ½ mean ‖Qx + c‖²."""
    rng = np.random.default_rng(3)
    m = rng.normal(size=(4, 4))
    q, c = m + m.T, rng.normal(size=(4,))
    x = rng.normal(size=(6, 2, 2, 1))
    flat = x.reshape(6, 4)

    def d_fn(images):
        v = images.reshape(images.shape[0], -1)
        q_, c_ = jnp.asarray(q, v.dtype), jnp.asarray(c, v.dtype)
        return 0.5 * jnp.einsum("ni,ij,nj->n", v, q_, v) + v @ c_

    expected = 0.5 * np.mean(np.sum((flat @ q + c) ** 2, axis=-1))
    np.testing.assert_allclose(
        losses.r1_penalty(d_fn, jnp.asarray(x, jnp.float32)), expected, rtol=1e-5
    )


def test_gradient_penalty_registry():
    real = jnp.asarray(np.random.default_rng(4).normal(size=(5, 3)), jnp.float32)
    fake, key = -real, jax.random.key(5)
    assert losses.gradient_penalty_fn("none")(small_d, real, fake, key) == 0.0
    np.testing.assert_allclose(
        losses.gradient_penalty_fn("r1")(small_d, real, fake, key), losses.r1_penalty(small_d, real)
    )
    np.testing.assert_allclose(
        losses.gradient_penalty_fn("wgan_gp")(small_d, real, fake, key),
        losses.gradient_penalty(small_d, real, fake, key),
    )


def test_gradient_penalty_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        losses.gradient_penalty(small_d, jnp.zeros((4, 3)), jnp.zeros((5, 3)), jax.random.key(0))


# --- VAE negative ELBO --------------------------------------------------------------------


def kl_reference(mean, logvar):
    """KL(N(μ, σ²) ‖ N(0, 1)) = log(1/σ) + (σ² + μ²)/2 - 1/2, summed over latents."""
    sigma = np.exp(0.5 * logvar)
    return np.sum(-np.log(sigma) + (sigma**2 + mean**2) / 2 - 0.5, axis=-1)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_negative_elbo_matches_numpy(likelihood):
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(4, 3, 3, 1))
    out = rng.normal(size=x.shape)
    mean, logvar = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    std = 0.3
    if likelihood == "bernoulli":
        t, p = (x + 1) / 2, 1 / (1 + np.exp(-out))
        log_lik = t * np.log(p) + (1 - t) * np.log(1 - p)
    else:
        log_lik = stats.norm.logpdf(x, loc=out, scale=std)
    recon = np.mean(-np.sum(log_lik.reshape(4, -1), axis=-1))
    kl = np.mean(kl_reference(mean, logvar))
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    loss, parts = losses.negative_elbo(
        f32(x), f32(out), f32(mean), f32(logvar), likelihood, gaussian_std=std
    )
    np.testing.assert_allclose(parts["recon"], recon, rtol=1e-5)
    np.testing.assert_allclose(parts["kl"], kl, rtol=1e-5)
    np.testing.assert_allclose(loss, recon + kl, rtol=1e-5)


def test_negative_elbo_rejects_mismatched_shapes():
    x = jnp.zeros((2, 4, 4, 1))
    with pytest.raises(ValueError, match=r"decoder output shape \(2, 4, 4, 3\)"):
        losses.negative_elbo(
            x, jnp.zeros((2, 4, 4, 3)), jnp.zeros((2, 3)), jnp.zeros((2, 3)), "bernoulli"
        )
    with pytest.raises(ValueError, match=r"mean \(2, 3\) and logvar \(2, 4\)"):
        losses.negative_elbo(x, x, jnp.zeros((2, 3)), jnp.zeros((2, 4)), "bernoulli")


# --- in-loss L2 reference ----------------------------------------------------------------


def test_l2_loss_term_value_and_gradient():
    """(λ/2)‖masked w‖², gradient λw on masked leaves and 0 elsewhere."""
    rng = np.random.default_rng(6)
    params = {
        "dense": {"kernel": rng.normal(size=(3, 2)), "bias": rng.normal(size=(2,))},
        "conv": {"kernel": rng.normal(size=(2, 2, 1, 3))},
    }
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    mask = {"dense": {"kernel": True, "bias": False}, "conv": {"kernel": True}}
    lam = 0.3
    kernels = [np.asarray(params["dense"]["kernel"]), np.asarray(params["conv"]["kernel"])]
    expected = lam / 2 * sum(np.sum(k.astype(np.float64) ** 2) for k in kernels)
    np.testing.assert_allclose(losses.l2_loss_term(params, lam, mask), expected, rtol=1e-6)
    np.testing.assert_allclose(
        losses.l2_loss_term(params, lam, lambda p: mask), expected, rtol=1e-6
    )
    everything = expected + lam / 2 * np.sum(np.asarray(params["dense"]["bias"], np.float64) ** 2)
    np.testing.assert_allclose(losses.l2_loss_term(params, lam), everything, rtol=1e-6)
    grads = jax.grad(losses.l2_loss_term)(params, lam, mask)
    chex.assert_trees_all_close(
        grads, jax.tree.map(lambda p, m: lam * p * m, params, mask), rtol=1e-6
    )


def test_default_config_names_are_registered():
    cfg = losses.default_config()
    assert cfg.kind in losses.GAN_LOSSES and cfg.gradient_penalty in losses.GRADIENT_PENALTIES
