"""Tests of simplex.py: the simplex and clustered almost-simplex models (docs/theory.md section 2).

Every closed form is checked against brute-force softmax attention on explicit tokens.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from attnscale.estimate import estimate_tail
from attnscale.simplex import ClusteredSimplex, SimplexModel
from attnscale.tails import critical_beta


def brute_attention(tokens: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights and outputs of self-attention with Q = K = V = tokens."""
    s = beta * tokens @ tokens.T
    s -= s.max(axis=1, keepdims=True)
    w = np.exp(s)
    w /= w.sum(axis=1, keepdims=True)
    return w, w @ tokens


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.8])
@pytest.mark.parametrize("g", [0.0, 0.7, 1.5, 4.0])
def test_self_weight_and_output_angle_vs_brute_force(rho, g):
    n = 40
    model = SimplexModel(rho)
    y = model.tokens(n)
    gram = y @ y.T
    assert np.allclose(np.diag(gram), 1.0) and np.allclose(gram[~np.eye(n, dtype=bool)], rho)
    w, out = brute_attention(y, g * math.log(n))
    assert model.self_weight(n, g) == pytest.approx(w[0, 0], rel=1e-12)
    cos = out[0] @ out[1] / (np.linalg.norm(out[0]) * np.linalg.norm(out[1]))
    assert model.output_cosine(n, g) == pytest.approx(cos, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_three_limits_of_the_self_weight_and_output_angle(rho):
    model = SimplexModel(rho)
    gc = model.critical_g
    n = 10**18
    assert model.self_weight(n, gc) == pytest.approx(n / (2 * n - 1), rel=1e-12)
    # away from g_c the self weight is n^{(g-g_c)(1-rho)} / (1 + ...) up to (n-1)/n: within 1e-5 at n = 1e18
    assert model.self_weight(n, 0.7 * gc) < 1e-5 and model.self_weight(n, 1.3 * gc) > 1 - 1e-5
    assert [model.limit_self_weight(g) for g in (0.7 * gc, gc, 1.3 * gc)] == [0.0, 0.5, 1.0]
    for g in (0.7 * gc, gc, 1.3 * gc):
        assert model.output_cosine(n, g) == pytest.approx(model.limit_output_cosine(g), abs=1e-5)
    if rho == 0.0:  # the output angle turns at g = 1/2 there
        assert model.output_cosine(n, 0.3) == pytest.approx(1.0, abs=1e-5)
        assert model.output_cosine(n, 0.5) == pytest.approx(0.5, abs=1e-5)


def test_simplex_atom_tail_and_estimated_from_tokens():
    rho, n = 0.4, 300
    model = SimplexModel(rho)
    assert critical_beta(n, model.score_tail()) == pytest.approx(math.log(n - 1) / (1 - rho), rel=1e-14)
    y = model.tokens(n)
    est = estimate_tail(y[0], y)
    assert est.kind == "atom" and est.atom_count == 1.0 and est.gap == pytest.approx(1 - rho, rel=1e-12)
    b = est.critical_beta(10**6)
    assert b.value == pytest.approx(math.log(10**6 - 1) / (1 - rho), rel=1e-12) and b.ci == (b.value, b.value)
    # at beta*(n) the brute-force self weight is 1/2
    w, _ = brute_attention(y, critical_beta(n, model.score_tail()))
    assert w[0, 0] == pytest.approx(0.5, rel=1e-10)


@pytest.mark.parametrize("rho1, rho2, alpha", [(0.0, 0.8, 0.5), (0.2, 0.5, 0.3)])
@pytest.mark.parametrize("g", [0.3, 1.5, 5.0])
def test_clustered_masses_vs_brute_force(rho1, rho2, alpha, g):
    n = 64
    model = ClusteredSimplex(rho1, rho2, alpha)
    y = model.tokens(n)
    gram = y @ y.T
    off = gram[~np.eye(n, dtype=bool)]
    assert np.allclose(np.diag(gram), 1.0)
    assert off.min() >= rho1 - 1e-12 and off.max() <= rho2 + 1e-12
    c = model.cluster_size(n)
    w, _ = brute_attention(y, g * math.log(n))
    masses = model.masses(n, g)
    assert masses[0] == pytest.approx(w[0, 0], rel=1e-12)
    assert masses[1] == pytest.approx(w[0, 1:c].sum(), rel=1e-12)
    assert masses[2] == pytest.approx(w[0, c:].sum(), rel=1e-12)


def test_clustered_middle_phase_and_limits():
    model = ClusteredSimplex(0.0, 0.8, 0.5)
    lo, hi = model.boundaries()
    assert (lo, hi) == (pytest.approx(0.625), pytest.approx(2.5))
    n = 10**18
    for g, phase in ((0.4, "collapse"), (1.5, "cluster"), (4.0, "identity")):
        assert model.limit_phase(g) == phase
        masses = model.masses(n, g)
        assert ("identity", "cluster", "collapse")[int(np.argmax(masses))] == phase
        assert max(masses) > 0.99
    # without room for a middle phase both boundaries are 1/(1-rho1)
    flat = ClusteredSimplex(0.3, 0.35, 0.1)
    assert flat.boundaries() == (pytest.approx(1 / 0.7), pytest.approx(1 / 0.7))
    assert flat.limit_phase(1.0) == "collapse" and flat.limit_phase(2.0) == "identity"


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: SimplexModel(1.0), "rho"),
        (lambda: SimplexModel(-0.1), "rho"),
        (lambda: SimplexModel(float("nan")), "rho"),
        (lambda: SimplexModel(0.5).self_weight(1, 1.0), "n"),
        (lambda: SimplexModel(0.5).self_weight(10, -1.0), "g"),
        (lambda: ClusteredSimplex(0.5, 0.4, 0.5), "rho2"),
        (lambda: ClusteredSimplex(0.1, 0.4, 1.0), "alpha"),
    ],
)
def test_bad_input_names_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()
