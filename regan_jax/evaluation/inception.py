"""Inception-v3 of pytorch-fid (the FID network), in Flax, from a user-supplied file.

The network is pytorch-fid's ``FIDInceptionV3`` (mseitzer/pytorch-fid,
``src/pytorch_fid/inception.py``): torchvision's Inception-v3 trunk with the
TF-graph patches — ``FIDInceptionA``/``C``/``E_1`` average-pool their pool
branch without counting padding (``count_include_pad=False``) and
``FIDInceptionE_2`` max-pools it — read up to the final average pool, whose
2048 channels are the FID features. Every conv is ``BasicConv2d``: conv without
bias, batch norm (eps = 1e-3, running statistics), ReLU.

Input: images ``[N, H, W, C]`` in [-1, 1], ``C`` in {1, 3} (grey images are
repeated to RGB). As pytorch-fid does with ``resize_input=True,
normalize_input=True``, they are bilinearly resized to 299 x 299 with
half-pixel centres and no antialiasing (``F.interpolate(mode='bilinear',
align_corners=False)``) and fed in [-1, 1]. pytorch-fid takes [0, 1] images and
maps them by ``2x - 1`` after resizing; bilinear weights sum to one, so
resizing the project's [-1, 1] images directly is the same computation.

Weights cannot be downloaded here; :func:`load_inception` reads them from a
file the user supplies: a NumPy ``.npz`` whose keys are exactly the PyTorch
state-dict keys of pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``
(values: the tensors as arrays). Each ``BasicConv2d`` at module path ``P``
maps to the Flax variables of the same path (``P.conv.weight`` ``[O,I,kh,kw]``
-> ``params[P]['conv']['kernel']`` ``[kh,kw,I,O]``, ``P.bn.*`` -> ``bn``'s
``scale``, ``bias``, ``batch_stats`` ``mean``, ``var``); ``fc.weight``
``[1008, 2048]`` is checked, not used; ``P.bn.num_batches_tracked`` and
``fc.bias`` are ignored. Any other key, a missing key or a shape mismatch
raises a ``ValueError``. The conversion command and the whole key table:
``docs/inception.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from regan_jax.evaluation.classifier import batched_apply

INPUT_SIZE = 299
FEATURE_DIM = 2048
FID_NUM_CLASSES = 1008  # the 2015-12-05 TF graph's logits; torchvision's ImageNet model has 1000


def resize_bilinear(images: jax.Array, size: int = INPUT_SIZE) -> jax.Array:
    """Bilinear resize of ``[N, H, W, C]`` to ``[N, size, size, C]`` as torch does it.

    Output pixel ``i`` samples the input at ``s = (i + 1/2) H / size - 1/2``,
    clamped to ``[0, H - 1]``, interpolating linearly between its neighbours:
    PyTorch's ``F.interpolate(mode='bilinear', align_corners=False)`` without
    antialiasing, which pytorch-fid uses.
    """
    n, _, _, c = images.shape
    return jax.image.resize(images, (n, size, size, c), method="bilinear", antialias=False)


class BasicConv(nn.Module):
    """torchvision's ``BasicConv2d``: ``relu(bn(conv(x)))``, conv without bias."""

    features: int
    kernel_size: tuple[int, int]
    strides: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ph, pw = self.padding
        x = nn.Conv(
            self.features,
            self.kernel_size,
            (self.strides, self.strides),
            padding=((ph, ph), (pw, pw)),
            use_bias=False,
            name="conv",
        )(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
    """3x3 stride-1 average pool that ignores the padding (the FID patch)."""
    return nn.avg_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    return nn.max_pool(x, (3, 3), (2, 2))


class InceptionA(nn.Module):
    """``FIDInceptionA``: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1 (pool_features)."""

    pool_features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b1 = BasicConv(64, (1, 1), name="branch1x1")(x)
        b5 = BasicConv(48, (1, 1), name="branch5x5_1")(x)
        b5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
        b3 = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
        b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
        b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
        bp = BasicConv(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """``InceptionB`` (grid reduction 35 -> 17): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b3 = BasicConv(384, (3, 3), strides=2, name="branch3x3")(x)
        bd = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
        bd = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = BasicConv(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
    """``FIDInceptionC``: factorised 7x7 branches with ``channels_7x7`` inner width."""

    channels_7x7: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c7 = self.channels_7x7
        b1 = BasicConv(192, (1, 1), name="branch1x1")(x)
        b7 = BasicConv(c7, (1, 1), name="branch7x7_1")(x)
        b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
        b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
        bd = BasicConv(c7, (1, 1), name="branch7x7dbl_1")(x)
        bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
        bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
        bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
        bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
        bp = BasicConv(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """``InceptionD`` (grid reduction 17 -> 8): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b3 = BasicConv(192, (1, 1), name="branch3x3_1")(x)
        b3 = BasicConv(320, (3, 3), strides=2, name="branch3x3_2")(b3)
        b7 = BasicConv(192, (1, 1), name="branch7x7x3_1")(x)
        b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = BasicConv(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
    """``FIDInceptionE_1`` (``pool='avg'``) / ``FIDInceptionE_2`` (``pool='max'``)."""

    pool: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b1 = BasicConv(320, (1, 1), name="branch1x1")(x)
        b3 = BasicConv(384, (1, 1), name="branch3x3_1")(x)
        b3 = jnp.concatenate(
            [
                BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3),
            ],
            axis=-1,
        )
        bd = BasicConv(448, (1, 1), name="branch3x3dbl_1")(x)
        bd = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate(
            [
                BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd),
            ],
            axis=-1,
        )
        if self.pool == "avg":
            pooled = _avg_pool_3x3(x)
        else:  # The FID graph's quirk: the last block max-pools its pool branch.
            pooled = nn.max_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)))
        bp = BasicConv(192, (1, 1), name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's Inception-v3 up to the 2048-d final average pool.

    ``__call__(images [N, H, W, 1|3] in [-1, 1]) -> features [N, 2048]``;
    variables ``{'params', 'batch_stats'}`` named as in the module docstring.
    """

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"FIDInceptionV3 expects images [N, H, W, 1 or 3], got {images.shape}")
        x = resize_bilinear(images.astype(jnp.float32))
        if x.shape[-1] == 1:
            x = jnp.repeat(x, 3, axis=-1)
        x = BasicConv(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)  # 149
        x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)  # 147
        x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
        x = _max_pool_3x3_s2(x)  # 73
        x = BasicConv(80, (1, 1), name="Conv2d_3b_1x1")(x)
        x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)  # 71
        x = _max_pool_3x3_s2(x)  # 35
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)  # 17
        for name, c7 in (
            ("Mixed_6b", 128),
            ("Mixed_6c", 160),
            ("Mixed_6d", 160),
            ("Mixed_6e", 192),
        ):
            x = InceptionC(c7, name=name)(x)
        x = InceptionD(name="Mixed_7a")(x)  # 8
        x = InceptionE("avg", name="Mixed_7b")(x)
        x = InceptionE("max", name="Mixed_7c")(x)
        return jnp.mean(x, axis=(1, 2))


def init_variables(key: jax.Array) -> Any:
    """Randomly initialised variables (for tests; real FID needs :func:`load_inception`)."""
    return FIDInceptionV3().init(key, jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))


@functools.cache  # tracing the whole network takes seconds; the shapes never change
def variable_shapes() -> Any:
    """Pytree of ``ShapeDtypeStruct`` of the variables (traced, nothing computed; do not mutate)."""
    return jax.eval_shape(init_variables, jax.random.key(0))


_TORCH_LEAF = {  # torch suffix -> (collection, flax leaf path)
    "conv.weight": ("params", ("conv", "kernel")),
    "bn.weight": ("params", ("bn", "scale")),
    "bn.bias": ("params", ("bn", "bias")),
    "bn.running_mean": ("batch_stats", ("bn", "mean")),
    "bn.running_var": ("batch_stats", ("bn", "var")),
}
_IGNORED_SUFFIXES = ("bn.num_batches_tracked",)
_IGNORED_KEYS = ("fc.bias",)


def torch_key_map() -> dict[str, tuple[str, tuple[str, ...], tuple[int, ...]]]:
    """PyTorch state-dict key -> ``(collection, flax path, torch shape)`` for every weight."""
    mapping = {}
    for collection, tree in variable_shapes().items():
        flat = jax.tree_util.tree_flatten_with_path(tree)[0]
        for path, leaf in flat:
            names = tuple(p.key for p in path)
            module, leaf_path = names[:-2], names[-2:]
            suffix = next(
                s for s, (c, lp) in _TORCH_LEAF.items() if (c, lp) == (collection, leaf_path)
            )
            shape = tuple(leaf.shape)
            if leaf_path == ("conv", "kernel"):
                shape = (shape[3], shape[2], shape[0], shape[1])
            mapping[".".join(module) + "." + suffix] = (collection, names, shape)
    return mapping


def _set_path(tree: dict, path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        tree = tree.setdefault(name, {})
    tree[path[-1]] = value


def variables_from_torch(state: dict[str, np.ndarray], source: str = "state dict") -> Any:
    """Flax variables from pytorch-fid's state dict (arrays keyed as in the module docstring).

    Raises:
        ValueError: naming ``source``, for a missing or unexpected key, a shape
            mismatch, or an ``fc.weight`` that is not the FID graph's
            ``[1008, 2048]``.
    """
    mapping = torch_key_map()
    missing = sorted(set(mapping) - set(state))
    unexpected = sorted(
        k
        for k in set(state) - set(mapping) - {"fc.weight"}
        if k not in _IGNORED_KEYS and not k.endswith(_IGNORED_SUFFIXES)
    )
    if missing or unexpected:
        raise ValueError(
            f"{source} is not pytorch-fid's FID Inception-v3 state dict: "
            f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys "
            f"{unexpected[:5]} (expected the {len(mapping)} keys of pt_inception-2015-12-05)"
        )
    fc_shape = tuple(np.shape(state.get("fc.weight", ())))
    if fc_shape != (FID_NUM_CLASSES, FEATURE_DIM):
        raise ValueError(
            f"{source}: fc.weight has shape {fc_shape}, expected {(FID_NUM_CLASSES, FEATURE_DIM)}; "
            "this is not the FID Inception (pt_inception-2015-12-05), e.g. torchvision's "
            "ImageNet Inception-v3, whose features give different FIDs"
        )
    variables: dict = {}
    for key, (collection, path, shape) in mapping.items():
        value = np.asarray(state[key], np.float32)
        if value.shape != shape:
            raise ValueError(f"{source}: {key} has shape {value.shape}, expected {shape}")
        if path[-1] == "kernel":
            value = value.transpose(2, 3, 1, 0)
        _set_path(variables.setdefault(collection, {}), path, jnp.asarray(value))
    return variables


@functools.partial(jax.jit, static_argnums=0)
def _apply(module: FIDInceptionV3, variables: Any, images: jax.Array) -> jax.Array:
    return module.apply(variables, images)


@dataclasses.dataclass(frozen=True)
class InceptionFeatures:
    """The FID feature extractor: ``features(images [N, H, W, 1|3] in [-1, 1]) -> [N, 2048]``.

    Attributes:
        variables: ``{'params', 'batch_stats'}`` of :class:`FIDInceptionV3`.
        batch_size: images per jitted call.
    """

    variables: Any
    batch_size: int = 50

    def features(self, images: Any, *, progress: bool | None = False) -> jax.Array:
        """Final-average-pool activations ``[N, 2048]`` (the FID features).

        ``progress``: a progress bar over the batches (None: only on a terminal).
        """
        x = np.asarray(images, np.float32)
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(
                f"Inception features need images [N, H, W, 1 or 3], got shape {x.shape}"
            )
        return batched_apply(
            functools.partial(_apply, FIDInceptionV3(), self.variables),
            x,
            self.batch_size,
            progress=progress,
            desc="inception features",
        )


def load_inception(path: str | pathlib.Path, batch_size: int = 50) -> InceptionFeatures:
    """The FID feature extractor with weights from ``path`` (format: module docstring).

    Raises:
        ValueError: a missing file, a file that is not an ``.npz``, or one that
            does not hold pytorch-fid's FID Inception weights.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(
            f"Inception weights file {path} not found (see regan_jax.evaluation.inception)"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path} is not a NumPy .npz of pytorch-fid's state dict: {err}") from err
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array, not an .npz of pytorch-fid's state dict")
    with loaded:
        state = {k: loaded[k] for k in loaded.files}
    return InceptionFeatures(variables_from_torch(state, source=str(path)), batch_size)
