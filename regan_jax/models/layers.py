"""Building blocks shared by the GAN and VAE models.

A *trunk* maps data ``x`` to a feature vector ``[N, F]`` (the discriminator and
the VAE encoder are a trunk plus a head); a *body* maps a code ``[N, K]`` to a
pre-activation output of the data's shape (the generator is a body plus
``tanh``, the VAE decoder is a body alone).

There is no BatchNorm anywhere, by design: batch statistics are mutable state
that depends on the per-device batch, so a BatchNorm model would break the
equivalence "N steps on D devices = N steps on one device" that the
data-parallel steps assert, and a normalisation layer after a kernel makes
that kernel scale-invariant, which would confound the weight-norm penalties
this project studies. The only state is the power-iteration vector of
spectral normalisation (collection ``batch_stats``), which does not depend on
the data.

Kernels use flax's default initialisation (LeCun normal, zero biases) rather
than DCGAN's N(0, 0.02²): without BatchNorm the small DCGAN init shrinks the
activations by about 2x per layer. Conv kernels draw that same distribution
through :func:`matrix_init` (see there for why).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from regan_jax._names import choose

LEAKY_SLOPE = 0.2


def depth_to_space(x: jnp.ndarray, block_size: int) -> jnp.ndarray:
    """Moves channel blocks into ``block_size`` x ``block_size`` spatial blocks (NHWC).

    .. math::
        y[n, h b + i, w b + j, c] = x[n, h, w, (i b + j) C + c],
        \\quad C = \\mathrm{channels} / b^2,

    the "DCR" ordering of ``tf.nn.depth_to_space`` (pixel shuffle). Written
    here because neither jax nor flax ships it.

    Args:
      x: ``[N, H, W, C b²]``.
      block_size: ``b`` >= 1.

    Returns:
      ``[N, H b, W b, C]``.
    """
    if x.ndim != 4:
        raise ValueError(f"depth_to_space expects NHWC input, got shape {x.shape}")
    n, h, w, c = x.shape
    b = block_size
    if b < 1 or c % (b * b):
        raise ValueError(f"channels {c} are not divisible by block_size² = {b * b}")
    out_c = c // (b * b)
    x = x.reshape(n, h, w, b, b, out_c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h * b, w * b, out_c)


def matrix_init(init):
    """``init`` drawn as a ``[prod(shape[:-1]), shape[-1]]`` matrix, reshaped to ``shape``.

    For a conv kernel ``[kh, kw, c_in, c_out]`` the LeCun fan-in is
    ``kh * kw * c_in`` either way, so the distribution is the same as
    ``init(key, shape)``. Why: with jax's default partitionable threefry, XLA's
    CPU compiler takes seconds for random draws of rank >= 3 (measured 5.7 s
    for a ``[3, 3, 8, 16]`` draw vs 0.2 s for the same 1,152 numbers as a
    vector), and every init and sweep would pay it for each conv kernel.
    """

    def init_fn(key, shape, dtype=jnp.float32):
        matrix = init(key, (int(np.prod(shape[:-1])), shape[-1]), dtype)
        return matrix.reshape(shape)

    return init_fn


CONV_INIT = matrix_init(nn.initializers.lecun_normal())


def _subpixel(features: int, x: jnp.ndarray) -> jnp.ndarray:
    """3x3 conv to ``4 * features`` channels at low resolution, then depth-to-space."""
    conv = nn.Conv(4 * features, (3, 3), kernel_init=CONV_INIT, name="conv")
    return depth_to_space(conv(x), 2)


def _conv_transpose(features: int, x: jnp.ndarray) -> jnp.ndarray:
    """Stride-2 4x4 transposed convolution (DCGAN's upsampling)."""
    return nn.ConvTranspose(
        features, (4, 4), strides=(2, 2), kernel_init=CONV_INIT, name="conv_transpose"
    )(x)


# Sub-pixel is the default: on XLA's CPU backend the backward pass of a
# stride-2 ConvTranspose is much slower than a sub-pixel conv.
UPSAMPLERS = {"subpixel": _subpixel, "conv_transpose": _conv_transpose}


class Upsample2x(nn.Module):
    """Doubles height and width: ``[N, H, W, C] -> [N, 2H, 2W, features]``."""

    features: int
    method: str = "subpixel"

    @nn.compact
    def __call__(self, x):
        return choose("upsample", self.method, UPSAMPLERS)(self.features, x)


def maybe_spectral_norm(layer: nn.Module, x, *, enabled: bool, update_stats: bool):
    """Calls ``layer(x)``, through ``nn.SpectralNorm`` when ``enabled``.

    Spectral normalisation (Miyato et al. 2018) divides the kernel ``W``,
    reshaped to a matrix ``[fan_in, features]`` (for a conv: ``kh * kw * c_in``
    rows), by its largest singular value σ(W), estimated by one power
    iteration per call from a vector ``u`` stored in the ``batch_stats``
    collection; ``update_stats=True`` (with ``mutable=['batch_stats']``)
    stores the new ``u`` and σ. Biases are not normalised. Must be called
    inside a module's compact method.
    """
    if enabled:
        return nn.SpectralNorm(layer)(x, update_stats=update_stats)
    return layer(x)


def check_trailing_shape(name: str, x: jnp.ndarray, expected: Sequence[int]) -> None:
    """Raises ValueError unless ``x`` is ``[N, *expected]``."""
    expected = tuple(expected)
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"{name} must have shape [N, {', '.join(map(str, expected))}], got {tuple(x.shape)}"
        )


