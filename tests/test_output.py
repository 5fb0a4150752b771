"""Tests for attnscale.output (docs/theory.md section 3): the law of the attention output.

Every formula is checked against an independent computation: mpmath (Kummer functions),
the exact finite-n moments of a ratio of sums by a Laplace-transform quadrature, the
exact von Mises-Fisher map of attnscale.heat (its own quadrature), the critical limit
law sampled point by point, and brute-force attention over real sampled keys
(attnscale.attention).  Statistical tests fix their seed; tolerances are 4 standard
errors plus a stated bias bound.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import integrate, special, stats

from attnscale.attention import attention, attention_stats
from attnscale.heat import VMFMixture, attention_map_exact
from attnscale.laws import GreatSubsphere, Mixture, PowerDensity, UniformSphere, VonMisesFisher, tangent_basis
from attnscale.limits import CriticalLimit, mean_resultant_length, n_eff_subcritical, tangential_variance_exact
from attnscale.output import (
    GaussianOutput,
    _log_moment,
    _sin_power,
    _u_power,
    critical_radial_mean,
    critical_tangential_second_moment,
    gaussian_end_cdf,
    gaussian_end_second_moment,
    log_tangential_scale,
    nearest_end_cdf,
    nearest_end_second_moment,
    scaled_tangential_norm,
    smooth_density_mean,
    subcritical_moments,
    subcritical_output_law,
    supercritical_distance_constant,
    supercritical_far_probability,
    supercritical_within_probability,
    tangential_scale,
    vmf_output_mean,
)
from attnscale.tails import ScoreTail

mp.mp.dps = 30


def mean_se(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def ks_critical(n1: int, n2: int | None = None, alpha: float = 1e-3) -> float:
    """Asymptotic KS critical distance (two-sample, or one-sample when n2 is None)."""
    scale = math.sqrt(1.0 / n1 + (1.0 / n2 if n2 else 0.0))
    return math.sqrt(-0.5 * math.log(alpha / 2.0)) * scale


# ---------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("d", [2, 3, 7])
def test_tangent_basis_is_orthonormal_and_orthogonal_to_q(d: int) -> None:
    q = np.random.default_rng(d).standard_normal(d)
    q /= np.linalg.norm(q)
    b = tangent_basis(q)
    assert b.shape == (d, d - 1)
    np.testing.assert_allclose(b.T @ b, np.eye(d - 1), atol=1e-13)
    np.testing.assert_allclose(b.T @ q, 0.0, atol=1e-13)


@pytest.mark.parametrize(
    "law, q",
    [
        (UniformSphere(4), np.array([0.6, 0.0, 0.0, 0.8])),
        (VonMisesFisher([0.0, 0.0, 1.0], 5.0), np.array([0.0, 0.0, 1.0])),
        (VonMisesFisher([0.0, 0.0, 1.0], 5.0), np.array([0.0, 0.0, -1.0])),
        (PowerDensity(4, 1.5), np.array([1.0, 0.0, 0.0, 0.0])),
        (GreatSubsphere(5, 3), np.array([0.0, 0.6, 0.8, 0.0, 0.0])),
    ],
)
def test_tangent_frame_directions_are_uniform_given_the_score(law, q) -> None:
    """Sampled keys: K - (1-G) q = sqrt(G(2-G)) B theta with theta = B^T u a unit vector, centred,
    isotropic and uncorrelated with G (4 SE on every moment)."""
    frame = law.tangent_frame(q).matrix()
    dim = frame.shape[1]
    np.testing.assert_allclose(frame.T @ frame, np.eye(dim), atol=1e-13)
    np.testing.assert_allclose(frame.T @ q, 0.0, atol=1e-13)
    keys = law.sample(40_000, rng=1)
    g = 1.0 - keys @ q
    u = (keys - np.outer(1.0 - g, q)) / np.sqrt(g * (2.0 - g))[:, None]
    theta = u @ frame
    np.testing.assert_allclose(np.linalg.norm(theta, axis=1), 1.0, atol=1e-6)
    for i in range(dim):
        for value, target in ((theta[:, i], 0.0), (theta[:, i] ** 2, 1.0 / dim), (theta[:, i] ** 2 * (g - g.mean()), 0.0)):
            mean, se = mean_se(value)
            assert abs(mean - target) <= 4 * se, (i, mean, target, se)


def test_tangent_frame_is_none_where_directions_depend_on_the_score() -> None:
    assert VonMisesFisher([0.0, 0.0, 1.0], 5.0).tangent_frame([0.0, 0.6, 0.8]) is None
    assert Mixture([UniformSphere(3), VonMisesFisher([0.0, 0.0, 1.0], 2.0)], [0.5, 0.5]).tangent_frame([0, 0, 1.0]) is None
    with pytest.raises(ValueError, match="q"):
        UniformSphere(3).tangent_frame([0.0, 1.0])


def test_tangential_scale_and_scaled_norm() -> None:
    tail = UniformSphere(5).score_tail([1.0, 0, 0, 0, 0])
    n = 10**7
    assert tangential_scale(n, tail) == pytest.approx((tail.kappa * n) ** (-1 / (2 * tail.gamma)), rel=1e-14)
    assert log_tangential_scale(10**18, tail) == pytest.approx(-math.log(tail.kappa * 1e18) / 4, rel=1e-14)
    y = np.array([[0.9, 0.3, 0.0, -0.4, 0.0]])
    expected = 0.5 / tangential_scale(n, tail)
    np.testing.assert_allclose(scaled_tangential_norm(y, [1.0, 0, 0, 0, 0], n, tail), [expected], rtol=1e-14)


# ---------------------------------------------------------------------------
# Subcritical: per-key moments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("d", [2, 3, 5, 10])
@pytest.mark.parametrize("lam", [0.0, 3.0, 400.0, 1e5])
def test_log_moment_against_kummer_function(d: int, lam: float) -> None:
    """E[e^{-lam u} u^k] = B(a+k, a)/B(a, a) M(a+k, 2a+k, -lam), u ~ Beta(a, a) (mpmath);
    E[e^{-lam u} sin^p] = 2^p B(a+p/2, a+p/2)/B(a, a) M(a+p/2, 2a+p, -lam)."""
    a = mp.mpf(d - 1) / 2
    for k in (0, 1, 2):
        exact = mp.beta(a + k, a) / mp.beta(a, a) * mp.hyp1f1(a + k, 2 * a + k, -lam)
        got = math.exp(_log_moment(d, lam, _u_power(k)))
        assert got == pytest.approx(float(exact), rel=1e-9)
    for p in (2, 4):
        h = mp.mpf(p) / 2
        exact = 2**p * mp.beta(a + h, a + h) / mp.beta(a, a) * mp.hyp1f1(a + h, 2 * a + p, -lam)
        assert math.exp(_log_moment(d, lam, _sin_power(p))) == pytest.approx(float(exact), rel=1e-9)


@pytest.mark.parametrize("d", [2, 3, 4, 8])
def test_subcritical_moments_at_beta_zero(d: int) -> None:
    """beta = 0: one uniform key; a coordinate has variance 1/d and excess kurtosis -6/(d+2)."""
    m = subcritical_moments(d, 0.0)
    assert abs(m.radial_mean) < 1e-14 and abs(m.radial_bias) < 1e-14
    assert m.radial_var == pytest.approx(1 / d, rel=1e-12)
    assert m.tangential_var == pytest.approx(1 / d, rel=1e-12)
    assert m.n_eff_ratio == pytest.approx(1.0, rel=1e-12)
    assert m.excess_kurtosis == pytest.approx(-6 / (d + 2), rel=1e-10)


@pytest.mark.parametrize("d", [3, 6, 64])
@pytest.mark.parametrize("beta", [0.5, 30.0, 1e6])
def test_subcritical_moments_agree_with_limits_module(d: int, beta: float) -> None:
    """A and n Var_tan against the independent Bessel-ratio and sine-Laplace code of limits."""
    m = subcritical_moments(d, beta)
    assert m.radial_mean == pytest.approx(float(mean_resultant_length(d, beta)), rel=1e-10)
    assert m.tangential_var == pytest.approx(float(tangential_variance_exact(d, beta)), rel=1e-9)


def _panels(edges: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(k)
    a, b = edges[:-1, None], edges[1:, None]
    return (0.5 * (b - a) * x + 0.5 * (b + a)).ravel(), (0.5 * (b - a) * w).ravel()


def finite_n_moments(d: int, beta: float, n: int) -> np.ndarray:
    r"""Exact finite-n moments of y = sum e_i K_i / sum e_i, by E[A^p / B^p] = int s^{p-1} E[A^p e^{-sB}] ds / (p-1)!.

    With phi_f(s) = E[f e^{-s e}] over one key, E[A e^{-sB}] = n phi_a phi^{n-1},
    E[A^2 e^{-sB}] = n phi_aa phi^{n-1} + n(n-1) phi_a^2 phi^{n-2}, and for a tangential
    coordinate (odd moments vanish) E[A^4 e^{-sB}] = n phi_4 phi^{n-1} + 3n(n-1) phi_2^2 phi^{n-2}.
    Quadrature over the gap g = 1 - t (density of t prop. to (1 - t^2)^{(d-3)/2}) and log s.
    Returns n (E<y,q> - A), n Var<y,q>, n Var_tan, n * excess kurtosis of a tangential coordinate.
    """
    g, wg = _panels(np.concatenate([[0.0], np.geomspace(1e-7, 2.0, 120)]), 20)
    t = 1.0 - g
    dens = (1.0 - t * t) ** ((d - 3) / 2) / (2.0 ** (d - 2) * special.beta((d - 1) / 2, (d - 1) / 2))
    wt = wg * dens
    e = np.exp(-beta * g)  # e^{beta (t - 1)}: the factor e^beta cancels in every ratio
    mu = wt @ e
    ls, wls = _panels(np.linspace(-40.0, 8.0, 241), 12)  # log(s n mu)
    s = np.exp(ls) / (n * mu)
    ws = wls * s
    se = np.outer(s, e)
    logphi = np.log1p(np.expm1(-se) @ wt)
    kern = np.exp(-se) * wt

    def pw(k: int) -> np.ndarray:
        return np.exp((n - k) * logphi)

    p1, p2 = kern @ (e * t), kern @ (e * e * t * t)
    tan2 = kern @ (e**2 * (1 - t * t) / (d - 1))
    tan4 = kern @ (3 * e**4 * (1 - t * t) ** 2 / ((d - 1) * (d + 1)))
    ex = ws @ (n * p1 * pw(1))
    ex2 = ws @ (s * (n * p2 * pw(1) + n * (n - 1) * p1**2 * pw(2)))
    t2 = ws @ (s * n * tan2 * pw(1))
    t4 = ws @ (s**3 / 6 * (n * tan4 * pw(1) + 3 * n * (n - 1) * tan2**2 * pw(2)))
    a = float(mean_resultant_length(d, beta))
    return np.array([n * (ex - a), n * (ex2 - ex * ex), n * t2, n * (t4 / t2**2 - 3.0)])


@pytest.mark.parametrize("d, beta", [(3, 10.0), (5, 5.0), (10, 3.0)])
def test_subcritical_moments_are_the_limits_of_exact_finite_n_moments(d: int, beta: float) -> None:
    """Bias, radial variance, tangential variance and excess kurtosis (the delta-method constants)
    are the n -> inf limits of the exact finite-n moments: at n = 1e6 within 2e-4 relative, and the
    error shrinks like 1/n (by at least 5x from 1e5 to 1e6)."""
    m = subcritical_moments(d, beta)
    target = np.array([m.radial_bias, m.radial_var, m.tangential_var, m.excess_kurtosis])
    err5 = finite_n_moments(d, beta, 10**5) - target
    err6 = finite_n_moments(d, beta, 10**6) - target
    np.testing.assert_allclose(err6, 0.0, atol=2e-4 * np.abs(target).max(), rtol=0)
    assert np.all(np.abs(err6) <= np.abs(err5) / 5 + 1e-9 * np.abs(target)), (err5, err6)


@pytest.mark.parametrize("d", [3, 5, 10])
def test_asymptotic_moments_converge_to_exact(d: int) -> None:
    """Every asymptotic constant has relative error O(1/beta) (O(1/beta^2) for the corrected Var_tan)."""
    errs = []
    for beta in (1e3, 1e4):
        ex, asy = subcritical_moments(d, beta), subcritical_moments(d, beta, "asymptotic")
        names = ("radial_bias", "radial_var", "tangential_var", "n_eff_ratio", "excess_kurtosis")
        errs.append([abs(getattr(asy, k) / getattr(ex, k) - 1) for k in names])
        assert abs(asy.radial_mean - ex.radial_mean) < 10 * d * d / beta**2
    errs = np.array(errs)
    assert np.all(errs[1] <= errs[0] / 5 + 1e-12), errs
    assert np.all(errs[1] < 50 * d * d / 1e4), errs
    assert n_eff_subcritical(10**6, d, 1e4) / 1e6 == pytest.approx(
        subcritical_moments(d, 1e4, "asymptotic").n_eff_ratio, rel=1e-12
    )


def test_extreme_parameters_stay_finite_without_warnings() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for d, beta in ((3, 1e12), (64, 1e12), (129, 1e3), (2, 0.0)):
            m = subcritical_moments(d, beta)
            vals = np.array([m.radial_mean, m.radial_bias, m.radial_var, m.tangential_var, m.n_eff_ratio])
            assert not np.any(np.isnan(vals)) and not math.isnan(m.excess_kurtosis)
        law = subcritical_output_law(10**18, 3, 1e12)
        assert np.all(np.isfinite(law.mean)) and np.all(np.isfinite(law.cov))


# ---------------------------------------------------------------------------
# Subcritical: the Gaussian law of y against brute force, any V
# ---------------------------------------------------------------------------


def _random_orthogonal(d: int, seed: int) -> np.ndarray:
    qm, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return qm * np.sign(np.diag(r))


def test_subcritical_law_and_value_matrices_against_brute_force() -> None:
    """n = 1e4 uniform keys on S^2, beta = 20 (c = 0.004, n_eff = 500).

    attention_stats with a value matrix V returns V times its identity output (round-off);
    the sample mean and every covariance entry of Vx match the Gaussian law with V (4 SE plus
    the O(1/n_eff) delta-method remainder, measured 1.1/n_eff at d = 3; we allow 3/n_eff).
    V: identity, a random orthogonal matrix, a diagonal scaling (and a 2 x 3 projection).
    """
    d, n, beta, reps = 3, 10_000, 20.0, 1500
    q = np.array([0.0, 0.0, 1.0])
    mats = {
        "identity": np.eye(d),
        "orthogonal": _random_orthogonal(d, 5),
        "diagonal": np.diag([3.0, 0.5, -2.0]),
        "projection": np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 4.0]]),
    }
    law = UniformSphere(d)
    children = np.random.SeedSequence(17).spawn(reps)
    xs = np.empty((reps, d))
    for i, child in enumerate(children):
        keys = law.sample(n, np.random.default_rng(child))
        xs[i] = attention_stats(q, keys, beta).output
        if i < 20:
            for v in mats.values():
                np.testing.assert_allclose(attention_stats(q, keys, beta, values=v).output, v @ xs[i], atol=1e-13)
    for name, v in mats.items():
        theory = subcritical_output_law(n, d, beta, q=q, values=v)
        y = xs @ v.T
        bias = 3.0 / theory.n_eff
        for i in range(v.shape[0]):
            mean, se = mean_se(y[:, i])
            scale = math.sqrt(theory.cov[i, i])
            assert abs(mean - theory.mean[i]) <= 4 * se + bias * scale / math.sqrt(n) + 1e-12, (name, i)
            for j in range(i, v.shape[0]):
                prod = (y[:, i] - y[:, i].mean()) * (y[:, j] - y[:, j].mean())
                c, c_se = mean_se(prod)
                tol = 4 * c_se + bias * math.sqrt(theory.cov[i, i] * theory.cov[j, j])
                assert abs(c - theory.cov[i, j]) <= tol, (name, i, j, c, theory.cov[i, j], tol)
    assert isinstance(theory, GaussianOutput)
    draws = theory.sample(4000, rng=1)
    assert draws.shape == (4000, 2)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), theory.cov, rtol=0.15)


def test_asymptotic_law_is_close_to_exact_law() -> None:
    ex = subcritical_output_law(10**6, 5, 1e4)
    asy = subcritical_output_law(10**6, 5, 1e4, method="asymptotic")
    np.testing.assert_allclose(asy.mean, ex.mean, atol=1e-7)
    np.testing.assert_allclose(asy.cov, ex.cov, rtol=1e-3, atol=1e-3 * ex.cov.max())


# ---------------------------------------------------------------------------
# Smooth densities: the bias toward denser regions
# ---------------------------------------------------------------------------


def test_vmf_output_mean_against_heat_quadrature() -> None:
    """Closed form A_d(|xi|) xi/|xi| against attnscale.heat's own quadrature of the tilted density."""
    mu = np.array([0.6, 0.0, 0.8])
    rho = VMFMixture([mu], [4.0])
    for q in (np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, -0.6, 0.8])):
        for beta in (0.5, 10.0, 1e4):
            got = vmf_output_mean(q, beta, mu, 4.0)
            np.testing.assert_allclose(got, attention_map_exact(rho, q, beta), atol=1e-12)


