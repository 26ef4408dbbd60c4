"""Objectives (hook register_objectives): the losses scores estimate, on hand-made logits, and
`--objective` as a labelled variant of any spectral strategy."""

from __future__ import annotations

import pytest
import torch
from conftest import random_batches, tiny_model
from test_measured_removal import one_thread  # noqa: F401  (its autouse fixture: one torch thread)
from test_searching_strategies import spectral_request

from harness import selection, spectral
from harness.calibration import IGNORE, target_loss
from harness.plugins import registry
from harness.scoring import ScoringContext
from harness.strategy import spectral_apply


def test_objectives_on_hand_made_logits():
    from harness import objective_loss

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
