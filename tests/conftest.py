"""Shared pytest configuration.

Tests run on the CPU. Multi-device tests start their own subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` so this process keeps
its single default device.
"""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")


import pytest


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory):
    """A persistent XLA compilation cache shared by this process and its subprocesses."""
    import jax

    path = str(tmp_path_factory.mktemp("xla_cache"))
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    return path
