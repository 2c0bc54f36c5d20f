"""Small CNN classifiers used as the feature networks of the in-house metrics.

Each image dataset without Inception weights gets a small classifier trained by
``python -m regan_jax.evaluation.train_classifier`` on its train split. Its
penultimate layer is the feature space of FD / KID / PRDC (the role Inception's
2048-d pool features play for FID), its softmax the ``p(y|x)`` of the class
metrics. Weights ship in ``regan_jax/evaluation/weights/<name>.msgpack``
(``flax.serialization`` msgpack of the params) next to ``<name>.json``, the
metadata that ties the file to its network and data: dataset name,
architecture, sha256 of the weights file and of the training images, held-out
accuracy, the command and seed that reproduce it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import tqdm.auto

WEIGHTS_DIR = pathlib.Path(__file__).parent / "weights"


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
    """Architecture of one dataset's classifier.

    Attributes:
        image_shape: ``(H, W, C)`` of the images it classifies.
        widths: output channels of the 3x3 conv stages.
        strides: their strides (2 halves the height and width, rounding up).
        feature_dim: width of the penultimate dense layer (the features).
        num_classes: number of logits.
        dropout_rate: dropout on the features while training (none at evaluation).
    """

    image_shape: tuple[int, int, int]
    widths: tuple[int, ...]
    strides: tuple[int, ...]
    feature_dim: int
    num_classes: int
    dropout_rate: float = 0.0


# Sized so that a weights file stays a few hundred KB (float32 params). The
# 8x8 digits keep full resolution in the first stage.
CLASSIFIER_SPECS: Mapping[str, ClassifierSpec] = {
    "digits": ClassifierSpec(
        image_shape=(8, 8, 1),
        widths=(32, 64, 64),
        strides=(1, 2, 2),
        feature_dim=64,
        num_classes=10,
        dropout_rate=0.3,
    ),
    "fashion_mnist": ClassifierSpec(
        image_shape=(28, 28, 1),
        widths=(32, 64, 64),
        strides=(2, 2, 2),
        feature_dim=64,
        num_classes=10,
    ),
}


class ClassifierCNN(nn.Module):
    """Conv stages -> dense features -> logits.

    ``x -> [conv3x3 stride s_i (w_i) -> relu]_i -> flatten -> dense(F) -> relu
    = features -> dropout (training only) -> dense(K) = logits``.

    Attributes:
        widths: channels ``w_i`` of the conv stages.
        strides: their strides ``s_i``.
        feature_dim: ``F``, the feature width.
        num_classes: ``K``, the number of classes.
        dropout_rate: dropout rate on the features while training.
    """

    widths: tuple[int, ...]
    strides: tuple[int, ...]
    feature_dim: int
    num_classes: int
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """Maps images ``[N, H, W, C]`` in [-1, 1] to ``(features [N, F], logits [N, K])``.

        With ``train=True`` the logits see dropped-out features (needs a
        ``'dropout'`` rng).
        """
        # Strided convolutions rather than max pooling: XLA's CPU gradient of
        # max pooling is several times slower, and these train on CPU.
        for width, stride in zip(self.widths, self.strides, strict=True):
            x = nn.relu(nn.Conv(width, (3, 3), strides=(stride, stride), padding="SAME")(x))
        x = x.reshape(x.shape[0], -1)
        features = nn.relu(nn.Dense(self.feature_dim)(x))
        dropped = nn.Dropout(self.dropout_rate, deterministic=not train)(features)
        return features, nn.Dense(self.num_classes)(dropped)


def spec_for(name: str) -> ClassifierSpec:
    """The classifier architecture of dataset ``name`` (ValueError if none)."""
    if name not in CLASSIFIER_SPECS:
        raise ValueError(
            f"no feature classifier for dataset {name!r}; known: {sorted(CLASSIFIER_SPECS)}"
        )
    return CLASSIFIER_SPECS[name]


def make_module(spec: ClassifierSpec) -> ClassifierCNN:
    """The flax module of ``spec``."""
    return ClassifierCNN(
        spec.widths, spec.strides, spec.feature_dim, spec.num_classes, spec.dropout_rate
    )


def init_params(spec: ClassifierSpec, key: jax.Array) -> Any:
    """Freshly initialised params of ``spec``'s network."""
    dummy = jnp.zeros((1, *spec.image_shape), jnp.float32)
    return make_module(spec).init(key, dummy)["params"]


