"""Faults a long study meets (issue 26), each test the reproduction of a failure on main at
2550e99: a corrupt newest checkpoint, an environment error during a save, a config file that
fails to load, preemption, large groups, and the small items (a resumed member's
``sweep_members``, non-UTF-8 workdirs, downloads)."""

import inspect
import logging
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys

import chex
import pytest

import experiments
from experiments import sample as sample_cli
from experiments import train as train_cli
from regan_jax import checkpoint, data, program, sweep, train, workdir

ROOT = pathlib.Path(__file__).resolve().parent.parent
SMOKE = ["--config", "ring8_gan:smoke", "--no-progress"]


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


# --- config files that fail to load -------------------------------------------------


@pytest.mark.parametrize(
    "body, expected",
    [
        ("def get_config(arg=None)\n    return 1\n", "line 1: SyntaxError"),
        ("import no_such_module_for_regan\n", "line 1: ModuleNotFoundError: No module named"),
        (
            "def get_config(arg=None):\n    x = 1\n    raise RuntimeError('boom')\n",
            "line 3: RuntimeError: boom",
        ),
        ("def get_config(arg=None):\n    return None\n", "get_config() returned NoneType"),
        ("X = 1\n", "defines no get_config()"),
    ],
)
def test_a_config_file_that_fails_to_load_is_one_line_exit_2(tmp_path, capsys, body, expected):
    config = tmp_path / "broken.py"
    config.write_text(body)
    run = tmp_path / "run"
    assert train_cli.main(["--config", str(config), "--workdir", str(run)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(config) in line and expected in line, line
    assert not run.exists()


# --- a damaged newest checkpoint ------------------------------------------------------


def _config(*overrides):
    return experiments.load_config(
        "ring8_gan:smoke", [("log.progress", "false"), ("steps", "18"), *overrides]
    )


def _damage(step_dir: pathlib.Path, kind: str) -> None:
    state = step_dir / "state"
    if kind == "truncated":
        for f in (state / "d").iterdir():
            with open(f, "r+b") as handle:
                handle.truncate(10)
    elif kind == "garbled_metadata":
        (state / "_METADATA").write_text("{not json")
    elif kind == "no_state":
        shutil.rmtree(state)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted ring8 smoke run of 18 steps (checkpoints 6, 12, 18)."""
    path = tmp_path_factory.mktemp("reference")
    return path, train.train_and_evaluate(_config(), path)


@pytest.mark.parametrize("kind", ["truncated", "garbled_metadata", "no_state"])
def test_a_damaged_newest_checkpoint_is_moved_aside_for_the_one_before(reference, tmp_path, kind):
    directory = tmp_path / "checkpoints"
    shutil.copytree(reference[0] / workdir.CHECKPOINT_DIR, directory)
    _damage(directory / "18", kind)
    template = program.init_member(program.build_program(_config()), _config())
    with pytest.warns(
        RuntimeWarning, match=r"checkpoint 18 .* moved to .*\.corrupt/18.*using checkpoint 12"
    ):
        step, state, _ = checkpoint.restore_readable(str(directory), [6, 12, 18], template)
    assert step == 12 and int(state.step) == 12
    assert checkpoint.all_steps(str(directory)) == [6, 12]
    assert (
        directory / checkpoint.CORRUPT_DIR / "18" / "state" / "d"
    ).exists() or kind != "truncated"
    assert (directory / checkpoint.CORRUPT_DIR / "18").is_dir()


def test_a_run_resumes_bitwise_from_the_checkpoint_before_a_damaged_one(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference[0], run)
    (run / workdir.SUMMARY_FILE).unlink()
    _damage(run / workdir.CHECKPOINT_DIR / "18", "truncated")
    leftover = run / workdir.CHECKPOINT_DIR / "24.orbax-checkpoint-tmp-123"
    leftover.mkdir()
    with pytest.warns(RuntimeWarning, match="checkpoint 18"):
        resumed = train.train_and_evaluate(_config(), run)
    chex.assert_trees_all_equal(resumed.params, reference[1].params)
    chex.assert_trees_all_equal(resumed.opt_state, reference[1].opt_state)
    assert not leftover.exists()
    assert (run / workdir.CHECKPOINT_DIR / checkpoint.CORRUPT_DIR / "18").is_dir()
    assert checkpoint.all_steps(str(run / workdir.CHECKPOINT_DIR)) == [6, 12, 18]
    assert [r["step"] for r in train.read_metrics(run)] == [
        r["step"] for r in train.read_metrics(reference[0])
    ]


def test_sample_skips_a_damaged_checkpoint_without_moving_it(reference, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(reference[0], run)
    _damage(run / workdir.CHECKPOINT_DIR / "18", "truncated")
    before = sorted(p.name for p in (run / workdir.CHECKPOINT_DIR).iterdir())
    with pytest.warns(RuntimeWarning, match="checkpoint 18"):
        assert (
            sample_cli.main(
                ["--workdir", str(run), "--num", "4", "--out", str(tmp_path / "grid.png")]
            )
            == 0
        )
    assert "(step 12)" in capsys.readouterr().out
    assert sorted(p.name for p in (run / workdir.CHECKPOINT_DIR).iterdir()) == before


def test_no_readable_checkpoint_is_one_line_and_nothing_moves(reference, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(reference[0], run)
    (run / workdir.SUMMARY_FILE).unlink()
    for step in (6, 12, 18):
        _damage(run / workdir.CHECKPOINT_DIR / str(step), "garbled_metadata")
    args = [*SMOKE, "--config.steps=18", "--config.log.progress=false", "--workdir", str(run)]
    assert train_cli.main(args) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "no checkpoint in" in line and "can be read" in line, line
    assert checkpoint.all_steps(str(run / workdir.CHECKPOINT_DIR)) == [6, 12, 18]
    assert not (run / workdir.CHECKPOINT_DIR / checkpoint.CORRUPT_DIR).exists()


def test_an_intact_checkpoint_of_other_shapes_is_refused_as_a_different_experiment(
    reference, tmp_path
):
    directory = tmp_path / "checkpoints"
    shutil.copytree(reference[0] / workdir.CHECKPOINT_DIR, directory)
    wider = _config(("model.g_width", "16"))
    template = program.init_member(program.build_program(wider), wider)
    with pytest.raises(checkpoint.CheckpointMismatch, match="different experiment"):
        checkpoint.restore_readable(str(directory), [6, 12, 18], template)
    assert checkpoint.all_steps(str(directory)) == [6, 12, 18]


# --- environment errors during a save -------------------------------------------------


@pytest.fixture
def small_filesystem(tmp_path):
    """A 200 KiB tmpfs (root only): room for the config, metrics and one checkpoint."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_during_a_save_is_one_line_exit_2_and_resumable(small_filesystem, tmp_path):
    run = small_filesystem / "run"
    args = [
        sys.executable,
        "-m",
        "experiments.train",
        *SMOKE,
        "--config.steps=60",
        "--config.log.samples_every=0",
    ]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    full = subprocess.run(
        [*args, "--workdir", str(run)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert full.returncode == 2, full.stderr
    line = _one_error_line(full.stderr)
    assert line.endswith(": No space left on device") and f"{run}/checkpoints/" in line, line
    left = os.listdir(run / workdir.CHECKPOINT_DIR)
    assert not [n for n in left if "tmp" in n], left  # the partial save is gone
    moved = tmp_path / "moved"  # the same run, given room
    shutil.copytree(run, moved)
    resumed = subprocess.run(
        [*args, "--workdir", str(moved)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert train.read_json(moved / workdir.SUMMARY_FILE)["steps"] == 60


@pytest.mark.parametrize(
    "raised",
    [
        ValueError(
            'RESOURCE_EXHAUSTED: Error writing local file "/w/checkpoints/3.tmp/x": '
            "Failed to write: No space left on device [os_error_code='28']"
        ),
        ExceptionGroup("save", [RuntimeError("other"), PermissionError(13, "no", "/w/c/3/x")]),
    ],
)
def test_environment_errors_are_found_wherever_orbax_puts_them(raised):
    try:
        try:
            raise raised
        except Exception as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError as outer:
        found = checkpoint.environment_error(outer)
    assert isinstance(found, OSError) and found.errno in (28, 13)
    assert found.filename.startswith("/w/") and found.strerror == os.strerror(found.errno)
    assert checkpoint.environment_error(ValueError("shape mismatch")) is None


# --- preemption ----------------------------------------------------------------------


def _sweep_configs(n=2):
    return [
        _config(
            ("steps", "30"),
            ("log.checkpoint_every", "0"),
            ("log.samples_every", "0"),
            ("penalty.d.kind", "l2"),
            ("penalty.d.strength", str(s)),
        )
        for s in (1e-3, 1e-1, 1e-2, 1e-4)[:n]
    ]


def test_a_signal_during_set_up_stops_before_training_and_saves_nothing(tmp_path, monkeypatch):
    calls = []

    def init_and_signal(program_, config):  # SIGTERM arrives while the members are set up
        calls.append(config.seed)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return init_member(program_, config)

    init_member = program.init_member
    monkeypatch.setattr(program, "init_member", init_and_signal)
    dirs = [tmp_path / "m0", tmp_path / "m1"]
    with pytest.raises(train.Interrupted, match="during set-up") as stopped:
        train.train_members(_sweep_configs(), dirs)
    assert stopped.value.signum == signal.SIGTERM and stopped.value.step is None
    assert len(calls) == 1  # the second member was not set up
    for d in dirs:
        assert not train.read_metrics(d)
        assert not checkpoint.all_steps(str(d / workdir.CHECKPOINT_DIR))


def test_a_signal_saves_a_group_as_one_checkpoint_and_the_resume_is_bitwise(tmp_path, monkeypatch):
    configs = _sweep_configs()
    reference = train.train_members(configs, [tmp_path / "r0", tmp_path / "r1"])
    dirs = [tmp_path / "m0", tmp_path / "m1"]
    advance = train._Stream.advance

    def advance_and_signal(self, state, n):  # SIGTERM arrives during step 7
        state, metrics = advance(self, state, n)
        if int(sweep.member(state, 0).step) == 7:
            os.kill(os.getpid(), signal.SIGTERM)
        return state, metrics

    monkeypatch.setattr(train._Stream, "advance", advance_and_signal)
    saves = []
    save = checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda d, *a, **k: (saves.append(d), save(d, *a, **k)))
    with pytest.raises(train.Interrupted, match="at step 7"):
        train.train_members(configs, dirs)
    assert saves == [str(dirs[0] / train.GROUP_CHECKPOINT_DIR)]  # one save, not one per member
    monkeypatch.undo()
    resumed = train.train_members(configs, dirs)
    for got, want in zip(resumed, reference):
        chex.assert_trees_all_equal(got.params, want.params)
        chex.assert_trees_all_equal(got.opt_state, want.opt_state)
    assert not (dirs[0] / train.GROUP_CHECKPOINT_DIR).exists()
    for d, r in zip(dirs, ("r0", "r1")):
        assert [x["step"] for x in train.read_metrics(d)] == [
            x["step"] for x in train.read_metrics(tmp_path / r)
        ]


def test_a_member_finished_after_a_kill_between_summaries_records_its_group(tmp_path):
    configs = _sweep_configs(3)
    dirs = [tmp_path / f"m{i}" for i in range(3)]
    train.train_members(configs, dirs)
    (dirs[2] / workdir.SUMMARY_FILE).unlink()  # killed before the last member's summary
    train.train_members(configs[2:], dirs[2:])
    assert train.read_json(dirs[2] / workdir.SUMMARY_FILE)["sweep_members"] == 3


# --- large groups ---------------------------------------------------------------------


def test_a_group_holds_one_descriptor_for_its_locks_and_refuses_a_member_in_use(tmp_path):
    dirs = [tmp_path / f"m{i}" for i in range(200)]
    before = len(os.listdir("/proc/self/fd"))
    with workdir.lock_group(dirs):
        assert len(os.listdir("/proc/self/fd")) == before + 1
        script = (
            "import sys; from regan_jax import workdir\n"
            "for dirs in ([sys.argv[1]], sys.argv[1:]):\n"
            "    try:\n"
            "        with workdir.lock_group(dirs): print('taken')\n"
            "    except workdir.WorkdirError as e: print(e)\n"
        )
        other = subprocess.run(
            [sys.executable, "-c", script, str(dirs[7]), str(tmp_path / "free")],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        lines = other.stdout.splitlines()
        assert len(lines) == 2, other.stderr
        assert all(f"in use by another run (pid {os.getpid()})" in x for x in lines), lines
    with workdir.lock(dirs[7]):  # released with the group
        pass


def test_a_group_beyond_the_open_file_limit_is_refused_with_the_numbers(tmp_path):
    limit = "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (400, 400))\n"
    script = limit + "import sys; from experiments import sweep; sys.exit(sweep.main(sys.argv[1:]))"
    sweep_dir = tmp_path / "sweep"
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "--config",
            "ring8_gan:smoke",
            "--workdir",
            str(sweep_dir),
            "--penalties",
            "l2",
            "--targets",
            "d",
            "--strengths",
            "1e-3",
            "--seeds",
            ",".join(map(str, range(150))),
            "--max-members",
            "150",
            "--no-progress",
        ],
        cwd=ROOT,
        env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    line = _one_error_line(run.stderr)
    assert "150 members needs about 578 open files" in line and "ulimit -n 400" in line, line
    assert not list(sweep_dir.glob("*/*"))  # no member directory holds anything


def test_a_group_beyond_the_memory_available_is_refused_with_the_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "_available_memory", lambda: 2**14)
    with pytest.raises(
        ValueError,
        match=r"2 members needs about [\d.]+ KiB of memory .* more "
        r"than the 16.0 KiB available",
    ):
        train.train_members(_sweep_configs(), [tmp_path / "m0", tmp_path / "m1"])
    assert not (tmp_path / "m0").exists()


# --- the small items ------------------------------------------------------------------


def test_a_workdir_path_that_is_not_utf8_is_refused_up_front(tmp_path, capsys):
    run = os.fsdecode(os.fsencode(str(tmp_path)) + b"/run-\xff")
    assert train_cli.main([*SMOKE, "--workdir", run]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "run-\\xff" in line and "not a valid UTF-8 path" in line, line
    assert not os.listdir(tmp_path)


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to open a network connection fails the test."""
    attempts = []

    def connect(sock, address):
        attempts.append(address)
        raise AssertionError(f"network attempt to {address}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    yield attempts
    assert not attempts, attempts


def test_an_absent_catalog_dataset_is_a_clear_error_not_a_download(tmp_path, no_network):
    with pytest.raises(
        FileNotFoundError,
        match=r"'cifar10' is not prepared under .* "
        "downloads are off",
    ):
        data.load("cifar10", "train", data_dir=str(tmp_path))
    assert inspect.signature(data.load).parameters["download"].default is False


def test_a_first_run_prepares_the_bundled_data_without_tfds_messages(
    tmp_path, capfd, caplog, no_network
):
    caplog.set_level(logging.DEBUG, logger="absl")
    for _ in range(2):  # preparing, then reading the prepared copy
        dataset = data.load("digits", "train", data_dir=str(tmp_path))
    assert len(dataset.images) == 1500
    out, err = capfd.readouterr()
    assert "downloaded and prepared" not in out + err and "Downloading" not in out + err
    assert "absl" not in err and "examples" not in err, err
    # pytest's log capture takes absl's records before they reach stderr: none at WARNING
    # or above ("Using custom data configuration" on the command line).
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_signal_during_the_members_periodic_saves_makes_the_group_checkpoint(
    tmp_path, monkeypatch
):
    configs = _sweep_configs()
    for c in configs:
        c.log.checkpoint_every = 6
    dirs = [tmp_path / "m0", tmp_path / "m1"]
    saves = []
    save = checkpoint.save

    def save_and_signal(directory, step, *args, **kwargs):  # SIGTERM during member 0's save
        saves.append((directory, step))
        save(directory, step, *args, **kwargs)
        if step == 12 and directory == str(dirs[0] / workdir.CHECKPOINT_DIR):
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(checkpoint, "save", save_and_signal)
    with pytest.raises(train.Interrupted, match="at step 12"):
        train.train_members(configs, dirs)
    assert saves[-2:] == [
        (str(dirs[0] / workdir.CHECKPOINT_DIR), 12),
        (str(dirs[0] / train.GROUP_CHECKPOINT_DIR), 12),
    ]
    monkeypatch.undo()
    resumed = train.train_members(configs, dirs)
    reference = train.train_members(configs, [tmp_path / "r0", tmp_path / "r1"])
    for got, want in zip(resumed, reference):
        chex.assert_trees_all_equal(got.params, want.params)
