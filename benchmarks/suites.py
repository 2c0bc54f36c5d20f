"""The measurements of the benchmark, one function per figure group.

Each suite returns a flat ``dict`` of JSON-ready numbers (seconds, rates,
ratios); :mod:`benchmarks.run` compares some of them with the targets.
Ratios are always "how many times faster the JAX side is" (> 1 = JAX wins)
except where the name says otherwise (``k64_over_one_time``).
"""

import dataclasses
import json
import os
import subprocess
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness, jax_setups
from regan_jax import config as config_lib
from regan_jax import sweep

ON_CPU = jax.default_backend() == "cpu"


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How long each measurement runs (``--quick`` or the full run).

    Attributes:
      matmul_n: side of the square float32 matmul of the peak probe.
      blocks: timed blocks per side (the median is over these).
      conv_steps: steps per block of the 28x28 conv GAN.
      mlp_steps: steps per block of the ring8 MLP GAN (and its K-member sweep).
      digits_steps: steps per block of the digits conv sweep.
      members: K of the "K vmapped vs K sequential runs" sweeps (the issue's 8).
      k_large: members of the large vmapped sweep (vs one run; the issue's 64).
      k_large_steps: steps per block of that large sweep.
      eval_samples: generated (and real) samples scored by the evaluation.
      eval_warm: time the evaluation a second time, compiled (the cold time is
        the figure a run's final evaluation sees).
      memory_steps: training steps of the peak-memory runs.
      variants: also time the conv steps compiled with XLA's defaults (the
        library before ``regan_jax.xla``) and the candidate options (CPU).
      loop_steps: training steps of each end-to-end loop run.
      smoke: shrink every model to test size (``config.shrink_for_smoke``), run
        only the default model's memory run: checks the machinery, numbers mean nothing.
    """

    matmul_n: int = 2048
    blocks: int = 7
    conv_steps: int = 3
    mlp_steps: int = 50
    digits_steps: int = 5
    members: int = 8
    k_large: int = 64
    k_large_steps: int = 10
    eval_samples: int = 10_000
    eval_warm: bool = True
    memory_steps: int = 30
    variants: bool = True
    loop_steps: int = 2000
    smoke: bool = False


QUICK = Sizes(
    matmul_n=2048,
    blocks=5,
    conv_steps=1,
    mlp_steps=20,
    digits_steps=1,
    k_large_steps=3,
    eval_warm=False,
    memory_steps=3,
    loop_steps=600,
)
FULL = Sizes()
SMOKE = Sizes(
    matmul_n=64,
    blocks=1,
    conv_steps=1,
    mlp_steps=1,
    digits_steps=1,
    members=2,
    k_large=3,
    k_large_steps=1,
    eval_samples=200,
    eval_warm=False,
    memory_steps=1,
    variants=False,
    loop_steps=10,
    smoke=True,
)


def _config(name: str, dataset: str, sizes: Sizes):
    """The experiment config ``name`` (fallback: the library default for ``dataset``)."""
    config = jax_setups.experiment_config(name, dataset)
    return config_lib.shrink_for_smoke(config) if sizes.smoke else config


def _timings(timings: dict[str, harness.Timing]) -> dict:
    return {name: t.as_dict() for name, t in timings.items()}


# --------------------------------------------------------------------------- #
# Peak matmul
# --------------------------------------------------------------------------- #


def matmul_peak(sizes: Sizes, with_torch: bool) -> dict:
    """Measured float32 matmul FLOP/s of JAX (and torch): the "physical limit"."""
    n = sizes.matmul_n
    timings = harness.time_alternating(
        harness.matmul_sides(n, with_torch=with_torch), steps_per_block=2, blocks=sizes.blocks
    )
    flops = 2.0 * n**3
    out = {"n": n, "jax_flops_per_s": flops / timings["jax"].median_s, "timings": _timings(timings)}
    if with_torch:
        out["torch_flops_per_s"] = flops / timings["torch"].median_s
    return out


# --------------------------------------------------------------------------- #
# PyTorch sides
# --------------------------------------------------------------------------- #


def torch_gan_side(setup: jax_setups.GanSetup, kind: str, seed: int = 0):
    """``run(n)`` of the torch reference of ``setup``'s GAN with step ``kind``.

    ``kind='idiomatic'`` uses the ConvTranspose2d generator (DCGAN models);
    ``'same_math'`` the generator of ``config.model.upsample``. Batches are
    ``setup``'s, moved to NCHW on torch's device.
    """
    import torch  # pylint: disable=g-import-not-at-top

    from benchmarks import torch_reference as tr  # pylint: disable=g-import-not-at-top

    torch.manual_seed(seed)
    config = setup.config
    device = "cuda" if torch.cuda.is_available() else "cpu"
    upsample = "conv_transpose" if kind == "idiomatic" else config.model.upsample
    g, d = tr.make_gan(config.model, setup.shape, upsample=upsample)
    g, d = g.to(device), d.to(device)
    step = tr.STEPS[kind](
        g,
        d,
        tr.adam(g, config.optimizer.g),
        tr.adam(d, config.optimizer.d),
        config.model.latent_dim,
    )
    reals = []
    for batch in setup.batches:
        x = np.array(batch["image"])  # a writable copy: torch refuses read-only arrays
        if x.ndim == 4:
            x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
        reals.append(torch.from_numpy(x).to(device))
    counter = [0]

    def run(n: int) -> None:
        for _ in range(n):
            step(reals[counter[0] % len(reals)])
            counter[0] += 1
        harness.torch_sync()

    return run, (g, d)


# --------------------------------------------------------------------------- #
# Training-step throughput
# --------------------------------------------------------------------------- #


def _compiled_side(setup, variant, label, out):
    """Compiles a fresh jit of ``setup``'s step (``variant``), records compile/FLOPs under ``label``.

    The first compile of a config's step in the process is cold, so the
    ``jax`` side's figures double as that config's first-step compile time
    (:func:`compile_times` reuses them instead of compiling again).
    """
    state = setup.init(0)
    compiled = harness.compile_seconds(setup.jit(variant), state, setup.batches[0])
    out[f"{label}_compile"] = compiled.as_dict()
    out[f"{label}_flops_per_step"] = compiled.flops
    return jax_setups.loop_side(compiled.executable, state, setup.batches), compiled


def conv_gan_throughput(sizes: Sizes, peak_flops: float, with_torch: bool) -> dict:
    """The 28x28 DCGAN step (batch 64, Fashion-MNIST widths): JAX vs both torch references.

    Sides: ``jax`` (the library's step as training compiles it), on the CPU
    also ``jax_xla_defaults`` (plain ``jax.jit``: the library before
    ``regan_jax.xla``) and ``jax_candidate`` (YNNPACK off),
    ``jax_conv_transpose`` (the library's step with
    ``model.upsample='conv_transpose'``, the arithmetic of torch's idiomatic
    generator), then ``torch_idiomatic``, ``torch_same_math``. Also XLA's FLOPs of one step and
    the achieved fraction of the measured matmul peak.
    """
    config = _config("fashion_mnist_gan", "fashion_mnist", sizes)
    default_batch = config.data.batch_size
    config.data.batch_size = min(64, config.data.batch_size) if sizes.smoke else 64
    setup = jax_setups.gan_setup(config)
    batch_size = config.data.batch_size
    # The jax side's cold compile is the default config's first-step compile iff unchanged.
    out: dict[str, Any] = {
        "batch_size": batch_size,
        "model": config.model.to_dict(),
        "is_default_config": batch_size == default_batch,
    }
    sides = {}
    sides["jax"], compiled = _compiled_side(setup, "library", "jax", out)
    if ON_CPU and sizes.variants:
        for variant in ("xla_defaults", "candidate"):
            sides[f"jax_{variant}"], _ = _compiled_side(setup, variant, f"jax_{variant}", out)
    transposed_compiled = None
    if sizes.variants:  # The GAN with a ConvTranspose2d G: torch's idiomatic arithmetic.
        transposed = config_lib.copy_config(config)
        transposed.model.upsample = "conv_transpose"
        sides["jax_conv_transpose"], transposed_compiled = _compiled_side(
            jax_setups.gan_setup(transposed), "library", "jax_conv_transpose", out
        )
    if with_torch:
        sides["torch_idiomatic"], (g_t, _) = torch_gan_side(setup, "idiomatic")
        sides["torch_same_math"], _ = torch_gan_side(setup, "same_math")
        from benchmarks import torch_reference as tr  # pylint: disable=g-import-not-at-top

        out["torch_idiomatic_g_params"] = tr.num_params(g_t)
    timings = harness.time_alternating(sides, steps_per_block=sizes.conv_steps, blocks=sizes.blocks)
    out["timings"] = _timings(timings)
    for name, t in timings.items():
        out[f"{name}_images_per_s"] = batch_size / t.median_s
    for name in [s for s in timings if s.startswith("jax")]:
        flops = transposed_compiled.flops if name == "jax_conv_transpose" else compiled.flops
        achieved = flops / timings[name].median_s
        out[f"{name}_flops_per_s"] = achieved
        out[f"{name}_fraction_of_peak"] = achieved / peak_flops
        for ref in ("torch_idiomatic", "torch_same_math"):
            if ref in timings:
                out[f"{name}_vs_{ref}"] = timings[ref].median_s / timings[name].median_s
                out[f"{name}_vs_{ref}_fastest"] = timings[ref].min_s / timings[name].min_s
    if "torch_same_math" in timings:
        # Same math, so XLA's FLOP count is torch's too.
        out["torch_same_math_flops_per_s"] = compiled.flops / timings["torch_same_math"].median_s
    return out


def mlp_gan_throughput(sizes: Sizes, with_torch: bool) -> dict:
    """The ring8 MLP GAN step (its experiment config): jitted JAX vs torch eager."""
    config = _config("ring8_gan", "ring8", sizes)
    setup = jax_setups.gan_setup(config)
    out: dict[str, Any] = {
        "batch_size": config.data.batch_size,
        "model": config.model.to_dict(),
        "is_default_config": True,
    }
    sides = {}
    sides["jax"], compiled = _compiled_side(setup, "library", "jax", out)
    if with_torch:
        sides["torch_eager"], _ = torch_gan_side(setup, "same_math")
    timings = harness.time_alternating(sides, steps_per_block=sizes.mlp_steps, blocks=sizes.blocks)
    out["timings"] = _timings(timings)
    out["jax_steps_per_s"] = timings["jax"].per_s
    out["jax_flops_per_s"] = compiled.flops / timings["jax"].median_s
    if with_torch:
        out["torch_eager_steps_per_s"] = timings["torch_eager"].per_s
        out["jax_vs_torch_eager"] = timings["torch_eager"].median_s / timings["jax"].median_s
        out["jax_vs_torch_eager_fastest"] = timings["torch_eager"].min_s / timings["jax"].min_s
    return out


# --------------------------------------------------------------------------- #
# Vmapped sweeps
# --------------------------------------------------------------------------- #


def _copy(tree: Any) -> Any:
    """Fresh device buffers of ``tree`` (each side donates its own state)."""
    return jax.tree.map(jnp.copy, tree)


def _sweep_pair(setup, stacked, single, vmapped, steps_per_block, blocks) -> dict:
    """The K members of ``stacked`` vmapped vs the same K members run one after another.

    ``single`` is the jitted (or compiled) single-run step and ``vmapped`` the
    jitted vmapped step, both donating the state; each side gets its own copy.
    """
    sides = {
        "vmapped": jax_setups.loop_side(vmapped, _copy(stacked), setup.batches),
        "sequential": jax_setups.sequential_side(single, setup, _copy(stacked)),
    }
    timings = harness.time_alternating(sides, steps_per_block=steps_per_block, blocks=blocks)
    return {
        "members": sweep.num_members(stacked),
        "timings": _timings(timings),
        "speedup": timings["sequential"].median_s / timings["vmapped"].median_s,
    }


def _member_scaling(setup, sizes: Sizes, peak_flops: float, variant: str = "library") -> dict:
    """One MLP GAN's step at K = 1, K = ``members`` and K = ``k_large`` vmapped members.

    ``k{K}``: the vmapped step against K sequential single steps (``speedup``)
    and its member-steps/s and fraction of the matmul peak; ``k_large`` also
    ``time_ratio`` (its step over one run's). Beside each, the bound the FLOPs
    allow: a step of K members does K times the work of one (XLA's cost
    analysis), so at the measured peak it cannot take less than
    ``K * flops / peak``: ``speedup_bound`` is the sequential time over that
    floor, ``time_ratio_bound`` that floor over one run's step. A target
    beyond its bound is out of reach on the machine.
    """
    single = harness.compile_seconds(setup.jit(variant), setup.init(0), setup.batches[0])
    vmapped = setup.jit_vmapped(variant)  # one jit: both K share it
    one_run = jax_setups.loop_side(single.executable, setup.init(0), setup.batches)
    out = {"flops_per_step": single.flops, "variant": variant}
    for label, k, steps in (
        ("k_small", sizes.members, sizes.mlp_steps),
        ("k_large", sizes.k_large, sizes.k_large_steps),
    ):
        members = jax_setups.sweep_states(setup, k)
        sides = {
            "vmapped": jax_setups.loop_side(vmapped, _copy(members), setup.batches),
            "one": one_run,
        }
        if label == "k_small":
            sides["sequential"] = jax_setups.sequential_side(
                single.executable, setup, _copy(members)
            )
        timings = harness.time_alternating(sides, steps_per_block=steps, blocks=sizes.blocks)
        floor = k * single.flops / peak_flops
        figures = {
            "members": k,
            "timings": _timings(timings),
            "member_steps_per_s": k / timings["vmapped"].median_s,
            "fraction_of_peak": k * single.flops / timings["vmapped"].median_s / peak_flops,
            "time_ratio": timings["vmapped"].median_s / timings["one"].median_s,
            "time_ratio_bound": floor / timings["one"].median_s,
            # the floor over the vmapped step: its speed-up (or time ratio) over its bound
            "of_bound": floor / timings["vmapped"].median_s,
        }
        if "sequential" in timings:
            figures["speedup"] = timings["sequential"].median_s / timings["vmapped"].median_s
            figures["speedup_bound"] = timings["sequential"].median_s / floor
        out[label] = figures
    # One run (K = 1): its blocks beside the K = members group.
    one_s = out["k_small"]["timings"]["one"]["median_s"]
    out["one_steps_per_s"] = 1.0 / one_s
    out["one_fraction_of_peak"] = single.flops / one_s / peak_flops
    return out


def sweeps(sizes: Sizes, peak_flops: float) -> dict:
    """Vmapped sweeps of the two MLP GANs (ring8, digits) and of the digits conv GAN.

    ``ring8`` / ``digits_mlp``: :func:`_member_scaling` (K = 1, 8, 64), with
    ``ring8_candidate`` / ``digits_mlp_candidate`` the same figures compiled
    with YNNPACK off (CPU).
    ``digits_conv_k8``: the conv GAN's K = 8 vmapped step vs 8 sequential runs,
    as the library compiles it, and (CPU) with XLA's defaults.
    """
    out = {}
    ring = jax_setups.gan_setup(jax_setups.sweep_config(_config("ring8_gan", "ring8", sizes)))
    out["ring8"] = _member_scaling(ring, sizes, peak_flops)
    if ON_CPU and sizes.variants:
        out["ring8_candidate"] = _member_scaling(ring, sizes, peak_flops, "candidate")
    digits = jax_setups.gan_setup(jax_setups.sweep_config(_config("digits_gan", "digits", sizes)))
    out["digits_mlp"] = _member_scaling(digits, sizes, peak_flops)
    if ON_CPU and sizes.variants:
        out["digits_mlp_candidate"] = _member_scaling(digits, sizes, peak_flops, "candidate")
    digits_conv = jax_setups.conv_variant(jax_setups.experiment_config("digits_gan", "digits"))
    if sizes.smoke:
        digits_conv = config_lib.shrink_for_smoke(digits_conv)
    conv = jax_setups.gan_setup(jax_setups.sweep_config(digits_conv))
    members = jax_setups.sweep_states(conv, sizes.members)
    for variant in ("library", "xla_defaults") if ON_CPU and sizes.variants else ("library",):
        label = "digits_conv_k8" + ("" if variant == "library" else f"_{variant}")
        out[label] = _sweep_pair(
            conv,
            members,
            conv.jit(variant),
            conv.jit_vmapped(variant),
            sizes.digits_steps,
            sizes.blocks,
        )
    return out


# --------------------------------------------------------------------------- #
# The training loop end to end
# --------------------------------------------------------------------------- #

LOOP_WAYS = {
    "host_fed": {"device_data": False},
    "device_fed": {"device_data": True, "steps_per_call": 1},
    "device_fed_chunks10": {"device_data": True, "steps_per_call": 10},
}


def training_loop(sizes: Sizes, rounds: int = 2) -> dict:
    """The ring8 K=8 sweep group through ``train.train_members``, fed three ways.

    ``host_fed`` is the loop as it was (host batches: the mixture drawn per
    member on the host, stacked, put on the device); ``device_fed`` draws the
    batches inside the compiled step; ``device_fed_chunks10`` also runs 10
    steps per dispatch. Each way trains ``loop_steps`` steps, the ways in
    turn, ``rounds`` times. The per-step cost is read from the run's own
    ``metrics.jsonl``: the wall between its second logged row and its last
    over the steps between (so the compilation, the first steps and the final
    evaluation are not in it); the median over rounds. ``member_steps_per_s``
    = 8 / that cost.
    """
    import tempfile  # pylint: disable=g-import-not-at-top

    from regan_jax import train  # pylint: disable=g-import-not-at-top

    base = _config("ring8_gan", "ring8", sizes)
    per_step = {way: [] for way in LOOP_WAYS}
    for _ in range(rounds):
        for way, options in LOOP_WAYS.items():
            configs = []
            for seed in range(sizes.members):
                config = config_lib.copy_config(base)
                config.seed, config.steps = seed, sizes.loop_steps
                config.log.every = max(1, sizes.loop_steps // 10)
                config.eval.fd_every = config.log.samples_every = 0
                config.log.checkpoint_every = 0
                config.log.progress = config.log.tensorboard = False
                configs.append(config)
            with tempfile.TemporaryDirectory() as tmp:
                train.train_members(
                    configs, [f"{tmp}/m{i}" for i in range(len(configs))], progress=False, **options
                )
                rows = train.read_metrics(f"{tmp}/m0")
            first, last = rows[1], rows[-1]
            per_step[way].append(
                (last["wall_s"] - first["wall_s"]) / (last["step"] - first["step"])
            )
    out = {
        "members": sizes.members,
        "steps": sizes.loop_steps,
        "rounds": rounds,
        "step_s_per_round": per_step,
    }
    for way, values in per_step.items():
        step_s = float(np.median(values))
        out[way] = {"step_s": step_s, "member_steps_per_s": sizes.members / step_s}
    for way in ("device_fed", "device_fed_chunks10"):
        out[f"{way}_vs_host_fed"] = out["host_fed"]["step_s"] / out[way]["step_s"]
    return out


def virtual_devices(sizes: Sizes) -> dict:
    """The ring8 K=8 group split member-wise over 2 virtual CPU devices vs on one.

    A subprocess (:mod:`benchmarks.devices`) started with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=2``: XLA:CPU gives each
    device its own work queue, so two halves of the group may use the two
    cores better than one device's intra-op threads do. CPU only.
    """
    if not ON_CPU:
        return {"skipped": "virtual CPU devices only"}
    flags = os.environ.get("XLA_FLAGS", "")
    env = {**os.environ, "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=2"}
    args = [
        "--members",
        str(sizes.members),
        "--steps",
        str(sizes.mlp_steps),
        "--blocks",
        str(sizes.blocks),
    ] + (["--smoke"] if sizes.smoke else [])
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.devices", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=jax_setups.REPO_ROOT,
        check=False,
    )
    if done.returncode:
        return {"error": f"benchmarks.devices exited {done.returncode}: {done.stderr[-800:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- #
# Compile time
# --------------------------------------------------------------------------- #

COMPILE_MODELS = {
    "digits_gan": "digits",
    "ring8_gan": "ring8",
    "fashion_mnist_gan": "fashion_mnist",
}


def compile_times(sizes: Sizes, measured: dict | None = None) -> dict:
    """Cold trace+lower and XLA compile of the first step of each default model.

    Args:
      sizes: the run's sizes.
      measured: ``{config name: Compiled.as_dict()}`` already measured cold by
        an earlier suite on the same config (the throughput suites compile the
        ``fashion_mnist_gan`` and ``ring8_gan`` steps first); those are reused,
        marked ``reused_from``, and the rest compiled here.
    """
    out = {}
    for name, dataset in COMPILE_MODELS.items():
        if measured and name in measured:
            out[name] = {**measured[name]["figures"], "reused_from": measured[name]["suite"]}
            continue
        setup = jax_setups.gan_setup(_config(name, dataset, sizes), num_batches=1)
        out[name] = harness.compile_seconds(setup.jit(), setup.init(0), setup.batches[0]).as_dict()
    return out


# --------------------------------------------------------------------------- #
# Evaluation
# --------------------------------------------------------------------------- #


def _classifier(name: str):
    """The shipped feature classifier, or one with random weights (same cost) if absent."""
    from regan_jax.evaluation import classifier  # pylint: disable=g-import-not-at-top

    try:
        return classifier.load_classifier(name), "shipped"
    except (ValueError, FileNotFoundError, OSError):
        spec = classifier.spec_for(name)
        params = classifier.init_params(spec, jax.random.key(0))
        return classifier.FeatureClassifier(name, spec, params, {}), "random_init"


def _real_images(shape, n):
    """``n`` Fashion-MNIST test images if present, else uniform noise of ``shape``."""
    from regan_jax import data  # pylint: disable=g-import-not-at-top

    try:
        images = np.asarray(data.load("fashion_mnist", "test").images[:n])
        if len(images) == n:
            return images, "fashion_mnist_test"
    except (ValueError, FileNotFoundError, OSError):
        pass
    return jax_setups.synthetic_batches(shape, n, 1)[0]["image"], "synthetic"


def evaluation_time(sizes: Sizes) -> dict:
    """Wall time to score ``eval_samples`` generated images: features, FD, PRDC.

    Generator samples (batches of 500) -> classifier features of the fakes and
    of as many real images -> ``metrics.frechet_distance`` ->
    ``metrics.prdc(k=5)``. Timed on the first call (compiles included, as a
    run's final evaluation sees it), part by part (``cold_parts``), and with
    ``sizes.eval_warm`` a second time (``warm_parts``). ``cold_s`` /
    ``warm_s`` are the issue's figure, features + FD + PRDC; drawing the
    samples is the generator's cost, not the evaluation's, and is reported
    apart (``*_parts['sample_s']``, ``cold_with_sampling_s``).
    """
    from regan_jax import metrics  # pylint: disable=g-import-not-at-top

    n = sizes.eval_samples
    setup = jax_setups.gan_setup(
        _config("fashion_mnist_gan", "fashion_mnist", sizes), num_batches=1
    )
    g = setup.models["g"]
    g_params = setup.init(0).params["g"]
    clf, weights = _classifier("fashion_mnist")
    real, real_source = _real_images(setup.shape, n)
    sample = jax.jit(
        lambda p, key: g.apply({"params": p}, jax.random.normal(key, (500, g.latent_dim)))
    )

    def evaluate() -> dict:
        parts, start = {}, time.perf_counter()

        def lap(name):
            nonlocal start
            now = time.perf_counter()
            parts[name], start = now - start, now

        fakes = np.concatenate(
            [np.asarray(sample(g_params, jax.random.key(i))) for i in range(-(-n // 500))]
        )[:n]
        lap("sample_s")
        fake_feats = jax.block_until_ready(clf.features(fakes))
        real_feats = jax.block_until_ready(clf.features(real))
        lap("features_s")
        metrics.frechet_distance(real_feats, fake_feats)
        lap("fd_s")
        metrics.prdc(real_feats, fake_feats, k=5)
        lap("prdc_s")
        return parts

    out = {"samples": n, "classifier_weights": weights, "real_source": real_source}

    def scoring_s(parts):
        return parts["features_s"] + parts["fd_s"] + parts["prdc_s"]

    out["cold_parts"] = evaluate()
    out["cold_s"] = scoring_s(out["cold_parts"])
    out["cold_with_sampling_s"] = sum(out["cold_parts"].values())
    if sizes.eval_warm:
        out["warm_parts"] = evaluate()
        out["warm_s"] = scoring_s(out["warm_parts"])
    return out


# --------------------------------------------------------------------------- #
# Peak memory (subprocesses: a process's peak RSS is its whole life's)
# --------------------------------------------------------------------------- #


def _memory_run(args: list[str]) -> dict:
    env = dict(os.environ)
    command = [sys.executable, "-m", "benchmarks.memory", *args]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=jax_setups.REPO_ROOT, check=False
    )
    if done.returncode:
        return {"error": f"{' '.join(args)} exited {done.returncode}: {done.stderr[-800:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_memory(sizes: Sizes, with_torch: bool) -> dict:
    """Peak RSS (and device memory on accelerators) of default training runs.

    One subprocess per run: the digits default (``digits_gan``, real data) in
    JAX, and (not with ``sizes.smoke``) the 28x28 conv GAN in JAX and in the
    torch same-math reference.
    """
    common = ["--steps", str(sizes.memory_steps)] + (["--smoke"] if sizes.smoke else [])
    out = {"digits_gan_jax": _memory_run(["--side", "jax", "--config", "digits_gan", *common])}
    if sizes.smoke:
        return out
    out["fashion_mnist_gan_jax"] = _memory_run(
        ["--side", "jax", "--config", "fashion_mnist_gan", *common]
    )
    if with_torch:
        out["fashion_mnist_gan_torch"] = _memory_run(
            ["--side", "torch", "--config", "fashion_mnist_gan", *common]
        )
        jax_peak = out["fashion_mnist_gan_jax"].get("peak_rss_bytes")
        torch_peak = out["fashion_mnist_gan_torch"].get("peak_rss_bytes")
        if jax_peak and torch_peak:
            out["fashion_mnist_rss_jax_over_torch"] = jax_peak / torch_peak
    return out
