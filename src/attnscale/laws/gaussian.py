r"""Gaussian keys and scores: the Gumbel class (docs/theory.md section 2)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from .._validate import InputError, RngLike, as_generator, check_choice, check_dimension, check_finite, check_n
from ..tails import ScoreTail
from .base import KeyLaw, ScoreLaw

__all__ = ["GAUSS_REF", "GaussianKeys", "GaussianScoreLaw"]

#: Reference point of the Gaussian gap, in standard deviations: P(Z > 40) = 3.7e-350 is
#: below the smallest float64, so every representable quantile has a positive gap.
GAUSS_REF = 40.0


@dataclass(frozen=True)
class GaussianScoreLaw(ScoreLaw):
    r"""Scores :math:`S \sim N(0, \sigma^2)`: the Gumbel class (docs/theory.md section 2).

    The law is unbounded: ``endpoint`` is :math:`+\infty` and ``lower``
    :math:`-\infty`.  The gap is measured from the *reference point*
    :attr:`reference` :math:`= 40\sigma`: :math:`G = 40\sigma - S`, with
    :math:`P(G \le 0) = \bar\Phi(40) \approx 3.7\times 10^{-350}`, below every
    float64, so all representable quantiles have positive gaps and the gap
    functions are exact for every real ``g`` (negative ones included).  The tail
    is ``ScoreTail(inf, 2, 1/(2 sigma^2), "gumbel")``: :math:`-\log P(S > s) \sim
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
    endpoint: float = field(default=math.inf, init=False, repr=False, compare=False)
    lower: float = field(default=-math.inf, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sigma = check_finite(self.sigma, "sigma")
        if not sigma > 0:
            raise InputError(f"sigma: got {self.sigma!r}; expected a finite number > 0")
        object.__setattr__(self, "sigma", sigma)

    @property
    def reference(self) -> float:
        r"""Reference point :math:`40\sigma` of the gap (the law is unbounded: ``endpoint`` is ``inf``)."""
        return GAUSS_REF * self.sigma

    def _z(self, g: np.ndarray) -> np.ndarray:
        r"""Standardized score :math:`(s_{ref} - g)/\sigma` at gap ``g``."""
        return GAUSS_REF - g / self.sigma

    def _gap_cdf(self, g: np.ndarray) -> np.ndarray:
        return np.asarray(special.ndtr(-self._z(g)))

    def _gap_sf(self, g: np.ndarray) -> np.ndarray:
        return np.asarray(special.ndtr(self._z(g)))

    def _log_gap_cdf(self, g: np.ndarray) -> np.ndarray:
        """``log P(G <= g)``, finite for every finite ``g``."""
        return np.asarray(special.log_ndtr(-self._z(g)))

    def _log_gap_sf(self, g: np.ndarray) -> np.ndarray:
        """``log P(G > g)``, finite for every finite ``g``."""
        return np.asarray(special.log_ndtr(self._z(g)))

    def _gap_pdf(self, g: np.ndarray) -> np.ndarray:
        z = self._z(g)
        return np.exp(-0.5 * z * z) / (math.sqrt(2.0 * math.pi) * self.sigma)

    def _log_gap_pdf(self, g: np.ndarray) -> np.ndarray:
        """``log`` gap density, finite for every finite ``g``."""
        z = self._z(g)
        return -0.5 * z * z - math.log(math.sqrt(2.0 * math.pi) * self.sigma)

    def _gap_ppf(self, p: np.ndarray) -> np.ndarray:
        r""":math:`G = 40\sigma + \sigma\,\Phi^{-1}(p)` (``scipy.special.ndtri``, accurate for tiny ``p``)."""
        with np.errstate(divide="ignore"):
            return self.sigma * (GAUSS_REF + special.ndtri(p))

    def tail(self) -> ScoreTail:
        r"""Gumbel tail: :math:`\gamma = 2`, :math:`\kappa = 1/(2\sigma^2)` (so ``critical_beta`` gives :math:`\sqrt{2\log n}/\sigma`)."""
        return ScoreTail.from_log_kappa(math.inf, 2.0, -math.log(2.0) - 2.0 * math.log(self.sigma), kind="gumbel")

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.sigma * rng.standard_normal(n)

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
