"""Smoothness of a generator's mapping z -> x: perceptual path length and the Jacobian.

Each function takes ``generate(z [N, K]) -> x [N, ...]`` (a GAN generator or
a VAE decoder's image map with its parameters bound) and, for the path
length, ``embed(x) -> [N, F]`` (the classifier's features).

- :func:`perceptual_path_length`: Karras et al. 2019 (StyleGAN, §3.2).
- :func:`jacobian_frobenius`: ``sqrt(E_z ‖J_G(z)‖_F²)`` from random
  projections (``jax.jvp``: one forward-mode pass per projection).
- :func:`jacobian_singular_values`: exact singular values of ``J_G(z)``
  (``jax.jacfwd``; for small generators) and from them the condition number
  of Odena et al. 2018 ("Is generator conditioning causally related to GAN
  performance?").

Each function jits its program around the ``generate`` it is given, so a
new ``generate`` (another member's parameters) compiles anew; with
:func:`programs` (``programs=``) the map is an argument of programs
compiled once: ``generate`` must then be a ``jax.tree_util.Partial`` whose
function is the same for every member and whose arguments are its parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

PPL_PERCENTILES = (1.0, 99.0)


def _flat(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1)


def path_lengths(
    generate: Callable, embed: Callable, z0: jax.Array, z1: jax.Array, t: jax.Array
) -> jax.Array:
    """Per-pair squared speed of ``embed ∘ generate`` along the line from ``z0`` to ``z1``.

    .. math::
      \\ell_i = \\Big\\| \\frac{\\partial}{\\partial t}\\,
        \\phi\\big(G(\\mathrm{lerp}(z_{0,i}, z_{1,i}, t))\\big)\\Big|_{t = t_i} \\Big\\|^2
      = \\lim_{\\epsilon \\to 0} \\frac{1}{\\epsilon^2}
        \\big\\| \\phi(G(\\mathrm{lerp}(z_0, z_1, t))) - \\phi(G(\\mathrm{lerp}(z_0, z_1, t + \\epsilon)))\\big\\|^2

    The paper's ``ε = 1e-4`` finite difference, taken to its limit exactly
    by ``jax.jvp`` (in float32 a 1e-4 difference of O(1) features keeps
    only about three digits).

    Args:
      generate: ``z [N, K] -> x``.
      embed: ``x -> features [N, F]`` (identity for pixel space).
      z0, z1: ``[N, K]`` end points; ``t``: ``[N]`` positions in ``[0, 1]``.

    Returns:
      ``[N]`` squared path speeds.
    """

    def along(s):
        z = z0 + (t + s)[:, None] * (z1 - z0)
        return _flat(embed(generate(z)))

    _, speed = jax.jvp(along, (jnp.zeros_like(t),), (jnp.ones_like(t),))
    return jnp.sum(jnp.square(speed), axis=1)


class Programs(NamedTuple):
    """The smoothness programs with the map ``generate`` (a ``jax.tree_util.Partial``) an argument."""

    path_lengths: Callable  # (generate, z0, z1, t) -> [N], with programs()' embed
    jacobians: Callable  # (generate, z [N, K]) -> [N, D, K]


def _jacobians(generate: Callable, z: jax.Array) -> jax.Array:
    def one(zi):
        return jax.jacfwd(lambda v: generate(v[None]).reshape(-1))(zi)

    return jax.vmap(one)(z)


def programs(embed: Callable) -> Programs:
    """:class:`Programs` for ``embed``, compiled at their first call and reused by every map."""
    return Programs(
        path_lengths=jax.jit(lambda generate, z0, z1, t: path_lengths(generate, embed, z0, z1, t)),
        jacobians=jax.jit(_jacobians),
    )


def filtered_mean(values, percentiles=PPL_PERCENTILES) -> float:
    """Mean of the values between two percentiles (inclusive), as StyleGAN's PPL filters them."""
    values = np.asarray(values, np.float64)
    low, high = np.percentile(values, percentiles)
    return float(np.mean(values[(values >= low) & (values <= high)]))


