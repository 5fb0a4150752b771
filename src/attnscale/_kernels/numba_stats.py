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

#: Rows of a tile whose per-score work (exp, sums) runs at once for many queries (in L1).
SUB_ROWS = 32


LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of log 2: k * LN2_HI is exact for |k| < 2^11
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e00


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


@numba.njit(cache=True, fastmath={"contract"}, inline="always")
def _exp(t, e, b1, b2, c):  # pragma: no cover - compiled
    r"""``e[:c] = exp(t[:c])`` for ``t <= 0``, within about 1 ulp, in loops LLVM vectorizes.

    ``t = k log 2 + r`` with ``|r| <= log(2) / 2`` (Cody-Waite), :math:`e^r` by its Taylor
    polynomial of degree 13 (remainder below 1e-17), and :math:`2^k` built from its bits in
    two factors, so that results below 2^-1022 round once into the subnormals.  Gaps at or
    below -746 give exactly 0 (as ``LOG_FLOOR`` does with ``math.exp``).
    """
    for i in range(c):
        x = max(t[i], -746.0)
        kf = math.floor(x * INV_LN2 + 0.5)
        r = (x - kf * LN2_HI) - kf * LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        k = np.int64(kf)
        k1 = max(k, -1022)
        b1[i] = (k1 + 1023) << 52
        b2[i] = (k - k1 + 1023) << 52
        e[i] = p
    f1 = b1.view(np.float64)
    f2 = b2.view(np.float64)
    for i in range(c):
        e[i] = e[i] * f1[i] * f2[i]


#: Below this many columns the loop pass adds ``e K_t`` to ``Y`` by a BLAS GEMV, not row by row.
NARROW_D = 8


@numba.njit(cache=True, fastmath={"reassoc"})
def _all_finite(s, j, c):  # pragma: no cover - compiled
    """Whether ``s[j, :c]`` is finite: ``inf - inf`` and ``NaN - NaN`` are NaN, in a sum in any order.

    Not inlined by numba, so that its own fast-math flags reach LLVM, which vectorizes it.
    """
    acc = 0.0
    for r in range(c):
        acc += s[j, r] - s[j, r]
    return acc == 0.0


@numba.njit(cache=True, fastmath={"nnan", "nsz", "reassoc"})
def _max(s, j, c):  # pragma: no cover - compiled
    """Largest of ``s[j, :c]``, finite scores only (``_all_finite`` first): vectorized, not inlined."""
    best = s[j, 0]
    for r in range(1, c):
        best = max(best, s[j, r])
    return best


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, inline="always")
def _sums(t, e, c):  # pragma: no cover - compiled
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    for i in range(c):
        a0 += e[i]
        a1 += t[i] * e[i]
        a2 += e[i] * e[i]
    return a0, a1, a2


@numba.njit(cache=True)
def _lowest(tp, j, k):  # pragma: no cover - compiled
    lw = 0
    for i in range(1, k):
        if tp[j, i] < tp[j, lw]:
            lw = i
    return lw


@numba.njit(cache=True, parallel=True)
def fold_parts(keys, q, betas, bounds, tile, blas, m, rest, s1, s2, y, top, bad):  # pragma: no cover
    """Fill the states of parts ``p`` (rows ``bounds[p]:bounds[p+1]``), shapes ``(P, h)`` / ``(P, h, d)``.

    With ``blas`` the two products of a tile, the scores :math:`K_t Q^T` and :math:`E^T K_t`,
    are BLAS GEMMs on contiguous operands and the work per score runs across the queries
    (many queries, ``_part_gemm``); else loops (one query, bound by reading the keys).
    ``top`` (``(P, h, k)``) is filled with ``-inf`` by the caller; it ends with the part's
    ``k`` largest scores per query (fewer when the part has fewer rows).
    """
    qt = np.ascontiguousarray(q.T)
    for p in numba.prange(bounds.shape[0] - 1):
        _fold_part(p, keys, q, qt, betas, bounds, tile, blas, m, rest, s1, s2, y, top, bad)


@numba.njit(cache=True)
def fold_parts_serial(keys, q, betas, bounds, tile, blas, m, rest, s1, s2, y, top, bad):  # pragma: no cover
    """:func:`fold_parts` on the calling thread: for one part, without the parallel launch (about 0.1 ms)."""
    qt = np.ascontiguousarray(q.T)
    for p in range(bounds.shape[0] - 1):
        _fold_part(p, keys, q, qt, betas, bounds, tile, blas, m, rest, s1, s2, y, top, bad)


