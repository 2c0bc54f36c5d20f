"""The convergence criteria of the unregularised baselines, on hand-made histories."""

import pytest

from experiments.study import convergence


def _history(values, metric):
    return [{"step": 1000 * (i + 1), metric: v} for i, v in enumerate(values)] + [{"step": 50}]


def test_medians_over_runs_at_common_steps():
    runs = [
        _history([100, 60, 40, 38], "fd"),
        _history([120, 50, 44, 40], "fd"),
        _history([90, 70, 42], "fd"),
    ]
    assert convergence.medians(runs, "fd") == {1000: 100.0, 2000: 60.0, 3000: 42.0}


def test_fd_plateau_needs_t_and_2t():
    # FD(1000) = 100 > 1.1 * FD(2000) = 66; FD(2000) = 60 > 1.1 * FD(4000) = 41.8;
    # FD(3000) = 45 has no 6000; so the first plateau is never met, then met at 2000 with 55.
    curve = {1000: 100.0, 2000: 60.0, 3000: 45.0, 4000: 38.0}
    assert convergence.converged_at(curve, "fd") is None
    assert convergence.converged_at({**curve, 4000: 55.0}, "fd") == 2000


def test_mixtures_need_half_their_mass_on_the_modes():
    assert convergence.converged_at({1000: 0.1, 2000: 0.49, 3000: 0.5}, "hq_fraction") == 3000
    # A dip below 0.5 later resets it: the run must keep its mass on the modes.
    assert convergence.converged_at({1000: 0.6, 2000: 0.4, 3000: 0.7}, "hq_fraction") == 3000
    assert convergence.converged_at({1000: 0.1}, "hq_fraction") is None
    with pytest.raises(ValueError, match="no convergence criterion for metric 'kid'"):
        convergence.converged_at({}, "kid")
