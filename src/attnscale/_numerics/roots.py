r"""Batched root finding: safeguarded Newton (bisection fallback) for many targets at once.

Private kernels (docs/theory.md section 4).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import interpolate

__all__ = ["log_slope", "solve_increasing"]

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


def solve_increasing(fun, t: np.ndarray, seed, x_hi: float, floor: float = -math.inf) -> np.ndarray:
    r"""Roots ``x`` of ``value(x) = t`` for every target ``t`` (``value`` increasing, ``value(x_hi) >= t``).

    Distinct targets are solved once, in increasing order (:func:`_solve_sorted`,
    :func:`_newton_rows`).
    """
    targets, inverse = np.unique(t, return_inverse=True)
    x, _ = _solve_sorted(fun, targets, seed, x_hi, floor)
    return x[inverse.reshape(-1)]


def log_slope(x: np.ndarray, log_p: np.ndarray, log_f: np.ndarray, need: np.ndarray) -> np.ndarray:
    r""":math:`d \log P / dx = e^{x} f / P` where ``need`` (NaN elsewhere), from logs."""
    with np.errstate(all="ignore"):
        return np.where(need, np.exp(x + log_f - log_p), np.nan)
