r"""The two ends of the law of the scaled tangential output, and the supercritical distance to the top key.

Crossover (docs/theory.md section 3): the small-``c`` Gaussian end and the large-``c``
nearest-key end of :math:`E|T|^2` and of the law of :math:`|T|`; supercritical: the law
of :math:`y - K_{(1)}`.  Re-exported by :mod:`attnscale.output`.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from scipy import special, stats

from ._numerics.arrays import as_output
from ._validate import InputError, check_int, check_positive
from .tails import ScoreTail

__all__ = [
    "gaussian_end_cdf",
    "gaussian_end_second_moment",
    "nearest_end_cdf",
    "nearest_end_second_moment",
    "supercritical_distance_constant",
    "supercritical_far_probability",
    "supercritical_within_probability",
]


# ---------------------------------------------------------------------------
# Crossover: the two ends of the law of the scaled tangential norm
# ---------------------------------------------------------------------------


def gaussian_end_second_moment(gamma: float, c: Any) -> float | np.ndarray:
    r"""Small-``c`` end of :math:`E|T|^2`: :math:`2^{-\gamma}c^{\gamma-1}/\Gamma(\gamma)`.

    For :math:`c \to 0` the limit :math:`T` is a sum over many points, hence
    Gaussian, with :math:`E|T|^2 \approx 2\int e^{-2cx^{1/\gamma}}x^{1/\gamma}dx /
    (\int e^{-cx^{1/\gamma}}dx)^2`.  For uniform keys this is the subcritical
    :math:`(d-1)(\kappa n)^{1/\gamma}\mathrm{Var}_{tan}` at leading order
    (docs/theory.md section 3); relative error :math:`O(c^\gamma)`.

    Examples
    --------
    >>> gaussian_end_second_moment(1.0, 0.01)
    0.5
    """
    g = check_positive(gamma, "gamma")
    cc = np.asarray(c, dtype=float)
    if np.any(~np.isfinite(cc) | (cc <= 0)):
        check_positive(float(cc[~np.isfinite(cc) | (cc <= 0)].flat[0]), "c")
    out = np.exp(-g * math.log(2.0) + (g - 1.0) * np.log(cc) - math.lgamma(g))
    return as_output(out)


def gaussian_end_cdf(r: Any, gamma: float, c: float, dim: int) -> np.ndarray:
    r"""Small-``c`` law of :math:`|T|`: a chi law with ``dim`` degrees of freedom.

    :math:`P(|T| \le r) = F_{\chi^2_{dim}}(\mathrm{dim}\, r^2 / E|T|^2)` with
    :math:`E|T|^2` from :func:`gaussian_end_second_moment` (docs/theory.md section 3).

    Examples
    --------
    >>> float(gaussian_end_cdf(0.0, 1.0, 0.01, 2))
    0.0
    """
    dim = check_int(dim, "dim")
    m2 = gaussian_end_second_moment(gamma, check_positive(c, "c"))
    rr = np.asarray(r, dtype=float)
    return stats.chi2.cdf(dim * rr**2 / m2, dim)


def nearest_end_second_moment(gamma: float, c: float | None = None) -> float:
    r"""Large-``c`` end of :math:`E|T|^2`: :math:`2\Gamma(1 + 1/\gamma) - 2\gamma/c`.

    As :math:`c \to \infty`, :math:`T \to \sqrt2\Gamma_1^{1/(2\gamma)}\theta_1`, the
    nearest key's scaled tangential position, with :math:`E|T|^2 = 2\Gamma(1+1/\gamma)`.
    The first correction comes from near-ties of the two nearest keys
    (:math:`\Gamma_1^{1/\gamma}, \Gamma_2^{1/\gamma}` within :math:`O(1/c)`, probability
    density :math:`\gamma\Gamma(2-1/\gamma)` at a tie): with the mass split
    :math:`W, 1-W` between them, :math:`|T|^2` drops by :math:`W(1-W)|x_1 - x_2|^2`,
    :math:`\int_0^\infty W(1-W)\,d(c\Delta) = 1/2` and :math:`E|x_1 - x_2|^2 = 4 x^{1/\gamma}`
    at a tie at :math:`\Gamma = x`, so :math:`E|T|^2 = 2\Gamma(1+1/\gamma) - 2\gamma/c + o(1/c)`
    for :math:`\gamma > 1/2` (docs/theory.md section 3).  Without ``c``: the limit.

    Examples
    --------
    >>> nearest_end_second_moment(1.0), nearest_end_second_moment(1.0, 100.0)
    (2.0, 1.98)
    """
    g = check_positive(gamma, "gamma")
    base = 2.0 * math.gamma(1.0 + 1.0 / g)
    if c is None:
        return base
    if g <= 0.5:
        raise InputError(f"gamma: got {gamma!r}; the 1/c correction needs gamma > 1/2")
    return base - 2.0 * g / check_positive(c, "c")


def nearest_end_cdf(r: Any, gamma: float) -> np.ndarray:
    r"""Large-``c`` law of :math:`|T|`: :math:`P(\sqrt2\Gamma_1^{1/(2\gamma)} \le r) = 1 - e^{-(r^2/2)^\gamma}`.

    docs/theory.md section 3.

    Examples
    --------
    >>> round(float(nearest_end_cdf(math.sqrt(2.0), 1.0)), 12)          # 1 - 1/e
    0.632120558829
    """
    g = check_positive(gamma, "gamma")
    rr = np.clip(np.asarray(r, dtype=float), 0.0, None)
    return -np.expm1(-((rr * rr / 2.0) ** g))


# ---------------------------------------------------------------------------
# Supercritical: y - K_(1)
# ---------------------------------------------------------------------------


def _check_dim(dim: Any) -> int:
    return check_int(dim, "dim", minimum=1)


def _mean_chord(dim: int) -> float:
    r""":math:`E|\theta_1 - \theta_2|` for independent uniform unit vectors in :math:`R^{dim}`."""
    if dim == 1:
        return 1.0
    b = (dim - 1) / 2.0
    return 2.0 * math.exp(float(special.betaln(b + 0.5, b) - special.betaln(b, b)))


def supercritical_distance_constant(gamma: float, dim: int) -> float:
    r"""Constant :math:`C` of :math:`E\,(\kappa n)^{1/(2\gamma)}|y - K_{(1)}| \sim C/c` as :math:`c \to \infty`.

    In scaled tangential coordinates :math:`x_k = \sqrt2\Gamma_k^{1/(2\gamma)}\theta_k`,
    :math:`y - K_{(1)} \approx \sum_{k\ge2} W_k (x_k - x_1)` (the radial part is
    smaller by :math:`(\kappa n)^{-1/(2\gamma)}`).  Only near-ties of the two nearest
    keys matter: given :math:`\Gamma_1 = x` the gap
    :math:`\Delta = \Gamma_2^{1/\gamma} - \Gamma_1^{1/\gamma}` has density
    :math:`\gamma x^{1-1/\gamma}` at 0, :math:`W_2 = 1/(1 + e^{c\Delta})`,
    :math:`\int_0^\infty W_2\,d(c\Delta) = \ln 2`, hence (docs/theory.md section 3)

    .. math::
        C = \ln 2\;\gamma\,\Gamma\!\big(2 - \tfrac{1}{2\gamma}\big)\,\sqrt2\;E|\theta_1 - \theta_2|,
        \qquad E|\theta_1 - \theta_2| = 2\,\frac{B(b + 1/2, b)}{B(b, b)},\ b = \frac{dim - 1}{2},

    for :math:`\gamma > 1/4` (d = 3: :math:`C = 2\sqrt2\ln 2/\sqrt\pi \approx 1.1061`).

    Parameters
    ----------
    gamma : float
        Tail exponent, > 1/4.
    dim : int
        Dimension of the tangent space (``d - 1`` for keys on :math:`S^{d-1}`).

    Examples
    --------
    >>> round(supercritical_distance_constant(1.0, 2), 6)
    1.106103
    """
    g = check_positive(gamma, "gamma")
    if g <= 0.25:
        raise InputError(f"gamma: got {gamma!r}; the supercritical distance constant needs gamma > 1/4")
    dim = _check_dim(dim)
    return math.log(2.0) * g * math.gamma(2.0 - 0.5 / g) * math.sqrt(2.0) * _mean_chord(dim)


def _far_integral(gamma: float, rho: float, dim: int) -> float:
    r""":math:`\gamma\int_0^\infty e^{-x}x^{1-1/\gamma}E_U[\log(h/\rho - 1)_+]\,dx`, :math:`h = 2\sqrt{2U}x^{1/(2\gamma)}`.

    Given :math:`U = u`, :math:`h > 2\rho` iff :math:`x > x_0 = (\rho^2/(2u))^\gamma`; with
    :math:`x = x_0 e^v` the inner integral is
    :math:`\int_0^\infty e^{-x}x^{2-1/\gamma}\log(2e^{v/(2\gamma)} - 1)\,dv`, smooth in
    :math:`v`: Gauss-Legendre on panels refined near :math:`v = 0` (where the integrand
    varies on the scale :math:`1/x_0`) and up to :math:`x = 800`.  The average over
    :math:`U = \sin^2\psi \sim \mathrm{Beta}(b, b)` is Gauss-Legendre in :math:`\psi` on
    geometric panels (the inner integral varies on the scale :math:`u \sim \rho^2`);
    ``dim = 1``: :math:`U \in \{0, 1\}`.
    """
    gx, gw = np.polynomial.legendre.leggauss(16)
    if dim == 1:
        u, wu = np.array([1.0]), np.array([0.5])
    else:
        # u = sin^2(psi): p_U du = 2 (sin psi cos psi)^{2b-1} / B(b, b) d psi; inner(u) = 0 below
        # u_min (x_0 > 800) and varies on the scale u ~ rho^2: geometric panels in psi
        b = (dim - 1) / 2.0
        psi_min = min(math.sqrt(0.5 * rho * rho * 800.0 ** (-1.0 / gamma)), 0.5)
        edges = np.unique(np.concatenate([[0.0], np.geomspace(psi_min, math.pi / 2, 48)]))
        a, bb = edges[:-1, None], edges[1:, None]
        psi = (0.5 * (bb - a) * gx + 0.5 * (bb + a)).ravel()
        wpsi = (0.5 * (bb - a) * gw).ravel()
        u = np.sin(psi) ** 2
        sc = np.sin(psi) * np.cos(psi)
        wu = wpsi * 2.0 * np.exp((2.0 * b - 1.0) * np.log(sc) - float(special.betaln(b, b)))
    log_x0 = gamma * (2.0 * math.log(rho) - np.log(2.0 * u))
    v_max = max(1.0, math.log(800.0) - float(log_x0.min()))
    edges = np.unique(np.concatenate([[0.0], np.geomspace(1e-5, 1.0, 26), np.arange(1.5, v_max + 0.5, 0.5)]))
    a, bb = edges[:-1, None], edges[1:, None]
    v = (0.5 * (bb - a) * gx + 0.5 * (bb + a)).ravel()
    wv = (0.5 * (bb - a) * gw).ravel()
    log_x = log_x0[:, None] + v[None, :]
    with np.errstate(over="ignore", under="ignore"):
        body = np.exp(-np.exp(np.minimum(log_x, 700.0)) + (2.0 - 1.0 / gamma) * log_x)
    inner = gamma * (body * np.log1p(2.0 * np.expm1(v / (2.0 * gamma)))[None, :]) @ wv
    return float(wu @ inner)


@functools.lru_cache(maxsize=512)
def _far_cached(gamma: float, rho: float, dim: int) -> float:
    return _far_integral(gamma, rho, dim)


def supercritical_far_probability(gamma: float, c: float, rho: float, dim: int) -> float:
    r"""Large-``c`` asymptotic of :math:`P\big((\kappa n)^{1/(2\gamma)}|y - K_{(1)}| > \rho\big)`.

    A near-tie of the two nearest keys at :math:`\Gamma_1 \approx \Gamma_2 = x`
    puts mass :math:`W = 1/(1 + e^{c\Delta})` on the second, at scaled distance
    :math:`h = \sqrt2\,x^{1/(2\gamma)}|\theta_1 - \theta_2|` from the first, so
    :math:`D = Wh > \rho` iff :math:`c\Delta < \log(h/\rho - 1)`.  With the tie
    density :math:`\gamma x^{1-1/\gamma}e^{-x}` (see
    :func:`supercritical_distance_constant`),

    .. math::
        P(D > \rho) = \frac{\gamma}{c}\int_0^\infty e^{-x}x^{1-1/\gamma}\,
        E\big[\log(h/\rho - 1)_+\big]\,dx + o(1/c),
        \qquad \frac{|\theta_1-\theta_2|^2}{4} \sim \mathrm{Beta}(b, b),

    by two-dimensional quadrature (docs/theory.md section 3).  Integrating over
    :math:`\rho` returns :func:`supercritical_distance_constant`.  Valid for fixed
    :math:`\rho > 0` as :math:`c \to \infty` (the median of ``D`` is exponentially small).

    Parameters
    ----------
    gamma : float
        Tail exponent, > 0.
    c : float
        :math:`\beta/\beta^*(n)`, > 0 (large).
    rho : float
        Scaled distance, > 0.
    dim : int
        Dimension of the tangent space (``d - 1``).

    Examples
    --------
    >>> round(supercritical_far_probability(1.0, 100.0, 0.1, 2) * 100, 4)
    2.2798
    """
    g, cc = check_positive(gamma, "gamma"), check_positive(c, "c")
    r = check_positive(rho, "rho")
    return _far_cached(g, r, _check_dim(dim)) / cc


def supercritical_within_probability(n: Any, tail: ScoreTail, c: float, r: float, dim: int) -> float:
    r"""Large-``c`` probability that the output is within distance ``r`` of the closest key.

    :math:`P(|y - K_{(1)}| \le r) \approx 1 - ` :func:`supercritical_far_probability`
    at :math:`\rho = r/` :func:`tangential_scale` (docs/theory.md section 3).

    Parameters
    ----------
    n : int
        Context length.
    tail : ScoreTail
        Weibull tail seen from the query.
    c : float
        :math:`\beta/\beta^*(n)`, large.
    r : float
        Distance, > 0.
    dim : int
        Dimension of the tangent space (``d - 1``).

    Examples
    --------
    >>> p = supercritical_within_probability(2e4, ScoreTail(1.0, 1.0, 0.5), 100.0, 0.001, 2)
    >>> round(p, 4)                                       # rho = 0.1
    0.9772
    """
    from .output import tangential_scale  # output re-exports this module: imported at call time

    rho = check_positive(r, "r") / tangential_scale(n, tail)
    return 1.0 - supercritical_far_probability(tail.gamma, c, rho, dim)
