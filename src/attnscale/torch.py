r"""Drop-in scaled dot-product attention with a length-dependent temperature rule (PyTorch).

:func:`scaled_dot_product_attention` is :func:`torch.nn.functional.scaled_dot_product_attention`
whose logit scale is multiplied by a rule's :math:`m(n)` (:mod:`attnscale.schedules`), with
:math:`n` the number of keys (the context length, also during KV-cache decoding):

.. math:: \mathrm{softmax}\!\Big(m(n)\, \frac{Q K^\top}{\sqrt{d_h}} + M\Big) V .

The multiplier goes through SDPA's own ``scale`` argument, so every SDPA kernel (flash,
memory-efficient, math) is kept; at :math:`m = 1` the call is SDPA's, bit for bit.
:class:`RuleAttention` is the same as an ``nn.Module``, and :func:`register_hf_attention` installs a
rule as a Hugging Face ``transformers`` attention implementation (docs/probe.md). In the
notation of docs/theory.md section 1 the rule multiplies the inverse temperature
:math:`\beta`; section 3 says which regime the result is in.

Per position. Models apply their rules per query: with ``is_causal=True`` or an explicit
``positions`` tensor, query row :math:`i` at absolute 0-based position :math:`p_i` sees
:math:`p_i + 1` keys and gets :math:`m(p_i + 1)`
(:func:`attnscale.schedules.rule_multipliers`); without ``positions``, a causal call with
:math:`L_q < S` keys (a KV cache) puts the queries at the end, :math:`p_i = S - L_q + i`, and its
causal mask is aligned to the lower right accordingly. The multipliers scale the query rows,
:math:`\mathrm{softmax}(\mathrm{diag}(m)\, Q K^\top / \sqrt{d_h} + M)\, V`, so SDPA's fused
kernels still run. Without either, every query gets the multiplier of the key length
(``per_position=False`` forces that one-multiplier form).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

import numpy as np

from ._validate import InputError, InputTypeError, check_int, check_positive
from .schedules import RULES, rule_multiplier, rule_multipliers
from .tails import ScoreTail

__all__ = [
    "RuleAttention",
    "position_multipliers",
    "register_hf_attention",
    "rule_scale",
    "scaled_dot_product_attention",
]


def rule_scale(
    n: Any,
    head_dim: Any,
    rule: str = "standard",
    train_len: Any = None,
    *,
    scale: float | None = None,
    tail: ScoreTail | None = None,
    **params: Any,
) -> float:
    r"""The logit scale :math:`m(n) \cdot s_0` handed to SDPA, :math:`s_0 = 1/\sqrt{d_h}` unless given.

    Parameters
    ----------
    n : int
        Context length (number of keys), ``1 <= n <= 1e18``.
    head_dim : int
        :math:`d_h \ge 1`.
    rule : str
        A rule of :data:`attnscale.schedules.RULES`.
    train_len : int, optional
        Training context length :math:`L \ge 2`; needed by every rule but ``"standard"``.
    scale : float, optional
        The base scale :math:`s_0 > 0` (SDPA's ``scale``); default :math:`1/\sqrt{d_h}`.
    tail : ScoreTail, optional
        For the ``"critical"`` rule.
    **params
        The rule's own parameters (see :func:`attnscale.schedules.rule_multiplier`).

    Examples
    --------
    >>> rule_scale(4096, 64, "logn", 64)
    0.25
    """
    d = check_int(head_dim, "head_dim", minimum=1)
    base = 1.0 / math.sqrt(d) if scale is None else check_positive(scale, "scale")
    return base * _multiplier(rule, n, train_len, tail, params)


def _multiplier(rule: Any, n: Any, train_len: Any, tail: ScoreTail | None, params: dict[str, Any]) -> float:
    """The rule's m(n); ``train_len`` may be None for the standard rule only."""
    if train_len is None:
        if rule != "standard":
            raise InputError(f"train_len: got None; the {rule!r} rule needs the training context length L >= 2")
        train_len = 2  # unused by the standard rule
    return rule_multiplier(rule, n, train_len, tail, **params)


def position_multipliers(
    positions: Any,
    rule: str = "standard",
    train_len: Any = None,
    *,
    tail: ScoreTail | None = None,
    **params: Any,
) -> torch.Tensor:
    r"""Per-query multipliers :math:`m(p + 1)` of a rule, for 0-based absolute positions :math:`p`.

    Parameters
    ----------
    positions : torch.Tensor or array_like of int
        ``(L_q,)`` or ``(batch, L_q)`` positions, each ``>= 0``.
    rule, train_len, tail, **params
        As for :func:`scaled_dot_product_attention` (ssmax's ``s`` may hold one value per head).

    Returns
    -------
    torch.Tensor
        float64 on CPU, shaped to broadcast against ``(batch, heads, L_q, E)`` queries:
        ``(L_q, 1)`` for 1-D positions, ``(batch, 1, L_q, 1)`` for 2-D ones; with a per-head
        ``s``, ``(heads, L_q, 1)`` or ``(batch, heads, L_q, 1)``.

    Examples
    --------
    >>> position_multipliers(torch.tensor([0, 8191, 16383]), "llama4", 4096).flatten().tolist() == [
    ...     1.0, 1 + 0.1 * math.log(2), 1 + 0.1 * math.log(3)]
    True
    """
    pos = positions.detach().cpu().numpy() if isinstance(positions, torch.Tensor) else np.asarray(positions)
    if pos.ndim not in (1, 2) or pos.size == 0:
        raise InputError(f"positions: got shape {pos.shape}; expected (L_q,) or (batch, L_q), non-empty")
    if not np.issubdtype(pos.dtype, np.integer) or pos.min() < 0:
        raise InputError("positions: expected integer positions >= 0")
    if train_len is None:
        if rule != "standard":
            raise InputError(f"train_len: got None; the {rule!r} rule needs the training context length L >= 2")
        train_len = 2
    m = torch.from_numpy(np.ascontiguousarray(rule_multipliers(rule, pos.astype(np.int64) + 1, train_len, tail, **params)))
    per_head = m.dim() > pos.ndim  # ssmax with one s per head: (heads, *pos.shape)
    if pos.ndim == 1:
        return m.unsqueeze(-1)  # (L_q, 1) or (H, L_q, 1)
    if per_head:
        return m.permute(1, 0, 2).unsqueeze(-1)  # (B, H, L_q, 1)
    return m[:, None, :, None]  # (B, 1, L_q, 1)


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    *,
    rule: str = "standard",
    train_len: Any = None,
    n: Any = None,
    positions: Any = None,
    per_position: bool | None = None,
    tail: ScoreTail | None = None,
    **params: Any,
) -> torch.Tensor:
    r"""SDPA with the logits multiplied by the rule: per query position, or by :math:`m(n)` for all.

    Same arguments and result as :func:`torch.nn.functional.scaled_dot_product_attention`, plus
    the rule. ``rule="standard"`` gives exactly SDPA's output (the same call), and so does the
    one-multiplier form at a length where :math:`m = 1`.

    Per position (``is_causal=True`` or ``positions`` given, unless ``per_position=False``): query
    row :math:`i` at 0-based position :math:`p_i` is multiplied by :math:`m(p_i + 1)`
    (:func:`position_multipliers`) before SDPA, which keeps its own ``scale``. Default positions
    :math:`p_i = S - L_q + i` (queries at the end of the keys: prefill with :math:`L_q = S`, or a
    KV cache); for a causal call with :math:`L_q < S` the mask is then the lower-right aligned
    causal mask (query :math:`i` sees keys :math:`0 .. S - L_q + i`), not SDPA's upper-left one
    (the standard rule stays SDPA's own call, upper-left).
    One multiplier (otherwise): every logit times :math:`m(n)`, :math:`n` = ``n`` or the number
    of keys, through SDPA's ``scale``.

    Parameters
    ----------
    query, key, value : torch.Tensor
        ``(..., L_q, E)``, ``(..., S, E)``, ``(..., S, E_v)``, as for SDPA.
    attn_mask, dropout_p, is_causal, scale
        As for SDPA; ``scale`` is the base scale (default :math:`1/\sqrt{E}`) that the rule multiplies.
    rule : str
        A key of :data:`attnscale.schedules.RULES`.
    train_len : int, optional
        Training context length :math:`L \ge 2`; needed by every rule but ``"standard"``.
    n : int, optional
        Context length given to the rule in the one-multiplier form; default the number of keys
        ``key.shape[-2]``.
    positions : torch.Tensor, optional
        ``(L_q,)`` or ``(batch, L_q)`` 0-based absolute positions of the queries.
    per_position : bool, optional
        Force (True) or forbid (False) the per-position form; default: per position when
        ``is_causal`` or ``positions``.
    tail : ScoreTail, optional
        For ``rule="critical"``.
    **params
        The rule's own parameters, e.g. ``s=0.2`` for SSMax (per position, ``s`` may be a
        tensor or sequence with one value per head).

    Returns
    -------
    torch.Tensor
        ``(..., L_q, E_v)``.

    Examples
    --------
    >>> q = k = v = torch.ones(1, 1, 3, 4)
    >>> out = scaled_dot_product_attention(q, k, v, rule="yarn", train_len=2)
    >>> tuple(out.shape)
    (1, 1, 3, 4)
    """
    if not isinstance(key, torch.Tensor):
        raise InputTypeError(f"key: got {type(key).__name__}; expected a torch.Tensor")
    if key.dim() < 2:
        raise InputError(f"key: got shape {tuple(key.shape)}; expected (..., S, E)")
    if not isinstance(query, torch.Tensor) or query.dim() < 2:
        raise InputTypeError(f"query: got {type(query).__name__}; expected a torch.Tensor of shape (..., L_q, E)")
    sdpa = torch.nn.functional.scaled_dot_product_attention
    if per_position is None:
        per_position = bool(is_causal) or positions is not None
    if per_position and n is not None:
        raise InputError("n: got a context length with the per-position form; give positions instead")
    if rule == "standard":  # SDPA itself, bit for bit
        _multiplier(rule, 1, train_len, tail, params)  # validates
        return sdpa(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale)
    if not per_position:
        length = key.shape[-2] if n is None else n
        s = rule_scale(length, query.shape[-1], rule, train_len, scale=scale, tail=tail, **params)
        return sdpa(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=s)
    lq, sk = query.shape[-2], key.shape[-2]
    if positions is None:
        if lq > sk:
            raise InputError(f"query: got {lq} queries for {sk} keys; give positions explicitly")
        positions = torch.arange(sk - lq, sk)
    params = {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v) for k, v in params.items()}
    m = position_multipliers(positions, rule, train_len, tail=tail, **params)
    if m.shape[-2] != lq:
        raise InputError(f"positions: got {m.shape[-2]} positions for {lq} queries; expected one per query")
    if is_causal and lq != sk:
        keep = torch.ones(lq, sk, dtype=torch.bool, device=query.device).tril(diagonal=sk - lq)
        if attn_mask is None:
            attn_mask = keep
        elif attn_mask.dtype == torch.bool:
            attn_mask = attn_mask & keep
        else:
            attn_mask = attn_mask.masked_fill(~keep, -math.inf)
        is_causal = False
    q = query * m.to(device=query.device, dtype=query.dtype)
    return sdpa(q, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale)


