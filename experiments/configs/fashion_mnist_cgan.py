"""Class-conditional DCGAN-style GAN on Fashion-MNIST (label embedding, projection D).

Needs the IDX files (see fashion_mnist_gan.py).

    python -m experiments.train --config experiments/configs/fashion_mnist_cgan.py --workdir runs/fashion_mnist_cgan
"""

from experiments.configs import fashion_mnist_gan
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    return config_lib.with_options(config_lib.conditional(fashion_mnist_gan.get_config()), arg)
