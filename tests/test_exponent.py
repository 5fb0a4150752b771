"""Tests of exponent.py: beta_half(n), the fit of the critical exponent (docs/theory.md section 5).

Independent references: the critical limit law (limits.CriticalLimit, its own Poisson-process
implementation), brute force on sampled scores, replicate runs for the standard errors, and
synthetic data with known parameters for the fit.
"""

import math

import numpy as np
import pytest
from scipy import optimize, stats

from attnscale.exponent import (
    ExponentFit,
    ExponentResult,
    beta_half,
    exponent_curve,
    fit_exponent,
)
from attnscale.laws import UniformScoreLaw, UniformSphere
from attnscale.limits import CriticalLimit
from attnscale.tails import critical_beta


def limit_c_half(gamma, size, seed):
    """c at which the critical limit's mean W_1 is 1/2, on common Poisson arrivals, and its SE of log c."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.standard_exponential((size, 256)), axis=1)

    def w1(log_c):
        return CriticalLimit(gamma, math.exp(log_c)).from_arrivals(arrivals).max_weight

    log_c = optimize.brentq(lambda t: w1(t).mean() - 0.5, math.log(0.01), math.log(100.0), xtol=1e-12)
    h = 1e-4
    slope = (w1(log_c + h).mean() - w1(log_c - h).mean()) / (2 * h)
    return math.exp(log_c), w1(log_c).std(ddof=1) / math.sqrt(size) / slope


@pytest.mark.parametrize("d", [3, 5])
def test_beta_half_matches_the_critical_limit(d):
    """At n = 1e15 beta_half / beta*(n) is the limit law's c_1/2 (d = 3: O(1/n); d = 5: O(n^-1/2)).

    Two independent estimates, each with its delta-method SE: they agree within 4 combined SE.
    """
    law = UniformScoreLaw(d)
    n, size = 10**15, 20_000
    r = beta_half(law, n, size=size, rng=3)
    ratio = r.beta_half / critical_beta(n, law.tail())
    c_half, se_lim = limit_c_half(law.tail().gamma, size, seed=4)
    assert abs(math.log(ratio / c_half)) <= 4 * math.hypot(r.log_se, se_lim)


def test_beta_half_gives_mean_top_weight_one_half_by_brute_force():
    """Brute force at n = 1e5 (d = 3: gaps 2 U): E W_1 at the returned beta_half is 1/2.

    Tolerance: 4 SE of the brute-force mean, plus the slope of E W_1 in log beta times 4 SE of
    log beta_half.
    """
    n, reps = 100_000, 2000
    r = beta_half(UniformScoreLaw(3), n, size=20_000, rng=5)
    rng = np.random.default_rng(6)
    w1 = np.empty(reps)
    w1_up = np.empty(reps)
    for i in range(reps):
        g = 2.0 * rng.random(n)
        y = g - g.min()
        w1[i] = 1.0 / np.exp(-r.beta_half * y).sum()
        w1_up[i] = 1.0 / np.exp(-r.beta_half * 1.01 * y).sum()
    slope = (w1_up.mean() - w1.mean()) / math.log(1.01)
    tol = 4 * math.hypot(w1.std(ddof=1) / math.sqrt(reps), slope * r.log_se)
    assert abs(w1.mean() - 0.5) <= tol


def test_beta_half_standard_error_matches_replicates():
    """The delta-method SE of log beta_half matches the spread over 20 independent replicates.

    Sample variance / mean reported variance must lie in the central 99.8% of chi2_19 / 19.
    """
    law, n, size, k = UniformScoreLaw(3), 10**6, 1000, 20
    runs = [beta_half(law, n, size=size, rng=100 + i, m=16) for i in range(k)]
    logs = np.log([r.beta_half for r in runs])
    ratio = logs.var(ddof=1) / np.mean([r.log_se**2 for r in runs])
    lo, hi = stats.chi2.ppf([0.001, 0.999], k - 1) / (k - 1)
    assert lo <= ratio <= hi


def test_beta_half_key_law_and_validation():
    a = beta_half(UniformSphere(3), 10**6, size=500, rng=1)
    b = beta_half(UniformScoreLaw(3), 10**6, size=500, rng=1)
    assert a.beta_half == b.beta_half
    with pytest.raises(ValueError, match="n"):
        beta_half(UniformScoreLaw(3), 2, size=100)
    with pytest.raises(ValueError, match="size"):
        beta_half(UniformScoreLaw(3), 100, size=1)


# ---------------------------------------------------------------------------
# Fit
# ---------------------------------------------------------------------------


def test_fit_recovers_exact_parameters():
    ns = np.logspace(2, 8, 7)
    y = 0.4 * np.log(ns) + 1.3 - 2.0 * ns ** (-1 / 2.5)
    fit = fit_exponent(ns, np.exp(y), 2.5)
    assert fit.slope == pytest.approx(0.4, abs=1e-12)
    assert fit.intercept == pytest.approx(1.3, abs=1e-10)
    assert fit.correction == pytest.approx(-2.0, abs=1e-9)
    assert fit.slope_se < 1e-10 and fit.se_kind == "residual"


def test_fit_standard_error_covers_the_truth():
    """Noise with a known covariance (correlated across n): the SE is honest and not inflated.

    Over 400 synthetic data sets the slope lands within 2 reported SE at least 95% of the time
    minus 4 binomial SE, and the reported SE is at most sqrt(2) (the documented worst case of
    adding the residual term) times the true spread, plus 4 SE of that spread's estimate.
    """
    rng = np.random.default_rng(0)
    ns = np.logspace(4, 12, 8)
    x = np.log(ns)
    cov = 1e-4 * (0.7 * np.ones((8, 8)) + 0.3 * np.eye(8))
    chol = np.linalg.cholesky(cov)
    truth = 0.5 * x + 0.2 + 3.0 * ns ** (-0.5)
    slopes, ses = [], []
    for _ in range(400):
        fit = fit_exponent(ns, np.exp(truth + chol @ rng.standard_normal(8)), 2.0, log_cov=cov)
        slopes.append(fit.slope)
        ses.append(fit.slope_se)
    slopes, ses = np.array(slopes), np.array(ses)
    covered = np.mean(np.abs(slopes - 0.5) <= 2 * ses)
    assert covered >= 0.95 - 4 * math.sqrt(0.95 * 0.05 / 400)
    spread = slopes.std(ddof=1)
    assert np.mean(ses) <= math.sqrt(2) * spread * (1 + 4 / math.sqrt(2 * 399))


def test_fit_validation():
    with pytest.raises(ValueError, match="ns"):
        fit_exponent([1e3, 1e4, 1e5], [1.0, 2.0, 3.0], 1.0)
    with pytest.raises(ValueError, match="beta_halves"):
        fit_exponent([1e3, 1e4, 1e5, 1e6], [1.0, -2.0, 3.0, 4.0], None)
    with pytest.raises(ValueError, match="log_cov"):
        fit_exponent([1e3, 1e4, 1e5, 1e6, 1e7], [1.0, 2.0, 3.0, 4.0, 5.0], 1.0, log_cov=np.eye(3))


# ---------------------------------------------------------------------------
# The curve
# ---------------------------------------------------------------------------


def test_exponent_curve_recovers_slope_for_d3():
    """Quick grid, d = 3: slope within 1% of 2/(d-1) = 1, and within 4 of its own SE."""
    r = exponent_curve(UniformScoreLaw(3), n_min=1e4, n_max=1e12, points=5, size=4000, rng=2)
    assert isinstance(r, ExponentResult) and isinstance(r.fit, ExponentFit)
    assert r.target == 1.0
    assert abs(r.slope - 1.0) <= 4 * r.slope_se
    assert abs(r.slope - 1.0) < 0.01
    out = r.to_dict()
    assert {"slope", "slope_se", "target", "table"} <= set(out)
    assert [row["n"] for row in out["table"]] == [10**4, 10**6, 10**8, 10**10, 10**12]
    for row in out["table"]:
        bstar = critical_beta(row["n"], UniformScoreLaw(3).tail())
        assert row["beta_half_over_beta_star"] == pytest.approx(row["beta_half"] / bstar, rel=1e-14)


def test_large_d_curve_still_drifts():
    """d = 33: beta_half / beta*(n) is not constant over n = 1e6..1e15: its two ends differ by > 4 SE.

    (hypot of the two SEs is conservative: the points share their draws, so their errors are
    positively correlated.)
    """
    r = exponent_curve(UniformScoreLaw(33), n_min=1e6, n_max=1e15, points=4, size=1000, rng=3)
    first, last = r.table[0], r.table[-1]
    gap = math.log(last.beta_half_over_beta_star / first.beta_half_over_beta_star)
    assert gap > 4 * math.hypot(first.log_se, last.log_se)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"n_min": 1e9, "n_max": 1e6}, "n_min"),
        ({"points": 3}, "points"),
        ({"n_max": 1e19}, "n_max"),
    ],
)
def test_exponent_curve_validation(kwargs, word):
    args = {"law": UniformScoreLaw(3), "n_min": 1e4, "n_max": 1e8, "points": 4, "size": 10}
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        exponent_curve(**args)


def test_exponent_curve_takes_a_law_object_only():
    """A law by name is the CLI's business (``attnscale exponent --law uniform``), not the library's."""
    with pytest.raises(TypeError, match="law"):
        exponent_curve("uniform", n_min=1e4, n_max=1e8, points=4, size=10)
