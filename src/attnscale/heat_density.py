r"""Smooth key densities on the circle and the sphere for the heat-step checks (docs/theory.md section 6).

:class:`VMFMixture` (mixtures of von Mises-Fisher laws on :math:`S^1` or :math:`S^2`: density,
gradient, Laplacian, Fourier coefficients), the reference densities of the checks and
deterministic point sets; the argument checks shared with :mod:`attnscale.heat`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from ._validate import (
    InputTypeError,
    InputError,
    RngLike,
    check_int,
    check_matrix,
    check_nonnegative,
    check_on_sphere,
    check_unit_vector,
    check_vector,
)
from .laws import Mixture, VonMisesFisher

__all__ = ["SPHERES", "VMFMixture", "reference_density", "sphere_points"]

#: Spheres handled here: ``1`` is the circle :math:`S^1` (``d = 2``), ``2`` the sphere :math:`S^2` (``d = 3``).
SPHERES = (1, 2)

#: Largest concentration the circle's Fourier machinery (1024 modes) resolves.
_MAX_FOURIER_KAPPA = 500.0

#: log of the size below which a Fourier term of the backward heat series is dropped.
_LOG_NEGLIGIBLE = math.log(1e-18)



# ---------------------------------------------------------------------------
# Input checks specific to this module (built on _validate)
# ---------------------------------------------------------------------------


def _check_sphere(sphere: Any) -> int:
    s = check_int(sphere, "sphere", minimum=1)
    if s not in SPHERES:
        raise InputError(f"sphere: got {sphere!r}; expected 1 (the circle S^1) or 2 (the sphere S^2)")
    return s


def _check_density(density: Any) -> VMFMixture:
    if not isinstance(density, VMFMixture):
        raise InputTypeError(f"density: got {type(density).__name__}; expected a VMFMixture")
    return density


def _check_points(x: Any, d: int, name: str = "x") -> tuple[np.ndarray, bool]:
    """Points on :math:`S^{d-1}`, shape ``(d,)`` or ``(m, d)``: the ``(m, d)`` array (renormalized) and whether ``x`` was one point."""
    try:
        ndim = np.ndim(x)
    except (TypeError, ValueError):
        ndim = -1
    if ndim == 1:
        return check_unit_vector(x, name, d)[None, :], True
    pts = check_matrix(x, name, cols=d)
    check_on_sphere(pts, name)
    return pts / np.linalg.norm(pts, axis=1, keepdims=True), False


def _shape_out(values: np.ndarray, single: bool) -> np.ndarray:
    return values[0] if single else values


# ---------------------------------------------------------------------------
# Densities
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class VMFMixture:
    r"""A mixture of von Mises-Fisher densities on :math:`S^{d-1}`, with exact calculus.

    .. math::

        \rho(x) = \sum_j w_j\, C_d(\kappa_j)\, e^{\kappa_j \langle \mu_j, x\rangle}

    with respect to surface measure.  For one component
    :math:`f = e^{\kappa\langle\mu,x\rangle}` and :math:`t = \langle\mu, x\rangle`,

    .. math::

        \nabla_S f = \kappa(\mu - t x) f, \qquad
        \Delta_S f = \big(\kappa^2(1 - t^2) - (d-1)\kappa t\big) f,

    so :math:`\nabla_S\log\rho = \sum_j \pi_j \kappa_j(\mu_j - t_j x)` and
    :math:`\Delta_S\rho/\rho = \sum_j \pi_j (\kappa_j^2(1-t_j^2) - (d-1)\kappa_j t_j)`
    with :math:`\pi_j(x)` the posterior component weights (all in log space).
    Sampling and the normalizers :math:`C_d(\kappa)` come from
    :class:`attnscale.laws.VonMisesFisher` and :class:`attnscale.laws.Mixture`
    (docs/theory.md section 6).

    Parameters
    ----------
    mus : array_like, shape (m, d)
        Mean directions, unit vectors; ``d`` is 2 (circle) or 3 (sphere).
    kappas : array_like, shape (m,)
        Concentrations, ``>= 0``.
    weights : array_like, shape (m,), optional
        Positive weights, normalized here; equal by default.

    Examples
    --------
    >>> rho = VMFMixture.on_circle([0.0, 2.5], [2.0, 5.0], [0.7, 0.3])
    >>> rho.d
    2
    >>> round(float(rho.density([1.0, 0.0])), 6)
    0.361152
    >>> rho.grad_log_density([0.0, 1.0]).round(6)   # at angle pi/2: towards the mode at 2.5
    array([-0.503619,  0.      ])
    """

    mus: np.ndarray
    kappas: np.ndarray
    weights: np.ndarray | None = None
    _log_coef: np.ndarray = field(init=False, repr=False)
    _law: Mixture = field(init=False, repr=False)

    def __post_init__(self) -> None:
        mus = check_matrix(self.mus, "mus")
        d = mus.shape[1]
        if d not in (2, 3):
            raise InputError(f"mus: got {d} columns; expected d = 2 (the circle S^1) or d = 3 (the sphere S^2)")
        check_on_sphere(mus, "mus")
        mus = mus / np.linalg.norm(mus, axis=1, keepdims=True)
        m = mus.shape[0]
        kappas = check_vector(self.kappas, "kappas", m)
        for i, k in enumerate(kappas):
            check_nonnegative(k, f"kappas[{i}]")
        weights = np.ones(m) if self.weights is None else check_vector(self.weights, "weights", m)
        if np.any(weights <= 0):
            raise InputError(f"weights: got {weights.tolist()}; expected positive weights")
        weights = weights / weights.sum()
        comps = [VonMisesFisher(mu, k) for mu, k in zip(mus, kappas)]
        log_coef = np.log(weights) + np.array([c.log_normalizer for c in comps])
        object.__setattr__(self, "_law", Mixture(comps, weights))
        for name, value in (("mus", mus), ("kappas", kappas), ("weights", weights), ("_log_coef", log_coef)):
            value = np.array(value, dtype=float)
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @classmethod
    def on_circle(cls, angles: Any, kappas: Any, weights: Any = None) -> VMFMixture:
        r"""Mixture of von Mises densities :math:`\sum_j w_j\, e^{\kappa_j\cos(\theta - a_j)} / (2\pi I_0(\kappa_j))` on :math:`S^1`.

        Examples
        --------
        >>> VMFMixture.on_circle([0.0], [1.0]).mus
        array([[1., 0.]])
        """
        a = check_vector(angles, "angles")
        return cls(np.column_stack([np.cos(a), np.sin(a)]), kappas, weights)

    @property
    def d(self) -> int:
        """Ambient dimension (2: circle, 3: sphere)."""
        return int(self.mus.shape[1])

    @property
    def sphere(self) -> int:
        """Dimension of the sphere, ``d - 1``."""
        return self.d - 1

    @property
    def max_kappa(self) -> float:
        r"""Largest concentration; :math:`2\kappa_{max}` bounds :math:`\log(\max\rho/\min\rho)`."""
        return float(self.kappas.max())

    @property
    def law(self) -> Mixture:
        """The key law (for sampling): :class:`attnscale.laws.Mixture` of :class:`~attnscale.laws.VonMisesFisher`."""
        return self._law

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        """``n`` i.i.d. keys, shape ``(n, d)`` (exact sampling by :attr:`law`)."""
        return self.law.sample(n, rng)

    # --- calculus (private kernels trust their (m, d) input) -------------

    def _parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``log rho`` (m,), posterior weights ``pi`` (m, J) and ``t = x @ mus.T`` (m, J)."""
        t = x @ self.mus.T
        la = self._log_coef + self.kappas * t
        log_rho = special.logsumexp(la, axis=-1)
        return log_rho, np.exp(la - log_rho[..., None]), t

    def _log_density(self, x: np.ndarray) -> np.ndarray:
        # components along the first axis: reductions over a short, outer axis are fast
        la = self._log_coef[:, None] + self.kappas[:, None] * (self.mus @ x.T)
        top = la.max(axis=0)
        return top + np.log(np.exp(la - top).sum(axis=0))

    def _grad_log(self, x: np.ndarray) -> np.ndarray:
        _, pi, t = self._parts(x)
        pk = pi * self.kappas
        return pk @ self.mus - (pk * t).sum(axis=-1)[..., None] * x

    def _laplacian_ratio(self, x: np.ndarray) -> np.ndarray:
        _, pi, t = self._parts(x)
        k = self.kappas
        return (pi * (k**2 * (1.0 - t) * (1.0 + t) - (self.d - 1) * k * t)).sum(axis=-1)

    # --- public calculus --------------------------------------------------

    def log_density(self, x: Any) -> np.ndarray:
        r""":math:`\log\rho(x)` at points ``x`` (shape ``(d,)`` or ``(m, d)``, on the sphere)."""
        pts, single = _check_points(x, self.d)
        return _shape_out(self._log_density(pts), single)

    def density(self, x: Any) -> np.ndarray:
        r""":math:`\rho(x)` with respect to surface measure."""
        return np.exp(self.log_density(x))

    def grad_log_density(self, x: Any) -> np.ndarray:
        r"""Surface gradient :math:`\nabla_S\log\rho(x)`, a tangent vector at ``x`` (shape of ``x``)."""
        pts, single = _check_points(x, self.d)
        return _shape_out(self._grad_log(pts), single)

    def laplacian(self, x: Any) -> np.ndarray:
        r"""Spherical (Laplace-Beltrami) Laplacian :math:`\Delta_S\rho(x)`, in closed form."""
        pts, single = _check_points(x, self.d)
        return _shape_out(np.exp(self._log_density(pts)) * self._laplacian_ratio(pts), single)

    def fourier_coefficients(self, modes: int) -> np.ndarray:
        r"""Circle only: :math:`c_k`, ``k = 0..modes``, with :math:`\rho(\theta) = \frac{1}{2\pi}\sum_{k\in\mathbb{Z}} c_k e^{ik\theta}`.

        For a von Mises component :math:`c_k = e^{-ika}\, I_k(\kappa)/I_0(\kappa)`
        (exponentially scaled Bessel functions, no overflow); :math:`c_{-k} = \bar c_k`.

        Examples
        --------
        >>> c = VMFMixture.on_circle([0.0], [2.0]).fourier_coefficients(2)
        >>> c.real.round(6)
        array([1.      , 0.697775, 0.302225])
        """
        self._check_fourier()
        return self._fourier(check_int(modes, "modes", minimum=0), 0.0)

    def _check_fourier(self) -> None:
        if self.d != 2:
            raise InputError(f"density: has d = {self.d}; Fourier series are used on the circle (d = 2) only")
        if self.max_kappa > _MAX_FOURIER_KAPPA:
            raise InputError(
                f"density: has kappa = {self.max_kappa:g}; the circle's Fourier series (1024 modes) resolve kappa <= {_MAX_FOURIER_KAPPA:g}"
            )

    def _fourier(self, modes: int, tau: float) -> np.ndarray:
        r""":math:`c_k e^{k^2\tau}`, ``k = 0..modes``, summed from log-space terms (no underflow or overflow while the terms are O(1))."""
        k = np.arange(modes + 1)
        angles = np.arctan2(self.mus[:, 1], self.mus[:, 0])
        log_r = np.column_stack([_log_bessel_ratios(float(kap), modes) for kap in self.kappas])
        terms = np.exp(log_r + (k * k * tau)[:, None]) * np.exp(-1j * np.outer(k, angles))
        return terms @ self.weights

    def _log_envelope(self, modes: int) -> np.ndarray:
        r""":math:`\log b_k = \log\sum_j w_j I_k(\kappa_j)/I_0(\kappa_j)`, ``k = 0..modes``."""
        log_r = np.column_stack([_log_bessel_ratios(float(kap), modes) for kap in self.kappas])
        return special.logsumexp(log_r + np.log(self.weights), axis=1)


