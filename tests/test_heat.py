"""Tests of attnscale.heat (docs/theory.md section 6) against independent computations.

Independent references: closed forms of the vMF mixture's attention map (the tilted law of a vMF
is a vMF, so T is a ratio of Bessel functions), finite differences of the density in the ambient
space, scipy quadrature, brute-force sampling, and one layer of attention on perturbed tokens.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from attnscale.attention import attention
from attnscale.heat import (
    VMFMixture,
    attention_displacement_exact,
    attention_map_exact,
    attention_map_sampled,
    backward_heat_circle,
    circle_quantiles,
    fit_order,
    heat_step_errors,
    kuiper_distance,
    layer_amplification,
    predicted_density,
    predicted_displacement,
    pushforward_density,
    reference_density,
    sampled_map_law,
    self_attention_layers,
    sphere_points,
    stacked_layers_circle,
)
from attnscale.heat import _tangent_basis
from attnscale.laws import tangent_basis
from attnscale.limits import tangential_variance_exact

SPHERES = (1, 2)


# ---------------------------------------------------------------------------
# Independent references (test-only)
# ---------------------------------------------------------------------------


def log_vmf_partition(d: int, r: np.ndarray) -> np.ndarray:
    r"""``log int_{S^{d-1}} e^{r <m, x>} dsigma``: ``2 pi I_0(r)`` (d=2), ``4 pi sinh(r)/r`` (d=3)."""
    r = np.asarray(r, dtype=float)
    if d == 2:
        return math.log(2 * math.pi) + np.log(special.ive(0, r)) + r
    safe = np.where(r > 0, r, 1.0)
    return np.where(r > 0, math.log(4 * math.pi) + r + np.log(-np.expm1(-2 * safe) / (2 * safe)), math.log(4 * math.pi))


def mean_resultant(d: int, r: np.ndarray) -> np.ndarray:
    """``A_d(r)``: ``I_1/I_0`` (d=2), ``coth r - 1/r`` (d=3)."""
    if d == 2:
        return special.ive(1, r) / special.ive(0, r)
    return 1.0 / np.tanh(r) - 1.0 / r


def closed_form_map(rho: VMFMixture, x: np.ndarray, beta: float) -> np.ndarray:
    r"""``T_beta(x)`` in closed form: ``e^{beta<x,K>} vMF(mu_j, kappa_j)`` is a vMF with parameter ``beta x + kappa_j mu_j``."""
    d = rho.d
    nu = beta * x[None, :] + rho.kappas[:, None] * rho.mus
    r = np.linalg.norm(nu, axis=1)
    log_c = np.log(rho.weights) + np.array([-log_vmf_partition(d, k) for k in rho.kappas])
    lw = log_c + log_vmf_partition(d, r)
    w = np.exp(lw - lw.max())
    w /= w.sum()
    return (w * mean_resultant(d, r)) @ (nu / r[:, None])


def projected_map(rho: VMFMixture, x: np.ndarray, beta: float) -> np.ndarray:
    t = closed_form_map(rho, x, beta)
    return t / np.linalg.norm(t)


def homogeneous(f, y: np.ndarray) -> float:
    """``f(y / |y|)``: the 0-homogeneous extension, whose ambient Laplacian at |y| = 1 is the spherical one."""
    return float(f(y / np.linalg.norm(y)))


def random_points(sphere: int, m: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    x = g.standard_normal((m, sphere + 1))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def whitened_errors(rho: VMFMixture, x: np.ndarray, beta: float, n: int, reps: int, seed: int) -> np.ndarray:
    """``reps`` sampled outputs per query, tangential errors whitened by the predicted covariance."""
    law = sampled_map_law(rho, x, beta, n)
    g = np.random.default_rng(seed)
    z = []
    for _ in range(reps):
        y = attention_map_sampled(rho.sample(n, g), x, beta)
        for q in range(x.shape[0]):
            basis = _tangent_basis(x[q])
            chol = np.linalg.cholesky(basis @ law.covariance[q] @ basis.T)
            z.append(np.linalg.solve(chol, basis @ (y[q] - law.mean[q])))
    return np.array(z)


# ---------------------------------------------------------------------------
# The density and its calculus
# ---------------------------------------------------------------------------


def test_density_matches_closed_form_vmf_densities():
    x = random_points(1, 5, 0)
    rho = VMFMixture.on_circle([0.3], [2.0])
    ref = np.exp(2.0 * np.cos(np.arctan2(x[:, 1], x[:, 0]) - 0.3)) / (2 * np.pi * special.i0(2.0))
    np.testing.assert_allclose(rho.density(x), ref, rtol=1e-13)
    x = random_points(2, 5, 1)
    rho = VMFMixture([[0.0, 0.0, 1.0]], [5.0])
    np.testing.assert_allclose(rho.density(x), 5.0 * np.exp(5.0 * x[:, 2]) / (4 * np.pi * np.sinh(5.0)), rtol=1e-13)


@pytest.mark.parametrize("sphere", SPHERES)
def test_density_integrates_to_one(sphere):
    rho = reference_density(sphere)
    if sphere == 1:  # trapezoid on a periodic grid: spectrally accurate
        a = 2 * np.pi * np.arange(4096) / 4096
        total = rho.density(np.column_stack([np.cos(a), np.sin(a)])).mean() * 2 * np.pi
    else:  # Gauss-Legendre in z times trapezoid in longitude
        z, wz = np.polynomial.legendre.leggauss(200)
        lon = 2 * np.pi * np.arange(400) / 400
        zz, ll = np.meshgrid(z, lon, indexing="ij")
        r = np.sqrt(1 - zz**2)
        pts = np.column_stack([(r * np.cos(ll)).ravel(), (r * np.sin(ll)).ravel(), zz.ravel()])
        total = (rho.density(pts).reshape(zz.shape).mean(axis=1) * 2 * np.pi) @ wz
    assert abs(total - 1.0) < 1e-12


@pytest.mark.parametrize("sphere", SPHERES)
def test_gradient_and_laplacian_against_finite_differences(sphere):
    # Central differences of the 0-homogeneous extension in R^d (its gradient is the surface gradient,
    # its ambient Laplacian at |y| = 1 the spherical one).
    # Gradient, h = 1e-6: truncation h^2/6 |f'''| ~ 2e-13 kappa^3 ~ 3e-11, round-off ~ 1e-16 |log rho| / h ~ 3e-10;
    # tolerance 1e-8. Laplacian, h = 2e-4: truncation h^2/12 |f''''| ~ 3e-9 kappa^4 rho ~ 1e-7 of max|Laplace rho|,
    # round-off ~ 1e-16 rho / h^2 ~ 1e-9 of it; tolerance 1e-6 of max|Laplace rho|.
    rho = reference_density(sphere)
    d = rho.d
    x = random_points(sphere, 12, 2)
    eye = np.eye(d)
    lap_scale = np.abs(rho.laplacian(sphere_points(sphere, 400))).max()
    for p in x:
        h = 1e-6
        grad = np.array([(homogeneous(rho.log_density, p + h * e) - homogeneous(rho.log_density, p - h * e)) / (2 * h)
                         for e in eye])
        np.testing.assert_allclose(rho.grad_log_density(p), grad, rtol=0, atol=1e-8)
        h = 2e-4
        f0 = homogeneous(rho.density, p)
        lap = sum(homogeneous(rho.density, p + h * e) - 2 * f0 + homogeneous(rho.density, p - h * e) for e in eye) / h**2
        assert abs(float(rho.laplacian(p)) - lap) < 1e-6 * lap_scale
    np.testing.assert_allclose((rho.grad_log_density(x) * x).sum(1), 0.0, atol=1e-14)  # tangent


def test_fourier_coefficients_against_quadrature():
    rho = reference_density(1)
    c = rho.fourier_coefficients(12)
    for k in (0, 1, 5, 12):
        re = integrate.quad(lambda t: float(rho.density([np.cos(t), np.sin(t)])) * np.cos(k * t), 0, 2 * np.pi, epsabs=1e-14)[0]
        im = -integrate.quad(lambda t: float(rho.density([np.cos(t), np.sin(t)])) * np.sin(k * t), 0, 2 * np.pi, epsabs=1e-14)[0]
        assert abs(c[k] - (re + 1j * im)) < 1e-12


# ---------------------------------------------------------------------------
# The exact map: quadrature against closed forms
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("sphere", SPHERES)
@pytest.mark.parametrize("beta", [0.0, 0.5, 7.0, 300.0, 3e4, 3e6])
def test_exact_map_against_closed_form(sphere, beta):
    rho = reference_density(sphere)
    x = sphere_points(sphere, 23)
    got = attention_map_exact(rho, x, beta)
    ref = np.array([closed_form_map(rho, p, beta) for p in x])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sphere", SPHERES)
def test_exact_map_of_a_sharp_mixture_against_closed_form(sphere):
    # kappa = 200: the density varies on a scale 0.07 rad, far from the query too
    g = np.random.default_rng(10)
    mus = g.standard_normal((3, sphere + 1))
    rho = VMFMixture(mus / np.linalg.norm(mus, axis=1, keepdims=True), [50.0, 200.0, 5.0], [0.3, 0.3, 0.4])
    x = random_points(sphere, 4, 11)
    for beta in (3.0, 3e4):
        ref = np.array([closed_form_map(rho, p, beta) for p in x])
        np.testing.assert_allclose(attention_map_exact(rho, x, beta), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("beta", [10.0, 1e3, 1e8, 1e12])
def test_uniform_mean_resultant_at_any_beta(beta):
    # Uniform keys: T = A_d(beta) x. S^2: 1 - A_3 = 1/beta - 2/(e^{2 beta} - 1) (exactly 1/beta at large beta);
    # S^1: 1 - I_1/I_0 = 1/(2b) + 1/(8b^2) + 1/(8b^3) + 25/(128 b^4) + ... (Hankel; used for b >= 1e3).
    u2 = VMFMixture([[0.0, 0.0, 1.0]], [0.0])
    d2 = attention_displacement_exact(u2, [0.0, 0.0, 1.0], beta)
    ref2 = 1.0 / beta - 2.0 / np.expm1(min(2.0 * beta, 700.0))
    assert abs(-d2[2] - ref2) < 1e-12 * ref2
    u1 = VMFMixture.on_circle([0.0], [0.0])
    d1 = attention_displacement_exact(u1, [1.0, 0.0], beta)
    if beta < 1e3:
        ref1 = 1.0 - special.ive(1, beta) / special.ive(0, beta)
    else:
        ref1 = 1 / (2 * beta) + 1 / (8 * beta**2) + 1 / (8 * beta**3) + 25 / (128 * beta**4)
    assert abs(-d1[0] - ref1) < 1e-11 * ref1
    assert abs(d1[1]) < 1e-30 and np.all(np.isfinite(d1))


def test_predicted_displacement_of_uniform_and_extreme_beta():
    u = VMFMixture([[0.0, 0.0, 1.0]], [0.0])
    np.testing.assert_allclose(predicted_displacement(u, [0.6, 0.0, 0.8], 4.0), -0.25 * np.array([0.6, 0.0, 0.8]))
    rho = reference_density(2)
    x = sphere_points(2, 5)
    for beta in (1e9, 1e12):
        err = attention_displacement_exact(rho, x, beta) - predicted_displacement(rho, x, beta)
        # O(beta^-2) plus round-off: the mean of tangential parts of size beta^-1/2 cancels to O(1/beta),
        # losing ~1e-16 * beta^-1/2 absolute, i.e. ~1e-10 of the displacement at beta = 1e12
        assert np.all(np.abs(err) < 100.0 / beta**2 + 1e-9 / beta)
        pf = pushforward_density(rho, x, beta)
        assert np.all(np.isfinite(pf.density))
        np.testing.assert_allclose(pf.density, rho.density(pf.points), rtol=1e-6)


# ---------------------------------------------------------------------------
# One layer's pushed-forward density
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("sphere", SPHERES)
def test_pushforward_density_against_finite_difference_jacobian(sphere):
    # Jacobian of the closed-form projected map by central differences along tangent directions
    # (h = 1e-5: truncation ~ h^2 ~ 1e-10, round-off ~ 1e-16/h ~ 1e-11), change of variables.
    rho, beta, h = reference_density(sphere), 20.0, 1e-5
    x = random_points(sphere, 6, 3)
    pf = pushforward_density(rho, x, beta)
    for p, y, dens in zip(x, pf.points, pf.density):
        np.testing.assert_allclose(y, projected_map(rho, p, beta), atol=1e-13)
        u, v = _tangent_basis(p), _tangent_basis(y)
        cols = []
        for e in u:
            plus = projected_map(rho, np.cos(h) * p + np.sin(h) * e, beta)
            minus = projected_map(rho, np.cos(h) * p - np.sin(h) * e, beta)
            cols.append(v @ (plus - minus) / (2 * h))
        jac = np.array(cols).T
        assert abs(dens - float(rho.density(p)) / abs(np.linalg.det(jac))) < 1e-8 * dens


def test_pushforward_matches_heat_step_to_second_order():
    rho = reference_density(1)
    x = sphere_points(1, 64)
    for beta in (200.0, 2000.0):
        pf = pushforward_density(rho, x, beta)
        err = np.abs(pf.density - predicted_density(rho, pf.points, beta)).max()
        assert err * beta**2 < 8.6  # THEORY 6: beta^2 sup error increases to 8.5 (8.52 by extrapolation)


# ---------------------------------------------------------------------------
# Error orders (THEORY 6: -2, -2, -1)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("sphere,points", [(1, 256), (2, 60)])
def test_error_orders(sphere, points):
    err = heat_step_errors(reference_density(sphere), np.geomspace(100.0, 1e4, 5), sphere_points(sphere, points))
    orders = err.orders()
    assert abs(orders["displacement_order"] + 2.0) < 0.1
    assert abs(orders["density_order"] + 2.0) < 0.1
    assert abs(orders["density_order_without_laplacian"] + 1.0) < 0.1


def test_density_constant_on_the_circle():
    # THEORY 6 (S^1): beta^2 * sup density error -> 8.5 (two digits).
    err = heat_step_errors(reference_density(1), [3162.27766, 1e4], sphere_points(1, 1024))
    scaled = err.density * err.betas**2
    b1, b2 = err.betas
    limit = (b2 * scaled[1] - b1 * scaled[0]) / (b2 - b1)  # remove the 1/beta correction
    assert abs(limit - 8.5) < 0.05 + abs(limit - scaled[1])


def test_fit_order():
    assert fit_order([1.0, 10.0, 100.0], [5.0, 0.5, 0.05]) == -1.0


# ---------------------------------------------------------------------------
# Finite n: sampled map against the exact map within the predicted Gaussian error
# ---------------------------------------------------------------------------


def test_sampled_map_law_of_uniform_keys_matches_theory_section_3():
    for d in (2, 3):
        mu = np.eye(d)[-1]
        u = VMFMixture([mu], [0.0])
        for beta in (3.0, 30.0):
            law = sampled_map_law(u, mu, beta, 1000)
            assert abs(law.covariance[0, 0] * 1000 / tangential_variance_exact(d, beta) - 1) < 1e-12
            np.testing.assert_allclose(law.exact, mean_resultant(d, beta) * mu, atol=1e-14)


@pytest.mark.parametrize("sphere", SPHERES)
def test_sampled_map_within_predicted_gaussian_error(sphere):
    rho = reference_density(sphere)
    x = random_points(sphere, 3, 4)
    z = whitened_errors(rho, x, beta=30.0, n=2000, reps=150, seed=5 + sphere).ravel()
    # whitened errors: mean 0 and variance 1 under the delta-method law; 4 SE intervals
    assert abs(z.mean()) < 4 * z.std(ddof=1) / math.sqrt(z.size)
    c = z - z.mean()
    var = (c**2).sum() / (z.size - 1)
    se_var = math.sqrt(((c**4).mean() - var**2) / z.size)
    assert abs(var - 1.0) < 4 * se_var


def test_attention_map_sampled_agrees_with_attention():
    keys = random_points(2, 50, 6)
    x = random_points(2, 3, 7)
    got = attention_map_sampled(keys, x, 4.0)
    for q, y in zip(x, got):
        np.testing.assert_allclose(y, attention(q / np.linalg.norm(q), keys, 4.0).output, rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------
# Stacked layers and the backward heat flow on the circle
# ---------------------------------------------------------------------------


def test_backward_heat_at_time_zero_and_its_derivative():
    rho = reference_density(1)
    theta = np.linspace(-np.pi, np.pi, 37)
    pts = np.column_stack([np.cos(theta), np.sin(theta)])
    h0 = backward_heat_circle(rho, 0.0)
    np.testing.assert_allclose(h0.density(theta), rho.density(pts), rtol=1e-13)
    # d rho_tau / d tau = -Laplace rho at tau = 0 (closed-form Laplacian): central difference in tau is
    # not available (tau >= 0), so a forward difference with its O(tau) error, tau = 1e-7.
    tau = 1e-7
    dt = (backward_heat_circle(rho, tau).density(theta) - h0.density(theta)) / tau
    np.testing.assert_allclose(dt, -rho.laplacian(pts), atol=1e-5 * np.abs(rho.laplacian(pts)).max())
    for t in (1.5, 4.0):
        cdf = float(h0.cdf(t))
        ref = integrate.quad(lambda s: float(rho.density([np.cos(s), np.sin(s)])), 0.0, t, epsabs=1e-14)[0]
        assert abs(cdf - ref) < 1e-12
    assert backward_heat_circle(rho, 0.05).truncation < backward_heat_circle(rho, 0.1).truncation


def test_circle_quantiles_and_kuiper_distance():
    rho = reference_density(1)
    th = circle_quantiles(rho, 7)
    for i, t in enumerate(th):
        mass = integrate.quad(lambda s: float(rho.density([np.cos(s), np.sin(s)])), 0.0, t, epsabs=1e-14)[0]
        assert abs(mass - (i + 0.5) / 7) < 1e-12
    heat = backward_heat_circle(rho, 0.0)
    assert abs(kuiper_distance(th, heat.cdf) - 1 / 7) < 1e-12
    # brute force: sup - inf of F_emp - F over a fine grid and at the jumps
    pts = np.sort(np.mod(np.random.default_rng(8).uniform(-4, 4, 40), 2 * np.pi))
    grid = np.sort(np.concatenate([np.linspace(0, 2 * np.pi, 20001), pts, pts - 1e-12]))
    diff = np.searchsorted(pts, grid, side="right") / pts.size - heat.cdf(grid)
    assert abs(kuiper_distance(pts, heat.cdf) - (diff.max() - diff.min())) < 1e-9


def test_self_attention_layer_is_attention_per_token():
    x = random_points(1, 30, 9)
    out = self_attention_layers(x, 12.0, 2)
    assert out.shape == (3, 30, 2)
    for i in range(30):
        y = attention(out[1, i], out[1], 12.0).output
        np.testing.assert_allclose(out[2, i], y / np.linalg.norm(y), atol=1e-14)


@pytest.mark.parametrize("beta", [50.0, 200.0])
def test_layer_amplification_against_one_layer_on_perturbed_tokens(beta):
    # 2000 equispaced tokens displaced by a sin(k theta): after one layer the displacement (and the
    # density's mode k) is s_k times larger, up to O(a^2) nonlinearity and the (spectrally small)
    # error of the discrete sum; a = 1e-7.
    n, a = 2000, 1e-7
    base = 2 * np.pi * np.arange(n) / n
    for k in (1, 4, 10, 20, 35):
        th = base + a * np.sin(k * base)
        after = self_attention_layers(np.column_stack([np.cos(th), np.sin(th)]), beta, 1)[1]
        shift = np.angle(np.exp(1j * (np.arctan2(after[:, 1], after[:, 0]) - base)))
        assert abs(2 * np.mean(shift * np.sin(k * base)) / a - float(layer_amplification(k, beta))) < 1e-6


def test_stacked_layers_follow_the_heat_flow_at_first():
    run = stacked_layers_circle(reference_density(1), 400.0, 12, 1000)
    assert abs(run.kuiper[0] - 1e-3) < 1e-12  # quantile tokens: the smallest Kuiper distance, 1/n
    assert np.all(run.heat_min > 0) and np.all(run.truncation < 1e-12)
    sampled = stacked_layers_circle(reference_density(1), 200.0, 2, 1000, start="sample", rng=0)
    assert sampled.kuiper[0] > 3e-3  # i.i.d. tokens carry O(n^-1/2) sampling noise from the start


def test_stacked_layers_converge_to_the_heat_flow_at_first_order():
    # L = tau * beta explicit Euler steps of length 1/beta: at fixed tau = 0.03 the distance to the
    # backward heat flow (beyond the 1/n of the quantile tokens) is O(1/beta). n = 2000 keeps the token
    # spacing at the density's minimum (1 / (n rho_min) = 0.03) below the kernel width beta^-1/2 = 0.035.
    betas = np.array([400.0, 800.0])
    excess = [stacked_layers_circle(reference_density(1), b, round(0.03 * b), 2000).kuiper[-1] - 5e-4 for b in betas]
    assert abs(fit_order(betas, excess) + 1.0) < 0.1


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: VMFMixture([[1.0, 0.0, 0.0, 0.0]], [1.0]), "mus"),
        (lambda: VMFMixture([[2.0, 0.0]], [1.0]), "mus"),
        (lambda: VMFMixture([[1.0, 0.0]], [-1.0]), "kappas"),
        (lambda: VMFMixture([[1.0, 0.0]], [1.0, 2.0]), "kappas"),
        (lambda: VMFMixture([[1.0, 0.0], [0.0, 1.0]], [1.0, 2.0], [1.0, -1.0]), "weights"),
        (lambda: reference_density(3), "sphere"),
        (lambda: attention_map_exact(reference_density(1), [1.0, 0.0], -1.0), "beta"),
        (lambda: attention_map_exact(reference_density(1), [1.0, 0.0], float("nan")), "beta"),
        (lambda: attention_map_exact(reference_density(1), [1.0, 1.0], 1.0), "x"),
        (lambda: attention_map_exact(reference_density(1), [1.0, 0.0, 0.0], 1.0), "x"),
        (lambda: attention_map_exact("rho", [1.0, 0.0], 1.0), "density"),
        (lambda: predicted_displacement(reference_density(1), [1.0, 0.0], 0.0), "beta"),
        (lambda: predicted_density(reference_density(1), [[1.0, 0.0], [0.5, 0.5]], 1.0), "y"),
        (lambda: sampled_map_law(reference_density(1), [1.0, 0.0], 1.0, 0), "n"),
        (lambda: attention_map_sampled([[1.0, 0.0]], [1.0, 0.0, 0.0], 1.0), "x"),
        (lambda: backward_heat_circle(reference_density(1), -0.1), "tau"),
        (lambda: backward_heat_circle(reference_density(2), 0.1), "density"),
        (lambda: heat_step_errors(reference_density(1), [10.0, -1.0], sphere_points(1, 4)), "betas[1]"),
        (lambda: heat_step_errors(reference_density(1), [10.0], [[1.0, 0.0, 0.0]]), "points"),
        (lambda: layer_amplification(-1, 10.0), "k"),
        (lambda: layer_amplification(1.5, 10.0), "k"),
        (lambda: stacked_layers_circle(reference_density(1), 10.0, 1, 10, start="grid"), "start"),
        (lambda: self_attention_layers([[1.0, 0.0]], 1.0, -1), "layers"),
        (lambda: kuiper_distance([0.1, 0.2], "F"), "cdf"),
        (lambda: fit_order([1.0, 2.0], [1.0, 0.0]), "errors"),
        (lambda: sphere_points(1, 0), "count"),
        (lambda: tangent_basis([1.0, 1.0, 0.0, 0.0]), "q"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name.replace("[", r"\[").replace("]", r"\]")):
        call()
