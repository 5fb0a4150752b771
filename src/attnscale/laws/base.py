r"""The two bases: :class:`ScoreLaw` (a 1-D law of scores, described through its gap) and :class:`KeyLaw`."""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._numerics.arrays import as_float_array, as_output
from .._numerics.roots import log_slope, solve_increasing
from .._numerics.special import LOG_TINY
from .._validate import RngLike, as_generator, check_n, check_unit_vector
from ..tails import ScoreTail
from .sphere import TangentMap

__all__ = ["KeyLaw", "ScoreLaw"]

class ScoreLaw(abc.ABC):
    r"""A 1-D law of scores on ``[lower, endpoint]``, described through its gap.

    Like ``scipy.stats``: the public methods (``gap_cdf``, ``gap_sf``, ``gap_pdf``,
    their logs, ``gap_ppf``, ``sample`` and the score versions ``cdf``, ``sf``,
    ``pdf``, ``isf``, ``ppf``) convert their input once to a float array, call a
    private method and shape the output once (a ``float`` for a scalar input,
    an array of the input's shape otherwise).  Subclasses implement the private
    ``_gap_cdf``, ``_gap_sf``, ``_gap_pdf`` (on float arrays) and ``tail``, and
    set ``endpoint`` and ``lower``; everything else is derived here.
    ``_gap_ppf`` defaults to a batched Newton search in log space that keeps
    relative accuracy for tiny probabilities (the exact sampler of section 4
    feeds it hundreds of ``p`` at once, down to ``1e-20`` and below); closed
    forms override it.  Laws whose functions underflow override
    ``_log_gap_cdf``, ``_log_gap_sf`` and ``_log_gap_pdf``.

    ``endpoint`` is the essential supremum :math:`s^*` of the scores (``inf`` for
    an unbounded law) and ``lower`` the infimum.  The gap is measured from
    :attr:`reference`: the endpoint for a bounded law, a fixed point above every
    representable quantile for an unbounded one (:class:`GaussianScoreLaw`).
    """

    endpoint: float
    lower: float

    @property
    def reference(self) -> float:
        """Origin of the gap ``G = reference - S``: the endpoint (overridden by unbounded laws)."""
        return self.endpoint

    # -- to implement (float arrays in, float arrays of the same shape out) ----
    @abc.abstractmethod
    def _gap_cdf(self, g: np.ndarray) -> np.ndarray:
        """``P(G <= g)``."""

    @abc.abstractmethod
    def _gap_sf(self, g: np.ndarray) -> np.ndarray:
        """``P(G > g)``."""

    @abc.abstractmethod
    def _gap_pdf(self, g: np.ndarray) -> np.ndarray:
        """Density of the gap ``G``."""

    @abc.abstractmethod
    def tail(self) -> ScoreTail:
        """The :class:`ScoreTail` of this law (section 2)."""

    # -- overridable defaults ----------------------------------------------
    def _log_gap_cdf(self, g: np.ndarray) -> np.ndarray:
        """``log P(G <= g)`` (override where values can underflow)."""
        with np.errstate(divide="ignore"):
            return np.log(self._gap_cdf(g))

    def _log_gap_sf(self, g: np.ndarray) -> np.ndarray:
        """``log P(G > g)`` (override where values can underflow)."""
        with np.errstate(divide="ignore"):
            return np.log(self._gap_sf(g))

    def _log_gap_pdf(self, g: np.ndarray) -> np.ndarray:
        """``log`` density of the gap (override where the density can underflow)."""
        with np.errstate(divide="ignore"):
            return np.log(self._gap_pdf(g))

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` i.i.d. scores (inverse-cdf sampling of the gap; override with direct samplers)."""
        return self.reference - self._gap_ppf(rng.random(n))

    # -- public: convert once, call the private method, shape once ------------
    def gap_cdf(self, g: ArrayLike) -> Any:
        """``P(G <= g)`` with ``G = reference - S``: a float for a scalar ``g``, else an array."""
        return as_output(self._gap_cdf(as_float_array(g)))

    def gap_sf(self, g: ArrayLike) -> Any:
        """``P(G > g)``: a float for a scalar ``g``, else an array."""
        return as_output(self._gap_sf(as_float_array(g)))

    def gap_pdf(self, g: ArrayLike) -> Any:
        """Density of the gap ``G``: a float for a scalar ``g``, else an array."""
        return as_output(self._gap_pdf(as_float_array(g)))

    def log_gap_cdf(self, g: ArrayLike) -> Any:
        """``log P(G <= g)``: a float for a scalar ``g``, else an array."""
        return as_output(self._log_gap_cdf(as_float_array(g)))

    def log_gap_sf(self, g: ArrayLike) -> Any:
        """``log P(G > g)``: a float for a scalar ``g``, else an array."""
        return as_output(self._log_gap_sf(as_float_array(g)))

    def log_gap_pdf(self, g: ArrayLike) -> Any:
        """``log`` density of the gap: a float for a scalar ``g``, else an array."""
        return as_output(self._log_gap_pdf(as_float_array(g)))

    def gap_ppf(self, p: ArrayLike) -> Any:
        """Gap ``g`` with ``P(G <= g) = p``, accurate for tiny ``p``: a float for a scalar ``p``, else an array."""
        return as_output(self._gap_ppf(as_float_array(p)))

    def _gap_ppf(self, p: np.ndarray) -> np.ndarray:
        r"""Gap ``g`` with ``P(G <= g) = p``, accurate for tiny ``p``; all ``p`` at once.

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
        flat = p.reshape(-1)
        width = float(self.reference - self.lower)
        out = np.where(flat >= 1.0, width, 0.0)
        for upper, rows in ((False, (flat > 0.0) & (flat <= 0.5)), (True, (flat > 0.5) & (flat < 1.0))):
            if np.any(rows):
                t = np.log1p(-flat[rows]) if upper else np.log(flat[rows])
                out[rows] = self._ppf_side(t, upper, width)
        return out.reshape(p.shape)

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
        g = float(self.reference - self.lower) - e if bottom else e
        log_p = np.asarray(self._log_gap_sf(g) if upper else self._log_gap_cdf(g), dtype=float).reshape(x.shape)
        log_f = np.full(x.shape, np.nan)
        if np.any(need):
            log_f[need] = self._log_gap_pdf(g[need])
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
        """``P(S <= s)``: a float for a scalar ``s``, else an array."""
        return self.gap_sf(self.reference - as_float_array(s))

    def sf(self, s: ArrayLike) -> Any:
        """``P(S > s)``: a float for a scalar ``s``, else an array."""
        return self.gap_cdf(self.reference - as_float_array(s))

    def pdf(self, s: ArrayLike) -> Any:
        """Density of ``S``: a float for a scalar ``s``, else an array."""
        return self.gap_pdf(self.reference - as_float_array(s))

    def isf(self, p: ArrayLike) -> Any:
        """Score ``s`` with ``P(S > s) = p``: a float for a scalar ``p``, else an array."""
        return self.reference - self.gap_ppf(p)

    def ppf(self, p: ArrayLike) -> Any:
        """Score ``s`` with ``P(S <= s) = p``: a float for a scalar ``p``, else an array."""
        return self.reference - self.gap_ppf(1.0 - as_float_array(p))

    def sample(self, size: int, rng: RngLike = None) -> np.ndarray:
        """``size`` i.i.d. scores, shape ``(size,)``."""
        gen = as_generator(rng)
        return self._sample(check_n(size, "size"), gen)


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

    def tangent_frame(self, q: ArrayLike) -> TangentMap | None:
        r"""Frame :math:`B` in which a key's direction is uniform given its score, or ``None``.

        Where it exists, a key with gap :math:`G = 1 - \langle q, K\rangle` is
        :math:`K = (1 - G)\,q + \sqrt{G(2-G)}\,B\theta` with :math:`\theta` uniform on the
        unit sphere of :math:`R^{dim}`, independent of :math:`G` (docs/theory.md section 3):
        uniform keys (any ``q``), zonal laws seen from their axis, a great subsphere seen
        from inside its span.  Any other law or query has directions that depend on the
        score: ``None`` (this default).  The frame is a :class:`TangentMap`
        (``.matrix()`` gives the ``(d, dim)`` matrix with orthonormal columns).

        Examples
        --------
        >>> from attnscale.laws import GreatSubsphere, UniformSphere
        >>> UniformSphere(3).tangent_frame([0.0, 0.0, 1.0]).matrix().shape
        (3, 2)
        >>> GreatSubsphere(5, 3).tangent_frame([0.6, 0.0, 0.0, 0.8, 0.0]) is None
        True
        """
        self._query(q)
        return None

    def _query(self, q) -> np.ndarray:
        return check_unit_vector(q, "q", self.d)
