"""Class-conditional GAN on the bundled digits: label-embedding G, projection D.

Same networks as ``digits_gan`` plus the conditioning. The summary reports
the digits classifier's accuracy on class-conditional samples and the
intra-class Fréchet distance; sample grids show one class per column.

    python -m experiments.train --config experiments/configs/digits_cgan.py --workdir runs/digits_cgan
"""
from experiments.configs import digits_gan
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    return config_lib.with_options(config_lib.conditional(digits_gan.get_config()), arg)
