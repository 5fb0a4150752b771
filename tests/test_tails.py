"""Tests of tails.py: beta*(n) and regimes (docs/theory.md section 2)."""

import math

import numpy as np
import pytest
from scipy import special

from attnscale.laws import UniformSphere
from attnscale.tails import CRITICAL_BAND, Regime, ScoreTail, critical_beta, regime


def test_critical_beta_closed_form_uniform_d3():
    # d = 3: gap 1 - S is uniform on [0, 2], so kappa = 1/2 and beta*(n) = n / 2.
    tail = UniformSphere(3).score_tail([0.0, 0.0, 1.0])
    assert tail.kappa == pytest.approx(0.5, rel=1e-15)
    assert critical_beta(10**6, tail) == pytest.approx(5e5, rel=1e-14)


@pytest.mark.parametrize("d", [3, 5])
def test_beta_star_sets_the_scale_of_the_nearest_gap(d):
    """beta*(n) times the smallest gap -> Gamma_1^(1/gamma), whose mean is Gamma(1 + 1/gamma).

    Independent check by brute force: real uniform keys on S^{d-1}, the smallest 1 - <q, K>.
    Tolerance: 4 standard errors plus the first-order finite-n bias.  With the next-order term of
    theory section 2, P(G <= g) = kappa g^gamma (1 - c1 g/2), c1 = a(a-1)/(a+1); for X = beta* G1
    this gives E X = E X0 + c1 E[X0^2] / (2 gamma beta*) with E[X0^2] = Gamma(1 + 2/gamma), and we
    allow twice that (higher orders, and the O(1/n) of the binomial-to-Poisson step).
    """
    rng = np.random.default_rng(12345)
    n, reps = 4000, 1500
    law = UniformSphere(d)
    q = np.zeros(d)
    q[0] = 1.0
    tail = law.score_tail(q)
    bstar = critical_beta(n, tail)
    scaled = np.empty(reps)
    for i in range(reps):
        keys = law.sample(n, rng)
        scaled[i] = np.min(1.0 - keys @ q) * bstar
    expected = special.gamma(1.0 + 1.0 / tail.gamma)
    se = scaled.std(ddof=1) / math.sqrt(reps)
    a = tail.gamma
    c1 = a * (a - 1) / (a + 1)
    bias = 2 * (c1 * special.gamma(1.0 + 2.0 / a) / (2 * a * bstar) + 1.0 / n)
    assert abs(scaled.mean() - expected) < 4 * se + bias


def test_regime_names_and_band():
    tail = ScoreTail(1.0, 1.0, 0.5)
    bstar = critical_beta(10**6, tail)
    assert regime(10**6, bstar, tail) == Regime("critical", pytest.approx(1.0))
    assert regime(10**6, 0.5 * CRITICAL_BAND[0] * bstar, tail).name == "subcritical"
    assert regime(10**6, 2 * CRITICAL_BAND[1] * bstar, tail).name == "supercritical"
    assert regime(10**6, 0.5, tail).name == "global"
    assert regime(10**6, 0.0, tail).c == 0.0


def test_extreme_n_and_overflow_is_an_error():
    tail = ScoreTail(1.0, 64.0, 1e19)
    assert math.isfinite(critical_beta(1e18, tail))
    with pytest.raises(ValueError, match="n"):
        critical_beta(1e18, ScoreTail(1.0, 0.05, 1e10))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(endpoint=float("nan"), gamma=1.0, kappa=1.0), "endpoint"),
        (dict(endpoint=1.0, gamma=0.0, kappa=1.0), "gamma"),
        (dict(endpoint=1.0, gamma=-1.0, kappa=1.0), "gamma"),
        (dict(endpoint=1.0, gamma=1.0, kappa=0.0), "kappa"),
        (dict(endpoint=1.0, gamma=1.0, kappa=1.0, kind="frechet"), "kind"),
    ],
)
def test_score_tail_rejects_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ScoreTail(**kwargs)


@pytest.mark.parametrize("n", [0, -5, float("nan"), float("inf"), 1.5, 1e19, "many"])
def test_critical_beta_rejects_bad_n(n):
    with pytest.raises((ValueError, TypeError), match="n"):
        critical_beta(n, ScoreTail(1.0, 1.0, 1.0))


def test_regime_rejects_bad_beta_and_tail():
    tail = ScoreTail(1.0, 1.0, 1.0)
    for beta in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="beta"):
            regime(100, beta, tail)
    with pytest.raises(TypeError, match="tail"):
        critical_beta(100, (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="band"):
        regime(100, 10.0, tail, band=(10.0, 1.0))
