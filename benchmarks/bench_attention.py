"""Benchmark attention_stats against plain numpy softmax attention (issue 2).

Same process, interleaved repeats (the order of the methods rotates every repeat),
median times and the median of the per-repeat speed ratios; peak extra memory of
each method from tracemalloc (numpy reports its allocations to it), in a separate,
untimed call; and the fraction of the machine's memory read bandwidth that
attention_stats reaches (bytes of keys read once / time, against a STREAM-like
sum / dot / copy measured in this process).

Run (the OpenBLAS variables set on some machines here slow numpy down; unset them
for this command only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_attention.py \
        --n 1e6 1e7 --d 3 64 --repeats 5 --sweep --update BENCHMARKS.md

``--update FILE`` replaces the section "## attention_stats (issue 2)" of FILE (or
appends it) with the markdown printed on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import re
import shlex
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from attnscale.attention import CPU_CHUNK_BYTES, _cpu_rows, attention_stats

HEADING = "## attention_stats (issue 2)"
MB = 1e6


# ---------------------------------------------------------------------------
# The baselines: what one writes with plain numpy
# ---------------------------------------------------------------------------


def plain_output(q: np.ndarray, keys: np.ndarray, beta: float) -> np.ndarray:
    """logits = keys @ q * beta; softmax; weights @ keys."""
    logits = keys @ q * beta
    logits -= logits.max()
    weights = np.exp(logits)
    weights /= weights.sum()
    return weights @ keys


def plain_stats(q: np.ndarray, keys: np.ndarray, beta: float, top_k: int) -> tuple:
    """The same, plus the statistics attention_stats returns, from the full weight vector."""
    logits = keys @ q * beta
    logits -= logits.max()
    e = np.exp(logits)
    s0 = e.sum()
    weights = e / s0
    output = weights @ keys
    entropy = math.log(s0) - float(e @ logits) / s0  # = -sum w log w, without log(0)
    top = np.partition(weights, weights.size - top_k)[weights.size - top_k :].sum()
    return float(weights.max()), entropy, 1.0 / float(weights @ weights), float(top), output


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------


def timed(f: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def peak_extra_bytes(f: Callable[[], object]) -> int:
    """Peak of the memory newly allocated (and traced) while ``f`` runs."""
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def memory_bandwidth(nbytes: int, repeats: int) -> dict[str, float]:
    """STREAM-like bandwidths in GB/s (medians): sum (one thread), dot (BLAS threads), copy."""
    a = np.ones(nbytes // 8)
    b = np.zeros_like(a)
    out = {
        "sum": nbytes / statistics.median(timed(a.sum) for _ in range(repeats)),
        "dot": nbytes / statistics.median(timed(lambda: a @ a) for _ in range(repeats)),
        "copy": 2 * nbytes / statistics.median(timed(lambda: np.copyto(b, a)) for _ in range(repeats)),
    }
    return {k: v / 1e9 for k, v in out.items()}


def make_keys(n: int, d: int, rng: np.random.Generator, block: int = 1 << 20) -> np.ndarray:
    """Gaussian keys scaled by 1/sqrt(d), generated in place (no n-sized temporaries)."""
    keys = np.empty((n, d))
    for start in range(0, n, block):
        rng.standard_normal(out=keys[start : start + block])
    keys *= 1.0 / math.sqrt(d)
    return keys


def compare(q: np.ndarray, keys: np.ndarray, beta: float, top_k: int, repeats: int) -> dict:
    """Interleaved timings, speed ratios, peak extra memory and agreement of the three methods."""
    methods = {
        "plain": lambda: plain_output(q, keys, beta),
        "plain+stats": lambda: plain_stats(q, keys, beta, top_k),
        "stats": lambda: attention_stats(q, keys, beta, top_k=top_k),
    }
    # agreement (the benchmark must compare equal work)
    ref, got = plain_stats(q, keys, beta, top_k), attention_stats(q, keys, beta, top_k=top_k)
    mine = (got.max_weight, got.entropy, got.n_eff, got.top_mass)
    rel = max(abs(a - b) / abs(b) for a, b in zip(mine, ref[:4]) if b != 0)
    rel = max(rel, float(np.max(np.abs(got.output - ref[4]))) / float(np.max(np.abs(ref[4]))))

    times: dict[str, list[float]] = {k: [] for k in methods}
    names = list(methods)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(methods[name]))
    return {
        "n": keys.shape[0],
        "d": keys.shape[1],
        "keys_bytes": keys.nbytes,
        "median_s": {k: statistics.median(v) for k, v in times.items()},
        "ratio_plain": statistics.median(p / s for p, s in zip(times["plain"], times["stats"])),
        "ratio_stats": statistics.median(p / s for p, s in zip(times["plain+stats"], times["stats"])),
        "memory": {name: peak_extra_bytes(f) for name, f in methods.items()},
        "rel_diff": rel,
    }


def sweep(q: np.ndarray, keys: np.ndarray, beta: float, repeats: int) -> dict[int, float]:
    """Median time of attention_stats per chunk size around the default (interleaved)."""
    base = _cpu_rows(keys.shape[1])
    chunks = sorted({max(64, base // 8), max(64, base // 4), max(64, base // 2), base, 2 * base, 4 * base, 8 * base})
    times: dict[int, list[float]] = {c: [] for c in chunks}
    for r in range(repeats):
        for c in chunks[r % len(chunks) :] + chunks[: r % len(chunks)]:
            times[c].append(timed(lambda: attention_stats(q, keys, beta, chunk_size=c)))
    return {c: statistics.median(v) for c, v in times.items()}


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def blas_description() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed: BLAS kernel not recorded"
    rows = [
        f"{i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')}, {i.get('num_threads')} threads"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return "; ".join(rows) or "no BLAS found by threadpoolctl"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown(configs: dict[str, dict], meta: dict) -> str:
    lines = [
        HEADING,
        "",
        "attention_stats (one streaming pass, chunks in cache) against plain numpy softmax attention",
        "(`logits = keys @ q * beta; softmax; weights @ keys`), and against the same plus the statistics",
        "attention_stats returns (max weight, entropy, n_eff, top-k mass by `np.partition`).",
        f"Same process, {meta['repeats']} interleaved repeats, medians; speed-up = median over repeats of",
        "t(plain) / t(attention_stats); extra memory = peak of numpy allocations during one call",
        "(tracemalloc); bandwidth = bytes of keys / time, as a fraction of the best STREAM-like read",
        "bandwidth (sum or dot) measured in the same process and BLAS setting.",
        "",
        "Reproduce:",
        "",
        "    " + meta["command"],
        "",
        f"- machine: {meta['cpu']}, {meta['cores']} cores, shared with other jobs; load average "
        f"(1, 5, 15 min) {meta['load_before']} before, {meta['load_after']} after",
        f"- numpy {np.__version__}, {meta['blas']}; OPENBLAS_CORETYPE={meta['coretype']}, "
        f"OPENBLAS_L2_SIZE={meta['l2']}",
        f"- default chunk: {CPU_CHUNK_BYTES // 1024} KiB working set, rows = "
        + ", ".join(f"{_cpu_rows(d)} at d={d}" for d in meta["dims"]),
    ]
    for label, run in configs.items():
        bw = run["bandwidth"]
        best = max(bw["sum"], bw["dot"])
        lines += [
            "",
            f"### BLAS threads: {label}",
            "",
            f"Memory bandwidth (GB/s, medians): sum {bw['sum']:.1f} (one thread), dot {bw['dot']:.1f} "
            f"(BLAS threads), copy {bw['copy']:.1f} (read + write).",
            "",
            "| n | d | keys MB | plain ms | plain+stats ms | attention_stats ms | speed-up vs plain "
            "| vs plain+stats | extra MB plain / plain+stats / stats | stats GB/s | of read bw | max rel diff |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in run["results"]:
            t = r["median_s"]
            gbs = r["keys_bytes"] / t["stats"] / 1e9
            mem = r["memory"]
            lines.append(
                f"| {r['n']:.0e} | {r['d']} | {r['keys_bytes'] / MB:.0f} | {t['plain'] * 1e3:.1f} "
                f"| {t['plain+stats'] * 1e3:.1f} | {t['stats'] * 1e3:.1f} | {r['ratio_plain']:.2f}x "
                f"| {r['ratio_stats']:.2f}x | {mem['plain'] / MB:.0f} / {mem['plain+stats'] / MB:.0f} / "
                f"{mem['stats'] / MB:.2f} | {gbs:.1f} | {gbs / best:.0%} | {r['rel_diff']:.1e} |"
            )
        for n, d, table in run["sweeps"]:
            lines += [
                "",
                f"Chunk size sweep (attention_stats, n = {n:.0e}, d = {d}, medians; default {_cpu_rows(d)} rows):",
                "",
                "| rows per chunk | KiB of keys | ms |",
                "|---|---|---|",
            ]
            lines += [f"| {c} | {c * d * 8 / 1024:.0f} | {s * 1e3:.1f} |" for c, s in table.items()]
    return "\n".join(lines) + "\n"


#: Hand-written notes after this line of the section survive ``--update``.
NOTES_MARKER = "<!-- notes below are written by hand and kept by --update -->"


def update_section(path: str, text: str) -> None:
    """Replace this benchmark's section of ``path`` (up to the next '## ' heading), or append it.

    The hand-written notes after ``NOTES_MARKER`` in the old section are kept.
    """
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    match = pattern.search(old)
    if match:
        section = match.group(0)
        notes = section[section.index(NOTES_MARKER) :].rstrip("\n") if NOTES_MARKER in section else NOTES_MARKER
        new = old[: match.start()] + text + "\n" + notes + "\n\n" + old[match.end() :]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n" + NOTES_MARKER + "\n"
    with open(path, "w") as f:
        f.write(new.rstrip("\n") + "\n")


def blas_limit(label: str):
    """Context manager limiting BLAS threads (``label`` an integer), or doing nothing ("default")."""
    if label == "default":
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # needed only for this option

    return threadpool_limits(limits=int(label), user_api="blas")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", nargs="+", type=float, default=[1e6, 1e7], help="numbers of keys")
    parser.add_argument("--d", nargs="+", type=int, default=[3, 64], help="key dimensions")
    parser.add_argument("--beta", type=float, default=20.0)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bandwidth-mb", type=int, default=512, help="array size of the STREAM-like test")
    parser.add_argument("--sweep", action="store_true", help="also time chunk sizes at n = 1e6, each d")
    parser.add_argument(
        "--blas-threads",
        nargs="+",
        default=["default"],
        help="BLAS thread settings to run: 'default' and/or integers (these need threadpoolctl)",
    )
    parser.add_argument("--update", metavar="FILE", help="replace the section in FILE (BENCHMARKS.md)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    load_before = "%.2f %.2f %.2f" % os.getloadavg()
    configs: dict[str, dict] = {label: {"results": [], "sweeps": []} for label in args.blas_threads}
    for label in args.blas_threads:
        with blas_limit(label):
            configs[label]["bandwidth"] = memory_bandwidth(args.bandwidth_mb * 2**20, args.repeats)
    for n in args.n:
        for d in args.d:
            keys = make_keys(int(n), d, rng)
            q = rng.standard_normal(d)
            q /= np.linalg.norm(q)
            for label in args.blas_threads:
                with blas_limit(label):
                    configs[label]["results"].append(compare(q, keys, args.beta, args.top_k, args.repeats))
                print(label, configs[label]["results"][-1], file=sys.stderr, flush=True)
            del keys
    if args.sweep:
        for d in args.d:
            keys = make_keys(10**6, d, rng)
            q = rng.standard_normal(d)
            q /= np.linalg.norm(q)
            for label in args.blas_threads:
                with blas_limit(label):
                    configs[label]["sweeps"].append((10**6, d, sweep(q, keys, args.beta, args.repeats)))
                print(label, configs[label]["sweeps"][-1], file=sys.stderr, flush=True)
    meta = {
        "repeats": args.repeats,
        "command": "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_attention.py "
        + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": "%.2f %.2f %.2f" % os.getloadavg(),
        "blas": blas_description(),
        "coretype": os.environ.get("OPENBLAS_CORETYPE", "unset"),
        "l2": os.environ.get("OPENBLAS_L2_SIZE", "unset"),
        "dims": sorted(set(args.d)),
    }
    text = markdown(configs, meta)
    print(text)
    if args.update:
        update_section(args.update, text)


if __name__ == "__main__":
    main()
