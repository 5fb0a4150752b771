r"""Log-space quadrature: :math:`\log\int e^{\ell}` without overflow or underflow, one or many rows at once.

Private kernels (docs/theory.md section 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate

__all__ = ["log_integral", "log_integral_rows"]

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


def log_integral(ell: Callable[[Any], np.ndarray], lo: float, hi: float) -> float:
    r"""``log`` of :math:`\int_{lo}^{hi} e^{\ell(x)}\,dx` without overflow or underflow.

    ``ell`` is a vectorized log-integrand (of an array or a scalar).  A grid locates the peak; the window is
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
    # full_output: a roundoff report (the noise floor tol was reached) is returned, not warned
    value = integrate.quad(integrand, a, b, points=points, epsabs=0.0, epsrel=tol, limit=400, full_output=1)[0]
    return top + math.log(value) if value > 0 else -math.inf


#: Gauss-Legendre rules of the batched quadrature: each is checked against the next.
_GL_ROWS = tuple(np.polynomial.legendre.leggauss(n) for n in (32, 64, 128))


#: Tanh-sinh stage of the batched quadrature: range of t, and levels (steps 2^-level).
_DE_T = 3.5


_DE_LEVELS = (3, 4, 5, 6)


#: Rows of one batched pass, so that the temporaries stay a few MB.
_ROWS_BLOCK = 2048


def log_integral_rows(
    ell: Callable[[np.ndarray, np.ndarray], np.ndarray], lo: ArrayLike, hi: ArrayLike
) -> np.ndarray:
    r"""Batched :func:`log_integral`: ``log`` of :math:`\int_{lo_r}^{hi_r} e^{\ell_r(x)}\,dx` for every row ``r``.

    ``ell(rows, x)`` evaluates the log-integrands of the rows ``rows`` (an index
    array) at the points ``x`` of shape ``(len(rows), k)``.  The window of each
    row is zoomed exactly as in :func:`log_integral`; then Gauss-Legendre
    with 32, 64 and 128 nodes on each side of the peak: a row is accepted as
    soon as two successive rules agree within
    :math:`\max(10^{-11}, 100\,\epsilon\,|\max\ell|)` (the finer one is
    returned); rows where 64 and 128 nodes still disagree (a singular end) go
    to tanh-sinh quadrature (:func:`_tanh_sinh_rows`), and the few left to
    ``scipy.integrate.quad``.  docs/theory.md section 2.

    Examples
    --------
    >>> ell = lambda rows, x: -np.asarray([1.0, 2.0])[rows, None] * x
    >>> np.round(np.exp(log_integral_rows(ell, 0.0, [1.0, 1.0])), 12).tolist()  # (1 - e^-c)/c
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
    """Window ``[a, b]``, peak and peak value of each row (the loop of :func:`log_integral`, batched)."""
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
    """``scipy.integrate.quad`` fallback of one row of :func:`log_integral_rows`."""
    index = np.array([row])

    def integrand(t: float) -> float:
        with np.errstate(all="ignore"):
            return math.exp(min(float(ell(index, np.array([[t]]))[0, 0]) - top, 700.0))

    points = [peak] if a < peak < b else None
    # full_output: a roundoff report is returned, not warned (no process-wide warning state)
    value = integrate.quad(integrand, a, b, points=points, epsabs=0.0, epsrel=tol, limit=400, full_output=1)[0]
    return top + math.log(value) if value > 0 else -math.inf
