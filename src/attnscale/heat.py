r"""Attention as one step of a backward heat equation (docs/theory.md section 6).

Keys with a smooth density :math:`\rho` on :math:`S^{d-1}`, identity values, the
population limit :math:`n \to \infty`.  The attention map

.. math::

    T_\beta(x) = \frac{E[K e^{\beta\langle x, K\rangle}]}{E[e^{\beta\langle x, K\rangle}]}
               = x + \frac{1}{\beta}\Big(\nabla_S \log\rho(x) - \frac{d-1}{2} x\Big) + O(\beta^{-2})

moves every token up the log-density gradient; the tokens' new density is
:math:`\rho - \beta^{-1}\Delta_S\rho + O(\beta^{-2})`, one explicit Euler step of
length :math:`1/\beta` of the backward heat equation
:math:`\partial_\tau\rho = -\Delta_S\rho`.

This module computes, for the circle :math:`S^1` (``d = 2``) and the sphere
:math:`S^2` (``d = 3``):

* :class:`VMFMixture`: mixtures of von Mises-Fisher densities with their exact
  density, surface gradient of :math:`\log\rho` and spherical Laplacian;
* :func:`attention_map_exact` / :func:`attention_displacement_exact`: the
  population map by a quadrature centred at the query (Gauss-Legendre panels
  in the angle :math:`\psi` to ``x``, geometric on the kernel's scale
  :math:`\beta^{-1/2}`, times the trapezoid rule on the circle of directions),
  exact to ~1e-15 against closed forms for any :math:`\beta` up to 1e12;
* :func:`attention_map_sampled` and :func:`sampled_map_law`: the map with ``n``
  sampled keys and its delta-method Gaussian law (docs/theory.md section 3);
* :func:`predicted_displacement`, :func:`pushforward_density` (change of
  variables through the exact Jacobian of the projected map) and
  :func:`predicted_density`; :func:`heat_step_errors` and :func:`fit_order`;
* stacked self-attention layers (:func:`self_attention_layers`) against the
  backward heat flow on the circle (:func:`backward_heat_circle`, solved
  spectrally with optimal truncation), and :func:`attnscale.cli.payloads.heat_payload` for the
  command line.

Everything here is pure: no I/O, no global state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from ._validate import (
    InputTypeError,
    InputError,
    RngLike,
    as_generator,
    check_beta,
    check_int,
    check_matrix,
    check_n,
    check_nonnegative,
    check_on_sphere,
    check_positive,
    check_vector,
)
from .attention import attention_stats_many
from .heat_density import (
    _LOG_NEGLIGIBLE,
    SPHERES,
    VMFMixture,
    _check_density,
    _check_points,
    _shape_out,
    reference_density,
    sphere_points,
)

__all__ = [
    "SPHERES",
    "BackwardHeatCircle",
    "HeatStepErrors",
    "PushForward",
    "SampledMapLaw",
    "StackedLayers",
    "VMFMixture",
    "attention_displacement_exact",
    "attention_map_exact",
    "attention_map_sampled",
    "backward_heat_circle",
    "circle_quantiles",
    "fit_order",
    "heat_step_errors",
    "kuiper_distance",
    "layer_amplification",
    "predicted_density",
    "predicted_displacement",
    "pushforward_density",
    "reference_density",
    "sampled_map_law",
    "self_attention_layers",
    "sphere_points",
    "stacked_layers_circle",
]

#: Gauss-Legendre nodes per panel of the angle to the query.
_GL_NODES = 20

#: Largest panel width (radians) of the angle to the query, so that the density is resolved.
_MAX_PANEL = math.pi / 8.0

#: The quadrature drops angles where the kernel :math:`e^{\beta(\langle x,K\rangle - 1)}` is below
#: :math:`e^{-(\mathrm{cut} + 2\kappa_{max})}`; :math:`2\kappa_{max}` bounds :math:`\log\rho(K)/\rho(x)`.
_LOG_CUT = 100.0


#: Fourier modes computed for the circle: the coefficients of a von Mises density of kappa <= 500 fall
#: below 1e-18 (``_LOG_NEGLIGIBLE``) before that.
_MAX_MODES = 1024

#: Largest argument at which scipy's scaled Bessel function ``ive`` is finite (it returns NaN above ~2e9).
_IVE_MAX = 1e9

_GL = np.polynomial.legendre.leggauss(_GL_NODES)


# ---------------------------------------------------------------------------
# Quadrature centred at the query
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """Nodes ``psi`` (angle to x) with log weights, and directions ``omega`` on S^{d-2} with log weights."""

    psi: np.ndarray
    log_w_psi: np.ndarray
    omega: np.ndarray  # (N_omega, d-1): coordinates in a tangent basis at x
    log_w_omega: np.ndarray


def _rule(beta: float, d: int, max_kappa: float) -> _Rule:
    r"""Quadrature for :math:`\int_{S^{d-1}} g\, d\sigma = \int_0^\pi \sin^{d-2}\psi \int_{S^{d-2}} g\, d\omega\, d\psi`.

    Panels in :math:`\psi` break at :math:`2^k\beta^{-1/2}` (the kernel
    :math:`e^{-2\beta\sin^2(\psi/2)}` is resolved at every scale) and at least
    every :math:`\min(\pi/8, \kappa_{max}^{-1/2})` (the density's own scale); angles where the kernel is below
    :math:`e^{-(100 + 2\kappa_{max})}` are dropped (their relative contribution is
    below :math:`e^{-100}` since :math:`\rho(K)/\rho(x) \le e^{2\kappa_{max}}`).
    """
    top = math.pi
    width = min(_MAX_PANEL, 1.0 / math.sqrt(max_kappa)) if max_kappa > 0.0 else _MAX_PANEL
    breaks = list(np.arange(0.0, math.pi, width)[1:])
    if beta > 0.0:
        s = math.sqrt((_LOG_CUT + 2.0 * max_kappa) / (2.0 * beta))
        if s < 1.0:
            top = 2.0 * math.asin(s)
        h = 1.0 / math.sqrt(beta)
        while h < top:
            breaks.append(h)
            h *= 2.0
    edges = np.unique(np.array([0.0, top] + [b for b in breaks if 0.0 < b < top]))
    lo, hi = edges[:-1, None], edges[1:, None]
    psi = (0.5 * (hi - lo) * _GL[0] + 0.5 * (hi + lo)).ravel()
    w = (0.5 * (hi - lo) * _GL[1]).ravel()
    log_w = np.log(w) + (d - 2) * np.log(np.sin(psi))
    if d == 2:
        omega = np.array([[1.0], [-1.0]])
        log_w_omega = np.zeros(2)
    else:
        n_phi = 2 * math.ceil(0.75 * math.e * max_kappa + 20)
        phi = 2.0 * math.pi * np.arange(n_phi) / n_phi
        omega = np.column_stack([np.cos(phi), np.sin(phi)])
        log_w_omega = np.full(n_phi, math.log(2.0 * math.pi / n_phi))
    return _Rule(psi, log_w, omega, log_w_omega)


def _tangent_basis(x: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the tangent space at ``x`` as rows, shape ``(d-1, d)``, ``d`` = 2 or 3 (positively oriented).

    On the circle :math:`(-x_2, x_1)`; on :math:`S^2` :math:`(e_1, x \\times e_1)` with
    :math:`e_1` the projection of the axis least aligned with ``x``.  (The public
    frame of any dimension is :func:`attnscale.laws.tangent_basis`, columns.)
    """
    if x.shape[0] == 2:
        return np.array([[-x[1], x[0]]])
    a = np.zeros(3)
    a[int(np.argmin(np.abs(x)))] = 1.0
    e1 = a - (a @ x) * x
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(x, e1)])


