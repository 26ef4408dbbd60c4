"""The searching strategies: eigen-verified, eigen-iterative, eigen-budget (and its random
control), and the storage/spectrum numbers of a spectral edit. Every check runs on tiny random
models and compares against a brute-force loop that really edits the weights."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import random_batches, tiny_model
from test_measured_removal import (
    brute_force,
    one_thread,  # noqa: F401  (its autouse fixture: one torch thread)
    same_state,
    state,
)

from harness import removal, selection, spectral
from harness.plugins import registry
from harness.scoring import ScoringContext
from harness.strategy import PruneRequest


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


def test_an_edit_copies_only_the_matrices_it_changes(monkeypatch):
    """A kinds search prunes one kind a trial: copying every selected matrix each trial cost
    Qwen-0.5B 1.4 GB and about 1.5 s. Only the changed modules are copied, and restore still
    gives back the whole model bit for bit (compensation's new biases included)."""
    model = tiny_model("llama")
    matrices = selection.select(selection.candidates(model), "all")
    factors = {m.id: spectral.decompose(m) for m in matrices}
    before = state(model)
    copied: list = []
    real = spectral.snapshot
    monkeypatch.setattr(spectral, "snapshot", lambda modules: real(copied.extend(modules) or list(copied)))
    keep = {m.id: torch.ones_like(factors[m.id].S, dtype=torch.bool) for m in matrices}
    touched = [m for m in matrices if m.kind == "v"]
    for m in touched:
        keep[m.id][..., -2:] = False
    means = {m.id: torch.randn(m.shape[1], dtype=m.weight().dtype) for m in matrices}
    edit = spectral.prune(matrices, factors, keep, means)
    assert {id(m) for m in copied} == {id(m.module) for m in touched}
    assert not same_state(model, before)
    edit.restore()
    assert same_state(model, before)
