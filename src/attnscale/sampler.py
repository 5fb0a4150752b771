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
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special
from scipy.interpolate import CubicSpline

from ._validate import (
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

__all__ = ["AccuracyWarning", "TopSample", "choose_m", "sample_top"]


class AccuracyWarning(UserWarning):
    """The largest ``m`` allowed does not meet the requested accuracy of the Gaussian remainder."""

#: Lattice spacing in ``v = logit p`` of the quantile table and of the quadrature cells.
PANEL = 0.1
#: Upper end of the lattice: ``1 - p = e^{-37}`` (about 1e-16, below float64 resolution of ``p``).
V_MAX = 37.0
#: Gauss-Legendre nodes per lattice cell.
GL_ORDER = 4
#: Bound on the relative error of the quantile spline; a cell is accepted when the spline
#: matches ``gap_ppf`` within a quarter of it at the cell's four Gauss-Legendre nodes (the
#: margin covers the points between nodes), elsewhere ``gap_ppf`` is used directly.
QUANTILE_RTOL = 1e-8
#: When ``n - m`` is at most this, all ``n`` keys are enumerated exactly.
ENUMERATE_MAX = 1024
#: Smallest and largest ``m`` chosen by :func:`choose_m`.
M_MIN = 16
M_MAX = 8192
#: Working block (draws x keys) of one vectorized pass.
CHUNK_ELEMENTS = 2**21
#: Cells are split so that ``y = beta (G - G_ref)`` grows by at most this across a piece.
KAPPA_SUB = 0.1
#: Most pieces per lattice cell in the moment table, and in the partial cell of a draw.
K_TABLE = 64
K_PARTIAL = 16
#: Above this rise of ``y`` across the partial cell, the moments use Gauss-Laguerre in ``y``.
KAPPA_LAGUERRE = 0.8
#: ``e^{-Y_STOP}`` is negligible: cells this far above every table row only add their mass.
Y_STOP = 60.0
#: Gauss-Laguerre nodes.
LAGUERRE_ORDER = 16
#: Bound on the relative error of the gap density taken from the quantile spline (checked per
#: cell at its nodes against ``gap_pdf``, within a quarter of it).
DENSITY_RTOL = 1e-6
#: Newton steps inverting the quantile spline.
_NEWTON_STEPS = 6
#: Elements of the temporary arrays of one vectorized quadrature pass; table rows per pass.
_BLOCK_ELEMENTS = 2**20
_ROW_BLOCK = 16
#: Exponents beyond this are zero anyway; capping keeps ``y**2`` finite for any finite beta.
_Y_CAP = 1e100

_GL_X, _GL_W = np.polynomial.legendre.leggauss(GL_ORDER)
_LAG_X, _LAG_W = np.polynomial.laguerre.laggauss(LAGUERRE_ORDER)
for _arr in (_GL_X, _GL_W, _LAG_X, _LAG_W):
    _arr.setflags(write=False)

#: Powers ``a`` and ``b`` of the conditional moments m_{a,b}; W_1 alone needs a <= 2, b = 0.
_A_FULL, _B_FULL = 4, 3
_A_W1, _B_W1 = 2, 1



def _overflow_is_capped(fn):
    """Run ``fn`` with float overflow silenced: ``beta * gap`` can exceed 1e308 for beta near the
    largest float, and every such exponent is capped at ``_Y_CAP`` (its exponential is 0)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore"):
            return fn(*args, **kwargs)

    return wrapper


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
        Its tangential part in the coordinates of :func:`attnscale.output.tangent_frame`
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
        (:func:`attnscale.output.tangent_frame`: uniform keys, zonal laws seen from their
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
    parts, outs = [], []
    for start in range(0, size, rows):
        base = _draw_base(n, m_used, min(rows, size - start), gen)
        grid = _grid_for_base(score_law, grid, base, beta)
        gaps = _gaps(grid, base.v)
        if frame is None:
            parts.append(_statistics(grid, base, gaps, beta, full=True))
            continue
        stats, extras = _statistics(grid, base, gaps, beta, full=True, extras=True)
        parts.append(stats)
        outs.append(_output_block(gaps, beta, 1.0 / stats[3], extras, base.n - base.m, dim, gen))
    cat = [np.concatenate(x, axis=0) for x in zip(*parts)]
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
        weights=cat[0],
        gaps=cat[1],
        remainder=cat[2],
        max_weight=cat[3],
        n_eff=cat[4],
        entropy=cat[5],
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
    """The tangent frame (a :class:`attnscale.output.TangentMap`) of the output draws, or an InputError."""
    from .output import tangent_map

    if not isinstance(law, KeyLaw):
        raise TypeError(f"law: got {type(law).__name__}; output=True needs a KeyLaw (key directions), not a score law")
    if check_beta(beta) == 0.0:
        raise InputError("beta: got 0; output=True needs beta > 0 (at beta = 0 the output is the plain mean of the keys)")
    frame = tangent_map(law, _query_of(law, q))
    if frame is None:
        raise InputError(
            f"law: got {type(law).__name__} seen from this q; output=True needs key directions uniform given the "
            "score (uniform keys, a zonal law seen from its axis, a great subsphere through q)"
        )
    return frame


def _output_block(
    gaps: np.ndarray, beta: float, total: np.ndarray, extras: tuple, count: int, dim: int, gen: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    r"""Tangential part (frame coordinates) and radial deficit of the output of a block.

    Top keys: :math:`x_k = e^{-y_k}` (as in :func:`_statistics`), directions
    :math:`\theta_k` uniform; the remainder (scale :math:`s = e^{-y_m}`) by the sums
    ``extras`` already drawn and a centred Gaussian (see :func:`sample_top`).
    """
    y = np.minimum(beta * (gaps - gaps[:, :1]), _Y_CAP)
    x = np.exp(-y)
    theta = gen.standard_normal(gaps.shape + (dim,))
    theta /= np.linalg.norm(theta, axis=2, keepdims=True)
    amp = x * np.sqrt(gaps * (2.0 - gaps))
    tan = np.einsum("rk,rkd->rd", amp, theta)
    deficit = np.einsum("rk,rk->r", x, gaps)
    if count > 0:
        sums, s, mom = extras
        r1, r3 = sums[0], sums[2]
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
    raise TypeError(f"law: got {type(law).__name__}; expected a KeyLaw (e.g. UniformSphere(d)) or a ScoreLaw")


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
# Quantile lattice and quadrature cells
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Grid:
    """Quantile lattice in ``v = logit p`` for one score law.

    ``v[j] = v0 + j * PANEL`` (j = 0..J), ``g[j]`` the gaps there; cell ``j`` is
    ``[v[j], v[j+1]]`` with Gauss-Legendre nodes ``node_g`` and weights
    ``node_w`` (measure ``dp``).  ``coef`` are the cubic-spline coefficients
    of ``log g`` per cell; ``cell_ok[j]`` says the spline matched ``gap_ppf``
    within ``QUANTILE_RTOL / 4`` at the four nodes of cell ``j`` (elsewhere
    ``gap_ppf`` is called directly).  ``node_f`` are the exact densities
    ``gap_pdf`` at the nodes, and ``dens_ok[j]`` says the spline's density
    :math:`p(1-p)/(dG/dv)` matched them within ``DENSITY_RTOL / 4``.
    ``tail_mass[j]`` is the quadrature mass of cells ``j..J-1`` plus the exact
    mass ``1 - p`` beyond the lattice.
    """

    law: ScoreLaw
    v: np.ndarray
    g: np.ndarray
    node_g: np.ndarray
    node_f: np.ndarray
    node_w: np.ndarray
    coef: np.ndarray
    cell_ok: np.ndarray
    dens_ok: np.ndarray
    tail_mass: np.ndarray


def _cell_nodes(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes (in ``v``) and ``dp``-weights on cells ``[left, right]``."""
    half = 0.5 * (right - left)
    nodes = (0.5 * (left + right))[..., None] + half[..., None] * _GL_X
    weights = half[..., None] * _GL_W * special.expit(nodes) * special.expit(-nodes)
    return nodes, weights


def _lattice(v_lo: float, v_hi: float) -> np.ndarray:
    """Lattice points ``j * PANEL`` covering ``[v_lo, v_hi]``, capped at ``V_MAX``."""
    j_top = math.ceil(V_MAX / PANEL)
    j1 = min(math.ceil(v_hi / PANEL), j_top)
    j0 = min(math.floor(v_lo / PANEL), j1 - 1)
    return np.arange(j0, j1 + 1) * PANEL


def _evaluate(law: ScoreLaw, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact gaps at lattice points ``v``, and gaps and densities at the nodes of the cells between them."""
    nodes, _ = _cell_nodes(v[:-1], v[1:])
    g = np.asarray(law.gap_ppf(special.expit(v)), dtype=float)
    node_g = np.asarray(law.gap_ppf(special.expit(nodes)), dtype=float)
    node_f = np.asarray(law.gap_pdf(node_g), dtype=float)
    return g, node_g, node_f


def _assemble(law: ScoreLaw, v: np.ndarray, g: np.ndarray, node_g: np.ndarray, node_f: np.ndarray) -> _Grid:
    """Spline, per-cell verification and quadrature weights of a lattice whose exact gaps are known."""
    nodes, weights = _cell_nodes(v[:-1], v[1:])
    coef = np.zeros((4, v.size - 1))
    cell_ok = np.zeros(v.size - 1, dtype=bool)
    dens_ok = np.zeros(v.size - 1, dtype=bool)
    if np.all((g > 0) & np.isfinite(g)):
        spline = CubicSpline(v, np.log(g))
        fit = np.exp(spline(nodes))
        cell_ok = np.all(np.abs(fit - node_g) <= 0.25 * QUANTILE_RTOL * node_g, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            dens = special.expit(nodes) * special.expit(-nodes) / (fit * spline(nodes, 1))
        good = np.isfinite(dens) & (dens > 0) & (np.abs(dens - node_f) <= 0.25 * DENSITY_RTOL * node_f)
        dens_ok = cell_ok & np.all(good, axis=1)
        coef = np.ascontiguousarray(spline.c)
    # mass of the cells above each lattice point, plus the exact mass 1 - p beyond the lattice
    tail_mass = np.append(np.cumsum(weights.sum(axis=1)[::-1])[::-1], 0.0) + special.expit(-v[-1])
    for arr in (v, g, node_g, node_f, weights, coef, cell_ok, dens_ok, tail_mass):
        arr.setflags(write=False)
    return _Grid(
        law=law,
        v=v,
        g=g,
        node_g=node_g,
        node_f=node_f,
        node_w=weights,
        coef=coef,
        cell_ok=cell_ok,
        dens_ok=dens_ok,
        tail_mass=tail_mass,
    )


def _build_grid(law: ScoreLaw, v_lo: float, v_hi: float = V_MAX) -> _Grid:
    """The lattice over ``[v_lo, v_hi]`` (rounded out to lattice points)."""
    v = _lattice(v_lo, v_hi)
    return _assemble(law, v, *_evaluate(law, v))


def _extend_grid(grid: _Grid, v_lo: float, v_hi: float) -> _Grid:
    """``grid`` widened to cover ``[v_lo, v_hi]``; only the new lattice points call ``gap_ppf``."""
    want = _lattice(min(v_lo, grid.v[0]), max(v_hi, grid.v[-1]))
    j_old = np.rint(grid.v / PANEL).astype(np.int64)
    j_new = np.rint(want / PANEL).astype(np.int64)
    below, above = j_new[j_new <= j_old[0]], j_new[j_new >= j_old[-1]]
    g_parts, node_parts, dens_parts = [], [], []
    if below.size > 1:
        g_lo, n_lo, f_lo = _evaluate(grid.law, below * PANEL)
        g_parts.append(g_lo[:-1])
        node_parts.append(n_lo)
        dens_parts.append(f_lo)
    g_parts.append(grid.g)
    node_parts.append(grid.node_g)
    dens_parts.append(grid.node_f)
    if above.size > 1:
        g_hi, n_hi, f_hi = _evaluate(grid.law, above * PANEL)
        g_parts.append(g_hi[1:])
        node_parts.append(n_hi)
        dens_parts.append(f_hi)
    if len(g_parts) == 1:
        return grid
    v = np.arange(min(below[0], j_old[0]), max(above[-1], j_old[-1]) + 1) * PANEL
    return _assemble(grid.law, v, np.concatenate(g_parts), np.concatenate(node_parts), np.concatenate(dens_parts))


@_overflow_is_capped
def _covering_grid(
    law: ScoreLaw, grid: _Grid | None, v_lo: float, v_hi: float, beta: float, v_ref: float | None
) -> _Grid:
    r"""A lattice covering the logits ``[v_lo, v_hi]`` and, above the remainder's largest
    :math:`v_P` = ``v_ref``, far enough that :math:`\beta (G - G(v_{ref})) > Y_{\mathrm{STOP}}`
    at its top (keys beyond add nothing but their mass) or up to ``V_MAX``.

    Built or extended lazily: each lattice point's ``gap_ppf`` is computed once.
    """
    top = v_hi if v_ref is None else max(v_hi, v_ref)
    if grid is None:
        grid = _build_grid(law, v_lo - PANEL, top + PANEL)
    elif v_lo < grid.v[0] or top + PANEL > grid.v[-1]:
        grid = _extend_grid(grid, v_lo - PANEL, top + PANEL)
    if v_ref is None:
        return grid
    g_ref = float(_gaps(grid, np.array([v_ref]))[0])
    step = 2.0
    while grid.v[-1] < V_MAX - 0.5 * PANEL and not beta * (grid.g[-1] - g_ref) > Y_STOP:
        grid = _extend_grid(grid, grid.v[0], grid.v[-1] + step)
        step *= 2.0
    return grid


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


def _spline(grid: _Grid, v: np.ndarray, derivative: bool = False):
    r"""Cell index, inside-lattice flag, :math:`\log G` and (optionally) :math:`d\log G/dv` of the spline at ``v``."""
    j = np.floor((v - grid.v[0]) / PANEL)
    inside = (j >= 0) & (j < grid.v.size - 1)
    j = np.clip(j, 0, grid.v.size - 2).astype(np.int64)
    x = v - grid.v[j]
    c0, c1, c2, c3 = grid.coef[0, j], grid.coef[1, j], grid.coef[2, j], grid.coef[3, j]
    log_g = ((c0 * x + c1) * x + c2) * x + c3
    slope = ((3.0 * c0 * x + 2.0 * c1) * x + c2) if derivative else None
    return j, inside, log_g, slope


def _gaps(grid: _Grid, v: np.ndarray) -> np.ndarray:
    """Gaps at logits ``v``: the spline in verified cells, ``gap_ppf`` elsewhere."""
    v = np.asarray(v, dtype=float)
    j, inside, log_g, _ = _spline(grid, v)
    out = np.exp(log_g)
    exact = ~(inside & grid.cell_ok[j])
    if np.any(exact):
        out[exact] = grid.law.gap_ppf(special.expit(v[exact]))
    return out


def _density(grid: _Grid, g: np.ndarray, v_start: np.ndarray) -> np.ndarray:
    r"""Gap density :math:`f_G(g) = p(1-p) / (dG/dv)` from the spline, inverted by Newton from ``v_start``.

    Where the inversion does not converge or lands in a cell whose spline
    density was not verified (``dens_ok``), ``gap_pdf`` is called directly.
    """
    target = np.log(g)
    v = np.array(v_start, dtype=float)
    lo, hi = grid.v[0], grid.v[-1]
    for _ in range(_NEWTON_STEPS):
        _, _, log_g, slope = _spline(grid, v, derivative=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.clip(v - (log_g - target) / slope, lo, hi)
    j, inside, log_g, slope = _spline(grid, v, derivative=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = special.expit(v) * special.expit(-v) / (np.exp(log_g) * slope)
    good = inside & grid.dens_ok[j] & (np.abs(log_g - target) <= 1e-13 * np.maximum(1.0, np.abs(target)))
    good &= np.isfinite(f) & (f > 0)
    if not np.all(good):
        f[~good] = grid.law.gap_pdf(g[~good])
    return f


# ---------------------------------------------------------------------------
# Conditional moments of the remainder
# ---------------------------------------------------------------------------


def _moment_sums(y: np.ndarray, w: np.ndarray, n_a: int, n_b: int) -> np.ndarray:
    r""":math:`\sum_k w_k e^{-a y_k} y_k^b` over the last axis, for a = 1..n_a, b = 0..n_b-1.

    ``y >= 0`` and ``w`` of shape ``(rows, k)``; returns ``(rows, n_a, n_b)``.
    """
    y = np.minimum(y, _Y_CAP)
    out = np.empty(y.shape[:-1] + (n_a, n_b))
    for a in range(1, n_a + 1):
        t = np.exp(-a * y) * w
        for b in range(n_b):
            out[..., a - 1, b] = t.sum(axis=-1)
            if b + 1 < n_b:
                t = t * y
    return out


def _shift(moments: np.ndarray, delta: np.ndarray) -> np.ndarray:
    r"""Moments about a reference ``delta`` lower: :math:`e^{-a\delta}\sum_{b'} \binom{b}{b'}\delta^{b-b'} M_{a,b'}`.

    ``moments`` has shape ``(..., n_a, n_b)``, ``delta >= 0`` shape ``(...)``.
    Every term is non-negative, so the shift is exact to rounding.
    """
    delta = np.minimum(np.maximum(delta, 0.0), _Y_CAP)
    n_a, n_b = moments.shape[-2:]
    a = np.arange(1, n_a + 1, dtype=float)
    e = np.exp(-delta[..., None] * a)
    out = np.empty_like(moments)
    d = delta[..., None]
    out[..., 0] = moments[..., 0]
    if n_b > 1:
        out[..., 1] = moments[..., 1] + d * moments[..., 0]
    if n_b > 2:
        out[..., 2] = moments[..., 2] + 2.0 * d * moments[..., 1] + d * d * moments[..., 0]
    return out * e[..., None]


def _subcells(grid: _Grid, beta: float, j_lo: int, j_hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Quadrature of cells ``j_lo..j_hi-1``, each split so that :math:`y` grows by at most ``KAPPA_SUB`` per piece.

    Returns ``(cell, node_g, node_w)``: per piece its lattice cell, and the
    gaps and ``dp``-weights of its Gauss-Legendre nodes (the lattice's exact
    ones for unsplit cells, the verified spline for pieces).
    """
    cells = np.arange(j_lo, j_hi)
    kappa = beta * (grid.g[cells + 1] - grid.g[cells])
    k = np.clip(np.ceil(kappa / KAPPA_SUB), 1, K_TABLE).astype(np.int64)
    if np.all(k == 1):
        return cells, grid.node_g[j_lo:j_hi], grid.node_w[j_lo:j_hi]
    cell = np.repeat(cells, k)
    start = np.repeat(np.cumsum(k) - k, k)
    i = np.arange(cell.size) - start
    width = PANEL / np.repeat(k, k)
    left = grid.v[cell] + i * width
    nodes, weights = _cell_nodes(left, left + width)
    split = np.repeat(k > 1, k)
    node_g = np.empty_like(nodes)
    node_g[split] = _gaps(grid, nodes[split])
    node_g[~split] = grid.node_g[cell[~split]]
    weights[~split] = grid.node_w[cell[~split]]
    return cell, node_g, weights


@dataclass(frozen=True, eq=False)
class _Table:
    """Unnormalized moments at lattice points ``j_lo..j_hi``: ``mom[r]`` (n_a, n_b), ``mass[r] ~ 1 - p``."""

    j_lo: int
    mom: np.ndarray
    mass: np.ndarray


def _table(grid: _Grid, beta: float, j_lo: int, j_hi: int, n_a: int, n_b: int) -> _Table:
    r""":math:`M_{a,b}(t_j) = \sum_{\text{nodes above } t_j} w\, e^{-a y} y^b`, :math:`y = \beta (G - G(t_j))`.

    Direct sums (rows ``j_lo..j_hi`` against the cells above ``j_lo``, each
    split by :func:`_subcells`): differences of gaps, no cancellation.  Cells
    where :math:`y > Y_{\mathrm{STOP}}` for every row add nothing but their
    mass.
    """
    rows = np.arange(j_lo, j_hi + 1)
    n_cells = grid.v.size - 1
    y_top = beta * (grid.g[j_lo + 1 :] - grid.g[j_hi])
    far = np.flatnonzero(y_top > Y_STOP)
    j_stop = min(n_cells, j_lo + 1 + int(far[0])) if far.size else n_cells
    j_stop = max(j_stop, min(j_hi + 1, n_cells))
    cell, node_g, weights = _subcells(grid, beta, j_lo, j_stop)
    above = np.repeat(cell, GL_ORDER)[None, :] >= rows[:, None]
    y = beta * (node_g.ravel()[None, :] - grid.g[rows][:, None])
    y = np.where(above, np.maximum(y, 0.0), _Y_CAP)
    w = weights.ravel()
    mom = np.concatenate(
        [_moment_sums(y[i : i + _ROW_BLOCK], w[None, :], n_a, n_b) for i in range(0, rows.size, _ROW_BLOCK)]
    )
    near_mass = np.where(above, w[None, :], 0.0).sum(axis=1)
    mass = near_mass + grid.tail_mass[j_stop]
    return _Table(j_lo=j_lo, mom=mom, mass=mass)


def _partial_cells(
    grid: _Grid,
    beta: float,
    v_p: np.ndarray,
    g_p: np.ndarray,
    j_next: np.ndarray,
    tab: _Table,
    k: int,
    n_a: int,
    n_b: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Moments from the partial cell ``[v_P, t_{j+1}]`` (split into ``k`` pieces) plus the shifted table row."""
    kappa = beta * np.maximum(grid.g[j_next] - g_p, 0.0)
    part = np.empty((v_p.size, n_a, n_b))
    part_mass = np.empty(v_p.size)
    block = max(1, _BLOCK_ELEMENTS // (k * GL_ORDER))
    for i in range(0, v_p.size, block):
        sl = slice(i, i + block)
        edges = v_p[sl, None] + (grid.v[j_next[sl]] - v_p[sl])[:, None] * (np.arange(k + 1) / k)
        nodes, weights = _cell_nodes(edges[:, :-1], edges[:, 1:])
        nodes, weights = nodes.reshape(nodes.shape[0], -1), weights.reshape(weights.shape[0], -1)
        y = beta * (_gaps(grid, nodes) - g_p[sl, None])
        part[sl] = _moment_sums(np.maximum(y, 0.0), weights, n_a, n_b)
        part_mass[sl] = weights.sum(axis=1)
    r = j_next - tab.j_lo
    return part + _shift(tab.mom[r], kappa), part_mass + tab.mass[r]


def _laguerre(grid: _Grid, beta: float, v_p: np.ndarray, g_p: np.ndarray, n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Moments where :math:`y` rises fast above :math:`P`: Gauss-Laguerre in :math:`y = \beta (g - G_P)`.

    .. math::
        (1-P)\,m_{a,b} = \frac{1}{\beta}\int_0^\infty e^{-a y} y^b f_G(G_P + y/\beta)\,dy
        \approx \frac{1}{\beta a^{b+1}} \sum_k \omega_k \xi_k^b f_G\bigl(G_P + \xi_k/(a\beta)\bigr),

    valid when :math:`f_G` is smooth on the scale :math:`1/\beta` (which is
    what a fast rise of :math:`y` in :math:`v` means) and
    :math:`\beta (g_{\max} - G_P) \ge` ``Y_STOP``.  The density comes from
    the verified spline (:func:`_density`), so that slow ``gap_pdf``
    implementations are called only where the spline is not trusted.
    """
    a = np.arange(1, n_a + 1, dtype=float)
    g = g_p[:, None, None] + _LAG_X[None, None, :] / (a[None, :, None] * beta)
    # Newton start: the spline's tangent at v_P
    _, _, _, slope_p = _spline(grid, v_p, derivative=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        v0 = v_p[:, None, None] + np.log(g / g_p[:, None, None]) / slope_p[:, None, None]
    v0 = np.where(np.isfinite(v0), v0, v_p[:, None, None])
    f = _density(grid, g, v0)
    mom = np.empty((v_p.size, n_a, n_b))
    for b in range(n_b):
        mom[:, :, b] = (f * (_LAG_W * _LAG_X**b)).sum(axis=2) / (beta * a ** (b + 1))
    return mom, special.expit(-v_p)


@_overflow_is_capped
def _moments_at(
    grid: _Grid, beta: float, v_p: np.ndarray, g_p: np.ndarray, n_a: int, n_b: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""Conditional moments :math:`m_{a,b}(P)` at per-draw :math:`v_P = \operatorname{logit} P`.

    Where :math:`y` rises slowly across the cell above :math:`P`: the partial
    cell ``[v_P, t_{j+1}]`` by Gauss-Legendre plus the table at
    :math:`t_{j+1}` shifted down to :math:`G(P)` (positive terms only: exact to
    quadrature accuracy even when the sums are dominated by far-away keys).
    Where it rises by more than ``KAPPA_LAGUERRE`` across that cell:
    :func:`_laguerre`.  Returns ``(m, mass)`` with ``m`` of shape
    ``(draws, n_a, n_b)`` (divided by the mass :math:`\approx 1 - P`).
    """
    j = np.clip(np.floor((v_p - grid.v[0]) / PANEL).astype(np.int64), 0, grid.v.size - 2)
    j_next = j + 1
    kappa = beta * (grid.g[j_next] - g_p)
    gmax = grid.law.reference - grid.law.lower
    lag = (kappa > KAPPA_LAGUERRE) & (beta * (gmax - g_p) >= Y_STOP)
    mom = np.empty((v_p.size, n_a, n_b))
    mass = np.empty(v_p.size)
    if np.any(lag):
        mom[lag], mass[lag] = _laguerre(grid, beta, v_p[lag], g_p[lag], n_a, n_b)
    cell = ~lag
    if np.any(cell):
        tab = _table(grid, beta, int(j_next[cell].min()), int(j_next[cell].max()), n_a, n_b)
        # pieces per partial cell, rounded up to a power of two: one vectorized pass per group
        pieces = np.clip(np.ceil(np.maximum(kappa, 0.0) / KAPPA_SUB), 1, K_PARTIAL)
        pieces = 2 ** np.ceil(np.log2(pieces)).astype(np.int64)
        for k in np.unique(pieces[cell]):
            sel = cell & (pieces == k)
            mom[sel], mass[sel] = _partial_cells(grid, beta, v_p[sel], g_p[sel], j_next[sel], tab, int(k), n_a, n_b)
    return mom / mass[:, None, None], mass


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


def _remainder_sums(mom: np.ndarray, count: int, z: np.ndarray, full: bool) -> tuple[np.ndarray, ...]:
    r"""Gaussian draws of :math:`(\sum X, \sum X^2, \sum XY)` over ``count`` conditional keys.

    Mean ``count * (m10, m20, m11)``, covariance ``count`` times the covariance
    of :math:`(X, X^2, XY)`; clipped to the constraints :math:`0 \le \sum X^2
    \le \sum X \le N`, :math:`\sum XY \ge 0`.
    """
    m10, m20 = mom[:, 0, 0], mom[:, 1, 0]
    root = math.sqrt(count)
    if not full:
        sd = np.sqrt(np.maximum(m20 - m10 * m10, 0.0))
        r1 = np.clip(count * m10 + root * sd * z[:, 0], 0.0, float(count))
        return (r1,)
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
    return r1, r2, r3


@_overflow_is_capped
def _statistics(grid: _Grid, base: _Base, gaps: np.ndarray, beta: float, full: bool, extras: bool = False):
    r"""Weights and statistics of a block (module docstring, docs/theory.md section 4).

    With :math:`x_k = e^{-y_k}`, :math:`y_k = \beta (G_{(k)} - G_{(1)})`, the
    scaled remainder :math:`s = e^{-y_m}` and the Gaussian sums
    :math:`R_1, R_2, R_3`: :math:`T = \sum x + s R_1`,
    :math:`W_1 = 1/T`, :math:`n_\mathrm{eff} = T^2 / (\sum x^2 + s^2 R_2)`,
    :math:`H = \log T + (\sum x y + s (y_m R_1 + R_3))/T` with
    :math:`\log T = \operatorname{log1p}(T - 1)`.

    Returns ``(weights, gaps, remainder, max_weight, n_eff, entropy)``, or
    ``(max_weight,)`` when ``full`` is False; with ``extras`` (and ``full``) also
    ``(sums, s, moments)`` of the remainder (``None`` when all keys are enumerated),
    for the output (:func:`_output_block`).
    """
    y = np.minimum(beta * (gaps - gaps[:, :1]), _Y_CAP)
    x = np.exp(-y)
    t_minus_1 = x[:, 1:].sum(axis=1)
    count = base.n - base.m
    rem = np.zeros(x.shape[0])
    more = None
    if count > 0:
        n_a, n_b = (_A_FULL, _B_FULL) if full else (_A_W1, _B_W1)
        mom, _ = _moments_at(grid, beta, base.v[:, -1], gaps[:, -1], n_a, n_b)
        sums = _remainder_sums(mom, count, base.z, full)
        s = np.exp(-y[:, -1])
        rem = s * sums[0]
        more = (sums, s, mom)
    t_minus_1 = t_minus_1 + rem
    total = 1.0 + t_minus_1
    w1 = 1.0 / total
    if not full:
        return (w1,)
    sq = (x * x).sum(axis=1)
    ent_num = (x * y).sum(axis=1)
    if count > 0:
        r1, r2, r3 = sums
        sq = sq + s * s * r2
        ent_num = ent_num + s * (y[:, -1] * r1 + r3)
    weights = x / total[:, None]
    n_eff = total * total / sq
    entropy = np.log1p(t_minus_1) + ent_num / total
    stats = (weights, gaps, rem / total, w1, n_eff, entropy)
    return (stats, more) if extras else stats


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
