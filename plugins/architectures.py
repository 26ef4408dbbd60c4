"""Where the prunable matrices live in the model families the harness knows out of the box."""

from __future__ import annotations

from harness import hookimpl
from harness.matrices import Matrix

# Families that share Llama's module names: self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj.
LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "olmo", "olmo2", "granite")


def _attention_heads(config) -> tuple[int, int]:
    heads = getattr(config, "num_attention_heads", None) or config.n_head
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    return heads, kv_heads


def _layers(model, path: str):
    obj = model
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _attention(layer, i: int, names: tuple[str, str, str, str], config) -> list[Matrix]:
    """Q, K, V (split by output rows per head) and O (split by input columns per head)."""
    heads, kv_heads = _attention_heads(config)
    prefix = f"model.layers.{i}.self_attn"
    return [
        Matrix(f"layer.{i}.{kind}", i, kind, getattr(layer.self_attn, name), f"{prefix}.{name}",
               heads=n, block_axis=axis)
        for kind, name, n, axis in zip(
            ("q", "k", "v", "o"), names, (heads, kv_heads, kv_heads, heads),
            ("out", "out", "out", "in"), strict=True)
    ]


def llama_like(model) -> list[Matrix]:
    found = []
    for i, layer in enumerate(_layers(model, "model.layers")):
        found += _attention(layer, i, ("q_proj", "k_proj", "v_proj", "o_proj"), model.config)
        for kind, name in (("mlp_in", "gate_proj"), ("mlp_in", "up_proj"), ("mlp_out", "down_proj")):
            suffix = "" if kind == "mlp_out" else "." + name.removesuffix("_proj")
            found.append(Matrix(f"layer.{i}.{kind}{suffix}", i, kind, getattr(layer.mlp, name),
                                f"model.layers.{i}.mlp.{name}"))
    return found


def phi(model) -> list[Matrix]:
    found = []
    for i, layer in enumerate(_layers(model, "model.layers")):
        found += _attention(layer, i, ("q_proj", "k_proj", "v_proj", "dense"), model.config)
        found.append(Matrix(f"layer.{i}.mlp_in", i, "mlp_in", layer.mlp.fc1, f"model.layers.{i}.mlp.fc1"))
        found.append(Matrix(f"layer.{i}.mlp_out", i, "mlp_out", layer.mlp.fc2, f"model.layers.{i}.mlp.fc2"))
    return found


def gpt2(model) -> list[Matrix]:
    heads = model.config.n_head
    d = model.config.n_embd
    found = []
    for i, block in enumerate(_layers(model, "transformer.h")):
        prefix = f"transformer.h.{i}"
        for j, kind in enumerate(("q", "k", "v")):  # c_attn fuses Q, K, V along its output
            found.append(
                Matrix(f"layer.{i}.{kind}", i, kind, block.attn.c_attn, f"{prefix}.attn.c_attn",
                       heads=heads, block_axis="out", transposed=True,
                       rows=slice(j * d, (j + 1) * d))
            )
        found.append(Matrix(f"layer.{i}.o", i, "o", block.attn.c_proj, f"{prefix}.attn.c_proj",
                            heads=heads, block_axis="in", transposed=True))
        found.append(Matrix(f"layer.{i}.mlp_in", i, "mlp_in", block.mlp.c_fc,
                            f"{prefix}.mlp.c_fc", transposed=True))
        found.append(Matrix(f"layer.{i}.mlp_out", i, "mlp_out", block.mlp.c_proj,
                            f"{prefix}.mlp.c_proj", transposed=True))
    return found


@hookimpl
def register_architectures(register):
    for model_type in LLAMA_LIKE:
        register(model_type, llama_like)
    register("phi", phi)
    register("gpt2", gpt2)
