"""Adaptive penalties: λ_t holds the effective strength at its target, against float64 numpy."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _params import leaves_by_path, make_params, params_with_zeros

import experiments
from experiments import train as train_cli
from regan_jax import config as config_lib
from regan_jax import data, effective_strength, families, parallel, sweep, train
from regan_jax import penalties as P
from regan_jax import program as program_lib

LR = 1e-2
E = 0.4
MIX = 0.7  # elastic net's λ₂/λ₁


# ----------------------------------------------------------------------------
# Independent references (numpy float64)
# ----------------------------------------------------------------------------


def unit_gradient(kind, w):
    """∂R(w) at strength 1 (elastic net: λ₁ = 1, λ₂ = MIX); groups along the last axis."""
    if kind == "l2":
        return w
    if kind == "l1":
        return np.sign(w)
    if kind == "elastic_net":
        return np.sign(w) + MIX * w
    norms = np.sqrt(np.sum(w**2, axis=tuple(range(w.ndim - 1)), keepdims=True))
    return np.where(norms > 0, w / np.where(norms > 0, norms, 1.0), 0.0)


def prox(kind, z, threshold):
    """The proximal map of threshold·R (elastic net: threshold·(‖·‖₁ + MIX/2 ‖·‖²))."""
    if kind == "l1":
        return np.sign(z) * np.maximum(np.abs(z) - threshold, 0.0)
    if kind == "elastic_net":
        return np.sign(z) * np.maximum(np.abs(z) - threshold, 0.0) / (1.0 + threshold * MIX)
    norms = np.sqrt(np.sum(z**2, axis=tuple(range(z.ndim - 1)), keepdims=True))
    return np.where(norms > threshold, 1.0 - threshold / np.where(norms > 0, norms, 1.0), 0.0) * z


def rms(arrays):
    return np.sqrt(sum(np.sum(a**2) for a in arrays) / sum(a.size for a in arrays))


def hand_strength(kind, coupling, g, w, target=E):
    """λ from the definition (module docstring of regan_jax.penalties.adaptive)."""
    unit = rms([unit_gradient(kind, x) for x in w])
    if coupling == "coupled":
        return target * rms(g) / unit
    return target * rms(w) / (LR * unit)


def groups(tree, granularity):
    """The masked kernels as lists of float64 arrays: one list, or one per layer."""
    kernels = [x for p, x in sorted(leaves_by_path(tree).items()) if p.endswith("kernel")]
    return [kernels] if granularity == "network" else [[x] for x in kernels]


def gradients(seed=3):
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda x: jnp.asarray(rng.normal(scale=0.05, size=x.shape), jnp.float32), make_params()
    )


def additive(kind, coupling, granularity, target=E, mask=None):
    kwargs = dict(coupling=coupling, learning_rate=LR, granularity=granularity)
    return {
        "l2": lambda: P.adaptive_l2(target, mask, **kwargs),
        "l1": lambda: P.adaptive_l1(target, mask, **kwargs),
        "elastic_net": lambda: P.adaptive_elastic_net(target, MIX, mask, **kwargs),
        "group_l1": lambda: P.adaptive_group_l1(target, mask, **kwargs),
    }[kind]()


def proximal(kind, granularity, target=E):
    return {
        "l1": lambda: P.adaptive_prox_l1(target, LR, granularity=granularity),
        "elastic_net": lambda: P.adaptive_prox_elastic_net(
            target, MIX, LR, granularity=granularity
        ),
        "group_l1": lambda: P.adaptive_prox_group_l1(target, LR, granularity=granularity),
    }[kind]()


def realised(state):
    """λ_t per layer in flatten order of the masked kernels (or the one network λ_t)."""
    found = optax.tree_utils.tree_get(state, "realised_strength")
    return [float(x) for x in jax.tree.leaves(found)]


ADDITIVE = [
    (kind, coupling)
    for kind in ("l2", "l1", "elastic_net", "group_l1")
    for coupling in ("coupled", "decoupled")
]
PROXIMAL = ["l1", "elastic_net", "group_l1"]
GRANULARITIES = ["network", "layer"]


# ----------------------------------------------------------------------------
# One step hits the target; constant statistics give the fixed-λ transform
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("kind, coupling", ADDITIVE)
def test_additive_one_step_gives_the_target_ratio(kind, coupling, granularity):
    params, grads = params_with_zeros(), gradients()
    transform = additive(kind, coupling, granularity)
    out, state = transform.update(grads, transform.init(params), params)
    for w, g, o, lam in zip(
        groups(params, granularity),
        groups(grads, granularity),
        groups(out, granularity),
        realised(state),
        strict=True,
    ):
        term = [b - a for a, b in zip(g, o)]
        if coupling == "coupled":  # RMS(penalty gradient) = e · RMS(loss gradient)
            assert rms(term) / rms(g) == pytest.approx(E, rel=1e-5)
        else:  # shrinkage per update η·RMS(term) = e · RMS(w)
            assert LR * rms(term) / rms(w) == pytest.approx(E, rel=1e-5)
        assert lam == pytest.approx(hand_strength(kind, coupling, g, w), rel=1e-5)
    # what the loop logs as lambda_<net>: the network's λ_t, or the layers' mean
    assert float(P.realised_strength(state)) == pytest.approx(np.mean(realised(state)), rel=1e-6)
    leaves, before = leaves_by_path(out), leaves_by_path(grads)
    for path in leaves:
        if path.endswith("bias"):  # outside the default mask: untouched
            np.testing.assert_array_equal(leaves[path], before[path])


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("kind", PROXIMAL)
def test_proximal_one_step_shrinks_by_the_target(kind, granularity):
    params = params_with_zeros()
    updates = jax.tree.map(lambda g: -LR * g, gradients())
    transform = proximal(kind, granularity)
    out, state = transform.update(updates, transform.init(params), params)
    new = leaves_by_path(optax.apply_updates(params, out))
    z = leaves_by_path(jax.tree.map(jnp.add, params, updates))
    w_by_path = leaves_by_path(params)
    kernels = sorted(p for p in w_by_path if p.endswith("kernel"))
    layers = [kernels] if granularity == "network" else [[p] for p in kernels]
    for paths, lam in zip(layers, realised(state), strict=True):
        w = [w_by_path[p] for p in paths]
        # shrinkage per update: η λ_t RMS(∂R₁(w)) = e · RMS(w)
        unit = rms([unit_gradient(kind, x) for x in w])
        assert LR * lam * unit / rms(w) == pytest.approx(E, rel=1e-5)
        expected = hand_strength(kind, "decoupled", None, w)
        for p in paths:
            np.testing.assert_allclose(
                new[p], prox(kind, z[p], LR * expected), rtol=1e-5, atol=1e-7
            )
    for p in w_by_path:
        if p.endswith("bias"):
            np.testing.assert_allclose(new[p], z[p], rtol=1e-6)


def fixed(kind, coupling, strength):
    if coupling == "proximal":
        return {
            "l1": lambda: P.prox_l1(strength, LR),
            "elastic_net": lambda: P.prox_elastic_net(strength, MIX * strength, LR),
            "group_l1": lambda: P.prox_group_l1(strength, LR),
        }[kind]()
    return {
        "l2": lambda: P.l2(strength),
        "l1": lambda: P.l1(strength),
        "elastic_net": lambda: P.elastic_net(strength, MIX * strength),
        "group_l1": lambda: P.group_l1(strength),
    }[kind]()


@pytest.mark.parametrize("kind, coupling", ADDITIVE + [(kind, "proximal") for kind in PROXIMAL])
def test_constant_statistics_reduce_to_the_fixed_transform(kind, coupling):
    params, grads = params_with_zeros(), gradients()
    w, g = groups(params, "network")[0], groups(grads, "network")[0]
    lam = hand_strength(kind, "coupled" if coupling == "coupled" else "decoupled", g, w)
    if coupling == "proximal":
        transform = proximal(kind, "network")
    else:
        transform = additive(kind, coupling, "network")
    reference = fixed(kind, coupling, lam)
    state, ref_state = transform.init(params), reference.init(params)
    for _ in range(3):  # the same gradients and weights at every update
        out, state = transform.update(grads, state, params)
        expected, ref_state = reference.update(grads, ref_state, params)
        for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-8)


def test_a_path_mask_pools_and_penalises_only_its_leaves():
    params, grads = params_with_zeros(), gradients()
    transform = P.adaptive_l2(E, P.path_mask("Dense_1/kernel"))
    out, state = transform.update(grads, transform.init(params), params)
    before, after = leaves_by_path(grads), leaves_by_path(out)
    w = leaves_by_path(params)["Dense_1/kernel"]
    g = before["Dense_1/kernel"]
    assert rms([after["Dense_1/kernel"] - g]) / rms([g]) == pytest.approx(E, rel=1e-5)
    assert realised(state) == [pytest.approx(E * rms([g]) / rms([w]), rel=1e-5)]
    for path in before:
        if path != "Dense_1/kernel":
            np.testing.assert_array_equal(after[path], before[path])
    with pytest.raises(ValueError, match="matches no parameter"):
        P.adaptive_l2(E, P.path_mask("nothing")).init(params)


def test_a_schedule_of_the_target_is_followed_update_by_update():
    params, grads = params_with_zeros(), gradients()
    schedule = optax.linear_schedule(0.1, 0.9, 4)
    transform = P.adaptive_l1(schedule)
    state = transform.init(params)
    w, g = groups(params, "network")[0], groups(grads, "network")[0]
    for k in range(6):
        _, state = transform.update(grads, state, params)
        target = float(schedule(k))
        assert realised(state) == [
            pytest.approx(hand_strength("l1", "coupled", g, w, target), rel=1e-5)
        ]


def test_zero_statistics_give_zero_strength():
    params = jax.tree.map(jnp.zeros_like, make_params())
    grads = gradients()
    transform = P.adaptive_l1(E)
    out, state = transform.update(grads, transform.init(params), params)
    assert realised(state) == [0.0]
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(grads), strict=True):
        np.testing.assert_array_equal(a, b)


def test_proximal_adaptive_steps_must_come_last():
    step = P.adaptive_prox_l1(E, LR)
    assert P.is_terminal(step)
    with pytest.raises(ValueError, match="must come last"):
        P.chain(optax.scale(-LR), step, optax.scale_by_adam())
    P.chain(optax.scale_by_adam(), optax.scale(-LR), step)


# ----------------------------------------------------------------------------
# The builder: e from the config, injected per member, per update for decoupled kinds
# ----------------------------------------------------------------------------


def _configs(kind, coupling="coupled", strength=E, **extra):
    opt, pen = P.default_optimizer_config(), P.default_penalty_config()
    opt.name, opt.learning_rate = "sgd", LR
    pen.kind, pen.coupling, pen.strength, pen.adaptive = kind, coupling, strength, True
    for key, value in extra.items():
        pen[key] = value
    return opt, pen


def test_a_decoupled_builder_penalty_spreads_e_over_the_runs_updates():
    updates = 250
    opt = P.build_optimizer(*_configs("l2", "decoupled"), run_updates=updates)
    params = make_params()
    state = opt.init(params)
    _, state = opt.update(gradients(), state, params)
    # L2 decoupled: shrinkage η λ per update = e / U, so λ = e / (U η)
    assert float(P.realised_hyperparams(state)["strength"]) == pytest.approx(
        E / (updates * LR), rel=1e-6
    )
    with pytest.raises(ValueError, match="needs run_updates >= 1"):
        P.build_optimizer(*_configs("l2", "decoupled"))


def test_a_config_schedule_multiplies_the_target():
    opt_cfg, pen_cfg = _configs("l1", schedule="linear_warmup", warmup_steps=4)
    opt = P.build_optimizer(opt_cfg, pen_cfg)
    params, grads = params_with_zeros(), gradients()
    w, g = groups(params, "network")[0], groups(grads, "network")[0]
    state = opt.init(params)
    for k in range(6):
        _, state = opt.update(grads, state, params)
        target = E * min(k / 4, 1.0)
        assert float(P.realised_hyperparams(state)["strength"]) == pytest.approx(
            hand_strength("l1", "coupled", g, w, target), rel=1e-5, abs=1e-12
        )


@pytest.mark.parametrize("kind, coupling", [("l2", "coupled"), ("prox_l1", "coupled")])
def test_vmapped_members_each_hit_their_own_target(kind, coupling):
    updates, targets = 100, np.array([0.05, 0.3, 2.0])
    opt = P.build_optimizer(*_configs(kind, coupling), run_updates=updates)
    members = [make_params(seed) for seed in range(3)]
    grads = [gradients(seed + 10) for seed in range(3)]
    params = sweep.stack_members(members)
    state = P.set_hyperparams(jax.vmap(opt.init)(params), strength=targets)
    _, state = jax.vmap(opt.update)(sweep.stack_members(grads), state, params)
    lams = np.asarray(P.realised_hyperparams(state)["strength"])
    for k, target in enumerate(targets):
        w, g = groups(members[k], "network")[0], groups(grads[k], "network")[0]
        if kind == "l2":  # coupled: λ RMS(w) = e RMS(g)
            assert lams[k] * rms(w) / rms(g) == pytest.approx(target, rel=1e-5)
        else:  # proximal: η λ RMS(sign w) = (e / U) RMS(w)
            unit = rms([np.sign(x) for x in w])
            assert LR * lams[k] * unit / rms(w) == pytest.approx(target / updates, rel=1e-5)


def test_adaptive_elastic_net_keeps_the_configured_mix():
    opt = P.build_optimizer(*_configs("elastic_net", strength=0.2, l2_strength=0.2 * MIX))
    params, grads = params_with_zeros(), gradients()
    state = opt.init(params)
    _, state = opt.update(grads, state, params)
    hp = P.realised_hyperparams(state)
    w, g = groups(params, "network")[0], groups(grads, "network")[0]
    assert float(hp["strength"]) == pytest.approx(
        hand_strength("elastic_net", "coupled", g, w, 0.2), rel=1e-5
    )
    assert float(hp["l2_strength"]) == pytest.approx(MIX * float(hp["strength"]), rel=1e-6)


@pytest.mark.parametrize(
    "kind, fields, message",
    [
        ("max_norm", {}, "adaptive=true is not available for kind 'max_norm'"),
        ("l2_ball", {}, "adaptive=true is not available for kind 'l2_ball'"),
        ("none", {"strength": 0.0}, "adaptive=true is not available for kind 'none'"),
        ("prox_elastic_net", {"strength": 0.0, "l2_strength": 0.5}, "strength=0 with l2_strength"),
        ("l2", {"granularity": "unit"}, "granularity"),
    ],
)
def test_invalid_adaptive_configs_are_refused(kind, fields, message):
    _, pen = _configs(kind, **fields)
    with pytest.raises(ValueError, match=message):
        P.validate_penalty_config(pen)


def test_granularity_without_adaptive_is_refused():
    pen = P.default_penalty_config()
    pen.kind, pen.strength, pen.granularity = "l2", 0.1, "layer"
    with pytest.raises(ValueError, match="has no effect without adaptive=true"):
        P.validate_penalty_config(pen)


def test_train_cli_refuses_adaptive_max_norm_with_exit_2(tmp_path, capsys):
    workdir = tmp_path / "run"
    argv = [
        "--config",
        "ring8_gan:smoke",
        "--workdir",
        str(workdir),
        "--config.penalty.d.kind=max_norm",
        "--config.penalty.d.adaptive=true",
    ]
    assert train_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "adaptive=true is not available for kind 'max_norm'" in err
    assert len(err.splitlines()) == 1
    assert not workdir.exists()


# ----------------------------------------------------------------------------
# Units and configs
# ----------------------------------------------------------------------------


def test_the_effective_strength_of_an_adaptive_penalty_is_its_target():
    opt = P.default_optimizer_config()
    _, coupled = _configs("l1", strength=0.3)
    assert effective_strength.effective_strength(coupled, opt, 100, None) == 0.3
    _, warm = _configs("prox_l1", strength=0.3, schedule="linear_warmup", warmup_steps=50)
    fields = {"updates_per_step": 2.0}
    # shrinkage e·m(k)/U at update k of U = 200: e × mean of m over the updates
    m = np.minimum(np.arange(200) / 50.0, 1.0)
    got = effective_strength.effective_strength(warm, opt, 100, fields)
    assert got == pytest.approx(0.3 * np.mean(m), rel=1e-6)
    assert effective_strength.raw_strength(warm, opt, 100, fields, got) == pytest.approx(0.3)
    assert effective_strength.adaptive_effective_strength(warm, 100, None) is None


def test_summary_reports_an_adaptive_penalty_without_a_record():
    config = experiments.load_config(
        "ring8_gan:smoke",
        [("penalty.d.kind", "l2"), ("penalty.d.strength", "0.3"), ("penalty.d.adaptive", "true")],
    )
    assert effective_strength.summary_fields(config) == {
        "effective_strength_d": 0.3,
        "effective_strength": 0.3,
    }
    config.penalty.g.kind, config.penalty.g.strength = "l1", 0.1  # fixed: needs a record
    assert effective_strength.summary_fields(config) == {
        "effective_strength_d": 0.3,
        "effective_strength": None,
    }
    assert effective_strength.summary_fields(experiments.load_config("ring8_gan:smoke")) == {}


def test_a_saved_config_without_the_adaptive_keys_loads_as_fixed():
    saved = config_lib.to_json_dict(experiments.load_config("ring8_gan:smoke"))
    for net in saved["penalty"]:
        del saved["penalty"][net]["adaptive"], saved["penalty"][net]["granularity"]
    loaded = config_lib.from_json_dict(saved)
    config_lib.validate(loaded)
    assert all(not loaded.penalty[n].adaptive for n in loaded.penalty)
    assert all(loaded.penalty[n].granularity == "network" for n in loaded.penalty)


# ----------------------------------------------------------------------------
# A run: the loop logs λ_t, and the effective strength measured in it is e
# ----------------------------------------------------------------------------


def last_gradient() -> optax.GradientTransformation:
    """An identity transform that keeps the last incoming updates (the loss gradient, first)."""

    def init_fn(params):
        return {"last": jax.tree.map(jnp.zeros_like, params)}

    def update_fn(updates, state, params=None):
        del params, state
        return updates, {"last": updates}

    return optax.GradientTransformation(init_fn, update_fn)


RUN = [
    ("penalty.d.kind", "l2"),
    ("penalty.d.strength", "0.3"),
    ("penalty.d.adaptive", "true"),
    ("steps", "6"),
]


def test_a_run_holds_adaptive_weight_decay_at_its_target_within_1e_4():
    # Ghiasi et al.'s adaptive weight decay (coupled L2) on the discriminator:
    # from the loss gradient recorded in front of the optimizer and the weights
    # before each update, RMS(λ_t w) / RMS(g) is measured in float64 at every step.
    config = experiments.load_config("ring8_gan:smoke", RUN)
    program = program_lib.build_program(
        config, wrap_optimizer=lambda opt: optax.chain(last_gradient(), opt)
    )
    state = sweep.stack_members([program.init(jax.random.key(0))])  # config's own e
    batches = data.make_iterator(
        config.data, 0, member_seeds=[0], rows_per_step=program.rows_per_step, source=program.source
    )
    run_step = parallel.member_parallel(program.step, 1)
    measured = []
    for _ in range(config.steps):
        before = sweep.member(jax.device_get(state), 0).params["d"]
        state, metrics = run_step(state, next(batches))
        host = sweep.member(jax.device_get(state), 0)
        g = [
            np.asarray(x, np.float64) for _, x in P.selected_leaves(host.opt_state["d"][0]["last"])
        ]
        w = [np.asarray(x, np.float64) for _, x in P.selected_leaves(before)]
        lam = float(np.asarray(metrics["lambda_d"]).reshape(-1)[0])
        measured.append(lam * rms(w) / rms(g))
    np.testing.assert_allclose(measured, 0.3, rtol=1e-4)


def test_the_loop_logs_lambda_and_reports_e(tmp_path):
    config = experiments.load_config("ring8_gan:smoke", [*RUN, ("log.every", "2")])
    train.train_and_evaluate(config, str(tmp_path))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lams = [row["lambda_d"] for row in rows if "lambda_d" in row]
    assert len(lams) >= 3 and all(np.isfinite(lams)) and all(x > 0 for x in lams)
    assert all("lambda_g" not in row for row in rows)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["effective_strength_d"] == 0.3


def test_a_vmapped_group_runs_each_member_at_its_own_e(tmp_path):
    # Decoupled L2 (AdamW's weight decay) holds e with λ_t = e / (U η): each
    # member's logged λ_t shows that its own injected e reached its transform.
    targets = (0.1, 0.8)
    configs = [
        experiments.load_config(
            "ring8_gan:smoke",
            [
                ("penalty.d.kind", "l2"),
                ("penalty.d.coupling", "decoupled"),
                ("penalty.d.strength", str(e)),
                ("penalty.d.adaptive", "true"),
                ("steps", "4"),
                ("log.every", "2"),
            ],
        )
        for e in targets
    ]
    workdirs = [tmp_path / f"m{k}" for k in range(len(targets))]
    train.train_members(configs, [str(w) for w in workdirs])
    config = configs[0]
    updates = config.steps * families.get(config.model_type).updates_per_step(config, "d")
    for e, w in zip(targets, workdirs, strict=True):
        rows = [json.loads(line) for line in (w / "metrics.jsonl").read_text().splitlines()]
        lams = [row["lambda_d"] for row in rows if "lambda_d" in row]
        expected = e / (updates * config.optimizer.d.learning_rate)
        np.testing.assert_allclose(lams, expected, rtol=1e-6)
