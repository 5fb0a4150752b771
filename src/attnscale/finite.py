r"""Finite-n truth: the regime of a context from the exact law at its own ``n`` (docs/theory.md section 7).

The asymptotic verdict reads :math:`c = \beta/\beta^*(n)` against a band.  At head
dimensions 33-129 the finite-n law is nowhere near its limit at any practical ``n``
(docs/theory.md section 3, "Finite n"), so here the verdict is taken from the law of
the weights at the context's own ``n`` and ``beta``, drawn by
:func:`attnscale.sampler.sample_top` (exact for the top ``m`` keys, a Gaussian with the
exact conditional moments for the remainder, section 4):

- :math:`E W_1`, :math:`E n_\mathrm{eff}` and the mean entropy with their standard errors;
- the **effective c**: the ``c`` at which the critical limit law of the law's tail class has
  the same :math:`E W_1` (:func:`attnscale.limit_means.c_matching_max_weight`).  It equals
  the theory's ``c`` in the limit :math:`n \to \infty` (the law of :math:`W_1` at
  :math:`\beta = c\beta^*(n)` converges to the limit law's, and the inverse is continuous);
- the **regime**: subcritical, critical or supercritical as :math:`E W_1` lies below, in or
  above the levels of :func:`attnscale.limit_means.max_weight_levels` (equivalently
  ``c_eff`` against :func:`attnscale.limit_means.critical_band`); ``global`` for
  :math:`\beta \le 1`.  The asymptotic verdict, from :math:`c` and the same band, stands
  beside it, and ``asymptotics_reached`` says whether the two ``c`` agree within 10%.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ._validate import InputError, RngLike, check_beta, check_int, check_n
from .laws import KeyLaw, ScoreLaw
from .limit_means import c_matching_max_weight, critical_band, limit_max_weight
from .sampler import as_score_law, sample_top
from .tails import critical_beta

__all__ = ["HeadRegime", "Regime", "head_regime", "regime", "regime_from_max_weight", "regime_name"]

#: Draws of the exact sampler behind one verdict (the SE of c_eff is about 1% at d = 3, c = 1).
DEFAULT_SIZE = 20000
#: Relative disagreement of c_eff and c beyond which the asymptotics are not reached.
AGREEMENT = 0.1
#: Quantile of the normal law for the two-sided 95% interval of c_eff.
_Z95 = 1.959963984540054


@dataclass(frozen=True)
class Regime:
    r"""The regime of a context of ``n`` keys at ``beta``, from the exact law (docs/theory.md section 7).

    Attributes
    ----------
    name : str
        ``"global"`` (:math:`\beta \le 1`), ``"subcritical"``, ``"critical"`` or
        ``"supercritical"``, from the exact :math:`E W_1` at this ``n``.
    c_eff, c_eff_low, c_eff_high : float
        Effective ``c`` and its 95% interval (from the standard error of :math:`E W_1`).
    c_asymptotic : float
        :math:`\beta/\beta^*(n)`.
    regime_asymptotic : str
        The regime that ``c_asymptotic`` gives against the same band.
    asymptotics_reached : bool
        ``c_eff`` and ``c_asymptotic`` agree within 10%.
    max_weight, max_weight_se, n_eff, n_eff_se, entropy, entropy_se : float
        Means of :math:`W_1`, :math:`n_\mathrm{eff}` and the entropy over the draws, with SEs.
    beta_star : float
        :math:`\beta^*(n)`.
    band_low, band_high : float
        The critical band of ``c`` for this tail (:func:`attnscale.limit_means.critical_band`).
    n, beta, gamma, kind, m, size :
        The context, the tail's exponent and class, the keys drawn exactly per draw (the
        rest is the Gaussian remainder; ``m == n`` means all keys were enumerated) and the draws.
    """

    name: str
    c_eff: float
    c_eff_low: float
    c_eff_high: float
    c_asymptotic: float
    regime_asymptotic: str
    asymptotics_reached: bool
    max_weight: float
    max_weight_se: float
    n_eff: float
    n_eff_se: float
    entropy: float
    entropy_se: float
    beta_star: float
    band_low: float
    band_high: float
    n: int
    beta: float
    gamma: float
    kind: str
    m: int
    size: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field (``regime`` for ``name``).

        Examples
        --------
        >>> from attnscale.laws import UniformScoreLaw
        >>> sorted(regime(1e6, 10.0, UniformScoreLaw(3), size=200, rng=0).to_dict())[:4]
        ['asymptotics_reached', 'band_high', 'band_low', 'beta']
        """
        out = asdict(self)
        out["regime"] = out.pop("name")
        return out


def regime_name(beta: float, c: float, band: tuple[float, float]) -> str:
    """The regime that ``c`` gives against ``band``; ``global`` for ``beta <= 1`` (section 7).

    Examples
    --------
    >>> regime_name(50.0, 0.5, (0.1, 10.0)), regime_name(50.0, 20.0, (0.1, 10.0)), regime_name(0.5, 3.0, (0.1, 10.0))
    ('critical', 'supercritical', 'global')
    """
    if beta <= 1.0:
        return "global"
    if c < band[0]:
        return "subcritical"
    if c > band[1]:
        return "supercritical"
    return "critical"


