"""Tests of estimate.py: tail class and parameters from data (docs/theory.md section 2).

Truths come from exact laws (attnscale.laws) or from data built from the Poisson
representation itself; coverage assertions are binomial, with 4 standard errors
of the nominal level as tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from attnscale.estimate import (
    choose_k,
    estimate_tail,
    estimate_tails,
)
from attnscale.laws import GreatSubsphere, UniformSphere, VonMisesFisher

LEVEL = 0.95


def min_coverage(reps: int, level: float = LEVEL) -> float:
    """Nominal level minus 4 binomial standard errors."""
    return level - 4.0 * math.sqrt(level * (1 - level) / reps)


def test_known_endpoint_pivot_is_exact():
    """Distances r_i = (Gamma_i / Lambda)^(1/gamma) exactly (Poisson model): the pivot interval has
    exact coverage, and 1/gamma_hat = H/(k-1) is unbiased for eta = 1/gamma, with variance
    eta^2/(k-1) (the log-spacings are i.i.d. exponential with mean eta)."""
    rng = np.random.default_rng(0)
    reps, k, gamma = 400, 30, 2.5
    cover, eta_hat = 0, []
    for _ in range(reps):
        r = (np.cumsum(rng.standard_exponential(k)) / 7.0) ** (1.0 / gamma)
        est = estimate_tail(-r, endpoint=0.0, k=k, n_total=10**6)
        cover += est.gamma_ci[0] <= gamma <= est.gamma_ci[1]
        assert est.gamma_ci[0] < est.gamma < est.gamma_ci[1]
        eta_hat.append(1.0 / est.gamma)
    assert cover / reps >= min_coverage(reps)
    se = (1.0 / gamma) / math.sqrt((k - 1) * reps)
    assert abs(np.mean(eta_hat) - 1.0 / gamma) < 4 * se


def test_local_dimension_of_a_flat_disc_matches_levina_bickel():
    """Distances from the centre of a uniform 2-D disc: P(r <= e) = e^2 exactly, gamma = 2; the
    known-endpoint estimate is Levina-Bickel's maximum-likelihood (k - 1)/H, H = sum log(r_k / r_i)."""
    rng = np.random.default_rng(1)
    r = np.sqrt(rng.random(5000))
    est = estimate_tail(-r, endpoint=0.0)
    k = est.n_top
    x = np.sort(r)[:k]
    h = np.sum(np.log(x[-1] / x))
    assert est.gamma == pytest.approx((k - 1) / h, rel=1e-12)
    assert est.gamma_ci == pytest.approx(tuple(stats.gamma.ppf([0.025, 0.975], k - 1) / h), rel=1e-12)
    assert est.gamma_ci[0] < 2.0 < est.gamma_ci[1]


def test_known_endpoint_with_all_neighbours_is_scikit_dimension_mle():
    """On the same k nearest-neighbour distances, the known-endpoint estimate with k fixed is
    scikit-dimension's pointwise MLE (its independent implementation of Levina-Bickel)."""
    import skdim
    from sklearn.neighbors import NearestNeighbors

    x = np.random.default_rng(11).random((600, 3))
    dist, idx = NearestNeighbors(n_neighbors=51).fit(x).kneighbors(x)
    dist, idx = dist[:, 1:], idx[:, 1:]
    theirs = np.asarray(skdim.id.MLE().fit_transform_pw(x, precomputed_knn_arrays=(dist, idx)))
    for i in (0, 17, 599):
        ours = estimate_tail(-dist[i], endpoint=0.0, k=50, n_total=599)
        assert ours.gamma == pytest.approx(theirs[i], rel=1e-12)


def test_subsphere_off_span_against_simulation():
    """Query outside the span of a great subsphere: scores of simulated keys never pass r = 0.6 and
    the estimated endpoint and exponent cover the exact ones (r, (m-1)/2)."""
    law = GreatSubsphere(5, 3)
    q = np.array([0.6, 0.0, 0.0, 0.8, 0.0])
    tail = law.score_tail(q)
    assert tail.endpoint == pytest.approx(0.6, rel=1e-15) and tail.gamma == 1.0
    keys = law.sample(20_000, np.random.default_rng(4))
    scores = keys @ q
    assert scores.max() <= tail.endpoint
    est = estimate_tail(q, keys)
    assert est.kind == "weibull"
    assert est.endpoint_ci[0] <= tail.endpoint <= est.endpoint_ci[1]
    assert est.gamma_ci[0] <= tail.gamma <= est.gamma_ci[1]
    assert est.critical_beta(20_000).ci[0] <= (tail.kappa * 20_000) ** (1 / tail.gamma) <= est.critical_beta(20_000).ci[1]


def test_vmf_far_from_the_query_against_simulation():
    """vMF mass far from the query: the exact tail (endpoint 1, gamma = 1, tiny kappa) against the
    count of simulated scores within g of 1 (binomial, 4 SE), at a g where kappa g^gamma is within
    2% of the exact gap cdf."""
    mu = np.array([0.0, 0.0, 1.0])
    law = VonMisesFisher(mu, 2.0)
    q = np.array([math.sin(2.5), 0.0, math.cos(2.5)])
    score_law = law.score_law(q)
    tail = score_law.tail()
    assert tail.endpoint == 1.0 and tail.gamma == 1.0
    g0 = 0.01
    p0 = float(score_law.gap_cdf(g0))
    assert p0 == pytest.approx(tail.kappa * g0**tail.gamma, rel=0.02)
    n = 400_000
    scores = law.sample(n, np.random.default_rng(5)) @ q
    assert scores.max() <= 1.0
    count = int(np.sum(1.0 - scores <= g0))
    assert abs(count - n * p0) < 4 * math.sqrt(n * p0 * (1 - p0))


