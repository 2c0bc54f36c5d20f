"""A vmapped group's members evaluated as one program score what each scores alone.

The reference is each member's own evaluation (``run_hooks``' single-run path,
``evaluation.evaluate`` with the member's key): every score of the final
summary and the in-training ``fd`` must agree within 1e-6 relative.
"""

import collections

import jax
import numpy as np
import pytest
import sklearn.cluster

from experiments.configs import digits_cgan, digits_gan, digits_vae, ring8_gan
from regan_jax import config as config_lib
from regan_jax import data, sweep
from regan_jax import program as program_lib
from regan_jax.evaluation import classifier, generalisation, members
from regan_jax.evaluation import hooks as hooks_lib

RTOL = 1e-6
TRAIN_STEPS = 30


def _group(get_config, protocol_v2=False):
    """A trained 3-member group (different seeds and strengths) and its program."""
    configs = []
    for seed, strength in ((0, 0.0), (1, 1e-3), (2, 1e-1)):
        c = get_config("smoke")
        c.seed = seed
        net = "d" if "d" in c.penalty else "decoder"
        c.penalty[net].kind = "l2"
        c.penalty[net].strength = strength
        c.eval.protocol_v2 = protocol_v2
        config_lib.validate(c)
        configs.append(c)
    program = program_lib.build_program(configs[0])
    state = sweep.stack_members([program_lib.init_member(program, c) for c in configs])
    step = sweep.vmap_step(program.step, shared_batch=True)
    batches = data.make_iterator(
        configs[0].data, 0, rows_per_step=program.rows_per_step, source=program.source
    )
    for _ in range(TRAIN_STEPS):
        state, _ = step(state, next(batches))
    return program, configs, state


def _assert_scores_close(group, alone):
    assert group.keys() == alone.keys()
    for name, value in alone.items():
        if value is None or isinstance(value, bool):
            assert group[name] == value, name
        else:
            np.testing.assert_allclose(group[name], value, rtol=RTOL, atol=0, err_msg=name)


def _final_and_cheap(program, configs, state, diverged=None):
    hooks = hooks_lib.run_hooks(program)
    size = len(configs)
    diverged = [False] * size if diverged is None else diverged
    final_keys = [jax.random.fold_in(program_lib.sample_key(c), 1) for c in configs]
    cheap_keys = [jax.random.fold_in(program_lib.sample_key(c), 7) for c in configs]
    group_final = hooks.final(state, configs, final_keys, diverged)
    group_cheap = hooks.cheap(state.params, cheap_keys, state.model_state)
    for k, c in enumerate(configs):
        member = sweep.member(state, k)
        alone_final = hooks.final(member, [c], [final_keys[k]], [diverged[k]])[0]
        alone_cheap = hooks.cheap(member.params, [cheap_keys[k]], member.model_state)[0]
        _assert_scores_close(group_final[k], alone_final)
        _assert_scores_close(group_cheap[k], alone_cheap)
    return group_final, group_cheap


