"""Flax linen networks and the architecture rules; the model families assemble them.

Which networks a run trains is its model family's business
(:mod:`regan_jax.families`: ``{'g', 'd'}`` for the GANs, ``{'encoder',
'decoder'}`` for the VAE, ``{'g', 'f', 'd_a', 'd_b'}`` for the cycle GAN);
this package holds the modules (:class:`Generator`, :class:`Discriminator`
with an optional projection head, :class:`Encoder`, :class:`Decoder`, the
cycle GAN's :class:`Translator`) and :func:`trunk_and_body`, the one place
that turns ``config.model`` into the feature trunk and the generating body
of the chosen architecture.

``config.model.arch`` picks the networks' shape: ``'mlp'`` (any data shape,
flattened; the 2-D mixtures) or ``'dcgan'`` (images ``(H, W, C)``). The DCGAN
nets have ``stages`` stride-2 down/up-sampling stages, derived from the image
size when ``stages`` = 0: the most (up to 3) that leave a base of at least 2x2
(8x8 -> 2 stages from 2x2, 28x28 -> 2 from 7x7, 32x32 -> 3 from 4x4). The
discriminator (and VAE encoder) sizes come from ``d_width``, the generator
(and VAE decoder) sizes from ``g_width``. No BatchNorm anywhere; kernels use
flax's default init (see :mod:`regan_jax.models.layers`); float32.
"""

import ml_collections

from regan_jax._names import choose
from regan_jax.data.spec import DataSpec
from regan_jax.models.cyclegan import Translator
from regan_jax.models.gan import OUTPUTS as GENERATOR_OUTPUTS
from regan_jax.models.gan import Discriminator, Generator
from regan_jax.models.layers import (
    UPSAMPLERS,
    ConvBody,
    ConvTrunk,
    MLPBody,
    MLPTrunk,
    depth_to_space,
)
from regan_jax.models.vae import Decoder, Encoder

__all__ = [
    "ARCHITECTURES",
    "DataSpec",
    "Decoder",
    "Discriminator",
    "Encoder",
    "GENERATOR_OUTPUTS",
    "Generator",
    "Translator",
    "default_config",
    "depth_to_space",
    "num_stages",
    "trunk_and_body",
]

MAX_STAGES = 3


def default_config() -> ml_collections.ConfigDict:
    """``config.model``: sized for Fashion-MNIST GANs on a 2-core CPU."""
    return ml_collections.ConfigDict(
        {
            "arch": "dcgan",  # 'mlp' | 'dcgan' (ARCHITECTURES)
            "latent_dim": 64,  # size of z
            "g_width": 64,  # G/decoder: channels of the last stage (MLP: hidden width)
            "d_width": 64,  # D/encoder: channels of the first stage (MLP: hidden width)
            "stages": 0,  # DCGAN up/down-sampling stages; 0 = derived from the image size
            "mlp_layers": 2,  # MLP hidden layers in each network
            "upsample": "subpixel",  # 'subpixel' (conv then depth-to-space) | 'conv_transpose'
            "g_output": "tanh",  # GAN generator output: 'tanh' ([-1, 1]) | 'linear' (mixtures)
            "spectral_norm": False,  # spectrally normalise every discriminator layer (baseline)
            "likelihood": "bernoulli",  # VAE p(x|z): 'bernoulli' | 'gaussian' (losses.LIKELIHOODS)
            "gaussian_std": 0.1,  # fixed std of the Gaussian likelihood (data in [-1, 1])
        }
    )


def num_stages(shape: tuple[int, ...], stages: int = 0) -> int:
    """Stride-2 stages of a DCGAN net for images of ``shape = (H, W, C)``.

    ``stages`` > 0 is checked (H and W must be divisible by 2**stages);
    0 derives the most stages, up to 3, that leave a base of at least 2x2.

    Raises:
      ValueError: the shape is not an image, or its size cannot be reached.
    """
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"arch 'dcgan' needs image data of shape (H, W, C), got {shape}; "
            "use arch 'mlp' for other data"
        )
    height, width, _ = shape
    if stages < 0:
        raise ValueError(f"stages must be >= 0 (0 = derived), got {stages}")
    if stages == 0:
        stages = max(
            (
                k
                for k in range(MAX_STAGES + 1)
                if height % 2**k == 0 and width % 2**k == 0 and min(height, width) // 2**k >= 2
            ),
            default=0,
        )
        if stages == 0:
            raise ValueError(
                f"image size {height}x{width} is not reachable by stride-2 "
                "stages: it needs an even size of at least 4"
            )
    elif height % 2**stages or width % 2**stages:
        raise ValueError(
            f"image size {height}x{width} is not reachable by {stages} stride-2 "
            f"stages: both sides must be divisible by {2**stages}"
        )
    return stages


def _mlp_nets(cfg, shape, spectral_norm):
    """(trunk, body) of arch 'mlp'."""
    return (
        MLPTrunk(cfg.d_width, cfg.mlp_layers, spectral_norm),
        MLPBody(cfg.g_width, cfg.mlp_layers, tuple(shape)),
    )


def _dcgan_nets(cfg, shape, spectral_norm):
    """(trunk, body) of arch 'dcgan'."""
    stages = num_stages(shape, cfg.stages)
    return (
        ConvTrunk(cfg.d_width, stages, spectral_norm),
        ConvBody(cfg.g_width, stages, tuple(shape), cfg.upsample),
    )


ARCHITECTURES = {"mlp": _mlp_nets, "dcgan": _dcgan_nets}


def trunk_and_body(model_cfg: ml_collections.ConfigDict, data_spec, spectral_norm: bool = False):
    """``(trunk, body, spec)``: the architecture's feature trunk and generating body.

    The trunk maps data to features (the discriminator's or encoder's body),
    the body maps a latent vector to data (the generator's or decoder's).

    Args:
      model_cfg: ``config.model`` (see :func:`default_config`).
      data_spec: anything with ``shape`` (one example, e.g. ``(2,)`` or
        ``(28, 28, 1)``) and ``num_classes`` (e.g. :class:`DataSpec`).
      spectral_norm: spectrally normalise the trunk's layers.

    Returns:
      The two modules and ``data_spec`` as a :class:`DataSpec` of Python ints.

    Raises:
      ValueError: an unknown arch or upsample name, a non-positive size, or a
        shape the architecture cannot produce -- before any compute.
    """
    build = choose("arch", model_cfg.arch, ARCHITECTURES)
    choose("upsample", model_cfg.upsample, UPSAMPLERS)
    for key in ("latent_dim", "g_width", "d_width", "mlp_layers"):
        if model_cfg[key] < 1:
            raise ValueError(f"config.model.{key} must be >= 1, got {model_cfg[key]}")
    shape = tuple(int(s) for s in data_spec.shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"data shape must be non-empty and positive, got {data_spec.shape}")
    trunk, body = build(model_cfg, shape, spectral_norm)
    return trunk, body, DataSpec(shape, int(data_spec.num_classes))
