"""Where a step runs: device meshes, and one step under ``shard_map`` or ``pmap``.

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

A vmapped group of K members (a sweep) runs on a two-axis mesh
``members x batch`` (:class:`MeshShape`, :func:`members_step`): the member
axis of the stacked state and of the per-member batches is split over
:data:`MEMBER_AXIS` (no communication), and each member's batch over
:data:`BATCH_AXIS` (its gradients ``pmean``-ed there, as above).

Randomness that must match the single-device run (latents, interpolation
weights) is drawn by the steps for the *global* batch from a replicated key and
sliced per device with ``lax.axis_index`` (see ``steps.local_draw``).
"""

import functools
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from regan_jax import sweep, xla

BATCH_AXIS = "batch"
MEMBER_AXIS = "members"

Step = Callable[..., tuple[Any, dict]]


# ----------------------------------------------------------------------------
# Meshes
# ----------------------------------------------------------------------------


class MeshShape(NamedTuple):
    """A ``members x batch`` device mesh: ``members`` groups of ``batch`` devices.

    A group of K members is split into ``members`` slices of K / members
    members; each slice runs on ``batch`` devices, which split every member's
    batch. ``MeshShape(1, D)`` is plain data parallelism; ``MeshShape(D, 1)``
    splits members only.
    """

    members: int = 1
    batch: int = 1

    @property
    def size(self) -> int:
        return self.members * self.batch

    def __str__(self) -> str:
        return f"members={self.members},batch={self.batch}"


def parse_mesh(text: str) -> MeshShape:
    """``'members=2,batch=2'`` -> ``MeshShape(2, 2)`` (an axis left out is 1; ``data`` = ``batch``).

    Raises:
      ValueError: an unknown axis, an axis given twice, or a size that is not
        an integer >= 1 (naming the text and what was expected).
    """
    sizes = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        axis, eq, value = item.partition("=")
        axis = {"data": BATCH_AXIS}.get(axis.strip(), axis.strip())
        if not eq or axis not in MeshShape._fields or axis in sizes:
            raise ValueError(
                f"mesh {text!r}: expected AXIS=SIZE items, each axis once, axes "
                f"{MEMBER_AXIS} and {BATCH_AXIS} (e.g. members=2,batch=2)"
            )
        if not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"mesh {text!r}: {axis}={value.strip()!r}, expected an integer >= 1")
        sizes[axis] = int(value)
    if not sizes:
        raise ValueError(f"mesh {text!r}: expected members=M and/or batch=B")
    return MeshShape(**sizes)


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
        raise ValueError(
            f"num_devices must be in [1, {available}] (jax.device_count()), got {num_devices}"
        )
    return jax.make_mesh((num_devices,), (BATCH_AXIS,), devices=jax.devices()[:num_devices])


def make_member_mesh(shape: MeshShape) -> Mesh:
    """The ``(MEMBER_AXIS, BATCH_AXIS)`` mesh of ``shape`` over the first ``shape.size`` devices.

    Devices in ``jax.devices()`` order, row by row: with one process per host
    a member slice's ``batch`` devices sit on one host when ``batch`` divides
    the devices per host, so the only collectives (over :data:`BATCH_AXIS`)
    stay inside a host.

    Raises:
      ValueError: more devices than there are, or (with several processes)
        fewer than all of them.
    """
    check_mesh(shape)
    devices = np.array(jax.devices()[: shape.size]).reshape(shape.members, shape.batch)
    return Mesh(devices, (MEMBER_AXIS, BATCH_AXIS))


def check_mesh(
    shape: MeshShape, num_members: int | None = None, batch_rows: int | None = None
) -> None:
    """Raises unless ``shape`` fits the devices, the group's K members and its batch rows.

    Raises:
      ValueError: naming the mesh and what was expected: a mesh larger than
        ``jax.device_count()``; with several processes one that leaves devices
        out (every process must take part); ``members`` not dividing K;
        ``batch`` not dividing the rows of a member's step.
    """
    if num_members is not None and num_members % shape.members:
        raise ValueError(
            f"mesh {shape}: members={shape.members} does not divide the group "
            f"of {num_members} members; expected a divisor of {num_members}"
        )
    if batch_rows is not None and batch_rows % shape.batch:
        raise ValueError(
            f"mesh {shape}: the batch of {batch_rows} rows per step is not "
            f"divisible by batch={shape.batch}; set config.data.batch_size to a "
            f"multiple of {shape.batch}"
        )
    available = jax.device_count()
    if shape.size > available:
        raise ValueError(f"mesh {shape} needs {shape.size} devices; JAX sees {available}")
    if jax.process_count() > 1 and shape.size != available:
        raise ValueError(
            f"mesh {shape} uses {shape.size} of the {available} devices of "
            f"{jax.process_count()} processes: expected members x batch = "
            f"{available}"
        )


