"""Where a training call's wall time goes: phases timed by a clock, compilation by JAX's events.

:class:`WallProfile` splits the seconds of one :func:`regan_jax.train.train_members`
call (one run, or a vmapped group whose members share one wall) into
:data:`PHASES`:

- ``setup``: building the program (loading the data), the evaluation
  reference, taking the workdirs, initialising or restoring the members;
- ``compile``: JAX's own duration events of lowering a program to MLIR and
  of XLA's compile (or the persistent cache's load) -- every program of the
  call, wherever it was first called; tracing is left in the phase that
  triggered it (a jit traced inside another's trace reports its own event
  inside the outer one's, so summing trace events would count it twice);
- ``train``: the training steps, up to the host copy of a logging step's
  metrics (the steps' dispatch is asynchronous: they are waited for there);
- ``eval``: the in-training scores (``hooks.cheap``);
- ``final``: the final evaluation (``hooks.final``);
- ``io``: metrics rows, TensorBoard events, sample grids, ``final.npz``,
  checkpoints and summaries;
- ``other``: whatever lies outside these (the loop's own work, idle).

A phase's window is charged to the innermost phase open; compile seconds
reported during a window are moved from that phase to ``compile``. The parts
sum to the total by construction (``other`` is not a remainder but the time
outside every phase), so a part found negative means two phases overlap.
"""

import contextlib
import time
from collections.abc import Callable, Iterator

import jax

PHASES = ("setup", "compile", "train", "eval", "final", "io", "other")
# Lowering to MLIR, and XLA's compile or the persistent cache's load (jax._src.dispatch).
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
TOTAL_FIELD = "wall_group_s"  # the whole call, shared by the members of a group
PHASE_FIELDS = tuple(f"wall_{p}_s" for p in PHASES)
# Every summary field that measures time, not the result: what a comparison of two runs'
# summaries (tests/_golden.py, benchmarks/preset_slice.sh) leaves out.
TIMING_FIELDS = ("wall_s", "steps_per_s", TOTAL_FIELD, *PHASE_FIELDS)


class WallProfile:
    """Seconds per phase of the time between ``__enter__`` and :meth:`fields`.

    Args:
      clock: seconds as a float, monotonic (default ``time.perf_counter``;
        tests pass a fake one).

    Example::

      with WallProfile() as wall:
          with wall.phase("setup"):
              program = build()
          ...
          fields = wall.fields()  # {'wall_group_s': ..., 'wall_setup_s': ..., ...}
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self._clock = clock
        self._seconds = dict.fromkeys(PHASES, 0.0)
        self._open: list[str] = []
        self._compiled = 0.0  # compile seconds reported and not yet charged
        self._start = self._last = 0.0

    def __enter__(self) -> "WallProfile":
        self._start = self._last = self._clock()
        jax.monitoring.register_event_duration_secs_listener(self._on_event)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self._on_event)

    def _on_event(self, event: str, duration_secs: float, **kwargs) -> None:
        del kwargs
        if event in COMPILE_EVENTS:
            self._compiled += duration_secs

    def _charge(self) -> None:
        """Charges the time since the last charge to the innermost open phase (or ``other``)."""
        now = self._clock()
        elapsed = now - self._last
        # JAX times its events with another clock: never more compile than the window held.
        compiled = min(self._compiled, elapsed)
        self._seconds[self._open[-1] if self._open else "other"] += elapsed - compiled
        self._seconds["compile"] += compiled
        self._compiled -= compiled
        self._last = now

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charges the time inside to ``name`` (one of :data:`PHASES`)."""
        if name not in PHASES or name in ("compile", "other"):
            raise ValueError(f"phase must be one of {PHASES[:1] + PHASES[2:-1]}, got {name!r}")
        self._charge()
        self._open.append(name)
        try:
            yield
        finally:
            self._charge()
            self._open.pop()

    def fields(self) -> dict[str, float]:
        """``{TOTAL_FIELD: seconds since entry, 'wall_<phase>_s': seconds, ...}`` so far."""
        self._charge()
        return {
            TOTAL_FIELD: self._last - self._start,
            **{f"wall_{p}_s": s for p, s in self._seconds.items()},
        }
