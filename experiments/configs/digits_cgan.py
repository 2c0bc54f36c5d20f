"""Class-conditional GAN on the bundled digits: label-embedding G, projection D.

Same networks as ``digits_gan`` plus the conditioning. The summary reports
the digits classifier's accuracy on class-conditional samples and the
intra-class Fréchet distance; sample grids show one class per column.

    python -m experiments.train --config experiments/configs/digits_cgan.py --workdir runs/digits_cgan
"""
from experiments.configs import digits_gan
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = digits_gan.get_config()
    config.name = "digits_cgan"
    config.model_type = "cgan"
    config.model.kind = "cgan"
    config.log.num_images = 100  # 10 per class
    return config_lib.with_options(config, arg)