def test_smooth_density_mean_is_first_order_in_one_over_beta() -> None:
    """|exact - q - (grad_S log rho - (d-1)/2 q)/beta| = O(beta^-2): fitted order -2 within 0.1."""
    mu = np.array([0.0, 0.6, 0.8])
    kappa = 3.0
    q = np.array([0.0, 0.0, 1.0])
    betas = np.array([1e2, 1e3, 1e4])
    errs = [
        np.linalg.norm(vmf_output_mean(q, b, mu, kappa) - smooth_density_mean(q, b, kappa * mu)) for b in betas
    ]
    slope = np.polyfit(np.log(betas), np.log(errs), 1)[0]
    assert abs(slope + 2.0) < 0.1, slope
    v = np.diag([1.0, 2.0, 3.0])
    np.testing.assert_allclose(smooth_density_mean(q, 50.0, kappa * mu, v), v @ smooth_density_mean(q, 50.0, kappa * mu))


def test_vmf_mean_against_brute_force() -> None:
    """von Mises-Fisher keys at n = 5000, beta = 30: the sample mean output is the exact tilted mean.

    Tolerance 4 SE plus a bound on the O(1/n) ratio bias -E[e^2 (K - mu)]/(n E[e]^2): by
    Cauchy-Schwarz it is at most sd(y_i) / sqrt(n_eff) to leading order (n_eff from the draws).
    The density bias itself, kappa mu_tan / beta = 0.06, is far outside that tolerance."""
    mu = np.array([0.0, 0.6, 0.8])
    law = VonMisesFisher(mu, 3.0)
    q = np.array([0.0, 0.0, 1.0])
    n, beta, reps = 5000, 30.0, 300
    draws = [attention_stats(q, law.sample(n, np.random.default_rng(s)), beta) for s in np.random.SeedSequence(3).spawn(reps)]
    ys = np.array([st.output for st in draws])
    n_eff = float(np.mean([st.n_eff for st in draws]))
    exact = vmf_output_mean(q, beta, mu, 3.0)
    for i in range(3):
        mean, se = mean_se(ys[:, i])
        tol = 4 * se + ys[:, i].std() / math.sqrt(n_eff)
        assert abs(mean - exact[i]) <= tol, (i, mean, exact[i], tol)
    _, se1 = mean_se(ys[:, 1])
    assert abs(exact[1] - 3.0 * 0.6 / beta) < 0.01 and 4 * se1 + ys[:, 1].std() / math.sqrt(n_eff) < 0.01


