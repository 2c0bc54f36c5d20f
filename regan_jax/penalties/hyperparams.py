"""Penalty hyperparameters: each one's rule, declared once.

A hyperparameter is a float or an optax schedule. Its rule is declared here
once, as a :class:`Hyperparam`: whether it must be > 0 or merely >= 0 (always
finite), and whether a penalty config's strength schedule multiplies it. Every
consumer asks the declaration instead of restating the rule: the transforms'
argument checks, ``validate_penalty_config``, ``build_optimizer`` (which
values the strength schedule scales), ``set_hyperparams`` and
``penalty_value``. Each penalty kind (``builder.PENALTY_KINDS``) names the
declarations it uses.

The schedule helpers at the end build the multiplier m(k) ∈ [0, 1] that a
config's ``schedule`` field names; a scheduled value at step k is base × m(k).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from regan_jax._names import check_name


def check_value(name: str, value: Any, *, positive: bool = False) -> None:
    """Raises ``ValueError`` unless ``value`` is finite and >= 0 (> 0 if ``positive``).

    Concrete numbers and arrays are checked element-wise; a schedule is checked
    at count 0. Traced values (under ``jit``/``vmap``) cannot be inspected and
    are let through: validate configs before tracing.
    """
    if callable(value):
        value = value(0)
    if isinstance(value, jax.core.Tracer):
        return
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an optax schedule, got {value!r}") from None
    bound_ok = np.all(array > 0) if positive else np.all(array >= 0)
    if not (np.all(np.isfinite(array)) and bound_ok):
        expected = "finite and > 0" if positive else "finite and >= 0"
        raise ValueError(f"{name} must be {expected}, got {value!r}")


class Hyperparam(NamedTuple):
    """One hyperparameter's declaration.

    Attributes:
      name: its name in penalty configs and in ``build_optimizer``'s state.
      positive: must be > 0 (else >= 0, where 0 switches the term off).
      scheduled: multiplied by the penalty config's strength schedule m(k).
      default: its value in ``default_penalty_config`` (None: not a field there).
    """

    name: str
    positive: bool = False
    scheduled: bool = True
    default: float | None = 0.0

    def check(self, value: Any, name: str | None = None) -> None:
        """Raises ``ValueError`` unless ``value`` obeys the rule.

        Args:
          value: a number, an array (checked element-wise) or a schedule.
          name: the name to show in the message (default ``self.name``), e.g.
            a transform's own argument name.
        """
        check_value(self.name if name is None else name, value, positive=self.positive)

    def with_schedule(self, base: Any, multiplier: Callable | None) -> Any:
        """``base`` × the strength multiplier as a schedule if scheduled, else ``base``."""
        return scaled(base, multiplier) if self.scheduled else base

    def at_step(self, base: Any, multiplier: Callable | None, step: Any) -> Any:
        """``base`` × m(``step``) if scheduled (and a multiplier is set), else ``base``."""
        if not self.scheduled or multiplier is None or step is None:
            return base
        return base * multiplier(step)


# λ (λ₁ of elastic net): l1, l2, group L1 and their proximal steps.
STRENGTH = Hyperparam("strength")
# λ₂ of elastic net.
L2_STRENGTH = Hyperparam("l2_strength")
# r of the projections: a ball of radius 0 would zero the weights; a hard
# constraint, so the strength schedule does not move it.
RADIUS = Hyperparam("radius", positive=True, scheduled=False, default=1.0)
# t of the proximal steps (the optimizer's own, scheduled by the optimizer config).
LEARNING_RATE = Hyperparam("learning_rate", scheduled=False, default=None)

# Where an additive penalty sits: before the optimizer's scaling (the penalty in
# the loss) or after it (AdamW).
COUPLINGS = ("coupled", "decoupled")

# The hyperparameter fields of a penalty config, in their validation order.
PENALTY_FIELDS = (STRENGTH, L2_STRENGTH, RADIUS)
# Every hyperparameter a build_optimizer() state may hold, by name.
HYPERPARAMS = {h.name: h for h in (LEARNING_RATE, *PENALTY_FIELDS)}


# ----------------------------------------------------------------------------
# Multiplier schedules (a config's ``schedule`` field)
# ----------------------------------------------------------------------------

MULTIPLIER_SCHEDULES = ("constant", "linear_warmup", "warmup_cosine")


def multiplier_schedule(
    name: str, warmup_steps: int, decay_steps: int
) -> Callable[[jax.Array], jax.Array] | None:
    """A schedule in [0, 1] that multiplies a base hyperparameter (None = constant).

    - 'constant': 1 (returns None so callers keep a plain scalar).
    - 'linear_warmup': 0 → 1 linearly over ``warmup_steps``, then 1.
    - 'warmup_cosine': linear 0 → 1 over ``warmup_steps``, then cosine decay
      to 0 at ``decay_steps`` (total, warm-up included).
    """
    check_name("schedule", name, MULTIPLIER_SCHEDULES)
    if name == "constant":
        return None
    if name == "linear_warmup":
        if warmup_steps <= 0:
            raise ValueError(f"schedule 'linear_warmup' needs warmup_steps > 0, got {warmup_steps}")
        return optax.linear_schedule(0.0, 1.0, warmup_steps)
    if not 0 <= warmup_steps < decay_steps:
        raise ValueError(
            "schedule 'warmup_cosine' needs 0 <= warmup_steps < decay_steps, got "
            f"warmup_steps={warmup_steps}, decay_steps={decay_steps}"
        )
    return optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps, decay_steps)


def scaled(base: Any, multiplier: Callable | None) -> Any:
    """``base`` times a multiplier schedule, as a schedule (or ``base`` if None)."""
    if multiplier is None:
        return base
    return lambda count: base * multiplier(count)
