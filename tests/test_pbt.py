"""The exploit/explore step of the population-based search against numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regan_jax import pbt, penalties, steps, sweep

SIZE = 8


def member_state(seed: int, strength: float):
    """A small train state with an Adam + coupled-L2 optimizer on two networks, stepped once
    so that Adam's moments are not zero."""
    rng = np.random.default_rng(seed)
    params = {
        net: {"dense": {"kernel": rng.normal(size=(3, 4)).astype(np.float32)}} for net in ("g", "d")
    }
    opt_state = {}
    for net in ("g", "d"):
        penalty = penalties.default_penalty_config()
        penalty.kind = "l2"
        penalty.strength = strength
        optimizer = penalties.build_optimizer(penalties.default_optimizer_config(), penalty)
        state = optimizer.init(params[net])
        grads = jax.tree.map(lambda x: jnp.full_like(x, 0.1 * (seed + 1)), params[net])
        _, opt_state[net] = optimizer.update(grads, state, params[net])
    return steps.TrainState(
        step=jnp.asarray(5, jnp.int32),
        key=jax.random.key(seed),
        params=params,
        opt_state=opt_state,
        model_state={"d": {"batch_stats": {"u": jnp.full((2,), float(seed))}}},
        diverged=jnp.asarray(seed == 3),
        diverged_step=jnp.asarray(4 if seed == 3 else -1, jnp.int32),
        diverged_reason=jnp.asarray(1 if seed == 3 else 0, jnp.int32),
    )


@pytest.fixture(scope="module")
def stacked():
    return sweep.stack_members(
        [member_state(k, s) for k, s in enumerate(np.geomspace(1e-5, 1e-1, SIZE))]
    )


def search_config(**fields):
    config = pbt.default_config()
    config.networks = ("g", "d")
    config.bounds = (1e-5, 1e-1)
    for key, value in fields.items():
        config[key] = value
    return config


def numpy_parents(scores, quantile, lower, key):
    """The reference: rank in float64 numpy (NaN worst, ties by index), copy top into bottom."""
    scores = np.asarray(scores, np.float64)
    size = len(scores)
    n = int(quantile * size)
    badness = np.where(np.isfinite(scores), scores if lower else -scores, np.inf)
    order = np.argsort(badness, kind="stable")
    parents = np.arange(size)
    if n:
        draws = np.asarray(jax.random.randint(key, (n,), 0, n))
        parents[order[size - n :]] = order[:n][draws]
    return parents


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("quantile", [0.125, 0.25, 0.5])
def test_truncation_equals_the_numpy_ranking_and_copy(lower, quantile):
    rng = np.random.default_rng(7)
    for trial in range(5):
        scores = rng.normal(size=SIZE).astype(np.float32)
        scores[trial % SIZE] = np.nan  # a diverged member ranks last
        key = jax.random.key(trial)
        got = np.asarray(pbt.truncation(jnp.asarray(scores), quantile, lower, key))
        np.testing.assert_array_equal(got, numpy_parents(scores, quantile, lower, key))
        n = int(quantile * SIZE)
        badness = np.where(np.isfinite(scores), scores if lower else -scores, np.inf)
        worst, best = (
            np.argsort(badness, kind="stable")[SIZE - n :],
            np.argsort(badness, kind="stable")[:n],
        )
        assert set(got[worst]) <= set(best)  # the bottom copies from the top only
        assert np.isnan(scores[trial % SIZE]) and got[trial % SIZE] != trial % SIZE


def test_ties_keep_the_member_order_and_a_small_population_copies_nobody():
    parents = pbt.truncation(jnp.zeros(4), 0.25, True, jax.random.key(0))
    np.testing.assert_array_equal(parents, [0, 1, 2, 0])  # member 3 is last, 0 first
    np.testing.assert_array_equal(
        pbt.truncation(jnp.zeros(3), 0.25, True, jax.random.key(0)), [0, 1, 2]
    )


def test_exploit_is_a_gather_of_everything_but_key_and_step(stacked):
    parents = np.array([0, 1, 5, 3, 4, 5, 1, 0])
    out = pbt.exploit(stacked, jnp.asarray(parents))
    for field in ("params", "opt_state", "model_state", "diverged", "diverged_step"):
        for got, original in zip(
            jax.tree.leaves(getattr(out, field)), jax.tree.leaves(getattr(stacked, field))
        ):
            original = np.asarray(original)
            expected = np.stack([original[p].copy() for p in parents])  # by hand, member by member
            np.testing.assert_array_equal(np.asarray(got), expected)
    np.testing.assert_array_equal(jax.random.key_data(out.key), jax.random.key_data(stacked.key))
    np.testing.assert_array_equal(out.step, stacked.step)


