"""GAN losses, gradient penalties, the VAE negative ELBO, and the in-loss L2 reference.

Weight penalties are not loss terms in regan_jax: they are optax transforms
(:mod:`regan_jax.penalties`). :func:`l2_loss_term` exists only as the reference
that the coupled L2 transform is tested against.

GAN losses take discriminator logits and return batch means:

================== ============================================= ====================
name               discriminator loss                            generator loss
================== ============================================= ====================
``non_saturating`` softplus(-D(x)) + softplus(D(G(z)))           softplus(-D(G(z)))
``hinge``          relu(1 - D(x)) + relu(1 + D(G(z)))            -D(G(z))
``wasserstein``    D(G(z)) - D(x)                                -D(G(z))
``least_squares``  (D(x) - 1)² + D(G(z))²                        (D(G(z)) - 1)²
================== ============================================= ====================

(softplus(-l) = -log sigmoid(l), so ``non_saturating`` is the binary
cross-entropy of Goodfellow et al. 2014 with the generator's -log D trick.
``least_squares`` is LSGAN (Mao et al. 2017) with targets a = 0 (fake),
b = c = 1 (real), as CycleGAN uses it; see :func:`least_squares_d`.)
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from regan_jax._names import choose


def default_config() -> ml_collections.ConfigDict:
    """``config.loss`` for GANs (ignored by VAEs)."""
    return ml_collections.ConfigDict(
        {
            "kind": "non_saturating",  # GAN_LOSSES
            "gradient_penalty": "none",  # GRADIENT_PENALTIES: 'none' | 'wgan_gp' | 'r1'
            "gp_weight": 10.0,  # λ of WGAN-GP, γ of R1 (see gradient_penalty, r1_penalty)
            "d_steps": 1,  # discriminator steps per generator step
        }
    )


class GanLoss(NamedTuple):
    """A GAN objective: ``d(real_logits, fake_logits)`` and ``g(fake_logits)``, batch means."""

    d: Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]
    g: Callable[[jnp.ndarray], jnp.ndarray]


def least_squares_d(real: jnp.ndarray, fake: jnp.ndarray) -> jnp.ndarray:
    """LSGAN's discriminator loss (Mao et al. 2017), targets 1 for real and 0 for fake.

    .. math::
        L_D = \\frac1N \\sum_i \\big[(D(x_i) - 1)^2 + D(\\tilde x_i)^2\\big]

    ``real``/``fake`` are the raw outputs D(x), D(x̃) (no sigmoid). The paper
    writes ½ before each term; CycleGAN (Zhu et al. 2017) uses this form and
    halves the discriminator's loss instead. Under Adam a constant factor on a
    loss changes nothing but the relative size of ε and of a coupled penalty,
    so the registry keeps the plain sum, like the other entries.
    """
    return jnp.mean((real - 1.0) ** 2 + fake**2)


def least_squares_g(fake: jnp.ndarray) -> jnp.ndarray:
    """LSGAN's generator loss, target 1: :math:`L_G = \\frac1N \\sum_i (D(\\tilde x_i) - 1)^2`."""
    return jnp.mean((fake - 1.0) ** 2)


GAN_LOSSES = {
    "non_saturating": GanLoss(
        d=lambda real, fake: jnp.mean(jax.nn.softplus(-real) + jax.nn.softplus(fake)),
        g=lambda fake: jnp.mean(jax.nn.softplus(-fake)),
    ),
    "hinge": GanLoss(
        d=lambda real, fake: jnp.mean(jax.nn.relu(1.0 - real) + jax.nn.relu(1.0 + fake)),
        g=lambda fake: -jnp.mean(fake),
    ),
    "wasserstein": GanLoss(
        d=lambda real, fake: jnp.mean(fake) - jnp.mean(real), g=lambda fake: -jnp.mean(fake)
    ),
    "least_squares": GanLoss(d=least_squares_d, g=least_squares_g),
}


def gan_loss(name: str) -> GanLoss:
    """The :class:`GanLoss` registered as ``name`` (see the module table)."""
    return choose("GAN loss", name, GAN_LOSSES)


def _input_grads(d_fn, x):
    """∇_x D(x_i) for every example (D is per-example: no BatchNorm, so Σ_i works)."""
    return jax.grad(lambda x: jnp.sum(d_fn(x)))(x)


def _per_example_norm(grads):
    # optax.safe_norm: the gradient of ‖g‖ at g = 0 is 0, not NaN.
    flat = grads.reshape(grads.shape[0], -1)
    return optax.safe_norm(flat, 0.0, axis=-1)


