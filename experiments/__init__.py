"""Experiment configs and the command-line entry points (train, sweep, figures).

A config is named on the command line as ``PATH.py`` or ``PATH.py:ARG`` (the
``ARG`` string, e.g. ``smoke``, is passed to the file's ``get_config(arg)``),
or by bare experiment name (``digits_gan`` means
``experiments/configs/digits_gan.py``). Overrides are ``--config.a.b=value``
tokens, type-checked against the field they replace (see
:func:`regan_jax.config.override`).
"""

import functools
import importlib.util
import os
import pathlib
import sys
import traceback

import ml_collections

from regan_jax import config as config_lib
from regan_jax import parallel
from regan_jax import train as train_lib  # `train` names the submodule experiments.train
from regan_jax import workdir as workdir_lib
from regan_jax.parallel import faults

CONFIG_DIR = pathlib.Path(__file__).parent / "configs"
OVERRIDE_PREFIX = "--config."


class UsageError(ValueError):
    """Bad command-line input; the entry points print it and exit with code 2."""


def bad_input(error: Exception) -> int:
    """Prints ``error: <message>`` to stderr; returns 2, the entry points' exit code for bad input.

    :class:`UsageError`, ``WorkdirError`` and every config, data and model
    check raise a ``ValueError``, before anything is written; a missing or
    unwritable path raises an ``OSError`` (its message names the path).
    """
    if isinstance(error, OSError) and error.filename and error.strerror:
        message = f"{error.filename}: {error.strerror}"  # e.g. a full disk during a save
    else:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_main(body) -> int:
    """Runs an entry point's ``body() -> exit code`` with the command lines' error contract.

    Bad input (``ValueError``, ``OSError``: a path, or the environment refusing
    a write -- ``error: <path>: <reason>``): one line on stderr, exit 2. A run
    stopped by SIGINT/SIGTERM after saving its checkpoint
    (``regan_jax.train.Interrupted``): one line, exit 128 + the signal number
    (130, 143). In a multi-process run, a process that fails tells the others
    and exits at once (:func:`regan_jax.parallel.faults.leave`).
    """
    try:
        return body()
    except train_lib.Interrupted as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 128 + e.signum
    except OSError as e:
        code = faults.leave(e, functools.partial(bad_input, e))
        _drop_later_output()
        return code
    except ValueError as e:
        return faults.leave(e, functools.partial(bad_input, e))
    except Exception as e:
        faults.leave(e, None)
        raise


def write_or_print(text: str, out=None) -> None:
    """A report command's Markdown: written atomically to ``out``, or printed."""
    if out:
        workdir_lib.write_text_atomic(out, text)
    else:
        print(text, end="")


def _drop_later_output() -> None:
    """Sends what the process still prints to stderr (file descriptor 2) to /dev/null.

    After an environment error (a full disk, say) orbax's, TensorStore's and
    asyncio's threads print tracebacks of the failed writes while the process
    shuts down; the one line has been said. Only where ``sys.stderr`` is the
    process's own descriptor 2 (a command line, not a captured test).
    """
    try:
        if sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):
        return
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def add_device_flags(parser) -> None:
    """The flags of devices and processes: ``--mesh``, ``--steps-per-call``, ``--coordinator``,
    ``--num-processes``, ``--process-id``, ``--process-timeout`` (read by
    :func:`start_devices` and :func:`steps_per_call`)."""
    group = parser.add_argument_group(
        "devices and processes",
        "One run (or sweep group) across several processes -- hosts, or GPUs -- through "
        "jax.distributed: give all three of --coordinator, --num-processes, --process-id in "
        "every process, or none under a multi-process srun (SLURM) or mpirun (Open MPI) "
        "launch, which JAX reads by itself. Process 0 writes the run directories.",
    )
    group.add_argument(
        "--mesh",
        metavar="members=M,batch=B",
        default=None,
        help="device mesh: a sweep group's members split M ways, each "
        "member's batch B ways (M x B devices; default: members over all "
        "devices when that divides the group, or one run's batch over all)",
    )
    group.add_argument(
        "--steps-per-call",
        type=int,
        metavar="N",
        default=None,
        help="steps per dispatch where the data live on the device "
        "(default: regan_jax.train.STEPS_PER_CALL)",
    )
    group.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        default=None,
        help="process 0's address and a free port on it, the same in every process",
    )
    group.add_argument(
        "--num-processes",
        type=int,
        metavar="N",
        default=None,
        help="processes in the run (1: one, even in a multi-process launch)",
    )
    group.add_argument(
        "--process-id", type=int, metavar="I", default=None, help="this process's index in 0..N-1"
    )
    group.add_argument(
        "--process-timeout",
        type=int,
        metavar="SECONDS",
        default=None,
        help="several processes: when one dies or fails, the others exit "
        "within about SECONDS/2 (SECONDS at most), naming it; an integer "
        ">= 2 (default: regan_jax.parallel.faults.DEFAULT_TIMEOUT_S)",
    )