@numba.njit(cache=True)
def _fold_part(p, keys, q, qt, betas, bounds, tile, blas, m, rest, s1, s2, y, top, bad):  # pragma: no cover
    if blas:
        _part_gemm(keys, qt, betas, bounds[p], bounds[p + 1], tile, m[p], rest[p], s1[p], s2[p], y[p], top[p], bad, p)
    else:
        _part_loops(keys, q, betas, bounds[p], bounds[p + 1], tile, m[p], rest[p], s1[p], s2[p], y[p], top[p], bad, p)


@numba.njit(cache=True, fastmath={"contract"})
def _rescale(j, best, beta, first, d, mp, rp, s1p, s2p, yp):  # pragma: no cover - compiled
    """Start query ``j``'s sums at its first tile, or rescale them down to a new maximum ``best``;
    returns the factor :math:`e^{\\beta (m_{old} - m_{new})}` (1 at the start)."""
    f = 1.0
    if first:
        rp[j] = 0.0
        s1p[j] = 0.0
        s2p[j] = 1.0
        for cc in range(d):
            yp[j, cc] = 0.0
    else:
        delta = 0.0 if beta == 0.0 else max(beta * (mp[j] - best), LOG_FLOOR)
        f = math.exp(delta)
        s0 = 1.0 + rp[j]
        rp[j] = f * s0
        s1p[j] = f * (s1p[j] + delta * s0)
        s2p[j] = f * f * s2p[j] + 1.0
        for cc in range(d):
            yp[j, cc] *= f
    mp[j] = best
    return f


@numba.njit(cache=True)
def _push_top(tp, j, v, count, low, k):  # pragma: no cover - compiled
    """Offer score ``v`` to query ``j``'s running top-k list."""
    if count[j] < k:
        tp[j, count[j]] = v
        count[j] += 1
        if count[j] == k:
            low[j] = _lowest(tp, j, k)
    elif v > tp[j, low[j]]:
        tp[j, low[j]] = v
        low[j] = _lowest(tp, j, k)


@numba.njit(cache=True, fastmath={"contract"})
def _part_gemm(keys, qt, betas, lo, hi, tile, mp, rp, s1p, s2p, yp, tp, bad, p):  # pragma: no cover
    """Rows ``lo:hi`` for ``h`` queries: per tile ``S = K_t Q^T`` (``(c, h)``, one GEMM), the
    per-score work in blocks of ``SUB_ROWS`` rows that stay in L1 (loops over the queries,
    contiguous, vectorized), then ``Y += E^T K_t`` (one GEMM).

    Each block finds its maxima first; a query whose maximum rises rescales its sums
    (``_rescale``) and the weights of the tile's earlier blocks by the same factor, so the
    tile's weights all refer to the final maximum when ``E^T K_t`` is formed.
    """
    d, h = qt.shape
    k = tp.shape[1]
    s = np.empty(tile * h)
    e = np.empty(tile * h)
    size = min(tile, SUB_ROWS) * h
    t = np.empty(size)
    b1 = np.empty(size, dtype=np.int64)
    b2 = np.empty(size, dtype=np.int64)
    g = np.empty((h, d))
    best = np.empty(h)
    fin = np.empty(h)
    a0 = np.empty(h)
    a1 = np.empty(h)
    a2 = np.empty(h)
    skip = np.empty(h, dtype=np.int64)
    count = np.zeros(h, dtype=np.int64)
    low = np.zeros(h, dtype=np.int64)  # position of the smallest of the top-k list, once full
    first = True
    for a in range(lo, hi, tile):
        c = min(tile, hi - a)
        kt = keys[a : a + c]
        sc = s[: c * h].reshape((c, h))
        np.dot(kt, qt, sc)
        for rb in range(0, c, SUB_ROWS):
            cb = min(SUB_ROWS, c - rb)
            for j in range(h):
                best[j] = sc[rb, j]
                fin[j] = 0.0
            for r in range(rb, rb + cb):
                for j in range(h):
                    v = sc[r, j]
                    fin[j] += v * 0.0  # nan once a score is not finite
                    best[j] = v if v > best[j] else best[j]
            for j in range(h):
                skip[j] = -1
                if fin[j] != 0.0:
                    bad[p] = 1
                    break
                bj = best[j]
                # running top-k: only scores above the k-th best so far are examined
                if count[j] < k or bj > tp[j, low[j]]:
                    for r in range(rb, rb + cb):
                        _push_top(tp, j, sc[r, j], count, low, k)
                if first or bj > mp[j]:
                    at = rb
                    while sc[at, j] != bj:
                        at += 1
                    f = _rescale(j, bj, betas[j], first, d, mp, rp, s1p, s2p, yp)
                    for r in range(rb):  # the tile's earlier weights, to the new maximum
                        e[r * h + j] *= f
                    skip[j] = at - rb  # this row is the implicit 1 of S_0 = 1 + rest
            if bad[p] != 0:
                return
            first = False
            eb = e[rb * h : (rb + cb) * h]
            for r in range(cb):
                for j in range(h):
                    t[r * h + j] = max(betas[j] * (sc[rb + r, j] - mp[j]), LOG_FLOOR)
            _exp(t, eb, b1, b2, cb * h)
            for j in range(h):
                if skip[j] >= 0:
                    eb[skip[j] * h + j] = 0.0
                a0[j] = 0.0
                a1[j] = 0.0
                a2[j] = 0.0
            for r in range(cb):
                for j in range(h):
                    ev = eb[r * h + j]
                    a0[j] += ev
                    a1[j] += t[r * h + j] * ev
                    a2[j] += ev * ev
            for j in range(h):
                rp[j] += a0[j]
                s1p[j] += a1[j]
                s2p[j] += a2[j]
                if skip[j] >= 0:
                    eb[skip[j] * h + j] = 1.0  # the top row enters Y with weight 1
        ec = e[: c * h].reshape((c, h))
        np.dot(ec.T, kt, g)
        yp += g


