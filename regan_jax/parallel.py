"""Data parallelism: one training step, run across devices.

A step from :mod:`regan_jax.steps` is written once, with an optional
``axis_name``; when it is set, the step averages its gradients and metrics
with ``lax.pmean`` over that axis. This module runs such a step

- under ``jax.shard_map`` over a one-axis device mesh (:func:`shard_map_step`),
- under ``jax.pmap`` (:func:`pmap_step`; in JAX >= 0.8 pmap is jit(shard_map)),

always with the axis named :data:`BATCH_AXIS`: the global batch is split into
equal contiguous shards along its leading axis, one per device, and the state
is replicated. With equal shards the mean of the per-device mean gradients is
the gradient of the global mean loss, so N steps on D devices equal N steps
on one device with the same global batch, up to float reassociation.

Randomness that must match the single-device run (latents, interpolation
weights) is drawn by the steps for the *global* batch from a replicated key and
sliced per device with ``lax.axis_index`` (see ``steps._local_draw``).

The training loop asks this module how to run its step: :func:`data_parallel`
for one run (jitted on one device; split over all devices under
``shard_map`` or ``pmap`` when there are several) and :func:`member_parallel`
for a vmapped group of members (split member-wise across the devices).

Multi-host: call :func:`initialize_distributed` first in every process; then
:func:`make_mesh` spans all processes' devices and each process passes its own
slice of the global batch (the rows of its devices, in process order) to the
step returned by :func:`shard_map_step`.
"""
import functools
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

BATCH_AXIS = "batch"

Step = Callable[..., tuple[Any, dict]]


