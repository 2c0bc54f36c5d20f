"""Penalty transforms: optax factories for additive terms and terminal steps.

Two kinds of transform, each built by one private factory:

- additive (:func:`l2`, :func:`l1`, :func:`elastic_net`, :func:`group_l1`):
  u ← u + ∂R(w) on the masked leaves; where it sits relative to
  ``scale_by_adam`` makes it coupled or decoupled.
- terminal (:func:`prox_l1`, :func:`prox_elastic_net`, :func:`prox_group_l1`,
  :func:`project_l2_ball`, :func:`max_norm`): with z = w + u, returns
  u' = T(z) - w so that ``optax.apply_updates`` yields exactly T(z). They are
  :class:`TerminalTransformation` instances, so :func:`chain` can check that
  they come last.

Each hyperparameter is a float or an optax schedule (evaluated at this
transform's own count, kept in :class:`PenaltyState` only when some value is a
schedule); its rule is checked by its declaration in
:mod:`regan_jax.penalties.hyperparams`. The per-leaf math lives in
:mod:`regan_jax.penalties.operators`, the masks in :mod:`regan_jax.penalties.masks`.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from regan_jax.penalties import operators as ops
from regan_jax.penalties.hyperparams import L2_STRENGTH, LEARNING_RATE, RADIUS, STRENGTH
from regan_jax.penalties.masks import Mask, checked_mask

# ----------------------------------------------------------------------------
# Machinery: one factory for additive terms, one for terminal steps
# ----------------------------------------------------------------------------


def value_at(hyperparam: Any, count: jax.Array | None) -> Any:
    """A hyperparameter's value at ``count``: ``h(count)`` for a schedule, else ``h``."""
    return hyperparam(count) if callable(hyperparam) else hyperparam


def any_schedule(*hyperparams: Any) -> bool:
    return any(callable(h) for h in hyperparams)


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
        updates = jax.tree.map(lambda g, p: g + term(p, *values).astype(g.dtype), updates, params)
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
# Per-leaf terms and operators at given strengths (shared with the adaptive kinds)
# ----------------------------------------------------------------------------


def l1_term(w, s):
    """λ·sign(w): what :func:`l1` adds."""
    return s * ops.l1_subgradient(w)


def elastic_net_term(w, s1, s2):
    """λ₁·sign(w) + λ₂·w: what :func:`elastic_net` adds."""
    return s1 * ops.l1_subgradient(w) + s2 * w


def group_l1_term(w, s, axis):
    """λ·w_g/‖w_g‖₂: what :func:`group_l1` adds."""
    return s * ops.group_l1_subgradient(w, axis)


def prox_l1_operator(z, s, t):
    """soft_threshold(z, tλ): what :func:`prox_l1` applies."""
    return ops.soft_threshold(z, t * s)


def prox_elastic_net_operator(z, s1, s2, t):
    """soft_threshold(z, tλ₁) / (1 + tλ₂): what :func:`prox_elastic_net` applies."""
    return ops.soft_threshold(z, t * s1) / (1.0 + t * s2)


def prox_group_l1_operator(z, s, t, axis):
    """Block soft-threshold of z at tλ: what :func:`prox_group_l1` applies."""
    return ops.block_soft_threshold(z, t * s, axis)


# ----------------------------------------------------------------------------
# Additive transforms
# ----------------------------------------------------------------------------


def l2(strength: optax.ScalarOrSchedule, mask: Mask = None) -> optax.GradientTransformation:
    """Coupled/decoupled L2: ``optax.add_decayed_weights`` with a kernels-only default.

    .. math:: u ← u + λ w  \\quad(\\text{gradient of } (λ/2)‖w‖²)

    Args:
      strength: λ ≥ 0 (float or schedule).
      mask: see :func:`path_mask` / :func:`kernel_mask` (default kernels).
    """
    STRENGTH.check(strength)
    return optax.add_decayed_weights(strength, checked_mask(mask))


def l1(strength: optax.ScalarOrSchedule, mask: Mask = None) -> optax.GradientTransformation:
    """Adds the L1 subgradient: u ← u + λ·sign(w), sign(0) = 0 (penalty λ‖w‖₁).

    Before ``scale_by_adam`` = L1 in the loss; after it = decoupled L1.

    Args:
      strength: λ ≥ 0 (float or schedule, evaluated at this transform's count).
      mask: leaves to penalise (default kernels).
    """
    STRENGTH.check(strength)
    return additive(l1_term, (strength,), mask)


def elastic_net(
    l1: optax.ScalarOrSchedule, l2: optax.ScalarOrSchedule, mask: Mask = None
) -> optax.GradientTransformation:
    """Adds u ← u + λ₁·sign(w) + λ₂·w (penalty λ₁‖w‖₁ + (λ₂/2)‖w‖²).

    Args:
      l1: λ₁ ≥ 0 (float or schedule).
      l2: λ₂ ≥ 0 (float or schedule).
      mask: leaves to penalise (default kernels).
    """
    STRENGTH.check(l1, "l1")
    L2_STRENGTH.check(l2, "l2")
    return additive(elastic_net_term, (l1, l2), mask)


def group_l1(
    strength: optax.ScalarOrSchedule, mask: Mask = None, axis: int = -1
) -> optax.GradientTransformation:
    """Adds u_g ← u_g + λ·w_g/‖w_g‖₂ (0 for an all-zero group); penalty λ Σ_g ‖w_g‖₂.

    Args:
      strength: λ ≥ 0 (float or schedule).
      mask: leaves to penalise (default kernels).
      axis: the group axis; a group is one slice along it (default -1 = output
        units / filters), its norm taken over all other axes.
    """
    STRENGTH.check(strength)
    return additive(lambda w, s: group_l1_term(w, s, axis), (strength,), mask)


