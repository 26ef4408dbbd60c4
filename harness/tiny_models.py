"""Tiny random models of any transformers causal-LM family, built offline from its config class.

The coverage table and the discovery tests need every family small enough to build, prune and
save in a fraction of a second. A family's config class knows its own field names (`n_embd`,
`hidden_size`, `d_model`, ...), so each size field it declares gets a tiny value and every
other field keeps the family's default.
"""

from __future__ import annotations

import dataclasses
import inspect

import torch

VOCAB = 96
TINY = {
    # widths: 4 query heads and 2 key/value heads of size 16; intermediate != hidden, so the
    # MLP's input and output projections cannot be mistaken for each other
    "hidden_size": 64, "n_embd": 64, "d_model": 64, "n_embed": 64, "model_dim": 64,
    "intermediate_size": 96, "n_inner": 96, "ffn_dim": 96, "ffn_hidden_size": 96, "d_ff": 96,
    "num_attention_heads": 4, "n_head": 4, "num_heads": 4, "n_heads": 4,
    "num_key_value_heads": 2, "n_kv_heads": 2, "num_kv_heads": 2, "head_dim": 16,
    "num_hidden_layers": 2, "n_layer": 2, "num_layers": 2, "n_layers": 2,
    "vocab_size": VOCAB, "max_position_embeddings": 64, "n_positions": 64, "n_ctx": 64,
    # mixture-of-experts and low-rank attention sizes, where a family has them
    "num_experts": 4, "num_local_experts": 4, "n_routed_experts": 4, "num_experts_per_tok": 2,
    "moe_intermediate_size": 32, "shared_expert_intermediate_size": 32, "expert_hidden_size": 32,
    "kv_lora_rank": 16, "q_lora_rank": 16, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8,
    "v_head_dim": 16, "n_group": 1, "topk_group": 1, "rotary_dim": 8,
    "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
}

# per-layer lists whose default length is the default layer count
PER_FAMILY = {"gpt_neo": {"attention_types": [[["global", "local"], 1]]}}


def config_fields(config_class) -> set[str]:
    """The names the config class accepts (dataclass fields, else its __init__ parameters)."""
    if dataclasses.is_dataclass(config_class):
        names = {f.name for f in dataclasses.fields(config_class)}
    else:
        names = set(inspect.signature(config_class.__init__).parameters)
    return names | set(getattr(config_class, "attribute_map", {}) or {})


def tiny_config(model_type: str, **overrides):
    """The family's config with every size field it declares made tiny (2 layers)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    cls = CONFIG_MAPPING[model_type]
    fields = config_fields(cls)
    declared = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else fields
    aliases = getattr(cls, "attribute_map", {}) or {}
    kwargs = {}
    for name, value in TINY.items():
        if name in declared:
            kwargs[name] = value
        elif name in aliases and aliases[name] not in kwargs and aliases[name] in declared:
            kwargs[aliases[name]] = value
    kwargs.update(PER_FAMILY.get(model_type, {}))
    kwargs.update(overrides)
    return cls(**kwargs)


def instantiate(config, dtype: torch.dtype = torch.float32, seed: int = 0):
    """A randomly initialised model of `config` with small random biases (so that bias
    handling is exercised), in eval mode: what every tiny test model is built with."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).to(dtype).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return model


def tiny_model(model_type: str, dtype: torch.dtype = torch.float32, seed: int = 0, **overrides):
    """A randomly initialised 2-layer model of the family, in eval mode."""
    return instantiate(tiny_config(model_type, **overrides), dtype, seed)