@dataclass(frozen=True)
class _Tilted:
    r"""Moments of the tilted law :math:`p(K) \propto e^{\beta(\langle x,K\rangle-1)}\rho(K)`, relative to ``x``."""

    log_z: float  # log of the normalizer  int e^{beta(<x,K> - 1)} rho(K) dsigma
    mean: np.ndarray  # E_p[K - x]
    second: np.ndarray  # E_p[(K - x)(K - x)^T]


def _tilted(density: VMFMixture, x: np.ndarray, beta: float, rule: _Rule) -> _Tilted:
    """Moments at one point ``x``; ``K - x`` is formed without cancellation."""
    half = np.sin(0.5 * rule.psi)
    cm1 = -2.0 * half * half  # cos(psi) - 1
    dirs = rule.omega @ _tangent_basis(x)  # (N_omega, d)
    sin_psi = np.sin(rule.psi)[:, None]
    disp = np.stack([(cm1[:, None] * xc + sin_psi * dirs[None, :, c]).ravel() for c, xc in enumerate(x)])  # (d, N)
    log_w = (rule.log_w_psi + beta * cm1)[:, None] + rule.log_w_omega[None, :]
    log_w = log_w.ravel() + density._log_density((x[:, None] + disp).T)
    top = log_w.max()
    p = np.exp(log_w - top)
    total = p.sum()
    p /= total
    return _Tilted(float(top + math.log(total)), disp @ p, (disp * p) @ disp.T)


def _map_points(density: VMFMixture, pts: np.ndarray, beta: float) -> list[_Tilted]:
    rule = _rule(beta, density.d, density.max_kappa)
    return [_tilted(density, x, beta, rule) for x in pts]


# ---------------------------------------------------------------------------
# The attention map: exact, predicted, sampled
# ---------------------------------------------------------------------------


