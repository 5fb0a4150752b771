"""The claim record shared by every experiment and the statistics used to decide it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from .._numerics.arrays import finite_or_none
from .._validate import InputError, check_finite, check_int


#: The statements of the paper (and of the report) that every claim traces to: id -> what it says.
#: ``S*`` are the paper's statements, ``C*`` its simplex corollaries, ``X*`` what the report adds.
STATEMENTS = {
    "S1": "Critical scale set by the local exponent: beta* = (kappa n)^(1/gamma) for non-uniform laws",
    "S2": "Uniform keys: beta* ~ n^(2/(d-1))",
    "S3": "Subcritical weights: n_eff -> infinity, W_1 -> 0 (a local average)",
    "S4": "Subcritical output: mean A_d(beta) q, bias O(1/beta)",
    "S5": "Subcritical fluctuations are Gaussian (variance by quadrature, kurtosis correction)",
    "S6": "Critical weights: ordered weights -> exp(-c Gamma_k^(1/gamma)) / sum",
    "S7": "Critical output: scaled tangential output -> a non-Gaussian mixture",
    "S8": "Supercritical weights: W_1 -> 1, 1 - E W_1 ~ K / c",
    "S9": "Supercritical output: y - K_(1) -> 0 at the near-tie rate",
    "S10": "Attention is one Euler step of the backward heat equation",
    "S11": "A general value matrix V pushes the laws through V",
    "C1": "Simplex model: critical g_c = 1/(1 - rho), self weight 1/2 there",
    "C2": "Almost-simplex: a middle phase where the cluster takes the mass",
    "X1": "Finite n: where the asymptotics hold",
    "X2": "Other tail classes (Gumbel / Poisson-Dirichlet)",
    "X3": "Real heads of a pretrained transformer",
    "X4": "Estimating a score tail from data",
}


def check_statement(statement: str) -> str:
    """``statement`` if it is an id of :data:`STATEMENTS`, else a ValueError naming the argument.

    Examples
    --------
    >>> check_statement("S3")
    'S3'
    """
    if statement not in STATEMENTS:
        raise ValueError(f"statement: got {statement!r}; expected one of {', '.join(STATEMENTS)}")
    return statement


@dataclass(frozen=True)
class Claim:
    """One checked statement: what theory says, what we measured, and whether they agree.

    ``interval`` is the measured value's acceptance interval (e.g. +- 4 standard errors plus a
    stated bias bound); ``ok`` says whether the theory value lies in it.  ``statement`` is the id
    (a key of :data:`STATEMENTS`) of the statement the claim checks; the report fills it from the
    experiment module's ``STATEMENT`` when a claim leaves it empty.  A claim whose measurement is
    NaN or infinite never holds (:meth:`missing` makes one for absent data, with its reason).

    Examples
    --------
    >>> c = Claim.within("E W_1 at c=2", theory=0.7299, measured=0.7301, half_width=0.001, section="3")
    >>> c.ok, c.interval
    (True, (0.7291, 0.7311))
    """

    experiment: str
    claim: str
    theory: float
    measured: float
    interval: tuple[float, float]
    ok: bool
    section: str
    note: str = ""
    statement: str = ""

    @classmethod
    def within(
        cls,
        claim: str,
        theory: float,
        measured: float,
        half_width: float,
        section: str,
        experiment: str = "",
        note: str = "",
        statement: str = "",
    ) -> Claim:
        """Claim that ``theory`` lies within ``measured +- half_width``."""
        return cls._decide(claim, theory, measured, half_width, section, experiment, note, lambda lo, hi, t: lo <= t <= hi, statement)

    @classmethod
    def at_least(
        cls,
        claim: str,
        bound: float,
        measured: float,
        half_width: float,
        section: str,
        experiment: str = "",
        note: str = "",
        statement: str = "",
    ) -> Claim:
        """Claim that the measured value exceeds ``bound`` even at the low end of its interval.

        Examples
        --------
        >>> Claim.at_least("drift above 10%", bound=0.1, measured=0.3, half_width=0.05, section="3").ok
        True
        """
        return cls._decide(claim, bound, measured, half_width, section, experiment, note, lambda lo, hi, b: lo >= b, statement)

    @classmethod
    def not_below(
        cls,
        claim: str,
        bound: float,
        measured: float,
        half_width: float,
        section: str,
        experiment: str = "",
        note: str = "",
        statement: str = "",
    ) -> Claim:
        """Claim that the true value is at least ``bound``, rejected only when the data exclude it.

        The interval is ``measured +- half_width``; the claim fails only when its upper end lies
        below ``bound`` (a non-inferiority reading: "not worse", "coverage at least 90%").

        Examples
        --------
        >>> Claim.not_below("not worse", bound=0.0, measured=-0.01, half_width=0.02, section="2").ok
        True
        >>> Claim.not_below("not worse", bound=0.0, measured=-0.05, half_width=0.02, section="2").ok
        False
        """
        return cls._decide(claim, bound, measured, half_width, section, experiment, note, lambda lo, hi, b: hi >= b, statement)

    @classmethod
    def coverage(
        cls,
        claim: str,
        bound: float,
        hits: int,
        trials: int,
        section: str,
        experiment: str = "",
        note: str = "",
        level: float = 0.95,
        statement: str = "",
    ) -> Claim:
        r"""Claim that a probability (e.g. an interval's coverage) is at least ``bound``, from ``hits`` in ``trials``.

        ``measured`` is ``hits / trials`` and ``interval`` the exact Clopper-Pearson interval at
        ``level`` (:func:`clopper_pearson`); the claim is rejected only when the upper end of that
        interval lies below ``bound``, i.e. when the data exclude a probability of ``bound`` or more
        (a one-sided exact binomial test at level :math:`(1 - \mathrm{level})/2`).

        Examples
        --------
        >>> c = Claim.coverage("coverage >= 0.90", bound=0.9, hits=35, trials=40, section="2")
        >>> c.measured, c.ok, round(c.interval[1], 3)
        (0.875, True, 0.958)
        >>> Claim.coverage("coverage >= 0.90", bound=0.9, hits=160, trials=200, section="2").ok
        False
        """
        trials = check_int(trials, "trials", minimum=1)
        hits = check_int(hits, "hits", minimum=0, maximum=trials)
        lo, hi = clopper_pearson(hits, trials, level)
        if statement:
            check_statement(statement)
        return cls(experiment, claim, float(bound), hits / trials, (lo, hi), bool(hi >= bound), section, note, statement)

    @classmethod
    def missing(cls, claim: str, theory: float, reason: str, section: str, experiment: str = "", statement: str = "") -> Claim:
        """A claim that cannot be decided (no data, a missing package, a failed computation): it fails, saying why.

        Examples
        --------
        >>> c = Claim.missing("E W_1 at c=2", 0.7295, "no draws at c=2", section="3")
        >>> c.ok, c.note
        (False, 'not measured: no draws at c=2')
        >>> c.to_dict()["measured"] is None
        True
        """
        if statement:
            check_statement(statement)
        nan = math.nan
        return cls(experiment, claim, float(theory), nan, (nan, nan), False, section, f"not measured: {reason}", statement)

    @classmethod
    def _decide(cls, claim, reference, measured, half_width, section, experiment, note, rule, statement="") -> Claim:
        """The claim with interval ``measured +- half_width``, ok when finite and ``rule(lo, hi, reference)``."""
        if statement:
            check_statement(statement)
        measured, half_width = float(measured), float(half_width)
        lo, hi = measured - half_width, measured + half_width
        ok = bool(math.isfinite(measured) and math.isfinite(half_width) and rule(lo, hi, reference))
        if not (math.isfinite(measured) and math.isfinite(half_width)) and "not measured" not in note:
            note = f"not measured: the measurement is {measured!r} +- {half_width!r}" + (f"; {note}" if note else "")
        interval = (round(lo, 12), round(hi, 12)) if math.isfinite(lo) and math.isfinite(hi) else (lo, hi)
        return cls(experiment, claim, float(reference), measured, interval, ok, section, note, statement)

    def with_statement(self, statement: str) -> Claim:
        """This claim traced to ``statement`` (an id of :data:`STATEMENTS`).

        Examples
        --------
        >>> Claim.within("x", 1.0, 1.0, 0.1, section="3").with_statement("S6").statement
        'S6'
        """
        return replace(self, statement=check_statement(statement))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the row of claims.json); NaN and infinities become null.

        Examples
        --------
        >>> import json
        >>> json.dumps(Claim.within("x", 1.0, math.nan, 0.1, section="3").to_dict()["interval"])
        '[null, null]'
        """
        row = asdict(self)
        row["theory"] = finite_or_none(self.theory)
        row["measured"] = finite_or_none(self.measured)
        row["interval"] = [finite_or_none(x) for x in self.interval]
        return row


def mean_se(x: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the mean of a 1-D sample.

    Examples
    --------
    >>> mean_se(np.array([1.0, 3.0]))
    (2.0, 1.0)
    """
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def clopper_pearson(hits: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    r"""Exact (Clopper-Pearson) two-sided interval of a binomial probability from ``hits`` in ``trials``.

    With :math:`x` hits in :math:`n` trials and :math:`\alpha = 1 - \mathrm{level}`, the bounds solve
    :math:`P(X \ge x \mid p_{lo}) = \alpha/2` and :math:`P(X \le x \mid p_{hi}) = \alpha/2`, i.e. they
    are Beta quantiles: :math:`p_{lo} = B^{-1}(\alpha/2;\, x, n - x + 1)` (0 when :math:`x = 0`),
    :math:`p_{hi} = B^{-1}(1 - \alpha/2;\, x + 1, n - x)` (1 when :math:`x = n`).  The coverage is
    at least ``level`` for every true probability.

    Examples
    --------
    >>> from scipy.stats import binom
    >>> lo, hi = clopper_pearson(35, 40)
    >>> round(lo, 4), round(hi, 4)
    (0.732, 0.9581)
    >>> bool(abs(binom.sf(34, 40, lo) - 0.025) < 1e-12 and abs(binom.cdf(35, 40, hi) - 0.025) < 1e-12)
    True
    >>> clopper_pearson(0, 10)[0], clopper_pearson(10, 10)[1]
    (0.0, 1.0)
    """
    trials = check_int(trials, "trials", minimum=1)
    hits = check_int(hits, "hits", minimum=0, maximum=trials)
    level = check_finite(level, "level")
    if not 0.0 < level < 1.0:
        raise InputError(f"level: got {level!r}; expected a number in (0, 1)")
    from scipy import stats

    tail = 0.5 * (1.0 - level)
    lo = 0.0 if hits == 0 else float(stats.beta.ppf(tail, hits, trials - hits + 1))
    hi = 1.0 if hits == trials else float(stats.beta.ppf(1.0 - tail, hits + 1, trials - hits))
    return lo, hi
