"""Array math on one parameter leaf: subgradients, proximal operators, projections.

Everything here is pure ``jnp`` on a single array, so it runs under ``jit`` and
``vmap`` and knows nothing of masks, optax or configs. Groups are slices along
``axis`` (default -1: the output units / channels of a Dense ``[in, out]`` or a
Conv ``[kh, kw, in, out]`` kernel); a group's norm is taken over all the other
axes. The last section gives each penalty's term R(w) on one leaf, used by
``penalty_value``; its ``jax.grad`` is exactly what the additive transform adds.
"""

from typing import Any

import jax
import jax.numpy as jnp
import optax

# ----------------------------------------------------------------------------
# Norms and safe division
# ----------------------------------------------------------------------------


def safe_sqrt(x: jax.Array) -> jax.Array:
    """sqrt(x) with value and gradient 0 at x = 0 (no NaN under ``jax.grad``)."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def group_norms(x: jax.Array, axis: int = -1) -> jax.Array:
    """‖x_g‖₂ of every slice g along ``axis``, kept broadcastable against ``x``."""
    axis = axis % x.ndim
    others = tuple(i for i in range(x.ndim) if i != axis)
    return safe_sqrt(jnp.sum(jnp.square(x), axis=others, keepdims=True))


def _safe_divide(x: jax.Array, norm: jax.Array) -> jax.Array:
    """x / norm, and 0 where norm == 0 (the minimum-norm subgradient of ‖·‖₂ at 0)."""
    positive = norm > 0
    return jnp.where(positive, x / jnp.where(positive, norm, 1.0), 0.0)


# ----------------------------------------------------------------------------
# Subgradients (what the additive transforms add)
# ----------------------------------------------------------------------------


def l1_subgradient(w: jax.Array) -> jax.Array:
    """∂‖w‖₁ with the convention sign(0) = 0."""
    return jnp.sign(w)


def group_l1_subgradient(w: jax.Array, axis: int = -1) -> jax.Array:
    """∂ Σ_g ‖w_g‖₂ = w_g / ‖w_g‖₂, and 0 for an all-zero group."""
    return _safe_divide(w, group_norms(w, axis))


# ----------------------------------------------------------------------------
# Proximal operators and projections (what the terminal steps apply)
# ----------------------------------------------------------------------------


def soft_threshold(z: jax.Array, threshold: Any) -> jax.Array:
    """prox of threshold·‖·‖₁: sign(z)·max(|z| - threshold, 0) (exact zeros)."""
    return jnp.sign(z) * jnp.maximum(jnp.abs(z) - threshold, 0.0)


def block_soft_threshold(z: jax.Array, threshold: Any, axis: int = -1) -> jax.Array:
    """prox of threshold·Σ_g ‖·_g‖₂: z_g·max(1 - threshold/‖z_g‖₂, 0).

    A group whose norm is <= threshold (including an all-zero group) becomes
    exactly zero.
    """
    norms = group_norms(z, axis)
    shrink = jnp.maximum(1.0 - _safe_divide(threshold, norms), 0.0)
    return jnp.where(norms > 0, shrink, 0.0) * z


def project_l2_ball(z: jax.Array, radius: Any) -> jax.Array:
    """Euclidean projection of ``z`` onto {‖w‖_F <= radius}.

    Uses ``optax.projections.projection_l2_ball``; points already inside the
    ball are returned bit-for-bit (the library's r/sqrt(r²) may differ from 1
    by an ulp).
    """
    inside = jnp.sum(jnp.square(z)) <= jnp.square(radius)
    return jnp.where(inside, z, optax.projections.projection_l2_ball(z, radius))


def project_max_norm(z: jax.Array, radius: Any, axis: int = -1) -> jax.Array:
    """Projects every slice along ``axis`` (each output unit) onto the L2 ball."""
    axis = axis % z.ndim
    return jax.vmap(project_l2_ball, in_axes=(axis, None), out_axes=axis)(z, radius)


# ----------------------------------------------------------------------------
# Penalty terms R(w) of one leaf (hp: the kind's hyperparameters by name)
# ----------------------------------------------------------------------------


def l2_value(w, hp, axis):
    """(λ/2)‖w‖²."""
    return 0.5 * hp["strength"] * jnp.sum(jnp.square(w))


def _l1_norm(w):
    # ‖w‖₁ written as Σ w·sign(w) so that jax.grad gives sign(w), 0 at w = 0 (the
    # transforms' convention); jax.grad(jnp.abs)(0.) is 1.
    return jnp.sum(w * jax.lax.stop_gradient(jnp.sign(w)))


def l1_value(w, hp, axis):
    """λ‖w‖₁."""
    return hp["strength"] * _l1_norm(w)


def elastic_net_value(w, hp, axis):
    """λ₁‖w‖₁ + (λ₂/2)‖w‖² (λ₁ = ``strength``, λ₂ = ``l2_strength``)."""
    return hp["strength"] * _l1_norm(w) + 0.5 * hp["l2_strength"] * jnp.sum(jnp.square(w))


def group_l1_value(w, hp, axis):
    """λ Σ_g ‖w_g‖₂ (gradient 0 at an all-zero group)."""
    return hp["strength"] * jnp.sum(group_norms(w, axis))


def no_value(w, hp, axis):
    """0: no penalty, or a hard constraint (the indicator is 0 on the feasible set)."""
    return jnp.zeros([], w.dtype)
