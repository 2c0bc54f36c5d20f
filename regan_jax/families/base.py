"""What a model family declares: :class:`Family`."""

import dataclasses
from collections.abc import Callable

from regan_jax import losses

# Signatures of a family's functions (``models``/``optimizers``: ``{network: ...}``;
# ``spec``: a ``regan_jax.data.DataSpec``; ``config``: a validated experiment config).
MakeModels = Callable  # (model_cfg, spec) -> {network: flax module}
InitState = Callable  # (models, optimizers, key, example_batch) -> steps.TrainState
# (config, models, optimizers) -> step(state, batch, key=None, axis_name=None)
MakeStep = Callable
# (config, models, spec, test split or None) -> sample(params, key, n, labels=None)
#   -> (x, labels | None)
MakeSampler = Callable
RowsPerStep = Callable  # (config) -> rows of data one step consumes
Validate = Callable  # (config) -> None; raises ValueError naming the config key
ScoreFn = Callable  # (config, models, params, key) -> (images [B, ...] -> {score: [B]})
# (config, models, test split) -> evaluate(params, key, cheap=False) -> {score: float}
MakeEvaluator = Callable
SampleShape = Callable  # (data shape) -> the shape of one of the sampler's samples
NullScores = Callable  # (config, key) -> ({kind: scores}, the number of held-out examples)
LossConfig = Callable  # () -> config.loss's defaults (the schema of that section)
UpdatesPerStep = Callable  # (config, network) -> that network's optimizer updates per step


def one_update_per_step(config, network) -> int:
    """Every network updated once per training step (the default)."""
    del config, network
    return 1


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family: its networks and everything the loop, sweep and evaluator ask of it.

    Adding a family is one module that builds a :class:`Family` plus one line
    in ``regan_jax.families.FAMILIES``; nothing else dispatches on the family.

    Attributes:
      name: the ``config.model_type`` that selects it.
      networks: the trained networks, in config order (``config.optimizer.<net>``,
        ``config.penalty.<net>``).
      adversarial: trained against a discriminator (GAN-only baselines such as
        spectral normalisation and gradient penalties apply).
      conditional: samples are drawn per class (grids have one class per column).
      make_models, init_state, make_step, make_sampler, rows_per_step, validate:
        see the signatures above.
      score_fn: per-example held-out scores of a run (the VAE's ELBO and
        reconstruction term), or None.
      make_evaluator: the family's own held-out evaluation, built once per
        program from the test split, for a family whose samples are not
        scored against the dataset's reference (image-to-image translation);
        ``cheap=True`` gives the in-training scores (``fd``). None: none.
      null_scores: the null references of a family with its own evaluation
        (``make_evaluator``), scored by it: ``({kind: scores}, n)``; None:
        the dataset's (:func:`regan_jax.evaluation.null_scores`).
      sample_shape: the shape of one sample when it is not the data's (a
        translation strip); None: the data's shape.
      loss_config: the defaults of ``config.loss`` (its schema): the shared
        GAN keys, plus the family's own weights where it has some.
      target_groups: ``((name, networks), ...)``, named sets of networks a
        study may target at once (``('generators', ('g', 'f'))``), besides
        each network and ``'both'`` (every network). A tuple: a family is hashable.
      updates_per_step: a network's optimizer updates per training step (an
        adaptive decoupled or proximal penalty spreads its per-run effective
        strength over them, as the calibration's ``updates_per_step``).
    """

    name: str
    networks: tuple[str, ...]
    adversarial: bool
    conditional: bool
    make_models: MakeModels
    init_state: InitState
    make_step: MakeStep
    make_sampler: MakeSampler
    rows_per_step: RowsPerStep
    validate: Validate
    score_fn: ScoreFn | None = None
    make_evaluator: MakeEvaluator | None = None
    null_scores: NullScores | None = None
    sample_shape: SampleShape | None = None
    loss_config: LossConfig = losses.default_config
    target_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    updates_per_step: UpdatesPerStep = one_update_per_step
