"""The Dirac GAN: where weight penalties make simultaneous GAN training converge.

The two-parameter model of Mescheder, Geiger & Nowozin (2018), "Which training
methods for GANs do actually converge?", trained with the library's own optax
chains (:mod:`regan_jax.penalties`); only the study uses it (figure 4a). The
derivations and the measured results are in ``docs/dirac.md``.

Model. Data is a Dirac at x = 0; the generator is the point G = θ; the
discriminator is linear, D(x) = ψ·x. With f(t) = −log(1 + e^{−t}) (the
standard GAN; f′(t) = σ(−t), f′(0) = 1/2)

.. math::
    L(θ, ψ) = f(ψθ) + f(0),\\qquad \\min_θ \\max_ψ L.

G's loss is L, D's is −L (:func:`g_loss`, :func:`d_loss`). The unique
equilibrium is (θ, ψ) = (0, 0). Gradient descent on both losses follows the
field v(θ, ψ) = (−ψ f′(ψθ), θ f′(ψθ)) (:func:`vector_field`). Coupled L2 of
strength λ_g on θ and λ_d on ψ (and R1 of weight γ, which for a linear D is
coupled L2 on ψ: λ_d′ = λ_d + γ) gives the Jacobian at the equilibrium

.. math::
    J = \\begin{pmatrix} −λ_g & −f′(0) \\\\ f′(0) & −λ_d′ \\end{pmatrix},\\qquad
    μ_± = −\\frac{λ_g + λ_d′}{2} ± \\sqrt{\\Big(\\frac{λ_g − λ_d′}{2}\\Big)^2 − f′(0)^2}

(:func:`analytic_eigenvalues`): a centre without penalties, locally attracting
with either. One SGD step of size h is z ↦ z + h v(z), of Jacobian I + hJ for
simultaneous steps (:func:`update_jacobian`).

Contract. Each player's parameters are ``{'kernel': [[value]]}``, a 1×1 Dense
kernel, so the library's transforms apply with their default kernels-only
mask (:func:`player_params`). :data:`PENALTIES` are the study's penalties
(:data:`experiments.study.vocabulary.PENALTIES`: builder setting, label)
that the model compares; :func:`players` builds both players' transforms
with one of them on ``'d'``, ``'g'`` or ``'both'``; :func:`simulate` runs
both players in one ``lax.scan``.

Example (coupled L2 on D stabilises simultaneous SGD)::

    >>> import optax
    >>> from experiments.study import dirac
    >>> from regan_jax import penalties
    >>> d_tx = optax.chain(penalties.l2(0.3), optax.sgd(0.1))
    >>> path = dirac.simulate(d_tx, optax.sgd(0.1), 1.0, 1.0, steps=2000)
    >>> bool(abs(path[-1]).max() < 1e-4), path.shape
    (True, (2001, 2))

Reference: L. Mescheder, A. Geiger, S. Nowozin. Which Training Methods for
GANs do actually Converge? ICML 2018, section 2 and 3.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.study import vocabulary
from regan_jax import losses as losses_lib
from regan_jax import penalties
from regan_jax._names import check_name, choose

F_PRIME_0 = 0.5  # f′(0) = σ(0)
MODES = ("simultaneous", "alternating")
TARGETS = ("d", "g", "both")


# ----------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------


def f(t: jax.Array) -> jax.Array:
    """f(t) = −log(1 + e^{−t}) = −softplus(−t), the standard GAN's."""
    return -jax.nn.softplus(-t)


def player_params(value: Any) -> dict:
    """One player's parameters: ``{'kernel': [[value]]}`` (a 1×1 Dense kernel, float32)."""
    return {"kernel": jnp.reshape(jnp.asarray(value, jnp.float32), (1, 1))}


def scalar(params: dict) -> jax.Array:
    """The scalar θ or ψ held by :func:`player_params`."""
    return params["kernel"][0, 0]


def discriminator(d_params: dict, x: jax.Array) -> jax.Array:
    """D(x) = ψ·x for ``x`` of shape [N, 1]; logits [N]."""
    return (x @ d_params["kernel"])[:, 0]


def objective(theta: jax.Array, psi: jax.Array) -> jax.Array:
    """L(θ, ψ) = f(ψθ) + f(0): G minimises it, D maximises it."""
    return f(psi * theta) + f(jnp.zeros_like(psi))