def test_members_not_replaced_are_untouched_bitwise(stacked):
    scores = jnp.asarray(np.arange(SIZE, dtype=np.float32))  # member 0 best, 7 worst
    result = pbt.exploit_and_explore(stacked, scores, jax.random.key(3), search_config())
    parents = np.asarray(result.parents)
    kept = np.flatnonzero(parents == np.arange(SIZE))
    assert list(kept) == [0, 1, 2, 3, 4, 5]
    for got, original in zip(jax.tree.leaves(result.state), jax.tree.leaves(stacked)):
        if jax.dtypes.issubdtype(got.dtype, jax.dtypes.prng_key):
            got, original = jax.random.key_data(got), jax.random.key_data(original)
        np.testing.assert_array_equal(np.asarray(got)[kept], np.asarray(original)[kept])


def test_explore_multiplies_the_copied_strengths_by_a_factor_within_bounds(stacked):
    config = search_config(quantile=0.5)
    before = pbt.get_values(stacked, config)
    for seed in range(4):
        scores = jnp.asarray(np.random.default_rng(seed).normal(size=SIZE), jnp.float32)
        result = pbt.exploit_and_explore(stacked, scores, jax.random.key(seed), config)
        parents = np.asarray(result.parents)
        after = pbt.get_values(result.state, config)
        assert set(after) == {"strength_g", "strength_d"}
        for key in after:
            np.testing.assert_array_equal(after[key], result.values[key])
            parent_values = np.asarray(before[key])[parents]
            for k in np.flatnonzero(parents != np.arange(SIZE)):
                candidates = {
                    float(np.clip(np.float32(parent_values[k]) * np.float32(f), 1e-5, 1e-1))
                    for f in (0.8, 1.25)
                }
                assert float(after[key][k]) in candidates
        # One factor per member, shared by its networks (a tied pair keeps its ratio).
        ratio = np.asarray(after["strength_g"]) / np.asarray(before["strength_g"])[parents]
        np.testing.assert_allclose(
            np.asarray(after["strength_d"]) / np.asarray(before["strength_d"])[parents], ratio
        )


def test_explore_clips_to_the_bounds_and_uses_both_factors():
    values = {"strength_d": jnp.asarray([1e-1] * 20 + [1e-5] * 20, jnp.float32)}
    copied = jnp.ones(40, bool)
    out = np.asarray(
        pbt.explore(values, copied, jax.random.key(0), (0.8, 1.25), (1e-5, 1e-1))["strength_d"]
    )
    high, low = out[:20], out[20:]
    f32 = np.float32
    # float32 products; x1.25 of the top and x0.8 of the bottom clipped to the bounds
    assert set(high) == {f32(0.1) * f32(0.8), f32(0.1)}
    assert set(low) == {f32(1e-5), f32(1e-5) * f32(1.25)}
    untouched = pbt.explore(
        values, jnp.zeros(40, bool), jax.random.key(0), (0.8, 1.25), (1e-5, 1e-1)
    )
    np.testing.assert_array_equal(untouched["strength_d"], values["strength_d"])


def test_the_step_is_deterministic_in_its_key(stacked):
    config = search_config(quantile=0.5)
    scores = jnp.asarray(np.random.default_rng(1).normal(size=SIZE), jnp.float32)
    a, b = (pbt.exploit_and_explore(stacked, scores, jax.random.key(11), config) for _ in range(2))
    for x, y in zip(jax.tree.leaves((a.state, a.parents)), jax.tree.leaves((b.state, b.parents))):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(x, y)
    others = [
        pbt.exploit_and_explore(stacked, scores, jax.random.key(k), config) for k in range(12, 16)
    ]
    assert any(
        not np.array_equal(o.parents, a.parents)
        or not np.array_equal(o.values["strength_d"], a.values["strength_d"])
        for o in others
    )


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("interval", 0, "tune.interval"),
        ("quantile", 0.75, "tune.quantile"),
        ("factors", (0.8, -1.0), "tune.factors"),
        ("bounds", (1e-1, 1e-5), "tune.bounds"),
        ("hyperparams", ("strenght",), "tune.hyperparams"),
        ("metric", "", "tune.metric"),
    ],
)
def test_validate_names_the_field(field, value, message):
    config = pbt.default_config()
    config[field] = value
    with pytest.raises(ValueError, match=message):
        pbt.validate(config)