# ---------------------------------------------------------------------------
# Critical: exact moments by quadrature
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("gamma, c, m", [(1.0, 0.5, 64), (1.0, 2.0, 32), (2.0, 0.5, 256), (0.75, 1.0, 64)])
def test_critical_moments_against_limit_law_draws(gamma: float, c: float, m: int) -> None:
    """E|T|^2 and E sum W_k Gamma_k^(1/gamma) by quadrature against 60000 limit-law draws (4 SE).

    The remainder enters the normalization by its mean; its fluctuation is a sum of terms each
    below W_m, so the relative bias is at most about 3 (share) W_m, checked below 1e-5."""
    out = CriticalLimit(gamma, c).draw_output(60_000, rng=int(10 * gamma + c), m=m, dim=2)
    assert np.max(out.draws.remainder * out.draws.weights[:, -1]) < 3e-6
    mean, se = mean_se(out.tangential_norm**2)
    assert abs(mean - critical_tangential_second_moment(gamma, c)) <= 4 * se
    mean, se = mean_se(out.radial)
    assert abs(mean - critical_radial_mean(gamma, c)) <= 4 * se


@pytest.mark.parametrize("gamma", [0.75, 1.0, 2.0, 4.0])
def test_critical_second_moment_joins_its_two_ends(gamma: float) -> None:
    """Quadrature vs the ends: Gaussian end with relative error O(c^gamma); nearest-key end with
    c (2 Gamma(1+1/gamma) - E|T|^2) -> 2 gamma, error O(1/c)."""
    small = [abs(critical_tangential_second_moment(gamma, c) / gaussian_end_second_moment(gamma, c) - 1) for c in (1e-2, 1e-3)]
    assert small[1] <= small[0] / 10**gamma * 1.5 + 1e-9
    big = [c * (nearest_end_second_moment(gamma) - critical_tangential_second_moment(gamma, c)) - 2 * gamma for c in (1e2, 1e3)]
    assert abs(big[1]) <= abs(big[0]) / 5 and abs(big[1]) < 0.05 * gamma
    assert critical_radial_mean(gamma, 1e-3) * 1e-3 == pytest.approx(gamma, rel=0.01)
    assert critical_radial_mean(gamma, 1e3) == pytest.approx(math.gamma(1 + 1 / gamma), rel=0.01)


