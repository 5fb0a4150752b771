r"""The exact finite-n critical curve and the measured critical exponent (docs/theory.md section 5).

For fixed keys the top weight :math:`W_1` increases with :math:`\beta`, so
:math:`\beta_{1/2}(n)`, the :math:`\beta` at which :math:`E\,W_1 = 1/2` for
``n`` keys, is found by root finding in :math:`\log\beta` on *common random
numbers*: the top-``m`` order statistics and the remainder's normals of
:func:`attnscale.sampler.sample_top` are drawn once, and the average of
:math:`W_1(\beta)` over those fixed draws is a smooth increasing function of
:math:`\beta`.  Over a log grid of ``n``,

.. math::
    \log \beta_{1/2}(n) = s \log n + b + g\, n^{-1/\gamma}

is fitted by least squares; :math:`s` estimates :math:`1/\gamma` (uniform keys:
:math:`2/(d-1)`).  The standard error of :math:`s` is the sandwich (delta
method) error of the fit given the covariance of the
:math:`\log\beta_{1/2}(n)` across ``n``, itself computed from per-draw
influence values (the same draws are used at every ``n``, so the errors are
correlated, and the covariance says by how much).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from ._validate import (
    InputError,
    RngLike,
    as_generator,
    check_int,
    check_n,
    check_positive,
    check_vector,
)
from .laws import KeyLaw, ScoreLaw
from .sampler import (
    _base_from_exponentials,
    _choose_m,
    _enumerated_width,
    _grid_for_base,
    _max_weight,
    _pilot_grid,
    as_score_law,
)
from .sampler_lattice import _covering_grid, _gaps
from .tails import critical_beta

__all__ = ["BetaHalf", "ExponentFit", "ExponentResult", "ExponentRow", "beta_half", "critical_curve", "exponent_curve", "fit_exponent"]

#: Draws of the pilot that locates beta_half before ``m`` is chosen.
PILOT_SIZE = 2000
#: ``m`` of the pilot.
PILOT_M = 64
#: Largest automatic ``m`` (the common draws are held in memory: size x m floats).
EXPONENT_M_MAX = 1024
#: Relative step in beta of the central difference for d E[W_1] / d log beta.
_DLOG = 1e-4
#: Root tolerance in log beta.
_XTOL = 1e-10


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BetaHalf:
    r"""The :math:`\beta` at which :math:`E\,W_1 = 1/2` for ``n`` keys (docs/theory.md section 5).

    Attributes
    ----------
    n : int
        Context length.
    beta_half : float
        :math:`\beta_{1/2}(n)` estimated on ``size`` common draws.
    log_se : float
        Standard error of :math:`\log\beta_{1/2}` (delta method:
        :math:`\mathrm{sd}(W_1)/(\sqrt{\mathrm{size}}\; dE W_1/d\log\beta)`).
    m : int
        Keys sampled exactly per draw.
    size : int
        Number of draws.
    """

    n: int
    beta_half: float
    log_se: float
    m: int
    size: int


@dataclass(frozen=True)
class ExponentFit:
    r"""Fit of :math:`\log\beta_{1/2} = s\log n + b + g\,n^{-1/\gamma}` (docs/theory.md section 5).

    Attributes
    ----------
    slope, slope_se : float
        :math:`s` and its standard error.
    intercept, correction : float
        :math:`b` and :math:`g` (``correction`` is 0 when no ``gamma_hint`` was given).
    chi2 : float or None
        :math:`r^\top C^{-1} r` of the residuals with the given covariance ``C``
        (None without one); compare with ``dof``.
    dof : int
        Points minus fitted parameters.
    se_kind : str
        ``"sandwich+residual"`` (given covariance of the log beta_half plus
        residual scatter) or ``"residual"`` (residual scatter only).
    """

    slope: float
    slope_se: float
    intercept: float
    correction: float
    chi2: float | None
    dof: int
    se_kind: str


@dataclass(frozen=True)
class ExponentRow:
    r"""One point of the critical curve (docs/theory.md sections 5 and 7).

    ``n``, :math:`\beta_{1/2}(n)`, its ratio to :math:`\beta^*(n)`, the SE of its log, ``m``,
    and the local slope :math:`d\log\beta_{1/2}/d\log n` at ``n`` (central differences on the
    common draws; one-sided at the ends of the grid; NaN-free, None on a one-point curve)
    beside the log-n rule's slope :math:`1/\ln n`.
    """

    n: int
    beta_half: float
    beta_half_over_beta_star: float
    log_se: float
    m: int
    local_slope: float | None = None
    log_n_slope: float | None = None


@dataclass(frozen=True)
class ExponentResult:
    r"""The exact finite-n critical curve and its fitted exponent (docs/theory.md section 5).

    ``target`` is :math:`1/\gamma` of the law's tail (uniform keys:
    :math:`2/(d-1)`), the limit of the slope; ``table`` the curve, whose
    column ``beta_half_over_beta_star`` shows how far the finite-n answer
    still is from the asymptotic scale :math:`\beta^*(n)` (constant once the
    asymptotic law holds).
    """

    slope: float
    slope_se: float
    target: float
    gamma: float
    fit: ExponentFit
    table: tuple[ExponentRow, ...]
    slope_meaningful: bool = True
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: ``slope``, ``slope_se``, ``target``, ``table`` and the fit details.

        Examples
        --------
        >>> row = ExponentRow(10**6, 2.0, 1.0, 0.01, 16)
        >>> fit = ExponentFit(1.0, 0.01, 0.0, 0.0, None, 1, "residual")
        >>> sorted(ExponentResult(1.0, 0.01, 1.0, 1.0, fit, (row,)).to_dict())[:6]
        ['chi2', 'dof', 'gamma', 'slope', 'slope_meaningful', 'slope_se']
        """
        return {
            "slope": self.slope,
            "slope_se": self.slope_se,
            "slope_meaningful": self.slope_meaningful,
            "warning": self.warning,
            "target": self.target,
            "gamma": self.gamma,
            "chi2": self.fit.chi2,
            "dof": self.fit.dof,
            "table": [
                {
                    "n": row.n,
                    "beta_half": row.beta_half,
                    "beta_half_over_beta_star": row.beta_half_over_beta_star,
                    "log_se": row.log_se,
                    "m": row.m,
                    "local_slope": row.local_slope,
                    "log_n_slope": row.log_n_slope,
                }
                for row in self.table
            ],
        }


