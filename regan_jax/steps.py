"""The train state and the machinery every family's training step shares.

A step is a top-level pure function ``(state, batch, key) -> (state, metrics)``
defined by its model family (:mod:`regan_jax.families`), with its static
parts (networks, optimizers, loss config) bound by the family's
``make_step``; jit it with the state donated, or run it through
``parallel.shard_map_step`` / ``parallel.pmap_step`` / ``sweep.vmap_step``.
This module holds what the steps have in common:

Randomness. ``key=None`` uses ``fold_in(state.key, state.step)``
(:func:`step_key`), so a run resumed from a checkpoint draws exactly what the
uninterrupted run would have drawn. Per-example noise (latents, the VAE's ε)
is drawn for the *global* batch and sliced for the local rows with
``lax.axis_index`` (:func:`local_draw`), so a step split over D devices draws
the same numbers as on one device.

Data parallelism. With ``axis_name`` set, gradients, the extra model
collections and the metrics are ``lax.pmean``-ed over that axis
(:func:`pmean`); with equal shards this is the single-device computation on
the global batch.

Several steps per dispatch. :func:`scan_steps` runs a step over a chunk of
inputs in one ``lax.scan`` (the training loop's ``steps_per_call``).

Divergence. A non-finite loss or parameter produced by a step freezes the
state (:func:`freeze_if_diverged`: one ``lax.cond`` between the old and new
state; under ``vmap`` a per-member select, so only that member freezes) and
records ``diverged``, ``diverged_step`` (the value of ``step`` of the
offending update) and ``diverged_reason`` (a code of
:data:`DIVERGENCE_REASONS`). A diverged state is returned unchanged by every
later step; nothing raises.
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax import lax

from regan_jax import penalties

DIVERGENCE_REASONS = ("none", "nonfinite_loss", "nonfinite_params")
NOT_DIVERGED, NONFINITE_LOSS, NONFINITE_PARAMS = range(len(DIVERGENCE_REASONS))

Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
    """Everything a run (or one sweep member) needs to continue.

    Attributes:
      step: int32 scalar, completed steps (generator steps for GANs).
      key: typed base RNG key; step t uses ``fold_in(key, t)``.
      params: ``{network: params}``.
      opt_state: ``{network: optimizer state}`` (``inject_hyperparams`` states).
      model_state: ``{network: {collection: ...}}``, the variables other than
        ``params`` (e.g. spectral normalisation's ``batch_stats``); ``{}`` if none.
      diverged: bool scalar.
      diverged_step: int32, the ``step`` at which the run diverged, -1 if not.
      diverged_reason: int32 index into :data:`DIVERGENCE_REASONS`.
    """

    step: jax.Array
    key: jax.Array
    params: dict[str, Any]
    opt_state: dict[str, Any]
    model_state: dict[str, Any]
    diverged: jax.Array
    diverged_step: jax.Array
    diverged_reason: jax.Array


def divergence_reason(code: int) -> str:
    """The name of a ``diverged_reason`` code, e.g. ``1 -> 'nonfinite_loss'``."""
    code = int(code)
    if not 0 <= code < len(DIVERGENCE_REASONS):
        raise ValueError(
            f"divergence reason code {code} unknown; expected 0...{len(DIVERGENCE_REASONS) - 1}"
        )
    return DIVERGENCE_REASONS[code]


# ----------------------------------------------------------------------------
# Initialisation
# ----------------------------------------------------------------------------


def split_variables(variables) -> tuple[Any, dict]:
    """``(params, the other collections)`` of a Flax variables dict."""
    variables = dict(variables)
    return variables.pop("params"), variables


def new_state(key, params, model_state, optimizers) -> TrainState:
    """A step-0 state: ``params`` and each network's fresh optimizer state."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        key=key,
        params=params,
        opt_state={net: optimizers[net].init(p) for net, p in params.items()},
        model_state=model_state,
        diverged=jnp.zeros((), bool),
        diverged_step=jnp.full((), -1, jnp.int32),
        diverged_reason=jnp.full((), NOT_DIVERGED, jnp.int32),
    )


