"""Tiny runs shared by the steps/parallel/sweep/checkpoint tests, and their subprocess entry.

Imported by the tests (which put this directory on ``sys.path``) and run as a
script by the tests that need their own process::

    python tests/_tiny_runs.py parallel OUT.npz          # 1 device vs 4 (shard_map, pmap, meshes)
    python tests/_tiny_runs.py train STEPS [--die-saving S] WORKDIR...
    python tests/_tiny_runs.py multihost OUT.npz PROCESS_ID NUM_PROCESSES PORT

Everything is sized to compile and run in seconds on a CPU.
"""

import functools
import json
import os
import signal
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

from regan_jax import checkpoint, families, losses, models, penalties
from regan_jax.families import gan as gan_family
from regan_jax.families import vae as vae_family

NUM_CLASSES = 3
STEPS = 3


def tiny_gan(
    kind="gan",
    gradient_penalty="none",
    d_steps=1,
    spectral_norm=False,
    shape=(2,),
    arch="mlp",
    d_strength=1e-2,
    learning_rate=1e-2,
):
    """``(models, optimizers, loss_cfg, penalty_cfgs)`` of a GAN a few units wide.

    D carries a coupled L2 penalty so that the optimizer's hyperparameters matter.
    """
    model_cfg = models.default_config()
    model_cfg.update(
        arch=arch, latent_dim=3, g_width=8, d_width=8, mlp_layers=1, spectral_norm=spectral_norm
    )
    nets = families.get(kind).make_models(model_cfg, models.DataSpec(shape, NUM_CLASSES))
    optimizer_cfg = penalties.default_optimizer_config()
    optimizer_cfg.learning_rate = learning_rate
    penalty_cfgs = {
        "g": penalties.default_penalty_config(),
        "d": penalties.default_penalty_config(),
    }
    penalty_cfgs["d"].update(kind="l2", strength=d_strength)
    optimizers = {
        net: penalties.build_optimizer(optimizer_cfg, cfg) for net, cfg in penalty_cfgs.items()
    }
    loss_cfg = losses.default_config()
    loss_cfg.update(gradient_penalty=gradient_penalty, d_steps=d_steps)
    return nets, optimizers, loss_cfg, penalty_cfgs


def tiny_vae(shape=(2,), likelihood="gaussian"):
    """``(models, optimizers)`` of a VAE a few units wide."""
    model_cfg = models.default_config()
    model_cfg.update(
        arch="mlp", latent_dim=3, g_width=8, d_width=8, mlp_layers=1, likelihood=likelihood
    )
    nets = families.get("vae").make_models(model_cfg, models.DataSpec(shape, 0))
    optimizer_cfg = penalties.default_optimizer_config()
    optimizer_cfg.learning_rate = 1e-2
    return nets, {net: penalties.build_optimizer(optimizer_cfg) for net in nets}


def batches(seed, count, rows, shape=(2,)):
    """``count`` batches ``{'image': [rows, *shape], 'label': [rows]}`` from numpy's PCG64."""
    rng = np.random.default_rng(seed)
    return [
        {
            "image": rng.uniform(-1, 1, (rows,) + shape).astype(np.float32),
            "label": rng.integers(0, NUM_CLASSES, rows).astype(np.int32),
        }
        for _ in range(count)
    ]


def run(step, state, stream):
    """``state`` after one ``step`` per batch of ``stream``, and the last metrics."""
    metrics = None
    for batch in stream:
        state, metrics = step(state, batch)
    return state, metrics


def unkey(tree):
    """``tree`` with typed RNG keys replaced by their key data (for chex and numpy)."""
    return jax.tree.map(
        lambda x: (
            jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        ),
        tree,
    )


def flat(tree) -> dict[str, np.ndarray]:
    """``{'/'-joined path: numpy array}`` of a pytree's leaves (keys as key data)."""
    return {
        "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(unkey(tree))[0]
    }


# ----------------------------------------------------------------------------
# Data parallelism: the same global batches on 1 device and on 4
# ----------------------------------------------------------------------------


