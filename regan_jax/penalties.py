"""Norm penalties on network weights as optax gradient transformations.

Strength conventions (every strength is a float or an optax schedule):

- L2, strength λ: penalty (λ/2)‖w‖², gradient λw. This is
  ``optax.add_decayed_weights`` (and torch's ``weight_decay``); :func:`l2` only
  adds the kernels-only default mask and argument checks to it.
- L1, strength λ: penalty λ‖w‖₁, subgradient λ·sign(w) with sign(0) = 0.
- Elastic net, strengths (λ₁, λ₂): λ₁‖w‖₁ + (λ₂/2)‖w‖².
- Group L1, strength λ: λ Σ_g ‖w_g‖₂, a group g being one slice along ``axis``
  (default -1: one output unit of a Dense ``[in, out]`` kernel, one filter of a
  Conv ``[kh, kw, in, out]`` kernel), its norm taken over all other axes.

Where a transform sits in an optax chain sets its meaning:

- additive (:func:`l2`, :func:`l1`, :func:`elastic_net`, :func:`group_l1`)
  add the penalty's (sub)gradient to the updates. Before ``scale_by_adam`` this
  is *coupled* (the same as the penalty in the loss; torch
  ``Adam(weight_decay=)``); after ``scale_by_adam`` and before the learning-rate
  scaling it is *decoupled* (AdamW: the term is multiplied by the learning rate
  but not by Adam's preconditioner).
- proximal (:func:`prox_l1`, :func:`prox_elastic_net`, :func:`prox_group_l1`)
  and projections (:func:`project_l2_ball`, :func:`max_norm`) go LAST, after
  the learning-rate scaling: with z = params + updates they return
  ``T(z) - params``, so that ``optax.apply_updates`` yields exactly ``T(z)``
  (exact zeros for L1/group L1). Use :func:`chain` to have that order checked.

Every transform takes a ``mask`` (default :func:`kernel_mask`: leaves with
ndim >= 2, so biases and normalisation scales are left alone); masking is
delegated to ``optax.masked``, and a mask that selects no parameter raises.

Example (a proximal step zeroes weak kernels exactly; biases are untouched)::

    >>> import jax.numpy as jnp, optax
    >>> from regan_jax import penalties
    >>> params = {"Dense_0": {"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)}}
    >>> grads = {"Dense_0": {"kernel": jnp.zeros((3, 2)), "bias": jnp.zeros(2)}}
    >>> opt = penalties.chain(optax.scale_by_adam(), optax.scale(-1e-2),
    ...                       penalties.prox_l1(strength=200.0, learning_rate=1e-2))
    >>> updates, _ = opt.update(grads, opt.init(params), params)
    >>> new = optax.apply_updates(params, updates)
    >>> print(new["Dense_0"]["kernel"].sum(), new["Dense_0"]["bias"])
    0.0 [1. 1.]

A whole optimizer from configs (AdamW), its strength overridden in the state::

    >>> opt_cfg, pen_cfg = penalties.default_optimizer_config(), penalties.default_penalty_config()
    >>> pen_cfg.kind, pen_cfg.coupling, pen_cfg.strength = "l2", "decoupled", 1e-4
    >>> opt = penalties.build_optimizer(opt_cfg, pen_cfg)
    >>> state = penalties.set_hyperparams(opt.init(params), strength=1e-3)
    >>> sorted(penalties.get_hyperparams(state))
    ['learning_rate', 'strength']
"""
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from regan_jax import _penalty_ops as ops
from regan_jax._names import check_name
from regan_jax._penalty_ops import (
    Mask, PenaltyState, TerminalTransformation, kernel_mask, path_mask, selected_leaves)

__all__ = [
    # masks
    "Mask", "kernel_mask", "path_mask", "selected_leaves",
    # transforms
    "PenaltyState", "TerminalTransformation", "l2", "l1", "elastic_net", "group_l1",
    "prox_l1", "prox_elastic_net", "prox_group_l1", "project_l2_ball", "max_norm",
    "is_terminal", "chain",
    # builder
    "OPTIMIZERS", "PENALTY_KINDS", "COUPLINGS", "default_optimizer_config",
    "default_penalty_config", "validate_optimizer_config", "validate_penalty_config",
    "build_optimizer", "get_hyperparams", "set_hyperparams",
    # logging
    "penalty_value", "weight_stats",
]


