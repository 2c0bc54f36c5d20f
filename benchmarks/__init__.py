"""Speed, compile time, evaluation time and memory of regan_jax, side by side with PyTorch.

Entry point: ``python -m benchmarks.run [--quick] [--json OUT]`` (see
BENCHMARKS.md). Torch is a benchmark-only extra; the library never imports it.
"""
