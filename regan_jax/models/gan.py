"""GAN generator and discriminator, unconditional or class-conditional.

Both wrap a body/trunk from :mod:`regan_jax.models.layers` (MLP or DCGAN
conv), so the conditioning and the checks of input shapes live here once.
No BatchNorm (see :mod:`regan_jax.models.layers` for why).

* :class:`Generator`: ``x = a(body([z, e(y)]))``; ``a`` is ``tanh`` (images
  in [-1, 1], the default) or the identity (``output='linear'``: 2-D mixtures
  at their published scale, as in the Unrolled GAN / VEEGAN / PacGAN
  generators); ``e`` is a learned label embedding of size ``latent_dim``,
  concatenated to ``z`` only when ``num_classes > 0``.
* :class:`Discriminator` (projection discriminator, Miyato & Koyama 2018):
  ``D(x, y) = w·φ(x) + b + <V_y, φ(x)>``; ``φ`` is the trunk's feature vector
  and the projection term is present only when ``num_classes > 0``. With
  ``spectral_norm`` every kernel, the head and the embedding ``V`` are
  spectrally normalised; the power-iteration state lives in ``batch_stats``.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from regan_jax.models.layers import check_trailing_shape, maybe_spectral_norm


def identity(x):
    return x


# The generator's output activation, by config.model.g_output.
OUTPUTS = {"tanh": jnp.tanh, "linear": identity}


def check_labels(labels, batch_size: int, num_classes: int) -> None:
    """Labels must be integer ``[N]`` for a conditional model and ``None`` otherwise."""
    if num_classes == 0:
        if labels is not None:
            raise ValueError("this model is unconditional (num_classes = 0) but got labels")
        return
    if labels is None:
        raise ValueError(f"this model is conditional on {num_classes} classes; labels are required")
    if labels.shape != (batch_size,) or not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(
            f"labels must be integer [N] = [{batch_size}], got shape "
            f"{tuple(labels.shape)} and dtype {labels.dtype}"
        )


class Generator(nn.Module):
    """``g.apply({'params': p}, z, labels=None) -> x`` of the data's shape.

    Attributes:
      body: code ``[N, K] -> [N, *data_shape]`` (pre-activation).
      latent_dim: size of ``z``.
      num_classes: 0 for an unconditional generator, else the number of classes
        whose embedding (size ``latent_dim``, init N(0, 1) like ``z``) is
        concatenated to ``z``.
      output: the output activation, a value of :data:`OUTPUTS` (``tanh``:
        in [-1, 1]; ``identity``: unbounded).
    """

    body: nn.Module
    latent_dim: int
    num_classes: int = 0
    output: Callable[[jax.Array], jax.Array] = jnp.tanh

    @nn.compact
    def __call__(self, z, labels=None):
        check_trailing_shape("z", z, (self.latent_dim,))
        check_labels(labels, z.shape[0], self.num_classes)
        if self.num_classes:
            embed = nn.Embed(
                self.num_classes,
                self.latent_dim,
                embedding_init=nn.initializers.normal(1.0),
                name="label_embed",
            )
            z = jnp.concatenate([z, embed(labels)], axis=-1)
        return self.output(self.body(z))


class Discriminator(nn.Module):
    """``d.apply(variables, x, labels=None, update_stats=False) -> logits [N]``.

    .. math::
        D(x, y) = w^\\top φ(x) + b + [\\text{num\\_classes} > 0]\\, V_y^\\top φ(x)

    Attributes:
      trunk: ``x [N, *data_shape] -> φ(x) [N, F]``, called with ``update_stats``.
      data_shape: the shape of one example; other inputs raise ValueError.
      num_classes: 0 for unconditional, else the rows of the projection
        embedding ``V`` (init LeCun normal over F, the scale of the head ``w``).
      spectral_norm: normalise the head and ``V`` (the trunk has its own flag).
    """

    trunk: nn.Module
    data_shape: tuple[int, ...]
    num_classes: int = 0
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, x, labels=None, update_stats: bool = False):
        check_trailing_shape("x", x, self.data_shape)
        check_labels(labels, x.shape[0], self.num_classes)
        features = self.trunk(x, update_stats=update_stats)
        logits = maybe_spectral_norm(
            nn.Dense(1, name="head"),
            features,
            enabled=self.spectral_norm,
            update_stats=update_stats,
        )
        logits = logits[:, 0]
        if self.num_classes:
            embed = nn.Embed(
                self.num_classes,
                features.shape[-1],
                name="label_embed",
                embedding_init=nn.initializers.lecun_normal(in_axis=-1, out_axis=-2),
            )
            projection = maybe_spectral_norm(
                embed, labels, enabled=self.spectral_norm, update_stats=update_stats
            )
            logits = logits + jnp.sum(projection * features, axis=-1)
        return logits
