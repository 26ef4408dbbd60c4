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


def llama_like(model) -> list[Matrix]:
    heads, kv_heads = _attention_heads(model.config)
    found = []
    for i, layer in enumerate(_layers(model, "model.layers")):
        prefix = f"model.layers.{i}"
        attn, mlp = layer.self_attn, layer.mlp
        for kind, name, n, axis in (
            ("q", "q_proj", heads, "out"),
            ("k", "k_proj", kv_heads, "out"),
            ("v", "v_proj", kv_heads, "out"),
            ("o", "o_proj", heads, "in"),
        ):
            found.append(
                Matrix(f"layer.{i}.{kind}", i, kind, getattr(attn, name),
                       f"{prefix}.self_attn.{name}", heads=n, block_axis=axis)
            )
        for kind, name in (("mlp_in", "gate_proj"), ("mlp_in", "up_proj"), ("mlp_out", "down_proj")):
            suffix = "" if kind == "mlp_out" else "." + name.removesuffix("_proj")
            found.append(
                Matrix(f"layer.{i}.{kind}{suffix}", i, kind, getattr(mlp, name), f"{prefix}.mlp.{name}")
            )
    return found


def phi(model) -> list[Matrix]:
    heads, kv_heads = _attention_heads(model.config)
    found = []
    for i, layer in enumerate(_layers(model, "model.layers")):
        prefix = f"model.layers.{i}"
        attn, mlp = layer.self_attn, layer.mlp
        for kind, name, n, axis in (
            ("q", "q_proj", heads, "out"),
            ("k", "k_proj", kv_heads, "out"),
            ("v", "v_proj", kv_heads, "out"),
            ("o", "dense", heads, "in"),
        ):
            found.append(
                Matrix(f"layer.{i}.{kind}", i, kind, getattr(attn, name),
                       f"{prefix}.self_attn.{name}", heads=n, block_axis=axis)
            )
        found.append(Matrix(f"layer.{i}.mlp_in", i, "mlp_in", mlp.fc1, f"{prefix}.mlp.fc1"))
        found.append(Matrix(f"layer.{i}.mlp_out", i, "mlp_out", mlp.fc2, f"{prefix}.mlp.fc2"))
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
