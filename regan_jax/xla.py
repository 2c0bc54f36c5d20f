"""The XLA compiler options of the library's jitted training and sampling programs.

:func:`jit` is ``jax.jit`` that compiles a program *with a convolution* with
:func:`compiler_options` of the backend it runs on, and any other program
exactly as ``jax.jit`` would. Every step program the training loop runs (one
run, a vmapped group, ``shard_map`` across devices, a chunk of steps) and the
program's sampler and initialiser go through it, so the option is the
library's default without a process-wide ``XLA_FLAGS`` that a user would
have to know about.

CPU. jaxlib 0.10's XLA:CPU hands convolutions (and dots, and element-wise
work around them) to YNNPACK ("ynn fusions"). Its kernel for the *weight
gradient* of a stride-1 3x3 convolution (an HLO convolution whose window is
the whole feature map) runs several times slower than XLA's own; in the
28x28 DCGAN step that one op was ~40 % of the step. :data:`CPU_OPTIONS`
keeps YNNPACK for dots only. It was measured faster on both CPUs this
project has seen: an Intel Xeon with AVX-512 (conv step vs same-math torch
0.47x -> 0.69x, issue #14's table) and the 2-core AMD EPYC (0.69x -> 0.82x,
and the digits conv sweep of 8 members 1.62x -> 3.84x faster than 8 runs;
BENCHMARKS.md).

Why only programs with a convolution: the option also moves element-wise
work out of YNNPACK, which changes the last bits of every result; what it
fixes is a convolution kernel, and leaving the MLP programs (all of the
study's CPU preset) alone keeps their runs bitwise those recorded before it
(tests/test_golden.py). Turning YNNPACK off altogether
(:data:`CPU_CANDIDATE`) was as fast on convolutions and faster on the
vmapped ring8 MLP step on the AMD machine, but has not been measured on an
Intel CPU; the benchmark measures it beside the default.
"""

from typing import Any, Callable

import jax

# YNNPACK for dots (and individual dots) only; XLA's own convolutions.
CPU_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
}
# No YNNPACK at all: the benchmark's candidate (see the module docstring).
CPU_CANDIDATE = {"xla_cpu_experimental_ynn_fusion_type": ""}

_BY_BACKEND = {"cpu": CPU_OPTIONS}


def compiler_options(backend: str | None = None) -> dict[str, Any] | None:
    """The options of ``backend`` (default: JAX's default backend); None where there are none."""
    backend = jax.default_backend() if backend is None else backend
    options = _BY_BACKEND.get(backend)
    return dict(options) if options else None


def has_convolution(jaxpr) -> bool:
    """Whether a (closed) jaxpr, or any jaxpr nested in it, holds a convolution."""
    # The printed form lists every nested equation (scan, cond, shard_map, custom_vjp).
    return "conv_general_dilated" in str(jaxpr)


class _Jitted:
    """``jax.jit(fun)``; compiled with the backend's options if the program has a convolution.

    The choice is made once, from the first call's trace (a model does not
    gain or lose convolutions with the shapes of its inputs).
    """

    def __init__(self, fun: Callable, options: dict | None, kwargs: dict):
        given = kwargs.pop("compiler_options", None) or {}
        self._plain = jax.jit(fun, compiler_options=given or None, **kwargs)
        self._with_options = (
            jax.jit(fun, compiler_options={**options, **given}, **kwargs) if options else None
        )
        self._chosen = None if options else self._plain

    def choose(self, *args, **kwargs):
        """The jitted function these arguments run (deciding at the first call).

        Called inside another trace (its arguments are tracers), the plain
        jit: compiler options belong to the outermost program only.
        """
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((args, kwargs))):
            return self._plain
        if self._chosen is None:
            traced = self._plain.trace(*args, **kwargs)
            self._chosen = self._with_options if has_convolution(traced.jaxpr) else self._plain
        return self._chosen

    def lower(self, *args, **kwargs):
        return self.choose(*args, **kwargs).lower(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self.choose(*args, **kwargs)(*args, **kwargs)


def jit(fun: Callable, **kwargs) -> Callable:
    """``jax.jit(fun, **kwargs)``, with the backend's :func:`compiler_options` if it convolves.

    ``compiler_options`` in ``kwargs`` apply to every program, over the
    library's. Returns a callable with ``lower`` like a jitted function's.
    """
    return _Jitted(fun, compiler_options(), kwargs)


# The persistent compilation cache keeps every program: the study's are small (many compile in
# well under JAX's default 1 s minimum) but many, and each process compiles its own.
CACHE_MIN_COMPILE_TIME_S = 0.0
CACHE_MIN_ENTRY_BYTES = -1  # no size minimum (0 would let JAX choose one for the filesystem)
# JAX's default also turns on XLA's GPU autotuning cache inside the cache directory, whose
# path then enters every cache key: a study directory moved or copied would miss on all of
# its programs. None of XLA's own caches: the keys do not depend on where the cache lies.
CACHE_XLA_CACHES = "none"


def use_compilation_cache(directory) -> str:
    """Points this process's persistent XLA compilation cache at ``directory``; returns the one used.

    Call it once per process, before the first compile (JAX opens its cache
    at the first compile and keeps it). Processes that share ``directory``
    load a program one of them compiled instead of compiling it again (also
    after the directory is moved or copied); a loaded executable is the one
    that was compiled, so results are unchanged.
    A process already given a cache (``JAX_COMPILATION_CACHE_DIR``, as the
    tests do) keeps it, with its own settings.
    """
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_TIME_S)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", CACHE_MIN_ENTRY_BYTES)
    jax.config.update("jax_persistent_cache_enable_xla_caches", CACHE_XLA_CACHES)
    return str(directory)
