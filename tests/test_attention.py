"""Tests of attention.py: exact weights and streaming statistics (docs/theory.md section 1).

Independent references: mpmath at 60 digits (scores summed exactly from the float
inputs, then softmax, entropy, n_eff, top-k mass and output in high precision), and
statistics computed directly from the weights.  Tolerances come from a float64
round-off bound (``roundoff`` below), never tuned to pass.
"""

from __future__ import annotations

import math
import sys
import tracemalloc

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnscale.attention import (
    DEFAULT_TOP_K,
    Attention,
    AttentionStats,
    _cpu_rows,
    attention,
    attention_stats,
)

EPS = np.finfo(np.float64).eps
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)


def _torch():
    """PyTorch, which CI installs (the ``torch`` extra): a missing torch fails, never skips."""
    try:
        import torch
    except ImportError:
        pytest.fail("PyTorch is not installed: install the torch extra, pip install -e '.[torch]'")
    return torch


# ---------------------------------------------------------------------------
# References and the round-off bound
# ---------------------------------------------------------------------------


def mp_reference(q, keys, beta, top_k=DEFAULT_TOP_K, values=None):
    """Everything of section 1 in 60-digit arithmetic, from the float inputs taken as exact."""
    q = np.asarray(q, dtype=float)
    keys = np.asarray(keys, dtype=float)
    with mpmath.workdps(60):
        qm = [mpmath.mpf(float(x)) for x in q]
        s = [mpmath.fsum(a * mpmath.mpf(float(b)) for a, b in zip(qm, row)) for row in keys]
        m = max(s)
        t = [mpmath.mpf(float(beta)) * (si - m) for si in s]
        e = [mpmath.exp(ti) for ti in t]
        s0 = mpmath.fsum(e)
        w = [ei / s0 for ei in e]
        y = [mpmath.fsum(wi * mpmath.mpf(float(k)) for wi, k in zip(w, col)) for col in keys.T]
        if values is not None:
            y = [mpmath.fsum(mpmath.mpf(float(v)) * yj for v, yj in zip(row, y)) for row in np.asarray(values)]
        return {
            "weights": np.array([float(x) for x in w]),
            "max_weight": float(max(w)),
            # log S0 = log1p(S0 - 1): the largest term is exactly 1, and 60 digits of S0 itself
            # would drop S0 - 1 < 1e-60 (one key holding nearly all the weight)
            "entropy": float(
                mpmath.log1p(mpmath.fsum(sorted(e)[:-1])) - mpmath.fsum(ei * ti for ei, ti in zip(e, t)) / s0
            ),
            "n_eff": float(s0**2 / mpmath.fsum(ei**2 for ei in e)),
            "top_mass": float(mpmath.fsum(sorted(w, reverse=True)[:top_k])),
            "output": np.array([float(x) for x in y]),
        }


def roundoff(q, keys, beta):
    r"""First-order float64 error bound ``(B, tau)`` for one attention computation.

    A computed score has error at most :math:`d\,\epsilon \sum_j |q_j K_{ij}|` (dot product),
    so a gap :math:`t_i = \beta (s_i - m)` has absolute error at most
    ``tau = 2 beta d eps max_i sum_j |q_j K_ij|`` plus ``2 eps |t_i|`` (subtraction, product);
    ``exp`` adds ``eps`` and a sum of ``n`` terms ``n eps``.  So every ``e^{t_i}`` and every
    sum of them is exact to the relative error ``B = tau + eps (2 T + 2 n + 8)``, with ``T``
    the largest gap below the ``exp`` underflow (``|t| <= 746``).  Quantities built from ``k``
    such factors are checked to ``4 k B``: a factor 2 for second-order terms and 2 of margin.
    """
    q = np.asarray(q, dtype=float)
    keys = np.asarray(keys, dtype=float)
    n, d = keys.shape
    tau = 0.0 if scores_are_exact(q, keys) else 2.0 * beta * d * EPS * float(np.max(np.abs(keys) @ np.abs(q)))
    return tau + EPS * (2.0 * 746.0 + 2.0 * n + 8.0), tau


