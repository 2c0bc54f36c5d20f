#!/usr/bin/env bash
# One command for a short GPU slot: the benchmark on the GPU, and a smoke training run.
#
#   bash benchmarks/gpu.sh            # results in $OUT (default benchmarks/results/gpu)
#
# Runs from the checkout's root with the machine's python3 (PYTHON=... to choose
# another). Nothing is installed or downloaded: a missing package is named, with
# exit code 2, before any work. What it writes (at most 6 files, one folder):
#   nvidia-smi.txt, packages.txt    the device and the versions it ran with
#   gpu_quick.json, benchmark.log   python -m benchmarks.run --quick (GPU sides; torch
#                                   CUDA as the reference when torch sees the GPU)
#   smoke_summary.json, smoke.log   experiments.train on digits_gan:smoke, on the GPU
# About 5-8 minutes on an H200 (most of it compiling); the benchmark's suites are
# those that mean something on a GPU (memory is the host's RSS, so it is left out).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results/gpu}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"

"$PY" - <<'EOF' > "$OUT/packages.txt"
import importlib, sys
need = ["jax", "flax", "optax", "chex", "ml_collections", "orbax.checkpoint",
        "tensorflow_datasets", "sklearn", "scipy", "matplotlib", "tqdm", "numpy"]
missing = []
for name in need:
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except ImportError as e:
        missing.append(f"{name} ({e})")
if missing:
    print("missing: " + ", ".join(missing), file=sys.stderr)
    sys.exit(2)
import jax
print("devices", jax.devices())
if jax.default_backend() != "gpu":
    print(f"JAX's backend is {jax.default_backend()!r}, not 'gpu'", file=sys.stderr)
    sys.exit(2)
EOF
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true

set -o pipefail
"$PY" -m benchmarks.run --quick --only matmul,conv,mlp,sweeps,loop,compile,evaluation \
    --json "$OUT/gpu_quick.json" 2>&1 | tee "$OUT/benchmark.log"

SMOKE="$(mktemp -d)"
"$PY" -m experiments.train --config experiments/configs/digits_gan.py:smoke \
    --workdir "$SMOKE/run" --no-progress 2>&1 | tee "$OUT/smoke.log"
cp "$SMOKE/run/summary.json" "$OUT/smoke_summary.json"
rm -rf "$SMOKE"
echo "done: $OUT"