@pytest.mark.parametrize("protocol_v2", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_group_scores_equal_each_members_own_digits_gan(protocol_v2):
    program, configs, state = _group(digits_gan.get_config, protocol_v2)
    final, cheap = _final_and_cheap(program, configs, state)
    assert all("fd" in c and c["fd"] is not None for c in cheap)
    assert all(f["kid"] is not None and f["precision"] is not None for f in final)
    if protocol_v2:
        assert all(c["r_t"] is not None for c in cheap)
        assert all(f["ppl"] is not None and f["copying_features"] is not None for f in final)
    # Three members that trained differently score differently.
    assert len({f["fd"] for f in final}) == 3


@pytest.mark.parametrize("get_config", [digits_cgan.get_config, ring8_gan.get_config])
def test_group_scores_equal_each_members_own_conditional_and_mixture(get_config):
    program, configs, state = _group(get_config)
    final, _ = _final_and_cheap(program, configs, state)
    assert all(f["modes"] is not None for f in final)


def test_a_diverged_member_gets_weight_statistics_only():
    program, configs, state = _group(digits_gan.get_config)
    final, _ = _final_and_cheap(program, configs, state, diverged=[False, True, False])
    assert "fd" not in final[1] and "sparsity_g" in final[1]
    assert final[0]["fd"] is not None and final[2]["fd"] is not None


def test_draw_members_draws_each_members_own_samples():
    """Member k's samples are draw_samples' with its own key, batch by batch."""
    program, configs, state = _group(digits_gan.get_config)
    keys = [jax.random.key(10 + k) for k in range(len(configs))]
    shape = program_lib.sample_shape(program)
    samples, labels = members.draw_members(
        members.vmap_sampler(program.sample),
        state.params,
        jax.numpy.stack(keys),
        7,
        shape,
        batch_size=3,
    )
    assert samples.shape == (3, 7, *shape) and labels is None
    for k, key in enumerate(keys):
        params = sweep.member(state.params, k)
        alone, _ = hooks_lib.evaluator.draw_samples(
            lambda key, n, p=params: program.sample(p, key, n)[0], key, 7, shape, batch_size=3
        )
        np.testing.assert_allclose(samples[k], alone, rtol=RTOL, atol=1e-7)


def test_features_and_logits_are_the_two_passes_bit_for_bit():
    clf = classifier.load_classifier("digits")
    images = np.concatenate([data.load("digits", "test").images] * 4)  # 1,188: two batches
    features, logits = clf.features_and_logits(images)
    np.testing.assert_array_equal(np.asarray(features), np.asarray(clf.features(images)))
    np.testing.assert_array_equal(np.asarray(logits), np.asarray(clf.logits(images)))


def _protocol_v2_members(program, configs, state):
    """``evaluate_members``' final scores of the group, its reference and training reference."""
    reference = hooks_lib.config_reference(program.config, program.source, program.test)
    train = hooks_lib.training_reference(reference, program.source)
    params_of = [sweep.member(state.params, k) for k in range(len(configs))]
    return members.evaluate_members(
        members.vmap_sampler(program.sample),
        state.params,
        [jax.random.fold_in(program_lib.sample_key(c), 1) for c in configs],
        reference,
        num_samples=configs[0].eval.num_samples,
        batch_size=configs[0].eval.batch_size,
        train=train,
        latent_maps=[hooks_lib.latent_map(program, p) for p in params_of],
    )


@pytest.mark.parametrize("get_config", [digits_gan.get_config, digits_vae.get_config])
def test_shared_statistics_score_each_member_bit_for_bit(get_config, monkeypatch):
    """The group's once-computed k-means cells, held-out distances and smoothness programs
    give every member exactly the scores it computes without them."""
    program, configs, state = _group(get_config, protocol_v2=True)
    shared = _protocol_v2_members(program, configs, state)
    assert all(s["copying_pixels"] is not None and s["ppl"] is not None for s in shared)
    monkeypatch.setattr(members.generalisation, "shared", lambda *args, **kwargs: None)
    per_member = _protocol_v2_members(program, configs, state)
    assert shared == per_member
    assert len({s["ppl"] for s in shared}) == len(configs)  # the members' own maps


def test_k_means_is_fitted_once_per_group_and_space(monkeypatch):
    """Two fits per group's final evaluation (pixels, features), not two per member; none
    for a later run on the same data in the same process (the cache by content)."""
    program, configs, state = _group(digits_gan.get_config, protocol_v2=True)
    monkeypatch.setattr(generalisation, "_SPLIT_CACHE", collections.OrderedDict())
    fits = []
    fit = sklearn.cluster.KMeans.fit

    def counted(self, *args, **kwargs):
        fits.append(self.n_clusters)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(sklearn.cluster.KMeans, "fit", counted)
    keys = [jax.random.fold_in(program_lib.sample_key(c), 1) for c in configs]
    scores = hooks_lib.run_hooks(program).final(state, configs, keys, [False] * 3)
    assert len(scores) == 3 and all(s["copying_features"] is not None for s in scores)
    assert len(fits) == 2
    again = hooks_lib.run_hooks(program).final(state, configs, keys, [False] * 3)
    assert again == scores and len(fits) == 2
