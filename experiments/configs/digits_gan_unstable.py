"""The study's unstable setting: ``digits_gan`` with Adam's β1 = 0.9 at learning rate 5e-4.

Issue #12 asks for a configuration where the unregularised GAN is measurably
unstable across seeds, with instability defined beyond NaN (final FD above
twice the stable baseline's median, collapse to under half the modes, or an
FD that climbs back above twice its best; see
``regan_jax.evaluation.stability``). Measured on the 2-core AMD EPYC with
``python -m experiments.sweep --config digits_gan --penalties none --seeds
0,1,2,3,4,5 --config.steps=5000 --config.eval.fd_every=500
--config.log.samples_every=0 --config.log.checkpoint_every=0`` and the
overrides below (6 seeds, 5,000 steps):

=====================================  =====================================
setting                                final FD of the 6 seeds (2,000 samples)
=====================================  =====================================
``digits_gan`` (lr 2e-4, β1 0.5)        29.9-38.7 at 10,000 steps (4 seeds;
                                       median FD 31 at 5,000, in training)
lr 1e-3, β1 0.5                        21.9-35.3: stable
**lr 5e-4, β1 0.9 (this config)**      92, 232, 238, 281, 284, 386: all 6 above
                                       2 x 31; one collapsed (4 of 10
                                       classes), one FD rebound 2.0x
lr 2e-3, β1 0.9 (4 seeds)              in-training FD 459-828 at every one of
                                       10 evaluations: no seed learns
lr 1e-3, β1 0.9                        451-1,277 over the first 2,500 steps
                                       (stopped there): no seed learns
D lr 2e-3, β1 0.9, 5 D steps (4)       221-670 at every evaluation
=====================================  =====================================

This config sits where every seed is unstable but not every seed fails
outright, so a penalty that stabilises training has room to show it. The
study tests weight decay and L2 on D and on G here.

    python -m experiments.train --config experiments/configs/digits_gan_unstable.py --workdir runs/unstable
"""

from experiments.configs import digits_gan
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = digits_gan.get_config()
    config.name = "digits_gan_unstable"
    for net in ("g", "d"):
        config.optimizer[net].learning_rate = 5e-4
        config.optimizer[net].b1 = 0.9
    config.log.samples_every = 0
    config.log.checkpoint_every = 1000
    return config_lib.with_options(config, arg)