# ---------------------------------------------------------------------------
# beta_half
# ---------------------------------------------------------------------------


def beta_half(
    law: KeyLaw | ScoreLaw,
    n: Any,
    size: int = 20000,
    rng: RngLike = None,
    m: int | None = None,
    *,
    q: Any = None,
    accuracy: float = 1e-4,
) -> BetaHalf:
    r"""The inverse temperature at which :math:`E\,W_1 = 1/2` for ``n`` keys (docs/theory.md section 5).

    The top-``m`` order statistics of ``size`` contexts and their remainder
    normals are drawn once (:func:`attnscale.sampler.sample_top`, section 4);
    :math:`\bar W_1(\beta)`, their average top weight, is then a smooth
    increasing function of :math:`\beta` and its root
    :math:`\bar W_1 = 1/2` is found by Brent's method in :math:`\log\beta`.

    Parameters
    ----------
    law : KeyLaw or ScoreLaw
        Key law (with query ``q``, default :math:`e_1`) or score law.
    n : int
        Context length, ``3 <= n <= 1e18`` (for ``n <= 2``, :math:`E W_1 \ge 1/2` at every beta).
    size : int
        Number of common draws.
    rng : Generator, int, SeedSequence or None
        Randomness.
    m : int, optional
        Keys sampled exactly; default: chosen by
        :func:`attnscale.sampler.choose_m` for the error of :math:`W_1` at a
        pilot estimate of :math:`\beta_{1/2}` (at most ``EXPONENT_M_MAX``).
    accuracy : float
        Bound on the error of :math:`W_1` from the Gaussian remainder, used to choose ``m``.

    Returns
    -------
    BetaHalf

    Examples
    --------
    >>> from attnscale.laws import UniformScoreLaw
    >>> r = beta_half(UniformScoreLaw(3), 10**6, size=2000, rng=0)
    >>> round(r.beta_half / 5e5, 1)  # beta*(n) = n / 2 for d = 3
    0.8
    """
    score_law = as_score_law(law, q)
    n = check_n(n)
    if n < 3:
        raise InputError(f"n: got {n}; beta_half needs n >= 3 (for n <= 2, E W_1 >= 1/2 at every beta)")
    size = check_int(size, "size", minimum=2)
    accuracy = check_positive(accuracy, "accuracy")
    gen = as_generator(rng)
    m_used = _pick_m(score_law, n, m, accuracy, gen)
    e = gen.standard_exponential((size, m_used))
    z = gen.standard_normal((size, 3))
    log_b, influence = _solve(score_law, n, e, z, gen)
    se = float(np.std(influence, ddof=1) / math.sqrt(size))
    return BetaHalf(n=n, beta_half=math.exp(log_b), log_se=se, m=_enumerated_width(n, m_used), size=size)


