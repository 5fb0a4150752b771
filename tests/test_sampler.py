"""Tests of sampler.py: exact top-weight sampling at any n (docs/theory.md section 4).

Independent references: exact brute force on n sampled scores (gaps drawn by elementary
order-statistic facts, not by the quantile function the sampler uses), mpmath quadrature of the
conditional moments, the critical limit law (limits.CriticalLimit) and the reference values of
docs/theory.md section 3.  Statistical tests fix their seeds; KS tests use a family-wise level
split by Bonferroni over the tests of one function; mean tests allow 4 standard errors.
"""

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import special, stats

from attnscale.laws import (
    GreatSubsphere,
    Mixture,
    PowerDensity,
    ScoreLaw,
    UniformScoreLaw,
    UniformSphere,
    VonMisesFisher,
)
from attnscale.limits import CriticalLimit
from attnscale.sampler import (
    ENUMERATE_MAX,
    M_MIN,
    TopSample,
    _draw_base,
    choose_m,
    sample_top,
)
from attnscale.sampler_lattice import DENSITY_RTOL, QUANTILE_RTOL, _build_grid, _gaps, _moments_at
from attnscale.tails import ScoreTail, critical_beta

#: Family-wise level of the in-law KS tests against brute force
#: (18 tests: 2 d x 3 c x 2 stats with automatic m, 2 c x 3 stats with m = 16).
KS_FAMILY_ALPHA = 0.01
KS_ALPHA_BRUTE = KS_FAMILY_ALPHA / 18
#: Against the critical limit: 2 c x 3 stats, plus the generic power law (2 stats).
KS_ALPHA_LIMIT = KS_FAMILY_ALPHA / 8
#: The other key laws against their critical limits: 4 laws x 2 stats.
KS_ALPHA_LAWS = KS_FAMILY_ALPHA / 8


# ---------------------------------------------------------------------------
# Independent brute force
# ---------------------------------------------------------------------------


def brute_gaps(d, n, rng):
    """Exact gaps 1 - <q, K> of n uniform keys, by order-statistic facts.

    d = 3: u = (1 - S)/2 ~ Beta(1, 1) = U(0, 1).  d = 5: u ~ Beta(2, 2), the median of three
    independent uniforms.
    """
    if d == 3:
        return 2.0 * rng.random(n)
    if d == 5:
        a, b, c = rng.random((3, n))
        return 2.0 * np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
    raise ValueError(d)


def brute_stats(gaps, beta):
    """W_1, n_eff, entropy of softmax(-beta * gaps), straight from the definitions."""
    y = beta * (gaps - gaps.min())
    x = np.exp(-y)
    w = x / x.sum()
    return w.max(), 1.0 / np.sum(w * w), float(np.sum(special.entr(w)))


def beta_for(d, n, c):
    return c * critical_beta(n, UniformScoreLaw(d).tail())


# ---------------------------------------------------------------------------
# Conditional moments of the remainder vs mpmath
# ---------------------------------------------------------------------------


def mp_moments(d, p, beta):
    """m_{a,b}(P) by mpmath: (1/(1-P)) int_{u_P}^1 e^{-2 a beta (u-u_P)} (2 beta (u-u_P))^b Beta(u; A, A) du."""
    mp.mp.dps = 30
    big_a = mp.mpf(d - 1) / 2
    pm = mp.mpf(p)
    u0 = mp.mpf(float(UniformScoreLaw(d).gap_ppf(p))) / 2
    log_u = mp.findroot(
        lambda t: mp.log(mp.betainc(big_a, big_a, 0, mp.exp(t), regularized=True)) - mp.log(pm),
        (mp.log(u0) - mp.mpf("0.01"), mp.log(u0) + mp.mpf("0.01")),
        solver="anderson",
    )
    u_p = mp.exp(log_u)
    norm = mp.beta(big_a, big_a)
    out = np.zeros((4, 3))
    for a in range(1, 5):
        for b in range(3):

            def f(u, a=a, b=b):
                return mp.exp(-2 * a * beta * (u - u_p)) * (2 * beta * (u - u_p)) ** b * (u * (1 - u)) ** (big_a - 1)

            pts = [u_p] + [u_p + mp.mpf(k) / (2 * a * beta) for k in (0.1, 1, 5, 20, 80) if beta > 0]
            pts = [t for t in pts if t < 1] + [mp.mpf(1)]
            out[a - 1, b] = float(mp.quad(f, pts) / norm / (1 - pm))
    return out


