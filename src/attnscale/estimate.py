r"""Estimating the top of a score law from data (docs/theory.md section 2).

Given scores :math:`s_1, \dots, s_N` (or a query ``q`` and keys, scores
:math:`\langle q, K_i\rangle`), :func:`estimate_tail` says which tail class the
top of the scores is in and estimates its parameters with intervals:

- **atom plus gap**: the largest value repeats (real keys repeat; the query's own
  key), or the largest value stands far above a continuous tail of the others
  (posterior-predictive probability below ``ATOM_ALPHA``), or the scores take too
  few distinct values for a tail (the simplex model: one key at 1, the rest at
  :math:`\rho`).  The atom's size ``m`` and its gap :math:`\Delta` are read off the data.
- otherwise the top ``k`` *distinct* values are fitted by the peaks-over-threshold
  model below; the class is **Gumbel** when the interval of :math:`1/\gamma`
  reaches 0, **Weibull** otherwise.

Model.  In the Weibull class the gaps below the endpoint :math:`t = s^*` of the
top order statistics are :math:`t - S_{(i)} = (\Gamma_i / \Lambda)^{1/\gamma}`
(section 2, :math:`\Lambda = \kappa N`).  With :math:`x_1 > \dots > x_k` the top
distinct values, :math:`e_i = x_i - x_k` and :math:`\eta = 1/\gamma`, integrating
:math:`\Lambda` with the scale-invariant prior :math:`d\Lambda/\Lambda` leaves the
generalized Pareto likelihood of the excesses with shape :math:`-\eta` and scale
:math:`w = \eta (t - x_k)`, times :math:`1/w`:

.. math::
    p(\eta, w \mid x) \propto \prod_{i=1}^{k} \frac{1}{w - \eta e_i}
    \Bigl(1 - \frac{\eta e_i}{w}\Bigr)^{1/\eta},
    \qquad w > \eta e_1,

which is continuous at :math:`\eta = 0` (the Gumbel class: exponential
excesses, :math:`\prod w^{-1} e^{-e_i/w}`).  With a flat prior on
:math:`\eta \in [0, \eta_{\max}]` the posterior is computed on a grid in
:math:`(\eta, \operatorname{logit} y)`, :math:`y = (t - x_1)/(t - x_k)`, where the
integrand factorizes through one sum :math:`A(y) = \sum_i \log(1 - \rho_i (1-y))`,
:math:`\rho_i = e_i / e_1`, computed once.  Given :math:`(\eta, t)`,
:math:`\Lambda\,(t - x_k)^{\gamma} \sim \mathrm{Gamma}(k)` exactly.  Reported:
posterior medians; for :math:`\eta` the highest-density interval (so the
Gumbel boundary :math:`\eta = 0` is inside it when the data cannot exclude it);
equal-tailed intervals for the endpoint, :math:`\kappa` and :math:`\beta^*(n)`.
With a known endpoint (distances to a point: the local dimension) the pivot
:math:`\gamma H \sim \mathrm{Gamma}(k - 1)`, :math:`H = \sum_i \log\frac{t - x_k}{t - x_i}`,
gives exact intervals, and the point estimate of :math:`\gamma` is the maximum-likelihood
:math:`(k - 1)/H` (Hill; Levina-Bickel's local dimension): given :math:`t - x_k` the
:math:`k - 1` log-spacings are i.i.d. exponential with mean :math:`\eta`, so
:math:`H/(k-1)` is the unbiased, minimum-variance estimate of :math:`\eta`, and
:math:`(k-1)/H` is also the posterior mean of :math:`\gamma` (posterior
:math:`\mathrm{Gamma}(k-1, H)`).  The posterior median :math:`\approx (k - 4/3)/H` has a
0.6% smaller RMSE in :math:`\gamma` when the tail is an exact power law (k = 100), but a
larger one in :math:`\eta`, and a larger one in both wherever the finite-sample tail
bends below the power law (curved manifolds, uniform keys for d >= 5: the next-order
term of section 2), which is where local dimensions are estimated.

Repeated values below the top are fitted once each (the shape of the tail is that
of the distinct values); :math:`\kappa` counts every key, through the mean
multiplicity of the top ``k`` distinct values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from ._numerics.arrays import finite_or_none
from ._validate import (
    InputError,
    RngLike,
    as_generator,
    check_choice,
    check_finite,
    check_int,
    check_matrix,
    check_n,
    check_vector,
)
from .tails import ScoreTail, critical_beta

__all__ = [
    "CriticalBetaEstimate",
    "TailEstimate",
    "choose_k",
    "estimate_tail",
    "estimate_tails",
]

#: Default level of every interval.
LEVEL = 0.95
#: Upper end of the flat prior on eta = 1/gamma (gamma >= 0.05).
ETA_MAX = 20.0
#: Stand-in for eta = 0 on the grid (the likelihood is continuous there).
ETA_ZERO = 1e-9
#: Fewest distinct values fitted by the tail model; with fewer the scores are treated as atoms.
K_MIN = 10
#: Most distinct values fitted.
K_MAX = 400
#: Level of the intervals compared by the adaptive choice of k (known endpoint).
LEPSKI_LEVEL = 0.99
#: A single top value is an atom when the fitted tail of the others gives it a
#: posterior-predictive probability below this.
ATOM_ALPHA = 1e-3
#: Posterior draws kept for kappa and beta*(n).
N_DRAWS = 4000
#: Grid in logit y and its half-width.
_ELL = np.linspace(-60.0, 60.0, 3001)
_ELL.setflags(write=False)
#: Stage-1 grid in eta and the size of the refined grid.
_ETA_COARSE = np.concatenate([[ETA_ZERO], np.geomspace(1e-3, ETA_MAX, 160)])
_ETA_FINE = 321
#: Log-density drop that bounds the refined region.
_DROP = 30.0


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CriticalBetaEstimate:
    r"""Estimated critical inverse temperature of a context of ``n`` keys, with its interval.

    ``convention`` says which scale it is (docs/theory.md section 2):
    ``"weibull"``: :math:`(\kappa n)^{1/\gamma}`; ``"gumbel"``: the hazard rate at the
    top of ``n`` scores, :math:`a_n = \gamma (\kappa n)^{1/\gamma}` in the limit
    :math:`\gamma \to \infty`; ``"atom"``: :math:`\log((n - m)/m)/\Delta`.
    """

    n: int
    value: float
    ci: tuple[float, float]
    convention: str


@dataclass(frozen=True, eq=False)
class TailEstimate:
    r"""Estimated top of a score law (docs/theory.md section 2); see :func:`estimate_tail`.

    Attributes
    ----------
    kind : str
        ``"weibull"``, ``"gumbel"`` or ``"atom"``.
    endpoint, gamma, kappa : float
        Point estimates: posterior medians; with a known endpoint ``gamma`` is the
        maximum-likelihood :math:`(k-1)/H` (module docstring).  ``kappa`` is always the
        prefactor of the tail.  ``gumbel``: ``endpoint = gamma = inf``, ``kappa = nan``.
        ``atom``: the atom's score, ``gamma = 0``, ``kappa = nan`` (an atom has no
        prefactor; its size is ``atom_count``).
    endpoint_ci, gamma_ci, kappa_ci : tuple of float
        Intervals at ``level`` (``gamma_ci`` may end at ``inf``: the Gumbel boundary;
        ``kappa_ci`` is ``(nan, nan)`` for an atom).
    gap : float
        ``atom``: distance from the atom to the next score; ``nan`` otherwise.
    n_top : int
        Distinct values used by the fit (``k``), or the atom's size.
    n_total : int
        Number of keys ``N`` the scores stand for.
    n_distinct : int
        Distinct scores seen.
    level : float
        Level of the intervals.
    rest : TailEstimate or None
        ``atom``: the fit of the scores below the atom, when there are enough.
    atom_count : float or None
        ``atom``: the number ``m`` of keys in the atom; ``None`` for the other kinds.
    log_kappa, log_kappa_ci : float, tuple of float
        :math:`\log\kappa` and its interval (``nan`` for an atom).
    """

    kind: str
    endpoint: float
    endpoint_ci: tuple[float, float]
    gamma: float
    gamma_ci: tuple[float, float]
    kappa: float
    kappa_ci: tuple[float, float]
    gap: float
    n_top: int
    n_total: int
    n_distinct: int
    level: float
    rest: TailEstimate | None = None
    log_kappa: float = math.nan
    log_kappa_ci: tuple[float, float] = (math.nan, math.nan)
    _eta: np.ndarray = field(default=None, repr=False)
    _log_uk: np.ndarray = field(default=None, repr=False)
    _log_z: np.ndarray = field(default=None, repr=False)
    _log_mult: float = field(default=0.0, repr=False)
    _threshold: float = field(default=math.nan, repr=False)
    atom_count: float | None = None

    def critical_beta(self, n: Any, convention: str | None = None) -> CriticalBetaEstimate:
        r"""Critical :math:`\beta^*(n)` for a context of ``n`` keys like these, with its interval.

        Weibull: :math:`(\kappa n)^{1/\gamma}`; Gumbel: the hazard rate at the top of
        ``n`` scores (the scale ``a_n`` of :func:`attnscale.tails.critical_beta`);
        both from the posterior draws, so the interval carries the uncertainty of
        :math:`\gamma`, the endpoint and :math:`\kappa` together.  Atom: exact given
        the observed atom (docs/theory.md section 2).  ``convention`` (``"weibull"``
        or ``"gumbel"``) overrides the one of the estimated kind, e.g. to compare
        a Weibull estimate with a Gumbel truth.

        Examples
        --------
        >>> est = estimate_tail(np.random.default_rng(0).uniform(-1.0, 1.0, 5000))
        >>> b = est.critical_beta(5000)   # truth (kappa n)^(1/gamma) = 2500
        >>> bool(b.ci[0] < 2500 < b.ci[1])
        True
        """
        n = check_n(n)
        if self.kind == "atom":
            value = critical_beta(n, self.tail())
            return CriticalBetaEstimate(n=n, value=value, ci=(value, value), convention="atom")
        convention = self.kind if convention is None else check_choice(convention, "convention", ("weibull", "gumbel"))
        log_bstar = self._eta * (self._log_z + self._log_mult + math.log(n) - math.log(self.n_total)) - self._log_uk
        if convention == "gumbel":
            log_bstar = log_bstar - np.log(self._eta)
        alpha = 0.5 * (1.0 - self.level)
        lo, mid, hi = np.exp(np.quantile(log_bstar, [alpha, 0.5, 1.0 - alpha]))
        return CriticalBetaEstimate(n=n, value=float(mid), ci=(float(lo), float(hi)), convention=convention)

    def tail(self) -> ScoreTail:
        """The point estimate as a :class:`~attnscale.tails.ScoreTail` (Weibull and atom kinds).

        A Gumbel estimate has no finite endpoint or exponent to report: use
        :meth:`critical_beta`, which carries its scale.
        """
        if self.kind == "gumbel":
            raise InputError(
                "kind: the estimate is of the gumbel class; its scale is given by critical_beta(n), "
                "not by a (endpoint, gamma, kappa) triple"
            )
        if self.kind == "atom":
            return ScoreTail(self.endpoint, 0.0, kind="atom", gap=self.gap, atom_count=self.atom_count)
        return ScoreTail.from_log_kappa(self.endpoint, self.gamma, self.log_kappa, kind="weibull")

    def to_dict(self, ns: Any = None) -> dict[str, Any]:
        """JSON-able dict of this estimate, with ``beta_star`` at each ``n`` in ``ns`` (``inf``/``nan`` as ``None``).

        ``ns`` defaults to ``[n_total]``; an atom adds ``"gap"`` and ``"atom_count"``.

        Examples
        --------
        >>> est = estimate_tail([1.0, 0.2, 0.2, 0.2, 0.2])
        >>> d = est.to_dict([101])
        >>> d["kind"], d["atom_count"], d["kappa"]
        ('atom', 1.0, None)
        """
        ns = [self.n_total] if ns is None else [check_n(x, "n") for x in np.atleast_1d(ns).tolist()]
        beta_star = {}
        for n in ns:
            b = self.critical_beta(n)
            beta_star[str(n)] = {"value": finite_or_none(b.value), "ci": [finite_or_none(b.ci[0]), finite_or_none(b.ci[1])], "convention": b.convention}
        out = {
            "endpoint": finite_or_none(self.endpoint),
            "endpoint_ci": [finite_or_none(x) for x in self.endpoint_ci],
            "gamma": finite_or_none(self.gamma),
            "gamma_ci": [finite_or_none(x) for x in self.gamma_ci],
            "kappa": finite_or_none(self.kappa),
            "kappa_ci": [finite_or_none(x) for x in self.kappa_ci],
            "log_kappa": finite_or_none(self.log_kappa),
            "log_kappa_ci": [finite_or_none(x) for x in self.log_kappa_ci],
            "kind": self.kind,
            "n_top": self.n_top,
            "n_total": self.n_total,
            "level": self.level,
            "beta_star": beta_star,
        }
        if self.kind == "atom":
            out["gap"] = finite_or_none(self.gap)
            out["atom_count"] = self.atom_count
        return out


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def choose_k(n_distinct: int, n_total: int | None = None) -> int:
    r"""Number of top distinct values fitted: :math:`\lfloor\sqrt{D}\rfloor` clipped to ``[K_MIN, K_MAX]``.

    ``D`` is the number of distinct scores, scaled up by ``n_total / n_distinct``
    when only the top of ``n_total`` scores is given (never more than the
    distinct values at hand).

    The model is the first-order tail; its relative bias grows like
    :math:`(k/N)^{1/\gamma}` while the standard error falls like :math:`k^{-1/2}`,
    and :math:`k = \sqrt{N}` keeps the bias below the error for the exponents met
    in practice (:func:`attnscale.experiments.calibration.calibration_table` measures it;
    docs/theory.md section 2).

    Examples
    --------
    >>> choose_k(10_000), choose_k(50), choose_k(10**8), choose_k(1000, n_total=10**12)
    (100, 10, 400, 400)
    """
    d = check_int(n_distinct, "n_distinct", minimum=1)
    scale = d if n_total is None else max(d, check_int(n_total, "n_total", minimum=1))
    return int(min(max(math.isqrt(scale), K_MIN), K_MAX, d))


def estimate_tail(
    scores_or_q: Any,
    keys: Any = None,
    *,
    n_total: Any = None,
    k: Any = None,
    endpoint: Any = None,
    level: float = LEVEL,
    rng: RngLike = 0,
) -> TailEstimate:
    r"""Estimate the top of a score law from scores, or from a query and keys (docs/theory.md section 2).

    Parameters
    ----------
    scores_or_q : array_like
        Scores (1-D), or with ``keys`` one query of shape ``(d,)`` (scores
        :math:`\langle q, K_i\rangle`; the query need not be a unit vector).  For
        several queries use :func:`estimate_tails`.
    keys : array_like, optional
        Keys, shape ``(N, d)``.
    n_total : int, optional
        Number of keys the scores stand for, when only the top scores are given
        (default: the number of scores).
    k : int, optional
        Top distinct values fitted; default :func:`choose_k`.
    endpoint : float, optional
        Known endpoint (e.g. 0 for minus distances to a point): then only
        :math:`\gamma` and :math:`\kappa` are estimated, with exact intervals.
    level : float
        Level of the intervals, in (0, 1).
    rng : Generator, int, SeedSequence or None
        Randomness of the posterior draws of :math:`\kappa` and :math:`\beta^*`
        (default seed 0: the result is a function of the data).

    Returns
    -------
    TailEstimate

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> est = estimate_tail(rng.uniform(-1.0, 1.0, 10_000))   # uniform keys on S^2: gamma = 1, s* = 1
    >>> est.kind, bool(est.gamma_ci[0] < 1.0 < est.gamma_ci[1]), round(est.endpoint, 3)
    ('weibull', True, 1.0)
    >>> estimate_tail([1.0, 0.2, 0.2, 0.2, 0.2]).kind            # simplex model: self key + ties
    'atom'
    """
    level = _check_level(level)
    gen = as_generator(rng)
    if keys is not None:
        kmat = check_matrix(keys, "keys")
        qv = check_vector(scores_or_q, "q", kmat.shape[1])
        return _estimate(kmat @ qv, n_total, k, endpoint, level, gen)
    scores = check_vector(scores_or_q, "scores")
    return _estimate(scores, n_total, k, endpoint, level, gen)


def estimate_tails(
    queries: Any,
    keys: Any,
    *,
    n_total: Any = None,
    k: Any = None,
    endpoint: Any = None,
    level: float = LEVEL,
    rng: RngLike = 0,
) -> tuple[TailEstimate, ...]:
    r""":func:`estimate_tail` for each row of a query matrix, on the same keys (docs/theory.md section 2).

    Parameters
    ----------
    queries : array_like
        Queries, shape ``(m, d)`` (need not be unit vectors).
    keys : array_like
        Keys, shape ``(N, d)``.
    n_total, k, endpoint, level, rng
        As in :func:`estimate_tail`; one generator serves the queries in turn.

    Returns
    -------
    tuple of TailEstimate
        One per query, in order.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> keys = rng.standard_normal((4000, 3))
    >>> keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    >>> [e.kind for e in estimate_tails(np.eye(3)[:2], keys)]
    ['weibull', 'weibull']
    """
    level = _check_level(level)
    gen = as_generator(rng)
    kmat = check_matrix(keys, "keys")
    qs = check_matrix(queries, "q", cols=kmat.shape[1])
    return tuple(_estimate(kmat @ row, n_total, k, endpoint, level, gen) for row in qs)


def _check_level(level: Any) -> float:
    level = check_finite(level, "level")
    if not 0.0 < level < 1.0:
        raise InputError(f"level: got {level!r}; expected a number in (0, 1)")
    return level


# ---------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------


def _estimate(scores: np.ndarray, n_total: Any, k: Any, endpoint: Any, level: float, gen: np.random.Generator) -> TailEstimate:
    if not np.all(np.isfinite(scores)):
        raise InputError("scores: contain NaN or infinite values")
    if scores.size < 2:
        raise InputError(f"scores: got {scores.size} value(s); expected at least 2")
    values, counts = np.unique(scores, return_counts=True)
    values, counts = values[::-1], counts[::-1]  # decreasing
    n_all = int(counts.sum())
    big_n = n_all if n_total is None else check_int(n_total, "n_total", minimum=n_all)
    if endpoint is not None:
        t = check_finite(endpoint, "endpoint")
        if values[0] >= t:
            raise InputError(
                f"endpoint: got {t!r}, but {int(counts[0])} score(s) reach {values[0]!r}; "
                "with a known endpoint every score must lie strictly below it"
            )
        k_used = _lepski_k(values, t) if k is None else _k(k, values.size)
        return _fit_known(values, counts, t, k_used, big_n, level, gen)
    if values.size == 1:
        raise InputError(f"scores: all {n_all} scores equal {values[0]!r}; there is no tail to estimate")
    if counts[0] >= 2 or values.size < K_MIN + 1:
        return _atom(values, counts, big_n, level, gen, k)
    scale = _scale(values.size, n_all, big_n)
    fit = _fit_unknown(values, counts, _k(k, values.size, scale), big_n, level, gen)
    rest = _fit_unknown(values[1:], counts[1:], _k(k, values.size - 1, scale), big_n, level, gen)
    if _tail_probability(rest, values[0], values[1]) < ATOM_ALPHA:
        return _atom(values, counts, big_n, level, gen, k, rest=rest)
    return fit


def _k(k: Any, n_distinct: int, n_scale: int | None = None) -> int:
    if k is None:
        return choose_k(n_distinct, n_scale)
    k = check_int(k, "k", minimum=3)
    if k > n_distinct:
        raise InputError(f"k: got {k}; only {n_distinct} distinct scores are available")
    return k


def _lepski_k(values: np.ndarray, t: float) -> int:
    r"""Adaptive ``k`` for a known endpoint (Lepski's rule, docs/theory.md section 2).

    On the ladder :math:`k_j = \lfloor 10 \cdot 2^{j/2} \rfloor \le \min(D, K_{MAX})`, the exact
    ``LEPSKI_LEVEL`` intervals of :math:`\gamma` (pivot :math:`\gamma H_k \sim \mathrm{Gamma}(k-1)`)
    are intersected in turn; the chosen ``k`` is the largest before the intersection
    becomes empty, i.e. the largest one whose estimate still agrees with every
    smaller, less biased one.
    """
    from scipy import stats  # heavy: loaded where it is used

    top = min(values.size, K_MAX)
    if top <= K_MIN:
        return max(3, top)
    from scipy import stats  # scipy.stats is slow to import: only where it is used

    ladder = sorted({int(10 * 2 ** (j / 2)) for j in range(40) if 10 * 2 ** (j / 2) <= top} | {top})
    log_u = np.log(t - values[:top])
    lo, hi = 0.0, math.inf
    chosen = ladder[0]
    tail = 0.5 * (1.0 - LEPSKI_LEVEL)
    for kk in ladder:
        h = float(np.sum(log_u[kk - 1] - log_u[:kk]))
        g_lo, g_hi = stats.gamma.ppf([tail, 1.0 - tail], kk - 1) / h
        lo, hi = max(lo, g_lo), min(hi, g_hi)
        if lo > hi:
            break
        chosen = kk
    return chosen


def _scale(n_distinct: int, n_all: int, big_n: int) -> int:
    """Distinct scores the full sample of ``big_n`` would have, at the observed rate."""
    return max(n_distinct, int(round(n_distinct * (big_n / n_all))))


def _atom(values, counts, big_n, level, gen, k, rest=None) -> TailEstimate:
    """Atom of ``counts[0]`` keys at ``values[0]``, gap to the next distinct value."""
    if rest is None and values.size - 1 >= K_MIN + 1:
        rest = _fit_unknown(values[1:], counts[1:], _k(k, values.size - 1), big_n, level, gen)
    m = float(counts[0])
    top = float(values[0])
    gap = float(values[0] - values[1])
    return TailEstimate(
        kind="atom",
        endpoint=top,
        endpoint_ci=(top, top),
        gamma=0.0,
        gamma_ci=(0.0, 0.0),
        kappa=math.nan,
        kappa_ci=(math.nan, math.nan),
        atom_count=m,
        gap=gap,
        n_top=int(counts[0]),
        n_total=big_n,
        n_distinct=int(values.size),
        level=level,
        rest=rest,
    )


def _top(values: np.ndarray, counts: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Top ``k`` distinct values and ``log`` of their mean multiplicity."""
    x = values[:k]
    return x, math.log(float(counts[:k].sum()) / k)


def _fit_known(values, counts, t, k, big_n, level, gen) -> TailEstimate:
    r"""Known endpoint: :math:`\gamma H \sim \mathrm{Gamma}(k-1)`, :math:`H = \sum_i \log(u_k/u_i)`.

    Point estimate :math:`\hat\gamma = (k-1)/H` (maximum likelihood), equal-tailed exact interval;
    the point lies inside the interval for every ``level >= 0.19`` (``k >= 3``:
    :math:`P(G \le k - 1) \le 0.594` for :math:`G \sim \mathrm{Gamma}(k-1)`).
    """
    from scipy import stats  # heavy: loaded where it is used

    x, log_mult = _top(values, counts, k)
    log_u = np.log(t - x)
    h = float(np.sum(log_u[-1] - log_u))
    alpha = 0.5 * (1.0 - level)
    g_lo, g_hi = stats.gamma.ppf([alpha, 1.0 - alpha], k - 1) / h
    g_mid = (k - 1) / h
    g_draw = gen.standard_gamma(k - 1, N_DRAWS) / h
    eta = 1.0 / g_draw
    log_z = np.log(gen.standard_gamma(k, N_DRAWS))
    log_uk = np.full(N_DRAWS, log_u[-1])
    log_kappa = log_z - g_draw * log_uk + log_mult - math.log(big_n)
    lk = np.quantile(log_kappa, [alpha, 0.5, 1.0 - alpha])
    draws = _Draws(eta, log_uk, log_z, log_mult)
    return _fitted("weibull", (t, t, t), (g_lo, g_mid, g_hi), lk, k, big_n, values, level, draws)


class _Draws(NamedTuple):
    """Posterior draws behind :meth:`TailEstimate.critical_beta`: eta, log of t - x_k, log Gamma(k), log multiplicity."""

    eta: np.ndarray
    log_uk: np.ndarray
    log_z: np.ndarray
    log_mult: float


def _fitted(kind, endpoint, gamma, log_kappa, k, big_n, values, level, draws: _Draws, threshold=math.nan) -> TailEstimate:
    r"""A fitted (Weibull or Gumbel) estimate from ``(low, point, high)`` of the endpoint, gamma and log kappa.

    :math:`\kappa` is :math:`e^{\log\kappa}` of each (``nan`` stays ``nan``, ``-inf`` gives 0).
    """
    with np.errstate(over="ignore"):
        kappa = np.exp(np.asarray(log_kappa, dtype=float))
    lo, mid, hi = (tuple(float(x) for x in v) for v in zip(endpoint, gamma, log_kappa, kappa))
    return TailEstimate(
        kind=kind,
        endpoint=mid[0],
        endpoint_ci=(lo[0], hi[0]),
        gamma=mid[1],
        gamma_ci=(lo[1], hi[1]),
        kappa=mid[3],
        kappa_ci=(lo[3], hi[3]),
        log_kappa=mid[2],
        log_kappa_ci=(lo[2], hi[2]),
        gap=math.nan,
        n_top=k,
        n_total=big_n,
        n_distinct=int(values.size),
        level=level,
        _eta=draws.eta,
        _log_uk=draws.log_uk,
        _log_z=draws.log_z,
        _log_mult=draws.log_mult,
        _threshold=threshold,
    )


def _log_a(x: np.ndarray, ell: np.ndarray) -> np.ndarray:
    r""":math:`A(\ell) = \sum_i \log(1 - \rho_i u)`, :math:`u = 1 - y`, :math:`y = \mathrm{expit}(\ell)`.

    ``1 - rho_i u`` is formed as ``(x_1 - x_i)/e_1 + rho_i y`` where ``y < 1/2`` and
    as ``log1p(-rho_i u)`` elsewhere, so neither end loses precision; the top
    term is :math:`\log y` exactly.
    """
    e1 = x[0] - x[-1]
    rho = (x[1:] - x[-1]) / e1
    a = (x[0] - x[1:]) / e1
    y = special.expit(ell)
    u = special.expit(-ell)
    low = ell < 0.0
    out = special.log_expit(ell).copy()
    if np.any(low):
        out[low] += np.log(a[None, :] + rho[None, :] * y[low, None]).sum(axis=1)
    high = ~low
    if np.any(high):
        out[high] += np.log1p(-rho[None, :] * u[high, None]).sum(axis=1)
    return out


def _log_density(eta: np.ndarray, ell: np.ndarray, log_a: np.ndarray, k: int, e1: float) -> np.ndarray:
    r"""Log posterior density on the ``(eta, logit y)`` grid (module docstring), up to a constant.

    :math:`-(k-1)\log(\eta e_1) + (k-1)\log u + \log y + (1/\eta - 1) A`.
    """
    log_u = special.log_expit(-ell)
    log_y = special.log_expit(ell)
    eta = eta[:, None]
    return -(k - 1) * np.log(eta * e1) + (k - 1) * log_u[None, :] + log_y[None, :] + (1.0 / eta - 1.0) * log_a[None, :]


def _fit_unknown(values, counts, k, big_n, level, gen) -> TailEstimate:
    """Unknown endpoint: the grid posterior of the module docstring."""
    x, log_mult = _top(values, counts, k)
    e1 = float(x[0] - x[-1])
    log_a = _log_a(x, _ELL)
    # stage 1: where is the mass in eta?
    coarse = _log_density(_ETA_COARSE, _ELL, log_a, k, e1)
    marg = special.logsumexp(coarse, axis=1)
    keep = np.flatnonzero(marg >= marg.max() - _DROP)
    lo = 0.0 if keep[0] == 0 else _ETA_COARSE[keep[0] - 1]
    hi = _ETA_COARSE[min(keep[-1] + 1, _ETA_COARSE.size - 1)]
    eta = np.linspace(lo, hi, _ETA_FINE)
    eta[0] = max(eta[0], ETA_ZERO)
    dens = _log_density(eta, _ELL, log_a, k, e1)
    dens -= dens.max()
    post = np.exp(dens)
    post /= post.sum()
    p_eta = post.sum(axis=1)
    p_ell = post.sum(axis=0)
    alpha = 0.5 * (1.0 - level)
    # eta: median and highest-density interval
    eta_med = _grid_quantile(eta, p_eta, 0.5)
    order = np.argsort(-p_eta, kind="stable")
    inside = order[: int(np.searchsorted(np.cumsum(p_eta[order]), level)) + 1]
    eta_lo, eta_hi = eta[inside.min()], eta[inside.max()]
    gumbel = inside.min() == 0 and lo == 0.0
    # endpoint t = x_k + e1 / u, increasing in ell
    log_uk_grid = math.log(e1) - special.log_expit(-_ELL)
    t_lo, t_mid, t_hi = (x[-1] + math.exp(_grid_quantile(log_uk_grid, p_ell, p)) for p in (alpha, 0.5, 1.0 - alpha))
    # draws: cells of the grid, jittered within the cell
    flat = gen.choice(post.size, size=N_DRAWS, p=post.ravel())
    j, l = np.divmod(flat, _ELL.size)
    d_eta = eta[1] - eta[0]
    d_ell = _ELL[1] - _ELL[0]
    eta_d = np.clip(eta[j] + d_eta * (gen.random(N_DRAWS) - 0.5), ETA_ZERO, None)
    ell_d = _ELL[l] + d_ell * (gen.random(N_DRAWS) - 0.5)
    log_uk = math.log(e1) - special.log_expit(-ell_d)
    log_z = np.log(gen.standard_gamma(k, N_DRAWS))
    log_kappa = log_z - log_uk / eta_d + log_mult - math.log(big_n)
    lk_lo, lk_mid, lk_hi = np.quantile(log_kappa, [alpha, 0.5, 1.0 - alpha])
    draws = _Draws(eta_d, log_uk, log_z, log_mult)
    if gumbel:
        return _fitted("gumbel", (t_lo, math.inf, math.inf), (1.0 / eta_hi, math.inf, math.inf), (-math.inf, math.nan, lk_hi),
                       k, big_n, values, level, draws, float(x[-1]))
    return _fitted("weibull", (t_lo, t_mid, t_hi), (1.0 / eta_hi, 1.0 / eta_med, 1.0 / eta_lo), (lk_lo, lk_mid, lk_hi),
                   k, big_n, values, level, draws, float(x[-1]))


def _grid_quantile(grid: np.ndarray, p: np.ndarray, q: float) -> float:
    """Quantile ``q`` of a distribution with masses ``p`` at increasing ``grid`` points (linear in between)."""
    c = np.cumsum(p)
    c = c / c[-1]
    return float(np.interp(q, c, grid))


def _tail_probability(rest: TailEstimate, top: float, second: float) -> float:
    r"""Posterior-predictive :math:`P(S_{(1)} \ge top \mid S_{(2)} = second)` under the fit of the others.

    For a tail with endpoint :math:`t` and exponent :math:`\gamma` the largest score
    given the second largest :math:`x_2` has
    :math:`P(S_{(1)} > s) = ((t - s)/(t - x_2))^{\gamma}` (0 beyond ``t``); this is
    averaged over the posterior draws of the fit of the scores below the top
    (for :math:`\gamma \to \infty` it is :math:`e^{-(s - x_2)/w}`).
    """
    t = rest._threshold + np.exp(rest._log_uk)
    gap2 = t - second
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(gap2 > 0.0, (top - second) / np.where(gap2 > 0.0, gap2, 1.0), np.inf)
        log_ratio = np.where(step < 1.0, np.log1p(-np.minimum(step, 1.0)) / rest._eta, -np.inf)
    return float(np.mean(np.exp(log_ratio)))