def g_loss(g_params: dict, d_params: dict) -> jax.Array:
    """G's loss L(θ, ψ)."""
    return objective(scalar(g_params), scalar(d_params))


def d_loss(d_params: dict, g_params: dict, gamma_r1: Any = 0.0) -> jax.Array:
    """D's loss −L(θ, ψ) + γ·R1, R1 = ½‖∇_x D(0)‖² from :func:`regan_jax.losses.r1_penalty`.

    D(0) = 0 and D(G) = ψθ are written through :func:`discriminator`, so R1
    is the library's gradient penalty, not the closed form (γ/2)ψ².
    """
    real = jnp.zeros((1, 1), d_params["kernel"].dtype)
    fake = jnp.reshape(scalar(g_params), (1, 1))
    d_fn = functools.partial(discriminator, d_params)
    value = -(f(d_fn(fake)) + f(-d_fn(real)))[0]
    return value + gamma_r1 * losses_lib.r1_penalty(d_fn, real)


# ----------------------------------------------------------------------------
# Continuous time: the gradient field and its linearisation
# ----------------------------------------------------------------------------


def vector_field(
    theta: Any, psi: Any, *, gamma_r1: Any = 0.0, l2_g: Any = 0.0, l2_d: Any = 0.0
) -> jax.Array:
    """v = −(∂_θ[L + (λ_g/2)θ²], ∂_ψ[−L + γR1 + (λ_d/2)ψ²]): gradient flow of both players.

    The in-loss L2 terms are :func:`regan_jax.losses.l2_loss_term`, the
    reference the coupled transform is tested against.

    Returns:
      ``[v_θ, v_ψ]``, shape [2].
    """
    g, d = player_params(theta), player_params(psi)
    dg = jax.grad(lambda p: g_loss(p, d) + losses_lib.l2_loss_term(p, l2_g))(g)
    dd = jax.grad(lambda p: d_loss(p, g, gamma_r1) + losses_lib.l2_loss_term(p, l2_d))(d)
    return -jnp.stack([scalar(dg), scalar(dd)])


@jax.jit
def field_jacobian(
    theta: Any = 0.0, psi: Any = 0.0, *, gamma_r1: Any = 0.0, l2_g: Any = 0.0, l2_d: Any = 0.0
) -> jax.Array:
    """∂v/∂(θ, ψ) at a point by ``jax.jacfwd`` (rows: v_θ, v_ψ), shape [2, 2]."""

    def field(z):
        return vector_field(z[0], z[1], gamma_r1=gamma_r1, l2_g=l2_g, l2_d=l2_d)

    return jax.jacfwd(field)(jnp.array([theta, psi], jnp.float32))


def jacobian_at_equilibrium(*, gamma_r1: Any = 0.0, l2_g: Any = 0.0, l2_d: Any = 0.0) -> jax.Array:
    """The numeric Jacobian of the field at (0, 0); analytically [[−λ_g, −f′(0)], [f′(0), −λ_d − γ]]."""
    return field_jacobian(0.0, 0.0, gamma_r1=gamma_r1, l2_g=l2_g, l2_d=l2_d)


def analytic_eigenvalues(
    *, gamma_r1: float = 0.0, l2_g: float = 0.0, l2_d: float = 0.0
) -> np.ndarray:
    """μ_± = −(λ_g + λ_d′)/2 ± sqrt(((λ_g − λ_d′)/2)² − f′(0)²), λ_d′ = λ_d + γ.

    Returns:
      complex128 [2], ordered (−, +) in the square root.
    """
    lam_d = l2_d + gamma_r1
    root = np.sqrt(complex(((l2_g - lam_d) / 2) ** 2 - F_PRIME_0**2))
    centre = -(l2_g + lam_d) / 2
    return np.array([centre - root, centre + root])


def eigenvalues(matrix: Any) -> np.ndarray:
    """Eigenvalues of a real matrix in float64 on the host, sorted by (imag, real)."""
    values = np.linalg.eigvals(np.asarray(matrix, np.float64))
    return values[np.lexsort((values.real, values.imag))]


# ----------------------------------------------------------------------------
# Discrete time: training with optax transforms
# ----------------------------------------------------------------------------


class DiracState(NamedTuple):
    """Both players' parameters and optimizer states."""

    g_params: dict  # {'kernel': [1, 1]}
    d_params: dict  # {'kernel': [1, 1]}
    g_opt_state: Any
    d_opt_state: Any


