r"""Mixtures: of score laws (:class:`MixtureScoreLaw`) and of key laws (:class:`Mixture`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from .._validate import InputError, InputTypeError, RngLike, as_generator, check_n, check_vector
from ..tails import ScoreTail
from .base import KeyLaw, ScoreLaw

__all__ = ["Mixture", "MixtureScoreLaw"]

@dataclass(frozen=True, eq=False)
class MixtureScoreLaw(ScoreLaw):
    r"""Weighted mixture :math:`\sum_i w_i F_i` of score laws (docs/theory.md section 2).

    The endpoint is the largest component endpoint :math:`s^*`; component ``i``
    contributes through its own gap shifted by :math:`s^* - s_i^*`.  Its tail
    comes from the components that reach :math:`s^*`: the smallest
    :math:`\gamma` among them wins, with :math:`\kappa = \sum w_i \kappa_i` over
    the components sharing that :math:`\gamma`.

    Examples
    --------
    >>> from attnscale.laws import UniformScoreLaw
    >>> law = MixtureScoreLaw((UniformScoreLaw(3), UniformScoreLaw(5)), (0.5, 0.5))
    >>> law.tail()
    ScoreTail(endpoint=1.0, gamma=1.0, kappa=0.25, kind='weibull')
    """

    laws: tuple[ScoreLaw, ...]
    weights: np.ndarray
    endpoint: float = field(init=False, repr=False)
    lower: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        laws = tuple(self.laws) if isinstance(self.laws, (list, tuple)) else None
        if not laws or not all(isinstance(law, ScoreLaw) for law in laws):
            raise InputTypeError(f"laws: got {self.laws!r}; expected a non-empty sequence of ScoreLaw")
        object.__setattr__(self, "laws", laws)
        object.__setattr__(self, "weights", _normalized_weights(self.weights, len(laws)))
        object.__setattr__(self, "endpoint", max(float(law.endpoint) for law in laws))
        object.__setattr__(self, "lower", min(float(law.lower) for law in laws))

    @property
    def reference(self) -> float:
        """Origin of the gap: the largest component reference (the endpoint when all are bounded)."""
        return max(float(law.reference) for law in self.laws)

    def _parts(self) -> Iterator[tuple[ScoreLaw, float, float]]:
        """Each component, its weight and the shift of its gap origin below the mixture's."""
        top = self.reference
        for law, w in zip(self.laws, self.weights):
            yield law, float(w), top - float(law.reference)

    def _weighted(self, g: np.ndarray, method: str, below: float) -> np.ndarray:
        """``sum_j w_j F_j(g - shift_j)`` for the components' ``method`` (``below`` where a gap is negative), capped at 1."""
        out = np.zeros(g.shape)
        for law, w, shift in self._parts():
            gi = g - shift
            out = out + w * np.where(gi > 0, getattr(law, method)(np.maximum(gi, 0.0)), below)
        return np.minimum(out, 1.0)

    def _gap_cdf(self, g: np.ndarray) -> np.ndarray:
        return self._weighted(g, "gap_cdf", 0.0)

    def _gap_sf(self, g: np.ndarray) -> np.ndarray:
        return self._weighted(g, "gap_sf", 1.0)

    def _log_combine(self, g: np.ndarray, method: str, outside: float) -> np.ndarray:
        out = np.full(g.shape, -np.inf)
        for law, w, shift in self._parts():
            gi = g - shift
            with np.errstate(divide="ignore"):
                part = np.where(gi > 0, getattr(law, method)(np.maximum(gi, 0.0)), outside)
            out = np.logaddexp(out, math.log(w) + part)
        return np.minimum(out, 0.0)

    def _log_gap_cdf(self, g: np.ndarray) -> np.ndarray:
        """``log P(G <= g)`` as a log-sum-exp of the components."""
        return self._log_combine(g, "log_gap_cdf", -np.inf)

    def _log_gap_sf(self, g: np.ndarray) -> np.ndarray:
        """``log P(G > g)`` as a log-sum-exp of the components."""
        return self._log_combine(g, "log_gap_sf", 0.0)

    def _gap_pdf(self, g: np.ndarray) -> np.ndarray:
        out = np.zeros(g.shape)
        for law, w, shift in self._parts():
            gi = g - shift
            out = out + w * np.where(gi >= 0, law.gap_pdf(np.maximum(gi, 0.0)), 0.0)
        return out

    def _log_gap_pdf(self, g: np.ndarray) -> np.ndarray:
        """``log`` gap density as a log-sum-exp of the components."""
        out = np.full(g.shape, -np.inf)
        for law, w, shift in self._parts():
            gi = g - shift
            part = np.where(gi >= 0, law.log_gap_pdf(np.maximum(gi, 0.0)), -np.inf)
            out = np.logaddexp(out, math.log(w) + part)
        return out

    def _end_log_prob(
        self, x: np.ndarray, bottom: bool, upper: bool, need: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""As :meth:`ScoreLaw._end_log_prob`; at the bottom each component at its own distance from its bottom.

        A component whose bottom lies :math:`o_i \ge 0` above the mixture's is at
        the distance :math:`e^x - o_i` from its own (exact where :math:`o_i = 0`);
        where that is not positive the whole component lies above ``g``.
        """
        if not bottom:
            return super()._end_log_prob(x, bottom, upper, need)
        e = np.exp(x)
        log_p = np.full(x.shape, -np.inf)
        log_f = np.full(x.shape, -np.inf)
        for law, w, _ in self._parts():
            offset = float(law.lower) - float(self.lower)
            rows = e > offset
            if not upper:
                log_p[~rows] = np.logaddexp(log_p[~rows], math.log(w))
            if np.any(rows):
                lp, lf = law._end_log_prob(np.log(e[rows] - offset), True, upper, need[rows])
                log_p[rows] = np.logaddexp(log_p[rows], math.log(w) + lp)
                log_f[rows] = np.logaddexp(log_f[rows], math.log(w) + np.where(need[rows], lf, -np.inf))
        return np.minimum(log_p, 0.0), np.where(need, log_f, np.nan)

    def tail(self) -> ScoreTail:
        """The components whose gap origin is the mixture's: the smallest ``gamma`` among them, ``kappa`` summed."""
        top = self.reference
        tails = [(w, law.tail()) for law, w, _ in self._parts() if float(law.reference) == top]
        gamma = min(t.gamma for _, t in tails)
        log_kappa = float(special.logsumexp([math.log(w) + t.log_kappa for w, t in tails if t.gamma == gamma]))
        return ScoreTail.from_log_kappa(top, gamma, log_kappa, kind="weibull")

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` i.i.d. scores: multinomial component counts, then each component, shuffled."""
        counts = rng.multinomial(n, self.weights)
        parts = [law.sample(int(c), rng) for law, c in zip(self.laws, counts) if c > 0]
        return rng.permutation(np.concatenate(parts))


def _normalized_weights(weights: Any, k: int) -> np.ndarray:
    """Positive finite weights of length ``k``, normalized to sum 1, read-only."""
    w = check_vector(weights, "weights", k)
    if np.any(w <= 0):
        raise InputError(f"weights: got {w.tolist()}; expected positive numbers")
    w = w / w.sum()
    w.setflags(write=False)
    return w


@dataclass(frozen=True, eq=False)
class Mixture(KeyLaw):
    r"""Mixture :math:`\sum_i w_i \mu_i` of key laws of one dimension.

    Sampling is exact (multinomial counts, then each component, shuffled).
    The score law is the weighted mixture of the component score laws
    (:class:`MixtureScoreLaw`; docs/theory.md section 2).

    Parameters
    ----------
    laws : sequence of KeyLaw
        Components, all with the same ``d``.
    weights : array_like, optional
        Positive weights (normalized here); equal weights by default.

    Examples
    --------
    >>> from attnscale.laws import GreatSubsphere, UniformSphere
    >>> law = Mixture([UniformSphere(3), GreatSubsphere(3, 2)], [0.9, 0.1])
    >>> law.score_tail([1.0, 0.0, 0.0]).gamma    # the subsphere's local dimension wins
    0.5
    """

    laws: tuple[KeyLaw, ...]
    weights: np.ndarray | None = None
    d: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.laws, KeyLaw) or not isinstance(self.laws, (list, tuple)):
            raise InputTypeError(f"laws: got {type(self.laws).__name__}; expected a non-empty list or tuple of KeyLaw")
        laws = tuple(self.laws)
        if not laws:
            raise InputError("laws: got an empty sequence; expected at least one KeyLaw")
        for i, law in enumerate(laws):
            if not isinstance(law, KeyLaw):
                raise InputTypeError(f"laws: item {i} is {type(law).__name__}; expected a KeyLaw")
        dims = [law.d for law in laws]
        if len(set(dims)) != 1:
            raise InputError(f"laws: got dimensions {dims}; all components must have the same d")
        weights = np.ones(len(laws)) if self.weights is None else self.weights
        object.__setattr__(self, "laws", laws)
        object.__setattr__(self, "weights", _normalized_weights(weights, len(laws)))
        object.__setattr__(self, "d", laws[0].d)

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        g = as_generator(rng)
        n = check_n(n)
        counts = g.multinomial(n, self.weights)
        parts = [law.sample(int(c), g) for law, c in zip(self.laws, counts) if c > 0]
        return g.permutation(np.concatenate(parts, axis=0), axis=0)

    def score_law(self, q: ArrayLike) -> MixtureScoreLaw:
        q = self._query(q)
        return MixtureScoreLaw(tuple(law.score_law(q) for law in self.laws), self.weights)
