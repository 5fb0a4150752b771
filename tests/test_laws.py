"""Tests for attnscale.laws (docs/theory.md section 2).

Every formula is checked against an independent computation: mpmath, closed
forms, a separate quadrature written in the coordinate x = <mu, K> (the laws
integrate over angles), or brute-force scores of sampled keys.  Statistical
tests fix their seed and reject at a family-wise level of 1e-3 (see ALPHA);
other tolerances come from the stated error of the method.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from attnscale.laws import (
    BetaScoreLaw,
    Empirical,
    GaussianKeys,
    GreatSubsphere,
    KeyLaw,
    Mixture,
    MixtureScoreLaw,
    PowerDensity,
    UniformScoreLaw,
    UniformSphere,
    VonMisesFisher,
    ZonalScoreLaw,
    law_from_name,
    robust_betaincinv,
)
from attnscale._numerics.quadrature import log_integral_rows
from attnscale._numerics.special import log_betainc_lower
from attnscale.tails import ScoreTail

# Rejection level of each statistical assertion: 1e-3 for the whole file (about 50
# statistical assertions, Bonferroni), so a correct implementation fails a run with
# probability <= 1e-3.  With n = 20000 scores this still detects any cdf error > 0.02.
ALPHA = 2e-5
EPS = np.finfo(float).eps


def z_crit(k: int) -> float:
    """Two-sided normal critical value for k simultaneous z-tests at family level ALPHA."""
    return float(stats.norm.isf(ALPHA / (2 * k)))


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def axis(d: int, i: int = 0) -> np.ndarray:
    return np.eye(d)[i]


def log_kappa_unif(a: float) -> float:
    return -a * math.log(2.0) - math.log(a) - float(special.betaln(a, a))


def grid_ks_pvalue(scores: np.ndarray, law, pilot: np.ndarray) -> float:
    """Kolmogorov-Smirnov p-value with the sup taken over 50 fixed points.

    The points are quantiles of an independent pilot sample.  The sup over a
    subset is <= the full KS statistic, so ``kstwo.sf`` of it is a valid
    (conservative) p-value; it needs 50 cdf evaluations instead of one per score.
    """
    grid = np.quantile(pilot, (np.arange(50) + 0.5) / 50)
    n = scores.shape[0]
    empirical = np.searchsorted(np.sort(scores), grid, side="right") / n
    stat = float(np.max(np.abs(empirical - law.cdf(grid))))
    return float(stats.kstwo.sf(stat, n))


# ---------------------------------------------------------------------------
# Incomplete beta kernels
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("a,b", [(3.0, 3.0), (6.5, 6.5), (63.5, 63.5), (500.0, 500.0), (0.01, 3.0), (3.0, 0.01), (0.5, 0.5)])
def test_log_betainc_lower_matches_mpmath(a, b):
    # includes a = b = 63.5, x = 0.3, where scipy's hyp2f1 series is wrong by 57%
    mp.mp.dps = 50
    for x in [1e-300, 1e-100, 1e-20, 1e-5, 1e-3, 0.05, 0.2, 0.3, 0.45, 0.7, 0.99]:
        ref = float(mp.log(mp.betainc(a, b, 0, x, regularized=True)))
        got = float(log_betainc_lower(a, b, x))
        # log I to ~1e-15 relative to max(1, |log I|): a few ulps of the terms summed
        assert abs(got - ref) <= 1e-13 * max(1.0, abs(ref)), (a, b, x, got, ref)


@pytest.mark.parametrize("d", [*range(7, 15), 129])
@pytest.mark.parametrize("p", [1e-5, 1e-100, 1e-200, 1e-300])
def test_robust_betaincinv_matches_mpmath(d, p):
    a = (d - 1) / 2.0
    x = float(robust_betaincinv(a, a, p))
    assert x > 0
    mp.mp.dps = 60
    # reference: two Newton steps in log x from x, at 60 digits (quadratic convergence)
    y = mp.log(mp.mpf(x))
    for _ in range(2):
        t = mp.exp(y)
        log_i = mp.log(mp.betainc(a, a, 0, t, regularized=True))
        slope = t**a * (1 - t) ** (a - 1) / mp.beta(a, a) / mp.betainc(a, a, 0, t, regularized=True)
        y -= (log_i - mp.log(p)) / slope
    ref = float(mp.exp(y))
    # log I is known to ~eps * |log p| absolute, and d log I / d log x ~ a
    tol = 8 * EPS * (1 + abs(math.log(p))) / a
    assert abs(x / ref - 1) <= tol, (x, ref)


def test_robust_betaincinv_edges_and_arrays():
    out = robust_betaincinv(2.0, 3.0, np.array([0.0, 1e-320, 0.5, 1.0]))
    assert out.shape == (4,) and out[0] == 0.0 and out[-1] == 1.0
    assert 0 < out[1] < 1e-100
    assert abs(special.betainc(2.0, 3.0, out[2]) - 0.5) < 1e-14


# ---------------------------------------------------------------------------
# Uniform keys: Beta law, kappa, distance form
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("d", [2, 3, 8])
def test_uniform_u_is_beta_on_real_unit_vectors(d):
    rng = np.random.default_rng(11 + d)
    keys = UniformSphere(d).sample(5000, rng)
    np.testing.assert_allclose(np.linalg.norm(keys, axis=1), 1.0, atol=1e-12)
    q = unit(rng.standard_normal(d))
    u = (1.0 - keys @ q) / 2.0
    a = (d - 1) / 2.0
    assert stats.kstest(u, stats.beta(a, a).cdf).pvalue > ALPHA
    # the score law's own cdf, on the scores
    assert stats.kstest(keys @ q, UniformSphere(d).score_law(q).cdf).pvalue > ALPHA


@pytest.mark.parametrize("d", [2, 3, 5, 10, 129])
def test_uniform_kappa_closed_form_vs_limit_mpmath(d):
    a = (d - 1) / 2.0
    tail = UniformScoreLaw(d).tail()
    assert tail.gamma == a and tail.endpoint == 1.0
    mp.mp.dps = 80
    eps = mp.mpf("1e-40")  # next-order term a(a-1)/(a+1) eps/2 < 1e-36: far below 1e-12
    limit = mp.betainc(a, a, 0, eps / 2, regularized=True) / eps**a
    assert abs(tail.kappa / float(limit) - 1) < 1e-12


@pytest.mark.parametrize("d", [3, 5, 10])
def test_uniform_kappa_by_next_order_extrapolation(d):
    a = (d - 1) / 2.0
    u = 1e-7  # remainder O(u^2) ~ 1e-13 (times a polynomial in a below 10 here)
    ratio = special.betainc(a, a, u) / (2 * u) ** a
    estimate = ratio / (1 - a * (a - 1) / (a + 1) * u)
    assert abs(estimate / UniformScoreLaw(d).tail().kappa - 1) < 1e-11


@pytest.mark.parametrize("d", [2, 3, 4, 7, 64])
def test_uniform_distance_form_kappa_r(d):
    a = (d - 1) / 2.0
    kappa = UniformScoreLaw(d).tail().kappa
    # |q - K|^2 = 2 G, so P(|q-K| <= r) = P(G <= r^2/2) ~ kappa 2^-a r^(d-1)
    kappa_r = kappa * 2.0**-a
    closed = math.exp(math.lgamma(d / 2) - math.log(2 * math.sqrt(math.pi)) - math.lgamma((d + 1) / 2))
    assert abs(kappa_r / closed - 1) < 1e-12
    r = 1e-5
    mp.mp.dps = 40
    exact = mp.betainc(a, a, 0, mp.mpf(r) ** 2 / 4, regularized=True)  # r^63 underflows float64
    assert abs(float(exact / (kappa_r * mp.mpf(r) ** (d - 1))) - 1) < a * a * r * r  # next order O(a^2 r^2)
    if d == 3:
        assert kappa_r == pytest.approx(0.25, rel=1e-15)
        assert UniformScoreLaw(3).gap_cdf(r * r / 2) == pytest.approx(r * r / 4, rel=1e-14)


def test_uniform_scale_law():
    law = UniformScoreLaw(5, scale=0.5)
    assert (law.endpoint, law.lower) == (0.5, -0.5)
    ref = UniformScoreLaw(5)
    s = np.array([-0.4, 0.0, 0.3, 0.49])
    np.testing.assert_allclose(law.cdf(s), ref.cdf(2 * s), rtol=1e-14)
    tail = law.tail()
    assert tail.kappa == pytest.approx(ref.tail().kappa * 0.5 ** (-2.0), rel=1e-14)


# ---------------------------------------------------------------------------
# Zonal machinery: the ring integral against the exact Beta law
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("d", [2, 3, 4, 7, 129])
def test_zonal_ring_integral_reproduces_uniform_law(d):
    # the uniform law looks the same from every query: any theta must give Beta(a, a)
    ref = UniformScoreLaw(d)
    g = np.array([1e-14, 1e-6, 0.01, 0.5, 1.0, 1.3, 1.99, 2 - 1e-9])
    with np.errstate(divide="ignore"):
        ref_cdf, ref_sf, ref_pdf = ref.log_gap_cdf(g), ref.log_gap_sf(g), np.log(ref.gap_pdf(g))
    for theta in [0.0, 1e-9, 0.3, math.pi / 2, 2.5, math.pi - 1e-7, math.pi]:
        law = ZonalScoreLaw(UniformSphere(d), theta)
        with np.errstate(divide="ignore"):
            got_pdf = np.log(law.gap_pdf(g))
        for got, want in [(law.log_gap_cdf(g), ref_cdf), (law.log_gap_sf(g), ref_sf), (got_pdf, ref_pdf)]:
            finite = np.isfinite(want)
            np.testing.assert_array_equal(np.isfinite(got), finite)
            err = np.abs(got[finite] - want[finite]) / np.maximum(1.0, np.abs(want[finite]))
            assert np.max(err) < 1e-12, (theta, got, want)


def test_vmf_kappa_zero_is_uniform():
    for d in [3, 6]:
        law = VonMisesFisher(axis(d), 0.0)
        for q in [axis(d), unit(np.r_[1.0, 2.0, np.zeros(d - 2)])]:
            sl = law.score_law(q)
            g = np.array([1e-10, 0.3, 1.0, 1.7])
            np.testing.assert_allclose(sl.log_gap_cdf(g), UniformScoreLaw(d).log_gap_cdf(g), rtol=1e-12)


# ---------------------------------------------------------------------------
# Batched log-space quadrature (every cap and density of a zonal law)
# ---------------------------------------------------------------------------


def test_log_integral_rows_closed_forms():
    # Gaussian peaks from very narrow to flat (the zoom) on [-1, 2]: s sqrt(2 pi) (Phi(2/s) - Phi(-1/s));
    # the peak sits at 0, where x resolves widths far below 1e-9 (elsewhere x itself rounds)
    s = np.array([1e-9, 1e-4, 0.03, 1.0, 30.0])

    def gauss(rows, x):
        return -0.5 * (x / s[rows, None]) ** 2

    got = log_integral_rows(gauss, -1.0, np.full(s.size, 2.0))
    mp.mp.dps = 30
    ref = [float(mp.log(mp.sqrt(2 * mp.pi) * si * (mp.ncdf(2 / si) - mp.ncdf(-1 / si)))) for si in s]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11)
    # integrable singular end (Gauss-Legendre fails there, tanh-sinh does not): int_0^h x^-a = h^(1-a)/(1-a)
    a = np.array([0.5, 0.9, 0.9, 0.3])
    h = np.array([1.0, 1.0, 1e-200, 7.0])

    def power(rows, x):
        return -a[rows, None] * np.log(x)

    got = log_integral_rows(power, 0.0, h)
    ref = (1 - a) * np.log(h) - np.log1p(-a)
    assert np.all(np.abs(got - ref) <= 1e-10 * np.maximum(1.0, np.abs(ref))), (got, ref)
    # empty or reversed intervals, and integrands that are 0 everywhere, give log 0
    assert np.all(log_integral_rows(power, 1.0, np.array([1.0, 0.5])) == -np.inf)
    assert np.all(log_integral_rows(lambda rows, x: np.full(x.shape, -np.inf), 0.0, np.ones(2)) == -np.inf)


# ---------------------------------------------------------------------------
# Independent reference: quadrature in x = <mu, K> (the brief's formula)
# ---------------------------------------------------------------------------


def x_space_sf(log_fx, d: int, t: float, s: float, k: int = 1) -> float:
    r"""P(S >= s) for S = t X + sqrt(1-t^2) sqrt(1-X^2) V, by quad over x in [-1, 1].

    ``log_fx(x, 1 - x)`` is the unnormalized log density of X; V is the first coordinate
    of a uniform point on S^{d-2} (d >= 3), P(V >= v) = I_{(1-v)/2}(b, b).
    The integral runs over y with x = 1 - 2 y^k (k > 1 smooths a density
    singular at x = 1).
    """
    b = (d - 2) / 2.0
    st = math.sqrt(1 - t * t)

    def weight(y):  # density of X at x(y) times dx/dy; 1 - x = 2 y^k kept exact
        omx = 2 * y**k
        return math.exp(log_fx(1 - omx, omx)) * 2 * k * y ** (k - 1), 1 - omx, omx

    def inner(y):
        f, x, omx = weight(y)
        v = (s - t * x) / (st * math.sqrt(omx * (2 - omx)))
        w = min(max((1 - v) / 2, 0.0), 1.0)
        return f * special.betainc(b, b, w)

    th, ps = math.acos(t), math.acos(s)
    ends = {math.cos(min(th + ps, math.pi)), math.cos(max(th - ps, 0.0))}
    pts = sorted(((1 - x) / 2) ** (1 / k) for x in ends if -1 < x < 1)
    norm = integrate.quad(lambda y: weight(y)[0], 0, 1, epsabs=0, epsrel=1e-12, limit=200)[0]
    num = integrate.quad(inner, 0, 1, points=pts or None, epsabs=0, epsrel=1e-12, limit=400)[0]
    return num / norm


@pytest.mark.parametrize("d,kappa", [(3, 2.0), (3, 12.0), (6, 5.0), (11, 30.0)])
@pytest.mark.parametrize("theta", [0.7, 2.0])
def test_vmf_score_law_matches_x_space_quadrature(d, kappa, theta):
    law = VonMisesFisher(axis(d), kappa)
    q = np.r_[math.cos(theta), math.sin(theta), np.zeros(d - 2)]
    sl = law.score_law(q)

    def log_fx(x, omx):
        return -kappa * omx + (d - 3) / 2 * math.log(omx * (1 + x))

    for s in [-0.6, 0.0, 0.4, 0.8, 0.95]:
        ref = x_space_sf(log_fx, d, math.cos(theta), s)
        assert abs(float(sl.sf(s)) / ref - 1) < 1e-8, (s, float(sl.sf(s)), ref)


@pytest.mark.parametrize("d,eta", [(3, -1.5), (3, 2.0), (6, 3.0), (5, -3.0)])
def test_power_score_law_matches_x_space_quadrature(d, eta):
    law = PowerDensity(d, eta)
    theta = 1.1
    q = np.r_[math.cos(theta), math.sin(theta), np.zeros(d - 2)]
    sl = law.score_law(q)

    def log_fx(x, omx):
        # |k - e_1|^eta = (2 - 2x)^(eta/2), surface element (1-x^2)^((d-3)/2)
        return eta / 2 * math.log(2 * omx) + (d - 3) / 2 * math.log(omx * (1 + x))

    k = math.ceil(2 / (eta + d - 1))  # x = 1 - 2 y^k makes (1 - x)^((eta+d-3)/2) dx smooth
    for s in [-0.5, 0.1, 0.6, 0.9]:
        ref = x_space_sf(log_fx, d, math.cos(theta), s, k)
        assert abs(float(sl.sf(s)) / ref - 1) < 1e-8, (s, float(sl.sf(s)), ref)


@pytest.mark.parametrize("kappa", [0.5, 4.0])
@pytest.mark.parametrize("theta", [0.0, 0.9, math.pi])
def test_vmf_circle_matches_von_mises_arc_integral(kappa, theta):
    # d = 2: P(S >= cos psi) = integral of the von Mises density over the arc |t - theta| <= psi
    law = VonMisesFisher([1.0, 0.0], kappa)
    sl = law.score_law([math.cos(theta), math.sin(theta)])
    dens = lambda t: math.exp(kappa * (math.cos(t) - 1)) / (2 * math.pi * special.i0e(kappa))  # noqa: E731
    for psi in [1e-6, 0.4, 1.5, 2.6]:
        # integrate over the offset t in [-psi, psi]: the endpoints theta +- psi would round
        ref = integrate.quad(lambda t: dens(theta + t), -psi, psi, epsabs=0, epsrel=1e-13)[0]
        gap = 2 * math.sin(psi / 2) ** 2  # 1 - cos(psi) without cancellation
        assert abs(float(sl.gap_cdf(gap)) / ref - 1) < 1e-10


# ---------------------------------------------------------------------------
# Von Mises-Fisher: normalizer, mean, sampler
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("d", [2, 3, 5, 10, 30])
@pytest.mark.parametrize("kappa", [1e-6, 0.5, 3.0, 50.0, 1e4])
def test_vmf_normalizer_and_mean_vs_bessel(d, kappa):
    law = VonMisesFisher(axis(d), kappa)
    nu = d / 2 - 1
    log_c = nu * math.log(kappa) - d / 2 * math.log(2 * math.pi) - (math.log(special.ive(nu, kappa)) + kappa)
    assert abs(law.log_normalizer - log_c) < 1e-13 * (1 + kappa)  # log C ~ -kappa: relative to its size
    a_ref = special.ive(d / 2, kappa) / special.ive(nu, kappa)
    assert abs(law.mean_resultant_length / a_ref - 1) < 1e-12
    np.testing.assert_allclose(law.mean(), a_ref * axis(d), rtol=1e-12)


@pytest.mark.parametrize("d,kappa", [(129, 5.0), (1000, 5.0), (1000, 2000.0)])
def test_vmf_large_dimension_vs_mpmath(d, kappa):
    # unscaled Bessel functions underflow here (scipy's vmf fit fails for d >= 67)
    law = VonMisesFisher(axis(d), kappa)
    mp.mp.dps = 40
    nu = mp.mpf(d) / 2 - 1
    log_c = nu * mp.log(kappa) - mp.mpf(d) / 2 * mp.log(2 * mp.pi) - mp.log(mp.besseli(nu, kappa))
    assert abs(law.log_normalizer - float(log_c)) < 1e-12 * abs(float(log_c))
    a_ref = mp.besseli(nu + 1, kappa) / mp.besseli(nu, kappa)
    assert abs(law.mean_resultant_length / float(a_ref) - 1) < 1e-12


@pytest.mark.parametrize("d,kappa", [(2, 3.0), (3, 0.5), (3, 20.0), (10, 20.0), (129, 1e6)])
def test_vmf_sampler_matches_law(d, kappa):
    rng = np.random.default_rng(100 + d)
    mu = unit(rng.standard_normal(d))
    law = VonMisesFisher(mu, kappa)
    n = 20000
    keys = law.sample(n, rng)
    np.testing.assert_allclose(np.linalg.norm(keys, axis=1), 1.0, atol=1e-12)
    x = keys @ mu
    # mean of 1 - <mu, K> (no cancellation at large kappa) within 4 standard errors
    gap = 1.0 - x
    target = 1.0 - law.mean_resultant_length
    assert abs(gap.mean() - target) < z_crit(1) * gap.std(ddof=1) / math.sqrt(n)
    # tangential part averages to 0 (rotation symmetry about mu); Bonferroni over coordinates
    tang = keys - np.outer(x, mu)
    se = tang.std(axis=0, ddof=1) / math.sqrt(n)
    z = np.abs(tang.mean(axis=0)) / se
    assert np.max(z) < z_crit(d)
    # law of <mu, K> against the quadrature-based score law (Wood's sampler is independent of it)
    pilot = law.sample(4000, np.random.default_rng(7)) @ mu
    assert grid_ks_pvalue(x, law.score_law(mu), pilot) > ALPHA


# ---------------------------------------------------------------------------
# Every law: internal consistency and brute force
# ---------------------------------------------------------------------------


def _cases():
    d = 5
    off = unit([0.3, -0.5, 0.2, 0.7, 0.1])
    mu = unit([1.0, 1.0, 0.0, 0.0, 0.0])
    return [
        ("uniform", UniformSphere(d), off),
        ("vmf-mu", VonMisesFisher(mu, 8.0), mu),
        ("vmf-off", VonMisesFisher(mu, 8.0), off),
        ("vmf-anti", VonMisesFisher(mu, 3.0), -mu),
        ("vmf-circle", VonMisesFisher([0.6, 0.8], 2.0), [1.0, 0.0]),
        ("vmf-s2", VonMisesFisher([0.0, 0.0, 1.0], 4.0), unit([1.0, 0.0, 1.0])),
        ("subsphere-in", GreatSubsphere(d, 3), unit([1.0, 2.0, 2.0, 0.0, 0.0])),
        ("subsphere-off", GreatSubsphere(d, 3), off),
        ("power-pole", PowerDensity(d, 2.5), axis(d)),
        ("power-neg-off", PowerDensity(d, -2.0), off),
        ("power-pos-anti", PowerDensity(3, 1.5), -axis(3)),
        ("mixture", Mixture([VonMisesFisher(mu, 6.0), UniformSphere(d), GreatSubsphere(d, 2)], [0.5, 0.3, 0.2]), off),
    ]


CASES = _cases()
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,law,q", CASES, ids=IDS)
def test_score_law_against_brute_force_scores(name, law, q):
    seed = sum(map(ord, name))
    scores = law.sample(20000, np.random.default_rng(seed)) @ np.asarray(q)
    pilot = law.sample(4000, np.random.default_rng(seed + 1)) @ np.asarray(q)
    sl = law.score_law(q)
    assert np.all(scores <= sl.endpoint + 1e-12) and np.all(scores >= sl.lower - 1e-12)
    assert grid_ks_pvalue(scores, sl, pilot) > ALPHA
    # the score law's own sampler agrees too
    own = sl.sample(20000, np.random.default_rng(seed + 2))
    assert grid_ks_pvalue(own, sl, pilot) > ALPHA


@pytest.mark.parametrize("name,law,q", CASES, ids=IDS)
def test_pdf_integrates_to_cdf(name, law, q):
    sl = law.score_law(q)
    lo, hi = sl.lower, sl.endpoint
    width = hi - lo
    for frac in [(0.05, 0.3), (0.3, 0.7), (0.7, 0.999)]:
        s1, s2 = lo + frac[0] * width, lo + frac[1] * width
        # breakpoints where a component density has an end (integrable singularities for d = 2)
        kinks = sorted({e for c in getattr(sl, "laws", (sl,)) for e in (c.endpoint, c.lower) if s1 < e < s2})
        mass = integrate.quad(lambda s: float(sl.pdf(s)), s1, s2, points=kinks or None, epsabs=0, epsrel=1e-10, limit=200)[0]
        diff = float(sl.cdf(s2) - sl.cdf(s1))
        assert abs(mass - diff) <= 1e-8 * diff + 1e-13, (frac, mass, diff)


@pytest.mark.parametrize("name,law,q", CASES, ids=IDS)
def test_cdf_sf_complement_and_quantiles(name, law, q):
    sl = law.score_law(q)
    width = sl.endpoint - sl.lower
    g = width * np.array([1e-9, 0.01, 0.2, 0.5, 0.8])
    # cdf and sf come from separate integrals (the two caps): they must add to 1
    np.testing.assert_allclose(sl.gap_cdf(g) + sl.gap_sf(g), 1.0, atol=1e-12)
    # upper tail: gap_ppf inverts gap_cdf to relative 1e-10 even for tiny probabilities
    for gi in [1e-9 * width, 1e-4 * width, 0.05 * width]:
        p = float(sl.gap_cdf(gi))
        if p > 0:
            assert abs(float(sl.gap_ppf(p)) / gi - 1) < 1e-10, (gi, p)
    # bulk: ppf(cdf(s)) = s where neither cdf nor sf is tiny (p near 1 loses 1 - p)
    for frac in [0.2, 0.5, 0.8]:
        s = sl.lower + frac * width
        p = float(sl.cdf(s))
        if 1e-3 < p < 1 - 1e-3:
            assert abs(float(sl.ppf(p)) - s) < 1e-9
            assert abs(float(sl.isf(1 - p)) - s) < 1e-9


@pytest.mark.parametrize("name,law,q", CASES, ids=IDS)
def test_tail_matches_own_gap_cdf(name, law, q):
    sl = law.score_law(q)
    tail = law.score_tail(q)
    assert isinstance(tail, ScoreTail) and tail.kind == "weibull"
    assert tail.endpoint == sl.endpoint
    width = sl.endpoint - sl.lower
    # P(G <= eps) / (kappa eps^gamma) = 1 + O(eps / eps0) with eps0 the scale on which
    # the density varies (here >= 1e-2 of the width); eps = 1e-10 width leaves <= 1e-8
    eps = 1e-10 * width
    ratio = float(sl.gap_cdf(eps)) / (tail.kappa * eps**tail.gamma)
    assert abs(ratio - 1) < 1e-6
    slope = math.log(float(sl.gap_cdf(eps)) / float(sl.gap_cdf(eps / 10))) / math.log(10)
    assert abs(slope - tail.gamma) < 1e-6


# ---------------------------------------------------------------------------
# Quantiles (batched Newton search) against independent references
# ---------------------------------------------------------------------------

# many p per law: tiny ones, the bulk, and 1 - p down to 1e-12
P_GRID = np.array(
    [1e-300, 1e-200, 1e-100, 1e-40, 1e-15, 1e-6, 1e-3, 0.05, 0.3, 0.5, 0.7, 0.95, 1 - 1e-3, 1 - 1e-6, 1 - 1e-12]
)


def brent_quantile(sl, p: float) -> float:
    """The scalar method gap_ppf used before batching: Brent (xtol 1e-14) in log g, one p at a time.

    Solves log F(e^y) = log p for p <= 1/2 and -log SF(e^y) = -log(1 - p) above, with
    the law's own log_gap_cdf / log_gap_sf (checked against x-space quadrature above).
    """
    if p <= 0.5:

        def h(y):
            return float(sl.log_gap_cdf(math.exp(y))) - math.log(p)

    else:

        def h(y):
            return math.log1p(-p) - float(sl.log_gap_sf(math.exp(y)))

    def clipped(y):
        return min(max(h(y), -1e4), 1e4)

    hi = math.log(sl.endpoint - sl.lower)
    lo = hi - 1.0
    while clipped(lo) > 0:
        lo = hi - 2.0 * (hi - lo)
        if lo < math.log(np.finfo(float).tiny) and clipped(math.log(np.finfo(float).tiny)) >= 0:
            return 0.0  # below the smallest normal float: 0 by convention
    return math.exp(optimize.brentq(clipped, lo, hi, xtol=1e-14, maxiter=500))


def _quantile_cases():
    d = 5
    off = unit([0.3, -0.5, 0.2, 0.7, 0.1])
    mu = unit([1.0, 1.0, 0.0, 0.0, 0.0])
    return [
        ("vmf-off", VonMisesFisher(mu, 8.0), off),
        ("vmf-anti", VonMisesFisher(mu, 3.0), -mu),
        ("vmf-d8-90deg", VonMisesFisher(axis(8), 5.0), axis(8, 1)),
        ("vmf-concentrated-anti", VonMisesFisher(axis(4), 50.0), -axis(4)),  # median near the bottom
        ("vmf-circle", VonMisesFisher([0.6, 0.8], 2.0), [1.0, 0.0]),
        ("power-neg-off", PowerDensity(d, -2.0), off),
        ("mixture-kinks", Mixture([VonMisesFisher(mu, 6.0), UniformSphere(d), GreatSubsphere(d, 2)], [0.5, 0.3, 0.2]), off),
    ]


QUANTILE_CASES = _quantile_cases()


@pytest.mark.parametrize("name,law,q", QUANTILE_CASES, ids=[c[0] for c in QUANTILE_CASES])
def test_quantiles_match_scalar_brent_reference(name, law, q):
    sl = law.score_law(q)
    got = sl.gap_ppf(P_GRID)
    ref = np.array([brent_quantile(sl, p) for p in P_GRID])
    # both solve the same equation: Newton stops at steps < 1e-12 in log g (the step applied),
    # Brent at 1e-14; the probabilities carry ~1e-13 relative noise, d log P / d log g >= 1/2
    np.testing.assert_allclose(got, ref, rtol=1e-11, atol=0)


@pytest.mark.parametrize("d", [2, 3, 6, 12])
def test_zonal_quantiles_of_uniform_keys_are_beta_quantiles(d):
    # from any angle the uniform law's gap is 2 Beta(a, a): robust_betaincinv (checked against mpmath above)
    ref = UniformScoreLaw(d)
    low = P_GRID <= 0.5
    top = ref.gap_ppf(P_GRID[low])
    bottom = ref.gap_ppf(1.0 - P_GRID[~low])  # by symmetry 2 - G has the law of G: the distance to the bottom
    for theta in [0.0, 0.4, math.pi / 2, 2.9, math.pi]:
        g = ZonalScoreLaw(UniformSphere(d), theta).gap_ppf(P_GRID)
        np.testing.assert_allclose(g[low], top, rtol=1e-11, atol=0)
        # above the median: 2 - g to 1e-11 relative, but g is a float near 2 (half an ulp of 2)
        np.testing.assert_allclose(2.0 - g[~low], bottom, rtol=1e-11, atol=2.3e-16)


@pytest.mark.parametrize("kappa", [5.0, 60.0])
def test_vmf_sphere_quantiles_match_closed_form_at_both_ends(kappa):
    # d = 3: X = <mu, K> has density ~ e^(kappa x) on [-1, 1], so from the pole
    # P(G <= g) = (1 - e^(-kappa g)) / (1 - e^(-2 kappa)), and from -mu the gap is 2 - G.
    # The inverses, in p and 1 - p (both exact here), with log1p / expm1 (a few ulps):
    c, big = -math.expm1(-2 * kappa), math.expm1(2 * kappa)

    def near_pole(p):  # g
        return -np.log1p(-p * c) / kappa

    def far_from_pole(r):  # 2 - g, with r = 1 - p
        return np.log1p(r * big) / kappa

    law = VonMisesFisher(axis(3), kappa)
    low = P_GRID <= 0.5
    p, r = P_GRID[low], 1.0 - P_GRID[~low]
    for q, top, bottom in [(axis(3), near_pole(p), far_from_pole(r)), (-axis(3), far_from_pole(p), near_pole(r))]:
        g = law.score_law(q).gap_ppf(P_GRID)
        np.testing.assert_allclose(g[low], top, rtol=1e-11, atol=0)
        # 2 - g to 1e-11 relative, but g is a float near 2 (half an ulp of 2)
        np.testing.assert_allclose(2.0 - g[~low], bottom, rtol=1e-11, atol=2.3e-16)


def test_far_tails_keep_relative_accuracy_on_both_sides_of_the_median():
    # d = 3 vMF from -mu, kappa = 200: P(G <= g) = expm1(kappa g) / expm1(2 kappa) is far below 1e-80
    # for every g < 1.1 (the cap of q, never one minus the cap of -q); the upper tail from +mu mirrors it
    kappa = 200.0
    law = VonMisesFisher(axis(3), kappa)
    g = np.array([1e-6, 0.3, 0.9, 1.0, 1.1])
    mp.mp.dps = 50
    ref = [float(mp.log(mp.expm1(kappa * mp.mpf(x)) / mp.expm1(2 * kappa))) for x in g]
    np.testing.assert_allclose(law.score_law(-axis(3)).log_gap_cdf(g), ref, rtol=1e-11)
    np.testing.assert_allclose(law.score_law(axis(3)).log_gap_sf(2.0 - g), ref, rtol=1e-11)


def test_quantiles_of_a_lattice_equal_single_quantiles():
    # the sampler asks for hundreds of p at once (a lattice in logit p): every 8th is solved first and the
    # others start from their interpolant; one p at a time starts from the tail.  Same roots.
    sl = VonMisesFisher(unit([1.0, 1.0, 0.0, 0.0, 0.0]), 8.0).score_law(unit([0.3, -0.5, 0.2, 0.7, 0.1]))
    p = special.expit(np.arange(-45.0, 37.0, 0.02))
    g = sl.gap_ppf(p)
    assert np.all(np.diff(g) >= 0) and np.all(np.diff(g[p < 0.999]) > 0)  # g rounds to 2 as p -> 1
    pick = np.arange(3, p.size, 151)
    single = np.array([float(sl.gap_ppf(x)) for x in p[pick]])
    np.testing.assert_allclose(g[pick], single, rtol=1e-11, atol=0)
    # shape, scalars, duplicates and the ends
    grid = sl.gap_ppf(np.array([[0.0, 0.3], [0.3, 1.0]]))
    assert grid.shape == (2, 2) and grid[0, 0] == 0.0 and grid[1, 1] == 2.0 and grid[0, 1] == grid[1, 0]
    assert np.ndim(sl.gap_ppf(0.3)) == 0 and float(sl.gap_ppf(0.3)) == grid[0, 1]


@pytest.mark.parametrize("name,law,q", [c for c in QUANTILE_CASES if c[0] in ("vmf-off", "mixture-kinks")], ids=["vmf-off", "mixture-kinks"])
def test_inverse_cdf_samples_match_brute_force_scores(name, law, q):
    # gap_ppf(U) against scores of keys from the law's own sampler (independent of the quadrature)
    seed = sum(map(ord, name))
    scores = law.sample(20000, np.random.default_rng(seed)) @ np.asarray(q)
    sl = law.score_law(q)
    inverse = sl.endpoint - sl.gap_ppf(np.random.default_rng(seed + 1).random(5000))
    assert stats.ks_2samp(scores, inverse).pvalue > ALPHA


def test_unbounded_mixture_quantiles_invert_the_cdf():
    # a Gaussian component makes the support unbounded below: the upper half is solved in log g
    sl = Mixture([GaussianKeys(3), UniformSphere(3)]).score_law(axis(3))
    assert sl.lower == -math.inf
    p = np.array([1e-100, 1e-10, 0.3, 0.5, 0.6, 0.9, 1 - 1e-9])
    g = sl.gap_ppf(p)
    low = p <= 0.5
    np.testing.assert_allclose(sl.log_gap_cdf(g[low]), np.log(p[low]), rtol=0, atol=1e-11)
    np.testing.assert_allclose(sl.log_gap_sf(g[~low]), np.log1p(-p[~low]), rtol=0, atol=1e-11)
    assert sl.gap_ppf(1.0) == math.inf


# ---------------------------------------------------------------------------
# Tails: the values of section 2
# ---------------------------------------------------------------------------


def test_vmf_tail_is_density_times_uniform_kappa():
    d, kappa = 4, 6.0
    mu = axis(d)
    law = VonMisesFisher(mu, kappa)
    a = (d - 1) / 2.0
    area = 2 * math.pi ** (d / 2) / math.gamma(d / 2)
    for q in [mu, -mu, axis(d, 1), unit([1.0, -1.0, 0.5, 0.0])]:
        rho = math.exp(law.log_normalizer + kappa * float(q @ mu))
        tail = law.score_tail(q)
        assert tail.gamma == a and tail.endpoint == 1.0
        assert tail.kappa == pytest.approx(math.exp(log_kappa_unif(a)) * rho * area, rel=1e-12)


def test_power_tail_values():
    d, eta = 4, 1.0
    law = PowerDensity(d, eta)
    a, g = 1.5, 2.0
    pole = law.score_tail(axis(d))
    assert pole.gamma == g
    assert pole.kappa == pytest.approx(2**-g / (g * special.beta(g, a)), rel=1e-14)
    assert isinstance(law.score_law(axis(d)), BetaScoreLaw)
    # away from e_1: (d-1)/2 and kappa_unif * rho(q) |S^{d-1}|, rho ∝ |q - e_1|^eta
    for q in [axis(d, 1), -axis(d), unit([0.3, 0.4, 0.0, 0.5])]:
        rel = np.linalg.norm(q - axis(d)) ** eta / (2**eta * special.beta(a + eta / 2, a) / special.beta(a, a))
        tail = law.score_tail(q)
        assert tail.gamma == a
        assert tail.kappa == pytest.approx(math.exp(log_kappa_unif(a)) * rel, rel=1e-12)


def test_power_normalizer_by_quadrature():
    # E_unif |K - e_1|^eta = 2^eta B(a + eta/2, a) / B(a, a), against quad over u ~ Beta(a, a)
    for d, eta in [(3, -1.5), (5, 2.5), (8, -6.0)]:
        a = (d - 1) / 2
        num = integrate.quad(lambda u: (4 * u) ** (eta / 2) * stats.beta.pdf(u, a, a), 0, 1, epsrel=1e-12, limit=200)[0]
        closed = 2**eta * special.beta(a + eta / 2, a) / special.beta(a, a)
        assert num == pytest.approx(closed, rel=1e-9)
        law = PowerDensity(d, eta)
        # the law uses exactly this constant: relative density 1 at the mean of |K-e1|^eta
        u = closed ** (2 / eta) / 4
        assert float(law._log_rel_density(np.float64(u), np.float64(1 - u))) == pytest.approx(0.0, abs=1e-12)


def test_subsphere_tail_and_endpoint():
    d, m = 6, 3
    law = GreatSubsphere(d, m)
    am = (m - 1) / 2
    q = unit([0.3, 0.4, 0.0, 0.0, 0.5, -0.7])
    r = math.hypot(0.3, 0.4) / np.linalg.norm([0.3, 0.4, 0.0, 0.0, 0.5, -0.7])
    tail = law.score_tail(q)
    assert tail.endpoint == pytest.approx(r, rel=1e-14)
    assert tail.gamma == am
    assert tail.kappa == pytest.approx(math.exp(log_kappa_unif(am)) * r**-am, rel=1e-12)
    # a query in the span: endpoint exactly 1
    assert law.score_tail(unit([1.0, 2.0, 2.0, 0, 0, 0])).endpoint == 1.0
    keys = law.sample(100, 0)
    assert np.all(keys[:, m:] == 0) and np.allclose(np.linalg.norm(keys, axis=1), 1)


def test_mixture_tail_rules():
    d = 4
    q = unit([1.0, 0.0, 0.0, 1.0])  # off span(e1, e2): the subsphere tops out at 1/sqrt(2)
    sub = GreatSubsphere(d, 2)
    uni = UniformSphere(d)
    kap = math.exp(log_kappa_unif(1.5))
    # different endpoints: only the uniform component reaches 1
    t = Mixture([sub, uni], [3.0, 1.0]).score_tail(q)
    assert (t.endpoint, t.gamma) == (1.0, 1.5) and t.kappa == pytest.approx(0.25 * kap, rel=1e-14)
    # same endpoint, different gammas: the subsphere (gamma 1/2) wins
    q_in = axis(d)
    t = Mixture([sub, uni], [3.0, 1.0]).score_tail(q_in)
    assert t.gamma == 0.5 and t.kappa == pytest.approx(0.75 * math.exp(log_kappa_unif(0.5)), rel=1e-14)
    # same gamma: kappas add with their weights
    vmf = VonMisesFisher(axis(d), 2.0)
    t = Mixture([vmf, uni], [1.0, 1.0]).score_tail(q)
    assert t.gamma == 1.5
    assert t.kappa == pytest.approx(0.5 * vmf.score_tail(q).kappa + 0.5 * kap, rel=1e-14)
    np.testing.assert_allclose(Mixture([sub, uni], [3.0, 1.0]).weights, [0.75, 0.25])


def test_mixture_score_law_is_weighted_sum():
    d = 3
    q = unit([0.2, 0.5, 0.8])
    comps = [VonMisesFisher(axis(d), 5.0), GreatSubsphere(d, 2)]
    law = Mixture(comps, [0.4, 0.6])
    sl = law.score_law(q)
    s = np.array([-0.7, 0.0, 0.3, 0.5])
    want = 0.4 * comps[0].score_law(q).cdf(s) + 0.6 * comps[1].score_law(q).cdf(s)
    np.testing.assert_allclose(sl.cdf(s), want, rtol=1e-13)
    assert sl.endpoint == 1.0 and isinstance(sl, MixtureScoreLaw)


# ---------------------------------------------------------------------------
# Empirical keys and names
# ---------------------------------------------------------------------------


def test_empirical_resamples_rows():
    keys = np.array([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.5, 0.5, 0.5]])
    law = Empirical(keys)
    out = law.sample(3000, 5)
    assert out.shape == (3000, 3) and law.d == 3
    idx = [int(np.flatnonzero((keys == row).all(axis=1))[0]) for row in out]
    counts = np.bincount(idx, minlength=3)
    assert stats.chisquare(counts).pvalue > ALPHA
    with pytest.raises(TypeError, match="score_law.*estimate"):
        law.score_law(axis(3))
    with pytest.raises(TypeError, match="score_tail.*estimate"):
        law.score_tail(axis(3))
    assert isinstance(law, KeyLaw)


def test_law_from_name():
    assert law_from_name("uniform", 4) == UniformSphere(4)
    vmf = law_from_name("vmf", 4, kappa=3.0, mu_axis=2)
    np.testing.assert_array_equal(vmf.mu, axis(4, 1))
    assert vmf.kappa == 3.0
    np.testing.assert_array_equal(law_from_name("vmf", 3, kappa=1.0, mu_axis=None).mu, axis(3))
    assert law_from_name("subsphere", 5, m=3) == GreatSubsphere(5, 3)
    assert law_from_name("power", 3, eta=-1.0) == PowerDensity(3, -1.0)
    with pytest.raises(ValueError, match=r"^law: .*uniform, vmf, subsphere, power"):
        law_from_name("gauss", 3)
    with pytest.raises(ValueError, match=r"^kappa: required"):
        law_from_name("vmf", 3)
    with pytest.raises(ValueError, match=r"^m: not a parameter"):
        law_from_name("power", 3, eta=1.0, m=2)
    with pytest.raises(ValueError, match=r"^mu_axis"):
        law_from_name("vmf", 3, kappa=1.0, mu_axis=4)
    with pytest.raises(ValueError, match=r"^d"):
        law_from_name("uniform", 1)


# ---------------------------------------------------------------------------
# Extreme parameters stay finite
# ---------------------------------------------------------------------------


def test_extreme_parameters_are_finite_and_monotone():
    for law, q in [
        (VonMisesFisher(axis(129), 1e6), unit(np.r_[1.0, 1.0, np.zeros(127)])),
        (VonMisesFisher(axis(3), 1e8), axis(3)),
        (PowerDensity(64, -62.9), unit(np.r_[1.0, 0.1, np.zeros(62)])),
    ]:
        sl = law.score_law(q)
        g = np.array([1e-12, 1e-6, 1e-3, 0.3, 1.0, 1.5, 1.999])
        lc = sl.log_gap_cdf(g)
        assert not np.any(np.isnan(lc)) and np.all(np.diff(lc) >= -1e-9)
        assert np.all(np.isfinite(sl.gap_pdf(g[:-1])))
    # the vMF mean at huge kappa: 1 - A = (d-1)/(2 kappa) (1 + O(1/kappa))
    law = VonMisesFisher(axis(129), 1e6)
    assert (1 - law.mean_resultant_length) * 2e6 / 128 == pytest.approx(1.0, abs=1e-3)
    assert np.isfinite(VonMisesFisher(axis(1000), 1e12).log_normalizer)


# ---------------------------------------------------------------------------
# Bad input: ValueError / TypeError naming the argument
# ---------------------------------------------------------------------------


BAD = [
    (lambda: UniformSphere(1), ValueError, "d"),
    (lambda: UniformSphere(2.5), ValueError, "d"),
    (lambda: UniformScoreLaw(3, scale=-1.0), ValueError, "scale"),
    (lambda: BetaScoreLaw(0.0, 1.0), ValueError, "shape1"),
    (lambda: BetaScoreLaw(1.0, 1.0, width=math.nan), ValueError, "width"),
    (lambda: VonMisesFisher([1.0, 0.0, 0.0], -1.0), ValueError, "kappa"),
    (lambda: VonMisesFisher([1.0, 0.0, 0.0], math.nan), ValueError, "kappa"),
    (lambda: VonMisesFisher([1.0, 0.0, 0.0], "big"), TypeError, "kappa"),
    (lambda: VonMisesFisher([1.0, 1.0, 0.0], 1.0), ValueError, "mu"),
    (lambda: VonMisesFisher([1.0], 1.0), ValueError, "mu"),
    (lambda: VonMisesFisher([[1.0, 0.0]], 1.0), ValueError, "mu"),
    (lambda: GreatSubsphere(4, 1), ValueError, "m"),
    (lambda: GreatSubsphere(4, 5), ValueError, "m"),
    (lambda: GreatSubsphere(1, 1), ValueError, "d"),
    (lambda: GreatSubsphere(4, 2).score_law(axis(4, 3)), ValueError, "q"),
    (lambda: PowerDensity(3, -2.0), ValueError, "eta"),
    (lambda: PowerDensity(3, math.inf), ValueError, "eta"),
    (lambda: PowerDensity(1, 0.0), ValueError, "d"),
    (lambda: Mixture([], None), ValueError, "laws"),
    (lambda: Mixture(UniformSphere(3), None), TypeError, "laws"),
    (lambda: Mixture([UniformSphere(3), "x"], None), TypeError, "laws"),
    (lambda: Mixture([UniformSphere(3), UniformSphere(4)], None), ValueError, "laws"),
    (lambda: Mixture([UniformSphere(3), UniformSphere(3)], [1.0, -1.0]), ValueError, "weights"),
    (lambda: Mixture([UniformSphere(3), UniformSphere(3)], [1.0]), ValueError, "weights"),
    (lambda: Mixture([UniformSphere(3), UniformSphere(3)], [1.0, math.nan]), ValueError, "weights"),
    (lambda: MixtureScoreLaw((UniformScoreLaw(3),), (-1.0,)), ValueError, "weights"),
    (lambda: MixtureScoreLaw(("x",), (1.0,)), TypeError, "laws"),
    (lambda: Empirical([[1.0], [2.0]]), ValueError, "keys"),
    (lambda: Empirical([1.0, 2.0]), ValueError, "keys"),
    (lambda: Empirical([[1.0, math.nan]]), ValueError, "keys"),
    (lambda: ZonalScoreLaw(UniformSphere(3), 4.0), ValueError, "theta"),
    (lambda: ZonalScoreLaw(GreatSubsphere(3, 2), 1.0), TypeError, "law"),
    (lambda: UniformSphere(3).sample(0, 0), ValueError, "n"),
    (lambda: VonMisesFisher([1.0, 0.0], 1.0).sample(10, "seed"), TypeError, "rng"),
]

QUERY_LAWS = [
    UniformSphere(3),
    VonMisesFisher([1.0, 0.0, 0.0], 2.0),
    GreatSubsphere(3, 2),
    PowerDensity(3, 1.0),
    Mixture([UniformSphere(3), PowerDensity(3, 1.0)]),
]
BAD_Q = [([1.0, 0.0], ValueError), ([1.0, 1.0, 0.0], ValueError), ([[1.0, 0.0, 0.0]], ValueError), ([math.nan, 0, 1], ValueError), ("abc", TypeError)]


@pytest.mark.parametrize("make,error,name", BAD, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_names_the_argument(make, error, name):
    with pytest.raises(error, match=rf"^{name}\b"):
        make()


@pytest.mark.parametrize("law", QUERY_LAWS, ids=lambda law: type(law).__name__)
@pytest.mark.parametrize("q,error", BAD_Q)
def test_bad_query_names_q(law, q, error):
    with pytest.raises(error, match=r"^q\b"):
        law.score_law(q)
    with pytest.raises(error, match=r"^q\b"):
        law.score_tail(q)
