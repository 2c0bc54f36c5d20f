"""Several processes: the flags and environment that make one, and one training across two.

The end-to-end tests run ``python -m experiments.train`` (and ``sweep``) as
two processes on localhost (one CPU device each, gloo collectives) and as one
process with two forced CPU devices, and check the parameters are the same
(bitwise: the same two-device mesh and reduction) and that process 1 wrote
nothing; that a run whose processes were killed resumes to the uninterrupted
run's parameters; and that a process that dies or fails stops the other
within the failure bound, with one line naming it.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

import experiments
from experiments import sweep as sweep_cli
from experiments import train as train_cli
from experiments.study import sweeps
from regan_jax import parallel, sampling
from regan_jax.parallel import faults

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SLURM = {
    "SLURM_JOB_ID": "7",
    "SLURM_STEP_NODELIST": "node[01-02]",
    "SLURM_NTASKS": "2",
    "SLURM_PROCID": "1",
    "SLURM_LOCALID": "0",
}


@pytest.mark.parametrize(
    "environ,expected",
    [
        ({}, None),
        (SLURM, ("slurm", 2)),
        ({**SLURM, "SLURM_NTASKS": "1"}, None),  # one task: a job array's element
        ({k: v for k, v in SLURM.items() if k != "SLURM_STEP_NODELIST"}, None),  # sbatch, no srun
        (
            {
                "OMPI_MCA_orte_hnp_uri": "x",
                "OMPI_COMM_WORLD_SIZE": "4",
                "OMPI_COMM_WORLD_RANK": "0",
            },
            ("ompi", 4),
        ),
    ],
)
def test_launcher_processes(environ, expected):
    assert parallel.launcher_processes(environ) == expected


def test_distributed_settings():
    explicit = parallel.distributed_settings("host0:1234", 2, 1, environ={})
    assert explicit == {"coordinator_address": "host0:1234", "num_processes": 2, "process_id": 1}
    assert parallel.distributed_settings(environ={}) is None
    assert parallel.distributed_settings(environ=SLURM) == {}  # JAX reads SLURM itself
    assert parallel.distributed_settings(num_processes=1, environ=SLURM) is None  # opt out
    assert parallel.distributed_settings("h:1", 2, 0, environ=SLURM)["process_id"] == 0


@pytest.mark.parametrize(
    "args,message",
    [
        ((None, None, 1), r"process_id=1 given without num_processes"),
        (("h:1", None, None), r"coordinator='h:1' given without num_processes"),
        ((None, 2, 0), r"num_processes=2 needs coordinator too"),
        (("h:1", 2, None), r"num_processes=2 needs process_id too"),
        (("h:1", 2, 2), r"process_id=2 with num_processes=2: expected 0 <= process_id < 2"),
        (("h:1", 2, -1), r"process_id=-1"),
        (("h", 2, 0), r"coordinator must be 'host:port'.*got 'h'"),
        (("h:99999", 2, 0), r"got 'h:99999'"),
        ((None, 0, None), r"num_processes=0: expected an integer >= 1"),
        (("h:1", 1, 0), r"num_processes=1 with coordinator='h:1'"),
    ],
)
def test_bad_combinations_name_the_values(args, message):
    with pytest.raises(ValueError, match=message):
        parallel.distributed_settings(*args, environ={})


@pytest.mark.parametrize(
    "text,expected",
    [
        ("members=2,batch=2", parallel.MeshShape(2, 2)),
        ("members=4", parallel.MeshShape(4, 1)),
        ("data=4", parallel.MeshShape(1, 4)),
        (" batch=2 , members=3 ", parallel.MeshShape(3, 2)),
    ],
)
def test_parse_mesh(text, expected):
    assert parallel.parse_mesh(text) == expected


@pytest.mark.parametrize(
    "text,message",
    [
        ("members=2,members=2", "each axis once"),
        ("rows=2", "axes members and batch"),
        ("members=0", "members='0', expected an integer >= 1"),
        ("2x2", "AXIS=SIZE"),
        ("", "members=M"),
    ],
)
def test_parse_mesh_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        parallel.parse_mesh(text)


def test_one_process_helpers_are_plain():
    tree = {"a": np.arange(3.0), "k": jax.random.key(1)}
    assert parallel.broadcast(tree) is tree and parallel.fetch(tree) is tree
    assert parallel.on_main_process(lambda: 5) == 5 and parallel.is_main_process()
    assert parallel.any_process(True) and not parallel.any_process(False)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--num-processes", "2", "--process-id", "0"], "num_processes=2 needs coordinator"),
        (
            ["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "3"],
            "process_id=3",
        ),
        (["--process-id", "1"], "given without num_processes"),
        (["--mesh", "members=two"], "--mesh: mesh 'members=two'"),
        (["--process-timeout", "1"], "--process-timeout: process timeout 1: expected an integer"),
    ],
)
@pytest.mark.parametrize("cli", ["train", "sweep"])
def test_cli_refuses_bad_flags_before_writing(tmp_path, capsys, flags, message, cli):
    workdir = tmp_path / "run"
    main = train_cli.main if cli == "train" else sweep_cli.main
    assert main(["--config", "ring8_gan:smoke", "--workdir", str(workdir), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not workdir.exists()


def test_sweep_checks_every_group_against_the_mesh_first(tmp_path):
    members = sweep_cli.members_from_args(
        sweep_cli.parse_run_args(
            [
                "--config",
                "ring8_gan:smoke",
                "--workdir",
                str(tmp_path),
                "--penalties",
                "l2",
                "--strengths",
                "1e-3,1e-2,1e-1",
                "--targets",
                "d",
            ]
        )[0],
        [],
    )
    assert len(members) == 3
    with pytest.raises(ValueError, match="members=2 does not divide the group of 3 members"):
        sweeps.run_members(members, tmp_path, mesh=parallel.MeshShape(2, 1), log=lambda _: 0)
    assert not any(tmp_path.iterdir())
    assert isinstance(experiments.UsageError("x"), ValueError)


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env(devices):
    return dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        PYTHONPATH=ROOT,
        JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
    )


def _train(workdir, *flags, devices=1, command="train"):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            f"experiments.{command}",
            "--config",
            "ring8_gan:smoke",
            "--workdir",
            str(workdir),
            "--no-progress",
            *flags,
        ],
        env=_env(devices),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _two_processes(workdir, *flags, command="train"):
    """Processes 0 and 1 of one run; process 1 is given ``workdir``_p1 (it must write nothing)."""
    port = _free_port()
    return [
        _train(
            workdir if i == 0 else workdir.with_name(workdir.name + "_p1"),
            "--coordinator",
            f"localhost:{port}",
            "--num-processes",
            "2",
            "--process-id",
            str(i),
            *flags,
            command=command,
        )
        for i in range(2)
    ]


def _wait_for(condition, processes, timeout=600):
    """Polls ``condition()`` until true; fails if a process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert all(p.poll() is None for p in processes), [p.communicate()[0] for p in processes]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _kill(processes):
    """Kills those still running and reads what is left of their output."""
    for p in processes:
        if p.poll() is None:
            p.kill()
        if not p.stdout.closed:
            p.communicate()


