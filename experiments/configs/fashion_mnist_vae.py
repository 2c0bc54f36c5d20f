"""VAE on Fashion-MNIST: DCGAN-shaped conv encoder and decoder, Bernoulli likelihood.

Needs the IDX files (see fashion_mnist_gan.py).

    python -m experiments.train --config experiments/configs/fashion_mnist_vae.py --workdir runs/fashion_mnist_vae
"""

from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = config_lib.base_config("vae", "fashion_mnist")
    config.steps = 20_000
    config.data.batch_size = 64
    config.model.arch = "dcgan"
    config.model.latent_dim = 32
    config.model.g_width = 32
    config.model.d_width = 32
    config.model.likelihood = "bernoulli"
    for net in ("encoder", "decoder"):
        config.optimizer[net].learning_rate = 1e-3
        config.optimizer[net].b1 = 0.9
    config.eval.num_samples = 10_000
    config.eval.fd_every = 2000
    config.eval.fd_samples = 2000
    config.log.every = 100
    config.log.samples_every = 2000
    config.log.checkpoint_every = 2000
    return config_lib.with_options(config, arg)
