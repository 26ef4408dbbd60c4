"""The weight-space and search baselines: magnitude pruning and LASER."""

from __future__ import annotations

import torch
from conftest import tiny_model

from harness import selection, spectral
from harness.plugins import registry
from harness.strategy import PruneRequest


def request(model, spec, fraction, evaluate=None):
    strategy = registry().get("strategies", "laser" if evaluate else "magnitude")
    matrices = selection.select(selection.candidates(model), spec)
    return PruneRequest(model=model, matrices=matrices, fraction=fraction, seed=0, strategy=strategy,
                        batches=[], spectrum=spectral.SpectrumCache(), evaluate=evaluate)


def test_magnitude_zeroes_the_smallest_weights_of_each_matrix_and_restores():
    model = tiny_model("llama")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    req = request(model, "k,mlp_out", 0.25)
    originals = {m.id: m.weight().clone() for m in req.matrices}
    edit = registry().get("strategies", "magnitude").apply(req)
    for m in req.matrices:
        w, orig = m.weight(), originals[m.id]
        zeroed = (w == 0) & (orig != 0)
        assert int(zeroed.sum()) == int(0.25 * w.numel())
        assert orig[zeroed].abs().max() <= orig[~zeroed].abs().min()  # the smallest went
    assert edit.n_pruned == sum(int(0.25 * m.weight().numel()) for m in req.matrices)
    edit.restore()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_laser_keeps_the_matrix_that_wins_on_validation():
    model = tiny_model("gpt2")
    target = "layer.1.mlp_in"
    originals = {}
    splits = []

    def evaluate(split, limit):
        splits.append(split)
        changed = [mid for mid, (m, w) in originals.items() if not torch.equal(m.weight(), w)]
        assert len(changed) == 1  # exactly one matrix is low-rank at a time
        return 1.0 if changed[0] == target else 0.5

    req = request(model, "mlp_in,mlp_out", 0.5, evaluate)
    originals.update({m.id: (m, m.weight().clone()) for m in req.matrices})
    edit = registry().get("strategies", "laser").apply(req)
    assert edit.details["matrix"] == target and edit.details["candidates"] == 4
    chosen = next(m for m in req.matrices if m.id == target)
    rank = torch.linalg.matrix_rank(chosen.weight().double()).item()
    assert rank == 32 - 16 and edit.n_pruned == 16
    edit.restore()
    assert torch.equal(chosen.weight(), originals[target][1])
    edit.restore()  # a second restore changes nothing
    assert set(splits) == {"validation"}  # the search never reads test

    splits.clear()
    req.options["eval_split"] = "validation"  # SuperGLUE reports on validation: search on train
    edit = registry().get("strategies", "laser").apply(req)
    assert set(splits) == {"train"} and edit.details["search_split"] == "train"
    edit.restore()