@pytest.mark.parametrize(
    "d, p, beta, laguerre",
    [
        (3, 1e-15, 0.0, False),  # beta = 0: every moment of X is 1
        (3, 1e-6, 3.0, False),  # global regime: the whole sphere contributes
        (3, 1e-6, 1e8, True),  # y rises fast across the cell: Gauss-Laguerre branch
        (5, 1e-9, 1e6, True),  # the same at d = 5 (density not constant)
        (5, 1e-3, 1e4, False),  # partial cell split into pieces
        (5, 0.3, 30.0, False),  # bulk of the law, both ends of the quadrature
        (2, 1e-6, 0.5, False),  # d = 2: density singular at both ends of the gap range
    ],
)
def test_conditional_moments_match_mpmath(d, p, beta, laguerre):
    """Quadrature of the remainder's conditional moments, all branches, against mpmath.

    Tolerance: 1e-9 for the quadrature (4-point Gauss-Legendre on pieces where y rises by at
    most 0.1: ~1e-12; Gauss-Laguerre with 16 nodes on a smooth density), plus the effect of the
    quantile spline's relative error QUANTILE_RTOL on the gaps in y = beta (G - G_P) near the
    cutoff: at most 2 * a * beta * G_P * QUANTILE_RTOL relative, a <= 4; in the Gauss-Laguerre
    branch the density taken from the spline adds DENSITY_RTOL.
    """
    grid = _build_grid(UniformScoreLaw(d), -45.0, 37.0)
    v_p = math.log(p) - math.log1p(-p)
    g_p = _gaps(grid, np.array([v_p]))
    mom, _ = _moments_at(grid, beta, np.array([v_p]), g_p, 4, 3)
    ref = mp_moments(d, p, beta)
    rtol = 1e-9 + 2 * 4 * beta * float(g_p[0]) * QUANTILE_RTOL + (DENSITY_RTOL if laguerre else 0.0)
    np.testing.assert_allclose(mom[0], ref, rtol=rtol, atol=1e-300)


# ---------------------------------------------------------------------------
# Coupled: the remainder of real draws vs its predicted conditional law
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("d, c", [(3, 2.0), (5, 0.5), (5, 2.0)])
def test_remainder_sums_coupled_with_brute_force(d, c):
    """Given the m-th gap of n = 1e5 real draws, the other keys' sums match the predicted law.

    For each brute-force context, the exact sums (sum X, sum X^2, sum XY) over the keys below the
    m-th, standardized by the predicted conditional mean and covariance (N times the moments of
    section 4), must have mean 0 and variance 1 per component: |mean| <= 4 SE and
    |mean(r^2) - 1| <= 4 SE of mean(r^2) (its own sample SE, no normality assumed).
    """
    n, m, reps = 100_000, 16, 400
    beta = beta_for(d, n, c)
    law = UniformScoreLaw(d)
    grid = _build_grid(law, -20.0, 37.0)
    rng = np.random.default_rng(2024 + d)
    resid = np.empty((reps, 3))
    for i in range(reps):
        g = brute_gaps(d, n, rng)
        g_m = np.partition(g, m - 1)[m - 1]
        rest = g[g > g_m]
        y = beta * (rest - g_m)
        x = np.exp(-y)
        sums = np.array([x.sum(), (x * x).sum(), (x * y).sum()])
        v_p = math.log(float(law.gap_cdf(g_m))) - math.log(float(law.gap_sf(g_m)))
        mom, _ = _moments_at(grid, beta, np.array([v_p]), np.array([g_m]), 4, 3)
        mo = mom[0]
        mean = np.array([mo[0, 0], mo[1, 0], mo[0, 1]])
        cov = np.array(
            [
                [mo[1, 0] - mo[0, 0] ** 2, mo[2, 0] - mo[0, 0] * mo[1, 0], mo[1, 1] - mo[0, 0] * mo[0, 1]],
                [0, mo[3, 0] - mo[1, 0] ** 2, mo[2, 1] - mo[1, 0] * mo[0, 1]],
                [0, 0, mo[1, 2] - mo[0, 1] ** 2],
            ]
        )
        cov = np.triu(cov) + np.triu(cov, 1).T
        count = rest.size
        resid[i] = (sums - count * mean) / np.sqrt(count * np.diag(cov))
    se_mean = resid.std(axis=0, ddof=1) / math.sqrt(reps)
    assert np.all(np.abs(resid.mean(axis=0)) <= 4 * se_mean), resid.mean(axis=0)
    sq = resid**2
    se_sq = sq.std(axis=0, ddof=1) / math.sqrt(reps)
    assert np.all(np.abs(sq.mean(axis=0) - 1.0) <= 4 * se_sq), sq.mean(axis=0)


