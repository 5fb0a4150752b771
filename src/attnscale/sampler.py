r"""Top-weight sampling at any context length: exact top ``m`` keys, Gaussian remainder (docs/theory.md section 4).

Only the top of the score distribution matters near and above criticality,
and the top ``m`` of ``n`` i.i.d. scores can be drawn directly in O(m) work
whatever ``n`` is.  The draws are exact in law for the top ``m`` keys; the
other ``n - m`` keys enter through a Gaussian approximation of their sums
(step 3), whose error :func:`choose_m` bounds (exact in law only when all
``n`` keys are enumerated, step 4).  At the default ``m`` the laws of ``W_1``
and ``n_eff`` match full enumeration within sampling error (measured:
``tests/test_sampler.py``, and a claim of the report's critical_law section);
a forced ``m = 16`` at d = 3, n = 3000, c = 0.2 does not (KS p = 3e-4 at 40k draws).

1. **Rényi.**  The ``m`` smallest of ``n`` i.i.d. uniforms are
   :math:`U_{(k)} = \Gamma_k/\Gamma_{n+1}`, with :math:`\Gamma_k` the partial
   sums of unit exponentials and :math:`\Gamma_{n+1} = \Gamma_m + \mathrm{Gamma}(n+1-m)`.
   Everything is carried as :math:`v = \operatorname{logit} U`, so that
   :math:`U` near 0 *and* near 1 keep their relative accuracy.
2. **Quantiles.**  The top gaps are :math:`G_{(k)} = F_G^{-1}(U_{(k)})`
   (``ScoreLaw.gap_ppf``, robust for tiny probabilities).  For speed the
   quantile is tabulated as a cubic spline of :math:`\log G` in :math:`v` on
   a lattice of spacing ``PANEL``, built only over the logits the draws and
   the remainder need (widened lazily, each point's ``gap_ppf`` computed
   once), and *verified* against ``gap_ppf`` at the four Gauss-Legendre nodes
   of every cell; in cells where it misses by more than ``QUANTILE_RTOL / 4``
   (for the uniform law: around the median, and at ``p`` within 1e-15 of 1,
   where ``p`` itself is rounded) ``gap_ppf`` is called directly.  A relative
   error :math:`\epsilon` of a gap moves an exponent by
   :math:`\epsilon\,\beta G`.
3. **The other** :math:`N = n - m` **keys** are i.i.d. from the law
   conditioned on :math:`G > G_{(m)}`, i.e. :math:`U > U_{(m)} = P`.  With
   :math:`X = e^{-\beta (G - G_{(m)})} \in (0, 1]` and
   :math:`Y = \beta (G - G_{(m)})`, the three sums that the statistics need,
   :math:`(\sum X, \sum X^2, \sum XY)`, are drawn as a Gaussian vector with
   their exact conditional mean and covariance (central limit theorem),
   built from the conditional moments

   .. math::
       m_{a,b}(P) = \frac{1}{1-P}\int_P^1 e^{-a\beta (G(p) - G(P))}
       \bigl(\beta (G(p) - G(P))\bigr)^b\,dp ,
       \qquad a \le 4,\ b \le 2 .

   The integrals are in the variable :math:`v = \operatorname{logit} p`
   (:math:`dp = p(1-p)\,dv`), where the integrand is smooth at both ends for
   every law with a smooth quantile, by 4-point Gauss-Legendre on the
   lattice cells, each split into pieces across which :math:`y` rises by at
   most ``KAPPA_SUB``: a table at the lattice points (every shift between two
   reference points is a sum of positive terms, so no cancellation even at
   :math:`\beta = 10^{12}`), completed per draw by the partial cell above
   :math:`P`.  The normalization :math:`1 - P` is computed by the same rule,
   so :math:`\beta = 0` gives exactly uniform weights.  Where :math:`y` rises
   by more than ``KAPPA_LAGUERRE`` across the partial cell, Gauss-Laguerre in
   :math:`y` with the density from the verified spline (``DENSITY_RTOL``)
   replaces it.  Measured against mpmath: 1e-9 relative, plus the spline's
   share :math:`2a\beta G\,\epsilon`.
4. **Enumeration.**  When :math:`n - m \le` ``ENUMERATE_MAX`` all ``n`` order
   statistics are drawn (no Gaussian term: exact in law).

The choice of ``m`` (:func:`choose_m`) bounds the error of the Gaussian step:
for a sum of :math:`N` i.i.d. terms with range :math:`r` and standard
deviation :math:`\sigma`, the Wasserstein-1 distance between its law and the
Gaussian with the same mean and variance is at most
:math:`\min(r, 2\sqrt{N}\sigma)` (Stein's method: :math:`E|Z-\mu|^3/\sigma^2 \le r`),
and the statistics are Lipschitz in the sums; ``m`` is the smallest on a
ladder for which the implied errors of :math:`W_1`, :math:`\log n_\mathrm{eff}`
and the entropy are below ``accuracy`` at the typical top configuration.

The quantile lattice and the conditional moments (steps 2 and 3, with their
constants ``PANEL``, ``QUANTILE_RTOL``, ``KAPPA_SUB``, ...) live in
:mod:`attnscale.sampler_lattice`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ._validate import (
    InputTypeError,
    InputError,
    RngLike,
    as_generator,
    check_beta,
    check_int,
    check_n,
    check_positive,
    check_unit_vector,
)
from .laws import KeyLaw, ScoreLaw
from .sampler_lattice import _covering_grid, _gaps, _Grid, _moments_at, _overflow_is_capped, _Y_CAP

__all__ = ["AccuracyWarning", "TopSample", "choose_m", "sample_top"]


class AccuracyWarning(UserWarning):
    """The largest ``m`` allowed does not meet the requested accuracy of the Gaussian remainder."""


#: When ``n - m`` is at most this, all ``n`` keys are enumerated exactly.
ENUMERATE_MAX = 1024
#: Smallest and largest ``m`` chosen by :func:`choose_m`.
M_MIN = 16
M_MAX = 8192
#: Working block (draws x keys) of one vectorized pass.
CHUNK_ELEMENTS = 2**21
#: Powers ``a`` and ``b`` of the conditional moments m_{a,b}; W_1 alone needs a <= 2, b = 0.
_A_FULL, _B_FULL = 4, 3
_A_W1, _B_W1 = 2, 1


# ---------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TopSample:
    r"""Draws of the top attention weights and summary statistics (docs/theory.md section 4).

    Attributes
    ----------
    weights : ndarray, shape (size, m)
        Ordered top weights :math:`W_1 \ge \dots \ge W_m` of each draw.
    gaps : ndarray, shape (size, m)
        The top gaps :math:`G_{(1)} \le \dots \le G_{(m)}` below the score
        endpoint (scores are ``endpoint - gaps``).
    remainder : ndarray, shape (size,)
        Share of the mass carried by the other ``n - m`` keys (0 when all
        keys are enumerated); each row of ``weights`` sums to ``1 - remainder``.
    max_weight, n_eff, entropy : ndarray, shape (size,)
        :math:`W_1`, :math:`1/\sum_i w_i^2` and :math:`-\sum_i w_i\log w_i`
        over all ``n`` keys.
    m : int
        Keys sampled exactly (``n`` when enumerated).
    n : int
        Context length.
    beta : float
        Inverse temperature.
    exact : bool
        True when all ``n`` keys were enumerated (no Gaussian remainder).
    accuracy_met : bool or None
        Whether the chosen ``m`` meets the requested ``accuracy`` (False: ``m`` was capped at
        ``M_MAX`` and an :class:`AccuracyWarning` was issued); None when ``m`` was given.
    output : ndarray, shape (size, d), or None
        With ``output=True``: the output :math:`x = \sum_i w_i K_i` (identity values).
    tangential : ndarray, shape (size, dim), or None
        Its tangential part in the coordinates of :meth:`attnscale.laws.KeyLaw.tangent_frame`
        (kept apart from ``output`` so that it keeps its relative accuracy at any ``n``).
    radial_deficit : ndarray, shape (size,), or None
        :math:`1 - \langle x, q\rangle = \sum_i w_i G_i`, likewise.

    Arrays compare by identity (``eq=False``).
    """

    weights: np.ndarray
    gaps: np.ndarray
    remainder: np.ndarray
    max_weight: np.ndarray
    n_eff: np.ndarray
    entropy: np.ndarray
    m: int
    n: int
    beta: float
    exact: bool
    output: np.ndarray | None = None
    tangential: np.ndarray | None = None
    radial_deficit: np.ndarray | None = None
    accuracy_met: bool | None = None


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def sample_top(
    law: KeyLaw | ScoreLaw,
    n: Any,
    beta: float,
    size: int,
    rng: RngLike = None,
    m: int | None = None,
    *,
    q: Any = None,
    accuracy: float = 1e-3,
    output: bool = False,
) -> TopSample:
    r"""Draws of the attention weights of ``n`` i.i.d. keys, at any ``n``: exact top ``m``, Gaussian remainder.

    Implements docs/theory.md section 4 (see the module docstring for the
    method).  The top ``m`` keys are exact in law; the other ``n - m`` are a
    Gaussian approximation (exact only when all keys are enumerated); when
    the default ``m`` cannot meet ``accuracy`` it is capped at ``M_MAX``, the
    result says so (``accuracy_met=False``) and an :class:`AccuracyWarning` is issued.  With scores :math:`S_i` and gaps :math:`G_i = s^* - S_i`, the
    weights are :math:`w_i = e^{-\beta (G_i - G_{(1)})}/T`; the top ``m`` are
    drawn exactly by Rényi's representation and the quantile function, the
    other ``n - m`` enter through a Gaussian with their exact conditional
    moments (or exactly, when ``n - m <= ENUMERATE_MAX``).  O(m) work per draw,
    vectorized over draws.

    Parameters
    ----------
    law : KeyLaw or ScoreLaw
        Key law (turned into its score law with query ``q``) or score law.
    n : int
        Context length, ``1 <= n <= 1e18`` (``1e6`` is accepted).
    beta : float
        Inverse temperature, finite and ``>= 0``.
    size : int
        Number of independent draws.
    rng : Generator, int, SeedSequence or None
        Randomness.
    m : int, optional
        Keys drawn exactly; default :func:`choose_m` from ``accuracy``.  If
        ``n - m <= ENUMERATE_MAX`` all ``n`` keys are enumerated.
    q : array_like, optional
        Unit query for a :class:`KeyLaw` (default :math:`e_1`); not allowed
        with a :class:`ScoreLaw`.
    accuracy : float
        Target bound on the error of the Gaussian remainder step (see
        :func:`choose_m`); only used when ``m`` is not given.
    output : bool
        Also draw the output :math:`x = \sum_i w_i K_i` (docs/theory.md section 3).  Needs a
        :class:`KeyLaw` whose key directions are uniform given the score
        (:meth:`attnscale.laws.KeyLaw.tangent_frame`: uniform keys, zonal laws seen from their
        axis, great subspheres through ``q``) and ``beta > 0``.  A key with gap :math:`G` is
        :math:`(1 - G)q + \sqrt{G(2-G)}\,B\theta`: the top ``m`` keys get exact uniform
        directions :math:`\theta`; the other :math:`N = n - m` keys enter by their exact
        conditional mean and covariance: the radial sum
        :math:`\sum X G = G_{(m)}\sum X + \beta^{-1}\sum XY` is a linear function of the
        Gaussian sums already drawn (so it is jointly Gaussian with the mass), and the
        tangential sum is a centred Gaussian, uncorrelated with them by symmetry, with
        covariance :math:`\frac{N}{dim} E[X^2 G(2-G)]\,I`,
        :math:`E[X^2G(2-G)] = G_m(2-G_m)\,m_{2,0} + 2(1-G_m)\,m_{2,1}/\beta - m_{2,2}/\beta^2`.

    Returns
    -------
    TopSample

    Examples
    --------
    >>> from attnscale.laws import UniformScoreLaw
    >>> top = sample_top(UniformScoreLaw(3), 10**12, 5e11, size=1000, rng=0)
    >>> top.weights.shape == (1000, top.m)
    True
    >>> round(float(top.max_weight.mean()), 2)  # critical limit at c = 1: about 0.55
    0.55
    >>> flat = sample_top(UniformScoreLaw(3), 10**18, 0.0, size=2, rng=0)
    >>> bool(np.allclose(flat.weights, 1e-18, rtol=1e-12) and np.allclose(flat.n_eff, 1e18, rtol=1e-12))
    True
    >>> from attnscale.laws import UniformSphere
    >>> out = sample_top(UniformSphere(3), 10**12, 5e11, size=4, rng=0, q=[0.0, 0.0, 1.0], output=True)
    >>> out.output.shape, out.tangential.shape
    ((4, 3), (4, 2))
    """
    frame = _output_frame(law, q, beta) if output else None
    score_law = as_score_law(law, q)
    n = check_n(n)
    beta = check_beta(beta)
    size = check_int(size, "size", minimum=1)
    accuracy = check_positive(accuracy, "accuracy")
    gen = as_generator(rng)
    grid = None
    met = None
    if m is None:
        grid = _pilot_grid(score_law, n, beta)
        m_used, met = _choose_m_met(grid, n, beta, accuracy, full=True)
    else:
        m_used = _enumerated_width(n, check_int(m, "m", minimum=1))
    dim = 0 if frame is None else frame.dim
    rows = max(1, CHUNK_ELEMENTS // (m_used * (dim + 1)))
    parts, gap_parts, outs = [], [], []
    for start in range(0, size, rows):
        base = _draw_base(n, m_used, min(rows, size - start), gen)
        grid = _grid_for_base(score_law, grid, base, beta)
        gaps = _gaps(grid, base.v)
        stats = _statistics(grid, base, gaps, beta)
        parts.append(stats)
        gap_parts.append(gaps)
        if frame is not None:
            outs.append(_output_block(gaps, beta, 1.0 / stats.max_weight, stats.rest, base.n - base.m, dim, gen))
    cat = {name: np.concatenate([getattr(p, name) for p in parts], axis=0) for name in _BlockStats._fields[:-1]}
    cat["gaps"] = np.concatenate(gap_parts, axis=0)
    extra: dict[str, Any] = {}
    if frame is not None:
        tangential, deficit = (np.concatenate(x, axis=0) for x in zip(*outs))
        qv = _query_of(law, q)
        extra = {
            "output": np.outer(1.0 - deficit, qv) + frame.apply(tangential),
            "tangential": tangential,
            "radial_deficit": deficit,
        }
    return TopSample(
        **cat,
        m=m_used,
        n=n,
        beta=beta,
        exact=m_used == n,
        **extra,
        accuracy_met=met,
    )


def _query_of(law: KeyLaw, q: Any) -> np.ndarray:
    if q is None:
        qv = np.zeros(law.d)
        qv[0] = 1.0
        return qv
    return check_unit_vector(q, "q", law.d)


def _output_frame(law: Any, q: Any, beta: float):
    """The tangent frame (a :class:`attnscale.laws.TangentMap`) of the output draws, or an InputError."""
    if not isinstance(law, KeyLaw):
        raise InputTypeError(f"law: got {type(law).__name__}; output=True needs a KeyLaw (key directions), not a score law")
    if check_beta(beta) == 0.0:
        raise InputError("beta: got 0; output=True needs beta > 0 (at beta = 0 the output is the plain mean of the keys)")
    frame = law.tangent_frame(_query_of(law, q))
    if frame is None:
        raise InputError(
            f"law: got {type(law).__name__} seen from this q; output=True needs key directions uniform given the "
            "score (uniform keys, a zonal law seen from its axis, a great subsphere through q)"
        )
    return frame


def _output_block(
    gaps: np.ndarray, beta: float, total: np.ndarray, rest: _Remainder | None, count: int, dim: int, gen: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    r"""Tangential part (frame coordinates) and radial deficit of the output of a block.

    Top keys: :math:`x_k = e^{-y_k}` (as in :func:`_statistics`), directions
    :math:`\theta_k` uniform; the remainder (scale :math:`s = e^{-y_m}`) by the sums
    ``rest`` already drawn and a centred Gaussian (see :func:`sample_top`).
    """
    y = np.minimum(beta * (gaps - gaps[:, :1]), _Y_CAP)
    x = np.exp(-y)
    theta = gen.standard_normal(gaps.shape + (dim,))
    theta /= np.linalg.norm(theta, axis=2, keepdims=True)
    amp = x * np.sqrt(gaps * (2.0 - gaps))
    tan = np.einsum("rk,rkd->rd", amp, theta)
    deficit = np.einsum("rk,rk->r", x, gaps)
    if count > 0:
        sums, s, mom = rest
        r1, r3 = sums.r1, sums.r3
        g_m = gaps[:, -1]
        deficit = deficit + s * (g_m * r1 + r3 / beta)
        m20, m21, m22 = mom[:, 1, 0], mom[:, 1, 1], mom[:, 1, 2]
        second = g_m * (2.0 - g_m) * m20 + 2.0 * (1.0 - g_m) * m21 / beta - m22 / beta / beta
        sd = s * np.sqrt(count * np.maximum(second, 0.0) / dim)
        tan = tan + sd[:, None] * gen.standard_normal((gaps.shape[0], dim))
    return tan / total[:, None], deficit / total


def choose_m(law: KeyLaw | ScoreLaw, n: Any, beta: float, accuracy: float = 1e-3, *, q: Any = None) -> int:
    r"""Smallest ``m`` whose Gaussian remainder keeps the statistics within ``accuracy``.

    At the typical top configuration (:math:`U_{(k)}` at the approximate
    median :math:`(k - 1/3)/(n + 1/3)` of its Beta law) and for ``m`` on the
    ladder :math:`16 \cdot 2^{j/4}` up to ``M_MAX``, the other :math:`N = n-m`
    keys contribute sums :math:`R_j = \sum X^{(j)}` with
    :math:`X^{(1)} = X,\ X^{(2)} = X^2,\ X^{(3)} = XY` (module docstring),
    scaled by :math:`s = e^{-\beta (G_{(m)} - G_{(1)})}`.  The Wasserstein-1
    error of replacing each :math:`R_j` by a Gaussian is at most
    :math:`\epsilon_j = \min(r_j, 2\sqrt{N}\sigma_j)` (range
    :math:`r = 1, 1, 1/e`), so with total mass :math:`T`, sum of squares
    :math:`Q` and entropy numerator :math:`H_\mathrm{num}`

    .. math::
        \mathrm{err} = \max\Bigl(\frac{s\epsilon_1}{T^2},\
        \frac{2 s \epsilon_1}{T} + \frac{s^2\epsilon_2}{Q},\
        \frac{s}{T}\bigl(\epsilon_1 |1 + y_m - H_\mathrm{num}/T| + \epsilon_3\bigr)\Bigr)

    (errors of :math:`W_1`, of :math:`\log n_\mathrm{eff}` and of the entropy,
    to first order).  Returns ``n`` when ``n - m <= ENUMERATE_MAX`` for the
    chosen ``m`` (exact enumeration), and ``M_MAX`` when no ladder value meets
    ``accuracy``, with an :class:`AccuracyWarning`.  Deterministic (docs/theory.md section 4).

    Examples
    --------
    >>> from attnscale.laws import UniformScoreLaw
    >>> choose_m(UniformScoreLaw(3), 10**6, 5e5)  # critical, c = 1: the minimum
    16
    >>> choose_m(UniformScoreLaw(3), 500, 250.0)  # small n: enumerate all keys
    500
    """
    score_law = as_score_law(law, q)
    n = check_n(n)
    beta = check_beta(beta)
    accuracy = check_positive(accuracy, "accuracy")
    return _choose_m(_pilot_grid(score_law, n, beta), n, beta, accuracy, full=True)


def as_score_law(law: Any, q: Any = None) -> ScoreLaw:
    """The score law of ``law`` seen from ``q`` (default :math:`e_1`); a ScoreLaw is returned as is.

    Examples
    --------
    >>> from attnscale.laws import UniformSphere
    >>> as_score_law(UniformSphere(4)).tail().gamma
    1.5
    """
    if isinstance(law, ScoreLaw):
        if q is not None:
            raise InputError("q: got a query with a ScoreLaw; a query is only used with a KeyLaw")
        return law
    if isinstance(law, KeyLaw):
        if q is None:
            q = np.zeros(law.d)
            q[0] = 1.0
        return law.score_law(check_unit_vector(q, "q", law.d))
    raise InputTypeError(f"law: got {type(law).__name__}; expected a KeyLaw (e.g. UniformSphere(d)) or a ScoreLaw")


# ---------------------------------------------------------------------------
# Rényi order statistics
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Base:
    """The law-free randomness of a block of draws.

    ``v[:, k-1] = logit U_(k)`` for k = 1..m (increasing along rows); ``z`` the
    standard normals of the Gaussian remainder, shape (rows, 3).
    """

    v: np.ndarray
    z: np.ndarray
    n: int
    m: int


def _enumerated_width(n: int, m: int) -> int:
    """``n`` when the remainder is small enough to enumerate, else ``m``."""
    return n if n - min(m, n) <= ENUMERATE_MAX else m


def _draw_base(n: int, m: int, rows: int, gen: np.random.Generator) -> _Base:
    """``rows`` draws of the top-``m`` logits of ``n`` uniforms and the remainder normals."""
    e = gen.standard_exponential((rows, m))
    tail = gen.standard_gamma(float(n + 1 - m), size=rows)
    z = gen.standard_normal((rows, 3))
    return _Base(v=_renyi_logits(e, tail), z=z, n=n, m=m)


def _base_from_exponentials(n: int, e: np.ndarray, z: np.ndarray, gen: np.random.Generator) -> _Base:
    """A block of draws from given exponentials ``e`` (rows, m) and normals ``z`` (common random numbers).

    With ``m >= n`` the first ``n`` columns are used; when ``0 < n - m <=
    ENUMERATE_MAX`` the missing ``n - m`` exponentials are drawn from ``gen``
    (full enumeration); otherwise the Gamma(n + 1 - m) tail is drawn from ``gen``.
    """
    rows, m = e.shape
    if n - min(m, n) <= ENUMERATE_MAX:
        if m < n:
            e = np.concatenate([e, gen.standard_exponential((rows, n - m))], axis=1)
        e = e[:, :n]
        tail = gen.standard_exponential(rows)
    else:
        tail = gen.standard_gamma(float(n + 1 - m), size=rows)
    return _Base(v=_renyi_logits(e, tail), z=z, n=n, m=e.shape[1])


def _renyi_logits(e: np.ndarray, tail: np.ndarray) -> np.ndarray:
    r"""Rényi: :math:`\operatorname{logit} U_{(k)} = \log \Gamma_k - \log \mathrm{rest}_k`.

    ``e`` (rows, m) unit exponentials, ``tail`` (rows,) the
    :math:`\mathrm{Gamma}(n+1-m)` variates; ``rest_k = (Gamma_m - Gamma_k) + tail``
    is accumulated from the right, so ``1 - U_(k)`` keeps its relative
    accuracy for every ``k``.
    """
    gam = np.cumsum(e, axis=1)
    after = np.zeros_like(e)
    after[:, :-1] = np.cumsum(e[:, :0:-1], axis=1)[:, ::-1]
    return np.log(gam) - np.log(after + tail[:, None])


# ---------------------------------------------------------------------------
# Lattices for the draws
# ---------------------------------------------------------------------------


def _typical_logits(n: int, m: int) -> np.ndarray:
    """``logit`` of the approximate medians ``(k - 1/3)/(n + 1/3)`` of ``U_(k)``, k = 1..m."""
    k = np.arange(1, m + 1, dtype=float) - 1.0 / 3.0
    return np.log(k) - np.log(n + 1.0 / 3.0 - k)


def _pilot_grid(law: ScoreLaw, n: int, beta: float) -> _Grid:
    """The lattice :func:`choose_m` needs: the typical top ``M_MAX`` keys and the remainder above them."""
    v = _typical_logits(n, min(n, M_MAX))
    return _covering_grid(law, None, float(v[0]) - 1.0, float(v[-1]), beta, float(v[-1]) if n > 1 else None)


def _grid_for_base(law: ScoreLaw, grid: _Grid | None, base: _Base, beta: float) -> _Grid:
    """A lattice covering every logit of ``base`` and the remainder above its ``v_P``."""
    v_ref = float(base.v[:, -1].max()) if base.n > base.m else None
    return _covering_grid(law, grid, float(base.v[:, 0].min()), float(base.v.max()), beta, v_ref)


# ---------------------------------------------------------------------------
# Statistics of one block of draws
# ---------------------------------------------------------------------------


def _cholesky3(cov: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Lower Cholesky factor of 3x3 covariances (vectorized), negative pivots clipped to 0."""

    def div(a, b):
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)

    l11 = np.sqrt(np.maximum(cov["11"], 0.0))
    l21 = div(cov["12"], l11)
    l31 = div(cov["13"], l11)
    l22 = np.sqrt(np.maximum(cov["22"] - l21 * l21, 0.0))
    l32 = div(cov["23"] - l31 * l21, l22)
    l33 = np.sqrt(np.maximum(cov["33"] - l31 * l31 - l32 * l32, 0.0))
    return l11, l21, l31, l22, l32, l33


