"""Data parallelism: N steps on 4 devices (shard_map, pmap) equal N steps on 1 device.

The multi-device runs happen in a subprocess with 4 forced CPU devices
(``tests/_tiny_runs.py parallel``), so this process keeps its single device.
"""

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from regan_jax import parallel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _env(devices):
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        PYTHONPATH=ROOT,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
    )
    return env


def _run_worker(args, devices, timeout=600):
    subprocess.run(
        [sys.executable, os.path.join(HERE, "_tiny_runs.py"), *args],
        check=True,
        env=_env(devices),
        cwd=ROOT,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("parallel") / "results.npz")
    _run_worker(["parallel", out], devices=4)
    return dict(np.load(out))


def _assert_same_run(results, case, wrapper):
    prefix = f"{case}/single/"
    keys = [k for k in results if k.startswith(prefix)]
    assert any("/params/" in k for k in keys) and any("/metrics/" in k for k in keys)
    for key in keys:
        expected, got = results[key], results[key.replace("/single/", f"/{wrapper}/")]
        if expected.dtype.kind == "f":
            # pmean of 4 local means vs one global mean: float reassociation only
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6, err_msg=key)
        else:  # steps, keys, divergence flags, optimizer counts: exact
            np.testing.assert_array_equal(got, expected, err_msg=key)


@pytest.mark.parametrize(
    "case,wrapper", [("gan", "shard_map"), ("gan", "pmap"), ("vae", "shard_map")]
)
def test_four_devices_equal_one(four_devices, case, wrapper):
    _assert_same_run(four_devices, case, wrapper)


@pytest.mark.parametrize("mesh", ["2x2", "4x1", "1x4"])
def test_member_mesh_equals_one_device(four_devices, mesh):
    """A vmapped group of 4 on a members x batch mesh of 4 devices equals the group on 1.

    Tolerance: splitting each member's batch over ``batch`` devices reassociates
    its mean (per-device means, then ``pmean``); rtol 1e-4 / atol 1e-6 after
    3 Adam steps, as for data parallelism. Integers (steps, keys) exactly.
    """
    _assert_same_run(four_devices, "members", mesh)
    assert four_devices["members/single/state/step"].tolist() == [3] * 4
    params = [k for k in four_devices if k.startswith("members/single/state/params/")]
    # the members really differ (seeds, strengths, data): a mix-up would show
    assert all(not np.allclose(four_devices[k][0], four_devices[k][1]) for k in params)


@pytest.mark.parametrize("placement", ["fed1x1", "fed4x1"])
def test_device_fed_group_equals_host_fed(four_devices, placement):
    """``fed_parallel``: the group's batches gathered on the devices, all steps in one
    ``lax.scan``, on one device or split member-wise over 4, equals the host-fed group.

    Same tolerance as the other placements (the scan and the member split may
    reassociate); integers exactly. A mesh that splits a member's batch is not
    fed on the devices (None: the loop falls back to host batches).
    """
    _assert_same_run(four_devices, "members", placement)
    assert four_devices[f"members/{placement}/state/step"].tolist() == [3] * 4
    assert bool(four_devices["members/fed_refuses_2x2"])


def test_runs_actually_trained(four_devices):
    """Guards the comparison above against comparing untouched initial states."""
    assert int(four_devices["gan/single/state/step"]) == 3
    assert not four_devices["gan/single/state/diverged"]
    assert float(four_devices["gan/single/metrics/gp"]) > 0  # R1 is on
    assert int(four_devices["vae/shard_map/state/step"]) == 3


@pytest.mark.parametrize("wrapper", ["shard_map", "pmap"])
def test_indivisible_batch_fails_before_compute(four_devices, wrapper):
    message = str(four_devices[f"error/{wrapper}"])
    assert "batch size 6 is not divisible by the device count 4" in message


def test_shard_batch_is_contiguous_rows():
    batch = {"image": np.arange(24.0).reshape(12, 2), "label": np.arange(12)}
    sharded = parallel.shard_batch(batch, 3)
    assert sharded["image"].shape == (3, 4, 2)
    np.testing.assert_array_equal(sharded["label"][1], [4, 5, 6, 7])
    np.testing.assert_array_equal(sharded["image"].reshape(12, 2), batch["image"])


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="batch size 10 is not divisible by the device count 4"):
        parallel.shard_batch({"image": np.zeros((10, 2))}, 4)
    with pytest.raises(ValueError, match="different leading sizes"):
        parallel.check_divisible({"image": np.zeros((8, 2)), "label": np.zeros(4)}, 4)
    with pytest.raises(ValueError, match=r"num_devices must be in \[1, 1\]"):
        parallel.make_mesh(2)
    with pytest.raises(ValueError, match="'host:port'"):
        parallel.initialize_distributed("localhost", 2, 0)
    with pytest.raises(ValueError, match="process_id=2"):
        parallel.initialize_distributed("localhost:1234", 2, 2)
    with pytest.raises(ValueError, match=r"mesh members=2,batch=2 needs 4 devices; JAX sees 1"):
        parallel.member_mesh(4, 8, parallel.MeshShape(2, 2))
    with pytest.raises(ValueError, match="members=1 .*a single run is one member|a single run"):
        parallel.data_parallel(lambda s, b: (s, {}), 8, mesh=parallel.MeshShape(2, 1))


def test_mesh_names_the_batch_axis():
    mesh = parallel.make_mesh()
    assert mesh.axis_names == (parallel.BATCH_AXIS,) and mesh.size == jax.device_count()


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_localhost_equal_one_device(four_devices, tmp_path):
    """Multi-host on CPU: 2 processes x 2 devices, gloo collectives, each feeding its half."""
    out, port = str(tmp_path / "multihost.npz"), _free_port()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                os.path.join(HERE, "_tiny_runs.py"),
                "multihost",
                out,
                str(i),
                "2",
                str(port),
            ],
            env=_env(2),
            cwd=ROOT,
        )
        for i in range(2)
    ]
    assert [w.wait(timeout=600) for w in workers] == [0, 0]
    merged = {
        **{f"gan/multihost/{k}": v for k, v in np.load(out).items()},
        **{k: v for k, v in four_devices.items() if k.startswith("gan/single/")},
    }
    _assert_same_run(merged, "gan", "multihost")
