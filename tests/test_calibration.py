"""Calibration: the recorded units, and the effective-strength mapping against hand computation."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import experiments
from experiments import calibrate as calibrate_cli
from experiments.study import members as members_lib
from regan_jax import calibration, effective_strength, penalties
from regan_jax import program as program_lib

# A hand-made network record (module docstring's fields).
FIELDS = {
    "grad_rms": 0.01,
    "weight_rms": 0.08,
    "mean_abs": 0.06,
    "nonzero": 0.9,
    "group_ms": 0.004,
    "unit_norm_init": 1.2,
    "norm_init": 20.0,
    "updates_per_step": 2.0,
}


def _penalty(kind, coupling="coupled", strength=0.0, l2_strength=0.0, radius=1.0, **schedule):
    cfg = penalties.default_penalty_config()
    cfg.kind, cfg.coupling, cfg.strength, cfg.l2_strength, cfg.radius = (
        kind,
        coupling,
        strength,
        l2_strength,
        radius,
    )
    for k, v in schedule.items():
        cfg[k] = v
    return cfg


def _optimizer(lr=1e-3, **schedule):
    cfg = penalties.default_optimizer_config()
    cfg.learning_rate = lr
    for k, v in schedule.items():
        cfg[k] = v
    return cfg


T, LR = 500, 1e-3
S = T * FIELDS["updates_per_step"] * LR  # Σ η over the run's 1,000 updates


@pytest.mark.parametrize(
    "penalty, expected",
    [
        # coupled: penalty gradient RMS / loss gradient RMS
        (_penalty("l2", strength=0.5), 0.5 * 0.08 / 0.01),
        (_penalty("l1", strength=0.02), 0.02 * math.sqrt(0.9) / 0.01),
        (
            _penalty("elastic_net", strength=0.02, l2_strength=0.3),
            math.sqrt(0.02**2 * 0.9 + 2 * 0.02 * 0.3 * 0.06 + 0.3**2 * 0.08**2) / 0.01,
        ),
        (_penalty("group_l1", strength=0.1), 0.1 * math.sqrt(0.004) / 0.01),
        # decoupled / proximal: total shrinkage S·ρ relative to the weight RMS
        (_penalty("l2", "decoupled", strength=0.5), S * 0.5),
        (_penalty("l1", "decoupled", strength=0.02), S * 0.02 * math.sqrt(0.9) / 0.08),
        (_penalty("prox_l1", strength=0.02), S * 0.02 * math.sqrt(0.9) / 0.08),
        (
            _penalty("prox_elastic_net", strength=0.02, l2_strength=0.3),
            S * math.sqrt(0.02**2 * 0.9 + 2 * 0.02 * 0.3 * 0.06 + 0.3**2 * 0.08**2) / 0.08,
        ),
        (_penalty("prox_group_l1", strength=0.1), S * 0.1 * math.sqrt(0.004) / 0.08),
        # radii relative to the initial sizes
        (_penalty("max_norm", radius=0.6), 0.6 / 1.2),
        (_penalty("l2_ball", radius=5.0), 5.0 / 20.0),
    ],
)
def test_effective_strength_matches_hand_computation(penalty, expected):
    got = effective_strength.effective_strength(penalty, _optimizer(LR), T, FIELDS)
    assert got == pytest.approx(expected, rel=1e-12)
    raw = penalty.radius if penalty.kind in effective_strength.RADIUS_KINDS else penalty.strength
    assert effective_strength.raw_strength(
        penalty, _optimizer(LR), T, FIELDS, got
    ) == pytest.approx(raw, rel=1e-12)


def test_no_penalty_has_no_effective_strength():
    assert effective_strength.effective_strength(_penalty("none"), _optimizer(), T, FIELDS) is None
    with pytest.raises(ValueError, match="'none' has no strength"):
        effective_strength.raw_strength(_penalty("none"), _optimizer(), T, FIELDS, 1.0)
    with pytest.raises(ValueError, match="must be > 0, got 0"):
        effective_strength.raw_strength(_penalty("l2", strength=1.0), _optimizer(), T, FIELDS, 0.0)


def test_every_builder_penalty_kind_has_one_calibration_rule():
    assert sorted(effective_strength.RULES) == sorted(penalties.PENALTY_KINDS)


@pytest.mark.parametrize("kind", sorted(penalties.PENALTY_KINDS))
def test_a_kinds_rule_converts_the_hyperparameters_the_builder_gives_it(kind):
    # A kind with strengths has a gradient RMS, one with a radius a reference
    # size, 'none' neither; every kind but 'none' has an effective strength.
    names = penalties.PENALTY_KINDS[kind].names
    rule = effective_strength.RULES[kind]
    assert (rule.gradient_rms is not None) == ("strength" in names)
    assert (rule.radius_over is not None) == ("radius" in names)
    assert rule.radius_over in (None, *FIELDS)
    penalty = _penalty(
        kind,
        strength=0.1 if "strength" in names else 0.0,
        l2_strength=0.2 if "l2_strength" in names else 0.0,
    )
    penalties.validate_penalty_config(penalty)
    got = effective_strength.effective_strength(penalty, _optimizer(), T, FIELDS)
    assert (got is None) == (kind == "none")
    if got is not None:
        assert got > 0


def test_schedules_enter_the_total_shrinkage():
    # Linear warm-up of the learning rate over W updates, cosine of the strength
    # to 0: S = Σ_k η min(k/W, 1) m(k), summed by hand in float64.
    warm, updates = 100, 1000
    opt = _optimizer(LR, schedule="linear_warmup", warmup_steps=warm)
    pen = _penalty(
        "l2",
        "decoupled",
        strength=0.5,
        schedule="warmup_cosine",
        warmup_steps=0,
        decay_steps=updates,
    )
    k = np.arange(updates)
    expected = np.sum(LR * np.minimum(k / warm, 1.0) * 0.5 * (1 + np.cos(np.pi * k / updates)))
    assert effective_strength.total_step(opt, pen, updates) == pytest.approx(expected, rel=1e-5)
    assert effective_strength.effective_strength(pen, opt, T, FIELDS) == pytest.approx(
        expected * 0.5, rel=1e-5
    )


def _weights(key):
    k1, k2 = jax.random.split(key)
    w = {
        "a": {"kernel": jax.random.normal(k1, (6, 4)) * 0.1},
        "b": {"kernel": jax.random.normal(k2, (4, 3)) * 0.3, "bias": jnp.ones(3)},
    }
    return jax.tree.map(lambda x: x.at[0, 0].set(0.0) if x.ndim == 2 else x, w)


@pytest.mark.parametrize(
    "kind, strength, l2",
    [("l2", 0.7, 0.0), ("l1", 0.3, 0.0), ("elastic_net", 0.3, 0.9), ("group_l1", 0.4, 0.0)],
)
def test_closed_form_gradient_rms_equals_the_penalty_gradient(kind, strength, l2):
    # ρ from the record's moments against the RMS of jax.grad of the library's
    # own penalty value over the masked (kernel) leaves.
    params = _weights(jax.random.key(3))
    cfg = _penalty(kind, strength=strength, l2_strength=l2)
    grad = jax.grad(lambda p: penalties.penalty_value(p, cfg))(params)
    kernels = np.concatenate([np.ravel(grad[n]["kernel"]) for n in ("a", "b")])
    if kind in ("l1", "elastic_net"):  # sign(0) = 0: jax.grad of |w| at 0 is not the subgradient
        w = np.concatenate([np.ravel(params[n]["kernel"]) for n in ("a", "b")])
        kernels = np.where(w == 0, l2 * w, kernels)
    record = calibration._network_fields(
        [params], [params], jax.tree.map(lambda x: jnp.ones([1]), params), np.ones(1), 1, None, -1
    )
    assert effective_strength.penalty_gradient_rms(kind, strength, l2, record) == pytest.approx(
        math.sqrt(np.mean(kernels**2)), rel=1e-6
    )


def test_record_gradients_sums_squares_and_passes_updates_through():
    tx = calibration.record_gradients()
    params = {"w": jnp.zeros((2, 2)), "b": jnp.zeros(2)}
    state = tx.init(params)
    for g in (1.0, 2.0):
        grads = jax.tree.map(lambda p, g=g: jnp.full_like(p, g), params)
        updates, state = tx.update(grads, state)
        assert jax.tree.all(jax.tree.map(lambda u, x: bool(jnp.all(u == x)), updates, grads))
    assert int(state.count) == 2
    assert float(state.sum_sq["w"]) == 4 * (1 + 4) and float(state.sum_sq["b"]) == 2 * (1 + 4)


def test_measure_records_the_loss_gradient_and_the_weights():
    # With plain SGD the first update is -η g, so the loss gradient's RMS is
    # RMS(Δw) / η from one step of the unwrapped program: an independent check
    # of what the wrapped optimizer recorded.
    config = experiments.load_config(
        "digits_gan:smoke",
        [
            ("optimizer.g.name", "sgd"),
            ("optimizer.d.name", "sgd"),
            ("optimizer.g.learning_rate", "0.1"),
            ("optimizer.d.learning_rate", "0.1"),
            ("penalty.g.kind", "l2"),
            ("penalty.g.strength", "1.0"),
        ],
    )  # removed by measure
    record = calibration.measure(config, steps=1, seeds=(0,), progress=False)
    plain = program_lib.build_program(calibration.unregularised(config))
    state = plain.init(jax.random.key(0))
    from regan_jax import data

    batch = next(
        data.make_iterator(config.data, 0, rows_per_step=plain.rows_per_step, source=plain.source)
    )
    new, _ = jax.jit(plain.step)(state, batch)
    for net in ("g", "d"):
        leaves = penalties.masks.selected_leaves(state.params[net])
        after = dict(penalties.masks.selected_leaves(new.params[net]))
        delta = np.concatenate([np.ravel(after[p] - w) for p, w in leaves])
        weights = np.concatenate([np.ravel(after[p]) for p, _ in leaves])
        fields = record["networks"][net]
        assert fields["grad_rms"] == pytest.approx(np.sqrt(np.mean(delta**2)) / 0.1, rel=1e-4)
        assert fields["weight_rms"] == pytest.approx(np.sqrt(np.mean(weights**2)), rel=1e-5)
        assert fields["mean_abs"] == pytest.approx(np.mean(np.abs(weights)), rel=1e-5)
        assert fields["updates_per_step"] == 1.0
        init_units = np.concatenate([np.linalg.norm(np.asarray(w), axis=0) for _, w in leaves])
        assert fields["unit_norm_init"] == pytest.approx(np.median(init_units), rel=1e-5)
        assert set(fields["layers"]) == {p for p, _ in leaves}


def test_calibrate_cli_writes_a_record_that_runs_report(tmp_path, capsys):
    out = tmp_path / "cal.json"
    assert (
        calibrate_cli.main(
            [
                "--config",
                "digits_gan:smoke",
                "--out",
                str(out),
                "--steps",
                "2",
                "--seeds",
                "0",
                "--effective",
                "0.5,2",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    record = effective_strength.load(out)
    assert "| prox_l1 | g |" in printed and record["steps"] == 2
    base = experiments.load_config("digits_gan:smoke")
    members = members_lib.grid(
        base,
        ["weight_decay", "max_norm"],
        ["both"],
        {"strength": [0.5], "radius": [2.0]},
        [0],
        calibration=str(out),
    )
    for m in members:
        assert m.name.startswith(f"{m.penalty}-both-e")
        for net in ("g", "d"):
            got = effective_strength.summary_fields(m.config)
            assert got[f"effective_strength_{net}"] == pytest.approx(m.value, rel=1e-9)
        assert got["effective_strength"] == pytest.approx(m.value, rel=1e-9)
    # weight decay: e = T·η·λ exactly, whatever the weights.
    wd = members[0].config
    assert wd.penalty.g.strength == pytest.approx(0.5 / (wd.steps * wd.optimizer.g.learning_rate))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "--steps must be >= 1, got 0"),
        (["--seeds", "a"], "--seeds must be comma-separated integers"),
        (["--effective", "0,1"], "--effective must be numbers > 0"),
        (["--out", "x.txt"], "must end in .json"),
    ],
)
def test_calibrate_cli_bad_input_exits_2_writing_nothing(tmp_path, capsys, argv, message):
    args = {"--out": str(tmp_path / "cal.json")}
    args.update(dict(zip(argv[::2], argv[1::2])))
    flat = ["--config", "digits_gan:smoke"] + [x for kv in args.items() for x in kv]
    assert calibrate_cli.main(flat) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_config_naming_a_bad_record_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": 1, "networks": {"g": {}}}))
    with pytest.raises(
        experiments.UsageError, match="config.eval.calibration: .* is not a calibration record"
    ):
        experiments.load_config("digits_gan:smoke", [("eval.calibration", str(bad))])
    good = dict(format=1, networks={"encoder": FIELDS, "decoder": FIELDS})
    bad.write_text(json.dumps(good))
    with pytest.raises(experiments.UsageError, match=r"has networks \['decoder', 'encoder'\]"):
        experiments.load_config("digits_gan:smoke", [("eval.calibration", str(bad))])
