"""Benchmark entry point: speed, compile time, evaluation time and memory vs targets.

    python -m benchmarks.run [--quick] [--json OUT] [--only SUITE,...] [--smoke]

Runs every suite of :mod:`benchmarks.suites` in one process on whatever
device JAX and torch find (CPU here, a GPU when there is one), prints each
figure with its target and PASS/MISS, and writes everything to ``--json``.
``--quick`` (about 4 minutes on the 2-core AMD EPYC of BENCHMARKS.md) uses fewer, shorter timed
blocks; ``--smoke`` shrinks the models to test size to check the machinery
(its numbers mean nothing). Torch is optional (``pip install -e '.[bench]'``):
without it the torch comparisons are skipped and said to be.
"""

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import sys
import time
import traceback
from typing import Any, Callable

from regan_jax import workdir

SUITES = ("matmul", "conv", "mlp", "sweeps", "loop", "devices", "compile", "evaluation", "memory")


@dataclasses.dataclass(frozen=True)
class Target:
    """A figure's target: ``value >= threshold`` (``at_least``) or ``value <= threshold``.

    Attributes:
      name: the row label.
      path: keys into the results dict, e.g. ``('conv', 'jax_vs_torch_idiomatic')``.
      threshold: the target value.
      at_least: True for a lower bound, False for an upper bound.
      unit: printed after values ('x', 's', '').
    """

    name: str
    path: tuple[str, ...]
    threshold: float
    at_least: bool = True
    unit: str = "x"

    def score(self, value: float) -> float:
        """Value over target, oriented so that >= 1 passes (``threshold/value`` for upper bounds)."""
        return value / self.threshold if self.at_least else self.threshold / value


def _scaling_targets(label: str, key: str) -> tuple[Target, ...]:
    """Issue #25's targets of one MLP GAN's vmapped group (``key`` in the sweeps suite).

    Stated against the FLOP bound, not as fixed multiples (issue #14's K=8 >= 3x and
    K=64 <= 12x were beyond the bound on the 2-core CPUs seen): a group of K members
    does K times one run's FLOPs, so at the measured matmul peak its step cannot take
    less than ``K flops / peak``. Its speed-up over K sequential runs, divided by the
    speed-up that floor allows, is therefore the step's fraction of the peak (the same
    ratio, ``of_bound``): the K=8 targets are that ratio >= 0.6 (the fraction of peak)
    and >= 0.75 (the speed-up, of its bound), so the second decides.
    """
    return (
        Target(
            f"{label} sweep K=8, fraction of the matmul peak",
            ("sweeps", key, "k_small", "fraction_of_peak"),
            0.6,
            unit="",
        ),
        Target(
            f"{label} sweep K=8 speed-up over 8 runs, of its bound",
            ("sweeps", key, "k_small", "of_bound"),
            0.75,
            unit="",
        ),
        Target(
            f"{label} sweep K=64 step / one run's step, of its bound",
            ("sweeps", key, "k_large", "of_bound"),
            0.75,
            unit="",
        ),
    )


TARGETS = (
    Target(
        "conv GAN step vs torch idiomatic (ConvTranspose2d G)",
        ("conv", "jax_vs_torch_idiomatic"),
        1.0,
    ),
    Target(
        "conv GAN step vs torch same-math (sub-pixel G)", ("conv", "jax_vs_torch_same_math"), 1.0
    ),
    Target(
        "conv GAN step, FLOP/s fraction of JAX matmul peak",
        ("conv", "jax_fraction_of_peak"),
        0.6,
        unit="",
    ),
    Target("ring8 MLP GAN step vs torch eager", ("mlp", "jax_vs_torch_eager"), 5.0),
    *_scaling_targets("ring8", "ring8"),
    *_scaling_targets("digits MLP", "digits_mlp"),
    Target(
        "digits conv sweep K=8 vmapped vs 8 sequential runs",
        ("sweeps", "digits_conv_k8", "speedup"),
        1.0,
    ),
    Target(
        "compile, first step: digits_gan (default)",
        ("compile", "digits_gan", "total_s"),
        5.0,
        at_least=False,
        unit="s",
    ),
    Target(
        "compile, first step: ring8_gan",
        ("compile", "ring8_gan", "total_s"),
        5.0,
        at_least=False,
        unit="s",
    ),
    Target(
        "compile, first step: fashion_mnist conv GAN",
        ("compile", "fashion_mnist_gan", "total_s"),
        5.0,
        at_least=False,
        unit="s",
    ),
    Target(
        "evaluation of 10k samples (features+FD+PRDC), first call",
        ("evaluation", "cold_s"),
        15.0,
        at_least=False,
        unit="s",
    ),
)

