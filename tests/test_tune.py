"""The population-based search end to end: its records, bitwise resume, the command line, fig. 15."""

import json

import chex
import jax
import numpy as np
import pytest

import experiments
from experiments import tune as tune_cli
from experiments.study import members as members_lib
from experiments.study.figures import registry
from experiments.study.figures import search as search_figure
from regan_jax import checkpoint, data, effective_strength, evaluation, parallel, pbt, train, tune
from regan_jax import config as config_lib
from regan_jax import program as program_lib

POPULATION = 4
INTERVAL = 4  # ring8_gan:smoke trains 12 steps: exploits at 4 and 8, scores recorded at 12
STRENGTHS = (1e-5, 1e-4, 1e-3, 1e-2)


def members(spec="ring8_gan:smoke", strengths=STRENGTHS, net="d"):
    base = experiments.load_config(spec, [(f"penalty.{net}.kind", "l2")])
    configs = []
    for k, s in enumerate(strengths):
        c = config_lib.copy_config(base)
        c.seed = k
        c.penalty[net].strength = s
        configs.append(c)
    return configs


def tune_config(metric="reverse_kl", lower=True, net="d"):
    config = pbt.default_config()
    config.metric, config.lower_is_better, config.interval = metric, lower, INTERVAL
    config.networks, config.bounds, config.seed = (net,), (1e-6, 1e-1), 3
    return config


def run(root, **kwargs):
    dirs = [root / f"m{k}" for k in range(POPULATION)]
    return tune.search(members(), dirs, tune_config(), root, progress=False, **kwargs), dirs


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    finals, dirs = run(root)
    return root, dirs, finals


def without_wall(rows):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


def test_the_history_and_every_members_rows_record_the_lineage(reference):
    root, dirs, _ = reference
    search = tune.read_search(root)
    assert [h["step"] for h in search["history"]] == [4, 8, 12]
    assert [h["exploit"] for h in search["history"]] == [True, True, False]
    assert search["initial"] == {"strength_d": [float(np.float32(s)) for s in STRENGTHS]}
    values = search["initial"]["strength_d"]
    for h in search["history"]:
        parents = h["parents"]
        scores = np.array([np.nan if s is None else s for s in h["scores"]])
        if h["exploit"]:  # the one worst member (quantile 0.25 of 4) copies the best
            order = np.argsort(np.where(np.isfinite(scores), scores, np.inf), kind="stable")
            assert parents == [order[0] if k == order[-1] else k for k in range(POPULATION)]
        for k, p in enumerate(parents):
            new = h["values"]["strength_d"][k]
            if p == k:
                assert new == values[k]
            else:
                assert any(
                    new == pytest.approx(float(np.float32(values[p]) * np.float32(f)), rel=1e-6)
                    for f in (0.8, 1.25)
                )
        values = h["values"]["strength_d"]
        for k, d in enumerate(dirs):
            row = next(r for r in train.read_metrics(d) if r["step"] == h["step"])
            assert row["pbt_parent"] == parents[k]
            assert row["strength_d"] == h["values"]["strength_d"][k]
            assert row["reverse_kl"] == row["pbt_score"] == h["scores"][k]


def test_the_copied_member_trains_from_its_donors_state(reference, tmp_path):
    root, dirs, _ = reference
    first = tune.read_search(root)["history"][0]
    (child,) = [k for k, p in enumerate(first["parents"]) if p != k]
    donor = first["parents"][child]
    config = members()[0]
    template = program_lib.init_member(program_lib.build_program(config), config)
    _, child_state, _ = checkpoint.restore_readable(
        str(dirs[child] / train.CHECKPOINT_DIR), [INTERVAL], template
    )
    _, donor_state, _ = checkpoint.restore_readable(
        str(dirs[donor] / train.CHECKPOINT_DIR), [INTERVAL], template
    )
    chex.assert_trees_all_equal(child_state.params, donor_state.params)
    assert not np.array_equal(
        jax.random.key_data(child_state.key), jax.random.key_data(donor_state.key)
    )


class Killed(Exception):
    pass


