"""Timing, FLOP and memory measurement shared by the benchmarks.

Every comparison is made *inside one process*, alternating the sides block by
block, so that drift in the machine's load (other processes on a shared CPU,
thermal or frequency changes) hits both sides alike; the reported figure of a
side is the median over its blocks of the per-step time.

A *side* is a callable ``run(n)`` that performs ``n`` steps and returns only
when their results exist (``jax.block_until_ready`` on the JAX side, a device
synchronisation for torch on a GPU; torch on the CPU is synchronous).
Compilation is never inside a timed block: every side is warmed up first, and
compile time is measured on its own by :func:`compile_seconds`.
"""

import dataclasses
import resource
import statistics
import sys
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Timing:
    """Per-step wall time of one side: median and spread over timed blocks.

    Attributes:
        median_s: median over blocks of (block wall time / steps in the block).
        q25_s, q75_s: the quartiles of the same per-step times (the noise band).
        min_s: the fastest block's per-step time (load only ever adds time, so on
            a shared machine this is the estimate closest to an idle one).
        blocks: how many timed blocks the median is over.
        steps_per_block: steps in each block.
    """

    median_s: float
    q25_s: float
    q75_s: float
    min_s: float
    blocks: int
    steps_per_block: int

    @property
    def per_s(self) -> float:
        """Steps per second at the median step time."""
        return 1.0 / self.median_s

    def as_dict(self) -> dict:
        return dict(
            median_s=self.median_s,
            q25_s=self.q25_s,
            q75_s=self.q75_s,
            min_s=self.min_s,
            blocks=self.blocks,
            steps_per_block=self.steps_per_block,
            steps_per_s=self.per_s,
        )


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def time_alternating(
    sides: Mapping[str, Callable[[int], Any]],
    *,
    steps_per_block: int,
    blocks: int,
    warmup_steps: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Timing]:
    """Times several sides against each other, alternating them block by block.

    Round ``r`` runs every side for ``steps_per_block`` steps, in the given order
    on even rounds and reversed on odd rounds (so neither side always runs
    right after the other). A side's step time in a block is
    ``t_block / steps_per_block``; its figure is the median over ``blocks``.

    Args:
        sides: name -> ``run(n)``, which performs ``n`` steps and blocks on them.
        steps_per_block: steps per timed block (amortises timer and sync overhead).
        blocks: timed blocks per side.
        warmup_steps: untimed steps per side first (compilation, allocator, caches).
        clock: seconds now (injectable so that the statistics can be tested exactly).

    Returns:
        name -> :class:`Timing`.
    """
    if not sides:
        raise ValueError("time_alternating needs at least one side, got none")
    _check_positive("steps_per_block", steps_per_block)
    _check_positive("blocks", blocks)
    for run in sides.values():
        if warmup_steps:
            run(warmup_steps)
    names = list(sides)
    per_step = {name: [] for name in names}
    for r in range(blocks):
        for name in names if r % 2 == 0 else names[::-1]:
            start = clock()
            sides[name](steps_per_block)
            per_step[name].append((clock() - start) / steps_per_block)
    out = {}
    for name, times in per_step.items():
        q25, _, q75 = np.quantile(times, [0.25, 0.5, 0.75]) if len(times) > 1 else (times[0],) * 3
        out[name] = Timing(
            statistics.median(times), float(q25), float(q75), min(times), blocks, steps_per_block
        )
    return out


# --------------------------------------------------------------------------- #
# Compilation and FLOPs (XLA)
# --------------------------------------------------------------------------- #


@dataclasses.dataclass(frozen=True)
class Compiled:
    """A step compiled ahead of time, with what compiling it cost.

    Attributes:
        executable: the compiled step (callable like the jitted function).
        trace_lower_s: seconds to trace the Python function and lower it to HLO.
        compile_s: seconds for XLA to compile the lowered module.
        cpu_s: CPU seconds (all threads of this process) of trace, lower and
            compile together: on a loaded shared machine the wall time also
            counts the time other processes held the cores, this does not.
        flops: XLA's cost-analysis FLOP count of one call (``nan`` if absent).
        bytes_accessed: XLA's cost-analysis bytes read+written (``nan`` if absent).
    """

    executable: Any
    trace_lower_s: float
    compile_s: float
    cpu_s: float
    flops: float
    bytes_accessed: float

    @property
    def total_s(self) -> float:
        return self.trace_lower_s + self.compile_s

    def as_dict(self) -> dict:
        """The JSON figures: ``trace_lower_s``, ``compile_s``, ``total_s``, ``cpu_s``."""
        return dict(
            trace_lower_s=self.trace_lower_s,
            compile_s=self.compile_s,
            total_s=self.total_s,
            cpu_s=self.cpu_s,
        )


