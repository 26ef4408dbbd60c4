"""Tiny randomly initialised models of each supported family, and a character tokenizer.

Everything here is built in memory in well under a second, so unit tests need no download.
"""

from __future__ import annotations

import os
import string

import pytest
import torch

os.environ.setdefault("EIGENHARNESS_PLUGINS", "")  # a developer's installed plugins stay out
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VOCAB = ["<pad>", "<eos>"] + list(string.digits + string.ascii_letters + " +=.,:?!'-\n")


def char_tokenizer():
    """One token per character: enough for the arithmetic tasks, no files needed."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({c: i for i, c in enumerate(VOCAB)}, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def _config(family: str):
    from transformers import GPT2Config, LlamaConfig, PhiConfig, Qwen2Config

    common = dict(vocab_size=len(VOCAB), max_position_embeddings=128)
    if family == "gpt2":
        return GPT2Config(vocab_size=len(VOCAB), n_embd=32, n_layer=2, n_head=4, n_positions=128)
    if family == "llama":
        return LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                           tie_word_embeddings=True, **common)
    if family == "phi":
        return PhiConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, partial_rotary_factor=0.5,
                         **common)
    if family == "qwen2":
        return Qwen2Config(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, **common)
    raise ValueError(family)


FAMILIES = ["gpt2", "llama", "phi", "qwen2"]


def tiny_model(family: str, dtype=torch.float64, seed: int = 0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(family)).to(dtype).eval()
    with torch.no_grad():  # random biases, so bias handling is really exercised
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return model


def random_batches(n_batches: int = 2, batch: int = 3, length: int = 6, seed: int = 0):
    """Right-padded batches of random tokens; the last two real tokens of each row are targets."""
    from harness.calibration import IGNORE, Batch

    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        ids = torch.randint(2, len(VOCAB), (batch, length), generator=gen)
        mask = torch.ones(batch, length, dtype=torch.long)
        mask[0, length - 2 :] = 0  # one padded row
        ids[mask == 0] = 0
        labels = torch.full_like(ids, IGNORE)
        for b in range(batch):
            n = int(mask[b].sum())
            labels[b, n - 2 : n] = ids[b, n - 2 : n]
        out.append(Batch(ids, mask, labels))
    return out


@pytest.fixture(params=FAMILIES)
def family(request):
    return request.param


@pytest.fixture
def tiny_dir(tmp_path):
    """A tiny Llama saved as a model directory with the character tokenizer."""
    model = tiny_model("llama", dtype=torch.float32)
    path = tmp_path / "tiny-llama"
    model.save_pretrained(path)
    char_tokenizer().save_pretrained(path)
    return path
