"""Training steps equal plain, unoptimised references; divergence freezes; bad input fails early."""

import functools

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from _tiny_runs import batches, tiny_gan, tiny_vae, unkey

from regan_jax import families, losses, steps
from regan_jax.families import gan as gan_family
from regan_jax.families import vae as vae_family

ROWS = 8  # per discriminator update


def _fold(key, k, purpose):
    return jax.random.fold_in(jax.random.fold_in(key, k), purpose)


def reference_gan_step(state, batch, *, models, optimizers, loss_cfg):
    """The GAN step written plainly: separate D calls, a fresh G forward, Python loops.

    Follows the documented contract: update k uses rows k::n, latents from
    fold_in(fold_in(key, k), 0), ε from fold_in(fold_in(key, k), 1), cGAN fakes
    conditioned on the real labels; spectral-norm statistics advance once per D update.
    """
    g, d = models["g"], models["d"]
    objective = losses.gan_loss(loss_cfg.kind)
    penalty = losses.gradient_penalty_fn(loss_cfg.gradient_penalty)
    key = jax.random.fold_in(state.key, state.step)
    n = loss_cfg.d_steps
    g_params, d_params = state.params["g"], state.params["d"]
    g_opt, d_opt = state.opt_state["g"], state.opt_state["d"]
    d_state = state.model_state.get("d", {})
    for k in range(n):
        real = batch["image"][k::n]
        y = batch["label"][k::n] if g.num_classes else None
        z = jax.random.normal(_fold(key, k, 0), (real.shape[0], g.latent_dim))
        fake = g.apply({"params": g_params}, z, y)

        def d_loss(p, real=real, fake=fake, y=y, k=k, d_state=d_state):
            variables = {"params": p, **d_state}
            real_logits, new_state = d.apply(
                variables, real, y, update_stats=True, mutable=list(d_state)
            )
            fake_logits, _ = d.apply(variables, fake, y, update_stats=True, mutable=list(d_state))
            gp = penalty(
                lambda x: d.apply({"params": p, **new_state}, x, y), real, fake, _fold(key, k, 1)
            )
            adversarial = objective.d(real_logits, fake_logits)
            return adversarial + loss_cfg.gp_weight * gp, (new_state, adversarial, gp)

        grads, (d_state, adversarial, gp) = jax.grad(d_loss, has_aux=True)(d_params)
        updates, d_opt = optimizers["d"].update(grads, d_opt, d_params)
        d_params = optax.apply_updates(d_params, updates)

    def g_loss(p):
        fake = g.apply({"params": p}, z, y)
        return objective.g(d.apply({"params": d_params, **d_state}, fake, y))

    g_value, grads = jax.value_and_grad(g_loss)(g_params)
    updates, g_opt = optimizers["g"].update(grads, g_opt, g_params)
    g_params = optax.apply_updates(g_params, updates)
    new = state.replace(
        step=state.step + 1,
        params={"g": g_params, "d": d_params},
        opt_state={"g": g_opt, "d": d_opt},
        model_state={"d": d_state} if d_state else {},
    )
    return new, {"d_loss": adversarial, "gp": gp, "g_loss": g_value}


GAN_CASES = {
    # Everything at once (one compile): labels, spectral-norm statistics, a random
    # gradient penalty, two D updates per G update. R1 runs in test_parallel.
    "cgan_sn_wgan_gp_2d": dict(
        kind="cgan", gradient_penalty="wgan_gp", d_steps=2, spectral_norm=True, loss="hinge"
    ),
}
CASE = "cgan_sn_wgan_gp_2d"


@functools.lru_cache(maxsize=None)
def gan_case(name):
    """``(jitted step, reference, init state, batches)``, compiled once per module."""
    case = dict(GAN_CASES[name])
    loss = case.pop("loss")
    nets, optimizers, loss_cfg, penalty_cfgs = tiny_gan(**case)
    loss_cfg.kind = loss
    stream = batches(0, 3, case["d_steps"] * ROWS)
    state = gan_family.init_gan_state(nets, optimizers, jax.random.key(0), stream[0])
    step = jax.jit(
        functools.partial(
            gan_family.gan_step,
            models=nets,
            optimizers=optimizers,
            loss_cfg=loss_cfg,
            penalty_cfgs=penalty_cfgs,
        )
    )
    reference = jax.jit(
        functools.partial(reference_gan_step, models=nets, optimizers=optimizers, loss_cfg=loss_cfg)
    )
    return step, reference, state, stream