def init_state(
    d_tx: optax.GradientTransformation, g_tx: optax.GradientTransformation, theta: Any, psi: Any
) -> DiracState:
    """The state at (θ, ψ) with freshly initialised optimizer states."""
    g, d = player_params(theta), player_params(psi)
    return DiracState(g, d, g_tx.init(g), d_tx.init(d))


def _apply(tx, grads, opt_state, params):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def train_step(
    state: DiracState,
    d_tx: optax.GradientTransformation,
    g_tx: optax.GradientTransformation,
    mode: str = "simultaneous",
    gamma_r1: Any = 0.0,
) -> DiracState:
    """One step of both players.

    ``'simultaneous'``: both gradients at the current point. ``'alternating'``:
    D steps first, then G against the new D.
    """
    check_name("update mode", mode, MODES)
    g, d = state.g_params, state.d_params
    d_grads = jax.grad(d_loss)(d, g, gamma_r1)
    if mode == "simultaneous":
        g_grads = jax.grad(g_loss)(g, d)
    new_d, d_opt_state = _apply(d_tx, d_grads, state.d_opt_state, d)
    if mode == "alternating":
        g_grads = jax.grad(g_loss)(g, new_d)
    new_g, g_opt_state = _apply(g_tx, g_grads, state.g_opt_state, g)
    return DiracState(new_g, new_d, g_opt_state, d_opt_state)


def _point(state: DiracState) -> jax.Array:
    return jnp.stack([scalar(state.g_params), scalar(state.d_params)])


@functools.partial(jax.jit, static_argnames=("d_tx", "g_tx", "steps", "mode"))
def simulate(
    d_tx: optax.GradientTransformation,
    g_tx: optax.GradientTransformation,
    theta0: Any,
    psi0: Any,
    steps: int,
    mode: str = "simultaneous",
    gamma_r1: Any = 0.0,
) -> jax.Array:
    """Trains both players for ``steps`` steps from (θ₀, ψ₀) in one ``lax.scan``.

    Args:
      d_tx, g_tx: optax transforms of D (ψ) and G (θ), used as static
        arguments (the same objects reuse one compiled program).
      theta0, psi0: the starting point.
      steps: number of steps.
      mode: ``'simultaneous'`` or ``'alternating'`` (D first).
      gamma_r1: R1 weight γ in D's loss.

    Returns:
      The trajectory [(θ_k, ψ_k)], shape [steps + 1, 2]; row 0 is the start.
    """
    check_name("update mode", mode, MODES)
    state = init_state(d_tx, g_tx, theta0, psi0)

    def body(state, _):
        state = train_step(state, d_tx, g_tx, mode, gamma_r1)
        return state, _point(state)

    _, path = jax.lax.scan(body, state, length=steps)
    return jnp.concatenate([_point(state)[None], path])


@functools.partial(jax.jit, static_argnames=("d_tx", "g_tx", "mode"))
def update_jacobian(
    d_tx: optax.GradientTransformation,
    g_tx: optax.GradientTransformation,
    theta: Any = 0.0,
    psi: Any = 0.0,
    mode: str = "simultaneous",
    gamma_r1: Any = 0.0,
) -> jax.Array:
    """∂(θ′, ψ′)/∂(θ, ψ) of one :func:`train_step` at a point, by ``jax.jacfwd``, [2, 2].

    The optimizer states are initialised at the point, so for stateful
    optimizers (momentum, Adam) this is the first step's map, not a
    linearisation of the joint (parameters, state) dynamics. For plain SGD of
    step h and simultaneous steps it is I + hJ, J = :func:`field_jacobian`.
    Spectral radius < 1 at the equilibrium: locally convergent.
    """

    def step(z):
        return _point(train_step(init_state(d_tx, g_tx, z[0], z[1]), d_tx, g_tx, mode, gamma_r1))

    return jax.jacfwd(step)(jnp.array([theta, psi], jnp.float32))


# ----------------------------------------------------------------------------
# The penalties compared, as the library builds them
# ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _library_optimizer(
    optimizer: str,
    learning_rate: float,
    kind: str = "none",
    coupling: str = "coupled",
    **hyperparams,
) -> optax.GradientTransformation:
    # Cached: equal settings give the same object, so simulate's compile cache
    # (keyed on the transforms) is hit instead of recompiling.
    opt_cfg = penalties.default_optimizer_config()
    opt_cfg.name, opt_cfg.learning_rate = optimizer, learning_rate
    pen_cfg = penalties.default_penalty_config()
    pen_cfg.kind, pen_cfg.coupling = kind, coupling
    for name, value in hyperparams.items():
        pen_cfg[name] = value
    return penalties.build_optimizer(opt_cfg, pen_cfg)