def _pick_m(score_law: ScoreLaw, n: int, m: int | None, accuracy: float, gen: np.random.Generator) -> int:
    """``m`` given, or from :func:`choose_m` (error of W_1 only) at a pilot beta_half."""
    if m is not None:
        return min(check_int(m, "m", minimum=1), n)
    pilot_m = min(PILOT_M, n)
    e = gen.standard_exponential((PILOT_SIZE, pilot_m))
    z = gen.standard_normal((PILOT_SIZE, 3))
    log_b, _ = _solve(score_law, n, e, z, gen, influence=False)
    beta = math.exp(log_b)
    m_auto = _choose_m(_pilot_grid(score_law, n, beta), n, beta, accuracy, full=False)
    if m_auto != n and m_auto > EXPONENT_M_MAX:
        import warnings

        from .sampler import AccuracyWarning

        warnings.warn(
            f"accuracy: m = {m_auto} is needed for accuracy={accuracy:g} at n={n}; capped at EXPONENT_M_MAX = "
            f"{EXPONENT_M_MAX}, so beta_half carries more than that error",
            AccuracyWarning,
            stacklevel=3,
        )
    return m_auto if m_auto == n else min(m_auto, EXPONENT_M_MAX)


def _solve(
    score_law: ScoreLaw, n: int, e: np.ndarray, z: np.ndarray, gen: np.random.Generator, influence: bool = True
) -> tuple[float, np.ndarray]:
    r"""Root of :math:`\bar W_1(\beta) = 1/2` on the draws ``(e, z)``, and per-draw influence values.

    ``e`` are the unit exponentials of the Rényi representation (their width
    is ``m``; with ``n`` keys the enumerated width is used when ``n - m`` is
    small), ``z`` the remainder normals.  The influence of draw ``i`` on
    :math:`\log\beta_{1/2}` is :math:`-(W_{1,i} - \bar W_1)/D` with
    :math:`D = d\bar W_1/d\log\beta` by a central difference.
    """
    base = _base_from_exponentials(n, e, z, gen)
    grids = [_covering_grid(score_law, None, float(base.v[:, 0].min()), float(base.v.max()), 0.0, None)]
    gaps = _gaps(grids[0], base.v)

    def w1(log_beta: float) -> np.ndarray:
        beta = math.exp(log_beta)
        grids[0] = _grid_for_base(score_law, grids[0], base, beta)  # widened only where this beta needs it
        return _max_weight(grids[0], base, gaps, beta)

    def f(log_beta: float) -> float:
        return float(np.mean(w1(log_beta))) - 0.5

    lo, hi = _bracket(f, _log_beta_start(score_law, n))
    log_b = optimize.brentq(f, lo, hi, xtol=_XTOL, rtol=4 * np.finfo(float).eps)
    if not influence:
        return log_b, np.zeros(0)
    w_mid = w1(log_b)
    slope = (np.mean(w1(log_b + _DLOG)) - np.mean(w1(log_b - _DLOG))) / (2 * _DLOG)
    return log_b, -(w_mid - w_mid.mean()) / slope


def _log_beta_start(score_law: ScoreLaw, n: int) -> float:
    """``log beta*(n)`` of the law's tail, where the root search starts (0 if the tail has none)."""
    try:
        return math.log(critical_beta(n, score_law.tail()))
    except (ValueError, OverflowError, TypeError):
        return 0.0


def _bracket(f, start: float) -> tuple[float, float]:
    """An interval ``[lo, hi]`` in log beta with ``f(lo) < 0 < f(hi)``, widening by factors of e^2."""
    lo = hi = start
    f_lo = f_hi = f(start)
    step = 2.0
    for _ in range(200):
        if f_lo < 0 < f_hi:
            return lo, hi
        if f_hi <= 0:
            lo, f_lo = hi, f_hi
            hi = hi + step
            f_hi = f(hi)
        else:
            hi, f_hi = lo, f_lo
            lo = lo - step
            f_lo = f(lo)
    raise RuntimeError("beta_half: no sign change of E W_1 - 1/2 found")  # pragma: no cover - n >= 3


