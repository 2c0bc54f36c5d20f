"""15. The strength search: each member's strength trajectory and score over training.

Drawn from a search directory of ``python -m experiments.tune`` (its
``search.json``, :mod:`regan_jax.tune`): left, every searched value (log
scale) as a step line per member, jumping where the member copied another
and was perturbed; right, the member's score at every evaluation. One line
per member, coloured by its rank at the last evaluation (dark: best).
:func:`save` is what the command line calls at the end; the figure is also
registered, drawn for a results directory that is a search directory.
"""

import pathlib

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from experiments.study import vocabulary
from experiments.study.figures import registry
from regan_jax import tune
from regan_jax import workdir as workdir_lib

STEM = "fig15_strength_search"


def final_ranks(search: dict) -> np.ndarray:
    """``[K]`` each member's rank at the last evaluation (0: best; no score: last)."""
    last = search["history"][-1]["scores"]
    lower = search["tune"]["lower_is_better"]
    badness = [np.inf if s is None or not np.isfinite(s) else (s if lower else -s) for s in last]
    ranks = np.empty(len(last), int)
    ranks[np.argsort(badness, kind="stable")] = np.arange(len(last))
    return ranks


def trajectories(search: dict) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """``(steps [T+1], {value key: [T+1, K]}, scores [T, K])``: step 0 holds the initial
    values; a missing score is NaN."""
    history = search["history"]
    steps = np.array([0] + [h["step"] for h in history])
    values = {
        key: np.array([initial] + [h["values"][key] for h in history], np.float64)
        for key, initial in search["initial"].items()
    }
    scores = np.array(
        [[np.nan if s is None else s for s in h["scores"]] for h in history], np.float64
    )
    return steps, values, scores


def fig_strength_search(search: dict) -> Figure:
    """The figure of one search (module docstring)."""
    steps, values, scores = trajectories(search)
    ranks = final_ranks(search)
    size = len(ranks)
    colours = matplotlib.colormaps["viridis"](np.linspace(0.0, 1.0, size))
    metric = search["tune"]["metric"]
    declared = vocabulary.METRICS.get(metric)
    fig = Figure(figsize=(4.2 * (len(values) + 1), 3.6), layout="constrained")
    axes = fig.subplots(1, len(values) + 1, squeeze=False)[0]
    for ax, (key, series) in zip(axes, values.items()):
        for k in np.argsort(-ranks):  # the best drawn last, on top
            ax.plot(steps, series[:, k], drawstyle="steps-post", color=colours[ranks[k]], lw=1.2)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.set_title(f"searched {key} per member")
    ax = axes[-1]
    for k in np.argsort(-ranks):
        ax.plot(steps[1:], scores[:, k], marker=".", color=colours[ranks[k]], lw=1.0)
    ax.set_xlabel("step")
    ax.set_ylabel(declared.label if declared else metric)
    ax.set_title(f"score ({'lower' if search['tune']['lower_is_better'] else 'higher'} is better)")
    scale = matplotlib.cm.ScalarMappable(
        norm=matplotlib.colors.Normalize(1, size), cmap=matplotlib.colormaps["viridis"]
    )
    fig.colorbar(scale, ax=axes, label="final rank (1: best)", shrink=0.9)
    fig.suptitle(
        f"population-based search: {size} members, exploit every {search['tune']['interval']} "
        f"steps, bottom {search['tune']['quantile']:g} copies the top"
    )
    return fig


def save(search_dir) -> pathlib.Path:
    """Draws the figure of ``search_dir`` into ``search_dir/fig15_strength_search.png``."""
    path = pathlib.Path(search_dir) / f"{STEM}.png"
    fig = fig_strength_search(tune.read_search(search_dir))
    with workdir_lib.atomic_path(path) as tmp:
        FigureCanvasAgg(fig).print_png(str(tmp))
    return path


def _is_search(study: registry.Study) -> bool:
    return (study.root / tune.SEARCH_FILE).is_file()


@registry.register(STEM, scope=registry.PRESET, when=_is_search)
def draw(study: registry.Study) -> Figure:
    """The registered figure: a results directory that is a search directory."""
    return fig_strength_search(tune.read_search(study.root))
