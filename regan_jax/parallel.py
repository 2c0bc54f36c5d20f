"""Data parallelism, member parallelism and several processes: one training step across devices.

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

The training loop asks this module how to run its step: :func:`fed_parallel`
for chunks of steps whose batches are made on the device (one device, or a
group split member-wise), else :func:`data_parallel` for one run (jitted on
one device; split over the devices under ``shard_map`` or ``pmap`` when there
are several) and :func:`member_parallel` for a vmapped group of members.

Several processes (one per host, or per GPU): :func:`initialize_distributed`
joins them (``jax.distributed``) from explicit arguments or a launcher's
environment (SLURM, Open MPI), before any other JAX call. Every process then
runs the same program on the *same global batch* (each builds it from the
same data stream; only its own devices' rows go to its devices), the meshes
span every process's devices, and the state is a global array. Process 0
alone writes (:func:`is_main_process`): what only it knows reaches the others
through :func:`on_main_process` and :func:`broadcast`, and what it writes
comes from :func:`fetch` (a host copy of a global array).
"""
import functools
import json
import os
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from regan_jax import xla

BATCH_AXIS = "batch"
MEMBER_AXIS = "members"

Step = Callable[..., tuple[Any, dict]]


# ----------------------------------------------------------------------------
# Processes
# ----------------------------------------------------------------------------

# The launchers whose environment jax.distributed.initialize() reads by itself
# (jax._src.clusters): the variables it requires, and the one holding the
# process count.
LAUNCHERS = {
    "slurm": (("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID",
               "SLURM_LOCALID"), "SLURM_NTASKS"),
    "ompi": (("OMPI_MCA_orte_hnp_uri", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
             "OMPI_COMM_WORLD_SIZE"),
}


def launcher_processes(environ: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """``(launcher, process count)`` when the environment is a multi-process launch, else None.

    SLURM (``srun`` with ``SLURM_NTASKS`` > 1) and Open MPI (``mpirun -n N``,
    N > 1): the launches whose coordinator address, process count and id
    ``jax.distributed.initialize()`` finds by itself. One task (a job array's
    element, a plain ``sbatch`` script) is not a multi-process launch.

    Raises:
      ValueError: a process count that is not an integer (naming the variable).
    """
    environ = os.environ if environ is None else environ
    for name, (required, count_var) in LAUNCHERS.items():
        if all(var in environ for var in required):
            try:
                count = int(environ[count_var])
            except ValueError:
                raise ValueError(f"{count_var}={environ[count_var]!r} in the environment: "
                                 "expected an integer process count") from None
            return (name, count) if count > 1 else None
    return None


def distributed_settings(coordinator: str | None = None, num_processes: int | None = None,
                         process_id: int | None = None,
                         environ: Mapping[str, str] | None = None) -> dict | None:
    """The arguments of ``jax.distributed.initialize`` for this process, or None for one process.

    - all three given (``num_processes`` > 1): those;
    - ``num_processes=1`` (``process_id`` 0 or None, no ``coordinator``): one
      process, whatever the environment says;
    - none given: ``{}`` (JAX detects everything) in a multi-process launch
      (:func:`launcher_processes` of ``environ``, default ``os.environ``; pass
      ``{}`` to never detect), else None.

    Raises:
      ValueError: a partial or inconsistent combination, naming the values
        and what was expected. Nothing is initialised.
    """
    given = {"coordinator": coordinator, "num_processes": num_processes,
             "process_id": process_id}
    if all(v is None for v in given.values()):
        return {} if launcher_processes(environ) else None
    if num_processes is None:
        named = ", ".join(f"{k}={v!r}" for k, v in given.items() if v is not None)
        raise ValueError(f"{named} given without num_processes: expected all of coordinator "
                         "(HOST:PORT), num_processes and process_id, or none of them")
    if num_processes < 1:
        raise ValueError(f"num_processes={num_processes}: expected an integer >= 1")
    if num_processes == 1:
        if coordinator is not None or process_id not in (None, 0):
            raise ValueError(f"num_processes=1 with coordinator={coordinator!r}, "
                             f"process_id={process_id!r}: one process needs neither "
                             "(expected no coordinator and process_id 0)")
        return None
    missing = [k for k in ("coordinator", "process_id") if given[k] is None]
    if missing:
        raise ValueError(f"num_processes={num_processes} needs {' and '.join(missing)} too: "
                         "expected coordinator (HOST:PORT of process 0), num_processes and "
                         "process_id in every process")
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"coordinator must be 'host:port' (a port in 1..65535), got "
                         f"{coordinator!r}")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id={process_id} with num_processes={num_processes}: "
                         f"expected 0 <= process_id < {num_processes}")
    return {"coordinator_address": coordinator, "num_processes": num_processes,
            "process_id": process_id}


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, *, detect: bool = True) -> bool:
    """Joins a multi-process JAX run when the arguments or the environment ask for one.

    Call it in every process before any other JAX call (see
    :func:`distributed_settings` for what is read). On CPU the cross-process
    collectives go through gloo (``jax_cpu_collectives_implementation``,
    whose default is ``'gloo'`` in JAX 0.10; ``JAX_CPU_COLLECTIVES_IMPLEMENTATION``
    in the environment sets it).

    Args:
      coordinator: ``'host:port'`` of process 0's coordinator service.
      num_processes: total number of processes, >= 1.
      process_id: this process's index in ``[0, num_processes)``.
      detect: with no arguments, join a launcher's multi-process run
        (:func:`launcher_processes`); False: only explicit arguments count
        (independent tasks of one launch, e.g. sweep shards under ``srun``).

    Returns:
      Whether this process joined a multi-process run.

    Raises:
      ValueError: see :func:`distributed_settings`; raised before JAX is touched.
    """
    settings = distributed_settings(coordinator, num_processes, process_id,
                                    None if detect else {})
    if settings is None:
        return False
    jax.distributed.initialize(**settings)
    return True


