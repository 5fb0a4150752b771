"""attnscale.torch: SDPA with a temperature rule, against SDPA itself and an explicit softmax."""

from __future__ import annotations

import math

import pytest
import torch

from attnscale.schedules import rule_multiplier
from attnscale.tails import ScoreTail
from attnscale.torch import (
    RuleAttention,
    position_multipliers,
    register_hf_attention,
    rule_scale,
    scaled_dot_product_attention,
)

F = torch.nn.functional
RULE_CASES = [
    ("standard", {}),
    ("yarn", {}),
    ("logn", {}),
    ("entropy", {}),
    ("ssmax", {"s": 0.4}),
    ("llama4", {"floor_scale": 4}),
    ("critical_asymptotic", {"tail": ScoreTail(0.9, 1.5, 0.3)}),
]


def _qkv(shape_q, shape_k, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*shape_q, generator=g, dtype=dtype)
    k = torch.randn(*shape_k, generator=g, dtype=dtype)
    v = torch.randn(*shape_k[:-1], 5, generator=g, dtype=dtype)
    return q, k, v


def _reference(q, k, v, m, mask=None, causal=False):
    """softmax(m q k^T / sqrt(E) + mask) v, written out in float64; m a number or one per query row
    (broadcast against (..., L_q, 1)); causal: query i sees keys 0 .. S - L_q + i."""
    q, k, v = q.double(), k.double(), v.double()
    m = torch.as_tensor(m, dtype=torch.float64)
    logits = m * (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if causal:
        lq, s = q.shape[-2], k.shape[-2]
        keep = torch.ones(lq, s, dtype=torch.bool).tril(diagonal=s - lq)
        logits = logits.masked_fill(~keep, -math.inf)
    if mask is not None:
        logits = logits.masked_fill(~mask, -math.inf) if mask.dtype == torch.bool else logits + mask.double()
    return torch.softmax(logits, dim=-1) @ v


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("causal", [False, True])
def test_standard_rule_is_sdpa_bit_for_bit(dtype, causal):
    q, k, v = _qkv((2, 3, 7, 16), (2, 3, 7, 16), dtype)
    ours = scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert torch.equal(ours, F.scaled_dot_product_attention(q, k, v, is_causal=causal))
    # any rule at a length where its multiplier is 1 is SDPA too
    ours = scaled_dot_product_attention(q, k, v, is_causal=causal, rule="yarn", train_len=4096)
    assert torch.equal(ours, F.scaled_dot_product_attention(q, k, v, is_causal=causal))


@pytest.mark.parametrize("rule,params", RULE_CASES)
def test_rules_against_explicit_softmax(rule, params):
    q, k, v = _qkv((2, 4, 6, 8), (2, 4, 40, 8))
    m = rule_multiplier(rule, 40, 5, params.get("tail"), **{a: b for a, b in params.items() if a != "tail"})
    assert m > 0
    ours = scaled_dot_product_attention(q, k, v, rule=rule, train_len=5, **params)
    torch.testing.assert_close(ours, _reference(q, k, v, m), rtol=1e-12, atol=1e-12)


def test_masks_causal_and_scale_are_passed_through():
    q, k, v = _qkv((1, 2, 9, 8), (1, 2, 9, 8))
    m = math.log(9) / math.log(3)
    bool_mask = torch.rand(9, 9, generator=torch.Generator().manual_seed(1)) > 0.3
    bool_mask[:, 0] = True  # every query keeps a key
    float_mask = torch.where(bool_mask, 0.0, -math.inf).double()
    ref = _reference(q, k, v, m, mask=bool_mask)
    for mask in (bool_mask, float_mask):
        out = scaled_dot_product_attention(q, k, v, attn_mask=mask, rule="logn", train_len=3)
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    out = scaled_dot_product_attention(q, k, v, is_causal=True, rule="logn", train_len=3, per_position=False)
    torch.testing.assert_close(out, _reference(q, k, v, m, causal=True), rtol=1e-12, atol=1e-12)
    # per position (the default with is_causal): query p gets max(1, log_3(p + 1))
    m_rows = torch.tensor([max(1.0, math.log(p + 1) / math.log(3)) for p in range(9)], dtype=torch.float64).reshape(9, 1)
    out = scaled_dot_product_attention(q, k, v, is_causal=True, rule="logn", train_len=3)
    torch.testing.assert_close(out, _reference(q, k, v, m_rows, causal=True), rtol=1e-12, atol=1e-12)
    # an explicit base scale is multiplied, and n overrides the key length
    out = scaled_dot_product_attention(q, k, v, scale=0.5, rule="logn", train_len=3, n=81)
    torch.testing.assert_close(out, _reference(q, k, v, 0.5 * math.sqrt(8) * 4.0), rtol=1e-12, atol=1e-12)


def test_module_equals_function_and_decoding_step_uses_key_length():
    q, k, v = _qkv((2, 2, 1, 8), (2, 2, 300, 8), torch.float32)
    attn = RuleAttention("yarn", train_len=100)
    assert "rule='yarn'" in repr(attn)
    out = attn(q, k, v)
    assert torch.equal(out, scaled_dot_product_attention(q, k, v, rule="yarn", train_len=100))
    m = (0.1 * math.log(3.0) + 1.0) ** 2  # one new query, 300 keys, L = 100
    torch.testing.assert_close(out.double(), _reference(q, k, v, m), rtol=1e-5, atol=1e-6)


def test_rule_scale_values():
    assert rule_scale(10, 64) == 0.125
    assert rule_scale(4096, 64, "logn", 64) == pytest.approx(0.25, rel=1e-15)
    assert rule_scale(4096, 64, "entropy", scale=2.0, train_len=8) == pytest.approx(2 * math.log(4096, 512), rel=1e-14)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: rule_scale(10, 0), ValueError, "head_dim"),
        (lambda: rule_scale(10, 8, scale=-1.0), ValueError, "scale"),
        (lambda: rule_scale(10, 8, "yarn"), ValueError, "train_len"),
        (lambda: rule_scale(10, 8, "nope", 4), ValueError, "name"),
        (lambda: RuleAttention("nope", 4), ValueError, "rule"),
        (lambda: RuleAttention("yarn", 1), ValueError, "train_len"),
        (lambda: RuleAttention("critical", 8), TypeError, "tail"),
        (lambda: scaled_dot_product_attention(torch.ones(2), [1.0], torch.ones(2)), TypeError, "key"),
        (lambda: register_hf_attention("sdpa", "yarn", 8), ValueError, "name"),
        (lambda: register_hf_attention("x_bad_layers", "yarn", 8, layers="all"), TypeError, "layers"),
        (lambda: scaled_dot_product_attention(*_qkv((1, 1, 3, 4), (1, 1, 3, 4)), rule="logn", train_len=2,
                                              positions=torch.tensor([0, 1])), ValueError, "positions"),
        (lambda: scaled_dot_product_attention(*_qkv((1, 1, 3, 4), (1, 1, 3, 4)), rule="logn", train_len=2,
                                              positions=torch.tensor([-1, 0, 1])), ValueError, "positions"),
        (lambda: scaled_dot_product_attention(*_qkv((1, 1, 3, 4), (1, 1, 3, 4)), rule="logn", train_len=2,
                                              is_causal=True, n=5), ValueError, "n"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_hugging_face_recipe_on_minilm():
    """The registered implementation equals the model's eager attention with its scaling multiplied."""
    from transformers import AutoModel, AutoTokenizer

    from attnscale.probe import model_path

    path = model_path()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    batch = tok(["a short sentence", "a longer sentence, with a comma and more words in it"], return_tensors="pt", padding=True)
    n = batch["input_ids"].shape[1]
    name = register_hf_attention("attnscale_test_logn", "logn", train_len=4)
    model = AutoModel.from_pretrained(path, local_files_only=True, attn_implementation="eager").eval()
    with torch.no_grad():
        plain = model(**batch).last_hidden_state
        model.set_attn_implementation(name)
        ruled = model(**batch).last_hidden_state
        model.set_attn_implementation("eager")
        m = math.log(n) / math.log(4)
        for layer in model.encoder.layer:
            layer.attention.self.scaling *= m
        reference = model(**batch).last_hidden_state
    keep = batch["attention_mask"].bool()
    assert (ruled[keep] - plain[keep]).abs().max() > 1e-2  # the rule changes the model
    torch.testing.assert_close(ruled[keep], reference[keep], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------- per position


def _long_causal_case(S=20000, heads=2, d=8, seed=5):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, heads, S, d, generator=g) for _ in range(3))
    return q, k, v


