r"""Attention-temperature rules used in practice, and the critical rule of the theory.

A rule says how much the attention logits of a model trained at context length :math:`L` are
multiplied at context length :math:`n`: the multiplier

.. math:: m(n) = \frac{\beta(n)}{\beta(L)},

so that a head with inverse temperature :math:`\beta_0` at training length runs at
:math:`\beta_0\, m(n)`, and its regime is given by
:math:`c = \beta_0\, m(n) / \beta^*(n)` (docs/theory.md sections 2 and 3).

Each rule is a small pure function whose docstring cites its source; :data:`RULES` is the
registry used by :func:`rule_multiplier` and :func:`schedules_summary` (the JSON object of
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
``critical``       :math:`\beta^*(n) / \beta^*(L)`                     docs/theory.md section 2
=================  ==================================================  ==========================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._validate import InputError, check_int, check_n, check_nonnegative, check_positive
from .tails import ScoreTail, critical_beta, regime

__all__ = [
    "RULES",
    "Rule",
    "critical_multiplier",
    "entropy_invariant_multiplier",
    "llama4_multiplier",
    "logn_multiplier",
    "rule_multiplier",
    "schedules_summary",
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


def yarn_multiplier(n: Any, train_len: Any, coefficient: float = 0.1) -> float:
    r"""YaRN's attention temperature: :math:`m(n) = (0.1 \ln s + 1)^2`, :math:`s = n / L`.

    YaRN multiplies the logits by :math:`1/t` with :math:`\sqrt{1/t} = 0.1 \ln s + 1`
    (Peng, Quesnelle, Fan, Shippole, "YaRN: Efficient Context Window Extension of Large
    Language Models", arXiv:2309.00071, 2023, section 3.4; implemented as
    ``mscale = 0.1 * ln(scale) + 1`` applied to both the cosine and the sine of the rotary
    embedding, hence squared on the logits). Here the scale factor is the dynamic one,
    :math:`s = n/L`, and :math:`m(n) = 1` for :math:`n \le L` (no extension).

    Parameters
    ----------
    n : int
        Context length, ``1 <= n <= 1e18``.
    train_len : int
        Training context length :math:`L \ge 2`.
    coefficient : float
        The 0.1 of the formula (``mscale`` times 0.1 in implementations), ``>= 0``.

    Returns
    -------
    float
        :math:`(\text{coefficient} \cdot \ln(n/L) + 1)^2` for :math:`n > L`, else 1.

    Examples
    --------
    >>> round(yarn_multiplier(4 * 4096, 4096), 6)
    1.296477
    >>> yarn_multiplier(100, 4096)
    1.0
    """
    n_int, L = check_n(n), _check_train_len(train_len)
    a = check_nonnegative(coefficient, "coefficient")
    if n_int <= L:
        return 1.0
    return (a * (math.log(n_int) - math.log(L)) + 1.0) ** 2


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


def llama4_multiplier(n: Any, floor_scale: Any = 8192, attn_scale: Any = 0.1) -> float:
    r"""Llama 4 attention temperature tuning: :math:`m(n) = 1 + 0.1 \ln(1 + \lfloor n / 8192 \rfloor)`.

    Llama 4's layers without positional encoding multiply the query at position :math:`p`
    (0-based) by :math:`1 + a \ln(1 + \lfloor (p+1)/F \rfloor)` with ``attn_scale`` :math:`a = 0.1`
    and ``floor_scale`` :math:`F = 8192` (Meta, Llama 4 reference model, 2025, option
    ``attn_temperature_tuning``; Hugging Face ``Llama4TextAttention``). The last query of a
    context of length :math:`n` has :math:`p + 1 = n`. The rule does not refer to a training
    length.

    Parameters
    ----------
    n : int
        Context length (position of the query, 1-based), ``1 <= n <= 1e18``.
    floor_scale : int
        :math:`F \ge 1`.
    attn_scale : float
        :math:`a \ge 0`.

    Returns
    -------
    float
        :math:`1 + a \ln(1 + \lfloor n/F \rfloor)` (exact integer floor).

    Examples
    --------
    >>> llama4_multiplier(8191)
    1.0
    >>> round(llama4_multiplier(8192), 12) == round(1 + 0.1 * math.log(2), 12)
    True
    """
    n_int = check_n(n)
    F = check_int(floor_scale, "floor_scale", minimum=1)
    a = check_nonnegative(attn_scale, "attn_scale")
    return 1.0 + a * math.log1p(n_int // F)


def critical_multiplier(n: Any, train_len: Any, tail: ScoreTail) -> float:
    r"""The critical rule: keep :math:`c` constant, :math:`m(n) = \beta^*(n) / \beta^*(L) = (n/L)^{1/\gamma}`.

    With :math:`\beta^*(n) = (\kappa n)^{1/\gamma}` (docs/theory.md section 2) a head at
    :math:`\beta_0` stays at :math:`c = \beta_0 / \beta^*(L)` for every :math:`n` under this rule.
    Both critical scales come from :func:`attnscale.tails.critical_beta`, which raises when
    :math:`\beta^*` leaves the float64 range.

    Parameters
    ----------
    n : int
        Context length, ``1 <= n <= 1e18``.
    train_len : int
        Training context length :math:`L \ge 2`.
    tail : ScoreTail
        The head's score tail (only :math:`\gamma` matters: :math:`\kappa` cancels).

    Returns
    -------
    float
        :math:`\beta^*(n) / \beta^*(L)`.

    Examples
    --------
    >>> round(critical_multiplier(4 * 512, 512, ScoreTail(1.0, 2.0, 0.3)), 12)
    2.0
    """
    n_int, L = check_n(n), _check_train_len(train_len)
    return critical_beta(n_int, tail) / critical_beta(L, tail)


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
        Whether the rule needs a :class:`~attnscale.tails.ScoreTail`.

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

    def multiplier(self, n: Any, train_len: Any, tail: ScoreTail | None = None, **params: Any) -> float:
        """The rule's multiplier :math:`m(n)` at context length ``n`` for training length ``train_len``."""
        if self.needs_tail and not isinstance(tail, ScoreTail):
            raise TypeError(f"tail: got {type(tail).__name__}; the {self.name!r} rule needs a ScoreTail")
        return self.function(n, train_len, tail, params)


