"""Benchmark attention_stats and attention_stats_many against plain softmax attention (issue 14).

One run measures, side by side and interleaved (the order of the methods rotates every
repeat; medians):

- ``read``: one read of the keys, the bandwidth limit (CPU: a numba sum over row blocks on
  all cores, and numpy's one-thread ``keys.sum()``; GPU: ``keys.sum()``);
- ``plain``: softmax attention as one writes it (``logits = keys @ q * beta``; softmax;
  ``weights @ keys``), numpy on the CPU, torch on the GPU (float32 keys, float32 math);
- ``plain+stats``: the same plus the statistics attention_stats returns (max weight,
  entropy, n_eff, top-k mass), from the full weight vector;
- ``stats``: ``attention_stats`` (one query; numba on the CPU, the Triton kernel on CUDA);
- ``many``: ``attention_stats_many`` with ``h`` queries (default 32) over one read of the keys.

CPU (the OpenBLAS variables set on some machines here slow numpy down; unset them)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_attention.py \\
        --backend numpy --n 1e6 1e7 --d 3 64 128 --repeats 3

Pinned to two cores: prefix ``taskset -c 0,1`` and set ``NUMBA_NUM_THREADS=2``.
GPU (keys float32 on the device)::

    python benchmarks/bench_attention.py --backend torch --n 1e7 1e8 --d 3 64 128 --repeats 5

The markdown table goes to stdout (and ``--out FILE``); the raw numbers to stderr.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from attnscale.attention import attention_stats, attention_stats_many

MB = 1e6


# ---------------------------------------------------------------------------
# Baselines: what one writes with plain numpy / torch
# ---------------------------------------------------------------------------


def plain_numpy(q: np.ndarray, keys: np.ndarray, beta: float) -> np.ndarray:
    logits = keys @ q * beta
    logits -= logits.max()
    weights = np.exp(logits)
    weights /= weights.sum()
    return weights @ keys


def plain_numpy_stats(q: np.ndarray, keys: np.ndarray, beta: float, top_k: int) -> tuple:
    logits = keys @ q * beta
    logits -= logits.max()
    e = np.exp(logits)
    s0 = e.sum()
    weights = e / s0
    output = weights @ keys
    entropy = math.log(s0) - float(e @ logits) / s0
    top = np.partition(weights, weights.size - top_k)[weights.size - top_k :].sum()
    return float(weights.max()), entropy, 1.0 / float(weights @ weights), float(top), output


def plain_torch(q, keys, beta: float):
    w = (keys @ q * beta).softmax(dim=0)
    return w @ keys


def plain_torch_stats(q, keys, beta: float, top_k: int):
    import torch

    logits = keys @ q * beta
    logp = torch.log_softmax(logits, dim=0)
    w = logp.exp()
    output = w @ keys
    stats = torch.stack((w.max(), -(w * logp).sum(), 1.0 / (w @ w), torch.topk(w, top_k).values.sum()))
    return torch.cat((stats, output)).cpu()  # one host copy, as attention_stats


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------


def interleaved(methods: dict[str, Callable[[], object]], repeats: int, sync: Callable[[], None]) -> dict:
    times: dict[str, list[float]] = {k: [] for k in methods}
    names = list(methods)
    for name in names:  # warm up (compilation, caches)
        methods[name]()
    sync()
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            sync()
            t0 = time.perf_counter()
            methods[name]()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_extra_bytes(f: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _parallel_sum():
    import numba

    @numba.njit(parallel=True, cache=True)
    def psum(a):  # pragma: no cover - compiled
        n = a.shape[0]
        parts = 64
        out = np.zeros(parts)
        for p in numba.prange(parts):
            lo, hi = p * n // parts, (p + 1) * n // parts
            acc = 0.0
            for i in range(lo, hi):
                for j in range(a.shape[1]):
                    acc += a[i, j]
            out[p] = acc
        return out.sum()

    return psum


def rel_diff(mine: tuple, ref: tuple) -> float:
    rel = max(abs(a - b) / abs(b) for a, b in zip(mine[:4], ref[:4]) if b != 0)
    out_m, out_r = np.asarray(mine[4]), np.asarray(ref[4])
    return max(rel, float(np.max(np.abs(out_m - out_r))) / float(np.max(np.abs(out_r))))


# ---------------------------------------------------------------------------
# CPU and GPU runs
# ---------------------------------------------------------------------------


def run_cpu(args) -> list[dict]:
    rng = np.random.default_rng(args.seed)
    psum = _parallel_sum()
    rows = []
    for n in (int(x) for x in args.n):
        for d in args.d:
            keys = np.empty((n, d))
            for a in range(0, n, 1 << 20):
                rng.standard_normal(out=keys[a : a + (1 << 20)])
            keys *= 1.0 / math.sqrt(d)
            Q = rng.standard_normal((args.h, d))
            Q /= np.linalg.norm(Q, axis=1, keepdims=True)
            q = Q[0].copy()
            b, k = args.beta, args.top_k
            ref = plain_numpy_stats(q, keys, b, k)
            got = attention_stats(q, keys, b, top_k=k)
            many = attention_stats_many(Q, keys, b, top_k=k)
            diff = rel_diff((got.max_weight, got.entropy, got.n_eff, got.top_mass, got.output), ref)
            diff_many = rel_diff((many.max_weight[0], many.entropy[0], many.n_eff[0], many.top_mass[0], many.output[0]), ref)
            methods = {
                "read": lambda: psum(keys),
                "read1": lambda: keys.sum(),
                "plain": lambda: plain_numpy(q, keys, b),
                "plain+stats": lambda: plain_numpy_stats(q, keys, b, k),
                "stats": lambda: attention_stats(q, keys, b, top_k=k),
                "many": lambda: attention_stats_many(Q, keys, b, top_k=k),
            }
            t = interleaved(methods, args.repeats, lambda: None)
            mem = {
                "plain+stats": peak_extra_bytes(methods["plain+stats"]),
                "stats": peak_extra_bytes(methods["stats"]),
                "many": peak_extra_bytes(methods["many"]),
            }
            row = {"n": n, "d": d, "h": args.h, "bytes": keys.nbytes, "t": t, "mem": mem,
                   "diff": diff, "diff_many": diff_many}
            print(row, file=sys.stderr, flush=True)
            rows.append(row)
            del keys
    return rows


TUNE_ONE = [(e, 4, 4, dot, st) for e in (2048, 4096) for dot in (0, 1) for st in (1, 2, 3, 4)]
TUNE_MANY = [(e, 4, 4, 0, st) for e in (2048, 4096) for st in (1, 2, 3)]


def with_tuning(cfg: tuple | None, f: Callable[[], object]) -> Callable[[], object]:
    """``f`` run with the Triton kernel's tuning ``cfg`` (entries, programs/SM, warps, dot, stages)."""
    if cfg is None:
        return f

    def run():
        os.environ["ATTNSCALE_TRITON_TUNING"] = ",".join(str(x) for x in cfg)
        try:
            return f()
        finally:
            del os.environ["ATTNSCALE_TRITON_TUNING"]

    return run


