"""THE DEFAULT: unconditional GAN on scikit-learn's bundled 8x8 digits (1,797 images).

MLP generator and discriminator (2 hidden layers of 256): on 8x8 images they
give recognisable digits in about a minute on a 2-core CPU, roughly 10x
faster than the DCGAN nets (``--config.model.arch=dcgan``), which is what
lets the study's sweeps run on a laptop. Scored with the shipped digits
feature classifier (FD, KID, precision/recall, density/coverage,
class-histogram KL).

Convergence criterion (issue #12): the unregularised run's median FD at T is
within 10 % of its median at 2T. Measured with ``python -m
experiments.convergence --config digits_gan --steps 10000 --every 1000 --seeds
0,1,2,3 --config.log.samples_every=0 --config.log.checkpoint_every=0``
(2-core AMD EPYC; in-training FD on 500 samples): median FD 104 / 65 / 42 /
37 / 31 at 1,000-5,000 steps, then 31-40 to 10,000 (40 [95 % CI 35, 42]):
met at 5,000 steps, the default. Past it the FD wanders rather than falls
(final 2,000-sample FD at 10,000 steps: 29.9, 33.1, 30.5, 38.7).

    python -m experiments.train --config experiments/configs/digits_gan.py --workdir runs/digits_gan
    python -m experiments.train --config experiments/configs/digits_gan.py \\
        --workdir runs/digits_prox_l1 --config.penalty.g.kind=prox_l1 --config.penalty.g.strength=1e-4
    python -m experiments.train --config experiments/configs/digits_gan.py:smoke --workdir /tmp/digits
"""

from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = config_lib.base_config("gan", "digits")
    config.steps = 5000
    config.data.batch_size = 64
    config.model.arch = "mlp"
    config.model.latent_dim = 32
    config.model.g_width = 256
    config.model.d_width = 256
    config.model.mlp_layers = 2
    for net in ("g", "d"):
        config.optimizer[net].learning_rate = 2e-4
    config.eval.fd_every = 500
    config.log.samples_every = 1000
    config.log.checkpoint_every = 1000
    return config_lib.with_options(config, arg)
