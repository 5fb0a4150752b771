r"""Special functions in log space: incomplete beta (and its inverse), one continued-fraction loop.

Private kernels: they trust their inputs (docs/theory.md sections 2 and 4).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from .arrays import as_float_array, as_output

__all__ = [
    "LOG_TINY",
    "bessel_ratio_cf",
    "lentz",
    "log_betainc_cf",
    "log_betainc_lower",
    "log_betainc_sym",
    "log_upper_gamma",
    "log_upper_gamma_scaled",
    "robust_betaincinv",
    "upper_gamma_cf",
]

#: log of the smallest normal float64: quantile gaps below it (where a gap and its
#: probabilities no longer have full precision) are returned as 0.
LOG_TINY = math.log(np.finfo(float).tiny)


#: Guard of the modified Lentz method against a zero denominator.
_LENTZ_TINY = 1e-300


def lentz(
    steps: Iterator[Sequence[tuple[Any, Any]]], h: np.ndarray, c: np.ndarray, d: np.ndarray, tol: float
) -> np.ndarray:
    r"""Modified Lentz evaluation of a continued fraction, elementwise on arrays: the one loop of the package.

    Each item of ``steps`` is a short sequence of terms :math:`(a_j, b_j)`; each term
    updates :math:`D \leftarrow 1/(b_j + a_j D)`, :math:`C \leftarrow b_j + a_j/C`
    (both kept away from 0) and multiplies the value ``h`` by :math:`D` and :math:`C`
    (by :math:`\delta = DC` for the last term of a step, whose :math:`\delta` is tested).
    The loop stops when that :math:`\delta` is within ``tol`` of 1
    everywhere, or when ``steps`` ends.  ``h``, ``c``, ``d`` are the starting values
    (Numerical Recipes section 5.2).

    Examples
    --------
    >>> from itertools import repeat
    >>> one = np.ones(1)
    >>> h = lentz(repeat(((1.0, 1.0),), 100), one, one, np.zeros(1), 1e-15)  # 1 + 1/(1 + 1/(1 + ...))
    >>> round(float(h[0]), 12)  # the golden ratio
    1.61803398875
    """
    tiny = _LENTZ_TINY
    for terms in steps:
        *inner, last = terms
        for a, b in inner:
            d = b + a * d
            d = np.where(np.abs(d) < tiny, tiny, d)
            c = b + a / c
            c = np.where(np.abs(c) < tiny, tiny, c)
            d = 1.0 / d
            h = h * d * c
        a, b = last
        d = b + a * d
        d = np.where(np.abs(d) < tiny, tiny, d)
        c = b + a / c
        c = np.where(np.abs(c) < tiny, tiny, c)
        d = 1.0 / d
        delta = d * c
        h = h * delta
        if np.all(np.abs(delta - 1.0) < tol):
            break
    return h


def log_betainc_cf(a: float, b: float, x: np.ndarray) -> np.ndarray:
    r"""``log I_x(a, b)`` for ``0 < x < (a+1)/(a+b+2)`` by the continued fraction.

    :math:`I_x(a,b) = \frac{x^a (1-x)^b}{a B(a,b)} \cdot \mathrm{cf}(x)` with the
    classical even/odd continued fraction evaluated by the modified Lentz method
    (:func:`lentz`, an even and an odd term per step); it converges fast below the
    mean, where it is used.
    """
    qab, qap, qam = a + b, a + 1.0, a - 1.0

    def steps() -> Iterator[tuple[tuple[np.ndarray, float], tuple[np.ndarray, float]]]:
        for m in range(1, 2001):
            m2 = 2.0 * m
            even = m * (b - m) * x / ((qam + m2) * (a + m2))
            odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
            yield (even, 1.0), (odd, 1.0)

    d = 1.0 - qab * x / qap
    d = np.where(np.abs(d) < _LENTZ_TINY, _LENTZ_TINY, d)
    d = 1.0 / d
    h = lentz(steps(), d.copy(), np.ones_like(x), d, 5e-16)
    return a * np.log(x) + b * np.log1p(-x) - math.log(a) - special.betaln(a, b) + np.log(h)


def log_betainc_lower(a: float, b: float, x) -> np.ndarray:
    r"""``log I_x(a, b)`` without underflow for small ``x``.

    Uses ``log(betainc)`` where the value is a normal float (``> 1e-280``;
    ``scipy.special.betainc`` is accurate to ~1e-15 relative there) and the
    continued fraction :func:`log_betainc_cf` below, where ``x`` is far below
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
            out[deep] = log_betainc_cf(a, b, xs[deep])
    return out.reshape(x.shape)


