"""Instability flags beyond NaN, against hand-worked histories."""

import math

import pytest

from regan_jax.evaluation import stability


def test_fd_rebound_is_the_late_ratio_to_the_running_minimum():
    steps = [100, 200, 300, 400]
    # Running minimum 50, 20, 20, 20; the second half (steps > 200) has 30 and 60.
    assert stability.fd_rebound(steps, [50, 20, 30, 60], 400) == pytest.approx(3.0)
    assert stability.fd_rebound(steps, [50, 40, 30, 20], 400) == pytest.approx(1.0)
    assert stability.fd_rebound(steps, [50, 20, float("nan"), 20], 400) == math.inf
    assert stability.fd_rebound([100], [50], 400) is None
    assert stability.fd_rebound([100, 150], [50, 40], 400) is None  # nothing in the second half


def test_run_flags():
    history = [
        {"step": s, "fd": f} for s, f in ((100, 50.0), (200, 20.0), (300, 45.0), (400, 21.0))
    ] + [{"step": 50, "loss": 1.0}]
    flags = stability.run_flags(history, {"modes": 8, "robust_modes": 3}, 400, 8)
    assert flags == {"fd_rebound": pytest.approx(2.25), "oscillating": True, "collapsed": True}
    history[2]["fd"] = 40.0  # twice the best: not more than twice
    assert stability.run_flags(history, {"modes": 8}, 400, 8)["oscillating"] is False
    flags = stability.run_flags(history[:2], {"modes": 4}, 400, 8)
    assert flags == {"fd_rebound": None, "oscillating": None, "collapsed": False}
    assert stability.run_flags([], {}, 400, 0)["collapsed"] is None


def test_relative_flags_against_the_baseline_median():
    baseline = [10.0, 12.0, 30.0, None]  # median of the finite ones: 12
    assert stability.relative_flags(24.0, baseline, {}) == {"fd_blowup": False, "unstable": False}
    assert stability.relative_flags(24.1, baseline, {}) == {"fd_blowup": True, "unstable": True}
    assert stability.relative_flags(None, baseline, {"diverged": True})["fd_blowup"] is True
    assert stability.relative_flags(5.0, baseline, {"oscillating": True})["unstable"] is True
    assert stability.relative_flags(None, [None], {"collapsed": False}) == {
        "fd_blowup": None,
        "unstable": False,
    }