# The same targets with the conv steps compiled with XLA's defaults (the
# library before regan_jax.xla: "before") and with YNNPACK off (the candidate).
FIX_TARGETS = (
    Target(
        "[XLA defaults, before] conv GAN step vs torch idiomatic",
        ("conv", "jax_xla_defaults_vs_torch_idiomatic"),
        1.0,
    ),
    Target(
        "[XLA defaults, before] conv GAN step vs torch same-math",
        ("conv", "jax_xla_defaults_vs_torch_same_math"),
        1.0,
    ),
    Target(
        "[XLA defaults, before] conv GAN step, fraction of peak",
        ("conv", "jax_xla_defaults_fraction_of_peak"),
        0.6,
        unit="",
    ),
    Target(
        "[XLA defaults, before] digits conv sweep K=8 vs 8 runs",
        ("sweeps", "digits_conv_k8_xla_defaults", "speedup"),
        1.0,
    ),
    Target(
        "[candidate, no YNNPACK] conv GAN step vs torch same-math",
        ("conv", "jax_candidate_vs_torch_same_math"),
        1.0,
    ),
    *_scaling_targets("[candidate, no YNNPACK] ring8", "ring8_candidate"),
    *_scaling_targets("[candidate, no YNNPACK] digits MLP", "digits_mlp_candidate"),
)