def is_main_process() -> bool:
    """Whether this process writes the run (process 0; always, with one process)."""
    return jax.process_index() == 0


def _map_keys(fn_keys, fn_other, tree):
    return jax.tree.map(lambda x: fn_keys(x) if jax.dtypes.issubdtype(
        getattr(x, "dtype", np.float32), jax.dtypes.prng_key) else fn_other(x), tree)


def broadcast(tree: Any) -> Any:
    """Process 0's value of every leaf, in every process (the tree itself with one process).

    Bitwise (the bits are broadcast, so ``-0.0`` and NaN payloads survive);
    typed RNG keys come back as keys. A collective: every process calls it
    with a tree of the same structure, shapes and dtypes.
    """
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    def one(x):  # As bytes: exact (a sum with zeros), and no 64-bit type meets JAX.
        x = np.asarray(x)
        data = multihost_utils.broadcast_one_to_all(np.frombuffer(x.tobytes(), np.uint8))
        return np.frombuffer(np.asarray(data, np.uint8).tobytes(), x.dtype).reshape(x.shape)

    return _map_keys(
        lambda k: jax.random.wrap_key_data(one(jax.random.key_data(k)),
                                           impl=jax.random.key_impl(k)), one, tree)


def on_main_process(decide: Callable[[], Any]) -> Any:
    """``decide()`` run by process 0 alone; its JSON result, or its error, reaches every process.

    For what only the writing process may look at (the workdir: refusals,
    locks, what is finished). With one process it is just ``decide()``. A
    ``ValueError`` or ``OSError`` raised by ``decide`` in process 0 is re-raised
    there and raised in the others as a ``ValueError`` with its message, so
    every process stops with the same one line instead of waiting for the
    first.
    """
    if jax.process_count() == 1:
        return decide()
    error, outcome = None, {}
    if is_main_process():
        try:
            outcome = {"value": decide()}
        except (ValueError, OSError) as e:
            error, outcome = e, {"error": str(e)}
    text = np.frombuffer(json.dumps(outcome).encode(), np.uint8)
    size = int(broadcast(np.int64(text.size)))
    data = broadcast(np.pad(text, (0, size - text.size)) if is_main_process()
                     else np.zeros(size, np.uint8))
    outcome = json.loads(data.tobytes())
    if error is not None:
        raise error
    if "error" in outcome:
        raise ValueError(f"process 0: {outcome['error']}")
    return outcome["value"]


