"""Several processes (one per host, or per GPU): joining them and sharing what one decides.

:func:`initialize_distributed` joins them (``jax.distributed``) from explicit
arguments or a launcher's environment (SLURM, Open MPI), before any other JAX
call. Every process then runs the same program on the *same global batch*
(each builds it from the same data stream; only its own devices' rows go to
its devices), the meshes span every process's devices, and the state is a
global array. Process 0 alone writes (:func:`is_main_process`): what only it
knows reaches the others through :func:`on_main_process` and
:func:`broadcast`, and what it writes comes from :func:`fetch` (a host copy of
a global array). A process that fails or dies stops the others within a
bound (:mod:`regan_jax.parallel.faults`, started by
:func:`initialize_distributed`).
"""

import json
import os
from collections.abc import Mapping
from typing import Any, Callable

import jax
import numpy as np
from jax.experimental import multihost_utils

from regan_jax.parallel import faults

# The launchers whose environment jax.distributed.initialize() reads by itself
# (jax._src.clusters): the variables it requires, and the one holding the
# process count.
LAUNCHERS = {
    "slurm": (
        ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID"),
        "SLURM_NTASKS",
    ),
    "ompi": (
        ("OMPI_MCA_orte_hnp_uri", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
        "OMPI_COMM_WORLD_SIZE",
    ),
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
                raise ValueError(
                    f"{count_var}={environ[count_var]!r} in the environment: "
                    "expected an integer process count"
                ) from None
            return (name, count) if count > 1 else None
    return None


def distributed_settings(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict | None:
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
    given = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    if all(v is None for v in given.values()):
        return {} if launcher_processes(environ) else None
    if num_processes is None:
        named = ", ".join(f"{k}={v!r}" for k, v in given.items() if v is not None)
        raise ValueError(
            f"{named} given without num_processes: expected all of coordinator "
            "(HOST:PORT), num_processes and process_id, or none of them"
        )
    if num_processes < 1:
        raise ValueError(f"num_processes={num_processes}: expected an integer >= 1")
    if num_processes == 1:
        if coordinator is not None or process_id not in (None, 0):
            raise ValueError(
                f"num_processes=1 with coordinator={coordinator!r}, "
                f"process_id={process_id!r}: one process needs neither "
                "(expected no coordinator and process_id 0)"
            )
        return None
    missing = [k for k in ("coordinator", "process_id") if given[k] is None]
    if missing:
        raise ValueError(
            f"num_processes={num_processes} needs {' and '.join(missing)} too: "
            "expected coordinator (HOST:PORT of process 0), num_processes and "
            "process_id in every process"
        )
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"coordinator must be 'host:port' (a port in 1..65535), got {coordinator!r}"
        )
    if not 0 <= process_id < num_processes:
        raise ValueError(
            f"process_id={process_id} with num_processes={num_processes}: "
            f"expected 0 <= process_id < {num_processes}"
        )
    return {
        "coordinator_address": coordinator,
        "num_processes": num_processes,
        "process_id": process_id,
    }


def initialize_distributed(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    detect: bool = True,
    timeout_s: int = faults.DEFAULT_TIMEOUT_S,
) -> bool:
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
      timeout_s: the failure bound (:mod:`regan_jax.parallel.faults`): JAX's
        heartbeat timeout, and twice the silence after which this process's
        watch takes another for dead; an integer >= 2.

    Returns:
      Whether this process joined a multi-process run.

    Raises:
      ValueError: see :func:`distributed_settings` and
        :func:`regan_jax.parallel.faults.check_timeout`; raised before JAX is
        touched.
    """
    faults.check_timeout(timeout_s)
    settings = distributed_settings(coordinator, num_processes, process_id, None if detect else {})
    if settings is None:
        return False
    jax.distributed.initialize(**settings, heartbeat_timeout_seconds=timeout_s)
    faults.start_watch(timeout_s)
    return True


def is_main_process() -> bool:
    """Whether this process writes the run (process 0; always, with one process)."""
    return jax.process_index() == 0


def _map_keys(fn_keys, fn_other, tree):
    return jax.tree.map(
        lambda x: (
            fn_keys(x)
            if jax.dtypes.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key)
            else fn_other(x)
        ),
        tree,
    )


def broadcast(tree: Any) -> Any:
    """Process 0's value of every leaf, in every process (the tree itself with one process).

    Bitwise (the bits are broadcast, so ``-0.0`` and NaN payloads survive);
    typed RNG keys come back as keys. A collective: every process calls it
    with a tree of the same structure, shapes and dtypes.
    """
    if jax.process_count() == 1:
        return tree

    def one(x):  # As bytes: exact (a sum with zeros), and no 64-bit type meets JAX.
        x = np.asarray(x)
        data = multihost_utils.broadcast_one_to_all(np.frombuffer(x.tobytes(), np.uint8))
        return np.frombuffer(np.asarray(data, np.uint8).tobytes(), x.dtype).reshape(x.shape)

    return _map_keys(
        lambda k: jax.random.wrap_key_data(
            one(jax.random.key_data(k)), impl=jax.random.key_impl(k)
        ),
        one,
        tree,
    )


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
    data = broadcast(
        np.pad(text, (0, size - text.size)) if is_main_process() else np.zeros(size, np.uint8)
    )
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

    def one(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable:
            return x
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return _map_keys(
        lambda k: (
            k
            if k.is_fully_addressable
            else jax.random.wrap_key_data(one(jax.random.key_data(k)), impl=jax.random.key_impl(k))
        ),
        one,
        tree,
    )
