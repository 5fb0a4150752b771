r"""Key laws on the sphere and the exact 1-D laws of their scores ``<q, K>``.

A *key law* draws keys ``K`` (``sample``) and, for a query ``q``, gives the exact
law of the score ``S = <q, K>`` (``score_law``) and its top (``score_tail``).

Score laws are parameterized by the *gap* ``G = s* - S >= 0`` below the
endpoint ``s*``: the top of the law, where attention lives, is then computed
without cancellation (``1 - <q, K>`` is never formed by subtraction), and
quantiles of probabilities as small as ``1e-300`` stay accurate
(docs/theory.md sections 2 and 4).

Laws whose density depends only on :math:`x = \langle \mu, k\rangle` for a pole
:math:`\mu` (*zonal* laws: uniform, von Mises-Fisher, power density) share one
exact score law, :class:`ZonalScoreLaw`, valid for any query: seen from ``q`` at
angle :math:`\theta` from the pole, the score is

.. math:: S = \cos\theta\, X + \sin\theta \sqrt{1 - X^2}\, V,

with :math:`X = \langle\mu, K\rangle` and :math:`V` the first coordinate of a
uniform point on :math:`S^{d-2}`, independent of :math:`X`.
"""

from __future__ import annotations

import abc
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, interpolate, special

from ._validate import (
    InputError,
    RngLike,
    as_generator,
    check_choice,
    check_dimension,
    check_finite,
    check_int,
    check_matrix,
    check_n,
    check_nonnegative,
    check_unit_vector,
    check_vector,
)
from .tails import ScoreTail

__all__ = [
    "BetaScoreLaw",
    "Empirical",
    "GaussianKeys",
    "GaussianScoreLaw",
    "GreatSubsphere",
    "KeyLaw",
    "Mixture",
    "MixtureScoreLaw",
    "PowerDensity",
    "ScoreLaw",
    "UniformScoreLaw",
    "UniformSphere",
    "VonMisesFisher",
    "ZonalKeyLaw",
    "ZonalScoreLaw",
    "LAW_NAMES",
    "law_from_name",
    "robust_betaincinv",
    "uniform_directions",
]

#: log of the smallest normal float64: quantile gaps below it (where a gap and its
#: probabilities no longer have full precision) are returned as 0.
_LOG_TINY = math.log(np.finfo(float).tiny)

# ---------------------------------------------------------------------------
# Numerical kernels (private, trust their inputs)
# ---------------------------------------------------------------------------


def _as_output(values: np.ndarray) -> Any:
    """A NumPy scalar for 0-d results, the array otherwise."""
    return values[()] if values.ndim == 0 else values


def _log_betainc_cf(a: float, b: float, x: np.ndarray) -> np.ndarray:
    r"""``log I_x(a, b)`` for ``0 < x < (a+1)/(a+b+2)`` by the continued fraction.

    :math:`I_x(a,b) = \frac{x^a (1-x)^b}{a B(a,b)} \cdot \mathrm{cf}(x)` with the
    classical even/odd continued fraction evaluated by the modified Lentz method;
    it converges fast below the mean, where it is used.
    """
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = np.where(np.abs(d) < tiny, tiny, d)
    d = 1.0 / d
    h = d.copy()
    for m in range(1, 2001):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < tiny, tiny, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < tiny, tiny, c)
        d = 1.0 / d
        h = h * d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < tiny, tiny, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < tiny, tiny, c)
        d = 1.0 / d
        delta = d * c
        h = h * delta
        if np.all(np.abs(delta - 1.0) < 5e-16):
            break
    return a * np.log(x) + b * np.log1p(-x) - math.log(a) - special.betaln(a, b) + np.log(h)


def _log_betainc_lower(a: float, b: float, x) -> np.ndarray:
    r"""``log I_x(a, b)`` without underflow for small ``x``.

    Uses ``log(betainc)`` where the value is a normal float (``> 1e-280``;
    ``scipy.special.betainc`` is accurate to ~1e-15 relative there) and the
    continued fraction :func:`_log_betainc_cf` below, where ``x`` is far below
    the mean.  (The hypergeometric series via ``scipy.special.hyp2f1`` is *not*
    used: it is wrong by orders of magnitude for ``a = b = 63.5, x = 0.3``.)
    """
    x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
    xs = np.atleast_1d(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        value = np.atleast_1d(special.betainc(a, b, xs))
        out = np.log(value)
        deep = (value < 1e-280) & (xs > 0.0)
        if np.any(deep):
            out[deep] = _log_betainc_cf(a, b, xs[deep])
    return out.reshape(x.shape)


def robust_betaincinv(a: float, b: float, p: ArrayLike) -> Any:
    r"""Inverse of the regularized incomplete beta function, accurate for tiny ``p``.

    ``scipy.special.betaincinv`` is used where it is reliable (``p >= 1e-150``);
    below that, and wherever it returns 0 or NaN, a Newton solve on
    :math:`\log I_x(a,b) = \log p` in :math:`\log x` takes over (roots below
    the smallest normal float, ``2.2e-308``, are returned as 0).  The small-``x``
    series :math:`(p\,a B(a,b))^{1/a}` only seeds that solve: alone it is wrong
    at large ``a`` (docs/theory.md section 4).

    Parameters
    ----------
    a, b : float
        Beta parameters, ``> 0``.
    p : float or array_like
        Probabilities in ``[0, 1]``.

    Returns
    -------
    float or ndarray
        ``x`` with :math:`I_x(a, b) = p`.

    Examples
    --------
    >>> x = robust_betaincinv(5.0, 5.0, 1e-250)
    >>> bool(abs(np.exp(_log_betainc_lower(5.0, 5.0, x)) / 1e-250 - 1) < 1e-10)
    True
    """
    p = np.asarray(p, dtype=float)
    scalar = p.ndim == 0
    p = np.atleast_1d(p)
    with np.errstate(all="ignore"):
        x = np.array(special.betaincinv(a, b, p), dtype=float)
    bad = (p > 0) & (p < 1) & ((p < 1e-150) | ~np.isfinite(x) | (x <= 0))
    if np.any(bad):
        pb = p[bad]
        logp = np.log(pb)
        # seed: leading term of the small-x series, then Newton in y = log x
        y = np.clip((logp + math.log(a) + special.betaln(a, b)) / a, _LOG_TINY, math.log(0.5))
        for _ in range(200):
            xb = np.exp(y)
            log_i = _log_betainc_lower(a, b, xb)
            # d log I / d log x = x * pdf(x) / I(x)
            dlog = np.exp(a * y + (b - 1.0) * np.log1p(-xb) - special.betaln(a, b) - log_i)
            step = (log_i - logp) / dlog
            # roots below the smallest normal float stay pinned there (returned as 0)
            pinned = (y <= _LOG_TINY) & (step > 0)
            y = np.clip(y - step, _LOG_TINY, math.log(0.999999))
            if np.all((np.abs(step) < 1e-14) | pinned):
                break
        x[bad] = np.where(pinned, 0.0, np.exp(y))
    x = np.where(p >= 1.0, 1.0, np.where(p <= 0.0, 0.0, x))
    return x[0] if scalar else x


def _log_kappa_uniform(a: float) -> float:
    r"""``log kappa`` of the uniform law on :math:`S^{2a}`: :math:`\kappa = 2^{-a}/(a B(a,a))` (section 2)."""
    return -a * math.log(2.0) - math.log(a) - float(special.betaln(a, a))


_GRID = 96
_DROP = 40.0
_GL_COARSE = np.polynomial.legendre.leggauss(64)
_GL_FINE = np.polynomial.legendre.leggauss(128)


def _gauss_legendre(ell, lo: float, hi: float, rule, shift: float) -> float:
    nodes, weights = rule
    x = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
    with np.errstate(all="ignore"):
        vals = np.exp(np.minimum(ell(x) - shift, 700.0))
    return 0.5 * (hi - lo) * float(np.dot(weights, vals))


def _log_integral(ell: Callable[[np.ndarray], np.ndarray], lo: float, hi: float) -> float:
    r"""``log`` of :math:`\int_{lo}^{hi} e^{\ell(x)}\,dx` without overflow or underflow.

    ``ell`` is a vectorized log-integrand.  A grid locates the peak; the window is
    zoomed until the region where :math:`\ell \ge \max\ell - 40` spans at least
    16 grid cells (so peaks of any width are resolved, and the mass left out is
    below :math:`e^{-40}` relative); the integral of :math:`e^{\ell - \max\ell}` is
    then Gauss-Legendre with 64 and 128 nodes on each side of the peak, and
    ``scipy.integrate.quad`` where the two disagree beyond ``1e-11``.
    """
    if not hi > lo:
        return -math.inf
    a, b = lo, hi
    centers = (np.arange(_GRID) + 0.5) / _GRID
    for _ in range(500):
        x = a + (b - a) * centers
        with np.errstate(all="ignore"):
            y = np.asarray(ell(x), dtype=float)
        i = int(np.argmax(y))
        top = float(y[i])
        if not top > -math.inf:
            return -math.inf
        above = np.flatnonzero(y >= top - _DROP)
        j, k = int(above[0]), int(above[-1])
        new_a = a if j == 0 else float(x[j - 1])
        new_b = b if k == _GRID - 1 else float(x[k + 1])
        done = (k - j + 1 >= 16) or not (new_b - new_a < (b - a))
        a, b = new_a, new_b
        if done:
            break
    peak = float(x[i])
    # values of ell near |top| carry rounding noise ~ eps |top|: no rule can do better
    tol = max(1e-11, 100.0 * np.finfo(float).eps * abs(top))
    coarse = _gauss_legendre(ell, a, peak, _GL_COARSE, top) + _gauss_legendre(ell, peak, b, _GL_COARSE, top)
    fine = _gauss_legendre(ell, a, peak, _GL_FINE, top) + _gauss_legendre(ell, peak, b, _GL_FINE, top)
    if fine > 0 and abs(fine - coarse) <= tol * fine:
        return top + math.log(fine)

    def integrand(t: float) -> float:
        with np.errstate(all="ignore"):
            return math.exp(min(float(ell(np.float64(t))) - top, 700.0))

    points = [peak] if a < peak < b else None
    with warnings.catch_warnings():
        # a roundoff warning only says the noise floor tol was reached
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value = integrate.quad(integrand, a, b, points=points, epsabs=0.0, epsrel=tol, limit=400)[0]
    return top + math.log(value) if value > 0 else -math.inf


#: Gauss-Legendre rules of the batched quadrature: each is checked against the next.
_GL_ROWS = tuple(np.polynomial.legendre.leggauss(n) for n in (32, 64, 128))
#: Tanh-sinh stage of the batched quadrature: range of t, and levels (steps 2^-level).
_DE_T = 3.5
_DE_LEVELS = (3, 4, 5, 6)
#: Rows of one batched pass, so that the temporaries stay a few MB.
_ROWS_BLOCK = 2048


def _log_integral_rows(
    ell: Callable[[np.ndarray, np.ndarray], np.ndarray], lo: ArrayLike, hi: ArrayLike
) -> np.ndarray:
    r"""Batched :func:`_log_integral`: ``log`` of :math:`\int_{lo_r}^{hi_r} e^{\ell_r(x)}\,dx` for every row ``r``.

    ``ell(rows, x)`` evaluates the log-integrands of the rows ``rows`` (an index
    array) at the points ``x`` of shape ``(len(rows), k)``.  The window of each
    row is zoomed exactly as in :func:`_log_integral`; then Gauss-Legendre
    with 32, 64 and 128 nodes on each side of the peak: a row is accepted as
    soon as two successive rules agree within
    :math:`\max(10^{-11}, 100\,\epsilon\,|\max\ell|)` (the finer one is
    returned); rows where 64 and 128 nodes still disagree (a singular end) go
    to tanh-sinh quadrature (:func:`_tanh_sinh_rows`), and the few left to
    ``scipy.integrate.quad``.  docs/theory.md section 2.

    Examples
    --------
    >>> ell = lambda rows, x: -np.asarray([1.0, 2.0])[rows, None] * x
    >>> np.round(np.exp(_log_integral_rows(ell, 0.0, [1.0, 1.0])), 12).tolist()  # (1 - e^-c)/c
    [0.632120558829, 0.432332358382]
    """
    lo, hi = np.broadcast_arrays(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float))
    out = np.full(lo.shape, -np.inf)
    rows = np.flatnonzero(hi > lo)
    for start in range(0, rows.size, _ROWS_BLOCK):
        block = rows[start : start + _ROWS_BLOCK]
        out[block] = _log_integral_block(ell, block, lo[block], hi[block])
    return out


