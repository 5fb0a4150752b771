"""Kolmogorov-Smirnov helpers shared by the experiments: one critical distance, one- and two-sample distances."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["KS_ALPHA", "ks_1sample", "ks_2sample", "ks_critical_value"]

#: Default level of the KS claims.
KS_ALPHA = 1e-3


def ks_critical_value(n1: int, n2: int | None = None, alpha: float = KS_ALPHA) -> float:
    r"""Asymptotic KS critical distance at level ``alpha``: one-sample with ``n1`` draws, or two-sample.

    .. math:: D_\alpha = \sqrt{-\tfrac12 \log(\alpha/2)}\,\sqrt{1/n_1 + 1/n_2}

    (the :math:`1/n_2` term only for two samples).

    Examples
    --------
    >>> round(ks_critical_value(1000, 1000, 0.05), 4), round(ks_critical_value(1000, 1000), 4)
    (0.0607, 0.0872)
    >>> round(ks_critical_value(1000), 4)
    0.0616
    """
    scale = math.sqrt(1.0 / n1 + (1.0 / n2 if n2 else 0.0))
    return math.sqrt(-0.5 * math.log(alpha / 2.0)) * scale


def ks_2sample(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample KS distance of ``a`` and ``b`` (scipy's ``ks_2samp`` statistic).

    Examples
    --------
    >>> ks_2sample(np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    1.0
    """
    from scipy.stats import ks_2samp

    return float(ks_2samp(a, b).statistic)


def ks_1sample(a: np.ndarray, cdf: str | Callable[[Any], Any]) -> float:
    """One-sample KS distance of ``a`` to ``cdf`` (a scipy distribution name or a function).

    Examples
    --------
    >>> ks_1sample(np.array([0.25, 0.75]), "uniform")
    0.25
    """
    from scipy.stats import kstest

    return float(kstest(a, cdf).statistic)
