"""Brute force at finite n against the critical limit law (docs/theory.md section 3)."""

import numpy as np
import pytest
from scipy import stats

from attnscale.laws import UniformSphere
from attnscale.simulate import simulate_stats

Q3 = np.array([0.0, 0.0, 1.0])


@pytest.mark.parametrize("c", [0.25, 0.5, 2.0])
def test_brute_force_matches_limit_law_d3(c):
    """d = 3 converges at O(1/n): at n = 1e4 the laws of W_1, n_eff and of the scaled tangential
    norm (kappa n)^(1/2)|P_tan y| of the output must agree with the limit law (KS, alpha = 1e-3).

    With 1500 brute-force draws the KS test detects a shift of about 0.05 in the cdf; the finite-n
    error at n = 1e4 is of order 1e-4, far below that, so a rejection would be a real bug.
    """
    law = UniformSphere(3)
    brute = simulate_stats(law, Q3, n=10_000, c=c, reps=1500, rng=11, method="brute")
    limit = simulate_stats(law, Q3, n=10_000, c=c, reps=20_000, rng=12, method="limit")
    for name in ("max_weight", "n_eff", "scaled_tangential_norm"):
        p = stats.ks_2samp(getattr(brute, name), getattr(limit, name)).pvalue
        assert p > 1e-3, (name, p)


def test_outputs_values_and_their_summaries():
    """Per-draw outputs: V x for a value matrix, the radial part and scaled tangential norm of x,
    the per-direction tangential variance; the limit method maps T back to n consistently."""
    law = UniformSphere(3)
    v = np.array([[2.0, 0.0, 1.0], [0.0, -1.0, 0.5]])
    plain = simulate_stats(law, Q3, n=2000, c=0.5, reps=30, rng=4)
    with_v = simulate_stats(law, Q3, n=2000, c=0.5, reps=30, rng=4, values=v)
    assert plain.output.shape == (30, 3) and with_v.output.shape == (30, 2)
    np.testing.assert_allclose(with_v.output, plain.output @ v.T, rtol=1e-13)
    np.testing.assert_array_equal(with_v.scaled_tangential_norm, plain.scaled_tangential_norm)
    np.testing.assert_allclose(plain.radial, plain.output @ Q3, rtol=1e-14)
    tan = plain.output - np.outer(plain.radial, Q3)
    assert plain.tangential_var == pytest.approx(np.trace(np.cov(tan, rowvar=False)) / 2, rel=1e-12)
    scale = np.sqrt(0.5 * 2000)  # (kappa n)^(1/(2 gamma)) at d = 3
    np.testing.assert_allclose(plain.scaled_tangential_norm, scale * np.linalg.norm(tan, axis=1), rtol=1e-12)
    assert set(plain.to_dict()) >= {"output", "scaled_tangential_norm"}

    lim = simulate_stats(law, Q3, n=10**6, c=0.5, reps=50, rng=4, method="limit", values=v)
    x = simulate_stats(law, Q3, n=10**6, c=0.5, reps=50, rng=4, method="limit")
    np.testing.assert_allclose(lim.output, x.output @ v.T, rtol=1e-13)
    tan = x.output - np.outer(x.radial, Q3)
    np.testing.assert_allclose(x.scaled_tangential_norm, np.sqrt(0.5e6) * np.linalg.norm(tan, axis=1), rtol=1e-9)
    assert np.all(x.radial < 1.0) and np.all(x.radial > 1.0 - 1e-3)


def test_beta_and_c_are_two_spellings_of_one_run():
    law = UniformSphere(3)
    by_c = simulate_stats(law, Q3, n=1000, c=1.0, reps=10, rng=3)
    by_beta = simulate_stats(law, Q3, n=1000, beta=by_c.beta, reps=10, rng=3)
    assert np.array_equal(by_c.max_weight, by_beta.max_weight)
    assert by_beta.c == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["brute", "fast", "limit"])
def test_rng_spellings_give_the_same_streams(method):
    """An int seed and its SeedSequence are one stream; brute draw i uses SeedSequence(seed).spawn(reps)[i]."""
    law = UniformSphere(3)
    by_int = simulate_stats(law, Q3, n=500, c=1.0, reps=4, rng=7, method=method)
    by_seq = simulate_stats(law, Q3, n=500, c=1.0, reps=4, rng=np.random.SeedSequence(7), method=method)
    assert np.array_equal(by_int.max_weight, by_seq.max_weight)
    if method == "brute":
        child = np.random.SeedSequence(7).spawn(4)[2]
        keys = law.sample(500, np.random.default_rng(child))
        from attnscale.attention import attention_stats

        assert by_int.max_weight[2] == attention_stats(Q3, keys, by_int.beta).max_weight
    gen = np.random.default_rng(7)
    first = simulate_stats(law, Q3, n=500, c=1.0, reps=4, rng=gen, method=method)
    second = simulate_stats(law, Q3, n=500, c=1.0, reps=4, rng=gen, method=method)
    assert first.max_weight.shape == (4,) and not np.array_equal(first.max_weight, second.max_weight)


def test_fast_outputs_where_directions_are_known():
    law = UniformSphere(5)
    q = np.array([0.0, 0.0, 0.0, 0.0, 1.0])
    fast = simulate_stats(law, q, n=10**15, c=1.0, reps=200, rng=2, method="fast")
    assert fast.output.shape == (200, 5) and np.all(np.isfinite(fast.scaled_tangential_norm))
    assert np.all(fast.radial < 1.0)
    # limit at c = 1, gamma = 2: E|T|^2 = 0.26718 (attnscale.output); n = 1e15 is close to it
    mean = float(np.mean(fast.scaled_tangential_norm**2))
    se = float(np.std(fast.scaled_tangential_norm**2) / np.sqrt(200))
    assert abs(mean - 0.26718) <= 4 * se  # finite-n error O(n^(-1/2)) ~ 3e-8
    from attnscale.laws import GreatSubsphere

    # keys on a great subsphere seen from a query off its span: directions depend on the score
    off_span = simulate_stats(GreatSubsphere(5, 3), [0.6, 0.0, 0.0, 0.8, 0.0], n=1000, c=1.0, reps=5, method="fast")
    assert off_span.output is None and set(off_span.to_dict()) == {"max_weight", "n_eff", "entropy"}


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(c=1.0, beta=1.0), "beta"),
        (dict(), "beta"),
        (dict(c=1.0, method="exact"), "method"),
        (dict(c=1.0, reps=0), "reps"),
        (dict(c=float("nan")), "c"),
        (dict(c=1.0, values=np.eye(2)), "values"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        simulate_stats(UniformSphere(3), Q3, n=100, **kwargs)
