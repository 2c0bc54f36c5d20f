"""The training loop and its workdir contract, end to end at smoke size.

Compiles dominate these tests, so they share XLA's persistent compilation
cache (a per-session directory) with the subprocesses they start.
"""

import json
import os
import pathlib
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest

import experiments
from experiments import train as train_cli
from regan_jax import checkpoint, metrics, train
from regan_jax import config as config_lib
from regan_jax import program as program_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
SUMMARY_KEYS = {
    "steps",
    "wall_s",
    "steps_per_s",
    "diverged",
    "diverged_reason",
    "sparsity_g",
    "sparsity_d",
    "norm_g",
    "norm_d",
}
SCORES = {
    "digits_gan": {"fd", "kid", "precision", "recall", "density", "coverage", "class_kl"},
    "ring8_gan": {"modes", "hq_fraction", "reverse_kl"},
}
CHEAP = {"digits_gan": {"fd"}, "ring8_gan": {"modes", "hq_fraction", "reverse_kl"}}


def run_cli(args, cache, timeout=300, devices=1):
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": cache,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
    }
    return subprocess.run(
        [sys.executable, "-m", "experiments.train", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory, compile_cache):
    """The smoke runs of digits_gan and ring8_gan, trained by the command line."""
    runs = {}
    for name in ("digits_gan", "ring8_gan"):
        workdir = tmp_path_factory.mktemp(name)
        result = run_cli(
            [
                "--config",
                f"experiments/configs/{name}.py:smoke",
                "--workdir",
                str(workdir),
                "--no-progress",
            ],
            compile_cache,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = workdir
    return runs


def snapshot(directory: pathlib.Path) -> dict:
    return {
        str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("name", ["digits_gan", "ring8_gan"])
def test_cli_run_writes_the_whole_contract(finished_runs, name):
    workdir = finished_runs[name]
    config = experiments.load_config(f"{name}:smoke")
    assert train.read_json(workdir / "config.json") == json.loads(
        json.dumps(config_lib.to_json_dict(config))
    )

    rows = train.read_metrics(workdir)
    assert [r["step"] for r in rows] == [3, 6, 9, 12]
    for r in rows:
        assert np.isfinite([r["d_loss"], r["g_loss"], r["wall_s"]]).all()
        assert (CHEAP[name] <= set(r)) == (r["step"] in (6, 12))
    walls = [r["wall_s"] for r in rows]
    assert walls == sorted(walls) and walls[0] > 0

    summary = train.read_json(workdir / "summary.json")
    assert SUMMARY_KEYS | SCORES[name] <= set(summary)
    assert summary["steps"] == 12 and summary["diverged"] is False
    assert summary["num_samples"] == config.eval.num_samples
    if name == "digits_gan":  # 12 steps: far from the data, but finite
        assert summary["fd"] > 0 and summary["kid"] > 0
        assert all(0 <= summary[k] <= 1 for k in ("precision", "recall", "coverage"))
    else:
        assert 0 <= summary["modes"] <= 8 and 0 <= summary["hq_fraction"] <= 1
    assert summary["diverged_reason"] is None
    assert summary["wall_s"] == walls[-1] and summary["steps_per_s"] > 0
    assert summary["sparsity_g"] == 0.0 and summary["sparsity_d"] == 0.0  # no penalty

    samples = workdir / "samples"
    assert {p.name for p in samples.glob("*.png")} == {"step_0000006.png", "step_0000012.png"}
    final = np.load(samples / "final.npz")["samples"]
    shape = (2,) if name == "ring8_gan" else (8, 8, 1)
    assert final.shape == (config.log.num_images, *shape)
    if name == "digits_gan":
        assert final.min() >= -1 and final.max() <= 1
    assert checkpoint.latest_step(str(workdir / "checkpoints")) == 12


def test_summary_norms_equal_float64_norms_of_the_checkpoint(finished_runs):
    workdir = finished_runs["digits_gan"]
    config = experiments.load_config("digits_gan:smoke")
    program = program_lib.build_program(config)
    state, position = checkpoint.restore_latest(
        str(workdir / "checkpoints"), program_lib.init_member(program, config)
    )
    summary = train.read_json(workdir / "summary.json")
    assert position["index"] >= 0 and int(state.step) == 12
    for net in ("g", "d"):
        kernels = [
            np.asarray(x, np.float64) for x in jax.tree.leaves(state.params[net]) if np.ndim(x) >= 2
        ]
        expected = np.sqrt(sum(np.sum(k**2) for k in kernels))
        np.testing.assert_allclose(summary[f"norm_{net}"], expected, rtol=1e-5)


def _final_params(workdir, config):
    program = program_lib.build_program(config)
    state, _ = checkpoint.restore_latest(
        str(workdir / "checkpoints"), program_lib.init_member(program, config)
    )
    return state.params


@pytest.mark.parametrize(
    "backend",
    [
        "shard_map",
        # Slow: the pmap wrapper's numbers are tested in tests/test_parallel.py; this is its flag.
        pytest.param("pmap", marks=pytest.mark.slow),
    ],
)
def test_cli_on_four_devices_trains_the_one_device_run(
    finished_runs, compile_cache, tmp_path, backend
):
    """The loop is data-parallel over all devices: same global batch, same run."""
    workdir = tmp_path / "four"
    result = run_cli(
        [
            "--config",
            "experiments/configs/digits_gan.py:smoke",
            "--workdir",
            str(workdir),
            "--no-progress",
            "--data-parallel",
            backend,
        ],
        compile_cache,
        devices=4,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = experiments.load_config("digits_gan:smoke")
    chex.assert_trees_all_close(
        _final_params(workdir, config),
        _final_params(finished_runs["digits_gan"], config),
        rtol=1e-4,
        atol=1e-6,
    )
    if backend == "pmap":
        return
    bad = run_cli(
        [
            "--config",
            "experiments/configs/digits_gan.py:smoke",
            "--workdir",
            str(tmp_path / "bad"),
            "--no-progress",
            "--config.data.batch_size=30",
        ],
        compile_cache,
        devices=4,
    )
    assert bad.returncode == 2 and "not divisible by the 4 devices" in bad.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "finished run"),
        (["--config", "ring8_gan:smoke"], "data.name"),
    ],
)
def test_refuses_to_clobber_a_finished_or_different_run(finished_runs, capsys, extra, message):
    workdir = finished_runs["digits_gan"]
    before = snapshot(workdir)
    argv = ["--config", "digits_gan:smoke", "--workdir", str(workdir), "--no-progress", *extra]
    assert train_cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert snapshot(workdir) == before


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "--config.penalty.g.knd=l1",
            "valid keys at penalty.g are adaptive, coupling, decay_steps",
        ),
        ("--config.stepz=5", "valid keys at the top level are data, eval, log"),
        ("--config.steps=abc", "expects type int"),
        ("--config.penalty.g.kind=l3", "unknown penalty kind 'l3'"),
        ("--config.log.progress=maybe", "expects type bool"),
        # The one validation pass: every field, before anything is written.
        ("--config.model.kind=vae", "'model.kind' was removed; use model_type"),
        ("--config.eval.num_samples=3", "config.eval.num_samples must be a number >= 6, got 3"),
        ("--config.eval.fd_samples=1", "config.eval.fd_samples must be a number >= 2, got 1"),
        ("--config.eval.batch_size=0", "config.eval.batch_size must be a number >= 1, got 0"),
        ("--config.data.batch_size=0", "config.data.batch_size must be a number >= 1, got 0"),
        ("--config.seed=-1", "config.seed must be a number >= 0, got -1"),
        ("--config.log.num_images=0", "config.log.num_images must be a number >= 1, got 0"),
        ("--config.loss.d_steps=0", "config.loss.d_steps must be >= 1, got 0"),
        ("--config.loss.gp_weight=-1", "config.loss.gp_weight must be >= 0, got -1"),
        ("--config.data.batch_size=5000", "batch_size 5000 is larger than dataset"),
        ("--config.penalty.g.kind=l1", None),  # valid: a control for the mask case below
        ("--config.penalty.d.kind=l1 --config.penalty.d.mask=^nothing$", "no parameter"),
    ],
)
def test_bad_overrides_exit_nonzero_naming_the_problem(tmp_path, capsys, override, message):
    workdir = tmp_path / "run"
    argv = ["--config", "digits_gan:smoke", "--workdir", str(workdir), *override.split()]
    if message is None:  # A valid override trains (the checks refuse only what is wrong).
        assert train_cli.main([*argv, "--no-progress", "--config.steps=1"]) == 0
        return
    assert train_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not workdir.exists()


