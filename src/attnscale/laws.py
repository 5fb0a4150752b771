"""Key laws on the sphere and the exact 1-D laws of their scores ``<q, K>``.

A *key law* draws keys ``K`` (``sample``) and, for a query ``q``, gives the exact
law of the score ``S = <q, K>`` (``score_law``) and its top (``score_tail``).

Score laws are parameterized by the *gap* ``G = s* - S >= 0`` below the
endpoint ``s*``: the top of the law, where attention lives, is then computed
without cancellation (``1 - <q, K>`` is never formed by subtraction), and
quantiles of probabilities as small as ``1e-300`` stay accurate
(docs/theory.md sections 2 and 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from ._validate import RngLike, as_generator, check_dimension, check_n, check_unit_vector
from .tails import ScoreTail

# ---------------------------------------------------------------------------
# Score laws
# ---------------------------------------------------------------------------


class ScoreLaw:
    """A 1-D law of scores on ``[lower, endpoint]``, described through its gap.

    Subclasses implement ``gap_cdf``, ``gap_sf``, ``gap_pdf``, ``gap_ppf`` and
    ``tail``; everything else is derived here.  ``gap_ppf`` must keep relative
    accuracy for tiny probabilities (the exact sampler of section 4 feeds it
    ``p`` down to about ``1e-20`` and below).
    """

    endpoint: float
    lower: float

    # -- to implement -------------------------------------------------------
    def gap_cdf(self, g):  # pragma: no cover - abstract
        """``P(s* - S <= g)``."""
        raise NotImplementedError

    def gap_sf(self, g):  # pragma: no cover - abstract
        """``P(s* - S > g)``."""
        raise NotImplementedError

    def gap_pdf(self, g):  # pragma: no cover - abstract
        """Density of the gap ``s* - S``."""
        raise NotImplementedError

    def gap_ppf(self, p):  # pragma: no cover - abstract
        """Gap ``g`` with ``P(s* - S <= g) = p``, accurate for tiny ``p``."""
        raise NotImplementedError

    def tail(self) -> ScoreTail:  # pragma: no cover - abstract
        """The :class:`ScoreTail` of this law (section 2)."""
        raise NotImplementedError

    # -- derived ------------------------------------------------------------
    def cdf(self, s):
        """``P(S <= s)``."""
        return self.gap_sf(self.endpoint - np.asarray(s, dtype=float))

    def sf(self, s):
        """``P(S > s)``."""
        return self.gap_cdf(self.endpoint - np.asarray(s, dtype=float))

    def pdf(self, s):
        """Density of ``S``."""
        return self.gap_pdf(self.endpoint - np.asarray(s, dtype=float))

    def isf(self, p):
        """Score ``s`` with ``P(S > s) = p``."""
        return self.endpoint - self.gap_ppf(p)

    def ppf(self, p):
        """Score ``s`` with ``P(S <= s) = p``."""
        return self.endpoint - self.gap_ppf(1.0 - np.asarray(p, dtype=float))

    def sample(self, size: int, rng: RngLike = None) -> np.ndarray:
        """``size`` i.i.d. scores (inverse-cdf sampling of the gap)."""
        g = as_generator(rng)
        return self.endpoint - self.gap_ppf(g.random(check_n(size, "size")))


def _log_betainc_lower(a: float, b: float, x: np.ndarray) -> np.ndarray:
    r"""``log I_x(a, b)`` without underflow for small ``x``.

    For ``x < 1/2`` uses :math:`I_x(a,b) = \frac{x^a (1-x)^b}{a B(a,b)}\,
    {}_2F_1(a+b, 1; a+1; x)`; otherwise ``log(betainc)``.
    """
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    small = x < 0.5
    xs = x[small]
    with np.errstate(divide="ignore"):
        out[small] = (
            a * np.log(xs)
            + b * np.log1p(-xs)
            - math.log(a)
            - special.betaln(a, b)
            + np.log(special.hyp2f1(a + b, 1.0, a + 1.0, xs))
        )
        out[~small] = np.log(special.betainc(a, b, x[~small]))
    return out


def robust_betaincinv(a: float, b: float, p) -> np.ndarray:
    r"""Inverse of the regularized incomplete beta function, accurate for tiny ``p``.

    ``scipy.special.betaincinv`` is used where it is reliable (``p >= 1e-150``);
    below that, and wherever it returns 0 or NaN, a Newton solve on
    :math:`\log I_x(a,b) = \log p` in :math:`\log x` takes over.  The small-``x``
    series :math:`(p\,a B(a,b))^{1/a}` only seeds that solve: alone it is wrong
    at large ``a`` (docs/theory.md section 4).

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
        x = special.betaincinv(a, b, p)
    bad = (p < 1e-150) | ~np.isfinite(x) | ((x <= 0) & (p > 0))
    if np.any(bad):
        pb = p[bad]
        logp = np.log(pb)
        # seed: leading term of the small-x series, then Newton in y = log x
        y = np.minimum((logp + math.log(a) + special.betaln(a, b)) / a, math.log(0.5))
        for _ in range(100):
            xb = np.exp(y)
            f = _log_betainc_lower(a, b, xb) - logp
            # d log I / d log x = x * pdf(x) / I(x)
            dlog = np.exp(
                a * y + (b - 1.0) * np.log1p(-xb) - special.betaln(a, b) - _log_betainc_lower(a, b, xb)
            )
            step = f / dlog
            y = np.minimum(y - step, math.log(0.999999))
            if np.all(np.abs(step) < 1e-14):
                break
        xb = np.exp(y)
        xb[pb == 0] = 0.0
        x[bad] = xb
    x = np.where(p >= 1.0, 1.0, np.where(p <= 0.0, 0.0, x))
    return x[0] if scalar else x


