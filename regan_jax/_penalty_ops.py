"""Machinery behind ``regan_jax.penalties`` (private; import from there).

- argument checks and schedule helpers;
- array math on one parameter leaf (pure jnp: runs under ``jit``/``vmap``):
  subgradients, proximal operators, projections. Groups are slices along
  ``axis`` (default: the last axis = output units/channels of a Dense
  ``[in, out]`` or Conv ``[kh, kw, in, out]`` kernel); a group's norm is
  taken over all the other axes;
- masks (``kernel_mask``, ``path_mask``, checked resolution for optax.masked);
- the two transform factories (additive term, terminal step) and the
  penalty terms R(w) used by ``penalty_value``.
"""
import dataclasses
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from regan_jax._names import check_name


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
    check_name("schedule", name, MULTIPLIER_SCHEDULES)
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


Mask = None | str | Callable[[Any], Any] | Any


# ----------------------------------------------------------------------------
# Masks (kernel_mask and path_mask are re-exported by regan_jax.penalties)
# ----------------------------------------------------------------------------

def kernel_mask(params: Any) -> Any:
    """True for kernels (leaves with ndim >= 2), False for biases and scales."""
    return jax.tree.map(lambda x: jnp.ndim(x) >= 2, params)


def path_mask(
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
) -> Callable[[Any], Any]:
    """A mask selecting leaves by regexes on their '/'-joined path.

    A leaf (e.g. path 'Dense_0/kernel') is selected when some ``include``
    pattern matches it (``re.search``; None = every leaf) and no ``exclude``
    pattern does.
    """
    return _PathMask(_compile(include), _compile(exclude))


def _compile(patterns: str | Iterable[str] | None) -> tuple[re.Pattern, ...]:
    patterns = [patterns] if isinstance(patterns, str) else list(patterns or ())
    try:
        return tuple(re.compile(p) for p in patterns)
    except re.error as err:
        raise ValueError(f"invalid mask pattern in {patterns!r}: {err}") from None


@dataclasses.dataclass(frozen=True)
class _PathMask:
    """A callable path mask (a class so that errors can print its patterns).

    Deliberately not a NamedTuple: optax.masked would take a pytree for a mask tree.
    """

    include: tuple[re.Pattern, ...]
    exclude: tuple[re.Pattern, ...]

    def selects(self, path: str) -> bool:
        return (not self.include or any(p.search(path) for p in self.include)) and not any(
            p.search(path) for p in self.exclude)

    def __call__(self, params: Any) -> Any:
        return jax.tree_util.tree_map_with_path(
            lambda path, _: self.selects(path_str(path)), params)

    def __repr__(self) -> str:
        return (f"path_mask(include={[p.pattern for p in self.include]}, "
                f"exclude={[p.pattern for p in self.exclude]})")


def resolve_mask(mask: Mask) -> Any:
    """None → kernel_mask; str → path_mask(include=str); else as given."""
    if mask is None:
        return kernel_mask
    if isinstance(mask, str):
        return path_mask(include=mask)
    return mask


def full_mask(mask: Mask, params: Any) -> Any:
    """The mask as a bool tree with exactly the structure of ``params``."""
    resolved = resolve_mask(mask)
    tree = resolved(params) if callable(resolved) else resolved
    return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), tree, params)


def selected_leaves(params: Any, mask: Mask = None) -> list[tuple[str, jax.Array]]:
    """(path, leaf) for every leaf the mask selects; ValueError if none is."""
    flat_mask = jax.tree.leaves(full_mask(mask, params))
    flat_params = jax.tree_util.tree_flatten_with_path(params)[0]
    chosen = [(path_str(p), x) for (p, x), m in zip(flat_params, flat_mask) if m]
    if not chosen:
        paths = [path_str(p) for p, _ in flat_params]
        name = "kernel_mask (the default: leaves with ndim >= 2)" if mask is None else repr(mask)
        raise ValueError(f"mask {name} matches no parameter; parameter paths: {paths}")
    return chosen


def checked_mask(mask: Mask) -> Callable[[Any], Any]:
    """A callable mask for ``optax.masked`` that raises when it selects nothing."""
    resolved = resolve_mask(mask)

    def mask_fn(params):
        selected_leaves(params, mask)
        return resolved(params) if callable(resolved) else resolved

    return mask_fn


# ----------------------------------------------------------------------------
# Transform machinery: one factory for additive terms, one for terminal steps
# ----------------------------------------------------------------------------

class PenaltyState(NamedTuple):
    """Step count of a penalty whose strength or learning rate is a schedule."""

    count: jax.Array  # shape=(), dtype=jnp.int32


class TerminalTransformation(optax.GradientTransformationExtraArgs):
    """A transform that must come last in a chain (a proximal step or projection).

    Only a marker type, so that :func:`chain` can check placement.
    """

    __slots__ = ()


def _init_fn(hyperparams):
    def init_fn(params):
        del params
        if any_schedule(*hyperparams):
            return PenaltyState(count=jnp.zeros([], jnp.int32))
        return optax.EmptyState()
    return init_fn


def _next_state(state, hyperparams):
    values = [value_at(h, getattr(state, "count", None)) for h in hyperparams]
    if any_schedule(*hyperparams):
        state = PenaltyState(count=optax.safe_increment(state.count))
    return values, state


def _require_params(params):
    if params is None:
        raise ValueError("this penalty transform needs `params` passed to update()")


def additive(term: Callable, hyperparams: tuple, mask: Mask):
    """updates + term(params, *hyperparams) on the masked leaves."""
    def update_fn(updates, state, params=None):
        _require_params(params)
        values, state = _next_state(state, hyperparams)
        updates = jax.tree.map(
            lambda g, p: g + term(p, *values).astype(g.dtype), updates, params
        )
        return updates, state

    inner = optax.GradientTransformation(_init_fn(hyperparams), update_fn)
    return optax.masked(inner, checked_mask(mask))


def terminal(operator: Callable, hyperparams: tuple, mask: Mask) -> TerminalTransformation:
    """operator(params + updates, *hyperparams) - params on the masked leaves."""
    def update_fn(updates, state, params=None):
        _require_params(params)
        values, state = _next_state(state, hyperparams)
        updates = jax.tree.map(
            lambda u, p: (operator(p + u, *values) - p).astype(u.dtype), updates, params
        )
        return updates, state

    inner = optax.GradientTransformation(_init_fn(hyperparams), update_fn)
    return TerminalTransformation(*optax.masked(inner, checked_mask(mask)))


# ----------------------------------------------------------------------------
# Penalty terms R(w) of one leaf (hp: the kind's hyperparameters)
# ----------------------------------------------------------------------------

def l2_value(w, hp, axis):
    return 0.5 * hp["strength"] * jnp.sum(jnp.square(w))


def _l1_norm(w):
    # ‖w‖₁ written as Σ w·sign(w) so that jax.grad gives sign(w), 0 at w = 0 (the
    # transforms' convention); jax.grad(jnp.abs)(0.) is 1.
    return jnp.sum(w * jax.lax.stop_gradient(jnp.sign(w)))


def l1_value(w, hp, axis):
    return hp["strength"] * _l1_norm(w)


def elastic_net_value(w, hp, axis):
    return hp["strength"] * _l1_norm(w) + 0.5 * hp["l2_strength"] * jnp.sum(jnp.square(w))


def group_l1_value(w, hp, axis):
    return hp["strength"] * jnp.sum(group_norms(w, axis))


def no_value(w, hp, axis):
    return jnp.zeros([], w.dtype)