def parallel_cases():
    """``{name: (step, init_state, stream)}``: a cGAN with everything on, and a VAE."""
    nets, optimizers, loss_cfg, penalty_cfgs = tiny_gan("cgan", "r1", d_steps=2, spectral_norm=True)
    gan_stream = batches(1, STEPS, 2 * 8)
    gan = (
        functools.partial(
            gan_family.gan_step,
            models=nets,
            optimizers=optimizers,
            loss_cfg=loss_cfg,
            penalty_cfgs=penalty_cfgs,
        ),
        gan_family.init_gan_state(nets, optimizers, jax.random.key(0), gan_stream[0]),
        gan_stream,
    )
    vae_nets, vae_optimizers = tiny_vae()
    vae_stream = batches(2, STEPS, 8)
    vae = (
        functools.partial(
            vae_family.vae_step,
            models=vae_nets,
            optimizers=vae_optimizers,
            likelihood="gaussian",
            gaussian_std=0.5,
        ),
        vae_family.init_vae_state(vae_nets, vae_optimizers, jax.random.key(1), vae_stream[0]),
        vae_stream,
    )
    return {"gan": gan, "vae": vae}


def main_parallel(out):
    """Saves ``{case}/{single,shard_map,pmap}/{state,metrics}/...`` after STEPS steps each.

    The VAE skips pmap (the same step code and draws as the GAN's). Also records
    the error message of a batch that 4 devices do not divide.
    """
    from regan_jax import parallel

    assert jax.device_count() == 4, jax.devices()
    results = {}
    mesh = parallel.make_mesh(4)
    for name, (step, state, stream) in parallel_cases().items():
        wrappers = {
            "single": jax.jit(step, donate_argnums=0),
            "shard_map": parallel.shard_map_step(step, mesh),
        }
        if name == "gan":
            wrappers["pmap"] = parallel.pmap_step(step)
        for wrapper, wrapped in wrappers.items():
            # each wrapper donates its input state: give each its own copy
            final, metrics = run(wrapped, jax.tree.map(jnp.copy, state), stream)
            for key, value in flat({"state": final, "metrics": metrics}).items():
                results[f"{name}/{wrapper}/{key}"] = value
        odd = jax.tree.map(lambda x: x[:6], stream[0])
        for wrapper in ("shard_map", "pmap") if name == "gan" else ():
            try:
                wrappers[wrapper](final, odd)
            except ValueError as e:
                results[f"error/{wrapper}"] = np.asarray(str(e))
    results.update(members_cases())
    np.savez(out, **results)


MEMBERS = 4


def members_cases():
    """``members/{single,2x2,4x1,1x4}/...``: a vmapped group of 4 cGAN members after STEPS steps.

    ``single`` is the group vmapped on one device; the others run on a
    ``members x batch`` mesh of the 4 devices. Members differ in seed, D's L2
    strength and data.
    """
    from regan_jax import parallel, sweep

    nets, optimizers, loss_cfg, penalty_cfgs = tiny_gan("cgan", "r1", d_steps=2, spectral_norm=True)
    step = functools.partial(
        gan_family.gan_step,
        models=nets,
        optimizers=optimizers,
        loss_cfg=loss_cfg,
        penalty_cfgs=penalty_cfgs,
    )
    streams = [batches(10 + k, STEPS, 2 * 8) for k in range(MEMBERS)]
    stream = [jax.tree.map(lambda *xs: np.stack(xs), *per_step) for per_step in zip(*streams)]
    states = sweep.init_sweep(
        lambda key: gan_family.init_gan_state(nets, optimizers, key, streams[0][0]),
        seeds=list(range(MEMBERS)),
        hyperparams={"d": {"strength": [0.0, 1e-3, 1e-2, 1e-1]}},
    )
    wrappers = {"single": sweep.vmap_step(step, shared_batch=False)}
    for members, rows in ((2, 2), (4, 1), (1, 4)):
        wrappers[f"{members}x{rows}"] = parallel.members_step(
            step, parallel.make_member_mesh(parallel.MeshShape(members, rows))
        )
    results = {}
    for wrapper, wrapped in wrappers.items():
        final, metrics = run(wrapped, jax.tree.map(jnp.copy, states), stream)
        for key, value in flat({"state": final, "metrics": metrics}).items():
            results[f"members/{wrapper}/{key}"] = value
    # The same group fed on the devices: every batch gathered from one array
    # (row t*K*B + k*B + r is row r of member k's batch t), all STEPS in one chunk.
    arrays = {
        name: np.concatenate([b[name].reshape(-1, *b[name].shape[2:]) for b in stream])
        for name in stream[0]
    }
    rows = np.arange(len(arrays["image"]), dtype=np.int32).reshape(STEPS, MEMBERS, -1)

    def gather(arrays, descriptor):
        return {name: values[descriptor["rows"]] for name, values in arrays.items()}

    for wrapper, shape in (("fed1x1", (1, 1)), ("fed4x1", (4, 1))):
        fed = parallel.fed_parallel(
            step, gather, arrays, MEMBERS, rows.shape[-1], parallel.MeshShape(*shape)
        )
        final, metrics = fed(jax.tree.map(jnp.copy, states), {"rows": rows})
        for key, value in flat({"state": final, "metrics": metrics}).items():
            results[f"members/{wrapper}/{key}"] = value
    results["members/fed_refuses_2x2"] = np.asarray(
        parallel.fed_parallel(
            step, gather, arrays, MEMBERS, rows.shape[-1], parallel.MeshShape(2, 2)
        )
        is None
    )
    return results


