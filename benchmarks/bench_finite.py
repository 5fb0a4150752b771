"""Benchmark and check the finite-n verdicts (issue 11), in one process.

- ``verdict``: seconds for one :func:`attnscale.finite.regime` (the exact law at n: sampler draws,
  c_eff by inverting the Palm integral, its interval) for several laws, cold (first call at a new
  gamma, which also computes the critical band) and warm (a second call at another beta).
  Target: < 1 s on 2 cores.
- ``grid``: seconds for beta_half on a grid of 20 n (:func:`attnscale.exponent.critical_curve`,
  8000 common draws). Target: < 10 s.
- ``brute``: the finite-n critical rule at d = 64, beta_half(131072) / beta_half(4096), against an
  independent brute force on the exact score law (S = 1 - 2u, u ~ Beta(a, a)): mean W_1 over
  ``--brute-draws`` contexts of n scores on a grid of beta, root of mean W_1 = 1/2 by interpolation of
  the log-odds in log beta, with its delta-method SE. Target: agreement within 2%.

Run (2-core machine):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_finite.py

and paste the markdown it prints into BENCHMARKS.md, section "## Finite-n verdicts (issue 11)".
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time

import numpy as np

import attnscale as ats
from attnscale.exponent import critical_curve
from attnscale.finite import regime
from attnscale.laws import UniformScoreLaw


def time_verdicts() -> list[tuple[str, float, float, str]]:
    """(case, cold seconds, warm seconds, verdict) for several laws."""
    cases = [
        ("uniform d=3, n=1e12", UniformScoreLaw(3), None, 10**12, 5e11, 2e11),
        ("uniform d=64, n=1e6", UniformScoreLaw(64), None, 10**6, 8.0, 60.0),
        ("uniform d=128, n=1e9", UniformScoreLaw(128), None, 10**9, 12.0, 80.0),
        ("vMF d=16 kappa=10, n=1e6", ats.VonMisesFisher(np.eye(16)[0], 10.0), np.eye(16)[0], 10**6, 20.0, 40.0),
        ("Gaussian keys d=16, n=1e6", ats.GaussianKeys(16), np.eye(16)[0], 10**6, 3.0, 6.0),
    ]
    rows = []
    for name, law, q, n, beta_cold, beta_warm in cases:
        t0 = time.perf_counter()
        r = regime(n, beta_cold, law, q=q)
        t1 = time.perf_counter()
        regime(n, beta_warm, law, q=q)
        t2 = time.perf_counter()
        rows.append((name, t1 - t0, t2 - t1, f"{r.name}, c_eff={r.c_eff:.4g}, c={r.c_asymptotic:.4g}"))
    return rows


def time_grid(d: int, n_lo: float, n_hi: float) -> tuple[float, float]:
    """Seconds for beta_half on 20 log-spaced n, and the ratio of the curve's ends."""
    ns = [int(x) for x in np.geomspace(n_lo, n_hi, 20)]
    t0 = time.perf_counter()
    rows = critical_curve(UniformScoreLaw(d), ns, size=8000, rng=0)
    return time.perf_counter() - t0, rows[-1].beta_half / rows[0].beta_half


def brute_beta_half(d: int, n: int, draws: int, betas: np.ndarray, seed: int) -> tuple[float, float]:
    """beta_half of n exact scores by brute force, and the SE of its log (delta method)."""
    a = (d - 1) / 2.0
    rng = np.random.default_rng(seed)
    w1 = np.empty((draws, betas.size))
    chunk = max(1, (1 << 24) // n)
    for start in range(0, draws, chunk):
        k = min(chunk, draws - start)
        s = 1.0 - 2.0 * rng.beta(a, a, size=(k, n))
        gaps = s - s.max(axis=1, keepdims=True)  # <= 0
        for j, beta in enumerate(betas):
            w1[start : start + k, j] = 1.0 / np.exp(beta * gaps).sum(axis=1)
    mean = w1.mean(axis=0)
    logit = np.log(mean) - np.log1p(-mean)
    log_b = np.log(betas)
    root = float(np.interp(0.0, logit, log_b))  # logit increases with beta
    j = int(np.clip(np.searchsorted(logit, 0.0), 1, betas.size - 1))
    slope = (mean[j] - mean[j - 1]) / (log_b[j] - log_b[j - 1])  # d mean W_1 / d log beta near the root
    w_root = w1[:, j - 1] + (w1[:, j] - w1[:, j - 1]) * (root - log_b[j - 1]) / (log_b[j] - log_b[j - 1])
    return math.exp(root), float(np.std(w_root, ddof=1) / math.sqrt(draws) / slope)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--brute-draws", type=int, nargs=2, default=[20000, 8000], help="draws at L and at n")
    parser.add_argument("--skip-brute", action="store_true")
    args = parser.parse_args(argv)
    print("## Finite-n verdicts (issue 11)\n")
    print(f"`{' '.join(['python', *sys.argv])}` on {platform.machine()}, {platform.python_version()}\n")
    print("| case | cold (s) | warm (s) | verdict |\n|---|---|---|---|")
    for name, cold, warm, verdict in time_verdicts():
        print(f"| {name} | {cold:.2f} | {warm:.2f} | {verdict} |")
    print("\n| grid of 20 n | seconds | beta_half ratio of the ends |\n|---|---|---|")
    for d, lo, hi in ((64, 4096, 131072), (3, 1e3, 1e12)):
        sec, ratio = time_grid(d, lo, hi)
        print(f"| d={d}, n={lo:.3g}..{hi:.3g} | {sec:.2f} | {ratio:.4f} |")
    if args.skip_brute:
        return
    d, small, big = 64, 4096, 131072
    t0 = time.perf_counter()
    rows = critical_curve(UniformScoreLaw(d), [small, big], size=20000, rng=1)
    rule = rows[1].beta_half / rows[0].beta_half
    rule_se = math.hypot(rows[0].log_se, rows[1].log_se)  # an upper bound: the two share their draws
    t1 = time.perf_counter()
    b_small, se_small = brute_beta_half(d, small, args.brute_draws[0], np.geomspace(40, 56, 17), seed=11)
    b_big, se_big = brute_beta_half(d, big, args.brute_draws[1], np.geomspace(54, 74, 17), seed=12)
    t2 = time.perf_counter()
    brute = b_big / b_small
    se = math.hypot(se_small, se_big)
    print("\n| d = 64, L = 4096, n = 131072 | beta_half(L) | beta_half(n) | ratio | SE of log ratio | seconds |")
    print("|---|---|---|---|---|---|")
    print(f"| finite-n critical rule (sampler) | {rows[0].beta_half:.4f} | {rows[1].beta_half:.4f} | {rule:.4f} | <= {rule_se:.4f} | {t1 - t0:.1f} |")
    print(f"| brute force ({args.brute_draws[0]}/{args.brute_draws[1]} draws) | {b_small:.4f} | {b_big:.4f} | {brute:.4f} | {se:.4f} | {t2 - t1:.1f} |")
    print(f"\nrule / brute = {rule / brute:.4f} (target: within 2%); asymptotic (n/L)^(2/(d-1)) = {(big / small) ** (2 / 63):.4f}, "
          f"log-n rule = {math.log(big) / math.log(small):.4f}")


if __name__ == "__main__":
    main()
