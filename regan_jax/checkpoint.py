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
(:func:`remove_temporary` deletes it when the run starts again).

A damaged checkpoint (truncated or overwritten files, a missing item) is not
fatal: :func:`restore_readable` warns, moves it to ``.corrupt/<step>`` and
restores the one before; an intact checkpoint with other shapes than the
run's state is a different experiment, refused as such. Saves are
synchronous (the state is small next to a step's compute and a synchronous save
cannot be lost by a crash after it returns). In a multi-process run only process
0 saves and restores (a host copy of the state; see :mod:`regan_jax.train`).
"""

import contextlib
import glob
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

DEFAULT_KEEP = 3
CORRUPT_DIR = ".corrupt"  # damaged checkpoints moved aside by restore_readable
TEMPORARY_GLOB = "*.orbax-checkpoint-tmp*"  # what a save leaves until it completes
LOG_FILE = ".orbax.log"  # what orbax and TensorStore printed while a save failed
_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")
_QUOTED_PATH = re.compile(r'"(/[^"]+)"')


class UnreadableCheckpoints(ValueError):
    """No checkpoint of a run can be read (all damaged)."""


class CheckpointMismatch(ValueError):
    """A run's checkpoints are intact but hold another state than the template."""


def _manager(directory: str, keep: int = DEFAULT_KEEP) -> ocp.CheckpointManager:
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (checkpoints kept), got {keep}")
    directory = os.path.abspath(directory)
    alone = {}
    if jax.process_count() > 1:
        # Only the writing process (0) opens checkpoints, with a host copy of the
        # state: orbax must not wait for the others (nor create the directory then).
        os.makedirs(directory, exist_ok=True)
        alone = {
            "multiprocessing_options": ocp.options.MultiprocessingOptions(
                primary_host=jax.process_index(), active_processes={jax.process_index()}
            )
        }
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=not alone, enable_async_checkpointing=False, **alone
    )
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


def save(
    directory: str, step: int, state: Any, data_position: dict, keep: int = DEFAULT_KEEP
) -> None:
    """Writes checkpoint ``step`` (state + data position), keeping the ``keep`` latest.

    Args:
      directory: the run's checkpoint directory (created if missing).
      step: the checkpoint's number, normally ``int(state.step)``.
      state: the train state pytree.
      data_position: the data iterator's JSON-serialisable position.
      keep: how many of the latest checkpoints to keep; older ones are deleted.

    Raises:
      ValueError: a checkpoint ``step`` already exists, or ``keep`` < 1.
      OSError: the environment refused a write (full disk, permissions, a
        read-only file system, too many open files), wherever orbax met it
        (:func:`environment_error`); the partial save is removed.
    """
    try:
        with _third_party_output(os.path.join(directory, LOG_FILE)):
            manager = _manager(directory, keep)
            try:
                if step in manager.all_steps():
                    raise ValueError(f"checkpoint {step} already exists in {directory!r}")
                manager.save(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardSave(_storable(state)),
                        data=ocp.args.JsonSave(data_position),
                    ),
                )
            finally:
                manager.close()
    except Exception as e:
        environment = environment_error(e)
        if environment is None:
            raise
        remove_temporary(directory)  # The partial save; it holds nothing readable.
        raise OSError(
            environment.errno,
            environment.strerror,
            environment.filename or os.path.join(directory, str(step)),
        ) from None


def environment_error(error: BaseException) -> OSError | None:
    """The ``OSError`` (ENOSPC, EACCES, EROFS, EMFILE, ...) behind ``error``, or None.

    orbax raises it as is, inside an exception group, as the cause or context of
    another exception, or as TensorStore's ``ValueError`` whose message ends in
    ``[os_error_code='28']`` and names the file; all of them come back as one
    ``OSError(errno, strerror, path)``.
    """
    seen, pending = set(), [error]
    while pending:
        e = pending.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno:
            return OSError(e.errno, os.strerror(e.errno), e.filename)
        code = _OS_ERROR_CODE.search(str(e))
        if code:
            path = _QUOTED_PATH.search(str(e))
            return OSError(
                int(code.group(1)), os.strerror(int(code.group(1))), path.group(1) if path else None
            )
        pending += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]
    return None