class DiracPenalty(NamedTuple):
    """One penalty of the comparison, read from the study's vocabulary.

    Attributes:
      label: legend text (the vocabulary's).
      parameter: what its value is: ``'strength'`` (λ), ``'radius'`` (r),
        ``'gamma'`` (R1's γ) or None.
      make: ``(value, learning_rate, optimizer) -> transform`` of a penalised
        player (the library's :func:`~regan_jax.penalties.build_optimizer`).
      loss_term: R1: the value is γ in D's loss, the transform is plain.
      closed_form: ``(value, target) -> analytic_eigenvalues kwargs``, or None
        where the field is not smooth at (0, 0) (L1, projections).
    """

    label: str
    parameter: str | None
    make: Callable[[float, float, str], optax.GradientTransformation]
    loss_term: bool = False
    closed_form: Callable[[float, str], dict] | None = None


def _plain(value, learning_rate, optimizer):
    del value
    return _library_optimizer(optimizer, learning_rate)


def _penalised(spec: vocabulary.Penalty, value, learning_rate, optimizer):
    fields = {field: value for field in (spec.swept, *spec.tied)}
    return _library_optimizer(optimizer, learning_rate, spec.kind, spec.coupling, **fields)


def _l2_kwargs(value, target):
    return {
        "l2_g": value if target in ("g", "both") else 0.0,
        "l2_d": value if target in ("d", "both") else 0.0,
    }


def _compared(name: str, closed_form=None) -> DiracPenalty:
    """The study's penalty ``name`` as the Dirac GAN applies it (R1: γ in D's loss)."""
    spec = vocabulary.PENALTIES[name]
    loss_term = ("loss.gradient_penalty", "r1") in spec.settings
    make = _plain if spec.kind == "none" else functools.partial(_penalised, spec)
    return DiracPenalty(
        spec.label, "gamma" if loss_term else spec.swept, make, loss_term, closed_form
    )


# The penalties compared, in drawing order (R1 after L2, whose path it lies on).
PENALTIES: dict[str, DiracPenalty] = {
    "none": _compared("none", lambda value, target: {}),
    "l2": _compared("l2", _l2_kwargs),
    # The gradient flow of SGD: coupled = decoupled.
    "weight_decay": _compared("weight_decay", _l2_kwargs),
    "r1": _compared("r1", lambda value, target: {"gamma_r1": value}),
    "l1": _compared("l1"),
    "prox_l1": _compared("prox_l1"),
    "max_norm": _compared("max_norm"),
}


class Players(NamedTuple):
    """What :func:`simulate` and :func:`update_jacobian` take: both transforms and γ."""

    d_tx: optax.GradientTransformation
    g_tx: optax.GradientTransformation
    gamma_r1: float = 0.0


def players(
    penalty: str, target: str, value: float, learning_rate: float, optimizer: str = "sgd"
) -> Players:
    """Both players' transforms with ``penalty`` (at ``value``) on ``target``.

    Args:
      penalty: a key of :data:`PENALTIES`.
      target: ``'d'``, ``'g'`` or ``'both'`` (R1: ``'d'`` only).
      value: its strength λ, radius r or R1 weight γ (ignored for 'none').
      learning_rate: both players' step size.
      optimizer: a key of :data:`regan_jax.penalties.OPTIMIZERS` (sgd, adam, rmsprop).

    Raises:
      ValueError: unknown penalty, target or optimizer; R1 on G.
    """
    spec = choose("Dirac penalty", penalty, PENALTIES)
    check_name("target", target, TARGETS)
    check_name("optimizer", optimizer, penalties.OPTIMIZERS)
    if spec.loss_term:
        if target != "d":
            raise ValueError(
                f"{penalty!r} is a discriminator loss term; target must be 'd', got {target!r}"
            )
        plain = _plain(value, learning_rate, optimizer)
        return Players(plain, plain, float(value))
    penalised = spec.make(value, learning_rate, optimizer)
    plain = _plain(value, learning_rate, optimizer)
    return Players(
        penalised if target in ("d", "both") else plain,
        penalised if target in ("g", "both") else plain,
    )