def scores_are_exact(q, keys):
    """Entries in (1/64) Z with |q_j| <= 1, |K_ij| <= 4: every product is in (1/4096) Z and every
    partial sum of at most 8 of them is below 2^6, so any summation order is exact in float64."""
    q64, k64 = np.asarray(q) * 64, np.asarray(keys) * 64
    return bool(
        keys.shape[1] <= 8
        and np.all(q64 == np.round(q64))
        and np.all(k64 == np.round(k64))
        and np.max(np.abs(q)) <= 1
        and np.max(np.abs(keys)) <= 4
    )


def assert_stats_close(stats, ref, q, keys, beta, sides=1):
    """Compare AttentionStats to reference values within the round-off bound.

    ``sides=2`` when ``ref`` is itself a float64 computation (each side carries the bound).
    """
    b, tau = roundoff(q, keys, beta)
    b, tau = sides * b, sides * tau
    assert stats.max_weight == pytest.approx(ref["max_weight"], rel=4 * b, abs=0)
    assert stats.top_mass == pytest.approx(ref["top_mass"], rel=8 * b, abs=0)
    assert stats.n_eff == pytest.approx(ref["n_eff"], rel=12 * b, abs=0)
    # both terms of H = log S0 - S1/S0 are >= 0: relative accuracy, plus the score errors
    assert abs(stats.entropy - ref["entropy"]) <= 8 * (b * ref["entropy"] + tau) + 1e-300
    scale = float(np.max(np.abs(ref["output"]))) + float(np.max(np.abs(keys)))
    np.testing.assert_allclose(stats.output, ref["output"], rtol=0, atol=8 * b * scale + 1e-300)


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

BETAS = st.one_of(st.sampled_from([0.0, 0.5, 3.0, 40.0, 1e3, 1e6, 1e12]), st.floats(0.0, 100.0))


@st.composite
def dyadic_case(draw, max_n=30, max_d=5):
    """Entries in (1/8) Z, |q_j| <= 1, |K_ij| <= 2: every score is exact in float64, at any beta."""
    d = draw(st.integers(1, max_d))
    n = draw(st.integers(1, max_n))
    q = np.array(draw(st.lists(st.integers(-8, 8), min_size=d, max_size=d)), dtype=float) / 8
    keys = np.array(draw(st.lists(st.integers(-16, 16), min_size=n * d, max_size=n * d)), dtype=float)
    return q, keys.reshape(n, d) / 8, draw(BETAS)


@st.composite
def float_case(draw, max_n=30, max_d=5):
    """Arbitrary floats, moderate beta: the score round-off enters the bound through tau."""
    d = draw(st.integers(1, max_d))
    n = draw(st.integers(1, max_n))
    real = st.floats(-3.0, 3.0, allow_subnormal=False)
    q = np.array(draw(st.lists(real, min_size=d, max_size=d)))
    keys = np.array(draw(st.lists(real, min_size=n * d, max_size=n * d))).reshape(n, d)
    return q, keys, draw(st.floats(0.0, 50.0))


CASES = st.one_of(dyadic_case(), float_case())
CHUNKS = st.sampled_from([None, 1, 2, 3, 7, 64])


# ---------------------------------------------------------------------------
# attention: weights and output
# ---------------------------------------------------------------------------


@SETTINGS
@given(CASES)
def test_attention_matches_mpmath(case):
    q, keys, beta = case
    att = attention(q, keys, beta)
    ref = mp_reference(q, keys, beta)
    b, _ = roundoff(q, keys, beta)
    assert isinstance(att, Attention)
    np.testing.assert_allclose(att.weights, ref["weights"], rtol=8 * b, atol=1e-300)
    scale = float(np.max(np.abs(keys)))
    np.testing.assert_allclose(att.output, ref["output"], rtol=0, atol=8 * b * scale + 1e-300)
    assert abs(att.weights.sum() - 1.0) <= (keys.shape[0] + 2) * EPS


