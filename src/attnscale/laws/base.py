r"""The two bases: :class:`ScoreLaw` (a 1-D law of scores, described through its gap) and :class:`KeyLaw`."""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._numerics.arrays import as_output
from .._numerics.roots import log_slope, solve_increasing
from .._numerics.special import LOG_TINY
from .._validate import RngLike, as_generator, check_n, check_unit_vector
from ..tails import ScoreTail

__all__ = ["KeyLaw", "ScoreLaw"]

class ScoreLaw(abc.ABC):
    r"""A 1-D law of scores on ``[lower, endpoint]``, described through its gap.

    Subclasses implement ``gap_cdf``, ``gap_sf``, ``gap_pdf`` and ``tail``
    (and ``endpoint``, ``lower``); everything else is derived here.  ``gap_ppf``
    defaults to a batched Newton search in log space that keeps relative
    accuracy for tiny probabilities (the exact sampler of section 4 feeds it
    hundreds of ``p`` at once, down to ``1e-20`` and below); closed forms
    override it.  Laws whose functions underflow override ``log_gap_cdf``,
    ``log_gap_sf`` and ``log_gap_pdf``.
    """

    endpoint: float
    lower: float

    # -- to implement -------------------------------------------------------
    @abc.abstractmethod
    def gap_cdf(self, g: ArrayLike) -> Any:
        """``P(s* - S <= g)``."""

    @abc.abstractmethod
    def gap_sf(self, g: ArrayLike) -> Any:
        """``P(s* - S > g)``."""

    @abc.abstractmethod
    def gap_pdf(self, g: ArrayLike) -> Any:
        """Density of the gap ``s* - S``."""

    @abc.abstractmethod
    def tail(self) -> ScoreTail:
        """The :class:`ScoreTail` of this law (section 2)."""

    # -- overridable defaults ----------------------------------------------
    def log_gap_cdf(self, g: ArrayLike) -> Any:
        """``log P(s* - S <= g)`` (override where values can underflow)."""
        with np.errstate(divide="ignore"):
            return np.log(self.gap_cdf(g))

    def log_gap_sf(self, g: ArrayLike) -> Any:
        """``log P(s* - S > g)`` (override where values can underflow)."""
        with np.errstate(divide="ignore"):
            return np.log(self.gap_sf(g))

    def log_gap_pdf(self, g: ArrayLike) -> Any:
        """``log`` density of the gap (override where the density can underflow)."""
        with np.errstate(divide="ignore"):
            return np.log(self.gap_pdf(g))

    def gap_ppf(self, p: ArrayLike) -> Any:
        r"""Gap ``g`` with ``P(s* - S <= g) = p``, accurate for tiny ``p``; all ``p`` at once.

        Solves :math:`\log F_G(g) = \log p` for ``p <= 1/2`` and
        :math:`\log \bar F_G(g) = \log(1-p)` above, in the log-distance to the
        nearer end of the support (width ``w``): :math:`y = \log g` where the
        root is at most :math:`w/2` (one evaluation at :math:`w/2` tells),
        :math:`z = \log(w - g)` beyond.  Near either end the probabilities are
        power laws, linear in these variables, so Newton steps with the exact
        slope (e.g. :math:`d\log F_G/dy = g f_G(g)/F_G(g)`) converge in a few
        steps, guarded by a bracket (:func:`_newton_rows`); the first seeds are
        the tails, :math:`g \approx (p/\kappa)^{1/\gamma}`.  The distinct ``p``
        are solved together, sorted: every 8th first, the others from the cubic
        Hermite interpolant of those roots in the log probability, which leaves
        one or two steps each (:func:`solve_increasing`).  A root is accepted
        when the step falls below ``1e-12`` (relative in ``g`` or ``w - g``; the
        step is applied).  ``p <= 0`` (and NaN) gives 0, ``p >= 1`` the width,
        and roots below the smallest normal float (``2.2e-308``) are returned
        as 0.  docs/theory.md section 4.

        Examples
        --------
        >>> from attnscale.laws import MixtureScoreLaw, UniformScoreLaw
        >>> law = MixtureScoreLaw((UniformScoreLaw(3), UniformScoreLaw(3)), (0.5, 0.5))
        >>> g = law.gap_ppf([1e-300, 0.25, 0.75])  # G ~ U(0, 2): 2p
        >>> bool(np.allclose(g, [2e-300, 0.5, 1.5], rtol=1e-12, atol=0.0))
        True
        """
        p = np.asarray(p, dtype=float)
        flat = p.reshape(-1)
        width = float(self.endpoint - self.lower)
        out = np.where(flat >= 1.0, width, 0.0)
        for upper, rows in ((False, (flat > 0.0) & (flat <= 0.5)), (True, (flat > 0.5) & (flat < 1.0))):
            if np.any(rows):
                t = np.log1p(-flat[rows]) if upper else np.log(flat[rows])
                out[rows] = self._ppf_side(t, upper, width)
        return as_output(out.reshape(p.shape))

    # -- root search ----------------------------------------------------------
    def _end_log_prob(
        self, x: np.ndarray, bottom: bool, upper: bool, need: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Log probability and log density at the distance :math:`e^x` from an end.

        At :math:`g = e^x` (``bottom=False``) or :math:`g = w - e^x`
        (``bottom=True``): :math:`\log F_G(g)`, or :math:`\log\bar F_G(g)` if
        ``upper``; and :math:`\log f_G(g)` where ``need`` (NaN elsewhere).  Laws
        that can compute near their bottom without forming ``w - e^x`` override this.
        """
        e = np.exp(x)
        g = float(self.endpoint - self.lower) - e if bottom else e
        log_p = np.asarray(self.log_gap_sf(g) if upper else self.log_gap_cdf(g), dtype=float).reshape(x.shape)
        log_f = np.full(x.shape, np.nan)
        if np.any(need):
            log_f[need] = self.log_gap_pdf(g[need])
        return log_p, log_f

    def _end_seed(self, t: np.ndarray, bottom: bool) -> np.ndarray | None:
        r"""Tail seed :math:`(\log p - \log\kappa)/\gamma` of the log-distance to the top (none for the bottom)."""
        if bottom:
            return None
        try:
            tail = self.tail()
        except (ValueError, OverflowError):
            return None
        return (t - tail.log_kappa) / tail.gamma

    def _ppf_side(self, t: np.ndarray, upper: bool, width: float) -> np.ndarray:
        r"""Roots of :math:`\log F_G(g) = t` (:math:`\log\bar F_G(g) = t` if ``upper``) in the log-distance to the nearer end.

        One evaluation at :math:`g = w/2` tells which roots lie below it: :math:`F(w/2) \ge p`, or
        :math:`\bar F(w/2) \le 1 - p`; those are solved in :math:`y = \log g`, the others in
        :math:`z = \log(w - g)`, both on :math:`(-\infty, \log(w/2)]` (``+inf`` for an unbounded law).
        """
        out = np.empty(t.shape)
        if math.isfinite(width):
            x_hi = math.log(0.5 * width)
            mid, _ = self._end_log_prob(np.array([x_hi]), False, upper, np.zeros(1, dtype=bool))
            near = (t >= mid[0]) if upper else (t <= mid[0])
        else:
            x_hi, near = math.inf, np.ones(t.shape, dtype=bool)
        for bottom, rows in ((False, near), (True, ~near)):
            if np.any(rows):
                e = self._solve_end(t[rows], upper, bottom, x_hi, width)
                out[rows] = np.maximum(width - e, 0.0) if bottom else np.minimum(e, width)
        return out

    def _solve_end(self, t: np.ndarray, upper: bool, bottom: bool, x_hi: float, width: float) -> np.ndarray:
        r"""Distances :math:`e^x` from the top (or bottom) where :math:`\log P = t`: the value solved for is
        :math:`\pm\log P`, signed so that it increases with :math:`x` (:func:`solve_increasing`)."""
        sign = 1.0 if upper == bottom else -1.0

        def fun(x, need):
            log_p, log_f = self._end_log_prob(x, bottom, upper, need)
            return sign * log_p, log_slope(x, log_p, log_f, need)

        seed = (lambda s: self._end_seed(s, bottom)) if sign > 0 else None
        floor = LOG_TINY if math.isfinite(width) else -math.inf
        x = solve_increasing(fun, sign * t, seed, x_hi, floor)
        with np.errstate(under="ignore"):
            return np.exp(x)

    # -- derived ------------------------------------------------------------
    def cdf(self, s: ArrayLike) -> Any:
        """``P(S <= s)``."""
        return self.gap_sf(self.endpoint - np.asarray(s, dtype=float))

    def sf(self, s: ArrayLike) -> Any:
        """``P(S > s)``."""
        return self.gap_cdf(self.endpoint - np.asarray(s, dtype=float))

    def pdf(self, s: ArrayLike) -> Any:
        """Density of ``S``."""
        return self.gap_pdf(self.endpoint - np.asarray(s, dtype=float))

    def isf(self, p: ArrayLike) -> Any:
        """Score ``s`` with ``P(S > s) = p``."""
        return self.endpoint - self.gap_ppf(p)

    def ppf(self, p: ArrayLike) -> Any:
        """Score ``s`` with ``P(S <= s) = p``."""
        return self.endpoint - self.gap_ppf(1.0 - np.asarray(p, dtype=float))

    def sample(self, size: int, rng: RngLike = None) -> np.ndarray:
        """``size`` i.i.d. scores (inverse-cdf sampling of the gap)."""
        g = as_generator(rng)
        return self.endpoint - self.gap_ppf(g.random(check_n(size, "size")))


class KeyLaw(abc.ABC):
    """A law of keys in R^d.  Subclasses define ``d``, ``sample`` and ``score_law``."""

    d: int

    @abc.abstractmethod
    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        """``n`` i.i.d. keys, shape ``(n, d)``."""

    @abc.abstractmethod
    def score_law(self, q: ArrayLike) -> ScoreLaw:
        """Exact law of ``<q, K>`` for a unit query ``q``."""

    def score_tail(self, q: ArrayLike) -> ScoreTail:
        """Top of the score law seen from ``q`` (section 2)."""
        return self.score_law(q).tail()

    def _query(self, q) -> np.ndarray:
        return check_unit_vector(q, "q", self.d)