def test_critical_second_moment_gamma_one_closed_inner_integrals() -> None:
    """gamma = 1 through a different route: E|T|^2/2 = int_0^1 int_0^inf (-log v) v s e^{-sv - Ein(s)/c} / c^2 ds dv."""
    c = 0.5

    def ein(s: float) -> float:
        return float(np.euler_gamma + math.log(s) + special.exp1(s)) if s > 1e-3 else s - s * s / 4 + s**3 / 18

    inner = lambda v: integrate.quad(lambda s: s * math.exp(-s * v - ein(s) / c), 0, np.inf, limit=200, epsrel=1e-11)[0]  # noqa: E731
    val = integrate.quad(lambda v: -math.log(v) * v * inner(v), 0, 1, limit=200, epsrel=1e-10)[0] / c**2
    assert critical_tangential_second_moment(1.0, c) == pytest.approx(2 * val, rel=1e-7)


# ---------------------------------------------------------------------------
# Crossover ends as laws
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("gamma, dim", [(1.0, 2), (2.0, 4)])
def test_crossover_ends_are_the_laws_of_the_limit_at_extreme_c(gamma: float, dim: int) -> None:
    """KS at level 1e-3 (30000 draws): at c = 1e-3 |T| is chi with dim d.o.f. (bias O(c^gamma));
    at c = 1e3 |T| = sqrt(2) Gamma_1^(1/(2 gamma)) (bias O(1/c))."""
    size = 30_000
    small = CriticalLimit(gamma, 1e-3).draw_output(size, rng=1, m=64, dim=dim).tangential_norm
    ks = stats.kstest(small, lambda r: gaussian_end_cdf(r, gamma, 1e-3, dim)).statistic
    assert ks < ks_critical(size)
    big = CriticalLimit(gamma, 1e3).draw_output(size, rng=2, m=16, dim=dim).tangential_norm
    ks = stats.kstest(big, lambda r: nearest_end_cdf(r, gamma)).statistic
    assert ks < ks_critical(size)