def _assert_same_params(expected_dir, got_dir):
    one, two = sampling.load_run(expected_dir), sampling.load_run(got_dir)
    assert int(one.state.step) == int(two.state.step) == one.config.steps
    expected, got = (jax.tree.leaves(r.state.params) for r in (one, two))
    assert len(expected) == len(got) > 0
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(e))


def _rows(workdir):
    with open(workdir / "metrics.jsonl") as f:
        return [{k: v for k, v in json.loads(line).items() if k != "wall_s"} for line in f]


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    """``experiments.train`` over 2 processes (1 CPU device each) equals 1 process with 2 devices.

    Same global batch of 32 rows on the same 2-device mesh, so the same
    parameters and metrics, bitwise; process 0 writes the whole run directory
    and process 1 nothing (it was given its own, which must not appear).
    """
    port = _free_port()
    workers = [
        _train(
            tmp_path / ("two" if i == 0 else "two_p1"),
            "--coordinator",
            f"localhost:{port}",
            "--num-processes",
            "2",
            "--process-id",
            str(i),
        )
        for i in range(2)
    ]
    single = _train(tmp_path / "one", devices=2)
    outputs = [p.communicate(timeout=600)[0] for p in [*workers, single]]
    assert [p.returncode for p in [*workers, single]] == [0, 0, 0], outputs
    assert "done:" in outputs[0] and "done:" not in outputs[1]
    assert not (tmp_path / "two_p1").exists()

    one, two = sampling.load_run(tmp_path / "one"), sampling.load_run(tmp_path / "two")
    assert int(one.state.step) == int(two.state.step) == one.config.steps == 12
    expected, got = (jax.tree.leaves(r.state.params) for r in (one, two))
    assert len(expected) == len(got) > 0
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(e))
    initial = jax.tree.leaves(one.program.init(jax.random.key(one.config.seed)).params)
    assert not all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(initial, got))
    assert _rows(tmp_path / "two") == _rows(tmp_path / "one")
    assert {p.name for p in (tmp_path / "two").iterdir()} >= {
        "config.json",
        "metrics.jsonl",
        "summary.json",
        "checkpoints",
        "samples",
    }


