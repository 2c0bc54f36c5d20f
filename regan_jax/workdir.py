"""The run directory: its file contract, atomic writes, and the refusal to clobber another run.

A run's workdir holds (DESIGN.md)::

    config.json     the full resolved config (written first, atomically)
    metrics.jsonl   one JSON object per logged step: losses, penalty terms,
                    the cheap in-training scores, wall time
    samples/        PNG sample grids (scatter plots for 2-D data), and
                    final.npz (the final samples, for redrawing figures)
    checkpoints/    orbax checkpoints of the whole run state + data position
    summary.json    the final evaluation (written last: its presence marks a
                    finished run)

While a run owns its workdir it holds an exclusive lock on ``W/.lock``
(:func:`lock`; a vmapped group holds one for all its members,
:func:`lock_group`): a second process that wants the same workdir is refused
at once, naming the holder's pid. The lock is an ``fcntl.flock`` on an open file,
which the kernel drops when its process ends, however it ends -- a lock left
by a killed run is stale by construction and the next run takes it over.

Every file the project writes whole (JSON, CSV, Markdown, PNG, PDF, weights)
goes through :func:`atomic_path`: a temporary file in the same directory,
then ``os.replace``, so a reader never sees half a file; its permissions
follow the umask like any new file's.
"""

import contextlib
import fcntl
import json
import math
import os
import pathlib
import shutil
import tempfile
import warnings

from regan_jax import config as config_lib

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
SAMPLES_DIR = "samples"
CHECKPOINT_DIR = "checkpoints"
LOCK_FILE = ".lock"
PREVIOUS_DIR = ".overwritten"  # an --overwrite'n run, kept until the new one has started
CONTRACT = (CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, SAMPLES_DIR, CHECKPOINT_DIR)
EVENTS_GLOB = "events.out.tfevents.*"  # TensorBoard event files (regan_jax.events)


class WorkdirError(ValueError):
    """The workdir holds something this run must not overwrite."""


def _umask() -> int:
    mask = os.umask(0)  # The only way to read it; set straight back.
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; when the block succeeds it replaces ``path``.

    The temporary file keeps ``path``'s suffix (writers that pick a format
    from it, e.g. matplotlib, still work) and gets the mode a new file would
    get under the umask (``mkstemp`` alone gives 0600). If the block raises,
    the temporary file is removed and ``path`` is untouched.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory, not a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix
    )
    os.close(fd)
    try:
        with naming_path(path):
            yield pathlib.Path(tmp)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def naming_path(path):
    """Re-raises an ``OSError`` without a file name (a full disk met by ``write`` or ``close``)
    as the same error naming ``path``, so that the command lines can say which file."""
    try:
        yield
    except OSError as e:
        if e.filename is not None or not e.errno:
            raise
        raise OSError(e.errno, os.strerror(e.errno), str(path)) from e


def write_text_atomic(path, text: str) -> None:
    """Writes ``text`` to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj) -> None:
    """Writes ``obj`` as JSON atomically.

    Raises:
      ValueError: ``obj`` holds NaN or infinity (never a valid score).
    """
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    write_text_atomic(path, text + "\n")


def read_json(path) -> dict:
    """The JSON object in ``path``."""
    with open(path) as f:
        return json.load(f)


def finite_or_none(row: dict) -> dict:
    """``row`` with every non-finite float replaced by None (JSON null)."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


