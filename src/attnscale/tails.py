"""Score tails, the critical scale ``beta*(n)`` and the regime of a context.

Implements docs/theory.md section 2 (score tail and critical scale) and the
regime names of section 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._validate import check_beta, check_choice, check_finite, check_n, check_positive

#: Tail classes.  ``weibull``: bounded scores, ``P(s* - S <= eps) ~ kappa eps^gamma``.
TAIL_KINDS = ("weibull",)

#: Largest log(beta*) returned (a little below log of the float64 maximum).
LOG_MAX_BETA = 700.0

#: Default band of ``c = beta / beta*(n)`` called critical by :func:`regime`.
CRITICAL_BAND = (0.1, 10.0)


@dataclass(frozen=True)
class ScoreTail:
    r"""Top of a score law: :math:`P(s^* - S \le \varepsilon) \sim \kappa\,\varepsilon^\gamma`.

    Parameters
    ----------
    endpoint : float
        Essential supremum :math:`s^*` of the score :math:`S = \langle q, K\rangle`.
    gamma : float
        Local exponent :math:`\gamma > 0` (uniform keys on :math:`S^{d-1}`: :math:`(d-1)/2`).
    kappa : float
        Prefactor :math:`\kappa > 0`.
    kind : str
        Tail class; ``"weibull"`` (bounded scores, docs/theory.md section 2).

    Examples
    --------
    >>> ScoreTail(endpoint=1.0, gamma=1.0, kappa=0.5)
    ScoreTail(endpoint=1.0, gamma=1.0, kappa=0.5, kind='weibull')
    """

    endpoint: float
    gamma: float
    kappa: float
    kind: str = "weibull"

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", check_finite(self.endpoint, "endpoint"))
        object.__setattr__(self, "gamma", check_positive(self.gamma, "gamma"))
        object.__setattr__(self, "kappa", check_positive(self.kappa, "kappa"))
        check_choice(self.kind, "kind", TAIL_KINDS)

    def gap_quantile(self, k: float, n: float) -> float:
        r"""First-order position of the ``k``-th largest gap, :math:`(k / (\kappa n))^{1/\gamma}`.

        Uses the mean arrival time ``k`` of the ``k``-th Poisson point (section 2).

        Examples
        --------
        >>> ScoreTail(1.0, 1.0, 0.25).gap_quantile(1, 100)
        0.04
        """
        return (float(k) / (self.kappa * float(n))) ** (1.0 / self.gamma)


@dataclass(frozen=True)
class Regime:
    """Regime of a context: its name and ``c = beta / beta*(n)`` (section 3).

    ``name`` is one of ``"global"`` (``beta <= 1``: the kernel covers the whole
    sphere), ``"subcritical"``, ``"critical"``, ``"supercritical"``.
    """

    name: str
    c: float


def critical_beta(n: float, tail: ScoreTail) -> float:
    r"""Critical inverse temperature :math:`\beta^*(n) = (\kappa n)^{1/\gamma}` (section 2).

    Parameters
    ----------
    n : int or float
        Context length, ``1 <= n <= 1e18`` (``1e6`` is accepted).
    tail : ScoreTail
        Score tail of the key law seen from the query.

    Returns
    -------
    float
        :math:`\beta^*(n)`; computed in log space, so it never overflows.

    Examples
    --------
    >>> round(critical_beta(1e6, ScoreTail(1.0, 1.0, 0.25)), 6)
    250000.0
    """
    n_int = check_n(n)
    if not isinstance(tail, ScoreTail):
        raise TypeError(f"tail: got {type(tail).__name__}; expected a ScoreTail")
    log_beta = (math.log(tail.kappa) + math.log(n_int)) / tail.gamma
    if log_beta > LOG_MAX_BETA:
        raise ValueError(
            f"n: beta*(n) = exp({log_beta:.4g}) for n={n_int:.3g}, gamma={tail.gamma:g}, kappa={tail.kappa:g} "
            "exceeds the float64 range"
        )
    product = tail.kappa * float(n_int)
    if 0.0 < product < math.inf:
        return product ** (1.0 / tail.gamma)
    return math.exp(log_beta)


def regime(n: float, beta: float, tail: ScoreTail, band: tuple[float, float] = CRITICAL_BAND) -> Regime:
    r"""Which regime a context of length ``n`` at inverse temperature ``beta`` is in.

    ``c = beta / beta*(n)``; ``c < band[0]`` is subcritical, ``c > band[1]``
    supercritical, in between critical; ``beta <= 1`` is the global-average
    regime whatever ``c`` (section 3).

    Examples
    --------
    >>> tail = ScoreTail(1.0, 1.0, 0.25)
    >>> regime(1e6, 250000.0, tail)
    Regime(name='critical', c=1.0)
    >>> regime(1e6, 100.0, tail).name
    'subcritical'
    """
    b = check_beta(beta)
    lo, hi = (check_positive(band[0], "band[0]"), check_positive(band[1], "band[1]"))
    if lo >= hi:
        raise ValueError(f"band: got {band!r}; expected (low, high) with 0 < low < high")
    c = b / critical_beta(n, tail)
    if b <= 1.0:
        name = "global"
    elif c < lo:
        name = "subcritical"
    elif c > hi:
        name = "supercritical"
    else:
        name = "critical"
    return Regime(name=name, c=c)