# ---------------------------------------------------------------------------
# Supercritical: y - K_(1)
# ---------------------------------------------------------------------------


def test_distance_constant_equals_integral_of_far_probability() -> None:
    """int_0^inf P(D > rho) d rho = C / c: the tie-law quadrature against the closed form
    (dim = 1, where the direction average is a single term; dim >= 2 is checked by simulation below)."""
    for gamma in (0.75, 1.0, 3.0):
        val = integrate.quad(lambda r: supercritical_far_probability(gamma, 1.0, r, 1), 0, np.inf, limit=200, epsrel=1e-8)[0]
        assert val == pytest.approx(supercritical_distance_constant(gamma, 1), rel=1e-6)
    assert supercritical_distance_constant(1.0, 2) == pytest.approx(2 * math.sqrt(2) * math.log(2) / math.sqrt(math.pi))


def _far_reference(gamma: float, rho: float, dim: int) -> float:
    """The tie integral by plain adaptive quadrature in (u, x), u ~ Beta(b, b) (slow, independent)."""

    def inner(u: float) -> float:
        x0 = (rho**2 / (2 * u)) ** gamma if u > 0 else math.inf
        if x0 > 800:
            return 0.0
        amp = 2 * math.sqrt(2 * u) / rho

        def f(x: float) -> float:
            r = amp * x ** (0.5 / gamma)
            return math.exp(-x) * x ** (1 - 1 / gamma) * math.log(r - 1) if r > 1 else 0.0

        return gamma * integrate.quad(f, x0, x0 + 800, points=[x0 * 1.01, x0 + 1, x0 + 5], limit=400, epsrel=1e-11)[0]

    b = (dim - 1) / 2
    dens = lambda u: u ** (b - 1) * (1 - u) ** (b - 1) / special.beta(b, b)  # noqa: E731
    return integrate.quad(lambda u: dens(u) * inner(u), 0, 1, points=[0.5], limit=400, epsrel=1e-10)[0]