# ----------------------------------------------------------------------------
# Steps across devices
# ----------------------------------------------------------------------------


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
        raise ValueError(
            f"batch size {size} is not divisible by the device count "
            f"{num_shards}; use a multiple of {num_shards}"
        )
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
        lambda x: x.reshape((num_devices, size // num_devices) + x.shape[1:]), batch
    )


def shard_map_step(step: Step, mesh: Mesh) -> Callable:
    """``step`` run by ``jax.shard_map`` over ``mesh``, jitted, state donated.

    Returns ``(state, batch, key=None) -> (state, metrics)`` taking the global
    batch (in a multi-process run too: every process passes the same global
    batch, and only its devices' rows reach its devices): the batch is split
    on its leading axis over the mesh axis :data:`BATCH_AXIS`, the state and
    key are replicated, and ``step`` is called with ``axis_name=BATCH_AXIS``
    so that it ``pmean``-s its gradients and metrics. The returned state and
    metrics are replicated.

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
    mapped = xla.jit(
        jax.shard_map(
            functools.partial(step, axis_name=BATCH_AXIS),
            mesh=mesh,
            in_specs=(P(), P(BATCH_AXIS), P()),
            out_specs=(P(), P()),
            check_vma=False,
        ),
        donate_argnums=0,
    )

    def run(state, batch, key=None):
        check_divisible(batch, mesh.size)
        return mapped(place(state, replicated), place(batch, split), place(key, replicated))

    return run


def members_step(step: Step, mesh: Mesh) -> Callable:
    """``step`` vmapped over stacked members, on a ``(MEMBER_AXIS, BATCH_AXIS)`` mesh.

    Returns ``(states, batch) -> (states, metrics)``: ``states`` stacked on a
    leading member axis of size K, ``batch`` per member ``[K, B, ...]``. Under
    ``jax.shard_map`` each device holds K / members members and the rows
    ``[j B/batch, (j + 1) B/batch)`` of their batches (``j`` its place on
    :data:`BATCH_AXIS`); ``step`` is vmapped over its local members with
    ``axis_name=BATCH_AXIS``, so each member's gradients and metrics are
    ``pmean``-ed over the devices sharing its batch. Every member's key comes
    from its own state. The state is donated; states and metrics come back
    split over :data:`MEMBER_AXIS`.

    Member k after N steps equals its own single-device run with the same
    global batch up to float reassociation: the per-device mean over B/batch
    rows, then the mean over the batch axis, instead of one mean over B.

    Raises (when called):
      ValueError: K or B not divisible by the mesh's axes.
    """
    members, rows = mesh.shape[MEMBER_AXIS], mesh.shape[BATCH_AXIS]
    by_member = NamedSharding(mesh, P(MEMBER_AXIS))
    split = NamedSharding(mesh, P(MEMBER_AXIS, BATCH_AXIS))
    local = jax.vmap(functools.partial(step, axis_name=BATCH_AXIS), in_axes=(0, 0))
    mapped = xla.jit(
        jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(P(MEMBER_AXIS), P(MEMBER_AXIS, BATCH_AXIS)),
            out_specs=(P(MEMBER_AXIS), P(MEMBER_AXIS)),
            check_vma=False,
        ),
        donate_argnums=0,
    )

    def run(states, batch):
        size = sweep.num_members(states)
        leading = {tuple(np.shape(x)[:2]) for x in jax.tree.leaves(batch)}
        if len(leading) != 1 or len(next(iter(leading))) != 2 or next(iter(leading))[0] != size:
            raise ValueError(
                f"per-member batches have leading shapes {sorted(leading)}; "
                f"expected ({size}, B) for the {size} members"
            )
        check_mesh(MeshShape(members, rows), size, leading.pop()[1])
        return mapped(place(states, by_member), place(batch, split))

    return run


def pmap_step(step: Step, devices=None) -> Callable:
    """``step`` run by ``jax.pmap`` over ``devices`` (all local devices if None).

    Returns ``(state, batch, key=None) -> (state, metrics)`` with the same
    calling convention as :func:`shard_map_step`: the global batch is split by
    :func:`shard_batch`, the state and key are broadcast (``in_axes=None``) and
    come back unstacked (``out_axes=None``), the state is donated. One process
    only (:func:`regan_jax.parallel.data_parallel` refuses it with several).

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
        state, batch = place(state, replicated), shard_batch(batch, len(devices))
        return without_key(state, batch) if key is None else with_key(state, batch, key)

    return run


def place(tree: Any, sharding: NamedSharding) -> Any:
    """Puts every leaf, a global value, on ``sharding``; leaves already there are left alone.

    In a multi-process run every process holds the whole value and
    ``jax.make_array_from_process_local_data`` (given the global shape) keeps
    the parts of this process's devices; typed RNG keys travel as their key data.
    """

    def put(x):
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = np.asarray(jax.random.key_data(x))
            data = jax.make_array_from_process_local_data(sharding, data, data.shape)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        x = np.asarray(x)
        return jax.make_array_from_process_local_data(sharding, x, x.shape)

    return jax.tree.map(put, tree)
