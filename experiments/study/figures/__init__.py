"""The study's figures (docs/FIGURES.md), one module per figure group.

Each figure is registered in :mod:`~experiments.study.figures.registry`
beside its drawing code, with the experiments it needs; importing this
package imports every group, so the registry is complete.

=================  ==========================================================
module             figures
=================  ==========================================================
``sparsity``       1. sparsity vs strength
``mixtures``       2a/2b. the 2-D mixtures: samples, mode metrics vs strength
``quality``        3. image quality vs strength; 11. penalties on top of R1
``dirac``          4a. the Dirac GAN
``stability``      4b. FD over training and unstable runs
``samples``        5. sample grids
``families``       6/7/8/12. a family's own scores (VAE, cGAN, stacked digits,
                   cycle GAN)
``fidelity``       9. precision vs recall, density vs coverage
``smoothness``     10. the generator's smoothness (path length, Jacobian), blur
                   beside it
``generalisation`` 13. copying, memorisation, D overfitting and the FD∞ gap,
                   per training-set size
``search``         15. the strength search (a search directory of
                   ``experiments.tune``)
``verdicts``       17. every comparison of every claim in SESOI units, coloured
                   by its reading
=================  ==========================================================

Shared drawing (strength panels, panel grids, legends, sample panels) is
:mod:`~experiments.study.figures.panels`; :mod:`~experiments.study.figures.output`
draws every supported figure to PNG and PDF.

**Where a new figure goes:** in the module of the group whose question it
answers (the table above; a figure of one family's own scores goes to
``families``), registered there with ``@registry.register(stem, scope=...,
kinds=...)`` beside its ``fig_*`` function. A new group is a new module here,
imported below and added to the table and to docs/FIGURES.md.
"""

from experiments.study.figures import (
    dirac,
    families,
    fidelity,
    generalisation,
    mixtures,
    quality,
    samples,
    search,
    smoothness,
    sparsity,
    stability,
    verdicts,
)

__all__ = [
    "dirac",
    "families",
    "fidelity",
    "generalisation",
    "mixtures",
    "quality",
    "samples",
    "smoothness",
    "search",
    "sparsity",
    "stability",
    "verdicts",
]