# ---------------------------------------------------------------------------
# Fit
# ---------------------------------------------------------------------------


def fit_exponent(ns: Any, beta_halves: Any, gamma_hint: float | None, log_cov: Any = None) -> ExponentFit:
    r"""Least-squares fit of :math:`\log\beta_{1/2} = s\log n + b + g\,n^{-1/\gamma}` (docs/theory.md section 5).

    Ordinary least squares; without the correction term (``gamma_hint=None``)
    the fit is biased at small n.  The variance of :math:`s` is the sum of

    - the sandwich :math:`[(X^\top X)^{-1} X^\top C X (X^\top X)^{-1}]_{ss}`
      when the covariance ``C`` of the :math:`\log\beta_{1/2}` is given (the
      sampling noise, correlated across ``n`` when the draws are common), and
    - the classical residual-based variance
      :math:`[(X^\top X)^{-1}]_{ss}\, r^\top r/(N - k)` (misfit of the model
      and noise not in ``C``; needs more points than parameters).

    With common draws ``C`` is nearly rank one and tiny differences between
    the points are real structure, so the residual term is what keeps the
    error honest; with independent points it double counts at most a factor
    :math:`\sqrt 2`.  ``chi2`` reports :math:`r^\top C^+ r`.

    Parameters
    ----------
    ns, beta_halves : array_like
        The grid of ``n`` and the :math:`\beta_{1/2}(n)`.
    gamma_hint : float or None
        :math:`\gamma` of the correction :math:`n^{-1/\gamma}`; None fits a straight line.
    log_cov : array_like, optional
        Covariance matrix of :math:`\log\beta_{1/2}(n)`.

    Returns
    -------
    ExponentFit

    Examples
    --------
    >>> ns = np.array([1e3, 1e4, 1e5, 1e6, 1e7])
    >>> fit = fit_exponent(ns, np.exp(np.log(ns) - 0.7 + 3.0 / ns), 1.0)
    >>> round(fit.slope, 8), round(fit.intercept, 8), round(fit.correction, 6)
    (1.0, -0.7, 3.0)
    """
    ns = check_vector(ns, "ns")
    bh = check_vector(beta_halves, "beta_halves", ns.size)
    if np.any(ns < 1):
        raise InputError("ns: expected context lengths >= 1")
    if np.any(bh <= 0):
        raise InputError("beta_halves: expected positive inverse temperatures")
    columns = [np.log(ns), np.ones_like(ns)]
    if gamma_hint is not None:
        columns.append(ns ** (-1.0 / check_positive(gamma_hint, "gamma_hint")))
    x = np.column_stack(columns)
    k = x.shape[1]
    if ns.size < k + 1:
        raise InputError(f"ns: got {ns.size} points; the fit needs at least {k + 1} (more than its {k} parameters)")
    y = np.log(bh)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    xtx_inv = np.linalg.pinv(x.T @ x)
    dof = ns.size - k
    var_resid = xtx_inv[0, 0] * float(resid @ resid) / dof if dof > 0 else 0.0
    if log_cov is not None:
        cov = np.asarray(log_cov, dtype=float)
        if cov.shape != (ns.size, ns.size) or not np.all(np.isfinite(cov)):
            raise InputError(f"log_cov: got shape {cov.shape}; expected a finite ({ns.size}, {ns.size}) matrix")
        var_sandwich = (xtx_inv @ x.T @ cov @ x @ xtx_inv)[0, 0]
        chi2 = float(resid @ np.linalg.pinv(cov) @ resid)
        var, kind = var_sandwich + var_resid, "sandwich+residual"
    else:
        chi2 = None
        var, kind = var_resid, "residual"
    return ExponentFit(
        slope=float(coef[0]),
        slope_se=float(math.sqrt(max(var, 0.0))),
        intercept=float(coef[1]),
        correction=float(coef[2]) if k == 3 else 0.0,
        chi2=chi2,
        dof=dof,
        se_kind=kind,
    )


# ---------------------------------------------------------------------------
# The curve
# ---------------------------------------------------------------------------