# ----------------------------------------------------------------------------
# Transforms
# ----------------------------------------------------------------------------

def l2(strength: optax.ScalarOrSchedule, mask: Mask = None) -> optax.GradientTransformation:
    """Coupled/decoupled L2: ``optax.add_decayed_weights`` with a kernels-only default.

    .. math:: u ← u + λ w  \\quad(\\text{gradient of } (λ/2)‖w‖²)

    Args:
      strength: λ ≥ 0 (float or schedule).
      mask: see :func:`path_mask` / :func:`kernel_mask` (default kernels).
    """
    ops.check_hyperparam("strength", strength)
    return optax.add_decayed_weights(strength, ops.checked_mask(mask))


def l1(strength: optax.ScalarOrSchedule, mask: Mask = None) -> optax.GradientTransformation:
    """Adds the L1 subgradient: u ← u + λ·sign(w), sign(0) = 0 (penalty λ‖w‖₁).

    Before ``scale_by_adam`` = L1 in the loss; after it = decoupled L1.

    Args:
      strength: λ ≥ 0 (float or schedule, evaluated at this transform's count).
      mask: leaves to penalise (default kernels).
    """
    ops.check_hyperparam("strength", strength)
    return ops.additive(lambda w, s: s * ops.l1_subgradient(w), (strength,), mask)


def elastic_net(
    l1: optax.ScalarOrSchedule, l2: optax.ScalarOrSchedule, mask: Mask = None
) -> optax.GradientTransformation:
    """Adds u ← u + λ₁·sign(w) + λ₂·w (penalty λ₁‖w‖₁ + (λ₂/2)‖w‖²).

    Args:
      l1: λ₁ ≥ 0 (float or schedule).
      l2: λ₂ ≥ 0 (float or schedule).
      mask: leaves to penalise (default kernels).
    """
    ops.check_hyperparam("l1", l1)
    ops.check_hyperparam("l2", l2)
    return ops.additive(
        lambda w, s1, s2: s1 * ops.l1_subgradient(w) + s2 * w, (l1, l2), mask
    )


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
    ops.check_hyperparam("strength", strength)
    return ops.additive(
        lambda w, s: s * ops.group_l1_subgradient(w, axis), (strength,), mask
    )


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
    ops.check_hyperparam("strength", strength)
    ops.check_hyperparam("learning_rate", learning_rate)
    return ops.terminal(
        lambda z, s, t: ops.soft_threshold(z, t * s), (strength, learning_rate), mask
    )


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
    ops.check_hyperparam("l1", l1)
    ops.check_hyperparam("l2", l2)
    ops.check_hyperparam("learning_rate", learning_rate)
    return ops.terminal(
        lambda z, s1, s2, t: ops.soft_threshold(z, t * s1) / (1.0 + t * s2),
        (l1, l2, learning_rate),
        mask,
    )


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
    ops.check_hyperparam("strength", strength)
    ops.check_hyperparam("learning_rate", learning_rate)
    return ops.terminal(
        lambda z, s, t: ops.block_soft_threshold(z, t * s, axis),
        (strength, learning_rate),
        mask,
    )


def project_l2_ball(radius: optax.ScalarOrSchedule, mask: Mask = None) -> TerminalTransformation:
    """Projection, LAST: each masked kernel onto {‖w‖_F <= r}: w⁺ = z·min(1, r/‖z‖_F).

    Points already inside the ball are left exactly unchanged.

    Args:
      radius: r > 0 (float or schedule). mask: leaves to constrain (default kernels).
    """
    ops.check_hyperparam("radius", radius, positive=True)
    return ops.terminal(ops.project_l2_ball, (radius,), mask)


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
    ops.check_hyperparam("radius", radius, positive=True)
    return ops.terminal(lambda z, r: ops.project_max_norm(z, r, axis), (radius,), mask)


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
        later = transforms[index + 1:]
        if is_terminal(transform) and not all(is_terminal(t) for t in later):
            raise ValueError(
                f"proximal/projection step at position {index} of {len(transforms)} "
                "must come last in the chain (after the learning-rate scaling); "
                f"followed by non-terminal transform(s) at positions "
                f"{[index + 1 + i for i, t in enumerate(later) if not is_terminal(t)]}"
            )
    return optax.chain(*transforms)


