"""Tests of the compiled engines of attention_stats and of attention_stats_many (issue 14).

Engines: the numba pass (float64 C-contiguous keys, the default on the CPU), the numpy
fallback (``USE_NUMBA = False``, what runs without numba), and the Triton kernel of the
torch backend, run on the CPU under Triton's interpreter (``TRITON_INTERPRET=1``); the
compiled GPU path is checked by benchmarks/check_attention_gpu.py on a CUDA machine.
References: mpmath at 60 digits for exact (dyadic) scores at any beta, and an independent
float64 brute force from the full weight vector (docs/theory.md section 1).
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from test_attention import as_dict, assert_stats_close, dyadic_case, mp_reference

from attnscale import AttentionStatsBatch, attention_stats, attention_stats_many

A = importlib.import_module("attnscale.attention")
FIELDS = ("max_weight", "entropy", "n_eff", "top_mass")


def brute(q, keys, beta, top_k=10, values=None):
    """float64 statistics from the full weight vector (softmax by the maximum score)."""
    s = np.asarray(keys, dtype=float) @ np.asarray(q, dtype=float)
    t = np.zeros_like(s) if beta == 0 else np.maximum(beta * (s - s.max()), -1000.0)
    e = np.exp(t)
    w = e / e.sum()
    y = w @ np.asarray(keys, dtype=float)
    rest = np.sort(e)[:-1].sum()  # S_0 - 1: -sum w log w = log S_0 - sum t e / S_0, without cancellation
    return {
        "max_weight": w.max(),
        "entropy": float(np.log1p(rest) - (t @ e) / e.sum()),
        "n_eff": 1.0 / float(w @ w),
        "top_mass": float(np.sort(w)[::-1][:top_k].sum()),
        "output": y if values is None else values @ y,
    }


def assert_close(got, ref, rel):
    for name in FIELDS:
        assert getattr(got, name) == pytest.approx(ref[name], rel=rel, abs=1e-300), name
    scale = float(np.max(np.abs(ref["output"]))) + 1e-300
    np.testing.assert_allclose(got.output, ref["output"], rtol=0, atol=rel * scale)


@pytest.fixture
def numpy_only(monkeypatch):
    monkeypatch.setattr(A, "USE_NUMBA", False)


# ---------------------------------------------------------------------------
# numba against numpy and the brute force
# ---------------------------------------------------------------------------


def test_the_compiled_path_is_taken():
    assert A._numba_module() is not None  # numba is installed with the package
    keys = np.ones((3, 2))
    assert A._compiled_cpu_applies(keys, 2)
    assert not A._compiled_cpu_applies(keys.astype(np.float32), 2)
    assert not A._compiled_cpu_applies(np.ones((3, 4))[:, ::2], 2)


@pytest.mark.parametrize("d", [1, 2, 3, 16, 64, 128])
def test_numba_equals_numpy_and_brute_force(d, monkeypatch):
    rng = np.random.default_rng(100 + d)
    for n, beta in ((1, 3.0), (2, 0.0), (37, 30.0), (70_001, 8.0)):
        keys = rng.standard_normal((n, d)) * 1.9  # not on the sphere
        q = rng.standard_normal(d) / np.sqrt(d)
        V = rng.standard_normal((2, d))
        fast = attention_stats(q, keys, beta, V, top_k=7)
        monkeypatch.setattr(A, "USE_NUMBA", False)
        slow = attention_stats(q, keys, beta, V, top_k=7)
        monkeypatch.setattr(A, "USE_NUMBA", True)
        assert_close(fast, as_dict(slow), 1e-12)
        assert_close(fast, brute(q, keys, beta, 7, V), 1e-11)


@pytest.mark.parametrize("chunk_size, threads", [(1, 1), (7, 3), (None, 5), (4096, None)])
def test_numba_tiles_and_parts_change_only_round_off(chunk_size, threads):
    rng = np.random.default_rng(7)
    keys = rng.standard_normal((20_000, 24))
    Q = rng.standard_normal((6, 24))  # six queries: the BLAS tiles
    one = attention_stats_many(Q, keys, [0.0, 1.0, 5.0, 30.0, 1e6, 1e12], top_k=4, threads=1)
    other = attention_stats_many(Q, keys, [0.0, 1.0, 5.0, 30.0, 1e6, 1e12], top_k=4, chunk_size=chunk_size, threads=threads)
    for j in range(6):
        for name in FIELDS:
            # at beta = 1e12 the score round-off (1e-16) moves the gaps by 1e-4: the bound of
            # test_attention.roundoff; below it everything agrees to 1e-12
            rel = 1e-12 if j < 4 else 1e-3
            assert getattr(other, name)[j] == pytest.approx(getattr(one, name)[j], rel=rel, abs=1e-300), (j, name)


def assert_batches_agree(fast, slow):
    """Every statistic to 1e-12 relative, each output to 1e-12 of its largest entry."""
    for name in FIELDS:
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-12, atol=0, err_msg=name)
    scale = np.abs(slow.output).max(axis=1, keepdims=True)
    assert np.all(np.abs(fast.output - slow.output) <= 1e-12 * scale)


@pytest.mark.parametrize("d, chunk_size", [(64, None), (128, None), (64, 1024)])
def test_numba_many_queries_equal_numpy(d, chunk_size, monkeypatch):
    """The GEMM pass (32 queries; 1024-row tiles run with BLAS at one thread) against the numpy fallback."""
    rng = np.random.default_rng(d)
    keys = rng.standard_normal((70_001, d)) / np.sqrt(d)
    Q = rng.standard_normal((32, d))
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    betas = np.linspace(0.0, 40.0, 32)
    fast = attention_stats_many(Q, keys, betas, top_k=5, chunk_size=chunk_size)
    monkeypatch.setattr(A, "USE_NUMBA", False)
    slow = attention_stats_many(Q, keys, betas, top_k=5)
    assert_batches_agree(fast, slow)


def test_rising_maxima_inside_a_gemm_tile_equal_numpy(monkeypatch):
    """Keys sorted by the first query's score: its maximum rises in every 32-row block of each
    1024-row tile, so the tile's earlier weights are rescaled again and again (``_part_gemm``)."""
    rng = np.random.default_rng(12)
    keys = rng.standard_normal((5000, 16))
    Q = rng.standard_normal((8, 16))
    Q[1] = -Q[0]  # its maximum sits in the first block: never rescaled after the first tile
    keys = keys[np.argsort(keys @ Q[0])]
    betas = np.array([0.5, 0.5, 3.0, 10.0, 30.0, 0.0, 2.0, 100.0])
    fast = attention_stats_many(Q, keys, betas, top_k=7, chunk_size=1024, threads=1)
    monkeypatch.setattr(A, "USE_NUMBA", False)
    slow = attention_stats_many(Q, keys, betas, top_k=7)
    assert_batches_agree(fast, slow)


