"""A small parameter tree and path helpers shared by the penalty and weight-statistics tests."""

import jax
import jax.numpy as jnp
import numpy as np


def make_params(seed=0):
    """A small conv + MLP parameter tree (Flax naming), kernels and biases."""
    rng = np.random.default_rng(seed)
    shapes = {
        "Conv_0": {"kernel": (2, 2, 3, 4), "bias": (4,)},
        "Dense_0": {"kernel": (4, 5), "bias": (5,)},
        "Dense_1": {"kernel": (5, 2), "bias": (2,)},
    }
    return jax.tree.map(
        lambda s: jnp.asarray(rng.normal(size=s), jnp.float32),
        shapes,
        is_leaf=lambda s: isinstance(s, tuple),
    )


def is_kernel_path(path):
    return path.endswith("kernel")


def leaves_by_path(tree):
    """{'Dense_0/kernel': float64 array, ...}."""
    return {
        jax.tree_util.keystr(p, simple=True, separator="/"): np.asarray(x, np.float64)
        for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def params_with_zeros():
    """Params with exact-zero entries and one all-zero filter in each kernel."""
    params = make_params(1)

    def zero_out(x):
        if x.ndim < 2:
            return x
        x = x.at[..., 0].set(0.0)
        return x.reshape(-1).at[1::3].set(0.0).reshape(x.shape)

    return jax.tree.map(zero_out, params)