# Figures printed without a target: (label, path, unit).
INFO = (
    ("float32 matmul peak, JAX", ("matmul", "jax_flops_per_s"), "GFLOP/s"),
    ("float32 matmul peak, torch", ("matmul", "torch_flops_per_s"), "GFLOP/s"),
    ("conv GAN: JAX images/s", ("conv", "jax_images_per_s"), "img/s"),
    ("conv GAN: torch idiomatic images/s", ("conv", "torch_idiomatic_images_per_s"), "img/s"),
    ("conv GAN: torch same-math images/s", ("conv", "torch_same_math_images_per_s"), "img/s"),
    (
        "conv GAN vs torch idiomatic, fastest blocks (least load)",
        ("conv", "jax_vs_torch_idiomatic_fastest"),
        "x",
    ),
    (
        "conv GAN vs torch same-math, fastest blocks",
        ("conv", "jax_vs_torch_same_math_fastest"),
        "x",
    ),
    (
        "conv GAN with a conv_transpose G (torch idiomatic's arithmetic) vs torch idiomatic",
        ("conv", "jax_conv_transpose_vs_torch_idiomatic"),
        "x",
    ),
    (
        "conv GAN with a conv_transpose G, fraction of peak",
        ("conv", "jax_conv_transpose_fraction_of_peak"),
        "",
    ),
    (
        "[XLA defaults, before] conv GAN images/s",
        ("conv", "jax_xla_defaults_images_per_s"),
        "img/s",
    ),
    ("[candidate, no YNNPACK] conv GAN images/s", ("conv", "jax_candidate_images_per_s"), "img/s"),
    ("conv GAN: XLA FLOPs per step", ("conv", "jax_flops_per_step"), "GFLOP"),
    ("conv GAN: JAX achieved", ("conv", "jax_flops_per_s"), "GFLOP/s"),
    ("conv GAN: torch same-math achieved", ("conv", "torch_same_math_flops_per_s"), "GFLOP/s"),
    ("ring8 MLP: JAX steps/s", ("mlp", "jax_steps_per_s"), "steps/s"),
    ("ring8 MLP: torch eager steps/s", ("mlp", "torch_eager_steps_per_s"), "steps/s"),
    ("ring8 MLP vs torch eager, fastest blocks", ("mlp", "jax_vs_torch_eager_fastest"), "x"),
    ("ring8 MLP: XLA FLOPs per step", ("mlp", "jax_flops_per_step"), "GFLOP"),
    ("ring8 MLP: JAX achieved", ("mlp", "jax_flops_per_s"), "GFLOP/s"),
    *(
        (f"{label}: {what}", ("sweeps", key, *path), unit)
        for label, key in (("ring8", "ring8"), ("digits MLP", "digits_mlp"))
        for what, path, unit in (
            ("XLA FLOPs per member-step", ("flops_per_step",), "GFLOP"),
            ("one run, steps/s", ("one_steps_per_s",), "steps/s"),
            ("one run, fraction of peak", ("one_fraction_of_peak",), ""),
            ("K=8 member-steps/s", ("k_small", "member_steps_per_s"), "steps/s"),
            ("K=8 vmapped vs 8 sequential runs", ("k_small", "speedup"), "x"),
            ("K=64 step / one run's step", ("k_large", "time_ratio"), "x"),
            ("K=64 member-steps/s", ("k_large", "member_steps_per_s"), "steps/s"),
            ("K=64 fraction of peak", ("k_large", "fraction_of_peak"), ""),
            ("K=8 best speed-up the peak allows", ("k_small", "speedup_bound"), "x"),
            ("K=64 least time ratio the peak allows", ("k_large", "time_ratio_bound"), "x"),
        )
    ),
    (
        "loop, ring8 K=8: host-fed member-steps/s",
        ("loop", "host_fed", "member_steps_per_s"),
        "steps/s",
    ),
    (
        "loop, ring8 K=8: device-fed member-steps/s",
        ("loop", "device_fed", "member_steps_per_s"),
        "steps/s",
    ),
    (
        "loop, ring8 K=8: device-fed, 10 steps per call, member-steps/s",
        ("loop", "device_fed_chunks10", "member_steps_per_s"),
        "steps/s",
    ),
    ("loop, ring8 K=8: device-fed vs host-fed", ("loop", "device_fed_vs_host_fed"), "x"),
    (
        "loop, ring8 K=8: 10 steps per call vs host-fed",
        ("loop", "device_fed_chunks10_vs_host_fed"),
        "x",
    ),
    (
        "ring8 K=8 split over 2 virtual CPU devices vs one device",
        ("devices", "split_vs_one_device"),
        "x",
    ),
    (
        "ring8 K=8 split over 2 virtual CPU devices, member-steps/s",
        ("devices", "split_member_steps_per_s"),
        "steps/s",
    ),
    ("compile CPU seconds: digits_gan", ("compile", "digits_gan", "cpu_s"), "s"),
    ("compile CPU seconds: ring8_gan", ("compile", "ring8_gan", "cpu_s"), "s"),
    ("compile CPU seconds: fashion_mnist conv GAN", ("compile", "fashion_mnist_gan", "cpu_s"), "s"),
    (
        "evaluation, first call: sampling 10k (not in the target)",
        ("evaluation", "cold_parts", "sample_s"),
        "s",
    ),
    (
        "evaluation, first call: classifier features",
        ("evaluation", "cold_parts", "features_s"),
        "s",
    ),
    ("evaluation, first call: FD", ("evaluation", "cold_parts", "fd_s"), "s"),
    ("evaluation, first call: PRDC", ("evaluation", "cold_parts", "prdc_s"), "s"),
    ("evaluation, second call (compiled): features+FD+PRDC", ("evaluation", "warm_s"), "s"),
    ("peak RSS, digits_gan JAX run", ("memory", "digits_gan_jax", "peak_rss_bytes"), "MiB"),
    ("peak RSS, conv GAN JAX run", ("memory", "fashion_mnist_gan_jax", "peak_rss_bytes"), "MiB"),
    (
        "peak RSS, conv GAN torch run",
        ("memory", "fashion_mnist_gan_torch", "peak_rss_bytes"),
        "MiB",
    ),
    (
        "RSS added by training, conv GAN JAX",
        ("memory", "fashion_mnist_gan_jax", "training_rss_bytes"),
        "MiB",
    ),
    (
        "RSS added by training, conv GAN torch",
        ("memory", "fashion_mnist_gan_torch", "training_rss_bytes"),
        "MiB",
    ),
    ("device peak, conv GAN JAX", ("memory", "fashion_mnist_gan_jax", "device_peak_bytes"), "MiB"),
)
_SCALE = {"GFLOP/s": 1e-9, "GFLOP": 1e-9, "MiB": 1 / 2**20}


