"""CPU-sized GAN on Fashion-MNIST (28x28): digits_gan's MLP nets at 784 inputs.

Needs the IDX files (see fashion_mnist_gan.py). MLP generator and
discriminator (2 hidden layers of 256, latent 64, batch 64, Adam 2e-4 / 0.5):
the fastest candidate that trains, measured beside the width-64 DCGAN
(fashion_mnist_gan) in one process by ``python -m benchmarks.fashion_candidates
--steps 5 --blocks 5`` (2-core AMD EPYC shared with other jobs, load ~8, so
read the ratios, not the rates): DCGAN width 64 0.75 steps/s (1.00x), width
32 2.61 (3.5x), 24 4.41 (5.9x), 16 7.62 (10.2x); batch 32 at width 32 5.95
(7.9x), at width 16 17.3 (23x); this MLP 73.8 (98x); MLP width 512 27.4 (36x).

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
