"""Models: shapes and ranges for every family x arch x data shape, depth-to-space,
spectral normalisation, the projection discriminator, and bad input.

The networks are built as the runs build them, by their model family
(``families.get(kind).make_models``)."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regan_jax import families
from regan_jax.models import DataSpec, default_config, depth_to_space, num_stages
from regan_jax.models.layers import CONV_INIT

SHAPES = [(2,), (8, 8, 1), (28, 28, 1), (32, 32, 3), (8, 8, 3)]
N, LATENT, CLASSES = 3, 3, 4


def tiny_config(kind="gan", arch="dcgan", **overrides):
    """``(family name, config.model)`` of networks a few units wide."""
    cfg = default_config()
    cfg.update(dict(arch=arch, latent_dim=LATENT, g_width=2, d_width=2, mlp_layers=1), **overrides)
    return kind, cfg


def make_models(family_and_config, spec):
    kind, cfg = family_and_config
    return families.get(kind).make_models(cfg, spec)


def gan_forward(models, shape, conditional):
    """``key -> (g_vars, x, d_vars, logits)``: initialise and apply G, then D."""

    def run(key):
        kz, ky, kg, kd = jax.random.split(key, 4)
        z = 3.0 * jax.random.normal(kz, (N, LATENT))
        labels = jax.random.randint(ky, (N,), 0, CLASSES) if conditional else None
        g_vars = models["g"].init(kg, z, labels)
        x = models["g"].apply(g_vars, z, labels)
        d_vars = models["d"].init(kd, x, labels)
        return g_vars, x, d_vars, models["d"].apply(d_vars, x, labels)

    return run


def vae_forward(models, shape):
    """``key -> (enc_vars, mean, logvar, dec_vars, out)`` on uniform data in [-1, 1]."""

    def run(key):
        kx, ke, kd = jax.random.split(key, 3)
        x = jax.random.uniform(kx, (N, int(np.prod(shape))), minval=-1.0, maxval=1.0)
        x = x.reshape((N,) + shape)
        enc_vars = models["encoder"].init(ke, x)
        mean, logvar = models["encoder"].apply(enc_vars, x)
        dec_vars = models["decoder"].init(kd, mean)
        return enc_vars, mean, logvar, dec_vars, models["decoder"].apply(dec_vars, mean)

    return run


def build(kind, arch, shape, **overrides):
    # Spectral norm on the unconditional discriminators, so its state is exercised too.
    cfg = tiny_config(kind, arch, spectral_norm=kind == "gan", **overrides)
    models = make_models(cfg, DataSpec(shape, CLASSES))
    if kind == "vae":
        return models, vae_forward(models, shape)
    return models, gan_forward(models, shape, kind == "cgan")


CASES = [
    (kind, arch, shape)
    for kind, arch, shape in itertools.product(["gan", "cgan", "vae"], ["mlp", "dcgan"], SHAPES)
    if not (arch == "dcgan" and shape == (2,))
]


@pytest.mark.parametrize("kind,arch,shape", CASES)
def test_output_shapes(kind, arch, shape):
    """Every kind x arch x data shape, traced abstractly (jax.eval_shape: no compile)."""
    models, forward = build(kind, arch, shape)
    out = jax.eval_shape(forward, jax.random.key(0))
    if kind == "vae":
        assert set(models) == {"encoder", "decoder"}
        enc_vars, mean, logvar, dec_vars, recon = out
        chex.assert_shape([mean, logvar], (N, LATENT))
        chex.assert_shape(recon, (N,) + shape)
        assert set(enc_vars) == set(dec_vars) == {"params"}
    else:
        assert set(models) == {"g", "d"}
        g_vars, x, d_vars, logits = out
        chex.assert_shape(x, (N,) + shape)
        chex.assert_shape(logits, (N,))
        assert set(g_vars) == {"params"}
        assert set(d_vars) == ({"params", "batch_stats"} if kind == "gan" else {"params"})
    assert {leaf.dtype for leaf in jax.tree.leaves(out)} == {jnp.dtype(jnp.float32)}


@pytest.mark.parametrize(
    "kind,arch,shape", [("gan", "dcgan", (28, 28, 1)), ("vae", "mlp", (8, 8, 1))]
)
def test_output_values(kind, arch, shape):
    """Computed outputs are finite; generator samples lie in [-1, 1] and vary. (The
    conditional and spectral-norm tests below compute the other networks.)"""
    _, forward = build(kind, arch, shape)
    out = jax.jit(forward)(jax.random.key(1))
    chex.assert_tree_all_finite(out)
    if kind != "vae":
        x = np.asarray(out[1])
        assert np.all(np.abs(x) <= 1.0)
        assert np.std(x) > 0


@pytest.mark.parametrize(
    "upsample,layer", [("subpixel", "conv"), ("conv_transpose", "conv_transpose")]
)
def test_upsample_choice(upsample, layer):
    _, forward = build("gan", "dcgan", (28, 28, 1), upsample=upsample)
    g_vars, x, _, _ = jax.eval_shape(forward, jax.random.key(0))
    chex.assert_shape(x, (N, 28, 28, 1))
    assert set(g_vars["params"]["body"]["up_0"]) == {layer}


@pytest.mark.parametrize(
    "shape,stages",
    [
        ((8, 8, 1), 2),
        ((28, 28, 1), 2),
        ((32, 32, 3), 3),
        ((16, 16, 3), 3),
        ((6, 6, 1), 1),
        ((64, 48, 3), 3),
    ],
)
def test_num_stages_derived(shape, stages):
    assert num_stages(shape) == stages


def test_dcgan_stage_resolutions():
    """The discriminator halves 28 -> 14 -> 7; the generator starts from 7x7."""
    _, forward = build("gan", "dcgan", (28, 28, 1))
    g_vars, _, d_vars, _ = jax.eval_shape(forward, jax.random.key(0))
    # project: latent -> 7 * 7 * (g_width * 2); head: 7 * 7 * (d_width * 2) -> 1.
    assert g_vars["params"]["body"]["project"]["kernel"].shape == (LATENT, 7 * 7 * 4)
    assert d_vars["params"]["head"]["kernel"].shape == (7 * 7 * 4, 1)


def test_conv_init_is_lecun_normal():
    """matrix_init draws flax's default conv init: LeCun normal, truncated at 2σ,
    variance 1 / fan_in with fan_in = kh * kw * c_in."""
    shape = (3, 3, 16, 32)
    ours = np.asarray(CONV_INIT(jax.random.key(0), shape))
    assert ours.shape == shape
    np.testing.assert_allclose(ours.std(), 1 / np.sqrt(3 * 3 * 16), rtol=0.05)
    truncation = 2 / np.sqrt(3 * 3 * 16) / 0.87962566  # 2σ of the untruncated normal
    assert np.abs(ours).max() <= truncation + 1e-6


# --- depth-to-space -------------------------------------------------------------------


def _depth_to_space_slices(x, b):
    """Reference: output pixels (i, j) of every block are the channel slice (i b + j)."""
    n, h, w, c = x.shape
    out_c = c // (b * b)
    out = np.empty((n, h * b, w * b, out_c), x.dtype)
    for i, j in itertools.product(range(b), range(b)):
        out[:, i::b, j::b, :] = x[..., (i * b + j) * out_c : (i * b + j + 1) * out_c]
    return out


@pytest.mark.parametrize("b,channels", [(2, 3), (3, 2), (1, 5)])
def test_depth_to_space_matches_references(b, channels):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, channels * b * b)).astype(np.float32)
    got = np.asarray(depth_to_space(jnp.asarray(x), b))
    np.testing.assert_array_equal(got, _depth_to_space_slices(x, b))
    brute = np.empty_like(got)
    for n, y, xx, c in itertools.product(*map(range, brute.shape)):
        brute[n, y, xx, c] = x[n, y // b, xx // b, ((y % b) * b + xx % b) * channels + c]
    np.testing.assert_array_equal(got, brute)


def test_depth_to_space_rejects_bad_channels():
    with pytest.raises(ValueError, match="divisible"):
        depth_to_space(jnp.zeros((1, 2, 2, 6)), 2)
    with pytest.raises(ValueError, match="NHWC"):
        depth_to_space(jnp.zeros((2, 8)), 2)


# --- spectral normalisation -----------------------------------------------------------


def _iterate_power(models, d_vars, x, steps):
    """Applies D ``steps`` times with update_stats=True, threading batch_stats."""

    def body(_, stats):
        _, new = models["d"].apply(
            {"params": d_vars["params"], "batch_stats": stats},
            x,
            update_stats=True,
            mutable=["batch_stats"],
        )
        return new["batch_stats"]

    return jax.jit(lambda s: jax.lax.fori_loop(0, steps, body, s))(d_vars["batch_stats"])


def _sigma_max(kernel):
    kernel = np.asarray(kernel, np.float64)
    return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


def test_spectral_norm_mlp_matches_numpy_forward():
    """After power iteration converges, σ = largest singular value (numpy svd), and the
    discriminator equals a float64 numpy forward pass with every kernel divided by it."""
    cfg = tiny_config(arch="mlp", d_width=5, mlp_layers=2, spectral_norm=True)
    models = make_models(cfg, DataSpec((4,)))
    x = jax.random.normal(jax.random.key(3), (6, 4))
    d_vars = jax.jit(models["d"].init)(jax.random.key(4), x)
    stats = _iterate_power(models, d_vars, x, 300)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), d_vars["params"])
    trunk_stats = stats["trunk"]
    checked = [
        (
            p["trunk"][f"dense_{i}"]["kernel"],
            trunk_stats[f"SpectralNorm_{i}"][f"dense_{i}/kernel/sigma"],
        )
        for i in range(2)
    ]
    checked.append((p["head"]["kernel"], stats["SpectralNorm_0"]["head/kernel/sigma"]))
    for kernel, stored_sigma in checked:
        sigma = _sigma_max(kernel)
        np.testing.assert_allclose(stored_sigma, sigma, rtol=1e-4)
        np.testing.assert_allclose(_sigma_max(kernel / sigma), 1.0, rtol=1e-6)

    h = np.asarray(x, np.float64)
    for layer in ("dense_0", "dense_1"):
        w, b = p["trunk"][layer]["kernel"], p["trunk"][layer]["bias"]
        h = h @ (w / _sigma_max(w)) + b
        h = np.where(h > 0, h, 0.2 * h)
    w = p["head"]["kernel"]
    expected = (h @ (w / _sigma_max(w)))[:, 0] + p["head"]["bias"][0]
    got = jax.jit(models["d"].apply)({"params": d_vars["params"], "batch_stats": stats}, x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_spectral_norm_conv_kernel_and_update_stats():
    """Conv kernels are normalised as [kh kw c_in, c_out] matrices; the power-iteration
    state changes only with update_stats=True."""
    models = make_models(tiny_config(spectral_norm=True, d_width=3), DataSpec((8, 8, 1)))
    x = jax.random.normal(jax.random.key(5), (2, 8, 8, 1))
    d_vars = jax.jit(models["d"].init)(jax.random.key(6), x)
    stats = _iterate_power(models, d_vars, x, 300)
    for i in range(2):
        kernel = d_vars["params"]["trunk"][f"conv_{i}"]["kernel"]
        sigma = stats["trunk"][f"SpectralNorm_{i}"][f"conv_{i}/kernel/sigma"]
        np.testing.assert_allclose(sigma, _sigma_max(kernel), rtol=1e-4)

    @jax.jit
    def one_step(variables):
        return [
            models["d"].apply(variables, x, update_stats=flag, mutable=["batch_stats"])[1]
            for flag in (False, True)
        ]

    frozen, updated = one_step(d_vars)  # from the initial, unconverged state
    chex.assert_trees_all_equal(frozen["batch_stats"], d_vars["batch_stats"])
    u_key = "conv_0/kernel/u"
    assert not np.allclose(
        updated["batch_stats"]["trunk"]["SpectralNorm_0"][u_key],
        d_vars["batch_stats"]["trunk"]["SpectralNorm_0"][u_key],
    )


# --- conditional models -----------------------------------------------------------------


@pytest.mark.parametrize("arch,shape", [("mlp", (2,)), ("dcgan", (8, 8, 3))])
def test_projection_discriminator_by_hand(arch, shape):
    """D(x, y) = w·φ(x) + b + <V_y, φ(x)>, with φ the trunk's captured output."""
    models = make_models(tiny_config("cgan", arch), DataSpec(shape, CLASSES))
    x = jax.random.normal(jax.random.key(7), (5,) + shape)
    labels = jnp.array([0, 1, 2, 3, 1])

    @jax.jit
    def run(key):
        d_vars = models["d"].init(key, x, labels)
        logits, state = models["d"].apply(
            d_vars, x, labels, capture_intermediates=lambda m, _: m.name == "trunk"
        )
        return d_vars, logits, state["intermediates"]["trunk"]["__call__"][0]

    d_vars, logits, phi = run(jax.random.key(8))
    phi = np.asarray(phi, np.float64)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), d_vars["params"])
    unconditional = phi @ p["head"]["kernel"][:, 0] + p["head"]["bias"][0]
    projection = np.sum(p["label_embed"]["embedding"][np.asarray(labels)] * phi, axis=-1)
    np.testing.assert_allclose(logits, unconditional + projection, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(projection) > 0)


