"""TensorBoard event files of a run, beside ``metrics.jsonl`` (``tensorboard --logdir runs/``).

Written with tensorboardX (no TensorFlow): every logged row's numbers as
scalars (losses, penalty values, in-training scores, wall time) and every
sample grid as an image, at the run's own step. A sweep writes one stream
per member, into the member's workdir. ``config.log.tensorboard`` turns it off.
"""

import math
import numbers

import numpy as np
from tensorboardX import SummaryWriter


class EventLog:
    """The event stream of one workdir (a no-op when disabled)."""

    def __init__(self, workdir, enabled: bool = True):
        self._writer = None
        if enabled:
            self._writer = SummaryWriter(logdir=str(workdir), flush_secs=30)

    def scalars(self, row: dict) -> None:
        """Every finite number of a metrics row except ``step``, at ``row['step']``."""
        if self._writer is None:
            return
        for key, value in row.items():
            if (
                key != "step"
                and isinstance(value, numbers.Real)
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                self._writer.add_scalar(key, value, row["step"])

    def image(self, tag: str, rgb: np.ndarray, step: int) -> None:
        """An ``[H, W, 3]`` uint8 image (a rendered sample grid)."""
        if self._writer is not None:
            self._writer.add_image(tag, rgb, step, dataformats="HWC")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
