"""The cycle GAN's translators: images of one domain to images of the other, same shape.

:class:`Translator`, ``arch='dcgan'``: a U-Net (the pix2pix and CycleGAN
``unet`` generators, without normalisation layers): stride-2 4x4 convs down
(``width``·2^i channels, leaky ReLU), as many upsampling stages up, each
concatenated with the encoder's input at its resolution, then a 3x3 conv to
the image (the skips keep the layout, so content is preserved by construction
rather than by luck); ``arch='mlp'``: the MLP trunk (``width``, ``depth``
layers) then the MLP body. Output ``tanh`` by default. The cycle GAN family
(:mod:`regan_jax.families.cyclegan`) builds them from ``config.model``
(``g_width``, ``mlp_layers`` or the derived stages; ``latent_dim`` is unused)
and pairs them with the GAN's :class:`~regan_jax.models.gan.Discriminator`.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from regan_jax.models import layers


class Translator(nn.Module):
    """``t.apply({'params': p}, x) -> y``, images ``[N, H, W, C]`` to the same shape.

    Attributes:
      arch: ``'mlp'`` or ``'dcgan'`` (module docstring).
      width: hidden width (MLP) or the channels of the first conv stage.
      depth: MLP hidden layers of each half, or conv stages down (and up).
      data_shape: ``(H, W, C)``.
      upsample: ``'subpixel'`` or ``'conv_transpose'`` (dcgan).
      output: the output activation (``tanh``: [-1, 1]).
    """

    arch: str
    width: int
    depth: int
    data_shape: tuple[int, ...]
    upsample: str = "subpixel"
    output: Callable[[jax.Array], jax.Array] = jnp.tanh

    @nn.compact
    def __call__(self, x):
        layers.check_trailing_shape("x", x, self.data_shape)
        if self.arch == "mlp":
            h = layers.MLPTrunk(self.width, self.depth, name="encode")(x)
            return self.output(
                layers.MLPBody(self.width, self.depth, self.data_shape, name="decode")(h)
            )
        skips, h = [], x
        for i in range(self.depth):
            skips.append(h)
            h = nn.Conv(
                self.width * 2**i,
                (4, 4),
                strides=(2, 2),
                kernel_init=layers.CONV_INIT,
                name=f"down_{i}",
            )(h)
            h = nn.leaky_relu(h, layers.LEAKY_SLOPE)
        for i in range(self.depth):
            features = self.width * 2 ** (self.depth - 1 - i)
            h = nn.relu(layers.Upsample2x(features, self.upsample, name=f"up_{i}")(h))
            h = jnp.concatenate([h, skips[-1 - i]], axis=-1)
        return self.output(
            nn.Conv(self.data_shape[-1], (3, 3), kernel_init=layers.CONV_INIT, name="out")(h)
        )