@SETTINGS
@given(CASES, st.data())
def test_weights_are_permutation_equivariant(case, data):
    q, keys, beta = case
    perm = np.array(data.draw(st.permutations(range(keys.shape[0]))), dtype=int)
    b, _ = roundoff(q, keys, beta)
    att, permuted = attention(q, keys, beta), attention(q, keys[perm], beta)
    np.testing.assert_allclose(permuted.weights, att.weights[perm], rtol=16 * b, atol=1e-300)
    scale = float(np.max(np.abs(keys)))
    np.testing.assert_allclose(permuted.output, att.output, rtol=0, atol=16 * b * scale + 1e-300)


@SETTINGS
@given(dyadic_case(), st.integers(-8, 8))
def test_adding_a_constant_to_all_scores_changes_nothing(case, shift):
    """keys -> keys + c q adds c |q|^2 to every score: weights unchanged, output moves by c V q.

    Entries in (1/64) Z keep every shifted key and score exact, so the gaps are identical.
    """
    q, keys, beta = case
    c = shift / 8
    shifted = keys + c * q
    b, _ = roundoff(q, shifted, beta)
    att, moved = attention(q, keys, beta), attention(q, shifted, beta)
    np.testing.assert_array_equal(moved.weights, att.weights)
    np.testing.assert_allclose(moved.output, att.output + c * q, rtol=0, atol=8 * b * 3.0)
    st_a, st_b = attention_stats(q, keys, beta), attention_stats(q, shifted, beta)
    for name in ("max_weight", "entropy", "n_eff", "top_mass"):
        assert getattr(st_b, name) == getattr(st_a, name)


def test_attention_examples_by_hand():
    # scores 1, 0, -1 at beta = log 2: weights proportional to 4, 2, 1
    keys = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    att = attention([1.0, 0.0], keys, math.log(2.0))
    np.testing.assert_allclose(att.weights, np.array([4.0, 2.0, 1.0]) / 7.0, rtol=1e-15)
    np.testing.assert_allclose(att.output, np.array([3.0, 2.0]) / 7.0, rtol=1e-15)
    assert not att.weights.flags.writeable and not att.output.flags.writeable


# ---------------------------------------------------------------------------
# attention_stats against references
# ---------------------------------------------------------------------------


@SETTINGS
@given(CASES, CHUNKS, st.integers(1, 12))
def test_stats_match_mpmath(case, chunk_size, top_k):
    q, keys, beta = case
    stats = attention_stats(q, keys, beta, top_k=top_k, chunk_size=chunk_size)
    assert isinstance(stats, AttentionStats) and stats.top_k == top_k
    assert_stats_close(stats, mp_reference(q, keys, beta, top_k), q, keys, beta)


def as_dict(stats):
    return {name: getattr(stats, name) for name in ("max_weight", "entropy", "n_eff", "top_mass", "output")}


def stats_from_weights(att, top_k):
    """The statistics computed directly from the full weight vector."""
    w = att.weights
    pos = w[w > 0]
    return {
        "max_weight": float(w.max()),
        "entropy": float(-(pos * np.log(pos)).sum()),
        "n_eff": float(1.0 / (w @ w)),
        "top_mass": float(np.sort(w)[::-1][:top_k].sum()),
        "output": att.output,
    }


@pytest.mark.parametrize("n", [1, 2, 9, 1000, 4097])
def test_stats_equal_stats_of_the_weights_for_every_chunking(n):
    """Chunk boundaries anywhere (1 row, n - 1, n, n + 1 rows, default) give the same statistics."""
    rng = np.random.default_rng(n)
    d, beta, top_k = 4, 6.0, 5
    keys = rng.standard_normal((n, d))
    q = rng.standard_normal(d)
    ref = stats_from_weights(attention(q, keys, beta), top_k)
    b, tau = roundoff(q, keys, beta)
    for chunk_size in sorted({1, 7, max(1, n - 1), n, n + 1}) + [None]:
        stats = attention_stats(q, keys, beta, top_k=top_k, chunk_size=chunk_size)
        assert stats.max_weight == pytest.approx(ref["max_weight"], rel=8 * b)
        assert stats.top_mass == pytest.approx(ref["top_mass"], rel=16 * b)
        assert stats.n_eff == pytest.approx(ref["n_eff"], rel=24 * b)
        # -sum w log w from the weights: abs error <= B (H + 1) per factor
        assert abs(stats.entropy - ref["entropy"]) <= 16 * (b * (ref["entropy"] + 1.0) + tau)
        np.testing.assert_allclose(stats.output, ref["output"], rtol=0, atol=16 * b * np.abs(keys).max())


