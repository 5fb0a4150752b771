r"""Attention-temperature rules used in practice, and the critical rule of the theory.

A rule says how much the attention logits of a model trained at context length :math:`L` are
multiplied at context length :math:`n`: the multiplier

.. math:: m(n) = \frac{\beta(n)}{\beta(L)},

so that a head with inverse temperature :math:`\beta_0` at training length runs at
:math:`\beta_0\, m(n)`, and its regime is given by
:math:`c = \beta_0\, m(n) / \beta^*(n)` (docs/theory.md sections 2 and 3).

Each rule is a small pure function whose docstring cites its source; :data:`RULES` is the
registry used by :func:`rule_multiplier` and :func:`attnscale.cli.payloads.schedules_payload` (the JSON object of
``attnscale schedules --json``).

=================  ==================================================  ==========================
name               multiplier :math:`m(n)`                             source
=================  ==================================================  ==========================
``standard``       :math:`1`                                           Vaswani et al. 2017
``yarn``           :math:`(0.1 \ln s + 1)^2`, :math:`s = n/L`          Peng et al. 2023 (YaRN)
``logn``           :math:`\max(1, \ln n / \ln L)`                      Qwen 2023; LongRoPE 2024
``entropy``        :math:`\ln n / \ln 512`                             Su 2021
``ssmax``          :math:`s_h \ln n`                                   Nakanishi 2025 (SSMax)
``llama4``         :math:`1 + 0.1 \ln(1 + \lfloor n / 8192 \rfloor)`   Meta Llama 4, 2025
``critical``       :math:`\beta_{1/2}(n) / \beta_{1/2}(L)` (finite n)   docs/theory.md sections 5, 7
``qwen_logn``      :math:`\max(1, \ln n / \ln(\text{seq\_length}))`    Qwen 1 ``use_logn_attn``
``grok``           :math:`\log_2(n-1) / \log_2 T` for :math:`n-1 > T`  Grok-2 (sglang kernels)
``critical_asym``  :math:`\beta^*(n) / \beta^*(L)` (``critical_asymptotic``)  docs/theory.md section 2
=================  ==================================================  ==========================

Per position. Models apply these rules per query: the query at 0-based position :math:`p` sees
:math:`n = p + 1` keys (causal attention) and gets :math:`m(p + 1)`. :func:`rule_multipliers` is
the vectorized form over an array of :math:`n` (one call per distinct :math:`n`), used by
:mod:`attnscale.torch` to scale each query row. The critical rule's multiplier flows through one
function, :func:`critical_multipliers`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validate import InputError, InputTypeError, check_int, check_n, check_nonnegative, check_positive
from .exponent import critical_curve
from .laws import ScoreLaw
from .tails import ScoreTail, critical_beta

__all__ = [
    "CRITICAL_GRID",
    "RULES",
    "Rule",
    "critical_multiplier",
    "critical_multipliers",
    "entropy_invariant_multiplier",
    "grok_multiplier",
    "llama4_multiplier",
    "logn_multiplier",
    "qwen_logn_multiplier",
    "rule_multiplier",
    "rule_multipliers",
    "ssmax_multiplier",
    "standard_multiplier",
    "yarn_multiplier",
]


def _check_train_len(train_len: Any) -> int:
    """Training context length: an integer in ``[2, 1e18]`` (``ln L > 0``)."""
    L = check_n(train_len, "train_len")
    if L < 2:
        raise InputError(f"train_len: got {train_len!r}; expected an integer >= 2 (the rules divide by ln L)")
    return L


def standard_multiplier(n: Any) -> float:
    r"""The standard rule: logits :math:`q^\top k / \sqrt{d_h}` at every length, :math:`m(n) = 1`.

    Source: Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (scaled dot-product
    attention, a fixed scale :math:`1/\sqrt{d_h}`).

    Parameters
    ----------
    n : int
        Context length, ``1 <= n <= 1e18``.

    Returns
    -------
    float
        ``1.0``.

    Examples
    --------
    >>> standard_multiplier(10**6)
    1.0
    """
    check_n(n)
    return 1.0


def _yarn_get_mscale(scale: float, mscale: float = 1.0) -> float:
    """YaRN's ``0.1 * mscale * ln(scale) + 1`` for ``scale > 1``, else 1 (paper eq. 21)."""
    return 1.0 if scale <= 1.0 else 0.1 * mscale * math.log(scale) + 1.0