def read_metrics(workdir) -> list[dict]:
    """The rows of ``metrics.jsonl`` (empty if there is none yet).

    A truncated last line (what a short write on a full disk, or a kill
    mid-write, leaves) is dropped with a warning naming the file; the resumed
    run logs that step again.

    Raises:
      ValueError: a malformed line before the last, naming the file and line.
    """
    path = pathlib.Path(workdir) / METRICS_FILE
    if not path.exists():
        return []
    lines = [(n, line) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    rows = []
    for i, (number, line) in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i < len(lines) - 1:
                raise ValueError(
                    f"{path}: line {number} is not JSON ({e}); the file is "
                    "corrupt, not just cut short"
                ) from None
            warnings.warn(
                f"{path}: dropped a truncated last line ({len(line)} characters)",
                RuntimeWarning,
                stacklevel=2,
            )
    return rows


def append_metrics(workdir, row: dict) -> None:
    """Appends one row to ``metrics.jsonl`` (non-finite values become null)."""
    path = pathlib.Path(workdir) / METRICS_FILE
    with naming_path(path), open(path, "a") as f:
        f.write(json.dumps(finite_or_none(row), allow_nan=False) + "\n")


def truncate_metrics(workdir, last_step: int) -> None:
    """Drops ``metrics.jsonl`` rows after ``last_step`` (a resumed run re-logs them)."""
    rows = [r for r in read_metrics(workdir) if r["step"] <= last_step]
    write_text_atomic(
        pathlib.Path(workdir) / METRICS_FILE,
        "".join(json.dumps(r, allow_nan=False) + "\n" for r in rows),
    )


def last_wall(workdir) -> float:
    """Training seconds over all attempts so far: ``wall_s`` of the last metrics row (0 if none)."""
    rows = read_metrics(workdir)
    return float(rows[-1]["wall_s"]) if rows else 0.0


def is_finished(workdir) -> bool:
    """Whether ``workdir`` holds a finished run (its ``summary.json``)."""
    return (pathlib.Path(workdir) / SUMMARY_FILE).is_file()


def check_same_experiment(workdir, config) -> None:
    """Raises if ``workdir``'s ``config.json`` describes a different experiment than ``config``.

    The message names up to eight differing keys with both values. A workdir
    with no ``config.json`` passes.

    Raises:
      WorkdirError: the saved config differs.
    """
    workdir = pathlib.Path(workdir)
    config_path = workdir / CONFIG_FILE
    if not config_path.exists():
        return
    saved, now = config_lib.upgrade(read_json(config_path)), config_lib.to_json_dict(config)
    differing = config_lib.differing_keys(saved, now)
    if not differing:
        return
    flat_saved, flat_now = config_lib.flatten(saved), config_lib.flatten(now)
    shown = ", ".join(
        f"{k} (saved {flat_saved.get(k, '<absent>')!r}, now {flat_now.get(k, '<absent>')!r})"
        for k in differing[:8]
    )
    more = f" and {len(differing) - 8} more" if len(differing) > 8 else ""
    raise WorkdirError(
        f"workdir {str(workdir)!r} holds a different experiment: {shown}{more}; "
        "use another --workdir, or --overwrite to replace it"
    )


@contextlib.contextmanager
def lock(workdir):
    """Holds the exclusive lock of ``workdir`` (creating it) for the ``with`` block.

    Raises:
      WorkdirError: another live process holds it (its pid is named); a
        workdir that is not a directory.
    """
    with lock_group([workdir]):
        yield


@contextlib.contextmanager
def lock_group(workdirs):
    """Holds the locks of all ``workdirs`` (creating them) with ONE open file descriptor.

    The first workdir's ``.lock`` is held with ``flock`` (the anchor); every
    other's ``.lock`` names the holder's pid and the anchor, and counts as
    held while the anchor is -- so a vmapped group of thousands of members
    needs one descriptor, not one per member, and a killed group's locks are
    stale by construction like a single run's. A process that wants a member
    (alone or in its own group) takes that member's ``flock`` briefly to read
    and write it, so two of them cannot both take it.

    Raises:
      WorkdirError: another live process holds one of them (its pid is
        named); a workdir that is not a directory. Nothing is held then.
    """
    workdirs = [pathlib.Path(w) for w in workdirs]
    anchor = _lock_file(workdirs[0])
    fd = os.open(anchor, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(workdirs[0], os.pread(fd, 256, 0)) from None
        _claim(fd, workdirs[0], anchor, own=True)
        for w in workdirs[1:]:
            member = os.open(_lock_file(w), os.O_RDWR | os.O_CREAT, 0o666)
            try:
                try:
                    fcntl.flock(member, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # a single run holds it right now
                    raise _in_use(w, os.pread(member, 256, 0)) from None
                _claim(member, w, anchor, own=False)
            finally:
                os.close(member)  # Releases the brief flock; the anchor's stays.
        yield
    finally:
        os.close(fd)  # Releases the flock, and with it every member's lock.


def _lock_file(workdir: pathlib.Path) -> pathlib.Path:
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"workdir {str(workdir)!r} is not a directory")
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir / LOCK_FILE


def _claim(fd: int, workdir: pathlib.Path, anchor: pathlib.Path, own: bool) -> None:
    """Writes this process's claim into ``workdir``'s lock file (its flock held by us), unless
    it names another anchor that a live process holds."""
    held = os.pread(fd, 4096, 0)
    lines = held.decode(errors="replace").splitlines()
    other = pathlib.Path(lines[1]) if len(lines) > 1 and lines[1] else None
    if other is not None and other != anchor.resolve() and _is_held(other):
        raise _in_use(workdir, held)
    claim = f"{os.getpid()}\n" + ("" if own else f"{anchor.resolve()}\n")
    os.ftruncate(fd, 0)
    os.pwrite(fd, claim.encode(), 0)


def _is_held(anchor: pathlib.Path) -> bool:
    """Whether a live process holds the flock of ``anchor`` (a group's first lock file)."""
    try:
        fd = os.open(anchor, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _in_use(workdir: pathlib.Path, content: bytes) -> WorkdirError:
    holder = content.decode(errors="replace").strip().split("\n")[0] or "unknown"
    return WorkdirError(
        f"workdir {str(workdir)!r} is in use by another run (pid {holder}); "
        "wait for it, or use another --workdir"
    )


def check_path(workdir) -> None:
    """Refuses a workdir path that is not valid UTF-8 (orbax and TensorStore cannot write
    there: a run would train and then fail at its first checkpoint).

    Raises:
      WorkdirError: naming the path (its undecodable bytes escaped).
    """
    text = str(workdir)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(text).decode("utf-8", errors="backslashreplace")
        raise WorkdirError(
            f"workdir '{shown}' is not a valid UTF-8 path (checkpoints "
            "cannot be written there); use another --workdir"
        ) from None


def prepare(workdir, config, overwrite: bool = False) -> None:
    """Makes ``workdir`` ready for ``config``'s run, refusing to clobber another.

    - empty or missing: created, ``config.json`` written;
    - the same experiment, unfinished: kept as is (the run resumes);
    - finished (``summary.json``): refused unless ``overwrite``;
    - a different experiment's ``config.json``: refused unless ``overwrite``,
      naming the differing keys;
    - ``overwrite``: the contract's files and the TensorBoard event files are
      moved aside into ``.overwritten/`` (nothing else is touched); :func:`discard_previous`
      deletes them once the new run has started, :func:`restore_previous`
      puts them back if it fails before.

    Call it holding :func:`lock`.

    Raises:
      WorkdirError: the refusals above; nothing is modified.
    """
    workdir = pathlib.Path(workdir)
    check_can_prepare(workdir, config, overwrite)
    if overwrite:
        previous = workdir / PREVIOUS_DIR
        shutil.rmtree(previous, ignore_errors=True)  # a leftover of an earlier attempt
        for path in _run_files(workdir):
            previous.mkdir(parents=True, exist_ok=True)
            os.replace(path, previous / path.name)
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / CONFIG_FILE).exists():
        write_json(workdir / CONFIG_FILE, config_lib.to_json_dict(config))


def check_can_prepare(workdir, config, overwrite: bool = False) -> None:
    """The refusals of :func:`prepare`, reading only (a run checks before it takes the lock;
    a workdir that is not a directory is refused by :func:`lock`).

    Raises:
      WorkdirError: ``workdir`` holds a finished run or a different experiment
        (unless ``overwrite``).
    """
    if overwrite:
        return
    check_same_experiment(workdir, config)
    if is_finished(workdir):
        raise WorkdirError(
            f"workdir {str(workdir)!r} holds a finished run (summary.json); "
            "use another --workdir, or --overwrite to train it again"
        )


def discard_previous(workdir) -> None:
    """Deletes the run that ``--overwrite`` moved aside (the new one has started cleanly)."""
    shutil.rmtree(pathlib.Path(workdir) / PREVIOUS_DIR, ignore_errors=True)


def restore_previous(workdir) -> None:
    """Puts back the run that ``--overwrite`` moved aside (the new one failed before starting)."""
    workdir = pathlib.Path(workdir)
    previous = workdir / PREVIOUS_DIR
    if not previous.is_dir():
        return
    for path in _run_files(workdir):  # what the failed run wrote
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    for path in previous.iterdir():
        os.replace(path, workdir / path.name)
    previous.rmdir()


def _run_files(workdir: pathlib.Path) -> list[pathlib.Path]:
    """The files and folders a run writes in ``workdir``: the contract and its event files."""
    return [workdir / name for name in CONTRACT if (workdir / name).exists()] + sorted(
        workdir.glob(EVENTS_GLOB)
    )