class _Sums(NamedTuple):
    r"""Gaussian sums :math:`R_1 = \sum X`, :math:`R_2 = \sum X^2`, :math:`R_3 = \sum XY` over the remainder.

    ``r2`` and ``r3`` are ``None`` when only :math:`W_1` is needed.
    """

    r1: np.ndarray
    r2: np.ndarray | None
    r3: np.ndarray | None


class _Remainder(NamedTuple):
    """The remainder of a block: its Gaussian sums, its scale ``s = e^{-y_m}`` and conditional moments."""

    sums: _Sums
    s: np.ndarray
    moments: np.ndarray


class _BlockStats(NamedTuple):
    """Weights and statistics of a block of draws (:func:`_statistics`), named as in :class:`TopSample`.

    ``rest`` is the remainder (for the output, :func:`_output_block`); ``None`` when
    all keys are enumerated.
    """

    weights: np.ndarray
    remainder: np.ndarray
    max_weight: np.ndarray
    n_eff: np.ndarray
    entropy: np.ndarray
    rest: _Remainder | None


def _remainder_sums(mom: np.ndarray, count: int, z: np.ndarray, full: bool) -> _Sums:
    r"""Gaussian draws of :math:`(\sum X, \sum X^2, \sum XY)` over ``count`` conditional keys.

    Mean ``count * (m10, m20, m11)``, covariance ``count`` times the covariance
    of :math:`(X, X^2, XY)`; clipped to the constraints :math:`0 \le \sum X^2
    \le \sum X \le N`, :math:`\sum XY \ge 0`.  Without ``full`` only :math:`\sum X`.
    """
    m10, m20 = mom[:, 0, 0], mom[:, 1, 0]
    root = math.sqrt(count)
    if not full:
        sd = np.sqrt(np.maximum(m20 - m10 * m10, 0.0))
        r1 = np.clip(count * m10 + root * sd * z[:, 0], 0.0, float(count))
        return _Sums(r1, None, None)
    m30, m40 = mom[:, 2, 0], mom[:, 3, 0]
    m11, m21, m31, m22 = mom[:, 0, 1], mom[:, 1, 1], mom[:, 2, 1], mom[:, 1, 2]
    cov = {
        "11": m20 - m10 * m10,
        "12": m30 - m10 * m20,
        "13": m21 - m10 * m11,
        "22": m40 - m20 * m20,
        "23": m31 - m20 * m11,
        "33": m22 - m11 * m11,
    }
    l11, l21, l31, l22, l32, l33 = _cholesky3(cov)
    z1, z2, z3 = z[:, 0], z[:, 1], z[:, 2]
    r1 = np.clip(count * m10 + root * l11 * z1, 0.0, float(count))
    r2 = np.clip(count * m20 + root * (l21 * z1 + l22 * z2), 0.0, r1)
    r3 = np.maximum(count * m11 + root * (l31 * z1 + l32 * z2 + l33 * z3), 0.0)
    return _Sums(r1, r2, r3)