# ---------------------------------------------------------------------------
# In law vs brute force at n = 1e5
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def brute_1e5():
    """Brute-force (W_1, n_eff, entropy) at n = 1e5, d = 3, 5, several c (same keys for every c)."""
    n, reps = 100_000, 1000
    out = {}
    for d in (3, 5):
        cs = (0.01, 0.03, 0.25, 0.5, 2.0) if d == 3 else (0.25, 0.5, 2.0)
        rng = np.random.default_rng(77 + d)
        res = np.empty((len(cs), reps, 3))
        betas = [beta_for(d, n, c) for c in cs]
        for i in range(reps):
            g = brute_gaps(d, n, rng)
            for j, beta in enumerate(betas):
                res[j, i] = brute_stats(g, beta)
        for j, c in enumerate(cs):
            out[(d, c)] = res[j]
    return out


@pytest.mark.parametrize("d", [3, 5])
@pytest.mark.parametrize("c", [0.25, 0.5, 2.0])
def test_law_of_top_weight_and_n_eff_matches_brute_force(brute_1e5, d, c):
    """KS at n = 1e5, automatic m: W_1 and n_eff have the brute-force law (family alpha 0.01)."""
    n = 100_000
    top = sample_top(UniformScoreLaw(d), n, beta_for(d, n, c), size=20_000, rng=5 + d)
    brute = brute_1e5[(d, c)]
    assert stats.ks_2samp(top.max_weight, brute[:, 0]).pvalue > KS_ALPHA_BRUTE
    assert stats.ks_2samp(top.n_eff, brute[:, 1]).pvalue > KS_ALPHA_BRUTE


@pytest.mark.parametrize("c", [0.01, 0.03])
def test_gaussian_remainder_carrying_most_of_the_mass(brute_1e5, c):
    """Subcritical, m = 16: the Gaussian remainder carries 60-85% of the mass, the law is still exact.

    (Dropping its fluctuation, i.e. using the conditional mean alone, fails these KS tests with
    p-values below 1e-6.)
    """
    n = 100_000
    top = sample_top(UniformScoreLaw(3), n, beta_for(3, n, c), size=20_000, rng=8, m=16)
    assert top.remainder.mean() > 0.5
    brute = brute_1e5[(3, c)]
    for k, draws in enumerate((top.max_weight, top.n_eff, top.entropy)):
        assert stats.ks_2samp(draws, brute[:, k]).pvalue > KS_ALPHA_BRUTE


def test_gaussian_step_has_the_conditional_mean_and_covariance():
    """_remainder_sums: over many normals, mean count * mu and covariance count * Sigma (4 SE)."""
    from attnscale.sampler import _remainder_sums

    law, n, beta, reps = UniformScoreLaw(5), 10**6, 5.0, 40_000  # sums far from their clipping bounds
    grid = _build_grid(law, -20.0, 37.0)
    v_p = np.full(reps, math.log(30.0 / n))
    mom, _ = _moments_at(grid, beta, v_p, _gaps(grid, v_p), 4, 3)
    count = 5000
    z = np.random.default_rng(1).standard_normal((reps, 3))
    sums = np.column_stack(_remainder_sums(mom, count, z, True))
    mo = mom[0]
    mu = count * np.array([mo[0, 0], mo[1, 0], mo[0, 1]])
    cov = count * np.array(
        [
            [mo[1, 0] - mo[0, 0] ** 2, mo[2, 0] - mo[0, 0] * mo[1, 0], mo[1, 1] - mo[0, 0] * mo[0, 1]],
            [mo[2, 0] - mo[0, 0] * mo[1, 0], mo[3, 0] - mo[1, 0] ** 2, mo[2, 1] - mo[1, 0] * mo[0, 1]],
            [mo[1, 1] - mo[0, 0] * mo[0, 1], mo[2, 1] - mo[1, 0] * mo[0, 1], mo[1, 2] - mo[0, 1] ** 2],
        ]
    )
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(sums.mean(axis=0) - mu) <= 4 * sd / math.sqrt(reps))
    # Gaussian sample covariance: SE of entry (i, j) is sqrt((S_ii S_jj + S_ij^2) / reps)
    emp = np.cov(sums.T)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / reps)
    assert np.all(np.abs(emp - cov) <= 4 * se)


# ---------------------------------------------------------------------------
# In law vs the critical limit, and the reference values of section 3
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("c", [0.5, 2.0])
def test_law_matches_critical_limit_at_1e12_d3(c):
    """d = 3 converges at O(1/n): at n = 1e12 the law is the critical limit's (KS, three stats)."""
    n, size = 10**12, 20_000
    top = sample_top(UniformScoreLaw(3), n, beta_for(3, n, c), size=size, rng=11)
    lim = CriticalLimit(1.0, c).draw(size, rng=12)
    for a, b in [(top.max_weight, lim.max_weight), (top.n_eff, lim.n_eff), (top.entropy, lim.entropy)]:
        assert stats.ks_2samp(a, b).pvalue > KS_ALPHA_LIMIT


