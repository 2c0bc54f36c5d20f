"""CPU-sized VAE on Fashion-MNIST (28x28): digits_vae's MLP nets at 784 inputs.

Needs the IDX files (see fashion_mnist_gan.py). MLP encoder and decoder (2
hidden layers of 256, latent 16, batch 64, Adam 1e-3 / 0.9), Bernoulli
likelihood on the [0, 1] pixels, as digits_vae and fashion_mnist_vae.

    python -m experiments.train --config experiments/configs/fashion_mnist_vae_small.py \\
        --workdir runs/fashion_mnist_vae_small
    python -m experiments.train --config experiments/configs/fashion_mnist_vae_small.py:smoke \\
        --workdir /tmp/fashion_vae_small
"""

from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = config_lib.base_config("vae", "fashion_mnist")
    config.name = "fashion_mnist_vae_small"
    config.steps = 16_000
    config.data.batch_size = 64
    config.model.arch = "mlp"
    config.model.latent_dim = 16
    config.model.g_width = 256
    config.model.d_width = 256
    config.model.mlp_layers = 2
    config.model.likelihood = "bernoulli"
    for net in ("encoder", "decoder"):
        config.optimizer[net].learning_rate = 1e-3
        config.optimizer[net].b1 = 0.9
    # 5,000 samples: the count of the nulls' real pool (half the held-out split).
    config.eval.num_samples = 5000
    config.eval.fd_every = 1000
    config.eval.fd_samples = 2000
    config.log.every = 100
    config.log.samples_every = 2000
    config.log.checkpoint_every = 2000
    return config_lib.with_options(config, arg)
