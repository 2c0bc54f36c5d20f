"""The batch iterator of regan_jax.data: order, determinism, resume, members, devices."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from regan_jax import data

N = 50  # Examples in the hand-made dataset; example i has every pixel equal to i.


@pytest.fixture
def dataset():
    images = np.broadcast_to(np.arange(N, dtype=np.float32)[:, None, None, None], (N, 2, 2, 1))
    return data.ArrayDataset(
        images=np.ascontiguousarray(images),
        labels=(np.arange(N) % 7).astype(np.int32),
        num_classes=7,
        name="toy",
    )


def _cfg(name="toy", batch_size=16, drop_remainder=True, tmp=None):
    cfg = data.default_config()
    cfg.name, cfg.batch_size, cfg.drop_remainder = name, batch_size, drop_remainder
    if tmp is not None:
        cfg.data_dir = str(tmp)
    return cfg


def _ids(batch):
    """The example index each row came from."""
    return batch["image"][..., 0, 0, 0].astype(int)


def _take(iterator, k):
    return [next(iterator) for _ in range(k)]


def test_each_epoch_is_a_permutation(dataset):
    it = data.make_iterator(_cfg(drop_remainder=False), 0, source=dataset)
    assert it.steps_per_epoch == 4
    for _ in range(3):
        batches = _take(it, 4)
        assert [len(b["label"]) for b in batches] == [16, 16, 16, 2]
        ids = np.concatenate([_ids(b) for b in batches])
        np.testing.assert_array_equal(np.sort(ids), np.arange(N))
        labels = np.concatenate([b["label"] for b in batches])
        np.testing.assert_array_equal(labels, ids % 7)
        assert batches[0]["image"].dtype == np.float32 and labels.dtype == np.int32


def test_drop_remainder_and_reshuffle(dataset):
    it = data.make_iterator(_cfg(), 0, source=dataset)
    assert it.steps_per_epoch == 3
    epochs = [np.concatenate([_ids(b) for b in _take(it, 3)]) for _ in range(3)]
    for ids in epochs:
        assert len(ids) == 48 and len(set(ids)) == 48
    assert not np.array_equal(epochs[0], epochs[1])
    assert it.position["epoch"] == 3 and it.position["index"] == 0


def test_deterministic_given_seed(dataset):
    a, b, c = (data.make_iterator(_cfg(), s, source=dataset) for s in (3, 3, 4))
    for x, y, z in zip(_take(a, 7), _take(b, 7), _take(c, 7)):
        np.testing.assert_array_equal(x["image"], y["image"])
        assert not np.array_equal(x["image"], z["image"])


def test_resume_from_json_position_sees_the_same_batches(dataset):
    it = data.make_iterator(_cfg(), 5, source=dataset)
    _take(it, 7)  # Two epochs and one batch.
    saved = json.loads(json.dumps(it.position))
    assert saved == {"name": "toy", "seed": 5, "batch_size": 16, "epoch": 2, "index": 1}
    expected = _take(it, 10)
    resumed = data.make_iterator(_cfg(), 5, source=dataset, position=saved)
    for x, y in zip(expected, _take(resumed, 10)):
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["label"], y["label"])


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(seed=6), "seed is 6"),
        (dict(batch_size=8), "batch_size is 8"),
        (dict(name="digits"), "name is 'digits'"),
        (dict(epoch=-1), "integer epoch >= 0"),
        (dict(index="3"), "integer epoch >= 0 and index >= 0"),
        (dict(index=3), "index 3 is past the end of an epoch of 3 batches"),
    ],
)
def test_foreign_position_is_refused(dataset, change, message):
    position = {"name": "toy", "seed": 5, "batch_size": 16, "epoch": 0, "index": 0, **change}
    with pytest.raises(ValueError, match=message):
        data.make_iterator(_cfg(), 5, source=dataset, position=position)


def test_members_follow_their_own_seeds(dataset):
    it = data.make_iterator(_cfg(), 2, num_members=3, source=dataset)
    singles = [data.make_iterator(_cfg(), s, source=dataset) for s in (2, 3, 4)]
    for _ in range(4):
        batch = next(it)
        assert batch["image"].shape == (3, 16, 2, 2, 1) and batch["label"].shape == (3, 16)
        for k, single in enumerate(singles):
            np.testing.assert_array_equal(batch["image"][k], next(single)["image"])
    assert it.position["seed"] == [2, 3, 4]
    shared = next(data.make_iterator(_cfg(), 0, member_seeds=[1, 1, 9], source=dataset))
    np.testing.assert_array_equal(shared["image"][0], shared["image"][1])
    assert not np.array_equal(shared["image"][0], shared["image"][2])


def test_member_resume(dataset):
    it = data.make_iterator(_cfg(), 0, member_seeds=[4, 1], source=dataset)
    _take(it, 5)
    position = json.loads(json.dumps(it.position))
    resumed = data.make_iterator(_cfg(), 0, member_seeds=[4, 1], source=dataset, position=position)
    np.testing.assert_array_equal(next(it)["image"], next(resumed)["image"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(seed=-1), "seeds >= 0"),
        (dict(seed=0, num_members=0), "num_members must be > 0"),
        (dict(seed=0, num_members=2, member_seeds=[0, 1]), "not both"),
    ],
)
def test_bad_iterator_arguments(dataset, kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.make_iterator(_cfg(), source=dataset, **kwargs)


def test_batch_larger_than_dataset(dataset):
    with pytest.raises(ValueError, match=r"batch_size 51 is larger than dataset 'toy' \(50"):
        data.make_iterator(_cfg(batch_size=51), 0, source=dataset)
    with pytest.raises(ValueError, match="batch_size > 0"):
        data.make_iterator(_cfg(batch_size=0), 0, source=dataset)


def test_mixture_batches_are_keyed_samples():
    cfg = _cfg("ring8", batch_size=32)
    cfg.sigma = 0.1
    it = data.make_iterator(cfg, 7)
    mix = data.mixture("ring8", sigma=0.1)
    assert it.spec == data.DataSpec((2,), 8, "ring8") and it.steps_per_epoch is None
    for i in range(3):
        batch = next(it)
        points, labels = mix.sample_labelled(jax.random.fold_in(jax.random.key(7), i), 32)
        np.testing.assert_array_equal(batch["image"], np.asarray(points))
        np.testing.assert_array_equal(batch["label"], np.asarray(labels))
        assert batch["image"].dtype == np.float32 and batch["label"].dtype == np.int32
    resumed = data.make_iterator(cfg, 7, position=json.loads(json.dumps(it.position)))
    np.testing.assert_array_equal(next(it)["image"], next(resumed)["image"])
    members = next(data.make_iterator(cfg, 7, num_members=2))
    np.testing.assert_array_equal(
        members["image"][1], np.asarray(mix.sample(jax.random.fold_in(jax.random.key(8), 0), 32))
    )


def test_config_selects_the_dataset(tmp_path):
    it = data.make_iterator(_cfg("digits", batch_size=64, tmp=tmp_path), 0)
    assert it.spec == data.DataSpec((8, 8, 1), 10, "digits") and it.steps_per_epoch == 1500 // 64
    batch = next(it)
    assert batch["image"].shape == (64, 8, 8, 1) and -1 <= batch["image"].min()
    cfg = _cfg("stacked_digits", tmp=tmp_path)
    cfg.stacked_size, cfg.stacked_test_size, cfg.stacked_seed = 40, 20, 2
    test = data.from_config(cfg, "test")
    assert len(test) == 20 and test.spec == data.DataSpec((8, 8, 3), 1000, "stacked_digits")
    cfg = _cfg("grid25")
    cfg.grid_spacing = 3.0
    assert data.from_config(cfg).centres.max() == 6.0


def test_member_positions_resume_a_group_as_its_members(dataset):
    """A group's member k is at its own single run's position; the group resumes from them."""
    group = data.make_iterator(_cfg(), 0, member_seeds=[3, 5], source=dataset)
    for _ in range(4):
        next(group)
    positions = [data.member_position(group.position, k) for k in range(2)]
    for k, seed in enumerate((3, 5)):
        single = data.make_iterator(_cfg(), seed, source=dataset)
        for _ in range(4):
            next(single)
        assert positions[k] == single.position
    resumed = data.make_iterator(
        _cfg(), 0, member_seeds=[3, 5], source=dataset, position=data.group_position(positions)
    )
    np.testing.assert_array_equal(next(resumed)["image"], next(group)["image"])
    with pytest.raises(ValueError, match="different data positions"):
        data.group_position([positions[0], {**positions[1], "index": 0}])


def test_prefetch_yields_the_same_batches_and_positions(dataset):
    plain = data.make_iterator(_cfg(), 1, source=dataset)
    with data.prefetch_to_device(data.make_iterator(_cfg(), 1, source=dataset), 3) as ahead:
        assert ahead.position == plain.position and ahead.spec == plain.spec
        for _ in range(5):
            got, want = next(ahead), next(plain)
            assert isinstance(got["image"], jax.Array)
            np.testing.assert_array_equal(np.asarray(got["image"]), want["image"])
            assert ahead.position == plain.position  # Not the read-ahead's position.
    with pytest.raises(ValueError, match="prefetch size must be >= 0"):
        data.prefetch_to_device(plain, -1)
    assert data.prefetch_to_device(plain, 0) is plain  # No read-ahead: the iterator itself.


def test_prefetch_raises_the_source_error():
    def fetch(epoch, index):
        if index == 2:
            raise ValueError("bad batch 2")
        return {"image": np.zeros((1, 2))}

    source = data.BatchIterator(fetch, None, data.DataSpec((2,), 0, "x"), {"epoch": 0, "index": 0})
    with data.prefetch_to_device(source, 2) as ahead:
        _take(ahead, 2)
        with pytest.raises(ValueError, match="bad batch 2"):
            next(ahead)


def test_prefetch_shards_across_four_devices():
    """Each device of a 4-device mesh holds its slice of the global batch."""
    script = textwrap.dedent("""
        import jax, numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        from regan_jax import data
        assert jax.device_count() == 4
        n = 64
        images = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
        ds = data.ArrayDataset(images, np.arange(n, dtype=np.int32) % 10, 10, "toy")
        cfg = data.default_config()
        cfg.name, cfg.batch_size = "toy", 8
        mesh = Mesh(np.array(jax.devices()), ("batch",))
        for members, spec in ((None, P("batch")), (2, P(None, "batch"))):
            plain = data.make_iterator(cfg, 0, num_members=members, source=ds)
            with data.prefetch_to_device(
                    data.make_iterator(cfg, 0, num_members=members, source=ds), 2,
                    NamedSharding(mesh, spec)) as ahead:
                for _ in range(3):
                    got, want = next(ahead), next(plain)
                    for leaf, ref in ((got["image"], want["image"]), (got["label"], want["label"])):
                        shards = sorted(leaf.addressable_shards, key=lambda s: s.device.id)
                        assert len({s.device for s in shards}) == 4
                        for d, shard in enumerate(shards):
                            rows = slice(2 * d, 2 * d + 2)
                            expect = ref[rows] if members is None else ref[:, rows]
                            np.testing.assert_array_equal(np.asarray(shard.data), expect)
        print("ok")
    """)
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
