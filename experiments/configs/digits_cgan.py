"""Class-conditional GAN on the bundled digits: label-embedding G, projection D.

Same networks as ``digits_gan`` plus the conditioning. The summary reports
the digits classifier's accuracy on class-conditional samples and the
intra-class Fréchet distance; sample grids show one class per column.

Convergence criterion (issue #12, as ``digits_gan``): the median FD at T is
within 10 % of its median at 2T. Measured with ``python -m
experiments.convergence --config digits_cgan --steps 10000 --every 1000 --seeds
0,1,2,3 --config.log.samples_every=0 --config.log.checkpoint_every=0`` (2-core
AMD EPYC; in-training FD on 500 samples): median FD 79 / 42 / 29 / 21 / 16 at
1,000-5,000 steps, 16.8 [95 % CI 14.5, 17.0] at 10,000: met at 5,000 steps,
the default (``digits_gan``'s).

    python -m experiments.train --config experiments/configs/digits_cgan.py --workdir runs/digits_cgan
"""

from experiments.configs import digits_gan
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    return config_lib.with_options(config_lib.conditional(digits_gan.get_config()), arg)