def lookup(results: dict, path: tuple[str, ...]) -> Any:
    """``results[path[0]][path[1]]...``, or None where any key is missing."""
    node = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def judge(results: dict, targets=TARGETS) -> list[dict]:
    """Every target with its measured value, score (>= 1 passes) and verdict."""
    rows = []
    for target in targets:
        value = lookup(results, target.path)
        row = {
            "name": target.name,
            "path": list(target.path),
            "threshold": target.threshold,
            "at_least": target.at_least,
            "value": value,
        }
        if isinstance(value, (int, float)) and value > 0:
            row["score"] = target.score(value)
            row["verdict"] = "PASS" if row["score"] >= 1.0 else "MISS"
        else:
            row["verdict"] = "NOT MEASURED"
        rows.append(row)
    return rows


def machine_info() -> dict:
    """CPU model, core count, platform, library versions and devices."""
    import jax  # pylint: disable=g-import-not-at-top

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = models[0] if models else cpu
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "nproc": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    torch = _torch()
    if torch is not None:
        info.update(
            torch=torch.__version__,
            torch_threads=torch.get_num_threads(),
            torch_cuda=torch.cuda.is_available(),
        )
    return info


def _torch():
    try:
        import torch  # pylint: disable=g-import-not-at-top

        return torch
    except ImportError:
        return None


def run_suites(names, sizes, with_torch: bool, log: Callable[[str], None] = print) -> dict:
    """Runs the named suites in order; a failing suite is recorded, the others go on.

    Returns:
      ``{suite: figures}``; a failed suite's entry is ``{'error': traceback}``.
    """
    from benchmarks import suites  # pylint: disable=g-import-not-at-top

    results: dict[str, Any] = {}
    peak = None
    for name in names:
        log(f"[{time.strftime('%H:%M:%S')}] {name} ...")
        start = time.perf_counter()
        try:
            if name == "matmul":
                results[name] = suites.matmul_peak(sizes, with_torch)
                peak = results[name]["jax_flops_per_s"]
            elif name == "conv":
                if peak is None:
                    peak = suites.matmul_peak(sizes, False)["jax_flops_per_s"]
                results[name] = suites.conv_gan_throughput(sizes, peak, with_torch)
            elif name == "mlp":
                results[name] = suites.mlp_gan_throughput(sizes, with_torch)
            elif name == "sweeps":
                if peak is None:
                    peak = suites.matmul_peak(sizes, False)["jax_flops_per_s"]
                results[name] = suites.sweeps(sizes, peak)
            elif name == "loop":
                results[name] = suites.training_loop(sizes)
            elif name == "devices":
                results[name] = suites.virtual_devices(sizes)
            elif name == "compile":
                results[name] = suites.compile_times(sizes, _measured_compiles(results))
            elif name == "evaluation":
                results[name] = suites.evaluation_time(sizes)
            elif name == "memory":
                results[name] = suites.peak_memory(sizes, with_torch)
        except Exception:  # noqa: BLE001 - a broken suite must not hide the others' numbers
            results[name] = {"error": traceback.format_exc()}
            log(results[name]["error"])
        results.setdefault(name, {})["suite_wall_s"] = time.perf_counter() - start
    return results


