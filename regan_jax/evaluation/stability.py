"""Instability beyond NaN: a run's flags from its score history and final scores.

"Diverged" (a non-finite loss or parameter) is rare; a GAN is more often
unstable in ways that leave every number finite. A run's summary carries

- ``fd_rebound``: over the evaluations in the second half of training, the
  largest ratio of the Fréchet distance to its running minimum so far,
  ``max_{t > T/2} FD_t / min_{s <= t} FD_s`` (1 for a run whose FD only
  falls; None without two in-training FDs, ``config.eval.fd_every``);
- ``oscillating``: ``fd_rebound`` > :data:`REBOUND` -- the FD climbed back
  to more than twice the best it had reached (training undid itself). The
  cheap in-training FD is noisy (500 samples), and the running minimum picks
  its luckiest draws: the stable digits GAN's rebound over 10,000 steps is
  1.37-1.74 (4 seeds), so a 50 % threshold would flag healthy runs;
- ``collapsed``: fewer than half of the data's modes covered at the end
  (``robust_modes`` where the mixture metrics give it, else ``modes``; the
  classes of a labelled dataset, the 1,000 stacked-digit modes, a mixture's
  components).

The fourth criterion of the study, a final FD above twice the stable
baseline's median, needs the baseline's runs and is applied where runs are
compared (:func:`relative_flags`).
"""

from collections.abc import Mapping, Sequence

import numpy as np

REBOUND = 2.0
RELATIVE_FD = 2.0


def fd_rebound(steps: Sequence[int], fds: Sequence[float], total_steps: int) -> float | None:
    """``max_{t > total/2} FD_t / min_{s <= t} FD_s`` over the evaluations (module docstring).

    Non-finite FDs count as infinitely far (the rebound is inf).
    """
    if len(fds) < 2:
        return None
    fds = np.asarray(fds, np.float64)
    fds = np.where(np.isfinite(fds), fds, np.inf)
    best = np.minimum.accumulate(fds)
    late = np.asarray(steps) > total_steps / 2
    if not late.any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(best > 0, fds / best, 1.0)
    return float(np.max(ratios[late]))


def run_flags(
    history: Sequence[Mapping], summary: Mapping, total_steps: int, num_modes: int
) -> dict:
    """``{'fd_rebound', 'oscillating', 'collapsed'}`` of one run (module docstring).

    Args:
      history: the rows of the run's ``metrics.jsonl`` (those with ``fd``
        count).
      summary: its final scores (``modes``, ``robust_modes``).
      total_steps: the run's length T.
      num_modes: the data's modes (0: none, then ``collapsed`` is None).
    """
    evaluated = [(r["step"], r["fd"]) for r in history if r.get("fd") is not None]
    rebound = fd_rebound([s for s, _ in evaluated], [f for _, f in evaluated], total_steps)
    covered = summary.get("robust_modes", summary.get("modes"))
    return {
        "fd_rebound": rebound,
        "oscillating": None if rebound is None else bool(rebound > REBOUND),
        "collapsed": (None if covered is None or not num_modes else bool(covered < num_modes / 2)),
    }


def relative_flags(final_fd: float | None, baseline_fds: Sequence[float], run: Mapping) -> dict:
    """The study-level flags of a run against its experiment's unregularised runs.

    ``fd_blowup``: its final FD is missing (diverged) or above
    :data:`RELATIVE_FD` times the median final FD of ``baseline_fds`` (None
    when neither has an FD); ``unstable``: diverged, oscillating, collapsed
    or ``fd_blowup``.
    """
    finite = [f for f in baseline_fds if f is not None and np.isfinite(f)]
    if not finite:
        blowup = None
    else:
        blowup = (
            final_fd is None
            or not np.isfinite(final_fd)
            or bool(final_fd > RELATIVE_FD * float(np.median(finite)))
        )
    unstable = any(bool(run.get(k)) for k in ("diverged", "oscillating", "collapsed")) or bool(
        blowup
    )
    return {"fd_blowup": blowup, "unstable": unstable}
