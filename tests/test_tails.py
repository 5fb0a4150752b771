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
    tail = ScoreTail(0.0, 0.0, kind="atom", gap=gap, atom_count=float(m))
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
    tail = ScoreTail(1.0, 0.0, kind="atom", gap=1.0 - rho, atom_count=1.0)
    g = critical_beta(n, tail) / math.log(n)
    assert g == pytest.approx(math.log(n - 1) / math.log(n) / (1.0 - rho), rel=1e-14)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(endpoint=1.0, gamma=2.0, kappa=1.0, kind="gumbel"), "endpoint"),
        (dict(endpoint=math.inf, gamma=0.0, kappa=1.0, kind="gumbel"), "gamma"),
        (dict(endpoint=math.inf, gamma=1.0, kappa=1.0), "endpoint"),
        (dict(endpoint=math.inf, gamma=2.0, kappa=1.0, kind="gumbel", gap=1.0), "gap"),
        (dict(endpoint=1.0, gamma=1.0, atom_count=1.0, kind="atom", gap=1.0), "gamma"),
        (dict(endpoint=1.0, gamma=0.0, atom_count=1.0, kind="atom"), "gap"),
        (dict(endpoint=1.0, gamma=0.0, atom_count=1.0, kind="atom", gap=0.0), "gap"),
        (dict(endpoint=1.0, gamma=0.0, atom_count=0.0, kind="atom", gap=1.0), "atom_count"),
        (dict(endpoint=1.0, gamma=0.0, kind="atom", gap=1.0), "atom_count"),
        (dict(endpoint=1.0, gamma=0.0, kappa=1.0, kind="atom", gap=1.0, atom_count=1.0), "prefactor"),
        (dict(endpoint=1.0, gamma=1.0, kappa=1.0, atom_count=1.0), "atom_count"),
        (dict(endpoint=float("nan"), gamma=2.0, kappa=1.0, kind="gumbel"), "endpoint"),
    ],
)
def test_other_kinds_reject_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ScoreTail(**kwargs)


def test_gap_quantile_is_weibull_only():
    with pytest.raises(ValueError, match="kind"):
        ScoreTail(math.inf, 2.0, 0.5, kind="gumbel").gap_quantile(1, 100)


# ---------------------------------------------------------------------------
# log_kappa: tails whose kappa is not a float64 (uniform keys, d >= 4096)
# ---------------------------------------------------------------------------


def _mp_log_kappa_uniform(d: int):
    """log kappa = log(2^-a / (a B(a, a))), a = (d-1)/2, in mpmath (50 digits)."""
    import mpmath as mp

    mp.mp.dps = 50
    a = mp.mpf(d - 1) / 2
    return -a * mp.log(2) - mp.log(a) - mp.log(mp.beta(a, a))


@pytest.mark.parametrize("d", [3, 64, 4096, 10_000, 100_000])
def test_uniform_log_kappa_against_mpmath(d: int) -> None:
    import mpmath as mp

    tail = UniformSphere(d).score_tail(np.eye(1, d)[0])
    ref = _mp_log_kappa_uniform(d)
    assert abs(tail.log_kappa - float(ref)) <= 1e-13 * max(1.0, abs(float(ref)))
    # scipy's betaln in log space gives the same (an independent special-function path)
    a = (d - 1) / 2.0
    assert abs(tail.log_kappa - (-a * math.log(2.0) - math.log(a) - special.betaln(a, a))) <= 1e-12 * max(1.0, abs(float(ref)))
    assert tail.kappa_is_finite == (d < 2000)
    if tail.kappa_is_finite:
        assert tail.kappa == pytest.approx(float(mp.exp(ref)), rel=1e-12)
    else:
        with pytest.raises(OverflowError, match="log_kappa"):
            tail.kappa
    for n in (10**3, 10**6, 10**18):
        ref_beta = mp.exp((ref + mp.log(n)) / (mp.mpf(d - 1) / 2))
        assert critical_beta(n, tail) == pytest.approx(float(ref_beta), rel=1e-13)
        ref_gap = mp.exp((mp.log(2) - ref - mp.log(n)) / (mp.mpf(d - 1) / 2))
        assert tail.gap_quantile(2, n) == pytest.approx(float(ref_gap), rel=1e-13)
    reg = regime(10**6, 3.0, tail)
    assert reg.c == pytest.approx(3.0 / critical_beta(10**6, tail), rel=1e-15)


def test_from_log_kappa_and_kappa_agree() -> None:
    t1 = ScoreTail(1.0, 2.0, 0.3)
    t2 = ScoreTail.from_log_kappa(1.0, 2.0, math.log(0.3))
    t3 = ScoreTail(1.0, 2.0, log_kappa=math.log(0.3))
    assert t1.log_kappa == math.log(0.3) and t2.kappa == pytest.approx(0.3, rel=1e-15) and t2 == t3
    assert critical_beta(1e6, t1) == pytest.approx(critical_beta(1e6, t2), rel=1e-14)
    huge = ScoreTail.from_log_kappa(1.0, 2047.5, 1414.0)
    assert repr(huge) == "ScoreTail(endpoint=1.0, gamma=2047.5, log_kappa=1414.0, kind='weibull')"
    tiny = ScoreTail.from_log_kappa(1.0, 2.0, -800.0)
    assert not tiny.kappa_is_finite and tiny.gap_quantile(1, 10) == pytest.approx(math.exp((800.0 - math.log(10)) / 2), rel=1e-12)
    assert critical_beta(10**6, ScoreTail.from_log_kappa(1.0, 2.0, -800.0)) == pytest.approx(math.exp((-800.0 + math.log(1e6)) / 2), rel=1e-13)
    gumbel = ScoreTail.from_log_kappa(math.inf, 2.0, math.log(0.5), kind="gumbel")
    assert critical_beta(1e6, gumbel) == pytest.approx(math.sqrt(2 * math.log(1e6)), rel=1e-13)


