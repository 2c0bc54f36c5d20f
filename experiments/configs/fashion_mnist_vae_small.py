"""CPU-sized VAE on Fashion-MNIST (28x28): digits_vae's MLP nets at 784 inputs.

Needs the IDX files (see fashion_mnist_gan.py). MLP encoder and decoder (2
hidden layers of 256, latent 16, batch 64, Adam 1e-3 / 0.9), Bernoulli
likelihood on the [0, 1] pixels, as digits_vae and fashion_mnist_vae. The
summary reports the held-out ELBO, the reconstruction error and the scores of
prior samples.

Convergence criterion (issue #12, as the GANs: median FD at T within 10 % of
the median at 2T) met at 12,000 steps, the default. Median in-training FD
(2,000 samples) over seeds 0, 1, 2 of single runs, medians and CIs by
experiments.study.convergence (step_values, stats.cell, converged_at):

    steps           1k    2k    4k    6k    8k   10k   12k   16k   20k   24k   28k   32k
    median FD     79.2  61.4  45.7  39.3  38.8  35.5  33.6  31.0  32.1  32.1  29.2  28.0
    FD(T)/FD(2T)  1.29  1.34  1.18  1.17  1.25  1.11  1.05  1.11     -     -     -     -

95 % CI [32.9, 34.9] at 12,000, [29.0, 36.0] at 24,000, [25.9, 28.7] at
32,000. The plateau is shallow, not flat (as digits_vae's, 39 at its 4,000 and
31.7 at 10,000): T = 12,000 is the first length meeting it (1.049), 13,000
meets it too (1.096), 10,000-11,000 miss by a little (1.108, 1.113), 14,000
-16,000 miss (1.19, 1.28, 1.11); the median falls 17 % from 12,000 to 32,000.
The fashion_mnist_gan_small MLP GAN of the same width, for comparison, was
at 56.2 at 16,000 and 35.3 at 32,000, its lowest ratio up to T = 32,000
1.13.

The project's tool agrees: ``python -m experiments.convergence --config
experiments/configs/fashion_mnist_vae_small.py --steps 24000 --every 1000
--seeds 0,1,2 --config.log.samples_every=0 --config.log.checkpoint_every=0``
(the three seeds as one vmapped group, not bitwise the single runs) prints
"converged at: 12000": median 79.4 at 1,000, 46.0 at 4,000, 38.5 at 8,000,
33.6 [95 % CI 33.4, 35.1] at 12,000, 32.5 at 16,000, 32.0 [30.2, 34.9] at
24,000; 1,611 s wall, partly beside the lead's timed runs; held-out ELBO at
24,000 -240.3, -240.7, -240.8, FD (5,000 samples) 30.5, 31.7, 33.5.

Runs: ``python -m experiments.train --config
experiments/configs/fashion_mnist_vae_small.py --workdir W/seed$S
--config.seed=$S --config.steps=16000 --config.eval.fd_every=1000
--config.log.samples_every=0 --config.log.checkpoint_every=0
--config.log.progress=False`` (S = 0, 1, 2, three processes at once), then
resumed from their final checkpoints to 32,000 (config.json's ``steps``
raised, ``--config.steps=32000``), as fashion_mnist_gan_small's were.

Final scores (5,000 samples): at 12,000 (the default config, seeds 0-2 of
the cell below) FD 34.3, 33.0, 37.3, recall 0.62, 0.63, 0.62, precision 0.91,
held-out ELBO -241.5, -241.6, -242.0; at 16,000 FD 31.5, 32.1, 38.4, recall
0.62, 0.64, 0.62, ELBO -241.1, -240.9, -241.0; at 32,000 FD 27.2, 29.1, 31.2,
recall 0.65, 0.68, 0.66, precision 0.91-0.92, ELBO -240.2, -239.7, -239.9;
all 10 classes in every run. The train/test ELBO gap did not open within
32,000 steps: the mean training -ELBO of the last 1,000 steps' logged
batches was 232.9-237.8 at 16,000 and 234.2-240.1 at 32,000, and the
held-out ELBO still improved. Null references
(experiments.study.runner.null_references) at 5,000 samples: noise FD 413,
pixel-shuffled 362, real 0.37; at 2,000: 411, 365, 0.88 (as the GAN's: same
data and evaluator).

Speed (``lscpu``: AMD EPYC, 2 cores shared with the lead's timed runs and
another helper, load 5-9, niced: read the ratios): ``python -m
benchmarks.fashion_candidates --only
dcgan64_b64,fashion_mnist_gan_small,fashion_mnist_vae_small --steps 20
--blocks 7``: DCGAN width 64 1.50 steps/s (1.00x), fashion_mnist_gan_small
172 (115x), this VAE 178 (118x). Vmapped seeds are slower than one run after
another: ``... --only fashion_mnist_vae_small --members 5 --steps 20 --blocks
7``: one run 76.0 steps/s, 5 seeds vmapped 9.0 (45 member-steps/s), 0.59x of
5 sequential runs (K = 3 at ``--blocks 5``: 0.93x); a study grid of it wants
``max_members=1``, as the GAN's. Wall: the three 16,000-step runs above took
235-238 s each at once (67-68 steps/s each, ~200 member-steps/s on the two
cores). A 5-seed cell, ``python -m experiments.sweep --config
experiments/configs/fashion_mnist_vae_small.py --penalties none --seeds
0,1,2,3,4 --max-members 1`` (12,000 steps each, one run after another in one
process, the final evaluation at 5,000 samples), 2026-12-06 01:58-02:06 UTC:
492 s wall. Seed 0 ran beside other jobs at 68 steps/s (176 s); seeds 1-4 on
a quieter machine (load 1.6-3.5) at 195-224 steps/s, 53-62 s each (training
49-57 s, compilation 2.4-3.3 s from the process's cache, final evaluation
3.0-5.6 s), so an unloaded cell is ~5-6 min. Its median final FD 32.9
(29.8-37.3), in-training FD at 12,000 32.9 [95 % CI 30.0, 34.9], held-out
ELBO -241.5 to -242.0, recall 0.59-0.65, all 10 classes; seeds 0-2 are
bitwise the single runs above (FD and loss rows equal).

    python -m experiments.train --config experiments/configs/fashion_mnist_vae_small.py \\
        --workdir runs/fashion_mnist_vae_small
    python -m experiments.train --config experiments/configs/fashion_mnist_vae_small.py:smoke \\
        --workdir /tmp/fashion_vae_small
"""

from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = config_lib.base_config("vae", "fashion_mnist")
    config.name = "fashion_mnist_vae_small"
    config.steps = 12_000
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
    # 5,000 samples: the count of the nulls' real pool (half the held-out split).
    config.eval.num_samples = 5000
    config.eval.fd_every = 1000
    config.eval.fd_samples = 2000
    config.log.every = 100
    config.log.samples_every = 2000
    config.log.checkpoint_every = 2000
    return config_lib.with_options(config, arg)