def tune(args) -> dict:
    """Median time of the Triton kernel per tuning, n = args.tune_n, each d; the best per (d, h)."""
    import torch

    dev = torch.device(args.device)
    best = {}
    for d in args.tune_d:
        keys = torch.randn((int(args.tune_n), d), device=dev, dtype=torch.float32) / math.sqrt(d)
        Q = np.random.default_rng(0).standard_normal((args.h, d))
        for h, cfgs in ((1, TUNE_ONE), (args.h, TUNE_MANY)):
            times = {}
            for cfg in cfgs:
                f = with_tuning(cfg, lambda: attention_stats_many(Q[:h], keys, args.beta, backend="torch"))
                times[cfg] = interleaved({"x": f}, 3, torch.cuda.synchronize)["x"]
            best[(d, h)] = min(times, key=times.get)
            print(f"tune d={d} h={h}: " + ", ".join(f"{c}: {t * 1e3:.1f} ms" for c, t in sorted(times.items(), key=lambda x: x[1])),
                  file=sys.stderr, flush=True)
        del keys
        torch.cuda.empty_cache()
    return best


def run_gpu(args) -> list[dict]:
    import torch

    dev = torch.device(args.device)
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    best = tune(args) if args.tune else {}
    rows = []
    for n in (int(x) for x in args.n):
        for d in args.d:
            keys = torch.randn((n, d), generator=gen, device=dev, dtype=torch.float32) / math.sqrt(d)
            Q = torch.randn((args.h, d), generator=gen, device=dev, dtype=torch.float64)
            Q /= Q.norm(dim=1, keepdim=True)
            Qn = Q.to(torch.float32).double().cpu().numpy()  # the queries plain torch uses
            q32 = Q[0].to(torch.float32)
            b, k = args.beta, args.top_k
            ref = plain_torch_stats(q32.double(), keys.double(), b, k) if n * d <= 2e9 else None
            got = attention_stats(Qn[0], keys, b, top_k=k, backend="torch")
            many = attention_stats_many(Qn, keys, b, top_k=k, backend="torch")
            diff = diff_many = float("nan")
            if ref is not None:
                r = (*ref[:4].tolist(), ref[4:].numpy())
                diff = rel_diff((got.max_weight, got.entropy, got.n_eff, got.top_mass, got.output), r)
                diff_many = rel_diff((many.max_weight[0], many.entropy[0], many.n_eff[0], many.top_mass[0], many.output[0]), r)
            methods = {
                "read": lambda: keys.sum(),
                "plain": lambda: plain_torch(q32, keys, b),
                "plain+stats": lambda: plain_torch_stats(q32, keys, b, k),
                "stats": with_tuning(best.get((d, 1)), lambda: attention_stats(Qn[0], keys, b, top_k=k, backend="torch")),
                "many": with_tuning(best.get((d, args.h)), lambda: attention_stats_many(Qn, keys, b, top_k=k, backend="torch")),
            }
            t = interleaved(methods, args.repeats, torch.cuda.synchronize)
            row = {"n": n, "d": d, "h": args.h, "bytes": keys.nbytes, "t": t, "mem": None,
                   "diff": diff, "diff_many": diff_many, "tuning": (best.get((d, 1)), best.get((d, args.h)))}
            print(row, file=sys.stderr, flush=True)
            rows.append(row)
            del keys
            torch.cuda.empty_cache()
    return rows