# ----------------------------------------------------------------------------
# Optimizer builder from configs
# ----------------------------------------------------------------------------

def _sgd(cfg) -> optax.GradientTransformation:
    if cfg.momentum == 0:
        return optax.identity()
    return optax.trace(decay=cfg.momentum, nesterov=cfg.nesterov)


# name -> the optimizer's direction (before the learning-rate scaling).
OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = {
    "adam": lambda cfg: optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps),
    "sgd": _sgd,
    # torch RMSprop: g / (sqrt(v) + eps), v the EMA of g² with decay b2.
    "rmsprop": lambda cfg: optax.scale_by_rms(decay=cfg.b2, eps=cfg.eps, eps_in_sqrt=False),
}

COUPLINGS = ("coupled", "decoupled")


class _Kind(NamedTuple):
    role: str  # 'none' | 'additive' | 'terminal'
    hyperparams: tuple[str, ...]  # injected scalars besides learning_rate
    make: Callable | None  # (hyperparams, learning_rate, mask, axis) -> transform
    value: Callable  # (leaf, hyperparams, axis) -> penalty term of that leaf


PENALTY_KINDS: dict[str, _Kind] = {
    "none": _Kind("none", (), None, ops.no_value),
    "l2": _Kind("additive", ("strength",),
                lambda hp, lr, mask, axis: l2(hp["strength"], mask), ops.l2_value),
    "l1": _Kind("additive", ("strength",),
                lambda hp, lr, mask, axis: l1(hp["strength"], mask), ops.l1_value),
    "elastic_net": _Kind(
        "additive", ("strength", "l2_strength"),
        lambda hp, lr, mask, axis: elastic_net(hp["strength"], hp["l2_strength"], mask),
        ops.elastic_net_value),
    "group_l1": _Kind("additive", ("strength",),
                      lambda hp, lr, mask, axis: group_l1(hp["strength"], mask, axis),
                      ops.group_l1_value),
    "prox_l1": _Kind("terminal", ("strength",),
                     lambda hp, lr, mask, axis: prox_l1(hp["strength"], lr, mask), ops.l1_value),
    "prox_elastic_net": _Kind(
        "terminal", ("strength", "l2_strength"),
        lambda hp, lr, mask, axis: prox_elastic_net(hp["strength"], hp["l2_strength"], lr, mask),
        ops.elastic_net_value),
    "prox_group_l1": _Kind(
        "terminal", ("strength",),
        lambda hp, lr, mask, axis: prox_group_l1(hp["strength"], lr, mask, axis),
        ops.group_l1_value),
    # Hard constraints: the penalty is the ball's indicator, 0 on the feasible set.
    "l2_ball": _Kind("terminal", ("radius",),
                     lambda hp, lr, mask, axis: project_l2_ball(hp["radius"], mask), ops.no_value),
    "max_norm": _Kind("terminal", ("radius",),
                      lambda hp, lr, mask, axis: max_norm(hp["radius"], mask, axis), ops.no_value),
}


def default_optimizer_config() -> ml_collections.ConfigDict:
    """One network's optimizer: ``name`` from :data:`OPTIMIZERS` and its settings.

    ``learning_rate`` is the base rate; the rate at step k is
    learning_rate × m(k) with m the ``schedule`` multiplier ('constant',
    'linear_warmup' over ``warmup_steps``, 'warmup_cosine' to 0 at
    ``decay_steps``). ``b1``/``b2``/``eps``: Adam's (rmsprop uses ``b2`` as its
    decay); ``momentum``/``nesterov``: sgd's.
    """
    cfg = ml_collections.ConfigDict(dict(
        name="adam", learning_rate=2e-4, b1=0.5, b2=0.999, eps=1e-8,
        momentum=0.0, nesterov=False,
        schedule="constant", warmup_steps=0, decay_steps=0,
    ))
    cfg.lock()
    return cfg


