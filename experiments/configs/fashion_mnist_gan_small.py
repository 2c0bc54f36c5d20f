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
2T) NOT met within 16,000 steps: the FD is still falling. Three single runs
``python -m experiments.train --config experiments/configs/fashion_mnist_gan_small.py
--workdir W/seed$S --config.seed=$S --config.steps=16000 --config.eval.fd_every=1000
--config.log.samples_every=0 --config.log.checkpoint_every=0`` (S = 0, 1, 2;
medians by experiments.study.convergence; 2,000-sample in-training FD): 277 /
177 / 141 / 121 / 105 at 1,000-5,000 steps, 82.3 at 8,000, 64.6 at 10,000,
56.2 [95 % CI 46.8, 62.4] at 16,000 (FD(8000) / FD(16000) = 1.46). The
vmapped ``python -m experiments.convergence --config fashion_mnist_gan
--config.model.arch=mlp --config.model.g_width=256 --config.model.d_width=256
--steps 10000 --every 1000 --seeds 0,1,2`` agrees: 102.5 at 5,000, 71.9 at
10,000 (ratio 1.43). The default is the longest length measured, not a
converged one. Final scores at 16,000 steps (5,000 samples): FD 58.7, 47.9,
58.8; recall 0.28, 0.29, 0.22; all 10 classes, class KL 0.13-0.17. Null
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
