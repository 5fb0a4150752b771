r"""Fused attention statistics on a CUDA device, as one Triton kernel (docs/theory.md section 1).

Each program of the kernel streams tiles of ``BN`` rows of the keys (float64, float32,
float16 or bfloat16, read once and widened to float64 in registers), for all ``h`` queries
at once, and keeps per query the online log-sum-exp state of ``attention._Sums`` (``m``,
``rest = S_0 - 1``, ``S_1``, ``S_2``, ``Y``) in float64, with its running ``top_k``
scores.  The programs' states are merged on the device (``merge``) and copied to the
host once.  With ``TRITON_INTERPRET=1`` in the environment from the start of the process, the
same kernel runs on CPU tensors under Triton's interpreter (how the tests check it
without a GPU, in a subprocess: tests/interpret_triton_cases.py).

No input checks here: ``attention.py`` validates, and the kernel counts non-finite key
entries and non-finite scores for it.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import triton
import triton.language as tl

LOG_FLOOR = -1000.0

#: Entries (rows x padded columns) of one tile of keys held in registers as float64, for one
#: query and for many (h > 1, d <= 64 / d >= 128).  Tuned on an H200 (BENCHMARKS.md): 4096 for
#: one query; for 32 queries 2048 at d = 64, 4096 at d = 128.
TILE_ENTRIES = 1 << 12
TILE_ENTRIES_MANY = (1 << 11, 1 << 12)

#: Programs per streaming multiprocessor (each loops over tiles; more programs, more partial states).
PROGRAMS_PER_SM = 4

#: Warps per program.
NUM_WARPS = 4

#: Software-pipelining stages of the loop over tiles (Triton's ``num_stages``).
NUM_STAGES = 3

#: From this padded ``d`` on, one query is padded to 16 and goes through ``tl.dot`` (faster
#: at d = 128 on an H200, slower at d = 64); below, elementwise products and reductions.
ONE_QUERY_DOT_MIN_D = 128

#: Programs under the interpreter (on the CPU), enough to test the merge of their states.
INTERPRET_PROGRAMS = 3


def stats_kernel(
    K, stride_k, Q, B, n, d, n_tiles,
    M_out, R_out, S1_out, S2_out, Y_out, T_out, BAD_out,
    HP: tl.constexpr, DP: tl.constexpr, BN: tl.constexpr, KP: tl.constexpr, TOPK: tl.constexpr,
):
    pid = tl.program_id(0)
    n_prog = tl.num_programs(0)
    cols = tl.arange(0, DP)
    qs = tl.arange(0, HP)
    rows0 = tl.arange(0, BN)
    kidx = tl.arange(0, KP)
    q = tl.load(Q + qs[:, None] * DP + cols[None, :])  # (HP, DP) float64, zero padded
    beta = tl.load(B + qs)  # (HP,)
    zero_beta = beta == 0.0
    m = tl.full((HP,), float("-inf"), tl.float64)
    rest = tl.zeros((HP,), tl.float64)
    s1 = tl.zeros((HP,), tl.float64)
    s2 = tl.zeros((HP,), tl.float64)
    y = tl.zeros((HP, DP), tl.float64)
    top = tl.full((KP, HP), float("-inf"), tl.float64)
    bad_scores = tl.zeros((BN,), tl.int32)
    for tile in range(pid, n_tiles, n_prog):
        rows = tile * BN + rows0
        valid = rows < n
        kt = tl.load(
            K + rows[:, None].to(tl.int64) * stride_k + cols[None, :],
            mask=valid[:, None] & (cols[None, :] < d),
            other=0.0,
        ).to(tl.float64)
        if HP == 1:
            s = tl.sum(kt * q, axis=1)[:, None]  # (BN, 1)
        else:
            s = tl.dot(kt, tl.trans(q), out_dtype=tl.float64)  # (BN, HP)
        bad_scores += tl.sum(((s != s) | (tl.abs(s) == float("inf"))).to(tl.int32), axis=1)
        s_m = tl.where(valid[:, None], s, float("-inf"))
        mt = tl.max(s_m, axis=0)
        at = tl.argmax(s_m, axis=0)
        new = mt > m
        # the tile holds a new maximum: rescale the sums down to it (as _Sums.add)
        delta = tl.where(zero_beta, 0.0, tl.minimum(tl.maximum(beta * (m - mt), -1000.0), 0.0))
        f = tl.where(m == float("-inf"), 0.0, tl.exp(delta))
        s0 = 1.0 + rest
        rest = tl.where(new, f * s0, rest)
        s1 = tl.where(new, f * (s1 + delta * s0), s1)
        s2 = tl.where(new, f * f * s2 + 1.0, s2)
        y = tl.where(new[:, None], f[:, None] * y, y)
        m = tl.where(new, mt, m)
        t = tl.where(zero_beta[None, :], 0.0, tl.maximum(beta[None, :] * (s - m[None, :]), -1000.0))
        e = tl.where(valid[:, None], tl.exp(t), 0.0)
        is_top = (rows0[:, None] == at[None, :]) & new[None, :]  # the implicit 1 of S_0 = 1 + rest
        e_sum = tl.where(is_top, 0.0, e)
        e_y = tl.where(is_top, 1.0, e_sum)
        rest += tl.sum(e_sum, axis=0)
        s1 += tl.sum(t * e_sum, axis=0)
        s2 += tl.sum(e_sum * e_sum, axis=0)
        if HP == 1:
            y += tl.sum(e_y * kt, axis=0)[None, :]
        else:
            y += tl.dot(tl.trans(e_y), kt, out_dtype=tl.float64)
        # running top-k: merge only when some score beats the k-th best so far
        kth = tl.min(tl.where(kidx[:, None] < TOPK, top, float("inf")), axis=0)
        if tl.sum((mt > kth).to(tl.int32)) > 0:
            cand = s_m
            cur = top
            merged = tl.full((KP, HP), float("-inf"), tl.float64)
            for i in tl.static_range(TOPK):
                a = tl.max(cand, axis=0)
                ai = tl.argmax(cand, axis=0)
                b = tl.max(cur, axis=0)
                bi = tl.argmax(cur, axis=0)
                take = a > b
                merged = tl.where(kidx[:, None] == i, tl.where(take, a, b)[None, :], merged)
                cand = tl.where((rows0[:, None] == ai[None, :]) & take[None, :], float("-inf"), cand)
                cur = tl.where((kidx[:, None] == bi[None, :]) & ~take[None, :], float("-inf"), cur)
            top = merged
    tl.store(M_out + pid * HP + qs, m)
    tl.store(R_out + pid * HP + qs, rest)
    tl.store(S1_out + pid * HP + qs, s1)
    tl.store(S2_out + pid * HP + qs, s2)
    tl.store(Y_out + pid * HP * DP + qs[:, None] * DP + cols[None, :], y)
    tl.store(T_out + pid * KP * HP + kidx[:, None] * HP + qs[None, :], top)
    # a non-finite key entry makes its scores NaN or infinite (also against q_j = 0: inf * 0 = NaN)
    tl.store(BAD_out + pid, tl.sum(bad_scores, axis=0))


@functools.cache
def _kernel() -> Any:
    """The jitted kernel: compiled for the GPU, or run by the interpreter when Triton was
    imported with ``TRITON_INTERPRET=1`` (Triton's own library functions follow that setting)."""
    return triton.jit(stats_kernel)


def _tuning(h: int = 1, dp: int = 16) -> tuple[int, int, int, bool, int]:
    """(tile entries, programs per SM, warps, one query through tl.dot, stages) for ``h`` queries and
    padded ``dp``; ATTNSCALE_TRITON_TUNING="e,p,w,dot,stages" overrides (bench_attention.py --tune)."""
    env = os.environ.get("ATTNSCALE_TRITON_TUNING")
    if env:
        e, p, w, dot, stages = env.split(",")
        return int(e), int(p), int(w), dot == "1", int(stages)
    entries = TILE_ENTRIES if h == 1 else TILE_ENTRIES_MANY[dp >= 128]
    return entries, PROGRAMS_PER_SM, NUM_WARPS, dp >= ONE_QUERY_DOT_MIN_D, NUM_STAGES


def _pow2(x: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, x))))