def perceptual_path_length(
    generate: Callable,
    embed: Callable,
    key: jax.Array,
    num_samples: int,
    latent_dim: int,
    *,
    batch_size: int = 500,
    percentiles=PPL_PERCENTILES,
    programs: Programs | None = None,
) -> float:
    """Perceptual path length (Karras et al. 2019, "A style-based generator architecture").

    Pairs ``z0, z1 ~ N(0, I)`` and ``t ~ U(0, 1)`` (``key`` split three
    ways), :func:`path_lengths` in ``embed``'s space, and the mean of those
    between the 1st and 99th percentiles (the paper's filtering of
    outliers). Linear interpolation: the paper lerps in its W space and
    slerps in Z; these latents feed the generator directly and lerp keeps
    the closed forms of a linear map (``E ℓ = 2 ‖A‖_F²`` in pixel space).
    Lower: a smoother map. ``programs``: from :func:`programs` of this
    ``embed`` (module docstring).
    """
    k0, k1, kt = jax.random.split(key, 3)
    z0 = jax.random.normal(k0, (num_samples, latent_dim))
    z1 = jax.random.normal(k1, (num_samples, latent_dim))
    t = jax.random.uniform(kt, (num_samples,))
    lengths = (
        jax.jit(lambda a, b, s: path_lengths(generate, embed, a, b, s))
        if programs is None
        else functools.partial(programs.path_lengths, generate)
    )
    values = np.concatenate(
        [
            np.asarray(
                lengths(z0[i : i + batch_size], z1[i : i + batch_size], t[i : i + batch_size])
            )
            for i in range(0, num_samples, batch_size)
        ]
    )
    return filtered_mean(values, percentiles)


def jacobian_frobenius(
    generate: Callable, z: jax.Array, key: jax.Array, num_projections: int = 8
) -> float:
    """Root-mean-square Frobenius norm of the generator's Jacobian, by random projections.

    .. math::
      \\sqrt{\\mathbb E_z \\|J_G(z)\\|_F^2}, \\qquad
      \\|J\\|_F^2 = \\mathbb E_{v \\sim N(0, I)} \\|J v\\|^2
      \\approx \\frac1P \\sum_{p} \\|J v_p\\|^2

    (Hutchinson's estimator: unbiased for ``‖J‖_F²``; one ``jax.jvp`` per
    projection, so it scales to generators whose Jacobian is too big to form).

    Args:
      generate: ``z [N, K] -> x``.
      z: ``[N, K]`` latents where the Jacobian is taken.
      key: PRNG key of the projections.
      num_projections: ``P`` per latent.
    """

    def squared(v):
        _, jv = jax.jvp(generate, (z,), (v,))
        return jnp.sum(jnp.square(_flat(jv)), axis=1)

    vs = jax.random.normal(key, (num_projections, *z.shape))
    return float(jnp.sqrt(jnp.mean(jax.lax.map(squared, vs))))


def jacobian_singular_values(
    generate: Callable, z: jax.Array, *, programs: Programs | None = None
) -> np.ndarray:
    """Singular values of ``J_G(z_i)`` for each row of ``z``: ``[N, min(K, D)]``, descending.

    Exact (``jax.jacfwd`` per sample, then an SVD): for generators small
    enough that a ``D x K`` Jacobian per sample fits (digits: 64 x 32).
    ``programs``: from :func:`programs` (module docstring).
    """
    jacobians = (
        jax.jit(functools.partial(_jacobians, generate))(z)
        if programs is None
        else programs.jacobians(generate, z)
    )
    return np.linalg.svd(np.asarray(jacobians, np.float64), compute_uv=False)


def jacobian_scores(
    generate: Callable, z: jax.Array, *, programs: Programs | None = None
) -> dict[str, float]:
    """``jacobian_fro`` = sqrt(mean_i ‖J(z_i)‖_F²) and ``jacobian_log_cond`` = mean_i of
    log(s_max / s_min) (Odena et al. 2018 report the log condition number), exact."""
    s = jacobian_singular_values(generate, z, programs=programs)
    with np.errstate(divide="ignore"):
        log_cond = np.log(s[:, 0]) - np.log(s[:, -1])
    return {
        "jacobian_fro": float(np.sqrt(np.mean(np.sum(s**2, axis=1)))),
        "jacobian_log_cond": float(np.mean(log_cond)),
    }
