"""Jitted device kernels behind :mod:`regan_jax.metrics` (private).

The public functions validate inputs and carry the math in their docstrings;
the array work they hand to the device lives here. Pairwise kernels look at
``block_size`` rows of one set against the whole of another, so memory is
``O(block_size * N)`` and a 50k x 50k distance matrix never exists at once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.special import xlogy

# Without this, float32 matmuls may run in TF32/bf16 on accelerators, which
# moves squared distances and covariances by ~1e-3 relative.
HIGHEST = lax.Precision.HIGHEST


def squared_distances(x: jax.Array, y: jax.Array) -> jax.Array:
    """``||x_i - y_j||^2`` via the Gram expansion, clipped at 0."""
    cross = jnp.matmul(x, y.T, precision=HIGHEST)
    d2 = jnp.sum(x * x, axis=1)[:, None] + jnp.sum(y * y, axis=1)[None, :] - 2.0 * cross
    return jnp.maximum(d2, 0.0)


def row_blocks(x: jax.Array, block_size: int) -> tuple[jax.Array, jax.Array]:
    """Zero-pads ``x`` to whole blocks: ``([B, block_size, ...], valid [B, block_size])``."""
    n = x.shape[0]
    num_blocks = -(-n // block_size)
    padded = jnp.pad(x, ((0, num_blocks * block_size - n),) + ((0, 0),) * (x.ndim - 1))
    valid = jnp.arange(num_blocks * block_size) < n
    return (
        padded.reshape(num_blocks, block_size, *x.shape[1:]),
        valid.reshape(num_blocks, block_size),
    )


def kth_smallest(d2: jax.Array, k: int) -> jax.Array:
    """The k-th smallest entry of each row (counting ties with multiplicity).

    ``k - 1`` passes each set one row minimum to +inf, then a row min. Written
    by hand because XLA's CPU ``lax.top_k`` was measured ~10x slower here: 2.2 s
    per 512 x 10,000 block, which made PRDC on 10k x 10k take over a minute.
    """
    rows = jnp.arange(d2.shape[0])

    def drop_min(_, d):
        return d.at[rows, jnp.argmin(d, axis=1)].set(jnp.inf)

    return jnp.min(lax.fori_loop(0, k - 1, drop_min, d2), axis=1)


def knn_squared_radii(x: jax.Array, k: int, block_size: int) -> jax.Array:
    """Squared distance from each row of ``x`` to its k-th nearest *other* row (exact)."""
    n = x.shape[0]
    blocks, _ = row_blocks(x, block_size)
    starts = jnp.arange(blocks.shape[0]) * block_size

    def block_radii(args):
        rows, start = args
        d2 = squared_distances(rows, x)
        is_self = (start + jnp.arange(block_size))[:, None] == jnp.arange(n)[None, :]
        d2 = jnp.where(is_self, jnp.inf, d2)  # exclude self by index, not by d == 0
        return kth_smallest(d2, k)

    return lax.map(block_radii, (blocks, starts)).reshape(-1)[:n]


def prdc_counts(real, fake, real_r2, fake_r2, block_size: int):
    """The three reductions behind PRDC, scanning over blocks of fake rows.

    Returns:
      ``balls [M]``: number of real k-NN balls containing each fake;
      ``recalled [N]``: whether each real lies in some fake k-NN ball;
      ``nearest_fake_d2 [N]``: squared distance from each real to its nearest fake.
    """
    fake_blocks, fake_valid = row_blocks(fake, block_size)
    radius_blocks, _ = row_blocks(fake_r2, block_size)

    def scan_block(carry, args):
        recalled, nearest_fake_d2 = carry
        rows, valid, rows_r2 = args
        d2 = jnp.where(valid[None, :], squared_distances(real, rows), jnp.inf)  # [N, b]
        balls = jnp.sum(d2 <= real_r2[:, None], axis=0)
        recalled = recalled | jnp.any(d2 <= rows_r2[None, :], axis=1)
        nearest_fake_d2 = jnp.minimum(nearest_fake_d2, jnp.min(d2, axis=1))
        return (recalled, nearest_fake_d2), balls

    init = (jnp.zeros(real.shape[0], bool), jnp.full(real.shape[0], jnp.inf))
    (recalled, nearest_fake_d2), balls = lax.scan(
        scan_block, init, (fake_blocks, fake_valid, radius_blocks)
    )
    return balls.reshape(-1)[: fake.shape[0]], recalled, nearest_fake_d2


@functools.partial(jax.jit, static_argnames=("k", "real_block", "fake_block"))
def prdc_tallies(real, fake, k: int, real_block: int, fake_block: int) -> dict[str, jax.Array]:
    """Integer numerators of precision, recall, density * k and coverage (see ``metrics.prdc``).

    Counts, not means: float32 means would turn 55/55 into 0.99999994.
    """
    shift = jnp.mean(real, axis=0)  # distances are unchanged, the Gram expansion cancels less
    real, fake = real - shift, fake - shift
    real_r2 = knn_squared_radii(real, k, real_block)
    balls, recalled, nearest_fake_d2 = prdc_counts(
        real, fake, real_r2, knn_squared_radii(fake, k, fake_block), fake_block
    )
    return {
        "precision": jnp.sum(balls > 0),
        "recall": jnp.sum(recalled),
        "density": jnp.sum(balls),
        "coverage": jnp.sum(nearest_fake_d2 <= real_r2),
    }


@jax.jit
def moments(x: jax.Array, member: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and unbiased covariance of the rows of ``x`` where ``member`` is true.

    A mask instead of a gather keeps one compiled shape for every class.
    """
    weights = member.astype(x.dtype)
    n = jnp.sum(weights)
    mu = jnp.matmul(weights, x, precision=HIGHEST) / n
    centred = (x - mu) * weights[:, None]  # two-pass: no E[xx^T] - mu mu^T cancellation
    return mu, jnp.matmul(centred.T, centred, precision=HIGHEST) / (n - 1)


