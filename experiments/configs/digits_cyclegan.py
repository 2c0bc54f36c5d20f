"""Cycle-consistent GAN (CycleGAN) on unpaired digits: colour-inverted digits <-> digits.

Domain A: scikit-learn digits with inverted colours (``1 - x``); domain B:
plain digits; the two from disjoint images (``unpaired_digits``, see
``regan_jax.data.unpaired``). U-Net translators G: A -> B, F: B -> A (one
stride-2 stage, 8x8 -> 4x4 -> 8x8, 32 channels, input skip) and DCGAN
discriminators D_A, D_B (one stage, 64 channels), LSGAN, λ_cyc = 10, no
identity loss. Scored on the 148 held-out rows with the shipped digits
classifier: ``fd`` (G(A) against held-out B), ``content_accuracy``, the
same for F through the known inverse, and the cycle errors (see
``regan_jax.evaluation.cyclegan``, whose ``null_scores`` give the identity,
noise and real references).

Length: measured with this config, seeds 0-2 (2-core AMD EPYC shared with
another job, niced; 51-57 steps/s, 35-38 s): the in-training FD (all 148
held-out rows) falls from 30-41 at 250 steps to 28-31 at 1,000 and stays
there to 2,000, the default; final FD 27.8 / 28.7 / 30.9, content accuracy
0.98 / 0.98 / 0.98 (F: 0.97 / 0.98 / 0.95), cycle errors 0.07.
Speed today: about 92 steps/s on one core of that CPU (``experiments.train``,
300 steps, pinned; ``BENCHMARKS.md``, "The cycle GAN in a sweep"); from some
commit before study v2 until 6f96941 a one-trip ``lax.scan`` in the loop ran
it at 6. References
(``cyclegan.null_scores``): real (the true inverse) FD 27.3, accuracy 0.97;
identity (A untranslated) FD 198, accuracy 0.14; noise FD 240, accuracy 0.11.

With MLP translators (``--config.model.arch=mlp``, widths 128) the
translations look like digits (FD 53 at 10,000 steps) but keep the class
only a third of the time (0.33): without the spatial bias of a convolution
and its skip, a cycle-consistent G may permute the digits.

    python -m experiments.train --config experiments/configs/digits_cyclegan.py --workdir runs/digits_cyclegan
    python -m experiments.train --config experiments/configs/digits_cyclegan.py \\
        --workdir runs/digits_cyclegan_l2_g --config.penalty.g.kind=l2 --config.penalty.g.strength=1e-3
    python -m experiments.train --config experiments/configs/digits_cyclegan.py:smoke --workdir /tmp/cyclegan
    python -m experiments.sample --workdir runs/digits_cyclegan --num 16 --out translations.png
"""

from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = config_lib.base_config("cyclegan", "unpaired_digits")
    config.name = "digits_cyclegan"
    config.steps = 2000
    config.data.batch_size = 32
    config.model.arch = "dcgan"
    config.model.stages = 1
    config.model.g_width = 32
    config.model.d_width = 64
    for net in config.optimizer.keys():
        config.optimizer[net].learning_rate = 2e-4
    config.eval.fd_every = 250
    config.log.samples_every = 500
    config.log.checkpoint_every = 500
    config.log.num_images = 16
    return config_lib.with_options(config, arg)