def initialize_distributed(coordinator_address: str, num_processes: int,
                           process_id: int) -> None:
    """Joins a multi-process JAX run (``jax.distributed.initialize``).

    Call it only when a multi-host run is asked for, in every process, before
    any other JAX call. On CPU the collectives go through gloo.

    Args:
      coordinator_address: ``'host:port'`` of process 0's coordinator service.
      num_processes: total number of processes, >= 1.
      process_id: this process's index in ``[0, num_processes)``.

    Raises:
      ValueError: an address without a port, or a process id out of range.
    """
    host, _, port = coordinator_address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"coordinator_address must be 'host:port', got "
                         f"{coordinator_address!r}")
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(f"need num_processes >= 1 and 0 <= process_id < num_processes, "
                         f"got num_processes={num_processes}, process_id={process_id}")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A one-axis mesh named :data:`BATCH_AXIS` over the first ``num_devices`` devices.

    Args:
      num_devices: how many devices (all of them, across processes, if None).

    Raises:
      ValueError: ``num_devices`` < 1 or more than ``jax.device_count()``.
    """
    available = jax.device_count()
    num_devices = available if num_devices is None else num_devices
    if not 1 <= num_devices <= available:
        raise ValueError(f"num_devices must be in [1, {available}] (jax.device_count()), "
                         f"got {num_devices}")
    return jax.make_mesh((num_devices,), (BATCH_AXIS,),
                         devices=jax.devices()[:num_devices])


def check_divisible(batch: Any, num_shards: int) -> int:
    """The common leading size of the batch's arrays, checked divisible by ``num_shards``.

    Raises:
      ValueError: arrays with different leading sizes, or a leading size that
        ``num_shards`` does not divide.
    """
    sizes = {np.shape(x)[0] for x in jax.tree.leaves(batch)}
    if len(sizes) != 1:
        raise ValueError(f"batch arrays have different leading sizes {sorted(sizes)}")
    (size,) = sizes
    if size % num_shards:
        raise ValueError(f"batch size {size} is not divisible by the device count "
                         f"{num_shards}; use a multiple of {num_shards}")
    return size


def shard_batch(batch: Any, num_devices: int) -> Any:
    """Reshapes each array ``[B, ...]`` to ``[num_devices, B / num_devices, ...]`` (pmap layout).

    Device ``i`` gets the contiguous rows ``[i B/n, (i + 1) B/n)``, the same
    split :func:`shard_map_step` makes.

    Raises:
      ValueError: ``B`` not divisible by ``num_devices``.
    """
    size = check_divisible(batch, num_devices)
    return jax.tree.map(
        lambda x: x.reshape((num_devices, size // num_devices) + x.shape[1:]), batch)


def shard_map_step(step: Step, mesh: Mesh) -> Callable:
    """``step`` run by ``jax.shard_map`` over ``mesh``, jitted, state donated.

    Returns ``(state, batch, key=None) -> (state, metrics)`` taking the global
    batch (or, in a multi-process run, this process's contiguous part of it):
    the batch is split on its leading axis over the mesh axis
    :data:`BATCH_AXIS`, the state and key are replicated, and ``step`` is called
    with ``axis_name=BATCH_AXIS`` so that it ``pmean``-s its gradients and
    metrics. The returned state and metrics are replicated.

    ``check_vma=False``: the steps follow pmap's convention (differentiate the
    local loss, then ``pmean``). With ``check_vma=True`` autodiff would already
    ``psum`` the gradient of the replicated parameters (the transpose of their
    implicit broadcast), and the step's ``pmean`` of that invariant value would
    leave it D times too large.

    Raises (when called):
      ValueError: a batch size not divisible by the number of devices.
    """
    replicated = NamedSharding(mesh, P())
    split = NamedSharding(mesh, P(BATCH_AXIS))
    mapped = jax.jit(
        jax.shard_map(functools.partial(step, axis_name=BATCH_AXIS), mesh=mesh,
                      in_specs=(P(), P(BATCH_AXIS), P()), out_specs=(P(), P()),
                      check_vma=False),
        donate_argnums=0)

    def run(state, batch, key=None):
        check_divisible(batch, mesh.size // jax.process_count())
        return mapped(_place(state, replicated), _place(batch, split), _place(key, replicated))

    return run


def pmap_step(step: Step, devices=None) -> Callable:
    """``step`` run by ``jax.pmap`` over ``devices`` (all local devices if None).

    Returns ``(state, batch, key=None) -> (state, metrics)`` with the same
    calling convention as :func:`shard_map_step`: the global batch is split by
    :func:`shard_batch`, the state and key are broadcast (``in_axes=None``) and
    come back unstacked (``out_axes=None``), the state is donated.

    Two details keep pmap exact and compiled once: the state is first placed
    replicated on the devices (the placement pmap returns it in, so the second
    call does not recompile), and a missing key is not passed as a ``None``
    argument (in JAX 0.10 a ``None`` argument beside typed RNG keys makes pmap
    infer the wrong axis size).

    Raises (when called):
      ValueError: a batch size not divisible by the number of devices.
    """
    devices = jax.local_devices() if devices is None else list(devices)
    replicated = NamedSharding(Mesh(np.array(devices), (BATCH_AXIS,)), P())
    step = functools.partial(step, axis_name=BATCH_AXIS)
    options = dict(axis_name=BATCH_AXIS, out_axes=None, devices=devices, donate_argnums=0)
    without_key = jax.pmap(step, in_axes=(None, 0), **options)
    with_key = jax.pmap(step, in_axes=(None, 0, None), **options)

    def run(state, batch, key=None):
        state, batch = _place(state, replicated), shard_batch(batch, len(devices))
        return without_key(state, batch) if key is None else with_key(state, batch, key)

    return run


def _place(tree: Any, sharding: NamedSharding) -> Any:
    """Puts every leaf on ``sharding``; leaves already there are left alone.

    In a multi-process run each process holds only its part of a split array
    (the whole of a replicated one), which ``jax.make_array_from_process_local_data``
    assembles; typed RNG keys travel as their key data.
    """
    def place(x):
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = jax.make_array_from_process_local_data(sharding, jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return jax.make_array_from_process_local_data(sharding, np.asarray(x))

    return jax.tree.map(place, tree)


# ----------------------------------------------------------------------------
# What the training loop runs
# ----------------------------------------------------------------------------

BACKENDS = ("shard_map", "pmap")


def data_parallel(step: Step, batch_rows: int, backend: str = "shard_map") -> Callable:
    """``step`` jitted, state donated; data-parallel over all devices when there are several.

    Args:
      step: ``(state, batch, key=None, axis_name=None) -> (state, metrics)``.
      batch_rows: the global rows of one step's batch.
      backend: ``'shard_map'`` (:func:`shard_map_step`) or ``'pmap'``
        (:func:`pmap_step`); both give the same numbers.

    Raises:
      ValueError: an unknown backend, or a batch that the device count does not
        divide (naming ``config.data.batch_size``), before any compute.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown data-parallel backend {backend!r}; expected one of "
                         f"{list(BACKENDS)}")
    devices = jax.device_count()
    if devices == 1:
        return jax.jit(step, donate_argnums=0)
    if batch_rows % devices:
        raise ValueError(f"the batch of {batch_rows} rows per step is not divisible by the "
                         f"{devices} devices; set config.data.batch_size to a multiple of "
                         f"{devices}")
    if backend == "pmap":
        return pmap_step(step)
    return shard_map_step(step, make_mesh())


def member_parallel(step: Step, num_members: int) -> Callable:
    """``step`` vmapped over stacked members; split across the devices when their count divides K.

    Members are independent, so splitting the member axis (state and per-member
    batches) over a one-axis mesh needs no communication: XLA partitions the
    vmapped program and each device trains K / D members.
    """
    from regan_jax import sweep  # sweep imports penalties; keep this module light.

    vmapped = sweep.vmap_step(step, shared_batch=False)
    devices = jax.device_count()
    if devices == 1 or num_members % devices:
        return vmapped
    # A plain Mesh (automatic axes): the loop's other jitted code (member slices,
    # sampling) then just follows the data, with no sharding in the types.
    mesh = Mesh(np.array(jax.devices()), (BATCH_AXIS,))
    split = NamedSharding(mesh, P(BATCH_AXIS))

    def run(states, batch):
        return vmapped(jax.device_put(states, split), jax.device_put(batch, split))

    return run