def reference_density(sphere: int) -> VMFMixture:
    r"""The densities of docs/theory.md section 6 used by the report and :func:`attnscale.cli.payloads.heat_payload`.

    * ``sphere=1``: :math:`\rho = 0.7\,\mathrm{vM}(0, 2) + 0.3\,\mathrm{vM}(2.5, 5)` on :math:`S^1`;
    * ``sphere=2``: the same two components on :math:`S^2` (means 2.5 rad apart, at
      latitudes 20° and -40°), plus :math:`0.2\,\mathrm{vMF}(\kappa=3)` at latitude 60°,
      so that the field has no symmetry (weights 0.5, 0.3, 0.2).

    Examples
    --------
    >>> reference_density(1).kappas
    array([2., 5.])
    >>> reference_density(2).d
    3
    """
    if _check_sphere(sphere) == 1:
        return VMFMixture.on_circle([0.0, 2.5], [2.0, 5.0], [0.7, 0.3])
    lat = np.radians([20.0, -40.0, 60.0])
    lon = np.array([-1.0, -1.0 + _lon_gap(lat[0], lat[1], 2.5), 1.5])
    mus = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    return VMFMixture(mus, [2.0, 5.0, 3.0], [0.5, 0.3, 0.2])


def _lon_gap(lat1: float, lat2: float, angle: float) -> float:
    """Longitude difference that puts two points of latitudes ``lat1, lat2`` ``angle`` radians apart."""
    c = (math.cos(angle) - math.sin(lat1) * math.sin(lat2)) / (math.cos(lat1) * math.cos(lat2))
    return math.acos(c)