def start_devices(args, *, detect: bool = True, join: bool = True):
    """Checks the device flags, joins a multi-process run if asked; returns the mesh (or None).

    Call it before any other JAX call. ``detect=False``: without the flags a
    launcher's environment does not make a multi-process run (independent
    tasks, e.g. sweep shards). ``join=False``: check the flags only.

    Raises:
      UsageError: a mesh that does not parse, or process flags that do not go
        together (naming the values and what was expected), before JAX starts.
    """
    try:
        mesh = None if args.mesh is None else parallel.parse_mesh(args.mesh)
    except ValueError as e:
        raise UsageError(f"--mesh: {e}") from e
    timeout_s = faults.DEFAULT_TIMEOUT_S if args.process_timeout is None else args.process_timeout
    try:
        faults.check_timeout(timeout_s)
    except ValueError as e:
        raise UsageError(f"--process-timeout: {e}") from e
    try:
        if join:
            parallel.initialize_distributed(
                args.coordinator,
                args.num_processes,
                args.process_id,
                detect=detect,
                timeout_s=timeout_s,
            )
        else:
            parallel.distributed_settings(
                args.coordinator, args.num_processes, args.process_id, None if detect else {}
            )
    except ValueError as e:
        raise UsageError(f"--coordinator/--num-processes/--process-id: {e}") from e
    return mesh


def steps_per_call(args) -> int:
    """``--steps-per-call``, or the library's default.

    Raises:
      UsageError: a value below 1 (before JAX starts).
    """
    if args.steps_per_call is None:
        return train_lib.STEPS_PER_CALL
    if args.steps_per_call < 1:
        raise UsageError(f"--steps-per-call {args.steps_per_call}: expected an integer >= 1")
    return args.steps_per_call


def experiment_names() -> list[str]:
    """Names of the experiments under ``experiments/configs`` (one file each)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.py") if not p.stem.startswith("_"))


def load_config(spec: str, overrides=()):
    """Loads ``get_config(arg)`` from a config file and applies overrides.

    Args:
      spec: ``path/to/file.py``, ``path/to/file.py:ARG`` or an experiment name
        (``digits_gan``, ``digits_gan:smoke``).
      overrides: ``(dotted_key, raw_value)`` pairs, applied in order.

    Returns:
      The locked, validated ``ConfigDict``.

    Raises:
      UsageError: missing file, a file that fails to load or whose ``get_config``
        fails or returns no ``ConfigDict`` (naming the file and line), an unknown
        key or a value of the wrong type (the message names it and lists valid keys).
    """
    path, _, arg = spec.partition(":")
    file = pathlib.Path(path)
    if file.suffix != ".py":
        file = CONFIG_DIR / f"{path}.py"
    if not file.is_file():
        raise UsageError(
            f"config file {str(file)!r} not found; experiments: {', '.join(experiment_names())}"
        )
    config = _call_get_config(file, arg or None)
    try:
        for key, value in overrides:
            config_lib.override(config, key, value)
        config_lib.validate(config)
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(_message(e)) from e
    return config


def _call_get_config(file: pathlib.Path, arg: str | None) -> ml_collections.ConfigDict:
    """``get_config(arg)`` of the config file ``file``.

    Raises:
      UsageError: anything that goes wrong in the file -- a syntax error, a
        failed import, an exception in ``get_config``, no ``get_config``, or
        one that returns no ``ConfigDict`` -- naming the file and the line.
    """
    module_spec = importlib.util.spec_from_file_location(f"_config_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
        if not hasattr(module, "get_config"):
            raise UsageError(f"config file {str(file)!r} defines no get_config()")
        config = module.get_config(arg)
    except UsageError:
        raise
    except SyntaxError as e:
        raise UsageError(
            f"config file {str(file)!r}, line {e.lineno}: SyntaxError: {e.msg}"
        ) from None
    except Exception as e:  # noqa: BLE001 - the file is user code: any failure is bad input
        raise UsageError(
            f"config file {str(file)!r}{_line_in(e, file)}: {type(e).__name__}: {_message(e)}"
        ) from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise UsageError(
            f"config file {str(file)!r}: get_config() returned "
            f"{type(config).__name__}, not an ml_collections.ConfigDict"
        )
    return config


def _line_in(error: Exception, file: pathlib.Path) -> str:
    """``', line N'``: the last line of ``file`` in ``error``'s traceback ('' if none)."""
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(error.__traceback__)
        if pathlib.Path(frame.filename) == file
    ]
    return f", line {lines[-1]}" if lines else ""


def split_overrides(tokens: list[str]) -> list[tuple[str, str]]:
    """Parses ``--config.a.b=v`` / ``--config.a.b v`` tokens into pairs.

    Raises:
      UsageError: a token that is not a config override.
    """
    pairs, i = [], 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith(OVERRIDE_PREFIX):
            raise UsageError(
                f"unrecognised argument {token!r} (config overrides "
                f"look like --config.penalty.g.kind=prox_l1)"
            )
        key, eq, value = token[len(OVERRIDE_PREFIX) :].partition("=")
        if not eq:
            if i + 1 >= len(tokens):
                raise UsageError(f"{token} needs a value (--config.{key}=VALUE)")
            value, i = tokens[i + 1], i + 1
        pairs.append((key, value))
        i += 1
    return pairs


def parse_floats(text: str, flag: str, *, positive: bool = False) -> list[float]:
    """``'1e-3,0.1'`` -> ``[0.001, 0.1]``.

    Raises:
      UsageError: a token that is not a number (or not > 0 with ``positive``).
    """
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{flag} must be comma-separated numbers, got {text!r}") from None
    if positive and not all(v > 0 for v in values):
        raise UsageError(f"{flag} must be numbers > 0, got {text!r}")
    return values


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """``'0,1,2'`` -> ``[0, 1, 2]``.

    Raises:
      UsageError: no seed, or a token that is not an integer >= 0.
    """
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise UsageError(f"{flag} must be integers >= 0, got {text!r}")
    return seeds


def _message(error: Exception) -> str:
    # KeyError repr-quotes its message; show the text itself.
    return error.args[0] if isinstance(error, KeyError) and error.args else str(error)
