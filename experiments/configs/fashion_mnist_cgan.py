"""Class-conditional DCGAN-style GAN on Fashion-MNIST (label embedding, projection D).

Needs the IDX files (see fashion_mnist_gan.py).

    python -m experiments.train --config experiments/configs/fashion_mnist_cgan.py --workdir runs/fashion_mnist_cgan
"""
from experiments.configs import fashion_mnist_gan
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = fashion_mnist_gan.get_config()
    config.name = "fashion_mnist_cgan"
    config.model_type = "cgan"
    config.model.kind = "cgan"
    config.log.num_images = 100  # 10 per class
    return config_lib.with_options(config, arg)