def log_betainc_sym(b: float, log_w: np.ndarray, log_1mw: np.ndarray) -> np.ndarray:
    r""":math:`\log I_w(b, b)` from :math:`\log w` and :math:`\log(1-w)`, one ``betainc`` each.

    Below :math:`w = 1/2`, :math:`\log I_w` (the continued fraction where it
    underflows, :func:`log_betainc_lower`); above, :math:`\log(1 - I_{1-w}(b, b))`.
    """
    small = log_w <= -math.log(2.0)
    arg = np.exp(np.where(small, log_w, log_1mw))
    value = special.betainc(b, b, arg)
    with np.errstate(divide="ignore"):
        out = np.where(small, np.log(value), np.log1p(-value))
    deep = small & (value < 1e-280) & (arg > 0.0)
    if np.any(deep):
        out[deep] = log_betainc_cf(b, b, arg[deep])
    return out


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
    >>> bool(abs(np.exp(log_betainc_lower(5.0, 5.0, x)) / 1e-250 - 1) < 1e-10)
    True
    """
    p_in = as_float_array(p)
    p = np.atleast_1d(p_in)
    with np.errstate(all="ignore"):
        x = np.array(special.betaincinv(a, b, p), dtype=float)
    bad = (p > 0) & (p < 1) & ((p < 1e-150) | ~np.isfinite(x) | (x <= 0))
    if np.any(bad):
        pb = p[bad]
        logp = np.log(pb)
        # seed: leading term of the small-x series, then Newton in y = log x
        y = np.clip((logp + math.log(a) + special.betaln(a, b)) / a, LOG_TINY, math.log(0.5))
        for _ in range(200):
            xb = np.exp(y)
            log_i = log_betainc_lower(a, b, xb)
            # d log I / d log x = x * pdf(x) / I(x)
            dlog = np.exp(a * y + (b - 1.0) * np.log1p(-xb) - special.betaln(a, b) - log_i)
            step = (log_i - logp) / dlog
            # roots below the smallest normal float stay pinned there (returned as 0)
            pinned = (y <= LOG_TINY) & (step > 0)
            y = np.clip(y - step, LOG_TINY, math.log(0.999999))
            if np.all((np.abs(step) < 1e-14) | pinned):
                break
        x[bad] = np.where(pinned, 0.0, np.exp(y))
    x = np.where(p >= 1.0, 1.0, np.where(p <= 0.0, 0.0, x))
    return as_output(x.reshape(p_in.shape))


def upper_gamma_cf(s: float, z: np.ndarray) -> np.ndarray:
    r"""Legendre continued fraction :math:`h` with :math:`\Gamma(s,z) = e^{-z} z^s h`.

    Modified Lentz evaluation (:func:`lentz`); converges quickly for :math:`z > s + 1`,
    the only place it is used.
    """

    def steps() -> Iterator[tuple[tuple[float, np.ndarray]]]:
        b = z + 1.0 - s
        for i in range(1, 10_000):
            b = b + 2.0
            yield ((-i * (i - s), b),)

    b0 = z + 1.0 - s
    dd = 1.0 / b0
    return lentz(steps(), dd.copy(), np.full_like(z, 1.0 / _LENTZ_TINY), dd, 1e-15)


def log_upper_gamma_scaled(s: float, z: np.ndarray) -> np.ndarray:
    r""":math:`\log(e^{z}\,\Gamma(s, z))` for finite :math:`z \ge 0`, unregularized.

    ``scipy.special.gammaincc`` where the regularized value is above 1e-250;
    the continued fraction :func:`upper_gamma_cf` in the far tail, where
    :math:`\log \Gamma(s,z) = -z + s \log z + \log h`.
    """
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    q = special.gammaincc(s, z)
    ok = q > 1e-250
    out[ok] = special.gammaln(s) + np.log(q[ok]) + z[ok]
    far = ~ok
    if np.any(far):
        zf = z[far]
        out[far] = s * np.log(zf) + np.log(upper_gamma_cf(s, zf))
    return out


def log_upper_gamma(s: float, z: np.ndarray) -> np.ndarray:
    r""":math:`\log \Gamma(s, z)` (unregularized) for finite :math:`z \ge 0`."""
    z = np.asarray(z, dtype=np.float64)
    return log_upper_gamma_scaled(s, z) - z


def bessel_ratio_cf(nu: float, x: np.ndarray) -> np.ndarray:
    r"""Gauss continued fraction :math:`I_{\nu+1}(x)/I_\nu(x) = 1/(b_1 + 1/(b_2 + \dots))`,
    :math:`b_k = 2(\nu+k)/x` (modified Lentz, :func:`lentz`).  Converges after about ``x`` terms."""

    def steps() -> Iterator[tuple[tuple[float, np.ndarray]]]:
        for k in range(2, 100_000):
            yield ((1.0, 2.0 * (nu + k) / x),)

    f = 2.0 * (nu + 1.0) / x
    return 1.0 / lentz(steps(), f, f.copy(), np.zeros_like(x), 1e-15)
