"""Tests of finite.py and exponent.critical_curve: verdicts from the exact law at n (docs/theory.md section 7).

The oracle is brute force: n real keys (uniform on the sphere, or scores drawn from the exact
Beta law of section 2 where d is large), the exact softmax of every draw, averaged.
"""

import math

import numpy as np
import pytest

import attnscale as ats
from attnscale.exponent import critical_curve
from attnscale.finite import regime, regime_name
from attnscale.laws import UniformScoreLaw, UniformSphere
from attnscale.limit_means import c_matching_max_weight, critical_band, limit_max_weight


def _brute_top_weight(scores: np.ndarray, beta: float) -> np.ndarray:
    """W_1 of each row of scores (draws x keys), exactly."""
    gaps = beta * (scores - scores.max(axis=1, keepdims=True))
    return 1.0 / np.exp(gaps).sum(axis=1)


def _real_key_scores(d: int, n: int, draws: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    law, q = UniformSphere(d), np.eye(d)[0]
    return np.stack([law.sample(n, rng) @ q for _ in range(draws)])


def _beta_law_scores(d: int, n: int, draws: int, seed: int) -> np.ndarray:
    a = (d - 1) / 2.0
    return 1.0 - 2.0 * np.random.default_rng(seed).beta(a, a, size=(draws, n))


@pytest.mark.parametrize(
    ("d", "n", "beta", "scores"),
    [(3, 2000, 600.0, _real_key_scores), (9, 2000, 40.0, _real_key_scores), (64, 4096, 47.0, _beta_law_scores)],
)
def test_max_weight_and_c_eff_against_brute_force(d, n, beta, scores):
    w = _brute_top_weight(scores(d, n, 3000, seed=d), beta)
    r = regime(n, beta, UniformScoreLaw(d), size=20000, rng=1)
    se = math.hypot(w.std(ddof=1) / math.sqrt(w.size), r.max_weight_se)
    assert abs(r.max_weight - w.mean()) < 4 * se
    # c_eff of the brute-force mean, with its own delta-method interval
    gamma = (d - 1) / 2.0
    c_brute = c_matching_max_weight(float(w.mean()), gamma)
    c_hi = c_matching_max_weight(float(w.mean() + 4 * se), gamma)
    c_lo = c_matching_max_weight(float(w.mean() - 4 * se), gamma)
    assert c_lo <= r.c_eff <= c_hi, (c_lo, r.c_eff, c_brute, c_hi)


def _brute_beta_half(scores: np.ndarray) -> tuple[float, float]:
    """Root of mean W_1(beta) = 1/2 on fixed score draws (bisection in log beta), and the SE of its log.

    SE by the delta method: sd(W_1) / (sqrt(draws) d mean W_1 / d log beta).
    """
    lo, hi = math.log(1.0), math.log(1e4)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _brute_top_weight(scores, math.exp(mid)).mean() < 0.5 else (lo, mid)
    log_b = 0.5 * (lo + hi)
    w = _brute_top_weight(scores, math.exp(log_b))
    step = 1e-3
    slope = (
        _brute_top_weight(scores, math.exp(log_b + step)).mean() - _brute_top_weight(scores, math.exp(log_b - step)).mean()
    ) / (2 * step)
    return math.exp(log_b), float(w.std(ddof=1) / math.sqrt(w.size) / slope)


def test_critical_curve_ratio_against_brute_force_d64():
    # the finite-n critical rule: beta_half(n) / beta_half(L) at d = 64, L = 256, n = 4096
    d, small, big = 64, 256, 4096
    b_small, se_small = _brute_beta_half(_beta_law_scores(d, small, 4000, seed=11))
    b_big, se_big = _brute_beta_half(_beta_law_scores(d, big, 3000, seed=12))
    rows = critical_curve(UniformScoreLaw(d), [small, big], size=8000, rng=3)
    # the curve's two points share their draws: the SE of the log ratio is at most the sum of theirs
    se_ratio = math.sqrt(se_small**2 + se_big**2) + rows[0].log_se + rows[1].log_se
    assert math.log(rows[1].beta_half / rows[0].beta_half) == pytest.approx(math.log(b_big / b_small), abs=4 * se_ratio)
    assert se_ratio < 0.03  # checked to ~10%: far from the asymptotic ratio 16^(2/63) = 1.09 (the 2% check at
    # L = 4096, n = 131072 with 10^5 brute-force draws is in benchmarks/bench_finite.py)
    assert math.log(rows[0].beta_half) == pytest.approx(math.log(b_small), abs=4 * math.hypot(rows[0].log_se, se_small))


def test_limit_property_c_eff_tends_to_c():
    law = UniformScoreLaw(3)
    star = ats.critical_beta(10**12, law.tail())
    for c in (0.3, 1.0, 3.0):
        r = regime(10**12, c * star, law, size=20000, rng=5)
        assert r.c_eff_low <= c <= r.c_eff_high or abs(r.c_eff / c - 1) < 0.01
        assert r.asymptotics_reached


def test_d64_is_subcritical_at_beta8_and_far_from_asymptotics():
    r = regime(10**6, 8.0, UniformScoreLaw(64), size=4000, rng=0)
    assert r.name == "subcritical" and not r.asymptotics_reached
    assert r.n_eff == pytest.approx(3.86e5, rel=0.01)   # M(8)^2 / M(16) n = 0.3863 n (section 3)
    assert r.c_asymptotic == pytest.approx(2.837, rel=1e-3)


def test_band_and_names():
    band = critical_band(1.0)
    assert regime_name(2.0, 0.05, band) == "subcritical"
    assert regime_name(2.0, 1.0, band) == "critical"
    assert regime_name(2.0, 50.0, band) == "supercritical"
    assert regime_name(1.0, 50.0, band) == "global"
    r = regime(10**6, 0.5, UniformScoreLaw(5), size=100, rng=0)
    assert r.name == "global"


def test_gumbel_law_c_eff_matches_poisson_dirichlet():
    law = ats.GaussianKeys(8)
    q = np.eye(8)[0]
    r = regime(10**6, 12.0, law, q=q, size=4000, rng=2)
    assert r.kind == "gumbel"
    assert limit_max_weight(1.0, r.c_eff, kind="gumbel").mean == pytest.approx(r.max_weight, rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"n": 1}, "n"), ({"beta": -1.0}, "beta"), ({"size": 1}, "size"), ({"beta": float("nan")}, "beta")],
)
def test_bad_input(kwargs, name):
    args = {"n": 1000, "beta": 10.0, "size": 100}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        regime(args["n"], args["beta"], UniformScoreLaw(3), size=args["size"])