class MLPTrunk(nn.Module):
    """``x [N, ...] -> h [N, width]``: flatten, then ``layers`` x (Dense, leaky ReLU 0.2)."""

    width: int
    layers: int
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, x, update_stats: bool = False):
        h = x.reshape(x.shape[0], -1)
        for i in range(self.layers):
            dense = nn.Dense(self.width, name=f"dense_{i}")
            h = maybe_spectral_norm(dense, h, enabled=self.spectral_norm, update_stats=update_stats)
            h = nn.leaky_relu(h, LEAKY_SLOPE)
        return h


class MLPBody(nn.Module):
    """``z [N, K] -> [N, *out_shape]``: ``layers`` x (Dense, ReLU), then a linear Dense."""

    width: int
    layers: int
    out_shape: tuple[int, ...]

    @nn.compact
    def __call__(self, z):
        h = z
        for i in range(self.layers):
            h = nn.relu(nn.Dense(self.width, name=f"dense_{i}")(h))
        out = nn.Dense(int(np.prod(self.out_shape)), name="out")(h)
        return out.reshape((z.shape[0],) + tuple(self.out_shape))


class ConvTrunk(nn.Module):
    """``x [N, H, W, C] -> h [N, (H/2^s)(W/2^s) width 2^(s-1)]``.

    ``s = stages`` stride-2 4x4 convs with ``width * 2**i`` channels, each
    followed by leaky ReLU 0.2, then flatten (DCGAN's discriminator without
    BatchNorm).
    """

    width: int
    stages: int
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, x, update_stats: bool = False):
        h = x
        for i in range(self.stages):
            conv = nn.Conv(
                self.width * 2**i, (4, 4), strides=(2, 2), kernel_init=CONV_INIT, name=f"conv_{i}"
            )
            h = maybe_spectral_norm(conv, h, enabled=self.spectral_norm, update_stats=update_stats)
            h = nn.leaky_relu(h, LEAKY_SLOPE)
        return h.reshape(h.shape[0], -1)


class ConvBody(nn.Module):
    """``z [N, K] -> [N, H, W, C]`` (pre-activation), DCGAN generator without BatchNorm.

    Dense to ``[H/2^s, W/2^s, width 2^(s-1)]``, then ``s = stages`` x
    (upsample 2x to ``width * 2**(s-1-i)`` channels, ReLU), then a 3x3 conv
    to ``C`` channels.
    """

    width: int
    stages: int
    out_shape: tuple[int, int, int]
    upsample: str = "subpixel"

    @nn.compact
    def __call__(self, z):
        height, width, channels = self.out_shape
        base_h, base_w = height // 2**self.stages, width // 2**self.stages
        base_c = self.width * 2 ** (self.stages - 1)
        h = nn.relu(nn.Dense(base_h * base_w * base_c, name="project")(z))
        h = h.reshape(z.shape[0], base_h, base_w, base_c)
        for i in range(self.stages):
            features = self.width * 2 ** (self.stages - 1 - i)
            h = nn.relu(Upsample2x(features, self.upsample, name=f"up_{i}")(h))
        return nn.Conv(channels, (3, 3), kernel_init=CONV_INIT, name="out")(h)