@contextlib.contextmanager
def _third_party_output(log_path: str | None):
    """Sends file descriptor 2 to a temporary file for the block.

    orbax, TensorStore and asyncio print tracebacks and absl log lines from
    their own threads when a save or a restore fails; the command lines'
    contract is one line. If the block fails, what they printed is appended to
    ``log_path`` (if given, and its directory exists); otherwise it is dropped.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            _restore_stderr(saved)
            capture.seek(0)
            text = capture.read()
            if text and log_path and os.path.isdir(os.path.dirname(log_path)):
                with contextlib.suppress(OSError), open(log_path, "ab") as log:
                    log.write(text)
            raise
        _restore_stderr(saved)


def _restore_stderr(saved: int) -> None:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


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


def remove_temporary(directory: str) -> list[str]:
    """Deletes the ``<step>.orbax-checkpoint-tmp*`` directories a killed or failed save left.

    Call it holding the run's lock (nothing else may be saving). Returns their names.
    """
    leftovers = sorted(glob.glob(os.path.join(glob.escape(directory), TEMPORARY_GLOB)))
    for path in leftovers:
        # After a failed save, orbax's writer threads may still be finishing files
        # in it (seen under load): remove again until it stays gone, 5 s at most.
        for _ in range(50):
            shutil.rmtree(path, ignore_errors=True)
            if not os.path.exists(path):
                break
            time.sleep(0.1)
    return [os.path.basename(p) for p in leftovers]


def restore_readable(
    directory: str, steps: list[int], template_state: Any, *, move_aside: bool = True
) -> tuple[int, Any, dict]:
    """The newest readable checkpoint among ``steps``, as ``(step, state, data_position)``.

    A checkpoint that cannot be read (truncated or overwritten array data,
    garbled metadata, a missing ``state/``: any exception from orbax or
    TensorStore) is skipped with a warning naming its step and directory, and
    -- with ``move_aside``, once an older checkpoint has been read -- moved to
    ``<directory>/.corrupt/<step>`` (never deleted). A reader that does not own
    the run (``experiments.sample``) passes ``move_aside=False``.

    Raises:
      CheckpointMismatch: the newest checkpoint is intact but holds other
        shapes than ``template_state`` (another experiment, or another
        version of the library), and no older one matches either.
      UnreadableCheckpoints: none of ``steps`` can be read (nothing moved).
    """
    steps = sorted(steps, reverse=True)
    if not steps:
        raise ValueError(f"no checkpoint to restore in {directory!r}")
    unreadable = []
    for step in steps:
        try:
            state, position = restore(directory, step, template_state)
        except ValueError as e:
            unreadable.append((step, e))
            continue
        for bad, error in unreadable:
            done = (
                f"moved to {move_to_corrupt(directory, bad)!r}" if move_aside else "left in place"
            )
            warnings.warn(
                f"checkpoint {bad} in {directory!r} cannot be read "
                f"({_first_line(error.__cause__ or error)}): {done}; using "
                f"checkpoint {step}",
                RuntimeWarning,
                stacklevel=2,
            )
        return step, state, position
    newest, error = unreadable[0]
    if _holds_other_shapes(directory, newest, template_state):
        raise CheckpointMismatch(
            f"checkpoint {newest} in {directory!r} holds a different experiment's state "
            f"(other shapes than this config builds): {_first_line(error.__cause__ or error)}; "
            "use another --workdir, or --overwrite to replace it"
        )
    raise UnreadableCheckpoints(
        f"no checkpoint in {directory!r} can be read (newest {newest}: "
        f"{_first_line(error.__cause__ or error)}); move the damaged ones aside (or use "
        "--overwrite) to start over"
    )


def move_to_corrupt(directory: str, step: int) -> str:
    """Moves checkpoint ``step`` to ``<directory>/.corrupt/<step>`` (numbered if taken)."""
    target = os.path.join(directory, CORRUPT_DIR, str(step))
    suffix = 1
    while os.path.exists(target):
        target, suffix = os.path.join(directory, CORRUPT_DIR, f"{step}.{suffix}"), suffix + 1
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.replace(os.path.join(directory, str(step)), target)
    return target


def _holds_other_shapes(directory: str, step: int, template_state: Any) -> bool:
    """Whether checkpoint ``step``'s state metadata is readable and lists other shapes or dtypes
    than ``template_state``'s (a different experiment, not a damaged file)."""
    try:
        metadata = ocp.StandardCheckpointHandler().metadata(
            epath.Path(directory) / str(step) / "state"
        )
        stored = sorted((tuple(m.shape), str(np.dtype(m.dtype))) for m in jax.tree.leaves(metadata))
    except Exception:  # noqa: BLE001 - unreadable metadata is damage, not a mismatch
        return False
    wanted = sorted(
        (tuple(np.shape(x)), str(np.dtype(x.dtype)))
        for x in jax.tree.leaves(_storable(template_state))
    )
    return stored != wanted


def _first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of ``error``'s message, without TensorStore's spec dump, at most
    ``limit`` characters."""
    text = str(error).strip().split(" [tensorstore_spec", 1)[0]
    text = text.splitlines()[0] if text else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    template = _storable(template_state)
    with _third_party_output(None):
        manager = _manager(directory)
        try:
            restored = manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(
                        template
                        if jax.process_count() > 1  # numpy, restored as numpy
                        else jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
                    ),
                    data=ocp.args.JsonRestore(),
                ),
            )
        except Exception as e:  # orbax and TensorStore raise many types for a damaged file.
            raise ValueError(
                f"checkpoint {step} in {directory!r} does not match the template state: {e}"
            ) from e
        finally:
            manager.close()
    state = jax.tree.map(
        lambda like, x: (
            jax.random.wrap_key_data(x, impl=jax.random.key_impl(like)) if _is_key(like) else x
        ),
        template_state,
        restored["state"],
    )
    return state, restored["data"]


def remove_all(directory: str) -> None:
    """Deletes every checkpoint under ``directory`` (a group whose members must start over);
    the damaged ones moved to ``.corrupt/`` stay."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if name != CORRUPT_DIR:
            path = os.path.join(directory, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