# ----------------------------------------------------------------------------
# Terminal steps: proximal operators and projections (LAST in a chain)
# ----------------------------------------------------------------------------


def prox_l1(
    strength: optax.ScalarOrSchedule,
    learning_rate: optax.ScalarOrSchedule,
    mask: Mask = None,
) -> TerminalTransformation:
    """Proximal L1 step, LAST in a chain: w⁺ = soft_threshold(w + u, t·λ).

    soft_threshold(z, τ) = sign(z)·max(|z| - τ, 0), t = ``learning_rate``
    (at this transform's count if a schedule). Returns u' = w⁺ - w, so weights
    with |z| <= tλ become exactly zero. With SGD before it this is ISTA; after
    Adam it thresholds Adam's step with the unpreconditioned step size t.

    Args:
      strength: λ ≥ 0 (penalty λ‖w‖₁).
      learning_rate: t ≥ 0, the same learning rate as the chain's scaling.
      mask: leaves to threshold (default kernels).
    """
    STRENGTH.check(strength)
    LEARNING_RATE.check(learning_rate)
    return terminal(prox_l1_operator, (strength, learning_rate), mask)


def prox_elastic_net(
    l1: optax.ScalarOrSchedule,
    l2: optax.ScalarOrSchedule,
    learning_rate: optax.ScalarOrSchedule,
    mask: Mask = None,
) -> TerminalTransformation:
    """Proximal elastic-net step, LAST: w⁺ = soft_threshold(w + u, tλ₁) / (1 + tλ₂).

    The exact prox of t(λ₁‖·‖₁ + (λ₂/2)‖·‖²); with λ₁ = 0 it is proximal
    (implicit) L2 decay w⁺ = z/(1 + tλ₂).

    Args:
      l1: λ₁ ≥ 0. l2: λ₂ ≥ 0. learning_rate: t ≥ 0 (float or schedule).
      mask: leaves to shrink (default kernels).
    """
    STRENGTH.check(l1, "l1")
    L2_STRENGTH.check(l2, "l2")
    LEARNING_RATE.check(learning_rate)
    return terminal(prox_elastic_net_operator, (l1, l2, learning_rate), mask)


def prox_group_l1(
    strength: optax.ScalarOrSchedule,
    learning_rate: optax.ScalarOrSchedule,
    mask: Mask = None,
    axis: int = -1,
) -> TerminalTransformation:
    """Proximal group-L1 step, LAST: w⁺_g = z_g·max(1 - tλ/‖z_g‖₂, 0), z = w + u.

    Block soft-thresholding: every group (filter/unit) with ‖z_g‖₂ <= tλ
    becomes exactly zero as a whole.

    Args:
      strength: λ ≥ 0 (penalty λ Σ_g ‖w_g‖₂). learning_rate: t ≥ 0.
      mask: leaves to shrink (default kernels). axis: group axis (default -1).
    """
    STRENGTH.check(strength)
    LEARNING_RATE.check(learning_rate)
    return terminal(
        lambda z, s, t: prox_group_l1_operator(z, s, t, axis), (strength, learning_rate), mask
    )


def project_l2_ball(radius: optax.ScalarOrSchedule, mask: Mask = None) -> TerminalTransformation:
    """Projection, LAST: each masked kernel onto {‖w‖_F <= r}: w⁺ = z·min(1, r/‖z‖_F).

    Points already inside the ball are left exactly unchanged.

    Args:
      radius: r > 0 (float or schedule). mask: leaves to constrain (default kernels).
    """
    RADIUS.check(radius)
    return terminal(ops.project_l2_ball, (radius,), mask)


def max_norm(
    radius: optax.ScalarOrSchedule, mask: Mask = None, axis: int = -1
) -> TerminalTransformation:
    """Max-norm projection, LAST: each unit w⁺_g = z_g·min(1, r/‖z_g‖₂).

    A unit is a slice along ``axis`` (default -1: the incoming weights of one
    output unit / one filter), as in Srivastava et al. (2014).

    Args:
      radius: r > 0 (float or schedule). mask: leaves (default kernels).
      axis: group axis (default -1).
    """
    RADIUS.check(radius)
    return terminal(lambda z, r: ops.project_max_norm(z, r, axis), (radius,), mask)


# ----------------------------------------------------------------------------
# Placement
# ----------------------------------------------------------------------------


def is_terminal(transform: optax.GradientTransformation) -> bool:
    """Whether ``transform`` is a proximal step or projection (must come last)."""
    return isinstance(transform, TerminalTransformation)


def chain(*transforms: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """``optax.chain`` that checks proximal steps and projections come last.

    Terminal steps may follow one another (the composition T₂(T₁(z)) is then
    applied), but no ordinary transform may follow one. A user-built
    ``optax.chain`` is not checked, and terminal steps hidden inside other
    wrappers (``optax.masked``, ``inject_hyperparams``) cannot be detected.

    Raises:
      ValueError: a proximal/projection step is followed by a non-terminal one.
    """
    for index, transform in enumerate(transforms):
        later = transforms[index + 1 :]
        if is_terminal(transform) and not all(is_terminal(t) for t in later):
            raise ValueError(
                f"proximal/projection step at position {index} of {len(transforms)} "
                "must come last in the chain (after the learning-rate scaling); "
                f"followed by non-terminal transform(s) at positions "
                f"{[index + 1 + i for i, t in enumerate(later) if not is_terminal(t)]}"
            )
    return optax.chain(*transforms)
