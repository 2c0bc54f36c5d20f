"""An unstable setting by capacity: ``digits_gan`` with D far larger than G.

Issue #21 asks for unstable settings of different causes; this one's cause is
the balance of the two networks. G keeps ``digits_gan``'s depth but only 64
units per hidden layer (10,432 parameters) while D gets 1,024 (1,117,185:
107 times G's), at ``digits_gan``'s optimiser (Adam lr 2e-4, β1 0.5). The
other causes are the optimiser (``digits_gan_unstable``: β1 0.9, lr 5e-4)
and data (``digits_gan_small_data``: 100 training images).

Instability is judged against the *stable* experiment (``digits_gan``: its
unregularised runs' final FD median, ``experiments.study.cells.STABLE_BASELINES``),
never against this setting's own baseline. Measured on the 2-core AMD EPYC
(5 seeds, 5,000 steps, no penalty; 7.3 min of training for the vmapped group,
sharing the machine with another sweep)::

    python -m experiments.sweep --config experiments/configs/digits_gan_capacity.py \\
        --penalties none --seeds 0,1,2,3,4 --workdir runs/capacity \\
        --config.log.samples_every=0 --config.log.checkpoint_every=0

=====  ========  ===========  ======  ==========  =====================
seed   final FD  FD rebound   recall  classes     unstable (stable rule)
=====  ========  ===========  ======  ==========  =====================
0      350       4.77         0.19    5 of 10     FD > 2 x 28.4, rebound
1      189       3.29         0.37    8           FD, rebound
2      208       3.37         0.31    7           FD, rebound
3      198       2.78         0.43    9           FD, rebound
4      348       6.17         0.18    7           FD, rebound
=====  ========  ===========  ======  ==========  =====================

All 5 are unstable: final FD 6-12 times the stable median, the FD climbing
back to 2.8-6.2 times its best, classes lost (none under half, so none
counts as collapsed). At step 5,000 D's mean logit is +10.9 on real images
and −4.3 on generated ones (seed 0): D wins outright, as expected.
"""

from experiments.configs import digits_gan
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = digits_gan.get_config()
    config.name = "digits_gan_capacity"
    config.model.g_width = 64
    config.model.d_width = 1024
    config.log.samples_every = 0
    config.log.checkpoint_every = 1000
    return config_lib.with_options(config, arg)
