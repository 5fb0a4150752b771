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


# ---------------------------------------------------------------------------
# Gumbel and atom classes (docs/theory.md section 2)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("gamma, kappa", [(2.0, 0.5), (2.0, 0.02), (1.0, 3.0), (1.5, 0.7)])
@pytest.mark.parametrize("n", [10, 1e6, 1e18])
def test_gumbel_beta_star_is_the_hazard_at_the_top_quantile(gamma, kappa, n):
    """Independent: for sf(s) = exp(-kappa s^gamma) exactly, the top of n scores sits at
    s_n = sf^{-1}(1/n) and the hazard there, by a central finite difference of -log sf, is a_n."""
    s_n = (math.log(n) / kappa) ** (1.0 / gamma)
    h = 1e-5 * s_n
    hazard = (kappa * (s_n + h) ** gamma - kappa * (s_n - h) ** gamma) / (2 * h)
    tail = ScoreTail(math.inf, gamma, kappa, kind="gumbel")
    assert critical_beta(n, tail) == pytest.approx(hazard, rel=1e-8)


def test_gumbel_gaussian_leading_scale():
    sigma = 0.3
    tail = ScoreTail(math.inf, 2.0, 1.0 / (2 * sigma**2), kind="gumbel")
    for n in (2, 1e3, 1e18):
        assert critical_beta(n, tail) == pytest.approx(math.sqrt(2 * math.log(n)) / sigma, rel=1e-14)
    with pytest.raises(ValueError, match="n"):
        critical_beta(1, tail)


@pytest.mark.parametrize("m, gap, n", [(1, 0.5, 1000), (3, 0.1, 10**6), (1, 1e-3, 10**18)])
def test_atom_beta_star_gives_the_atom_half_the_mass(m, gap, n):
    """Independent: softmax of m scores at 0 and n - m at -gap, evaluated at beta*; the atom's mass is 1/2."""
    tail = ScoreTail(0.0, 0.0, float(m), kind="atom", gap=gap)
    beta = critical_beta(n, tail)
    log_atom = math.log(m)
    log_rest = math.log(n - m) - beta * gap
    atom_mass = 1.0 / (1.0 + math.exp(log_rest - log_atom))
    assert atom_mass == pytest.approx(0.5, rel=1e-12)
    assert regime(n, beta, tail).c == pytest.approx(1.0)
    with pytest.raises(ValueError, match="n"):
        critical_beta(2 * m, tail)


def test_simplex_critical_g():
    """Simplex model: one self key at 1, the others at rho; beta = g log n with g_c = 1/(1-rho) (log(n-1)/log n)."""
    rho, n = 0.3, 10**9
    tail = ScoreTail(1.0, 0.0, 1.0, kind="atom", gap=1.0 - rho)
    g = critical_beta(n, tail) / math.log(n)
    assert g == pytest.approx(math.log(n - 1) / math.log(n) / (1.0 - rho), rel=1e-14)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(endpoint=1.0, gamma=2.0, kappa=1.0, kind="gumbel"), "endpoint"),
        (dict(endpoint=math.inf, gamma=0.0, kappa=1.0, kind="gumbel"), "gamma"),
        (dict(endpoint=math.inf, gamma=1.0, kappa=1.0), "endpoint"),
        (dict(endpoint=math.inf, gamma=2.0, kappa=1.0, kind="gumbel", gap=1.0), "gap"),
        (dict(endpoint=1.0, gamma=1.0, kappa=1.0, kind="atom", gap=1.0), "gamma"),
        (dict(endpoint=1.0, gamma=0.0, kappa=1.0, kind="atom"), "gap"),
        (dict(endpoint=1.0, gamma=0.0, kappa=1.0, kind="atom", gap=0.0), "gap"),
        (dict(endpoint=1.0, gamma=0.0, kappa=0.0, kind="atom", gap=1.0), "kappa"),
        (dict(endpoint=float("nan"), gamma=2.0, kappa=1.0, kind="gumbel"), "endpoint"),
    ],
)
def test_other_kinds_reject_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ScoreTail(**kwargs)


def test_gap_quantile_is_weibull_only():
    with pytest.raises(ValueError, match="kind"):
        ScoreTail(math.inf, 2.0, 0.5, kind="gumbel").gap_quantile(1, 100)
