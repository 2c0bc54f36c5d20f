"""The penalty transforms' math, against closed forms and float64 numpy references."""

import doctest
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _params import is_kernel_path, leaves_by_path, make_params, params_with_zeros

from regan_jax import metrics
from regan_jax import penalties as P

LR = 1e-2


# A separable smooth loss whose gradient numpy can compute independently.
TARGET_SEED = 7


def targets(params):
    rng = np.random.default_rng(TARGET_SEED)
    return jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)


def loss_fn(params, target):
    terms = jax.tree.map(
        lambda w, t: jnp.sum(0.5 * (w - t) ** 2 + 0.3 * jnp.sin(w)), params, target
    )
    return sum(jax.tree.leaves(terms))


def numpy_grad(w, t):
    return (w - t) + 0.3 * np.cos(w)


def mlp_params(seed=0):
    """A two-layer MLP: the trajectory tests' network (quicker to compile than make_params)."""
    rng = np.random.default_rng(seed)
    shapes = {
        "Dense_0": {"kernel": (3, 5), "bias": (5,)},
        "Dense_1": {"kernel": (5, 2), "bias": (2,)},
    }
    return jax.tree.map(
        lambda s: jnp.asarray(rng.normal(size=s), jnp.float32),
        shapes,
        is_leaf=lambda s: isinstance(s, tuple),
    )


def small_params(seed=0):
    """One Dense layer: enough for the vmap/sweep tests, quick to compile."""
    rng = np.random.default_rng(seed)
    return {
        "Dense_0": {
            "kernel": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
            "bias": jnp.asarray(rng.normal(size=(4,)), jnp.float32),
        }
    }


def run(opt, params, steps, extra_loss=None, state=None):
    """``steps`` optimizer steps on loss_fn (+ extra_loss), jitted under lax.scan."""
    target = targets(params)

    def loss(p):
        value = loss_fn(p, target)
        return value if extra_loss is None else value + extra_loss(p)

    def body(carry, _):
        p, s = carry
        updates, s = opt.update(jax.grad(loss)(p), s, p)
        return (optax.apply_updates(p, updates), s), None

    state = opt.init(params) if state is None else state
    (params, state), _ = jax.jit(lambda c: jax.lax.scan(body, c, length=steps))((params, state))
    return params, state


def first_update(opt, updates, params):
    """The transformed updates of one step from a fresh state (init + update, jitted)."""
    return jax.jit(lambda u, p: opt.update(u, opt.init(p), p)[0])(updates, params)


def configs(kind="none", coupling="coupled", name="adam", **penalty):
    opt_cfg = P.default_optimizer_config()
    opt_cfg.name, opt_cfg.learning_rate, opt_cfg.b1 = name, LR, 0.9
    pen_cfg = P.default_penalty_config()
    pen_cfg.kind, pen_cfg.coupling = kind, coupling
    for field, value in penalty.items():
        pen_cfg[field] = value
    return opt_cfg, pen_cfg


def kernel_sum(params, fn):
    return sum(fn(w) for w in jax.tree.leaves(params) if w.ndim >= 2)


# In-loss references, written independently of the library.
IN_LOSS = {
    "l2": lambda p, s, s2: 0.5 * s * kernel_sum(p, lambda w: jnp.sum(w**2)),
    "l1": lambda p, s, s2: s * kernel_sum(p, lambda w: jnp.sum(jnp.abs(w))),
    "elastic_net": lambda p, s, s2: kernel_sum(
        p, lambda w: s * jnp.sum(jnp.abs(w)) + 0.5 * s2 * jnp.sum(w**2)
    ),
    "group_l1": lambda p, s, s2: (
        s
        * kernel_sum(
            p, lambda w: jnp.sum(jnp.sqrt(jnp.sum(w.reshape(-1, w.shape[-1]) ** 2, axis=0)))
        )
    ),
}


# ---------------------------------------------------------------- coupled / decoupled


