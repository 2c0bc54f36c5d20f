"""Sampling from saved runs: ``regan_jax.sampling`` and ``python -m experiments.sample``.

Three smoke runs (12 steps, checkpoints at 6 and 12) are trained once for
the module; a copy of one with its last checkpoint and summary removed stands
for a run interrupted after step 6.
"""

import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import experiments
from experiments import sample as sample_cli
from regan_jax import program as program_lib
from regan_jax import sampling, train

RUNS = ("digits_gan", "digits_cgan", "ring8_gan")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``{name: workdir}`` of finished smoke runs, plus ``'partial'``: digits_gan stopped at step 6."""
    root = tmp_path_factory.mktemp("runs")
    workdirs = {}
    for name in RUNS:
        config = experiments.load_config(f"{name}:smoke", [("log.progress", "false")])
        train.train_and_evaluate(config, root / name)
        workdirs[name] = root / name
    partial = root / "partial"
    shutil.copytree(workdirs["digits_gan"], partial)
    shutil.rmtree(partial / "checkpoints" / "12")
    (partial / "summary.json").unlink()
    workdirs["partial"] = partial
    return workdirs


@pytest.fixture(scope="module")
def loaded(runs):
    return {name: sampling.load_run(w) for name, w in runs.items()}


def listing(directory):
    return sorted(
        (str(p.relative_to(directory)), p.stat().st_mtime_ns)
        for p in pathlib.Path(directory).rglob("*")
    )


@pytest.mark.parametrize("name", RUNS)
def test_default_draw_reproduces_the_final_grid_samples(runs, loaded, name):
    run = loaded[name]
    assert run.step == run.config.steps == int(run.state.step) == 12
    samples, labels = sampling.draw(run, run.config.log.num_images)
    final = np.load(runs[name] / "samples" / "final.npz")
    np.testing.assert_array_equal(samples, final["samples"])
    if run.program.family.conditional:
        np.testing.assert_array_equal(labels, final["labels"])
    else:
        assert labels is None and "labels" not in final


def test_a_seed_gives_other_samples_deterministically(loaded):
    run = loaded["digits_gan"]
    own, _ = sampling.draw(run, 20)
    seeded, _ = sampling.draw(run, 20, seed=1)
    np.testing.assert_array_equal(seeded, sampling.draw(run, 20, seed=1)[0])
    assert not np.array_equal(seeded, own)
    assert not np.array_equal(seeded, sampling.draw(run, 20, seed=2)[0])


def test_batches_fold_the_key_per_batch(loaded):
    run = loaded["digits_cgan"]
    samples, labels = sampling.draw(run, 23, batch_size=10)
    assert samples.shape == (23, 8, 8, 1) and samples.dtype == np.float32
    np.testing.assert_array_equal(labels, np.r_[np.arange(10), np.arange(10), np.arange(3)])
    # The first batch is a draw of 10 with the same key, whatever the total.
    np.testing.assert_array_equal(samples[:10], sampling.draw(run, 10, batch_size=10)[0])


def test_a_class_label_draws_g_of_z_and_that_class(loaded):
    run = loaded["digits_cgan"]
    samples, labels = sampling.draw(run, 20, label=3)
    np.testing.assert_array_equal(labels, np.full(20, 3, np.int32))
    # One batch (eval.batch_size >= 20): the latents of the run's first grid batch.
    key = jax.random.fold_in(program_lib.sample_key(run.config), 0)
    g = run.program.models["g"]
    by_hand = jax.jit(
        lambda params: g.apply(
            {"params": params},
            jax.random.normal(key, (20, g.latent_dim)),
            jnp.full((20,), 3, jnp.int32),
        )
    )(run.state.params["g"])
    np.testing.assert_array_equal(samples, np.asarray(by_hand))
    cycled, cycled_labels = sampling.draw(run, 20)
    assert cycled_labels[3] == 3 and not np.array_equal(cycled, samples)
    np.testing.assert_array_equal(samples[3], cycled[3])  # same z, same class


def test_a_partial_run_loads_its_latest_checkpoint(loaded):
    partial, final = loaded["partial"], loaded["digits_gan"]
    assert partial.step == int(partial.state.step) == 6 and partial.config.steps == 12
    assert not np.array_equal(sampling.draw(partial, 16)[0], sampling.draw(final, 16)[0])


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "does not exist"),
        ("file", "is not a directory"),
        ("no_config", "has no config.json"),
        ("bad_config", "is not a valid config"),
        ("no_checkpoint", "has no checkpoint yet"),
    ],
)
def test_load_run_refuses_a_workdir_without_a_run(runs, tmp_path, case, message):
    workdir = tmp_path / "w"
    if case == "file":
        workdir.write_text("")
    elif case != "missing":
        workdir.mkdir()
        if case == "bad_config":
            (workdir / "config.json").write_text('{"model_type": "gan"}')
        elif case == "no_checkpoint":
            shutil.copy(runs["digits_gan"] / "config.json", workdir)
    with pytest.raises(sampling.RunLoadError, match=message) as info:
        sampling.load_run(workdir)
    assert str(workdir) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("digits_gan", {"num": 0}, "num must be an integer >= 1"),
        ("digits_gan", {"num": 2.0}, "num must be an integer >= 1"),
        ("digits_gan", {"num": 4, "batch_size": 0}, "batch_size must be"),
        ("digits_gan", {"num": 4, "seed": 1.5}, "seed must be an integer"),
        ("digits_gan", {"num": 4, "seed": 2**32}, r"seed must be an integer in \[0, 4294967296\)"),
        ("digits_gan", {"num": 4, "label": 1}, "model_type 'gan' is unconditional"),
        ("ring8_gan", {"num": 4, "label": 0}, "model_type 'gan' is unconditional"),
        ("digits_cgan", {"num": 4, "label": 10}, r"in \[0, 10\)"),
        ("digits_cgan", {"num": 4, "label": -1}, r"in \[0, 10\)"),
    ],
)
def test_draw_refuses_bad_arguments(loaded, name, kwargs, message):
    num = kwargs.pop("num")
    with pytest.raises(ValueError, match=message):
        sampling.draw(loaded[name], num, **kwargs)


def test_cli_writes_the_png_and_npz(runs, loaded, tmp_path, capsys):
    before = listing(runs["digits_cgan"])
    out, npz = tmp_path / "out" / "grid.png", tmp_path / "out" / "samples.npz"
    assert (
        sample_cli.main(
            [
                "--workdir",
                str(runs["digits_cgan"]),
                "--num",
                "30",
                "--class",
                "3",
                "--seed",
                "5",
                "--columns",
                "6",
                "--out",
                str(out),
                "--npz",
                str(npz),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip().splitlines() == [
        f"wrote 30 samples of {runs['digits_cgan']} (step 12) to {out} and {npz}"
    ]
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > 0 and image.height > 0
    saved = np.load(npz)
    samples, labels = sampling.draw(loaded["digits_cgan"], 30, seed=5, label=3)
    np.testing.assert_array_equal(saved["samples"], samples)
    np.testing.assert_array_equal(saved["labels"], labels)
    assert sorted(p.name for p in out.parent.iterdir()) == ["grid.png", "samples.npz"]
    assert listing(runs["digits_cgan"]) == before  # the run is only read


def test_cli_draws_a_scatter_for_2d_data(runs, tmp_path):
    out = tmp_path / "ring.png"
    assert (
        sample_cli.main(["--workdir", str(runs["ring8_gan"]), "--num", "200", "--out", str(out)])
        == 0
    )
    with Image.open(out) as image:
        assert image.size == (400, 400)
    assert [p.name for p in tmp_path.iterdir()] == ["ring.png"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workdir", "{tmp}/missing", "--num", "4"], "does not exist"),
        (["--workdir", "{no_checkpoint}", "--num", "4"], "has no checkpoint yet"),
        (["--workdir", "{digits_gan}", "--num", "0"], "--num must be >= 1"),
        (["--workdir", "{digits_cgan}", "--num", "4", "--class", "11"], r"in [0, 10)"),
        (["--workdir", "{digits_gan}", "--num", "4", "--class", "1"], "is unconditional"),
        (["--workdir", "{ring8_gan}", "--num", "4", "--columns", "3"], "2-D points"),
        (
            ["--workdir", "{digits_gan}", "--num", "4", "--out", "{tmp}/grid.jpg"],
            "must end in .png",
        ),
        (
            ["--workdir", "{digits_gan}", "--num", "4", "--out", "{tmp}/file.txt/grid.png"],
            "is not a directory",
        ),
        (
            ["--workdir", "{digits_gan}", "--num", "4", "--npz", "{tmp}/file.txt/s.npz"],
            "is not a directory",
        ),
    ],
)
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(
    runs, tmp_path, capsys, args, message
):
    no_checkpoint = tmp_path / "no_checkpoint"
    no_checkpoint.mkdir()
    shutil.copy(runs["digits_gan"] / "config.json", no_checkpoint)
    (tmp_path / "file.txt").write_text("")
    paths = {"tmp": tmp_path, "no_checkpoint": no_checkpoint, **{name: runs[name] for name in RUNS}}
    args = [a.format(**paths) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out" / "grid.png")]
    before = listing(tmp_path)
    assert sample_cli.main(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], errors
    assert listing(tmp_path) == before


def test_cli_reports_an_unwritable_output_as_bad_input(runs, tmp_path, capsys):
    # No file can be created in /proc, even by root (a read-only directory would not stop root).
    unwritable = pathlib.Path("/proc/regan_jax_sample_test.npz")
    assert (
        sample_cli.main(
            [
                "--workdir",
                str(runs["digits_gan"]),
                "--num",
                "4",
                "--out",
                str(tmp_path / "grid.png"),
                "--npz",
                str(unwritable),
            ]
        )
        == 2
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "/proc" in errors[0], errors
    assert list(tmp_path.iterdir()) == []  # the PNG, written first, was not kept either