class _Mass(NamedTuple):
    """Top terms :math:`x_k = e^{-y_k}` of a block, the total :math:`T` and the remainder."""

    y: np.ndarray
    x: np.ndarray
    t_minus_1: np.ndarray
    total: np.ndarray
    rem: np.ndarray
    rest: _Remainder | None


def _mass(grid: _Grid, base: _Base, gaps: np.ndarray, beta: float, full: bool) -> _Mass:
    r""":math:`T = \sum x + s R_1` of a block (see :func:`_statistics`); ``full`` draws all three sums."""
    y = np.minimum(beta * (gaps - gaps[:, :1]), _Y_CAP)
    x = np.exp(-y)
    t_minus_1 = x[:, 1:].sum(axis=1)
    count = base.n - base.m
    rem = np.zeros(x.shape[0])
    rest = None
    if count > 0:
        n_a, n_b = (_A_FULL, _B_FULL) if full else (_A_W1, _B_W1)
        mom, _ = _moments_at(grid, beta, base.v[:, -1], gaps[:, -1], n_a, n_b)
        sums = _remainder_sums(mom, count, base.z, full)
        s = np.exp(-y[:, -1])
        rem = s * sums.r1
        rest = _Remainder(sums, s, mom)
    t_minus_1 = t_minus_1 + rem
    return _Mass(y, x, t_minus_1, 1.0 + t_minus_1, rem, rest)


