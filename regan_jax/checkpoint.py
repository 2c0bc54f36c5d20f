"""Checkpoints of a whole run: the state pytree plus the data pipeline's position.

One checkpoint, ``<directory>/<step>/``, is written by an orbax
``CheckpointManager`` as a composite of two items:

- ``state``: the train state (params, optimizer states, model state, step,
  RNG key, divergence flags; stacked or not) via ``StandardSave``; typed RNG
  keys are stored as their ``jax.random.key_data`` and re-wrapped with the
  template's key implementation on restore;
- ``data``: the data iterator's ``position``, a JSON dict, via ``JsonSave``.

Writes are atomic: orbax writes ``<step>.orbax-checkpoint-tmp`` and renames it
to ``<step>`` only when everything is on disk, so a process killed mid-save
leaves at most a temporary directory, which is never read as a checkpoint
(and which orbax removes when the manager is next opened). Saves are
synchronous (the state is small next to a step's compute and a synchronous save
cannot be lost by a crash after it returns). In a multi-process run only process
0 saves and restores (a host copy of the state; see :mod:`regan_jax.train`).
"""
import os
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

DEFAULT_KEEP = 3


def _manager(directory: str, keep: int = DEFAULT_KEEP) -> ocp.CheckpointManager:
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (checkpoints kept), got {keep}")
    directory = os.path.abspath(directory)
    alone = {}
    if jax.process_count() > 1:
        # Only the writing process (0) opens checkpoints, with a host copy of the
        # state: orbax must not wait for the others (nor create the directory then).
        os.makedirs(directory, exist_ok=True)
        alone = {"multiprocessing_options": ocp.options.MultiprocessingOptions(
            primary_host=jax.process_index(), active_processes={jax.process_index()})}
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=not alone,
                                           enable_async_checkpointing=False, **alone)
    return ocp.CheckpointManager(directory, options=options)


def _is_key(x: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def _storable(state: Any) -> Any:
    """The state with every typed RNG key replaced by its raw ``uint32`` key data.

    With several processes the leaves are numpy arrays: orbax refuses a
    process's own device arrays there, and only process 0 saves.
    """
    state = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)
    return jax.tree.map(np.asarray, state) if jax.process_count() > 1 else state


def save(directory: str, step: int, state: Any, data_position: dict,
         keep: int = DEFAULT_KEEP) -> None:
    """Writes checkpoint ``step`` (state + data position), keeping the ``keep`` latest.

    Args:
      directory: the run's checkpoint directory (created if missing).
      step: the checkpoint's number, normally ``int(state.step)``.
      state: the train state pytree.
      data_position: the data iterator's JSON-serialisable position.
      keep: how many of the latest checkpoints to keep; older ones are deleted.

    Raises:
      ValueError: a checkpoint ``step`` already exists, or ``keep`` < 1.
    """
    manager = _manager(directory, keep)
    try:
        if step in manager.all_steps():
            raise ValueError(f"checkpoint {step} already exists in {directory!r}")
        manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(_storable(state)),
            data=ocp.args.JsonSave(data_position)))
    finally:
        manager.close()


def latest_step(directory: str) -> int | None:
    """The number of the latest complete checkpoint in ``directory``, or None."""
    if not os.path.isdir(directory):
        return None
    manager = _manager(directory)
    try:
        return manager.latest_step()
    finally:
        manager.close()


def all_steps(directory: str) -> list[int]:
    """The numbers of the complete checkpoints in ``directory``, ascending (empty if none)."""
    if not os.path.isdir(directory):
        return []
    manager = _manager(directory)
    try:
        return sorted(manager.all_steps())
    finally:
        manager.close()


def remove_after(directory: str, step: int) -> None:
    """Deletes the checkpoints numbered above ``step`` (a group resuming from an earlier one)."""
    manager = _manager(directory)
    try:
        for later in [s for s in manager.all_steps() if s > step]:
            manager.delete(later)
    finally:
        manager.close()


def restore_latest(directory: str, template_state: Any) -> tuple[Any, dict] | None:
    """The latest complete checkpoint as ``(state, data_position)``, or None if there is none.

    See :func:`restore`.
    """
    step = latest_step(directory)
    return None if step is None else restore(directory, step, template_state)


def restore(directory: str, step: int, template_state: Any) -> tuple[Any, dict]:
    """Checkpoint ``step`` as ``(state, data_position)``.

    Args:
      directory: the run's checkpoint directory.
      step: the checkpoint's number.
      template_state: a state of the same structure, shapes, dtypes and
        shardings (e.g. a freshly initialised one); its typed keys give the
        key implementation.

    Raises:
      ValueError: the checkpoint does not match the template's structure or shapes.
    """
    manager = _manager(directory)
    template = _storable(template_state)
    try:
        restored = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(
                template if jax.process_count() > 1  # numpy, restored as numpy
                else jax.tree.map(ocp.utils.to_shape_dtype_struct, template)),
            data=ocp.args.JsonRestore()))
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"checkpoint {step} in {directory!r} does not match the template "
                         f"state: {e}") from e
    finally:
        manager.close()
    state = jax.tree.map(
        lambda like, x: jax.random.wrap_key_data(x, impl=jax.random.key_impl(like))
        if _is_key(like) else x,
        template_state, restored["state"])
    return state, restored["data"]


def remove_all(directory: str) -> None:
    """Deletes every checkpoint under ``directory`` (a group whose members must start over)."""
    shutil.rmtree(directory, ignore_errors=True)
