"""A data-limited VAE: ``digits_vae`` trained on 100 of its 1,500 training images.

The generalisation claim ("a norm penalty prevents overfitting",
``experiments.study.claims``) needs a VAE that overfits: at the full training
set ``digits_vae``'s train/held-out ELBO gap did not open within 10,000 steps
(its docstring). Here the training split is cut to a class-stratified, seeded
subset of 100 images (``config.data.train_size``; 10 per class), as
``digits_gan_small_data`` cuts the GAN's; the held-out split and every other
setting stay ``digits_vae``'s, so 4,000 steps of batch 64 are about 2,560
passes over the 100 images. With ``config.eval.protocol_v2`` the summary holds
``elbo_train`` (the 100 training images) and ``elbo_gap`` (train − held-out).

How far 100 images open the gap is UNMEASURED over seeds: one seed (0) of
each, unregularised, is the only measurement; the convergence length is
``digits_vae``'s, not re-measured. Measured on a shared 2-core AMD EPYC::

    python -m experiments.train --config experiments/configs/digits_vae_small_data.py \\
        --workdir runs/digits_vae_small_data --config.eval.protocol_v2=true \\
        --config.log.checkpoint_every=0
    # and the same with experiments/configs/digits_vae.py

==============================  ==================  ==========
seed 0, 4,000 steps             digits_vae (1,500)  this (100)
==============================  ==================  ==========
held-out ELBO (``elbo``)        -23.83              -26.61
``elbo_train``                  -23.89              -21.70
``elbo_gap``                    -0.06               +4.91
``memorisation_features``       0.054               0.144
``copying_features`` (C_T)      +0.46               -1.02
``fd_inf`` / ``fd_inf_train``   28.6 / 24.5         33.3 / 10.7
==============================  ==================  ==========

So at one seed 100 images open a gap of about 5 nats (the SESOI is 1) and
the samples move toward the training images; the full training set shows
none.
"""

from experiments.configs import digits_vae
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = digits_vae.get_config()
    config.name = "digits_vae_small_data"
    config.data.train_size = 100
    config.log.samples_every = 0
    return config_lib.with_options(config, arg)
