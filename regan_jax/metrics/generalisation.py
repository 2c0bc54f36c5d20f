"""Generalisation and memorisation: does a model copy its training set?

Each function compares three samples in one space (pixels flattened, or a
feature network's ``[N, D]`` features): the training set ``T``, a held-out
set ``P`` of the same distribution that the model never saw, and the
generated set ``Q``. A model that generalises places ``Q`` as far from ``T``
as ``P`` is; one that copies places ``Q`` closer.

- :func:`copying_statistic`: Meehan, Chaudhuri & Dasgupta 2020's ``C_T``
  (per-cell Mann–Whitney z-scores of the nearest-neighbour distances to ``T``).
- :func:`memorisation_ratio`: the share of ``Q`` closer to ``T`` than
  held-out images typically are.
- :func:`discriminator_overfitting`: Karras et al. 2020's ``r_t`` and
  ``r_v`` from a discriminator's logits.

What the first two compute from ``T`` and ``P`` alone (the k-means cells,
the held-out distances) is the same for every ``Q``: :func:`split_statistics`
computes it once, and both take it as ``splits`` (a sweep group's members
share it; the scores are bit for bit those computed without it).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import sklearn.cluster

from regan_jax.metrics import _checks as checks

COPYING_CELLS = 10
COPYING_MIN_GENERATED = 20
MEMORISATION_PERCENTILE = 5.0


def nearest_neighbour_distances(queries, reference, *, block_size: int = 1024) -> np.ndarray:
    """Euclidean distance from each query row to its nearest row of ``reference``.

    .. math:: L(q) = \\min_{t \\in T} \\|q - t\\|_2

    Host float64 on purpose: the rank tests compare these distances, and
    pixels on a lattice (digits' 17 grey levels) have exact ties that
    float32 rounding would break at random.

    Args:
      queries: ``[N, D]`` points (images: flatten them first).
      reference: ``[M, D]`` points, ``M >= 1``.
      block_size: query rows per distance block (memory ``~ block_size * M``).

    Returns:
      ``[N]`` float64 distances.
    """
    q, t = checks.features("queries", queries), checks.features("reference", reference)
    checks.same_dim(q, t, "queries and reference")
    if t.shape[0] < 1 or block_size < 1:
        raise ValueError(
            f"need a non-empty reference and block_size >= 1; got M={t.shape[0]}, "
            f"block_size={block_size}."
        )
    return _nn_distances(np.asarray(q, np.float64), np.asarray(t, np.float64), block_size)


def _nn_distances(q: np.ndarray, t: np.ndarray, block_size: int = 1024) -> np.ndarray:
    # Unchecked (the callers checked once): a check per cell would compile per shape.
    t_sq = np.sum(t * t, axis=1)
    out = np.empty(q.shape[0])
    for start in range(0, q.shape[0], block_size):
        rows = q[start : start + block_size]
        d2 = np.sum(rows * rows, axis=1)[:, None] + t_sq[None, :] - 2.0 * rows @ t.T
        out[start : start + block_size] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


class SplitStatistics(NamedTuple):
    """What :func:`copying_statistic` and :func:`memorisation_ratio` compute from ``T`` and ``P`` alone.

    Built by :func:`split_statistics`; every field is independent of the generated set.
    """

    train: np.ndarray  # [L, D] float64
    held_out: np.ndarray  # [n, D] float64
    num_cells: int
    seed: int
    kmeans: Any  # sklearn KMeans fitted on train
    held_out_cells: np.ndarray  # [n] the cell of each held-out row
    cell_distances: tuple  # per cell: L(P_pi) against the cell's training rows, [n_pi]
    nearest_train: np.ndarray  # [n] L(p) against the whole training set


def _points(train, held_out) -> tuple[np.ndarray, np.ndarray]:
    t, p = checks.features("train", train), checks.features("held_out", held_out)
    checks.same_dim(p, t, "held_out and train")
    return np.asarray(t, np.float64), np.asarray(p, np.float64)


def split_statistics(
    train, held_out, *, num_cells: int = COPYING_CELLS, seed: int = 0
) -> SplitStatistics:
    """The k-means cells of ``T`` and the held-out distances, for any number of generated sets.

    Args:
      train, held_out: ``[L, D]`` and ``[n, D]`` points.
      num_cells, seed: :func:`copying_statistic`'s (the cells are fitted here).
    """
    t, p = _points(train, held_out)
    if not 1 <= num_cells <= t.shape[0]:
        raise ValueError(
            f"num_cells must lie in [1, {t.shape[0]}] (the training rows); got {num_cells}."
        )
    kmeans = sklearn.cluster.KMeans(num_cells, n_init=10, random_state=seed).fit(t)
    cells_p, cells_t = kmeans.predict(p), kmeans.labels_
    return SplitStatistics(
        train=t,
        held_out=p,
        num_cells=num_cells,
        seed=seed,
        kmeans=kmeans,
        held_out_cells=cells_p,
        cell_distances=tuple(
            # A cell without training rows (k-means on duplicates) has no distances.
            _nn_distances(p[cells_p == cell], t[cells_t == cell])
            if np.any(cells_t == cell)
            else np.zeros(0)
            for cell in range(num_cells)
        ),
        nearest_train=_nn_distances(p, t),
    )


def _generated(generated, splits: SplitStatistics) -> np.ndarray:
    q = checks.features("generated", generated)
    checks.same_dim(q, splits.train, "generated and train")
    return np.asarray(q, np.float64)


def mann_whitney_z(x: np.ndarray, y: np.ndarray) -> float:
    """The z-scored Mann–Whitney U of sample ``x`` against ``y`` (no continuity or tie correction).

    .. math::
      U = \\sum_{i, j} \\big(1[x_i > y_j] + \\tfrac12 1[x_i = y_j]\\big), \\qquad
      Z_U = \\frac{U - mn/2}{\\sqrt{mn(m + n + 1)/12}}

    with ``m = |x|``, ``n = |y|``: ``Z_U < 0`` when ``x`` tends to be smaller.
    """
    x, y = np.asarray(x, np.float64), np.sort(np.asarray(y, np.float64))
    m, n = x.size, y.size
    below = np.searchsorted(y, x, side="left")
    ties = np.searchsorted(y, x, side="right") - below
    u = np.sum(below + 0.5 * ties)
    return float((u - m * n / 2.0) / np.sqrt(m * n * (m + n + 1) / 12.0))


def copying_statistic(
    train,
    held_out,
    generated,
    *,
    num_cells: int = COPYING_CELLS,
    min_generated: int = COPYING_MIN_GENERATED,
    seed: int = 0,
    splits: SplitStatistics | None = None,
) -> float:
    """Meehan, Chaudhuri & Dasgupta 2020's data-copying statistic ``C_T``.

    "A non-parametric test to detect data-copying in generative models"
    (AISTATS 2020). The space is cut into cells ``π`` by k-means on the
    training set; in each cell the nearest-neighbour distances to the
    training set of the generated samples, ``L(Q_π)``, are compared with
    those of the held-out samples, ``L(P_π)``, by a z-scored Mann–Whitney U
    (:func:`mann_whitney_z`), and the z-scores are averaged with the cells'
    held-out mass:

    .. math::
      C_T = \\frac{\\sum_{\\pi \\in \\Pi_\\tau} P_n(\\pi)\\, Z_U\\big(L(Q_\\pi), L(P_\\pi)\\big)}
                 {\\sum_{\\pi \\in \\Pi_\\tau} P_n(\\pi)}

    ``Π_τ`` holds the cells with at least ``min_generated`` generated samples
    (the paper's ``τ = 20 / m``: a cell the model barely visits has no
    usable z-score) and at least one held-out sample. ``C_T ≪ 0``: the model
    copies (its samples sit closer to the training set than fresh data do);
    ``≈ 0``: no evidence of copying; ``≫ 0``: underfitting.

    Args:
      train, held_out, generated: ``[L, D]``, ``[n, D]``, ``[m, D]`` points.
      num_cells: k-means cells (``<= L``).
      min_generated: generated samples a cell needs to count.
      seed: k-means' initialisation (``random_state``, 10 restarts).
      splits: :func:`split_statistics` of ``train`` and ``held_out`` with
        these ``num_cells`` and ``seed``, if already computed (``train`` and
        ``held_out`` are then not read).

    Returns:
      ``C_T`` as a float, NaN if no cell qualifies.
    """
    if splits is None:
        splits = split_statistics(train, held_out, num_cells=num_cells, seed=seed)
    elif (splits.num_cells, splits.seed) != (num_cells, seed):
        raise ValueError(
            f"splits were computed with num_cells={splits.num_cells}, seed={splits.seed}; "
            f"got num_cells={num_cells}, seed={seed}."
        )
    q = _generated(generated, splits)
    cells_q = splits.kmeans.predict(q)
    cells_t = splits.kmeans.labels_
    weights, scores = [], []
    for cell in range(num_cells):
        in_p, in_q = splits.held_out_cells == cell, cells_q == cell
        if in_q.sum() < min_generated or not in_p.any():
            continue
        weights.append(in_p.mean())
        scores.append(
            mann_whitney_z(
                _nn_distances(q[in_q], splits.train[cells_t == cell]), splits.cell_distances[cell]
            )
        )
    if not weights:
        return float("nan")
    return float(np.dot(weights, scores) / np.sum(weights))


def memorisation_ratio(
    train,
    held_out,
    generated,
    *,
    percentile: float = MEMORISATION_PERCENTILE,
    splits: SplitStatistics | None = None,
) -> float:
    """Share of generated samples closer to the training set than held-out data typically are.

    .. math::
      r = \\frac1m \\sum_j 1\\big[L(q_j) < \\mathrm{pct}_q\\{L(p_i)\\}\\big], \\qquad
      L(x) = \\min_{t \\in T} \\|x - t\\|

    A sample drawn like the held-out set falls below the threshold with
    probability ``q / 100`` (the ratio's null); a copier (training images
    plus small noise) scores near 1. ``q = 5`` by default: a low percentile
    counts near-duplicates, not samples that are merely typical of a dense
    region, and 5 % of a few hundred held-out images (the digits split has
    297) still rests on more than ten distances.

    Args:
      train, held_out, generated: ``[L, D]``, ``[n, D]``, ``[m, D]`` points.
      percentile: ``q`` in ``(0, 100)``.
      splits: :func:`split_statistics` of ``train`` and ``held_out`` (any
        cells), if already computed (``train`` and ``held_out`` are then not read).
    """
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must lie in (0, 100); got {percentile}.")
    if splits is None:
        t, p = _points(train, held_out)
        nearest_train = _nn_distances(p, t)
    else:
        t, nearest_train = splits.train, splits.nearest_train
    q = np.asarray(checks.features("generated", generated), np.float64)
    checks.same_dim(q, t, "generated and train")
    threshold = np.percentile(nearest_train, percentile)
    return float(np.mean(_nn_distances(q, t) < threshold))


def discriminator_overfitting(d_train, d_held_out, d_generated) -> dict[str, float]:
    """Karras et al. 2020's discriminator-overfitting heuristics from D's logits.

    "Training generative adversarial networks with limited data" (ADA), §3:

    .. math::
      r_t = \\mathbb E[\\operatorname{sign} D_{\\mathrm{train}}], \\qquad
      r_v = \\frac{\\mathbb E[D_{\\mathrm{train}}] - \\mathbb E[D_{\\mathrm{held}}]}
                 {\\mathbb E[D_{\\mathrm{train}}] - \\mathbb E[D_{\\mathrm{gen}}]}

    ``r_t`` near 1: D calls (almost) every training image real; ``r_v`` near
    0: held-out images score like training images (no overfitting), near 1:
    like generated ones (D has memorised the training set).

    Args:
      d_train, d_held_out, d_generated: D's raw outputs (logits, ``[N]`` or
        ``[N, 1]``) on training, held-out and generated images.

    Returns:
      ``{'r_t', 'r_v'}`` as floats (``r_v`` is NaN when the denominator is 0).
    """
    train, held, gen = (
        np.asarray(x, np.float64).reshape(-1) for x in (d_train, d_held_out, d_generated)
    )
    gap = train.mean() - gen.mean()
    r_v = (train.mean() - held.mean()) / gap if gap != 0 else float("nan")
    return {"r_t": float(np.mean(np.sign(train))), "r_v": float(r_v)}
