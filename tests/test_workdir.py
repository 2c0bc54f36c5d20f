"""The run directory and the command lines' error contract, each test the reproduction of a
defect found on an earlier main: the lock, validation before writing, --overwrite, a
truncated metrics line, one-line errors for OSError, signals, sweep resume, file modes."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import chex
import numpy as np
import pytest

import experiments
from experiments import sweep as sweep_cli
from experiments import train as train_cli
from regan_jax import checkpoint, train, workdir
from regan_jax import config as config_lib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SMOKE = ["--config", "ring8_gan:smoke", "--no-progress"]


def _env(cache):
    return {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": cache,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
    }


def _popen(args, cache, module="experiments.train"):
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=_env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _snapshot(directory):
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(pathlib.Path(directory).rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished ring8 smoke run (12 steps, checkpoints at 6 and 12)."""
    config = experiments.load_config("ring8_gan:smoke", [("log.progress", "false")])
    path = tmp_path_factory.mktemp("finished")
    state = train.train_and_evaluate(config, path)
    return config, path, state


# --- the lock -------------------------------------------------------------------------


def test_a_second_run_on_a_locked_workdir_exits_2_naming_the_holder(tmp_path, capsys):
    with workdir.lock(tmp_path / "run"):
        assert train_cli.main([*SMOKE, "--workdir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"in use by another run (pid {os.getpid()})" in err and err.count("\n") == 1
    assert not (tmp_path / "run" / workdir.CONFIG_FILE).exists()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from regan_jax import workdir\n"
            f"with workdir.lock({str(tmp_path)!r}):\n print('held', flush=True); time.sleep(60)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(workdir.WorkdirError, match=f"pid {holder.pid}"):
        with workdir.lock(tmp_path):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / workdir.LOCK_FILE).read_text().strip() == str(holder.pid)  # stale
    with workdir.lock(tmp_path):
        assert (tmp_path / workdir.LOCK_FILE).read_text().strip() == str(os.getpid())


def test_concurrent_starts_train_once_with_no_duplicate_rows(tmp_path, compile_cache):
    run = tmp_path / "run"
    args = [*SMOKE, "--workdir", str(run), "--config.steps=60"]
    first, second = _popen(args, compile_cache), _popen(args, compile_cache)
    outs = [p.communicate(timeout=300) for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 2], outs
    refused = outs[[first.returncode, second.returncode].index(2)][1]
    assert "in use by another run (pid" in refused
    steps = [r["step"] for r in train.read_metrics(run)]
    assert steps == list(range(3, 61, 3))


# --- validation before writing, --overwrite -------------------------------------------


def test_overwrite_with_a_bad_value_keeps_the_finished_run(finished, capsys):
    _, path, _ = finished
    before = _snapshot(path)
    assert (
        train_cli.main(
            [*SMOKE, "--workdir", str(path), "--overwrite", "--config.eval.num_samples=1"]
        )
        == 2
    )
    assert "config.eval.num_samples must be a number >= 6, got 1" in capsys.readouterr().err
    assert _snapshot(path) == before


def test_overwrite_moves_the_old_run_aside_until_the_new_one_started(
    finished, tmp_path, monkeypatch
):
    config, path, _ = finished
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(path), str(copy)], check=True)
    before = _snapshot(copy)

    def fail_at_start(*args, **kwargs):
        raise RuntimeError("compile failed")

    with monkeypatch.context() as m:  # The new run fails before its first step: nothing lost.
        m.setattr(train, "_loop", fail_at_start)
        with pytest.raises(RuntimeError, match="compile failed"):
            train.train_and_evaluate(config, copy, overwrite=True)
    assert _snapshot(copy) == before  # TensorBoard events included: the old run's are back
    old_events = {p.name for p in copy.glob(workdir.EVENTS_GLOB)}
    assert old_events
    train.train_and_evaluate(config, copy, overwrite=True)  # Started, finished: old one gone.
    assert not (copy / workdir.PREVIOUS_DIR).exists() and train.is_finished(copy)
    assert not old_events & {p.name for p in copy.glob(workdir.EVENTS_GLOB)}


# --- metrics.jsonl --------------------------------------------------------------------