def _cost(cost_analysis: Any) -> dict:
    # Older jax returned a one-element list of dicts, newer a dict.
    if isinstance(cost_analysis, (list, tuple)):
        cost_analysis = cost_analysis[0] if cost_analysis else {}
    return dict(cost_analysis or {})


def compile_seconds(jitted: Any, *args: Any) -> Compiled:
    """Traces, lowers and compiles ``jitted`` for ``args``, timing each phase.

    A fresh ``jax.jit`` object must be passed for a cold measurement: the
    executable is built from scratch by ``lower(...).compile()`` (the persistent
    compilation cache is off by default on the CPU).

    Args:
        jitted: a ``jax.jit``-wrapped function.
        *args: example arguments (arrays or ``jax.ShapeDtypeStruct``s).

    Returns:
        :class:`Compiled` with timings and XLA's FLOP/byte counts for one call.
    """
    cpu_start = time.process_time()
    start = time.perf_counter()
    lowered = jitted.lower(*args)
    lowered_at = time.perf_counter()
    executable = lowered.compile()
    compiled_at = time.perf_counter()
    cpu_s = time.process_time() - cpu_start
    cost = _cost(executable.cost_analysis())
    return Compiled(
        executable,
        lowered_at - start,
        compiled_at - lowered_at,
        cpu_s,
        float(cost.get("flops", float("nan"))),
        float(cost.get("bytes accessed", float("nan"))),
    )


# --------------------------------------------------------------------------- #
# Peak matmul throughput (the machine's "physical limit" for the FLOP fraction)
# --------------------------------------------------------------------------- #


def matmul_sides(n: int, *, with_torch: bool, seed: int = 0) -> dict:
    """``run(k)`` sides doing k float32 ``[n, n] @ [n, n]`` products (2n³ FLOPs).

    Args:
        n: matrix size; large enough that the product is compute-bound.
        with_torch: add a torch side (torch must be importable).
        seed: seed of the random operands.

    Returns:
        name -> ``run(k)`` for :func:`time_alternating`; flops per step is 2n³.
    """
    _check_positive("n", n)
    rng = np.random.default_rng(seed)
    a_np, b_np = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    a, b = jnp.asarray(a_np), jnp.asarray(b_np)
    matmul = jax.jit(jnp.matmul)

    def run_jax(k):
        for _ in range(k):
            out = matmul(a, b)
        out.block_until_ready()

    sides = {"jax": run_jax}
    if with_torch:
        import torch  # pylint: disable=g-import-not-at-top

        device = "cuda" if torch.cuda.is_available() else "cpu"
        ta, tb = torch.from_numpy(a_np).to(device), torch.from_numpy(b_np).to(device)

        def run_torch(k):
            with torch.no_grad():
                for _ in range(k):
                    torch.matmul(ta, tb)
            torch_sync()

        sides["torch"] = run_torch
    return sides


def torch_sync() -> None:
    """Waits for queued torch work on the GPU (no-op on the CPU)."""
    import torch  # pylint: disable=g-import-not-at-top

    if torch.cuda.is_available():
        torch.cuda.synchronize()


# --------------------------------------------------------------------------- #
# Memory
# --------------------------------------------------------------------------- #


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this
    process image's memory. Not ``getrusage``'s ``ru_maxrss``: Linux keeps that
    across ``fork`` + ``exec``, so a child started by a large parent reports
    the parent's peak. Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss if sys.platform == "darwin" else maxrss * 1024)


def current_rss_bytes() -> int:
    """This process's resident set size now (psutil)."""
    import psutil  # pylint: disable=g-import-not-at-top

    return int(psutil.Process().memory_info().rss)


def jax_device_peak_bytes() -> int | None:
    """Peak bytes in use on the default JAX device, or None where not reported.

    Accelerators report ``peak_bytes_in_use`` in ``memory_stats()``; the CPU
    backend reports nothing, and RSS is the figure there.
    """
    stats = jax.devices()[0].memory_stats()
    return None if not stats else int(stats.get("peak_bytes_in_use", 0))