def init_train_state(key, params, model_state, optimizers) -> TrainState:
    """:func:`new_state` compiled as a program of its own, per optimizers.

    The families initialise their networks in a program per *model* and the
    optimizer states here: the networks' initialiser (random draws for every
    weight, slow to compile) is then one program that every penalty and
    strength of an experiment shares (and the compilation cache finds), and
    only this small one is compiled per penalty.
    """
    return _new_state(hashable(optimizers), key, params, model_state)


@functools.partial(jax.jit, static_argnums=0)
def _new_state(optimizers, key, params, model_state) -> TrainState:
    return new_state(key, params, model_state, dict(optimizers))


def check_networks(models, optimizers, expected) -> None:
    """Raises unless ``models`` and ``optimizers`` both name exactly the ``expected`` networks."""
    for what, mapping in (("models", models), ("optimizers", optimizers)):
        if set(mapping) != set(expected):
            raise ValueError(f"{what} has networks {sorted(mapping)}; expected {sorted(expected)}")


def hashable(mapping: Mapping[str, Any]) -> tuple:
    """A mapping as sorted ``(name, value)`` pairs: a static argument of ``jax.jit``."""
    return tuple(sorted(mapping.items()))


# ----------------------------------------------------------------------------
# Shared pieces of the steps
# ----------------------------------------------------------------------------


def step_key(state: TrainState, key: jax.Array | None) -> jax.Array:
    """The step's key: ``key``, or ``fold_in(state.key, state.step)`` if None."""
    return jax.random.fold_in(state.key, state.step) if key is None else key


def pmean(tree, axis_name):
    """``lax.pmean(tree, axis_name)``, or ``tree`` outside a device axis."""
    return tree if axis_name is None else lax.pmean(tree, axis_name)


def local_draw(
    sample: Callable, key: jax.Array, shape: tuple[int, ...], axis_name: str | None
) -> jax.Array:
    """This device's rows of ``sample(key, (D·N, ...))``, N = ``shape[0]``, D devices.

    Drawing the global batch and slicing it (instead of one draw per device)
    makes the numbers independent of the device count. The global draw costs
    D times a local one; it is only used for small per-example arrays.
    """
    if axis_name is None:
        return sample(key, shape)
    rows = shape[0]
    full = sample(key, (rows * lax.axis_size(axis_name),) + tuple(shape[1:]))
    return lax.dynamic_slice_in_dim(full, lax.axis_index(axis_name) * rows, rows)


def _all_finite(tree) -> jax.Array:
    # One reduction per leaf. With the leaves raveled and concatenated into one
    # reduction (6742656: fewer kernels to compile), jaxlib 0.10's XLA:CPU writes the
    # concatenation out -- a copy of every parameter, [K, n] in a vmapped group --
    # before its is-finite pass: one more pass over the group's parameters, at memory
    # speed once the group's state is larger than the cache (BENCHMARKS.md, "The
    # vmapped group's size"). Only the divergence boolean depends on how it is written.
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def apply_update(optimizer, grads, opt_state, params):
    """One optax update: ``(new params, new optimizer state)``."""
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def freeze_if_diverged(old: TrainState, new: TrainState, loss_finite: jax.Array) -> TrainState:
    """``new``, or ``old`` frozen and marked if the update diverged (or ``old`` had).

    The new step counts as diverged if a loss was non-finite or any new
    parameter is; the reason prefers the loss (the usual cause of the params).
    """
    bad = ~(loss_finite & _all_finite(new.params))
    keep_old = old.diverged | bad
    # One conditional instead of a jnp.where per leaf: the same values, fewer
    # kernels to compile; under vmap it becomes a per-member select, so only a
    # diverged member freezes.
    kept = lax.cond(keep_old, lambda o, n: o, lambda o, n: n, old, new)
    first = bad & ~old.diverged
    return kept.replace(
        diverged=keep_old,
        diverged_step=jnp.where(first, old.step, old.diverged_step),
        diverged_reason=jnp.where(
            first, jnp.where(loss_finite, NONFINITE_PARAMS, NONFINITE_LOSS), old.diverged_reason
        ).astype(jnp.int32),
    )


