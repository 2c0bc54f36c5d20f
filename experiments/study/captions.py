"""What every figure and table of the study states besides its data.

The caption line (preset, seeds, steps, how a cell is summarised), the note
on spectral normalisation's selected learning rate, and the references drawn
beside the runs: the null references' labels and styles (``nulls.json``,
:func:`experiments.study.runner.null_references`) and PacGAN's published
numbers for the 2-D mixtures.
"""

# Null references: (legend label, colour, dash pattern); {n}: the nulls' sample count.
NULL_STYLES = {
    "noise": ("null: noise", "dimgray", (0, (5, 2))),
    "shuffled": ("null: shuffled pixels", "rosybrown", (0, (5, 2, 1, 2))),
    "real": ("null: held-out real, N={n}", "darkcyan", (0, (2, 1.5))),
    "memoriser": ("null: memoriser (train + noise), N={n}", "darkgoldenrod", (0, (6, 1.5, 1, 1.5))),
}
MIXTURE_REAL = "null: true mixture samples, N={n}"
PACGAN_LABEL = "PacGAN Table 1 (GAN, published)"
# PacGAN (Lin et al. 2018) Table 1, the unregularised GAN: modes, HQ fraction, reverse KL.
PACGAN = {
    "ring8": {"modes": 6.3, "hq_fraction": 0.982, "reverse_kl": 0.45},
    "grid25": {"modes": 17.3, "hq_fraction": 0.948, "reverse_kl": 0.70},
}
SN_NOTE = "spectral norm: best of its lr sweep, selected on the same seeds (optimistic for it)"


def caption(rows, preset: str, *, figure: bool = True, dropped: bool = False) -> str:
    """``preset P · seeds 0,1 · N steps · ...``: what every figure and table states.

    ``dropped``: the figure's metric has no direction, so diverged runs are
    left out (said so) instead of counting as the worst value.
    """
    seeds = sorted({int(r["seed"]) for r in rows})
    steps = sorted({int(r["config.steps"]) for r in rows})
    diverged = (
        "diverged runs left out (a metric without a better direction)"
        if dropped
        else "a diverged run counts as the worst value (FD = +∞, modes = 0), never dropped"
    )
    what = (
        f"median over seeds, bars/bands: 95 % bootstrap CI; {diverged}"
        if figure
        else "median [95 % bootstrap CI]"
    )
    return (
        f"preset {preset} · seeds {','.join(map(str, seeds))} · "
        f"{'/'.join(map(str, steps))} steps · {what}"
    )


def sn_note(rows) -> str:
    """``'; ' + SN_NOTE`` where ``rows`` hold spectral-norm runs (its lr was selected), else ''."""
    return f"; {SN_NOTE}" if any(r["penalty"] == "spectral_norm" for r in rows) else ""


def pacgan_numbers(name: str) -> dict | None:
    """PacGAN's published unregularised-GAN numbers of a mixture experiment (None: not one)."""
    return next((v for k, v in PACGAN.items() if name.startswith(k)), None)
