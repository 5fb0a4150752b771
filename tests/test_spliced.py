"""Tests of spliced.py and finite.head_regime: a head's law beyond its observed context (docs/theory.md section 7)."""

import math

import numpy as np
import pytest
from scipy import integrate

from attnscale.finite import head_regime, regime
from attnscale.laws import UniformScoreLaw
from attnscale.spliced import SplicedScoreLaw


@pytest.fixture(scope="module")
def uniform_scores():
    return np.random.default_rng(0).uniform(-1.0, 1.0, 20000)  # scores of uniform keys on S^2


def test_distribution_functions_are_consistent(uniform_scores):
    law = SplicedScoreLaw(uniform_scores, 1.0, 1.0, 100)
    g_k = law.splice_gap
    # continuous at the splice, with the splice mass k/N
    assert law.gap_cdf(g_k * (1 - 1e-12)) == pytest.approx(100 / 20000, rel=1e-9)
    assert law.gap_cdf(g_k) == pytest.approx(100 / 20000, rel=1e-12)
    # cdf + sf = 1, ppf inverts cdf on both parts, down to p = 1e-300
    g = np.concatenate([np.geomspace(1e-12, g_k, 20), np.linspace(g_k, 2.0 - 1e-9, 200)])
    assert np.allclose(law.gap_cdf(g) + law.gap_sf(g), 1.0, rtol=0, atol=1e-15)
    p = np.concatenate([[1e-300, 1e-100, 1e-20], np.linspace(0.01, 0.99, 99)])
    assert np.allclose(law.gap_cdf(law.gap_ppf(p)), p, rtol=1e-12, atol=0)
    # the density integrates to the distribution function (piecewise, between knots)
    total = integrate.quad(lambda x: float(law.gap_pdf(x)), 0.0, g_k)[0]
    assert total == pytest.approx(100 / 20000, rel=1e-8)
    assert float(law.log_gap_cdf(1e-200)) == pytest.approx(math.log(law.gap_cdf(1e-200)), rel=1e-12)
    # kappa of the tail is the splice's
    assert law.tail().kappa == pytest.approx((100 / 20000) / g_k, rel=1e-12)


def test_matches_the_true_law_where_measured(uniform_scores):
    # below the splice the measured part is the empirical cdf of the scores: within DKW's band of the truth
    law, truth = SplicedScoreLaw(uniform_scores, 1.0, 1.0, 100), UniformScoreLaw(3)
    g = np.linspace(law.splice_gap, 1.99, 500)
    eps = math.sqrt(math.log(2 / 1e-6) / (2 * 20000))  # DKW at 1e-6
    assert np.max(np.abs(law.gap_cdf(g) - truth.gap_cdf(g))) < eps + 1 / 20000


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"endpoint": 0.5}, "endpoint"), ({"gamma": 0.0}, "gamma"), ({"k": 0}, "k"), ({"k": 20000}, "k")],
)
def test_bad_input(uniform_scores, kwargs, name):
    args = {"endpoint": 1.0, "gamma": 1.0, "k": 100} | kwargs
    with pytest.raises(ValueError, match=name):
        SplicedScoreLaw(uniform_scores, **args)


def test_head_regime_extrapolates_with_an_honest_interval(uniform_scores):
    # the true law's c_eff at n = 1e9 lies inside the interval from the tail estimate's uncertainty
    n, beta = 10**9, 2e8
    truth = regime(n, beta, UniformScoreLaw(3), size=8000, rng=1)
    head = head_regime(uniform_scores, n, beta, size=8000, rng=1)
    assert head.extrapolated and head.observed_n == 20000
    assert head.keys_in_tail_model == pytest.approx(n * head.k / 20000)
    assert head.c_eff_low <= truth.c_eff <= head.c_eff_high
    # extrapolating five decades with gamma and the endpoint estimated costs certainty: the interval is
    # wider than at the observed length (here 0.12 .. 26 around a true 0.4)
    at_n = head_regime(uniform_scores, 20000, beta * (20000 / n), size=8000, rng=1)
    assert not at_n.extrapolated
    assert head.c_eff_high / head.c_eff_low > at_n.c_eff_high / at_n.c_eff_low
    d = head.to_dict()
    assert d["part"] == "extrapolated" and d["regime"] == head.regime.name


def test_head_regime_refuses_a_tail_without_a_power_law():
    scores = np.concatenate([[1.0], np.full(999, 0.2)])  # the simplex model: an atom, no Weibull tail
    with pytest.raises(ValueError, match="scores"):
        head_regime(scores, 10**6, 3.0, size=100)
