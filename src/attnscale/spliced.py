r"""A measured score law with an estimated power tail spliced on top (docs/theory.md section 7).

A real head's scores are known only as far as its observed context: ``N`` scores, whose top
``k`` fix a Weibull tail :math:`P(s^* - S \le g) \approx \kappa g^\gamma` (section 2, ``estimate.py``).
To ask what the head does at ``n > N`` keys, the sampler of section 4 needs quantiles below
:math:`1/N`, where nothing was measured.  :class:`SplicedScoreLaw` supplies them:

- **measured part** (gaps above :math:`g_k`, the ``k``-th smallest observed gap): the empirical
  distribution of the observed scores, with its distribution function interpolated linearly
  between the observed gaps, :math:`F(g_{(j)}) = j/N`;
- **extrapolated part** (gaps below :math:`g_k`, probability :math:`p_k = k/N`): the power law
  :math:`F(g) = p_k (g/g_k)^\gamma`, continuous with the measured part at the splice, so that
  :math:`\kappa = p_k g_k^{-\gamma}`.

Of ``n`` keys drawn from it, about :math:`n p_k` fall in the extrapolated part: for
:math:`n \le N` these are the ``k`` top scores smoothed by the fitted tail; beyond ``N`` the top of
the context lives entirely in the extrapolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._validate import InputError, check_finite, check_int, check_positive
from .laws import ScoreLaw
from .tails import ScoreTail

__all__ = ["SplicedScoreLaw"]


@dataclass(frozen=True, eq=False)
class SplicedScoreLaw(ScoreLaw):
    r"""Observed scores below the splice, a fitted power tail above it (module docstring; section 7).

    Parameters
    ----------
    scores : array_like
        The ``N`` observed scores (1-D, finite).
    endpoint : float
        Estimated essential supremum :math:`s^*`, above every observed score.
    gamma : float
        Exponent of the power tail, positive.
    k : int
        The tail replaces the top ``k`` observed scores, ``1 <= k < N``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> law = SplicedScoreLaw(rng.uniform(-1.0, 1.0, 1000), endpoint=1.0, gamma=1.0, k=50)
    >>> law.tail().gamma, round(law.tail().kappa, 1)         # uniform keys on S^2: kappa = 1/2
    (1.0, 0.5)
    >>> float(law.gap_ppf(law.gap_cdf(1e-9))) / 1e-9          # the power part, exact far below 1/N
    1.0
    """

    scores: np.ndarray
    endpoint: float
    gamma: float
    k: int
    lower: float = field(init=False, repr=False)
    _g: np.ndarray = field(init=False, repr=False)
    _f: np.ndarray = field(init=False, repr=False)
    _sf: np.ndarray = field(init=False, repr=False)
    _p_k: float = field(init=False, repr=False)
    _g_k: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = np.asarray(self.scores, dtype=float).reshape(-1)
        if s.size < 2 or not np.all(np.isfinite(s)):
            raise InputError(f"scores: got {s.size} values (finite: {int(np.isfinite(s).sum())}); expected at least 2 finite scores")
        top = check_finite(self.endpoint, "endpoint")
        if not top > float(s.max()):
            raise InputError(f"endpoint: got {self.endpoint!r}; expected a value above the largest score {float(s.max())!r}")
        gamma = check_positive(self.gamma, "gamma")
        k = check_int(self.k, "k", minimum=1, maximum=s.size - 1)
        gaps = np.sort(top - s)
        object.__setattr__(self, "endpoint", top)
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "lower", top - float(gaps[-1]))
        # knots of the measured part: the distinct gaps from g_(k) up, with F = (last index of each) / N
        g_knots, last = np.unique(gaps[k - 1 :], return_index=False, return_counts=True)
        counts = np.cumsum(last) + (k - 1)
        f_knots = counts / s.size
        f_knots[0] = k / s.size  # the splice: the power part's mass p_k = k/N
        if g_knots.size < 2:
            raise InputError("scores: fewer than two distinct scores below the splice; lower k")
        s_copy = s.copy()
        s_copy.setflags(write=False)
        object.__setattr__(self, "scores", s_copy)
        object.__setattr__(self, "_g", g_knots)
        object.__setattr__(self, "_f", f_knots)
        object.__setattr__(self, "_sf", 1.0 - f_knots)
        object.__setattr__(self, "_p_k", k / s.size)
        object.__setattr__(self, "_g_k", float(g_knots[0]))

    @property
    def splice_gap(self) -> float:
        """:math:`g_k`: gaps below it are extrapolated by the power tail."""
        return self._g_k

    @property
    def splice_probability(self) -> float:
        """:math:`p_k = k/N`: the mass of the extrapolated part."""
        return self._p_k

    def _power(self, g: np.ndarray) -> np.ndarray:
        return self._p_k * np.power(np.maximum(g, 0.0) / self._g_k, self.gamma)

    def _gap_cdf(self, g: np.ndarray) -> np.ndarray:
        return np.where(g < self._g_k, self._power(g), np.interp(g, self._g, self._f, right=1.0))

    def _gap_sf(self, g: np.ndarray) -> np.ndarray:
        return np.where(g < self._g_k, 1.0 - self._power(g), np.interp(g, self._g, self._sf, right=0.0))

    def _gap_pdf(self, g: np.ndarray) -> np.ndarray:
        slopes = np.diff(self._f) / np.diff(self._g)
        idx = np.clip(np.searchsorted(self._g, g, side="right") - 1, 0, slopes.size - 1)
        measured = np.where(g <= self._g[-1], slopes[idx], 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            power = np.where(g > 0.0, self.gamma * self._power(g) / np.where(g > 0.0, g, 1.0), 0.0)
        return np.where(g < self._g_k, power, measured)

    def _log_gap_cdf(self, g: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            power = math.log(self._p_k) + self.gamma * (np.log(np.maximum(g, 0.0)) - math.log(self._g_k))
            return np.where(g < self._g_k, power, np.log(np.interp(g, self._g, self._f, right=1.0)))

    def _log_gap_pdf(self, g: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            power = (
                math.log(self.gamma * self._p_k)
                + (self.gamma - 1.0) * np.log(np.maximum(g, 0.0))
                - self.gamma * math.log(self._g_k)
            )
            return np.where(g < self._g_k, power, np.log(self._gap_pdf(np.maximum(g, self._g_k))))

    def _gap_ppf(self, p: np.ndarray) -> np.ndarray:
        """Closed form: :math:`g_k (p/p_k)^{1/\\gamma}` below the splice, linear interpolation above."""
        with np.errstate(divide="ignore", invalid="ignore"):
            power = self._g_k * np.power(np.maximum(p, 0.0) / self._p_k, 1.0 / self.gamma)
        out = np.where(p <= self._p_k, power, np.interp(p, self._f, self._g))
        return np.where(p >= 1.0, self._g[-1], np.where(p <= 0.0, 0.0, out))

    def tail(self) -> ScoreTail:
        kappa = self._p_k * self._g_k ** (-self.gamma)
        return ScoreTail(endpoint=self.endpoint, gamma=self.gamma, kappa=kappa, kind="weibull")