def test_conditional_generator_concatenates_label_embedding():
    """G(z, y) = tanh(body([z, E_y])), and the label changes the sample."""
    models = make_models(tiny_config("cgan"), DataSpec((8, 8, 1), CLASSES))
    z = jax.random.normal(jax.random.key(9), (4, LATENT))
    labels = jnp.array([3, 0, 1, 3])

    @jax.jit
    def run(key):
        g_vars = models["g"].init(key, z, labels)
        code = jnp.concatenate([z, g_vars["params"]["label_embed"]["embedding"][labels]], -1)
        body_out = models["g"].body.apply({"params": g_vars["params"]["body"]}, code)
        return (
            models["g"].apply(g_vars, z, labels),
            body_out,
            models["g"].apply(g_vars, z, (labels + 1) % CLASSES),
        )

    x, body_out, other = run(jax.random.key(10))
    np.testing.assert_allclose(x, np.tanh(np.asarray(body_out, np.float64)), rtol=1e-5, atol=1e-6)
    assert not np.allclose(x, other, atol=1e-3)


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides,spec,match",
    [
        (dict(arch="resnet"), DataSpec((8, 8, 1)), r"unknown arch 'resnet'.*'dcgan', 'mlp'"),
        (
            dict(kind="wgan"),
            DataSpec((8, 8, 1)),
            r"unknown model_type 'wgan'.*'cgan', 'cyclegan', 'gan', 'vae'",
        ),
        (dict(upsample="nearest"), DataSpec((8, 8, 1)), r"unknown upsample 'nearest'"),
        (dict(kind="vae", likelihood="laplace"), DataSpec((8, 8, 1)), r"likelihood 'laplace'"),
        (dict(), DataSpec((2,)), r"needs image data of shape \(H, W, C\), got \(2,\)"),
        (dict(), DataSpec((7, 7, 1)), r"7x7 is not reachable"),
        (dict(stages=3), DataSpec((28, 28, 1)), r"28x28 is not reachable by 3 .*divisible by 8"),
        (dict(stages=-1), DataSpec((8, 8, 1)), r"stages must be >= 0"),
        (dict(kind="cgan"), DataSpec((8, 8, 1), 0), r"num_classes = 0"),
        (dict(kind="vae", spectral_norm=True), DataSpec((8, 8, 1)), r"spectral_norm"),
        (
            dict(kind="vae", likelihood="gaussian", gaussian_std=0.0),
            DataSpec((8, 8, 1)),
            r"gaussian_std must be > 0",
        ),
        (dict(latent_dim=0), DataSpec((8, 8, 1)), r"latent_dim must be >= 1, got 0"),
        (dict(arch="mlp"), DataSpec((0,)), r"non-empty and positive"),
    ],
)
def test_make_models_rejects_bad_config(overrides, spec, match):
    with pytest.raises(ValueError, match=match):
        make_models(tiny_config(**overrides), spec)