def attention_displacement_exact(density: VMFMixture, x: Any, beta: float) -> np.ndarray:
    r"""Population displacement :math:`T_\beta(x) - x`, by quadrature (docs/theory.md section 6).

    .. math::

        T_\beta(x) - x = \frac{\int (K - x)\, e^{\beta(\langle x,K\rangle - 1)}\rho(K)\,d\sigma(K)}
                              {\int e^{\beta(\langle x,K\rangle - 1)}\rho(K)\,d\sigma(K)},
        \qquad K - x = -2\sin^2(\psi/2)\,x + \sin\psi\,u,

    with :math:`\psi` the angle from ``x`` to ``K`` and ``u`` a unit tangent at
    ``x``: Gauss-Legendre panels in :math:`\psi` on the kernel's scale
    :math:`\beta^{-1/2}` (so large :math:`\beta` is resolved), trapezoid on the
    circle of directions (spectrally accurate), log-space weights; panels also
    resolve the density's scale :math:`\kappa_{max}^{-1/2}`.  Against the closed
    form of vMF mixtures the map is exact to ~1e-15 for :math:`0 \le \beta \le 10^{12}`;
    the displacement keeps a relative accuracy ~1e-16 :math:`\beta^{1/2}` (its
    tangential parts, of size :math:`\beta^{-1/2}`, cancel to :math:`O(1/\beta)`):
    1e-10 at :math:`\beta = 10^{12}`.

    Parameters
    ----------
    density : VMFMixture
        Key density on :math:`S^1` or :math:`S^2`.
    x : array_like, shape (d,) or (m, d)
        Query point(s) on the sphere.
    beta : float
        Inverse temperature, finite and ``>= 0``.

    Returns
    -------
    numpy.ndarray
        Shape of ``x``.

    Examples
    --------
    >>> rho = VMFMixture.on_circle([0.0], [0.0])           # uniform: T = A_2(beta) x
    >>> float(1.0 + attention_displacement_exact(rho, [1.0, 0.0], 10.0)[0])   # I_1(10)/I_0(10)
    0.9485998259548459
    """
    rho = _check_density(density)
    pts, single = _check_points(x, rho.d)
    b = check_beta(beta)
    return _shape_out(np.array([t.mean for t in _map_points(rho, pts, b)]), single)


def attention_map_exact(density: VMFMixture, x: Any, beta: float) -> np.ndarray:
    r"""Population attention map :math:`T_\beta(x) = E[K e^{\beta\langle x,K\rangle}]/E[e^{\beta\langle x,K\rangle}]`.

    ``x`` plus :func:`attention_displacement_exact` (see there for the
    quadrature); docs/theory.md section 6.

    Examples
    --------
    >>> rho = VMFMixture([[0.0, 0.0, 1.0]], [0.0])         # uniform on S^2: A_3 = coth(b) - 1/b
    >>> round(float(attention_map_exact(rho, [0.0, 0.0, 1.0], 4.0)[2]), 12)   # coth(4) - 1/4
    0.750671150402
    """
    rho = _check_density(density)
    pts, single = _check_points(x, rho.d)
    b = check_beta(beta)
    return _shape_out(pts + np.array([t.mean for t in _map_points(rho, pts, b)]), single)


def predicted_displacement(density: VMFMixture, x: Any, beta: float) -> np.ndarray:
    r"""First-order displacement :math:`\frac{1}{\beta}\big(\nabla_S\log\rho(x) - \frac{d-1}{2}x\big)` (docs/theory.md section 6).

    Examples
    --------
    >>> rho = VMFMixture.on_circle([0.0], [0.0])
    >>> predicted_displacement(rho, [1.0, 0.0], 10.0)
    array([-0.05,  0.  ])
    """
    rho = _check_density(density)
    pts, single = _check_points(x, rho.d)
    b = check_positive(beta, "beta")
    return _shape_out((rho._grad_log(pts) - 0.5 * (rho.d - 1) * pts) / b, single)


def attention_map_sampled(keys: Any, x: Any, beta: float) -> np.ndarray:
    r"""Attention output :math:`\sum_i w_i K_i` of query ``x`` over sampled ``keys`` (docs/theory.md sections 1, 6).

    One read of the keys for every query (:func:`attnscale.attention.attention_stats_many`).

    Parameters
    ----------
    keys : array_like, shape (n, d)
    x : array_like, shape (d,) or (m, d)
        Query point(s) on the sphere.
    beta : float

    Examples
    --------
    >>> attention_map_sampled([[1.0, 0.0], [0.0, 1.0]], [1.0, 0.0], 0.0)
    array([0.5, 0.5])
    """
    k = check_matrix(keys, "keys")
    pts, single = _check_points(x, k.shape[1])
    b = check_beta(beta)
    return _shape_out(attention_stats_many(pts, k, b).output, single)


@dataclass(frozen=True, eq=False)
class SampledMapLaw:
    r"""Delta-method Gaussian law of the sampled map at ``n`` keys (docs/theory.md sections 3, 6).

    Attributes
    ----------
    exact : numpy.ndarray
        :math:`T_\beta(x)`, shape ``(d,)`` or ``(m, d)``.
    mean : numpy.ndarray
        :math:`T_\beta(x) - \frac{1}{n}E[w^2(K - T)]/E[w]^2` (the ratio estimator's
        :math:`O(1/n)` bias included), :math:`w = e^{\beta\langle x,K\rangle}`.
    covariance : numpy.ndarray
        :math:`\frac{1}{n}E[w^2 (K-T)(K-T)^\top]/E[w]^2`, shape ``(d, d)`` or ``(m, d, d)``.
    """

    exact: np.ndarray
    mean: np.ndarray
    covariance: np.ndarray