def main_multihost(out, process_id, num_processes, port):
    """One process of a multi-host run: 2 local devices each, a 4-device global mesh.

    Every process passes the same global batches (each device gets its rows).
    """
    from regan_jax import parallel

    parallel.initialize_distributed(f"localhost:{port}", num_processes, process_id)
    assert jax.device_count() == 2 * num_processes and jax.local_device_count() == 2
    step, state, stream = parallel_cases()["gan"]
    wrapped = parallel.shard_map_step(step, parallel.make_mesh())
    final, metrics = parallel.fetch(run(wrapped, state, stream))
    if process_id == 0:
        np.savez(
            out, **{key: value for key, value in flat({"state": final, "metrics": metrics}).items()}
        )


# ----------------------------------------------------------------------------
# Checkpoint / resume
# ----------------------------------------------------------------------------

CHECKPOINT_EVERY = 2


@functools.lru_cache(maxsize=None)
def resumable_setup():
    """``(step, init_state, data_cfg)``: a GAN on the ring8 mixture stream (compiled once)."""
    from regan_jax import data

    nets, optimizers, loss_cfg, penalty_cfgs = tiny_gan()
    data_cfg = data.default_config()
    data_cfg.update(name="ring8", batch_size=8)
    step = jax.jit(
        functools.partial(
            gan_family.gan_step,
            models=nets,
            optimizers=optimizers,
            loss_cfg=loss_cfg,
            penalty_cfgs=penalty_cfgs,
        ),
        donate_argnums=0,
    )
    example = next(data.make_iterator(data_cfg, seed=0))
    return step, gan_family.init_gan_state(nets, optimizers, jax.random.key(0), example), data_cfg


def _die_when_saving(directory):
    """SIGKILLs this process as soon as orbax's temporary directory appears (mid-save)."""

    def watch():
        while True:
            if os.path.isdir(directory) and any("tmp" in n for n in os.listdir(directory)):
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(1e-4)

    threading.Thread(target=watch, daemon=True).start()


def train(workdir, num_steps, die_saving=None):
    """Trains to ``num_steps``, resuming from ``workdir`` and checkpointing every 2 steps.

    Writes ``resumed_from.json`` (the restored step and data position, if any).
    With ``die_saving`` = s the process kills itself (SIGKILL) while checkpoint
    s is being written. Returns the final state.
    """
    from regan_jax import data

    step, state, data_cfg = resumable_setup()
    state = jax.tree.map(jnp.copy, state)  # the step donates it
    directory = os.path.join(workdir, "checkpoints")
    restored = checkpoint.restore_latest(directory, state)
    position = None
    if restored is not None:
        state, position = restored
        with open(os.path.join(workdir, "resumed_from.json"), "w") as f:
            json.dump({"step": int(state.step), "position": position}, f)
    stream = data.make_iterator(data_cfg, seed=0, position=position)
    while int(state.step) < num_steps:
        state, _ = step(state, next(stream))
        done = int(state.step)
        if done % CHECKPOINT_EVERY == 0:
            if done == die_saving:
                _die_when_saving(directory)
            checkpoint.save(directory, done, state, stream.position)
    return state


def main_train(num_steps, workdirs, die_saving=None):
    """Runs :func:`train` in each workdir in turn (one compile), saving ``final.npz`` in each."""
    for workdir in workdirs:
        final = train(workdir, num_steps, die_saving)
        np.savez(os.path.join(workdir, "final.npz"), **flat(final))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "parallel":
        main_parallel(args[0])
    elif command == "multihost":
        main_multihost(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif command == "train":  # train STEPS [--die-saving S] WORKDIR...
        if args[1] == "--die-saving":
            main_train(int(args[0]), args[3:], die_saving=int(args[2]))
        else:
            main_train(int(args[0]), args[1:])
    else:
        raise SystemExit(f"unknown command {command!r}")
