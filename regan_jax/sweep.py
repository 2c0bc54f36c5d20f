"""Sweeps as one program: K runs stacked on a leading member axis, one vmapped step.

A sweep over penalty strengths, learning rates and/or seeds keeps K complete
train states (see :mod:`regan_jax.steps`) stacked leaf by leaf on a new leading
axis of size K. The hyperparameters that differ between members are scalars in
each member's ``optax.inject_hyperparams`` state (set by
``penalties.set_hyperparams``), so every member runs the same traced program
and ``jax.vmap`` over the member axis trains all of them at once. Member ``k``
after N vmapped steps equals the single run with member ``k``'s seed and
hyperparameters (up to float reassociation in batched kernels).

Divergence is per member: a step freezes and marks only the member whose loss
or parameters became non-finite (``steps.freeze_if_diverged`` selects with
``lax.cond``, which vmaps to a per-member select), the others go on.

The training loop (:mod:`regan_jax.train`) uses this module to initialise,
stack and take members; the data iterator gives the per-member batches.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from regan_jax import penalties, xla


def stack_members(states: Sequence[Any]) -> Any:
    """Stacks K pytrees of identical structure and shapes on a new leading axis.

    Raises:
      ValueError: no states, or states whose structures or leaf shapes differ.
    """
    if not states:
        raise ValueError("stack_members needs at least one state, got none")
    structures = {jax.tree.structure(s) for s in states}
    if len(structures) != 1:
        raise ValueError(
            f"member states have {len(structures)} different tree structures; "
            "all members must come from the same model and optimizer config"
        )
    shapes = [[jnp.shape(x) for x in jax.tree.leaves(s)] for s in states]
    for index, member_shapes in enumerate(shapes[1:], start=1):
        if member_shapes != shapes[0]:
            raise ValueError(
                f"member {index}'s leaf shapes differ from member 0's; "
                "all members must have the same architecture"
            )
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def num_members(stacked: Any) -> int:
    """K, the common leading size of every leaf of a stacked state.

    Raises:
      ValueError: leaves (or scalars) without a common leading axis.
    """
    sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jax.tree.leaves(stacked)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            f"not a stacked state: leading sizes of its leaves are "
            f"{sorted(sizes, key=str)}; expected one member axis"
        )
    return sizes.pop()


def member(stacked: Any, index: int) -> Any:
    """Member ``index`` of a stacked state (negative indices count from the end)."""
    size = num_members(stacked)
    if not -size <= index < size:
        raise ValueError(f"member index {index} out of range for {size} members")
    return _take(stacked, index % size)


@jax.jit
def _take(tree, index):
    # One jitted gather for the whole tree: eagerly, a slice per leaf is one
    # dispatch each, which the loop pays at every logging step and member.
    return jax.tree.map(lambda x: x[index], tree)


def unstack(stacked: Any) -> list[Any]:
    """The K member states of a stacked state, in order."""
    return [member(stacked, k) for k in range(num_members(stacked))]


def init_member(
    init: Callable[[jax.Array], Any],
    seed: int,
    hyperparams: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """``init(jax.random.key(seed))`` with each ``opt_state[net]``'s injected hyperparameters set.

    Args:
      init: key -> train state (``opt_state`` a dict by network of
        ``optax.inject_hyperparams`` states), e.g. a program's jitted init.
      seed: the member's seed.
      hyperparams: ``{net: {name: value}}``, e.g. ``{'d': {'strength': 1e-4}}``.

    Raises:
      ValueError: a network the state does not have.
    """
    state = init(jax.random.key(seed))
    opt_state = dict(state.opt_state)
    for net, values in (hyperparams or {}).items():
        if net not in opt_state:
            raise ValueError(f"hyperparams name network {net!r}; the state has {sorted(opt_state)}")
        opt_state[net] = penalties.set_hyperparams(opt_state[net], **values)
    return state.replace(opt_state=opt_state)


def init_sweep(
    init: Callable[[jax.Array], Any],
    seeds: Sequence[int],
    hyperparams: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
) -> Any:
    """Initialises K members, one per seed, with per-member hyperparameters, stacked.

    Member k is :func:`init_member` of ``seeds[k]`` with, for every network
    ``net`` and hyperparameter ``name`` in ``hyperparams``, the value
    ``hyperparams[net][name][k]`` -- exactly the state its own single run
    starts from.

    Args:
      init: key -> train state, e.g. ``functools.partial(family.init_state,
        models, optimizers, example_batch=batch)``.
      seeds: K integer seeds (repeat one seed to sweep hyperparameters only).
      hyperparams: ``{net: {name: K values}}``, e.g.
        ``{'d': {'strength': [0.0, 1e-4, 1e-3]}}``.

    Returns:
      The members stacked on a leading axis of size K.

    Raises:
      ValueError: no seeds, or a value list whose length is not K, checked
        before any compute; an unknown network or hyperparameter name.
    """
    hyperparams = dict(hyperparams or {})
    size = len(seeds)
    if size == 0:
        raise ValueError("init_sweep needs at least one seed, got none")
    for net, values in hyperparams.items():
        for name, column in values.items():
            if len(column) != size:
                raise ValueError(
                    f"hyperparams[{net!r}][{name!r}] has {len(column)} values "
                    f"but the sweep has {size} members (seeds {list(seeds)})"
                )
    return stack_members(
        [
            init_member(
                init,
                seed,
                {
                    net: {name: column[k] for name, column in values.items()}
                    for net, values in hyperparams.items()
                },
            )
            for k, seed in enumerate(seeds)
        ]
    )


def vmap_step(step: Callable, shared_batch: bool = True) -> Callable:
    """``step`` vmapped over the member axis and jitted (:func:`regan_jax.xla.jit`), state donated.

    Returns ``(states, batch, key=None) -> (states, metrics)``; every metric
    gains a leading member axis. With ``key=None`` each member derives its
    step key from its own state (its seed); a given key is shared.

    Args:
      step: ``(state, batch, key) -> (state, metrics)``.
      shared_batch: all members see the same batch (True), or ``batch`` holds
        one batch per member on a leading axis of size K (False).

    Raises (when called):
      ValueError: a state that is not stacked, or per-member batches whose
        leading size is not the number of members, before compiling.
    """
    mapped = xla.jit(
        jax.vmap(step, in_axes=(0, None if shared_batch else 0, None)), donate_argnums=0
    )

    def run(states, batch, key=None):
        size = num_members(states)
        if not shared_batch:
            sizes = {jnp.shape(x)[0] for x in jax.tree.leaves(batch)}
            if sizes != {size}:
                raise ValueError(
                    f"per-member batches have leading sizes {sorted(sizes)}; "
                    f"the sweep has {size} members"
                )
        return mapped(states, batch, key)

    return run