def sampled_map_law(density: VMFMixture, x: Any, beta: float, n: int) -> SampledMapLaw:
    r"""Mean and covariance of :func:`attention_map_sampled` with ``n`` i.i.d. keys from ``density``.

    With :math:`w = e^{\beta\langle x, K\rangle}`, the output
    :math:`y = \sum_i w_i K_i / \sum_i w_i` is a ratio of sample means; to
    second order (delta method; docs/theory.md section 3)

    .. math::

        E y = T - \frac{1}{n}\frac{E[w^2(K-T)]}{E[w]^2}, \qquad
        \mathrm{Cov}\, y = \frac{1}{n}\frac{E[w^2(K-T)(K-T)^\top]}{E[w]^2},

    both computed by the quadrature of :func:`attention_map_exact` at
    :math:`\beta` and :math:`2\beta` (:math:`E[w^2 g]/E[w]^2 = (Z_{2\beta}/Z_\beta^2)\,E_{2\beta}[g]`).
    Valid in the subcritical regime (``n_eff`` of tens or more).

    Examples
    --------
    >>> rho = VMFMixture.on_circle([0.0], [0.0])
    >>> law = sampled_map_law(rho, [1.0, 0.0], 10.0, 1000)
    >>> round(float(np.sqrt(law.covariance[1, 1])), 5)    # tangential standard deviation
    0.01636
    """
    rho = _check_density(density)
    pts, single = _check_points(x, rho.d)
    b = check_beta(beta)
    nn = float(check_n(n))
    rule1 = _rule(b, rho.d, rho.max_kappa)
    rule2 = _rule(2.0 * b, rho.d, rho.max_kappa)
    exact, mean, cov = [], [], []
    for p in pts:
        one = _tilted(rho, p, b, rule1)
        two = _tilted(rho, p, 2.0 * b, rule2)
        ratio = math.exp(two.log_z - 2.0 * one.log_z)
        shift = two.mean - one.mean  # E_2beta[K - T]
        second = two.second - np.outer(two.mean, one.mean) - np.outer(one.mean, two.mean) + np.outer(one.mean, one.mean)
        exact.append(p + one.mean)
        mean.append(p + one.mean - ratio * shift / nn)
        cov.append(ratio * second / nn)
    return SampledMapLaw(*(_shape_out(np.array(a), single) for a in (exact, mean, cov)))


# ---------------------------------------------------------------------------
# One layer's pushed-forward density
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PushForward:
    r"""Image points :math:`y = T(x)/|T(x)|` and the pushed-forward density :math:`\rho_1(y)` there."""

    points: np.ndarray
    density: np.ndarray


def pushforward_density(density: VMFMixture, x: Any, beta: float) -> PushForward:
    r"""Density of the tokens after one layer, at the images of ``x`` (docs/theory.md section 6).

    The layer moves a token from ``x`` to :math:`P(x) = T_\beta(x)/|T_\beta(x)|`.
    The ambient derivative of the tilted mean is :math:`DT = \beta\,\mathrm{Cov}_x(K)`
    (covariance under :math:`p \propto e^{\beta\langle x,K\rangle}\rho`), so
    :math:`DP = (I - PP^\top)\,\beta\,\mathrm{Cov}_x(K)/|T|`, and by change of variables

    .. math::

        \rho_1(P(x)) = \frac{\rho(x)}{|\det J(x)|}, \qquad
        J_{ij} = \langle v_i, \beta\,\mathrm{Cov}_x(K)\, u_j\rangle / |T(x)|,

    with :math:`(u_j)`, :math:`(v_i)` orthonormal tangent bases at ``x`` and
    :math:`P(x)` (on the circle :math:`J = d\theta'/d\theta`).  The covariance is
    formed from :math:`K - x`, so no cancellation at large :math:`\beta`.
    Valid while :math:`P` is one-to-one (large :math:`\beta`).

    Examples
    --------
    >>> rho = VMFMixture.on_circle([0.0], [1.0])
    >>> pf = pushforward_density(rho, [1.0, 0.0], 50.0)
    >>> pf.points
    array([1., 0.])
    >>> round(float(pf.density / predicted_density(rho, [1.0, 0.0], 50.0)), 4)
    1.0
    """
    rho = _check_density(density)
    pts, single = _check_points(x, rho.d)
    b = check_positive(beta, "beta")
    log_rho = rho._log_density(pts)
    pushed = [_pushed(p, t, b, lr) for p, t, lr in zip(pts, _map_points(rho, pts, b), log_rho)]
    images = np.array([y for y, _ in pushed])
    dens = np.array([f for _, f in pushed])
    return PushForward(_shape_out(images, single), _shape_out(dens, single))


def _pushed(x: np.ndarray, t: _Tilted, beta: float, log_rho_x: float) -> tuple[np.ndarray, float]:
    """Image ``P(x)`` and pushed-forward density there, from the tilted moments at ``x``."""
    tx = x + t.mean
    norm = float(np.linalg.norm(tx))
    y = tx / norm
    cov = t.second - np.outer(t.mean, t.mean)
    jac = _tangent_basis(y) @ (beta * cov) @ _tangent_basis(x).T / norm
    return y, math.exp(float(log_rho_x)) / abs(float(np.linalg.det(jac)))


