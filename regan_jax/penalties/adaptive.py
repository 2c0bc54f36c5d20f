"""Penalties held at a constant effective strength: λ_t set at every update.

The calibration (``docs/calibration.md``) measures once, before training, what
a strength means; these transforms keep that meaning while the gradients and
weights change. With g the incoming updates, w the weights, ∂R₁(w) the
penalty's (sub)gradient at unit strength and RMS taken over the masked leaves
(pooled over the network, or per leaf with ``granularity='layer'``), λ_t is

==========================  ===============================================
position                    λ_t
==========================  ===============================================
coupled (before the         e_t · RMS(g) / RMS(∂R₁(w)):  RMS(λ_t ∂R₁(w)) =
optimizer's scaling)        e_t · RMS(g), the loss gradient it is added to
decoupled, proximal         e_t · RMS(w) / (η_t · RMS(∂R₁(w))):  the shrinkage
                            of this update, η_t λ_t RMS(∂R₁(w)), is e_t · RMS(w)
==========================  ===============================================

e_t is ``target`` (a float or an optax schedule, at this transform's count).
For a decoupled or proximal kind it is a shrinkage *per update*: the
optimizer builder passes e / U (U the network's updates over the run), so
that the shrinkage summed over the run is the calibration's per-run e. With
constant statistics λ_t is constant and the transform is the fixed-λ one of
:mod:`regan_jax.penalties.transforms` at that λ (it applies the same per-leaf
terms and operators). This generalises adaptive weight decay (Ghiasi et al.,
2023: λ_t ∝ ‖∇L‖/‖w‖, our coupled L2) to every penalty kind.

A ratio with a zero denominator (all-zero weights, a zero learning rate)
gives λ_t = 0. The realised λ_t (one per leaf with ``granularity='layer'``)
is kept in :class:`AdaptiveState`; :func:`realised_strength` reads it from an
optimizer state (the loop logs it as ``lambda_<net>``).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from regan_jax._names import check_name
from regan_jax.penalties import operators as ops
from regan_jax.penalties.hyperparams import COUPLINGS, L2_STRENGTH, LEARNING_RATE, STRENGTH
from regan_jax.penalties.masks import Mask, checked_mask
from regan_jax.penalties.transforms import (
    TerminalTransformation,
    elastic_net_term,
    group_l1_term,
    l1_term,
    prox_elastic_net_operator,
    prox_group_l1_operator,
    prox_l1_operator,
    value_at,
)

# RMS statistics pooled over a network's masked leaves (the calibration's unit) or per leaf.
GRANULARITIES = ("network", "layer")


class AdaptiveState(NamedTuple):
    """State of an adaptive penalty."""

    count: jax.Array  # int32 []: updates so far (where the schedules are evaluated)
    realised_strength: Any  # float32 [] ('network') or one [] per masked leaf ('layer'): λ_t


class _Penalty(NamedTuple):
    """One penalty's per-leaf functions at strength λ (``mix`` = λ₂/λ₁ for elastic net)."""

    unit: Callable  # (w, mix) -> ∂R₁(w), the (sub)gradient at λ = 1
    term: Callable  # (w, λ, mix) -> λ ∂R₁(w), what an additive transform adds
    operator: Callable | None  # (z, λ, mix, t) -> the proximal map; None: no proximal kind


def _penalty(kind: str, axis: int) -> _Penalty:
    return {
        "l2": _Penalty(lambda w, mix: w, lambda w, s, mix: s * w, None),
        "l1": _Penalty(
            lambda w, mix: ops.l1_subgradient(w),
            lambda w, s, mix: l1_term(w, s),
            lambda z, s, mix, t: prox_l1_operator(z, s, t),
        ),
        "elastic_net": _Penalty(
            lambda w, mix: elastic_net_term(w, 1.0, mix),
            lambda w, s, mix: elastic_net_term(w, s, s * mix),
            lambda z, s, mix, t: prox_elastic_net_operator(z, s, s * mix, t),
        ),
        "group_l1": _Penalty(
            lambda w, mix: ops.group_l1_subgradient(w, axis),
            lambda w, s, mix: group_l1_term(w, s, axis),
            lambda z, s, mix, t: prox_group_l1_operator(z, s, t, axis),
        ),
    }[kind]


# ----------------------------------------------------------------------------
# Statistics and the strength
# ----------------------------------------------------------------------------


def rms(tree: Any, granularity: str = "network") -> Any:
    """RMS over all leaves pooled ([]) or, with ``granularity='layer'``, per leaf (a tree)."""
    sums = jax.tree.map(lambda x: jnp.sum(jnp.square(x.astype(jnp.float32))), tree)
    if granularity == "layer":
        return jax.tree.map(lambda s, x: jnp.sqrt(s / x.size), sums, tree)
    size = sum(x.size for x in jax.tree.leaves(tree))
    return jnp.sqrt(sum(jax.tree.leaves(sums)) / size)