class RuleAttention(nn.Module):
    r"""An ``nn.Module`` applying a temperature rule to SDPA (:func:`scaled_dot_product_attention`).

    Parameters
    ----------
    rule : str
        A key of :data:`attnscale.schedules.RULES`.
    train_len : int, optional
        Training context length :math:`L \ge 2`; needed by every rule but ``"standard"``.
    tail : ScoreTail, optional
        For ``rule="critical"``.
    **params
        The rule's own parameters.

    Examples
    --------
    >>> attn = RuleAttention("logn", train_len=4)
    >>> attn
    RuleAttention(rule='logn', train_len=4)
    >>> round(attn.multiplier(16), 12)
    2.0
    >>> q = k = v = torch.zeros(2, 4, 16, 8)
    >>> tuple(attn(q, k, v, is_causal=True).shape)
    (2, 4, 16, 8)
    """

    def __init__(self, rule: str = "standard", train_len: Any = None, tail: ScoreTail | None = None, **params: Any) -> None:
        super().__init__()
        if not isinstance(rule, str) or rule not in RULES:
            raise InputError(f"rule: got {rule!r}; expected one of {', '.join(RULES)}")
        if train_len is not None:
            train_len = check_int(train_len, "train_len", minimum=2)
        _multiplier(rule, 2 if train_len is None else train_len, train_len, tail, params)  # validates once
        self.rule, self.train_len, self.tail, self.params = rule, train_len, tail, dict(params)

    def extra_repr(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"rule={self.rule!r}, train_len={self.train_len}{extra}"

    def multiplier(self, n: Any) -> float:
        """The rule's :math:`m(n)`."""
        return _multiplier(self.rule, n, self.train_len, self.tail, self.params)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """SDPA with the rule applied: :func:`scaled_dot_product_attention` with this module's rule.

        ``args`` and ``kwargs`` are that function's other arguments (``attn_mask, dropout_p,
        is_causal, scale`` and, by keyword, ``n, positions, per_position``), not the rule's.
        """
        return scaled_dot_product_attention(
            query, key, value, *args, rule=self.rule, train_len=self.train_len, tail=self.tail, **self.params, **kwargs
        )


def _layer_filter(layers: Any) -> Any:
    """``layers`` as a predicate on the attention module: None (all), layer indices, or a callable."""
    if layers is None:
        return lambda module: True
    if callable(layers):
        return layers
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise InputTypeError(f"layers: got {layers!r}; expected None, a collection of layer indices or a callable(module) -> bool")
    chosen = frozenset(check_int(i, "layers", minimum=0) for i in layers)

    def selected(module: nn.Module) -> bool:
        idx = getattr(module, "layer_idx", None)
        if idx is None:
            raise InputError("layers: the model's attention modules have no layer_idx; give a callable(module) -> bool")
        return int(idx) in chosen

    return selected


def register_hf_attention(
    name: str,
    rule: str,
    train_len: Any = None,
    tail: ScoreTail | None = None,
    *,
    layers: Any = None,
    per_position: bool = True,
    **params: Any,
) -> str:
    r"""Register a rule as a Hugging Face ``transformers`` attention implementation called ``name``.

    The implementation is ``transformers``' own SDPA attention
    (``transformers.integrations.sdpa_attention.sdpa_attention_forward``) with the rule applied
    in the layers that ``layers`` selects, and SDPA unchanged in the others:

    - in causal attention (modules with ``is_causal`` true, the decoders), per position: the
      query at position :math:`p` (the ``position_ids`` the model passes, else the last
      :math:`L_q` of the :math:`S` keys) is multiplied by :math:`m(p + 1)`, as Llama 4, Qwen and
      Grok do;
    - otherwise (encoders, or ``per_position=False``) the scaling is multiplied by :math:`m(S)`.

    Masks are built as for ``"sdpa"``. Use it with ``AutoModel.from_pretrained(path,
    attn_implementation=name)`` or ``model.set_attn_implementation(name)`` (recipe in
    docs/probe.md). Needs ``transformers`` (the ``probe`` extra).

    Parameters
    ----------
    name : str
        Name of the implementation (not one of transformers' own, such as ``"sdpa"``).
    rule, train_len, tail, **params
        As for :class:`RuleAttention`.
    layers : None, collection of int, or callable, optional
        Which attention modules get the rule: all (None), those whose ``layer_idx`` is listed, or
        those for which ``layers(module)`` is true. Llama 4 scales its NoPE layers only:
        ``layers=lambda module: not module.use_rope``.
    per_position : bool
        Per position in causal attention (True) or one multiplier :math:`m(S)` everywhere.

    Returns
    -------
    str
        ``name``.

    Examples
    --------
    >>> register_hf_attention("attnscale_logn_512", "logn", 512)
    'attnscale_logn_512'
    >>> register_hf_attention("attnscale_llama4_nope", "llama4", 8192, layers=lambda m: not getattr(m, "use_rope", True))
    'attnscale_llama4_nope'
    """
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if not isinstance(name, str) or not name or name in ("sdpa", "eager") or name.startswith(("flash", "flex", "paged")):
        raise InputError(f"name: got {name!r}; expected a new name, not one of transformers' implementations")
    selected = _layer_filter(layers)
    module = RuleAttention(rule, train_len, tail, **params)
    arrays = {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v) for k, v in params.items()}

    def attention(mod: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  attention_mask: torch.Tensor | None, scaling: float | None = None, **kwargs: Any):
        base = query.shape[-1] ** -0.5 if scaling is None else scaling
        if not selected(mod):
            return sdpa_attention_forward(mod, query, key, value, attention_mask, scaling=base, **kwargs)
        causal = kwargs.get("is_causal")
        causal = getattr(mod, "is_causal", False) if causal is None else causal
        if not (per_position and causal):
            return sdpa_attention_forward(mod, query, key, value, attention_mask,
                                          scaling=base * module.multiplier(key.shape[-2]), **kwargs)
        lq, sk = query.shape[-2], key.shape[-2]
        pos = kwargs.get("position_ids")
        if pos is None or pos.shape[-1] != lq:
            pos = torch.arange(sk - lq, sk)
        elif pos.dim() == 2 and pos.shape[0] == 1:
            pos = pos[0]
        m = position_multipliers(pos, rule, module.train_len, tail=tail, **arrays)
        query = query * m.to(device=query.device, dtype=query.dtype)
        return sdpa_attention_forward(mod, query, key, value, attention_mask, scaling=base, **kwargs)

    AttentionInterface.register(name, attention)
    AttentionMaskInterface.register(name, sdpa_mask)
    return name
