"""Batches made on the device, inside the compiled step, from a descriptor per step.

The host-side iterator (:func:`regan_jax.data.make_iterator` with
``on_device=True``) still decides *which* data each step sees -- the same
epoch permutations, mixture keys and resumable position -- but yields a
small descriptor instead of the batch:

- an image dataset: ``{'rows': int32 [b]}``, the dataset rows of the batch;
  the images and labels live on the device (:attr:`DeviceFeed.arrays`,
  put there once) and ``gather`` indexes them;
- a 2-D mixture: ``{'key': uint32 key data, 'index': int32}``, the member's
  base key and the batch index; ``gather`` draws
  ``mixtures.draw(fold_in(key, index), centres, sigma, b)`` -- the very
  function the host iterator calls, with the centres and σ as arguments.

So ``gather(arrays, descriptor)`` is bitwise the host iterator's batch
(tests/test_device_data.py), and the loop can run several steps per
dispatch (:func:`regan_jax.steps.scan_steps`) with no host work between
them. Descriptors carry the member axis of a group iterator like batches do.
"""

from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from regan_jax.data import mixtures
from regan_jax.data.mixtures import Mixture
from regan_jax.data.spec import ArrayDataset


class DeviceFeed(NamedTuple):
    """The data a step reads on the device.

    Attributes:
      arrays: ``{'image', 'label'}`` of the whole split, or a mixture's
        ``{'centres', 'sigma'}`` (numpy). The runner (:func:`regan_jax.parallel.fed_parallel`) puts
        them on the devices once and passes them to the compiled step as an
        argument -- shared by every member and step, never a compile-time
        constant.
      gather: ``(arrays, descriptor) -> {'image', 'label'}``, pure and
        jittable: one member's batch of one step.
    """

    arrays: dict
    gather: Callable[[dict, dict], dict]


def device_feed(source: ArrayDataset | Mixture, batch_size: int) -> DeviceFeed:
    """The :class:`DeviceFeed` of ``source`` with ``batch_size`` rows per step (the iterator's)."""
    if isinstance(source, Mixture):

        def draw(arrays, descriptor):
            key = jax.random.fold_in(
                jax.random.wrap_key_data(descriptor["key"]), descriptor["index"]
            )
            image, label = mixtures.draw(key, arrays["centres"], arrays["sigma"], batch_size)
            return {"image": image, "label": label}

        # Arguments, not constants: constant-folded, the draw would differ in the last bit.
        return DeviceFeed(
            {"centres": np.asarray(source.centres, np.float32), "sigma": np.float32(source.sigma)},
            draw,
        )

    arrays = {"image": np.asarray(source.images), "label": np.asarray(source.labels)}

    def gather(arrays, descriptor):
        return {name: values[descriptor["rows"]] for name, values in arrays.items()}

    return DeviceFeed(arrays, gather)


def stack_descriptors(descriptors: list[dict]) -> dict[str, Any]:
    """Consecutive steps' descriptors stacked on a new leading step axis (numpy)."""
    return {name: np.stack([d[name] for d in descriptors]) for name in descriptors[0]}