@numba.njit(cache=True)
def _part_loops(keys, q, betas, lo, hi, tile, mp, rp, s1p, s2p, yp, tp, bad, p):  # pragma: no cover
    """Rows ``lo:hi`` for few queries, in loops (one query: bound by reading the keys)."""
    h, d = q.shape
    k = tp.shape[1]
    s = np.empty((h, tile))
    t = np.empty(tile)
    e = np.empty(tile)
    b1 = np.empty(tile, dtype=np.int64)
    b2 = np.empty(tile, dtype=np.int64)
    count = np.zeros(h, dtype=np.int64)
    low = np.zeros(h, dtype=np.int64)  # position of the smallest of the top-k list, once full
    first = True
    for a in range(lo, hi, tile):
        c = min(tile, hi - a)
        for j in range(h):
            for r in range(c):
                s[j, r] = _dot(keys, a + r, q, j, d)
        for j in range(h):
            beta = betas[j]
            if not _all_finite(s, j, c):
                bad[p] = 1
                break
            best = _max(s, j, c)
            # running top-k: only scores above the k-th best so far are examined
            if count[j] < k or best > tp[j, low[j]]:
                for r in range(c):
                    _push_top(tp, j, s[j, r], count, low, k)
            skip = -1
            if first or best > mp[j]:
                _rescale(j, best, beta, first, d, mp, rp, s1p, s2p, yp)
                skip = 0
                while s[j, skip] != best:  # the first row at the maximum: the implicit 1 of S_0 = 1 + rest
                    skip += 1
            mj = mp[j]
            if beta == 0.0:
                for r in range(c):
                    t[r] = 0.0
            else:
                for r in range(c):
                    t[r] = max(beta * (s[j, r] - mj), LOG_FLOOR)
            _exp(t, e, b1, b2, c)
            if skip >= 0:
                e[skip] = 0.0
            a0, a1, a2 = _sums(t, e, c)
            rp[j] += a0
            s1p[j] += a1
            s2p[j] += a2
            if skip >= 0:
                e[skip] = 1.0  # the top row enters Y with weight 1
            if d < NARROW_D:  # a few columns: one BLAS GEMV, 3x faster than the rows' scalar chains at d = 3
                yp[j] += np.dot(e[:c], keys[a : a + c])
            else:
                for r in range(c):
                    if e[r] != 0.0:
                        _axpy(yp, j, e[r], keys, a + r, d)
        first = False
        if bad[p] != 0:
            break
