"""Tests of limit_means.py: exact means of the critical limit laws (docs/theory.md section 7).

Each value is checked against a computation that shares none of its quadrature: a closed
form (gamma = 1), 1-D adaptive quadrature, the law of large numbers for huge effective
counts, the supercritical constant, and Monte Carlo of the Poisson process (4 SE).
"""

import math

import numpy as np
import pytest
from scipy import integrate, special

from attnscale.limit_means import (
    REFERENCE_BAND_C,
    c_matching_max_weight,
    critical_band,
    limit_max_weight,
    limit_n_eff,
    max_weight_levels,
)
from attnscale.limits import CriticalLimit, supercritical_constant


def _gamma1_closed_form(c: float) -> float:
    """gamma = 1: L(u, x) = Ein(u) / c does not depend on x, so E W_1 = int e^{-u - Ein(u)/c} du."""

    def ein(u: float) -> float:  # Ein(u) = int_0^u (1 - e^{-t})/t dt = E1(u) + log u + Euler gamma
        return special.exp1(u) + math.log(u) + np.euler_gamma if u > 1e-8 else u

    return integrate.quad(lambda u: math.exp(-u - ein(u) / c), 0.0, np.inf, epsabs=1e-14, epsrel=1e-12, limit=200)[0]


@pytest.mark.parametrize("c", [0.05, 0.25, 0.5, 1.0, 2.0, 20.0])
def test_gamma_one_against_closed_form(c):
    assert limit_max_weight(1.0, c).mean == pytest.approx(_gamma1_closed_form(c), rel=1e-7)  # the promised accuracy


@pytest.mark.parametrize(
    ("gamma", "c", "reference"),
    [(1.0, 0.25, 0.21782), (1.0, 0.5, 0.37380), (1.0, 2.0, 0.72949), (2.0, 0.5, 0.0833970), (2.0, 2.0, 0.474988)],
)
def test_section3_reference_values(gamma, c, reference):
    # the references carry about 1e-4 relative (Monte Carlo and the integral)
    assert limit_max_weight(gamma, c).mean == pytest.approx(reference, rel=2e-4)


@pytest.mark.parametrize(("gamma", "c"), [(1.5, 0.5), (3.0, 1.0), (2.0, 4.0)])
def test_against_poisson_monte_carlo(gamma, c):
    draws = CriticalLimit(gamma, c).draw(20000, rng=7)
    w, n_eff = draws.max_weight, draws.n_eff
    assert abs(limit_max_weight(gamma, c).mean - w.mean()) < 4 * w.std(ddof=1) / math.sqrt(w.size)
    assert abs(limit_n_eff(gamma, c) - n_eff.mean()) < 4 * n_eff.std(ddof=1) / math.sqrt(n_eff.size)


def test_complement_is_accurate_in_the_supercritical_tail():
    # 1 - E W_1 ~ C_gamma / c, relative error O(1/c)
    for gamma in (1.0, 3.0):
        c = 1e5
        one_minus = limit_max_weight(gamma, c).complement
        assert one_minus * c == pytest.approx(supercritical_constant(gamma), rel=20.0 / c + 1e-6)


def test_huge_gamma_against_law_of_large_numbers():
    # gamma = 31.5, c = 10: the mass is spread over ~1e15 points, so given the nearest point x the
    # rest sums to its mean and E W_1 = E[1 / (1 + M1(x))], M1(x) = gamma e^{cx} c^-gamma Gamma(gamma, cx)
    gamma, c = 31.5, 10.0
    s = np.random.default_rng(0).standard_exponential(200_000)
    x = s ** (1.0 / gamma)
    m1 = gamma * np.exp(c * x) * c**-gamma * special.gammaincc(gamma, c * x) * special.gamma(gamma)
    lln = np.mean(1.0 / (1.0 + m1))
    se = np.std(1.0 / (1.0 + m1)) / math.sqrt(s.size)
    assert abs(limit_max_weight(gamma, c).mean - lln) < 4 * se + 1e-3 * lln


def test_small_c_power_law():
    # c -> 0: E W_1 ~ c^gamma / Gamma(gamma + 1), relative error O(c)
    for gamma in (1.0, 4.0):
        c = 1e-4
        assert limit_max_weight(gamma, c).mean == pytest.approx(c**gamma / math.gamma(gamma + 1.0), rel=5 * c * gamma)


def test_gumbel_class_is_poisson_dirichlet():
    rng = np.random.default_rng(3)
    arrivals = np.cumsum(rng.standard_exponential((20000, 2000)), axis=1)
    c = 2.0
    w = arrivals**-c
    total = w.sum(axis=1) + arrivals[:, -1] ** (1.0 - c) / (c - 1.0)  # expected sum beyond the last point
    w1 = w[:, 0] / total
    assert abs(limit_max_weight(1.0, c, kind="gumbel").mean - w1.mean()) < 4 * w1.std() / math.sqrt(w1.size)
    assert limit_max_weight(1.0, 0.8, kind="gumbel").mean == 0.0  # frozen below c = 1


def test_inverse_and_band():
    for gamma, c in [(1.0, 0.3), (3.0, 7.0), (31.5, 40.0)]:
        w = limit_max_weight(gamma, c).mean
        assert c_matching_max_weight(w, gamma) == pytest.approx(c, rel=1e-8)
    assert critical_band(1.0) == pytest.approx(REFERENCE_BAND_C, rel=1e-9)
    lo_w, hi_w = max_weight_levels()
    for gamma in (2.0, 31.5):
        lo, hi = critical_band(gamma)
        assert limit_max_weight(gamma, lo).mean == pytest.approx(lo_w, rel=1e-7)
        assert limit_max_weight(gamma, hi).mean == pytest.approx(hi_w, rel=1e-7)
    assert critical_band(31.5)[0] > critical_band(2.0)[0] > critical_band(1.0)[0]


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: limit_max_weight(1.0, 0.0), "c"),
        (lambda: limit_max_weight(-1.0, 1.0), "gamma"),
        (lambda: limit_max_weight(1.0, 1.0, kind="atom"), "kind"),
        (lambda: c_matching_max_weight(1.5, 1.0), "mean_max_weight"),
        (lambda: limit_n_eff(1.0, float("nan")), "c"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