def test_process_timeout_is_checked():
    assert faults.check_timeout(2) == 2 and faults.check_timeout(600) == 600
    for bad in (1, 0, -5, 2.5, "10", True, None):
        with pytest.raises(ValueError, match="expected an integer number of seconds >= 2"):
            faults.check_timeout(bad)
    assert faults.beat_interval(2) == 0.2 and faults.beat_interval(10) == 1.0
    assert faults.beat_interval(60) == 1.0 and faults.beat_interval(5) == 0.5


# The failure bound of the fault tests: the survivor must be gone within 3x of it (the
# watch decides at half of it; the rest is slack for a loaded 2-core machine).
TIMEOUT_S = 10
LONG = ["--config.steps=100000", "--config.log.every=5", f"--process-timeout={TIMEOUT_S}"]


def _error_lines(output):
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.mark.slow
def test_a_killed_process_stops_the_other_naming_it(tmp_path):
    """Process 1 SIGKILLed mid-run: process 0 exits non-zero within 3 T, one line naming 1.

    Without the watch, process 0 waits JAX's 100 s heartbeat timeout at its
    shutdown barrier and dies by SIGABRT with some 80 lines of tracebacks and
    C++ logs. Measured latency (kill to exit): see the closing note.
    """
    workers = _two_processes(tmp_path / "run", *LONG)
    try:
        _wait_for(lambda: bool(_rows_or_none(tmp_path / "run")), workers)
        workers[1].kill()
        killed = time.monotonic()
        output = workers[0].communicate(timeout=10 * TIMEOUT_S)[0]
        latency = time.monotonic() - killed
        print(f"process 0 exited {latency:.1f} s after process 1 was killed")
    finally:
        _kill(workers)
    assert workers[0].returncode == faults.PEER_EXIT, output
    assert latency < 3 * TIMEOUT_S, (latency, output)
    lines = _error_lines(output)
    assert len(lines) == 1 and lines[0].startswith(
        "error: process 1 of 2 stopped responding for "
    ), output
    assert "Traceback" not in output and "Check failure" not in output, output


@pytest.mark.slow
def test_a_failing_process_stops_the_other_with_its_line(tmp_path):
    """Process 0 fails (its metrics.jsonl replaced by a directory): both exit 2 at once.

    Process 0 prints its one line and records it; process 1 prints it after
    ``process 0 of 2 failed:``. Without the watch, process 1 waits in a
    collective until JAX's timeouts and aborts.
    """
    workers = _two_processes(tmp_path / "run", *LONG)
    metrics = tmp_path / "run" / "metrics.jsonl"
    try:
        _wait_for(lambda: bool(_rows_or_none(tmp_path / "run")), workers)
        metrics.unlink()
        metrics.mkdir()
        broken = time.monotonic()
        outputs = [p.communicate(timeout=10 * TIMEOUT_S)[0] for p in workers]
        latency = time.monotonic() - broken
        print(f"both processes exited {latency:.1f} s after process 0's metrics were broken")
    finally:
        _kill(workers)
    assert [p.returncode for p in workers] == [2, 2], outputs
    assert latency < 3 * TIMEOUT_S, (latency, outputs)
    (own,) = _error_lines(outputs[0])
    assert "Is a directory" in own and str(metrics) in own, outputs[0]
    assert _error_lines(outputs[1]) == [
        f"error: process 0 of 2 failed: {own.removeprefix('error: ')}"
    ], outputs[1]
    assert "Traceback" not in "".join(outputs), outputs


def _rows_or_none(workdir):
    try:
        return _rows(workdir)
    except (FileNotFoundError, IsADirectoryError, json.JSONDecodeError):
        return None