@pytest.mark.parametrize("name", sorted(GAN_CASES))
def test_gan_step_matches_plain_reference(name):
    step, reference, state, stream = gan_case(name)
    ours, theirs = state, state
    for batch in stream:
        ours, metrics = step(ours, batch)
        theirs, expected = reference(theirs, batch)
        for key, value in expected.items():
            np.testing.assert_allclose(metrics[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
    chex.assert_trees_all_close(unkey(ours), unkey(theirs), rtol=1e-5, atol=1e-6)
    assert int(ours.step) == len(stream) and not bool(ours.diverged)
    assert step._cache_size() == 1  # the state's dtypes survive a step: no retrace
    # the configured D penalty is logged: (λ/2)‖W‖² over D's kernels
    kernels = [w for w in jax.tree.leaves(ours.params["d"]) if w.ndim >= 2]
    np.testing.assert_allclose(
        metrics["penalty_d"],
        0.5 * 1e-2 * sum(np.sum(np.asarray(w, np.float64) ** 2) for w in kernels),
        rtol=1e-5,
    )


def reference_vae_step(state, batch, *, models, optimizers, std):
    """The VAE step written plainly, with the Gaussian NLL and KL written out here."""
    encoder, decoder = models["encoder"], models["decoder"]
    key = jax.random.fold_in(state.key, state.step)
    x = batch["image"]

    def neg_elbo(params):
        mean, logvar = encoder.apply({"params": params["encoder"]}, x)
        eps = jax.random.normal(key, mean.shape)
        out = decoder.apply({"params": params["decoder"]}, mean + jnp.exp(logvar / 2) * eps)
        nll = 0.5 * ((x - out) / std) ** 2 + jnp.log(std) + 0.5 * jnp.log(2 * jnp.pi)
        kl = 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1 - logvar, axis=-1)
        return jnp.mean(jnp.sum(nll, axis=-1) + kl)

    loss, grads = jax.value_and_grad(neg_elbo)(state.params)
    params, opt_state = {}, {}
    for net in grads:
        updates, opt_state[net] = optimizers[net].update(
            grads[net], state.opt_state[net], state.params[net]
        )
        params[net] = optax.apply_updates(state.params[net], updates)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), loss


def test_vae_step_matches_plain_reference():
    nets, optimizers = tiny_vae()
    stream = batches(3, 2, ROWS)
    state = vae_family.init_vae_state(nets, optimizers, jax.random.key(4), stream[0])
    step = jax.jit(
        functools.partial(
            vae_family.vae_step,
            models=nets,
            optimizers=optimizers,
            likelihood="gaussian",
            gaussian_std=0.5,
        )
    )
    reference = jax.jit(
        functools.partial(reference_vae_step, models=nets, optimizers=optimizers, std=0.5)
    )
    ours, theirs = state, state
    for batch in stream:
        ours, metrics = step(ours, batch)
        theirs, loss = reference(theirs, batch)
        np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
        np.testing.assert_allclose(metrics["recon"] + metrics["kl"], loss, rtol=1e-5)
    chex.assert_trees_all_close(unkey(ours), unkey(theirs), rtol=1e-5, atol=1e-6)


def test_nonfinite_loss_freezes_the_state():
    step, _, state, stream = gan_case(CASE)
    state, _ = step(state, stream[0])
    before = state
    poisoned = dict(stream[1], image=stream[1]["image"].copy())
    poisoned["image"][3, 0] = np.nan
    frozen, metrics = step(state, poisoned)
    assert not np.isfinite(float(metrics["d_loss"]))
    assert bool(frozen.diverged)
    assert int(frozen.diverged_step) == 1 == int(frozen.step)
    assert steps.divergence_reason(frozen.diverged_reason) == "nonfinite_loss"
    unmarked = frozen.replace(
        diverged=before.diverged,
        diverged_step=before.diverged_step,
        diverged_reason=before.diverged_reason,
    )
    chex.assert_trees_all_equal(unkey(unmarked), unkey(before))
    later, _ = step(frozen, stream[2])  # a good batch leaves a diverged state alone
    chex.assert_trees_all_equal(unkey(later), unkey(frozen))


def test_nonfinite_params_freeze_with_their_reason():
    step, _, state, stream = gan_case(CASE)
    # An infinite learning rate for G, written into the state past set_hyperparams'
    # checks: the losses (computed before G's update) stay finite, G's params do not.
    g_opt = state.opt_state["g"]
    exploding = g_opt._replace(
        hyperparams={**g_opt.hyperparams, "learning_rate": jnp.float32(jnp.inf)}
    )
    start = state.replace(opt_state={**state.opt_state, "g": exploding})
    frozen, metrics = step(start, stream[0])
    assert np.isfinite(float(metrics["d_loss"])) and np.isfinite(float(metrics["g_loss"]))
    assert bool(frozen.diverged) and int(frozen.diverged_step) == 0 == int(frozen.step)
    assert steps.divergence_reason(frozen.diverged_reason) == "nonfinite_params"
    chex.assert_trees_all_equal(frozen.params, state.params)


def test_divergence_reason_names():
    assert [steps.divergence_reason(c) for c in range(3)] == list(steps.DIVERGENCE_REASONS)
    with pytest.raises(ValueError, match="reason code 7"):
        steps.divergence_reason(7)


