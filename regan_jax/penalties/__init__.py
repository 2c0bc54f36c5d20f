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

Modules: ``operators`` (per-leaf math), ``masks``, ``hyperparams`` (each
hyperparameter's rule, declared once), ``transforms`` (the optax factories),
``adaptive`` (the same penalties held at a constant effective strength, λ_t
set every update from the gradient and weight statistics),
``builder`` (the penalty-kind registry and the optimizer built from configs).

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

from regan_jax.penalties.adaptive import (
    GRANULARITIES,
    AdaptiveState,
    adaptive_elastic_net,
    adaptive_group_l1,
    adaptive_l1,
    adaptive_l2,
    adaptive_prox_elastic_net,
    adaptive_prox_group_l1,
    adaptive_prox_l1,
    realised_strength,
)
from regan_jax.penalties.builder import (
    COUPLINGS,
    OPTIMIZERS,
    PENALTY_KINDS,
    build_optimizer,
    default_optimizer_config,
    default_penalty_config,
    get_hyperparams,
    penalty_value,
    realised_hyperparams,
    set_hyperparams,
    validate_optimizer_config,
    validate_penalty_config,
)
from regan_jax.penalties.masks import Mask, kernel_mask, path_mask, selected_leaves
from regan_jax.penalties.transforms import (
    PenaltyState,
    TerminalTransformation,
    chain,
    elastic_net,
    group_l1,
    is_terminal,
    l1,
    l2,
    max_norm,
    project_l2_ball,
    prox_elastic_net,
    prox_group_l1,
    prox_l1,
)

__all__ = [
    # masks
    "Mask",
    "kernel_mask",
    "path_mask",
    "selected_leaves",
    # transforms
    "PenaltyState",
    "TerminalTransformation",
    "l2",
    "l1",
    "elastic_net",
    "group_l1",
    "prox_l1",
    "prox_elastic_net",
    "prox_group_l1",
    "project_l2_ball",
    "max_norm",
    "is_terminal",
    "chain",
    # adaptive (held at an effective strength)
    "GRANULARITIES",
    "AdaptiveState",
    "adaptive_l2",
    "adaptive_l1",
    "adaptive_elastic_net",
    "adaptive_group_l1",
    "adaptive_prox_l1",
    "adaptive_prox_elastic_net",
    "adaptive_prox_group_l1",
    "realised_strength",
    # builder
    "OPTIMIZERS",
    "PENALTY_KINDS",
    "COUPLINGS",
    "default_optimizer_config",
    "default_penalty_config",
    "validate_optimizer_config",
    "validate_penalty_config",
    "build_optimizer",
    "get_hyperparams",
    "set_hyperparams",
    "realised_hyperparams",
    # logging
    "penalty_value",
]