# docs/theory.md section 3: E[W_1] / E[n_eff], +- about 0.1%
REFERENCE = {
    (1.0, 0.25): (0.21782, 8.444),
    (1.0, 0.5): (0.37380, 4.559),
    (1.0, 2.0): (0.72949, 1.8233),
    (2.0, 0.25): (0.025332, 129.5),
    (2.0, 0.5): (0.083397, 33.5),
    (2.0, 2.0): (0.474988, 3.69),
}


@pytest.mark.parametrize("gamma, c", sorted(REFERENCE))
def test_means_match_reference_values_at_1e15(gamma, c):
    """E W_1 and E n_eff at n = 1e15 agree with section 3's limits within 4 SE + their 0.1%."""
    d = int(2 * gamma + 1)
    n, size = 10**15, 10_000
    top = sample_top(UniformScoreLaw(d), n, beta_for(d, n, c), size=size, rng=31)
    for draws, ref in [(top.max_weight, REFERENCE[(gamma, c)][0]), (top.n_eff, REFERENCE[(gamma, c)][1])]:
        se = draws.std(ddof=1) / math.sqrt(size)
        # the reference n_eff values are given to 3 significant digits: allow half a unit of the last digit
        digits = 0.5 * 10.0 ** (math.floor(math.log10(ref)) - 2)
        assert abs(draws.mean() - ref) <= 4 * se + 1e-3 * ref + digits


class PowerGapLaw(ScoreLaw):
    """Gap law with P(G <= g) = g^gamma on [0, 1]: an exact power tail (kappa = 1), closed forms."""

    def __init__(self, gamma):
        self.gamma = gamma
        self.endpoint = 1.0
        self.lower = 0.0

    def _gap_cdf(self, g):
        return np.clip(g, 0.0, 1.0) ** self.gamma

    def _gap_sf(self, g):
        return 1.0 - self._gap_cdf(g)

    def _gap_pdf(self, g):
        inside = (g > 0) & (g <= 1)
        return np.where(inside, self.gamma * np.where(inside, g, 1.0) ** (self.gamma - 1.0), 0.0)

    def _gap_ppf(self, p):
        return p ** (1.0 / self.gamma)

    def tail(self):
        return ScoreTail(endpoint=1.0, gamma=self.gamma, kappa=1.0)


def test_generic_score_law_matches_its_critical_limit():
    """Any ScoreLaw works: an exact power tail at n = 1e12 has the critical limit law (KS)."""
    gamma, c, n, size = 1.5, 0.7, 10**12, 20_000
    law = PowerGapLaw(gamma)
    top = sample_top(law, n, c * critical_beta(n, law.tail()), size=size, rng=41)
    lim = CriticalLimit(gamma, c).draw(size, rng=42)
    assert stats.ks_2samp(top.max_weight, lim.max_weight).pvalue > KS_ALPHA_LIMIT
    assert stats.ks_2samp(top.n_eff, lim.n_eff).pvalue > KS_ALPHA_LIMIT


@pytest.mark.parametrize(
    "law, q",
    [
        (PowerDensity(5, 1.0), [1.0, 0, 0, 0, 0]),  # gamma = (d - 1 + eta)/2 = 2.5
        (GreatSubsphere(5, 3), [1.0, 0, 0, 0, 0]),  # gamma = (m - 1)/2 = 1
        (VonMisesFisher([1.0, 0, 0], 5.0), [0.6, 0.8, 0.0]),  # query off the mean direction
        (Mixture([UniformSphere(3), VonMisesFisher([0.0, 1.0, 0.0], 20.0)], [0.5, 0.5]), [1.0, 0, 0]),
    ],
    ids=["power", "subsphere", "vmf", "mixture"],
)
def test_other_key_laws_match_their_critical_limit(law, q):
    """Every law with a score law works: at n = 1e12 each has the limit law of its own tail (KS).

    Finite-n corrections are O(n^(-min(1, 1/gamma))) <= 1e-4.8 here, far below the KS resolution.
    """
    n, c, size = 10**12, 0.7, 20_000
    tail = law.score_tail(q)
    top = sample_top(law, n, c * critical_beta(n, tail), size=size, rng=51, q=q)
    lim = CriticalLimit(tail.gamma, c).draw(size, rng=52)
    assert stats.ks_2samp(top.max_weight, lim.max_weight).pvalue > KS_ALPHA_LAWS
    assert stats.ks_2samp(top.n_eff, lim.n_eff).pvalue > KS_ALPHA_LAWS