@pytest.mark.parametrize("gamma, dim, rho", [(1.0, 2, 0.1), (2.0, 4, 1.0), (0.4, 3, 0.5)])
def test_far_probability_against_adaptive_quadrature(gamma: float, dim: int, rho: float) -> None:
    got = supercritical_far_probability(gamma, 1.0, rho, dim)
    assert got == pytest.approx(_far_reference(gamma, rho, dim), rel=1e-8)


@pytest.mark.parametrize("gamma, dim", [(1.0, 2), (2.0, 4)])
def test_supercritical_asymptotics_against_limit_law(gamma: float, dim: int) -> None:
    """c = 200, 400000 limit-law draws: c E D and c P(D > rho) match the near-tie asymptotics within
    4 SE.  Their O(1/c) relative correction (measured 2% at c = 20, 0.6% at c = 50) is ~0.2% here,
    below a tenth of 4 SE."""
    c, size = 200.0, 400_000
    dist = CriticalLimit(gamma, c).draw_output(size, rng=7, m=16, dim=dim).nearest_distance
    mean, se = mean_se(c * dist)
    assert abs(mean - supercritical_distance_constant(gamma, dim)) <= 4 * se
    for rho in (0.1, 0.5):
        p = float(np.mean(dist > rho))
        se = math.sqrt(p * (1 - p) / size)
        assert abs(p - supercritical_far_probability(gamma, c, rho, dim)) <= 4 * se, rho


