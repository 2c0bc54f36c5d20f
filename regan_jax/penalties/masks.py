"""Which parameter leaves a penalty touches.

A :data:`Mask` is None (the default, :func:`kernel_mask`), a path regex, a
callable ``params -> bool tree`` (e.g. :func:`path_mask`) or a bool tree. The
transforms hand a checked callable to ``optax.masked``: a mask that selects no
parameter raises instead of silently penalising nothing.
"""

import dataclasses
import re
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp

Mask = None | str | Callable[[Any], Any] | Any


def kernel_mask(params: Any) -> Any:
    """True for kernels (leaves with ndim >= 2), False for biases and scales."""
    return jax.tree.map(lambda x: jnp.ndim(x) >= 2, params)


def path_mask(
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
) -> Callable[[Any], Any]:
    """A mask selecting leaves by regexes on their '/'-joined path.

    A leaf (e.g. path 'Dense_0/kernel') is selected when some ``include``
    pattern matches it (``re.search``; None = every leaf) and no ``exclude``
    pattern does.
    """
    return _PathMask(_compile(include), _compile(exclude))


def path_str(path: tuple) -> str:
    """'/'-joined names of a ``jax.tree_util`` key path, e.g. 'Dense_0/kernel'."""

    def name(entry):
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                return str(getattr(entry, attr))
        return str(entry)

    return "/".join(name(entry) for entry in path)


def _compile(patterns: str | Iterable[str] | None) -> tuple[re.Pattern, ...]:
    patterns = [patterns] if isinstance(patterns, str) else list(patterns or ())
    try:
        return tuple(re.compile(p) for p in patterns)
    except re.error as err:
        raise ValueError(f"invalid mask pattern in {patterns!r}: {err}") from None


@dataclasses.dataclass(frozen=True)
class _PathMask:
    """A callable path mask (a class so that errors can print its patterns).

    Deliberately not a NamedTuple: optax.masked would take a pytree for a mask tree.
    """

    include: tuple[re.Pattern, ...]
    exclude: tuple[re.Pattern, ...]

    def selects(self, path: str) -> bool:
        return (not self.include or any(p.search(path) for p in self.include)) and not any(
            p.search(path) for p in self.exclude
        )

    def __call__(self, params: Any) -> Any:
        return jax.tree_util.tree_map_with_path(
            lambda path, _: self.selects(path_str(path)), params
        )

    def __repr__(self) -> str:
        return (
            f"path_mask(include={[p.pattern for p in self.include]}, "
            f"exclude={[p.pattern for p in self.exclude]})"
        )


def resolve_mask(mask: Mask) -> Any:
    """None → kernel_mask; str → path_mask(include=str); else as given."""
    if mask is None:
        return kernel_mask
    if isinstance(mask, str):
        return path_mask(include=mask)
    return mask


def full_mask(mask: Mask, params: Any) -> Any:
    """The mask as a bool tree with exactly the structure of ``params``."""
    resolved = resolve_mask(mask)
    tree = resolved(params) if callable(resolved) else resolved
    return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), tree, params)


def selected_leaves(params: Any, mask: Mask = None) -> list[tuple[str, jax.Array]]:
    """(path, leaf) for every leaf the mask selects; ValueError if none is."""
    flat_mask = jax.tree.leaves(full_mask(mask, params))
    flat_params = jax.tree_util.tree_flatten_with_path(params)[0]
    chosen = [(path_str(p), x) for (p, x), m in zip(flat_params, flat_mask) if m]
    if not chosen:
        paths = [path_str(p) for p, _ in flat_params]
        name = "kernel_mask (the default: leaves with ndim >= 2)" if mask is None else repr(mask)
        raise ValueError(f"mask {name} matches no parameter; parameter paths: {paths}")
    return chosen


def checked_mask(mask: Mask) -> Callable[[Any], Any]:
    """A callable mask for ``optax.masked`` that raises when it selects nothing."""
    resolved = resolve_mask(mask)

    def mask_fn(params):
        selected_leaves(params, mask)
        return resolved(params) if callable(resolved) else resolved

    return mask_fn


def config_mask(name: str) -> Mask:
    """The mask a penalty config's ``mask`` field names: 'kernels', 'all' or a path regex."""
    if name == "kernels":
        return None  # the transforms' default, kernel_mask
    if name == "all":
        return path_mask()
    return path_mask(include=name)