@SETTINGS
@given(CASES, st.data(), CHUNKS)
def test_stats_are_permutation_invariant(case, data, chunk_size):
    q, keys, beta = case
    perm = np.array(data.draw(st.permutations(range(keys.shape[0]))), dtype=int)
    ref = attention_stats(q, keys, beta)
    got = attention_stats(q, keys[perm], beta, chunk_size=chunk_size)
    assert_stats_close(got, as_dict(ref), q, keys, beta, sides=2)


def test_beta_zero_gives_exactly_uniform_weights():
    rng = np.random.default_rng(3)
    for n in (1, 2, 17, 1000):
        keys = rng.standard_normal((n, 3)) * 1e100  # scores far apart: beta = 0 must still be uniform
        q = rng.standard_normal(3)
        att = attention(q, keys, 0.0)
        np.testing.assert_array_equal(att.weights, np.full(n, att.weights[0]))
        assert att.weights[0] == pytest.approx(1.0 / n, rel=2 * EPS)
        stats = attention_stats(q, keys, 0.0, top_k=10, chunk_size=7)
        assert stats.max_weight == pytest.approx(1.0 / n, rel=EPS)
        assert stats.entropy == pytest.approx(math.log(n), rel=2 * EPS, abs=0)
        assert stats.n_eff == pytest.approx(n, rel=2 * EPS)
        assert stats.top_mass == pytest.approx(min(10, n) / n, rel=4 * EPS)
        np.testing.assert_allclose(stats.output, keys.mean(axis=0), rtol=1e-12, atol=1e-12 * 1e100)


@pytest.mark.parametrize("ties", [1, 2, 3, 7])
@pytest.mark.parametrize("chunk_size", [1, 3, None])
def test_huge_beta_with_ties_splits_the_mass_evenly(ties, chunk_size):
    """beta = 1e12: every key below the top by >= 1/8 has weight exp(-1.25e11) = 0 exactly."""
    rng = np.random.default_rng(ties)
    n = 50
    keys = rng.integers(-8, 8, size=(n, 3)) / 8.0  # first coordinate <= 7/8
    top = rng.choice(n, size=ties, replace=False)
    keys[top, 0] = 1.0  # tied scores, distinct keys
    q = np.array([1.0, 0.0, 0.0])
    att = attention(q, keys, 1e12)
    expected = np.zeros(n)
    expected[top] = 1.0 / ties
    np.testing.assert_allclose(att.weights, expected, rtol=4 * EPS, atol=0)
    stats = attention_stats(q, keys, 1e12, top_k=2, chunk_size=chunk_size)
    assert stats.max_weight == pytest.approx(1.0 / ties, rel=4 * EPS)
    assert stats.entropy == pytest.approx(math.log(ties), rel=4 * EPS, abs=0)
    assert stats.n_eff == pytest.approx(ties, rel=4 * EPS)
    assert stats.top_mass == pytest.approx(min(2, ties) / ties, rel=4 * EPS)
    np.testing.assert_allclose(stats.output, keys[top].mean(axis=0), rtol=0, atol=8 * EPS)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("beta", [1e12, 1.7e308])