def test_atom_tail_has_a_count_and_no_prefactor() -> None:
    tail = ScoreTail(1.0, 0.0, kind="atom", gap=0.5, atom_count=3.0)
    assert tail.atom_count == 3.0 and not tail.kappa_is_finite and math.isnan(tail.log_kappa)
    with pytest.raises(ValueError, match="atom_count"):
        tail.kappa
    assert ScoreTail(1.0, 1.0, 0.5).atom_count is None


def test_score_tail_pickles_exactly() -> None:
    import pickle

    for tail in (ScoreTail(1.0, 1.0, 0.1), ScoreTail.from_log_kappa(1.0, 5e4, 3.4e4),
                 ScoreTail(1.0, 0.0, kind="atom", gap=0.5, atom_count=2.0)):
        back = pickle.loads(pickle.dumps(tail))
        assert back == tail and repr(back) == repr(tail)


def test_score_tail_needs_one_prefactor() -> None:
    from attnscale._validate import InputError

    with pytest.raises(InputError, match="kappa/log_kappa"):
        ScoreTail(1.0, 1.0)
    with pytest.raises(InputError, match="kappa/log_kappa"):
        ScoreTail(1.0, 1.0, 0.5, log_kappa=math.log(0.5))
    with pytest.raises(InputError, match="log_kappa"):
        ScoreTail.from_log_kappa(1.0, 1.0, math.inf)


def test_law_tails_in_log_space_at_d_1e5() -> None:
    """Power density (pole and elsewhere), great subsphere, mixtures and Gaussian keys, against mpmath."""
    import mpmath as mp

    from attnscale.laws import GaussianKeys, GreatSubsphere, Mixture, PowerDensity

    mp.mp.dps = 50
    d = 100_000
    e1 = np.eye(1, d)[0]
    a = mp.mpf(d - 1) / 2
    # power density at the pole: gamma = a + eta/2, kappa = 2^-g / (g B(g, a))
    eta = 3.0
    g = a + mp.mpf(eta) / 2
    tail = PowerDensity(d, eta).score_tail(e1)
    assert tail.gamma == float(g)
    assert tail.log_kappa == pytest.approx(float(-g * mp.log(2) - mp.log(g) - mp.log(mp.beta(g, a))), rel=1e-13)
    # elsewhere (q = e_2, u = 1/2): kappa_unif times the relative density (4u)^(eta/2) / E_unif (4U)^(eta/2)
    # = 2^(eta/2) / (4^(eta/2) B(a + eta/2, a) / B(a, a))
    tail2 = PowerDensity(d, eta).score_tail(np.eye(1, d, 1)[0])
    rel = -mp.mpf(eta) / 2 * mp.log(2) + mp.log(mp.beta(a, a)) - mp.log(mp.beta(g, a))
    assert tail2.log_kappa == pytest.approx(float(_mp_log_kappa_uniform(d) + rel), rel=1e-12)
    # great subsphere of dimension m seen from inside: the uniform law of S^(m-1)
    sub = GreatSubsphere(d, 5000).score_tail(e1)
    assert sub.log_kappa == pytest.approx(float(_mp_log_kappa_uniform(5000)), rel=1e-13)
    # mixture: the smallest gamma wins, kappa = sum of w_i kappa_i over those components (log-sum-exp)
    mix = Mixture([UniformSphere(d), PowerDensity(d, -2.0), PowerDensity(d, 2.0)], [0.5, 0.25, 0.25]).score_tail(e1)
    g_low = a - 1
    k_low = -g_low * mp.log(2) - mp.log(g_low) - mp.log(mp.beta(g_low, a))
    assert mix.gamma == float(g_low)
    assert mix.log_kappa == pytest.approx(float(mp.log(mp.mpf(0.25)) + k_low), rel=1e-13)
    same = Mixture([UniformSphere(d), UniformSphere(d)], [0.3, 0.7]).score_tail(e1)
    assert same.log_kappa == pytest.approx(float(_mp_log_kappa_uniform(d)), rel=1e-13)
    gauss = GaussianKeys(d, sigma=1e-200).score_tail(e1)   # kappa = 1/(2 sigma^2) = 5e399
    assert gauss.log_kappa == pytest.approx(float(-mp.log(2) - 2 * mp.log(mp.mpf("1e-200"))), rel=1e-14)


def test_score_tail_replace_keeps_the_prefactor() -> None:
    import dataclasses

    t = dataclasses.replace(ScoreTail(1.0, 2.0, 0.3), gamma=3.0)
    assert t.gamma == 3.0 and t.kappa == pytest.approx(0.3, rel=1e-15)
    big = dataclasses.replace(ScoreTail.from_log_kappa(1.0, 2047.5, 1414.0), endpoint=0.5)
    assert big.endpoint == 0.5 and big.log_kappa == 1414.0 and not big.kappa_is_finite