def test_a_search_killed_between_exploits_resumes_bitwise(reference, tmp_path, monkeypatch):
    """A signal at step 6 (after the exploit at 4, before the one at 8): the group's one
    checkpoint, then the same command finishes the same search."""
    root, dirs, finals = reference
    steps = []
    any_process = parallel.any_process

    def signal_at_six(flag):  # the loop asks once per step (one step per call)
        steps.append(len(steps) + 1)
        return any_process(flag) or len(steps) == 6

    with monkeypatch.context() as m:
        m.setattr(parallel, "any_process", signal_at_six)
        with pytest.raises(train.Interrupted) as stopped:
            run(tmp_path)
    assert stopped.value.step == 6
    assert [h["step"] for h in tune.read_search(tmp_path)["history"]] == [4]
    resumed, mine = run(tmp_path)
    _assert_same_search(root, dirs, finals, tmp_path, mine, resumed)


def test_a_search_killed_after_an_exploit_resumes_bitwise(reference, tmp_path, monkeypatch):
    """Killed right after the checkpoint of the exploit at step 8."""
    root, dirs, finals = reference
    save = train._save_checkpoints

    def save_then_die(group, state, batches, step, *args):
        save(group, state, batches, step, *args)
        if step == 8:
            raise Killed

    with monkeypatch.context() as m:
        m.setattr(train, "_save_checkpoints", save_then_die)
        with pytest.raises(Killed):
            run(tmp_path)
    assert [h["step"] for h in tune.read_search(tmp_path)["history"]] == [4, 8]
    resumed, mine = run(tmp_path)
    _assert_same_search(root, dirs, finals, tmp_path, mine, resumed)


def _assert_same_search(root, dirs, finals, other_root, other_dirs, others):
    for final, other in zip(finals, others):
        chex.assert_trees_all_equal(other.params, final.params)
        chex.assert_trees_all_equal(other.opt_state, final.opt_state)
    assert tune.read_search(other_root) == tune.read_search(root)
    for d, o in zip(dirs, other_dirs):
        assert without_wall(train.read_metrics(o)) == without_wall(train.read_metrics(d))


def test_a_vae_search_ranks_by_the_held_out_elbo(tmp_path):
    configs = members("digits_vae:smoke", (1e-4, 1e-2), net="decoder")
    config = tune_config("elbo", lower=False, net="decoder")
    config.quantile = 0.5
    dirs = [tmp_path / "a", tmp_path / "b"]
    tune.search(configs, dirs, config, tmp_path, progress=False)
    history = tune.read_search(tmp_path)["history"]
    assert [h["step"] for h in history] == [4, 8, 12]
    for h in history[:2]:
        worse, better = np.argsort(h["scores"])  # higher is better: the lower one copies
        assert h["parents"][worse] == better and h["parents"][better] == better
        assert all(np.isfinite(h["scores"])) and h["scores"][0] != h["scores"][1]
    # The kept member's score against the summary's way of computing the ELBO (mean_scores).
    worse, better = np.argsort(history[0]["scores"])
    c = tune.prepare_configs(configs, config)[better]
    prog = program_lib.build_program(c)
    _, state, _ = checkpoint.restore_readable(
        str(dirs[better] / train.CHECKPOINT_DIR), [INTERVAL], program_lib.init_member(prog, c)
    )
    images = data.from_config(c.data, "test").images[: c.eval.fd_samples]
    key = jax.random.fold_in(program_lib.sample_key(c), INTERVAL)
    fn = prog.family.score_fn(c, prog.models, state.params, key)
    expected = evaluation.mean_scores(fn, images, c.eval.batch_size)["elbo"]
    assert history[0]["scores"][better] == pytest.approx(expected, rel=1e-5)


def test_cheap_metrics_follow_the_family_and_data():
    assert tune.cheap_metrics(experiments.load_config("ring8_gan:smoke"))[:3] == (
        "modes",
        "robust_modes",
        "hq_fraction",
    )
    assert tune.cheap_metrics(experiments.load_config("digits_gan:smoke")) == ("fd",)
    v2 = experiments.load_config("digits_gan:smoke", [("eval.protocol_v2", "true")])
    assert tune.cheap_metrics(v2) == ("fd", "r_t", "r_v")
    assert tune.cheap_metrics(experiments.load_config("digits_vae:smoke")) == ("fd", "elbo")


