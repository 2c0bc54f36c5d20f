"""Unconditional GAN on ``grid25`` (5x5 grid of Gaussians), MLP G and D.

The harder 2-D mode-collapse setting: modes covered (of 25), high-quality
fraction and reverse KL. Same networks as ``ring8_gan``.

    python -m experiments.train --config experiments/configs/grid25_gan.py --workdir runs/grid25_gan
"""
from experiments.configs import ring8_gan
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = ring8_gan.get_config()
    config.name = "grid25_gan"
    config.data.name = "grid25"
    # The published geometry (PacGAN's 2DGrid config: means (-4 + 2i, -4 + 2j),
    # variance 0.05**2; sigma/spacing = 0.025), with ring8_gan's linear output.
    config.data.grid_spacing = 2.0
    config.data.sigma = 0.05
    config.steps = 4000
    return config_lib.with_options(config, arg)