@_overflow_is_capped
def _max_weight(grid: _Grid, base: _Base, gaps: np.ndarray, beta: float) -> np.ndarray:
    """:math:`W_1 = 1/T` of each draw of a block (only :math:`R_1` of the remainder is drawn)."""
    return 1.0 / _mass(grid, base, gaps, beta, full=False).total


@_overflow_is_capped
def _statistics(grid: _Grid, base: _Base, gaps: np.ndarray, beta: float) -> _BlockStats:
    r"""Weights and statistics of a block (module docstring, docs/theory.md section 4).

    With :math:`x_k = e^{-y_k}`, :math:`y_k = \beta (G_{(k)} - G_{(1)})`, the
    scaled remainder :math:`s = e^{-y_m}` and the Gaussian sums
    :math:`R_1, R_2, R_3`: :math:`T = \sum x + s R_1`,
    :math:`W_1 = 1/T`, :math:`n_\mathrm{eff} = T^2 / (\sum x^2 + s^2 R_2)`,
    :math:`H = \log T + (\sum x y + s (y_m R_1 + R_3))/T` with
    :math:`\log T = \operatorname{log1p}(T - 1)`.
    """
    y, x, t_minus_1, total, rem, rest = _mass(grid, base, gaps, beta, full=True)
    w1 = 1.0 / total
    sq = (x * x).sum(axis=1)
    ent_num = (x * y).sum(axis=1)
    if rest is not None:
        r1, r2, r3 = rest.sums
        s = rest.s
        sq = sq + s * s * r2
        ent_num = ent_num + s * (y[:, -1] * r1 + r3)
    weights = x / total[:, None]
    n_eff = total * total / sq
    entropy = np.log1p(t_minus_1) + ent_num / total
    return _BlockStats(weights, rem / total, w1, n_eff, entropy, rest)


