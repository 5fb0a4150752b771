"""Score tails, the critical scale ``beta*(n)`` and the regime of a context.

Implements docs/theory.md section 2 (score tail and critical scale: the Weibull
class, the Gumbel class and the atom-plus-gap class) and the regime names of
section 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ._validate import InputError, InputTypeError, check_beta, check_choice, check_finite, check_n, check_positive

#: Tail classes (docs/theory.md section 2).
#:
#: - ``weibull``: bounded scores, :math:`P(s^* - S \le \varepsilon) \sim \kappa\varepsilon^\gamma`;
#: - ``gumbel``: unbounded scores (``endpoint = inf``) with
#:   :math:`-\log P(S > s) \sim \kappa s^\gamma` (Gaussian scores :math:`N(0, \sigma^2)`:
#:   :math:`\gamma = 2`, :math:`\kappa = 1/(2\sigma^2)`);
#: - ``atom``: ``atom_count`` keys sit exactly at the endpoint, every other key at least ``gap``
#:   below (``gamma = 0``: the :math:`\gamma \to 0` end of the Weibull class; no prefactor).
TAIL_KINDS = ("weibull", "gumbel", "atom")

#: Largest log(beta*) returned (a little below log of the float64 maximum).
LOG_MAX_BETA = 700.0

#: Default band of ``c = beta / beta*(n)`` called critical by :func:`regime`.
CRITICAL_BAND = (0.1, 10.0)


#: ``log kappa`` beyond which ``kappa`` itself is not a normal float64 (``ScoreTail.kappa`` raises).
LOG_KAPPA_RANGE = (-708.0, 709.0)


@dataclass(frozen=True, repr=False, init=False)
class ScoreTail:
    r"""Top of a score law, in one of three classes (docs/theory.md section 2).

    The prefactor is stored as ``log_kappa``, so tails whose :math:`\kappa` is not a
    float64 (uniform keys on :math:`S^{d-1}` for :math:`d \ge 4096`:
    :math:`\log\kappa \approx 0.35 d`) work everywhere; ``kappa`` is
    :math:`e^{\log\kappa}` where that is representable and raises ``OverflowError``
    otherwise.  Give exactly one of ``kappa`` and ``log_kappa`` (or use
    :meth:`from_log_kappa`), except for an atom, which has no prefactor and
    gives ``atom_count`` instead (its ``log_kappa`` is ``nan``).

    Parameters
    ----------
    endpoint : float
        Essential supremum :math:`s^*` of the score :math:`S = \langle q, K\rangle`
        (``inf`` for the Gumbel class).
    gamma : float
        ``weibull``: local exponent :math:`\gamma > 0` of
        :math:`P(s^* - S \le \varepsilon) \sim \kappa\varepsilon^\gamma` (uniform keys on
        :math:`S^{d-1}`: :math:`(d-1)/2`); ``gumbel``: exponent :math:`\gamma > 0` of
        :math:`-\log P(S > s) \sim \kappa s^\gamma`; ``atom``: 0.
    kappa : float, optional
        ``weibull``/``gumbel``: prefactor :math:`\kappa > 0` (not given for an atom).
    kind : str
        ``"weibull"`` (default), ``"gumbel"`` or ``"atom"``.
    gap : float, optional
        ``atom`` only: distance :math:`\Delta > 0` from the atom down to every other score.
    log_kappa : float, optional
        :math:`\log\kappa` (keyword only), instead of ``kappa``.
    atom_count : float, optional
        ``atom`` only (keyword, required there): number of keys :math:`m > 0` in the
        atom at the endpoint (the query's own key: 1).

    Examples
    --------
    >>> ScoreTail(endpoint=1.0, gamma=1.0, kappa=0.5)
    ScoreTail(endpoint=1.0, gamma=1.0, kappa=0.5, kind='weibull')
    >>> ScoreTail(endpoint=math.inf, gamma=2.0, kappa=0.5, kind="gumbel").endpoint
    inf
    >>> ScoreTail(endpoint=1.0, gamma=0.0, kind="atom", gap=0.5, atom_count=1.0)
    ScoreTail(endpoint=1.0, gamma=0.0, kind='atom', gap=0.5, atom_count=1.0)
    >>> big = ScoreTail.from_log_kappa(1.0, 2047.5, 1417.0)   # uniform keys, d = 4096
    >>> big
    ScoreTail(endpoint=1.0, gamma=2047.5, log_kappa=1417.0, kind='weibull')
    >>> big.kappa_is_finite
    False
    """

    endpoint: float
    gamma: float
    log_kappa: float
    kind: str
    gap: float | None
    atom_count: float | None
    _kappa: float | None = field(init=False, compare=False, hash=False)

    def __init__(
        self,
        endpoint: float,
        gamma: float,
        kappa: float | None = None,
        kind: str = "weibull",
        gap: float | None = None,
        *,
        log_kappa: float | None = None,
        atom_count: float | None = None,
    ) -> None:
        kind = check_choice(kind, "kind", TAIL_KINDS)
        if kind == "gumbel":
            end = _real_or_inf(endpoint, "endpoint")
            if end != math.inf:
                raise InputError(f"endpoint: got {endpoint!r}; a gumbel tail is unbounded, expected inf")
        else:
            end = check_finite(endpoint, "endpoint")
        if kind == "atom":
            g = check_finite(gamma, "gamma")
            if g != 0.0:
                raise InputError(f"gamma: got {gamma!r}; an atom tail has gamma = 0")
            g = 0.0
            if gap is None:
                raise InputError("gap: required for an atom tail (distance from the atom to the other scores)")
            gap = check_positive(gap, "gap")
        else:
            g = check_positive(gamma, "gamma")
            if gap is not None:
                raise InputError(f"gap: got {gap!r}; only an atom tail has a gap")
        if kind == "atom":
            if kappa is not None or log_kappa is not None:
                raise InputError(
                    f"kappa/log_kappa: got kappa={kappa!r}, log_kappa={log_kappa!r}; an atom tail has no "
                    "prefactor, give atom_count (the number of keys in the atom)"
                )
            if atom_count is None:
                raise InputError("atom_count: required for an atom tail (number of keys in the atom)")
            atom_count = check_positive(atom_count, "atom_count")
            k, lk = None, math.nan
        else:
            if atom_count is not None:
                raise InputError(f"atom_count: got {atom_count!r}; only an atom tail has an atom_count")
            if (kappa is None) == (log_kappa is None):
                raise InputError(
                    f"kappa/log_kappa: got kappa={kappa!r}, log_kappa={log_kappa!r}; give exactly one of them"
                )
            if kappa is not None:
                k = check_positive(kappa, "kappa")
                lk = math.log(k)
            else:
                lk = check_finite(log_kappa, "log_kappa")
                k = math.exp(lk) if LOG_KAPPA_RANGE[0] < lk < LOG_KAPPA_RANGE[1] else None
        fields = (("endpoint", end), ("gamma", g), ("log_kappa", lk), ("kind", kind), ("gap", gap), ("atom_count", atom_count))
        for name, value in fields:
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_kappa", k)

    @classmethod
    def from_log_kappa(
        cls, endpoint: float, gamma: float, log_kappa: float, kind: str = "weibull", gap: float | None = None
    ) -> ScoreTail:
        r"""The tail with prefactor :math:`\kappa = e^{\log\kappa}` (any finite ``log_kappa``).

        Examples
        --------
        >>> ScoreTail.from_log_kappa(1.0, 1.0, math.log(0.25)).kappa
        0.25
        """
        return cls(endpoint, gamma, kind=kind, gap=gap, log_kappa=log_kappa)

    @property
    def kappa(self) -> float:
        r"""The prefactor :math:`\kappa` as a float.

        Raises
        ------
        ValueError
            For an atom tail, which has no prefactor (its size is ``atom_count``).
        OverflowError
            Where :math:`\kappa` is not a normal float64 (``kappa_is_finite`` is
            false); use ``log_kappa`` then.
        """
        if self.kind == "atom":
            raise InputError("kappa: an atom tail has no prefactor; its number of keys is atom_count")
        if self._kappa is None:
            raise OverflowError(
                f"kappa: exp({self.log_kappa:.6g}) is outside the float64 range; use log_kappa"
            )
        return self._kappa

    @property
    def kappa_is_finite(self) -> bool:
        """Whether ``kappa`` is a normal float64 (else only ``log_kappa`` is available; false for an atom)."""
        return self._kappa is not None

    def __reduce__(self):
        return (_score_tail, (self.endpoint, self.gamma, self.log_kappa, self.kind, self.gap, self._kappa, self.atom_count))

    def __repr__(self) -> str:
        if self.kind == "atom":
            return (
                f"ScoreTail(endpoint={self.endpoint!r}, gamma={self.gamma!r}, kind={self.kind!r}, "
                f"gap={self.gap!r}, atom_count={self.atom_count!r})"
            )
        if self._kappa is not None:
            prefactor = f"kappa={self._kappa!r}"
        else:
            prefactor = f"log_kappa={self.log_kappa!r}"
        text = f"ScoreTail(endpoint={self.endpoint!r}, gamma={self.gamma!r}, {prefactor}, kind={self.kind!r}"
        return text + (f", gap={self.gap!r})" if self.gap is not None else ")")

    def gap_quantile(self, k: float, n: float) -> float:
        r"""First-order position of the ``k``-th largest gap, :math:`(k / (\kappa n))^{1/\gamma}` (Weibull class).

        Uses the mean arrival time ``k`` of the ``k``-th Poisson point (section 2).

        Examples
        --------
        >>> ScoreTail(1.0, 1.0, 0.25).gap_quantile(1, 100)
        0.04
        """
        if self.kind != "weibull":
            raise InputError(f"kind: got {self.kind!r}; gap_quantile is defined for the weibull class only")
        if self.kappa_is_finite:
            product = self.kappa * float(n)
            if 0.0 < product < math.inf:
                return (float(k) / product) ** (1.0 / self.gamma)
        return math.exp((math.log(float(k)) - self.log_kappa - math.log(float(n))) / self.gamma)


def _score_tail(endpoint, gamma, log_kappa, kind, gap, kappa, atom_count=None) -> ScoreTail:
    """Unpickle a :class:`ScoreTail` exactly (``kappa`` as stored, not recomputed)."""
    if kind == "atom":
        return ScoreTail(endpoint, gamma, kind=kind, gap=gap, atom_count=atom_count)
    if kappa is not None:
        return ScoreTail(endpoint, gamma, kappa, kind, gap)
    return ScoreTail(endpoint, gamma, kind=kind, gap=gap, log_kappa=log_kappa)


def _real_or_inf(value, name: str) -> float:
    """A float that may be infinite but not NaN."""
    try:
        return check_finite(value, name)
    except ValueError:
        x = float(value)
        if math.isnan(x):
            raise
        return x


@dataclass(frozen=True)
class Regime:
    """Regime of a context: its name and ``c = beta / beta*(n)`` (section 3).

    ``name`` is one of ``"global"`` (``beta <= 1``: the kernel covers the whole
    sphere), ``"subcritical"``, ``"critical"``, ``"supercritical"``.
    """

    name: str
    c: float


def critical_beta(n: float, tail: ScoreTail) -> float:
    r"""Critical inverse temperature :math:`\beta^*(n)` of a context of ``n`` keys (section 2).

    - ``weibull``: :math:`\beta^*(n) = (\kappa n)^{1/\gamma}`;
    - ``gumbel``: the hazard rate at the top of ``n`` scores,
      :math:`a_n = \gamma\,\kappa^{1/\gamma} (\log n)^{1 - 1/\gamma}` (Gaussian scores:
      :math:`\sqrt{2\log n}/\sigma`); at :math:`\beta = c\,a_n` the ordered weights tend to
      Poisson-Dirichlet(1/c) for :math:`c > 1`.  Needs ``n >= 2``;
    - ``atom`` (``m = atom_count`` keys at the endpoint, the rest ``gap`` lower): the
      :math:`\beta` at which the atom holds half the mass,
      :math:`\log((n - m)/m)/\Delta`; needs ``n > 2m`` (with fewer keys the atom
      holds half the mass already at :math:`\beta = 0`).  Simplex model
      (:math:`m = 1`, :math:`\Delta = 1 - \rho`): :math:`\log(n-1)/(1-\rho)`.

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
    >>> gauss = ScoreTail(math.inf, 2.0, 0.5, kind="gumbel")   # sigma = 1
    >>> bool(abs(critical_beta(1e6, gauss) - math.sqrt(2 * math.log(1e6))) < 1e-12)
    True
    >>> round(critical_beta(1001, ScoreTail(1.0, 0.0, kind="atom", gap=0.5, atom_count=1.0)), 10)   # 2 log(1000)
    13.815510558
    """
    n_int = check_n(n)
    if not isinstance(tail, ScoreTail):
        raise InputTypeError(f"tail: got {type(tail).__name__}; expected a ScoreTail")
    if tail.kind == "atom":
        m = tail.atom_count
        if not n_int > 2.0 * m:
            raise InputError(
                f"n: got {n_int}; an atom of {m:g} keys holds half the mass already at beta = 0 unless n > {2.0 * m:g}"
            )
        return (math.log(float(n_int) - m) - math.log(m)) / tail.gap
    if tail.kind == "gumbel":
        if n_int < 2:
            raise InputError(f"n: got {n_int}; the gumbel critical scale needs n >= 2")
        g = tail.gamma
        log_beta = math.log(g) + tail.log_kappa / g + (1.0 - 1.0 / g) * math.log(math.log(n_int))
    else:
        log_beta = (tail.log_kappa + math.log(n_int)) / tail.gamma
    if log_beta > LOG_MAX_BETA:
        raise InputError(
            f"n: beta*(n) = exp({log_beta:.4g}) for n={n_int:.3g}, gamma={tail.gamma:g}, "
            f"log kappa={tail.log_kappa:.6g} exceeds the float64 range"
        )
    if tail.kind == "weibull" and tail.kappa_is_finite:
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
        raise InputError(f"band: got {band!r}; expected (low, high) with 0 < low < high")
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
