"""Several processes: the flags and environment that make one, and one training across two.

The end-to-end test runs ``python -m experiments.train`` as two processes on
localhost (one CPU device each, gloo collectives) and as one process with two
forced CPU devices, and checks the parameters are the same (bitwise: the same
two-device mesh and reduction) and that process 1 wrote nothing.
"""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import experiments
from experiments import sweep as sweep_cli
from experiments import train as train_cli
from experiments.study import sweeps
from regan_jax import parallel, sampling

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SLURM = {"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "node[01-02]", "SLURM_NTASKS": "2",
         "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}


@pytest.mark.parametrize("environ,expected", [
    ({}, None),
    (SLURM, ("slurm", 2)),
    ({**SLURM, "SLURM_NTASKS": "1"}, None),  # one task: a job array's element
    ({k: v for k, v in SLURM.items() if k != "SLURM_STEP_NODELIST"}, None),  # sbatch, no srun
    ({"OMPI_MCA_orte_hnp_uri": "x", "OMPI_COMM_WORLD_SIZE": "4",
      "OMPI_COMM_WORLD_RANK": "0"}, ("ompi", 4)),
])
def test_launcher_processes(environ, expected):
    assert parallel.launcher_processes(environ) == expected


def test_distributed_settings():
    explicit = parallel.distributed_settings("host0:1234", 2, 1, environ={})
    assert explicit == {"coordinator_address": "host0:1234", "num_processes": 2,
                        "process_id": 1}
    assert parallel.distributed_settings(environ={}) is None
    assert parallel.distributed_settings(environ=SLURM) == {}  # JAX reads SLURM itself
    assert parallel.distributed_settings(num_processes=1, environ=SLURM) is None  # opt out
    assert parallel.distributed_settings("h:1", 2, 0, environ=SLURM)["process_id"] == 0


@pytest.mark.parametrize("args,message", [
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
])
def test_bad_combinations_name_the_values(args, message):
    with pytest.raises(ValueError, match=message):
        parallel.distributed_settings(*args, environ={})


@pytest.mark.parametrize("text,expected", [
    ("members=2,batch=2", parallel.MeshShape(2, 2)), ("members=4", parallel.MeshShape(4, 1)),
    ("data=4", parallel.MeshShape(1, 4)), (" batch=2 , members=3 ", parallel.MeshShape(3, 2)),
])
def test_parse_mesh(text, expected):
    assert parallel.parse_mesh(text) == expected


@pytest.mark.parametrize("text,message", [
    ("members=2,members=2", "each axis once"), ("rows=2", "axes members and batch"),
    ("members=0", "members='0', expected an integer >= 1"), ("2x2", "AXIS=SIZE"), ("", "members=M"),
])
def test_parse_mesh_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        parallel.parse_mesh(text)


def test_one_process_helpers_are_plain():
    tree = {"a": np.arange(3.0), "k": jax.random.key(1)}
    assert parallel.broadcast(tree) is tree and parallel.fetch(tree) is tree
    assert parallel.on_main_process(lambda: 5) == 5 and parallel.is_main_process()
    assert parallel.any_process(True) and not parallel.any_process(False)


@pytest.mark.parametrize("flags,message", [
    (["--num-processes", "2", "--process-id", "0"], "num_processes=2 needs coordinator"),
    (["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "3"],
     "process_id=3"),
    (["--process-id", "1"], "given without num_processes"),
    (["--mesh", "members=two"], "--mesh: mesh 'members=two'"),
])
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
        sweep_cli.parse_run_args(["--config", "ring8_gan:smoke", "--workdir", str(tmp_path),
                                  "--penalties", "l2", "--strengths", "1e-3,1e-2,1e-1",
                                  "--targets", "d"])[0], [])
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
    return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
                JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
                XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")


def _train(workdir, *flags, devices=1):
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.train", "--config", "ring8_gan:smoke",
         "--workdir", str(workdir), "--no-progress", *flags],
        env=_env(devices), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


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
    workers = [_train(tmp_path / ("two" if i == 0 else "two_p1"), "--coordinator",
                      f"localhost:{port}", "--num-processes", "2", "--process-id", str(i))
               for i in range(2)]
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
        "config.json", "metrics.jsonl", "summary.json", "checkpoints", "samples"}
