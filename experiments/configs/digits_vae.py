"""VAE on the bundled 8x8 digits: MLP encoder and decoder, Bernoulli likelihood.

The summary reports the ELBO on held-out digits, the reconstruction error,
and the feature-space Fréchet distance of prior samples.

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
