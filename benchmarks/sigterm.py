"""SIGTERM latency of a vmapped sweep group: how long a scheduler must wait before SIGKILL.

    python -m benchmarks.sigterm [--members 8,64,256] [--setup-delay 3]

For each group size K, two runs of ``experiments.sweep`` on ``ring8_gan:smoke``
(K seeds, one program, ``--max-members K``) in a temporary directory:

- set-up: SIGTERM ``--setup-delay`` seconds after the group starts (the sweep's
  ``K member(s)`` line), while the members are built; the run must exit 143
  having trained nothing;
- training: SIGTERM as soon as the first member's first metrics row is on disk;
  the run must exit 143 after one checkpoint of the whole group.

Prints, per K and phase, the seconds from the signal to the process's exit
(the grace to give: SLURM's ``--signal=B:TERM@<seconds>`` or ``KillWait``).
"""

import argparse
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _sweep(workdir: pathlib.Path, members: int) -> subprocess.Popen:
    args = [
        sys.executable,
        "-m",
        "experiments.sweep",
        "--config",
        "ring8_gan:smoke",
        "--workdir",
        str(workdir),
        "--penalties",
        "l2",
        "--targets",
        "d",
        "--strengths",
        "1e-3",
        "--seeds",
        ",".join(map(str, range(members))),
        "--max-members",
        str(members),
        "--no-progress",
        "--config.steps=1000000",
        "--config.log.checkpoint_every=0",
        "--config.log.samples_every=0",
        "--config.log.every=1",
        "--config.eval.fd_every=0",
        "--config.log.tensorboard=false",
    ]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the sweep did not get there in time")
        time.sleep(0.05)


def latency(members: int, phase: str, setup_delay: float) -> tuple[float, int, str]:
    """``(seconds from SIGTERM to exit, exit code, last stderr line)`` of one run."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp) / "sweep"
        process = _sweep(workdir, members)
        try:
            if phase == "setup":
                while "member(s)" not in process.stdout.readline():
                    if process.poll() is not None:
                        raise RuntimeError(process.stderr.read())
                time.sleep(setup_delay)
            else:
                _wait_for(
                    lambda: any(p.stat().st_size for p in workdir.glob("*/metrics.jsonl")),
                    timeout=1800,
                )
            sent = time.monotonic()
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=600)
            elapsed = time.monotonic() - sent
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        lines = err.strip().splitlines()
        return elapsed, process.returncode, lines[-1] if lines else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", default="8,64,256", help="group sizes, comma-separated")
    parser.add_argument(
        "--setup-delay",
        type=float,
        default=3.0,
        help="seconds into the group's set-up to send SIGTERM",
    )
    args = parser.parse_args(argv)
    print("members  phase     SIGTERM->exit  code  last line")
    for members in [int(k) for k in args.members.split(",")]:
        for phase in ("setup", "training"):
            seconds, code, line = latency(members, phase, args.setup_delay)
            print(
                f"{members:7d}  {phase:8s}  {seconds:11.2f} s  {code:4d}  {line[:70]}", flush=True
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
