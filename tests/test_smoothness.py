"""Generator smoothness against closed forms (a linear map) and jax.jacfwd (a small MLP)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regan_jax.evaluation import smoothness

RNG = np.random.default_rng(0)
A = jnp.asarray(RNG.standard_normal((12, 4)) * np.array([3.0, 1.0, 0.5, 0.2]), jnp.float32)


def linear(z):  # G(z) = A z, images [N, 3, 4]
    return (z @ A.T).reshape(z.shape[0], 3, 4)


def identity(x):
    return x.reshape(x.shape[0], -1)


def mlp(z):
    w1 = jnp.asarray(np.random.default_rng(1).standard_normal((3, 16)), jnp.float32)
    w2 = jnp.asarray(np.random.default_rng(2).standard_normal((16, 10)) / 4, jnp.float32)
    return jnp.tanh(jnp.tanh(z @ w1) @ w2)


def test_path_lengths_of_a_linear_map_are_its_squared_displacements():
    k0, k1 = jax.random.split(jax.random.key(0))
    z0, z1 = jax.random.normal(k0, (50, 4)), jax.random.normal(k1, (50, 4))
    t = jnp.linspace(0, 1, 50)
    got = smoothness.path_lengths(linear, identity, z0, z1, t)
    want = np.sum((np.asarray(z1 - z0, np.float64) @ np.asarray(A, np.float64).T) ** 2, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_perceptual_path_length_filters_the_documented_draws():
    key = jax.random.key(3)
    got = smoothness.perceptual_path_length(linear, identity, key, 400, 4, batch_size=128)
    k0, k1, _ = jax.random.split(key, 3)
    d = np.asarray(jax.random.normal(k1, (400, 4)) - jax.random.normal(k0, (400, 4)), np.float64)
    values = np.sum((d @ np.asarray(A, np.float64).T) ** 2, axis=1)
    low, high = np.percentile(values, [1, 99])
    assert got == pytest.approx(values[(values >= low) & (values <= high)].mean(), rel=1e-5)
    # Unfiltered, E ℓ = 2 ‖A‖_F²; the filter trims the top 1 % of a chi-square-like tail.
    fro2 = float(jnp.sum(A**2))
    assert 1.6 * fro2 < got < 2.2 * fro2


def test_jacobian_scores_of_a_linear_map_are_its_norm_and_condition_number():
    z = jax.random.normal(jax.random.key(4), (5, 4))
    out = smoothness.jacobian_scores(linear, z)
    a = np.asarray(A, np.float64)
    assert out["jacobian_fro"] == pytest.approx(np.linalg.norm(a), rel=1e-5)
    assert out["jacobian_log_cond"] == pytest.approx(np.log(np.linalg.cond(a)), rel=1e-4)
    # Random projections: unbiased for ‖A‖_F², relative sd ~ sqrt(2 / (N P)) ≈ 0.03 here.
    est = smoothness.jacobian_frobenius(linear, jnp.zeros((32, 4)), jax.random.key(5), 64)
    assert est == pytest.approx(np.linalg.norm(a), rel=0.1)


def test_small_mlp_against_jacfwd():
    z = jax.random.normal(jax.random.key(6), (20, 3))
    exact = np.stack(
        [np.asarray(jax.jacfwd(lambda v: mlp(v[None])[0])(zi), np.float64) for zi in z]
    )  # [N, 10, 3]
    s = smoothness.jacobian_singular_values(mlp, z)
    np.testing.assert_allclose(s, np.linalg.svd(exact, compute_uv=False), rtol=1e-4, atol=1e-6)
    fro = np.sqrt(np.mean(np.sum(exact**2, axis=(1, 2))))
    assert smoothness.jacobian_frobenius(mlp, z, jax.random.key(7), 256) == pytest.approx(
        fro, rel=0.1
    )
    # The path speed is |J (z1 - z0)|² with J at the interpolated point.
    z1 = jax.random.normal(jax.random.key(8), (20, 3))
    t = jnp.full((20,), 0.0)
    got = smoothness.path_lengths(mlp, identity, z, z1, t)
    want = np.sum(np.einsum("nij,nj->ni", exact, np.asarray(z1 - z, np.float64)) ** 2, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_filtered_mean_keeps_the_middle():
    values = np.arange(1.0, 101.0)  # percentiles 1 and 99: 1.99 and 99.01
    assert smoothness.filtered_mean(values) == pytest.approx(np.mean(np.arange(2.0, 100.0)))


def _linear_of(a, z):
    return (z @ a.T).reshape(z.shape[0], 3, 4)


def test_programs_compile_once_and_score_bit_for_bit():
    """A map given as a Partial: one compile for every parameter value, the closure's scores."""
    programs = smoothness.programs(identity)
    # jax.jit of one module-level function shares its compile cache across
    # wrappers, so other tests' Jacobian programs may already sit in it.
    jacobians_before = programs.jacobians._cache_size()
    key, z = jax.random.key(9), jax.random.normal(jax.random.key(10), (6, 4))
    for scale in (1.0, 0.5, 2.0):
        generate = jax.tree_util.Partial(_linear_of, A * scale)
        ppl = smoothness.perceptual_path_length(generate, identity, key, 40, 4, batch_size=16)
        assert ppl == smoothness.perceptual_path_length(
            generate, identity, key, 40, 4, batch_size=16, programs=programs
        )
        jacobian = smoothness.jacobian_scores(generate, z)
        assert jacobian == smoothness.jacobian_scores(generate, z, programs=programs)
        assert jacobian["jacobian_fro"] == pytest.approx(
            scale * np.linalg.norm(np.asarray(A, np.float64)), rel=1e-5
        )
    # Batches of 16, 16 and 8 latents; the Jacobian at 6.
    assert programs.path_lengths._cache_size() == 2
    assert programs.jacobians._cache_size() - jacobians_before == 1