def test_mixture_beyond_the_generators_range_is_refused(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert (
        train_cli.main(
            [
                "--config",
                "ring8_gan:smoke",
                "--workdir",
                str(workdir),
                "--config.data.ring_radius=2",
                "--config.data.sigma=0.02",
                "--config.model.g_output=tanh",
            ]
        )
        == 2
    )
    assert "modes reach 2.06 (centres + 3 sigma)" in capsys.readouterr().err
    assert not workdir.exists()


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def ring8_single(tmp_path_factory, compile_cache):
    config = experiments.load_config("ring8_gan:smoke")
    workdir = tmp_path_factory.mktemp("ring8_single")
    return config, workdir, train.train_and_evaluate(config, workdir, progress=False)


def test_interrupted_run_resumes_to_the_uninterrupted_result(ring8_single, tmp_path, monkeypatch):
    config, reference_dir, reference = ring8_single
    save = train._save_checkpoints

    def save_then_die(*args):
        save(*args)
        raise Interrupt

    with monkeypatch.context() as m:
        m.setattr(train, "_save_checkpoints", save_then_die)
        with pytest.raises(Interrupt):
            train.train_and_evaluate(config, tmp_path, progress=False)
    assert not train.is_finished(tmp_path)
    assert [r["step"] for r in train.read_metrics(tmp_path)] == [3, 6]
    resumed = train.train_and_evaluate(config, tmp_path, progress=False)
    chex.assert_trees_all_equal(resumed.params, reference.params)
    rows, reference_rows = train.read_metrics(tmp_path), train.read_metrics(reference_dir)
    assert [r["step"] for r in rows] == [3, 6, 9, 12]
    for r, ref in zip(rows, reference_rows):
        assert {k: v for k, v in r.items() if k != "wall_s"} == {
            k: v for k, v in ref.items() if k != "wall_s"
        }


MEMBERS_SCRIPT = """
import sys, numpy as np, jax, experiments
from regan_jax import train
configs = [experiments.load_config("ring8_gan:smoke", [("penalty.g.kind", "l2"),
                                                        ("penalty.g.strength", str(s))])
           for s in (0.0, 1e-3, 1e-2, 1e-1)]
finals = train.train_members(configs, [f"{sys.argv[1]}/m{i}" for i in range(4)], progress=False)
np.savez(f"{sys.argv[1]}/params.npz", **{f"{i}/{j}": np.asarray(x) for i, f in enumerate(finals)
                                          for j, x in enumerate(jax.tree.leaves(f.params))})
"""


@pytest.mark.slow  # The placements' numbers: tests/test_parallel.py (members_step, fed_parallel).
def test_members_split_across_four_devices_equal_one_device(compile_cache, tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": compile_cache}
    results = {}
    for devices in (1, 4):
        out = tmp_path / str(devices)
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
        done = subprocess.run(
            [sys.executable, "-c", MEMBERS_SCRIPT, str(out)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        results[devices] = dict(np.load(out / "params.npz"))
    assert len(results[1]) > 4 and results[1].keys() == results[4].keys()
    for key, expected in results[1].items():
        np.testing.assert_allclose(results[4][key], expected, rtol=1e-5, atol=1e-6, err_msg=key)
    # The members differ (the strengths reached the optimizer), so the comparison is not vacuous.
    assert not np.allclose(results[1]["0/0"], results[1]["3/0"])


def test_vmapped_members_equal_single_runs_and_diverge_alone(ring8_single, tmp_path):
    config, reference_dir, reference = ring8_single
    blowup = experiments.load_config(
        "ring8_gan:smoke",
        [("optimizer.g.learning_rate", "1e30"), ("optimizer.d.learning_rate", "1e30")],
    )
    workdirs = [tmp_path / "ok", tmp_path / "blowup"]
    finals = train.train_members([config, blowup], workdirs, progress=False)

    chex.assert_trees_all_close(finals[0].params, reference.params, rtol=1e-5, atol=1e-6)
    ok = train.read_json(workdirs[0] / "summary.json")
    assert ok["diverged"] is False and ok["steps"] == 12 and ok["sweep_members"] == 2

    bad = train.read_json(workdirs[1] / "summary.json")
    assert bad["diverged"] is True and "modes" not in bad  # no scores for a diverged run
    assert bad["diverged_reason"] in ("nonfinite_loss", "nonfinite_params")
    assert 0 <= bad["diverged_step"] < 3
    assert all(v is None or np.isfinite(v) for v in bad.values() if isinstance(v, float))
    # The diverged member was frozen with finite parameters.
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(finals[1].params))
    stats = metrics.weight_stats(finals[1].params["g"])
    np.testing.assert_allclose(bad["norm_g"], float(stats["l2"]), rtol=1e-6)
    # It wrote one last row saying it froze (step, reason), then nothing; no NaN samples.
    rows = train.read_metrics(workdirs[1])
    assert rows == [
        {
            "step": 3,
            "wall_s": rows[0]["wall_s"],
            "frozen": True,
            "diverged_step": bad["diverged_step"],
            "diverged_reason": bad["diverged_reason"],
        }
    ]
    final = workdirs[1] / "samples" / "final.npz"
    assert not final.exists() or np.isfinite(np.load(final)["samples"]).all()