def markdown(rows: list[dict], args, machine: str) -> str:
    gpu = args.backend == "torch"
    lines = [
        f"Machine: {machine}. Keys {'float32 on the device' if gpu else 'float64'}, beta = {args.beta}, "
        f"top_k = {args.top_k}, {args.repeats} interleaved repeats, medians.",
        "",
        "| n | d | keys MB | read ms | plain ms | plain+stats ms | stats ms | stats GB/s | of read bw "
        f"| vs plain | vs plain+stats | h={args.h} ms | h={args.h} / h=1 | extra MB stats / h={args.h} | rel diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["t"]
        read = t["read"] if not gpu else t["read"]
        gbs = r["bytes"] / t["stats"] / 1e9
        mem = "-" if r["mem"] is None else f"{r['mem']['stats'] / MB:.2f} / {r['mem']['many'] / MB:.2f}"
        lines.append(
            f"| {r['n']:.0e} | {r['d']} | {r['bytes'] / MB:.0f} | {read * 1e3:.1f} | {t['plain'] * 1e3:.1f} "
            f"| {t['plain+stats'] * 1e3:.1f} | {t['stats'] * 1e3:.1f} | {gbs:.1f} | {read / t['stats']:.0%} "
            f"| {t['plain'] / t['stats']:.2f}x | {t['plain+stats'] / t['stats']:.2f}x | {t['many'] * 1e3:.1f} "
            f"| {t['many'] / t['stats']:.2f} | {mem} | {max(r['diff'], r['diff_many']):.1e} |"
        )
    if gpu and any(r.get("tuning") and r["tuning"][0] for r in rows):
        lines += ["", "Triton tuning (tile entries, programs per SM, warps, one-query dot, stages) used, h = 1 / h = "
                  f"{args.h}: " + "; ".join(f"d={r['d']}: {r['tuning'][0]} / {r['tuning'][1]}" for r in rows[: len(args.d)]) + "."]
    if not gpu:
        lines += ["", "read = numba sum over row blocks on all cores; numpy's one-thread keys.sum(): "
                  + ", ".join(f"{r['t']['read1'] * 1e3:.1f} ms" for r in rows) + "."]
    return "\n".join(lines) + "\n"


def machine_name(args) -> str:
    if args.backend == "torch":
        import torch

        return f"{torch.cuda.get_device_name(args.device)}, torch {torch.__version__}"
    name = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name}, {cores} cores usable, load {'%.2f %.2f %.2f' % os.getloadavg()}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("numpy", "torch"), default="numpy")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--n", nargs="+", type=float, default=[1e6, 1e7])
    parser.add_argument("--d", nargs="+", type=int, default=[3, 64, 128])
    parser.add_argument("--h", type=int, default=32, help="queries of attention_stats_many")
    parser.add_argument("--beta", type=float, default=20.0)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the markdown table to this file")
    parser.add_argument("--tune", action="store_true", help="GPU: sweep the Triton kernel's tuning first, use the best")
    parser.add_argument("--tune-n", type=float, default=5e7)
    parser.add_argument("--tune-d", nargs="+", type=int, default=[64, 128])
    args = parser.parse_args(argv)
    rows = run_gpu(args) if args.backend == "torch" else run_cpu(args)
    text = markdown(rows, args, machine_name(args))
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