def gradient_penalty(
    d_fn: Callable, real: jnp.ndarray, fake: jnp.ndarray, key: jax.Array
) -> jnp.ndarray:
    """WGAN-GP penalty (Gulrajani et al. 2017), without its weight λ.

    .. math::
        \\hat x_i = ε_i x_i + (1 - ε_i) \\tilde x_i,\\quad ε_i \\sim U[0, 1],\\qquad
        \\mathrm{GP} = \\frac1N \\sum_i (\\lVert ∇_{\\hat x} D(\\hat x_i) \\rVert_2 - 1)^2

    The discriminator loss adds ``λ * GP`` (λ = ``config.loss.gp_weight``, 10
    in the paper).

    Args:
      d_fn: ``x [N, ...] -> logits [N]``, the discriminator with its variables
        (and labels) closed over; use ``update_stats=False`` inside.
      real: real examples ``x``, ``[N, ...]``.
      fake: generated examples ``x̃``, same shape.
      key: draws ε = ``jax.random.uniform(key, (N,))``.

    Returns:
      The scalar GP.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape, got {real.shape} and {fake.shape}"
        )
    # Drawn as a vector: XLA's CPU compile of rank >= 3 threefry draws is slow
    # (see regan_jax.models.layers.matrix_init).
    eps = jax.random.uniform(key, (real.shape[0],), real.dtype)
    eps = eps.reshape((-1,) + (1,) * (real.ndim - 1))
    interpolates = eps * real + (1.0 - eps) * fake
    norms = _per_example_norm(_input_grads(d_fn, interpolates))
    return jnp.mean((norms - 1.0) ** 2)


def r1_penalty(d_fn: Callable, real: jnp.ndarray) -> jnp.ndarray:
    """R1 penalty (Mescheder et al. 2018), without its weight γ.

    .. math::
        R_1 = \\frac12 \\cdot \\frac1N \\sum_i \\lVert ∇_x D(x_i) \\rVert_2^2

    The discriminator loss adds ``γ * R1`` (γ = ``config.loss.gp_weight``),
    which is the paper's (γ/2) E‖∇D‖².

    Args:
      d_fn: ``x [N, ...] -> logits [N]`` (see :func:`gradient_penalty`).
      real: real examples ``[N, ...]``.
    """
    grads = _input_grads(d_fn, real)
    return 0.5 * jnp.mean(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1))


GRADIENT_PENALTIES = {
    "none": lambda d_fn, real, fake, key: jnp.zeros((), real.dtype),
    "wgan_gp": gradient_penalty,
    "r1": lambda d_fn, real, fake, key: r1_penalty(d_fn, real),
}


def gradient_penalty_fn(name: str) -> Callable:
    """``(d_fn, real, fake, key) -> scalar`` for ``name`` in :data:`GRADIENT_PENALTIES`,
    unweighted ('none' gives 0)."""
    return choose("gradient penalty", name, GRADIENT_PENALTIES)


def _bernoulli_nll(x, logits, gaussian_std):
    """-log Bern(t | sigmoid(l)) = softplus(l) - t l, pixels mapped to t = (x + 1) / 2."""
    del gaussian_std
    targets = (x + 1.0) / 2.0
    return optax.sigmoid_binary_cross_entropy(logits, targets)


def _gaussian_nll(x, mean, gaussian_std):
    """-log N(x | μ, σ²) = (x - μ)² / (2σ²) + log σ + log(2π) / 2."""
    return 0.5 * ((x - mean) / gaussian_std) ** 2 + jnp.log(gaussian_std) + 0.5 * np.log(2 * np.pi)


LIKELIHOODS = {"bernoulli": _bernoulli_nll, "gaussian": _gaussian_nll}


def negative_elbo(
    x: jnp.ndarray,
    recon_out: jnp.ndarray,
    mean: jnp.ndarray,
    logvar: jnp.ndarray,
    likelihood: str,
    gaussian_std: float = 1.0,
) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """Negative ELBO of a VAE with posterior N(mean, exp(logvar)) and prior N(0, I).

    .. math::
        -\\mathrm{ELBO} = \\frac1N \\sum_i \\Big[
            \\underbrace{-\\sum_p \\log p(x_{ip} | z_i)}_{\\text{recon}}
          + \\underbrace{\\tfrac12 \\sum_k (e^{ℓ_{ik}} + μ_{ik}^2 - 1 - ℓ_{ik})}_{\\mathrm{KL}}
        \\Big]

    (KL(q(z|x_i) ‖ N(0, I)) in closed form), with one sample ``z_i`` (the
    decoder output ``recon_out`` was computed from it). Likelihoods:
    ``'bernoulli'`` — ``recon_out`` are logits over the pixels mapped from
    [-1, 1] to [0, 1]; ``'gaussian'`` — ``recon_out`` is the mean, the std is
    the fixed ``gaussian_std``.

    Args:
      x: data ``[N, ...]`` in [-1, 1].
      recon_out: decoder output, same shape as ``x``.
      mean, logvar: posterior parameters ``[N, K]``.
      likelihood: a key of :data:`LIKELIHOODS`.
      gaussian_std: σ of the Gaussian likelihood (ignored for Bernoulli).

    Returns:
      ``(loss, {'recon': ..., 'kl': ...})``; loss = recon + kl, each a batch mean
      of per-example sums (nats per example).
    """
    nll = choose("likelihood", likelihood, LIKELIHOODS)
    if recon_out.shape != x.shape:
        raise ValueError(
            f"decoder output shape {recon_out.shape} does not match data shape {x.shape}"
        )
    if mean.shape != logvar.shape or mean.shape[0] != x.shape[0]:
        raise ValueError(
            f"mean {mean.shape} and logvar {logvar.shape} must both be [N, K] with N = {x.shape[0]}"
        )
    recon = jnp.sum(nll(x, recon_out, gaussian_std).reshape(x.shape[0], -1), axis=-1)
    kl = 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)
    recon, kl = jnp.mean(recon), jnp.mean(kl)
    return recon + kl, {"recon": recon, "kl": kl}


def l2_loss_term(params, strength: float, mask=None) -> jnp.ndarray:
    """(λ/2) Σ_{masked w} w²: the in-loss L2 penalty, a test reference only.

    Its gradient λw is what the coupled L2 transform adds to the gradient
    (the convention of ``optax.add_decayed_weights``).

    Args:
      params: a parameter pytree.
      strength: λ.
      mask: ``None`` (every leaf), a pytree of bools with the structure of
        ``params``, or a callable ``params -> that pytree`` (as in ``optax.masked``).
    """
    if callable(mask):
        mask = mask(params)
    if mask is None:
        mask = jax.tree.map(lambda _: True, params)
    squares = jax.tree.map(lambda p, m: jnp.sum(p**2) if m else 0.0, params, mask)
    return 0.5 * strength * sum(jax.tree.leaves(squares))