def param_shapes(spec: ClassifierSpec) -> Any:
    """Pytree of ``jax.ShapeDtypeStruct`` of ``spec``'s params (nothing computed)."""
    return jax.eval_shape(lambda: init_params(spec, jax.random.key(0)))


@functools.partial(jax.jit, static_argnums=0)
def _apply(module: ClassifierCNN, params: Any, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return module.apply({"params": params}, x)


def batched_apply(
    fn: Callable[[jax.Array], jax.Array],
    x: np.ndarray,
    batch_size: int,
    *,
    progress: bool | None = False,
    desc: str = "features",
) -> jax.Array:
    """``fn`` over ``x`` in fixed-size batches (last one zero-padded: one compile).

    Args:
        fn: maps a ``[batch_size, ...]`` batch to outputs with a leading batch axis.
        x: inputs ``[N, ...]``.
        batch_size: rows per call.
        progress: progress bar over the batches: True shows it, False hides it,
            None shows it only on a terminal (tqdm's ``disable=None``).
        desc: the progress bar's label.
    """
    outputs = []
    starts = range(0, x.shape[0], batch_size)
    for start in tqdm.auto.tqdm(
        starts, desc=desc, leave=False, disable=None if progress is None else not progress
    ):
        chunk = x[start : start + batch_size]
        n = chunk.shape[0]
        if n < batch_size:
            chunk = np.concatenate(
                [chunk, np.zeros((batch_size - n, *chunk.shape[1:]), chunk.dtype)]
            )
        outputs.append(fn(jnp.asarray(chunk))[:n])
    return jnp.concatenate(outputs)


@dataclasses.dataclass(frozen=True)
class FeatureClassifier:
    """A trained classifier: features, logits and predictions of image batches.

    Every method takes images ``[N, H, W, C]`` in [-1, 1] with ``(H, W, C)`` equal
    to ``spec.image_shape`` and runs jitted in batches of ``batch_size``.

    Attributes:
        name: the dataset it was trained on.
        spec: its architecture.
        params: its params pytree.
        metadata: the weights' metadata (see the module docstring).
        batch_size: images per jitted call.
    """

    name: str
    spec: ClassifierSpec
    params: Any
    metadata: Mapping[str, Any]
    batch_size: int = 1000

    def _outputs(self, images: Any, index: int | None, progress: bool | None = False) -> jax.Array:
        # index 0: features, 1: logits, None: both side by side ([N, feature_dim + num_classes]).
        x = np.asarray(images, np.float32)
        if x.ndim != 4 or x.shape[1:] != self.spec.image_shape:
            raise ValueError(
                f"the {self.name!r} classifier expects images [N, {', '.join(map(str, self.spec.image_shape))}], "
                f"got shape {x.shape}"
            )
        module = make_module(self.spec)
        return batched_apply(
            lambda b: (
                jnp.concatenate(_apply(module, self.params, b), axis=1)
                if index is None
                else _apply(module, self.params, b)[index]
            ),
            x,
            self.batch_size,
            progress=progress,
            desc=f"{self.name} features",
        )

    def features(self, images: Any, *, progress: bool | None = False) -> jax.Array:
        """Penultimate-layer activations ``[N, feature_dim]`` (``progress``: see :func:`batched_apply`)."""
        return self._outputs(images, 0, progress)

    def logits(self, images: Any) -> jax.Array:
        """Class logits ``[N, num_classes]``."""
        return self._outputs(images, 1)

    def features_and_logits(self, images: Any) -> tuple[jax.Array, jax.Array]:
        """``(features(images), logits(images))`` from one pass of the network."""
        both = self._outputs(images, None)
        return both[:, : self.spec.feature_dim], both[:, self.spec.feature_dim :]

    def feature_map(self) -> Callable[[jax.Array], jax.Array]:
        """``images -> features``, traceable (no batching, no checks): for derivatives
        through the classifier (the perceptual path length)."""
        module = make_module(self.spec)
        return lambda images: _apply(module, self.params, images)[0]

    def predict(self, images: Any) -> jax.Array:
        """Predicted classes ``argmax_k logits`` as int32 ``[N]``."""
        return jnp.argmax(self.logits(images), axis=-1).astype(jnp.int32)


def _split_channels(images: Any) -> np.ndarray:
    """``[N, H, W, C] -> [N*C, H, W, 1]``, each image's channels consecutive."""
    x = np.asarray(images, np.float32)
    if x.ndim != 4:
        raise ValueError(f"expected images [N, H, W, C], got shape {x.shape}")
    n, h, w, c = x.shape
    return np.transpose(x, (0, 3, 1, 2)).reshape(n * c, h, w, 1)


@dataclasses.dataclass(frozen=True)
class PerChannelClassifier:
    """A single-channel classifier applied to every channel of an image separately.

    How ``stacked_digits`` (three digits as the RGB channels) is scored with the
    digits classifier: channel ``c`` of image ``i`` is classified on its own.

    Attributes:
        base: the single-channel classifier.
    """

    base: FeatureClassifier

    def features(self, images: Any, *, progress: bool | None = False) -> jax.Array:
        """Per-channel features concatenated: ``[N, C * feature_dim]``."""
        n = np.shape(images)[0]
        return self.base.features(_split_channels(images), progress=progress).reshape(n, -1)

    def predict(self, images: Any) -> jax.Array:
        """Per-channel predicted classes, int32 ``[N, C]``."""
        n = np.shape(images)[0]
        return self.base.predict(_split_channels(images)).reshape(n, -1)


def architecture_dict(spec: ClassifierSpec) -> dict[str, Any]:
    """JSON form of ``spec`` (tuples as lists), as stored in the metadata."""
    return json.loads(json.dumps(dataclasses.asdict(spec)))


def file_sha256(path: pathlib.Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def array_sha256(array: Any) -> str:
    """Hex sha256 of an array's float32 C-order bytes (the data fingerprint)."""
    return hashlib.sha256(np.ascontiguousarray(array, np.float32).tobytes()).hexdigest()


def _check_shapes(name: str, path: pathlib.Path, params: Any, spec: ClassifierSpec) -> None:
    expected = jax.tree.map(lambda s: tuple(s.shape), param_shapes(spec))
    try:
        got = jax.tree.map(lambda a: tuple(np.shape(a)), params)
    except Exception as err:  # noqa: BLE001 - any unreadable structure is "not this network"
        raise ValueError(f"{path} does not hold flax params: {err}") from err
    if got != expected:
        raise ValueError(
            f"{path} does not hold the {name!r} classifier's params: expected shapes {expected}, "
            f"got {got}"
        )


def load_classifier(name: str, weights_path: str | pathlib.Path | None = None) -> FeatureClassifier:
    """Loads the trained feature classifier of dataset ``name``.

    Args:
        name: dataset name (``'digits'`` or ``'fashion_mnist'``).
        weights_path: a ``.msgpack`` written by ``train_classifier`` with its
            ``.json`` metadata beside it; default the shipped
            ``weights/<name>.msgpack``.

    Returns:
        The classifier.

    Raises:
        ValueError: unknown dataset; missing files; metadata naming another dataset
            or architecture; a weights file whose sha256 differs from its metadata's;
            params whose structure or shapes are not this network's.
    """
    spec = spec_for(name)
    path = (
        pathlib.Path(weights_path) if weights_path is not None else WEIGHTS_DIR / f"{name}.msgpack"
    )
    meta_path = path.with_suffix(".json")
    for p in (path, meta_path):
        if not p.is_file():
            raise ValueError(
                f"classifier file {p} not found; train it with "
                f"`python -m regan_jax.evaluation.train_classifier --dataset {name} --out {path.parent}`"
            )
    metadata = json.loads(meta_path.read_text())
    if metadata.get("dataset") != name:
        raise ValueError(
            f"{path} holds the classifier of dataset {metadata.get('dataset')!r}, not {name!r}"
        )
    if metadata.get("architecture") != architecture_dict(spec):
        raise ValueError(
            f"{path} was trained with architecture {metadata.get('architecture')}, "
            f"but the {name!r} classifier is {architecture_dict(spec)}"
        )
    digest = file_sha256(path)
    if digest != metadata.get("weights_sha256"):
        raise ValueError(
            f"{path} has sha256 {digest}, but its metadata {meta_path} names "
            f"{metadata.get('weights_sha256')}: the weights file is not the one the metadata describes"
        )
    try:
        state = flax.serialization.msgpack_restore(path.read_bytes())
    except ValueError as err:  # msgpack's errors subclass ValueError; say which file and why
        raise ValueError(f"{path} is not a flax msgpack file: {err}") from err
    if not isinstance(state, dict) or "params" not in state:
        raise ValueError(f"{path} is not a classifier weights file (no 'params' entry)")
    _check_shapes(name, path, state["params"], spec)
    params = jax.tree.map(jnp.asarray, state["params"])
    return FeatureClassifier(name=name, spec=spec, params=params, metadata=metadata)