def test_extreme_scores_neither_overflow_nor_nan(beta):
    """Scores near +-1e300, spans over the float range, beta up to the largest float."""
    q = np.array([1e150, 0.0])
    keys = np.array([[1e150, 5.0], [-1e150, 1.0], [0.9e150, 2.0], [1e150 * (1 - 2**-50), 3.0]])
    att = attention(q, keys, beta)
    np.testing.assert_array_equal(att.weights, [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(att.output, keys[0])
    for chunk_size in (1, 2, None):
        stats = attention_stats(q, keys, beta, chunk_size=chunk_size)
        assert (stats.max_weight, stats.entropy, stats.n_eff, stats.top_mass) == (1.0, 0.0, 1.0, 1.0)
        np.testing.assert_array_equal(stats.output, keys[0])
    span = np.array([[1.7e308], [-1.7e308], [1.0]])  # s - max(s) overflows to -inf
    stats = attention_stats([1.0], span, 1.0, chunk_size=2)
    assert (stats.max_weight, stats.entropy, stats.n_eff) == (1.0, 0.0, 1.0)
    assert attention_stats([1.0], span, 0.0).n_eff == pytest.approx(3.0, rel=EPS)


def test_entropy_keeps_relative_accuracy_when_one_key_dominates():
    """Weights 1 - ~1e-20 and ~1e-20: S0 - 1 is summed apart, so H keeps its digits (mpmath)."""
    q = np.array([1.0])
    keys = np.array([[0.0], [-1.0], [-1.25], [-2.0]])
    for beta in (10.0, 46.0, 300.0):
        ref = mp_reference(q, keys, beta)
        for chunk_size in (1, 3, None):
            stats = attention_stats(q, keys, beta, chunk_size=chunk_size)
            b, _ = roundoff(q, keys, beta)
            assert stats.entropy == pytest.approx(ref["entropy"], rel=8 * b, abs=0)
            assert 0.0 < stats.entropy < 1e-2


@SETTINGS
@given(CASES, st.integers(1, 4), st.data())
def test_value_matrix_multiplies_the_identity_output(case, d_v, data):
    q, keys, beta = case
    d = keys.shape[1]
    values = np.array(data.draw(st.lists(st.integers(-4, 4), min_size=d_v * d, max_size=d_v * d)), float)
    values = values.reshape(d_v, d) / 4
    att = attention(q, keys, beta, values=values)
    assert att.output.shape == (d_v,)
    b, _ = roundoff(q, keys, beta)
    scale = float(np.max(np.abs(keys))) * d + 1e-300
    np.testing.assert_allclose(att.output, values @ attention(q, keys, beta).output, rtol=0, atol=8 * b * scale)
    stats = attention_stats(q, keys, beta, values, chunk_size=2)
    identity = attention_stats(q, keys, beta).output
    np.testing.assert_allclose(stats.output, values @ identity, rtol=0, atol=16 * b * scale)
    ref = mp_reference(q, keys, beta, values=values)
    np.testing.assert_allclose(stats.output, ref["output"], rtol=0, atol=16 * b * scale)


def test_keys_need_not_be_float64_or_on_the_sphere():
    rng = np.random.default_rng(5)
    keys = (rng.standard_normal((300, 3)) * 7).astype(np.float32)
    q = rng.standard_normal(3)
    as64 = attention_stats(q, keys.astype(np.float64), 2.0)
    got = attention_stats(q, keys, 2.0, chunk_size=64)
    assert_stats_close(got, as_dict(as64), q, keys, 2.0, sides=2)
    ints = attention_stats([1, 0], [[1, 2], [3, 4]], 1.0)
    assert ints.max_weight == pytest.approx(1.0 / (1.0 + math.exp(-2.0)), rel=4 * EPS)


# ---------------------------------------------------------------------------
# Streaming: iterators of blocks, memory independent of n
# ---------------------------------------------------------------------------


def test_an_iterator_of_blocks_equals_the_whole_array():
    rng = np.random.default_rng(8)
    keys = rng.standard_normal((1000, 3))
    q = rng.standard_normal(3)
    whole = attention_stats(q, keys, 5.0, top_k=20)
    edges = [0, 1, 2, 300, 301, 999, 1000]
    blocks = (keys[a:b] for a, b in zip(edges[:-1], edges[1:]))
    streamed = attention_stats(q, blocks, 5.0, top_k=20, chunk_size=64)
    assert_stats_close(streamed, as_dict(whole), q, keys, 5.0, sides=2)
    listed = attention_stats(q, [[1.0, 0.0, 0.0]], 5.0)  # a list is one matrix, not blocks
    assert listed.max_weight == 1.0


def test_memory_does_not_grow_with_n():
    """Peak of new numpy allocations during attention_stats: the chunk buffers, not O(n)."""
    rng = np.random.default_rng(9)
    q = rng.standard_normal(3)
    for n in (100, 50_000):  # compile or load both drivers (one part, several) first: not the pass's memory
        attention_stats(q, rng.standard_normal((n, 3)), 3.0)
    peaks = []
    for n in (50_000, 400_000):
        keys = rng.standard_normal((n, 3))
        tracemalloc.start()
        attention_stats(q, keys, 3.0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # per chunk row: 16 bytes of scores and row sums, 8 of gaps, 16 of [exp; 0], and 16 for the
    # first chunk's top-k candidates (a copy, then np.partition's copy); 64 KiB for small objects
    assert max(peaks) <= 56 * _cpu_rows(3) + 2**16, peaks
    assert peaks[1] <= peaks[0] + 2**16, peaks


# ---------------------------------------------------------------------------
# torch backend
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 5, None])
def test_torch_backend_equals_numpy(chunk_size):
    torch = _torch()
    rng = np.random.default_rng(11)
    for n, d, beta in ((1, 2, 1e12), (40, 3, 30.0), (1500, 16, 4.0), (200, 5, 0.0)):
        keys = rng.standard_normal((n, d))
        q = rng.standard_normal(d)
        values = rng.standard_normal((2, d))
        ref = attention_stats(q, keys, beta, top_k=7)
        b, _ = roundoff(q, keys, beta)
        for k in (keys, torch.from_numpy(keys)):
            got = attention_stats(q, k, beta, top_k=7, chunk_size=chunk_size, backend="torch")
            assert got.top_k == 7
            assert_stats_close(got, as_dict(ref), q, keys, beta, sides=2)
            with_v = attention_stats(q, k, beta, values, chunk_size=chunk_size, backend="torch").output
            scale = float(np.abs(values).sum(axis=1).max() * np.abs(keys).max())
            np.testing.assert_allclose(with_v, values @ ref.output, rtol=0, atol=16 * b * scale)
    as32 = keys.astype(np.float32)
    got = attention_stats(q, torch.from_numpy(as32), beta, backend="torch", device="cpu")
    assert_stats_close(got, as_dict(attention_stats(q, as32, beta)), q, as32, beta, sides=2)
    cpu_tensor = attention_stats(q, torch.from_numpy(keys), beta)  # numpy backend reads CPU tensors
    assert_stats_close(cpu_tensor, as_dict(attention_stats(q, keys, beta)), q, keys, beta, sides=2)


def test_torch_backend_checks_its_inputs():
    torch = _torch()
    keys = torch.ones((4, 2), dtype=torch.float64)
    keys[2, 1] = float("nan")
    with pytest.raises(ValueError, match="keys: contains NaN"):
        attention_stats([1.0, 0.0], keys, 1.0, backend="torch")
    with pytest.raises(ValueError, match="keys: got shape"):
        attention_stats([1.0, 0.0], torch.ones((4, 3)), 1.0, backend="torch")
    with pytest.raises(ValueError, match="device: got 'warp-drive'"):
        attention_stats([1.0, 0.0], [[1.0, 0.0]], 1.0, backend="torch", device="warp-drive")
    with pytest.raises(ValueError, match="keys: the scores"):
        attention_stats([1e200, 1e200], torch.full((2, 2), 1e200, dtype=torch.float64), 1.0, backend="torch")


def test_torch_missing_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'attnscale\[torch\]'"):
        attention_stats([1.0], [[1.0]], 1.0, backend="torch")


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

GOOD = {"q": [1.0, 0.0], "keys": [[1.0, 0.0], [0.0, 1.0]], "beta": 1.0}


@pytest.mark.parametrize(
    "change, error, message",
    [
        ({"q": [[1.0, 0.0]]}, ValueError, r"q: got shape \(1, 2\)"),
        ({"q": [1.0, float("nan")]}, ValueError, "q: contains NaN"),
        ({"q": []}, ValueError, r"len\(q\): got 0"),
        ({"keys": [[1.0, 0.0, 0.0]]}, ValueError, r"keys: got shape \(1, 3\); expected 2 columns"),
        ({"keys": [1.0, 0.0]}, ValueError, r"keys: got shape \(2,\)"),
        ({"keys": np.empty((0, 2))}, ValueError, "keys: is empty"),
        ({"keys": [[1.0, 0.0], [float("inf"), 0.0]]}, ValueError, "keys: contains NaN or infinite"),
        ({"keys": [["a", "b"]]}, TypeError, "keys: got"),
        ({"keys": [[1e200, 1e200]], "q": [1e200, 1e200]}, ValueError, "keys: the scores <q, K_i> overflow"),
        ({"beta": -1.0}, ValueError, r"beta: got -1.0; expected a finite number >= 0"),
        ({"beta": float("nan")}, ValueError, "beta: got nan"),
        ({"beta": "hot"}, TypeError, "beta: got 'hot'"),
        ({"values": [[1.0, 0.0, 0.0]]}, ValueError, r"values: got shape \(1, 3\); expected 2 columns"),
        ({"values": [1.0, 0.0]}, ValueError, r"values: got shape \(2,\)"),
    ],
)
@pytest.mark.parametrize("function", [attention, attention_stats])
def test_bad_input_names_the_argument(function, change, error, message):
    with pytest.raises(error, match=message):
        function(**{**GOOD, **change})


@pytest.mark.parametrize(
    "change, error, message",
    [
        ({"top_k": 0}, ValueError, "top_k: got 0; expected an integer >= 1"),
        ({"top_k": 2.5}, ValueError, "top_k: got 2.5"),
        ({"chunk_size": 0}, ValueError, "chunk_size: got 0"),
        ({"backend": "jax"}, ValueError, "backend: got 'jax'; expected one of numpy, torch"),
        ({"device": "cuda"}, ValueError, "device: got 'cuda'; a device is only used with backend='torch'"),
        ({"keys": iter([])}, ValueError, "keys: is empty"),
        ({"keys": iter([np.ones((2, 2)), np.ones((2, 3))])}, ValueError, r"keys: got shape \(2, 3\)"),
        ({"keys": iter([np.ones((2, 2)), np.full((1, 2), np.nan)])}, ValueError, "keys: contains NaN"),
    ],
)
def test_bad_stats_options_name_the_argument(change, error, message):
    with pytest.raises(error, match=message):
        attention_stats(**{**GOOD, **change})


def test_non_finite_key_in_a_late_chunk_is_found():
    keys = np.ones((10_000, 3))
    keys[9_876, 2] = np.inf
    for q in ([1.0, 1.0, 1.0], [1.0, 0.0, 0.0]):  # a zero weight on the bad column must not hide it
        with pytest.raises(ValueError, match="keys: contains NaN or infinite"):
            attention_stats(q, keys, 1.0, chunk_size=1000)


def test_finite_keys_whose_row_sums_overflow_are_accepted():
    keys = np.array([[1.7e308, 1.7e308], [0.0, 1.0]])
    stats = attention_stats([0.0, 1.0], keys, 1.0)
    assert stats.max_weight == 1.0
    np.testing.assert_array_equal(stats.output, keys[0])


def test_threaded_parts_equal_one_pass_within_round_off():
    """Parallel parts merge to the single-pass statistics (same sums, another order of additions)."""
    rng = np.random.default_rng(31)
    keys = rng.standard_normal((50_000, 16))
    q = rng.standard_normal(16)
    q /= np.linalg.norm(q)
    V = rng.standard_normal((4, 16))
    for beta in (0.0, 3.0, 1e12):
        one = attention_stats(q, keys, beta, V, threads=1, chunk_size=4096)
        for parts in (2, 3, 7):
            many = attention_stats(q, keys, beta, V, threads=parts, chunk_size=4096)
            for name in ("max_weight", "entropy", "n_eff", "top_mass"):
                assert getattr(many, name) == pytest.approx(getattr(one, name), rel=1e-12, abs=1e-15), (beta, parts, name)
            np.testing.assert_allclose(many.output, one.output, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="threads"):
        attention_stats(q, keys, 1.0, threads=0)