def test_bad_loss_config_fails_before_compute():
    _, _, loss_cfg, _ = tiny_gan()
    for field, value, message in (
        ("kind", "fisher", "GAN loss 'fisher'"),
        ("gradient_penalty", "dragan", "gradient penalty 'dragan'"),
        ("d_steps", 0, "d_steps must be >= 1"),
    ):
        bad = loss_cfg.copy_and_resolve_references()
        bad[field] = value
        with pytest.raises(ValueError, match=message):
            gan_family.check_loss_config(bad)


def test_family_validation_rejects_unknown_names():
    _, _, loss_cfg, penalty_cfgs = tiny_gan()
    loss_cfg.kind = "fisher"
    config = ml_collections.ConfigDict(
        {"model_type": "gan", "loss": loss_cfg, "penalty": penalty_cfgs}
    )
    with pytest.raises(ValueError, match="config.loss.kind: .*fisher"):
        families.get(config.model_type).validate(config)
    with pytest.raises(ValueError, match="model_type 'flow'"):
        families.get("flow")


def test_batch_not_a_multiple_of_d_steps_fails_at_trace():
    step, _, state, stream = gan_case(CASE)
    short = {k: v[:-1] for k, v in stream[0].items()}
    with pytest.raises(ValueError, match="multiple of 2 rows"):
        step(state, short)


def test_wrong_data_shape_fails_at_trace():
    step, _, state, stream = gan_case(CASE)
    wide = dict(stream[0], image=np.zeros((2 * ROWS, 3), np.float32))
    with pytest.raises(ValueError, match="shape \\(3,\\); the model expects \\(2,\\)"):
        step(state, wide)
    with pytest.raises(ValueError, match="'label' \\(conditional model\\)"):
        step(state, {"image": stream[0]["image"]})


def test_init_checks_network_names():
    nets, optimizers, _, _ = tiny_gan()
    with pytest.raises(ValueError, match="expected \\['d', 'g'\\]"):
        gan_family.init_gan_state(
            {"g": nets["g"]}, optimizers, jax.random.key(0), batches(0, 1, ROWS)[0]
        )


def _concatenated_all_finite(tree):
    """The finite check as 6742656 wrote it: every leaf raveled, concatenated, one reduction."""
    return jnp.all(jnp.isfinite(jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])))


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("leaf", range(3))
def test_all_finite_is_numpys_test_of_every_leaf_alone_and_vmapped(bad, leaf):
    clean = {
        "a": np.ones((3, 2), np.float32),
        "b": {"c": np.arange(4, dtype=np.float32)},
        "d": np.float32(-2.5),
    }
    leaves, treedef = jax.tree.flatten(clean)
    leaves[leaf] = np.array(leaves[leaf], copy=True)
    leaves[leaf].flat[-1] = bad
    poisoned = jax.tree.unflatten(treedef, leaves)
    for tree, finite in ((clean, True), (poisoned, False)):
        assert all(np.isfinite(x).all() for x in jax.tree.leaves(tree)) is finite  # numpy
        assert bool(jax.jit(steps._all_finite)(tree)) is finite
    # A member axis (a vmapped group): one answer per member, the poisoned one False.
    group = jax.tree.map(lambda *xs: np.stack(xs), clean, poisoned, clean)
    np.testing.assert_array_equal(jax.vmap(steps._all_finite)(group), [True, False, True])


@pytest.mark.parametrize("members", [1, 3])
def test_the_per_leaf_finite_check_changes_no_number_of_a_run_or_a_group(members, monkeypatch):
    """Only the divergence boolean depends on how the check is written: three steps of a
    tiny MLP GAN (one run, and a vmapped group of three seeds) end bitwise equal with the
    per-leaf check and with the concatenated one it replaced."""
    nets, optimizers, loss_cfg, penalty_cfgs = tiny_gan()
    stream = batches(0, 3, ROWS)
    init = functools.partial(gan_family.init_gan_state, nets, optimizers, example_batch=stream[0])
    step = functools.partial(
        gan_family.gan_step,
        models=nets,
        optimizers=optimizers,
        loss_cfg=loss_cfg,
        penalty_cfgs=penalty_cfgs,
    )
    if members == 1:
        start = init(jax.random.key(0))
    else:
        step = jax.vmap(step, in_axes=(0, None))
        start = jax.vmap(init)(jax.random.split(jax.random.key(0), members))

    def run():
        # A fresh function to jit: traced anew, with the check steps._all_finite is now.
        state, jitted = start, jax.jit(lambda s, b: step(s, b))
        for batch in stream:
            state, _ = jitted(state, batch)
        return unkey(state)

    now = run()
    traced = []
    monkeypatch.setattr(
        steps, "_all_finite", lambda tree: traced.append(1) or _concatenated_all_finite(tree)
    )
    before = run()
    assert traced  # the second program was traced with the concatenated check
    assert not np.any(np.asarray(now.diverged)) and np.all(np.asarray(now.step) == len(stream))
    chex.assert_trees_all_equal(now, before)
