"""Benchmark sample_top (issue 3) against brute force, in one process.

- ``fast``: :func:`attnscale.sampler.sample_top` on the uniform key law at ``c = beta / beta*(n)``,
  vectorized over ``--size`` draws, at n = 1e6, 1e9, 1e12, 1e18 (default); per-draw time is
  the median over ``--repeats`` calls divided by ``--size``; ``m`` is chosen automatically.
- ``brute``: real keys, ``UniformSphere(d).sample(n)`` (normalized Gaussians), and one streaming
  pass of :func:`attnscale.attention.attention_stats`, at n = 1e6 and 1e7; per-draw time is
  the median over draws, split into key generation and the attention pass.
- The same law: two-sample KS p-values of ``W_1`` and ``n_eff`` between the fast draws and the
  brute-force draws at the same n.

Run (2-core machine; unset the OpenBLAS variables that slow numpy down on some machines here):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_sampler.py \
        --d 3 --c 1.0 --reps 300 60

and paste the markdown it prints into BENCHMARKS.md, section "## sample_top (issue 3)".
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time

import numpy as np
from scipy import stats

from attnscale.attention import attention_stats
from attnscale.laws import UniformSphere
from attnscale.sampler import sample_top
from attnscale.tails import critical_beta


def fast_timing(law, q, n: int, beta: float, size: int, repeats: int, seed: int):
    """Median seconds per call of sample_top with ``size`` draws, and the draws of the last call."""
    times = []
    top = None
    for r in range(repeats):
        t0 = time.perf_counter()
        top = sample_top(law, n, beta, size, rng=seed + r, q=q)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), top


def brute_draws(law, q, n: int, beta: float, reps: int, seed: int):
    """Per-draw times (key generation, attention pass) and statistics (W_1, n_eff) of ``reps`` contexts."""
    children = np.random.SeedSequence(seed).spawn(reps)
    gen_t, att_t, w1, neff = [], [], [], []
    for child in children:
        t0 = time.perf_counter()
        keys = law.sample(n, np.random.default_rng(child))
        t1 = time.perf_counter()
        s = attention_stats(q, keys, beta)
        t2 = time.perf_counter()
        gen_t.append(t1 - t0)
        att_t.append(t2 - t1)
        w1.append(s.max_weight)
        neff.append(s.n_eff)
        del keys
    return statistics.median(gen_t), statistics.median(att_t), np.array(w1), np.array(neff)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d", type=int, default=3)
    p.add_argument("--c", type=float, default=1.0, help="beta / beta*(n)")
    p.add_argument("--fast-n", type=float, nargs="+", default=[1e6, 1e9, 1e12, 1e18])
    p.add_argument("--brute-n", type=float, nargs="*", default=[1e6, 1e7])
    p.add_argument("--reps", type=int, nargs="*", default=[300, 60], help="brute-force draws per brute n")
    p.add_argument("--size", type=int, default=20000, help="fast draws per call")
    p.add_argument("--repeats", type=int, default=5, help="timed calls of sample_top per n")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if len(args.reps) != len(args.brute_n):
        p.error("--reps needs one count per --brute-n")

    law = UniformSphere(args.d)
    q = np.zeros(args.d)
    q[0] = 1.0
    tail = law.score_tail(q)
    ns_fast = sorted({int(x) for x in args.fast_n} | {int(x) for x in args.brute_n})

    fast = {}
    sample_top(law, 10**6, args.c * critical_beta(10**6, tail), 100, rng=0, q=q)  # warm-up (imports, caches)
    for n in ns_fast:
        beta = args.c * critical_beta(n, tail)
        sec, top = fast_timing(law, q, n, beta, args.size, args.repeats, args.seed)
        fast[n] = (sec / args.size, top)
        print(f"fast n={n:.0e}: {sec / args.size * 1e6:.2f} us/draw (m={top.m})", file=sys.stderr)

    brute = {}
    for n, reps in zip((int(x) for x in args.brute_n), args.reps):
        beta = args.c * critical_beta(n, tail)
        gen_s, att_s, w1, neff = brute_draws(law, q, n, beta, reps, args.seed + 1)
        brute[n] = (gen_s, att_s, w1, neff)
        print(f"brute n={n:.0e}: keys {gen_s * 1e3:.1f} ms + attention {att_s * 1e3:.1f} ms per draw", file=sys.stderr)

    cmd = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_sampler.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    print(f"Uniform keys on S^{args.d - 1} (d = {args.d}), c = beta / beta*(n) = {args.c:g}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}.")
    print(f"Command: `{cmd}`\n")
    print("| n | sample_top us/draw | m | E W_1 (fast) | brute keys ms/draw | brute attention ms/draw "
          "| brute total ms/draw | speed-up | KS p W_1 | KS p n_eff | brute draws |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in ns_fast:
        per, top = fast[n]
        row = [f"{n:.0e}", f"{per * 1e6:.2f}", str(top.m), f"{top.max_weight.mean():.4f}"]
        if n in brute:
            gen_s, att_s, w1, neff = brute[n]
            total = gen_s + att_s
            row += [
                f"{gen_s * 1e3:.1f}",
                f"{att_s * 1e3:.1f}",
                f"{total * 1e3:.1f}",
                f"{total / per:,.0f}x",
                f"{stats.ks_2samp(top.max_weight, w1).pvalue:.2f}",
                f"{stats.ks_2samp(top.n_eff, neff).pvalue:.2f}",
                str(w1.size),
            ]
        else:
            row += ["", "", "", "", "", "", ""]
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
