"""An unstable setting by capacity: ``digits_gan`` with D far larger than G.

Issue #21 asks for unstable settings of different causes; this one's cause is
the balance of the two networks. G keeps ``digits_gan``'s depth but only 64
units per hidden layer (10,432 parameters) while D gets 1,024 (1,117,185:
107 times G's), at ``digits_gan``'s optimiser (Adam lr
2e-4, β1 0.5). The expected failure: D separates real from generated samples
early and confidently, G's gradients vanish or swing (the non-saturating
loss helps only partly), and runs end collapsed or at a high final FD. The
optimiser setting (``digits_gan_unstable``: β1 0.9, lr 5e-4) is the other
cause; the third, D overfitting a small training set, waits for
``config.data.train_size`` (a class-stratified subset of the training
split): ``digits_gan`` at ``train_size`` 200 with D at this config's width.

Instability is judged against the *stable* experiment (``digits_gan``: its
unregularised runs' final FD median, ``experiments.study.cells.STABLE_BASELINES``),
never against this setting's own baseline.

Not yet measured across seeds (a CPU sweep of 5 seeds at 5,000 steps takes
about 10 minutes here); before the study uses it, record its unregularised
final FDs below, as ``digits_gan_unstable`` does:

    python -m experiments.sweep --config experiments/configs/digits_gan_capacity.py \\
        --penalties none --seeds 0,1,2,3,4 --workdir runs/capacity \\
        --config.log.samples_every=0 --config.log.checkpoint_every=0
    python -m experiments.train --config experiments/configs/digits_gan_capacity.py --workdir runs/capacity1
"""

from experiments.configs import digits_gan
from regan_jax import config as config_lib


def get_config(arg: str | None = None):
    config = digits_gan.get_config()
    config.name = "digits_gan_capacity"
    config.model.g_width = 64
    config.model.d_width = 1024
    config.log.samples_every = 0
    config.log.checkpoint_every = 1000
    return config_lib.with_options(config, arg)
