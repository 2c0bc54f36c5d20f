"""Array math and argument checks behind ``regan_jax.penalties`` (private).

Everything here acts on a single array (one parameter leaf) and is pure jnp, so
it runs under ``jit``/``vmap`` and inside optax transforms. Groups are slices
along ``axis`` (default: the last axis = output units/channels of a Dense
``[in, out]`` or Conv ``[kh, kw, in, out]`` kernel); a group's norm is taken
over all the other axes.
"""
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax


def check_hyperparam(name: str, value: Any, *, positive: bool = False) -> None:
    """Raises ``ValueError`` unless ``value`` is finite and >= 0 (> 0 if ``positive``).

    Concrete numbers and arrays are checked element-wise; a schedule is checked
    at count 0. Traced values (under ``jit``/``vmap``) cannot be inspected and
    are let through: validate configs before tracing.
    """
    if callable(value):
        value = value(0)
    if isinstance(value, jax.core.Tracer):
        return
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number or an optax schedule, got {value!r}"
        ) from None
    bound_ok = np.all(array > 0) if positive else np.all(array >= 0)
    if not (np.all(np.isfinite(array)) and bound_ok):
        expected = "finite and > 0" if positive else "finite and >= 0"
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def value_at(hyperparam: Any, count: jax.Array | None) -> Any:
    """A hyperparameter's value at ``count``: ``h(count)`` for a schedule, else ``h``."""
    return hyperparam(count) if callable(hyperparam) else hyperparam


def any_schedule(*hyperparams: Any) -> bool:
    return any(callable(h) for h in hyperparams)


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


def l1_subgradient(w: jax.Array) -> jax.Array:
    """∂‖w‖₁ with the convention sign(0) = 0."""
    return jnp.sign(w)


def group_l1_subgradient(w: jax.Array, axis: int = -1) -> jax.Array:
    """∂ Σ_g ‖w_g‖₂ = w_g / ‖w_g‖₂, and 0 for an all-zero group."""
    return _safe_divide(w, group_norms(w, axis))


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


def path_str(path: tuple) -> str:
    """'/'-joined names of a ``jax.tree_util`` key path, e.g. 'Dense_0/kernel'."""
    def name(entry):
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                return str(getattr(entry, attr))
        return str(entry)
    return "/".join(name(entry) for entry in path)


def multiplier_schedule(
    name: str, warmup_steps: int, decay_steps: int
) -> Callable[[jax.Array], jax.Array] | None:
    """A schedule in [0, 1] that multiplies a base hyperparameter (None = constant).

    - 'constant': 1 (returns None so callers keep a plain scalar).
    - 'linear_warmup': 0 → 1 linearly over ``warmup_steps``, then 1.
    - 'warmup_cosine': linear 0 → 1 over ``warmup_steps``, then cosine decay
      to 0 at ``decay_steps`` (total, warm-up included).
    """
    if name not in MULTIPLIER_SCHEDULES:
        raise ValueError(
            f"unknown schedule {name!r}; expected one of {sorted(MULTIPLIER_SCHEDULES)}"
        )
    if name == "constant":
        return None
    if name == "linear_warmup":
        if warmup_steps <= 0:
            raise ValueError(
                f"schedule 'linear_warmup' needs warmup_steps > 0, got {warmup_steps}"
            )
        return optax.linear_schedule(0.0, 1.0, warmup_steps)
    if not 0 <= warmup_steps < decay_steps:
        raise ValueError(
            "schedule 'warmup_cosine' needs 0 <= warmup_steps < decay_steps, got "
            f"warmup_steps={warmup_steps}, decay_steps={decay_steps}"
        )
    return optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps, decay_steps)


MULTIPLIER_SCHEDULES = ("constant", "linear_warmup", "warmup_cosine")


def scaled(base: Any, multiplier: Callable | None) -> Any:
    """``base`` times a multiplier schedule, as a schedule (or ``base`` if None)."""
    if multiplier is None:
        return base
    return lambda count: base * multiplier(count)

