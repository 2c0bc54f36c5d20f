"""Rendering samples: image grids and 2-D scatter plots (matplotlib Agg, no pyplot state).

The one place a sample grid is drawn: the training loop's ``samples/*.png``
and the study's sample figures (``experiments/study/figures/``) both use it.
"""

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from regan_jax import workdir


def image_grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Tiles ``[N, H, W, C]`` images in [-1, 1] into one ``[rows H, cols W, C]`` image in [0, 1].

    A 1-pixel gap (value 1, white) separates the tiles; missing tiles are white.
    """
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones((rows * (h + 1) + 1, columns * (w + 1) + 1, c), np.float32)
    for i, image in enumerate(np.clip((np.asarray(images) + 1) / 2, 0, 1)):
        r, col = divmod(i, columns)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + col * (w + 1) : 1 + col * (w + 1) + w] = (
            image
        )
    return grid


def save_samples_png(
    path,
    samples: np.ndarray,
    title: str,
    *,
    columns: int | None = None,
    centres: np.ndarray | None = None,
) -> np.ndarray:
    """Saves a PNG of generated samples: an image grid, or a scatter for 2-D points.

    Returns the rendered figure as an ``[H, W, 3]`` uint8 array (what the PNG
    shows; the loop also hands it to TensorBoard).

    Args:
      path: the PNG file (written atomically).
      samples: ``[N, H, W, C]`` images in [-1, 1] or ``[N, 2]`` points.
      title: the figure title (experiment, step).
      columns: grid columns (e.g. the classes of a conditional model).
      centres: the true mode centres ``[M, 2]`` of 2-D data, drawn as crosses.
    """
    samples = np.asarray(samples)
    if samples.ndim == 2:
        fig = Figure(figsize=(4, 4), dpi=100)
        ax = fig.add_subplot()
        ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, label="samples")
        if centres is not None:
            ax.scatter(centres[:, 0], centres[:, 1], marker="x", c="red", s=30, label="modes")
            span = np.abs(centres).max() * 1.4 + 0.5
            ax.set_xlim(-span, span)
            ax.set_ylim(-span, span)
        ax.set_aspect("equal")
        ax.legend(loc="upper right", fontsize=7)
    else:
        grid = image_grid(samples, columns)
        fig = Figure(figsize=(4, 4 * grid.shape[0] / grid.shape[1] + 0.3), dpi=100)
        ax = fig.add_subplot()
        ax.imshow(
            grid[..., 0] if grid.shape[-1] == 1 else grid,
            cmap="gray",
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.axis("off")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    canvas = FigureCanvasAgg(fig)
    with workdir.atomic_path(path) as tmp:
        canvas.print_png(str(tmp))
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