def test_default_tiles_run_blas_on_the_calling_thread():
    """Default GEMM tiles past OpenBLAS's threading threshold run with BLAS at one thread."""
    from threadpoolctl import threadpool_info

    limited = 0
    for d in (1, 3, 64, 128, 1024):
        for h in (1, A.BLAS_MIN_QUERIES, 32, 256):
            rows = A._tile_rows(d, h)
            assert 8 <= rows <= 1024
            assert rows * 8 * max(d, h) <= (A.GEMM_TILE_BYTES if h >= A.BLAS_MIN_QUERIES else A.TILE_BYTES) or rows == 8
            with A._one_blas_thread(rows, h, d):
                if h >= A.BLAS_MIN_QUERIES and rows * h * d > A.BLAS_TILE_MNK:
                    limited += 1
                    assert {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"} == {1}
    assert limited > 0  # d = 64, h = 32: 256 rows, past the threshold
    with A._one_blas_thread(8192, 1, 3):  # the loop pass's GEMV for Y at small d, past OpenBLAS's threshold
        assert {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"} == {1}


@pytest.mark.parametrize("h, chunk_size", [(1, None), (2, None), (1, 8192), (3, 8192)])
def test_narrow_keys_gemv_pass_equals_numpy(h, chunk_size, monkeypatch):
    """d < NARROW_D: Y gets one GEMV per tile; maxima tied across tiles and rising inside them."""
    rng = np.random.default_rng(h)
    keys = np.round(rng.standard_normal((50_000, 3)), 2)  # many exact ties of the top score
    keys = keys[np.argsort(keys[:, 0], kind="stable")]  # query e_1's maximum rises tile after tile
    Q = np.vstack([np.eye(3)[0], rng.standard_normal((2, 3))])[:h]
    betas = np.array([30.0, 0.0, 4.0])[:h]
    fast = attention_stats_many(Q, keys, betas, top_k=5, chunk_size=chunk_size)
    monkeypatch.setattr(A, "USE_NUMBA", False)
    assert_batches_agree(fast, attention_stats_many(Q, keys, betas, top_k=5))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(dyadic_case(max_n=40, max_d=6))
def test_many_queries_match_mpmath_exactly_scored(case):
    """Exact scores (dyadic entries): every engine within the float64 round-off bound, any beta."""
    q, keys, beta = case
    Q = np.stack((q, -q, np.roll(q, 1), q / 2))  # four queries: the numba BLAS tiles
    got = attention_stats_many(Q, keys, beta, top_k=3)
    assert isinstance(got, AttentionStatsBatch) and len(got) == 4
    for j in range(4):
        assert_stats_close(got[j], mp_reference(Q[j], keys, beta, top_k=3), Q[j], keys, beta)


def test_huge_beta_ties_and_extremes_in_one_pass():
    keys = np.zeros((100_000, 3))
    keys[[10, 50_000, 99_999], 0] = 2.0  # three tied top keys, far apart (different parts)
    keys[77, 1] = 1e150  # a huge key, weight 0 for the first query
    Q = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    got = attention_stats_many(Q, keys, [1e12, 1e12, 1e12], top_k=2)
    assert got.max_weight[0] == pytest.approx(1 / 3, rel=1e-15)
    assert got.top_mass[0] == pytest.approx(2 / 3, rel=1e-15)
    assert got.n_eff[0] == pytest.approx(3.0, rel=1e-15)
    assert got.entropy[0] == pytest.approx(np.log(3.0), rel=1e-15)
    np.testing.assert_allclose(got.output[0], [2.0, 0.0, 0.0], rtol=1e-15)
    assert got.max_weight[1] == 1.0 and got.entropy[1] == 0.0  # one key takes everything
    assert got.max_weight[2] == pytest.approx(1e-5, rel=1e-12)  # a zero query: uniform weights
    assert got.n_eff[2] == pytest.approx(1e5, rel=1e-12)
    for b in (got.max_weight, got.entropy, got.n_eff, got.top_mass, got.output):
        assert np.all(np.isfinite(b))


def test_numba_memory_does_not_grow_with_n():
    import tracemalloc

    rng = np.random.default_rng(9)
    Q = rng.standard_normal((8, 16))
    peaks = []
    for n in (100_000, 1_600_000):
        keys = rng.standard_normal((n, 16))
        attention_stats_many(Q, keys, 3.0)
        tracemalloc.start()
        attention_stats_many(Q, keys, 3.0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # the parts' states (at most MAX_PARTS x h x (d + 4 + top_k) floats, twice) and each thread's
    # buffers of a tile's scores and weights (2 x rows x h floats), whatever n
    import numba

    from attnscale._kernels.numba_stats import SUB_ROWS

    rows = A._tile_rows(16, 8)
    buffers = numba.get_num_threads() * (2 * rows * 8 + 3 * SUB_ROWS * 8 + 8 * 16) * 8
    bound = A.MAX_PARTS * 8 * (16 + 4 + 10) * 8 * 2 + buffers + 2**16
    assert max(peaks) <= bound, peaks


def test_numpy_fallback_without_numba(monkeypatch):
    monkeypatch.setitem(sys.modules, "attnscale._kernels.numba_stats", None)  # import fails
    assert A._numba_module() is None
    rng = np.random.default_rng(3)
    keys = rng.standard_normal((5000, 5))
    Q = rng.standard_normal((3, 5))
    got = attention_stats_many(Q, keys, [1.0, 2.0, 0.0], top_k=4)
    for j, beta in enumerate((1.0, 2.0, 0.0)):
        assert_close(got[j], brute(Q[j], keys, beta, 4), 1e-12)


def test_one_read_of_an_iterator_serves_all_queries():
    rng = np.random.default_rng(5)
    keys = rng.standard_normal((3000, 4))
    Q = rng.standard_normal((3, 4))
    reads = []

    def blocks():
        for a in range(0, 3000, 700):
            reads.append(a)
            yield keys[a : a + 700]

    got = attention_stats_many(Q, blocks(), 2.0, top_k=5)
    assert reads == list(range(0, 3000, 700))
    for j in range(3):
        assert_close(got[j], brute(Q[j], keys, 2.0, 5), 1e-12)


def test_batch_rows_equal_single_queries():
    rng = np.random.default_rng(6)
    keys = rng.standard_normal((1000, 3))
    Q = rng.standard_normal((2, 3))
    batch = attention_stats_many(Q, keys, [2.0, 5.0], top_k=3)
    for j, beta in enumerate((2.0, 5.0)):
        one = attention_stats(Q[j], keys, beta, top_k=3)
        assert_close(batch[j], as_dict(one), 1e-12)
        assert batch[j].top_k == 3
    single = attention_stats_many(Q[:1], keys, 2.0)
    assert isinstance(single, AttentionStatsBatch) and single.output.shape == (1, 3)
    assert not batch.max_weight.flags.writeable and not batch.output.flags.writeable


# ---------------------------------------------------------------------------
# Triton kernel under the interpreter
# ---------------------------------------------------------------------------


def test_triton_kernel_under_the_interpreter():
    """tests/interpret_triton_cases.py in a subprocess started with TRITON_INTERPRET=1.

    Triton's interpreter replaces its own library functions only when triton is imported
    with the variable set, so the cases cannot run in this process.
    """
    import subprocess
    from pathlib import Path

    pytest.importorskip("torch")
    import triton  # noqa: F401  (the dev extra installs it: missing, this test fails)

    cases = Path(__file__).with_name("interpret_triton_cases.py")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    cmd = [sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", str(cases)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]


def test_plain_torch_stays_the_fallback(monkeypatch):
    import torch

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(A, "USE_TRITON", False)
    rng = np.random.default_rng(13)
    keys = rng.standard_normal((400, 5))
    Q = rng.standard_normal((2, 5))
    got = attention_stats_many(Q, torch.from_numpy(keys), 2.0, backend="torch")
    for j in range(2):
        assert_close(got[j], brute(Q[j], keys, 2.0), 1e-12)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, error, message",
    [
        ({"Q": [1.0, 0.0]}, ValueError, r"Q: got shape \(2,\)"),
        ({"Q": [[1.0, np.nan]]}, ValueError, "Q: contains NaN"),
        ({"Q": np.empty((0, 2))}, ValueError, "Q: is empty"),
        ({"Q": [[1.0, 0.0, 0.0]]}, ValueError, r"keys: got shape \(2, 2\); expected 3 columns"),
        ({"beta": [1.0, 2.0, 3.0]}, ValueError, "beta: got 3 values for 2 queries"),
        ({"beta": [1.0, -2.0]}, ValueError, "beta: got -2.0"),
        ({"beta": [[1.0, 2.0]]}, ValueError, r"beta: got shape \(1, 2\)"),
        ({"beta": "hot"}, TypeError, "beta: got 'hot'"),
        ({"top_k": 0}, ValueError, "top_k: got 0"),
        ({"backend": "jax"}, ValueError, "backend: got 'jax'"),
    ],
)
def test_many_bad_input_names_the_argument(change, error, message):
    good = {"Q": [[1.0, 0.0], [0.0, 1.0]], "keys": np.eye(2), "beta": 1.0}
    with pytest.raises(error, match=message):
        attention_stats_many(**{**good, **change})


def test_numba_path_names_bad_keys():
    keys = np.ones((100_000, 3))
    keys[98_765, 1] = np.nan
    with pytest.raises(ValueError, match="keys: contains NaN or infinite"):
        attention_stats([0.0, 1.0, 0.0], keys, 1.0)
    with pytest.raises(ValueError, match="keys: the scores <q, K_i> overflow"):
        attention_stats([1e200, 1e200], np.full((5, 2), 1e200), 1.0)
