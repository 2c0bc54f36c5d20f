"""regan_jax.xla: the library's compiler options reach programs with convolutions, only them."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from regan_jax import xla

ON_CPU = jax.default_backend() == "cpu"


def _conv_loss(w, x):
    y = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.sum(y**2)


def _mlp_loss(w, x):
    return jnp.sum(jnp.tanh(x @ w) ** 2)


def _conv_args():
    rng = np.random.default_rng(0)
    return (
        jnp.asarray(rng.normal(size=(3, 3, 32, 32)), jnp.float32),
        jnp.asarray(rng.normal(size=(4, 14, 14, 32)), jnp.float32),
    )


@pytest.mark.skipif(not ON_CPU, reason="the options are XLA:CPU's")
def test_conv_weight_gradient_leaves_ynnpack_under_the_library_jit():
    """The weight gradient of a 3x3 convolution: a YNNPACK fusion under plain
    ``jax.jit`` (jaxlib 0.10's default), XLA's own convolution under ``xla.jit``."""
    grad = jax.grad(_conv_loss)
    args = _conv_args()
    plain = jax.jit(grad).lower(*args).compile().as_text()
    if "__ynn_fusion" not in plain:
        pytest.skip("this jaxlib no longer puts convolutions in YNNPACK by default")
    ours = xla.jit(grad).lower(*args).compile().as_text()
    assert "__ynn_fusion" not in ours and "convolution(" in ours
    # The same sums in another order: float32 reassociation of 784-term sums
    # (errors ~1e-7 of the gradient's scale; a wrong kernel would be O(1)).
    expected = np.asarray(jax.jit(grad)(*args))
    np.testing.assert_allclose(
        xla.jit(grad)(*args), expected, rtol=0, atol=1e-5 * np.max(np.abs(expected))
    )


def test_programs_without_a_convolution_compile_as_plain_jit():
    """Same compiled program, bitwise the same result (the study's MLP runs)."""
    rng = np.random.default_rng(1)
    args = (
        jnp.asarray(rng.normal(size=(16, 8)), jnp.float32),
        jnp.asarray(rng.normal(size=(32, 16)), jnp.float32),
    )
    grad = jax.grad(_mlp_loss)
    assert (
        xla.jit(grad).lower(*args).compile().as_text()
        == jax.jit(grad).lower(*args).compile().as_text()
    )
    np.testing.assert_array_equal(xla.jit(grad)(*args), jax.jit(grad)(*args))


def test_convolutions_are_found_wherever_they_nest():
    w, x = _conv_args()
    inner = jax.jit(_conv_loss)

    def scanned(w, xs):
        return lax.scan(lambda c, x: (c + inner(w, x[None]), None), 0.0, xs)[0]

    for fn, args in [
        (_conv_loss, (w, x)),
        (jax.grad(_conv_loss), (w, x)),
        (jax.vmap(_conv_loss, in_axes=(None, 0)), (w, x[:, None])),
        (scanned, (w, x)),
    ]:
        assert xla.has_convolution(jax.make_jaxpr(fn)(*args))
    assert not xla.has_convolution(
        jax.make_jaxpr(jax.grad(_mlp_loss))(jnp.ones((16, 8)), jnp.ones((32, 16)))
    )


def test_nested_inside_another_jit_uses_the_plain_jit():
    """Compiler options belong to the outermost program: nesting must not raise."""
    w, x = _conv_args()
    ours = xla.jit(_conv_loss)
    outer = jax.jit(lambda w, x: ours(w, x) + 1.0)
    np.testing.assert_allclose(outer(w, x), jax.jit(_conv_loss)(w, x) + 1.0, rtol=1e-6)


def test_options_per_backend_and_overrides():
    assert xla.compiler_options("cpu") == xla.CPU_OPTIONS
    assert xla.compiler_options("gpu") is None
    jitted = xla.jit(
        functools.partial(_conv_loss),
        static_argnums=(),
        compiler_options={"xla_cpu_enable_fast_math": False},
    )
    w, x = _conv_args()
    assert np.isfinite(float(jitted(w, x)))