# ---------------------------------------------------------------------------
# Exact enumeration
# ---------------------------------------------------------------------------


def test_enumeration_equals_softmax_of_the_same_order_statistics():
    """n <= m: the weights are the softmax of gap_ppf at the same Rényi uniforms (exact quantiles)."""
    law, n, beta, size, seed = UniformScoreLaw(5), 300, 40.0, 50, 7
    top = sample_top(law, n, beta, size, rng=seed, m=n)
    assert top.exact and top.m == n and top.weights.shape == (size, n)
    base = _draw_base(n, n, size, np.random.default_rng(seed))
    gaps = law.gap_ppf(special.expit(base.v))
    x = np.exp(-beta * (gaps - gaps[:, :1]))
    w = x / x.sum(axis=1, keepdims=True)
    # spline gaps carry relative error <= QUANTILE_RTOL, exponents beta * G at most beta * 2
    tol = 4 * beta * 2.0 * QUANTILE_RTOL + 1e-13
    np.testing.assert_allclose(top.weights, w, rtol=tol, atol=0)
    np.testing.assert_allclose(top.gaps, gaps, rtol=QUANTILE_RTOL, atol=0)
    np.testing.assert_allclose(top.max_weight, w[:, 0], rtol=tol)
    np.testing.assert_allclose(top.n_eff, 1.0 / np.sum(w * w, axis=1), rtol=tol)
    np.testing.assert_allclose(top.entropy, special.entr(w).sum(axis=1), rtol=tol)
    assert np.all(top.remainder == 0)


def test_enumeration_in_law_matches_brute_force():
    """Full enumeration (Rényi + quantile function) at n = 500 has the brute-force law (KS)."""
    n, d, c, reps = 500, 5, 1.0, 3000
    beta = beta_for(d, n, c)
    rng = np.random.default_rng(3)
    brute = np.array([brute_stats(brute_gaps(d, n, rng), beta)[0] for _ in range(reps)])
    top = sample_top(UniformScoreLaw(d), n, beta, size=reps, rng=4)
    assert top.exact and top.m == n
    assert stats.ks_2samp(top.max_weight, brute).pvalue > 0.001


def test_small_remainder_is_enumerated():
    """n - m <= ENUMERATE_MAX switches to exact enumeration of all n keys."""
    n = 40 + ENUMERATE_MAX
    top = sample_top(UniformScoreLaw(3), n, 10.0, 3, rng=0, m=40)
    assert top.exact and top.m == n
    top = sample_top(UniformScoreLaw(3), n + 1, 10.0, 3, rng=0, m=40)
    assert not top.exact and top.m == 40


# ---------------------------------------------------------------------------
# Edge cases
# ---------------------------------------------------------------------------


def test_beta_zero_gives_uniform_weights_at_1e18():
    n = 10**18
    top = sample_top(UniformScoreLaw(3), n, 0.0, 5, rng=1)
    np.testing.assert_allclose(top.weights, 1e-18, rtol=1e-14)
    np.testing.assert_allclose(top.max_weight, 1e-18, rtol=1e-14)
    np.testing.assert_allclose(top.n_eff, 1e18, rtol=1e-14)
    np.testing.assert_allclose(top.entropy, math.log(n), rtol=1e-14)
    np.testing.assert_allclose(top.remainder, 1.0 - top.m / n, rtol=1e-14)


@pytest.mark.parametrize("n", [1, 2, 10**6, 10**18])
@pytest.mark.parametrize("beta", [1.0, 1e6, 1e12])
@pytest.mark.parametrize("d", [3, 33])
def test_finite_everywhere(n, beta, d):
    """No NaN or overflow for n up to 1e18 and beta up to 1e12, weights ordered and normalized."""
    top = sample_top(UniformScoreLaw(d), n, beta, 200, rng=2)
    for arr in (top.weights, top.remainder, top.max_weight, top.n_eff, top.entropy):
        assert np.all(np.isfinite(arr))
    assert np.all(np.diff(top.weights, axis=1) <= 0)
    np.testing.assert_allclose(top.weights.sum(axis=1) + top.remainder, 1.0, rtol=1e-12)
    assert np.all((top.n_eff >= 1 - 1e-12) & (top.n_eff <= n * (1 + 1e-12)))
    assert np.all((top.entropy >= -1e-12) & (top.entropy <= math.log(n) + 1e-9))
    np.testing.assert_array_equal(top.max_weight, top.weights[:, 0])


