r"""Exact softmax attention for given keys: the weights, the output and streaming statistics.

Implements docs/theory.md section 1 (setup and notation).  For a query
:math:`q \in \mathbb{R}^d`, keys :math:`K_1, \dots, K_n \in \mathbb{R}^d`, an
inverse temperature :math:`\beta \ge 0` and a value matrix :math:`V` of shape
``(d_v, d)`` (the identity by default),

.. math::

    w_i = \frac{e^{\beta \langle q, K_i\rangle}}{\sum_j e^{\beta \langle q, K_j\rangle}},
    \qquad y = \sum_i w_i\, V K_i = V \sum_i w_i K_i .

:func:`attention` returns all ``n`` weights and the output.
:func:`attention_stats` returns the summary statistics of section 1 (top weight,
entropy, effective number of keys, top-k mass, output) from one streaming pass
over the keys, with memory independent of ``n``: the keys are read in chunks
that stay in cache, and each chunk is folded into a running log-sum-exp state.
:func:`attention_stats_many` does the same for ``h`` queries from one read of the
keys.  The pass is compiled: numba on the CPU (parallel over row ranges whose
states are merged exactly), a Triton kernel on CUDA devices (private kernels in
``attnscale._kernels``); numpy and plain torch remain the fallbacks.

Keys need not lie on the unit sphere here.  Everything is float64; the logits
:math:`\beta \langle q, K_i\rangle` are never formed, only the gaps
:math:`\beta(\langle q, K_i\rangle - \max_j \langle q, K_j\rangle) \le 0`, so no
``beta`` (up to the largest float) overflows.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validate import InputError, InputTypeError, check_beta, check_choice, check_int, check_matrix, check_vector

#: Backends of :func:`attention_stats`.
BACKENDS = ("numpy", "torch")

#: Keys (rows x columns) from which :func:`attention_stats` streams two halves on two threads:
#: 4M entries (32 MB), where the pass is memory bound and one core does not saturate memory.
PARALLEL_MIN_ELEMENTS = 1 << 22

#: Default ``k`` of the top-k mass.
DEFAULT_TOP_K = 10

#: Working set of one CPU chunk in bytes (its keys, ``8 d`` bytes a row, and
#: 32 bytes a row of scratch): about one core's L2 cache, so the chunk read from
#: memory once is read again from cache (measured in BENCHMARKS.md,
#: "attention_stats (issue 2)").  It also keeps both products of a chunk,
#: ``(c, d) @ (d, 2)`` and ``(2, c) @ (c, d)``, at ``2 c d <= 2^18`` multiply-adds,
#: where OpenBLAS runs a GEMM on the calling thread.
CPU_CHUNK_BYTES = 1 << 20

#: Row bounds of a CPU chunk: at least enough rows to amortize the fixed cost of
#: a numpy call; at most 8192, so the dot products stay below the 10000 elements
#: from which OpenBLAS splits them across threads (a threaded BLAS call on a busy
#: machine waits for a core).
CPU_CHUNK_ROWS = (1 << 8, 1 << 13)

#: Bytes of keys per chunk on a CUDA device (one chunk is one batch of kernels).
CUDA_CHUNK_BYTES = 1 << 28

#: Largest chunk (rows) on a CUDA device.
CUDA_CHUNK_ROWS = 1 << 22

#: Floor on the logit gaps ``beta (s_i - max s)``: below ``log`` of the smallest
#: subnormal (-745.13), so ``exp`` of it is exactly 0, as is ``gap * exp(gap)``.
LOG_FLOOR = -1000.0


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Attention:
    r"""All attention weights of one query and its output (docs/theory.md section 1).

    Attributes
    ----------
    weights : numpy.ndarray
        Shape ``(n,)``, :math:`w_i = e^{\beta s_i} / \sum_j e^{\beta s_j}` with
        :math:`s_i = \langle q, K_i\rangle`; read-only.
    output : numpy.ndarray
        Shape ``(d_v,)``, :math:`y = V \sum_i w_i K_i`; read-only.

    Arrays compare by identity (``eq=False``): compare fields with numpy.

    Examples
    --------
    >>> att = attention([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], beta=0.0)
    >>> att.weights, att.output
    (array([0.5, 0.5]), array([0.5, 0.5]))
    """

    weights: np.ndarray
    output: np.ndarray


@dataclass(frozen=True, eq=False)
class AttentionStats:
    r"""Summary statistics of one attention draw (docs/theory.md section 1).

    Attributes
    ----------
    max_weight : float
        Top weight :math:`W_1 = \max_i w_i`.
    entropy : float
        :math:`-\sum_i w_i \log w_i` (nats), in :math:`[0, \log n]`.
    n_eff : float
        Effective number of keys :math:`1 / \sum_i w_i^2`, in :math:`[1, n]`.
    top_mass : float
        Mass :math:`\sum_{k \le \mathrm{top\_k}} W_{(k)}` of the ``top_k`` largest
        weights (1 when ``top_k >= n``).
    output : numpy.ndarray
        Shape ``(d_v,)``, :math:`y = V \sum_i w_i K_i`; read-only.
    top_k : int
        The ``k`` of ``top_mass``.

    Arrays compare by identity (``eq=False``): compare fields with numpy.

    Examples
    --------
    >>> st = attention_stats([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], beta=0.0, top_k=1)
    >>> st.max_weight, st.n_eff, st.top_mass, st.top_k
    (0.5, 2.0, 0.5, 1)
    """

    max_weight: float
    entropy: float
    n_eff: float
    top_mass: float
    output: np.ndarray
    top_k: int = DEFAULT_TOP_K


@dataclass(frozen=True, eq=False)
class AttentionStatsBatch:
    r"""Summary statistics of ``h`` queries over the same keys (docs/theory.md section 1).

    The result of :func:`attention_stats_many`, whatever ``h`` (also ``h = 1``): row
    ``j`` of every array belongs to query ``Q[j]`` and equals the fields of
    ``attention_stats(Q[j], keys, beta[j])`` up to float64 round-off.

    Attributes
    ----------
    max_weight, entropy, n_eff, top_mass : numpy.ndarray
        Shape ``(h,)`` each, as in :class:`AttentionStats`; read-only.
    output : numpy.ndarray
        Shape ``(h, d_v)``, row ``j`` is :math:`y_j = V \sum_i w_{ij} K_i`; read-only.
    top_k : int
        The ``k`` of ``top_mass``.

    Arrays compare by identity (``eq=False``): compare fields with numpy.

    Examples
    --------
    >>> keys = [[1.0, 0.0], [0.0, 1.0]]
    >>> b = attention_stats_many([[1.0, 0.0], [0.0, 0.0]], keys, beta=[np.log(3.0), 1.0], top_k=1)
    >>> b.max_weight.round(4), len(b)
    (array([0.75, 0.5 ]), 2)
    >>> b[1].n_eff
    2.0
    """

    max_weight: np.ndarray
    entropy: np.ndarray
    n_eff: np.ndarray
    top_mass: np.ndarray
    output: np.ndarray
    top_k: int = DEFAULT_TOP_K

    def __len__(self) -> int:
        return int(self.max_weight.shape[0])

    def __getitem__(self, j: int) -> AttentionStats:
        """The statistics of query ``j`` as an :class:`AttentionStats`."""
        return AttentionStats(
            max_weight=float(self.max_weight[j]),
            entropy=float(self.entropy[j]),
            n_eff=float(self.n_eff[j]),
            top_mass=float(self.top_mass[j]),
            output=_frozen(self.output[j].copy()),
            top_k=self.top_k,
        )


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def attention(q: Any, keys: Any, beta: float, values: Any = None) -> Attention:
    r"""Softmax attention weights of ``q`` over ``keys`` and the output, exactly.

    .. math::

        w_i = \exp\Big(\beta s_i - \log \sum_j e^{\beta s_j}\Big), \quad
        s_i = \langle q, K_i\rangle, \qquad y = V \sum_i w_i K_i,

    computed by log-sum-exp from the gaps :math:`\beta (s_i - \max_j s_j)`
    (docs/theory.md section 1).  Holds all ``n`` weights; for statistics only,
    :func:`attention_stats` streams with memory independent of ``n``.

    Parameters
    ----------
    q : array_like, shape (d,)
        Query, finite (need not be a unit vector).
    keys : array_like, shape (n, d)
        Keys as rows, finite (need not lie on the sphere).
    beta : float
        Inverse temperature, finite and ``>= 0``; ``beta = 0`` gives uniform weights.
    values : array_like, shape (d_v, d), optional
        Value matrix :math:`V`: the value of key :math:`K_i` is :math:`V K_i`.
        ``None`` (default) is the identity, so ``output`` has shape ``(d,)``.

    Returns
    -------
    Attention
        ``weights`` (shape ``(n,)``, summing to 1) and ``output`` (shape ``(d_v,)``).

    Raises
    ------
    ValueError, TypeError
        Bad shapes, non-finite entries, ``beta < 0``; or scores
        :math:`\langle q, K_i\rangle` that overflow float64.

    Examples
    --------
    >>> keys = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> att = attention([1.0, 0.0], keys, beta=np.log(2.0))
    >>> att.weights.round(4)
    array([0.5714, 0.2857, 0.1429])
    >>> att.output.round(4)
    array([0.4286, 0.2857])
    >>> attention([1.0, 0.0], keys, 1.0, values=[[2.0, 0.0]]).output.shape
    (1,)
    """
    qv = _check_query(q)
    d = qv.shape[0]
    k = check_matrix(keys, "keys", cols=d)
    b = check_beta(beta)
    v = _check_values(values, d)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected and handled explicitly
        s = k @ qv
        bad = ~np.isfinite(s)
        if np.any(bad):
            _check_top_score(float(s[bad][0]))
        e = np.exp(_logit_gaps(b, s - s.max()))
    total = e.sum()
    weights = e / total
    output = _apply_values(v, (e @ k) / total)
    return Attention(weights=_frozen(weights), output=_frozen(output))


def attention_stats(
    q: Any,
    keys: Any,
    beta: float,
    values: Any = None,
    *,
    top_k: int = DEFAULT_TOP_K,
    chunk_size: int | None = None,
    backend: str = "numpy",
    device: Any = None,
    threads: int | None = None,
) -> AttentionStats:
    r"""Summary statistics of attention in one streaming pass, memory independent of ``n``.

    With scores :math:`s_i = \langle q, K_i\rangle`, running maximum :math:`m`
    and gaps :math:`t_i = \beta (s_i - m) \le 0`, one pass over the keys keeps

    .. math::

        S_0 = \sum_i e^{t_i},\quad S_1 = \sum_i t_i e^{t_i},\quad
        S_2 = \sum_i e^{2 t_i},\quad Y = \sum_i e^{t_i} K_i

    (online log-sum-exp: when :math:`m` grows by :math:`\delta`, :math:`S_0, Y`
    are multiplied by :math:`a = e^{-\beta\delta}`, :math:`S_2` by :math:`a^2`,
    and :math:`S_1 \to a (S_1 - \beta \delta S_0)`), plus the ``top_k`` largest
    scores.  Then (docs/theory.md section 1)

    .. math::

        W_1 = \frac{1}{S_0},\quad H = \log S_0 - \frac{S_1}{S_0},\quad
        n_\mathrm{eff} = \frac{S_0^2}{S_2},\quad
        \mathrm{top\_mass} = \frac{\sum_{k \le \mathrm{top\_k}} e^{t_{(k)}}}{S_0},\quad
        y = V \frac{Y}{S_0}.

    :math:`S_0 - 1` (all terms but one of the top key's) is summed separately,
    so :math:`H = \log1p(S_0 - 1) - S_1 / S_0` keeps its relative accuracy when one
    key takes almost all the weight.  Only scores above the running ``top_k``-th
    best are candidates for the top-k mass.

    Parameters
    ----------
    q : array_like, shape (d,)
        Query, finite (need not be a unit vector).
    keys : array_like of shape (n, d), or an iterator of such arrays
        Keys as rows, finite.  An *iterator* (e.g. a generator) of 2-D blocks
        streams keys that never sit in memory together; a list is read as one
        matrix.  With ``backend="torch"`` keys (or blocks) may be torch tensors.
    beta : float
        Inverse temperature, finite and ``>= 0`` (``0``: uniform weights).
    values : array_like, shape (d_v, d), optional
        Value matrix :math:`V` (identity when ``None``).
    top_k : int, default 10
        ``k`` of the top-k mass, ``>= 1``.
    chunk_size : int, optional
        Rows per chunk (the tile of the compiled passes); default sized so a chunk
        of keys stays in cache on the CPU (``TILE_BYTES`` for numba's loops,
        ``GEMM_TILE_BYTES`` for its GEMMs, ``CPU_CHUNK_BYTES`` for numpy), or tuned for the Triton kernel.  Results do
        not depend on it beyond float64 round-off.
    backend : {"numpy", "torch"}
        ``"numpy"``: float64 C-contiguous arrays go through one fused pass compiled
        with numba, parallel over row ranges on all cores (``USE_NUMBA``); other
        inputs, or without numba, through numpy chunk by chunk.  ``"torch"`` runs
        the pass with PyTorch (``pip install 'attnscale[torch]'``) on ``device``, by
        default the device of ``keys`` when it is a tensor, else the CPU; on a CUDA
        device (keys float64, float32, float16 or bfloat16) it is one Triton kernel
        with float64 accumulation and one device-to-host copy (``USE_TRITON``).
    device : str or torch.device, optional
        Torch device (e.g. ``"cuda"``); only with ``backend="torch"``.
    threads : int, optional
        NumPy backend with ``keys`` an array: split the rows into this many
        contiguous parts, stream them in parallel and merge the parts' states
        exactly (numba runs the parts on its thread pool, ``NUMBA_NUM_THREADS``;
        numpy on up to as many threads as cores).  Default with numba:
        ``min(MAX_PARTS, ceil(n / PART_ROWS))`` parts; with numpy: 2 parts once
        the keys reach ``PARALLEL_MIN_ELEMENTS`` entries, else 1.  The split
        depends only on ``n``, ``d`` and ``threads``, never on the machine, so
        results are reproducible everywhere.

    Returns
    -------
    AttentionStats
        With ``top_k`` recorded.  Memory used, whatever ``n``: one chunk's
        working set (``CPU_CHUNK_BYTES``, about 1 MiB, numpy) plus ``O(top_k + d)``,
        or per part one tile's scratch and its state (``MAX_PARTS`` parts, numba),
        or per program of the Triton kernel its state.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, non-finite entries, ``beta < 0``, ``top_k < 1``, an unknown
        backend, or scores that overflow float64.
    ImportError
        ``backend="torch"`` without PyTorch installed.

    Examples
    --------
    >>> keys = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> st = attention_stats([1.0, 0.0], keys, beta=np.log(2.0), top_k=2)
    >>> round(st.max_weight, 4), round(st.n_eff, 4), round(st.top_mass, 4)
    (0.5714, 2.3333, 0.8571)
    >>> round(st.entropy, 4)
    0.9557
    >>> st.output.round(4)
    array([0.4286, 0.2857])
    >>> blocks = (keys[i:i + 2] for i in range(0, 3, 2))   # an iterator of blocks
    >>> round(attention_stats([1.0, 0.0], blocks, np.log(2.0)).max_weight, 4)
    0.5714
    """
    qv = _check_query(q)
    b = check_beta(beta)
    batch = _stats(qv[None, :], keys, np.array([b]), values, top_k, chunk_size, backend, device, threads)
    return batch[0]


def attention_stats_many(
    Q: Any,
    keys: Any,
    beta: Any,
    values: Any = None,
    *,
    top_k: int = DEFAULT_TOP_K,
    chunk_size: int | None = None,
    backend: str = "numpy",
    device: Any = None,
    threads: int | None = None,
) -> AttentionStatsBatch:
    r"""Statistics of ``h`` queries over the same keys, from one read of the keys.

    Row ``j`` of the result is :func:`attention_stats` of query ``Q[j]`` at inverse
    temperature ``beta[j]`` (docs/theory.md section 1): the same running sums
    :math:`S_0, S_1, S_2, Y` and top-k scores, kept for every query while each block of
    keys is in cache (numba on the CPU, a Triton kernel on CUDA).  Always returns an
    :class:`AttentionStatsBatch`, also for ``h = 1`` (use :func:`attention_stats` for
    one query and an :class:`AttentionStats`).

    Parameters
    ----------
    Q : array_like, shape (h, d)
        Queries as rows, finite, ``h >= 1``.
    keys : array_like of shape (n, d), or an iterator of such arrays
        As in :func:`attention_stats` (torch tensors, float32 or bfloat16 included, with
        ``backend="torch"``).  An iterator is read once for all queries.
    beta : float or array_like, shape (h,)
        Inverse temperatures, finite and ``>= 0``: one shared, or one per query.
    values : array_like, shape (d_v, d), optional
        Value matrix :math:`V`, shared by all queries (identity when ``None``).
    top_k, chunk_size, backend, device, threads
        As in :func:`attention_stats`.

    Returns
    -------
    AttentionStatsBatch
        Arrays of shape ``(h,)`` and ``output`` of shape ``(h, d_v)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`attention_stats`, naming ``Q`` or ``beta`` for bad queries or
        temperatures (e.g. ``beta`` of the wrong length).

    Examples
    --------
    >>> keys = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> Q = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> b = attention_stats_many(Q, keys, beta=np.log(2.0), top_k=2)
    >>> b.max_weight.round(4), b.output.shape
    (array([0.5714, 0.5   ]), (2, 2))
    >>> bool(b.max_weight[0] == attention_stats(Q[0], keys, np.log(2.0), top_k=2).max_weight)
    True
    """
    qm = check_matrix(Q, "Q")
    check_int(qm.shape[1], "Q.shape[1]", minimum=1)
    betas = _check_betas(beta, qm.shape[0])
    return _stats(qm, keys, betas, values, top_k, chunk_size, backend, device, threads)


def _stats(
    qm: np.ndarray,
    keys: Any,
    betas: np.ndarray,
    values: Any,
    top_k: Any,
    chunk_size: Any,
    backend: Any,
    device: Any,
    threads: Any,
) -> AttentionStatsBatch:
    """Validate the options, pick the engine, and run it for queries ``qm`` (checked) and ``betas``."""
    d = qm.shape[1]
    v = _check_values(values, d)
    k = check_int(top_k, "top_k", minimum=1)
    rows = None if chunk_size is None else check_int(chunk_size, "chunk_size", minimum=1)
    check_choice(backend, "backend", BACKENDS)
    parts = None if threads is None else check_int(threads, "threads", minimum=1)
    if backend == "numpy":
        if device is not None:
            raise InputError(f"device: got {device!r}; a device is only used with backend='torch'")
        if _compiled_cpu_applies(keys, d):
            return _numba_stats(qm, keys, betas, v, k, rows, parts)
        rows = rows or _cpu_rows(d)
        if qm.shape[0] == 1 and isinstance(keys, np.ndarray) and keys.ndim == 2 and keys.shape[1] == d:
            if parts is None:
                parts = 2 if keys.size >= PARALLEL_MIN_ELEMENTS else 1
            if parts > 1 and keys.shape[0] >= 2 * parts:
                return _as_batch([_parallel_stats(qm[0], keys, float(betas[0]), v, k, rows, parts)], k)
        folds = [_NumpyFolder(qv, float(b), k, rows) for qv, b in zip(qm, betas)]
    else:
        torch_device = _torch_device(_import_torch(), device, _first_tensor_device(keys))
        if _triton_applies(torch_device):
            from ._kernels import triton_stats

            packed = triton_stats.run(qm, keys, betas, k, rows, torch_device, lambda b: _blocks(b, d, backend))
            return _finish_packed(packed, betas, v, k, d)
        folds = [_TorchFolder(qv, float(b), k, rows, device, _first_tensor_device(keys)) for qv, b in zip(qm, betas)]
    step = folds[0].rows
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected and handled explicitly
        for block in _blocks(keys, d, backend):
            for start in range(0, block.shape[0], step):
                chunk = block[start : start + step]
                for fold in folds:  # the chunk is read from memory once, then from cache
                    fold(chunk)
        if folds[0].sums.y is None:
            check_matrix(np.empty((0, d)), "keys", cols=d)  # raises: no rows at all
        return _as_batch([_finish(f.sums, f.top.scores, f.beta, v, k) for f in folds], k)


def _as_batch(stats: list[AttentionStats], top_k: int) -> AttentionStatsBatch:
    return AttentionStatsBatch(
        max_weight=_frozen(np.array([s.max_weight for s in stats])),
        entropy=_frozen(np.array([s.entropy for s in stats])),
        n_eff=_frozen(np.array([s.n_eff for s in stats])),
        top_mass=_frozen(np.array([s.top_mass for s in stats])),
        output=_frozen(np.stack([s.output for s in stats])),
        top_k=top_k,
    )


def _parallel_stats(
    q: np.ndarray, keys: np.ndarray, beta: float, values: np.ndarray | None, top_k: int, rows: int, parts: int
) -> AttentionStats:
    """Stream ``parts`` contiguous row ranges on threads, then merge their states in order."""
    from concurrent.futures import ThreadPoolExecutor

    bounds = np.linspace(0, keys.shape[0], parts + 1).astype(np.int64)
    folds = [_NumpyFolder(q, beta, top_k, rows) for _ in range(parts)]

    def stream(j: int) -> None:
        with np.errstate(over="ignore", invalid="ignore"):
            part = keys[bounds[j] : bounds[j + 1]]
            for start in range(0, part.shape[0], rows):
                folds[j](part[start : start + rows])

    with ThreadPoolExecutor(max_workers=min(parts, os.cpu_count() or 1)) as pool:
        list(pool.map(stream, range(parts)))
    main = folds[0]
    for other in folds[1:]:
        main.sums.add(other.sums.m, other.sums.rest, other.sums.s1, other.sums.s2, other.sums.y)
        main.top.update(other.top.scores, float(other.top.scores.max()))
    with np.errstate(over="ignore", invalid="ignore"):
        return _finish(main.sums, main.top.scores, beta, values, top_k)


# ---------------------------------------------------------------------------
# Compiled engines: numba on the CPU, Triton on CUDA (private kernels in _kernels/)
# ---------------------------------------------------------------------------

#: Use the numba kernel for float64 C-contiguous keys when numba is installed (else numpy).
USE_NUMBA = True

#: Use the Triton kernel with ``backend="torch"`` on CUDA devices, and on the CPU under
#: Triton's interpreter (``TRITON_INTERPRET=1``), when Triton is installed (else plain torch).
USE_TRITON = True

#: Largest number of row ranges (parts) of the numba pass; their partial states are merged.
MAX_PARTS = 64

#: Rows per part of the numba pass, at least: ``P = min(MAX_PARTS, ceil(n / PART_ROWS))``
#: parts, a function of ``n`` only, so results do not depend on the machine.
PART_ROWS = 1 << 15

#: From this many queries on, the numba pass multiplies tiles by BLAS GEMMs instead of loops.
BLAS_MIN_QUERIES = 4

#: Bytes of keys in one tile of the numba pass for few queries: read from memory once, then from L1.
TILE_BYTES = 1 << 15

#: Bytes of keys (or of a tile's scores, when ``h > d``) in one tile of the numba pass for many
#: queries: the two GEMMs of a tile run at 87-90 GFLOP/s on 2 cores with 128 KB tiles (L2), 71-82
#: with the 32-64 row tiles of 32 KB (BENCHMARKS.md, issue 14).
GEMM_TILE_BYTES = 1 << 17

#: ``rows * h * d`` from which OpenBLAS splits a GEMM over worker threads.  numba's threads call it
#: at once, and on a multi-threaded BLAS such products oversubscribe the cores (256- and 1024-row
#: tiles took 20-100x longer at d = 64, h = 32 on 2 cores); tiles past it run with BLAS limited to
#: one thread (threadpoolctl).
BLAS_TILE_MNK = 1 << 18

#: ``rows * d`` from which OpenBLAS splits a GEMV over threads (2304 x its multithreading threshold
#: 4); the loop pass uses a GEMV per tile for ``Y`` when ``d < NARROW_D``.
BLAS_GEMV_MN = 2304 * 4

_NUMBA_LOCK = threading.Lock()  # one compiled pass at a time: it already uses every core


def _numba_module() -> Any:
    """The numba kernel module, or None without numba (then numpy runs the pass)."""
    if not USE_NUMBA:
        return None
    try:
        return importlib.import_module("._kernels.numba_stats", __package__)
    except ImportError:
        return None


def _compiled_cpu_applies(keys: Any, d: int) -> bool:
    return (
        isinstance(keys, np.ndarray)
        and keys.ndim == 2
        and keys.shape[0] >= 1
        and keys.shape[1] == d
        and keys.dtype == np.float64
        and keys.flags.c_contiguous
        and _numba_module() is not None
    )


def _tile_rows(d: int, h: int) -> int:
    """Rows of a tile of the numba pass: ``TILE_BYTES`` of keys (loops), ``GEMM_TILE_BYTES`` (GEMMs)."""
    size = GEMM_TILE_BYTES if h >= BLAS_MIN_QUERIES else TILE_BYTES
    return int(max(8, min(1024, size // (8 * max(d, h)))))


def _one_blas_thread(rows: int, h: int, d: int) -> Any:
    """A context that limits BLAS to one thread for tiles whose GEMM (``BLAS_TILE_MNK``) or GEMV
    (``BLAS_GEMV_MN``) OpenBLAS would split over threads, else a no-op."""
    global _BLAS_CONTROLLER
    from ._kernels.numba_stats import NARROW_D

    gemm = h >= BLAS_MIN_QUERIES and rows * h * d > BLAS_TILE_MNK
    gemv = h < BLAS_MIN_QUERIES and d < NARROW_D and rows * d >= BLAS_GEMV_MN
    if not (gemm or gemv):
        return contextlib.nullcontext()
    if _BLAS_CONTROLLER is None:
        import scipy.linalg.cython_blas  # noqa: F401 - numba's np.dot calls this BLAS: load it before listing
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


_BLAS_CONTROLLER: Any = None


def _part_bounds(n: int, parts: int | None) -> np.ndarray:
    p = min(MAX_PARTS, -(-n // PART_ROWS)) if parts is None else min(parts, n)
    return np.linspace(0, n, max(1, p) + 1).astype(np.int64)


def _numba_stats(
    qm: np.ndarray,
    keys: np.ndarray,
    betas: np.ndarray,
    values: np.ndarray | None,
    top_k: int,
    rows: int | None,
    parts: int | None,
) -> AttentionStatsBatch:
    """One fused pass (numba, parallel over parts), then the exact merge of the parts' states."""
    kernel = _numba_module()
    n, d = keys.shape
    h = qm.shape[0]
    bounds = _part_bounds(n, parts)
    p = bounds.shape[0] - 1
    m, rest, s1, s2 = (np.zeros((p, h)) for _ in range(4))
    y = np.zeros((p, h, d))
    top = np.full((p, h, top_k), -np.inf)
    bad = np.zeros(p, dtype=np.int64)
    q = np.ascontiguousarray(qm)
    blas = h >= BLAS_MIN_QUERIES
    tile = rows or _tile_rows(d, h)
    with _NUMBA_LOCK, _one_blas_thread(tile, h, d):
        fold = kernel.fold_parts if p > 1 else kernel.fold_parts_serial  # one part: no thread launch
        fold(keys, q, betas, bounds, tile, blas, m, rest, s1, s2, y, top, bad)
    if bad.any():
        lo, hi = bounds[int(np.argmax(bad))], bounds[int(np.argmax(bad)) + 1]
        check_matrix(keys[lo:hi], "keys", cols=d)  # raises, naming keys, if an entry is not finite
        with np.errstate(over="ignore", invalid="ignore"):
            scores = keys[lo:hi] @ q.T
        _check_top_score(float(scores[~np.isfinite(scores)][0]))
    with np.errstate(over="ignore", invalid="ignore"):
        merged = _merge_parts(m, rest, s1, s2, y, betas)
        return _finish_many(*merged, _top_of_parts(top), betas, values, top_k)


def _gaps(betas: np.ndarray, g: np.ndarray) -> np.ndarray:
    r""":math:`\max(\beta g, \mathrm{LOG\_FLOOR})` per query (last axis or broadcast), 0 where ``beta == 0``."""
    return np.where(betas == 0.0, 0.0, np.maximum(betas * g, LOG_FLOOR))


def _merge_parts(m, rest, s1, s2, y, betas):
    r"""Exact merge of ``P`` partial states (leading axis) relative to the overall maximum.

    Part ``g`` is rescaled by :math:`f_g = e^{\delta_g}`, :math:`\delta_g = \beta (m_g - M)`
    (as in ``_Sums.add``); the implicit 1 of the part holding ``M`` stays implicit.
    """
    top = np.argmax(m, axis=0)
    big = m[top, np.arange(m.shape[1])]
    delta = _gaps(betas, m - big)
    f = np.exp(delta)
    s0 = 1.0 + rest
    others = np.ones_like(f)
    others[top, np.arange(m.shape[1])] = 0.0
    r = (f * rest).sum(axis=0) + (f * others).sum(axis=0)
    return big, r, (f * (s1 + delta * s0)).sum(axis=0), (f * f * s2).sum(axis=0), (f[..., None] * y).sum(axis=0)


def _top_of_parts(top: np.ndarray) -> np.ndarray:
    """The ``k`` largest of the parts' top-k lists, per query: ``(P, h, k)`` to ``(h, k)`` (``-inf``: none)."""
    p, h, k = top.shape
    flat = top.transpose(1, 0, 2).reshape(h, p * k)
    return -np.sort(-flat, axis=1)[:, :k]


def _finish_many(big, rest, s1, s2, y, top, betas, values, top_k) -> AttentionStatsBatch:
    """Statistics from merged states (``_finish`` for ``h`` queries at once)."""
    s0 = 1.0 + rest
    e_top = np.where(np.isfinite(top), np.exp(_gaps(betas[:, None], top - big[:, None])), 0.0)
    mean = y / s0[:, None]
    out = mean if values is None else mean @ values.T
    if not np.all(np.isfinite(out)):
        raise ValueError("keys: the output sum_i w_i V K_i overflows float64; rescale keys or values")
    return AttentionStatsBatch(
        max_weight=_frozen(1.0 / s0),
        entropy=_frozen(np.log1p(rest) - s1 / s0),
        n_eff=_frozen(s0 * s0 / s2),
        top_mass=_frozen(np.minimum(1.0, e_top.sum(axis=1) / s0)),
        output=_frozen(np.ascontiguousarray(out, dtype=np.float64)),
        top_k=top_k,
    )


def _finish_packed(packed: np.ndarray, betas: np.ndarray, values, top_k: int, d: int) -> AttentionStatsBatch:
    """Unpack the Triton path's one host copy: per query ``[bad keys, bad scores, M, rest, S1, S2, Y, top]``."""
    if packed[0, 0] > 0:
        check_matrix(np.array([[np.nan]]), "keys")  # raises the usual message: an entry is not finite
    if packed[0, 1] > 0:
        _check_top_score(math.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        return _finish_many(
            packed[:, 2], packed[:, 3], packed[:, 4], packed[:, 5], packed[:, 6 : 6 + d], packed[:, 6 + d :],
            betas, values, top_k,
        )


def _triton_applies(device: Any) -> bool:
    if not USE_TRITON:
        return False
    if device.type != "cuda" and not (device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"):
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _check_betas(beta: Any, h: int) -> np.ndarray:
    """``beta`` as ``h`` checked inverse temperatures: a number (shared) or a vector of length ``h``."""
    if np.ndim(beta) == 0:
        return np.full(h, check_beta(beta))
    b = check_vector(beta, "beta")
    if b.shape[0] != h:
        raise InputError(f"beta: got {b.shape[0]} values for {h} queries; expected one number or one per query")
    for x in b:
        check_beta(float(x))
    return b.copy()


# ---------------------------------------------------------------------------
# Validation helpers specific to this module (all built on _validate)
# ---------------------------------------------------------------------------


def _check_query(q: Any) -> np.ndarray:
    qv = check_vector(q, "q")
    check_int(qv.shape[0], "len(q)", minimum=1)
    return qv


def _check_values(values: Any, d: int) -> np.ndarray | None:
    return None if values is None else check_matrix(values, "values", cols=d)


def _check_top_score(score: float) -> None:
    """A score computed from finite ``q`` and keys is finite unless ``<q, K_i>`` overflowed."""
    if not math.isfinite(score):
        raise InputError(f"keys: the scores <q, K_i> overflow float64 (got {score}); rescale q or keys")


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "device")


def _first_tensor_device(keys: Any) -> Any:
    return keys.device if _is_tensor(keys) else None


def _blocks(keys: Any, d: int, backend: str) -> Iterator[Any]:
    """Yield 2-D blocks of keys (unvalidated entries, validated shape) without copying."""
    if isinstance(keys, Iterator):
        for block in keys:
            yield _shaped(block, d, backend)
    else:
        yield _shaped(keys, d, backend)


def _shaped(block: Any, d: int, backend: str) -> Any:
    """``block`` as an array (or tensor) of shape ``(n, d)``, n >= 1; entries are checked per chunk."""
    if _is_tensor(block):
        if backend == "numpy" and block.device.type != "cpu":
            raise InputError(
                f"keys: a torch tensor on {block.device}; use backend='torch' or move the keys to the CPU"
            )
        if backend == "torch":
            if block.ndim != 2 or block.shape[0] < 1 or block.shape[1] != d:
                check_matrix(np.empty(tuple(block.shape)), "keys", cols=d)  # raises with the shape
            if block.is_complex():
                raise InputTypeError(f"keys: got a tensor of dtype {block.dtype}; expected real numbers")
            return block
    try:
        arr = np.asarray(block)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] != d or arr.dtype.kind not in "biuf":
        return check_matrix(block, "keys", cols=d)  # raises, or converts a small odd input
    return arr


def _cpu_rows(d: int) -> int:
    lo, hi = CPU_CHUNK_ROWS
    return int(min(hi, max(lo, CPU_CHUNK_BYTES // (8 * (d + 4)))))


def _logit_gaps(beta: float, gaps: np.ndarray) -> np.ndarray:
    r""":math:`\max(\beta g, \mathrm{LOG\_FLOOR})` for gaps :math:`g \le 0`, exactly 0 when ``beta == 0``."""
    if beta == 0.0:
        return np.zeros_like(gaps)
    return np.maximum(beta * gaps, LOG_FLOOR)


def _apply_values(v: np.ndarray | None, mean_key: np.ndarray) -> np.ndarray:
    out = mean_key if v is None else v @ mean_key
    if not np.all(np.isfinite(out)):
        raise InputError("keys: the output sum_i w_i V K_i overflows float64; rescale keys or values")
    return out


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------
# Streaming state: one chunk's summary, merging, the running top-k, finishing
# ---------------------------------------------------------------------------


class _Sums:
    r"""Running log-sum-exp state of the keys seen so far, relative to their largest score ``m``.

    ``rest`` is :math:`S_0 - 1` (every term but one copy of the top key's), ``s1`` is
    :math:`S_1`, ``s2`` is :math:`S_2` and ``y`` is :math:`Y` (updated in place).
    """

    def __init__(self, beta: float) -> None:
        self.beta = beta
        self.m = -math.inf
        self.rest = self.s1 = self.s2 = 0.0
        self.y: np.ndarray | None = None

    def add(self, m: float, rest: float, s1: float, s2: float, y: np.ndarray) -> None:
        """Fold in one chunk's sums (relative to its own maximum ``m``); ``y`` may be overwritten."""
        if self.y is None:
            self.m, self.rest, self.s1, self.s2, self.y = m, rest, s1, s2, y
            return
        if m > self.m:  # the chunk holds the new maximum: rescale the old sums down to it
            self.m, m = m, self.m
            self.rest, rest = rest, self.rest
            self.s1, s1 = s1, self.s1
            self.s2, s2 = s2, self.s2
            self.y, y = y, self.y
        delta = 0.0 if self.beta == 0.0 else max(self.beta * (m - self.m), LOG_FLOOR)
        f = math.exp(delta)
        s0 = 1.0 + rest
        self.rest += f * s0
        self.s1 += f * (s1 + delta * s0)
        self.s2 += f * f * s2
        y *= f
        self.y += y


class _RunningTop:
    """The ``k`` largest scores seen so far; only scores above the current k-th best are examined."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.scores = np.empty(0)
        self.threshold = -math.inf  # the k-th best so far, once k scores were seen

    def update(self, s: np.ndarray, s_max: float) -> None:
        full = self.scores.size == self.k
        if full and s_max <= self.threshold:
            return
        both = np.concatenate((self.scores, s[s > self.threshold] if full else s))
        if both.size > self.k:
            both = np.partition(both, both.size - self.k)[both.size - self.k :]
        self.scores = both
        if both.size == self.k:
            self.threshold = float(both.min())


def _finish(state: _Sums, top: np.ndarray, beta: float, values: np.ndarray | None, top_k: int) -> AttentionStats:
    s0 = 1.0 + state.rest
    top_mass = float(np.exp(_logit_gaps(beta, top - state.m)).sum()) / s0
    return AttentionStats(
        max_weight=1.0 / s0,
        entropy=math.log1p(state.rest) - state.s1 / s0,
        n_eff=s0 * s0 / state.s2,
        top_mass=min(1.0, top_mass),
        output=_frozen(np.array(_apply_values(values, state.y / s0), dtype=np.float64)),
        top_k=top_k,
    )


# ---------------------------------------------------------------------------
# Chunk kernels (trust the shapes; check the entries)
# ---------------------------------------------------------------------------


class _NumpyFolder:
    """Summarize chunks of keys with numpy, in preallocated cache-sized buffers.

    One BLAS product per chunk, ``K_c @ [q, 1]``, reads the keys from memory once
    and gives both the scores and the row sums; the row sums are finite exactly
    when the chunk's entries are (or a row overflows, which the slow check then
    tells apart), so the keys are validated without a second pass.  The scores'
    gaps and ``exp`` then work in cache, and ``[e; 0] @ K_c`` reads the chunk from
    cache (a GEMM rather than a GEMV: OpenBLAS threads GEMVs of this size).
    """

    def __init__(self, q: np.ndarray, beta: float, top_k: int, rows: int) -> None:
        self.beta, self.rows = beta, rows
        self.sums = _Sums(beta)
        self.top = _RunningTop(top_k)
        self._q1 = np.stack((q, np.ones_like(q)), axis=1)  # (d, 2): scores and row sums
        self._s1 = np.empty((rows, 2))
        self._t = np.empty(rows)
        self._e = np.zeros((2, rows))  # row 0: exp(gaps); row 1 stays 0 (a GEMM, not a GEMV)
        self._y = np.empty((2, q.shape[0]))

    def __call__(self, block: Any) -> None:
        kc = block if isinstance(block, np.ndarray) and block.dtype == np.float64 else None
        if kc is None:
            kc = check_matrix(block, "keys", cols=self._q1.shape[0])
        c = kc.shape[0]
        both = np.matmul(kc, self._q1, out=self._s1[:c])
        if not math.isfinite(np.add.reduce(both, axis=None)):
            self._check_entries(kc, both[:, 0])
        t = self._t[:c]
        np.copyto(t, both[:, 0])
        i = int(t.argmax())
        m = float(t[i])
        self.top.update(t, m)
        np.subtract(t, m, out=t)
        if self.beta == 0.0:
            t.fill(0.0)
        else:
            np.multiply(t, self.beta, out=t)
        e = np.exp(t, out=self._e[0, :c])
        e[i] = 0.0
        s1 = float(e @ t)
        if not math.isfinite(s1):  # a gap beta*(s - m) overflowed to -inf: floor it (exp is 0 anyway)
            np.maximum(t, LOG_FLOOR, out=t)
            s1 = float(e @ t)
        y = np.matmul(self._e[:, :c], kc, out=self._y)[0] + kc[i]
        self.sums.add(m, float(np.add.reduce(e)), s1, 1.0 + float(e @ e), y)

    def _check_entries(self, kc: np.ndarray, scores: np.ndarray) -> None:
        """Slow path: name non-finite keys, or scores that overflow; let overflowing row sums pass."""
        check_matrix(kc, "keys", cols=self._q1.shape[0])
        if not np.all(np.isfinite(scores)):
            _check_top_score(float(scores[~np.isfinite(scores)][0]))


class _TorchFolder:
    """Summarize chunks of keys with PyTorch (CPU or CUDA), one device-to-host copy per chunk."""

    def __init__(self, q: np.ndarray, beta: float, top_k: int, rows: int | None, device: Any, keys_device: Any):
        torch = _import_torch()
        self.torch = torch
        self.device = _torch_device(torch, device, keys_device)
        if rows is None:
            if self.device.type == "cuda":
                rows = int(min(CUDA_CHUNK_ROWS, max(1, CUDA_CHUNK_BYTES // (8 * q.shape[0]))))
            else:
                rows = _cpu_rows(q.shape[0])
        self.rows, self.beta = rows, beta
        self.sums = _Sums(beta)
        self.top = _RunningTop(top_k)
        self.q = torch.as_tensor(q, dtype=torch.float64, device=self.device)

    def __call__(self, block: Any) -> None:
        with self.torch.no_grad():
            self._fold(block)

    def _fold(self, block: Any) -> None:
        torch = self.torch
        d = self.q.shape[0]
        if _is_tensor(block):
            kc = block.to(device=self.device, dtype=torch.float64)
        else:
            kc = torch.from_numpy(check_matrix(block, "keys", cols=d)).to(self.device)
        s = kc @ self.q
        m, i = torch.max(s, dim=0)
        top = torch.topk(s, min(self.top.k, s.shape[0])).values
        t = torch.zeros_like(s) if self.beta == 0.0 else ((s - m) * self.beta).clamp_(min=LOG_FLOOR)
        e = torch.exp(t)
        e[i] = 0.0
        y = e @ kc + kc[i]
        checks = torch.stack((torch.isfinite(kc).all(), torch.isfinite(s).all())).to(torch.float64)
        sums = torch.stack((m, e.sum(), e @ t, e @ e + 1.0))
        packed = torch.cat((checks, sums, y, top)).cpu().numpy()  # the one device-to-host copy
        if packed[0] != 1.0:
            check_matrix(kc.cpu().numpy(), "keys", cols=d)  # raises, naming keys
        if packed[1] != 1.0:
            scores = s.cpu().numpy()
            _check_top_score(float(scores[~np.isfinite(scores)][0]))
        m_c, rest, s1, s2 = (float(x) for x in packed[2:6])
        self.top.update(packed[6 + d :], m_c)
        self.sums.add(m_c, rest, s1, s2, packed[6 : 6 + d].copy())


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "backend='torch' needs PyTorch, which is not installed: pip install 'attnscale[torch]'"
        ) from exc
    return torch


def _torch_device(torch: Any, device: Any, keys_device: Any):
    if device is None:
        return keys_device if keys_device is not None else torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"device: got {device!r}; expected a torch device such as 'cpu' or 'cuda'") from None
