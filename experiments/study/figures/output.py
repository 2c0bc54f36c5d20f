"""The figures as files: every registered figure the results support, as PNG and PDF.

:func:`draw_figures` writes them atomically; :func:`export_small_pngs` writes
web-sized copies (how ``docs/study/figures`` was made).
"""

import pathlib

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import FigureCanvasPdf
from PIL import Image

from experiments.study.figures import registry
from regan_jax import workdir as workdir_lib


def draw_figures(rows, root, preset: str, out_dir) -> dict:
    """Draws every figure of :func:`.registry.figure_specs` as PNG and PDF into ``out_dir``.

    Returns ``{stem: PNG path}``.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for stem, make in registry.figure_specs(rows, root, preset).items():
        fig = make()
        for suffix, canvas in ((".png", FigureCanvasAgg), (".pdf", FigureCanvasPdf)):
            with workdir_lib.atomic_path(out_dir / f"{stem}{suffix}") as tmp:
                getattr(canvas(fig), f"print_{suffix[1:]}")(str(tmp))
        written[stem] = out_dir / f"{stem}.png"
    return written


def export_small_pngs(figure_files: dict, out_dir, max_width: int = 1200) -> None:
    """Writes web-sized copies of the PNGs into ``out_dir`` (e.g. ``docs/study/figures``).

    Each is resized to at most ``max_width`` pixels wide and stored with a
    256-colour palette (no dithering, so the plot colours stay distinct);
    sample-grid figures, whose pixels are grey, are stored as greyscale.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stem, path in figure_files.items():
        grey = stem.startswith("fig5_samples") and "cgan" not in stem
        image = Image.open(path).convert("L" if grey else "RGB")
        scale = min(1.0, max_width / image.width)
        if scale < 1:
            image = image.resize(
                (round(image.width * scale), round(image.height * scale)), Image.LANCZOS
            )
        if not grey:
            image = image.quantize(
                colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
            )
        with workdir_lib.atomic_path(out_dir / f"{stem}.png") as tmp:
            image.save(tmp, optimize=True)