@pytest.mark.parametrize("n", [5, 1500, 10**18])
def test_largest_float_beta_puts_all_weight_on_the_top_key(n):
    """beta near the largest float: exponents overflow to the cap, no warning, W_1 = 1 exactly."""
    top = sample_top(UniformScoreLaw(3), n, 1.7e308, 4, rng=0)
    np.testing.assert_array_equal(top.max_weight, 1.0)
    np.testing.assert_array_equal(top.n_eff, 1.0)
    np.testing.assert_array_equal(top.entropy, 0.0)


def test_single_key_has_all_the_weight():
    top = sample_top(UniformScoreLaw(4), 1, 5.0, 3, rng=0)
    np.testing.assert_array_equal(top.max_weight, 1.0)
    np.testing.assert_array_equal(top.entropy, 0.0)


def test_key_law_uses_its_score_law_and_query():
    a = sample_top(UniformSphere(4), 10**6, 100.0, 50, rng=3, q=[0.0, 1.0, 0.0, 0.0])
    b = sample_top(UniformScoreLaw(4), 10**6, 100.0, 50, rng=3)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert isinstance(a, TopSample)


def test_same_seed_same_draws():
    a = sample_top(UniformScoreLaw(3), 10**9, 1e8, 30, rng=9)
    b = sample_top(UniformScoreLaw(3), 10**9, 1e8, 30, rng=9)
    np.testing.assert_array_equal(a.n_eff, b.n_eff)


# ---------------------------------------------------------------------------
# Choice of m
# ---------------------------------------------------------------------------


def test_choose_m_properties():
    law = UniformScoreLaw(5)
    n = 10**9
    beta = beta_for(5, n, 0.25)
    ms = [choose_m(law, n, beta, acc) for acc in (1e-1, 1e-2, 1e-3, 1e-4)]
    assert ms == sorted(ms) and ms[0] >= M_MIN
    assert ms[-1] > ms[0]
    # d = 5, c = 0.25 needs a few hundred keys for n_eff at 1e-3 (docs/theory.md section 4)
    assert 128 <= choose_m(law, n, beta, 1e-3) <= 1024
    # critical d = 3: the remainder is negligible beyond the minimum
    assert choose_m(UniformScoreLaw(3), n, beta_for(3, n, 1.0)) == M_MIN
    # small n: exact enumeration
    assert choose_m(law, 900, 3.0) == 900


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        ({"n": 0}, ValueError, "n"),
        ({"n": 10**19}, ValueError, "n"),
        ({"n": 1.5}, ValueError, "n"),
        ({"beta": -1.0}, ValueError, "beta"),
        ({"beta": float("nan")}, ValueError, "beta"),
        ({"size": 0}, ValueError, "size"),
        ({"m": 0}, ValueError, "m"),
        ({"accuracy": 0.0}, ValueError, "accuracy"),
        ({"law": "uniform"}, TypeError, "law"),
        ({"q": [1.0, 0.0, 0.0]}, ValueError, "q"),
        ({"rng": "seed"}, TypeError, "rng"),
    ],
)
def test_bad_arguments_are_named(kwargs, exc, word):
    args = {"law": UniformScoreLaw(3), "n": 1000, "beta": 1.0, "size": 2, "rng": 0}
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        sample_top(**args)


def test_bad_query_for_key_law():
    with pytest.raises(ValueError, match="q"):
        sample_top(UniformSphere(3), 1000, 1.0, 2, q=[1.0, 1.0, 0.0])


# ---------------------------------------------------------------------------
# The output x = sum_i w_i K_i (output=True)
# ---------------------------------------------------------------------------

#: KS tests of the output against brute force: 2 d x 2 c x 2 statistics, plus 2 laws x 2 statistics.
KS_ALPHA_OUTPUT = KS_FAMILY_ALPHA / 12


def brute_outputs(law, q, n, beta, reps, seed):
    """Outputs of real sampled keys by exact streaming attention (attnscale.attention)."""
    from attnscale.attention import attention_stats

    children = np.random.SeedSequence(seed).spawn(reps)
    return np.array([attention_stats(q, law.sample(n, np.random.default_rng(s)), beta).output for s in children])


def scaled_parts(x, q, n, tail):
    """(kappa n)^(1/(2 gamma)) |P_tan x| and (kappa n)^(1/gamma) (1 - <x, q>)."""
    scale = (tail.kappa * n) ** (1 / (2 * tail.gamma))
    radial = x @ q
    return np.linalg.norm(x - np.outer(radial, q), axis=1) * scale, (1 - radial) * scale**2


