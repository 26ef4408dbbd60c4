"""Measured removal (harness/removal.py) and what it checks the scorers against (harness
fidelity): each direction's real loss change, batched, checked against a brute-force loop that
really edits the weights of tiny random models."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import random_batches, tiny_model

from harness import removal, selection, spectral
from harness.calibration import IGNORE, target_loss
from harness.plugins import registry
from harness.scoring import ScoringContext, frozen
from harness.testing import ragged_batch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tiny models run hundreds of small forwards: on a shared machine torch's thread pool
    costs ten times the work itself."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def loss_of(model, batches) -> float:
    with frozen(model), torch.no_grad():
        return sum(target_loss(model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits,
                               b.labels).item() for b in batches) / len(batches)


def brute_force(model, matrices, factors, batches, candidates, means):
    """The loss change of each candidate, by really pruning it alone and restoring."""
    base = loss_of(model, batches)
    out = {}
    for m in matrices:
        values = []
        for h, j in candidates.get(m.id, torch.zeros(0, 2, dtype=torch.long)).tolist():
            keep = {x.id: torch.ones(factors[x.id].S.shape, dtype=torch.bool) for x in matrices}
            keep[m.id][h, j] = False
            edit = spectral.prune(matrices, factors, keep, means)
            values.append(loss_of(model, batches) - base)
            edit.restore()
        out[m.id] = torch.tensor(values, dtype=torch.float64)
    return base, out


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(model, before) -> bool:
    now = model.state_dict()
    return now.keys() == before.keys() and all(torch.equal(now[k], v) for k, v in before.items())


@pytest.mark.parametrize("family,spec,compensate", [
    ("gpt2", "q,k,o,mlp_out", True), ("llama", "k,v,o,mlp_in", True), ("phi", "k,mlp_out", False)])
def test_batched_removal_measures_what_pruning_each_direction_alone_does(family, spec, compensate):
    model = tiny_model(family)
    batches = random_batches(2)
    matrices = selection.select(selection.candidates(model), spec, layers="1")
    factors = {m.id: spectral.decompose(m) for m in matrices}
    means = ScoringContext(model, matrices, factors, batches).input_means() if compensate else None
    gen = torch.Generator().manual_seed(1)
    candidates = {m.id: torch.stack([torch.randint(0, factors[m.id].S.shape[0], (5,), generator=gen),
                                     torch.randint(0, factors[m.id].rank, (5,), generator=gen)], 1)
                  for m in matrices}
    before = state(model)
    got = removal.measure(model, matrices, factors, batches, candidates, means, max_rows=7)
    assert same_state(model, before)  # hooks only: the weights were never touched
    base, expected = brute_force(model, matrices, factors, batches, candidates, means)
    assert got.base_loss == pytest.approx(base, rel=1e-9)
    for m in matrices:
        assert torch.allclose(got.delta[m.id], expected[m.id], rtol=1e-6, atol=1e-9), m.id
    assert max(float(e.abs().max()) for e in expected.values()) > 1e-6  # removals move the loss
    # 7 rows // 3 = 2 copies per pass, candidates of different matrices share passes
    assert got.passes == math.ceil(5 * len(matrices) / 2) * len(batches)


@pytest.mark.parametrize("family", ["gpt2", "llama", "phi", "qwen2"])
def test_copies_made_at_the_first_edited_layer_measure_what_copies_made_at_the_input_do(family):
    """Tiling the batch at a decoder layer's inputs (hidden states, mask, rotary tables) must
    leave every measured loss as the plain path has it, whichever layers the candidates are in,
    and one pass of copies of the edited layer and up must not see the layers below twice."""
    model = tiny_model(family)
    batches = random_batches(2, batch=3)
    matrices = selection.select(selection.candidates(model), "q,k,v,o,mlp_in,mlp_out")
    factors = {m.id: spectral.decompose(m) for m in matrices}
    means = ScoringContext(model, matrices, factors, batches).input_means()
    gen = torch.Generator().manual_seed(2)
    candidates = {m.id: torch.stack([torch.randint(0, factors[m.id].S.shape[0], (3,), generator=gen),
                                     torch.randint(0, factors[m.id].rank, (3,), generator=gen)], 1)
                  for m in matrices}
    located = removal._layer_of(model, matrices)
    assert located is not None and sorted(set(located[1].values())) == [0, 1]
    tiled = removal.measure(model, matrices, factors, batches, candidates, means, max_rows=9)
    plain = removal.measure(model, matrices, factors, batches, candidates, means, max_rows=9,
                            reuse_prefix=False)
    for m in matrices:
        assert torch.allclose(tiled.delta[m.id], plain.delta[m.id], rtol=1e-9, atol=1e-12), m.id
    assert tiled.base_loss == plain.base_loss
    # candidates of layer 1 only: layer 0 runs on the base batch alone, layer 1 on 3 copies
    upper = {m.id: c for m, c in zip(matrices, candidates.values(), strict=True) if m.layer == 1}
    seen: dict[int, set] = {0: set(), 1: set()}
    hooks = [located[0][i].register_forward_hook(  # what each layer put out
        lambda mod, args, out, i=i: seen[i].add((out[0] if isinstance(out, tuple) else out).shape[0]))
        for i in (0, 1)]
    try:
        removal.measure(model, matrices, factors, batches, upper, means, max_rows=9)
    finally:
        for h in hooks:
            h.remove()
    assert seen == {0: {3}, 1: {3, 9}}


def test_length_groups_cut_the_padding_and_keep_every_row_once():
    batch = ragged_batch([3, 12, 4, 11, 3], torch.Generator().manual_seed(3))
    groups = removal.length_groups(batch)
    assert [g.input_ids.shape for g in groups] == [(2, 12), (3, 4)]  # 60 padded cells -> 36
    rows = torch.cat([g.input_ids[:, :3] for g in groups])
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, batch.input_ids[:, :3].tolist()))
    assert sum(int(g.attention_mask.sum()) for g in groups) == int(batch.attention_mask.sum())
    assert sum(int((g.labels != IGNORE).sum()) for g in groups) == 10
    even = random_batches(1, batch=3)[0]  # lengths 4, 6, 6: within the slack, one group
    assert [g.input_ids.shape for g in removal.length_groups(even)] == [(3, 6)]


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_ragged_batches_measure_what_pruning_each_direction_alone_does(family):
    """Rows forwarded in length groups pool to the loss of the padded batch they came from."""
    model = tiny_model(family)
    gen = torch.Generator().manual_seed(3)
    batches = [ragged_batch([3, 12, 4, 11, 3], gen), ragged_batch([9, 2, 9], gen)]
    matrices = selection.select(selection.candidates(model), "k,o")
    factors = {m.id: spectral.decompose(m) for m in matrices}
    means = ScoringContext(model, matrices, factors, batches).input_means()
    candidates = {m.id: torch.tensor([[0, 0], [1, 2], [0, 5]]) for m in matrices}
    got = removal.measure(model, matrices, factors, batches, candidates, means, max_rows=15)
    base, expected = brute_force(model, matrices, factors, batches, candidates, means)
    assert got.base_loss == pytest.approx(base, rel=1e-6)
    for m in matrices:
        assert torch.allclose(got.delta[m.id], expected[m.id], rtol=1e-5, atol=1e-7), m.id
    assert got.passes == math.ceil(3 * len(matrices) / 3) * (2 + 2)  # 2 groups in each batch


def test_a_model_without_a_layer_list_is_measured_the_plain_way():
    model = tiny_model("llama")
    matrices = selection.select(selection.candidates(model), "k")
    stray = torch.nn.Linear(4, 4)
    assert removal._layer_of(model, [*matrices[:1], type(matrices[0])(
        id="x", layer=0, kind="k", module=stray, module_name="x")]) is None


def test_fidelity_correlation_matches_a_brute_force_loop():
    from harness import fidelity

    model = tiny_model("llama")
    batches = random_batches(2, batch=4)
    matrices = selection.select(selection.candidates(model), "k,o,mlp_out")
    factors = {m.id: spectral.decompose(m) for m in matrices}
    sample = fidelity.sample_directions(matrices, factors, 6, seed=3)
    for kind in ("k", "o", "mlp_out"):
        picked = [(i, tuple(hj)) for i, t in sample.items() if i.endswith("." + kind)
                  for hj in t.tolist()]
        assert len(picked) == len(set(picked)) == 6
    df = fidelity.compare(model, matrices, factors, batches, ["gradient", "sigma"], sample,
                          compensate=True, measure_examples=6, max_rows=8)
    summary = fidelity.summarise(df, ["gradient", "sigma"])

    means = ScoringContext(model, matrices, factors, batches).input_means()
    _, measured = brute_force(model, matrices, factors, removal.subset(batches, 6), sample, means)
    grad = registry().get("scorers", "gradient")(ScoringContext(model, matrices, factors, batches))

    def ranks(v):
        return torch.tensor(v).argsort().argsort().double()

    for kind in ("k", "o", "mlp_out", "all"):
        ids = [i for i in sample if kind == "all" or i.endswith("." + kind)]
        meas = [x for i in ids for x in measured[i].tolist()]
        pred = [grad[i][h, j].item() for i in ids for h, j in sample[i].tolist()]
        rm, rp = ranks(meas), ranks(pred)
        cm, cp = rm - rm.mean(), rp - rp.mean()
        rho = float((cm * cp).sum() / cm.norm() / cp.norm())
        got = summary[(summary.kind == kind) & (summary.scorer == "gradient")]
        assert got.n.item() == len(meas) and got.spearman.item() == pytest.approx(rho, abs=1e-9)
    assert fidelity.spearman([1, 2, 3], [5, 5, 5]) != fidelity.spearman([1, 2, 3], [5, 5, 5])  # nan


def test_fidelity_command_writes_csvs_and_a_plot(tiny_dir, tmp_path):
    import pandas as pd
    from click.testing import CliRunner

    from harness.cli import cli

    out = tmp_path / "fid"
    result = CliRunner().invoke(cli, [
        "fidelity", "--model", str(tiny_dir), "--task", "int_mult", "--scorer", "gradient,sigma",
        "--matrices", "k,mlp_in", "--sample", "5", "--calibration-size", "8",
        "--calibration-batch-size", "4", "--measure-examples", "4", "--device", "cpu",
        "--objective", "margin", "--out-dir", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    directions = pd.read_csv(out / "int_mult_directions.csv")
    assert len(directions) == 10 and set(directions.kind) == {"k", "mlp_in"}
    assert {"measured", "gradient", "sigma"} <= set(directions.columns)
    summary = pd.read_csv(out / "int_mult_summary.csv")
    assert len(summary) == 3 * 2 and (out / "int_mult.png").stat().st_size > 1000
    bad = CliRunner().invoke(cli, ["fidelity", "--model", str(tiny_dir), "--scorer", "nope"])
    assert bad.exit_code == 2 and "nope" in bad.output
    bad = CliRunner().invoke(cli, ["fidelity", "--model", str(tiny_dir), "--objective", "acc"])
    assert bad.exit_code == 2
    assert "unknown objective 'acc'; choose from: ce, first-token, margin" in bad.output
