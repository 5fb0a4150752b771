r"""Exact means of the critical limit laws, by the Palm formula (docs/theory.md section 7).

The critical limit law of the ordered weights (section 3) is a functional of a
Poisson process: with :math:`y_1 < y_2 < \dots` the points of a Poisson process
on :math:`(0, \infty)` of intensity :math:`\Lambda(dy)`, the weights are
:math:`W_k = e^{-c\,y_k} / \sum_j e^{-c\,y_j}`.

- **Weibull class** (local exponent :math:`\gamma`): :math:`y_k = \Gamma_k^{1/\gamma}`,
  :math:`\Lambda(dy) = \gamma y^{\gamma-1} dy`.
- **Gumbel class** (section 2): :math:`W_k \propto \Gamma_k^{-c}`, i.e. points
  :math:`x_k = \Gamma_k` of unit rate and weights :math:`x^{-c}`; Poisson-Dirichlet
  :math:`(1/c)` for :math:`c > 1`, and no macroscopic weight for :math:`c \le 1`.

By the Palm (Mecke) formula, conditioning on the nearest point :math:`x` and writing
:math:`1/(1+S) = \int_0^\infty e^{-u(1+S)}du`,

.. math::
    E\,W_1 = \int_0^\infty \Lambda(dx)\, e^{-\Lambda(0,x)} \int_0^\infty e^{-u}
    e^{-L(u,x)}\,du, \qquad
    L(u,x) = \int_x^\infty \bigl(1 - e^{-u e^{-c(y-x)}}\bigr)\Lambda(dy),

and :math:`1 - E W_1` is the same with :math:`1 - e^{-L}` in place of :math:`e^{-L}`
(computed directly, so both ends keep their relative accuracy).  For the effective
number of keys, with :math:`A = \sum e^{-c y_k}`, :math:`B = \sum e^{-2c y_k}`,
:math:`1/B = \int_0^\infty e^{-vB} dv` and Campbell's formula for the tilted process,

.. math::
    E\,n_\mathrm{eff} = E\frac{A^2}{B} = \int_0^\infty e^{-\Psi(v)}
    \Bigl[\Bigl(\int e^{-cy} e^{-v e^{-2cy}}\Lambda(dy)\Bigr)^2
    + \int e^{-2cy} e^{-v e^{-2cy}}\Lambda(dy)\Bigr] dv,
    \quad \Psi(v) = \int (1 - e^{-v e^{-2cy}})\Lambda(dy).

All integrals are by the trapezoid rule in logarithmic variables (exponentially
convergent for these analytic, doubly decaying integrands) and composite
Gauss-Legendre, vectorized; values are cached.  The trapezoid step ``_H = 0.5`` puts the
error near :math:`e^{-\pi^2/h}`: measured 4e-8 relative against the closed form at
:math:`\gamma = 1`, so 1e-7 relative is the accuracy promised (``_H = 0.4`` gives 4e-10 at
twice the cost).  Checked against the Monte Carlo reference values of section 3 and
:class:`attnscale.limits.CriticalLimit` (tests/test_limit_means.py).

The **effective c** of a finite context (section 7) inverts :math:`c \mapsto E W_1`
(increasing from 0 to 1): :func:`c_matching_max_weight`.  The **critical band**
(section 7) is the band of :math:`E W_1` that the band ``(0.1, 10)`` of ``c``
spans at :math:`\gamma = 1`; :func:`critical_band` maps it to ``c`` for any tail.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from ._validate import InputError, check_choice, check_positive
from ._numerics.special import log_upper_gamma as _log_upper_gamma

__all__ = [
    "LimitMaxWeight",
    "REFERENCE_BAND_C",
    "c_matching_max_weight",
    "critical_band",
    "limit_max_weight",
    "limit_n_eff",
]

#: Tail classes with a limit law of the weights (the atom class has none: its weight is exact).
LIMIT_KINDS = ("weibull", "gumbel")

#: The band of ``c`` called critical at :math:`\gamma = 1` (uniform keys on :math:`S^2`);
#: its ends fix the levels of :math:`E W_1` that bound the critical regime for every law.
REFERENCE_BAND_C = (0.1, 10.0)

#: Trapezoid step in the logarithmic variables (error about :math:`e^{-\pi^2/h}`).
_H = 0.5
#: Depth of the logarithmic ranges: integrands are cut where they fall below :math:`e^{-36}`.
_DEPTH = 36.0
#: Upper end of ``u``: :math:`e^{-u}` is below 1e-17 beyond it.
_U_MAX = 40.0
#: ``log(745 / (1 - 1/e))``: where :math:`(1 - e^{-1})\,u\,M_1 > 745`, :math:`e^{-L}` is 0 in float64.
_LOG_UNDERFLOW_U = math.log(745.0 / (1.0 - math.exp(-1.0)))
#: Composite Gauss-Legendre (panels x nodes) for the inner integral in ``z = c (y - x)``.
_PANELS, _NODES = 16, 8
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_NODES)
#: Largest log of a term before it is capped (its exponential is far beyond every other term).
_LOG_CAP = 700.0


@dataclass(frozen=True)
class LimitMaxWeight:
    r""":math:`E W_1` of a critical limit law and its complement, each to full relative accuracy.

    Attributes
    ----------
    mean : float
        :math:`E W_1`.
    complement : float
        :math:`1 - E W_1`, computed directly (not as a difference).
    log_odds : float
        :math:`\log(E W_1 / (1 - E W_1))`, finite even where ``mean`` underflows.
    """

    mean: float
    complement: float
    log_odds: float


def _check_kind(kind: str) -> str:
    return check_choice(kind, "kind", LIMIT_KINDS)


def _composite_unit() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of composite Gauss-Legendre on [0, 1]."""
    edges = np.linspace(0.0, 1.0, _PANELS + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    nodes = (mid[:, None] + half[:, None] * _GL_X[None, :]).ravel()
    weights = (half[:, None] * _GL_W[None, :]).ravel()
    return nodes, weights


_UNIT_NODES, _UNIT_WEIGHTS = _composite_unit()


def _log_trapezoid(log_f: np.ndarray, axis: int) -> np.ndarray:
    """``log(h * sum exp(log_f))`` along ``axis`` (trapezoid rule; the ends are negligible)."""
    return special.logsumexp(log_f, axis=axis) + math.log(_H)


def _weibull_log_l(gamma: float, c: float, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    r""":math:`\log L(u, x)` for the Weibull class; ``x`` and ``u`` broadcast.

    :math:`L = (\gamma/c)\int_0^\infty (1 - e^{-u e^{-z}})(x + z/c)^{\gamma-1} dz`: composite
    Gauss-Legendre on :math:`[0, Z]`, :math:`Z = \log^+ u + 36`, in :math:`z = Z w^{q}`
    (:math:`q = \max(1, 1/\gamma)` removes the singularity of :math:`z^{\gamma-1}` at 0), and
    beyond :math:`Z` the linear term, :math:`u\,\gamma e^{cx} c^{-\gamma}\Gamma(\gamma, cx + Z)`.
    """
    q = max(1.0, 1.0 / gamma)
    zmax = np.maximum(np.log(u), 0.0) + _DEPTH
    w = _UNIT_NODES
    z = zmax[..., None] * w**q
    log_jac = np.log(zmax)[..., None] + math.log(q) + (q - 1.0) * np.log(w) + np.log(_UNIT_WEIGHTS)
    log_phi = math.log(gamma / c) + (gamma - 1.0) * np.log(x[..., None] + z / c)
    log_weight = log_phi + log_jac
    top = log_weight.max(axis=-1, keepdims=True)
    step = -np.expm1(-u[..., None] * np.exp(-z))
    with np.errstate(divide="ignore"):
        body = np.log(np.einsum("...k,...k->...", step, np.exp(log_weight - top))) + top[..., 0]
    body = np.minimum(body, _LOG_CAP)
    log_tail = (
        np.log(u) + math.log(gamma) + c * x - gamma * math.log(c) + _log_upper_gamma(gamma, c * x + zmax)
    )
    return np.logaddexp(body, np.minimum(log_tail, _LOG_CAP))


def _weibull_log_m1(gamma: float, c: float, x: np.ndarray) -> np.ndarray:
    r""":math:`\log\int_x^\infty e^{-c(y-x)}\Lambda(dy) = \log[\gamma e^{cx} c^{-\gamma}\Gamma(\gamma, cx)]`."""
    return math.log(gamma) + c * x - gamma * math.log(c) + _log_upper_gamma(gamma, c * x)


@functools.lru_cache(maxsize=4096)
def _weibull_max_weight(gamma: float, c: float) -> tuple[float, float]:
    """``(log E W_1, log(1 - E W_1))`` for the Weibull class."""
    sigma = np.arange(-_DEPTH, math.log(_U_MAX) + _H, _H)
    x = np.exp(sigma / gamma)
    log_ws = sigma - np.exp(sigma)  # e^{-s} ds with s = e^sigma
    log_m1 = _weibull_log_m1(gamma, c, x)
    t_lo = -np.logaddexp(0.0, log_m1) - _DEPTH
    # L(u, x) >= (1 - 1/e) min(u, 1) M1(x), so e^{-L} underflows once min(u, 1) M1 > 1178: beyond
    # there only 1 - e^{-L} = 1 is left, whose integral against e^{-u} du is e^{-u_hi} exactly
    deep = log_m1 > 20.0
    t_hi = np.where(deep, _LOG_UNDERFLOW_U - log_m1, math.log(_U_MAX))
    count = int(math.ceil(float(np.max(t_hi - t_lo)) / _H)) + 1
    t = t_lo[:, None] + _H * np.arange(count)[None, :]
    inside = t <= t_hi[:, None] + 1e-12
    t = np.minimum(t, t_hi[:, None])
    u = np.exp(t)
    log_l = _weibull_log_l(gamma, c, np.broadcast_to(x[:, None], t.shape), u)
    log_du = np.where(inside, t - u, -np.inf)
    l_val = np.exp(np.minimum(log_l, _LOG_CAP))
    log_keep = log_du - l_val  # e^{-u} e^{-L}
    log_lose = log_du + np.log(-np.expm1(-l_val))  # e^{-u} (1 - e^{-L})
    log_w1 = special.logsumexp(_log_trapezoid(log_keep, 1) + log_ws) + math.log(_H)
    log_lose_rows = np.where(deep, np.logaddexp(_log_trapezoid(log_lose, 1), -np.exp(t_hi)), _log_trapezoid(log_lose, 1))
    log_rest = special.logsumexp(log_lose_rows + log_ws) + math.log(_H)
    return float(log_w1), float(log_rest)


def _pd_log_i(c: float, u: np.ndarray) -> np.ndarray:
    r""":math:`\log I(u)`, :math:`I(u) = \int_1^\infty (1 - e^{-u r^{-c}}) dr = u^{1/c}\gamma(1 - 1/c, u) - (1 - e^{-u})`.

    Computed as the integral itself where the closed form cancels (small ``u``).
    """
    alpha = 1.0 / c
    lower = special.gammainc(1.0 - alpha, u) * special.gamma(1.0 - alpha)
    closed = np.power(u, alpha) * lower + np.expm1(-u)
    # series for small u: I = sum_k (-1)^{k+1} u^k / (k! (kc - 1))
    k = np.arange(1, 30)[:, None]
    terms = (-1.0) ** (k + 1) * np.exp(k * np.log(u)[None, :] - special.gammaln(k + 1)) / (k * c - 1.0)
    series = terms.sum(axis=0)
    return np.log(np.where(u < 0.5, series, closed))


@functools.lru_cache(maxsize=4096)
def _gumbel_max_weight(c: float) -> tuple[float, float]:
    r"""``(log E W_1, log(1 - E W_1))`` of Poisson-Dirichlet(1/c): :math:`E W_1 = \int e^{-u}/(1 + I(u))du`."""
    if c <= 1.0:
        return -math.inf, 0.0
    t = np.arange(-_DEPTH - 10.0, math.log(_U_MAX) + _H, _H)
    u = np.exp(t)
    log_i = _pd_log_i(c, u)
    log_w1 = _log_trapezoid(t - u - np.logaddexp(0.0, log_i), 0)
    log_rest = _log_trapezoid(t - u + log_i - np.logaddexp(0.0, log_i), 0)
    return float(log_w1), float(log_rest)


def limit_max_weight(gamma: float, c: float, kind: str = "weibull") -> LimitMaxWeight:
    r""":math:`E W_1` of the critical limit law at ``c``, by the Palm formula (docs/theory.md section 7).

    Parameters
    ----------
    gamma : float
        Local exponent of the Weibull tail (ignored for ``kind="gumbel"``).
    c : float
        :math:`\beta / \beta^*(n)`, positive.
    kind : str
        ``"weibull"`` (:math:`W_k \propto e^{-c\Gamma_k^{1/\gamma}}`) or ``"gumbel"``
        (:math:`W_k \propto \Gamma_k^{-c}`, zero mean top weight for :math:`c \le 1`).

    Returns
    -------
    LimitMaxWeight

    Examples
    --------
    >>> round(limit_max_weight(1.0, 0.5).mean, 5)      # section 3 reference
    0.3738
    >>> round(limit_max_weight(2.0, 2.0).mean, 6)
    0.474988
    >>> w = limit_max_weight(1.0, 1e4)                  # 1 - E W_1 ~ ln 2 / c
    >>> round(w.complement * 1e4, 3)
    0.693
    >>> round(limit_max_weight(1.0, 2.0, kind="gumbel").mean, 4)   # PD(1/2)
    0.6265
    """
    kind = _check_kind(kind)
    c = check_positive(c, "c")
    if kind == "weibull":
        gamma = check_positive(gamma, "gamma")
        log_w, log_rest = _weibull_max_weight(float(gamma), float(c))
    else:
        log_w, log_rest = _gumbel_max_weight(float(c))
    total = np.logaddexp(log_w, log_rest)  # the quadrature's own normalization (1 up to ~1e-12)
    log_w, log_rest = log_w - total, log_rest - total
    return LimitMaxWeight(mean=math.exp(log_w), complement=math.exp(log_rest), log_odds=log_w - log_rest)


@functools.lru_cache(maxsize=1024)
def _weibull_n_eff(gamma: float, c: float) -> float:
    """E n_eff of the Weibull limit law (module docstring), trapezoid in log v and in log y."""
    # y grid (log y = eta), shared by every v; e^{-2cy} on it
    eta = np.arange(-(_DEPTH + 10.0) / gamma, math.log(_DEPTH / c + 40.0 ** (1.0 / gamma) + 10.0), _H / 8)
    y = np.exp(eta)
    log_lam = math.log(gamma) + gamma * eta  # Lambda(dy) = gamma y^{gamma-1} dy = gamma y^gamma d eta
    log_a0 = special.logsumexp(-c * y + log_lam) + math.log(_H / 8)  # int e^{-cy} dLambda
    omega_lo = -2.0 * log_a0 - _DEPTH
    omega_hi = 2.0 * c * float(y[-1]) + _DEPTH
    omega = np.arange(omega_lo, omega_hi, _H)
    out = 0.0
    for block in np.array_split(omega, max(1, len(omega) // 256)):
        v = np.exp(block)[:, None]
        b = np.exp(-2.0 * c * y)[None, :]
        vb = v * b
        dl = np.exp(log_lam)[None, :] * (_H / 8)
        psi = (-np.expm1(-vb) * dl).sum(axis=1)
        a1 = (np.exp(-c * y)[None, :] * np.exp(-vb) * dl).sum(axis=1)
        a2 = (b * np.exp(-vb) * dl).sum(axis=1)
        out += float(np.sum(np.exp(block - psi) * (a1 * a1 + a2)) * _H)
    return out


def limit_n_eff(gamma: float, c: float) -> float:
    r""":math:`E\,n_\mathrm{eff}` of the Weibull critical limit law at ``c`` (docs/theory.md section 7).

    By Campbell's formula for the exponentially tilted Poisson process (module docstring).
    For large ``c`` the integration range in :math:`\log v` grows like ``c``; intended for
    :math:`c \lesssim 10^3`.

    Examples
    --------
    >>> round(limit_n_eff(1.0, 0.5), 2)       # section 3 reference 4.559 +- 0.002
    4.56
    >>> round(limit_n_eff(1.0, 2.0), 3)       # 1.8233 +- 0.0005
    1.823
    """
    gamma = check_positive(gamma, "gamma")
    c = check_positive(c, "c")
    if c > 1e4:
        raise InputError(f"c: got {c!r}; limit_n_eff is computed for c <= 1e4 (beyond, n_eff - 1 ~ 1/c)")
    return _weibull_n_eff(float(gamma), float(c))


def _small_c_guess(gamma: float, log_w: float) -> float:
    r""":math:`\log c` from :math:`E W_1 \approx c^\gamma/\Gamma(\gamma+1)` (small ``c``)."""
    return (log_w + special.gammaln(gamma + 1.0)) / gamma


def c_matching_max_weight(mean_max_weight: float, gamma: float, kind: str = "weibull") -> float:
    r"""The ``c`` at which the limit law has :math:`E W_1` equal to ``mean_max_weight`` (section 7).

    :math:`c \mapsto E W_1` increases from 0 to 1 (from :math:`1^+` for the Gumbel class),
    so the inverse is unique; it is found by Brent's method on the log-odds in
    :math:`\log c`.

    Examples
    --------
    >>> w = limit_max_weight(3.0, 0.7).mean
    >>> round(c_matching_max_weight(w, 3.0), 10)
    0.7
    """
    kind = _check_kind(kind)
    w = float(mean_max_weight)
    if not 0.0 < w < 1.0:
        raise InputError(f"mean_max_weight: got {mean_max_weight!r}; expected a value in (0, 1)")
    gamma = float(check_positive(gamma, "gamma")) if kind == "weibull" else 1.0
    target = math.log(w) - math.log1p(-w)
    return math.exp(_invert(gamma, kind, target))


#: Lattice step in log c of the cached values that bracket and seed every inversion.
_LATTICE = 0.25


@functools.lru_cache(maxsize=65536)
def _lattice_log_odds(gamma: float, kind: str, k: int) -> float:
    """Log-odds of E W_1 at ``c = exp(k * _LATTICE)`` (cached: every inversion at this gamma reuses them)."""
    c = math.exp(k * _LATTICE)
    if kind == "gumbel" and c <= 1.0:
        return -math.inf
    return limit_max_weight(gamma, c, kind).log_odds


def _invert(gamma: float, kind: str, target: float) -> float:
    r"""``log c`` with log-odds :math:`E W_1` equal to ``target``.

    Bracket on the cached lattice, seed by cubic inverse interpolation through four lattice
    points, then secant steps on the exact function until the step is below 1e-12.
    """
    if kind == "weibull":
        guess = min(_small_c_guess(gamma, target - math.log1p(math.exp(min(target, 700.0)))), math.log(max(gamma, 1.0)) + 2.0)
    else:
        guess = 1.0
    f = lambda j: _lattice_log_odds(gamma, kind, j) - target  # noqa: E731
    k = int(math.floor(guess / _LATTICE))
    # exponential search for lattice points lo < hi with f(lo) <= 0 < f(hi), then bisection
    lo = hi = k
    step = 1
    while f(hi) <= 0.0:
        lo, hi, step = hi, hi + step, 2 * step
    step = 1
    while f(lo) > 0.0:
        hi, lo, step = lo, lo - step, 2 * step
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if f(mid) <= 0.0 else (lo, mid)
    k = lo
    ks = [j for j in (k - 1, k, k + 1, k + 2) if math.isfinite(f(j))]
    xs = np.array([j * _LATTICE for j in ks])
    ys = np.array([f(j) for j in ks])
    order = np.argsort(ys)
    x = float(np.polyval(np.polyfit(ys[order], xs[order], len(ks) - 1), 0.0))
    x = min(max(x, k * _LATTICE), (k + 1) * _LATTICE)

    def exact(log_c: float) -> float:
        return limit_max_weight(gamma, math.exp(log_c), kind).log_odds - target

    x0, f0 = k * _LATTICE, f(k)
    x1, f1 = (k + 1) * _LATTICE, f(k + 1)
    fx = exact(x)
    for _ in range(8):  # safeguarded secant (regula falsi with the bracket kept)
        if fx == 0.0:
            return x
        if fx < 0.0:
            x0, f0 = x, fx
        else:
            x1, f1 = x, fx
        step_x = x0 - f0 * (x1 - x0) / (f1 - f0) if math.isfinite(f0) and f1 != f0 else 0.5 * (x0 + x1)
        if abs(step_x - x) < 1e-12 or x1 - x0 < 1e-12:
            return step_x
        x = step_x
        fx = exact(x)
    return optimize.brentq(exact, x0, x1, xtol=1e-13, rtol=1e-13)


@functools.lru_cache(maxsize=256)
def _reference_levels() -> tuple[float, float]:
    """``E W_1`` of the gamma = 1 limit law at the ends of :data:`REFERENCE_BAND_C`."""
    low, high = (limit_max_weight(1.0, c).mean for c in REFERENCE_BAND_C)
    return low, high


def max_weight_levels() -> tuple[float, float]:
    r"""The levels of :math:`E W_1` that bound the critical regime (docs/theory.md section 7).

    Examples
    --------
    >>> lo, hi = max_weight_levels()
    >>> round(lo, 4), round(hi, 4)
    (0.0949, 0.9343)
    """
    return _reference_levels()


@functools.lru_cache(maxsize=256)
def critical_band(gamma: float, kind: str = "weibull") -> tuple[float, float]:
    r"""The band of ``c`` that is critical for a tail of exponent ``gamma`` (docs/theory.md section 7).

    The ``c`` at which the limit law's :math:`E W_1` reaches the levels of
    :func:`max_weight_levels`; at :math:`\gamma = 1` this is :data:`REFERENCE_BAND_C`.  It
    widens and moves up with :math:`\gamma`: the limit law at :math:`c = 10` and
    :math:`\gamma = 31.5` (d = 64) still spreads its mass over some :math:`10^{7}` keys.

    Examples
    --------
    >>> [round(c, 6) for c in critical_band(1.0)]
    [0.1, 10.0]
    >>> lo, hi = critical_band(31.5)
    >>> bool(20 < lo < 30 and hi > 100)
    True
    """
    lo_w, hi_w = max_weight_levels()
    return (c_matching_max_weight(lo_w, gamma, kind), c_matching_max_weight(hi_w, gamma, kind))