@pytest.mark.parametrize("d", [3, 5])
@pytest.mark.parametrize("c", [0.25, 2.0])
def test_output_law_matches_brute_force(d, c):
    """n = 1e4 with m = 16 (the Gaussian remainder carries 3% to 73% of the mass at c = 0.25):
    the scaled tangential norm and radial deficit have the law of real keys (KS)."""
    law = UniformSphere(d)
    q = np.zeros(d)
    q[-1] = 1.0
    n = 10_000
    tail = law.score_tail(q)
    beta = c * critical_beta(n, tail)
    fast = sample_top(law, n, beta, 20_000, rng=31, m=16, q=q, output=True)
    scale = (tail.kappa * n) ** (1 / (2 * tail.gamma))
    f_tan, f_rad = np.linalg.norm(fast.tangential, axis=1) * scale, fast.radial_deficit * scale**2
    np.testing.assert_allclose(scaled_parts(fast.output, q, n, tail)[0], f_tan, rtol=1e-6)
    b_tan, b_rad = scaled_parts(brute_outputs(law, q, n, beta, 800, 100 + d), q, n, tail)
    for a, b in ((f_tan, b_tan), (f_rad, b_rad)):
        assert stats.ks_2samp(a, b).pvalue > KS_ALPHA_OUTPUT


@pytest.mark.parametrize("d, beta", [(3, 10.0), (5, 10.0)])
def test_output_subcritical_moments(d, beta):
    """n = 1e5 at beta = 10 (c ~ 1e-3; the remainder carries 70% to 99.7% of the mass): the mean
    radial deficit and n Var_tan equal the exact delta-method values of attnscale.output within
    4 SE plus their O(1/n_eff) next order (measured 1.1/n_eff; allowed 3/n_eff)."""
    from attnscale.output import subcritical_moments

    law = UniformSphere(d)
    q = np.zeros(d)
    q[-1] = 1.0
    n, size = 10**5, 12_000
    top = sample_top(law, n, beta, size, rng=7, q=q, output=True)
    mom = subcritical_moments(d, beta)
    n_eff = n * mom.n_eff_ratio
    deficit = 1 - mom.radial_mean - mom.radial_bias / n
    mean, se = float(top.radial_deficit.mean()), float(top.radial_deficit.std() / math.sqrt(size))
    assert abs(mean - deficit) <= 4 * se + 3 / n_eff * abs(mom.radial_bias) / n
    tan = n * np.sum(top.tangential**2, axis=1) / (d - 1)
    mean, se = float(tan.mean()), float(tan.std() / math.sqrt(size))
    assert abs(mean - mom.tangential_var) <= 4 * se + 3 / n_eff * mom.tangential_var
    assert top.remainder.mean() > 0.5


@pytest.mark.parametrize(
    "law, q",
    [
        (PowerDensity(4, 1.0), np.array([1.0, 0.0, 0.0, 0.0])),
        (GreatSubsphere(5, 3), np.array([0.0, 0.6, 0.8, 0.0, 0.0])),
    ],
)
def test_output_of_other_laws_matches_brute_force(law, q):
    """A zonal law seen from its axis (density vanishing like |k - q| there: gamma = 2) and a great
    subsphere through q (n = 2e4, c = 0.5)."""
    n = 20_000
    tail = law.score_tail(q)
    beta = 0.5 * critical_beta(n, tail)
    fast = sample_top(law, n, beta, 20_000, rng=5, m=32, q=q, output=True)
    f_tan, f_rad = scaled_parts(fast.output, q, n, tail)
    f_rad = fast.radial_deficit * (tail.kappa * n) ** (1 / tail.gamma)
    b_tan, b_rad = scaled_parts(brute_outputs(law, q, n, beta, 600, 9), q, n, tail)
    for a, b in ((f_tan, b_tan), (f_rad, b_rad)):
        assert stats.ks_2samp(a, b).pvalue > KS_ALPHA_OUTPUT


def test_output_enumerated_is_the_softmax_average():
    """n - m <= ENUMERATE_MAX: every key has its exact direction; weights, output and parts agree."""
    law = UniformSphere(4)
    q = np.array([0.0, 0.0, 0.0, 1.0])
    top = sample_top(law, 300, 50.0, 5, rng=2, q=q, output=True)
    assert top.exact and top.output.shape == (5, 4)
    np.testing.assert_allclose(top.output @ q, 1 - top.radial_deficit, rtol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(top.output[:, :3], axis=1), np.linalg.norm(top.tangential, axis=1), rtol=1e-12)
    # the radial deficit is the weighted mean gap
    np.testing.assert_allclose(top.radial_deficit, np.sum(top.weights * top.gaps, axis=1), rtol=1e-12)


