"""A population-based strength search from the study's names: its member configs and tune config.

What ``python -m experiments.tune`` and :mod:`experiments.study.strength_choice`
both build before :func:`regan_jax.tune.search` trains: ``population``
members of one penalty on one target, member k at the k-th of ``population``
values spread evenly on a log scale over ``bounds`` (3 significant figures),
and the ``tune.*`` config that searches them within ``bounds``. With a
calibration record the values and bounds are effective strengths, converted
to raw strengths per target network by the sweep's conversion
(:func:`experiments.study.members.member_config`,
:func:`~experiments.study.members.raw_value`); the search clips every network
to one raw range, so a target whose networks get different raw ranges is
refused.
"""

import numpy as np

from experiments.study import members as members_lib
from experiments.study import vocabulary
from regan_jax import effective_strength as calibration_lib
from regan_jax import pbt


def load_record(path, base) -> dict:
    """The calibration record at ``path``, of ``base``'s experiment.

    Raises:
      ValueError: no file, not a record, or a record of another experiment.
    """
    record = calibration_lib.load(path)
    if record.get("experiment") != base.name:
        raise ValueError(
            f"calibration record {str(path)!r} is of {record.get('experiment')!r}, "
            f"not of {base.name!r}"
        )
    return record


def raw_bounds(base, penalty: str, target: str, bounds, record) -> tuple[float, float]:
    """The raw ``(low, high)`` of the effective ``bounds`` on ``target``'s networks (unrounded).

    Raises:
      ValueError: a network the record lacks, or networks with different raw bounds.
    """
    nets = vocabulary.target_networks(base.model_type, target)
    missing = [net for net in nets if net not in record["networks"]]
    if missing:
        raise ValueError(f"calibration record has no network {', '.join(missing)}")
    per_net = {
        net: tuple(members_lib.raw_value(base, penalty, net, e, record) for e in bounds)
        for net in nets
    }
    first = per_net[nets[0]]
    if any(not np.allclose(v, first, rtol=1e-6, atol=0.0) for v in per_net.values()):
        raise ValueError(
            f"calibration record: the effective range maps to different raw ranges on "
            f"{', '.join(nets)} ({per_net}); search one network at a time"
        )
    return first


def member_configs(
    base, penalty: str, target: str, bounds, population: int, calibration=None, seeds=None
) -> list:
    """The members' configs: member k at the k-th log-spaced value of ``bounds`` (module
    docstring), on ``seeds[k]`` (default ``base.seed + k``)."""
    values = [float(f"{v:.3g}") for v in np.geomspace(*bounds, population)]
    seeds = [base.seed + k for k in range(population)] if seeds is None else list(seeds)
    return [
        members_lib.member_config(base, penalty, target, v, s, calibration)
        for v, s in zip(values, seeds)
    ]


def tune_config(base, penalty: str, target: str, raw: tuple, **fields):
    """:func:`regan_jax.pbt.default_config` searching ``penalty`` (its swept and tied
    fields) on ``target``'s networks within the raw bounds ``raw``; ``fields``: the other
    ``tune.*`` values (metric, lower_is_better, interval, quantile, seed)."""
    spec = vocabulary.PENALTIES[penalty]
    config = pbt.default_config()
    for key, value in fields.items():
        config[key] = value
    config.bounds = tuple(raw)
    config.hyperparams = (spec.swept, *spec.tied)
    config.networks = vocabulary.target_networks(base.model_type, target)
    return config