def predicted_density(density: VMFMixture, y: Any, beta: float) -> np.ndarray:
    r"""One explicit Euler step of the backward heat equation: :math:`\rho(y) - \frac{1}{\beta}\Delta_S\rho(y)` (docs/theory.md section 6).

    Examples
    --------
    >>> rho = VMFMixture.on_circle([0.0], [1.0])
    >>> bool(predicted_density(rho, [1.0, 0.0], 10.0) > rho.density([1.0, 0.0]))   # the mode sharpens
    True
    """
    rho = _check_density(density)
    pts, single = _check_points(y, rho.d, "y")
    b = check_positive(beta, "beta")
    return _shape_out(np.exp(rho._log_density(pts)) * (1.0 - rho._laplacian_ratio(pts) / b), single)


# ---------------------------------------------------------------------------
# Error orders of the heat step
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class HeatStepErrors:
    r"""Sup errors of the one-layer heat step over a set of points, one entry per ``beta``.

    Attributes
    ----------
    betas : numpy.ndarray
    displacement : numpy.ndarray
        :math:`\sup_x |T_\beta(x) - x - \beta^{-1}(\nabla_S\log\rho - \frac{d-1}{2}x)|`.
    density : numpy.ndarray
        :math:`\sup_x |\rho_1(y) - \rho(y) + \beta^{-1}\Delta_S\rho(y)|` at the images :math:`y = P(x)`.
    density_without_laplacian : numpy.ndarray
        :math:`\sup_x |\rho_1(y) - \rho(y)|`.
    """

    betas: np.ndarray
    displacement: np.ndarray
    density: np.ndarray
    density_without_laplacian: np.ndarray

    def orders(self) -> dict[str, float]:
        """Fitted orders (:func:`fit_order`) of the three errors."""
        return {
            "displacement_order": fit_order(self.betas, self.displacement),
            "density_order": fit_order(self.betas, self.density),
            "density_order_without_laplacian": fit_order(self.betas, self.density_without_laplacian),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the fitted :meth:`orders` and ``"table"``, one dict of the three errors per ``beta``.

        Examples
        --------
        >>> err = HeatStepErrors(np.array([10.0, 100.0]), np.array([1e-1, 1e-2]), np.array([1e-2, 1e-4]), np.array([1.0, 0.1]))
        >>> sorted(err.to_dict())
        ['density_order', 'density_order_without_laplacian', 'displacement_order', 'table']
        >>> err.to_dict()["table"][1]["beta"]
        100.0
        """
        table = [
            {
                "beta": float(b),
                "displacement_error": float(e1),
                "density_error": float(e2),
                "density_error_without_laplacian": float(e3),
            }
            for b, e1, e2, e3 in zip(self.betas, self.displacement, self.density, self.density_without_laplacian)
        ]
        return {**self.orders(), "table": table}


def heat_step_errors(density: VMFMixture, betas: Any, points: Any) -> HeatStepErrors:
    r"""Displacement and density errors of the heat-step prediction, per ``beta`` (docs/theory.md section 6).

    For each :math:`\beta`, one quadrature per point gives :math:`T_\beta(x)`,
    the image :math:`y = T/|T|` and the pushed-forward density :math:`\rho_1(y)`
    (as in :func:`pushforward_density`); the errors are sups over ``points`` of
    the Euclidean displacement error and of the density error with and without
    the Laplacian term.  Expected: :math:`O(\beta^{-2})`, :math:`O(\beta^{-2})`, :math:`O(\beta^{-1})`.

    Parameters
    ----------
    density : VMFMixture
    betas : array_like
        Positive inverse temperatures.
    points : array_like, shape (m, d)
        Points on the sphere where the errors are evaluated.

    Examples
    --------
    >>> rho = reference_density(1)
    >>> err = heat_step_errors(rho, [100.0, 1000.0], sphere_points(1, 64))
    >>> np.round(err.density * err.betas**2, 2)
    array([7.51, 8.25])
    """
    rho = _check_density(density)
    bs = check_vector(betas, "betas")
    for i, b in enumerate(bs):
        check_positive(b, f"betas[{i}]")
    pts, _ = _check_points(points, rho.d, "points")
    e_disp, e_dens, e_bare = (np.empty(bs.size) for _ in range(3))
    log_rho_x = rho._log_density(pts)
    for i, b in enumerate(bs):
        tilted = _map_points(rho, pts, float(b))
        pred = (rho._grad_log(pts) - 0.5 * (rho.d - 1) * pts) / b
        pushed = [_pushed(p, t, float(b), lr) for p, t, lr in zip(pts, tilted, log_rho_x)]
        images = np.array([y for y, _ in pushed])
        dens = np.array([f for _, f in pushed])
        rho_y = np.exp(rho._log_density(images))
        e_disp[i] = float(np.linalg.norm(np.array([t.mean for t in tilted]) - pred, axis=1).max())
        e_dens[i] = float(np.abs(dens - rho_y * (1.0 - rho._laplacian_ratio(images) / b)).max())
        e_bare[i] = float(np.abs(dens - rho_y).max())
    return HeatStepErrors(bs, e_disp, e_dens, e_bare)


def fit_order(betas: Any, errors: Any) -> float:
    r"""Least-squares slope of :math:`\log(\mathrm{error})` against :math:`\log\beta`.

    Examples
    --------
    >>> fit_order([10.0, 100.0, 1000.0], [3e-2, 3e-4, 3e-6])
    -2.0
    """
    b = check_vector(betas, "betas")
    e = check_vector(errors, "errors", b.size)
    if b.size < 2 or np.any(b <= 0) or np.any(e <= 0):
        raise InputError("betas, errors: expected at least two pairs of positive numbers")
    return round(float(np.polyfit(np.log(b), np.log(e), 1)[0]), 12)


# ---------------------------------------------------------------------------
# Stacked layers on the circle against the backward heat flow
# ---------------------------------------------------------------------------




@dataclass(frozen=True, eq=False)
class BackwardHeatCircle:
    r"""Backward heat flow :math:`\rho_\tau = e^{-\tau\Delta}\rho` on :math:`S^1`, spectrally, with optimal truncation.

    Attributes
    ----------
    tau : float
        Time :math:`\tau \ge 0`.
    coefficients : numpy.ndarray
        :math:`c_k e^{k^2\tau}`, ``k = 0..K`` (complex), the modes kept.
    truncation : float
        :math:`\max_\theta` size of the first dropped term,
        :math:`b_{K+1} e^{(K+1)^2\tau}/\pi` with :math:`b_k = \sum_j w_j I_k(\kappa_j)/I_0(\kappa_j)`:
        the error indicator of the truncated (divergent for :math:`\tau > 0`) series.
    """

    tau: float
    coefficients: np.ndarray
    truncation: float

    def density(self, theta: Any) -> np.ndarray:
        r""":math:`\rho_\tau(\theta) = \frac{1}{2\pi}\big(1 + 2\,\mathrm{Re}\sum_{k=1}^K c_k e^{k^2\tau} e^{ik\theta}\big)` (may be negative)."""
        th = np.asarray(theta, dtype=float)
        k = np.arange(1, self.coefficients.size)
        series = (np.exp(1j * th[..., None] * k) * self.coefficients[1:]).sum(axis=-1).real
        return (1.0 + 2.0 * series) / (2.0 * math.pi)

    def cdf(self, theta: Any) -> np.ndarray:
        r""":math:`F_\tau(\theta) = \int_0^\theta \rho_\tau = \frac{\theta}{2\pi} + \frac{1}{\pi}\mathrm{Re}\sum_k c_k e^{k^2\tau}\frac{e^{ik\theta} - 1}{ik}`."""
        th = np.asarray(theta, dtype=float)
        k = np.arange(1, self.coefficients.size)
        series = ((np.exp(1j * th[..., None] * k) - 1.0) * (self.coefficients[1:] / (1j * k))).sum(axis=-1).real
        return th / (2.0 * math.pi) + series / math.pi


def backward_heat_circle(density: VMFMixture, tau: float) -> BackwardHeatCircle:
    r"""Solve :math:`\partial_\tau\rho = -\partial_\theta^2\rho` on the circle: mode ``k`` times :math:`e^{k^2\tau}` (docs/theory.md section 6).

    The series :math:`\sum_k c_k e^{k^2\tau} e^{ik\theta}` diverges for every
    :math:`\tau > 0` when :math:`|c_k|` decays like :math:`(\kappa/2)^k/k!` (von
    Mises): the backward heat equation is ill-posed.  It is summed as an
    asymptotic series, up to (not including) its smallest term, measured on
    the envelope :math:`b_k e^{k^2\tau}`, :math:`b_k = \sum_j w_j I_k(\kappa_j)/I_0(\kappa_j)`
    (optimal truncation); :attr:`BackwardHeatCircle.truncation` is that smallest term.
    At :math:`\tau = 0` every mode above underflow is kept (exact to round-off).

    Examples
    --------
    >>> rho = reference_density(1)
    >>> h = backward_heat_circle(rho, 0.0)
    >>> bool(np.isclose(h.density(2.5), rho.density([np.cos(2.5), np.sin(2.5)]), rtol=1e-13))
    True
    >>> h = backward_heat_circle(rho, 0.02)
    >>> float(h.density(2.5)) > float(rho.density([np.cos(2.5), np.sin(2.5)]))   # the mode sharpens
    True
    """
    rho = _check_density(density)
    rho._check_fourier()
    t = check_nonnegative(tau, "tau")
    k = np.arange(_MAX_MODES + 1, dtype=float)
    log_term = rho._log_envelope(_MAX_MODES) + k * k * t
    # first smallest term; terms below 1e-18 of the mean density are dropped (they do not change a float64 sum)
    stop = int(np.argmin(log_term[1:])) + 1
    tiny = np.flatnonzero(log_term[1:] < _LOG_NEGLIGIBLE)
    if tiny.size:
        stop = min(stop, int(tiny[0]) + 1)
    kept = rho._fourier(stop - 1, t)
    last = math.exp(log_term[stop]) / math.pi
    kept.setflags(write=False)
    return BackwardHeatCircle(t, kept, last)


def circle_quantiles(density: VMFMixture, n: int) -> np.ndarray:
    r"""Angles :math:`\theta_i \in [0, 2\pi)` with :math:`F(\theta_i) = (i - 1/2)/n`: ``n`` evenly spread tokens of ``density`` on :math:`S^1`.

    :math:`F` is the exact CDF from angle 0 (Fourier series of
    :func:`backward_heat_circle` at :math:`\tau = 0`), inverted by bisection
    to 1e-14 rad.

    Examples
    --------
    >>> th = circle_quantiles(VMFMixture.on_circle([0.0], [0.0]), 4)    # uniform
    >>> (th / np.pi).round(12)
    array([0.25, 0.75, 1.25, 1.75])
    """
    heat = backward_heat_circle(density, 0.0)
    m = check_n(n)
    target = (np.arange(m) + 0.5) / m
    lo, hi = np.zeros(m), np.full(m, 2.0 * math.pi)
    while float((hi - lo).max()) > 1e-14:
        mid = 0.5 * (lo + hi)
        below = heat.cdf(mid) < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def kuiper_distance(theta: Any, cdf: Any) -> float:
    r"""Kuiper distance :math:`V = \max_i(i/n - F_i) + \max_i(F_i - (i-1)/n)` between points on the circle and a CDF.

    ``theta`` are angles (any real numbers, taken mod :math:`2\pi`); ``cdf`` maps
    angles in :math:`[0, 2\pi)` to :math:`F(\theta) = \int_0^\theta\rho`.  :math:`V`
    does not depend on the origin of angles; :math:`V \ge 1/n`, with equality
    for the quantiles :func:`circle_quantiles`.

    Examples
    --------
    >>> kuiper_distance(np.pi * np.array([0.25, 0.75, 1.25, 1.75]), lambda t: t / (2 * np.pi))
    0.25
    """
    th = np.sort(np.mod(check_vector(theta, "theta"), 2.0 * math.pi))
    if not callable(cdf):
        raise InputTypeError(f"cdf: got {type(cdf).__name__}; expected a callable F(theta)")
    f = np.asarray(cdf(th), dtype=float)
    i = np.arange(1, th.size + 1)
    return round(float((i / th.size - f).max() + (f - (i - 1) / th.size).max()), 15)


def self_attention_layers(tokens: Any, beta: float, layers: int) -> np.ndarray:
    r"""``layers`` layers of self-attention of the tokens on their own empirical measure, renormalized to the sphere.

    .. math::

        X_i \leftarrow \frac{Y_i}{|Y_i|}, \qquad
        Y_i = \sum_j \frac{e^{\beta\langle X_i, X_j\rangle}}{\sum_l e^{\beta\langle X_i, X_l\rangle}} X_j

    (identity query, key and value matrices; log-sum-exp per row, all queries
    at once).  One layer of :func:`attnscale.attention.attention` per token;
    docs/theory.md section 6.

    Returns
    -------
    numpy.ndarray
        Shape ``(layers + 1, n, d)``: the tokens before the first layer and after each.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> self_attention_layers(x, 0.0, 1)[1].round(6)      # beta = 0: both go to the mean direction
    array([[0.707107, 0.707107],
           [0.707107, 0.707107]])
    """
    x = check_matrix(tokens, "tokens")
    check_on_sphere(x, "tokens")
    b = check_beta(beta)
    count = check_int(layers, "layers", minimum=0)
    out = np.empty((count + 1,) + x.shape)
    out[0] = x / np.linalg.norm(x, axis=1, keepdims=True)
    for layer in range(count):
        cur = out[layer]
        logits = b * (cur @ cur.T)
        logits -= logits.max(axis=1, keepdims=True)
        w = np.exp(logits)
        y = (w @ cur) / w.sum(axis=1, keepdims=True)
        out[layer + 1] = y / np.linalg.norm(y, axis=1, keepdims=True)
    return out


def layer_amplification(k: Any, beta: float) -> np.ndarray:
    r"""Factor by which one attention layer multiplies Fourier mode ``k`` of a small perturbation of the uniform density on :math:`S^1`.

    For :math:`\rho = (1 + \varepsilon\cos k\theta)/2\pi`, the projected map moves
    angle :math:`\theta` by :math:`-\varepsilon\frac{k}{\beta}\frac{I_k(\beta)}{I_1(\beta)}\sin k\theta`
    (from :math:`I_{k-1} - I_{k+1} = \frac{2k}{\beta}I_k`), so to first order in :math:`\varepsilon`

    .. math::

        s_k(\beta) = 1 + \frac{k^2}{\beta}\,\frac{I_k(\beta)}{I_1(\beta)}
        \;\approx\; 1 + \frac{k^2}{\beta} e^{-(k^2-1)/(2\beta)},

    against :math:`e^{k^2/\beta}` for the exact backward heat flow over
    :math:`\tau = 1/\beta`.  The layer is a *regularized* backward heat step: it
    agrees for :math:`k \ll \sqrt\beta`, but no mode grows by more than about
    :math:`1 + 2/e` per layer (the maximum, at :math:`k \approx \sqrt{2\beta}`), which is where
    sampling noise grows fastest and tokens cluster (docs/theory.md section 6).

    Examples
    --------
    >>> float(layer_amplification(0, 50.0)), float(layer_amplification(1, 50.0))
    (1.0, 1.02)
    >>> round(float(layer_amplification(20, 200.0)), 4)     # k = sqrt(2 beta): about 1 + 2/e = 1.7358
    1.7364
    """
    b = check_positive(beta, "beta")
    kk = np.asarray(k)
    if kk.dtype.kind not in "iu" or np.any(kk < 0):
        raise InputError(f"k: got {k!r}; expected non-negative integer mode numbers")
    kf = kk.astype(float)
    return 1.0 + kf * kf / b * np.exp(np.array([_log_bessel_ratio_to(int(j), b) for j in kk.ravel()]).reshape(kk.shape))


def _log_bessel_ratio_to(k: int, beta: float) -> float:
    r""":math:`\log(I_k(\beta)/I_1(\beta))`: scaled Bessel functions up to :math:`\beta = 10^9` (``-inf`` where they underflow),
    beyond that the large-argument expansion :math:`-(k^2-1)(1 + 1/(2\beta))/(2\beta)` (relative error :math:`O(k^4/\beta^3)`)."""
    if beta <= _IVE_MAX:
        num = float(special.ive(k, beta))
        return math.log(num) - math.log(float(special.ive(1, beta))) if num > 0.0 else -math.inf
    return -(k * k - 1.0) * (1.0 + 0.5 / beta) / (2.0 * beta)


@dataclass(frozen=True, eq=False)
class StackedLayers:
    r"""Tokens through stacked layers on :math:`S^1` against the backward heat flow, per layer.

    Attributes
    ----------
    beta : float
    tau : numpy.ndarray
        :math:`\tau = L/\beta` for ``L = 0..layers``.
    kuiper : numpy.ndarray
        Kuiper distance between the tokens and :math:`\rho_\tau` (:func:`kuiper_distance`).
    heat_min : numpy.ndarray
        :math:`\min_\theta\rho_\tau` (negative: the heat flow has stopped being a density).
    truncation : numpy.ndarray
        Smallest term of the backward heat series (:class:`BackwardHeatCircle`).
    angles : numpy.ndarray
        Shape ``(layers + 1, n)``: token angles after each layer.
    """

    beta: float
    tau: np.ndarray
    kuiper: np.ndarray
    heat_min: np.ndarray
    truncation: np.ndarray
    angles: np.ndarray


#: How the tokens of :func:`stacked_layers_circle` start.
TOKEN_STARTS = ("quantiles", "sample")


def stacked_layers_circle(
    density: VMFMixture, beta: float, layers: int, n: int, start: str = "quantiles", rng: RngLike = None
) -> StackedLayers:
    r"""``layers`` self-attention layers of ``n`` tokens of ``density`` on :math:`S^1` against the backward heat flow for :math:`\tau = L/\beta`.

    ``start="quantiles"``: the tokens start at :func:`circle_quantiles` (no
    sampling noise, Kuiper distance :math:`1/n` at ``L = 0``), so what remains
    is the heat step's own error; ``start="sample"``: ``n`` i.i.d. keys (with
    ``rng``), which adds the Gaussian noise of docs/theory.md section 3.  Each
    layer is one explicit Euler step of length :math:`1/\beta` of
    :math:`\partial_\tau\rho = -\Delta\rho`, valid while :math:`\rho_\tau` is a
    smooth positive density resolved by the kernel (docs/theory.md section 6).

    Examples
    --------
    >>> run = stacked_layers_circle(reference_density(1), 200.0, 4, 500)
    >>> bool(run.kuiper[0] < 1.01 / 500), bool(run.kuiper.max() < 0.01)
    (True, True)
    """
    rho = _check_density(density)
    if rho.d != 2:
        raise InputError(f"density: has d = {rho.d}; stacked layers are compared on the circle (d = 2) only")
    b = check_positive(beta, "beta")
    count = check_int(layers, "layers", minimum=0)
    m = check_n(n)
    if start not in TOKEN_STARTS:
        raise InputError(f"start: got {start!r}; expected one of {', '.join(TOKEN_STARTS)}")
    if start == "quantiles":
        th0 = circle_quantiles(rho, m)
        tokens = np.column_stack([np.cos(th0), np.sin(th0)])
    else:
        tokens = rho.sample(m, as_generator(rng))
    traj = self_attention_layers(tokens, b, count)
    angles = np.arctan2(traj[..., 1], traj[..., 0])
    grid = 2.0 * math.pi * np.arange(2048) / 2048
    tau = np.arange(count + 1) / b
    kuiper, heat_min, trunc = (np.empty(count + 1) for _ in range(3))
    for layer, t in enumerate(tau):
        heat = backward_heat_circle(rho, float(t))
        kuiper[layer] = kuiper_distance(angles[layer], heat.cdf)
        heat_min[layer] = float(heat.density(grid).min())
        trunc[layer] = heat.truncation
    return StackedLayers(b, tau, kuiper, heat_min, trunc, angles)
