"""Unconditional DCGAN-style GAN on Fashion-MNIST (28x28, 60,000 training images).

Needs the IDX files: ``apt-get install dataset-fashion-mnist`` (Debian) or
``--config.data.idx_dir=DIR`` (or ``$REGAN_DATA_DIR``); with internet, TFDS
downloads it. Scored with the shipped Fashion-MNIST feature classifier. Meant
for a GPU or a long CPU run.

    python -m experiments.train --config experiments/configs/fashion_mnist_gan.py --workdir runs/fashion_mnist_gan
"""

from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = config_lib.base_config("gan", "fashion_mnist")
    config.steps = 20_000
    config.data.batch_size = 64
    config.model.arch = "dcgan"
    config.model.latent_dim = 64
    config.model.g_width = 64
    config.model.d_width = 64
    config.eval.num_samples = 10_000
    config.eval.fd_every = 2000
    config.eval.fd_samples = 2000
    config.log.every = 100
    config.log.samples_every = 2000
    config.log.checkpoint_every = 2000
    return config_lib.with_options(config, arg)
