"""The study: does a norm penalty on the weights do what the articles claim?

The study's analysis as its own package, separate from the training loop and
from the command lines (``python -m experiments.figures``, ``claims``,
``convergence``), which call into it. It lives under ``experiments/``, not
in ``regan_jax/``, because its presets name the experiment configs of
``experiments/configs`` and its runner trains the presets' members,
while the library ``regan_jax`` must not depend on ``experiments``.

==================  =========================================================
module              owns
==================  =========================================================
``vocabulary``      the one table each of penalties (builder setting, swept
                    field, label, short label, colour), targets (order,
                    label) and metrics (label, short name, direction, worst
                    value); target checks
``members``         member configs from those names: ``grid``,
                    ``random_search``, ``member_config``, ``describe``
``sweeps``          running members: shards, finished runs reused,
                    same-program members as one vmapped program
``presets``         the presets (smoke, cpu, full) as data: each
                    experiment's grids
``plan``            a preset's cost before it runs: programs per worker,
                    member-steps, the wall priced from measured runs
``runner``          the preset runner: calibration, worker processes pinned
                    to CPUs, the progress bar, null references, and
                    ``make_figures`` (train, collect, draw, tables)
``results``         ``results.csv``: ``collect`` (one row per finished run)
                    and its CSV I/O
``tables``          the study's ``results.csv`` (with ``sample_tv``) and the
                    Markdown tables of ``results.md``
``cells``           what the figures and tables report: cells over seeds,
                    paired comparisons, Holm, instability
``claims``          the published claims, declared before the data, and
                    their verdicts
``captions``        the caption line, null-reference labels, PacGAN's numbers
``convergence``     how long an unregularised baseline must train
``length``          the length ablation: the claims read at each length
``dirac``           the Dirac GAN (figure 4a's model; ``docs/dirac.md``)
``population``      a strength search's member configs and ``tune.*`` config
                    (effective ranges through a calibration record)
strength_choice     issue #23 item 3: none vs grid vs adaptive vs PBT,
                    paired by test seed, and figure 16
``replication``     an effect's direction in two experiments side by side
                    (Fashion-MNIST against the digits GAN)
``figures/``        the figure registry and one module per figure group
==================  =========================================================

**Where a new figure goes:** ``figures/<group>.py``, the module of the
FIGURES.md group whose question it answers (the table in
:mod:`experiments.study.figures`), registered there beside its drawing code
with ``@registry.register``. A new penalty, target or metric is one entry in
``vocabulary``.
"""
