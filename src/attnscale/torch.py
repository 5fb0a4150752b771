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

Note: the rules of Qwen and Llama 4 are defined per query position; here every query of a
call gets the multiplier of the full key length, which is exact for one-token decoding steps.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ._validate import InputError, check_int, check_positive
from .schedules import RULES, rule_multiplier
from .tails import ScoreTail

__all__ = ["RuleAttention", "register_hf_attention", "rule_scale", "scaled_dot_product_attention"]


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
    tail: ScoreTail | None = None,
    **params: Any,
) -> torch.Tensor:
    r"""SDPA with the logits multiplied by the rule's :math:`m(n)`, :math:`n` = number of keys.

    Same arguments and result as :func:`torch.nn.functional.scaled_dot_product_attention`, plus
    the rule. ``rule="standard"`` (or any rule at a length where :math:`m = 1`) gives exactly
    SDPA's output.

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
        Context length given to the rule; default the number of keys ``key.shape[-2]``.
    tail : ScoreTail, optional
        For ``rule="critical"``.
    **params
        The rule's own parameters, e.g. ``s=0.2`` for SSMax.

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
        raise TypeError(f"key: got {type(key).__name__}; expected a torch.Tensor")
    if key.dim() < 2:
        raise InputError(f"key: got shape {tuple(key.shape)}; expected (..., S, E)")
    length = key.shape[-2] if n is None else n
    s = rule_scale(length, query.shape[-1], rule, train_len, scale=scale, tail=tail, **params)
    return torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=s
    )


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

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        n: Any = None,
    ) -> torch.Tensor:
        """SDPA with the rule applied; arguments as :func:`scaled_dot_product_attention`."""
        return scaled_dot_product_attention(
            query, key, value, attn_mask, dropout_p, is_causal, scale,
            rule=self.rule, train_len=self.train_len, n=n, tail=self.tail, **self.params,
        )


def register_hf_attention(name: str, rule: str, train_len: Any, tail: ScoreTail | None = None, **params: Any) -> str:
    r"""Register a rule as a Hugging Face ``transformers`` attention implementation called ``name``.

    The implementation is ``transformers``' own SDPA attention with its ``scaling`` multiplied by
    the rule's :math:`m(n)`, :math:`n` the key length; masks are built as for ``"sdpa"``. Use it
    with ``AutoModel.from_pretrained(path, attn_implementation=name)`` or
    ``model.set_attn_implementation(name)`` (recipe in docs/probe.md). Needs ``transformers``
    (the ``probe`` extra).

    Parameters
    ----------
    name : str
        Name of the implementation (not one of transformers' own, such as ``"sdpa"``).
    rule, train_len, tail, **params
        As for :class:`RuleAttention`.

    Returns
    -------
    str
        ``name``.

    Examples
    --------
    >>> register_hf_attention("attnscale_logn_512", "logn", 512)
    'attnscale_logn_512'
    """
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if not isinstance(name, str) or not name or name in ("sdpa", "eager") or name.startswith(("flash", "flex", "paged")):
        raise InputError(f"name: got {name!r}; expected a new name, not one of transformers' implementations")
    module = RuleAttention(rule, train_len, tail, **params)

    def attention(mod: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  attention_mask: torch.Tensor | None, scaling: float | None = None, **kwargs: Any):
        base = query.shape[-1] ** -0.5 if scaling is None else scaling
        return sdpa_attention_forward(mod, query, key, value, attention_mask,
                                      scaling=base * module.multiplier(key.shape[-2]), **kwargs)

    AttentionInterface.register(name, attention)
    AttentionMaskInterface.register(name, sdpa_mask)
    return name
