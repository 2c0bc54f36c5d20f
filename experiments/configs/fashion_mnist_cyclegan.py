"""Cycle-consistent GAN on unpaired Fashion-MNIST: colour-inverted <-> plain images.

Needs the IDX files, as ``fashion_mnist_gan`` (``apt-get install
dataset-fashion-mnist``, ``--config.data.idx_dir=DIR`` or
``$REGAN_DATA_DIR``); domains A and B are the two disjoint halves of each
split (``unpaired_fashion_mnist``: 30,000 / 5,000 rows). Conv
encoder-decoder translators and DCGAN discriminators, LSGAN, λ_cyc = 10.
Scored with the shipped Fashion-MNIST classifier on the 5,000 held-out rows.
Meant for a GPU or a long CPU run.

    python -m experiments.train --config experiments/configs/fashion_mnist_cyclegan.py --workdir runs/fashion_mnist_cyclegan
"""

from experiments.configs import digits_cyclegan
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = digits_cyclegan.get_config()
    config.name = "fashion_mnist_cyclegan"
    config.data.name = "unpaired_fashion_mnist"
    config.steps = 10_000
    config.model.stages = 0  # derived from the image size (28x28: 2 stages)
    config.eval.fd_every = 1000
    config.log.every = 100
    config.log.samples_every = 2000
    config.log.checkpoint_every = 2000
    return config_lib.with_options(config, arg)