def _programs(device: torch.device, n_tiles: int) -> int:
    if device.type == "cuda":
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        return max(1, min(n_tiles, _tuning()[1] * sms))  # the same for every (h, d) by default
    return max(1, min(n_tiles, INTERPRET_PROGRAMS))


def run(
    qm: np.ndarray,
    keys: Any,
    betas: np.ndarray,
    top_k: int,
    rows: int | None,
    device: torch.device,
    blocks: Callable[[Any], Iterable[Any]],
) -> np.ndarray:
    """Statistics' states of queries ``qm`` over ``keys`` (blocks from ``blocks(keys)``), merged.

    Returns the host array of shape ``(h, 6 + d + top_k)``: per query a flag of non-finite
    key entries and the count of non-finite scores, then ``M, rest, S1, S2``, ``Y`` (``d``) and the ``top_k`` largest
    scores (``-inf`` where fewer), from one device-to-host copy.
    """
    h, d = qm.shape
    dp = max(16, _pow2(d))
    entries, _, warps, one_dot, stages = _tuning(h, dp)
    hp = 1 if h == 1 and not one_dot else max(16, _pow2(h))
    kp = _pow2(top_k)
    bn = rows or max(16, min(256, entries // dp))
    bn = _pow2(bn) if hp == 1 else max(16, _pow2(bn))
    kernel = _kernel()
    q = torch.zeros((hp, dp), dtype=torch.float64, device=device)
    q[:h, :d] = torch.as_tensor(qm, dtype=torch.float64, device=device)
    b = torch.zeros(hp, dtype=torch.float64, device=device)
    b[:h] = torch.as_tensor(betas, dtype=torch.float64, device=device)
    states: list[tuple[torch.Tensor, ...]] = []
    with torch.no_grad():
        for block in blocks(keys):
            kb = block if isinstance(block, torch.Tensor) else torch.from_numpy(np.asarray(block))
            if kb.dtype not in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
                kb = kb.to(torch.float64)
            kb = kb.to(device)
            if kb.stride(1) != 1:
                kb = kb.contiguous()
            n = kb.shape[0]
            n_tiles = -(-n // bn)
            g = _programs(device, n_tiles)
            out = [torch.empty((g, hp), dtype=torch.float64, device=device) for _ in range(4)]
            y = torch.empty((g, hp, dp), dtype=torch.float64, device=device)
            top = torch.empty((g, kp, hp), dtype=torch.float64, device=device)
            bad = torch.empty(g, dtype=torch.int32, device=device)
            with np.errstate(all="ignore"):  # the interpreter computes both sides of tl.where in numpy
                kernel[(g,)](
                    kb, kb.stride(0), q, b, n, d, n_tiles, *out, y, top, bad,
                    HP=hp, DP=dp, BN=bn, KP=kp, TOPK=top_k, num_warps=warps, num_stages=stages,
                )
            states.append((*out, y, top, bad))
    if not states:
        raise ValueError("keys: is empty; expected at least one row")
    m, rest, s1, s2, y, top, bad = (torch.cat(parts) for parts in zip(*states))
    packed = merge(m, rest, s1, s2, y, top, bad, b, h, d, top_k).cpu().numpy()  # the one host copy
    if packed[0, 1] > 0 and len(states) == 1:  # error path: tell non-finite keys from overflowing scores
        packed[:, 0] = float(not bool(torch.isfinite(kb).all()))
    elif packed[0, 1] > 0:  # an iterator was read once: report non-finite entries (overflow is rarer)
        packed[:, 0] = 1.0
    return packed


def merge(m, rest, s1, s2, y, top, bad, beta, h: int, d: int, top_k: int) -> torch.Tensor:
    """Exact merge of the programs' states on the device (``attention._merge_parts`` in torch)."""
    g = m.shape[0]
    big, at = torch.max(m, dim=0)
    gap = m - big
    delta = torch.where(beta == 0.0, torch.zeros_like(gap), torch.clamp(beta * gap, min=LOG_FLOOR))
    delta = torch.nan_to_num(delta, nan=0.0)  # beta = 0 and an infinite gap (a score overflow, flagged)
    f = torch.exp(delta)
    others = torch.ones_like(f)
    others[at, torch.arange(m.shape[1], device=m.device)] = 0.0
    s0 = 1.0 + rest
    total_rest = (f * rest).sum(0) + (f * others).sum(0)
    total_s1 = (f * (s1 + delta * s0)).sum(0)
    total_s2 = (f * f * s2).sum(0)
    total_y = (f[..., None] * y).sum(0)
    cands = top.permute(2, 0, 1).reshape(top.shape[2], g * top.shape[1])
    best = torch.topk(cands, top_k, dim=1).values
    flags = torch.stack((torch.zeros_like(big[0]), bad.sum().to(torch.float64))).expand(h, 2)
    cols = (big[:h, None], total_rest[:h, None], total_s1[:h, None], total_s2[:h, None])
    return torch.cat((flags, *cols, total_y[:h, :d], best[:h]), dim=1)