def test_another_search_in_the_directory_is_refused(reference):
    root, dirs, _ = reference
    config = tune_config()
    config.seed = 4
    with pytest.raises(ValueError, match="another search"):
        tune.search(members(), dirs, config, root, progress=False)


def test_the_figure_is_drawn_from_the_search_directory(reference):
    root, _, _ = reference
    path = search_figure.save(root)
    assert path == root / "fig15_strength_search.png" and path.stat().st_size > 10_000
    search = tune.read_search(root)
    steps, values, scores = search_figure.trajectories(search)
    assert list(steps) == [0, 4, 8, 12]
    assert values["strength_d"].shape == (4, POPULATION) and scores.shape == (3, POPULATION)


@pytest.mark.parametrize(
    "scores, lower, ranks",
    [
        ([3.0, 1.0, None, 2.0], True, [2, 0, 3, 1]),
        ([3.0, 1.0, None, 2.0], False, [0, 2, 3, 1]),
        ([1.0, 1.0, 0.5, 1.0], True, [1, 2, 0, 3]),
    ],
)
def test_final_ranks(scores, lower, ranks):
    search = {"history": [{"scores": scores}], "tune": {"lower_is_better": lower}}
    assert list(search_figure.final_ranks(search)) == ranks


BAD = [
    (["--population", "1"], "--population"),
    (["--interval", "0"], "--interval"),
    (["--interval", "12"], "--interval"),
    (["--metric", "fd"], "--metric"),
    (["--metric", "r_t"], "--metric"),
    (["--penalty", "r1"], "--penalty"),
    (["--target", "encoder"], "--target"),
    (["--range", "1e-2,1e-4"], "--range"),
    (["--quantile", "0.9"], "--quantile"),
    (["--config.steps", "abc"], "steps"),
]


@pytest.mark.parametrize("args, flag", BAD)
def test_bad_input_exits_2_naming_the_flag_and_writes_nothing(tmp_path, capsys, args, flag):
    workdir = tmp_path / "search"
    base = {
        "--config": "ring8_gan:smoke",
        "--penalty": "l2",
        "--target": "d",
        "--interval": "4",
        "--metric": "reverse_kl",
        "--population": "4",
    }
    for key, value in zip(args[::2], args[1::2]):
        base[key] = value
    argv = ["--workdir", str(workdir), "--no-progress"] + [t for kv in base.items() for t in kv]
    assert tune_cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and flag in err[0], err
    assert not workdir.exists()


def test_the_command_line_records_the_search_and_draws_the_figure(tmp_path, capsys):
    argv = [
        "--config",
        "ring8_gan:smoke",
        "--workdir",
        str(tmp_path),
        "--penalty",
        "l2",
        "--target",
        "d",
        "--population",
        "4",
        "--interval",
        "4",
        "--metric",
        "hq_fraction",
        "--range",
        "1e-4,1e-2",
        "--no-progress",
    ]
    assert tune_cli.main(argv) == 0
    search = json.loads((tmp_path / tune.SEARCH_FILE).read_text())
    assert search["tune"]["lower_is_better"] is False  # the vocabulary's direction
    # np.geomspace(1e-4, 1e-2, 4) to 3 significant figures; member k has seed k
    initial = [float(np.float32(s)) for s in (1e-4, 0.000464, 0.00215, 1e-2)]
    assert search["initial"] == {"strength_d": initial}
    seeds = [
        json.loads((tmp_path / f"m{k:02d}" / "config.json").read_text())["seed"] for k in range(4)
    ]
    assert seeds == [0, 1, 2, 3]
    assert (tmp_path / "fig15_strength_search.png").is_file()
    assert tune_cli.main(argv) == 0  # finished: drawn again, nothing trained
    assert "finished already" in capsys.readouterr().out
    assert tune_cli.main(argv + ["--config.data.batch_size", "64"]) == 2  # another experiment
    assert "different experiment" in capsys.readouterr().err


def test_the_registered_figure_is_drawn_for_a_search_directory_only(reference, tmp_path):
    root, _, _ = reference
    entry = registry.REGISTRY[search_figure.STEM]
    assert entry.scope == registry.PRESET
    assert entry.when(registry.Study(root, "smoke", {}))
    assert not entry.when(registry.Study(tmp_path, "smoke", {}))
    figure = entry.draw(registry.Study(root, "smoke", {}))
    assert len(figure.axes) == 3  # the strengths, the scores, the colour bar of the ranks


