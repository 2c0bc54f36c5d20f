"""Unconditional DCGAN-style GAN on CIFAR-10 (32x32 RGB), for users with the TFDS dataset.

CIFAR-10 comes through the TFDS catalog (``tfds build cifar10`` or a prepared
``--config.data.data_dir``); it is not available offline. No feature
classifier ships for it, so FD/KID need Inception weights supplied by the
user (see regan_jax.evaluation); the run still trains and writes samples.

    python -m experiments.train --config experiments/configs/cifar10_gan.py --workdir runs/cifar10_gan
"""

from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = config_lib.base_config("gan", "cifar10")
    config.steps = 100_000
    config.data.batch_size = 64
    config.model.arch = "dcgan"
    config.model.latent_dim = 128
    config.model.g_width = 64
    config.model.d_width = 64
    config.loss.kind = "hinge"
    config.eval.num_samples = 10_000
    config.log.every = 100
    config.log.samples_every = 5000
    config.log.checkpoint_every = 5000
    return config_lib.with_options(config, arg)
