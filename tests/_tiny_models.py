"""A tiny random Llama and its tokenizer, built in code and saved to a folder: nothing downloads."""

from __future__ import annotations

import re

from attnscale.corpus import stdlib_corpus

SPECIAL = ("[PAD]", "[UNK]", "<s>", "</s>")


def save_tiny_llama(folder, layers=2, heads=4, kv_heads=2, head_dim=8, max_position_embeddings=256, seed=0):
    """Save a random LlamaForCausalLM and a word-level tokenizer (vocabulary: words of the stdlib corpus)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = sorted({w for t in stdlib_corpus(count=64).texts for w in re.findall(r"\w+|[^\w\s]", t)})[:1000]
    vocab = {w: i for i, w in enumerate((*SPECIAL, *words))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="[UNK]",
                                   pad_token="[PAD]")
    fast.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=heads * head_dim, intermediate_size=4 * heads * head_dim,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
        max_position_embeddings=max_position_embeddings, pad_token_id=0, bos_token_id=2, eos_token_id=3,
        initializer_range=0.2,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(folder)
    return folder