def test_output_at_huge_n_and_beta_is_finite():
    law = UniformSphere(3)
    q = np.array([0.0, 0.0, 1.0])
    for n, beta in ((10**18, 5e17), (10**18, 1e300), (10**12, 1.0)):
        top = sample_top(law, n, beta, 50, rng=0, q=q, output=True)
        for arr in (top.output, top.tangential, top.radial_deficit):
            assert np.all(np.isfinite(arr))
        assert np.all(top.radial_deficit >= 0) and np.all(np.linalg.norm(top.output, axis=1) <= 1 + 1e-12)


def test_output_needs_directions_and_positive_beta():
    with pytest.raises(TypeError, match="law"):
        sample_top(UniformScoreLaw(3), 100, 1.0, 2, output=True)
    with pytest.raises(ValueError, match="beta"):
        sample_top(UniformSphere(3), 100, 0.0, 2, output=True)
    with pytest.raises(ValueError, match="law"):
        sample_top(VonMisesFisher([0.0, 0.0, 1.0], 5.0), 100, 1.0, 2, q=[0.0, 0.6, 0.8], output=True)
    plain = sample_top(UniformSphere(3), 100, 1.0, 2, rng=0)
    assert plain.output is None and plain.tangential is None and plain.radial_deficit is None


def test_uniform_d_100001_at_1e6_against_softmax_of_sampled_scores() -> None:
    """d = 100001 (kappa = exp(34650), not a float64), n = 1e6, beta = 1e3 (c ~ 500): the
    sampler against the exact statistics of softmax(beta s) over 30 sets of 1e6 scores drawn
    from the law (an independent computation); 4 SE of the difference.  Finite at larger beta."""
    law = UniformScoreLaw(100_001)
    assert not law.tail().kappa_is_finite
    n, beta = 10**6, 1e3
    top = sample_top(law, n, beta, size=2000, rng=1)
    rng = np.random.default_rng(2)
    brute = []
    for _ in range(30):
        s = law.sample(n, rng)
        w = np.exp(beta * (s - s.max()))
        w /= w.sum()
        pos = w[w > 0]
        brute.append((w.max(), 1.0 / np.sum(w * w), -np.sum(pos * np.log(pos))))
    brute = np.array(brute)
    for col, fast in enumerate((top.max_weight, top.n_eff, top.entropy)):
        se = math.hypot(fast.std(ddof=1) / math.sqrt(fast.size), brute[:, col].std(ddof=1) / math.sqrt(len(brute)))
        assert abs(fast.mean() - brute[:, col].mean()) <= 4 * se, (col, fast.mean(), brute[:, col].mean(), se)
    for big_beta in (1e4, 1e6, 1e9):
        t = sample_top(law, n, big_beta, size=200, rng=3)
        for arr in (t.max_weight, t.n_eff, t.entropy):
            assert np.all(np.isfinite(arr))
        assert np.all(t.max_weight <= 1.0) and np.all(t.n_eff >= 1.0)


def test_default_m_matches_full_enumeration_where_m_16_does_not():
    """The Gaussian remainder's error at the default m, against all n keys drawn (d = 3: gaps exactly 2 U).

    d = 3, n = 3000, c = 0.2 (weights spread over ~10 keys): at the default m the laws of n_eff and
    W_1 are at KS distance zero from full enumeration (level 1e-3, 20000 draws each).
    """
    law, n, size = UniformScoreLaw(3), 3000, 20_000
    beta = 0.2 * critical_beta(n, law.tail())
    top = sample_top(law, n, beta, size, rng=41)
    assert top.accuracy_met is True and 16 <= top.m < n
    g = 2.0 * np.random.default_rng(42).random((size, n))
    x = np.exp(-beta * (g - g.min(axis=1, keepdims=True)))
    total = x.sum(axis=1)
    crit = math.sqrt(-0.5 * math.log(1e-3 / 2)) * math.sqrt(2.0 / size)
    assert stats.ks_2samp(top.n_eff, total**2 / (x * x).sum(axis=1)).statistic < crit
    assert stats.ks_2samp(top.max_weight, 1.0 / total).statistic < crit


def test_an_unmet_accuracy_is_said_not_capped_silently():
    """d = 5, n = 1e9, c = 0.05 at accuracy 1e-6: even M_MAX keys leave a larger error bound."""
    from attnscale.sampler import M_MAX, AccuracyWarning

    law, n = UniformScoreLaw(5), 10**9
    beta = 0.05 * critical_beta(n, law.tail())
    with pytest.warns(AccuracyWarning, match="accuracy"):
        assert choose_m(law, n, beta, accuracy=1e-6) == M_MAX
    with pytest.warns(AccuracyWarning):
        assert sample_top(law, n, beta, 2, rng=0, accuracy=1e-6).accuracy_met is False
    assert sample_top(law, n, beta, 2, rng=0, m=16).accuracy_met is None
