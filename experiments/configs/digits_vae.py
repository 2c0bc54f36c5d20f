"""VAE on the bundled 8x8 digits: MLP encoder and decoder, Bernoulli likelihood.

The summary reports the ELBO on held-out digits, the reconstruction error,
and the feature-space Fréchet distance of prior samples.

Convergence criterion (issue #12, as the GANs): the median sample FD at T is
within 10 % of its median at 2T. Measured with ``python -m
experiments.convergence --config digits_vae --steps 10000 --every 1000 --seeds
0,1,2,3 --config.log.samples_every=0 --config.log.checkpoint_every=0`` (2-core
AMD EPYC; 500-sample FD): 57 / 45 / 42 / 39 at 1,000-4,000 steps, 35.4 at
8,000, 31.7 [95 % CI 29.3, 32.1] at 10,000: met at 4,000 steps, the default.
The train/test ELBO gap did not open within 10,000 steps: held-out ELBO
-23.69 to -23.77 against a last training batch's -ELBO of 23.1-23.9.

    python -m experiments.train --config experiments/configs/digits_vae.py --workdir runs/digits_vae
    python -m experiments.train --config experiments/configs/digits_vae.py \\
        --workdir runs/digits_vae_l1 --config.penalty.decoder.kind=prox_l1 --config.penalty.decoder.strength=1e-4
"""

from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = config_lib.base_config("vae", "digits")
    config.steps = 4000
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
    config.eval.fd_every = 1000
    config.log.samples_every = 1000
    config.log.checkpoint_every = 1000
    return config_lib.with_options(config, arg)