# ---------------------------------------------------------------------------
# Choice of m
# ---------------------------------------------------------------------------


def _ladder(n: int) -> np.ndarray:
    ms = np.unique(np.round(M_MIN * 2.0 ** (np.arange(0, 4 * math.log2(M_MAX / M_MIN) + 1) / 4)).astype(np.int64))
    return ms[ms < n]


def _choose_m(grid: _Grid, n: int, beta: float, accuracy: float, full: bool) -> int:
    """:func:`choose_m` on a given lattice; ``full=False`` bounds the error of W_1 only."""
    return _choose_m_met(grid, n, beta, accuracy, full)[0]


def _choose_m_met(grid: _Grid, n: int, beta: float, accuracy: float, full: bool) -> tuple[int, bool]:
    """``(m, met)``: :func:`_choose_m` and whether ``m`` meets ``accuracy``; warns when it does not."""
    m, err = _choose_m_err(grid, n, beta, accuracy, full)
    met = err <= accuracy
    if not met:
        warnings.warn(
            f"accuracy: the Gaussian remainder's error bound {err:.2g} exceeds accuracy={accuracy:g} even at "
            f"m = {m} (the largest allowed, M_MAX); n={n}, beta={beta:.6g}",
            AccuracyWarning,
            stacklevel=3,
        )
    return m, met