def default_penalty_config() -> ml_collections.ConfigDict:
    """One network's norm penalty (default: none).

    Fields: ``kind`` (a key of :data:`PENALTY_KINDS`); ``strength`` (λ, or λ₁
    for elastic net); ``l2_strength`` (elastic net's λ₂ only); ``coupling``
    'coupled' (before the optimizer's scaling = penalty in the loss) or
    'decoupled' (after it = AdamW), additive kinds only; ``mask`` 'kernels',
    'all' or a regex on '/'-joined parameter paths; ``group_axis`` for group
    L1 / max-norm; ``radius`` for the projections; ``schedule`` /
    ``warmup_steps`` / ``decay_steps``: multiplier of both strengths (as for the
    learning rate), so the effective strength is strength × m(k).
    """
    cfg = ml_collections.ConfigDict(dict(
        kind="none", strength=0.0, l2_strength=0.0, coupling="coupled",
        mask="kernels", group_axis=-1, radius=1.0,
        schedule="constant", warmup_steps=0, decay_steps=0,
    ))
    cfg.lock()
    return cfg


def validate_optimizer_config(cfg: ml_collections.ConfigDict) -> None:
    """Raises ``ValueError`` naming the first invalid field of an optimizer config."""
    check_name("optimizer", cfg.name, OPTIMIZERS)
    ops.check_hyperparam("learning_rate", cfg.learning_rate)
    ops.check_hyperparam("eps", cfg.eps)
    for field in ("b1", "b2", "momentum"):
        if not 0.0 <= cfg[field] < 1.0:
            raise ValueError(f"{field} must be in [0, 1), got {cfg[field]!r}")
    ops.multiplier_schedule(cfg.schedule, cfg.warmup_steps, cfg.decay_steps)


def validate_penalty_config(cfg: ml_collections.ConfigDict) -> None:
    """Raises ``ValueError`` naming the first invalid field of a penalty config."""
    check_name("penalty kind", cfg.kind, PENALTY_KINDS)
    check_name("coupling", cfg.coupling, COUPLINGS,
                " (proximal steps are kinds: 'prox_l1', 'prox_elastic_net', 'prox_group_l1';"
                " proximal L2 is 'prox_elastic_net' with strength=0)")
    kind = PENALTY_KINDS[cfg.kind]
    if kind.role == "terminal" and cfg.coupling == "decoupled":
        raise ValueError(
            f"coupling 'decoupled' is meaningless for the proximal/projection kind "
            f"{cfg.kind!r} (it always runs last); use coupling='coupled'"
        )
    ops.check_hyperparam("strength", cfg.strength)
    ops.check_hyperparam("l2_strength", cfg.l2_strength)
    ops.check_hyperparam("radius", cfg.radius, positive=True)
    for field in ("strength", "l2_strength"):
        if cfg[field] != 0 and field not in kind.hyperparams:
            raise ValueError(
                f"{field}={cfg[field]!r} has no effect for kind {cfg.kind!r} "
                f"(it uses {list(kind.hyperparams) or 'no strength'})"
            )
    if not isinstance(cfg.group_axis, int):
        raise ValueError(f"group_axis must be an int, got {cfg.group_axis!r}")
    if not isinstance(cfg.mask, str) or not cfg.mask:
        raise ValueError(f"mask must be 'kernels', 'all' or a path regex, got {cfg.mask!r}")
    _config_mask(cfg.mask)
    ops.multiplier_schedule(cfg.schedule, cfg.warmup_steps, cfg.decay_steps)


def _config_mask(name: str) -> Mask:
    if name == "kernels":
        return None  # the transforms' default, kernel_mask
    if name == "all":
        return path_mask()
    return path_mask(include=name)