def _zoom_rows(ell, rows: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Window ``[a, b]``, peak and peak value of each row (the loop of :func:`_log_integral`, batched)."""
    centers = (np.arange(_GRID) + 0.5) / _GRID
    peak = np.empty(rows.size)
    top = np.full(rows.size, -np.inf)
    todo = np.arange(rows.size)
    for _ in range(500):
        if todo.size == 0:
            break
        x = a[todo, None] + (b - a)[todo, None] * centers
        with np.errstate(all="ignore"):
            y = np.asarray(ell(rows[todo], x), dtype=float)
        at = np.arange(todo.size)
        i = np.argmax(y, axis=1)
        t = y[at, i]
        above = y >= (t - _DROP)[:, None]
        j = np.argmax(above, axis=1)
        k = _GRID - 1 - np.argmax(above[:, ::-1], axis=1)
        new_a = np.where(j == 0, a[todo], x[at, np.maximum(j - 1, 0)])
        new_b = np.where(k == _GRID - 1, b[todo], x[at, np.minimum(k + 1, _GRID - 1)])
        alive = t > -np.inf
        done = (k - j + 1 >= 16) | ~(new_b - new_a < b[todo] - a[todo]) | ~alive
        a[todo] = np.where(alive, new_a, a[todo])
        b[todo] = np.where(alive, new_b, b[todo])
        peak[todo] = x[at, i]
        top[todo] = np.where(alive, t, -np.inf)
        todo = todo[~done]
    return a, b, peak, top


def _gl_rows(ell, rows: np.ndarray, a, peak, b, top, rule) -> np.ndarray:
    r""":math:`\int_a^b e^{\ell - top}` by one Gauss-Legendre rule on each side of the peak."""
    nodes, weights = rule
    left, right = 0.5 * (peak - a), 0.5 * (b - peak)
    x = np.concatenate(
        [left[:, None] * nodes + (0.5 * (peak + a))[:, None], right[:, None] * nodes + (0.5 * (b + peak))[:, None]],
        axis=1,
    )
    with np.errstate(all="ignore"):
        vals = np.exp(np.minimum(np.asarray(ell(rows, x), dtype=float) - top[:, None], 700.0))
    m = nodes.size
    return left * (vals[:, :m] @ weights) + right * (vals[:, m:] @ weights)


def _log_integral_block(ell, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    a, b, peak, top = _zoom_rows(ell, rows, lo.copy(), hi.copy())
    out = np.full(rows.size, -np.inf)
    live = np.flatnonzero(top > -np.inf)
    # values of ell near |top| carry rounding noise ~ eps |top|: no rule can do better
    tol = np.maximum(1e-11, 100.0 * np.finfo(float).eps * np.abs(top))
    previous = _gl_rows(ell, rows[live], a[live], peak[live], b[live], top[live], _GL_ROWS[0])
    for rule in _GL_ROWS[1:]:
        if live.size == 0:
            break
        value = _gl_rows(ell, rows[live], a[live], peak[live], b[live], top[live], rule)
        ok = (value > 0) & (np.abs(value - previous) <= tol[live] * value)
        out[live[ok]] = top[live[ok]] + np.log(value[ok])
        live, previous = live[~ok], value[~ok]
    if live.size:
        value = _tanh_sinh_rows(ell, rows[live], a[live], peak[live], b[live], top[live], tol[live])
        ok = np.isfinite(value)
        out[live[ok]] = top[live[ok]] + np.log(value[ok])
        live = live[~ok]
    for r in live:
        out[r] = _quad_row(ell, int(rows[r]), float(a[r]), float(peak[r]), float(b[r]), float(top[r]), float(tol[r]))
    return out


def _tanh_sinh_rows(ell, rows: np.ndarray, a, peak, b, top, tol) -> np.ndarray:
    r""":math:`\int_a^b e^{\ell - top}` by tanh-sinh quadrature on each side of the peak (NaN where it fails).

    :math:`x = \tanh(\tfrac{\pi}{2}\sinh t)` clusters the nodes double-exponentially
    at both ends, so it converges fast on an integrable singularity or a steep
    power law at an end (a density singular at the pole, seen from a ring that
    nearly touches it), where Gauss-Legendre does not.  Steps :math:`2^{-3}, \dots, 2^{-6}` over
    :math:`|t| \le 3.5`, nested; a row is accepted when two successive steps
    agree within ``tol``.
    """
    left, right = 0.5 * (peak - a), 0.5 * (b - peak)
    centre_l, centre_r = 0.5 * (peak + a), 0.5 * (b + peak)
    out = np.full(rows.size, np.nan)

    def level_sum(live, t):
        u = 0.5 * math.pi * np.sinh(t)
        nodes, weights = np.tanh(u), 0.5 * math.pi * np.cosh(t) / np.cosh(u) ** 2
        x = np.concatenate(
            [centre_l[live, None] + left[live, None] * nodes, centre_r[live, None] + right[live, None] * nodes], axis=1
        )
        with np.errstate(all="ignore"):
            vals = np.exp(np.minimum(np.asarray(ell(rows[live], x), dtype=float) - top[live, None], 700.0))
        m = t.size
        return left[live] * (vals[:, :m] @ weights) + right[live] * (vals[:, m:] @ weights)

    live = np.arange(rows.size)
    step = 2.0 ** -_DE_LEVELS[0]
    k = math.floor(_DE_T / step)
    previous = step * level_sum(live, np.arange(-k, k + 1) * step)
    for level in _DE_LEVELS[1:]:
        step = 2.0 ** -level
        k = math.floor(_DE_T / step)
        odd = np.arange(-k + (k % 2 == 0), k + 1, 2) * step
        value = 0.5 * previous + step * level_sum(live, odd)
        ok = (value > 0) & (np.abs(value - previous) <= tol[live] * value)
        out[live[ok]] = value[ok]
        live, previous = live[~ok], value[~ok]
        if live.size == 0:
            break
    return out


def _quad_row(ell, row: int, a: float, peak: float, b: float, top: float, tol: float) -> float:
    """``scipy.integrate.quad`` fallback of one row of :func:`_log_integral_rows`."""
    index = np.array([row])

    def integrand(t: float) -> float:
        with np.errstate(all="ignore"):
            return math.exp(min(float(ell(index, np.array([[t]]))[0, 0]) - top, 700.0))

    points = [peak] if a < peak < b else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value = integrate.quad(integrand, a, b, points=points, epsabs=0.0, epsrel=tol, limit=400)[0]
    return top + math.log(value) if value > 0 else -math.inf


def _angle(q: np.ndarray, pole: np.ndarray) -> float:
    r"""Angle between unit vectors, :math:`2\,\mathrm{atan2}(|q-p|, |q+p|)` (accurate near 0 and pi)."""
    theta = 2.0 * math.atan2(float(np.linalg.norm(q - pole)), float(np.linalg.norm(q + pole)))
    if theta < 1e-300:
        return 0.0
    if math.pi - theta < 1e-300:
        return math.pi
    return theta


#: Newton steps per root at most (each a batched evaluation of the rows still open).
_NEWTON_MAXIT = 100
#: A root is accepted when the Newton step in log-gap is below this; the step is applied,
#: so the error left is of the order of its square (plus the noise of the probabilities).
_STEP_TOL = 1e-12
#: The slope is evaluated again (a density quadrature) after a step larger than this.
_SLOPE_REFRESH = 1e-6
#: Largest first step towards an unbounded side of the bracket (doubled at each use).
_JUMP = 16.0
#: Sorted targets are solved every _SEED_STRIDE-th first, the others from their interpolant.
_SEED_STRIDE = 8
_SEED_DIRECT = 16


def _initial(guess: np.ndarray | None, t: np.ndarray, x_hi: float) -> np.ndarray:
    """Starting points strictly below ``x_hi``: ``guess`` where it is finite, else ``x_hi - 1``."""
    fallback = x_hi - 1.0 if math.isfinite(x_hi) else 0.0
    x = np.full(t.shape, fallback) if guess is None else np.asarray(guess, dtype=float)
    return np.where(np.isfinite(x) & (x < x_hi), x, fallback)


def _newton_rows(fun, t: np.ndarray, x0: np.ndarray, x_hi: float, floor: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Roots of ``value(x) = t`` for an increasing ``value``, all rows at once.

    ``fun(x, need)`` returns ``value(x)`` and, where ``need``, the slope
    ``value'(x)``.  Safeguarded Newton (``rtsafe`` of Numerical Recipes,
    batched): the signs of ``value - t`` keep a bracket ``[lo, hi]``
    (``value(x_hi) >= t`` is known), and a step that would leave it, or (once
    both ends are known) that is not half the one before last, is replaced by
    bisection; towards a side not yet bounded the step is capped by a jump
    that doubles at each use.  The slope is evaluated again only after a
    large or a slowly shrinking step.  Roots below ``floor`` are returned as
    ``-inf``.  Returns the roots and the slopes at the last points evaluated.
    """
    n = t.size
    x = np.array(x0, dtype=float)
    lo = np.full(n, -np.inf)
    hi = np.full(n, x_hi)
    slope = np.full(n, np.nan)
    need = np.ones(n, dtype=bool)
    jump = np.full(n, _JUMP)
    last = np.full(n, np.inf)
    before = np.full(n, np.inf)
    act = np.arange(n)
    for _ in range(_NEWTON_MAXIT):
        if act.size == 0:
            break
        xa = x[act]
        value, s = fun(xa, need[act])
        s = np.where(need[act], s, slope[act])
        slope[act] = s
        r = np.asarray(value, dtype=float) - t[act]
        lo_a = np.where(r < 0, xa, lo[act])
        hi_a = np.where(r > 0, xa, hi[act])
        lo[act], hi[act] = lo_a, hi_a
        with np.errstate(all="ignore"):
            step = r / s
            new = xa - step
        size = np.abs(step)
        j = jump[act]
        lo_ok, hi_ok = np.isfinite(lo_a), np.isfinite(hi_a)
        capped = ~hi_ok & np.isfinite(new) & (new > xa + j)
        new = np.where(capped, xa + j, new)
        slow = lo_ok & hi_ok & (size > 0.5 * before[act])
        newton = np.isfinite(new) & (new > lo_a) & (new < hi_a) & (capped | ~slow)
        fallback = np.where(hi_ok, np.where(lo_ok, 0.5 * (lo_a + hi_a), hi_a - j), np.where(lo_ok, lo_a + j, xa + j))
        new = np.where(newton, new, fallback)
        new = np.where((new < floor) & (lo_a < floor), floor, new)
        jump[act] = np.where(newton & ~capped, j, 2.0 * j)
        under = hi_a <= floor
        closed = hi_a - lo_a <= _STEP_TOL
        # a step below the tolerance is the root (even one that rounds to no move at all)
        small = np.isfinite(step) & (size <= _STEP_TOL)
        conv = under | closed | small | (r == 0)
        done = np.clip(xa - np.where(small, step, 0.0), lo_a, hi_a)
        final = np.where(under, -np.inf, np.where(small | (r == 0), done, 0.5 * (lo_a + hi_a)))
        x[act] = np.where(conv, final, new)
        # a fresh slope after a large or a slowly shrinking step (a stale slope converges linearly)
        need[act] = ~newton | (size > _SLOPE_REFRESH) | (size > 0.1 * last[act])
        before[act] = last[act]
        last[act] = np.abs(new - xa)
        act = act[~conv]
    if act.size:
        both = np.isfinite(lo[act]) & np.isfinite(hi[act])
        x[act] = np.where(both, 0.5 * (lo[act] + hi[act]), x[act])
    return x, slope


def _solve_sorted(fun, t: np.ndarray, seed, x_hi: float, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Roots for sorted distinct targets ``t``.

    Every ``_SEED_STRIDE``-th first (recursively), the others from the cubic
    Hermite interpolant of those roots (slopes known), which leaves them one or two steps.
    """
    n = t.size
    start = _initial(None if seed is None else seed(t), t, x_hi)
    if n <= _SEED_DIRECT:
        return _newton_rows(fun, t, start, x_hi, floor)
    pick = np.zeros(n, dtype=bool)
    pick[::_SEED_STRIDE] = True
    pick[-1] = True
    x, slope = np.empty(n), np.empty(n)
    x[pick], slope[pick] = _solve_sorted(fun, t[pick], seed, x_hi, floor)
    known = np.flatnonzero(pick & np.isfinite(x) & np.isfinite(slope) & (slope > 0))
    if known.size >= 2:
        # dx/dt = 1 / slope at the roots: cubic Hermite interpolation between them
        spline = interpolate.CubicHermiteSpline(t[known], x[known], 1.0 / slope[known])
        between = (t > t[known[0]]) & (t < t[known[-1]])
        start[between] = spline(t[between])
    rest = ~pick
    x[rest], slope[rest] = _newton_rows(fun, t[rest], _initial(start[rest], t[rest], x_hi), x_hi, floor)
    return x, slope


def _solve_increasing(fun, t: np.ndarray, seed, x_hi: float, floor: float = -math.inf) -> np.ndarray:
    r"""Roots ``x`` of ``value(x) = t`` for every target ``t`` (``value`` increasing, ``value(x_hi) >= t``).

    Distinct targets are solved once, in increasing order (:func:`_solve_sorted`,
    :func:`_newton_rows`).
    """
    targets, inverse = np.unique(t, return_inverse=True)
    x, _ = _solve_sorted(fun, targets, seed, x_hi, floor)
    return x[inverse.reshape(-1)]


def _log_slope(x: np.ndarray, log_p: np.ndarray, log_f: np.ndarray, need: np.ndarray) -> np.ndarray:
    r""":math:`d \log P / dx = e^{x} f / P` where ``need`` (NaN elsewhere), from logs."""
    with np.errstate(all="ignore"):
        return np.where(need, np.exp(x + log_f - log_p), np.nan)


# ---------------------------------------------------------------------------
# Score laws
# ---------------------------------------------------------------------------


class ScoreLaw(abc.ABC):
    r"""A 1-D law of scores on ``[lower, endpoint]``, described through its gap.

    Subclasses implement ``gap_cdf``, ``gap_sf``, ``gap_pdf`` and ``tail``
    (and ``endpoint``, ``lower``); everything else is derived here.  ``gap_ppf``
    defaults to a batched Newton search in log space that keeps relative
    accuracy for tiny probabilities (the exact sampler of section 4 feeds it
    hundreds of ``p`` at once, down to ``1e-20`` and below); closed forms
    override it.  Laws whose functions underflow override ``log_gap_cdf``,
    ``log_gap_sf`` and ``log_gap_pdf``.
    """

    endpoint: float
    lower: float

    # -- to implement -------------------------------------------------------
    @abc.abstractmethod
    def gap_cdf(self, g: ArrayLike) -> Any:
        """``P(s* - S <= g)``."""

    @abc.abstractmethod
    def gap_sf(self, g: ArrayLike) -> Any:
        """``P(s* - S > g)``."""

    @abc.abstractmethod
    def gap_pdf(self, g: ArrayLike) -> Any:
        """Density of the gap ``s* - S``."""

    @abc.abstractmethod
    def tail(self) -> ScoreTail:
        """The :class:`ScoreTail` of this law (section 2)."""

    # -- overridable defaults ----------------------------------------------
    def log_gap_cdf(self, g: ArrayLike) -> Any:
        """``log P(s* - S <= g)`` (override where values can underflow)."""
        with np.errstate(divide="ignore"):
            return np.log(self.gap_cdf(g))

    def log_gap_sf(self, g: ArrayLike) -> Any:
        """``log P(s* - S > g)`` (override where values can underflow)."""
        with np.errstate(divide="ignore"):
            return np.log(self.gap_sf(g))

    def log_gap_pdf(self, g: ArrayLike) -> Any:
        """``log`` density of the gap (override where the density can underflow)."""
        with np.errstate(divide="ignore"):
            return np.log(self.gap_pdf(g))

    def gap_ppf(self, p: ArrayLike) -> Any:
        r"""Gap ``g`` with ``P(s* - S <= g) = p``, accurate for tiny ``p``; all ``p`` at once.

        Solves :math:`\log F_G(g) = \log p` for ``p <= 1/2`` and
        :math:`\log \bar F_G(g) = \log(1-p)` above, in the log-distance to the
        nearer end of the support (width ``w``): :math:`y = \log g` where the
        root is at most :math:`w/2` (one evaluation at :math:`w/2` tells),
        :math:`z = \log(w - g)` beyond.  Near either end the probabilities are
        power laws, linear in these variables, so Newton steps with the exact
        slope (e.g. :math:`d\log F_G/dy = g f_G(g)/F_G(g)`) converge in a few
        steps, guarded by a bracket (:func:`_newton_rows`); the first seeds are
        the tails, :math:`g \approx (p/\kappa)^{1/\gamma}`.  The distinct ``p``
        are solved together, sorted: every 8th first, the others from the cubic
        Hermite interpolant of those roots in the log probability, which leaves
        one or two steps each (:func:`_solve_increasing`).  A root is accepted
        when the step falls below ``1e-12`` (relative in ``g`` or ``w - g``; the
        step is applied).  ``p <= 0`` (and NaN) gives 0, ``p >= 1`` the width,
        and roots below the smallest normal float (``2.2e-308``) are returned
        as 0.  docs/theory.md section 4.

        Examples
        --------
        >>> law = MixtureScoreLaw((UniformScoreLaw(3), UniformScoreLaw(3)), (0.5, 0.5))
        >>> g = law.gap_ppf([1e-300, 0.25, 0.75])  # G ~ U(0, 2): 2p
        >>> bool(np.allclose(g, [2e-300, 0.5, 1.5], rtol=1e-12, atol=0.0))
        True
        """
        p = np.asarray(p, dtype=float)
        flat = p.reshape(-1)
        width = float(self.endpoint - self.lower)
        out = np.where(flat >= 1.0, width, 0.0)
        for upper, rows in ((False, (flat > 0.0) & (flat <= 0.5)), (True, (flat > 0.5) & (flat < 1.0))):
            if np.any(rows):
                t = np.log1p(-flat[rows]) if upper else np.log(flat[rows])
                out[rows] = self._ppf_side(t, upper, width)
        return _as_output(out.reshape(p.shape))

    # -- root search ----------------------------------------------------------
    def _end_log_prob(
        self, x: np.ndarray, bottom: bool, upper: bool, need: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Log probability and log density at the distance :math:`e^x` from an end.

        At :math:`g = e^x` (``bottom=False``) or :math:`g = w - e^x`
        (``bottom=True``): :math:`\log F_G(g)`, or :math:`\log\bar F_G(g)` if
        ``upper``; and :math:`\log f_G(g)` where ``need`` (NaN elsewhere).  Laws
        that can compute near their bottom without forming ``w - e^x`` override this.
        """
        e = np.exp(x)
        g = float(self.endpoint - self.lower) - e if bottom else e
        log_p = np.asarray(self.log_gap_sf(g) if upper else self.log_gap_cdf(g), dtype=float).reshape(x.shape)
        log_f = np.full(x.shape, np.nan)
        if np.any(need):
            log_f[need] = self.log_gap_pdf(g[need])
        return log_p, log_f

    def _end_seed(self, t: np.ndarray, bottom: bool) -> np.ndarray | None:
        r"""Tail seed :math:`(\log p - \log\kappa)/\gamma` of the log-distance to the top (none for the bottom)."""
        if bottom:
            return None
        try:
            tail = self.tail()
        except (ValueError, OverflowError):
            return None
        return (t - tail.log_kappa) / tail.gamma

    def _ppf_side(self, t: np.ndarray, upper: bool, width: float) -> np.ndarray:
        r"""Roots of :math:`\log F_G(g) = t` (:math:`\log\bar F_G(g) = t` if ``upper``) in the log-distance to the nearer end.

        One evaluation at :math:`g = w/2` tells which roots lie below it: :math:`F(w/2) \ge p`, or
        :math:`\bar F(w/2) \le 1 - p`; those are solved in :math:`y = \log g`, the others in
        :math:`z = \log(w - g)`, both on :math:`(-\infty, \log(w/2)]` (``+inf`` for an unbounded law).
        """
        out = np.empty(t.shape)
        if math.isfinite(width):
            x_hi = math.log(0.5 * width)
            mid, _ = self._end_log_prob(np.array([x_hi]), False, upper, np.zeros(1, dtype=bool))
            near = (t >= mid[0]) if upper else (t <= mid[0])
        else:
            x_hi, near = math.inf, np.ones(t.shape, dtype=bool)
        for bottom, rows in ((False, near), (True, ~near)):
            if np.any(rows):
                e = self._solve_end(t[rows], upper, bottom, x_hi, width)
                out[rows] = np.maximum(width - e, 0.0) if bottom else np.minimum(e, width)
        return out

    def _solve_end(self, t: np.ndarray, upper: bool, bottom: bool, x_hi: float, width: float) -> np.ndarray:
        r"""Distances :math:`e^x` from the top (or bottom) where :math:`\log P = t`: the value solved for is
        :math:`\pm\log P`, signed so that it increases with :math:`x` (:func:`_solve_increasing`)."""
        sign = 1.0 if upper == bottom else -1.0

        def fun(x, need):
            log_p, log_f = self._end_log_prob(x, bottom, upper, need)
            return sign * log_p, _log_slope(x, log_p, log_f, need)

        seed = (lambda s: self._end_seed(s, bottom)) if sign > 0 else None
        floor = _LOG_TINY if math.isfinite(width) else -math.inf
        x = _solve_increasing(fun, sign * t, seed, x_hi, floor)
        with np.errstate(under="ignore"):
            return np.exp(x)

    # -- derived ------------------------------------------------------------
    def cdf(self, s: ArrayLike) -> Any:
        """``P(S <= s)``."""
        return self.gap_sf(self.endpoint - np.asarray(s, dtype=float))

    def sf(self, s: ArrayLike) -> Any:
        """``P(S > s)``."""
        return self.gap_cdf(self.endpoint - np.asarray(s, dtype=float))

    def pdf(self, s: ArrayLike) -> Any:
        """Density of ``S``."""
        return self.gap_pdf(self.endpoint - np.asarray(s, dtype=float))

    def isf(self, p: ArrayLike) -> Any:
        """Score ``s`` with ``P(S > s) = p``."""
        return self.endpoint - self.gap_ppf(p)

    def ppf(self, p: ArrayLike) -> Any:
        """Score ``s`` with ``P(S <= s) = p``."""
        return self.endpoint - self.gap_ppf(1.0 - np.asarray(p, dtype=float))

    def sample(self, size: int, rng: RngLike = None) -> np.ndarray:
        """``size`` i.i.d. scores (inverse-cdf sampling of the gap)."""
        g = as_generator(rng)
        return self.endpoint - self.gap_ppf(g.random(check_n(size, "size")))


class _BetaGap:
    r"""Shared kernels of laws whose gap is ``width * U``, ``U ~ Beta(shape1, shape2)``."""

    _shape1: float
    _shape2: float
    _width: float
    endpoint: float

    def _u(self, g):
        return np.clip(np.asarray(g, dtype=float) / self._width, 0.0, 1.0)

    def _v(self, g):
        return np.clip((self._width - np.asarray(g, dtype=float)) / self._width, 0.0, 1.0)

    def gap_cdf(self, g: ArrayLike) -> Any:
        return special.betainc(self._shape1, self._shape2, self._u(g))

    def gap_sf(self, g: ArrayLike) -> Any:
        return _as_output(np.exp(np.asarray(self.log_gap_sf(g))))

    def log_gap_cdf(self, g: ArrayLike) -> Any:
        """``log P(s* - S <= g)``, finite down to the smallest positive ``g``."""
        return _as_output(np.asarray(_log_betainc_lower(self._shape1, self._shape2, self._u(g))))

    def log_gap_sf(self, g: ArrayLike) -> Any:
        r"""``log P(s* - S > g)``: :math:`\log I_{1-u}(p_2, p_1)` (finite up to the bottom
        of the support), or :math:`\log(1 - I_u(p_1, p_2))` for ``u <= 1/2`` where the
        rounding of ``1 - u`` would cost accuracy."""
        u = self._u(g)
        with np.errstate(divide="ignore"):
            top = np.log1p(-special.betainc(self._shape1, self._shape2, u))
        bottom = _log_betainc_lower(self._shape2, self._shape1, self._v(g))
        return _as_output(np.where(u <= 0.5, top, bottom))

    def _log_dens(self, u, v):
        """``log`` gap density at ``g = w u``, ``v = 1 - u``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (
                special.xlogy(self._shape1 - 1.0, u)
                + special.xlogy(self._shape2 - 1.0, v)
                - special.betaln(self._shape1, self._shape2)
                - math.log(self._width)
            )

    def log_gap_pdf(self, g: ArrayLike) -> Any:
        g = np.asarray(g, dtype=float)
        inside = (g >= 0) & (g <= self._width)
        return _as_output(np.where(inside, self._log_dens(self._u(g), self._v(g)), -np.inf))

    def gap_pdf(self, g: ArrayLike) -> Any:
        with np.errstate(over="ignore"):
            return _as_output(np.exp(np.asarray(self.log_gap_pdf(g))))

    def _end_log_prob(
        self, x: np.ndarray, bottom: bool, upper: bool, need: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""As :meth:`ScoreLaw._end_log_prob`; the upper tail at the bottom is :math:`\log I_v(p_2, p_1)`, :math:`v = e^x/w`."""
        if not (bottom and upper):
            return super()._end_log_prob(x, bottom, upper, need)  # type: ignore[misc]
        v = np.minimum(np.exp(x) / self._width, 1.0)
        log_f = np.full(x.shape, np.nan)
        log_f[need] = self._log_dens(1.0 - v[need], v[need])
        return _log_betainc_lower(self._shape2, self._shape1, v), log_f

    def gap_ppf(self, p: ArrayLike) -> Any:
        return self._width * robust_betaincinv(self._shape1, self._shape2, p)

    def tail(self) -> ScoreTail:
        r""":math:`\gamma = p_1`, :math:`\kappa = w^{-p_1} / (p_1 B(p_1, p_2))` (section 2)."""
        a1, a2 = self._shape1, self._shape2
        log_kappa = -a1 * math.log(self._width) - math.log(a1) - float(special.betaln(a1, a2))
        return ScoreTail.from_log_kappa(self.endpoint, a1, log_kappa, kind="weibull")

    def sample(self, size: int, rng: RngLike = None) -> np.ndarray:
        g = as_generator(rng)
        n = check_n(size, "size")
        return self.endpoint - self._width * g.beta(self._shape1, self._shape2, size=n)


@dataclass(frozen=True)
class UniformScoreLaw(_BetaGap, ScoreLaw):
    r"""Score law of a uniform key on :math:`S^{d-1}` seen from any unit query.

    :math:`u = (1-S)/2 \sim \mathrm{Beta}(a, a)` with :math:`a = (d-1)/2`, so the
    gap :math:`G = 1 - S = 2u` (docs/theory.md section 2).  ``scale`` multiplies
    the scores (a query of norm ``scale``; used for subspheres seen from
    outside their span), so the law lives on ``[-scale, scale]``.

    Examples
    --------
    >>> law = UniformScoreLaw(3)
    >>> float(law.cdf(0.0))
    0.5
    >>> law.tail()
    ScoreTail(endpoint=1.0, gamma=1.0, kappa=0.5, kind='weibull')
    """

    d: int
    scale: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "d", check_dimension(self.d))
        scale = check_finite(self.scale, "scale")
        if not scale > 0:
            raise InputError(f"scale: got {self.scale!r}; expected a finite number > 0")
        object.__setattr__(self, "scale", scale)

    @property
    def a(self) -> float:
        """Beta parameter :math:`a = (d-1)/2`."""
        return (self.d - 1) / 2.0

    @property
    def endpoint(self) -> float:  # type: ignore[override]
        return self.scale

    @property
    def lower(self) -> float:  # type: ignore[override]
        return -self.scale

    @property
    def _shape1(self) -> float:  # type: ignore[override]
        return self.a

    @property
    def _shape2(self) -> float:  # type: ignore[override]
        return self.a

    @property
    def _width(self) -> float:  # type: ignore[override]
        return 2.0 * self.scale


@dataclass(frozen=True)
class BetaScoreLaw(_BetaGap, ScoreLaw):
    r"""Scores :math:`S = s^* - w\,U` with :math:`U \sim \mathrm{Beta}(p_1, p_2)`.

    The score law of :class:`PowerDensity` seen from its pole
    (:math:`p_1 = (d-1+\eta)/2`, :math:`p_2 = (d-1)/2`, :math:`w = 2`); tail
    :math:`\gamma = p_1`, :math:`\kappa = w^{-p_1}/(p_1 B(p_1, p_2))`
    (docs/theory.md section 2).

    Parameters
    ----------
    shape1, shape2 : float
        Beta parameters, ``> 0``.
    endpoint : float
        Top :math:`s^*` of the scores.
    width : float
        Length ``w > 0`` of the support ``[s* - w, s*]``.

    Examples
    --------
    >>> law = BetaScoreLaw(1.0, 1.0, endpoint=1.0, width=2.0)
    >>> float(law.cdf(0.0))
    0.5
    >>> law.tail().gamma
    1.0
    """

    shape1: float
    shape2: float
    endpoint: float = 1.0  # type: ignore[assignment]
    width: float = 2.0

    def __post_init__(self) -> None:
        for name in ("shape1", "shape2", "width"):
            value = check_finite(getattr(self, name), name)
            if not value > 0:
                raise InputError(f"{name}: got {getattr(self, name)!r}; expected a finite number > 0")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "endpoint", check_finite(self.endpoint, "endpoint"))

    @property
    def lower(self) -> float:  # type: ignore[override]
        return self.endpoint - self.width

    @property
    def _shape1(self) -> float:  # type: ignore[override]
        return self.shape1

    @property
    def _shape2(self) -> float:  # type: ignore[override]
        return self.shape2

    @property
    def _width(self) -> float:  # type: ignore[override]
        return self.width


