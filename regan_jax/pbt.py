"""Population-based strength search: exploit and explore on a sweep group's member axis.

Population based training (Jaderberg et al. 2017, "Population based training
of neural networks") over the K members of one vmapped program
(:mod:`regan_jax.sweep`): every ``interval`` steps the members are ranked by a
held-out score, each member of the bottom ``quantile`` copies the whole
training state -- parameters, optimiser states (Adam's moments and the
injected hyperparameters with them), model state, divergence flags -- of a
member drawn from the top ``quantile`` (*exploit*: a gather on the member
axis), and the copied members' searched hyperparameters are multiplied by a
factor drawn from ``factors`` (× 0.8 or × 1.25) and clipped to ``bounds``
(*explore*). A member keeps its own RNG key and step, so a copy does not
replay its donor's noise.

Everything here is a pure function of the state, the scores and a key:
:func:`exploit_and_explore` with the same arguments gives the same state,
bitwise. The searched values live in the optimiser states'
``optax.inject_hyperparams`` slots (read with ``penalties.get_hyperparams``,
written with ``penalties.set_hyperparams``), so the vmapped step does not
recompile. The driver that calls this during training and records its
history is :mod:`regan_jax.tune`.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from regan_jax import penalties
from regan_jax.penalties.hyperparams import HYPERPARAMS


def default_config() -> ml_collections.ConfigDict:
    """The search's settings (``tune.*``).

    ``metric`` names a score of the in-training evaluation; its direction is
    ``lower_is_better`` (the library cannot read the study's vocabulary, so
    the caller states it). ``hyperparams`` are the injected names scaled
    together (the swept one and any tied to it), on each of ``networks``.
    """
    return ml_collections.ConfigDict(
        {
            "metric": "fd",
            "lower_is_better": True,
            "interval": 500,  # steps between exploit/explore steps
            "quantile": 0.25,  # fraction of members replaced (and of donors)
            "factors": (0.8, 1.25),  # the explore step's multipliers
            "bounds": (1e-6, 1e-1),  # where the searched values are clipped
            "hyperparams": ("strength",),
            "networks": ("d",),
            "seed": 0,  # exploit step t uses fold_in(key(seed), t)
        }
    )


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the first ``tune.*`` field out of range."""
    if not isinstance(config.metric, str) or not config.metric:
        raise ValueError(f"tune.metric must name a score, got {config.metric!r}")
    if not isinstance(config.lower_is_better, bool):
        raise ValueError(f"tune.lower_is_better must be a bool, got {config.lower_is_better!r}")
    if not isinstance(config.interval, int) or config.interval < 1:
        raise ValueError(f"tune.interval must be an integer >= 1, got {config.interval!r}")
    if not 0 < config.quantile <= 0.5:
        raise ValueError(f"tune.quantile must be in (0, 0.5], got {config.quantile!r}")
    if not config.factors or not all(f > 0 and np.isfinite(f) for f in config.factors):
        raise ValueError(f"tune.factors must be finite numbers > 0, got {config.factors!r}")
    low, high = config.bounds
    if not 0 < low < high < np.inf:
        raise ValueError(f"tune.bounds must satisfy 0 < low < high, got {tuple(config.bounds)}")
    unknown = set(config.hyperparams) - set(HYPERPARAMS)
    if not config.hyperparams or unknown:
        raise ValueError(
            f"tune.hyperparams must name injected hyperparameters from "
            f"{sorted(HYPERPARAMS)}, got {tuple(config.hyperparams)}"
        )
    if not config.networks:
        raise ValueError("tune.networks must name at least one network")


def value_key(name: str, net: str) -> str:
    """The name of a searched value in rows and histories, e.g. ``strength_d``."""
    return f"{name}_{net}"


def get_values(state, config) -> dict[str, jax.Array]:
    """``{value_key(name, net): [K]}``: the searched values of a stacked state."""
    return {
        value_key(name, net): penalties.get_hyperparams(state.opt_state[net])[name]
        for net in config.networks
        for name in config.hyperparams
    }


