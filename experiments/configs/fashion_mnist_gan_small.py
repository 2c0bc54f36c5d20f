"""CPU-sized GAN on Fashion-MNIST (28x28): digits_gan's MLP nets at 784 inputs.

Needs the IDX files (see fashion_mnist_gan.py). MLP generator and
discriminator (2 hidden layers of 256, latent 64, batch 64, Adam 2e-4 / 0.5):
the fastest candidate that trains, measured beside the width-64 DCGAN
(fashion_mnist_gan) in one process by ``python -m benchmarks.fashion_candidates
--steps 5 --blocks 5`` (2-core AMD EPYC shared with other jobs, load 7-12, so
read the ratios, not the rates): DCGAN width 64 0.94 steps/s (1.00x), width
32 3.13 (3.3x), 24 5.78 (6.1x), 16 9.96 (10.5x); batch 32 at width 32 6.78
(7.2x), at width 16 29.9 (32x); this MLP 125 (132x; 98x in an earlier run at
load ~8); MLP width 512 62.3 (66x).

Vmapped groups of it are slower than its runs one after another on this CPU:
``python -m benchmarks.fashion_candidates --only fashion_mnist_gan_small
--members 5 --steps 20 --blocks 7``: one run 195 steps/s, 5 seeds vmapped
11.0 steps/s (55 member-steps/s), a K=5 step takes 17.7x one run's step
(0.28x of 5 sequential runs; 9.8x at load ~19). Whole processes, 300 steps
each with the final evaluation (``experiments.sweep --penalties none --seeds
0,1,2,3,4 --config.steps=300`` against one ``experiments.train``): 315 s
against 83 s wall (3.8x), 62 against 25 CPU-s (2.5x). A 16,000-step run
below took 1,055 s wall (15.2 steps/s) with three running at once on the
loaded machine; the 3-seed vmapped 10,000-step sweep took 2,325 s.

Convergence criterion (issue #12: median FD at T within 10 % of the median at
2T) NOT met within 32,000 steps: the FD keeps falling. The default stays
16,000 steps, a length measured, not a converged one. Median in-training FD
(2,000 samples) over seeds 0, 1, 2 of single runs, medians and CIs by
experiments.study.convergence (step_values, stats.cell, converged_at):

    steps                   1k    2k    4k    8k   16k   24k   32k   48k   64k
    Adam 2e-4 (default)    277   177   121  82.3  56.2  40.5  35.3  35.9  30.0
    Adam 5e-4 (g and d)    181   120  65.0  50.5  33.5     -     -     -     -

Adam 2e-4: 95 % CI [46.8, 62.4] at 16,000, [33.9, 40.4] at 32,000, [26.6,
31.9] at 64,000; FD(T) / FD(2T) = 1.47 at T = 8,000, 1.59 at 16,000, 1.31 at
18,000, 1.13 at 24,000 (the lowest), 1.15 at 28,000, 1.18 at 32,000. Adam
5e-4, the one variant tried (faster at every length, not converged either):
FD(T) / FD(2T) = 1.29 at 4,000, 1.51 at 8,000 (seeds 0, 1 alone: 1.21, 1.47).
Steps 1,000-16,000: ``python -m experiments.train --config
experiments/configs/fashion_mnist_gan_small.py --workdir W/seed$S
--config.seed=$S --config.steps=16000 --config.eval.fd_every=1000
--config.log.samples_every=0 --config.log.checkpoint_every=0`` (S = 0, 1, 2;
the variant adds ``--config.optimizer.g.learning_rate=5e-4
--config.optimizer.d.learning_rate=5e-4``). Steps 16,000-64,000: those
runs resumed from their final checkpoints twice, their config.json's
``steps`` raised to 32000, then 64000, with ``--config.steps=32000`` (64000)
``--config.eval.fd_every=2000 --config.log.progress=False`` (a step's key is
fold_in(step) and the data position is in the checkpoint, so a resumed run
equals an uninterrupted one; checked here: seed 0 run to 1,000 steps and run
to 500 then extended so log every row and the final FD bitwise equal). The
vmapped ``python -m experiments.convergence --config fashion_mnist_gan
--config.model.arch=mlp --config.model.g_width=256 --config.model.d_width=256
--steps 10000 --every 1000 --seeds 0,1,2`` agrees
on 1,000-10,000: 102.5 at 5,000, 71.9 at 10,000. Speed (``lscpu``: AMD EPYC,
2 cores shared with a CI test run and another helper's benchmark): 80-81
steps/s per run for 16,000-32,000 with the three runs at once (load 8-14);
45 for 32,000-64,000 and 31-32 for the variant, six runs at once (load
15-21). Final scores (5,000 samples): at 16,000 FD 58.7, 47.9, 58.8, recall
0.28, 0.29, 0.22; at 32,000 FD 36.3, 37.7, 41.0, recall 0.49, 0.47, 0.42; at
64,000 FD 31.8, 30.4, 28.0, recall 0.54, 0.59, 0.61; Adam 5e-4 at 16,000 FD
34.7, 31.8, 30.9, recall 0.39, 0.40, 0.38; all 10 classes in every run. Null
references (experiments.study.runner.null_references, the evaluator that
scores runs) at 5,000 samples: noise FD 413, pixel-shuffled 362, real 0.37;
at 2,000 (the in-training FD's count): 411, 365, 0.88.

    python -m experiments.train --config experiments/configs/fashion_mnist_gan_small.py \\
        --workdir runs/fashion_mnist_gan_small
    python -m experiments.train --config experiments/configs/fashion_mnist_gan_small.py:smoke \\
        --workdir /tmp/fashion_small
"""

from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = config_lib.base_config("gan", "fashion_mnist")
    config.name = "fashion_mnist_gan_small"
    config.steps = 16_000
    config.data.batch_size = 64
    config.model.arch = "mlp"
    config.model.latent_dim = 64
    config.model.g_width = 256
    config.model.d_width = 256
    config.model.mlp_layers = 2
    for net in ("g", "d"):
        config.optimizer[net].learning_rate = 2e-4
    # 5,000 samples: the count of the nulls' real pool (half the held-out split).
    config.eval.num_samples = 5000
    config.eval.fd_every = 1000
    config.eval.fd_samples = 2000
    config.log.every = 100
    config.log.samples_every = 2000
    config.log.checkpoint_every = 2000
    return config_lib.with_options(config, arg)