# ---------------------------------------------------------------------------
# Zonal laws: density a function of <pole, k> only
# ---------------------------------------------------------------------------


def _psi_of_gap(g: np.ndarray) -> np.ndarray:
    r"""Angle :math:`\psi = 2\arcsin\sqrt{g/2}` with :math:`1 - \cos\psi = g` (no cancellation for small ``g``)."""
    return 2.0 * np.arcsin(np.minimum(np.sqrt(g) * math.sqrt(0.5), 1.0))


def _cap_angles(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Angles :math:`\psi` with :math:`1 - \cos\psi = g` and :math:`\pi - \psi`, each from the nearer end.

    :math:`\psi(g)` below ``g = 1`` and :math:`\pi - \psi(2 - g)` above (``2 - g``
    is exact there), so neither angle loses the digits of a small ``g`` or ``2 - g``.
    """
    low = g <= 1.0
    near = _psi_of_gap(np.clip(g, 0.0, 1.0))
    far = _psi_of_gap(np.clip(2.0 - g, 0.0, 1.0))
    return np.where(low, near, math.pi - far), np.where(low, math.pi - near, far)


def _log_beta_cap(a1: float, a2: float, angle: np.ndarray) -> np.ndarray:
    r""":math:`\log I_u(a_1, a_2)` at :math:`u = \sin^2(\text{angle}/2)`: a cap of a zonal law with :math:`U \sim B(a_1, a_2)`.

    Up to a hemisphere from ``u``; beyond, from :math:`v = \sin^2((\pi - \text{angle})/2)`
    as :math:`\log(1 - I_v(a_2, a_1))` where that complement is at most 1/2, else
    :math:`\log I_{1-v}(a_1, a_2)`: no digits of a tiny value are lost either way.
    """
    out = np.where(angle >= math.pi, 0.0, np.where(np.isnan(angle), np.nan, -np.inf))
    near = (angle > 0.0) & (angle <= 0.5 * math.pi)
    far = (angle > 0.5 * math.pi) & (angle < math.pi)
    if np.any(near):
        out[near] = _log_betainc_lower(a1, a2, np.sin(0.5 * angle[near]) ** 2)
    if np.any(far):
        v = np.sin(0.5 * (math.pi - angle[far])) ** 2
        other = _log_betainc_lower(a2, a1, v)
        with np.errstate(divide="ignore"):
            out[far] = np.where(other <= -math.log(2.0), np.log(-np.expm1(other)), _log_betainc_lower(a1, a2, 1.0 - v))
    return out


def _log_betainc_sym(b: float, log_w: np.ndarray, log_1mw: np.ndarray) -> np.ndarray:
    r""":math:`\log I_w(b, b)` from :math:`\log w` and :math:`\log(1-w)`, one ``betainc`` each.

    Below :math:`w = 1/2`, :math:`\log I_w` (the continued fraction where it
    underflows, :func:`_log_betainc_lower`); above, :math:`\log(1 - I_{1-w}(b, b))`.
    """
    small = log_w <= -math.log(2.0)
    arg = np.exp(np.where(small, log_w, log_1mw))
    value = special.betainc(b, b, arg)
    with np.errstate(divide="ignore"):
        out = np.where(small, np.log(value), np.log1p(-value))
    deep = small & (value < 1e-280) & (arg > 0.0)
    if np.any(deep):
        out[deep] = _log_betainc_cf(b, b, arg[deep])
    return out


def _uv_from_angle(phi: np.ndarray, zeta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``u = sin^2(phi/2)``, ``v = cos^2(phi/2) = 1 - u`` from ``phi`` and ``zeta = pi - phi``.

    Whichever of ``u``, ``v`` is below 1/2 is computed from the smaller angle, so
    both keep relative accuracy.
    """
    near = phi <= zeta
    su = np.sin(0.5 * phi) ** 2
    sv = np.sin(0.5 * zeta) ** 2
    u = np.where(near, su, 1.0 - sv)
    v = np.where(near, 1.0 - su, sv)
    return u, v


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
    integrated together (:func:`_log_integral_rows`), and :meth:`gap_ppf` is
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
            raise TypeError(f"law: got {type(self.law).__name__}; expected a ZonalKeyLaw")
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
                return r["log_f"] + _log_betainc_sym(b, r["log_w"], r["log_1mw"]) + r["log_jac"]

        return _log_integral_rows(ell, -0.5 * math.pi, np.full(psi.shape, 0.5 * math.pi))

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

        return _log_integral_rows(ell, -0.5 * math.pi, np.full(psi.shape, 0.5 * math.pi))

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

    def log_gap_cdf(self, g: ArrayLike) -> Any:
        """``log P(1 - S <= g)``, relative accuracy for any tiny value."""
        g = np.asarray(g, dtype=float)
        return _as_output(self._log_gap_cdf_at(self.theta, g.reshape(-1)).reshape(g.shape))

    def log_gap_sf(self, g: ArrayLike) -> Any:
        """``log P(1 - S > g)``, relative accuracy for any tiny value."""
        g = np.asarray(g, dtype=float)
        return _as_output(self._log_gap_sf_at(self.theta, g.reshape(-1)).reshape(g.shape))

    def log_gap_pdf(self, g: ArrayLike) -> Any:
        """``log`` density of ``1 - S``, finite far below the smallest float."""
        g = np.asarray(g, dtype=float)
        return _as_output(self._log_gap_pdf_at(self.theta, g.reshape(-1)).reshape(g.shape))

    def gap_cdf(self, g: ArrayLike) -> Any:
        return _as_output(np.exp(np.asarray(self.log_gap_cdf(g))))

    def gap_sf(self, g: ArrayLike) -> Any:
        return _as_output(np.exp(np.asarray(self.log_gap_sf(g))))

    def gap_pdf(self, g: ArrayLike) -> Any:
        return _as_output(np.exp(np.asarray(self.log_gap_pdf(g))))

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

    def sample(self, size: int, rng: RngLike = None) -> np.ndarray:
        r"""``size`` i.i.d. scores :math:`\cos\theta (1 - 2u) + \sin\theta\, 2\sqrt{u(1-u)}\, V` (exact)."""
        g = as_generator(rng)
        n = check_n(size, "size")
        u, v = self.law._sample_u(n, g)
        if self.d == 2:
            side = np.where(g.random(n) < 0.5, -1.0, 1.0)
        else:
            b = (self.d - 2) / 2.0
            side = 2.0 * g.beta(b, b, size=n) - 1.0
        return math.cos(self.theta) * (v - u) + math.sin(self.theta) * 2.0 * np.sqrt(u * v) * side


# ---------------------------------------------------------------------------
# Mixtures of score laws
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MixtureScoreLaw(ScoreLaw):
    r"""Weighted mixture :math:`\sum_i w_i F_i` of score laws (docs/theory.md section 2).

    The endpoint is the largest component endpoint :math:`s^*`; component ``i``
    contributes through its own gap shifted by :math:`s^* - s_i^*`.  Its tail
    comes from the components that reach :math:`s^*`: the smallest
    :math:`\gamma` among them wins, with :math:`\kappa = \sum w_i \kappa_i` over
    the components sharing that :math:`\gamma`.

    Examples
    --------
    >>> law = MixtureScoreLaw((UniformScoreLaw(3), UniformScoreLaw(5)), (0.5, 0.5))
    >>> law.tail()
    ScoreTail(endpoint=1.0, gamma=1.0, kappa=0.25, kind='weibull')
    """

    laws: tuple[ScoreLaw, ...]
    weights: np.ndarray

    def __post_init__(self) -> None:
        laws = tuple(self.laws) if isinstance(self.laws, (list, tuple)) else None
        if not laws or not all(isinstance(law, ScoreLaw) for law in laws):
            raise TypeError(f"laws: got {self.laws!r}; expected a non-empty sequence of ScoreLaw")
        object.__setattr__(self, "laws", laws)
        object.__setattr__(self, "weights", _normalized_weights(self.weights, len(laws)))

    @property
    def endpoint(self) -> float:  # type: ignore[override]
        return max(float(law.endpoint) for law in self.laws)

    @property
    def lower(self) -> float:  # type: ignore[override]
        return min(float(law.lower) for law in self.laws)

    def _parts(self):
        top = self.endpoint
        for law, w in zip(self.laws, self.weights):
            yield law, float(w), top - float(law.endpoint)

    def gap_cdf(self, g: ArrayLike) -> Any:
        g = np.asarray(g, dtype=float)
        out = np.zeros(g.shape)
        for law, w, shift in self._parts():
            gi = g - shift
            out = out + w * np.where(gi > 0, law.gap_cdf(np.maximum(gi, 0.0)), 0.0)
        return _as_output(np.minimum(out, 1.0))

    def gap_sf(self, g: ArrayLike) -> Any:
        g = np.asarray(g, dtype=float)
        out = np.zeros(g.shape)
        for law, w, shift in self._parts():
            gi = g - shift
            out = out + w * np.where(gi > 0, law.gap_sf(np.maximum(gi, 0.0)), 1.0)
        return _as_output(np.minimum(out, 1.0))

    def _log_combine(self, g, method: str, outside: float):
        g = np.asarray(g, dtype=float)
        out = np.full(g.shape, -np.inf)
        for law, w, shift in self._parts():
            gi = g - shift
            with np.errstate(divide="ignore"):
                part = np.where(gi > 0, getattr(law, method)(np.maximum(gi, 0.0)), outside)
            out = np.logaddexp(out, math.log(w) + part)
        return _as_output(np.minimum(out, 0.0))

    def log_gap_cdf(self, g: ArrayLike) -> Any:
        """``log P(s* - S <= g)`` as a log-sum-exp of the components."""
        return self._log_combine(g, "log_gap_cdf", -np.inf)

    def log_gap_sf(self, g: ArrayLike) -> Any:
        """``log P(s* - S > g)`` as a log-sum-exp of the components."""
        return self._log_combine(g, "log_gap_sf", 0.0)

    def gap_pdf(self, g: ArrayLike) -> Any:
        g = np.asarray(g, dtype=float)
        out = np.zeros(g.shape)
        for law, w, shift in self._parts():
            gi = g - shift
            out = out + w * np.where(gi >= 0, law.gap_pdf(np.maximum(gi, 0.0)), 0.0)
        return _as_output(out)

    def log_gap_pdf(self, g: ArrayLike) -> Any:
        """``log`` gap density as a log-sum-exp of the components."""
        g = np.asarray(g, dtype=float)
        out = np.full(g.shape, -np.inf)
        for law, w, shift in self._parts():
            gi = g - shift
            part = np.where(gi >= 0, law.log_gap_pdf(np.maximum(gi, 0.0)), -np.inf)
            out = np.logaddexp(out, math.log(w) + part)
        return _as_output(out)

    def _end_log_prob(
        self, x: np.ndarray, bottom: bool, upper: bool, need: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""As :meth:`ScoreLaw._end_log_prob`; at the bottom each component at its own distance from its bottom.

        A component whose bottom lies :math:`o_i \ge 0` above the mixture's is at
        the distance :math:`e^x - o_i` from its own (exact where :math:`o_i = 0`);
        where that is not positive the whole component lies above ``g``.
        """
        if not bottom:
            return super()._end_log_prob(x, bottom, upper, need)
        e = np.exp(x)
        log_p = np.full(x.shape, -np.inf)
        log_f = np.full(x.shape, -np.inf)
        for law, w, _ in self._parts():
            offset = float(law.lower) - float(self.lower)
            rows = e > offset
            if not upper:
                log_p[~rows] = np.logaddexp(log_p[~rows], math.log(w))
            if np.any(rows):
                lp, lf = law._end_log_prob(np.log(e[rows] - offset), True, upper, need[rows])
                log_p[rows] = np.logaddexp(log_p[rows], math.log(w) + lp)
                log_f[rows] = np.logaddexp(log_f[rows], math.log(w) + np.where(need[rows], lf, -np.inf))
        return np.minimum(log_p, 0.0), np.where(need, log_f, np.nan)

    def tail(self) -> ScoreTail:
        top = self.endpoint
        tails = [(w, law.tail()) for law, w, _ in self._parts() if float(law.endpoint) == top]
        gamma = min(t.gamma for _, t in tails)
        log_kappa = float(special.logsumexp([math.log(w) + t.log_kappa for w, t in tails if t.gamma == gamma]))
        return ScoreTail.from_log_kappa(top, gamma, log_kappa, kind="weibull")

    def sample(self, size: int, rng: RngLike = None) -> np.ndarray:
        """``size`` i.i.d. scores: multinomial component counts, then each component, shuffled."""
        g = as_generator(rng)
        n = check_n(size, "size")
        counts = g.multinomial(n, self.weights)
        parts = [law.sample(int(c), g) for law, c in zip(self.laws, counts) if c > 0]
        return g.permutation(np.concatenate(parts))


def _normalized_weights(weights: Any, k: int) -> np.ndarray:
    """Positive finite weights of length ``k``, normalized to sum 1, read-only."""
    w = check_vector(weights, "weights", k)
    if np.any(w <= 0):
        raise InputError(f"weights: got {w.tolist()}; expected positive numbers")
    w = w / w.sum()
    w.setflags(write=False)
    return w


# ---------------------------------------------------------------------------
# Key laws
# ---------------------------------------------------------------------------


class KeyLaw(abc.ABC):
    """A law of keys in R^d.  Subclasses define ``d``, ``sample`` and ``score_law``."""

    d: int

    @abc.abstractmethod
    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        """``n`` i.i.d. keys, shape ``(n, d)``."""

    @abc.abstractmethod
    def score_law(self, q: ArrayLike) -> ScoreLaw:
        """Exact law of ``<q, K>`` for a unit query ``q``."""

    def score_tail(self, q: ArrayLike) -> ScoreTail:
        """Top of the score law seen from ``q`` (section 2)."""
        return self.score_law(q).tail()

    def _query(self, q) -> np.ndarray:
        return check_unit_vector(q, "q", self.d)


def uniform_directions(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform points on :math:`S^{d-1}` (normalized Gaussians), shape ``(n, d)``."""
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _beta_pair(a1: float, a2: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(U, 1 - U)`` with ``U ~ Beta(a1, a2)``, both from gamma variates (no cancellation)."""
    g1 = rng.standard_gamma(a1, n)
    g2 = rng.standard_gamma(a2, n)
    total = g1 + g2
    return g1 / total, g2 / total


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

            out[mid] = np.minimum(_log_integral_rows(ell, 0.0, angle[mid]), 0.0)
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


def _read_only(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=float, copy=True)
    x.setflags(write=False)
    return x


def _axis(d: int, i: int = 0) -> np.ndarray:
    e = np.zeros(d)
    e[i] = 1.0
    e.setflags(write=False)
    return e


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

    return _log_integral(ell, 0.0, math.pi)


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "mu", _read_only(check_unit_vector(self.mu, "mu")))
        object.__setattr__(self, "kappa", check_nonnegative(self.kappa, "kappa"))
        object.__setattr__(self, "_log_mgf", _vmf_log_mgf(self.d, self.kappa))

    @property
    def d(self) -> int:  # type: ignore[override]
        return int(self.mu.shape[0])

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
        return math.exp(_log_integral(ell_num, 0.0, half) - _log_integral(ell_den, 0.0, half))

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


@dataclass(frozen=True)
class GreatSubsphere(KeyLaw):
    r"""Keys uniform on the unit sphere of :math:`\mathrm{span}(e_1, \dots, e_m)`, :math:`2 \le m \le d`.

    For a query with projection :math:`P q` of norm :math:`r > 0` on the span,
    :math:`S = r X` with :math:`X` the uniform score law of :math:`S^{m-1}`:
    endpoint ``r`` (``< 1`` for queries off the span), :math:`\gamma = (m-1)/2`,
    :math:`\kappa = \kappa_m r^{-\gamma}` (local dimension wins over ambient
    dimension; docs/theory.md section 2).

    Examples
    --------
    >>> law = GreatSubsphere(5, 3)
    >>> law.sample(2, rng=0).shape
    (2, 5)
    >>> law.score_tail([1.0, 0.0, 0.0, 0.0, 0.0]).gamma
    1.0
    >>> round(law.score_law([0.6, 0.0, 0.0, 0.8, 0.0]).endpoint, 12)
    0.6
    """

    d: int
    m: int

    def __post_init__(self) -> None:
        d = check_dimension(self.d)
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "m", check_int(self.m, "m", minimum=2, maximum=d))

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        n = check_n(n)
        keys = np.zeros((n, self.d))
        keys[:, : self.m] = uniform_directions(n, self.m, as_generator(rng))
        return keys

    def score_law(self, q: ArrayLike) -> UniformScoreLaw:
        q = self._query(q)
        inside = float(np.linalg.norm(q[: self.m]))
        outside = float(np.linalg.norm(q[self.m :]))
        # r = |P q|; from the orthogonal part when that is small, so q in the span gives r = 1 exactly
        r = inside if inside < outside else math.sqrt((1.0 - outside) * (1.0 + outside))
        if r == 0.0:
            raise InputError(
                f"q: is orthogonal to span(e_1..e_{self.m}); every score is 0, which has no score law"
            )
        return UniformScoreLaw(self.m, scale=min(r, 1.0))


@dataclass(frozen=True, eq=False)
class Mixture(KeyLaw):
    r"""Mixture :math:`\sum_i w_i \mu_i` of key laws of one dimension.

    Sampling is exact (multinomial counts, then each component, shuffled).
    The score law is the weighted mixture of the component score laws
    (:class:`MixtureScoreLaw`; docs/theory.md section 2).

    Parameters
    ----------
    laws : sequence of KeyLaw
        Components, all with the same ``d``.
    weights : array_like, optional
        Positive weights (normalized here); equal weights by default.

    Examples
    --------
    >>> law = Mixture([UniformSphere(3), GreatSubsphere(3, 2)], [0.9, 0.1])
    >>> law.score_tail([1.0, 0.0, 0.0]).gamma    # the subsphere's local dimension wins
    0.5
    """

    laws: tuple[KeyLaw, ...]
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if isinstance(self.laws, KeyLaw) or not isinstance(self.laws, (list, tuple)):
            raise TypeError(f"laws: got {type(self.laws).__name__}; expected a non-empty list or tuple of KeyLaw")
        laws = tuple(self.laws)
        if not laws:
            raise InputError("laws: got an empty sequence; expected at least one KeyLaw")
        for i, law in enumerate(laws):
            if not isinstance(law, KeyLaw):
                raise TypeError(f"laws: item {i} is {type(law).__name__}; expected a KeyLaw")
        dims = [law.d for law in laws]
        if len(set(dims)) != 1:
            raise InputError(f"laws: got dimensions {dims}; all components must have the same d")
        weights = np.ones(len(laws)) if self.weights is None else self.weights
        object.__setattr__(self, "laws", laws)
        object.__setattr__(self, "weights", _normalized_weights(weights, len(laws)))

    @property
    def d(self) -> int:  # type: ignore[override]
        return self.laws[0].d

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        g = as_generator(rng)
        n = check_n(n)
        counts = g.multinomial(n, self.weights)
        parts = [law.sample(int(c), g) for law, c in zip(self.laws, counts) if c > 0]
        return g.permutation(np.concatenate(parts, axis=0), axis=0)

    def score_law(self, q: ArrayLike) -> MixtureScoreLaw:
        q = self._query(q)
        return MixtureScoreLaw(tuple(law.score_law(q) for law in self.laws), self.weights)


@dataclass(frozen=True, eq=False)
class Empirical(KeyLaw):
    r"""A finite set of keys, resampled with replacement.

    Keys may have any norms (real keys need not lie on the sphere).  An
    empirical law has no density, so it has no exact score law: its score tail
    must be estimated from data (``estimate.py``).

    Examples
    --------
    >>> law = Empirical([[1.0, 0.0], [0.0, 2.0]])
    >>> law.sample(3, rng=0).shape
    (3, 2)
    """

    keys: np.ndarray

    def __post_init__(self) -> None:
        keys = check_matrix(self.keys, "keys")
        if keys.shape[1] < 2:
            raise InputError(f"keys: got shape {keys.shape}; expected at least 2 columns (d >= 2)")
        object.__setattr__(self, "keys", _read_only(keys))

    @property
    def d(self) -> int:  # type: ignore[override]
        return int(self.keys.shape[1])

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        g = as_generator(rng)
        rows = g.integers(0, self.keys.shape[0], size=check_n(n))
        return self.keys[rows]

    def score_law(self, q: ArrayLike) -> ScoreLaw:
        raise TypeError(
            "score_law: an Empirical law has no density, so no exact score law; "
            "estimate the score tail from the scores <q, keys> instead (attnscale.estimate)"
        )

    def score_tail(self, q: ArrayLike) -> ScoreTail:
        raise TypeError(
            "score_tail: an Empirical law has no exact score tail; "
            "estimate it from the scores <q, keys> (attnscale.estimate)"
        )


# ---------------------------------------------------------------------------
# Gaussian keys: the Gumbel class
# ---------------------------------------------------------------------------

#: Reference point of the Gaussian gap, in standard deviations: P(Z > 40) = 3.7e-350 is
#: below the smallest float64, so every representable quantile has a positive gap.
GAUSS_REF = 40.0


@dataclass(frozen=True)
class GaussianScoreLaw(ScoreLaw):
    r"""Scores :math:`S \sim N(0, \sigma^2)`: the Gumbel class (docs/theory.md section 2).

    The law is unbounded, so the gap is measured from a *reference point*
    ``endpoint`` :math:`= 40\sigma` instead of an essential supremum:
    :math:`G = 40\sigma - S`, with :math:`P(G \le 0) = \bar\Phi(40) \approx 3.7\times
    10^{-350}`, below every float64, so all representable quantiles have positive
    gaps and the gap functions are exact for every real ``g`` (negative ones
    included).  ``lower`` is :math:`-\infty`.  The tail is
    ``ScoreTail(inf, 2, 1/(2 sigma^2), "gumbel")``: :math:`-\log P(S > s) \sim
    s^2/(2\sigma^2)`.

    Parameters
    ----------
    sigma : float
        Standard deviation, ``> 0``.

    Examples
    --------
    >>> law = GaussianScoreLaw(2.0)
    >>> float(law.cdf(0.0)), law.tail().kind
    (0.5, 'gumbel')
    >>> round(float(law.isf(0.025)), 6)    # 1.959964 sigma
    3.919928
    """

    sigma: float

    def __post_init__(self) -> None:
        sigma = check_finite(self.sigma, "sigma")
        if not sigma > 0:
            raise InputError(f"sigma: got {self.sigma!r}; expected a finite number > 0")
        object.__setattr__(self, "sigma", sigma)

    @property
    def endpoint(self) -> float:  # type: ignore[override]
        r"""Reference point :math:`40\sigma` of the gap (not a supremum: the law is unbounded)."""
        return GAUSS_REF * self.sigma

    @property
    def lower(self) -> float:  # type: ignore[override]
        return -math.inf

    def _z(self, g) -> np.ndarray:
        r"""Standardized score :math:`(s_{ref} - g)/\sigma` at gap ``g``."""
        return GAUSS_REF - np.asarray(g, dtype=float) / self.sigma

    def gap_cdf(self, g: ArrayLike) -> Any:
        return _as_output(np.asarray(special.ndtr(-self._z(g))))

    def gap_sf(self, g: ArrayLike) -> Any:
        return _as_output(np.asarray(special.ndtr(self._z(g))))

    def log_gap_cdf(self, g: ArrayLike) -> Any:
        """``log P(G <= g)``, finite for every finite ``g``."""
        return _as_output(np.asarray(special.log_ndtr(-self._z(g))))

    def log_gap_sf(self, g: ArrayLike) -> Any:
        """``log P(G > g)``, finite for every finite ``g``."""
        return _as_output(np.asarray(special.log_ndtr(self._z(g))))

    def gap_pdf(self, g: ArrayLike) -> Any:
        z = self._z(g)
        return _as_output(np.exp(-0.5 * z * z) / (math.sqrt(2.0 * math.pi) * self.sigma))

    def log_gap_pdf(self, g: ArrayLike) -> Any:
        """``log`` gap density, finite for every finite ``g``."""
        z = self._z(g)
        return _as_output(-0.5 * z * z - math.log(math.sqrt(2.0 * math.pi) * self.sigma))

    def gap_ppf(self, p: ArrayLike) -> Any:
        r""":math:`G = 40\sigma + \sigma\,\Phi^{-1}(p)` (``scipy.special.ndtri``, accurate for tiny ``p``)."""
        p = np.asarray(p, dtype=float)
        with np.errstate(divide="ignore"):
            return _as_output(self.sigma * (GAUSS_REF + special.ndtri(p)))

    def tail(self) -> ScoreTail:
        r"""Gumbel tail: :math:`\gamma = 2`, :math:`\kappa = 1/(2\sigma^2)` (so ``critical_beta`` gives :math:`\sqrt{2\log n}/\sigma`)."""
        return ScoreTail.from_log_kappa(math.inf, 2.0, -math.log(2.0) - 2.0 * math.log(self.sigma), kind="gumbel")

    def sample(self, size: int, rng: RngLike = None) -> np.ndarray:
        g = as_generator(rng)
        return self.sigma * g.standard_normal(check_n(size, "size"))

    def top_score(self, n: Any) -> float:
        r""":math:`b_n = \sigma\,\bar\Phi^{-1}(1/n)`, the score exceeded by one key in ``n`` on average."""
        n = check_n(n)
        return -self.sigma * float(special.ndtri(1.0 / n))

    def critical_beta(self, n: Any, correction: str = "exact") -> float:
        r"""Gumbel scale :math:`a_n` of the top of ``n`` scores, with its finite-n correction (section 2).

        At :math:`\beta = c\,a_n` the ordered weights tend to Poisson-Dirichlet(1/c)
        (:math:`c > 1`); :math:`a_n` is the hazard rate of the scores at
        :math:`b_n` (:meth:`top_score`), where :math:`S_{(k)} - b_n \approx -\log\Gamma_k / a_n`.

        - ``"exact"``: :math:`a_n = \varphi(x_n)/(\sigma\bar\Phi(x_n))`, :math:`x_n = \bar\Phi^{-1}(1/n)`;
        - ``"corrected"``: with :math:`L = \log n`,
          :math:`a_n = \frac{\sqrt{2L}}{\sigma}\Bigl(1 - \frac{\log L + \log 4\pi - 2}{4L}\Bigr)`
          (from :math:`x_n = \sqrt{2L} - (\log L + \log 4\pi)/(2\sqrt{2L}) + \dots` and
          :math:`\varphi(x)/\bar\Phi(x) = x + 1/x + O(x^{-3})`);
        - ``"leading"``: :math:`\sqrt{2\log n}/\sigma` (= ``tails.critical_beta(n, self.tail())``).

        Examples
        --------
        >>> law = GaussianScoreLaw(1.0)
        >>> [round(law.critical_beta(1e12, c), 3) for c in ("exact", "corrected", "leading")]
        [7.171, 7.175, 7.434]
        """
        n = check_n(n)
        check_choice(correction, "correction", ("exact", "corrected", "leading"))
        if n < 2:
            raise InputError(f"n: got {n}; the Gumbel scale needs n >= 2")
        big_l = math.log(n)
        if correction == "leading":
            return math.sqrt(2.0 * big_l) / self.sigma
        if correction == "corrected":
            return math.sqrt(2.0 * big_l) / self.sigma * (1.0 - (math.log(big_l) + math.log(4.0 * math.pi) - 2.0) / (4.0 * big_l))
        x = -float(special.ndtri(1.0 / n))
        log_hazard = -0.5 * x * x - 0.5 * math.log(2.0 * math.pi) - float(special.log_ndtr(-x))
        return math.exp(log_hazard) / self.sigma


@dataclass(frozen=True)
class GaussianKeys(KeyLaw):
    r"""Keys :math:`N(0, \sigma^2 I_d)` in :math:`\mathbb R^d` (no normalization): the Gumbel class.

    Seen from a unit query the score is exactly :math:`N(0, \sigma^2)`
    (:class:`GaussianScoreLaw`); :math:`\beta^*(n) = a_n \sim \sqrt{2\log n}/\sigma`
    (docs/theory.md section 2).

    Examples
    --------
    >>> law = GaussianKeys(3, sigma=0.5)
    >>> law.sample(4, rng=0).shape
    (4, 3)
    >>> law.score_tail([1.0, 0.0, 0.0])
    ScoreTail(endpoint=inf, gamma=2.0, kappa=2.0, kind='gumbel')
    """

    d: int
    sigma: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "d", check_dimension(self.d))
        sigma = check_finite(self.sigma, "sigma")
        if not sigma > 0:
            raise InputError(f"sigma: got {self.sigma!r}; expected a finite number > 0")
        object.__setattr__(self, "sigma", sigma)

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        return self.sigma * as_generator(rng).standard_normal((check_n(n), self.d))

    def score_law(self, q: ArrayLike) -> GaussianScoreLaw:
        self._query(q)
        return GaussianScoreLaw(self.sigma)


# ---------------------------------------------------------------------------
# Names for the command line
# ---------------------------------------------------------------------------

LAW_NAMES = ("uniform", "vmf", "subsphere", "power", "gaussian")

_LAW_PARAMS = {"uniform": (), "vmf": ("kappa", "mu_axis"), "subsphere": ("m",), "power": ("eta",), "gaussian": ("sigma",)}


def law_from_name(name: str, d: int, **params: Any) -> KeyLaw:
    r"""Build a key law from its command-line name.

    ``uniform``; ``vmf`` (``kappa``, ``mu_axis``: :math:`\mu = e_{mu\_axis}`,
    1-based, default 1); ``subsphere`` (``m``); ``power`` (``eta``); ``gaussian``
    (``sigma``, default 1).  Parameters passed as ``None`` count as not given.

    Examples
    --------
    >>> law_from_name("vmf", 3, kappa=2.0).mu.tolist()
    [1.0, 0.0, 0.0]
    >>> law_from_name("subsphere", 4, m=2)
    GreatSubsphere(d=4, m=2)
    """
    check_choice(name, "law", LAW_NAMES)
    d = check_dimension(d)
    given = {k: v for k, v in params.items() if v is not None}
    allowed = _LAW_PARAMS[name]
    extra = sorted(set(given) - set(allowed))
    if extra:
        raise InputError(
            f"{extra[0]}: not a parameter of law {name!r}; allowed: {', '.join(allowed) or 'none'}"
        )
    for key in allowed:
        if key not in given and key not in ("mu_axis", "sigma"):
            raise InputError(f"{key}: required for law {name!r}")
    if name == "uniform":
        return UniformSphere(d)
    if name == "vmf":
        axis = check_int(given.get("mu_axis", 1), "mu_axis", minimum=1, maximum=d)
        return VonMisesFisher(_axis(d, axis - 1), given["kappa"])
    if name == "subsphere":
        return GreatSubsphere(d, given["m"])
    if name == "gaussian":
        return GaussianKeys(d, given.get("sigma", 1.0))
    return PowerDensity(d, given["eta"])
