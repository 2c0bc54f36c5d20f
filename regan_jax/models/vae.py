"""VAE encoder and decoder (Kingma & Welling 2014), built on the shared trunks/bodies.

The encoder gives the diagonal Gaussian posterior q(z|x) = N(mean, exp(logvar));
the decoder gives the parameters of p(x|z): Bernoulli logits over the pixels
mapped to [0, 1], or the mean of a Gaussian with fixed std (the likelihood is
chosen in the loss, :func:`regan_jax.losses.negative_elbo`; both are linear
outputs). No BatchNorm (see :mod:`regan_jax.models.layers`).
"""

import flax.linen as nn
import jax.numpy as jnp

from regan_jax.models.layers import check_trailing_shape


class Encoder(nn.Module):
    """``encoder.apply({'params': p}, x) -> (mean, logvar)``, each ``[N, latent_dim]``.

    Attributes:
      trunk: ``x -> features [N, F]``; a linear head maps them to both outputs.
      data_shape: the shape of one example; other inputs raise ValueError.
      latent_dim: size of ``z``.
    """

    trunk: nn.Module
    data_shape: tuple[int, ...]
    latent_dim: int

    @nn.compact
    def __call__(self, x):
        check_trailing_shape("x", x, self.data_shape)
        out = nn.Dense(2 * self.latent_dim, name="head")(self.trunk(x))
        mean, logvar = jnp.split(out, 2, axis=-1)
        return mean, logvar


class Decoder(nn.Module):
    """``decoder.apply({'params': p}, z) -> [N, *data_shape]``: logits or Gaussian mean.

    Attributes:
      body: ``z [N, latent_dim] -> [N, *data_shape]``.
      latent_dim: size of ``z``.
    """

    body: nn.Module
    latent_dim: int

    @nn.compact
    def __call__(self, z):
        check_trailing_shape("z", z, (self.latent_dim,))
        return self.body(z)