def _check_rows_against_float64_softmax(out, q, k, v, m_of_p, rows):
    """Independent check of a few query rows: softmax over keys 0..p of m(p+1) q_p k_j / sqrt(d), float64."""
    d = q.shape[-1]
    for p in rows:
        qp, kp, vp = q[0, :, p].double(), k[0, :, : p + 1].double(), v[0, :, : p + 1].double()
        logits = m_of_p(p) * torch.einsum("hd,hjd->hj", qp, kp) / math.sqrt(d)
        expected = torch.einsum("hj,hjd->hd", torch.softmax(logits, dim=-1), vp)
        torch.testing.assert_close(out[0, :, p].double(), expected, rtol=2e-5, atol=2e-5)


def test_llama4_at_20000_keys_equals_sdpa_on_scaled_queries():
    q, k, v = _long_causal_case()
    S = q.shape[-2]
    ours = scaled_dot_product_attention(q, k, v, is_causal=True, rule="llama4", train_len=8192)
    # the formula as Llama4TextAttention writes it, on 0-based positions
    p = torch.arange(S, dtype=torch.float32)
    scales = torch.log1p(torch.floor((p + 1.0) / 8192)) * 0.1 + 1.0
    expected = F.scaled_dot_product_attention(q * scales[:, None], k, v, is_causal=True)
    torch.testing.assert_close(ours, expected, rtol=1.3e-6, atol=1e-5)  # float32 defaults
    assert not torch.allclose(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    _check_rows_against_float64_softmax(
        ours, q, k, v, lambda p: 1 + 0.1 * math.log(1 + (p + 1) // 8192), [0, 8190, 8191, 16383, S - 1])


def test_qwen_logn_at_20000_keys_equals_sdpa_on_scaled_queries():
    q, k, v = _long_causal_case(seed=6)
    S = q.shape[-2]
    ours = scaled_dot_product_attention(q, k, v, is_causal=True, rule="qwen_logn", train_len=2048, seq_length=4096)
    # Qwen: logn_list[i - 1] = log(i, seq_length) if i > seq_length else 1; query p gets logn_list[p]
    logn = torch.tensor([math.log(i, 4096) if i > 4096 else 1.0 for i in range(1, S + 1)], dtype=torch.float32)
    expected = F.scaled_dot_product_attention(q * logn[:, None], k, v, is_causal=True)
    torch.testing.assert_close(ours, expected, rtol=1.3e-6, atol=1e-5)
    _check_rows_against_float64_softmax(
        ours, q, k, v, lambda p: max(1.0, math.log(p + 1) / math.log(4096)), [0, 4095, 4096, 12000, S - 1])


@pytest.mark.parametrize("rule,params", [("grok", {"attn_temperature_len": 4}), ("ssmax", {"s": 0.7}),
                                         ("llama4", {"floor_scale": 5, "offset": 0}),
                                         ("critical_asymptotic", {"tail": ScoreTail(0.9, 1.5, 0.3)})])
def test_kv_cache_queries_sit_at_the_end(rule, params):
    q, k, v = _qkv((2, 3, 4, 8), (2, 3, 30, 8))
    tail = params.get("tail")
    rest = {a: b for a, b in params.items() if a != "tail"}
    m = torch.tensor([rule_multiplier(rule, 26 + i + 1, 6, tail, **rest) for i in range(4)], dtype=torch.float64).reshape(4, 1)
    ours = scaled_dot_product_attention(q, k, v, is_causal=True, rule=rule, train_len=6, **params)
    torch.testing.assert_close(ours, _reference(q, k, v, m, causal=True), rtol=1e-12, atol=1e-12)
    # the same with explicit positions and the causal mask given as a tensor
    keep = torch.ones(4, 30, dtype=torch.bool).tril(diagonal=26)
    explicit = scaled_dot_product_attention(q, k, v, attn_mask=keep, rule=rule, train_len=6, positions=torch.arange(26, 30), **params)
    torch.testing.assert_close(explicit, ours, rtol=1e-12, atol=1e-12)
    module = RuleAttention(rule, 6, tail, **rest)
    torch.testing.assert_close(module(q, k, v, attn_mask=keep, positions=torch.arange(26, 30)), ours, rtol=1e-12, atol=1e-12)


def test_batch_positions_and_per_head_ssmax():
    q, k, v = _qkv((2, 3, 5, 8), (2, 3, 5, 8))
    pos = torch.tensor([[0, 1, 2, 3, 4], [10, 11, 12, 13, 14]])  # the second text continues a cache of 10 tokens
    s = torch.tensor([0.2, 0.5, 1.1])
    keep = torch.ones(5, 5, dtype=torch.bool).tril()
    ours = scaled_dot_product_attention(q, k, v, attn_mask=keep, rule="ssmax", train_len=4, positions=pos, s=s)
    m = s[None, :, None, None].double() * torch.log(pos.double() + 1)[:, None, :, None]  # (B, H, L_q, 1)
    torch.testing.assert_close(ours, _reference(q, k, v, m, mask=keep), rtol=1e-12, atol=1e-12)
    assert position_multipliers(pos, "ssmax", 4, s=s.numpy()).shape == (2, 3, 5, 1)
    assert position_multipliers(pos[0], "logn", 4).shape == (5, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_standard_rule_per_position_is_sdpa_bit_for_bit(dtype):
    q, k, v = _qkv((1, 2, 6, 8), (1, 2, 10, 8), dtype)
    for kwargs in ({"is_causal": True}, {"positions": torch.arange(4, 10)}):
        ours = scaled_dot_product_attention(q, k, v, **kwargs)
        assert torch.equal(ours, F.scaled_dot_product_attention(q, k, v, is_causal=kwargs.get("is_causal", False)))