def yarn_multiplier(
    n: Any,
    train_len: Any,
    coefficient: float = 0.1,
    *,
    factor: Any = None,
    mscale: Any = None,
    mscale_all_dim: Any = None,
    attention_factor: Any = None,
) -> float:
    r"""YaRN's attention temperature: :math:`m = (0.1 \ln s + 1)^2`, dynamic :math:`s = n / L` or a fixed factor.

    YaRN multiplies the logits by :math:`1/t` with :math:`\sqrt{1/t} = 0.1 \ln s + 1`
    (Peng, Quesnelle, Fan, Shippole, "YaRN: Efficient Context Window Extension of Large
    Language Models", arXiv:2309.00071, 2023, section 3.4 and eq. 21; implemented as
    ``mscale = 0.1 * ln(scale) + 1`` applied to both the cosine and the sine of the rotary
    embedding, hence squared on the logits).

    Without ``factor`` the scale factor is the dynamic one, :math:`s = n/L`, and :math:`m(n) = 1`
    for :math:`n \le L`. With ``factor`` (a model's ``rope_scaling``) the rule is per model, not per
    position, and spelled as in ``transformers/modeling_rope_utils.py``
    (``_compute_yarn_parameters``, ``yarn_get_mscale``, ``yarn_apply_mscale``), with
    :math:`g(s, a) = 0.1\, a \ln s + 1` for :math:`s > 1`, else 1:

    - the rotary ``attention_factor``: as given, else :math:`g(s, \text{mscale}) / g(s,
      \text{mscale\_all\_dim})` when both are given and nonzero, else :math:`g(s, 1)`; it scales
      cosine and sine, so the logits by its square;
    - with ``mscale_all_dim`` given (DeepSeek's multi-head latent attention,
      ``modeling_deepseek_v3.py``) the softmax scale also carries :math:`g(s,
      \text{mscale\_all\_dim})^2`.

    So :math:`m = \text{attention\_factor}^2\, g(s, \text{mscale\_all\_dim})^2`; for DeepSeek-V3
    (:math:`s = 40`, mscale = mscale_all_dim = 1) :math:`m = g(40, 1)^2 = 1.8739`.

    Parameters
    ----------
    n : int
        Context length, ``1 <= n <= 1e18`` (unused with ``factor``).
    train_len : int
        Training context length :math:`L \ge 2`.
    coefficient : float
        The 0.1 of the dynamic form, ``>= 0``.
    factor : float, optional
        The model's fixed scale factor :math:`s > 0` (``rope_scaling["factor"]``).
    mscale, mscale_all_dim : float, optional
        ``rope_scaling["mscale"]``, ``rope_scaling["mscale_all_dim"]``, ``>= 0`` (with ``factor``).
    attention_factor : float, optional
        ``rope_scaling["attention_factor"]`` :math:`> 0`; wins over the inferred one (with ``factor``).

    Returns
    -------
    float
        The logit multiplier.

    Examples
    --------
    >>> round(yarn_multiplier(4 * 4096, 4096), 6)
    1.296477
    >>> yarn_multiplier(100, 4096)
    1.0
    >>> round(yarn_multiplier(1, 4096, factor=40, mscale=1.0, mscale_all_dim=1.0), 4)  # DeepSeek-V3
    1.8739
    >>> yarn_multiplier(1, 4096, factor=4, attention_factor=1.5)
    2.25
    """
    n_int, L = check_n(n), _check_train_len(train_len)
    if factor is None:
        for name, v in (("mscale", mscale), ("mscale_all_dim", mscale_all_dim), ("attention_factor", attention_factor)):
            if v is not None:
                raise InputTypeError(f"{name}: got {v!r} without factor; the dynamic YaRN rule takes only coefficient")
        a = check_nonnegative(coefficient, "coefficient")
        if n_int <= L:
            return 1.0
        return (a * (math.log(n_int) - math.log(L)) + 1.0) ** 2
    s = check_positive(factor, "factor")
    ms = None if mscale is None else check_nonnegative(mscale, "mscale")
    ms_all = None if mscale_all_dim is None else check_nonnegative(mscale_all_dim, "mscale_all_dim")
    if attention_factor is not None:
        af = check_positive(attention_factor, "attention_factor")
    elif ms and ms_all:
        af = _yarn_get_mscale(s, ms) / _yarn_get_mscale(s, ms_all)
    else:
        af = _yarn_get_mscale(s)
    softmax = _yarn_get_mscale(s, ms_all) ** 2 if ms_all else 1.0
    return af * af * softmax


def logn_multiplier(n: Any, train_len: Any) -> float:
    r"""Log-n scaling (Qwen) and LongRoPE's attention factor: :math:`m(n) = \max(1, \ln n / \ln L)`.

    Qwen's "LogN-Scaling" multiplies the query at position :math:`n > L` by
    :math:`\log_L n` (Bai et al., "Qwen Technical Report", arXiv:2309.16609, 2023, section 2.3;
    ``logn_list = [log(i, seq_length) if i > seq_length else 1 ...]`` in its code).
    LongRoPE (Ding et al., arXiv:2402.13753, 2024; Phi-3) scales both cosine and sine by
    :math:`\sqrt{1 + \ln s / \ln L}`, so the logits by :math:`1 + \ln(n/L)/\ln L = \ln n/\ln L`
    at :math:`s = n/L`: the same rule.

    Parameters
    ----------
    n : int
        Context length, ``1 <= n <= 1e18``.
    train_len : int
        Training context length :math:`L \ge 2`.

    Returns
    -------
    float
        :math:`\max(1, \ln n / \ln L)`.

    Examples
    --------
    >>> logn_multiplier(2048**2, 2048)
    2.0
    >>> logn_multiplier(10, 2048)
    1.0
    """
    n_int, L = check_n(n), _check_train_len(train_len)
    return max(1.0, math.log(n_int) / math.log(L))


