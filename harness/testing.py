"""What a plugin's tests need: tiny random models, calibration batches, a registry with the
plugin loaded, and a scoring context, all built in memory in well under a second.

The project's own tests use the same helpers (tests/conftest.py), so a plugin is tested
against exactly what the core is tested against:

    from harness import testing

    def test_my_scorer_scores_every_singular_value():
        with testing.registry_with(my_plugin) as reg:
            ctx = testing.scoring_context(testing.tiny_model("llama"), "k")
            scores = reg.get("scorers", "my-scorer")(ctx)
            assert scores.keys() == ctx.factors.keys()
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from harness import plugins as plugin_lib
from harness import selection, spectral
from harness.calibration import IGNORE, Batch
from harness.scoring import ScoringContext
from harness.tiny_models import instantiate

VOCAB = ["<pad>", "<eos>"] + list(string.digits + string.ascii_letters + " +=.,:?!'-\n")
FAMILIES = ["gpt2", "llama", "phi", "qwen2"]


def char_tokenizer():
    """One token per character: enough for the arithmetic tasks, no files needed."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({c: i for i, c in enumerate(VOCAB)}, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def tiny_config(family: str):
    """A 2-layer, 4-head, width-32 config of `family` (one of FAMILIES)."""
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
    raise ValueError(f"unknown family '{family}'; choose from: {', '.join(FAMILIES)}")


def tiny_model(family: str = "llama", dtype: torch.dtype = torch.float64, seed: int = 0):
    """A randomly initialised tiny model in eval mode, with random biases (so bias handling
    is really exercised); float64 by default, so tests can compare tightly."""
    return instantiate(tiny_config(family), dtype, seed)


def tiny_model_dir(path: str | Path, family: str = "llama") -> Path:
    """A tiny model saved as a transformers directory with the character tokenizer: what
    `harness bench --model DIR` takes, for end-to-end tests."""
    path = Path(path)
    tiny_model(family, dtype=torch.float32).save_pretrained(path)
    char_tokenizer().save_pretrained(path)
    return path


def ragged_batch(lengths: list[int], gen: torch.Generator, width: int | None = None) -> Batch:
    """One right-padded batch of random tokens whose rows have these real lengths (padded to
    `width`, the longest by default); the last two real tokens of each row are the targets."""
    width = max(lengths) if width is None else width
    ids = torch.randint(2, len(VOCAB), (len(lengths), width), generator=gen)
    pos = torch.arange(width).expand(len(lengths), width)
    n = torch.tensor(lengths)[:, None]
    mask = (pos < n).long()
    ids[mask == 0] = 0
    labels = torch.where((pos >= n - 2) & (pos < n), ids, torch.full_like(ids, IGNORE))
    return Batch(ids, mask, labels)


def random_batches(n_batches: int = 2, batch: int = 3, length: int = 6, seed: int = 0) -> list[Batch]:
    """Right-padded calibration batches of random tokens (the first row padded by two); the
    last two real tokens of each row are the targets."""
    gen = torch.Generator().manual_seed(seed)
    lengths = [length - 2] + [length] * (batch - 1)
    return [ragged_batch(lengths, gen, width=length) for _ in range(n_batches)]


@contextmanager
def registry_with(*plugins: Any) -> Iterator[Any]:
    """The process-wide registry with the built-ins and `plugins` (modules or objects with
    `@hookimpl` functions) loaded, as `harness bench` would see them; restored afterwards."""
    saved = plugin_lib._registry
    pm, versions = plugin_lib.make_plugin_manager()
    for plugin in plugins:
        name = getattr(plugin, "__name__", type(plugin).__name__)
        pm.register(plugin, name=name)
        versions[name] = "test"
    pm.check_pending()  # a misspelled hook name fails here, not silently
    plugin_lib._registry = plugin_lib.collect(pm, versions)
    try:
        yield plugin_lib._registry
    finally:
        plugin_lib._registry = saved


def scoring_context(model, matrices: str = "k", batches: list[Batch] | None = None, seed: int = 0):
    """The `ScoringContext` a scorer gets in a run: `matrices` (selector names, as
    `--matrices`) of `model`, their SVDs, and calibration batches (random ones by default)."""
    chosen = selection.select(selection.candidates(model), matrices)
    factors = spectral.SpectrumCache().get(chosen)
    return ScoringContext(model, chosen, factors, batches if batches is not None else random_batches(),
                          seed)