def regime_from_max_weight(beta: float, mean_max_weight: float) -> str:
    """The regime from :math:`E W_1` against :func:`attnscale.limit_means.max_weight_levels` (section 7).

    The same verdict as ``c_eff`` against the critical band, without inverting the limit law
    (so it costs only the draws): for many verdicts at once, such as every head of a model.

    Examples
    --------
    >>> regime_from_max_weight(50.0, 1e-4), regime_from_max_weight(50.0, 0.5), regime_from_max_weight(50.0, 0.99)
    ('subcritical', 'critical', 'supercritical')
    """
    from .limit_means import max_weight_levels

    if beta <= 1.0:
        return "global"
    lo, hi = max_weight_levels()
    if mean_max_weight < lo:
        return "subcritical"
    if mean_max_weight > hi:
        return "supercritical"
    return "critical"


def _se(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0


def _c_from_weight(w: float, gamma: float, kind: str, c_guess: float) -> float:
    """``c_matching_max_weight`` made total: W_1 of exactly 0 or 1 maps to the ends."""
    if w <= 0.0:
        return 0.0
    if w >= 1.0:
        return math.inf
    return c_matching_max_weight(w, gamma, kind)


def _c_interval(w: float, se: float, c_eff: float, gamma: float, kind: str) -> tuple[float, float]:
    """95% interval of ``c_eff`` by the delta method on the log-odds of E W_1."""
    if not (0.0 < w < 1.0 and 0.0 < c_eff < math.inf) or se == 0.0:
        return c_eff, c_eff
    h = 1e-4
    up = limit_max_weight(gamma, c_eff * math.exp(h), kind).log_odds
    down = limit_max_weight(gamma, c_eff * math.exp(-h), kind).log_odds
    slope = (up - down) / (2 * h)  # d log-odds / d log c
    if not slope > 0.0:
        return c_eff, c_eff
    half = _Z95 * se / (w * (1.0 - w)) / slope  # in log c
    return c_eff * math.exp(-half), c_eff * math.exp(half)


def regime(
    n: Any,
    beta: float,
    law: KeyLaw | ScoreLaw,
    *,
    q: Any = None,
    size: int = DEFAULT_SIZE,
    rng: RngLike = 0,
    m: int | None = None,
) -> Regime:
    r"""The regime of a context of ``n`` keys from ``law`` at ``beta``, from the exact law (section 7).

    Parameters
    ----------
    n : int
        Context length, ``2 <= n <= 1e18``.
    beta : float
        Inverse temperature, ``>= 0``.
    law : KeyLaw or ScoreLaw
        The key law (seen from ``q``, default :math:`e_1`) or its score law.  Its tail
        (Weibull or Gumbel class) fixes the limit law that ``c_eff`` refers to.
    q : array_like, optional
        Unit query for a :class:`KeyLaw`.
    size : int
        Draws of the exact sampler.
    rng : Generator, int, SeedSequence or None
        Randomness of the draws (default: seed 0, so a verdict is reproducible).
    m : int, optional
        Keys drawn exactly per draw (default: :func:`attnscale.sampler.choose_m`).

    Returns
    -------
    Regime

    Examples
    --------
    >>> from attnscale.laws import UniformScoreLaw
    >>> r = regime(10**6, 8.0, UniformScoreLaw(64), size=2000)    # a d = 64 head at 1M keys
    >>> r.name, round(r.c_asymptotic, 2), r.asymptotics_reached, round(r.n_eff / 1e6, 2)
    ('subcritical', 2.84, False, 0.39)
    >>> r3 = regime(10**12, 5e11, UniformScoreLaw(3), size=20000)  # beta = beta*(n) at d = 3
    >>> r3.name, bool(abs(r3.c_eff - 1.0) < 0.02), r3.asymptotics_reached
    ('critical', True, True)
    """
    score_law = as_score_law(law, q)
    n_int = check_n(n)
    if n_int < 2:
        raise InputError(f"n: got {n_int}; a regime needs at least 2 keys")
    b = check_beta(beta)
    size = check_int(size, "size", minimum=2)
    tail = score_law.tail()
    if tail.kind == "atom":
        raise InputError("law: an atom tail has no limit law of the weights; use attnscale.simplex for its exact weight")
    gamma = float(tail.gamma)
    beta_star = critical_beta(n_int, tail)
    c_asym = b / beta_star
    band = critical_band(gamma if tail.kind == "weibull" else 1.0, tail.kind)
    top = sample_top(score_law, n_int, b, size, rng=rng, m=m)
    w = float(np.mean(top.max_weight))
    w_se = _se(top.max_weight)
    c_eff = _c_from_weight(w, gamma, tail.kind, c_asym)
    lo, hi = _c_interval(w, w_se, c_eff, gamma, tail.kind)
    reached = bool(c_asym > 0.0 and math.isfinite(c_eff) and abs(c_eff / c_asym - 1.0) <= AGREEMENT)
    return Regime(
        name=regime_name(b, c_eff, band),
        c_eff=c_eff,
        c_eff_low=lo,
        c_eff_high=hi,
        c_asymptotic=c_asym,
        regime_asymptotic=regime_name(b, c_asym, band),
        asymptotics_reached=reached,
        max_weight=w,
        max_weight_se=w_se,
        n_eff=float(np.mean(top.n_eff)),
        n_eff_se=_se(top.n_eff),
        entropy=float(np.mean(top.entropy)),
        entropy_se=_se(top.entropy),
        beta_star=beta_star,
        band_low=band[0],
        band_high=band[1],
        n=n_int,
        beta=b,
        gamma=gamma,
        kind=tail.kind,
        m=top.m,
        size=size,
    )


@dataclass(frozen=True)
class HeadRegime:
    r"""The finite-n verdict of a real head at ``n`` keys, from its observed scores (docs/theory.md section 7).

    Attributes
    ----------
    regime : Regime
        The verdict of :func:`regime` on the head's :class:`attnscale.spliced.SplicedScoreLaw`
        (observed scores below the splice, the estimated power tail above).
    c_eff_low, c_eff_high : float
        ``c_eff`` at the ends of the tail estimate's interval of :math:`\beta^*(n)` (the
        estimate's uncertainty in the endpoint, :math:`\gamma` and :math:`\kappa` together):
        the same law at :math:`\beta\,\hat\beta^*/\beta^*_{hi}` and :math:`\beta\,\hat\beta^*/\beta^*_{lo}`,
        which is exact for the part of the law above the splice (a power tail, where scaling
        :math:`\kappa` scales the gaps).
    regime_low, regime_high : str
        The verdicts there.
    observed_n : int
        ``N``, the number of observed scores.
    extrapolated : bool
        ``n > N``: the top of the context lies in the extrapolated tail.
    keys_in_tail_model : float
        Expected number of the ``n`` keys drawn from the extrapolated part, :math:`n k / N`.
    gamma, gamma_low, gamma_high : float
        The tail exponent and its interval.
    k : int
        Top scores replaced by the tail.
    """

    regime: Regime
    c_eff_low: float
    c_eff_high: float
    regime_low: str
    regime_high: str
    observed_n: int
    extrapolated: bool
    keys_in_tail_model: float
    gamma: float
    gamma_low: float
    gamma_high: float
    k: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the verdict's fields, then the head's (``measured``/``extrapolated`` spelled out)."""
        out = self.regime.to_dict()
        out.update({k: v for k, v in asdict(self).items() if k != "regime"})
        out["part"] = "extrapolated" if self.extrapolated else "measured"
        return out


def head_regime(
    scores: Any,
    n: Any,
    beta: float,
    *,
    k: int | None = None,
    level: float = 0.95,
    size: int = DEFAULT_SIZE,
    rng: RngLike = 0,
) -> HeadRegime:
    r"""The regime of a real head at ``n`` keys, from ``N`` observed scores (docs/theory.md section 7).

    The top of the scores is fitted by :func:`attnscale.estimate.estimate_tail` (Weibull class:
    a query off the keys' support has an endpoint below its norm, estimated with the rest); the
    law at any ``n`` is :class:`attnscale.spliced.SplicedScoreLaw`: measured below the splice,
    extrapolated above it.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> scores = rng.uniform(-1.0, 1.0, 20000)          # a head whose keys are uniform on S^2
    >>> h = head_regime(scores, 10**9, 2e8, size=4000)  # beta*(1e9) = 5e8: c = 0.4
    >>> h.extrapolated, h.regime.name, bool(h.c_eff_low < h.regime.c_eff < h.c_eff_high)
    (True, 'critical', True)
    """
    from .estimate import estimate_tail
    from .spliced import SplicedScoreLaw

    values = np.asarray(scores, dtype=float).reshape(-1)
    n_int = check_n(n)
    b = check_beta(beta)
    est = estimate_tail(values, k=k, level=level, rng=rng)
    if est.kind != "weibull":
        raise InputError(
            f"scores: the top of these scores is of the {est.kind} class; extrapolating a head beyond its observed "
            "context needs a Weibull (bounded) tail"
        )
    law = SplicedScoreLaw(values, est.endpoint, est.gamma, est.n_top)
    point = regime(n_int, b, law, size=size, rng=rng)
    star = est.critical_beta(n_int)
    ends = []
    for bound in (star.ci[1], star.ci[0]):  # a larger beta* means a smaller c
        scaled = b * star.value / bound if math.isfinite(bound) and bound > 0 else math.nan
        ends.append(regime(n_int, scaled, law, size=size, rng=rng) if math.isfinite(scaled) else None)
    lo, hi = ends
    return HeadRegime(
        regime=point,
        c_eff_low=lo.c_eff if lo else 0.0,
        c_eff_high=hi.c_eff if hi else math.inf,
        regime_low=lo.name if lo else "subcritical",
        regime_high=hi.name if hi else "supercritical",
        observed_n=int(values.size),
        extrapolated=n_int > values.size,
        keys_in_tail_model=n_int * est.n_top / values.size,
        gamma=est.gamma,
        gamma_low=est.gamma_ci[0],
        gamma_high=est.gamma_ci[1],
        k=int(est.n_top),
    )
