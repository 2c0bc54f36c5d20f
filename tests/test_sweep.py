"""Vmapped sweeps: member k after N steps equals the single run of k's seed and hyperparameters."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tiny_runs import batches, tiny_gan, unkey

from regan_jax import penalties, steps, sweep
from regan_jax.families import gan as gan_family

ROWS, STEPS = 8, 3
SEEDS = (0, 1, 0, 2, 3)
D_STRENGTH = (0.0, 1e-2, 1e-1, 1e-2, 1e-2)
D_LEARNING_RATE = (1e-2, 1e-2, 3e-2, 1e30, 1e-2)
# member 3's learning rate blows D up in its first step; member 4 reads a NaN at step 1
POISONED = 4
DIVERGED_AT = {3: 0, POISONED: 1}
HEALTHY = [k for k in range(len(SEEDS)) if k not in DIVERGED_AT]


@functools.lru_cache(maxsize=None)
def setup():
    nets, optimizers, loss_cfg, _ = tiny_gan()
    step = functools.partial(
        gan_family.gan_step, models=nets, optimizers=optimizers, loss_cfg=loss_cfg
    )
    # member k reads its own stream of batches (shared_batch=False)
    streams = [batches(100 + k, STEPS, ROWS) for k in range(len(SEEDS))]
    streams[POISONED][1]["image"][0, 0] = np.nan
    init_member = functools.partial(
        gan_family.init_gan_state, nets, optimizers, example_batch=streams[0][0]
    )
    return step, init_member, streams


def single_run(k):
    """Member k's run on its own: init, override its hyperparameters, STEPS steps."""
    step, init_member, streams = setup()
    state = init_member(jax.random.key(SEEDS[k]))
    state = state.replace(
        opt_state={
            **state.opt_state,
            "d": penalties.set_hyperparams(
                state.opt_state["d"], strength=D_STRENGTH[k], learning_rate=D_LEARNING_RATE[k]
            ),
        }
    )
    jitted = _jitted_single()
    for batch in streams[k]:
        state, _ = jitted(state, batch)
    return state


@functools.lru_cache(maxsize=None)
def _jitted_single():
    return jax.jit(setup()[0])


@functools.lru_cache(maxsize=None)
def swept():
    step, init_member, streams = setup()
    states = sweep.init_sweep(
        init_member, SEEDS, {"d": {"strength": D_STRENGTH, "learning_rate": D_LEARNING_RATE}}
    )
    vmapped = sweep.vmap_step(step, shared_batch=False)
    for t in range(STEPS):
        stacked = jax.tree.map(lambda *xs: np.stack(xs), *[s[t] for s in streams])
        states, metrics = vmapped(states, stacked)
    return states, metrics


def _flat_params(params):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(params)])


@pytest.mark.parametrize("k", HEALTHY)
def test_member_equals_its_single_run(k):
    states, metrics = swept()
    member, single = sweep.member(states, k), single_run(k)
    assert not bool(member.diverged) and int(member.step) == STEPS
    chex.assert_trees_all_close(unkey(member), unkey(single), rtol=1e-5, atol=1e-6)
    assert metrics["g_loss"].shape == (len(SEEDS),)


def test_members_really_differ():
    """Seeds and strengths reach the members: no two healthy members end equal."""
    states, _ = swept()
    d_params = [_flat_params(sweep.member(states, k).params["d"]) for k in range(3)]
    assert not np.allclose(d_params[0], d_params[1]) and not np.allclose(d_params[0], d_params[2])
    # members 0 and 2 share a seed: their initial params were equal, their strengths not
    np.testing.assert_allclose(
        penalties.get_hyperparams(states.opt_state["d"])["strength"], D_STRENGTH
    )


@pytest.mark.parametrize("k", sorted(DIVERGED_AT))
def test_diverging_member_freezes_alone(k):
    states, metrics = swept()
    assert np.asarray(states.diverged).tolist() == [j in DIVERGED_AT for j in range(len(SEEDS))]
    member, single = sweep.member(states, k), single_run(k)
    assert int(member.diverged_step) == DIVERGED_AT[k] == int(member.step)
    assert steps.divergence_reason(member.diverged_reason) == "nonfinite_loss"
    assert np.all(np.isfinite(_flat_params(member.params)))
    # frozen exactly where its own single run froze
    chex.assert_trees_all_close(unkey(member), unkey(single), rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(np.asarray(metrics["g_loss"])[HEALTHY]))


def test_stack_unstack_round_trip():
    tree = [{"w": jnp.full((2,), float(k)), "key": jax.random.key(k)} for k in range(3)]
    stacked = sweep.stack_members(tree)
    assert sweep.num_members(stacked) == 3 and stacked["w"].shape == (3, 2)
    for k, back in enumerate(sweep.unstack(stacked)):
        chex.assert_trees_all_equal(unkey(back), unkey(tree[k]))
    chex.assert_trees_all_equal(unkey(sweep.member(stacked, -1)), unkey(tree[2]))


def test_member_axis_mismatch_fails_before_compute():
    def never(key):
        raise AssertionError("init_member must not run when the sweep is inconsistent")

    with pytest.raises(
        ValueError,
        match=r"hyperparams\['d'\]\['strength'\] has 2 values but "
        r"the sweep has 3 members",
    ):
        sweep.init_sweep(never, [0, 1, 2], {"d": {"strength": [0.0, 1e-3]}})
    with pytest.raises(ValueError, match="at least one seed"):
        sweep.init_sweep(never, [])


def test_vmap_step_checks_member_axes():
    step, init_member, streams = setup()
    vmapped = sweep.vmap_step(step, shared_batch=False)
    states = {"w": jnp.zeros((3, 2))}
    with pytest.raises(ValueError, match=r"leading sizes \[2\]; the sweep has 3 members"):
        vmapped(states, {"image": np.zeros((2, ROWS, 2)), "label": np.zeros((2, ROWS))})
    with pytest.raises(ValueError, match="not a stacked state"):
        vmapped({"w": jnp.zeros(()), "v": jnp.zeros((3,))}, streams[0][0])
    with pytest.raises(ValueError, match="different tree structures"):
        sweep.stack_members([{"a": 1.0}, {"b": 1.0}])
    with pytest.raises(ValueError, match="leaf shapes differ"):
        sweep.stack_members([{"a": jnp.zeros(2)}, {"a": jnp.zeros(3)}])
