"""2-D Gaussian mixtures of the mode-collapse literature, sampled on the fly.

``ring8`` (Unrolled GAN, VEEGAN, PacGAN): 8 modes on a circle of radius r,
``c_k = r (cos 2πk/8, sin 2πk/8)``, k = 0..7.
``grid25``: a 5×5 grid with spacing s centred at the origin,
``c_{ij} = s (i - 2, j - 2)``, i, j = 0..4 (mode index 5i + j).
Every mode has weight 1/M and isotropic standard deviation σ:
``x = c_y + σ ε``, ``y ~ Uniform{0..M-1}``, ``ε ~ N(0, I₂)``.
Defaults r = 2, s = 2, σ = 0.02 are the published settings.
``Mixture.support()`` is the box around the modes in which the mode metrics'
noise null (uniform points) lives.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from regan_jax.data.spec import DataSpec
from regan_jax.metrics import modes

MIXTURES = ("ring8", "grid25")


@dataclasses.dataclass(frozen=True)
class Mixture:
    """A 2-D mixture of M equally weighted isotropic Gaussians.

    Attributes:
      name: ``'ring8'`` or ``'grid25'``.
      centres: ``float32 [M, 2]`` mode centres (the evaluation's true modes).
      sigma: the standard deviation σ of every mode.
    """

    name: str
    centres: np.ndarray
    sigma: float

    @property
    def num_modes(self) -> int:
        return len(self.centres)

    @property
    def spec(self) -> DataSpec:
        """Points are ``[2]``; the classes are the modes."""
        return DataSpec(shape=(2,), num_classes=self.num_modes, name=self.name)

    def sample_labelled(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        """``n`` points ``float32 [n, 2]`` and their mode indices ``int32 [n]``."""
        return draw(key, jnp.asarray(self.centres), jnp.float32(self.sigma), n)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` points ``float32 [n, 2]`` drawn with ``key`` (as :meth:`sample_labelled`)."""
        return self.sample_labelled(key, n)[0]

    def support(self) -> tuple[np.ndarray, np.ndarray]:
        """The box around the modes, corners ``(low [2], high [2])`` (float64).

        The centres' bounding box enlarged on every side by half the smallest
        distance between two centres (:func:`regan_jax.metrics.modes.support_box`):
        ``ring8`` ``[-1.383 r, 1.383 r]²``, ``grid25`` ``[-2.5 s, 2.5 s]²``. The
        mode metrics' noise null is uniform in it; the evaluator, the null
        references and the figures all use this box.
        """
        return modes.support_box(self.centres)


def mixture(
    name: str, *, radius: float = 2.0, spacing: float = 2.0, sigma: float = 0.02
) -> Mixture:
    """The mixture called ``name`` (``'ring8'`` or ``'grid25'``).

    Args:
      name: one of :data:`MIXTURES`.
      radius: ring radius r (``ring8``).
      spacing: grid spacing s (``grid25``).
      sigma: per-mode standard deviation σ > 0.

    Raises:
      ValueError: an unknown name or a non-positive radius, spacing or sigma.
    """
    for label, value in (("radius", radius), ("spacing", spacing), ("sigma", sigma)):
        if not value > 0:
            raise ValueError(f"mixture {label} must be > 0, got {value!r}")
    if name == "ring8":
        angles = 2 * np.pi * np.arange(8) / 8
        centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    elif name == "grid25":
        i, j = np.meshgrid(np.arange(5), np.arange(5), indexing="ij")
        centres = spacing * np.stack([i.ravel() - 2, j.ravel() - 2], axis=1)
    else:
        raise ValueError(f"mixture {name!r} unknown; expected one of {list(MIXTURES)}")
    return Mixture(name=name, centres=centres.astype(np.float32), sigma=float(sigma))


@functools.partial(jax.jit, static_argnums=3)
def draw(key, centres, sigma, n):
    """``n`` points of the mixture of ``centres`` ``[M, 2]`` and ``sigma``, and their modes.

    :meth:`Mixture.sample_labelled` with the centres and σ as arguments: a
    program that draws inside a larger jitted step
    (:func:`regan_jax.data.device_feed`) passes them as values, not
    constants, so XLA folds nothing and the points are bitwise those drawn
    here alone.
    """
    mode_key, noise_key = jax.random.split(key)
    labels = jax.random.randint(mode_key, (n,), 0, centres.shape[0], dtype=jnp.int32)
    points = centres[labels] + sigma * jax.random.normal(noise_key, (n, 2), jnp.float32)
    return points, labels