def set_values(state, values: dict[str, Any], config) -> Any:
    """``state`` with the searched values replaced (``{value_key: [K]}``; a pure pytree edit)."""
    opt_state = dict(state.opt_state)
    for net in config.networks:
        opt_state[net] = penalties.set_hyperparams(
            opt_state[net], **{name: values[value_key(name, net)] for name in config.hyperparams}
        )
    return state.replace(opt_state=opt_state)


def truncation(scores: jax.Array, quantile: float, lower_is_better: bool, key: jax.Array):
    """Truncation selection: each member's parent (itself, or a donor from the top quantile).

    Members are ranked best first by ``scores`` (a non-finite score counts as
    the worst; ties keep the member order). With ``n = floor(quantile K)``,
    each of the ``n`` worst members gets as parent a member drawn uniformly
    (``jax.random.randint(key, (n,), 0, n)``) from the ``n`` best; every
    other member is its own parent.

    Returns:
      ``[K]`` int32 parents.
    """
    scores = jnp.asarray(scores)
    size = scores.shape[0]
    count = int(quantile * size)
    parents = jnp.arange(size, dtype=jnp.int32)
    if count == 0:
        return parents
    badness = jnp.where(jnp.isfinite(scores), scores if lower_is_better else -scores, jnp.inf)
    order = jnp.argsort(badness, stable=True).astype(jnp.int32)
    donors = order[:count][jax.random.randint(key, (count,), 0, count)]
    return parents.at[order[size - count :]].set(donors)


@jax.jit
def exploit(state, parents: jax.Array):
    """Member ``k`` takes member ``parents[k]``'s parameters, optimiser and model states and
    divergence flags (a gather on the member axis); its key and step stay its own."""

    def take(tree):
        return jax.tree.map(lambda x: x[parents], tree)

    return state.replace(
        params=take(state.params),
        opt_state=take(state.opt_state),
        model_state=take(state.model_state),
        diverged=take(state.diverged),
        diverged_step=take(state.diverged_step),
        diverged_reason=take(state.diverged_reason),
    )


def explore(
    values: dict[str, jax.Array], copied: jax.Array, key: jax.Array, factors, bounds
) -> dict[str, jax.Array]:
    """The copied members' values times one factor each (``factors[randint(key)]``), clipped.

    Every searched value of a member is scaled by the same factor (a tied
    pair keeps its ratio); members not ``copied`` keep theirs bitwise.
    """
    size = copied.shape[0]
    factor = jnp.asarray(factors, jnp.float32)[jax.random.randint(key, (size,), 0, len(factors))]
    low, high = bounds
    return {
        k: jnp.where(copied, jnp.clip(v * factor.astype(v.dtype), low, high), v)
        for k, v in values.items()
    }


class Step(NamedTuple):
    """The result of one exploit/explore step.

    Attributes:
      state: the new stacked state.
      values: ``{value_key: [K]}``, the searched values now in ``state``.
      parents: ``[K]``, whose state each member copied (itself if none): the lineage.
    """

    state: Any
    values: dict
    parents: jax.Array


def exploit_and_explore(state, scores, key: jax.Array, config) -> Step:
    """One step of the search on a stacked state (module docstring); deterministic in ``key``.

    Args:
      state: a stacked :class:`regan_jax.steps.TrainState` of K members.
      scores: ``[K]`` the members' scores (``config.lower_is_better`` says
        which way is better; NaN: the worst, e.g. a diverged member).
      key: the step's key.
      config: :func:`default_config` 's fields.
    """
    select_key, explore_key = jax.random.split(key)
    parents = truncation(scores, config.quantile, config.lower_is_better, select_key)
    copied = parents != jnp.arange(parents.shape[0], dtype=parents.dtype)
    state = exploit(state, parents)
    values = explore(get_values(state, config), copied, explore_key, config.factors, config.bounds)
    return Step(set_values(state, values, config), values, parents)
