"""Shared pytest configuration.

Tests run on the CPU. Multi-device tests start their own subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` so this process keeps
its single default device.

Compiles dominate the suite, so every test process and every subprocess they
start share one persistent XLA compilation cache: a temporary directory made
once per run by the process that starts the run (pytest-xdist's controller,
whose environment its workers inherit) and removed when that process ends. A
program compiled once (the same smoke run in several files, a command-line run
in a subprocess) is then loaded instead of compiled again; a loaded executable
is the one that was compiled, so results stay bitwise (tests/test_golden.py).
"""

import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")


import jax
import pytest

CACHE_DIR_ENV = "JAX_COMPILATION_CACHE_DIR"
# Every compile is worth keeping: the suite's programs are small but many.
MIN_COMPILE_TIME_ENV = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"


def pytest_configure(config):
    """Points this process, and through the environment every process it starts, at the cache."""
    if not hasattr(config, "workerinput"):  # the run's first process: a fresh directory
        config.compile_cache_dir = tempfile.mkdtemp(prefix="regan_jax_xla_cache_")
        os.environ[CACHE_DIR_ENV] = config.compile_cache_dir
        os.environ[MIN_COMPILE_TIME_ENV] = "0"
    jax.config.update("jax_compilation_cache_dir", os.environ[CACHE_DIR_ENV])
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs", float(os.environ[MIN_COMPILE_TIME_ENV])
    )


def pytest_unconfigure(config):
    if hasattr(config, "compile_cache_dir"):
        shutil.rmtree(config.compile_cache_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def compile_cache():
    """The run's persistent XLA compilation cache directory (for a subprocess's environment)."""
    return os.environ[CACHE_DIR_ENV]
