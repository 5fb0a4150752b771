"""Tests of the Gumbel class: GaussianKeys / GaussianScoreLaw (docs/theory.md section 2).

Independent references: scipy.stats.norm and mpmath for the law and its hazard;
brute-force attention over real Gaussian keys for the exact sampler; the
Gamma-process representation of Poisson-Dirichlet(1/c) for the limit.
Statistical tests fix their seed; tolerances are 4 standard errors.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import special, stats

from attnscale.attention import attention_stats
from attnscale.laws import GaussianKeys, GaussianScoreLaw, law_from_name
from attnscale.sampler import sample_top
from attnscale.tails import critical_beta


@pytest.mark.parametrize("sigma", [0.3, 1.0, 4.0])
def test_score_law_matches_scipy_norm(sigma):
    law = GaussianScoreLaw(sigma)
    ref = stats.norm(scale=sigma)
    s = np.linspace(-5 * sigma, 9 * sigma, 29)
    np.testing.assert_allclose(law.cdf(s), ref.cdf(s), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(law.sf(s), ref.sf(s), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(law.pdf(s), ref.pdf(s), rtol=1e-12)
    p = np.array([1e-300, 1e-100, 1e-20, 1e-5, 0.3, 0.9])
    np.testing.assert_allclose(law.isf(p), ref.isf(p), rtol=1e-12)
    assert np.all(np.asarray(law.gap_ppf(p)) > 0)  # the reference point sits above every quantile


def test_log_tails_vs_mpmath_far_out():
    law = GaussianScoreLaw(1.0)
    for s in (10.0, 30.0, 38.0):
        ref = float(mp.log(mp.ncdf(-s)))
        assert float(law.log_gap_cdf(law.reference - s)) == pytest.approx(ref, rel=1e-12)
    assert law.tail().kind == "gumbel" and law.tail().kappa == 0.5


@pytest.mark.parametrize("n", [10, 1e3, 1e6, 1e12, 1e18])
def test_exact_gumbel_scale_is_the_hazard_at_the_top_quantile(n):
    """mpmath: x_n with Q(x_n) = 1/n, then phi(x_n)/Q(x_n)."""
    with mp.workdps(40):
        x = mp.findroot(lambda t: mp.log(mp.ncdf(-t)) + mp.log(int(n)), mp.sqrt(2 * mp.log(n)))
        hazard = mp.npdf(x) / mp.ncdf(-x)
    sigma = 0.7
    law = GaussianScoreLaw(sigma)
    assert law.critical_beta(n) == pytest.approx(float(hazard) / sigma, rel=1e-10)
    assert law.top_score(n) == pytest.approx(float(x) * sigma, rel=1e-10)
    leading = math.sqrt(2 * math.log(n)) / sigma
    assert law.critical_beta(n, "leading") == pytest.approx(leading, rel=1e-14)
    assert critical_beta(n, law.tail()) == pytest.approx(leading, rel=1e-14)
    # the finite-n correction removes the O(log L / L) error, leaving O((log L / L)^2)
    big_l = math.log(n)
    err = abs(law.critical_beta(n, "corrected") / law.critical_beta(n) - 1.0)
    assert err <= (math.log(big_l) / big_l) ** 2 + 1.0 / big_l**2
    assert err < abs(leading * sigma / (float(hazard)) - 1.0)


def test_gaussian_keys_scores_are_normal_by_brute_force():
    rng = np.random.default_rng(7)
    law = GaussianKeys(5, sigma=2.0)
    q = np.array([0.6, 0.0, 0.8, 0.0, 0.0])
    scores = law.sample(20_000, rng) @ q
    assert stats.kstest(scores, law.score_law(q).cdf).pvalue > 1e-4
    assert law_from_name("gaussian", 5, sigma=2.0) == law
    with pytest.raises(ValueError, match="sigma"):
        GaussianKeys(3, sigma=0.0)


def test_sampler_with_gaussian_scores_vs_brute_force():
    """The exact sampler needs nothing special for the unbounded law: E W_1 and E n_eff against
    brute-force attention over real Gaussian keys (n = 3000, beta = 1.5 a_n)."""
    rng = np.random.default_rng(11)
    n, reps, d = 3000, 1500, 2
    law = GaussianKeys(d)
    q = np.array([1.0, 0.0])
    beta = 1.5 * law.score_law(q).critical_beta(n)
    w1 = np.empty(reps)
    for i in range(reps):
        w1[i] = attention_stats(q, law.sample(n, rng), beta).max_weight
    top = sample_top(law.score_law(q), n, beta, 20_000, rng=12, m=64)
    se = math.hypot(w1.std(ddof=1) / math.sqrt(reps), top.max_weight.std(ddof=1) / math.sqrt(top.max_weight.size))
    assert abs(w1.mean() - top.max_weight.mean()) < 4 * se


def test_poisson_dirichlet_limit_by_the_gamma_representation():
    """W_k = Gamma_k^(-c) / sum_j Gamma_j^(-c) is PD(1/c): E sum W^2 = 1 - 1/c exactly (truncation at M
    leaves a relative tail below sum_{k>M} k^(-2c) / Gamma-sum ~ M^(1-2c))."""
    rng = np.random.default_rng(5)
    size, m = 4000, 4000
    gam = np.cumsum(rng.standard_exponential((size, m)), axis=1)
    for c in (2.0, 4.0):
        w = gam ** (-c)
        w /= w.sum(axis=1, keepdims=True)
        s2 = (w * w).sum(axis=1)
        assert abs(s2.mean() - (1 - 1 / c)) < 4 * s2.std(ddof=1) / math.sqrt(size) + m ** (1 - 2 * c)


def test_finite_n_weights_approach_poisson_dirichlet_and_freeze_below_c1():
    """Exact sampler at beta = c a_n (a_n exact).  c = 2: E sum w^2 equals the independent direct Renyi
    computation (top 3000 scores from isf(Gamma_k / n), remainder below 3000^(1-2c)), and its distance
    to PD's 1 - 1/c shrinks from n = 1e6 to 1e18.  c = 1: E W_1 falls with n (no macroscopic key)."""
    law = GaussianScoreLaw(1.0)
    rng = np.random.default_rng(3)
    size = 20_000
    dist = []
    for n in (10**6, 10**18):
        beta = 2.0 * law.critical_beta(n)
        top = sample_top(law, n, beta, size, rng=rng)
        s2 = 1.0 / top.n_eff
        gam = np.cumsum(rng.standard_exponential((4000, 3000)), axis=1)
        scores = law.isf(gam / n)
        x = np.exp(beta * (scores - scores[:, :1]))
        w = x / x.sum(axis=1, keepdims=True)
        direct = (w * w).sum(axis=1)
        se = math.hypot(s2.std(ddof=1) / math.sqrt(size), direct.std(ddof=1) / math.sqrt(direct.size))
        assert abs(s2.mean() - direct.mean()) < 4 * se + 3000.0 ** (1 - 2 * 2.0)
        dist.append((s2.mean() - 0.5, s2.std(ddof=1) / math.sqrt(size)))
    assert dist[1][0] < dist[0][0] and dist[1][0] > 0  # from above, closer at larger n
    w_small = sample_top(law, 10**4, law.critical_beta(10**4), size, rng=rng).max_weight
    w_large = sample_top(law, 10**18, law.critical_beta(10**18), size, rng=rng).max_weight
    se = math.hypot(w_small.std(ddof=1), w_large.std(ddof=1)) / math.sqrt(size)
    assert w_large.mean() < w_small.mean() - 4 * se