def build_optimizer(
    optimizer_cfg: ml_collections.ConfigDict,
    penalty_cfg: ml_collections.ConfigDict | None = None,
) -> optax.GradientTransformationExtraArgs:
    """One network's optimizer: the named optimizer + the configured penalty.

    Chains (η = learning rate, P = penalty transform, D = optimizer direction):

    - none:                   D → scale(-η)
    - additive, coupled:      P → D → scale(-η)   (penalty in the loss)
    - additive, decoupled:    D → P → scale(-η)   (AdamW for kind 'l2')
    - proximal / projection:  D → scale(-η) → P   (P's step t = η)

    Wrapped in ``optax.inject_hyperparams``: the state's ``hyperparams`` holds
    the base scalars ``learning_rate`` and those of the kind (``strength``,
    ``l2_strength``, ``radius``); schedules multiply them, so a sweep can
    override each member's base value with :func:`set_hyperparams`.
    """
    penalty_cfg = default_penalty_config() if penalty_cfg is None else penalty_cfg
    validate_optimizer_config(optimizer_cfg)
    validate_penalty_config(penalty_cfg)
    kind = PENALTY_KINDS[penalty_cfg.kind]
    direction = OPTIMIZERS[optimizer_cfg.name](optimizer_cfg)
    lr_multiplier = ops.multiplier_schedule(
        optimizer_cfg.schedule, optimizer_cfg.warmup_steps, optimizer_cfg.decay_steps)
    strength_multiplier = ops.multiplier_schedule(
        penalty_cfg.schedule, penalty_cfg.warmup_steps, penalty_cfg.decay_steps)
    mask = _config_mask(penalty_cfg.mask)
    axis = penalty_cfg.group_axis
    penalty_position = {"additive": 1 if penalty_cfg.coupling == "decoupled" else 0,
                        "terminal": 2}.get(kind.role)

    def optimizer(learning_rate, strength=None, l2_strength=None, radius=None):
        lr = ops.scaled(learning_rate, lr_multiplier)
        steps = [direction, optax.scale_by_learning_rate(lr)]
        if kind.make is not None:
            hp = {"strength": strength, "l2_strength": l2_strength, "radius": radius}
            hp.update({k: ops.scaled(hp[k], strength_multiplier)
                       for k in ("strength", "l2_strength") if hp[k] is not None})
            steps.insert(penalty_position, kind.make(hp, lr, mask, axis))
        return chain(*steps)

    hyperparams = {name: penalty_cfg[name] for name in kind.hyperparams}
    return optax.inject_hyperparams(optimizer)(
        learning_rate=optimizer_cfg.learning_rate, **hyperparams)


# ----------------------------------------------------------------------------
# Hyperparameter access (works on states with a leading member axis too)
# ----------------------------------------------------------------------------

def _inject_state(opt_state: Any) -> optax.InjectStatefulHyperparamsState:
    if not isinstance(opt_state, optax.InjectStatefulHyperparamsState):
        raise ValueError(
            "expected the state of a build_optimizer() optimizer "
            f"(optax.InjectStatefulHyperparamsState), got {type(opt_state).__name__}"
        )
    return opt_state


def get_hyperparams(opt_state: Any) -> dict[str, jax.Array]:
    """The base hyperparameters (e.g. learning_rate, strength) held in the state."""
    return dict(_inject_state(opt_state).hyperparams)


def set_hyperparams(opt_state: Any, **values: Any) -> optax.InjectStatefulHyperparamsState:
    """A new state with some base hyperparameters replaced (a pure pytree edit).

    Each value is cast to the stored dtype and broadcast to the stored shape, so
    on a stacked sweep state ([K] leaves) a scalar sets every member and a [K]
    array sets one value per member.

    Raises:
      ValueError: unknown name (the valid ones are listed), a negative or
        non-finite concrete value, or a shape that does not broadcast.
    """
    state = _inject_state(opt_state)
    hyperparams = dict(state.hyperparams)
    for name, value in values.items():
        if name not in hyperparams:
            raise ValueError(f"unknown hyperparameter {name!r}; valid: {sorted(hyperparams)}")
        ops.check_hyperparam(name, value, positive=name == "radius")
        old = hyperparams[name]
        value = jnp.asarray(value, dtype=old.dtype)
        try:
            hyperparams[name] = jnp.broadcast_to(value, old.shape)
        except ValueError:
            raise ValueError(
                f"{name} of shape {value.shape} does not broadcast to the stored "
                f"shape {old.shape}"
            ) from None
    return state._replace(hyperparams=hyperparams)


