"""One network's optimizer from configs: the penalty-kind registry and its consumers.

:data:`PENALTY_KINDS` maps a config's ``kind`` to a :class:`_Kind`: where its
transform sits (``role``), the hyperparameters it uses (declarations from
:mod:`regan_jax.penalties.hyperparams`, each naming its own rule), how to build
its transform and its per-leaf penalty term. Config validation,
:func:`build_optimizer`, :func:`set_hyperparams` and :func:`penalty_value` read
the registry and the declarations; none restates a rule.
"""

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from regan_jax._names import check_name
from regan_jax.penalties import operators as ops
from regan_jax.penalties.adaptive import (
    GRANULARITIES,
    adaptive_elastic_net,
    adaptive_group_l1,
    adaptive_l1,
    adaptive_l2,
    adaptive_prox_elastic_net,
    adaptive_prox_group_l1,
    adaptive_prox_l1,
    realised_strength,
)
from regan_jax.penalties.hyperparams import (
    COUPLINGS,
    HYPERPARAMS,
    L2_STRENGTH,
    LEARNING_RATE,
    PENALTY_FIELDS,
    RADIUS,
    STRENGTH,
    Hyperparam,
    check_value,
    multiplier_schedule,
    scaled,
)
from regan_jax.penalties.masks import config_mask, selected_leaves
from regan_jax.penalties.transforms import (
    chain,
    elastic_net,
    group_l1,
    l1,
    l2,
    max_norm,
    project_l2_ball,
    prox_elastic_net,
    prox_group_l1,
    prox_l1,
)

# ----------------------------------------------------------------------------
# Registries
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


class _Kind(NamedTuple):
    """One penalty kind.

    Attributes:
      role: 'none', 'additive' (position set by the coupling) or 'terminal' (last).
      hyperparams: the scalars it injects besides ``learning_rate``.
      make: ``(hp by name, learning_rate, mask, axis) -> transform`` (None for 'none').
      value: ``(leaf, hp by name, axis) -> `` that leaf's penalty term.
      adaptive: ``(target, l2_ratio, learning_rate, mask, axis, coupling,
        granularity) -> `` the transform held at effective strength ``target``
        (:mod:`regan_jax.penalties.adaptive`); None: the kind cannot be adaptive.
    """

    role: str
    hyperparams: tuple[Hyperparam, ...]
    make: Callable | None
    value: Callable
    adaptive: Callable | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hyperparams)


PENALTY_KINDS: dict[str, _Kind] = {
    "none": _Kind("none", (), None, ops.no_value),
    "l2": _Kind(
        "additive",
        (STRENGTH,),
        lambda hp, lr, mask, axis: l2(hp["strength"], mask),
        ops.l2_value,
        lambda e, ratio, lr, mask, axis, coupling, granularity: adaptive_l2(
            e, mask, coupling=coupling, learning_rate=lr, granularity=granularity
        ),
    ),
    "l1": _Kind(
        "additive",
        (STRENGTH,),
        lambda hp, lr, mask, axis: l1(hp["strength"], mask),
        ops.l1_value,
        lambda e, ratio, lr, mask, axis, coupling, granularity: adaptive_l1(
            e, mask, coupling=coupling, learning_rate=lr, granularity=granularity
        ),
    ),
    "elastic_net": _Kind(
        "additive",
        (STRENGTH, L2_STRENGTH),
        lambda hp, lr, mask, axis: elastic_net(hp["strength"], hp["l2_strength"], mask),
        ops.elastic_net_value,
        lambda e, ratio, lr, mask, axis, coupling, granularity: adaptive_elastic_net(
            e, ratio, mask, coupling=coupling, learning_rate=lr, granularity=granularity
        ),
    ),
    "group_l1": _Kind(
        "additive",
        (STRENGTH,),
        lambda hp, lr, mask, axis: group_l1(hp["strength"], mask, axis),
        ops.group_l1_value,
        lambda e, ratio, lr, mask, axis, coupling, granularity: adaptive_group_l1(
            e, mask, axis, coupling=coupling, learning_rate=lr, granularity=granularity
        ),
    ),
    "prox_l1": _Kind(
        "terminal",
        (STRENGTH,),
        lambda hp, lr, mask, axis: prox_l1(hp["strength"], lr, mask),
        ops.l1_value,
        lambda e, ratio, lr, mask, axis, coupling, granularity: adaptive_prox_l1(
            e, lr, mask, granularity=granularity
        ),
    ),
    "prox_elastic_net": _Kind(
        "terminal",
        (STRENGTH, L2_STRENGTH),
        lambda hp, lr, mask, axis: prox_elastic_net(hp["strength"], hp["l2_strength"], lr, mask),
        ops.elastic_net_value,
        lambda e, ratio, lr, mask, axis, coupling, granularity: adaptive_prox_elastic_net(
            e, ratio, lr, mask, granularity=granularity
        ),
    ),
    "prox_group_l1": _Kind(
        "terminal",
        (STRENGTH,),
        lambda hp, lr, mask, axis: prox_group_l1(hp["strength"], lr, mask, axis),
        ops.group_l1_value,
        lambda e, ratio, lr, mask, axis, coupling, granularity: adaptive_prox_group_l1(
            e, lr, mask, axis, granularity=granularity
        ),
    ),
    # Hard constraints: the penalty is the ball's indicator, 0 on the feasible set.
    "l2_ball": _Kind(
        "terminal",
        (RADIUS,),
        lambda hp, lr, mask, axis: project_l2_ball(hp["radius"], mask),
        ops.no_value,
    ),
    "max_norm": _Kind(
        "terminal",
        (RADIUS,),
        lambda hp, lr, mask, axis: max_norm(hp["radius"], mask, axis),
        ops.no_value,
    ),
}