def exponent_curve(
    law: KeyLaw | ScoreLaw,
    n_min: Any = 10**6,
    n_max: Any = 10**15,
    points: int = 10,
    size: int = 20000,
    rng: RngLike = 0,
    *,
    q: Any = None,
    m: int | None = None,
    accuracy: float = 1e-4,
) -> ExponentResult:
    r"""The exact finite-n critical curve :math:`\beta_{1/2}(n)` and its fitted exponent (docs/theory.md section 5).

    :math:`\beta_{1/2}` on ``points`` log-spaced ``n`` in ``[n_min, n_max]``,
    each on the same ``size`` draws (common random numbers across ``n`` too),
    then :func:`fit_exponent` with :math:`\gamma` of the law's tail and the
    covariance of the :math:`\log\beta_{1/2}` from the per-draw influence
    values.

    Parameters
    ----------
    law : KeyLaw or ScoreLaw
        Key law (with query ``q``, default :math:`e_1`) or score law, e.g.
        ``UniformScoreLaw(d)`` for uniform keys on :math:`S^{d-1}`.
    n_min, n_max : int
        Range of ``n``, ``3 <= n_min < n_max <= 1e18``.
    points : int
        Number of ``n``, >= 4 (the fit has three parameters and needs a residual).
    size : int
        Draws per point.
    rng : Generator, int, SeedSequence or None
        Randomness of the draws (default: seed 0).

    Returns
    -------
    ExponentResult
        ``to_dict()`` gives ``{"slope", "slope_se", "target", "table": [{"n", "beta_half",
        "beta_half_over_beta_star", ...}], ...}``.

    Examples
    --------
    >>> from attnscale.laws import UniformScoreLaw
    >>> r = exponent_curve(UniformScoreLaw(3), n_min=1e4, n_max=1e8, points=4, size=1000, rng=1)
    >>> r.target
    1.0
    >>> abs(r.slope - 1.0) < 5 * r.slope_se + 0.01
    True
    """
    score_law = as_score_law(law, q)
    n_lo = check_n(n_min, "n_min")
    n_hi = check_n(n_max, "n_max")
    if n_lo < 3 or n_lo >= n_hi:
        raise InputError(f"n_min, n_max: got {n_lo}, {n_hi}; expected 3 <= n_min < n_max <= 1e18")
    points = check_int(points, "points", minimum=4)
    size = check_int(size, "size", minimum=2)
    accuracy = check_positive(accuracy, "accuracy")
    gen = as_generator(rng)
    ns = _n_grid(n_lo, n_hi, points)
    rows, influences = _curve(score_law, ns, size, gen, m, accuracy)
    tail = score_law.tail()
    cov = np.cov(np.array(influences)) / size
    fit = fit_exponent(np.array(ns, dtype=float), [r.beta_half for r in rows], tail.gamma, log_cov=cov)
    target = 1.0 / tail.gamma
    meaningful, warning = _slope_verdict(rows, target)
    return ExponentResult(
        slope=fit.slope,
        slope_se=fit.slope_se,
        target=target,
        gamma=tail.gamma,
        fit=fit,
        table=tuple(rows),
        slope_meaningful=meaningful,
        warning=warning,
    )


#: Largest relative distance of every local slope from 1/gamma for the fitted slope to mean anything.
SLOPE_AGREEMENT = 0.25


def _slope_verdict(rows: list[ExponentRow], target: float) -> tuple[bool, str | None]:
    """Whether the fitted asymptotic slope means anything on this curve, and the warning if not."""
    local = [r.local_slope for r in rows if r.local_slope is not None]
    if not local:
        return False, "one point: no slope"
    worst = max(abs(s / target - 1.0) for s in local)
    if worst <= SLOPE_AGREEMENT:
        return True, None
    lo, hi = min(local), max(local)
    logn = (1.0 / math.log(rows[0].n), 1.0 / math.log(rows[-1].n))
    return False, (
        f"the fitted asymptotic slope is not meaningful over n = {rows[0].n:.3g}..{rows[-1].n:.3g}: the local slope "
        f"d log beta_half / d log n runs {lo:.4g}..{hi:.4g} against the limit 1/gamma = {target:.4g} "
        f"(the log-n rule's 1/ln n: {logn[0]:.4g}..{logn[1]:.4g}); read beta_half(n) itself"
    )


