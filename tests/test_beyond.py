"""Strategies beyond the paper: measured removal, eigen-verified, eigen-iterative, eigen-budget,
and the storage/spectrum numbers of a spectral edit. Every check runs on tiny random models
and compares against a brute-force loop that really edits the weights."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import random_batches, tiny_model

from harness import removal, selection, spectral
from harness.calibration import IGNORE, target_loss
from harness.plugins import registry
from harness.scoring import ScoringContext, frozen
from harness.strategy import PruneRequest, spectral_apply
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


def spectral_request(model, strategy, spec, fraction, batches, options=None, evaluate=None):
    matrices = selection.select(selection.candidates(model), spec)
    return PruneRequest(model=model, matrices=matrices, fraction=fraction, seed=0, strategy=strategy,
                        batches=batches, spectrum=spectral.SpectrumCache(), options=options or {},
                        evaluate=evaluate)


def test_verified_prunes_the_best_measured_of_the_scorers_shortlist():
    import dataclasses

    model = tiny_model("llama")
    batches = random_batches(2, batch=4)
    # the sigma scorer shortlists the smallest σ; measurement must decide among them
    strategy = dataclasses.replace(registry().get("strategies", "eigen-verified"), scorer="sigma",
                                   pruner="global-fraction")
    req = spectral_request(model, strategy, "k,mlp_out", 0.1, batches,
                           {"verify_multiple": 3, "verify_examples": 5, "verify_rows": 10})
    before = state(model)
    factors = req.factors()
    scores = {i: f.S.clone() for i, f in factors.items()}
    shortlist = registry().get("pruners", "global-fraction")(scores, 0.3, {})
    cand = removal.candidates_from_mask({i: ~k for i, k in shortlist.items()})
    held_in = removal.subset(batches, 5)
    assert sum(b.n_examples for b in held_in) == 5
    means = ScoringContext(model, req.matrices, factors, batches).input_means()
    _, measured = brute_force(model, req.matrices, factors, held_in, cand, means)
    ranked = sorted((v, i, tuple(hj)) for i in cand for v, hj in zip(measured[i].tolist(),
                                                                      cand[i].tolist(), strict=True))
    budget = int(0.1 * sum(f.S.numel() for f in factors.values()))
    expected = {(i, hj) for _, i, hj in ranked[:budget]}

    edit = strategy.apply(req)
    pruned = {(i, tuple(hj)) for i, k in edit.masks.items() for hj in (~k).nonzero().tolist()}
    assert pruned == expected and edit.n_pruned == budget
    assert edit.details["shortlist"] == len(ranked) and edit.details["verify_examples"] == 5
    assert edit.details["measure_rows"] == len(ranked) * 5
    assert edit.details["same_as_scorer_alone"] < 1  # measurement overruled the scorer somewhere
    edit.restore()
    assert same_state(model, before)


def test_verified_measures_each_direction_once_across_the_fractions_of_a_sweep():
    """A sweep's fractions share the request cache: the larger shortlist measures only the
    directions the smaller one did not, and prunes what a fresh run of it would."""
    model = tiny_model("llama")
    batches = random_batches(2, batch=4)
    strategy = registry().get("strategies", "eigen-verified")
    options = {"verify_multiple": 2, "verify_examples": 4, "verify_rows": 12}
    shared: dict = {}

    def run(fraction, cache):
        req = spectral_request(model, strategy, "k,mlp_out", fraction, batches, options)
        req.cache = cache
        edit = strategy.apply(req)
        edit.restore()
        return edit

    small, large = run(0.05, shared), run(0.15, shared)
    fresh = run(0.15, {})
    assert small.details["measured_now"] == small.details["shortlist"]
    assert large.details["measured_now"] == large.details["shortlist"] - small.details["shortlist"] > 0
    assert fresh.details["measured_now"] == large.details["shortlist"]
    assert large.details["measure_rows"] == large.details["measured_now"] * 4
    assert all(torch.equal(large.masks[i], fresh.masks[i]) for i in fresh.masks)
    assert large.details["base_loss"] == fresh.details["base_loss"]
    again = run(0.15, shared)  # --test-on chosen applies the chosen fraction again: no new work
    assert again.details["measured_now"] == 0 and again.details["measure_rows"] == 0
    assert all(torch.equal(again.masks[i], fresh.masks[i]) for i in fresh.masks)


@pytest.mark.parametrize("compensate", [True, False])
def test_iterative_rescores_the_pruned_model_each_round_and_restores_bit_for_bit(compensate):
    import dataclasses

    model = tiny_model("llama", dtype=torch.float32)
    batches = random_batches(2)
    strategy = dataclasses.replace(registry().get("strategies", "eigen-iterative"), scorer="gradient",
                                   matrices="k,mlp_in", compensate=compensate)
    req = spectral_request(model, strategy, strategy.matrices, 0.2, batches, {"rounds": 2})
    before = state(model)
    factors = req.factors()
    gradient = registry().get("scorers", "gradient")
    global_fraction = registry().get("pruners", "global-fraction")

    # by hand: round 1 on the unpruned model, round 2 scored on the model round 1 left
    ctx1 = ScoringContext(model, req.matrices, factors, batches)
    keep1 = global_fraction(gradient(ctx1), 0.1, {})
    e1 = spectral.prune(req.matrices, factors, keep1, ctx1.input_means() if compensate else None)
    ctx2 = ScoringContext(model, req.matrices, factors, batches)  # the original factors, on purpose
    raw2 = gradient(ctx2)
    e1.restore()
    assert same_state(model, before)

    edit = strategy.apply(req)
    assert [r["round"] for r in edit.details["rounds"]] == [1, 2]
    n = sum(f.S.numel() for f in factors.values())
    assert edit.n_pruned == int(0.2 * n) and edit.details["rounds"][0]["pruned"] == int(0.1 * n)
    # round 2 ranked the survivors by scores of the pruned model: σ∂L/∂σ of a surviving
    # direction is the same whether the pruned ones are zeroed in S or not
    survivors = {i: k for i, k in keep1.items()}
    ranked = {i: raw2[i].masked_fill(~survivors[i], -torch.inf) for i in raw2}
    expected = global_fraction(ranked, 0.2, {})
    assert all(torch.equal(edit.masks[i], expected[i]) for i in expected)
    one_shot = global_fraction(gradient(ScoringContext(model, req.matrices, factors, batches)), 0.2, {})
    assert not all(torch.equal(edit.masks[i], one_shot[i]) for i in one_shot)  # rescoring mattered
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in before.items())
    edit.restore()
    assert same_state(model, before)  # every round undone, created biases removed


def test_spectrum_stats_match_a_hand_computation():
    model = tiny_model("llama")  # K: 2 KV heads of 8 x 32 per layer; mlp_out: 32 x 48
    matrices = selection.select(selection.candidates(model), "k,mlp_out", layers="0")
    factors = {m.id: spectral.decompose(m) for m in matrices}
    k_id = next(m.id for m in matrices if m.kind == "k")
    mlp_id = next(m.id for m in matrices if m.kind == "mlp_out")
    keep = {i: torch.ones(f.S.shape, dtype=torch.bool) for i, f in factors.items()}
    keep[k_id][0, 5:] = False  # head 0 keeps 5 of 8
    keep[k_id][1, :] = False  # head 1 keeps nothing
    keep[mlp_id][0, 30:] = False  # keeps 30 of 32
    stats = spectral.spectrum_stats(matrices, factors, keep)
    assert stats["params_dense"] == 2 * 8 * 32 + 32 * 48
    assert stats["params_factored"] == 5 * (8 + 32) + 0 + 30 * (32 + 48)
    sk, sm = factors[k_id].S, factors[mlp_id].S
    kept = (sk[0, :5] ** 2).sum() + (sm[0, :30] ** 2).sum()
    assert stats["energy_kept"] == pytest.approx(float(kept / ((sk**2).sum() + (sm**2).sum())), abs=1e-6)

    def erank(s):
        p = s / s.sum()
        return math.exp(-sum(float(x) * math.log(float(x)) for x in p))

    assert stats["effective_rank"] == pytest.approx((erank(sk[0, :5]) + 0 + erank(sm[0, :30])) / 3, abs=1e-3)
    edit = spectral.prune(matrices, factors, keep)
    assert edit.spectrum == stats
    edit.restore()


def test_budget_search_evaluates_every_fraction_on_held_out_data_and_applies_the_best():
    model = tiny_model("gpt2")
    batches = random_batches(2)
    strategy = registry().get("strategies", "eigen-budget")
    seen = []
    values = [0.5, 0.4, 0.4, 0.6, 0.4]  # per fraction of the grid 0, 0.01, 0.02, 0.05, 0.1

    def evaluate(split, limit):
        pruned = sum(int((m.weight() != originals[m.id]).any()) for m in req.matrices)
        seen.append((split, limit, pruned))
        return values[len(seen) - 1]

    req = spectral_request(model, strategy, "k", 0.1, batches, {"eval_split": "test"}, evaluate)
    originals = {m.id: m.weight().clone() for m in req.matrices}
    before = state(model)
    edit = strategy.apply(req)
    assert [s for s, _, _ in seen] == ["validation"] * 5 and seen[0][1] == 64
    assert seen[0][2] == 0 and seen[-1][2] > 0  # fraction 0 first, unpruned; the cap last
    assert edit.details["search_values"] == {"0": 0.5, "0.01": 0.4, "0.02": 0.4, "0.05": 0.6, "0.1": 0.4}
    assert edit.details["chosen_fraction"] == 0.05 and edit.details["search_evaluations"] == 5
    n = sum(f.S.numel() for f in req.factors().values())
    assert edit.n_pruned == int(0.05 * n)
    edit.restore()
    assert same_state(model, before)

    seen.clear()
    values[:] = [0.5] * 5  # all equal: the smallest fraction, nothing pruned
    req.options["eval_split"] = "validation"  # the reported split: the search must not read it
    edit = strategy.apply(req)
    assert {s for s, _, _ in seen} == {"train"} and edit.n_pruned == 0
    edit.restore()


def test_budget_over_kinds_prunes_only_the_kind_and_fraction_that_won():
    model = tiny_model("llama")
    strategy = registry().get("strategies", "eigen-budget-kinds")
    seen = []

    def evaluate(split, limit):
        changed = {m.kind for m in req.matrices if not torch.equal(m.weight(), originals[m.id])}
        pruned = sum(int((m.weight() != originals[m.id]).any()) for m in req.matrices)
        seen.append((split, changed, pruned))
        return 0.9 if changed == {"v"} and len(seen) == 1 + 2 * 4 + 3 else 0.5  # v at 0.05 only

    req = spectral_request(model, strategy, "all", 0.1, random_batches(2), {"eval_split": "test"},
                           evaluate)
    originals = {m.id: m.weight().clone() for m in req.matrices}
    before = state(model)
    edit = strategy.apply(req)
    kinds = ["q", "k", "v", "o", "mlp_in", "mlp_out"]
    assert list(dict.fromkeys(m.kind for m in req.matrices)) == kinds  # searched in this order
    assert len(seen) == 1 + len(kinds) * 4 == edit.details["search_evaluations"]  # 0; 4 fractions
    assert seen[0][1] == set() and all(len(c) <= 1 for _, c, _ in seen[1:])  # one kind at a time
    assert set().union(*(c for _, c, _ in seen)) == set(kinds)
    assert {s for s, _, _ in seen} == {"validation"}
    assert edit.details["chosen_matrices"] == "v" and edit.details["chosen_fraction"] == 0.05
    assert "v@0.05" in edit.details["search_values"] and "0" in edit.details["search_values"]
    changed = {m.kind for m in req.matrices if not torch.equal(m.weight(), originals[m.id])}
    n_v = sum(f.S.numel() for i, f in req.factors().items() if ".v" in i)
    assert changed == {"v"} and edit.n_pruned == int(0.05 * n_v)
    edit.restore()
    assert same_state(model, before)


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


def test_objectives_on_hand_made_logits():
    from harness import objective_loss
    from harness.calibration import IGNORE

    # two rows, vocabulary of 4; row 0 has targets at positions 2 and 3, row 1 only at 3
    logits = torch.zeros(2, 4, 4, dtype=torch.float64)
    logits[0, 1] = torch.tensor([0.0, 3.0, 1.0, 0.5])  # predicts position 2, target 1: margin 2
    logits[0, 2] = torch.tensor([2.0, 0.0, 2.5, 0.0])  # predicts position 3, target 2: margin 0.5
    logits[1, 2] = torch.tensor([1.0, 0.0, 0.0, 4.0])  # predicts position 3, target 0: margin -3
    labels = torch.full((2, 4), IGNORE)
    labels[0, 2:] = torch.tensor([1, 2])
    labels[1, 3] = 0
    sums, counts = objective_loss.get("margin")(logits, labels)
    assert sums.tolist() == [-0.5, 3.0] and counts.tolist() == [1, 1]
    sums, counts = objective_loss.get("first-token")(logits, labels)
    expected = [-torch.log_softmax(logits[0, 1], -1)[1], -torch.log_softmax(logits[1, 2], -1)[0]]
    assert torch.allclose(sums, torch.stack(expected)) and counts.tolist() == [1, 1]
    sums, counts = objective_loss.get("ce")(logits, labels)
    assert counts.tolist() == [2, 1]
    assert (sums.sum() / counts.sum()).item() == pytest.approx(target_loss(logits, labels).item())
    assert objective_loss.batch_loss("margin", logits, labels).item() == pytest.approx(1.25)
    with pytest.raises(Exception, match="choose from: ce, first-token, margin"):
        objective_loss.get("accuracy")


@pytest.mark.parametrize("objective", ["margin", "first-token"])
def test_scores_estimate_the_chosen_objective(objective):
    """σ ∂J/∂σ under another objective J: the gradient scorer against autograd on the weight."""
    from harness import objective_loss

    model = tiny_model("llama")
    batch = random_batches(1)[0]
    m = selection.select(selection.candidates(model), "k", layers="1")[0]
    f = spectral.decompose(m)
    ctx = ScoringContext(model, [m], {m.id: f}, [batch], objective=objective)
    scores = registry().get("scorers", "gradient")(ctx)[m.id]
    w = m.module.weight
    w.requires_grad_(True)
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    (grad,) = torch.autograd.grad(objective_loss.batch_loss(objective, logits, batch.labels), w)
    w.requires_grad_(False)
    g = m.to_blocks(grad)
    expected = -f.S * torch.einsum("hoj,hoi,hji->hj", f.U, g, f.Vh)
    assert torch.allclose(scores, expected, rtol=1e-6, atol=1e-12)
    ce = registry().get("scorers", "gradient")(ScoringContext(model, [m], {m.id: f}, [batch]))[m.id]
    assert not torch.allclose(scores, ce)

    strategy = registry().get("strategies", "eigen-" + objective)
    assert strategy.objective == objective and strategy.apply is None  # eigen's path, another loss
    req = spectral_request(model, strategy, "k", 0.25, [batch])
    own = registry().get("scorers", "attribution")(
        ScoringContext(model, req.matrices, req.factors(), [batch], objective=objective))
    edit = spectral_apply(req)
    assert all(torch.equal(edit.scores[i], own[i]) for i in own)
    assert edit.n_pruned == int(0.25 * f.S.numel() * 2)
    edit.restore()


def test_bench_rows_of_the_new_strategies_carry_storage_spectrum_and_costs(tiny_dir, tmp_path):
    import json

    import pandas as pd
    from click.testing import CliRunner

    from harness.cli import cli

    out = tmp_path / "results.csv"
    result = CliRunner().invoke(cli, [
        "bench", "--model", str(tiny_dir), "--task", "int_mult", "--strategy",
        "none,eigen,eigen-verified,eigen-iterative,eigen-budget,eigen-margin", "--fraction", "0.25",
        "--limit", "4", "--calibration-size", "8", "--calibration-batch-size", "4", "--device", "cpu",
        "--output", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    test = df[df.split == "test"].set_index("strategy")
    assert len(test) == 6
    n = 2 * 2 * 8  # 2 layers x 2 KV heads x rank 8 of 8 x 32 blocks
    spectral_rows = test.drop(index="none")
    assert (spectral_rows.params_dense == 2 * 2 * 8 * 32).all()
    assert (spectral_rows.params_factored == (n - spectral_rows.n_pruned) * (8 + 32)).all()
    assert (spectral_rows.energy_kept > 0).all()
    assert ((spectral_rows.energy_kept < 1) == (spectral_rows.n_pruned > 0)).all()
    assert ((spectral_rows.effective_rank > 1) & (spectral_rows.effective_rank < 8)).all()
    assert test.loc["none"].params_dense == 0 and pd.isna(test.loc["none"].energy_kept)
    for name in ("eigen", "eigen-verified", "eigen-iterative", "eigen-margin"):
        assert test.loc[name].n_pruned == int(0.25 * n) and test.loc[name].compensate
        assert test.loc[name].scorer == "attribution" and test.loc[name].pruner == "global-fraction"
    verified = json.loads(test.loc["eigen-verified"].details)
    assert verified["measure_rows"] == verified["shortlist"] * verified["verify_examples"] > 0
    assert len(json.loads(test.loc["eigen-iterative"].details)["rounds"]) == 4
    budget = json.loads(test.loc["eigen-budget"].details)
    assert budget["search_split"] == "validation" and budget["search_evaluations"] == 7
    assert test.loc["eigen-budget"].n_pruned == int(budget["chosen_fraction"] * n)
    assert test.loc["eigen-margin"].objective == "margin" and test.loc["eigen"].objective == "ce"
    assert pd.isna(test.loc["none"].objective)


def registry_masks(results_csv, config_hash: str) -> dict:
    """The keep-masks a cell wrote beside the results (<results>_masks/<hash>.json)."""
    import json

    data = json.loads((results_csv.parent / f"{results_csv.stem}_masks" / f"{config_hash}.json").read_text())
    return {mid: m["keep"] for mid, m in data["matrices"].items()}


def test_objective_flag_makes_a_labelled_variant_of_any_spectral_strategy(tiny_dir, tmp_path):
    """--objective margin on eigen is eigen-margin under another name, kept apart on the board."""
    import pandas as pd
    from click.testing import CliRunner

    from harness.cli import cli

    out = tmp_path / "results.csv"
    common = ["--model", str(tiny_dir), "--task", "int_mult", "--fraction", "0.25", "--limit", "4",
              "--calibration-size", "8", "--calibration-batch-size", "4", "--device", "cpu",
              "--output", str(out)]
    for extra in (["--strategy", "eigen,eigen-margin,magnitude"],
                  ["--strategy", "eigen,magnitude", "--objective", "margin"]):
        result = CliRunner().invoke(cli, ["bench", *common, *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    test = pd.read_csv(out).query("split == 'test'").set_index("strategy")
    assert {"eigen", "eigen-margin", "eigen[objective=margin]", "magnitude"} <= set(test.index)
    assert "magnitude[objective=margin]" not in test.index  # not spectral: the flag means nothing
    assert test.loc["eigen[objective=margin]"].objective == "margin"
    assert test.loc["eigen[objective=margin]"].config_hash != test.loc["eigen"].config_hash
    masks = {name: registry_masks(out, test.loc[name].config_hash) for name in
             ("eigen", "eigen-margin", "eigen[objective=margin]")}
    assert masks["eigen-margin"] == masks["eigen[objective=margin]"] != masks["eigen"]

    bad = CliRunner().invoke(cli, ["bench", *common, "--strategy", "eigen", "--objective", "acc"])
    assert bad.exit_code == 2
    assert "unknown objective 'acc'; choose from: ce, first-token, margin" in bad.output


def test_the_kinds_search_has_a_random_control_that_searches_the_same_way():
    """random-sv-budget-kinds: eigen-budget-kinds's search (same trials, same order) over random
    scores, declared a baseline, so the board holds eigen-budget-kinds to what the search alone
    gets."""
    from harness.report import baseline_names

    model = tiny_model("llama")
    control = registry().get("strategies", "random-sv-budget-kinds")
    assert control.baseline and control.seeded and control.scorer == "random"
    assert baseline_names({"random-sv-budget-kinds", "eigen-budget-kinds"}) == {"random-sv-budget-kinds"}
    pruned = {}
    for name in ("eigen-budget-kinds", "random-sv-budget-kinds"):
        strategy = registry().get("strategies", name)
        trials = []

        def evaluate(split, limit, _trials=trials):
            _trials.append(split)
            return 0.9 if len(_trials) == 4 else 0.5  # q at the third fraction of the grid

        req = spectral_request(model, strategy, "all", 0.1, random_batches(2), {"eval_split": "test"},
                               evaluate)
        originals = {m.id: m.weight().clone() for m in req.matrices}
        edit = strategy.apply(req)
        assert len(trials) == edit.details["search_evaluations"] == 1 + 6 * 4
        assert edit.details["chosen_matrices"] == "q" and edit.details["chosen_fraction"] == 0.05
        assert {m.kind for m in req.matrices if not torch.equal(m.weight(), originals[m.id])} == {"q"}
        pruned[name] = (edit.n_pruned, {i: ~k for i, k in edit.masks.items()})
        edit.restore()
    (n_eigen, eigen), (n_random, random) = pruned["eigen-budget-kinds"], pruned["random-sv-budget-kinds"]
    assert n_eigen == n_random > 0  # the same kind and budget ...
    assert any(not torch.equal(eigen[i], random[i]) for i in eigen)  # ... other directions
