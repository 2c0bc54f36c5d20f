"""THE DEFAULT: unconditional DCGAN-style GAN on scikit-learn's bundled 8x8 digits.

Trains to recognisable digits in a few minutes on a 2-core CPU; scored with
the shipped digits feature classifier (FD, KID, precision/recall,
density/coverage, class-histogram KL).

    python -m experiments.train --config experiments/configs/digits_gan.py --workdir runs/digits_gan
    python -m experiments.train --config experiments/configs/digits_gan.py \\
        --workdir runs/digits_prox_l1 --config.penalty.g.kind=prox_l1 --config.penalty.g.strength=1e-4
    python -m experiments.train --config experiments/configs/digits_gan.py:smoke --workdir /tmp/digits
"""
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = config_lib.base_config("gan", "digits")
    config.steps = 3000
    config.data.batch_size = 64
    config.model.arch = "dcgan"
    config.model.latent_dim = 32
    config.model.g_width = 32
    config.model.d_width = 32
    for net in ("g", "d"):
        config.optimizer[net].learning_rate = 2e-4
    config.eval.fd_every = 500
    return config_lib.with_options(config, arg)
