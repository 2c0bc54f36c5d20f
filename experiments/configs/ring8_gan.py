"""Unconditional GAN on ``ring8`` (8 Gaussians on a circle), MLP G and D.

The mode-collapse setting of Unrolled GAN / VEEGAN / PacGAN: the summary
reports modes covered (of 8), the high-quality fraction (within 3σ of a mode)
and the reverse KL of the mode histogram to uniform.

    python -m experiments.train --config experiments/configs/ring8_gan.py --workdir runs/ring8_gan
    python -m experiments.train --config experiments/configs/ring8_gan.py:smoke --workdir /tmp/ring8
"""
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = config_lib.base_config("gan", "ring8")
    config.steps = 3000
    config.data.batch_size = 256
    # The published geometry (PacGAN's released config, fjxmlzn/PacGAN
    # synthetic_data_experiments/2DRing_GAN&PacGAN/config.py: means on the
    # unit circle, variance 0.01**2; VEEGAN's radius 2 with sigma 0.02 has the
    # same sigma/radius = 0.01), reached by a linear generator output.
    config.data.ring_radius = 1.0
    config.data.sigma = 0.01
    config.model.g_output = "linear"
    config.model.arch = "mlp"
    config.model.latent_dim = 16
    config.model.g_width = 128
    config.model.d_width = 128
    config.model.mlp_layers = 2
    for net in ("g", "d"):
        config.optimizer[net].learning_rate = 1e-3
    config.eval.num_samples = 2500
    config.eval.fd_every = 500  # the cheap scores of 2-D data: modes, hq_fraction, reverse KL
    config.log.num_images = 1000
    return config_lib.with_options(config, arg)
