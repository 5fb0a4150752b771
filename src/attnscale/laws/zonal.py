r"""Zonal laws: key densities that depend on :math:`\langle \mathrm{pole}, k\rangle` only, and their exact score law.

Laws whose density depends only on :math:`x = \langle \mu, k\rangle` for a pole
:math:`\mu` (*zonal* laws: uniform, von Mises-Fisher, power density) share one
exact score law, :class:`ZonalScoreLaw`, valid for any query: seen from ``q`` at
angle :math:`\theta` from the pole, the score is

.. math:: S = \cos\theta\, X + \sin\theta \sqrt{1 - X^2}\, V,

with :math:`X = \langle\mu, K\rangle` and :math:`V` the first coordinate of a
uniform point on :math:`S^{d-2}`, independent of :math:`X` (docs/theory.md section 2).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from .._numerics.quadrature import log_integral, log_integral_rows
from .._numerics.special import log_betainc_sym
from .._validate import (
    InputTypeError,
    InputError,
    RngLike,
    as_generator,
    check_dimension,
    check_finite,
    check_n,
    check_nonnegative,
    check_unit_vector,
)
from ..tails import ScoreTail
from .base import KeyLaw, ScoreLaw
from .beta import BetaScoreLaw, UniformScoreLaw
from .sphere import (
    TangentMap,
    _angle,
    _axis,
    _beta_pair,
    _cap_angles,
    _log_beta_cap,
    _log_kappa_uniform,
    _psi_of_gap,
    _read_only,
    _uv_from_angle,
    uniform_directions,
)

__all__ = ["PowerDensity", "UniformSphere", "VonMisesFisher", "ZonalKeyLaw", "ZonalScoreLaw"]

@dataclass(frozen=True, eq=False)
class ZonalScoreLaw(ScoreLaw):
    r"""Exact score law of a zonal key law seen from a query at angle ``theta`` from its pole.

    Let :math:`\Phi` be the angle between the key and the pole (density
    :math:`f_\Phi`), :math:`\theta` the angle between query and pole and
    :math:`\psi = \arccos s`.  The ring of keys at angle :math:`\phi` lies
    entirely inside the cap :math:`\{S \ge s\}` for :math:`\phi \le \psi - \theta`
    or :math:`\phi \ge 2\pi - \theta - \psi`, meets it for
    :math:`|\theta - \psi| \le \phi \le \min(\theta+\psi, 2\pi-\theta-\psi)`, and
    there the fraction inside is :math:`P(V \ge v) = I_w(b, b)`, :math:`b = (d-2)/2`,

    .. math:: w = \frac{1-v}{2} = \frac{\sin\frac{\psi+\theta-\phi}{2}\,
              \sin\frac{\psi-\theta+\phi}{2}}{\sin\theta\,\sin\phi},

    (``d = 2``: :math:`V = \pm 1`, the fraction is 1/2).  So

    .. math:: P(S \ge s) = P(\Phi \le \psi-\theta) + P(\Phi \ge 2\pi-\theta-\psi)
              + \int_{|\theta-\psi|}^{\min(\theta+\psi,\,2\pi-\theta-\psi)}
              f_\Phi(\phi)\, I_{w(\phi)}(b,b)\, d\phi,

    and the density of ``S`` at ``s`` is
    :math:`\int f_\Phi(\phi) (w(1-w))^{b-1} / (2 B(b,b) \sin\theta \sin\phi)\,d\phi`
    over the same ring interval.  The integrals run over the angle (the
    x-range :math:`[\cos(\theta+\psi), \cos(\theta-\psi)]` of the event, as
    angles), after :math:`\phi = c + h\sin\alpha`, which makes the integrand
    smooth at both ends; every factor that vanishes at an end is computed from
    the distance to that end, and the integral is done in log space, so tail
    probabilities far below ``1e-300`` keep their relative accuracy.  Upper
    tails :math:`P(S \ge s)` are this cap of ``q``, lower tails the cap of
    ``-q`` (the mirror image, angle :math:`\pi - \theta`), each computed
    directly, never as one minus the other, on either side of ``s = 0``.
    Every function takes arrays: the caps of all requested ``s`` are
    integrated together (:func:`log_integral_rows`), and :meth:`gap_ppf` is
    the batched Newton search of :class:`ScoreLaw`.  docs/theory.md section 2.

    Parameters
    ----------
    law : ZonalKeyLaw
        The key law.
    theta : float
        Angle between the query and the pole, in ``[0, pi]``.

    Examples
    --------
    >>> law = ZonalScoreLaw(UniformSphere(3), theta=1.0)   # uniform: S ~ U(-1, 1)
    >>> round(float(law.cdf(0.5)), 12)
    0.75
    >>> round(float(law.gap_ppf(0.25)), 10)
    0.5
    """

    law: ZonalKeyLaw
    theta: float

    def __post_init__(self) -> None:
        if not isinstance(self.law, ZonalKeyLaw):
            raise InputTypeError(f"law: got {type(self.law).__name__}; expected a ZonalKeyLaw")
        theta = check_finite(self.theta, "theta")
        if not 0.0 <= theta <= math.pi:
            raise InputError(f"theta: got {self.theta!r}; expected an angle in [0, pi]")
        object.__setattr__(self, "theta", theta)

    endpoint = 1.0
    lower = -1.0

    @property
    def d(self) -> int:
        """Ambient dimension."""
        return self.law.d

    # -- log probability of the cap {angle(q, K) <= psi} ----------------------
    def _ring(self, theta: float, psi: np.ndarray, alpha: np.ndarray) -> dict[str, np.ndarray]:
        """Geometry of the ring interval at ``phi = L + h (1 + sin alpha)``; ``psi`` (a column) broadcasts against ``alpha``."""
        big_l = np.abs(theta - psi)
        big_m = math.pi - theta - psi
        abs_m = np.abs(big_m)
        h = np.minimum(np.minimum(theta, psi), np.minimum(math.pi - theta, math.pi - psi))
        s = np.sin(alpha)
        c = np.cos(alpha)
        dl = np.where(s < 0, h * c * c / (1.0 - s), h * (1.0 + s))  # phi - L
        du = np.where(s > 0, h * c * c / (1.0 + s), h * (1.0 - s))  # U - phi
        phi = big_l + dl
        zeta = abs_m + du  # pi - phi
        # half-angles of the four factors, each with its supplement, so that every
        # sine is taken of an angle <= pi/2 known to full relative precision
        near_l = np.sin(np.minimum(big_l + 0.5 * dl, abs_m + du + 0.5 * dl))
        near_m = np.sin(np.minimum(abs_m + 0.5 * du, big_l + dl + 0.5 * du))
        half_l, half_u = np.sin(0.5 * dl), np.sin(0.5 * du)
        beyond = theta >= psi
        sin_b, sin_d = np.where(beyond, half_l, near_l), np.where(beyond, near_l, half_l)
        short = big_m >= 0
        sin_a, sin_e = np.where(short, half_u, near_m), np.where(short, near_m, half_u)
        log_sin_phi = np.log(np.sin(np.minimum(phi, zeta)))
        log_sin_theta = math.log(math.sin(min(theta, math.pi - theta)))
        base = -log_sin_theta - log_sin_phi
        log_w = np.minimum(np.log(sin_a) + np.log(sin_b) + base, 0.0)
        log_1mw = np.minimum(np.log(sin_e) + np.log(sin_d) + base, 0.0)
        u, v = _uv_from_angle(phi, zeta)
        return {
            "log_f": self.law._log_phi_pdf(u, v),
            "log_w": log_w,
            "log_1mw": log_1mw,
            "log_sin": log_sin_phi + log_sin_theta,
            "log_jac": np.log(h) + np.log(c),
        }

    def _log_ring(self, theta: float, psi: np.ndarray) -> np.ndarray:
        r"""``log`` of the ring part :math:`\int f_\Phi(\phi) I_{w(\phi)}(b, b)\,d\phi` for each ``psi`` (1-D)."""
        col = psi[:, None]
        if self.d == 2:

            def ell(rows, alpha):
                r = self._ring(theta, col[rows], alpha)
                return r["log_f"] + r["log_jac"] - math.log(2.0)

        else:
            b = (self.d - 2) / 2.0

            def ell(rows, alpha):
                r = self._ring(theta, col[rows], alpha)
                return r["log_f"] + log_betainc_sym(b, r["log_w"], r["log_1mw"]) + r["log_jac"]

        return log_integral_rows(ell, -0.5 * math.pi, np.full(psi.shape, 0.5 * math.pi))

    def _log_cap(self, theta: float, psi: ArrayLike) -> np.ndarray:
        """``log P(angle(q, K) <= psi)`` for a query at angle ``theta`` from the pole, for each ``psi`` (1-D)."""
        psi = np.asarray(psi, dtype=float)
        out = np.where(psi >= math.pi, 0.0, np.where(np.isnan(psi), np.nan, -np.inf))
        mid = (psi > 0.0) & (psi < math.pi)
        if not np.any(mid):
            return out
        p = psi[mid]
        law = self.law
        if theta == 0.0:
            out[mid] = law._log_angle_cdf(p)
            return out
        if theta == math.pi:
            out[mid] = law._log_angle_cdf(p, antipole=True)
            return out
        total = self._log_ring(theta, p)
        inside = p > theta  # the cap holds the pole's neighbourhood
        if np.any(inside):
            total[inside] = np.logaddexp(total[inside], law._log_angle_cdf(p[inside] - theta))
        big_m = math.pi - theta - p
        outside = big_m < 0  # ... and the antipole's
        if np.any(outside):
            total[outside] = np.logaddexp(total[outside], law._log_angle_cdf(-big_m[outside], antipole=True))
        out[mid] = np.minimum(total, 0.0)
        return out

    def _log_pdf_at(self, theta: float, psi: ArrayLike) -> np.ndarray:
        """``log`` density of ``S`` at ``s = cos(psi)``, ``0 < psi < pi``, for each ``psi`` (1-D)."""
        psi = np.asarray(psi, dtype=float)
        law = self.law
        with np.errstate(divide="ignore"):
            log_sin_psi = np.log(np.sin(psi))
        su, sv = np.sin(0.5 * psi) ** 2, np.cos(0.5 * psi) ** 2
        if theta == 0.0:
            return law._log_phi_pdf(su, sv) - log_sin_psi
        if theta == math.pi:
            return law._log_phi_pdf(sv, su) - log_sin_psi
        if self.d == 2:
            big_l = np.abs(theta - psi)
            big_m = np.abs(math.pi - theta - psi)
            f_l = law._log_phi_pdf(np.sin(0.5 * big_l) ** 2, np.cos(0.5 * big_l) ** 2)
            f_u = law._log_phi_pdf(np.cos(0.5 * big_m) ** 2, np.sin(0.5 * big_m) ** 2)
            return np.logaddexp(f_l, f_u) - math.log(2.0) - log_sin_psi
        b = (self.d - 2) / 2.0
        const = -math.log(2.0) - float(special.betaln(b, b))
        col = psi[:, None]

        def ell(rows, alpha):
            r = self._ring(theta, col[rows], alpha)
            return r["log_f"] + (b - 1.0) * (r["log_w"] + r["log_1mw"]) + const - r["log_sin"] + r["log_jac"]

        return log_integral_rows(ell, -0.5 * math.pi, np.full(psi.shape, 0.5 * math.pi))

    # -- gap functions, seen from angle theta (theta = self.theta, or pi - theta for -q) --
    def _log_gap_cdf_at(self, theta: float, g: np.ndarray) -> np.ndarray:
        r""":math:`\log P(1 - S \le g)` for the query at angle ``theta`` (1-D ``g``).

        Always the cap itself (a sum of positive terms), never one minus the
        other cap: so a tiny probability keeps its relative accuracy on either
        side of ``g = 1`` (:func:`_cap_angles`).
        """
        out = np.where(g >= 2.0, 0.0, np.where(np.isnan(g), np.nan, -np.inf))
        mid = (g > 0.0) & (g < 2.0)
        if np.any(mid):
            out[mid] = self._log_cap(theta, _cap_angles(g[mid])[0])
        return out

    def _log_gap_sf_at(self, theta: float, g: np.ndarray) -> np.ndarray:
        r""":math:`\log P(1 - S > g)` for the query at angle ``theta`` (1-D ``g``): the cap of ``-q``, angle :math:`\pi - \psi`."""
        out = np.where(g <= 0.0, 0.0, np.where(np.isnan(g), np.nan, -np.inf))
        mid = (g > 0.0) & (g < 2.0)
        if np.any(mid):
            out[mid] = self._log_cap(math.pi - theta, _cap_angles(g[mid])[1])
        return out

    def _log_gap_pdf_at(self, theta: float, g: np.ndarray) -> np.ndarray:
        r""":math:`\log` density of :math:`1 - S` for the query at angle ``theta`` (1-D ``g``); the tail's limit at the ends."""
        out = np.where(np.isnan(g), np.nan, -np.inf)
        for end, seen_from in ((0.0, theta), (2.0, math.pi - theta)):
            if np.any(g == end):
                with np.errstate(divide="ignore"):
                    out[g == end] = np.log(self._end_density(*self._log_tail(seen_from)))
        near = (g > 0.0) & (g <= 1.0)
        far = (g > 1.0) & (g < 2.0)
        if np.any(near):
            out[near] = self._log_pdf_at(theta, _psi_of_gap(g[near]))
        if np.any(far):
            # mirror image: the density of S at s is that of -S (query -q) at -s
            out[far] = self._log_pdf_at(math.pi - theta, _psi_of_gap(2.0 - g[far]))
        return out

    def _log_gap_cdf(self, g: np.ndarray) -> np.ndarray:
        """``log P(1 - S <= g)``, relative accuracy for any tiny value."""
        return self._log_gap_cdf_at(self.theta, g.reshape(-1)).reshape(g.shape)

    def _log_gap_sf(self, g: np.ndarray) -> np.ndarray:
        """``log P(1 - S > g)``, relative accuracy for any tiny value."""
        return self._log_gap_sf_at(self.theta, g.reshape(-1)).reshape(g.shape)

    def _log_gap_pdf(self, g: np.ndarray) -> np.ndarray:
        """``log`` density of ``1 - S``, finite far below the smallest float."""
        return self._log_gap_pdf_at(self.theta, g.reshape(-1)).reshape(g.shape)

    def _gap_cdf(self, g: np.ndarray) -> np.ndarray:
        return np.exp(self._log_gap_cdf(g))

    def _gap_sf(self, g: np.ndarray) -> np.ndarray:
        return np.exp(self._log_gap_sf(g))

    def _gap_pdf(self, g: np.ndarray) -> np.ndarray:
        return np.exp(self._log_gap_pdf(g))

    @staticmethod
    def _end_density(gamma: float, log_kappa: float) -> float:
        """Limit of the gap density ``kappa gamma g^(gamma-1)`` at ``g = 0``."""
        if gamma > 1.0:
            return 0.0
        return math.exp(min(log_kappa, 700.0)) if gamma == 1.0 else math.inf

    def _end_log_prob(
        self, x: np.ndarray, bottom: bool, upper: bool, need: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""As :meth:`ScoreLaw._end_log_prob`; the bottom is the top seen from ``-q`` (angle :math:`\pi - \theta`,
        where :math:`P(G > 2 - e) = P(\hat G < e)`), so no ``2 - e^x`` is formed."""
        theta = math.pi - self.theta if bottom else self.theta
        e = np.exp(x)
        log_f = np.full(x.shape, np.nan)
        if np.any(need):
            log_f[need] = self._log_gap_pdf_at(theta, e[need])
        log_p = self._log_gap_sf_at(theta, e) if upper != bottom else self._log_gap_cdf_at(theta, e)
        return log_p, log_f

    def _end_seed(self, t: np.ndarray, bottom: bool) -> np.ndarray:
        """Tail seed of the log-distance to the top, or to the bottom (the tail seen from ``-q``)."""
        gamma, log_kappa = self._log_tail(math.pi - self.theta if bottom else self.theta)
        return (t - log_kappa) / gamma

    def _log_tail(self, theta: float) -> tuple[float, float]:
        """``(gamma, log kappa)`` seen from a query at angle ``theta`` from the pole."""
        pole = self.law._pole_tail() if theta == 0.0 else None
        if pole is not None:
            return pole
        gamma = (self.d - 1) / 2.0
        u, v = math.sin(0.5 * theta) ** 2, math.cos(0.5 * theta) ** 2
        return gamma, _log_kappa_uniform(gamma) + float(self.law._log_rel_density(np.float64(u), np.float64(v)))

    def tail(self) -> ScoreTail:
        r"""Top of the law: endpoint 1 and the local law of the key density at ``q``.

        Smooth positive density at ``q`` (relative density :math:`r(q) = \rho(q)
        |S^{d-1}|`): :math:`\gamma = (d-1)/2`, :math:`\kappa = \kappa_{unif}\, r(q)`;
        at the pole of a law whose density is singular or vanishing there, the
        law's own exact pole tail (docs/theory.md section 2).
        """
        gamma, log_kappa = self._log_tail(self.theta)
        if not math.isfinite(log_kappa):
            raise InputError(
                f"q: the key density at q is {'zero' if log_kappa < 0 else 'infinite'} (log kappa = {log_kappa}); "
                "choose a query where the key density is positive and finite"
            )
        return ScoreTail.from_log_kappa(1.0, gamma, log_kappa, kind="weibull")

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        r"""``n`` i.i.d. scores :math:`\cos\theta (1 - 2u) + \sin\theta\, 2\sqrt{u(1-u)}\, V` (exact)."""
        u, v = self.law._sample_u(n, rng)
        if self.d == 2:
            side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        else:
            b = (self.d - 2) / 2.0
            side = 2.0 * rng.beta(b, b, size=n) - 1.0
        return math.cos(self.theta) * (v - u) + math.sin(self.theta) * 2.0 * np.sqrt(u * v) * side


class ZonalKeyLaw(KeyLaw):
    r"""A key law on :math:`S^{d-1}` whose density depends on :math:`\langle \mathrm{pole}, k\rangle` only.

    Subclasses give the density relative to the uniform law,
    :math:`r(k) = \rho(k)\,|S^{d-1}|`, as a function of
    :math:`u = (1 - \langle \mathrm{pole}, k\rangle)/2` and :math:`v = 1 - u`
    (``_log_rel_density``), and a sampler of ``(u, v)`` (``_sample_u``).  Keys
    are :math:`K = (1-2u)\,\mathrm{pole} + 2\sqrt{uv}\,T` with :math:`T` a uniform
    unit tangent vector at the pole; scores go through :class:`ZonalScoreLaw`
    (docs/theory.md section 2).
    """

    d: int

    @property
    @abc.abstractmethod
    def pole(self) -> np.ndarray:
        """Unit vector about which the density is symmetric."""

    @abc.abstractmethod
    def _log_rel_density(self, u, v):
        """``log(rho |S^{d-1}|)`` at a key with ``(1 - <pole, k>)/2 = u``, ``v = 1 - u``."""

    @abc.abstractmethod
    def _sample_u(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` i.i.d. ``(u, 1 - u)`` pairs."""

    def _pole_tail(self) -> tuple[float, float] | None:
        """``(gamma, log kappa)`` at the pole where the density is not smooth and positive there."""
        return None

    def _log_phi_pdf(self, u, v):
        r"""``log`` density of the angle :math:`\Phi` to the pole at :math:`\sin^2(\phi/2) = u`.

        Uniform part :math:`\sin^{d-2}\phi / B(1/2, (d-1)/2)` with
        :math:`\sin\phi = 2\sqrt{uv}`, times the relative density.
        """
        k = (self.d - 2) / 2.0
        with np.errstate(divide="ignore", invalid="ignore"):
            log_unif = (
                (self.d - 2) * math.log(2.0)
                + special.xlogy(k, u)
                + special.xlogy(k, v)
                - float(special.betaln(0.5, (self.d - 1) / 2.0))
            )
            return log_unif + self._log_rel_density(u, v)

    def _log_angle_cdf(self, angle: np.ndarray, antipole: bool = False) -> np.ndarray:
        r"""``log P(Phi <= angle)`` (``antipole``: :math:`\log P(\pi - \Phi \le angle)`) for each ``angle`` (1-D).

        Quadrature of the angle's density over the cap itself, for caps larger
        than a hemisphere too: never one minus the other cap, so tiny
        probabilities keep their relative accuracy (override with closed forms).
        """
        out = np.where(angle >= math.pi, 0.0, np.where(np.isnan(angle), np.nan, -np.inf))
        mid = (angle > 0.0) & (angle < math.pi)
        if np.any(mid):

            def ell(rows, phi):
                if antipole:
                    return self._log_phi_pdf(*_uv_from_angle(math.pi - phi, phi))
                return self._log_phi_pdf(*_uv_from_angle(phi, math.pi - phi))

            out[mid] = np.minimum(log_integral_rows(ell, 0.0, angle[mid]), 0.0)
        return out

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        g = as_generator(rng)
        n = check_n(n)
        u, v = self._sample_u(n, g)
        pole = self.pole
        t = g.standard_normal((n, self.d))
        t -= np.outer(t @ pole, pole)
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        return (v - u)[:, None] * pole[None, :] + (2.0 * np.sqrt(u * v))[:, None] * t

    def score_law(self, q: ArrayLike) -> ScoreLaw:
        """Exact law of ``<q, K>``: a :class:`ZonalScoreLaw` (section 2)."""
        return ZonalScoreLaw(self, _angle(self._query(q), self.pole))

    def tangent_frame(self, q: ArrayLike) -> TangentMap | None:
        """The frame of :math:`q^\\perp` for ``q`` on the axis (``q = +-pole``), else ``None`` (:meth:`KeyLaw.tangent_frame`)."""
        qv = self._query(q)
        if abs(abs(float(qv @ self.pole)) - 1.0) > 1e-12:
            return None
        return TangentMap.at(qv)


@dataclass(frozen=True)
class UniformSphere(ZonalKeyLaw):
    r"""Keys uniform on the unit sphere :math:`S^{d-1}` (docs/theory.md section 2).

    Scores from any unit query: :math:`(1-S)/2 \sim \mathrm{Beta}(a, a)`,
    :math:`a = (d-1)/2` (:class:`UniformScoreLaw`).

    Examples
    --------
    >>> law = UniformSphere(3)
    >>> law.sample(4, rng=0).shape
    (4, 3)
    >>> law.score_tail([0.0, 0.0, 1.0]).gamma
    1.0
    """

    d: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "d", check_dimension(self.d))

    @property
    def pole(self) -> np.ndarray:
        """Any axis serves; ``e_1``."""
        return _axis(self.d)

    def _log_rel_density(self, u, v):
        return np.zeros(np.shape(u))

    def _sample_u(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        a = (self.d - 1) / 2.0
        return _beta_pair(a, a, n, rng)

    def _log_angle_cdf(self, angle: np.ndarray, antipole: bool = False) -> np.ndarray:
        a = (self.d - 1) / 2.0
        return _log_beta_cap(a, a, angle)

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        return uniform_directions(check_n(n), self.d, as_generator(rng))

    def score_law(self, q: ArrayLike) -> UniformScoreLaw:
        self._query(q)
        return UniformScoreLaw(self.d)

    def tangent_frame(self, q: ArrayLike) -> TangentMap:
        """The frame of :math:`q^\\perp`, for any unit ``q`` (:meth:`KeyLaw.tangent_frame`)."""
        return TangentMap.at(self._query(q))


def _vmf_log_mgf(d: int, kappa: float) -> float:
    r""":math:`\log E_{unif}[e^{\kappa(X - 1)}]`, :math:`X = \langle\mu, K\rangle`, by log-space quadrature.

    Equals :math:`\log[\Gamma(d/2) (2/\kappa)^{d/2-1} I_{d/2-1}(\kappa)] - \kappa`;
    the quadrature never forms a Bessel function, so it neither underflows at
    large ``d`` nor overflows at large ``kappa``.
    """
    if kappa == 0.0:
        return 0.0
    k = (d - 2) / 2.0
    const = (d - 2) * math.log(2.0) - float(special.betaln(0.5, (d - 1) / 2.0))

    def ell(phi):
        u, v = _uv_from_angle(phi, math.pi - phi)
        return const + special.xlogy(k, u) + special.xlogy(k, v) - 2.0 * kappa * u

    return log_integral(ell, 0.0, math.pi)


@dataclass(frozen=True, eq=False)
class VonMisesFisher(ZonalKeyLaw):
    r"""Von Mises-Fisher keys: density :math:`C_d(\kappa)\, e^{\kappa\langle\mu, x\rangle}` on :math:`S^{d-1}`.

    ``d = len(mu)``.  Sampling is exact (Wood 1994, written in terms of
    :math:`u = (1 - \langle\mu, K\rangle)/2` so that concentrated laws keep
    their precision).  The normalizer is computed by log-space quadrature,
    never through unscaled Bessel functions (which underflow for large ``d``).
    Seen from a query ``q`` the tail has :math:`\gamma = (d-1)/2` and
    :math:`\kappa = \kappa_{unif}\, e^{\kappa\langle\mu,q\rangle}/E_{unif}[e^{\kappa X}]`
    (docs/theory.md section 2).

    Parameters
    ----------
    mu : array_like, shape (d,)
        Mean direction, a unit vector (``d >= 2``).
    kappa : float
        Concentration, ``>= 0`` (0 is the uniform law).

    Examples
    --------
    >>> law = VonMisesFisher([0.0, 0.0, 1.0], kappa=2.0)
    >>> law.sample(5, rng=0).shape
    (5, 3)
    >>> round(law.mean_resultant_length, 10)   # coth(2) - 1/2
    0.5373147207
    >>> law.score_tail([0.0, 0.0, 1.0]).gamma
    1.0
    """

    mu: np.ndarray
    kappa: float
    _log_mgf: float = field(init=False, repr=False)
    d: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mu", _read_only(check_unit_vector(self.mu, "mu")))
        object.__setattr__(self, "d", int(self.mu.shape[0]))
        object.__setattr__(self, "kappa", check_nonnegative(self.kappa, "kappa"))
        object.__setattr__(self, "_log_mgf", _vmf_log_mgf(self.d, self.kappa))

    @property
    def pole(self) -> np.ndarray:
        return self.mu

    @property
    def log_normalizer(self) -> float:
        r""":math:`\log C_d(\kappa) = \log[\kappa^{d/2-1} / ((2\pi)^{d/2} I_{d/2-1}(\kappa))]`."""
        log_area = math.log(2.0) + (self.d / 2.0) * math.log(math.pi) - math.lgamma(self.d / 2.0)
        return -log_area - self.kappa - self._log_mgf

    @property
    def mean_resultant_length(self) -> float:
        r""":math:`A_d(\kappa) = E\langle\mu, K\rangle = I_{d/2}(\kappa)/I_{d/2-1}(\kappa)`, by quadrature.

        :math:`A = \int_0^{\pi/2} \cos\phi \sinh(\kappa\cos\phi) \sin^{d-2}\phi\,d\phi /
        \int_0^{\pi/2} \cosh(\kappa\cos\phi) \sin^{d-2}\phi\,d\phi`: both integrands
        are positive, so small and large ``kappa`` keep relative accuracy.
        """
        if self.kappa == 0.0:
            return 0.0
        kap, k = self.kappa, float(self.d - 2)

        def log_base(phi):
            # kappa (x - 1) = -2 kappa sin^2(phi/2): the common factor e^kappa is left out
            x = np.cos(phi)
            return x, -2.0 * kap * np.sin(0.5 * phi) ** 2 + special.xlogy(k, np.sin(phi)) - math.log(2.0)

        def ell_num(phi):
            x, base = log_base(phi)
            return np.log(x) + base + np.log(-np.expm1(-2.0 * kap * x))

        def ell_den(phi):
            x, base = log_base(phi)
            return base + np.log1p(np.exp(-2.0 * kap * x))

        half = 0.5 * math.pi
        return math.exp(log_integral(ell_num, 0.0, half) - log_integral(ell_den, 0.0, half))

    def mean(self) -> np.ndarray:
        r""":math:`E K = A_d(\kappa)\,\mu`."""
        return self.mean_resultant_length * np.asarray(self.mu)

    def _log_rel_density(self, u, v):
        return -2.0 * self.kappa * np.asarray(u, dtype=float) - self._log_mgf

    def _sample_u(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        r"""Wood's rejection sampler for :math:`W = \langle\mu, K\rangle = 1 - 2u`.

        :math:`b = (d-1)/(2\kappa + \sqrt{4\kappa^2 + (d-1)^2})`,
        :math:`x_0 = (1-b)/(1+b)`; proposal :math:`W = (1 - (1+b)Z)/(1 - (1-b)Z)`,
        :math:`Z \sim \mathrm{Beta}((d-1)/2, (d-1)/2)`, i.e.
        :math:`u = bZ / ((1-Z) + bZ)`; accept when
        :math:`\kappa(W - x_0) + (d-1)\log\frac{1 - x_0 W}{1 - x_0^2} \ge \log U`,
        all terms written without cancellation.
        """
        m1 = self.d - 1.0
        kap = self.kappa
        b = m1 / (2.0 * kap + math.hypot(2.0 * kap, m1))
        a = m1 / 2.0
        us, vs = [], []
        remaining = n
        while remaining > 0:
            batch = int(remaining * 1.3) + 16
            z, omz = _beta_pair(a, a, batch, rng)  # Z, 1 - Z
            den = omz + b * z
            u = b * z / den
            v = omz / den
            # kappa (W - x0) with W - x0 = 2b/(1+b) - 2u ; (1 - x0 W)/(1 - x0^2) = (1+b)(b + (1-b)u)/(2b)
            log_ratio = math.log1p(b) + np.log(b + (1.0 - b) * u) - math.log(2.0 * b)
            score = kap * (2.0 * b / (1.0 + b) - 2.0 * u) + m1 * log_ratio
            keep = np.log(rng.random(batch)) <= score
            us.append(u[keep][:remaining])
            vs.append(v[keep][:remaining])
            remaining -= us[-1].shape[0]
        return np.concatenate(us), np.concatenate(vs)


@dataclass(frozen=True)
class PowerDensity(ZonalKeyLaw):
    r"""Keys with density :math:`\propto |k - e_1|^\eta` on :math:`S^{d-1}`.

    Near :math:`e_1` the surface element is :math:`r^{d-2}\,dr` in the distance
    :math:`r = |k - e_1|`, so the density is integrable iff
    :math:`\eta + d - 2 > -1`, i.e. :math:`\eta > -(d-1)`.  With
    :math:`u = (1 - \langle e_1, K\rangle)/2 = |K - e_1|^2/4` and :math:`a = (d-1)/2`,
    :math:`u \sim \mathrm{Beta}(a + \eta/2, a)` exactly (sampled so, plus a
    uniform tangent direction).  From :math:`q = e_1` the scores are
    :math:`1 - 2u` (:class:`BetaScoreLaw`), tail :math:`\gamma = (d-1+\eta)/2`,
    :math:`\kappa = 2^{-\gamma}/(\gamma B(\gamma, a))`; from any other query
    :math:`\gamma = (d-1)/2` with :math:`\kappa` from the density at ``q``
    (docs/theory.md section 2).

    Parameters
    ----------
    d : int
        Ambient dimension, ``>= 2``.
    eta : float
        Exponent, ``> -(d-1)``; 0 is the uniform law.

    Examples
    --------
    >>> law = PowerDensity(3, eta=2.0)
    >>> law.score_tail([1.0, 0.0, 0.0]).gamma
    2.0
    >>> law.score_tail([0.0, 1.0, 0.0]).gamma
    1.0
    """

    d: int
    eta: float

    def __post_init__(self) -> None:
        d = check_dimension(self.d)
        eta = check_finite(self.eta, "eta")
        if not eta > -(d - 1):
            raise InputError(
                f"eta: got {self.eta!r}; expected eta > -(d-1) = {-(d - 1)} (|k - e_1|^eta must be integrable on S^{d - 1})"
            )
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "eta", eta)

    @property
    def a(self) -> float:
        """:math:`a = (d-1)/2`."""
        return (self.d - 1) / 2.0

    @property
    def a_pole(self) -> float:
        r""":math:`a + \eta/2 = (d - 1 + \eta)/2`, the exponent of the tail at :math:`e_1`."""
        return self.a + self.eta / 2.0

    @property
    def pole(self) -> np.ndarray:
        return _axis(self.d)

    def _log_rel_density(self, u, v):
        # (4u)^(eta/2) / E_unif[(4U)^(eta/2)],  E_unif[U^(eta/2)] = B(a + eta/2, a) / B(a, a)
        with np.errstate(divide="ignore"):
            return special.xlogy(self.eta / 2.0, u) - special.betaln(self.a_pole, self.a) + special.betaln(self.a, self.a)

    def _sample_u(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return _beta_pair(self.a_pole, self.a, n, rng)

    def _log_angle_cdf(self, angle: np.ndarray, antipole: bool = False) -> np.ndarray:
        if antipole:
            return _log_beta_cap(self.a, self.a_pole, angle)
        return _log_beta_cap(self.a_pole, self.a, angle)

    def _pole_tail(self) -> tuple[float, float] | None:
        g = self.a_pole
        return g, -g * math.log(2.0) - math.log(g) - float(special.betaln(g, self.a))

    def score_law(self, q: ArrayLike) -> ScoreLaw:
        """:class:`BetaScoreLaw` at ``q = e_1``, :class:`ZonalScoreLaw` elsewhere."""
        theta = _angle(self._query(q), self.pole)
        if theta == 0.0:
            return BetaScoreLaw(self.a_pole, self.a, endpoint=1.0, width=2.0)
        return ZonalScoreLaw(self, theta)