@_overflow_is_capped
def _choose_m_err(grid: _Grid, n: int, beta: float, accuracy: float, full: bool) -> tuple[int, float]:
    """The chosen ``m`` and the error bound it achieves (0 when all keys are enumerated)."""
    ladder = _ladder(n)
    if ladder.size == 0 or n - ladder[0] <= ENUMERATE_MAX:
        return _enumerated_width(n, M_MIN), 0.0
    v = _typical_logits(n, int(ladder[-1]))
    gaps = _gaps(grid, v)
    y = np.minimum(beta * (gaps - gaps[0]), _Y_CAP)
    x = np.exp(-y)
    cum_x, cum_sq, cum_xy = np.cumsum(x), np.cumsum(x * x), np.cumsum(x * y)
    idx = ladder - 1
    mom, _ = _moments_at(grid, beta, v[idx], gaps[idx], _A_FULL, _B_FULL)
    count = (n - ladder).astype(float)
    sd = np.sqrt(
        np.maximum(
            np.stack(
                [
                    mom[:, 1, 0] - mom[:, 0, 0] ** 2,
                    mom[:, 3, 0] - mom[:, 1, 0] ** 2,
                    mom[:, 1, 2] - mom[:, 0, 1] ** 2,
                ]
            ),
            0.0,
        )
    )
    eps = np.minimum(np.array([1.0, 1.0, math.exp(-1.0)])[:, None], 2.0 * np.sqrt(count) * sd)
    s = x[idx]
    total = cum_x[idx] + s * count * mom[:, 0, 0]
    sq = cum_sq[idx] + s * s * count * mom[:, 1, 0]
    ent_num = cum_xy[idx] + s * count * (y[idx] * mom[:, 0, 0] + mom[:, 0, 1])
    err = s * eps[0] / total**2
    if full:
        err_neff = 2.0 * s * eps[0] / total + s * s * eps[1] / sq
        err_ent = s / total * (eps[0] * np.abs(1.0 + y[idx] - ent_num / total) + eps[2])
        err = np.maximum(err, np.maximum(err_neff, err_ent))
    ok = np.flatnonzero(err <= accuracy)
    j = int(ok[0]) if ok.size else len(ladder) - 1
    m = _enumerated_width(n, int(ladder[j]))
    return m, (0.0 if m == n else float(err[j]))
