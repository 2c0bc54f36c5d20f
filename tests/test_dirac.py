"""The Dirac GAN (experiments.study.dirac): closed forms, discrete-step claims, the figure."""

import doctest
import math

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from matplotlib.figure import Figure

from experiments.study import dirac
from experiments.study.figures import dirac as dirac_figures
from regan_jax import losses
from regan_jax import penalties as P

H = 0.1
FP = dirac.F_PRIME_0
START = (1.0, 1.0)


def _sorted(values):
    values = np.asarray(values)
    return values[np.lexsort((values.real, values.imag))]


def spectral_radius(matrix):
    """max |μ| over the eigenvalues of ``matrix`` (float64 numpy: the reference)."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(matrix, np.float64)))))


def _path(
    penalty, target, value, *, lr=H, optimizer="sgd", steps=1000, mode="simultaneous", start=START
):
    players = dirac.players(penalty, target, value, lr, optimizer)
    return np.asarray(
        dirac.simulate(players.d_tx, players.g_tx, *start, steps, mode, players.gamma_r1),
        np.float64,
    )


def _update_jacobian(penalty, target, value, point=(0.0, 0.0), mode="simultaneous", lr=H):
    players = dirac.players(penalty, target, value, lr)
    return np.asarray(
        dirac.update_jacobian(players.d_tx, players.g_tx, *point, mode, players.gamma_r1),
        np.float64,
    )


# ----------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------


def test_losses_are_the_paper_objective_and_the_library_gan_loss():
    theta, psi = 0.7, -1.3
    g, d = dirac.player_params(theta), dirac.player_params(psi)
    objective = -math.log1p(math.exp(-psi * theta)) - math.log(2.0)
    np.testing.assert_allclose(dirac.g_loss(g, d), objective, rtol=1e-6)
    np.testing.assert_allclose(dirac.d_loss(d, g), -objective, rtol=1e-6)
    # The library's non-saturating D loss is −L with D's sign flipped (D' = −ψx).
    library = losses.gan_loss("non_saturating").d(jnp.zeros(1), jnp.array([-psi * theta]))
    np.testing.assert_allclose(dirac.d_loss(d, g), library, rtol=1e-6)
    # R1 through the library's gradient penalty is the closed form (γ/2)ψ².
    np.testing.assert_allclose(
        dirac.d_loss(d, g, 0.8) - dirac.d_loss(d, g), 0.4 * psi**2, rtol=1e-6
    )


def test_field_is_the_papers():
    theta, psi = 0.4, -0.9
    fp = 1.0 / (1.0 + math.exp(psi * theta))
    np.testing.assert_allclose(dirac.vector_field(theta, psi), [-psi * fp, theta * fp], rtol=1e-6)


# ----------------------------------------------------------------------------
# Continuous time: eigenvalues at the equilibrium
# ----------------------------------------------------------------------------

EIGEN_CASES = (
    [{}]
    + [{"gamma_r1": g} for g in (0.3, 1.0, 3.0)]
    + [{"l2_d": s} for s in (0.3, 1.0, 3.0)]
    + [{"l2_g": s} for s in (0.3, 1.0, 3.0)]
    + [{"l2_g": s, "l2_d": s} for s in (0.3, 1.0, 3.0)]
    + [{"l2_g": 0.2, "l2_d": 1.5}, {"l2_d": 0.4, "gamma_r1": 0.7}]
)


@pytest.mark.parametrize(
    "kwargs", EIGEN_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "none"
)
def test_numeric_jacobian_and_eigenvalues_match_closed_form(kwargs):
    lam_g = kwargs.get("l2_g", 0.0)
    lam_d = kwargs.get("l2_d", 0.0) + kwargs.get("gamma_r1", 0.0)
    jacobian = dirac.jacobian_at_equilibrium(**kwargs)
    np.testing.assert_allclose(jacobian, [[-lam_g, -FP], [FP, -lam_d]], atol=1e-6)
    np.testing.assert_allclose(
        dirac.eigenvalues(jacobian), _sorted(dirac.analytic_eigenvalues(**kwargs)), atol=1e-5
    )


def test_closed_form_special_cases():
    np.testing.assert_allclose(_sorted(dirac.analytic_eigenvalues()), [-0.5j, 0.5j])
    lam = 0.3  # λ < 2f'(0): complex pair with real part −λ/2
    np.testing.assert_allclose(dirac.analytic_eigenvalues(l2_d=lam).real, -lam / 2)
    np.testing.assert_allclose(
        dirac.analytic_eigenvalues(l2_g=lam), dirac.analytic_eigenvalues(l2_d=lam)
    )
    for lam in (0.3, 3.0):  # L2 on both: −λ ± i f'(0) for every λ
        np.testing.assert_allclose(
            _sorted(dirac.analytic_eigenvalues(l2_g=lam, l2_d=lam)),
            [-lam - FP * 1j, -lam + FP * 1j],
        )


# ----------------------------------------------------------------------------
# R1 ≡ coupled L2 on ψ
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("gamma", [0.3, 1.0, 3.0])
def test_r1_is_coupled_l2_on_d(optimizer, gamma):
    lr = H if optimizer == "sgd" else 0.01
    r1 = _path("r1", "d", gamma, lr=lr, optimizer=optimizer, steps=300)
    l2 = _path("l2", "d", gamma, lr=lr, optimizer=optimizer, steps=300)
    np.testing.assert_allclose(r1, l2, atol=1e-6)
    np.testing.assert_allclose(
        dirac.jacobian_at_equilibrium(gamma_r1=gamma),
        dirac.jacobian_at_equilibrium(l2_d=gamma),
        atol=1e-7,
    )
    np.testing.assert_allclose(
        dirac.analytic_eigenvalues(gamma_r1=gamma), dirac.analytic_eigenvalues(l2_d=gamma)
    )


def test_r1_is_coupled_l2_with_user_built_chains():
    gamma = 0.5
    plain = optax.sgd(H)
    with_r1 = dirac.simulate(plain, plain, *START, 400, gamma_r1=gamma)
    l2_chain = optax.chain(P.l2(gamma), optax.sgd(H))
    with_l2 = dirac.simulate(l2_chain, plain, *START, 400)
    np.testing.assert_allclose(with_r1, with_l2, atol=1e-6)


# ----------------------------------------------------------------------------
# Discrete steps
# ----------------------------------------------------------------------------

UPDATE_CASES = [
    ("none", "d", 0.0),
    ("l2", "d", 0.3),
    ("l2", "g", 0.3),
    ("l2", "both", 1.0),
    ("weight_decay", "d", 0.3),
    ("r1", "d", 0.7),
]


@pytest.mark.parametrize("point", [(0.0, 0.0), (0.3, -0.7)])
@pytest.mark.parametrize("penalty,target,value", UPDATE_CASES)
def test_simultaneous_sgd_update_jacobian_is_identity_plus_hj(penalty, target, value, point):
    kwargs = (
        {"gamma_r1": value}
        if penalty == "r1"
        else (dirac.PENALTIES[penalty].closed_form(value, target))
    )
    expected = np.eye(2) + H * np.asarray(dirac.field_jacobian(*point, **kwargs))
    np.testing.assert_allclose(_update_jacobian(penalty, target, value, point), expected, atol=1e-6)


def test_plain_optax_sgd_update_jacobian():
    sgd = optax.sgd(H)
    np.testing.assert_allclose(
        dirac.update_jacobian(sgd, sgd, 0.2, 0.5),
        np.eye(2) + H * np.asarray(dirac.field_jacobian(0.2, 0.5)),
        atol=1e-6,
    )


def test_unregularised_simultaneous_sgd_spirals_out():
    rho = spectral_radius(_update_jacobian("none", "d", 0.0))
    np.testing.assert_allclose(rho, math.sqrt(1 + H**2 * FP**2), rtol=1e-6)
    # |z + hv|² = |z|² + h²|v|² (v ⟂ z): the norm grows at every step.
    norms = np.linalg.norm(_path("none", "d", 0.0), axis=1)
    assert np.all(np.diff(norms) > 0)


@pytest.mark.parametrize("h", [0.1, 1.0, 3.9])
def test_alternating_sgd_spectral_radius_is_one(h):
    jacobian = _update_jacobian("none", "d", 0.0, mode="alternating", lr=h)
    a = h * FP
    np.testing.assert_allclose(jacobian, [[1 - a**2, -a], [a, 1.0]], atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(jacobian), 1.0, atol=1e-5)
    np.testing.assert_allclose(spectral_radius(jacobian), 1.0, atol=1e-5)


def test_alternating_sgd_past_the_bound_diverges():
    # h f'(0) > 2: trace 2 − a² < −2, real eigenvalues of product 1.
    assert spectral_radius(_update_jacobian("none", "d", 0.0, mode="alternating", lr=4.4)) > 1.0


def test_alternating_sgd_orbit_is_bounded_and_does_not_converge():
    norms = np.linalg.norm(_path("none", "d", 0.0, mode="alternating", steps=5000), axis=1)
    ratio = norms / norms[0]
    assert 0.9 < ratio.min() and ratio.max() < 1.1


@pytest.mark.parametrize("lam", [0.01, 0.02, 0.03, 0.1, 0.3])
def test_coupled_l2_on_d_converges_iff_lambda_exceeds_h_fprime_squared(lam):
    rho = spectral_radius(_update_jacobian("l2", "d", lam))
    np.testing.assert_allclose(
        rho, np.abs(1 + H * dirac.analytic_eigenvalues(l2_d=lam)).max(), rtol=1e-6
    )
    # |1 + hμ|² = 1 − hλ + h²f'(0)² for complex μ.
    assert (rho < 1) == (lam > H * FP**2)


@pytest.mark.parametrize("target", ["d", "g", "both"])
def test_coupled_l2_converges_to_the_equilibrium(target):
    path = _path("l2", target, 0.3, steps=2000)
    assert np.abs(path[-1]).max() < 1e-4
    mu = dirac.analytic_eigenvalues(**dirac.PENALTIES["l2"].closed_form(0.3, target))
    np.testing.assert_allclose(
        spectral_radius(_update_jacobian("l2", target, 0.3)), np.abs(1 + H * mu).max(), rtol=1e-6
    )


def test_weight_decay_is_coupled_l2_under_sgd_but_not_under_adam():
    for target in ("d", "g", "both"):
        np.testing.assert_array_equal(
            _path("weight_decay", target, 0.3, steps=300), _path("l2", target, 0.3, steps=300)
        )
    adamw = _path("weight_decay", "d", 0.3, lr=0.01, optimizer="adam", steps=300)
    adam_l2 = _path("l2", "d", 0.3, lr=0.01, optimizer="adam", steps=300)
    assert not np.allclose(adamw, adam_l2, atol=1e-3)


@pytest.mark.parametrize("target", ["d", "g", "both"])
def test_norm_ball_bounds_but_does_not_converge(target):
    r = 0.5
    path = _path("max_norm", target, r, steps=2000)
    coords = {"d": [1], "g": [0], "both": [0, 1]}[target]
    assert np.abs(path[1:, coords]).max() <= r * (1 + 1e-6)
    # Inside the box a step increases ‖z‖; a clipped step leaves a coordinate at ±r.
    norms = np.linalg.norm(path, axis=1)
    assert norms.min() >= min(norms[0], r) * (1 - 1e-6)


def _dead_zone_consistent(path, lam, coordinate):
    """ISTA: the penalised coordinate is 0 after a step iff |w + h·(−grad)| <= hλ."""
    theta, psi = path[:-1, 0], path[:-1, 1]
    fp = 1.0 / (1.0 + np.exp(psi * theta))
    z = psi + H * theta * fp if coordinate == 1 else theta - H * psi * fp
    margin = np.abs(np.abs(z) - H * lam) > 1e-6  # skip steps on the threshold's rounding
    zero_next = path[1:, coordinate] == 0
    np.testing.assert_array_equal(zero_next[margin], (np.abs(z) <= H * lam)[margin])


@pytest.mark.parametrize("lam", [0.1, 0.3, 1.0])
@pytest.mark.parametrize("target,coordinate", [("d", 1), ("g", 0)])
def test_prox_l1_stops_on_its_segment_of_fixed_points(target, coordinate, lam):
    path = _path("prox_l1", target, lam, steps=3000)
    _dead_zone_consistent(path, lam, coordinate)
    other = 1 - coordinate
    # Fixed points: penalised coordinate 0 and f'(0)|other| <= λ.
    on_segment = (path[:, coordinate] == 0) & (FP * np.abs(path[:, other]) <= lam)
    assert on_segment.any(), "never reached the fixed segment"
    first = int(np.argmax(on_segment))
    np.testing.assert_array_equal(path[first:], np.broadcast_to(path[first], path[first:].shape))
    assert path[-1, other] != 0, "stopped exactly at the equilibrium"


def test_prox_l1_on_both_reaches_the_equilibrium_exactly():
    path = _path("prox_l1", "both", 0.3, steps=1000)
    at_zero = (path == 0).all(axis=1)
    assert at_zero.any()
    assert at_zero[int(np.argmax(at_zero)) :].all()


def test_subgradient_l1_makes_no_exact_zeros():
    path = _path("l1", "d", 0.3, steps=1000)
    assert not (path[1:, 1] == 0).any()
    assert (_path("prox_l1", "d", 0.3, steps=1000)[1:, 1] == 0).any()


# ----------------------------------------------------------------------------
# Interface
# ----------------------------------------------------------------------------


def test_simulate_shape_and_start():
    sgd = optax.sgd(H)
    path = dirac.simulate(sgd, sgd, 0.5, -0.25, 7)
    assert path.shape == (8, 2)
    np.testing.assert_array_equal(path[0], [0.5, -0.25])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: dirac.players("r1", "g", 1.0, H), "discriminator loss term"),
        (lambda: dirac.players("dropout", "d", 1.0, H), "unknown Dirac penalty"),
        (lambda: dirac.players("l2", "x", 1.0, H), "unknown target"),
        (lambda: dirac.players("l2", "d", 1.0, H, "lbfgs"), "unknown optimizer"),
        (
            lambda: dirac.simulate(optax.sgd(H), optax.sgd(H), 1.0, 1.0, 3, "leapfrog"),
            "update mode",
        ),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_every_penalty_builds_on_every_target():
    plain = dirac.players("none", "d", 0.0, H).d_tx  # cached: equal settings, same object
    for name, spec in dirac.PENALTIES.items():
        for target in ("d",) if spec.loss_term else dirac.TARGETS:
            players = dirac.players(name, target, 0.5, H)
            weighted = name != "none" and not spec.loss_term
            assert (players.d_tx is not plain) == (weighted and target in ("d", "both"))
            assert (players.g_tx is not plain) == (weighted and target in ("g", "both"))
            assert players.gamma_r1 == (0.5 if spec.loss_term else 0.0)


def test_module_docstring_example():
    result = doctest.testmod(dirac, verbose=False)
    assert result.failed == 0 and result.attempted > 0


def test_fig_dirac():
    fig = dirac_figures.fig_dirac("smoke", steps=60)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 5
    assert titles[0].startswith("penalty on D") and titles[2].startswith("penalty on G")
    assert "eigenvalues" in titles[4]
    assert "preset smoke" in fig._suptitle.get_text() and "60 steps" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="unknown Dirac preset"):
        dirac_figures.fig_dirac("huge")
