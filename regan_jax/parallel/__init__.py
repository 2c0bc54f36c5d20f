"""Data parallelism, member parallelism and several processes: one training step across devices.

Four modules, one concern each:

- :mod:`regan_jax.parallel.processes`: several processes (``jax.distributed``):
  :func:`initialize_distributed` joins them, process 0 alone writes
  (:func:`is_main_process`), and what it alone decides or holds reaches the
  others (:func:`on_main_process`, :func:`broadcast`, :func:`any_process`,
  :func:`fetch`).
- :mod:`regan_jax.parallel.faults`: a process that fails or dies stops the
  others within a bound (``--process-timeout``), each with one line naming it
  (a watch thread per process, :func:`~regan_jax.parallel.faults.leave` in
  the command lines' error handler).
- :mod:`regan_jax.parallel.placement`: device meshes (:class:`MeshShape`,
  :func:`make_mesh`, :func:`make_member_mesh`) and a step written once with an
  optional ``axis_name`` run under ``jax.shard_map`` (:func:`shard_map_step`,
  :func:`members_step` for a vmapped group on a ``members x batch`` mesh) or
  ``jax.pmap`` (:func:`pmap_step`); the global batch is split over
  :data:`BATCH_AXIS`, the members over :data:`MEMBER_AXIS`.
- :mod:`regan_jax.parallel.runners`: what the training loop runs:
  :func:`fed_parallel` (chunks of steps whose batches are made on the device),
  :func:`data_parallel` (one run) and :func:`member_parallel` (a vmapped group).
"""

from regan_jax.parallel.placement import (
    BATCH_AXIS,
    MEMBER_AXIS,
    MeshShape,
    Step,
    check_divisible,
    check_mesh,
    make_member_mesh,
    make_mesh,
    members_step,
    parse_mesh,
    pmap_step,
    shard_batch,
    shard_map_step,
)
from regan_jax.parallel.processes import (
    LAUNCHERS,
    any_process,
    broadcast,
    distributed_settings,
    fetch,
    initialize_distributed,
    is_main_process,
    launcher_processes,
    on_main_process,
)
from regan_jax.parallel.runners import (
    BACKENDS,
    data_parallel,
    fed_parallel,
    member_mesh,
    member_parallel,
)

__all__ = [
    "BACKENDS",
    "BATCH_AXIS",
    "LAUNCHERS",
    "MEMBER_AXIS",
    "MeshShape",
    "Step",
    "any_process",
    "broadcast",
    "check_divisible",
    "check_mesh",
    "data_parallel",
    "distributed_settings",
    "fed_parallel",
    "fetch",
    "initialize_distributed",
    "is_main_process",
    "launcher_processes",
    "make_member_mesh",
    "make_mesh",
    "member_mesh",
    "member_parallel",
    "members_step",
    "on_main_process",
    "parse_mesh",
    "pmap_step",
    "shard_batch",
    "shard_map_step",
]
