"""The Triton kernel of attention_stats under Triton's interpreter (issue 14).

Run by tests/test_attention_kernels.py::test_triton_kernel_under_the_interpreter in a
subprocess with ``TRITON_INTERPRET=1`` (the interpreter needs it before triton is
imported); not collected by the main test run.  References: the float64 brute force
from the full weight vector (docs/theory.md section 1).
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
import torch
from test_attention_kernels import assert_close, brute

from attnscale import attention_stats, attention_stats_many

A = importlib.import_module("attnscale.attention")


@pytest.fixture(autouse=True)
def interpreter():
    assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"
    assert A._triton_applies(torch.device("cpu"))


@pytest.mark.parametrize("h", [1, 3, 20])
@pytest.mark.parametrize("d", [1, 3, 64, 128])
def test_triton_kernel_matches_brute_force(h, d):
    import torch

    rng = np.random.default_rng(10 * h + d)
    n = 700
    keys = rng.standard_normal((n, d)) * 1.5
    Q = rng.standard_normal((h, d)) / np.sqrt(d)
    betas = np.linspace(0.0, 40.0, h) if h > 1 else np.array([12.0])
    V = rng.standard_normal((2, d))
    got = attention_stats_many(Q, torch.from_numpy(keys), betas, V, top_k=9, backend="torch")
    for j in range(h):
        assert_close(got[j], brute(Q[j], keys, betas[j], 9, V), 1e-12)


def test_triton_kernel_extremes_ties_dtypes_and_blocks():
    import torch

    keys = torch.zeros((600, 8))
    keys[[5, 300, 599], 0] = 1.0
    st = attention_stats([1.0] + [0.0] * 7, keys, 1e12, backend="torch", top_k=2)
    assert (st.max_weight, st.top_mass, st.n_eff) == (pytest.approx(1 / 3, rel=1e-15), pytest.approx(2 / 3, rel=1e-15), pytest.approx(3.0, rel=1e-15))
    one = attention_stats([1.0] + [0.0] * 7, keys[:1], 1e12, backend="torch")
    assert (one.max_weight, one.entropy, one.top_mass) == (1.0, 0.0, 1.0)
    rng = np.random.default_rng(12)
    base = torch.from_numpy(rng.standard_normal((900, 16)) * 2.0)
    q = rng.standard_normal(16)
    for dtype in (torch.bfloat16, torch.float16, torch.float32, torch.int32):
        k = base.to(dtype)
        got = attention_stats(q, k, 3.0, backend="torch", top_k=4)
        assert_close(got, brute(q, k.double().numpy(), 3.0, 4), 1e-12)
    blocks = (base[a : a + 250] for a in range(0, 900, 250))
    got = attention_stats_many(np.stack((q, -q)), blocks, [1.0, 1e12], backend="torch", top_k=4)
    for j, (qq, beta) in enumerate(((q, 1.0), (-q, 1e12))):
        assert_close(got[j], brute(qq, base.numpy(), beta, 4), 1e-12)
    strided = base[:, ::2]  # not contiguous: copied
    assert_close(attention_stats(q[::2], strided, 2.0, backend="torch"), brute(q[::2], strided.numpy(), 2.0), 1e-12)


def test_triton_kernel_reports_bad_keys():
    import torch

    keys = torch.ones((500, 3), dtype=torch.float64)
    keys[321, 2] = float("nan")
    with pytest.raises(ValueError, match="keys: contains NaN or infinite"):
        attention_stats([1.0, 0.0, 0.0], keys, 1.0, backend="torch")
    with pytest.raises(ValueError, match="keys: the scores"):
        attention_stats([1e200, 1e200], torch.full((2, 2), 1e200, dtype=torch.float64), 1.0, backend="torch")


