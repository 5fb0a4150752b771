"""Check the Triton kernel of attention_stats on a CUDA device against float64 numpy (issue 14).

For a few cases (one query and many, d from 1 to 128, beta up to 1e12, ties, float32 and
bfloat16 keys, keys off the sphere, a value matrix) compares ``backend="torch"`` on the
GPU with the numpy backend run on the same keys widened to float64 (numba, or numpy with
``--no-numba``), and prints the largest relative difference of each statistic.

    python benchmarks/check_attention_gpu.py
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

import numpy as np
import torch

A = importlib.import_module("attnscale.attention")

FIELDS = ("max_weight", "entropy", "n_eff", "top_mass", "output")


def compare(got, ref) -> float:
    worst = 0.0
    for f in FIELDS:
        a, b = np.asarray(getattr(got, f)), np.asarray(getattr(ref, f))
        scale = np.maximum(np.abs(b), 1e-300) if f != "output" else np.max(np.abs(b)) + 1e-300
        worst = max(worst, float(np.max(np.abs(a - b) / scale)))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tol", type=float, default=1e-9)
    args = parser.parse_args()
    dev = torch.device("cuda")
    rng = np.random.default_rng(0)
    cases = [  # n, d, h, beta, dtype
        (1, 1, 1, 1e12, torch.float32),
        (1000, 3, 1, 30.0, torch.float32),
        (100_003, 64, 1, 20.0, torch.float32),
        (100_003, 128, 1, 20.0, torch.bfloat16),
        (50_000, 64, 32, 20.0, torch.float32),
        (50_000, 128, 5, 1e6, torch.float64),
        (3_000_000, 64, 1, 1e12, torch.float32),
        (2_000_000, 128, 32, 8.0, torch.float32),
    ]
    failed = 0
    for n, d, h, beta, dtype in cases:
        keys = torch.randn((n, d), device=dev, dtype=torch.float32).to(dtype) * 1.7  # off the sphere
        host = keys.to(torch.float64).cpu().numpy()
        Q = rng.standard_normal((h, d))
        betas = np.full(h, beta)
        betas[0] = 0.0 if h > 2 else beta
        V = rng.standard_normal((3, d))
        t0 = time.perf_counter()
        got = A.attention_stats_many(Q, keys, betas, V, top_k=7, backend="torch")
        torch.cuda.synchronize()
        took = time.perf_counter() - t0
        ref = A.attention_stats_many(Q, host, betas, V, top_k=7)
        err = compare(got, ref)
        ok = err <= args.tol and all(np.all(np.isfinite(getattr(got, f))) for f in FIELDS)
        failed += not ok
        print(f"n={n} d={d} h={h} beta={beta} {dtype}: max rel diff {err:.2e} ({took:.2f} s) {'ok' if ok else 'FAIL'}")
    ties = torch.zeros((4096, 8), device=dev)
    ties[[5, 700, 4000], 0] = 1.0  # three tied top keys at beta = 1e12
    st = A.attention_stats([1.0] + [0.0] * 7, ties, 1e12, backend="torch", top_k=2)
    ok = abs(st.max_weight - 1 / 3) < 1e-15 and abs(st.top_mass - 2 / 3) < 1e-15
    failed += not ok
    print(f"ties: max_weight {st.max_weight!r} top_mass {st.top_mass!r} {'ok' if ok else 'FAIL'}")
    bad = torch.ones((5000, 4), device=dev)
    bad[4321, 2] = float("nan")
    try:
        A.attention_stats([1.0, 0.0, 0.0, 0.0], bad, 1.0, backend="torch")
        print("nan key: not detected FAIL")
        failed += 1
    except ValueError as exc:
        print(f"nan key: {exc} ok")
    print("all ok" if not failed else f"{failed} FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