def _curve(
    score_law: ScoreLaw, ns: list[int], size: int, gen: np.random.Generator, m: int | None, accuracy: float
) -> tuple[list[ExponentRow], list[np.ndarray]]:
    """beta_half at each n on common draws, with local slopes, and the per-draw influence values."""
    # one m for every n (the largest picked), so that the curve is smooth in n on the common draws; an n
    # small enough to be enumerated does not count (its missing exponentials are drawn when it is solved),
    # else one n = 1000 would force m = 1000 on every other n
    picked = [(n, _pick_m(score_law, n, m, accuracy, gen)) for n in ns]
    sampled = [w for n, w in picked if _enumerated_width(n, w) != n]
    width = max(sampled) if sampled else max(w for _, w in picked)
    e = gen.standard_exponential((size, width))
    z = gen.standard_normal((size, 3))
    tail = score_law.tail()
    log_b, influences, ses = [], [], []
    for n in ns:
        lb, infl = _solve(score_law, n, e, z, gen)
        log_b.append(lb)
        influences.append(infl)
        ses.append(float(np.std(infl, ddof=1) / math.sqrt(size)))
    slopes = _local_slopes(np.log(np.array(ns, dtype=float)), np.array(log_b))
    rows = []
    for i, n in enumerate(ns):
        beta = math.exp(log_b[i])
        star = _beta_star_or_none(n, tail)
        rows.append(
            ExponentRow(
                n,
                beta,
                beta / star if star else math.nan,
                ses[i],
                _enumerated_width(n, width),
                local_slope=slopes[i],
                log_n_slope=1.0 / math.log(n),
            )
        )
    return rows, influences


def _beta_star_or_none(n: int, tail) -> float | None:
    try:
        return critical_beta(n, tail)
    except ValueError:
        return None


def _local_slopes(log_n: np.ndarray, log_b: np.ndarray) -> list[float | None]:
    """d log beta / d log n by central differences on a (possibly uneven) grid; one-sided at the ends."""
    if log_n.size < 2:
        return [None] * int(log_n.size)
    return [float(v) for v in np.gradient(log_b, log_n)]


def critical_curve(
    law: KeyLaw | ScoreLaw,
    ns: Any,
    size: int = 8000,
    rng: RngLike = 0,
    *,
    q: Any = None,
    m: int | None = None,
    accuracy: float = 1e-4,
) -> tuple[ExponentRow, ...]:
    r"""The finite-n critical curve :math:`\beta_{1/2}(n)` at the given ``n``, on common draws (section 7).

    The same top-``m`` draws serve every ``n``, so ratios such as
    :math:`\beta_{1/2}(n)/\beta_{1/2}(L)` (the finite-n critical rule) carry little noise.

    Parameters
    ----------
    law : KeyLaw or ScoreLaw
        Key law (with ``q``) or score law.
    ns : sequence of int
        Context lengths, each in ``[3, 1e18]``; duplicates are computed once.
    size : int
        Common draws.
    rng : Generator, int, SeedSequence or None
        Randomness (default: seed 0).

    Returns
    -------
    tuple of ExponentRow
        One row per distinct ``n``, increasing, with local slopes.

    Examples
    --------
    >>> from attnscale.laws import UniformScoreLaw
    >>> rows = critical_curve(UniformScoreLaw(64), [4096, 131072], size=4000)
    >>> round(rows[1].beta_half / rows[0].beta_half, 2)       # brute force: 1.350 +- 0.008
    1.35
    """
    score_law = as_score_law(law, q)
    values = np.atleast_1d(np.asarray(ns, dtype=object))
    if values.size == 0:
        raise InputError("ns: got an empty sequence; expected at least one context length")
    grid = sorted({check_n(v, "ns") for v in values.tolist()})
    if grid[0] < 3:
        raise InputError(f"ns: got {grid[0]}; beta_half needs n >= 3")
    size = check_int(size, "size", minimum=2)
    accuracy = check_positive(accuracy, "accuracy")
    rows, _ = _curve(score_law, grid, size, as_generator(rng), m, accuracy)
    return tuple(rows)


def _n_grid(n_lo: int, n_hi: int, points: int) -> list[int]:
    """``points`` integers log-spaced in ``[n_lo, n_hi]`` (distinct, increasing)."""
    raw = np.exp(np.linspace(math.log(n_lo), math.log(n_hi), points))
    ns = sorted({min(max(int(round(x)), n_lo), n_hi) for x in raw})
    if len(ns) < points:
        raise InputError(f"points: got {points}; only {len(ns)} distinct integers in [{n_lo}, {n_hi}]")
    return ns
