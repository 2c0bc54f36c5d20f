"""Model families: the one place the model type is dispatched.

``config.model_type`` names a :class:`Family`, which declares its networks,
how to build and initialise them, its training step, its sampler, the rows
of data a step consumes, its config checks and its extra held-out scores.
The loop, the sweep, the evaluator, the figures and the benchmarks ask
:func:`get` and nothing else:

============  ==========================  ==========================================
name          networks                    notes
============  ==========================  ==========================================
``gan``       ``g``, ``d``                unconditional GAN
``cgan``      ``g``, ``d``                class-conditional: label-embedding G,
                                          projection D (Miyato & Koyama 2018)
``vae``       ``encoder``, ``decoder``    Bernoulli or Gaussian likelihood
``cyclegan``  ``g``, ``f``, ``d_a``,      unpaired translation A <-> B (Zhu et
              ``d_b``                     al. 2017) on unpaired data: LSGAN,
                                          cycle and identity L1 terms; target
                                          groups ``generators``,
                                          ``discriminators``, ``all``
============  ==========================  ==========================================

Adding a family (a WGAN variant, another autoencoder) is one module that
builds a :class:`Family` and one line in :data:`FAMILIES`.
"""

from regan_jax._names import choose
from regan_jax.families import cyclegan, gan, vae
from regan_jax.families.base import Family

__all__ = ["FAMILIES", "Family", "get"]

FAMILIES: dict[str, Family] = {
    "gan": gan.GAN,
    "cgan": gan.CGAN,
    "vae": vae.VAE,
    "cyclegan": cyclegan.CYCLEGAN,
}


def get(model_type: str) -> Family:
    """The family named ``model_type``; an unknown name raises ``ValueError`` listing the rest."""
    return choose("model_type", model_type, FAMILIES)