def any_process(flag: bool) -> bool:
    """Whether ``flag`` is true in any process (a collective; ``flag`` itself with one)."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils
    return bool(np.any(multihost_utils.process_allgather(np.asarray([flag], np.bool_))))


def fetch(tree: Any) -> Any:
    """Every leaf whole in this process, for code that this process runs alone.

    With one process: the tree itself (device arrays stay where they are).
    With several: a global array that spans other processes' devices comes
    back as a host copy (gathered when it is split, a collective: every
    process calls it at the same point); other leaves are left alone. The
    writing process evaluates, samples and checkpoints such a copy, so none
    of that needs the other processes.
    """
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    def one(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return x
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return _map_keys(
        lambda k: k if k.is_fully_addressable else jax.random.wrap_key_data(
            one(jax.random.key_data(k)), impl=jax.random.key_impl(k)), one, tree)


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
            raise ValueError(f"mesh {text!r}: expected AXIS=SIZE items, each axis once, axes "
                             f"{MEMBER_AXIS} and {BATCH_AXIS} (e.g. members=2,batch=2)")
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
        raise ValueError(f"num_devices must be in [1, {available}] (jax.device_count()), "
                         f"got {num_devices}")
    return jax.make_mesh((num_devices,), (BATCH_AXIS,),
                         devices=jax.devices()[:num_devices])


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
    devices = np.array(jax.devices()[:shape.size]).reshape(shape.members, shape.batch)
    return Mesh(devices, (MEMBER_AXIS, BATCH_AXIS))


def check_mesh(shape: MeshShape, num_members: int | None = None,
               batch_rows: int | None = None) -> None:
    """Raises unless ``shape`` fits the devices, the group's K members and its batch rows.

    Raises:
      ValueError: naming the mesh and what was expected: a mesh larger than
        ``jax.device_count()``; with several processes one that leaves devices
        out (every process must take part); ``members`` not dividing K;
        ``batch`` not dividing the rows of a member's step.
    """
    if num_members is not None and num_members % shape.members:
        raise ValueError(f"mesh {shape}: members={shape.members} does not divide the group "
                         f"of {num_members} members; expected a divisor of {num_members}")
    if batch_rows is not None and batch_rows % shape.batch:
        raise ValueError(f"mesh {shape}: the batch of {batch_rows} rows per step is not "
                         f"divisible by batch={shape.batch}; set config.data.batch_size to a "
                         f"multiple of {shape.batch}")
    available = jax.device_count()
    if shape.size > available:
        raise ValueError(f"mesh {shape} needs {shape.size} devices; JAX sees {available}")
    if jax.process_count() > 1 and shape.size != available:
        raise ValueError(f"mesh {shape} uses {shape.size} of the {available} devices of "
                         f"{jax.process_count()} processes: expected members x batch = "
                         f"{available}")


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
        jax.shard_map(functools.partial(step, axis_name=BATCH_AXIS), mesh=mesh,
                      in_specs=(P(), P(BATCH_AXIS), P()), out_specs=(P(), P()),
                      check_vma=False),
        donate_argnums=0)

    def run(state, batch, key=None):
        check_divisible(batch, mesh.size)
        return mapped(_place(state, replicated), _place(batch, split), _place(key, replicated))

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
    from regan_jax import sweep  # sweep imports penalties; keep this module light.

    members, rows = mesh.shape[MEMBER_AXIS], mesh.shape[BATCH_AXIS]
    by_member = NamedSharding(mesh, P(MEMBER_AXIS))
    split = NamedSharding(mesh, P(MEMBER_AXIS, BATCH_AXIS))
    local = jax.vmap(functools.partial(step, axis_name=BATCH_AXIS), in_axes=(0, 0))
    mapped = xla.jit(
        jax.shard_map(local, mesh=mesh, in_specs=(P(MEMBER_AXIS), P(MEMBER_AXIS, BATCH_AXIS)),
                      out_specs=(P(MEMBER_AXIS), P(MEMBER_AXIS)), check_vma=False),
        donate_argnums=0)

    def run(states, batch):
        size = sweep.num_members(states)
        leading = {tuple(np.shape(x)[:2]) for x in jax.tree.leaves(batch)}
        if len(leading) != 1 or len(next(iter(leading))) != 2 or next(iter(leading))[0] != size:
            raise ValueError(f"per-member batches have leading shapes {sorted(leading)}; "
                             f"expected ({size}, B) for the {size} members")
        check_mesh(MeshShape(members, rows), size, leading.pop()[1])
        return mapped(_place(states, by_member), _place(batch, split))

    return run


def pmap_step(step: Step, devices=None) -> Callable:
    """``step`` run by ``jax.pmap`` over ``devices`` (all local devices if None).

    Returns ``(state, batch, key=None) -> (state, metrics)`` with the same
    calling convention as :func:`shard_map_step`: the global batch is split by
    :func:`shard_batch`, the state and key are broadcast (``in_axes=None``) and
    come back unstacked (``out_axes=None``), the state is donated. One process
    only (:func:`data_parallel` refuses it with several).

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
    """Puts every leaf, a global value, on ``sharding``; leaves already there are left alone.

    In a multi-process run every process holds the whole value and
    ``jax.make_array_from_process_local_data`` (given the global shape) keeps
    the parts of this process's devices; typed RNG keys travel as their key data.
    """
    def place(x):
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

    return jax.tree.map(place, tree)