def cubic_kernel(x: jax.Array, y: jax.Array) -> jax.Array:
    """KID's kernel ``k(x, y) = (x.y / D + 1)^3`` for all pairs of rows."""
    return (jnp.matmul(x, y.T, precision=HIGHEST) / x.shape[1] + 1.0) ** 3


def unbiased_mmd2(x: jax.Array, y: jax.Array) -> jax.Array:
    """Unbiased MMD^2 estimate between the rows of ``x`` and ``y`` (see ``metrics.kid``)."""

    def off_diagonal_mean(k):
        n = k.shape[0]
        return (jnp.sum(k) - jnp.trace(k)) / (n * (n - 1))

    return (
        off_diagonal_mean(cubic_kernel(x, x))
        + off_diagonal_mean(cubic_kernel(y, y))
        - 2.0 * jnp.mean(cubic_kernel(x, y))
    )


@functools.partial(jax.jit, static_argnames=("num_subsets", "subset_size"))
def kid_subsets(a, b, key, num_subsets: int, subset_size: int) -> jax.Array:
    """MMD^2 of ``num_subsets`` pairs of row subsets drawn without replacement: ``[S]``."""

    def one_subset(subset_key):
        key_a, key_b = jax.random.split(subset_key)
        x = a[jax.random.choice(key_a, a.shape[0], (subset_size,), replace=False)]
        y = b[jax.random.choice(key_b, b.shape[0], (subset_size,), replace=False)]
        return unbiased_mmd2(x, y)

    # Sequential over subsets: one subset's three m x m kernels live at a time.
    return lax.map(one_subset, jax.random.split(key, num_subsets))


@jax.jit
def mode_histogram(x: jax.Array, centres: jax.Array, radius: float):
    """Counts of high-quality samples (within ``radius``) per nearest centre: ``[M]``."""
    shift = jnp.mean(centres, axis=0)  # less cancellation in the Gram expansion
    d2 = squared_distances(x - shift, centres - shift)
    high_quality = jnp.min(d2, axis=1) <= radius**2
    return (
        jnp.zeros(centres.shape[0], jnp.int32)
        .at[jnp.argmin(d2, axis=1)]
        .add(high_quality.astype(jnp.int32))
    )


@functools.partial(jax.jit, static_argnames=("num_splits",))
def split_inception_scores(p: jax.Array, num_splits: int) -> jax.Array:
    """Per-split Inception Scores ``[S]`` of contiguous splits (see ``metrics.inception_score``)."""
    n = p.shape[0]
    boundaries = jnp.arange(1, num_splits) * n // num_splits
    split = jnp.searchsorted(boundaries, jnp.arange(n), side="right")
    sizes = jnp.bincount(split, length=num_splits)
    marginals = jax.ops.segment_sum(p, split, num_splits) / sizes[:, None]
    row_kl = jnp.sum(xlogy(p, p) - xlogy(p, marginals[split]), axis=1)
    return jnp.exp(jax.ops.segment_sum(row_kl, split, num_splits) / sizes)
