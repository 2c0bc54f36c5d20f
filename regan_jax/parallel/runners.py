"""What the training loop runs: its step placed on the devices the run may use.

The loop asks this module how to run its step: :func:`fed_parallel` for
chunks of steps whose batches are made on the device (one device, or a group
split member-wise), else :func:`data_parallel` for one run (jitted on one
device; split over the devices under ``shard_map`` or ``pmap`` when there are
several, :mod:`regan_jax.parallel.placement`) and :func:`member_parallel` for a
vmapped group of members.
"""

from typing import Callable

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from regan_jax import steps, sweep, xla
from regan_jax.parallel.placement import (
    MEMBER_AXIS,
    MeshShape,
    Step,
    check_mesh,
    make_member_mesh,
    make_mesh,
    members_step,
    place,
    pmap_step,
    shard_map_step,
)

BACKENDS = ("shard_map", "pmap")


def data_parallel(
    step: Step, batch_rows: int, backend: str = "shard_map", mesh: MeshShape | None = None
) -> Callable:
    """``step`` jitted, state donated; data-parallel over the devices when there are several.

    Args:
      step: ``(state, batch, key=None, axis_name=None) -> (state, metrics)``.
      batch_rows: the global rows of one step's batch.
      backend: ``'shard_map'`` (:func:`shard_map_step`) or ``'pmap'``
        (:func:`pmap_step`, one process only); both give the same numbers.
      mesh: ``MeshShape(1, D)`` to use the first D devices (default: all of
        them, across processes).

    Raises:
      ValueError: an unknown backend, pmap with several processes, a mesh with
        ``members`` > 1 (one run is one member), or a batch that the device
        count does not divide (naming ``config.data.batch_size``), before any
        compute.
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown data-parallel backend {backend!r}; expected one of {list(BACKENDS)}"
        )
    mesh = MeshShape(1, jax.device_count()) if mesh is None else mesh
    if mesh.members != 1:
        raise ValueError(
            f"mesh {mesh}: a single run is one member; expected members=1 "
            "(members > 1 splits a sweep group)"
        )
    check_mesh(mesh)
    if mesh.batch == 1 and jax.process_count() == 1:
        return xla.jit(step, donate_argnums=0)
    if batch_rows % mesh.batch:
        raise ValueError(
            f"the batch of {batch_rows} rows per step is not divisible by the "
            f"{mesh.batch} devices; set config.data.batch_size to a multiple of "
            f"{mesh.batch}"
        )
    if backend == "pmap":
        if jax.process_count() > 1:
            raise ValueError(
                f"data-parallel backend 'pmap' runs in one process; with "
                f"{jax.process_count()} processes expected 'shard_map'"
            )
        return pmap_step(step, jax.devices()[: mesh.batch])
    return shard_map_step(step, make_mesh(mesh.batch))


def member_mesh(
    num_members: int, batch_rows: int | None = None, mesh: MeshShape | None = None
) -> MeshShape:
    """The mesh a group of K members runs on: ``mesh``, checked, or the default.

    The default splits the members over all devices when their count divides
    K, else keeps the group on one device; with several processes, where
    every device must take part, the latter is refused.

    Raises:
      ValueError: see :func:`check_mesh`; no mesh fits by default.
    """
    if mesh is None:
        devices = jax.device_count()
        if num_members % devices == 0:
            mesh = MeshShape(devices, 1)
        elif jax.process_count() == 1:
            mesh = MeshShape(1, 1)
        else:
            raise ValueError(
                f"a group of {num_members} members on the {devices} devices of "
                f"{jax.process_count()} processes: the devices do not divide the "
                f"members; expected a mesh with members x batch = {devices} and "
                f"members dividing {num_members}"
            )
    check_mesh(mesh, num_members, batch_rows)
    return mesh


def member_parallel(
    step: Step, num_members: int, batch_rows: int | None = None, mesh: MeshShape | None = None
) -> Callable:
    """``step`` vmapped over K stacked members, on a ``members x batch`` mesh when asked or useful.

    Args:
      step: ``(state, batch, key=None, axis_name=None) -> (state, metrics)``.
      num_members: K.
      batch_rows: the rows of one member's step (checked against ``mesh.batch``).
      mesh: the device mesh (:class:`MeshShape`, :func:`members_step`). By
        default the members are split over all devices when their count
        divides K (members are independent: no communication), and otherwise
        run on one device -- with several processes, where every device must
        take part, that is refused and a mesh must be given.

    Raises:
      ValueError: a mesh that does not fit (:func:`check_mesh`), before any compute.
    """
    mesh = member_mesh(num_members, batch_rows, mesh)
    if mesh.size == 1 and jax.process_count() == 1:
        return sweep.vmap_step(step, shared_batch=False)
    return members_step(step, make_member_mesh(mesh))


def fed_parallel(
    step: Step,
    gather: Callable,
    arrays: dict,
    num_members: int,
    batch_rows: int | None = None,
    mesh: MeshShape | None = None,
) -> Callable | None:
    """Chunks of steps with the data on the device, where the placement allows; else None.

    Returns ``run(state, descriptors) -> (state, metrics)``: ``descriptors``
    (numpy, from ``data.make_iterator(..., on_device=True)``, stacked on a
    leading step axis of C, then the member axis for a group) drive C steps
    in one dispatch (``steps.scan_steps``); step ``i`` trains on
    ``gather(arrays, descriptors[i])`` (member-wise for a group), and the
    metrics are the last step's. ``arrays`` (the dataset, ``data.device_feed``)
    are put on the devices once, replicated. Jitted through
    :func:`regan_jax.xla.jit`, state donated.

    Placements: one device (one run, or a group of K members vmapped), or a
    group split member-wise (``MeshShape(M, 1)``) -- the same placement
    :func:`data_parallel` / :func:`member_parallel` would choose. Where a
    member's batch is split over devices or there are several processes,
    returns None: the loop then feeds host batches to those wrappers, one
    step per call.

    Raises:
      ValueError: a mesh that does not fit (see :func:`member_mesh`).
    """
    if jax.process_count() > 1:
        return None
    if num_members > 1:
        mesh = member_mesh(num_members, batch_rows, mesh)
    elif mesh is None:
        mesh = MeshShape(1, jax.device_count())
    if mesh.batch > 1 or (num_members == 1 and mesh.size > 1):
        return None

    def one(state, arrays, descriptor):
        return step(state, gather(arrays, descriptor))

    if num_members > 1:
        one = jax.vmap(one, in_axes=(0, None, 0))

    def chunk(state, arrays, descriptors):
        return steps.scan_steps(lambda s, d: one(s, arrays, d))(state, descriptors)

    if mesh.size == 1:
        compiled, arrays = xla.jit(chunk, donate_argnums=0), jax.device_put(arrays)
        return lambda state, descriptors: compiled(state, arrays, descriptors)
    devices = make_member_mesh(mesh)
    by_member = NamedSharding(devices, P(MEMBER_AXIS))
    steps_by_member = NamedSharding(devices, P(None, MEMBER_AXIS))
    arrays = place(arrays, NamedSharding(devices, P()))
    compiled = xla.jit(
        jax.shard_map(
            chunk,
            mesh=devices,
            in_specs=(P(MEMBER_AXIS), P(), P(None, MEMBER_AXIS)),
            out_specs=(P(MEMBER_AXIS), P(MEMBER_AXIS)),
            check_vma=False,
        ),
        donate_argnums=0,
    )
    return lambda state, descriptors: compiled(
        place(state, by_member), arrays, place(descriptors, steps_by_member)
    )
