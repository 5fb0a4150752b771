r"""Fused attention statistics on the CPU, compiled with numba (docs/theory.md section 1).

One pass over row-major float64 keys for ``h`` queries at once.  The rows are split
into ``P`` contiguous parts (``P`` depends only on ``n``), run in parallel with
``numba.prange``; each part streams its rows in cache-sized tiles and keeps, per
query, the online log-sum-exp state of ``attention._Sums`` (``m``, ``rest = S_0 - 1``,
``S_1``, ``S_2``, ``Y``) and its ``top_k`` largest scores.  The caller merges the
parts' states exactly (``attention._merge_parts``).

No input checks: ``attention.py`` validates.  A non-finite score sets ``bad[p]``
and the caller raises.
"""

from __future__ import annotations

import math
import os

import numba
import numpy as np

if "NUMBA_THREADING_LAYER" not in os.environ:
    # tbb, or workqueue: safe in processes forked after a call (GNU OpenMP is not); attention.py
    # serializes the calls, so workqueue's lack of thread safety does not matter
    numba.config.THREADING_LAYER = "forksafe"

LOG_FLOOR = -1000.0


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, inline="always")
def _dot(keys, row, q, j, d):  # pragma: no cover - compiled
    # reassociation lets LLVM vectorize this reduction; it changes only the order of additions
    acc = 0.0
    for c in range(d):
        acc += keys[row, c] * q[j, c]
    return acc


@numba.njit(cache=True, fastmath={"contract"}, inline="always")
def _axpy(y, j, e, keys, row, d):  # pragma: no cover - compiled
    for c in range(d):
        y[j, c] += e * keys[row, c]


@numba.njit(cache=True, parallel=True)
def fold_parts(keys, q, qt, betas, bounds, tile, blas, m, rest, s1, s2, y, top, bad):  # pragma: no cover
    """Fill the states of parts ``p`` (rows ``bounds[p]:bounds[p+1]``), shapes ``(P, h)`` / ``(P, h, d)``.

    ``qt`` is ``q.T`` (C-contiguous).  With ``blas`` the two products of a tile, scores
    ``K_t Q^T`` and ``E K_t``, are BLAS GEMMs (many queries); else plain loops (one query,
    where the pass is bound by reading the keys).

    ``top`` (``(P, h, k)``) is filled with ``-inf`` by the caller; it ends with the part's
    ``k`` largest scores per query (fewer when the part has fewer rows).
    """
    n_parts = bounds.shape[0] - 1
    h, d = q.shape
    k = top.shape[2]
    for p in numba.prange(n_parts):
        lo = bounds[p]
        hi = bounds[p + 1]
        s = np.empty((tile, h))
        skip = np.empty(h, dtype=np.int64)
        count = np.zeros(h, dtype=np.int64)
        low = np.zeros(h, dtype=np.int64)  # position of the smallest of the top-k list, once full
        mp = m[p]
        rp = rest[p]
        s1p = s1[p]
        s2p = s2[p]
        yp = y[p]
        tp = top[p]
        first = True
        for a in range(lo, hi, tile):
            c = min(tile, hi - a)
            if blas:
                s[:c] = np.dot(keys[a : a + c], qt)
            else:
                for r in range(c):
                    for j in range(h):
                        s[r, j] = _dot(keys, a + r, q, j, d)
            for j in range(h):
                beta = betas[j]
                best = s[0, j]
                at = 0
                finite = True
                for r in range(c):
                    v = s[r, j]
                    if not math.isfinite(v):
                        finite = False
                    if v > best:
                        best = v
                        at = r
                    # running top-k: only scores above the k-th best so far are examined
                    if count[j] < k:
                        tp[j, count[j]] = v
                        count[j] += 1
                        if count[j] == k:
                            lw = 0
                            for i in range(1, k):
                                if tp[j, i] < tp[j, lw]:
                                    lw = i
                            low[j] = lw
                    elif v > tp[j, low[j]]:
                        tp[j, low[j]] = v
                        lw = 0
                        for i in range(1, k):
                            if tp[j, i] < tp[j, lw]:
                                lw = i
                        low[j] = lw
                if not finite:
                    bad[p] = 1
                    continue
                if first or best > mp[j]:
                    if first:
                        rp[j] = 0.0
                        s1p[j] = 0.0
                        s2p[j] = 1.0
                        for cc in range(d):
                            yp[j, cc] = 0.0
                    else:  # the tile holds the new maximum: rescale the sums down to it
                        delta = 0.0 if beta == 0.0 else max(beta * (mp[j] - best), LOG_FLOOR)
                        f = math.exp(delta)
                        s0 = 1.0 + rp[j]
                        rp[j] = f * s0
                        s1p[j] = f * (s1p[j] + delta * s0)
                        s2p[j] = f * f * s2p[j] + 1.0
                        for cc in range(d):
                            yp[j, cc] *= f
                    mp[j] = best
                    skip[j] = at  # this row is the implicit 1 of S_0 = 1 + rest
                    if not blas:
                        _axpy(yp, j, 1.0, keys, a + at, d)
                else:
                    skip[j] = -1
            first = False
            if bad[p] != 0:
                continue
            if blas:
                w = np.empty((h, c))
            for r in range(c):
                for j in range(h):
                    if r == skip[j]:
                        if blas:
                            w[j, r] = 1.0  # the top row enters Y with weight 1
                        continue
                    beta = betas[j]
                    t = 0.0 if beta == 0.0 else max(beta * (s[r, j] - mp[j]), LOG_FLOOR)
                    e = math.exp(t)
                    if blas:
                        w[j, r] = e
                    if e == 0.0:
                        continue
                    rp[j] += e
                    s1p[j] += t * e
                    s2p[j] += e * e
                    if not blas:
                        _axpy(yp, j, e, keys, a + r, d)
            if blas:
                yp += np.dot(w, keys[a : a + c])
