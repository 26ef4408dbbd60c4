"""Structural discovery on tiny models of families no plugin registers, checked against the forward.

For each family: discovery finds Q, K, V, O (and the MLP) with the head counts of the config;
pruning one head's singular directions changes that head's cached keys (values) and no other
head's; the eigen path runs, restore is bit-exact, and `--save` reloads with plain transformers
to the same logits, or refuses compensation in one line where the family cannot store the bias.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from harness import coverage, discovery, selection, spectral
from harness.errors import HarnessError
from harness.tiny_models import tiny_model

# family -> (config overrides, kv heads, layout, MLP found, how --save handles compensation)
FAMILIES = {
    "gpt_neox": ({}, 4, "fused grouped", True, "yes"),  # per-head [q, k, v] interleave
    "bloom": ({}, 4, "fused grouped", True, "yes"),
    "persimmon": ({"qk_layernorm": True}, 4, "fused grouped", True, "yes"),  # keys normalised
    "phi3": ({}, 2, "fused blocked", True, "no-compensate"),
    "falcon": ({}, 1, "fused blocked", True, "yes"),  # multi-query; `bias` switched on to save
    "gpt_bigcode": ({}, 1, "fused blocked", True, "yes"),
    "mpt": ({}, 4, "fused blocked", True, "no-compensate"),  # config's no_bias is not used
    "opt": ({}, 4, "separate", True, "yes"),  # MLP flattens tokens to (B*T, d)
    "gptj": ({}, 4, "separate", True, "no-compensate"),
    "cohere": ({"use_qk_norm": True}, 2, "separate", True, "no-compensate"),  # per-head LayerNorm on keys
    "stablelm": ({"qk_layernorm": True}, 2, "separate", True, "no-compensate"),
    "starcoder2": ({}, 2, "separate", True, "yes"),
    "gpt_neo": ({}, 4, "separate", True, "no-compensate"),
}
# registered families whose keys are normalised across all heads (OLMo-2) or per head (Qwen3)
REGISTERED = ["llama", "gpt2", "olmo2", "qwen3", "phi"]
# discovery itself (not the plugin) on the registered families that normalise keys
NORMALISED_KEYS = {"olmo2": ({}, 2, "separate", True, "no-compensate"),
                   "qwen3": ({}, 2, "separate", True, "no-compensate")}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only contend
    yield
    torch.set_num_threads(threads)


def _cached(model, ids, layer):
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
    cache = out.get("cache")
    if cache is None:
        cache = out.past_key_values
    return cache.layers[layer].keys.clone(), cache.layers[layer].values.clone()


def _parallel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per (head, token): is vector a a positive multiple of b? (B, H, T, d) -> (H,) all-true."""
    cos = torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)
    return (cos > 1 - 1e-9).flatten(2).transpose(0, 1).flatten(1).all(1)


@pytest.mark.parametrize("family", sorted(FAMILIES) + sorted(NORMALISED_KEYS))
def test_discovery_finds_the_heads_the_forward_uses(family):
    overrides, kv, layout, has_mlp, _ = (FAMILIES | NORMALISED_KEYS)[family]
    model = tiny_model(family, dtype=torch.float64, **overrides)
    how = "registered" if family in NORMALISED_KEYS else "discovered"
    assert selection.architecture(model) == f"{family} ({how})"
    found = discovery.discover(model)
    assert found.layout == layout
    heads = {m.kind: m.heads for m in found.matrices}
    assert {k: heads[k] for k in "qkvo"} == {"q": 4, "k": kv, "v": kv, "o": 4}
    assert ("mlp_in" in heads and "mlp_out" in heads) == has_mlp
    assert {m.layer for m in found.matrices} == {0, 1}
    for m in found.matrices:  # every head block is exactly a slice of the real weight
        assert torch.equal(m.from_blocks(m.to_blocks(m.weight())), m.weight())
    ids = torch.randint(3, 96, (1, 7), generator=torch.Generator().manual_seed(2))
    keys, values = _cached(model, ids, 1)
    for kind, before in (("k", keys), ("v", values)):
        m = next(m for m in found.matrices if m.layer == 1 and m.kind == kind)
        f = spectral.decompose(m)
        for h in range(m.heads):
            keep = torch.ones_like(f.S, dtype=torch.bool)
            keep[h, :2] = False  # head h loses its two largest directions
            edit = spectral.prune([m], {m.id: f}, {m.id: keep})
            after = _cached(model, ids, 1)[0 if kind == "k" else 1]
            edit.restore()
            # head h's vectors change direction; every other head's keep their direction (they
            # may rescale where a norm spans all heads) and, without such a norm, stay equal
            unchanged = _parallel(after, before)
            assert not unchanged[h] and unchanged.sum() == m.heads - 1, (kind, h, unchanged)
            others = [i for i in range(m.heads) if i != h]
            if kind == "v" or family != "olmo2":  # OLMo-2's k_norm spans all heads
                assert torch.allclose(after[:, others], before[:, others], atol=1e-12)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_eigen_restore_and_save_reload(family, tmp_path):
    overrides, *_, save = FAMILIES[family]
    model = tiny_model(family, dtype=torch.float32, **overrides)
    report = coverage.check_family(model, tmp_path)
    assert report.eigen and report.restore_exact, report
    assert report.save == "yes" if save == "yes" else report.save.startswith("yes with --no-compensate"), \
        report.save
    assert report.supported


@pytest.mark.parametrize("family", REGISTERED)
def test_discovery_agrees_with_the_registered_architectures(family):
    """Where a plugin names the matrices by hand, discovery finds the very same ones."""
    model = tiny_model(family, dtype=torch.float64)
    assert selection.architecture(model) == f"{family} (registered)"

    def key(m):
        rows = m.rows if isinstance(m.rows, slice) else tuple(m.rows.tolist())
        return (m.id, m.kind, id(m.module), m.module_name, m.heads, m.block_axis, m.transposed, str(rows))

    discovered = discovery.discover(model).matrices
    assert sorted(map(key, discovered)) == sorted(map(key, selection.candidates(model)))


def test_undiscoverable_layout_names_the_type_what_failed_and_the_hook():
    model = tiny_model("codegen")  # qkv_proj fused in 4 shards of [q, v, k]: no known layout
    expected = r"unknown architecture 'codegen'.*no head layout of layer 0 matches .*register_architectures"
    with pytest.raises(HarnessError, match=expected):
        selection.candidates(model)


def test_missing_head_count_is_named():
    model = tiny_model("mistral")
    model.config = SimpleNamespace(model_type="mystery", num_hidden_layers=2, hidden_size=64)
    with pytest.raises(HarnessError, match=r"'mystery'.*no attention head count.*num_attention_heads"):
        selection.candidates(model)


def test_plugins_lists_discovery_and_rows_name_the_architecture():
    from click.testing import CliRunner

    from harness.cli import cli
    from harness.leaderboard import Row

    out = CliRunner().invoke(cli, ["plugins"]).output
    assert "other decoder-only models: structural discovery" in out
    assert "architecture" in [f.name for f in dataclasses.fields(Row)]
    for family, label in (("gpt_neox", "gpt_neox (discovered)"), ("llama", "llama (registered)")):
        assert selection.architecture(tiny_model(family)) == label  # what every row records
