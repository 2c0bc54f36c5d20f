"""4a. The Dirac-GAN figure: which weight penalties make simultaneous GAN training converge.

:func:`fig_dirac`, computed by :mod:`experiments.study.dirac` (the model and
its closed forms; derivations in ``docs/dirac.md``). Unlike the study's other
figures it needs no training runs: every preset takes a few seconds on a CPU,
the presets differ only in the number of steps. Penalties are drawn in
:data:`experiments.study.dirac.PENALTIES`' order, in the vocabulary's colours.
"""

from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from experiments.study import dirac, vocabulary
from experiments.study.figures import registry
from experiments.study.figures.panels import layout, shared_legend
from regan_jax._names import choose


class DiracPreset(NamedTuple):
    """The numbers of one preset.

    Attributes:
      steps: SGD steps of every trajectory.
      learning_rate: h, both players.
      strength: λ of L2, weight decay and both L1s; also R1's γ, so that the
        R1 trajectory can be seen to lie on the L2-on-D one.
      radius: r of the norm-ball projection.
      eigen_strengths: the λ (γ for R1) whose eigenvalues the right panel shows.
    """

    steps: int
    learning_rate: float = 0.1
    strength: float = 0.3
    radius: float = 0.5
    eigen_strengths: tuple = (0.3, 1.0, 3.0)


DIRAC_PRESETS = {
    "smoke": DiracPreset(steps=200),
    "cpu": DiracPreset(steps=1000),
    "full": DiracPreset(steps=3000),
}
START = (1.0, 1.0)
ZOOM = 0.7  # half-width of the zoomed trajectory panels
# Weight decay and R1 are dashed so that the curves they coincide with (L2
# under SGD; L2 on D) stay visible.
STYLES = {"weight_decay": (0, (4, 3)), "r1": (0, (1.5, 2.5))}
TARGET_MARKERS = {"d": "x", "g": "+", "both": "1"}


def _colour(penalty: str) -> str:
    return vocabulary.PENALTIES[penalty].colour


def _value(preset: DiracPreset, penalty: str) -> float:
    return preset.radius if dirac.PENALTIES[penalty].parameter == "radius" else preset.strength


def _value_text(preset: DiracPreset, penalty: str) -> str:
    symbol = {"strength": "λ", "radius": "r", "gamma": "γ"}.get(dirac.PENALTIES[penalty].parameter)
    return "" if symbol is None else f" {symbol}={_value(preset, penalty):g}"


def trajectories(preset: DiracPreset, target: str) -> dict[str, np.ndarray]:
    """``{penalty: [steps + 1, 2]}``: simultaneous SGD from :data:`START`, each penalty on
    ``target``."""
    out = {}
    for name in dirac.PENALTIES:
        if dirac.PENALTIES[name].loss_term and target != "d":
            continue
        players = dirac.players(name, target, _value(preset, name), preset.learning_rate)
        out[name] = np.asarray(
            dirac.simulate(
                players.d_tx, players.g_tx, *START, preset.steps, "simultaneous", players.gamma_r1
            )
        )
    return out


def trajectory_panel(
    ax, preset: DiracPreset, target: str, paths: dict, zoom: float | None = None
) -> None:
    """Simultaneous-SGD paths in the (θ, ψ) plane, one per penalty on ``target``.

    ``paths``: :func:`trajectories` plus ``'alternating'`` (the unregularised
    alternating path, grey). Marks the equilibrium (red +), the start (black
    ★) and each end (dot); the proximal-L1 fixed segment and the norm ball's
    edges are drawn thin in those penalties' colours. ``zoom``: the half-width
    shown (default: everything).
    """
    for name, path in paths.items():
        if name == "alternating":
            ax.plot(
                path[:, 0],
                path[:, 1],
                color="0.6",
                lw=0.8,
                label="none, alternating steps (D first)",
            )
            continue
        ax.plot(
            path[:, 0],
            path[:, 1],
            color=_colour(name),
            lw=1.0,
            ls=STYLES.get(name, "-"),
            label=dirac.PENALTIES[name].label + _value_text(preset, name),
        )
        ax.plot(*path[-1], "o", color=_colour(name), ms=3.5)
    # Fixed points of proximal L1: the penalised coordinate 0, f'(0)|other| <= λ.
    half = preset.strength / dirac.F_PRIME_0
    segment = np.array([[-half, half], [0.0, 0.0]])
    if target == "g":
        segment = segment[::-1]
    if target != "both":
        ax.plot(
            *segment,
            color=_colour("prox_l1"),
            lw=3,
            alpha=0.3,
            solid_capstyle="butt",
            label="proximal L1: its fixed points",
        )
    r = preset.radius
    ball = {"d": "axhline", "g": "axvline"}
    for method in [ball[target]] if target in ball else ["axhline", "axvline"]:
        for edge in (-r, r):
            getattr(ax, method)(edge, color=_colour("max_norm"), lw=0.6, ls=":")
    ax.plot(*START, "*", color="black", ms=9, zorder=5)
    ax.plot(0, 0, "+", color="red", ms=10, mew=1.5, zorder=5)
    span = zoom or 1.08 * max(np.abs(path).max() for path in paths.values())
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("θ (generator)", fontsize=8)
    ax.set_ylabel("ψ (discriminator)", fontsize=8)
    where = f"penalty on {vocabulary.target_label(target)}"
    ax.set_title(
        f"{where} (zoom)" if zoom else f"{where}: simultaneous SGD from (1, 1)", fontsize=9
    )
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, lw=0.4)


