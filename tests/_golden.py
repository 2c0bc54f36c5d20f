"""Golden runs: hashes of the summaries and final parameters of five reference runs.

The architecture may move code around but must not change what a run computes.
This script trains the reference runs and prints (or checks) a SHA-256 of each
run's ``summary.json`` without its timing fields and of its final parameters::

    python tests/_golden.py record        # writes tests/golden.json for this machine
    python tests/_golden.py check [NAMES] # exit 1 if a hash differs

Floating-point results depend on the CPU (its vector units) and the jax/XLA
versions, so the recorded hashes are keyed by a fingerprint of those; on a
machine with no record ``check`` says so and exits 0 (nothing to compare).
"""

import hashlib
import json
import pathlib
import platform
import sys
import tempfile

import jax
import numpy as np

HERE = pathlib.Path(__file__).parent
GOLDEN = HERE / "golden.json"
# The ring of the runs recorded before ring8_gan moved to the published geometry
# (radius 1, sigma 0.01, linear output): the golden runs keep computing the same thing.
OLD_RING = {"data.ring_radius": "0.8", "data.sigma": "0.02", "model.g_output": "tanh"}
# (name, config spec, overrides per member); more than one member = one vmapped sweep group.
RUNS = {
    "ring8_gan:smoke": ("ring8_gan:smoke", [OLD_RING]),
    "digits_vae:smoke": ("digits_vae:smoke", [{}]),
    "digits_cgan:smoke": ("digits_cgan:smoke", [{}]),
    "sweep4": (
        "ring8_gan:smoke",
        [
            {**OLD_RING, "penalty.d.kind": "l2", "penalty.d.strength": "1e-3", "seed": "0"},
            {**OLD_RING, "penalty.d.kind": "l2", "penalty.d.strength": "1e-2", "seed": "0"},
            {**OLD_RING, "penalty.d.kind": "l2", "penalty.d.strength": "1e-3", "seed": "1"},
            {**OLD_RING, "penalty.d.kind": "l2", "penalty.d.strength": "1e-1", "seed": "1"},
        ],
    ),
    "digits_gan": ("digits_gan", [{"log.progress": "false"}]),
}
FAST = ("ring8_gan:smoke", "digits_vae:smoke", "digits_cgan:smoke", "sweep4")


def fingerprint() -> str:
    """CPU model, instruction-set flags that XLA uses, and the jax/jaxlib versions."""
    cpu = "unknown"
    flags = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = ",".join(f for f in ("avx2", "avx512f", "fma", "amx_tile") if f in have)
    except OSError:
        pass
    return f"{platform.machine()}|{cpu}|{flags}|jax {jax.__version__}"


def _tree_hash(tree) -> str:
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        h.update(jax.tree_util.keystr(path).encode())
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()[:16]


def _summary_hash(workdir: pathlib.Path) -> str:
    from regan_jax import walltime

    summary = json.loads((workdir / "summary.json").read_text())
    for key in walltime.TIMING_FIELDS:
        summary.pop(key, None)
    return hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()[:16]


def run(name: str, root: pathlib.Path) -> dict:
    """Trains reference run ``name`` under ``root``; ``{member: {summary, params}}``."""
    import experiments
    from regan_jax import train

    spec, members = RUNS[name]
    configs, workdirs = [], []
    for i, overrides in enumerate(members):
        pairs = [("log.progress", "false"), *overrides.items()]
        configs.append(experiments.load_config(spec, pairs))
        workdirs.append(root / f"{name.replace(':', '_')}-{i}")
    finals = train.train_members(configs, workdirs, progress=False)
    return {
        str(i): {"summary": _summary_hash(w), "params": _tree_hash(s.params)}
        for i, (w, s) in enumerate(zip(workdirs, finals))
    }


def main(argv) -> int:
    mode, names = argv[0], argv[1:] or list(RUNS)
    with tempfile.TemporaryDirectory() as tmp:
        got = {n: run(n, pathlib.Path(tmp)) for n in names}
    key = fingerprint()
    records = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if mode == "record":
        records.setdefault(key, {}).update(got)
        GOLDEN.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
        print(json.dumps(got, indent=1))
        return 0
    expected = records.get(key)
    if expected is None:
        print(f"no golden hashes recorded for {key!r}; nothing to compare")
        return 0
    bad = {n: (expected.get(n), got[n]) for n in names if expected.get(n) != got[n]}
    print(json.dumps(bad or "all equal", indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main(sys.argv[1:]))