@pytest.mark.slow
def test_two_processes_killed_and_resumed_equal_an_uninterrupted_run(tmp_path):
    """Both processes SIGKILLed after the first checkpoint; the resumed run is bitwise the same.

    The same 2-process run trains uninterrupted beside it; parameters and
    metrics rows (but wall time) are equal, and process 1 wrote nothing.
    """
    flags = [
        "--config.steps=1000",
        "--config.log.every=100",
        "--config.log.checkpoint_every=100",
        "--config.log.samples_every=0",
        "--config.eval.fd_every=0",
    ]
    whole = _two_processes(tmp_path / "whole", *flags)
    killed = _two_processes(tmp_path / "killed", *flags)
    checkpoints = tmp_path / "killed" / "checkpoints"
    try:
        _wait_for(lambda: (checkpoints / "100").is_dir(), killed)
        for p in killed:
            p.send_signal(signal.SIGKILL)
        _kill(killed)
        steps = sorted(int(d.name) for d in checkpoints.iterdir() if d.name.isdigit())
        assert steps and steps[-1] < 1000, steps  # Killed mid-run, after a checkpoint.
        resumed = _two_processes(tmp_path / "killed", *flags)
        outputs = [p.communicate(timeout=600)[0] for p in [*whole, *resumed]]
    finally:
        _kill([*whole, *killed])
    assert [p.returncode for p in [*whole, *resumed]] == [0] * 4, outputs
    _assert_same_params(tmp_path / "whole", tmp_path / "killed")
    assert _rows(tmp_path / "killed") == _rows(tmp_path / "whole")
    assert not (tmp_path / "killed_p1").exists() and not (tmp_path / "whole_p1").exists()


@pytest.mark.slow
def test_a_sweep_group_split_over_two_processes_trains_like_one_process(tmp_path):
    """A 2-member group, one member per process (1 device each), equals 1 process with 2 devices.

    The default mesh puts the members over all devices (members=2), so each
    process trains one member; process 0 writes both member directories.
    """
    flags = ["--penalties", "l2", "--targets", "d", "--strengths", "1e-3,1e-1", "--seeds", "0"]
    workers = _two_processes(tmp_path / "two", *flags, command="sweep")
    single = _train(tmp_path / "one", *flags, devices=2, command="sweep")
    outputs = [p.communicate(timeout=600)[0] for p in [*workers, single]]
    assert [p.returncode for p in [*workers, single]] == [0, 0, 0], outputs
    assert not (tmp_path / "two_p1").exists()
    members = sorted(d.name for d in (tmp_path / "one").iterdir() if d.is_dir())
    assert len(members) == 2
    assert sorted(d.name for d in (tmp_path / "two").iterdir() if d.is_dir()) == members
    for name in members:
        _assert_same_params(tmp_path / "one" / name, tmp_path / "two" / name)
        assert _rows(tmp_path / "two" / name) == _rows(tmp_path / "one" / name)
        summary = json.loads((tmp_path / "two" / name / "summary.json").read_text())
        assert summary["sweep_members"] == 2


class _Store:
    """The coordination service's key-value store, as the watch uses it; ``gone``: unreachable."""

    def __init__(self, **items):
        self.items, self.gone = dict(items), False

    def key_value_set(self, key, value, allow_overwrite=False):
        if self.gone:
            raise RuntimeError("UNAVAILABLE: Socket closed")
        assert allow_overwrite or key not in self.items
        self.items[key] = value

    def key_value_dir_get(self, prefix):
        if self.gone:
            raise RuntimeError("UNAVAILABLE: Socket closed")
        return [(k, v) for k, v in self.items.items() if k.startswith(prefix)]


class _Exited(Exception):
    """Raised where the watch would end the process."""


@pytest.fixture
def exits(monkeypatch):
    """The ``(code, line)`` the watch ends the process with (raising _Exited instead)."""
    calls = []

    def record(code, line=None):
        calls.append((code, line))
        raise _Exited

    monkeypatch.setattr(faults, "_exit", record)
    return calls