def _only(params: dict[str, Any], allowed: tuple[str, ...], rule: str) -> dict[str, Any]:
    extra = sorted(set(params) - set(allowed))
    if extra:
        ok = ", ".join(allowed) if allowed else "none"
        raise TypeError(f"params: got {extra} for rule {rule!r}; its parameters are: {ok}")
    return params


def _standard(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    _check_train_len(L)
    return standard_multiplier(n, **_only(p, (), "standard"))


def _yarn(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    return yarn_multiplier(n, L, **_only(p, ("coefficient",), "yarn"))


def _logn(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    return logn_multiplier(n, L, **_only(p, (), "logn"))


def _entropy(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    _check_train_len(L)
    return entropy_invariant_multiplier(n, **_only(p, ("base",), "entropy"))


def _ssmax(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    p = _only(p, ("s",), "ssmax")
    s = p.get("s")
    if s is None:
        s = 1.0 / math.log(_check_train_len(L))
    else:
        _check_train_len(L)
    return ssmax_multiplier(n, s)


def _llama4(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    _check_train_len(L)
    return llama4_multiplier(n, **_only(p, ("floor_scale", "attn_scale"), "llama4"))


def _critical(n: Any, L: Any, tail: Any, p: dict[str, Any]) -> float:
    _only(p, (), "critical")
    return critical_multiplier(n, L, tail)


#: The rules by name, in the order of the report.
RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("standard", "1", "Vaswani et al. 2017", _standard),
        Rule("yarn", "(0.1 ln(n/L) + 1)^2 for n > L, else 1", "Peng et al. 2023, arXiv:2309.00071", _yarn),
        Rule("logn", "max(1, ln n / ln L)", "Qwen (arXiv:2309.16609); LongRoPE (arXiv:2402.13753)", _logn),
        Rule("entropy", "ln n / ln 512", "Su 2021, kexue.fm/archives/8823", _entropy),
        Rule("ssmax", "s ln n, s = 1/ln L unless given", "Nakanishi 2025, arXiv:2501.19399", _ssmax),
        Rule("llama4", "1 + 0.1 ln(1 + floor(n / 8192))", "Meta Llama 4 (attn_temperature_tuning), 2025", _llama4),
        Rule("critical", "beta*(n) / beta*(L) = (n/L)^(1/gamma)", "docs/theory.md section 2", _critical, needs_tail=True),
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
        The rule's own parameters: ``coefficient`` (yarn), ``base`` (entropy), ``s`` (ssmax),
        ``floor_scale`` and ``attn_scale`` (llama4).

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


def schedules_summary(
    train_len: Any,
    n: Any,
    tail: ScoreTail | None = None,
    base_beta: Any = 1.0,
    params: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    r"""Every rule at one context length: its multiplier, :math:`c` and regime (``attnscale schedules --json``).

    A head with inverse temperature :math:`\beta_0` (``base_beta``) at the training length runs
    at :math:`\beta_0 m(n)` under a rule, so

    .. math:: c = \frac{\beta_0\, m(n)}{\beta^*(n)},

    and its regime is :func:`attnscale.tails.regime` at that inverse temperature
    (docs/theory.md sections 2 and 3).

    Parameters
    ----------
    train_len : int
        Training context length :math:`L \ge 2`.
    n : int
        Context length, ``1 <= n <= 1e18``.
    tail : ScoreTail, optional
        The head's score tail. Without it ``c`` and ``regime`` are None and the critical rule
        is left out.
    base_beta : float
        :math:`\beta_0 \ge 0`, in the units of the tail's scores.
    params : dict, optional
        Per-rule parameters, e.g. ``{"ssmax": {"s": 0.2}}``.

    Returns
    -------
    dict
        ``{"train_len", "n", "base_beta", "tail", "rules": [{"name", "multiplier", "c",
        "regime"}]}``; ``tail`` is ``{"endpoint", "gamma", "kappa", "kind", "beta_star"}`` or None.

    Examples
    --------
    >>> out = schedules_summary(512, 512**2, ScoreTail(1.0, 1.0, 1.0), base_beta=512.0)
    >>> [(r["name"], round(r["multiplier"], 3), r["regime"]) for r in out["rules"]][:3]
    [('standard', 1.0, 'subcritical'), ('yarn', 2.637, 'subcritical'), ('logn', 2.0, 'subcritical')]
    >>> out["rules"][-1]["c"]
    1.0
    """
    L, n_int = _check_train_len(train_len), check_n(n)
    beta0 = check_nonnegative(base_beta, "base_beta")
    if tail is not None and not isinstance(tail, ScoreTail):
        raise TypeError(f"tail: got {type(tail).__name__}; expected a ScoreTail or None")
    params = dict(params or {})
    unknown = sorted(set(params) - set(RULES))
    if unknown:
        raise InputError(f"params: got rules {unknown}; expected rule names among {', '.join(RULES)}")
    rows = []
    for rule in RULES.values():
        if rule.needs_tail and tail is None:
            continue
        m = rule.multiplier(n_int, L, tail, **params.get(rule.name, {}))
        row: dict[str, Any] = {"name": rule.name, "multiplier": m, "c": None, "regime": None}
        if tail is not None:
            reg = regime(n_int, beta0 * m, tail)
            row["c"], row["regime"] = reg.c, reg.name
        rows.append(row)
    tail_row = None
    if tail is not None:
        tail_row = {"endpoint": tail.endpoint, "gamma": tail.gamma, "kappa": _kappa_or_none(tail),
                    "log_kappa": tail.log_kappa, "kind": tail.kind, "beta_star": critical_beta(n_int, tail)}
    return {"train_len": L, "n": n_int, "base_beta": beta0, "tail": tail_row, "rules": rows}


def _kappa_or_none(tail: ScoreTail) -> float | None:
    """``kappa``, or ``None`` where only ``log_kappa`` is representable (uniform keys, d >= 4096)."""
    return tail.kappa if tail.kappa_is_finite else None