def _measured_compiles(results: dict) -> dict:
    """Cold first-step compiles of default configs that the throughput suites already made."""
    measured = {}
    for suite, config in (("conv", "fashion_mnist_gan"), ("mlp", "ring8_gan")):
        figures = results.get(suite, {})
        if figures.get("is_default_config") and "jax_compile" in figures:
            measured[config] = {"figures": figures["jax_compile"], "suite": suite}
    return measured


def _format(value, unit: str) -> str:
    if not isinstance(value, (int, float)):
        return "n/a"
    return f"{value * _SCALE.get(unit, 1):.3g} {unit}".rstrip()


def report(results: dict, rows: list[dict], fix_rows: list[dict]) -> str:
    """The printed table: targets with value, target, score and verdict; then info rows."""
    lines = [f"{'figure':58s} {'value':>14s} {'target':>10s} {'ratio':>7s}  verdict"]
    for group in (rows, fix_rows):
        for row, target in zip(group, TARGETS if group is rows else FIX_TARGETS):
            bound = ">=" if target.at_least else "<="
            score = f"{row['score']:.2f}" if "score" in row else "-"
            lines.append(
                f"{row['name']:58s} {_format(row['value'], target.unit):>14s} "
                f"{bound}{target.threshold:g}{target.unit:>2s}  {score:>7s}  "
                f"{row['verdict']}"
            )
        lines.append("")
    for label, path, unit in INFO:
        value = lookup(results, path)
        if value is not None:
            lines.append(f"{label:58s} {_format(value, unit):>14s}")
    errors = [name for name, r in results.items() if isinstance(r, dict) and "error" in r]
    if errors:
        lines.append(f"\nFAILED suites: {', '.join(errors)} (tracebacks in the JSON)")
    return "\n".join(lines)


def write_json(path: pathlib.Path, obj: dict) -> None:
    """Writes ``obj`` as JSON atomically (temp file in the same directory, then rename)."""
    workdir.write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer, shorter timed blocks (< 5 minutes on a 2-core CPU)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="test-size models and sizes: checks the machinery only"
    )
    parser.add_argument("--json", type=pathlib.Path, default=None, help="write results here")
    parser.add_argument(
        "--only",
        default=",".join(SUITES),
        help=f"comma-separated suites to run, of {','.join(SUITES)}",
    )
    args = parser.parse_args(argv)
    args.only = [s for s in args.only.split(",") if s]
    unknown = sorted(set(args.only) - set(SUITES))
    if unknown or not args.only:
        parser.error(
            f"--only: unknown suite(s) {unknown or '(none given)'}; "
            f"expected a comma-separated subset of {','.join(SUITES)}"
        )
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from benchmarks import suites  # pylint: disable=g-import-not-at-top

    sizes = suites.SMOKE if args.smoke else suites.QUICK if args.quick else suites.FULL
    torch = _torch()
    if torch is None:
        print(
            "torch is not installed: the PyTorch comparisons are skipped "
            "(pip install -e '.[bench]')"
        )
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    start = time.perf_counter()
    results = run_suites(args.only, sizes, torch is not None)
    rows, fix_rows = judge(results), judge(results, FIX_TARGETS)
    out = {
        "command": " ".join(
            ["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])]
        ),
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "wall_s": time.perf_counter() - start,
        "sizes": dataclasses.asdict(sizes),
        "results": results,
        "targets": rows,
        "fix_targets": fix_rows,
    }
    print()
    print(report(results, rows, fix_rows))
    print(
        f"\nwall time {out['wall_s']:.0f} s; load average before {load_before[0]:.1f}, "
        f"after {out['load_average_after'][0]:.1f} (on {os.cpu_count()} cores)"
    )
    if args.json:
        write_json(args.json, out)
        print(f"results written to {args.json}")
    return 1 if any("error" in r for r in results.values() if isinstance(r, dict)) else 0


if __name__ == "__main__":
    sys.exit(main())