def test_apply_rejects_mismatched_inputs():
    gan = make_models(tiny_config(), DataSpec((8, 8, 1)))
    cgan = make_models(tiny_config("cgan"), DataSpec((8, 8, 1), CLASSES))
    vae = make_models(tiny_config("vae"), DataSpec((8, 8, 1)))
    key, z = jax.random.key(0), jnp.zeros((2, LATENT))
    with pytest.raises(ValueError, match=r"x must have shape \[N, 8, 8, 1\], got \(2, 8, 8, 3\)"):
        gan["d"].init(key, jnp.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"z must have shape \[N, 3\], got \(2, 5\)"):
        gan["g"].init(key, jnp.zeros((2, 5)))
    with pytest.raises(ValueError, match="unconditional"):
        gan["g"].init(key, z, jnp.zeros((2,), jnp.int32))
    with pytest.raises(ValueError, match="labels are required"):
        cgan["d"].init(key, jnp.zeros((2, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"integer \[N\] = \[2\]"):
        cgan["g"].init(key, z, jnp.zeros((2,), jnp.float32))
    with pytest.raises(ValueError, match=r"x must have shape \[N, 8, 8, 1\]"):
        vae["encoder"].init(key, jnp.zeros((2, 28, 28, 1)))
    with pytest.raises(ValueError, match=r"z must have shape \[N, 3\]"):
        vae["decoder"].init(key, jnp.zeros((2, 4)))