def test_watch_names_a_peer_whose_beats_stop(exits):
    store = _Store()
    watch = faults._Watch(store, 0, 3, timeout_s=2)
    start = time.monotonic()
    with pytest.raises(_Exited):
        watch.run()  # Process 1 and 2 never beat: taken for dead after T / 2 = 1 s.
    assert 1.0 <= time.monotonic() - start < 5
    ((code, line),) = exits
    assert code == faults.PEER_EXIT
    assert re.fullmatch(
        r"error: process 1 of 3 stopped responding for \d+ s "
        r"\(killed, crashed or hung\); stopping",
        line,
    ), line
    assert int(store.items["regan_jax/beat/0"]) >= 5  # Every 0.2 s, T / 10.


def test_watch_repeats_a_failed_peer_line_with_its_code(exits):
    store = _Store(**{"regan_jax/failed/2": json.dumps([2, "error: disk full"])})
    with pytest.raises(_Exited):
        faults._Watch(store, 1, 3, timeout_s=60).run()
    assert exits == [(2, "error: process 2 of 3 failed: disk full")]
    assert store.items["regan_jax/seen/2/1"] == "1"  # Process 2 may exit now.
    with pytest.raises(_Exited):  # Its own record is no verdict for itself.
        faults._Watch(store, 2, 3, timeout_s=2).run()
    assert exits[1][1].startswith("error: process 0 of 3 stopped responding"), exits


def test_a_leaving_process_waits_until_every_other_saw_its_record(exits):
    store = _Store(**{"regan_jax/seen/0/1": "1", "regan_jax/seen/0/2": "1"})
    watch = faults._Watch(store, 0, 3, timeout_s=60)
    watch.claim()
    start = time.monotonic()
    with pytest.raises(_Exited):
        watch.leave(2, "error: bad config")
    assert time.monotonic() - start < 5 and exits == [(2, None)]
    assert json.loads(store.items["regan_jax/failed/0"]) == [2, "error: bad config"]
    watch.stop(1, "a second verdict")  # Claimed: the watch says nothing more.
    assert exits == [(2, None)]
    alone = faults._Watch(_Store(), 0, 2, timeout_s=2)  # Nobody sees it: it waits T / 2.
    start = time.monotonic()
    with pytest.raises(_Exited):
        alone.leave(1, "error: crash")
    assert 1.0 <= time.monotonic() - start < 5 and exits[-1] == (1, None)


def test_watch_is_silent_when_the_service_goes_at_exit(exits):
    store = _Store()
    store.gone = True
    watch = faults._Watch(store, 1, 2, timeout_s=10)
    watch.leaving = True
    watch.run()
    assert exits == []
    with pytest.raises(_Exited):
        faults._Watch(store, 1, 2, timeout_s=10).run()
    assert exits == [
        (
            faults.PEER_EXIT,
            ("error: process 1 of 2 lost the coordinator (process 0): UNAVAILABLE: Socket closed"),
        )
    ]


def test_a_failing_process_blames_itself_once_the_others_are_seen_alive(exits):
    """await_verdict: two beats when the peer beats; T / 2 (the watch's verdict) when it is dead."""
    store = _Store()
    watch = faults._Watch(store, 0, 2, timeout_s=4)  # Beats every 0.4 s, dead after 2 s.

    def run():
        with contextlib.suppress(_Exited):
            watch.run()

    thread = threading.Thread(target=run, daemon=True)
    alive = threading.Event()

    def peer():  # Process 1 beats until told to stop.
        beat = 0
        while not alive.is_set():
            beat += 1
            store.key_value_set("regan_jax/beat/1", str(beat), allow_overwrite=True)
            time.sleep(0.2)

    peer_thread = threading.Thread(target=peer, daemon=True)
    peer_thread.start()
    thread.start()
    start = time.monotonic()
    watch.await_verdict()
    assert time.monotonic() - start < 1.5 and exits == []
    alive.set()  # Process 1 dies: the watch names it, and await_verdict never returns.
    peer_thread.join()
    # Once the watch has seen the peer's last beat, no beat comes after a new wait starts
    # (without this, a beat written just before the death counted as a sign of life).
    last = store.items["regan_jax/beat/1"]
    seen_by = time.monotonic() + 5
    while watch._seen[1][0] != last and time.monotonic() < seen_by:
        time.sleep(0.05)
    waiter = threading.Thread(target=watch.await_verdict, daemon=True)
    waiter.start()
    thread.join(timeout=10)
    assert not thread.is_alive() and waiter.is_alive()
    ((code, line),) = exits
    assert code == faults.PEER_EXIT and line.startswith("error: process 1 of 2 stopped responding")