@dataclass(frozen=True)
class UniformScoreLaw(ScoreLaw):
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

    def _u(self, g):
        return np.clip(np.asarray(g, dtype=float) / (2.0 * self.scale), 0.0, 1.0)

    def gap_cdf(self, g):
        return special.betainc(self.a, self.a, self._u(g))

    def gap_sf(self, g):
        return special.betainc(self.a, self.a, 1.0 - self._u(g))

    def gap_pdf(self, g):
        g = np.asarray(g, dtype=float)
        inside = (g >= 0) & (g <= 2.0 * self.scale)
        with np.errstate(divide="ignore", invalid="ignore"):
            dens = stats.beta.pdf(self._u(g), self.a, self.a) / (2.0 * self.scale)
        return np.where(inside, dens, 0.0)

    def gap_ppf(self, p):
        return 2.0 * self.scale * robust_betaincinv(self.a, self.a, p)

    def log_gap_cdf(self, g):
        """``log P(s* - S <= g)``, finite down to the smallest positive ``g``."""
        return _log_betainc_lower(self.a, self.a, self._u(g))

    def tail(self) -> ScoreTail:
        r""":math:`\gamma = a`, :math:`\kappa = (2\,\mathrm{scale})^{-a} / (a B(a,a))`."""
        a = self.a
        kappa = math.exp(-a * math.log(2.0 * self.scale) - math.log(a) - special.betaln(a, a))
        return ScoreTail(endpoint=self.scale, gamma=a, kappa=kappa, kind="weibull")

    def sample(self, size: int, rng: RngLike = None) -> np.ndarray:
        g = as_generator(rng)
        u = g.beta(self.a, self.a, size=check_n(size, "size"))
        return self.scale * (1.0 - 2.0 * u)


# ---------------------------------------------------------------------------
# Key laws
# ---------------------------------------------------------------------------


class KeyLaw:
    """A law of keys in R^d.  Subclasses define ``d``, ``sample`` and ``score_law``."""

    d: int

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:  # pragma: no cover - abstract
        """``n`` i.i.d. keys, shape ``(n, d)``."""
        raise NotImplementedError

    def score_law(self, q) -> ScoreLaw:  # pragma: no cover - abstract
        """Exact law of ``<q, K>`` for a unit query ``q``."""
        raise NotImplementedError

    def score_tail(self, q) -> ScoreTail:
        """Top of the score law seen from ``q`` (section 2)."""
        return self.score_law(q).tail()

    def _query(self, q) -> np.ndarray:
        return check_unit_vector(q, "q", self.d)


def uniform_directions(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform points on :math:`S^{d-1}` (normalized Gaussians), shape ``(n, d)``."""
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


@dataclass(frozen=True)
class UniformSphere(KeyLaw):
    r"""Keys uniform on the unit sphere :math:`S^{d-1}` (docs/theory.md section 2).

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

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        return uniform_directions(check_n(n), self.d, as_generator(rng))

    def score_law(self, q) -> UniformScoreLaw:
        self._query(q)
        return UniformScoreLaw(self.d)