# ----------------------------------------------------------------------------
# Penalty value and weight statistics
# ----------------------------------------------------------------------------

def penalty_value(
    params: Any,
    penalty_cfg: ml_collections.ConfigDict,
    *,
    hyperparams: dict[str, Any] | None = None,
    step: Any = None,
) -> jax.Array:
    """The configured penalty term R(w) over the masked leaves (for logging).

    l2: (λ/2)‖w‖²; l1 / prox_l1: λ‖w‖₁; elastic_net / prox_elastic_net:
    λ₁‖w‖₁ + (λ₂/2)‖w‖²; group_l1 / prox_group_l1: λ Σ_g ‖w_g‖₂ (gradient 0
    at a zero group, so it is safe to differentiate); none and the projections:
    0. Its gradient is exactly what the additive transform adds.

    Args:
      params: the network's parameters.
      penalty_cfg: the penalty config.
      hyperparams: optional overrides of the base ``strength``/``l2_strength``
        (e.g. ``get_hyperparams(opt_state)`` in a sweep); other names ignored.
      step: if given, strengths are multiplied by the config's schedule at
        ``step``.
    """
    validate_penalty_config(penalty_cfg)
    kind = PENALTY_KINDS[penalty_cfg.kind]
    if kind.role == "none":  # no mask is used, so none is checked
        return jnp.zeros([], jnp.float32)
    hp = {name: penalty_cfg[name] for name in kind.hyperparams}
    hp.update({k: v for k, v in (hyperparams or {}).items() if k in hp})
    multiplier = ops.multiplier_schedule(
        penalty_cfg.schedule, penalty_cfg.warmup_steps, penalty_cfg.decay_steps)
    if step is not None and multiplier is not None:
        hp = {k: v * multiplier(step) if k != "radius" else v for k, v in hp.items()}
    leaves = selected_leaves(params, _config_mask(penalty_cfg.mask))
    return sum(kind.value(w, hp, penalty_cfg.group_axis) for _, w in leaves)


def weight_stats(
    params: Any, mask: Mask = None, near_zero_tol: float = 1e-3
) -> dict[str, jax.Array]:
    """Sparsity and norms of the masked weights (pure jnp, jit-able).

    Returns a dict with ``sparsity`` (fraction of masked weights exactly 0),
    ``near_zero`` (fraction with |w| <= near_zero_tol), ``zero_filter_fraction``
    (fraction of groups along the last axis that are entirely 0), ``l1`` =
    Σ|w| and ``l2`` = sqrt(Σw²) over all masked weights, and per leaf
    ``l1/<path>``, ``l2/<path>``, ``sparsity/<path>``.
    """
    ops.check_hyperparam("near_zero_tol", near_zero_tol)
    leaves = selected_leaves(params, mask)
    size = sum(w.size for _, w in leaves)
    filters = sum(w.shape[-1] if w.ndim else 1 for _, w in leaves)
    zero_filters = 0
    stats = {}
    for path, w in leaves:
        stats[f"l1/{path}"] = jnp.sum(jnp.abs(w))
        stats[f"l2/{path}"] = jnp.sqrt(jnp.sum(jnp.square(w)))
        stats[f"sparsity/{path}"] = jnp.mean(w == 0)
        flat = w.reshape(-1, w.shape[-1]) if w.ndim else w.reshape(1, 1)
        zero_filters += jnp.sum(jnp.all(flat == 0, axis=0))
    stats["sparsity"] = sum(jnp.sum(w == 0) for _, w in leaves) / size
    stats["near_zero"] = sum(jnp.sum(jnp.abs(w) <= near_zero_tol) for _, w in leaves) / size
    stats["zero_filter_fraction"] = zero_filters / filters
    stats["l1"] = sum(stats[f"l1/{p}"] for p, _ in leaves)
    stats["l2"] = jnp.sqrt(sum(jnp.square(stats[f"l2/{p}"]) for p, _ in leaves))
    return stats
