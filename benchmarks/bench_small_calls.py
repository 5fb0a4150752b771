"""Fixed cost of attention_stats / attention_stats_many on small inputs, against plain attention (issue 14).

The report's brute-force checks and ``heat.attention_map_sampled`` call the statistics pass on
10^2-10^5 keys many times, where a call's fixed cost (thread launch, merge of the parts) matters.
Per (n, d, h), side by side in one process, interleaved, medians of ``--repeats`` calls:

- ``attention x h``: :func:`attnscale.attention.attention` (full weight vector, numpy) per query;
- ``stats x h``: :func:`attnscale.attention.attention_stats` per query;
- ``many``: :func:`attnscale.attention.attention_stats_many`, all queries from one read.

::

    .venv/bin/python benchmarks/bench_small_calls.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from attnscale.attention import attention, attention_stats, attention_stats_many

CASES = [(100, 3, 1), (4000, 3, 1), (4000, 3, 3), (4000, 2, 96), (20_000, 3, 3), (100_000, 3, 1), (100_000, 5, 4)]


def _time(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--beta", type=float, default=50.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| n | d | h | attention x h ms | stats x h ms | many ms | attention / many | max diff |")
    print("|---|---|---|---|---|---|---|---|")
    for n, d, h in CASES:
        keys = rng.standard_normal((n, d))
        keys /= np.linalg.norm(keys, axis=1, keepdims=True)
        queries = rng.standard_normal((h, d))
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        methods = {
            "attention": lambda: np.array([attention(q, keys, args.beta).output for q in queries]),
            "stats": lambda: np.array([attention_stats(q, keys, args.beta).output for q in queries]),
            "many": lambda: attention_stats_many(queries, keys, args.beta).output,
        }
        for f in methods.values():  # compile, warm the caches
            f()
        times: dict[str, list[float]] = {name: [] for name in methods}
        names = list(methods)
        for r in range(args.repeats):
            for name in names[r % 3 :] + names[: r % 3]:
                times[name].append(_time(methods[name]))
        ms = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
        diff = float(np.abs(methods["attention"]() - methods["many"]()).max())
        print(f"| {n} | {d} | {h} | {ms['attention']:.3f} | {ms['stats']:.3f} | {ms['many']:.3f} | "
              f"{ms['attention'] / ms['many']:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
