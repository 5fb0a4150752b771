"""A rule registered as a transformers attention implementation, on a tiny random Llama built from a config."""

from __future__ import annotations

import math

import pytest
import torch

from attnscale.torch import register_hf_attention


@pytest.fixture(scope="module")
def llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         initializer_range=0.3)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 50, (2, 24), generator=torch.Generator().manual_seed(1))
    return model, ids


def _logits(model, ids, implementation):
    model.set_attn_implementation(implementation)
    with torch.no_grad():
        return model(input_ids=ids).logits


def _reference_attention(m_of_n, layers):
    """Eager attention in float64, the query at position p times m(p + 1) in the given layers: written out here."""

    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        groups = query.shape[1] // key.shape[1]
        k = key.repeat_interleave(groups, dim=1).double()
        v = value.repeat_interleave(groups, dim=1).double()
        q = query.double()
        lq, s = q.shape[-2], k.shape[-2]
        logits = q @ k.transpose(-1, -2) * scaling
        if module.layer_idx in layers:
            m = torch.tensor([m_of_n(p + 1) for p in range(s - lq, s)], dtype=torch.float64)
            logits = logits * m[:, None]
        keep = torch.ones(lq, s, dtype=torch.bool).tril(diagonal=s - lq)
        probs = torch.softmax(logits.masked_fill(~keep, -math.inf), dim=-1)
        return (probs @ v).to(query.dtype).transpose(1, 2).contiguous(), None

    return attention


def test_standard_rule_gives_the_same_logits_as_sdpa(llama):
    model, ids = llama
    name = register_hf_attention("attnscale_test_standard", "standard")
    assert torch.equal(_logits(model, ids, name), _logits(model, ids, "sdpa"))


@pytest.mark.parametrize("layers", [None, [1], "nope"])
def test_llama4_rule_per_position_against_a_written_out_reference(llama, layers):
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    model, ids = llama
    chosen = {0, 1} if layers is None else {1}
    selector = (lambda module: module.layer_idx == 1) if layers == "nope" else layers  # a callable filter
    name = register_hf_attention(f"attnscale_test_llama4_{layers}", "llama4", 64, layers=selector, floor_scale=4, attn_scale=0.5)
    ref_name = f"attnscale_test_reference_{layers}"
    AttentionInterface.register(ref_name, _reference_attention(lambda n: 1 + 0.5 * math.log(1 + n // 4), chosen))
    AttentionMaskInterface.register(ref_name, sdpa_mask)
    ruled, reference, plain = (_logits(model, ids, x) for x in (name, ref_name, "sdpa"))
    torch.testing.assert_close(ruled, reference, rtol=1e-4, atol=1e-4)
    assert (ruled - plain).abs().max() > 1e-2  # the rule changes the model
    assert torch.equal(ruled[:, :3], plain[:, :3])  # positions 0..2: m = 1 (floor((p + 1) / 4) = 0)


def test_generation_with_a_kv_cache_uses_the_absolute_positions(llama):
    """Decoding step by step with a cache gives the logits of one pass over the whole sequence."""
    model, ids = llama
    name = register_hf_attention("attnscale_test_qwen_decode", "qwen_logn", 64, seq_length=4)
    model.set_attn_implementation(name)
    with torch.no_grad():
        full = model(input_ids=ids).logits
        out = model(input_ids=ids[:, :10], use_cache=True)
        steps = [out.logits]
        cache = out.past_key_values
        for t in range(10, ids.shape[1]):
            out = model(input_ids=ids[:, t:t + 1], past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-4, atol=1e-4)
    assert (full - _logits(model, ids, "sdpa")).abs().max() > 1e-2  # and the rule is applied