# ----------------------------------------------------------------------------
# Configs
# ----------------------------------------------------------------------------


def default_optimizer_config() -> ml_collections.ConfigDict:
    """One network's optimizer: ``name`` from :data:`OPTIMIZERS` and its settings.

    ``learning_rate`` is the base rate; the rate at step k is
    learning_rate × m(k) with m the ``schedule`` multiplier ('constant',
    'linear_warmup' over ``warmup_steps``, 'warmup_cosine' to 0 at
    ``decay_steps``). ``b1``/``b2``/``eps``: Adam's (rmsprop uses ``b2`` as its
    decay); ``momentum``/``nesterov``: sgd's.
    """
    cfg = ml_collections.ConfigDict(
        dict(
            name="adam",
            learning_rate=2e-4,
            b1=0.5,
            b2=0.999,
            eps=1e-8,
            momentum=0.0,
            nesterov=False,
            schedule="constant",
            warmup_steps=0,
            decay_steps=0,
        )
    )
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
    ``adaptive``: hold the effective strength at e = ``strength`` (× m(k)) at
    every update, λ_t set from the gradient and weight statistics
    (:mod:`regan_jax.penalties.adaptive`; elastic net keeps λ₂/λ₁ =
    ``l2_strength / strength``); ``granularity``: those statistics pooled over
    the 'network' (the calibration's unit) or per 'layer' (adaptive only).
    """
    cfg = ml_collections.ConfigDict(
        dict(
            kind="none",
            strength=STRENGTH.default,
            l2_strength=L2_STRENGTH.default,
            coupling="coupled",
            mask="kernels",
            group_axis=-1,
            radius=RADIUS.default,
            schedule="constant",
            warmup_steps=0,
            decay_steps=0,
            adaptive=False,
            granularity="network",
        )
    )
    cfg.lock()
    return cfg


def validate_optimizer_config(cfg: ml_collections.ConfigDict) -> None:
    """Raises ``ValueError`` naming the first invalid field of an optimizer config."""
    check_name("optimizer", cfg.name, OPTIMIZERS)
    LEARNING_RATE.check(cfg.learning_rate)
    check_value("eps", cfg.eps)
    for field in ("b1", "b2", "momentum"):
        if not 0.0 <= cfg[field] < 1.0:
            raise ValueError(f"{field} must be in [0, 1), got {cfg[field]!r}")
    multiplier_schedule(cfg.schedule, cfg.warmup_steps, cfg.decay_steps)


def validate_penalty_config(cfg: ml_collections.ConfigDict) -> None:
    """Raises ``ValueError`` naming the first invalid field of a penalty config."""
    check_name("penalty kind", cfg.kind, PENALTY_KINDS)
    check_name(
        "coupling",
        cfg.coupling,
        COUPLINGS,
        " (proximal steps are kinds: 'prox_l1', 'prox_elastic_net', 'prox_group_l1';"
        " proximal L2 is 'prox_elastic_net' with strength=0)",
    )
    kind = PENALTY_KINDS[cfg.kind]
    if kind.role == "terminal" and cfg.coupling == "decoupled":
        raise ValueError(
            f"coupling 'decoupled' is meaningless for the proximal/projection kind "
            f"{cfg.kind!r} (it always runs last); use coupling='coupled'"
        )
    _validate_adaptive(cfg, kind)
    for hyperparam in PENALTY_FIELDS:
        hyperparam.check(cfg[hyperparam.name])
    for hyperparam in PENALTY_FIELDS:
        # A strength (default 0 = off) set for a kind that does not use it is a
        # mistake; a radius always holds a value, so an unused one is not.
        field = hyperparam.name
        if hyperparam.default == 0 and cfg[field] != 0 and field not in kind.names:
            raise ValueError(
                f"{field}={cfg[field]!r} has no effect for kind {cfg.kind!r} "
                f"(it uses {list(kind.names) or 'no strength'})"
            )
    if not isinstance(cfg.group_axis, int):
        raise ValueError(f"group_axis must be an int, got {cfg.group_axis!r}")
    if not isinstance(cfg.mask, str) or not cfg.mask:
        raise ValueError(f"mask must be 'kernels', 'all' or a path regex, got {cfg.mask!r}")
    config_mask(cfg.mask)
    multiplier_schedule(cfg.schedule, cfg.warmup_steps, cfg.decay_steps)


def _validate_adaptive(cfg: ml_collections.ConfigDict, kind: _Kind) -> None:
    if not isinstance(cfg.adaptive, bool):
        raise ValueError(f"adaptive must be true or false, got {cfg.adaptive!r}")
    check_name("granularity", cfg.granularity, GRANULARITIES)
    if not cfg.adaptive:
        if cfg.granularity != "network":
            raise ValueError(f"granularity={cfg.granularity!r} has no effect without adaptive=true")
        return
    if kind.adaptive is None:
        raise ValueError(
            f"adaptive=true is not available for kind {cfg.kind!r}; adaptive kinds: "
            f"{', '.join(k for k, v in PENALTY_KINDS.items() if v.adaptive)}"
        )
    if "l2_strength" in kind.names and cfg.strength == 0 and cfg.l2_strength != 0:
        raise ValueError(
            f"adaptive {cfg.kind!r} reads strength as the effective strength e and keeps "
            f"l2_strength/strength; strength=0 with l2_strength={cfg.l2_strength!r} "
            "has no target (for adaptive L2 use kind 'l2')"
        )


# ----------------------------------------------------------------------------
# The optimizer
# ----------------------------------------------------------------------------


def build_optimizer(
    optimizer_cfg: ml_collections.ConfigDict,
    penalty_cfg: ml_collections.ConfigDict | None = None,
    *,
    run_updates: int | None = None,
) -> optax.GradientTransformationExtraArgs:
    """One network's optimizer: the named optimizer + the configured penalty.

    Chains (η = learning rate, P = penalty transform, D = optimizer direction):

    - none:                   D → scale(-η)
    - additive, coupled:      P → D → scale(-η)   (penalty in the loss)
    - additive, decoupled:    D → P → scale(-η)   (AdamW for kind 'l2')
    - proximal / projection:  D → scale(-η) → P   (P's step t = η)

    Wrapped in ``optax.inject_hyperparams``: the state's ``hyperparams`` holds
    the base scalars ``learning_rate`` and those of the kind (``strength``,
    ``l2_strength``, ``radius``); schedules multiply the scheduled ones (see
    :mod:`regan_jax.penalties.hyperparams`), so a sweep can override each
    member's base value with :func:`set_hyperparams`.

    With ``penalty_cfg.adaptive``, P is the kind's adaptive transform and the
    injected ``strength`` is the target effective strength e (the
    calibration's per-run e): a coupled penalty holds e at every update, a
    decoupled or proximal one e / ``run_updates`` per update, so that its
    shrinkage summed over the run is e.

    Args:
      optimizer_cfg: ``config.optimizer.<net>``.
      penalty_cfg: ``config.penalty.<net>`` (default: no penalty).
      run_updates: the network's optimizer updates over the run (steps ×
        updates per step); needed by an adaptive decoupled or proximal penalty.

    Raises:
      ValueError: an invalid config, or ``run_updates`` missing (or < 1) where needed.
    """
    penalty_cfg = default_penalty_config() if penalty_cfg is None else penalty_cfg
    validate_optimizer_config(optimizer_cfg)
    validate_penalty_config(penalty_cfg)
    kind = PENALTY_KINDS[penalty_cfg.kind]
    direction = OPTIMIZERS[optimizer_cfg.name](optimizer_cfg)
    lr_multiplier = multiplier_schedule(
        optimizer_cfg.schedule, optimizer_cfg.warmup_steps, optimizer_cfg.decay_steps
    )
    strength_multiplier = multiplier_schedule(
        penalty_cfg.schedule, penalty_cfg.warmup_steps, penalty_cfg.decay_steps
    )
    mask = config_mask(penalty_cfg.mask)
    axis = penalty_cfg.group_axis
    penalty_position = {
        "additive": 1 if penalty_cfg.coupling == "decoupled" else 0,
        "terminal": 2,
    }.get(kind.role)
    per_update = penalty_cfg.adaptive and penalty_position != 0
    if per_update and not (isinstance(run_updates, int) and run_updates >= 1):
        raise ValueError(
            f"an adaptive {penalty_cfg.kind!r} penalty (decoupled or proximal) needs "
            f"run_updates >= 1, the network's updates over the run; got {run_updates!r}"
        )

    def optimizer(learning_rate, **base):
        lr = scaled(learning_rate, lr_multiplier)
        steps = [direction, optax.scale_by_learning_rate(lr)]
        if penalty_cfg.adaptive:
            target = base["strength"] / run_updates if per_update else base["strength"]
            steps.insert(
                penalty_position,
                kind.adaptive(
                    STRENGTH.with_schedule(target, strength_multiplier),
                    _l2_ratio(base),
                    lr,
                    mask,
                    axis,
                    "decoupled" if per_update else "coupled",
                    penalty_cfg.granularity,
                ),
            )
        elif kind.make is not None:
            hp = {
                h.name: h.with_schedule(base[h.name], strength_multiplier) for h in kind.hyperparams
            }
            steps.insert(penalty_position, kind.make(hp, lr, mask, axis))
        return chain(*steps)

    # inject_hyperparams injects the factory's named parameters: name the kind's.
    optimizer.__signature__ = inspect.Signature(
        [
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            for name in ("learning_rate", *kind.names)
        ]
    )
    hyperparams = {name: penalty_cfg[name] for name in kind.names}
    return optax.inject_hyperparams(optimizer)(
        learning_rate=optimizer_cfg.learning_rate, **hyperparams
    )


def _l2_ratio(base: dict) -> Any:
    """λ₂/λ₁ of an adaptive elastic net from its base strengths (0 for other kinds)."""
    if "l2_strength" not in base:
        return 0.0
    strength = jnp.asarray(base["strength"])
    return jnp.where(
        strength > 0, base["l2_strength"] / jnp.where(strength > 0, strength, 1.0), 0.0
    )


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
      ValueError: unknown name (the valid ones are listed), a concrete value
        that breaks the hyperparameter's rule (negative, non-finite, or a
        radius <= 0), or a shape that does not broadcast.
    """
    state = _inject_state(opt_state)
    hyperparams = dict(state.hyperparams)
    for name, value in values.items():
        if name not in hyperparams:
            raise ValueError(f"unknown hyperparameter {name!r}; valid: {sorted(hyperparams)}")
        HYPERPARAMS[name].check(value)
        old = hyperparams[name]
        value = jnp.asarray(value, dtype=old.dtype)
        try:
            hyperparams[name] = jnp.broadcast_to(value, old.shape)
        except ValueError:
            raise ValueError(
                f"{name} of shape {value.shape} does not broadcast to the stored shape {old.shape}"
            ) from None
    return state._replace(hyperparams=hyperparams)


def realised_hyperparams(opt_state: Any) -> dict[str, jax.Array]:
    """An adaptive penalty's strengths at its last update: ``strength`` = λ_t (and
    ``l2_strength`` = λ_t · l2_strength / strength for elastic net).

    λ_t is :func:`regan_jax.penalties.adaptive.realised_strength` (the layers'
    mean with ``granularity='layer'``); the schedule is already in it. The
    state may be wrapped (a calibration or test chains a recorder before it).
    """
    strength = realised_strength(opt_state)
    out = {"strength": strength}
    hyperparams = optax.tree_utils.tree_get(opt_state, "hyperparams")
    if "l2_strength" in hyperparams:
        out["l2_strength"] = strength * _l2_ratio(hyperparams)
    return out


# ----------------------------------------------------------------------------
# Penalty value (for logging)
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
      step: if given, the scheduled hyperparameters (the strengths) are
        multiplied by the config's schedule at ``step``.
    """
    validate_penalty_config(penalty_cfg)
    kind = PENALTY_KINDS[penalty_cfg.kind]
    if kind.role == "none":  # no mask is used, so none is checked
        return jnp.zeros([], jnp.float32)
    base = {name: penalty_cfg[name] for name in kind.names}
    base.update({k: v for k, v in (hyperparams or {}).items() if k in base})
    multiplier = multiplier_schedule(
        penalty_cfg.schedule, penalty_cfg.warmup_steps, penalty_cfg.decay_steps
    )
    hp = {h.name: h.at_step(base[h.name], multiplier, step) for h in kind.hyperparams}
    leaves = selected_leaves(params, config_mask(penalty_cfg.mask))
    return sum(kind.value(w, hp, penalty_cfg.group_axis) for _, w in leaves)