def sphere_points(sphere: int, count: int) -> np.ndarray:
    r"""Evaluation points: ``count`` equispaced angles on :math:`S^1`, or a Fibonacci lattice on :math:`S^2`.

    Examples
    --------
    >>> sphere_points(1, 4).round(12)
    array([[ 1.,  0.],
           [ 0.,  1.],
           [-1.,  0.],
           [-0., -1.]])
    >>> np.allclose(np.linalg.norm(sphere_points(2, 50), axis=1), 1.0)
    True
    """
    s = _check_sphere(sphere)
    m = check_int(count, "count", minimum=1)
    if s == 1:
        a = 2.0 * math.pi * np.arange(m) / m
        return np.column_stack([np.cos(a), np.sin(a)])
    i = np.arange(m) + 0.5
    z = 1.0 - 2.0 * i / m
    r = np.sqrt((1.0 - z) * (1.0 + z))
    lon = math.pi * (3.0 - math.sqrt(5.0)) * i
    return np.column_stack([r * np.cos(lon), r * np.sin(lon), z])

def _log_bessel_ratios(kappa: float, modes: int) -> np.ndarray:
    r""":math:`\log(I_k(\kappa)/I_0(\kappa))`, ``k = 0..modes``, without underflow.

    Ratios :math:`r_k = I_k/I_{k-1}` by the backward recurrence
    :math:`1/r_k = 2k/\kappa + r_{k+1}` (Miller), started at
    :math:`k = \mathrm{modes} + 2\kappa + 64`, where :math:`r \le 1/4` so the
    starting error dies out, then cumulative sums of :math:`\log r_k`.
    ``-inf`` for ``kappa = 0``.
    """
    out = np.zeros(modes + 1)
    if kappa == 0.0:
        out[1:] = -math.inf
        return out
    r = 0.0
    ratios = np.empty(modes + 1)
    for j in range(modes + 64 + math.ceil(2.0 * kappa), 0, -1):
        r = kappa / (2.0 * j + kappa * r)
        if j <= modes:
            ratios[j] = r
    out[1:] = np.cumsum(np.log(ratios[1:]))
    return out