def entropy_invariant_multiplier(n: Any, base: Any = 512) -> float:
    r"""Su's entropy-invariant scale: :math:`m(n) = \ln n / \ln 512`.

    Keeping the entropy of the attention weights invariant in :math:`n` asks for logits
    :math:`\kappa \ln n \; q^\top k`; Su fixes :math:`\kappa` so that the rule equals the standard
    :math:`1/\sqrt{d_h}` at :math:`n = 512`, the pre-training length of BERT-like models: the
    scale :math:`\log_{512} n / \sqrt{d_h}` (J. Su, "Entropy invariance and the scale of
    attention" (从熵不变性看Attention的Scale操作), kexue.fm/archives/8823, 2021). Unlike the
    other rules it does not refer to the model's training length and is below 1 for
    :math:`n < 512`.

    Parameters
    ----------
    n : int
        Context length, ``1 <= n <= 1e18``.
    base : int
        The length where the rule equals the standard one, ``>= 2`` (512).

    Returns
    -------
    float
        :math:`\ln n / \ln(\text{base})`.

    Examples
    --------
    >>> entropy_invariant_multiplier(512**2)
    2.0
    >>> entropy_invariant_multiplier(1)
    0.0
    """
    n_int = check_n(n)
    b = check_int(base, "base", minimum=2)
    return math.log(n_int) / math.log(b)


def ssmax_multiplier(n: Any, s: Any) -> float:
    r"""Scalable-Softmax (SSMax): :math:`m(n) = s_h \ln n`.

    SSMax replaces :math:`\mathrm{softmax}(z)` by :math:`\mathrm{softmax}(s\, \ln(n)\, z)` with a
    learnable scalar :math:`s` per head (Nakanishi, "Scalable-Softmax Is Superior for
    Attention", arXiv:2501.19399, 2025, eq. 4). The multiplier is relative to the plain logits
    :math:`z`; with :math:`s_h = 1/\ln L` it equals the standard rule at :math:`n = L`.

    Parameters
    ----------
    n : int
        Context length, ``1 <= n <= 1e18``.
    s : float
        The head's scaling parameter :math:`s_h > 0`.

    Returns
    -------
    float
        :math:`s_h \ln n`.

    Examples
    --------
    >>> round(ssmax_multiplier(4096, 1 / math.log(4096)), 12)
    1.0
    >>> round(ssmax_multiplier(100, 0.5), 6)
    2.302585
    """
    n_int = check_n(n)
    s_h = check_positive(s, "s")
    return s_h * math.log(n_int)


