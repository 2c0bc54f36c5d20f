"""Shared pytest configuration.

Tests run on the CPU. Multi-device tests start their own subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` so this process keeps
its single default device.
"""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