def scan_steps(step: Callable) -> Callable:
    """Several steps in one dispatch: ``(state, xs) -> (state, the last step's metrics)``.

    ``step(state, x) -> (state, metrics)`` runs once for each ``x`` along the
    leading axis of ``xs`` (a pytree), in order, inside one ``lax.scan``; the
    result is the state after the last and that step's metrics (the loop
    logs at the end of a chunk). The computation of calling ``step`` in a
    Python loop, with no host round trip between steps: bitwise for programs
    without convolutions, to float reassociation for those with (XLA compiles
    a loop body's convolutions apart).

    A chunk of one step (the loop's default ``steps_per_call``) is ``step``
    called on ``xs[0]``, no ``lax.scan``: jaxlib 0.10's XLA:CPU does not bring
    the convolutions of a loop body (even a one-trip loop, which it removes
    later) into the form its Eigen kernels take and runs them on a generic
    loop nest -- the cycle GAN's step 17x slower, as it still is per step in
    longer chunks (BENCHMARKS.md, "The cycle GAN in a sweep"). So a one-step
    chunk of a convolutional program is bitwise the one-step program.
    """

    def run(state, xs):
        if {jnp.shape(x)[0] for x in jax.tree.leaves(xs)} == {1}:
            return step(state, jax.tree.map(lambda x: x[0], xs))
        state, metrics = lax.scan(step, state, xs)
        return state, jax.tree.map(lambda m: m[-1], metrics)

    return run


def penalty_metrics(
    params, opt_state, penalty_cfgs: Mapping[str, ml_collections.ConfigDict] | None
) -> Metrics:
    """``penalty_<net>``: the value R(w) of each configured penalty (its current strengths).

    A network without a penalty logs 0 without reading its optimizer state
    (which a calibration run wraps, see :mod:`regan_jax.calibration`). An
    adaptive penalty also logs ``lambda_<net>``, its realised λ_t, and R(w)
    is taken at λ_t (:func:`regan_jax.penalties.realised_hyperparams`; with
    ``granularity='layer'`` both use the layers' mean λ_t, so R(w) is then an
    approximation of Σ_l λ_l R₁(w_l)).
    """
    metrics = {}
    for net, cfg in (penalty_cfgs or {}).items():
        if cfg.kind == "none":
            metrics[f"penalty_{net}"] = jnp.zeros([], jnp.float32)
        elif cfg.adaptive:
            realised = penalties.realised_hyperparams(opt_state[net])
            metrics[f"penalty_{net}"] = penalties.penalty_value(
                params[net], cfg, hyperparams=realised
            )
            metrics[f"lambda_{net}"] = realised["strength"]
        else:
            metrics[f"penalty_{net}"] = penalties.penalty_value(
                params[net],
                cfg,
                hyperparams=penalties.get_hyperparams(opt_state[net]),
                step=opt_state[net].count,
            )
    return metrics


def check_batch(
    batch: Mapping[str, Any], data_shape: tuple[int, ...], labelled: bool = False
) -> None:
    """The batch holds ``image`` examples of ``data_shape`` (and ``label`` if ``labelled``).

    Raises:
      ValueError: a missing key or an example shape that is not ``data_shape``.
    """
    if "image" not in batch or (labelled and "label" not in batch):
        raise ValueError(
            f"batch has keys {sorted(batch)}; expected 'image'"
            + (" and 'label' (conditional model)" if labelled else "")
        )
    shape = tuple(batch["image"].shape[1:])
    if shape != tuple(data_shape):
        raise ValueError(
            f"batch['image'] has examples of shape {shape}; the model expects {tuple(data_shape)}"
        )
