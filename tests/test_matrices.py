"""Selection, head split, SVD reconstruction, masked forward and exact restore, per family."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model

from harness import selection, spectral
from harness.errors import HarnessError
from harness.matrices import parse_layers

EXPECTED_HEADS = {  # kind -> (heads, rank per head) for the tiny configs in conftest
    "gpt2": {"q": (4, 8), "k": (4, 8), "v": (4, 8), "o": (4, 8), "mlp_in": (1, 32), "mlp_out": (1, 32)},
    "llama": {"q": (4, 8), "k": (2, 8), "v": (2, 8), "o": (4, 8), "mlp_in": (1, 32), "mlp_out": (1, 32)},
    "phi": {"q": (4, 8), "k": (4, 8), "v": (4, 8), "o": (4, 8), "mlp_in": (1, 32), "mlp_out": (1, 32)},
    "qwen2": {"q": (4, 8), "k": (2, 8), "v": (2, 8), "o": (4, 8), "mlp_in": (1, 32), "mlp_out": (1, 32)},
}


def test_selectors_find_every_kind_and_head_split(family):
    model = tiny_model(family)
    found = selection.candidates(model)
    for kind, (heads, rank) in EXPECTED_HEADS[family].items():
        picked = selection.select(found, kind)
        assert {m.layer for m in picked} == {0, 1}
        for m in picked:
            f = spectral.decompose(m)
            assert f.S.shape == (heads, rank), (m.id, f.S.shape)
    assert {m.id for m in selection.select(found, "k,v", layers="1")} == {"layer.1.k", "layer.1.v"}


def test_reconstruction_equals_weight(family):
    model = tiny_model(family)
    for m in selection.candidates(model):
        f = spectral.decompose(m)
        assert torch.allclose(m.from_blocks(f.reconstruct()), m.weight(), atol=1e-10)
        assert torch.equal(m.from_blocks(m.to_blocks(m.weight())), m.weight())


def test_masked_forward_matches_hand_built_weight_and_restore_is_exact(family):
    model = tiny_model(family)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    found = selection.candidates(model)
    x = torch.randn(5, found[0].shape[1], dtype=torch.float64)
    for kind in ("k", "o", "mlp_in"):
        m = selection.select(found, kind, layers="0")[0]
        f = spectral.decompose(m)
        keep = torch.rand(f.S.shape, generator=torch.Generator().manual_seed(1)) > 0.4
        # by hand: each head keeps only its chosen directions, U diag(S keep) Vh
        heads = [f.U[h] @ torch.diag(f.S[h] * keep[h]) @ f.Vh[h] for h in range(f.S.shape[0])]
        if m.block_axis == "out":
            expected_w = torch.cat(heads, 0)
        elif m.block_axis == "in":
            expected_w = torch.cat(heads, 1)
        else:
            expected_w = heads[0]
        xin = torch.randn(5, m.shape[1], dtype=torch.float64)
        bias = m.bias()
        expected = xin @ expected_w.double().T + (0 if bias is None else bias)
        edit = spectral.prune([m], {m.id: f}, {m.id: keep})
        out = m.module(xin)
        out = out[..., m.rows] if m.transposed else out[..., m.rows]
        assert torch.allclose(out, expected, atol=1e-5)
        assert edit.n_pruned == int((~keep).sum())
        edit.restore()
    del x
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_created_bias_is_removed_on_restore():
    model = tiny_model("llama")
    m = selection.select(selection.candidates(model), "k", layers="0")[0]
    assert m.module.bias is None
    f = spectral.decompose(m)
    keep = torch.ones_like(f.S, dtype=torch.bool)
    keep[:, -2:] = False
    edit = spectral.prune([m], {m.id: f}, {m.id: keep}, {m.id: torch.randn(m.shape[1])})
    assert m.module.bias is not None and m.module.bias.abs().sum() > 0
    edit.restore()
    assert m.module.bias is None


def test_unknown_architecture_names_the_fix():
    import pytest
    from torch import nn

    from harness.errors import HarnessError

    class Weird(nn.Module):
        config = type("C", (), {"model_type": "weird"})()

    with pytest.raises(HarnessError, match="unknown architecture 'weird'.*register_architectures"):
        selection.candidates(Weird())


def test_save_refuses_a_bias_the_architecture_cannot_store(tmp_path):
    import pytest
    from conftest import char_tokenizer

    from harness.errors import HarnessError
    from harness.export import save_pruned

    model = tiny_model("qwen2", dtype=torch.float32)  # Qwen2's o_proj has no bias and no flag
    m = selection.select(selection.candidates(model), "o", layers="0")[0]
    f = spectral.decompose(m)
    keep = torch.ones_like(f.S, dtype=torch.bool)
    keep[:, -1] = False
    edit = spectral.prune([m], {m.id: f}, {m.id: keep}, {m.id: torch.randn(m.shape[1])})
    with pytest.raises(HarnessError, match="cannot store .*o_proj.bias.*--no-compensate"):
        save_pruned(model, char_tokenizer(), [m], edit, tmp_path / "out")
    edit.restore()


def test_parse_layers():
    assert parse_layers("0,3,5-7", 10) == {0, 3, 5, 6, 7}
    assert parse_layers("-4:", 10) == {6, 7, 8, 9}
    assert parse_layers(None, 10) is None
    with pytest.raises(HarnessError, match="layers 0-9"):
        parse_layers("12", 10)
    with pytest.raises(HarnessError, match="bad --layers"):
        parse_layers("a", 10)