def test_coupled_l2_chain_equals_adam_on_penalised_loss():
    params, lam, steps = mlp_params(), 0.3, 60
    reference, _ = run(
        optax.adam(LR, b1=0.9), params, steps, extra_loss=lambda p: IN_LOSS["l2"](p, lam, 0.0)
    )
    by_chain, _ = run(
        optax.chain(
            optax.add_decayed_weights(lam, P.kernel_mask),
            optax.scale_by_adam(b1=0.9),
            optax.scale(-LR),
        ),
        params,
        steps,
    )
    by_builder, _ = run(P.build_optimizer(*configs("l2", strength=lam)), params, steps)
    chex.assert_trees_all_close(by_chain, reference, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(by_builder, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["l1", "elastic_net", "group_l1"])
def test_coupled_penalty_equals_adam_on_penalised_loss(kind):
    params, lam, lam2, steps = mlp_params(), 0.2, 0.5, 50
    extra = {"l2_strength": lam2} if kind == "elastic_net" else {}
    reference, _ = run(
        optax.adam(LR, b1=0.9), params, steps, extra_loss=lambda p: IN_LOSS[kind](p, lam, lam2)
    )
    built, _ = run(P.build_optimizer(*configs(kind, strength=lam, **extra)), params, steps)
    chex.assert_trees_all_close(built, reference, rtol=1e-5, atol=1e-5)


# numpy float64 AdamW-style reference: the penalty term is added to Adam's
# direction and scaled by the learning rate, like torch.optim.AdamW.
DECOUPLED_TERM = {
    "l2": lambda w, s, s2: s * w,
    "l1": lambda w, s, s2: s * np.sign(w),
    "elastic_net": lambda w, s, s2: s * np.sign(w) + s2 * w,
    "group_l1": lambda w, s, s2: s * w / np.linalg.norm(w.reshape(-1, w.shape[-1]), axis=0),
}


def numpy_adamw(params, kind, lam, lam2, steps, b1=0.9, b2=0.999, eps=1e-8):
    w = leaves_by_path(params)
    t = leaves_by_path(targets(params))
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v = {k: np.zeros_like(x) for k, x in w.items()}
    for step in range(1, steps + 1):
        for k in w:
            g = numpy_grad(w[k], t[k])
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            direction = (m[k] / (1 - b1**step)) / (np.sqrt(v[k] / (1 - b2**step)) + eps)
            if is_kernel_path(k):
                direction = direction + DECOUPLED_TERM[kind](w[k], lam, lam2)
            w[k] = w[k] - LR * direction
    return w


@pytest.mark.parametrize("kind", ["l2", "l1", "elastic_net", "group_l1"])
def test_decoupled_matches_numpy_adamw_reference(kind):
    params, lam, lam2, steps = mlp_params(), 0.4, 0.3, 80
    extra = {"l2_strength": lam2} if kind == "elastic_net" else {}
    built, _ = run(
        P.build_optimizer(*configs(kind, "decoupled", strength=lam, **extra)), params, steps
    )
    expected = numpy_adamw(params, kind, lam, lam2, steps)
    got = leaves_by_path(built)
    for path in expected:
        np.testing.assert_allclose(got[path], expected[path], rtol=2e-5, atol=2e-5, err_msg=path)


def test_decoupled_l2_equals_optax_adamw_with_kernel_mask():
    params, steps = mlp_params(), 60
    built, _ = run(P.build_optimizer(*configs("l2", "decoupled", strength=0.4)), params, steps)
    adamw, _ = run(optax.adamw(LR, b1=0.9, weight_decay=0.4, mask=P.kernel_mask), params, steps)
    chex.assert_trees_all_close(built, adamw, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "name,reference",
    [
        ("sgd", lambda: optax.sgd(LR, momentum=0.8)),
        ("rmsprop", lambda: optax.rmsprop(LR, decay=0.99, eps=1e-3, eps_in_sqrt=False)),
    ],
)
def test_optimizer_registry_matches_optax(name, reference):
    opt_cfg, pen_cfg = configs(name=name)
    opt_cfg.momentum, opt_cfg.b2, opt_cfg.eps = 0.8, 0.99, 1e-3
    built, _ = run(P.build_optimizer(opt_cfg, pen_cfg), mlp_params(), 20)
    expected, _ = run(reference(), mlp_params(), 20)
    chex.assert_trees_all_close(built, expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- additive transforms


def numpy_group_direction(w):
    flat = w.reshape(-1, w.shape[-1])
    norms = np.linalg.norm(flat, axis=0)
    safe = np.where(norms > 0, norms, 1.0)
    return (np.where(norms > 0, flat / safe, 0.0)).reshape(w.shape)


@pytest.mark.parametrize(
    "transform,term",
    [
        (lambda: P.l1(0.3), lambda w: 0.3 * np.sign(w)),
        (lambda: P.l2(0.3), lambda w: 0.3 * w),
        (lambda: P.elastic_net(0.3, 0.7), lambda w: 0.3 * np.sign(w) + 0.7 * w),
        (lambda: P.group_l1(0.3), lambda w: 0.3 * numpy_group_direction(w)),
    ],
)
def test_additive_transform_adds_the_subgradient(transform, term):
    params = params_with_zeros()
    grads = make_params(2)
    opt = transform()
    updates = first_update(opt, grads, params)
    got, g, w = leaves_by_path(updates), leaves_by_path(grads), leaves_by_path(params)
    for path in got:
        expected = g[path] + term(w[path]) if is_kernel_path(path) else g[path]
        np.testing.assert_allclose(got[path], expected, rtol=1e-6, atol=1e-6, err_msg=path)
        if not is_kernel_path(path):  # biases pass through bit for bit
            np.testing.assert_array_equal(got[path], g[path])
    chex.assert_tree_all_finite(updates)


def test_l1_subgradient_is_zero_at_zero():
    params = {"k": jnp.array([[0.0, 2.0], [-3.0, 0.0]])}
    opt = P.l1(0.5)
    updates = first_update(opt, jax.tree.map(jnp.zeros_like, params), params)
    np.testing.assert_array_equal(updates["k"], [[0.0, 0.5], [-0.5, 0.0]])


def test_group_l1_axis_selects_the_group_dimension():
    w = np.random.default_rng(3).normal(size=(3, 4))
    params = {"k": jnp.asarray(w, jnp.float32)}
    opt = P.group_l1(1.0, axis=0)
    updates = first_update(opt, {"k": jnp.zeros((3, 4))}, params)
    expected = w / np.linalg.norm(w, axis=1, keepdims=True)  # groups = rows
    np.testing.assert_allclose(updates["k"], expected, rtol=1e-6)


# ---------------------------------------------------------------- proximal steps


def numpy_soft(z, tau):
    return np.sign(z) * np.maximum(np.abs(z) - tau, 0.0)


def numpy_block_soft(z, tau):
    flat = z.reshape(-1, z.shape[-1])
    norms = np.linalg.norm(flat, axis=0)
    shrink = np.where(norms > tau, 1.0 - tau / np.where(norms > 0, norms, 1.0), 0.0)
    return (flat * shrink).reshape(z.shape)


PROX_CASES = {
    "prox_l1": (lambda t: P.prox_l1(0.8, t), lambda z, t: numpy_soft(z, t * 0.8)),
    "prox_elastic_net": (
        lambda t: P.prox_elastic_net(0.8, 2.0, t),
        lambda z, t: numpy_soft(z, t * 0.8) / (1 + t * 2.0),
    ),
    "prox_group_l1": (lambda t: P.prox_group_l1(2.0, t), lambda z, t: numpy_block_soft(z, t * 2.0)),
}


@pytest.mark.parametrize("name", sorted(PROX_CASES))
def test_prox_step_matches_closed_form_and_gives_exact_zeros(name):
    make, closed_form = PROX_CASES[name]
    t = 0.5

    def weaken(x):  # a weak filter
        return x.at[..., 0].multiply(0.1) if x.ndim >= 2 else x

    params = jax.tree.map(weaken, make_params(3))
    updates = jax.tree.map(lambda x: 0.5 * weaken(x), make_params(4))
    opt = make(t)
    out = first_update(opt, updates, params)
    new = leaves_by_path(optax.apply_updates(params, out))
    w, u = leaves_by_path(params), leaves_by_path(updates)
    for path in new:
        z = w[path] + u[path]
        expected = closed_form(z, t) if is_kernel_path(path) else z
        np.testing.assert_allclose(new[path], expected, rtol=1e-5, atol=1e-6, err_msg=path)
        if is_kernel_path(path):
            zeros = expected == 0
            assert zeros.any(), "test data should produce some zeros"
            assert np.all(new[path][zeros] == 0.0), "prox zeros must be exact"


def test_prox_group_l1_zeros_whole_filters():
    kernel = np.ones((2, 2, 3, 4), np.float32)
    kernel[..., 1] *= 0.01  # a weak filter: norm 0.02·sqrt(3) < tλ
    kernel[..., 2] = 0.0  # an all-zero filter, with zero update (no NaN)
    params = {"Conv_0": {"kernel": jnp.asarray(kernel)}}
    opt = P.prox_group_l1(1.0, 0.5)
    out = first_update(opt, jax.tree.map(jnp.zeros_like, params), params)
    new = np.asarray(optax.apply_updates(params, out)["Conv_0"]["kernel"])
    assert np.all(new[..., 1] == 0) and np.all(new[..., 2] == 0)
    assert np.all(new[..., 0] != 0) and np.all(new[..., 3] != 0)
    np.testing.assert_allclose(new[..., 0], 1.0 - 0.5 / np.sqrt(12), rtol=1e-6)
    stats = metrics.weight_stats(optax.apply_updates(params, out))
    assert float(stats["zero_filter_fraction"]) == 0.5


@pytest.mark.parametrize("kind", ["prox_l1", "prox_group_l1"])
def test_proximal_sgd_reaches_the_lasso_optimum(kind):
    """ISTA / proximal gradient: the fixed point satisfies the (group) lasso KKT conditions."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 6))
    w_true = np.zeros((6, 3))
    w_true[:2] = rng.normal(size=(2, 3)) * 2
    y = x @ w_true + 0.1 * rng.normal(size=(40, 3))
    x32, y32 = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    lam = 0.3
    lipschitz = np.linalg.eigvalsh(x.T @ x / 40).max()
    opt_cfg, pen_cfg = configs(kind, name="sgd", strength=lam, group_axis=0)
    opt_cfg.learning_rate = float(1.0 / lipschitz)
    opt = P.build_optimizer(opt_cfg, pen_cfg)

    def loss(p):
        return 0.5 * jnp.mean(jnp.sum((x32 @ p["w"] - y32) ** 2, axis=1))

    def body(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(loss)(p), s, p)
        return (optax.apply_updates(p, u), s), None

    params = {"w": jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)}
    (params, _), _ = jax.jit(lambda c: jax.lax.scan(body, c, length=800))(
        (params, opt.init(params))
    )
    w = np.asarray(params["w"], np.float64)
    grad = x.T @ (x @ w - y) / 40
    if kind == "prox_l1":
        nonzero = w != 0
        assert (~nonzero).any() and nonzero.any()
        np.testing.assert_allclose(grad[nonzero], -lam * np.sign(w[nonzero]), atol=1e-4)
        assert np.all(np.abs(grad[~nonzero]) <= lam + 1e-4)
    else:  # groups are rows (group_axis=0): whole input features removed
        norms = np.linalg.norm(w, axis=1)
        nonzero = norms > 0
        assert (~nonzero).any() and nonzero.any()
        np.testing.assert_allclose(
            grad[nonzero], -lam * w[nonzero] / norms[nonzero, None], atol=1e-4
        )
        assert np.all(np.linalg.norm(grad[~nonzero], axis=1) <= lam + 1e-4)


# ---------------------------------------------------------------- projections


def test_project_l2_ball_projects_outside_and_keeps_inside():
    big = {
        "a": {"kernel": jnp.full((3, 4), 2.0)},
        "b": {"kernel": jnp.full((2, 2), 0.1)},
        "a_bias": jnp.full((4,), 9.0),
    }
    opt = P.project_l2_ball(1.5)
    zero = jax.tree.map(jnp.zeros_like, big)
    out = first_update(opt, zero, big)
    new = optax.apply_updates(big, out)
    np.testing.assert_allclose(new["a"]["kernel"], np.full((3, 4), 1.5 / np.sqrt(12)), rtol=1e-6)
    np.testing.assert_array_equal(new["b"]["kernel"], big["b"]["kernel"])  # inside: unchanged
    np.testing.assert_array_equal(new["a_bias"], big["a_bias"])  # bias: unconstrained


def test_max_norm_projects_each_unit():
    w = np.random.default_rng(6).normal(size=(2, 2, 3, 5)).astype(np.float32)
    w[..., 0] *= 1e-2  # a unit inside the ball
    params = {"Conv_0": {"kernel": jnp.asarray(w)}}
    opt = P.max_norm(1.0)
    out = first_update(opt, jax.tree.map(jnp.zeros_like, params), params)
    new = np.asarray(optax.apply_updates(params, out)["Conv_0"]["kernel"])
    norms = np.linalg.norm(w.reshape(-1, 5), axis=0)
    expected = w * np.minimum(1.0, 1.0 / norms)
    np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(new[..., 0], w[..., 0])
    assert np.all(np.linalg.norm(new.reshape(-1, 5), axis=0) <= 1.0 + 1e-6)


# ---------------------------------------------------------------- masks


def test_kernel_and_path_masks():
    params = make_params()
    assert P.kernel_mask(params) == {
        "Conv_0": {"kernel": True, "bias": False},
        "Dense_0": {"kernel": True, "bias": False},
        "Dense_1": {"kernel": True, "bias": False},
    }
    mask = P.path_mask(include=r"^Dense_", exclude=r"bias$")
    assert mask(params) == {
        "Conv_0": {"kernel": False, "bias": False},
        "Dense_0": {"kernel": True, "bias": False},
        "Dense_1": {"kernel": True, "bias": False},
    }


@pytest.mark.parametrize(
    "mask",
    [
        P.path_mask(include="Dense_1/kernel"),
        "Dense_1/kernel",
        {"Conv_0": False, "Dense_0": False, "Dense_1": {"kernel": True, "bias": False}},
    ],
)
def test_transforms_touch_only_masked_leaves(mask):
    params, grads = make_params(), make_params(1)
    opt = P.l1(1.0, mask=mask)
    updates = first_update(opt, grads, params)
    for layer in params:
        for leaf in params[layer]:
            changed = not np.array_equal(updates[layer][leaf], grads[layer][leaf])
            assert changed == (layer == "Dense_1" and leaf == "kernel"), (layer, leaf)


@pytest.mark.parametrize(
    "factory",
    [
        lambda m: P.l1(0.1, mask=m),
        lambda m: P.l2(0.1, mask=m),
        lambda m: P.elastic_net(0.1, 0.1, mask=m),
        lambda m: P.group_l1(0.1, mask=m),
        lambda m: P.prox_l1(0.1, 0.1, mask=m),
        lambda m: P.prox_elastic_net(0.1, 0.1, 0.1, mask=m),
        lambda m: P.prox_group_l1(0.1, 0.1, mask=m),
        lambda m: P.project_l2_ball(1.0, mask=m),
        lambda m: P.max_norm(1.0, mask=m),
    ],
)
def test_mask_matching_nothing_raises(factory):
    with pytest.raises(ValueError, match="matches no parameter"):
        factory("no_such_layer").init(make_params())
    with pytest.raises(ValueError, match="matches no parameter"):  # biases only: no kernels
        factory(None).init({"bias": jnp.zeros(3)})


def test_builder_mask_regex_and_empty_mask():
    opt_cfg, pen_cfg = configs("l1", strength=0.5, mask="^Dense_1/")
    params = make_params()
    zero = jax.tree.map(jnp.zeros_like, params)
    opt = P.build_optimizer(opt_cfg, pen_cfg)
    updates = first_update(opt, zero, params)
    assert np.any(updates["Dense_1"]["bias"] != 0)  # the regex includes the bias
    assert np.all(updates["Dense_0"]["kernel"] == 0)
    pen_cfg.mask = "nothing_matches"
    with pytest.raises(ValueError, match="nothing_matches"):
        P.build_optimizer(opt_cfg, pen_cfg).init(params)


# ---------------------------------------------------------------- schedules


def test_strength_schedule_takes_effect():
    schedule = optax.linear_schedule(0.0, 1.0, 4)
    params = {"k": jnp.ones((2, 2))}
    opt = P.l1(schedule)
    state, update = opt.init(params), jax.jit(opt.update)
    seen = []
    for _ in range(6):
        updates, state = update({"k": jnp.zeros((2, 2))}, state, params)
        seen.append(float(updates["k"][0, 0]))
    np.testing.assert_allclose(seen, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0], rtol=1e-6)


def test_builder_strength_and_lr_schedules_take_effect():
    """SGD + coupled L1 on a zero gradient: update_k = -η·m_lr(k)·λ·m_s(k)·sign(w)."""
    opt_cfg, pen_cfg = configs(
        "l1", name="sgd", strength=0.5, schedule="linear_warmup", warmup_steps=4
    )
    opt_cfg.schedule, opt_cfg.warmup_steps, opt_cfg.decay_steps = "warmup_cosine", 2, 10
    params = {"k": jnp.ones((2, 2))}
    opt = P.build_optimizer(opt_cfg, pen_cfg)
    state, update = opt.init(params), jax.jit(opt.update)
    for k in range(12):
        updates, state = update({"k": jnp.zeros((2, 2))}, state, params)
        m_lr = k / 2 if k < 2 else (0.5 * (1 + math.cos(math.pi * (k - 2) / 8)) if k < 10 else 0.0)
        m_s = min(k / 4, 1.0)
        np.testing.assert_allclose(updates["k"], -LR * m_lr * 0.5 * m_s, rtol=1e-5, atol=1e-9)


def test_prox_step_uses_learning_rate_schedule():
    lr = optax.piecewise_constant_schedule(0.1, {2: 10.0})  # t = 0.1, 0.1, 1.0, ...
    params = {"k": jnp.full((1, 3), 0.5)}
    opt = P.prox_l1(1.0, lr)
    state, update = opt.init(params), jax.jit(opt.update)
    for t in (0.1, 0.1, 1.0):
        out, state = update({"k": jnp.zeros((1, 3))}, state, params)
        np.testing.assert_allclose(
            optax.apply_updates(params, out)["k"], numpy_soft(np.full((1, 3), 0.5), t), rtol=1e-6
        )


# ---------------------------------------------------------------- jit / vmap / sweeps

VMAP_FACTORIES = {
    "l2": lambda s: P.l2(s),
    "l1": lambda s: P.l1(s),
    "elastic_net": lambda s: P.elastic_net(s, 2 * s),
    "group_l1": lambda s: P.group_l1(s),
    "prox_l1": lambda s: P.prox_l1(s, 0.5),
    "prox_elastic_net": lambda s: P.prox_elastic_net(s, s, 0.5),
    "prox_group_l1": lambda s: P.prox_group_l1(s, 0.5),
    "project_l2_ball": lambda s: P.project_l2_ball(1.0 + s),
    "max_norm": lambda s: P.max_norm(0.5 + s),
}


@pytest.mark.parametrize("name", sorted(VMAP_FACTORIES))
def test_vmap_over_strengths_equals_single_runs(name):
    params, updates = small_params(), jax.tree.map(lambda x: 0.3 * x, small_params(1))

    def three_steps(strength):
        opt = optax.chain(optax.scale(1.0), VMAP_FACTORIES[name](strength))
        state, p = opt.init(params), params
        for _ in range(3):
            u, state = opt.update(updates, state, p)
            p = optax.apply_updates(p, u)
        return p

    strengths = jnp.array([0.0, 0.1, 0.7])
    batched = jax.jit(jax.vmap(three_steps))(strengths)
    for k, s in enumerate([0.0, 0.1, 0.7]):
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, k=k: x[k], batched), three_steps(s), rtol=1e-6, atol=1e-6
        )


@pytest.mark.parametrize(
    "kind,field", [("l1", "strength"), ("elastic_net", "l2_strength"), ("max_norm", "radius")]
)
def test_set_hyperparams_on_member_axis_equals_building_each_strength(kind, field):
    values = [0.05, 0.6]
    base = {"l2_strength": 0.1} if kind == "elastic_net" else {}
    if kind != "max_norm":
        base.setdefault("strength", 0.1)
    opt = P.build_optimizer(*configs(kind, **base))
    params = small_params()
    stacked = jax.tree.map(lambda x: jnp.stack([x] * 2), opt.init(params))
    stacked = P.set_hyperparams(stacked, **{field: jnp.array(values)})
    np.testing.assert_allclose(P.get_hyperparams(stacked)[field], values, rtol=1e-7)
    members = jax.vmap(lambda s: run(opt, params, 3, state=s)[0])(stacked)
    for k, value in enumerate(values):
        single, _ = run(P.build_optimizer(*configs(kind, **{**base, field: value})), params, 3)
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, k=k: x[k], members), single, rtol=1e-6, atol=1e-6
        )


def test_set_hyperparams_scalar_state_and_learning_rate():
    opt = P.build_optimizer(*configs("l2", strength=0.1))
    params = small_params()
    state = P.set_hyperparams(opt.init(params), learning_rate=0.05, strength=0.0)
    assert set(P.get_hyperparams(state)) == {"learning_rate", "strength"}
    overridden, _ = run(opt, params, 3, state=state)
    opt_cfg, pen_cfg = configs("l2", strength=0.0)
    opt_cfg.learning_rate = 0.05
    built, _ = run(P.build_optimizer(opt_cfg, pen_cfg), params, 3)
    chex.assert_trees_all_close(overridden, built, rtol=1e-6, atol=1e-7)


def test_new_hyperparameter_values_do_not_retrace():
    """Sweep members differ only in state values: one compiled update serves all."""
    opt = P.build_optimizer(*configs("prox_elastic_net", strength=0.1, l2_strength=0.2))
    params = small_params()
    update = jax.jit(chex.assert_max_traces(opt.update, n=1))
    state = opt.init(params)
    for value in (0.1, 0.3, 0.0):
        state = P.set_hyperparams(state, strength=value, learning_rate=value + 0.01)
        _, state = update(params, state, params)


# ---------------------------------------------------------------- penalty value


@pytest.mark.parametrize(
    "kind", ["l2", "l1", "elastic_net", "group_l1", "prox_l1", "prox_elastic_net", "prox_group_l1"]
)
def test_penalty_value_matches_definition(kind):
    params = params_with_zeros()
    extra = {"l2_strength": 0.7} if "elastic" in kind else {}
    _, pen_cfg = configs(kind, strength=0.3, **extra)
    reference = IN_LOSS[kind.removeprefix("prox_")]
    scheduled_cfg = pen_cfg.copy_and_resolve_references()
    scheduled_cfg.schedule, scheduled_cfg.warmup_steps = "linear_warmup", 4
    overrides = {"strength": 0.9, "l2_strength": 0.7, "learning_rate": 1.0}  # lr: ignored

    @jax.jit
    def values(p):
        return (
            P.penalty_value(p, pen_cfg),
            P.penalty_value(p, pen_cfg, hyperparams=overrides),
            P.penalty_value(p, scheduled_cfg, step=1),  # multiplier 1/4 at step 1
            jax.grad(lambda q: P.penalty_value(q, pen_cfg))(p),
        )

    base, overridden, scheduled, grads = values(params)
    np.testing.assert_allclose(base, reference(params, 0.3, 0.7), rtol=1e-6)
    np.testing.assert_allclose(overridden, reference(params, 0.9, 0.7), rtol=1e-6)
    np.testing.assert_allclose(scheduled, reference(params, 0.3 / 4, 0.7 / 4), rtol=1e-6)
    # its gradient (finite at zero entries/groups) is the additive transform's term
    additive = {
        "l2": P.l2(0.3),
        "l1": P.l1(0.3),
        "elastic_net": P.elastic_net(0.3, 0.7),
        "group_l1": P.group_l1(0.3),
    }[kind.removeprefix("prox_")]
    term = first_update(additive, jax.tree.map(jnp.zeros_like, params), params)
    chex.assert_trees_all_close(grads, term, rtol=1e-6, atol=1e-7)


def test_penalty_value_is_zero_for_none_and_projections():
    for kind in ("none", "l2_ball", "max_norm"):
        assert float(P.penalty_value(make_params(), configs(kind)[1])) == 0.0
    # kind 'none' uses no mask, so a network without kernels is fine
    assert float(P.penalty_value({"bias": jnp.ones(3)}, configs("none")[1])) == 0.0


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
@pytest.mark.parametrize(
    "factory",
    [
        lambda s: P.l1(s),
        lambda s: P.l2(s),
        lambda s: P.elastic_net(0.1, s),
        lambda s: P.group_l1(s),
        lambda s: P.prox_l1(s, 0.1),
        lambda s: P.prox_l1(0.1, s),
        lambda s: P.prox_elastic_net(s, 0.1, 0.1),
        lambda s: P.prox_group_l1(s, 0.1),
        lambda s: P.project_l2_ball(s),
        lambda s: P.max_norm(s),
        lambda s: P.l1(optax.constant_schedule(s)),
    ],
)
def test_bad_strength_raises(factory, bad):
    with pytest.raises(ValueError, match=str(bad)):
        factory(bad)


def test_zero_radius_raises():
    with pytest.raises(ValueError, match="radius"):
        P.max_norm(0.0)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"kind": "l3"}, "unknown penalty kind 'l3'"),
        ({"kind": "l2", "coupling": "proximal"}, "unknown coupling 'proximal'"),
        ({"kind": "prox_l1", "coupling": "decoupled"}, "meaningless"),
        ({"kind": "l2_ball", "coupling": "decoupled"}, "meaningless"),
        ({"kind": "l1", "strength": -1.0}, "strength must be"),
        ({"kind": "l1", "strength": float("nan")}, "nan"),
        ({"kind": "l1", "l2_strength": 0.1}, "l2_strength=0.1 has no effect"),
        ({"kind": "none", "strength": 0.1}, "strength=0.1 has no effect"),
        ({"kind": "max_norm", "radius": -1.0}, "radius"),
        ({"kind": "l1", "schedule": "exponential"}, "unknown schedule 'exponential'"),
        ({"kind": "l1", "schedule": "linear_warmup"}, "warmup_steps > 0"),
        ({"kind": "l1", "mask": "("}, "invalid mask pattern"),
    ],
)
def test_bad_penalty_config_raises(changes, message):
    opt_cfg, pen_cfg = configs(**changes)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        P.build_optimizer(opt_cfg, pen_cfg)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("name", "adagrad", "unknown optimizer 'adagrad'"),
        ("learning_rate", -1.0, "learning_rate"),
        ("b1", 1.0, "b1"),
        ("schedule", "warmup_cosine", "warmup_cosine"),
    ],
)
def test_bad_optimizer_config_raises(field, value, message):
    opt_cfg, pen_cfg = configs()
    opt_cfg[field] = value
    with pytest.raises(ValueError, match=message):
        P.build_optimizer(opt_cfg, pen_cfg)


def test_chain_requires_terminal_steps_last():
    prox = P.prox_l1(0.1, LR)
    with pytest.raises(ValueError, match="position 1 of 3 must come last"):
        P.chain(optax.scale_by_adam(), prox, optax.scale(-LR))
    # terminal steps may follow each other (their composition is applied)
    opt = P.chain(optax.scale_by_adam(), optax.scale(-LR), prox, P.max_norm(1.0))
    params = make_params()
    updates = first_update(opt, params, params)
    chex.assert_tree_all_finite(updates)
    assert P.is_terminal(prox) and not P.is_terminal(P.l1(0.1))


def test_set_hyperparams_bad_input_raises():
    opt = P.build_optimizer(*configs("l1", strength=0.1))
    state = opt.init(make_params())
    with pytest.raises(ValueError, match=r"unknown hyperparameter 'l2_strength'.*learning_rate"):
        P.set_hyperparams(state, l2_strength=0.1)
    with pytest.raises(ValueError, match="strength must be"):
        P.set_hyperparams(state, strength=-1.0)
    with pytest.raises(ValueError, match="does not broadcast"):
        P.set_hyperparams(state, strength=jnp.ones(3))
    with pytest.raises(ValueError, match="build_optimizer"):
        P.get_hyperparams(optax.adam(LR).init(make_params()))


def test_docstring_examples_run():
    results = doctest.testmod(P, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert results.attempted > 0 and results.failed == 0
