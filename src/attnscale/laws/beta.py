r"""Laws whose gap is a scaled Beta variable: uniform keys (on the sphere or a great subsphere) and :class:`BetaScoreLaw`."""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from .._numerics.special import log_betainc_lower, robust_betaincinv
from .._validate import InputError, RngLike, as_generator, check_dimension, check_finite, check_int, check_n
from ..tails import ScoreTail
from .base import KeyLaw, ScoreLaw
from .sphere import TangentMap, uniform_directions

__all__ = ["BetaScoreLaw", "GreatSubsphere", "UniformScoreLaw"]

class _BetaGap(ScoreLaw):
    r"""Shared kernels of laws whose gap is ``width * U``, ``U ~ Beta(shape1, shape2)``."""

    @property
    @abc.abstractmethod
    def _shape1(self) -> float:
        """First Beta parameter (the tail exponent)."""

    @property
    @abc.abstractmethod
    def _shape2(self) -> float:
        """Second Beta parameter."""

    @property
    @abc.abstractmethod
    def _width(self) -> float:
        """Width of the support."""

    def _u(self, g: np.ndarray) -> np.ndarray:
        return np.clip(g / self._width, 0.0, 1.0)

    def _v(self, g: np.ndarray) -> np.ndarray:
        return np.clip((self._width - g) / self._width, 0.0, 1.0)

    def _gap_cdf(self, g: np.ndarray) -> np.ndarray:
        return special.betainc(self._shape1, self._shape2, self._u(g))

    def _gap_sf(self, g: np.ndarray) -> np.ndarray:
        return np.exp(self._log_gap_sf(g))

    def _log_gap_cdf(self, g: np.ndarray) -> np.ndarray:
        """``log P(G <= g)``, finite down to the smallest positive ``g``."""
        return log_betainc_lower(self._shape1, self._shape2, self._u(g))

    def _log_gap_sf(self, g: np.ndarray) -> np.ndarray:
        r"""``log P(G > g)``: :math:`\log I_{1-u}(p_2, p_1)` (finite up to the bottom
        of the support), or :math:`\log(1 - I_u(p_1, p_2))` for ``u <= 1/2`` where the
        rounding of ``1 - u`` would cost accuracy."""
        u = self._u(g)
        with np.errstate(divide="ignore"):
            top = np.log1p(-special.betainc(self._shape1, self._shape2, u))
        bottom = log_betainc_lower(self._shape2, self._shape1, self._v(g))
        return np.where(u <= 0.5, top, bottom)

    def _log_dens(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``log`` gap density at ``g = w u``, ``v = 1 - u``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (
                special.xlogy(self._shape1 - 1.0, u)
                + special.xlogy(self._shape2 - 1.0, v)
                - special.betaln(self._shape1, self._shape2)
                - math.log(self._width)
            )

    def _log_gap_pdf(self, g: np.ndarray) -> np.ndarray:
        inside = (g >= 0) & (g <= self._width)
        return np.where(inside, self._log_dens(self._u(g), self._v(g)), -np.inf)

    def _gap_pdf(self, g: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(self._log_gap_pdf(g))

    def _end_log_prob(
        self, x: np.ndarray, bottom: bool, upper: bool, need: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""As :meth:`ScoreLaw._end_log_prob`; the upper tail at the bottom is :math:`\log I_v(p_2, p_1)`, :math:`v = e^x/w`."""
        if not (bottom and upper):
            return super()._end_log_prob(x, bottom, upper, need)
        v = np.minimum(np.exp(x) / self._width, 1.0)
        log_f = np.full(x.shape, np.nan)
        log_f[need] = self._log_dens(1.0 - v[need], v[need])
        return log_betainc_lower(self._shape2, self._shape1, v), log_f

    def _gap_ppf(self, p: np.ndarray) -> np.ndarray:
        return self._width * robust_betaincinv(self._shape1, self._shape2, p)

    def tail(self) -> ScoreTail:
        r""":math:`\gamma = p_1`, :math:`\kappa = w^{-p_1} / (p_1 B(p_1, p_2))` (section 2)."""
        a1, a2 = self._shape1, self._shape2
        log_kappa = -a1 * math.log(self._width) - math.log(a1) - float(special.betaln(a1, a2))
        return ScoreTail.from_log_kappa(self.endpoint, a1, log_kappa, kind="weibull")

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.endpoint - self._width * rng.beta(self._shape1, self._shape2, size=n)


@dataclass(frozen=True)
class UniformScoreLaw(_BetaGap):
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
    endpoint: float = field(init=False, repr=False, compare=False)
    lower: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "d", check_dimension(self.d))
        scale = check_finite(self.scale, "scale")
        if not scale > 0:
            raise InputError(f"scale: got {self.scale!r}; expected a finite number > 0")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "endpoint", scale)
        object.__setattr__(self, "lower", -scale)

    @property
    def a(self) -> float:
        """Beta parameter :math:`a = (d-1)/2`."""
        return (self.d - 1) / 2.0

    @property
    def _shape1(self) -> float:
        return self.a

    @property
    def _shape2(self) -> float:
        return self.a

    @property
    def _width(self) -> float:
        return 2.0 * self.scale


@dataclass(frozen=True)
class BetaScoreLaw(_BetaGap):
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
    endpoint: float = 1.0
    width: float = 2.0
    lower: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("shape1", "shape2", "width"):
            value = check_finite(getattr(self, name), name)
            if not value > 0:
                raise InputError(f"{name}: got {getattr(self, name)!r}; expected a finite number > 0")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "endpoint", check_finite(self.endpoint, "endpoint"))
        object.__setattr__(self, "lower", self.endpoint - self.width)

    @property
    def _shape1(self) -> float:
        return self.shape1

    @property
    def _shape2(self) -> float:
        return self.shape2

    @property
    def _width(self) -> float:
        return self.width


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

    def tangent_frame(self, q: ArrayLike) -> TangentMap | None:
        """The span's part of :math:`q^\\perp` for ``q`` in the span, else ``None`` (:meth:`KeyLaw.tangent_frame`)."""
        qv = self._query(q)
        if np.linalg.norm(qv[self.m :]) > 1e-12:
            return None
        return TangentMap.at(qv[: self.m] / np.linalg.norm(qv[: self.m]), self.d)