# ----------------------------------------------------------------------------
# What the training loop runs
# ----------------------------------------------------------------------------

BACKENDS = ("shard_map", "pmap")


def data_parallel(step: Step, batch_rows: int, backend: str = "shard_map",
                  mesh: MeshShape | None = None) -> Callable:
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
        raise ValueError(f"unknown data-parallel backend {backend!r}; expected one of "
                         f"{list(BACKENDS)}")
    mesh = MeshShape(1, jax.device_count()) if mesh is None else mesh
    if mesh.members != 1:
        raise ValueError(f"mesh {mesh}: a single run is one member; expected members=1 "
                         "(members > 1 splits a sweep group)")
    check_mesh(mesh)
    if mesh.batch == 1 and jax.process_count() == 1:
        return xla.jit(step, donate_argnums=0)
    if batch_rows % mesh.batch:
        raise ValueError(f"the batch of {batch_rows} rows per step is not divisible by the "
                         f"{mesh.batch} devices; set config.data.batch_size to a multiple of "
                         f"{mesh.batch}")
    if backend == "pmap":
        if jax.process_count() > 1:
            raise ValueError(f"data-parallel backend 'pmap' runs in one process; with "
                             f"{jax.process_count()} processes expected 'shard_map'")
        return pmap_step(step, jax.devices()[:mesh.batch])
    return shard_map_step(step, make_mesh(mesh.batch))


def member_mesh(num_members: int, batch_rows: int | None = None,
                mesh: MeshShape | None = None) -> MeshShape:
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
            raise ValueError(f"a group of {num_members} members on the {devices} devices of "
                             f"{jax.process_count()} processes: the devices do not divide the "
                             f"members; expected a mesh with members x batch = {devices} and "
                             f"members dividing {num_members}")
    check_mesh(mesh, num_members, batch_rows)
    return mesh


def member_parallel(step: Step, num_members: int, batch_rows: int | None = None,
                    mesh: MeshShape | None = None) -> Callable:
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
    from regan_jax import sweep  # sweep imports penalties; keep this module light.

    mesh = member_mesh(num_members, batch_rows, mesh)
    if mesh.size == 1 and jax.process_count() == 1:
        return sweep.vmap_step(step, shared_batch=False)
    return members_step(step, make_member_mesh(mesh))


def fed_parallel(step: Step, gather: Callable, arrays: dict, num_members: int,
                 batch_rows: int | None = None, mesh: MeshShape | None = None
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
    from regan_jax import steps  # steps imports penalties; keep this module light.

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
    arrays = _place(arrays, NamedSharding(devices, P()))
    compiled = xla.jit(
        jax.shard_map(chunk, mesh=devices,
                      in_specs=(P(MEMBER_AXIS), P(), P(None, MEMBER_AXIS)),
                      out_specs=(P(MEMBER_AXIS), P(MEMBER_AXIS)), check_vma=False),
        donate_argnums=0)
    return lambda state, descriptors: compiled(_place(state, by_member), arrays,
                                               _place(descriptors, steps_by_member))
