"""The claim record shared by every experiment and the statistics used to decide it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Claim:
    """One checked statement: what theory says, what we measured, and whether they agree.

    ``interval`` is the measured value's acceptance interval (e.g. +- 4 standard errors plus a
    stated bias bound); ``ok`` says whether the theory value lies in it.

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
    ) -> Claim:
        """Claim that ``theory`` lies within ``measured +- half_width``."""
        lo, hi = measured - half_width, measured + half_width
        ok = bool(math.isfinite(measured) and math.isfinite(half_width) and lo <= theory <= hi)
        return cls(experiment, claim, float(theory), float(measured), (round(lo, 12), round(hi, 12)), ok, section, note)

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
    ) -> Claim:
        """Claim that the measured value exceeds ``bound`` even at the low end of its interval.

        Examples
        --------
        >>> Claim.at_least("drift above 10%", bound=0.1, measured=0.3, half_width=0.05, section="3").ok
        True
        """
        lo, hi = measured - half_width, measured + half_width
        ok = bool(math.isfinite(measured) and math.isfinite(half_width) and lo >= bound)
        return cls(experiment, claim, float(bound), float(measured), (round(lo, 12), round(hi, 12)), ok, section, note)

    def as_row(self) -> dict[str, Any]:
        """A JSON-able dict (the row of claims.json)."""
        row = asdict(self)
        row["interval"] = list(self.interval)
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
