"""regan_jax: norm penalties on the weights of image generative models, in JAX.

Submodules (one concept each; docs/INTERNALS.md maps them): ``config``,
``families``, ``models``, ``losses``, ``penalties``, ``steps``, ``program``,
``parallel``, ``sweep``, ``data``, ``metrics``, ``evaluation``, ``checkpoint``,
``workdir``, ``plotting``, ``events``, ``sampling``, ``train``,
``effective_strength`` (effective strength units), ``calibration`` (measuring
them), ``stats`` (seed statistics). They are
imported on first attribute access so that ``import regan_jax`` stays cheap
and has no side effects.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "calibration",
    "checkpoint",
    "config",
    "data",
    "effective_strength",
    "evaluation",
    "events",
    "families",
    "losses",
    "metrics",
    "models",
    "parallel",
    "penalties",
    "plotting",
    "program",
    "sampling",
    "stats",
    "steps",
    "sweep",
    "train",
    "workdir",
)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