def eigenvalue_panel(ax, preset: DiracPreset) -> None:
    """Eigenvalues of the field's Jacobian at (0, 0) in the complex plane.

    Numeric (``jax.jacfwd`` of the field) as markers, one shape per target;
    analytic closed forms as open circles; the analytic root locus over the
    strength as thin lines. Only the penalties with a closed form (smooth at
    the equilibrium) appear.
    """
    ax.axvline(0, color="black", lw=0.6)
    ax.axhline(0, color="black", lw=0.4)
    ax.axvspan(-10, 0, color="tab:green", alpha=0.05)
    top = max(preset.eigen_strengths)
    locus = np.linspace(0, top, 400)
    for both, style in ((False, "-"), (True, "--")):
        mus = np.array([dirac.analytic_eigenvalues(l2_d=v, l2_g=v if both else 0.0) for v in locus])
        for k in range(2):
            ax.plot(mus[:, k].real, mus[:, k].imag, color="0.75", lw=0.8, ls=style, zorder=1)
    cases = [("none", "d", 0.0)] + [
        (name, target, value)
        for name in ("l2", "r1")
        for target in ("d", "g", "both")
        if not (dirac.PENALTIES[name].loss_term and target != "d")
        for value in preset.eigen_strengths
    ]
    for name, target, value in cases:
        kwargs = dirac.PENALTIES[name].closed_form(value, target)
        numeric = dirac.eigenvalues(dirac.jacobian_at_equilibrium(**kwargs))
        analytic = dirac.analytic_eigenvalues(**kwargs)
        symbol = "γ" if name == "r1" else "λ"
        label = (
            "none, numeric"
            if name == "none"
            else f"{dirac.PENALTIES[name].label} on {vocabulary.target_label(target)}, numeric"
        )
        ax.scatter(
            numeric.real,
            numeric.imag,
            marker=TARGET_MARKERS[target] if name != "r1" else "x",
            color=_colour(name),
            s=40 if name == "r1" else 30,
            lw=1.2,
            zorder=4,
            label=label,
        )
        ax.scatter(
            analytic.real,
            analytic.imag,
            s=90,
            facecolors="none",
            edgecolors="0.35",
            lw=0.8,
            zorder=3,
            label="closed form",
        )
        if name == "l2" and target == "both":
            ax.annotate(
                f"both {symbol}={value:g}",
                (analytic[0].real, analytic[0].imag),
                textcoords="offset points",
                xytext=(0, -14),
                ha="center",
                fontsize=6.5,
                color="0.3",
            )
    ax.set_xlim(-top - 0.3, 0.3)
    ax.set_ylim(-0.8, 0.8)
    ax.set_xlabel("Re μ", fontsize=8)
    ax.set_ylabel("Im μ", fontsize=8)
    ax.set_title(
        "Jacobian eigenvalues at (0, 0), continuous time\n"
        f"λ (R1: γ) ∈ {{{', '.join(f'{v:g}' for v in preset.eigen_strengths)}}}; "
        "grey: locus over λ (dashed: both)",
        fontsize=9,
    )
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, lw=0.4)


def fig_dirac(
    preset: str,
    steps: int | None = None,
    *,
    learning_rate: float | None = None,
    strength: float | None = None,
    radius: float | None = None,
) -> Figure:
    """4a. Dirac GAN: trajectories per penalty on D and on G, and the Jacobian's eigenvalues.

    Args:
      preset: a key of :data:`DIRAC_PRESETS`.
      steps, learning_rate, strength, radius: override the preset's.

    Returns:
      A Figure with five axes: paths with the penalties on D (whole, zoomed),
      on G (whole, zoomed), then the eigenvalues.

    Raises:
      ValueError: an unknown preset.
    """
    config = choose("Dirac preset", preset, DIRAC_PRESETS)
    overrides = dict(steps=steps, learning_rate=learning_rate, strength=strength, radius=radius)
    config = config._replace(**{k: v for k, v in overrides.items() if v is not None})
    fig = Figure(figsize=(13, 8.6), dpi=110)
    grid = fig.add_gridspec(2, 3, width_ratios=[1, 1, 1.2])
    plain = dirac.players("none", "d", 0.0, config.learning_rate)
    alternating = np.asarray(
        dirac.simulate(plain.d_tx, plain.g_tx, *START, config.steps, "alternating")
    )
    for column, target in enumerate(("d", "g")):
        paths = {**trajectories(config, target), "alternating": alternating}
        trajectory_panel(fig.add_subplot(grid[0, column]), config, target, paths)
        trajectory_panel(fig.add_subplot(grid[1, column]), config, target, paths, ZOOM)
    eigenvalue_panel(fig.add_subplot(grid[:, 2]), config)
    rows = shared_legend(fig, fig.axes)
    layout(
        fig,
        "4a. Dirac GAN (Mescheder et al. 2018): data δ₀, G = θ, D(x) = ψx, "
        "L = f(ψθ) + f(0), f(t) = −log(1 + e^(−t)); ★ start, red + equilibrium, dots ends. "
        "Unregularised simultaneous steps spiral out; L2 (≡ R1 on D; ≡ weight decay under SGD) "
        "converges; proximal L1 "
        "stops on a segment of fixed points; the norm ball only bounds the orbit\n"
        f"preset {preset} · simultaneous SGD, h = {config.learning_rate:g}, "
        f"{config.steps} steps · λ = γ = {config.strength:g}, r = {config.radius:g}",
        rows,
    )
    # tight_layout mis-spaces rows of fixed-aspect axes: room for labels and titles,
    # and no band under the (three-line) title.
    fig.subplots_adjust(hspace=0.3, top=1 - 1.0 / fig.get_figheight())
    return fig


@registry.register(
    "fig4a_dirac", scope=registry.PRESET, when=lambda study: study.preset in DIRAC_PRESETS
)
def _dirac(study):
    return fig_dirac(study.preset)