def test_a_diverged_member_ranks_last_and_trains_on_from_its_donors_state(tmp_path):
    configs = members()
    for net in ("g", "d"):  # member 1's first step overflows: frozen, no score
        configs[1].optimizer[net].learning_rate = 1e30
    dirs = [tmp_path / f"m{k}" for k in range(POPULATION)]
    tune.search(configs, dirs, tune_config(), tmp_path, progress=False)
    first = tune.read_search(tmp_path)["history"][0]
    assert first["scores"][1] is None and first["parents"] == [0, 0, 2, 3]
    rows = train.read_metrics(dirs[1])
    assert rows[0]["step"] == 3 and rows[0]["frozen"]
    assert rows[1] == {
        "step": 4,
        "wall_s": rows[1]["wall_s"],
        "pbt_parent": 0,
        "pbt_score": None,
        "strength_d": first["values"]["strength_d"][1],
    }
    assert [r["step"] for r in rows[2:]] == [6, 8, 9, 12] and np.isfinite(rows[-1]["d_loss"])
    assert train.read_json(dirs[1] / train.SUMMARY_FILE)["diverged"] is False


def record_file(path, experiment="ring8_gan", grad_rms=(0.5, 0.5)):
    """A calibration record of ``experiment`` with made-up units (g, d)."""
    fields = {f: 1.0 for f in effective_strength.FIELDS}
    networks = {
        net: {**fields, "grad_rms": rms, "weight_rms": 0.2}
        for net, rms in zip(("g", "d"), grad_rms)
    }
    record = {"format": 1, "experiment": experiment, "model_type": "gan", "networks": networks}
    path.write_text(json.dumps(record))
    return str(path)


def calibrated_argv(workdir, record, penalty="weight_decay", target="both"):
    return [
        "--config", "ring8_gan:smoke", "--workdir", str(workdir), "--penalty", penalty,
        "--target", target, "--population", "3", "--interval", "4", "--metric", "reverse_kl",
        "--range", "0.1,10", "--calibration", record, "--no-progress",
    ]  # fmt: skip


def test_a_calibrated_range_is_the_sweeps_conversion_of_the_same_effective_values(tmp_path):
    record = record_file(tmp_path / "cal.json")
    args, rest = tune_cli.parse_run_args(calibrated_argv(tmp_path / "search", record))
    configs, _, config = tune_cli.search_from_args(args, experiments.split_overrides(rest))
    base = experiments.load_config("ring8_gan:smoke")
    sweep = members_lib.grid(
        base, ["weight_decay"], ["both"], {"strength": [0.1, 1.0, 10.0]}, [0], record
    )  # geomspace(0.1, 10, 3): the members' effective strengths
    for net in ("g", "d"):
        raw = [c.penalty[net].strength for c in configs]
        assert raw == [m.config.penalty[net].strength for m in sweep]
        # Decoupled L2 by hand: e = S λ, S = lr x updates = 1e-3 x 12 (constant rate).
        np.testing.assert_allclose(raw, np.array([0.1, 1.0, 10.0]) / (1e-3 * 12), rtol=1e-12)
    np.testing.assert_allclose(config.bounds, (0.1 / 0.012, 10 / 0.012), rtol=1e-12)
    assert config.bounds == (sweep[0].config.penalty.d.strength, sweep[2].config.penalty.d.strength)


@pytest.mark.parametrize(
    "case, flag",
    [("missing", "--calibration"), ("other", "--calibration"), ("per_net", "--calibration")],
)
def test_a_bad_calibration_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, case, flag):
    workdir = tmp_path / "search"
    if case == "missing":
        record, penalty = str(tmp_path / "none.json"), "weight_decay"
    elif case == "other":
        record, penalty = record_file(tmp_path / "cal.json", "digits_gan"), "weight_decay"
    else:  # coupled L2: e = λ weight_rms / grad_rms differs between g and d
        record, penalty = record_file(tmp_path / "cal.json", grad_rms=(0.5, 2.0)), "l2"
    assert tune_cli.main(calibrated_argv(workdir, record, penalty)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and flag in err[0], err
    assert not workdir.exists()