def test_ties_below_the_top_do_not_change_the_exponent():
    """Duplicated keys: the fit uses distinct values, so gamma and the endpoint are unchanged, and
    kappa scales by the mean multiplicity of the fitted values."""
    rng = np.random.default_rng(6)
    scores = rng.uniform(-1.0, 1.0, 4000)
    order = np.argsort(-scores)
    dup = np.concatenate([scores, scores[order[1:]][: 2000]])  # every value but the top, twice, for many
    base = estimate_tail(scores, rng=1)
    both = estimate_tail(dup, rng=1, n_total=dup.size)
    assert both.kind == "weibull" and both.n_distinct == base.n_distinct
    assert both.gamma == base.gamma and both.gamma_ci == base.gamma_ci and both.endpoint == base.endpoint
    k = both.n_top
    values, counts = np.unique(dup, return_counts=True)
    mult = counts[::-1][:k].sum() / k
    ratio = both.kappa / base.kappa
    # kappa per key: mean multiplicity of the fitted values over the growth of N
    assert ratio == pytest.approx(mult * scores.size / dup.size, rel=0.02)


def test_atom_at_the_top():
    rng = np.random.default_rng(7)
    scores = np.concatenate([rng.uniform(-1.0, 0.5, 3000), [0.9, 0.9, 0.9]])
    est = estimate_tail(scores)
    assert est.kind == "atom" and est.atom_count == 3.0 and est.endpoint == 0.9
    assert est.gap == pytest.approx(0.9 - scores[:3000].max(), rel=1e-12)
    assert est.rest is not None and est.rest.kind == "weibull"
    b = est.critical_beta(10**4)
    assert b.value == pytest.approx(math.log((10**4 - 3) / 3) / est.gap, rel=1e-12)


def test_own_key_among_random_keys_is_an_atom_and_plain_samples_are_not():
    """The query's own key (score 1 = the endpoint) stands out of a sample of uniform keys whose top
    is below 1; without it, the same keys give a Weibull fit (false-atom rate is ATOM_ALPHA)."""
    rng = np.random.default_rng(8)
    keys = UniformSphere(3).sample(5000, rng)
    keys = keys[keys[:, 0] < 0.99]  # a context without near duplicates of the query
    q = np.array([1.0, 0.0, 0.0])
    assert estimate_tail(q, keys).kind == "weibull"
    est = estimate_tail(q, np.vstack([keys, q]))
    assert est.kind == "atom" and est.atom_count == 1.0


def test_estimate_tails_is_estimate_tail_for_each_query():
    rng = np.random.default_rng(9)
    keys = UniformSphere(3).sample(3000, rng)
    qs = np.eye(3)
    ests = estimate_tails(qs, keys)
    assert isinstance(ests, tuple) and len(ests) == 3
    import attnscale

    assert attnscale.estimate_tails is estimate_tails
    assert [e.to_dict() for e in ests] == [estimate_tail(q, keys, rng=g).to_dict() for q, g in zip(qs, _shared(0, 3))]


def _shared(seed, count):
    """One generator handed to ``count`` calls in turn (as estimate_tails does)."""
    gen = np.random.default_rng(seed)
    return [gen] * count


def test_choose_k_rule():
    assert choose_k(10_000) == 100 and choose_k(20) == 10 and choose_k(5) == 5
    assert choose_k(2000, n_total=10**12) == 400


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda: estimate_tail([1.0, float("nan"), 0.0]), ValueError, "scores"),
        (lambda: estimate_tail([1.0]), ValueError, "scores"),
        (lambda: estimate_tail([2.0, 2.0, 2.0]), ValueError, "scores"),
        (lambda: estimate_tail(np.arange(50.0), level=1.0), ValueError, "level"),
        (lambda: estimate_tail(np.arange(50.0), k=80), ValueError, "k"),
        (lambda: estimate_tail(np.arange(50.0), endpoint=10.0), ValueError, "endpoint"),
        (lambda: estimate_tail(np.arange(50.0), n_total=10), ValueError, "n_total"),
        (lambda: estimate_tail([1.0, 0.0], np.ones((5, 3))), ValueError, "q"),
        (lambda: estimate_tail([1.0, 0.0, 0.0], np.ones(5)), ValueError, "keys"),
        (lambda: estimate_tail(np.eye(3), np.ones((5, 3))), ValueError, "q"),
        (lambda: estimate_tails([1.0, 0.0, 0.0], np.ones((5, 3))), ValueError, "q"),
        (lambda: estimate_tail(np.arange(50.0)).critical_beta(0), ValueError, "n"),
        (lambda: estimate_tail(np.arange(50.0)).critical_beta(10, convention="x"), ValueError, "convention"),
    ],
)
def test_bad_input_names_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()


def test_gumbel_estimate_has_no_score_tail():
    est = estimate_tail(np.random.default_rng(10).standard_normal(200_000))
    assert est.kind == "gumbel" and est.gamma_ci[1] == math.inf and est.endpoint == math.inf
    with pytest.raises(ValueError, match="kind"):
        est.tail()