def test_supercritical_brute_force_distance_to_nearest_key() -> None:
    """d = 3, n = 1e4, c = 20 on real keys: the scaled |y - K_(1)| has the limit law (KS, level 1e-3)."""
    d, n, c, reps = 3, 10_000, 20.0, 800
    q = np.array([0.0, 0.0, 1.0])
    law = UniformSphere(d)
    tail = law.score_tail(q)
    beta = c * tail.kappa * n
    dist = np.empty(reps)
    for i, child in enumerate(np.random.SeedSequence(4).spawn(reps)):
        keys = law.sample(n, np.random.default_rng(child))
        y = attention(q, keys, beta).output
        dist[i] = np.linalg.norm(y - keys[np.argmax(keys @ q)])
    dist /= tangential_scale(n, tail)
    limit = CriticalLimit(1.0, c).draw_output(40_000, rng=5, m=16).nearest_distance
    assert stats.ks_2samp(dist, limit).statistic < ks_critical(reps, limit.size)
    rho = 0.1
    p_brute = float(np.mean(dist <= rho))
    p_within = supercritical_within_probability(n, tail, c, rho * tangential_scale(n, tail), 2)
    assert abs(p_brute - float(np.mean(limit <= rho))) <= 4 * math.sqrt(p_within * (1 - p_within) * (1 / reps + 1 / limit.size))


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: subcritical_moments(1, 1.0), "d"),
        (lambda: subcritical_moments(3, -1.0), "beta"),
        (lambda: subcritical_moments(3, 0.0, "asymptotic"), "beta"),
        (lambda: subcritical_moments(3, 1.0, "magic"), "method"),
        (lambda: subcritical_output_law(0, 3, 1.0), "n"),
        (lambda: subcritical_output_law(10, 3, 1.0, q=[1.0, 1.0, 0.0]), "q"),
        (lambda: subcritical_output_law(10, 3, 1.0, values=np.eye(2)), "values"),
        (lambda: smooth_density_mean([1.0, 0.0], 0.0, [1.0, 0.0]), "beta"),
        (lambda: smooth_density_mean([1.0, 0.0], 1.0, [1.0, 0.0, 0.0]), "grad_log_density"),
        (lambda: vmf_output_mean([1.0, 0.0], 1.0, [1.0, 0.0], -1.0), "kappa"),
        (lambda: critical_tangential_second_moment(0.0, 1.0), "gamma"),
        (lambda: critical_radial_mean(1.0, float("nan")), "c"),
        (lambda: gaussian_end_second_moment(1.0, [1.0, -1.0]), "c"),
        (lambda: nearest_end_second_moment(0.5, 10.0), "gamma"),
        (lambda: supercritical_distance_constant(0.2, 2), "gamma"),
        (lambda: supercritical_distance_constant(1.0, 0), "dim"),
        (lambda: supercritical_far_probability(1.0, 10.0, 0.0, 2), "rho"),
        (lambda: tangential_scale(10, ScoreTail(1.0, 0.0, kind="atom", gap=0.5, atom_count=1.0)), "tail"),
        (lambda: tangential_scale(10, "uniform"), "tail"),
        (lambda: scaled_tangential_norm([[1.0, 0.0]], [1.0, 0.0, 0.0], 10, ScoreTail(1.0, 1.0, 0.5)), "outputs"),
        (lambda: GaussianOutput(np.zeros(2), np.eye(2), 1.0, 0.0).sample(0), "size"),
    ],
)
def test_bad_input_names_the_argument(call, name: str) -> None:
    with pytest.raises((ValueError, TypeError), match=name):
        call()