def _ratio(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0."""
    positive = denominator > 0
    return jnp.where(positive, numerator / jnp.where(positive, denominator, 1.0), 0.0)


def _strength(target: Any, reference: Any, unit_rms: Any) -> Any:
    """λ = target · reference / unit_rms (0 where unit_rms is 0), per leaf if trees."""
    return jax.tree.map(lambda r, u: _ratio(target * r, u), reference, unit_rms)


def _per_leaf(strength: Any, tree: Any, granularity: str) -> Any:
    """The strength of each leaf of ``tree`` (the network's one, broadcast)."""
    if granularity == "layer":
        return strength
    return jax.tree.map(lambda _: strength, tree)


# ----------------------------------------------------------------------------
# The factory
# ----------------------------------------------------------------------------


def _check(target, learning_rate, granularity, coupling):
    STRENGTH.check(target, "target")
    if learning_rate is not None:
        LEARNING_RATE.check(learning_rate)
    check_name("granularity", granularity, GRANULARITIES)
    check_name("coupling", coupling, COUPLINGS)
    if coupling == "decoupled" and learning_rate is None:
        raise ValueError("a decoupled or proximal adaptive penalty needs its learning_rate")


def _adaptive(
    penalty: _Penalty,
    target,
    mix,
    learning_rate,
    mask: Mask,
    granularity: str,
    coupling: str,
    terminal: bool,
):
    """The transform: λ_t from the statistics (module docstring), then the term or the operator."""
    _check(target, learning_rate, granularity, coupling)

    def init_fn(params):
        zero = jnp.zeros([], jnp.float32)
        realised = jax.tree.map(lambda _: zero, params) if granularity == "layer" else zero
        return AdaptiveState(jnp.zeros([], jnp.int32), realised)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("an adaptive penalty needs `params` passed to update()")
        e, m, t = (value_at(h, state.count) for h in (target, mix, learning_rate))
        unit_rms = rms(jax.tree.map(lambda w: penalty.unit(w, m), params), granularity)
        if coupling == "coupled":  # relative to the gradient it is added to
            strength = _strength(e, rms(updates, granularity), unit_rms)
        else:  # shrinkage η_t λ_t RMS(∂R₁(w)) relative to the weights
            strength = _strength(_ratio(e, t), rms(params, granularity), unit_rms)
        per_leaf = _per_leaf(strength, params, granularity)
        if terminal:
            updates = jax.tree.map(
                lambda u, p, s: (penalty.operator(p + u, s, m, t) - p).astype(u.dtype),
                updates,
                params,
                per_leaf,
            )
        else:
            updates = jax.tree.map(
                lambda g, p, s: g + penalty.term(p, s, m).astype(g.dtype), updates, params, per_leaf
            )
        return updates, AdaptiveState(optax.safe_increment(state.count), strength)

    inner = optax.GradientTransformation(init_fn, update_fn)
    masked = optax.masked(inner, checked_mask(mask))
    return TerminalTransformation(*masked) if terminal else masked


# ----------------------------------------------------------------------------
# Additive kinds (coupled or decoupled by the ``coupling`` argument and their position)
# ----------------------------------------------------------------------------


def adaptive_l2(
    target: optax.ScalarOrSchedule,
    mask: Mask = None,
    *,
    coupling: str = "coupled",
    learning_rate: optax.ScalarOrSchedule | None = None,
    granularity: str = "network",
) -> optax.GradientTransformation:
    """L2 at effective strength e: u ← u + λ_t w (module docstring for λ_t).

    Coupled: λ_t = e·RMS(g)/RMS(w) (Ghiasi et al.'s adaptive weight decay).
    Decoupled: λ_t = e/η_t, a constant shrinkage e per update.

    Args:
      target: e ≥ 0 (float or schedule); per update when decoupled.
      mask: leaves to penalise (default kernels).
      coupling: 'coupled' (put the transform before the optimizer's scaling)
        or 'decoupled' (after it; needs ``learning_rate``).
      learning_rate: η (float or schedule), the chain's learning rate.
      granularity: 'network' (one λ_t for all masked leaves) or 'layer'.
    """
    return _adaptive(
        _penalty("l2", -1), target, 0.0, learning_rate, mask, granularity, coupling, False
    )


def adaptive_l1(
    target: optax.ScalarOrSchedule,
    mask: Mask = None,
    *,
    coupling: str = "coupled",
    learning_rate: optax.ScalarOrSchedule | None = None,
    granularity: str = "network",
) -> optax.GradientTransformation:
    """L1 at effective strength e: u ← u + λ_t sign(w), RMS(sign w) = sqrt(non-zero fraction).

    Args: as :func:`adaptive_l2`.
    """
    return _adaptive(
        _penalty("l1", -1), target, 0.0, learning_rate, mask, granularity, coupling, False
    )


def adaptive_elastic_net(
    target: optax.ScalarOrSchedule,
    l2_ratio: Any,
    mask: Mask = None,
    *,
    coupling: str = "coupled",
    learning_rate: optax.ScalarOrSchedule | None = None,
    granularity: str = "network",
) -> optax.GradientTransformation:
    """Elastic net at effective strength e: λ₁ = λ_t, λ₂ = λ_t · ``l2_ratio``.

    u ← u + λ_t (sign(w) + ρ w), ρ = ``l2_ratio`` ≥ 0 (the mix is kept; its scale adapts).

    Args: as :func:`adaptive_l2`, and ``l2_ratio``: λ₂/λ₁ (float or schedule).
    """
    L2_STRENGTH.check(l2_ratio, "l2_ratio")
    return _adaptive(
        _penalty("elastic_net", -1),
        target,
        l2_ratio,
        learning_rate,
        mask,
        granularity,
        coupling,
        False,
    )


def adaptive_group_l1(
    target: optax.ScalarOrSchedule,
    mask: Mask = None,
    axis: int = -1,
    *,
    coupling: str = "coupled",
    learning_rate: optax.ScalarOrSchedule | None = None,
    granularity: str = "network",
) -> optax.GradientTransformation:
    """Group L1 at effective strength e: u_g ← u_g + λ_t w_g/‖w_g‖₂.

    Args: as :func:`adaptive_l2`, and ``axis``: the group axis (default -1).
    """
    return _adaptive(
        _penalty("group_l1", axis), target, 0.0, learning_rate, mask, granularity, coupling, False
    )


# ----------------------------------------------------------------------------
# Proximal kinds (LAST in a chain, after the learning-rate scaling)
# ----------------------------------------------------------------------------


def adaptive_prox_l1(
    target: optax.ScalarOrSchedule,
    learning_rate: optax.ScalarOrSchedule,
    mask: Mask = None,
    *,
    granularity: str = "network",
) -> TerminalTransformation:
    """Proximal L1 at effective strength e per update: soft_threshold(w + u, η_t λ_t).

    λ_t = e·RMS(w)/(η_t sqrt(non-zero fraction of w)), w the weights before the step.

    Args:
      target: e ≥ 0 per update (float or schedule).
      learning_rate: η (float or schedule), the chain's learning rate.
      mask: leaves to threshold (default kernels).
      granularity: 'network' or 'layer'.
    """
    return _adaptive(
        _penalty("l1", -1), target, 0.0, learning_rate, mask, granularity, "decoupled", True
    )


def adaptive_prox_elastic_net(
    target: optax.ScalarOrSchedule,
    l2_ratio: Any,
    learning_rate: optax.ScalarOrSchedule,
    mask: Mask = None,
    *,
    granularity: str = "network",
) -> TerminalTransformation:
    """Proximal elastic net at effective strength e per update (λ₁ = λ_t, λ₂ = λ_t·l2_ratio).

    Args: as :func:`adaptive_prox_l1`, and ``l2_ratio``: λ₂/λ₁ ≥ 0.
    """
    L2_STRENGTH.check(l2_ratio, "l2_ratio")
    return _adaptive(
        _penalty("elastic_net", -1),
        target,
        l2_ratio,
        learning_rate,
        mask,
        granularity,
        "decoupled",
        True,
    )


def adaptive_prox_group_l1(
    target: optax.ScalarOrSchedule,
    learning_rate: optax.ScalarOrSchedule,
    mask: Mask = None,
    axis: int = -1,
    *,
    granularity: str = "network",
) -> TerminalTransformation:
    """Proximal group L1 at effective strength e per update (block soft-threshold at η_t λ_t).

    Args: as :func:`adaptive_prox_l1`, and ``axis``: the group axis.
    """
    return _adaptive(
        _penalty("group_l1", axis), target, 0.0, learning_rate, mask, granularity, "decoupled", True
    )


# ----------------------------------------------------------------------------
# Reading the realised strength
# ----------------------------------------------------------------------------


def realised_strength(opt_state: Any) -> jax.Array:
    """λ_t of the last update, from an optimizer state holding one adaptive penalty.

    With ``granularity='layer'`` the mean over the layers. Works inside a step
    (one member's state) or on a host copy.

    Raises:
      ValueError: no adaptive penalty in ``opt_state``.
    """
    found = optax.tree_utils.tree_get(opt_state, "realised_strength", default=None)
    if found is None:
        raise ValueError("this optimizer state holds no adaptive penalty (AdaptiveState)")
    leaves = jax.tree.leaves(found)
    return sum(leaves) / len(leaves)