def llama4_multiplier(n: Any, floor_scale: Any = 8192, attn_scale: Any = 0.1, offset: Any = 1) -> float:
    r"""Llama 4 attention temperature tuning: :math:`m(n) = 1 + 0.1 \ln(1 + \lfloor n / 8192 \rfloor)`.

    Llama 4's layers without positional encoding (NoPE) multiply the query at 0-based position
    :math:`p` by :math:`1 + a \ln(1 + \lfloor (p + o)/F \rfloor)` with ``attn_scale`` :math:`a =
    0.1`, ``floor_scale`` :math:`F = 8192` and :math:`o = 1` (``transformers/models/llama4/
    modeling_llama4.py``, ``Llama4TextAttention.forward``, option ``attn_temperature_tuning``;
    Meta's reference model). Ministral 3 and Mistral Small 4 use the same form on every layer
    with :math:`o = 0`, :math:`a` = ``llama_4_scaling_beta`` and :math:`F` = the original
    maximum position embeddings (``models/ministral3/modeling_ministral3.py``,
    ``get_llama_4_attn_scale``): ``offset=0``. The query at position :math:`p` sees
    :math:`n = p + 1` keys, so :math:`m(n) = 1 + a \ln(1 + \lfloor (n - 1 + o)/F \rfloor)`.

    Parameters
    ----------
    n : int
        Context length (position of the query, 1-based), ``1 <= n <= 1e18``.
    floor_scale : int
        :math:`F \ge 1`.
    attn_scale : float
        :math:`a \ge 0`.
    offset : int
        :math:`o`: 1 (Llama 4) or 0 (Ministral 3 / Mistral 4).

    Returns
    -------
    float
        :math:`1 + a \ln(1 + \lfloor (n - 1 + o)/F \rfloor)` (exact integer floor).

    Examples
    --------
    >>> llama4_multiplier(8191)
    1.0
    >>> round(llama4_multiplier(8192), 12) == round(1 + 0.1 * math.log(2), 12)
    True
    >>> llama4_multiplier(8192, offset=0)  # Ministral: position 8191 is still below the floor
    1.0
    """
    n_int = check_n(n)
    F = check_int(floor_scale, "floor_scale", minimum=1)
    a = check_nonnegative(attn_scale, "attn_scale")
    o = check_int(offset, "offset", minimum=0, maximum=1)
    return 1.0 + a * math.log1p((n_int - 1 + o) // F)


def qwen_logn_multiplier(n: Any, seq_length: Any) -> float:
    r"""Qwen 1's ``use_logn_attn``: the query at position :math:`p` times :math:`\ln(p+1)/\ln T` beyond :math:`T`.

    Qwen (``modeling_qwen.py`` of Qwen/Qwen-7B, ``QWenAttention``) builds ``logn_list =
    [log(i, seq_length) if i > seq_length else 1 for i in range(1, ...)]`` and multiplies the
    query at 0-based position :math:`p` by entry :math:`p`, i.e. by :math:`\log_T(p + 1)` when
    :math:`p + 1 > T` (:math:`T` = ``seq_length``, the training length), at inference only. With
    :math:`n = p + 1` keys: :math:`m(n) = \max(1, \ln n / \ln T)`, the ``logn`` rule with
    :math:`L = T`.

    Parameters
    ----------
    n : int
        Number of keys the query sees, ``1 <= n <= 1e18``.
    seq_length : int
        :math:`T \ge 2`.

    Returns
    -------
    float

    Examples
    --------
    >>> qwen_logn_multiplier(4096, 4096), qwen_logn_multiplier(4096**2, 4096)
    (1.0, 2.0)
    """
    n_int = check_n(n)
    return _log_ratio_beyond(n_int, check_int(seq_length, "seq_length", minimum=2), math.log)


def grok_multiplier(n: Any, attn_temperature_len: Any) -> float:
    r"""Grok-2's attention temperature: logits at position :math:`p` times :math:`\log_2 p / \log_2 T` for :math:`p > T`.

    Grok-2 (config ``attn_temperature_len`` :math:`T = 1024`) multiplies the scaled logits of the
    query at 0-based absolute position :math:`p` by :math:`\log_2(p) / \log_2(T)` when
    :math:`p > T`, else 1, before the tanh soft-cap (sglang ``python/sglang/srt/models/grok.py``
    passes ``xai_temperature_len`` to its attention kernels, e.g.
    ``layers/attention/triton_ops/extend_attention.py``; in decoding :math:`p` = sequence length
    minus 1). With :math:`n = p + 1` keys: :math:`m(n) = \log_2(n-1)/\log_2 T` for
    :math:`n - 1 > T`.

    Parameters
    ----------
    n, attn_temperature_len : int
        As ``n`` and ``seq_length`` of :func:`qwen_logn_multiplier` (:math:`T` = ``attn_temperature_len``);
        the ratio is that rule's, in base 2, of :math:`n - 1` instead of :math:`n`.

    Returns
    -------
    float

    Examples
    --------
    >>> grok_multiplier(1025, 1024), grok_multiplier(1024**2 + 1, 1024)
    (1.0, 2.0)
    """
    n_int = check_n(n)
    return _log_ratio_beyond(n_int - 1, check_int(attn_temperature_len, "attn_temperature_len", minimum=2), math.log2)


def _log_ratio_beyond(x: int, T: int, log: Callable[[float], float]) -> float:
    """``log(x) / log(T)`` for ``x > T``, else 1 (the qwen_logn and grok rules)."""
    return log(x) / log(T) if x > T else 1.0


#: Distinct lengths above which the critical rules interpolate on a log grid of this many points.
CRITICAL_GRID = 512
#: Distinct lengths above which the finite-n critical rule interpolates on a log grid of this many points
#: (each point is a root solve on common draws: about 0.3 s).
FINITE_GRID = 16
#: Common draws behind the finite-n critical rule (SE of log beta_half about 0.004 at d = 64).
FINITE_SIZE = 8000


def _log_grid(values: np.ndarray, points: int) -> np.ndarray:
    """``points`` log-spaced integers from the smallest to the largest of ``values`` (ends exact)."""
    grid = np.unique(np.geomspace(values[0], values[-1], points).round().astype(np.int64))
    grid[0], grid[-1] = values[0], values[-1]
    return grid


def _on_grid(values: np.ndarray, grid_limit: int, points: int, exact) -> np.ndarray:
    """``exact(v)`` at every value, or on a log grid with log m interpolated linearly in log n."""
    if values.size <= grid_limit:
        return exact(values)
    grid = _log_grid(values, points)
    m_grid = exact(grid)
    return np.exp(np.interp(np.log(values.astype(np.float64)), np.log(grid.astype(np.float64)), np.log(m_grid)))


def critical_asymptotic_multipliers(ns: Any, train_len: Any, tail: ScoreTail | ScoreLaw) -> np.ndarray:
    r"""The asymptotic critical rule: :math:`m(n) = \beta^*(n) / \beta^*(L)` for each :math:`n` of ``ns``.

    Keeps the asymptotic :math:`c` constant (docs/theory.md section 2): :math:`(n/L)^{1/\gamma}` for
    the Weibull class. :func:`attnscale.tails.critical_beta` once per distinct :math:`n`; above
    :data:`CRITICAL_GRID` distinct lengths on that many log-spaced lengths, :math:`\ln m`
    interpolated linearly in :math:`\ln n` (exact up to rounding for a power law).

    Parameters
    ----------
    ns : array_like of int
        Context lengths, each ``1 <= n <= 1e18``.
    train_len : int
        Training context length :math:`L \ge 2`.
    tail : ScoreTail or ScoreLaw
        The head's score tail (or a score law, whose tail is used).

    Examples
    --------
    >>> critical_asymptotic_multipliers([512, 2048], 512, ScoreTail(1.0, 2.0, 0.3)).round(12).tolist()
    [1.0, 2.0]
    """
    L = _check_train_len(train_len)
    tail = _tail_of(tail)
    arr = _check_ns(ns)
    values, inverse = np.unique(arr, return_inverse=True)
    base = critical_beta(L, tail)
    m = _on_grid(values, CRITICAL_GRID, CRITICAL_GRID, lambda v: np.array([critical_beta(int(x), tail) / base for x in v]))
    return m[inverse].reshape(arr.shape)


@functools.lru_cache(maxsize=64)
def _beta_half_table(law: ScoreLaw, lengths: tuple[int, ...]) -> dict[int, float]:
    """beta_half at each length (>= 3) on common draws (seed 0), cached per law object and lengths."""
    rows = critical_curve(law, list(lengths), size=FINITE_SIZE, rng=0)
    return {r.n: r.beta_half for r in rows}


def critical_multipliers(ns: Any, train_len: Any, law: ScoreLaw) -> np.ndarray:
    r"""The finite-n critical rule: :math:`m(n) = \beta_{1/2}(n) / \beta_{1/2}(L)` for each :math:`n` of ``ns``.

    :math:`\beta_{1/2}(n)` is the finite-n critical scale of the head's own score law, the
    :math:`\beta` at which :math:`E W_1 = 1/2` with ``n`` keys (docs/theory.md sections 5 and 7),
    computed by :func:`attnscale.exponent.critical_curve` on common draws, so the rule keeps the
    head's mean top weight at every length where the asymptotic rule
    (:func:`critical_asymptotic_multipliers`) keeps an asymptotic :math:`c` that large heads never
    reach. The one place this multiplier is computed (:func:`critical_multiplier`,
    :func:`rule_multipliers` and so :mod:`attnscale.torch` call it). Lengths below 3 (where
    :math:`E W_1 \ge 1/2` at every :math:`\beta`) take the multiplier of :math:`n = 3`. Above
    :data:`FINITE_GRID` distinct lengths, on that many log-spaced lengths with :math:`\ln m`
    interpolated linearly in :math:`\ln n`. Cached per law object.

    Parameters
    ----------
    ns : array_like of int
        Context lengths, each ``1 <= n <= 1e18``.
    train_len : int
        Training context length :math:`L \ge 3`.
    law : ScoreLaw
        The head's score law (e.g. ``UniformScoreLaw(64)``, or
        :class:`attnscale.spliced.SplicedScoreLaw` for a probed head).

    Examples
    --------
    >>> from attnscale.laws import UniformScoreLaw
    >>> m = critical_multipliers([4096, 131072], 4096, UniformScoreLaw(64))
    >>> round(float(m[1]), 2)          # brute force 1.356 +- 0.009; asymptotic 1.116; log-n 1.417
    1.35
    """
    L = _check_train_len(train_len)
    if not isinstance(law, ScoreLaw):
        raise InputTypeError(
            f"law: got {type(law).__name__}; the finite-n critical rule needs the head's score law (a ScoreLaw); "
            "with only a ScoreTail use the 'critical_asymptotic' rule"
        )
    if L < 3:
        raise InputError(f"train_len: got {L}; the finite-n critical rule needs L >= 3")
    arr = _check_ns(ns)
    values, inverse = np.unique(np.maximum(arr, 3), return_inverse=True)

    def exact(v: np.ndarray) -> np.ndarray:
        table = _beta_half_table(law, tuple(sorted({L, *(int(x) for x in v)})))
        return np.array([table[int(x)] / table[L] for x in v], dtype=np.float64)

    m = _on_grid(values, FINITE_GRID, FINITE_GRID, exact)
    return m[inverse].reshape(arr.shape)


def critical_multiplier(n: Any, train_len: Any, law: ScoreLaw) -> float:
    r"""The finite-n critical rule at one length: :math:`\beta_{1/2}(n) / \beta_{1/2}(L)` (see :func:`critical_multipliers`).

    Examples
    --------
    >>> from attnscale.laws import UniformScoreLaw
    >>> round(critical_multiplier(10**6, 10**3, UniformScoreLaw(3)), 1)     # d = 3: (n/L)^(1/gamma) = 1000
    1000.0
    """
    return float(critical_multipliers(np.array([check_n(n)]), train_len, law)[0])


def _tail_of(head: Any) -> ScoreTail:
    """A ScoreTail given, or the tail of a ScoreLaw."""
    if isinstance(head, ScoreTail):
        return head
    if isinstance(head, ScoreLaw):
        return head.tail()
    raise InputTypeError(f"tail: got {type(head).__name__}; expected a ScoreTail or a ScoreLaw")


def _check_ns(ns: Any) -> np.ndarray:
    """An int64 array of context lengths in ``[1, 1e18]``."""
    arr = np.asarray(ns)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputTypeError(f"ns: got dtype {arr.dtype}; expected integer context lengths")
    if arr.size and np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise InputError("ns: got non-integer values; expected integer context lengths")
    if arr.size and (arr.min() < 1 or arr.max() > 10**18):
        raise InputError(f"ns: got values in [{arr.min()}, {arr.max()}]; expected integers in [1, 1e18]")
    return arr.astype(np.int64)


@dataclass(frozen=True)
class Rule:
    r"""One entry of the registry :data:`RULES`.

    Parameters
    ----------
    name : str
        Registry key.
    formula : str
        The multiplier in words, e.g. ``"(0.1 ln(n/L) + 1)^2 for n > L, else 1"``.
    source : str
        Short citation (the function's docstring has the full one).
    function : callable
        ``function(n, train_len, tail, params) -> float``: the multiplier, all rules alike.
    needs_tail : bool
        Whether the rule needs a :class:`~attnscale.tails.ScoreTail` (a :class:`ScoreLaw` gives its tail).
    needs_law : bool
        Whether the rule needs the head's :class:`~attnscale.laws.ScoreLaw` (the finite-n critical rule).
    array_function : callable, optional
        ``array_function(ns, train_len, tail, params) -> ndarray``: the multiplier at an int64
        array of lengths (validated); parameters already checked by ``function``.

    Examples
    --------
    >>> RULES["logn"].multiplier(2048**3, 2048)
    3.0
    """

    name: str
    formula: str
    source: str
    function: Callable[[int, int, ScoreTail | None, dict[str, Any]], float]
    needs_tail: bool = False
    needs_law: bool = False
    array_function: Callable[[np.ndarray, int, ScoreTail | None, dict[str, Any]], np.ndarray] | None = None

    def multiplier(self, n: Any, train_len: Any, tail: ScoreTail | None = None, **params: Any) -> float:
        """The rule's multiplier :math:`m(n)` at context length ``n`` for training length ``train_len``."""
        if self.needs_law and not isinstance(tail, ScoreLaw):
            raise InputTypeError(
                f"tail: got {type(tail).__name__}; the {self.name!r} rule needs the head's ScoreLaw "
                "(with only a ScoreTail, use 'critical_asymptotic')"
            )
        if self.needs_tail:
            tail = _tail_of(tail)
        return self.function(n, train_len, tail, params)

    def multipliers(self, ns: Any, train_len: Any, tail: ScoreTail | None = None, **params: Any) -> np.ndarray:
        """:meth:`multiplier` at an array of lengths (float64, shape ``params' shape + ns.shape``)."""
        arr = _check_ns(ns)
        array_params = {k: v for k, v in params.items() if np.ndim(v) > 0}
        if array_params and set(array_params) != {"s"} or (array_params and self.name != "ssmax"):
            raise InputTypeError(f"params: got arrays for {sorted(array_params)}; only ssmax's s may be an array (one per head)")
        s_arr = None
        if array_params:
            s_arr = np.asarray(params["s"], dtype=np.float64)
            if s_arr.size == 0 or not np.all(np.isfinite(s_arr)) or np.any(s_arr <= 0):
                raise InputError("s: got an empty array or values <= 0; expected s > 0 per head")
            params = dict(params, s=float(s_arr.flat[0]))
        # validate the rule's arguments once, at the smallest length (the errors of the scalar form)
        self.multiplier(int(arr.min()) if arr.size else 1, train_len, tail, **params)
        if s_arr is not None:
            return s_arr.reshape(s_arr.shape + (1,) * arr.ndim) * np.log(arr.astype(np.float64))
        if self.array_function is None:
            values, inverse = np.unique(arr, return_inverse=True)
            m = np.array([self.function(int(v), train_len, tail, params) for v in values], dtype=np.float64)
            return m[inverse].reshape(arr.shape)
        return np.asarray(self.array_function(arr, int(train_len), tail, params), dtype=np.float64)


def _only(params: dict[str, Any], allowed: tuple[str, ...], rule: str) -> dict[str, Any]:
    extra = sorted(set(params) - set(allowed))
    if extra:
        ok = ", ".join(allowed) if allowed else "none"
        raise InputTypeError(f"params: got {extra} for rule {rule!r}; its parameters are: {ok}")
    return params


def _standard(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    _check_train_len(L)
    return standard_multiplier(n, **_only(p, (), "standard"))


_YARN_PARAMS = ("coefficient", "factor", "mscale", "mscale_all_dim", "attention_factor")


def _yarn(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    return yarn_multiplier(n, L, **_only(p, _YARN_PARAMS, "yarn"))


def _yarn_array(ns: np.ndarray, L: int, tail: Any, p: dict[str, Any]) -> np.ndarray:
    if p.get("factor") is not None:  # per model: one value
        return np.full(ns.shape, yarn_multiplier(1, L, **p))
    a = float(p.get("coefficient", 0.1))
    with np.errstate(divide="ignore"):
        x = a * (np.log(ns.astype(np.float64)) - math.log(L)) + 1.0
    return np.where(ns > L, x * x, 1.0)


def _logn(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    return logn_multiplier(n, L, **_only(p, (), "logn"))


def _logn_array(ns: np.ndarray, L: int, tail: Any, p: dict[str, Any]) -> np.ndarray:
    return np.maximum(1.0, np.log(ns.astype(np.float64)) / math.log(L))


def _entropy(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    _check_train_len(L)
    return entropy_invariant_multiplier(n, **_only(p, ("base",), "entropy"))


def _entropy_array(ns: np.ndarray, L: int, tail: Any, p: dict[str, Any]) -> np.ndarray:
    return np.log(ns.astype(np.float64)) / math.log(int(p.get("base", 512)))


def _ssmax(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    p = _only(p, ("s",), "ssmax")
    s = p.get("s")
    if s is None:
        s = 1.0 / math.log(_check_train_len(L))
    else:
        _check_train_len(L)
    return ssmax_multiplier(n, s)


def _ssmax_array(ns: np.ndarray, L: int, tail: Any, p: dict[str, Any]) -> np.ndarray:
    s = p.get("s")
    s = 1.0 / math.log(L) if s is None else float(s)
    return s * np.log(ns.astype(np.float64))


def _llama4(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    _check_train_len(L)
    return llama4_multiplier(n, **_only(p, ("floor_scale", "attn_scale", "offset"), "llama4"))


def _llama4_array(ns: np.ndarray, L: int, tail: Any, p: dict[str, Any]) -> np.ndarray:
    F, a, o = int(p.get("floor_scale", 8192)), float(p.get("attn_scale", 0.1)), int(p.get("offset", 1))
    return 1.0 + a * np.log1p(((ns - 1 + o) // F).astype(np.float64))


def _qwen_logn(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    p = _only(p, ("seq_length",), "qwen_logn")
    return qwen_logn_multiplier(n, p.get("seq_length", _check_train_len(L)))


def _qwen_logn_array(ns: np.ndarray, L: int, tail: Any, p: dict[str, Any]) -> np.ndarray:
    T = int(p.get("seq_length", L))
    return np.where(ns > T, np.log(ns.astype(np.float64)) / math.log(T), 1.0)


def _grok(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    p = _only(p, ("attn_temperature_len",), "grok")
    return grok_multiplier(n, p.get("attn_temperature_len", _check_train_len(L)))


def _grok_array(ns: np.ndarray, L: int, tail: Any, p: dict[str, Any]) -> np.ndarray:
    T = int(p.get("attn_temperature_len", L))
    with np.errstate(divide="ignore"):
        return np.where(ns - 1 > T, np.log2((ns - 1).astype(np.float64)) / math.log2(T), 1.0)


def _critical(n: Any, L: Any, law: Any, p: dict[str, Any]) -> float:
    _only(p, (), "critical")
    return critical_multiplier(n, L, law)


def _critical_array(ns: np.ndarray, L: int, law: Any, p: dict[str, Any]) -> np.ndarray:
    return critical_multipliers(ns, L, law)


def _critical_asymptotic(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    _only(p, (), "critical_asymptotic")
    return float(critical_asymptotic_multipliers(np.array([check_n(n)]), L, tail)[0])


def _critical_asymptotic_array(ns: np.ndarray, L: int, tail: Any, p: dict[str, Any]) -> np.ndarray:
    return critical_asymptotic_multipliers(ns, L, tail)


#: The rules by name, in the order of the report.
RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("standard", "1", "Vaswani et al. 2017", _standard, array_function=lambda ns, L, t, p: np.ones(ns.shape)),
        Rule("yarn", "(0.1 ln(n/L) + 1)^2 for n > L, else 1; or per model from factor, mscale, mscale_all_dim",
             "Peng et al. 2023, arXiv:2309.00071; transformers modeling_rope_utils.py", _yarn, array_function=_yarn_array),
        Rule("logn", "max(1, ln n / ln L)", "Qwen (arXiv:2309.16609); LongRoPE (arXiv:2402.13753)", _logn,
             array_function=_logn_array),
        Rule("entropy", "ln n / ln 512", "Su 2021, kexue.fm/archives/8823", _entropy, array_function=_entropy_array),
        Rule("ssmax", "s ln n, s = 1/ln L unless given", "Nakanishi 2025, arXiv:2501.19399", _ssmax,
             array_function=_ssmax_array),
        Rule("llama4", "1 + 0.1 ln(1 + floor((n - 1 + offset) / 8192)), offset 1", "transformers models/llama4/modeling_llama4.py",
             _llama4, array_function=_llama4_array),
        Rule("qwen_logn", "ln n / ln seq_length for n > seq_length (seq_length = L unless given), else 1",
             "Qwen-7B modeling_qwen.py (use_logn_attn)", _qwen_logn, array_function=_qwen_logn_array),
        Rule("grok", "log2(n - 1) / log2 T for n - 1 > T (T = attn_temperature_len = L unless given), else 1",
             "sglang models/grok.py (xai_temperature_len)", _grok, array_function=_grok_array),
        Rule("critical", "beta_half(n) / beta_half(L), the head's own finite-n critical scale",
             "docs/theory.md sections 5 and 7", _critical, needs_law=True, array_function=_critical_array),
        Rule("critical_asymptotic", "beta*(n) / beta*(L) = (n/L)^(1/gamma)", "docs/theory.md section 2",
             _critical_asymptotic, needs_tail=True, array_function=_critical_asymptotic_array),
    )
}


def rule_multiplier(name: str, n: Any, train_len: Any, tail: ScoreTail | None = None, **params: Any) -> float:
    r"""Multiplier :math:`m(n) = \beta(n)/\beta(L)` of the rule called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`RULES`.
    n : int
        Context length, ``1 <= n <= 1e18``.
    train_len : int
        Training context length :math:`L \ge 2` (validated for every rule, used by some).
    tail : ScoreTail, optional
        Needed by ``"critical"``.
    **params
        The rule's own parameters: ``coefficient``, ``factor``, ``mscale``, ``mscale_all_dim``,
        ``attention_factor`` (yarn), ``base`` (entropy), ``s`` (ssmax), ``floor_scale``,
        ``attn_scale``, ``offset`` (llama4), ``seq_length`` (qwen_logn, default :math:`L`),
        ``attn_temperature_len`` (grok, default :math:`L`).

    Examples
    --------
    >>> rule_multiplier("entropy", 512, 4096)
    1.0
    >>> rule_multiplier("llama4", 3 * 8192, 4096, attn_scale=0.0)
    1.0
    """
    if not isinstance(name, str) or name not in RULES:
        raise InputError(f"name: got {name!r}; expected one of {', '.join(RULES)}")
    return RULES[name].multiplier(n, train_len, tail, **params)


def rule_multipliers(name: str, ns: Any, train_len: Any, tail: ScoreTail | None = None, **params: Any) -> np.ndarray:
    r"""The multiplier of the rule called ``name`` at an array of lengths: the per-position form.

    A causal query at 0-based position :math:`p` sees :math:`n = p + 1` keys and gets
    :math:`m(p + 1)`; ``rule_multipliers(name, positions + 1, L)`` gives every query's
    multiplier at once (:mod:`attnscale.torch` scales the query rows by it). Elementwise equal to
    :func:`rule_multiplier`; vectorized in NumPy, the critical rule through
    :func:`critical_multipliers` (once per distinct :math:`n`).

    Parameters
    ----------
    name : str
        A key of :data:`RULES`.
    ns : array_like of int
        Context lengths, each ``1 <= n <= 1e18``.
    train_len : int
        Training context length :math:`L \ge 2`.
    tail : ScoreTail, optional
        Needed by ``"critical"``.
    **params
        The rule's parameters (see :func:`rule_multiplier`); ssmax's ``s`` may be an array, one
        value per head.

    Returns
    -------
    numpy.ndarray
        float64 of shape ``ns.shape``, or ``s.shape + ns.shape`` for an array ``s``.

    Examples
    --------
    >>> rule_multipliers("qwen_logn", [1, 4096, 4096**2], 4096).tolist()
    [1.0, 1.0, 2.0]
    >>> rule_multipliers("ssmax", [1, 100], 512, s=[1.0, 2.0]).round(4).tolist()
    [[0.0, 4.6052], [0.0, 9.2103]]
    """
    if not isinstance(name, str) or name not in RULES:
        raise InputError(f"name: got {name!r}; expected one of {', '.join(RULES)}")
    return RULES[name].multipliers(ns, train_len, tail, **params)