def test_a_truncated_last_metrics_line_is_dropped_and_the_run_resumes(finished, tmp_path):
    config, path, reference = finished
    partial = tmp_path / "partial"
    subprocess.run(["cp", "-a", str(path), str(partial)], check=True)
    (partial / workdir.SUMMARY_FILE).unlink()
    checkpoint.remove_after(str(partial / workdir.CHECKPOINT_DIR), 6)
    rows = (partial / workdir.METRICS_FILE).read_text().splitlines()
    cut = "\n".join(rows[:2]) + "\n" + rows[2][:17]  # steps 3, 6, then half of step 9
    (partial / workdir.METRICS_FILE).write_text(cut)
    with pytest.warns(RuntimeWarning, match="dropped a truncated last line"):
        resumed = train.train_and_evaluate(config, partial)
    chex.assert_trees_all_equal(resumed.params, reference.params)
    assert [r["step"] for r in train.read_metrics(partial)] == [3, 6, 9, 12]


def test_a_corrupt_metrics_line_before_the_last_names_the_file_and_line(tmp_path):
    (tmp_path / workdir.METRICS_FILE).write_text('{"step": 3}\n{"st\n{"step": 9}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl: line 2 is not JSON"):
        workdir.read_metrics(tmp_path)


# --- one-line errors (exit 2) for the OSError family ----------------------------------


def test_path_errors_are_one_line_exit_2(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a directory")
    cases = [
        (train_cli.main, [*SMOKE, "--workdir", str(a_file)], "is not a directory"),
        (train_cli.main, [*SMOKE, "--workdir", str(a_file / "run")], "Not a directory"),
        (sweep_cli.main, ["collect", str(tmp_path), "--out", str(tmp_path)], "collect"),
        (
            train_cli.main,
            [
                "--config",
                "fashion_mnist_gan:smoke",
                "--workdir",
                str(tmp_path / "f"),
                "--config.data.idx_dir=/nonexistent/idx",
            ],
            "/nonexistent/idx",
        ),
    ]
    for main, argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "f").exists()


def test_fashion_mnist_absent_says_how_to_get_it_without_downloading(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REGAN_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    assert (
        train_cli.main(["--config", "fashion_mnist_gan:smoke", "--workdir", str(tmp_path / "f")])
        == 2
    )
    err = capsys.readouterr().err
    assert "REGAN_DATA_DIR" in err and err.count("\n") == 1
    assert experiments.load_config("fashion_mnist_gan").data.download is False


@pytest.mark.parametrize(
    "args, message",
    [
        (["--random", "-3"], "--random N needs N >= 0"),
        (["--seeds", "-1", "--dry-run"], "--seeds must be integers >= 0"),
    ],
)
def test_sweep_arguments_are_checked(tmp_path, capsys, args, message):
    assert (
        sweep_cli.main(["--config", "ring8_gan:smoke", "--workdir", str(tmp_path / "s"), *args])
        == 2
    )
    assert message in capsys.readouterr().err


# --- signals --------------------------------------------------------------------------


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_a_checkpoint_and_the_resumed_run_is_bitwise_equal(
    tmp_path, compile_cache, sig, code
):
    args = [
        *SMOKE,
        "--config.steps=400",
        "--config.log.checkpoint_every=0",
        "--config.log.samples_every=0",
    ]
    reference = _popen([*args, "--workdir", str(tmp_path / "ref")], compile_cache)
    assert reference.wait(timeout=300) == 0
    run = tmp_path / "run"
    stopped = _popen([*args, "--workdir", str(run)], compile_cache)
    deadline = time.time() + 240
    while not train.read_metrics(run) and time.time() < deadline:
        time.sleep(0.05)
    stopped.send_signal(sig)
    _, err = stopped.communicate(timeout=120)
    assert stopped.returncode == code, err
    assert err.strip().splitlines()[-1].startswith("stopped: interrupted by")
    saved = checkpoint.all_steps(str(run / workdir.CHECKPOINT_DIR))
    assert len(saved) == 1 and 0 < saved[0] < 400  # the step it reached, not a periodic one
    resumed = _popen([*args, "--workdir", str(run)], compile_cache)
    assert resumed.wait(timeout=300) == 0
    for name in ("ref", "run"):
        assert train.read_json(tmp_path / name / "summary.json")["steps"] == 400
    a, b = (np.load(tmp_path / n / "samples" / "final.npz")["samples"] for n in ("ref", "run"))
    np.testing.assert_array_equal(a, b)
    rows = [r["step"] for r in train.read_metrics(run)]
    assert rows == sorted(set(rows)) == list(range(3, 400, 3)) + [400]


# --- sweeps resume from the newest step every member has ------------------------------


def test_a_sweep_killed_between_member_saves_resumes_from_the_common_step(tmp_path):
    configs = [
        experiments.load_config(
            "ring8_gan:smoke",
            [("log.progress", "false"), ("penalty.d.kind", "l2"), ("penalty.d.strength", str(s))],
        )
        for s in (1e-3, 1e-1)
    ]
    reference = train.train_members(configs, [tmp_path / "r0", tmp_path / "r1"])
    dirs = [tmp_path / "m0", tmp_path / "m1"]
    train.train_members(configs, dirs)
    for d in dirs:  # as if killed after member 0 saved step 12 and before member 1 did
        (d / workdir.SUMMARY_FILE).unlink()
    checkpoint.remove_after(str(dirs[1] / workdir.CHECKPOINT_DIR), 6)
    resumed = train.train_members(configs, dirs)
    for got, want in zip(resumed, reference):
        chex.assert_trees_all_equal(got.params, want.params)
    for d in dirs:  # restarted from 6, not from 0
        assert checkpoint.all_steps(str(d / workdir.CHECKPOINT_DIR)) == [6, 12]


# --- files follow the umask, TensorBoard events ---------------------------------------


def test_files_follow_the_umask_and_tensorboard_events_are_written(finished):
    _, path, _ = finished
    mask = os.umask(0)
    os.umask(mask)
    for name in (
        workdir.CONFIG_FILE,
        workdir.METRICS_FILE,
        workdir.SUMMARY_FILE,
        "samples/final.npz",
        "samples/step_0000006.png",
    ):
        assert (path / name).stat().st_mode & 0o777 == 0o666 & ~mask, name
    events = list(path.glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    tags = _event_tags(events[0])
    assert {"d_loss", "g_loss", "penalty_g", "samples"} <= tags


def _event_tags(path) -> set:
    """Summary tags in a TensorBoard event file (TFRecord framing of Event protos)."""
    from tensorboardX.proto import event_pb2

    data, tags, offset = path.read_bytes(), set(), 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 8], "little")
        record = data[offset + 12 : offset + 12 + length]
        offset += 16 + length
        event = event_pb2.Event.FromString(record)
        tags |= {v.tag for v in event.summary.value}
    return tags


def test_a_saved_config_with_the_removed_model_kind_is_the_same_experiment(tmp_path):
    config = experiments.load_config("ring8_gan:smoke")
    saved = config_lib.to_json_dict(config)
    saved["model"]["kind"] = config.model_type  # written before model.kind was removed
    workdir.write_json(tmp_path / workdir.CONFIG_FILE, saved)
    workdir.check_same_experiment(tmp_path, config)  # resumes: no refusal
    saved["model"]["kind"] = "vae"
    workdir.write_json(tmp_path / workdir.CONFIG_FILE, saved)
    with pytest.raises(ValueError, match="model.kind 'vae' but model_type 'gan'"):
        workdir.check_same_experiment(tmp_path, config)


def test_a_saved_config_from_before_an_added_key_reads_as_its_old_behaviour(tmp_path):
    config = experiments.load_config("digits_gan:smoke")
    saved = config_lib.to_json_dict(config)
    del saved["model"]["g_output"]  # written before model.g_output existed: tanh
    workdir.write_json(tmp_path / workdir.CONFIG_FILE, saved)
    assert config_lib.from_json_dict(saved).model.g_output == "tanh"
    workdir.check_same_experiment(tmp_path, config)  # resumes: no refusal
    config_lib.override(config, "model.g_output", "linear")
    with pytest.raises(workdir.WorkdirError, match="model.g_output"):
        workdir.check_same_experiment(tmp_path, config)
