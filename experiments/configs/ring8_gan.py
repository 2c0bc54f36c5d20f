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
    # The MLP generator ends in tanh (outputs in [-1, 1]), so the ring lies
    # inside that box: the usual ring of radius 2 with sigma 0.05, scaled by 0.4.
    config.data.ring_radius = 0.8
    config.data.sigma = 0.02
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
