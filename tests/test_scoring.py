"""Scores against brute force: perturb the model for real and measure the loss change."""

from __future__ import annotations

import pytest
import torch
from conftest import FAMILIES, random_batches, tiny_model

from harness import selection, spectral
from harness.calibration import target_loss
from harness.plugins import registry
from harness.scoring import ScoringContext, frozen


def effect_of_output_delta(model, batch, m, delta_fn) -> float:
    """d/da of the loss when a * delta_fn(x) is added to matrix m's output, at a = 0.

    An independent first-order measurement: a scalar knob on the real model, differentiated
    by autograd (finite differences drown in the float32 casts inside RMSNorm and softmax).
    """
    a = torch.zeros((), dtype=torch.float64, requires_grad=True)

    def hook(module, args, output):
        out = output.clone()
        out[..., m.rows] = out[..., m.rows] + a * delta_fn(args[0].detach())
        return out

    handle = m.module.register_forward_hook(hook)
    try:
        with frozen(model):
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
            target_loss(logits, batch.labels).backward()
        return a.grad.item()
    finally:
        handle.remove()


def loss(model, batch) -> float:
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        return target_loss(logits, batch.labels).item()


def direction(f, m, h, j):
    """(in,) -> (out,) map of singular direction (h, j) placed in the full output."""
    def apply(dx):  # dx (..., in)
        xb = m.input_blocks(dx)[..., h, :]  # (..., in_h)
        contrib = f.S[h, j] * (xb @ f.Vh[h, j])[..., None] * f.U[h, :, j]  # (..., out_h)
        out = torch.zeros(*dx.shape[:-1], m.shape[0], dtype=dx.dtype)
        if m.block_axis == "out":
            o = f.U.shape[1]
            out[..., h * o : (h + 1) * o] = contrib
        else:
            out = contrib
        return out
    return apply


@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_score_is_first_order_effect_of_zeroing(family):
    model = tiny_model(family)
    batch = random_batches(1)[0]
    matrices = selection.select(selection.candidates(model), "k,o,mlp_out", layers="1")
    factors = {m.id: spectral.decompose(m) for m in matrices}
    scores = registry().get("scorers", "gradient")(ScoringContext(model, matrices, factors, [batch]))
    for m in matrices:
        f = factors[m.id]
        for h, j in [(0, 0), (0, 3), (f.S.shape[0] - 1, f.rank - 1)]:
            d = direction(f, m, h, j)  # zeroing S[h, j] removes S u v.x from the output
            expected = effect_of_output_delta(model, batch, m, lambda x, d=d: -d(x))
            assert scores[m.id][h, j].item() == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_gradient_score_predicts_actually_removing_a_small_part_of_a_singular_value():
    """GPT-2 in float64 has no float32 casts, so real weight edits measure the effect directly."""
    model = tiny_model("gpt2")
    model.config._attn_implementation = "eager"
    batch = random_batches(1)[0]
    m = selection.select(selection.candidates(model), "k", layers="1")[0]
    f = spectral.decompose(m)
    score = registry().get("scorers", "gradient")(ScoringContext(model, [m], {m.id: f}, [batch]))[m.id]
    base = loss(model, batch)
    eps = 1e-5
    for h, j in [(0, 0), (2, 4), (3, 7)]:
        keep_all = torch.ones_like(f.S)
        keep_all[h, j] = 1 - eps  # S[h, j] -> (1 - eps) S[h, j], a real weight edit
        restore_w = m.weight().clone()
        m.write_weight(m.from_blocks(f.reconstruct(keep_all)))
        changed = loss(model, batch)
        m.write_weight(restore_w)
        assert score[h, j].item() == pytest.approx((changed - base) / eps, rel=1e-3, abs=1e-9)


def test_attribution_score_is_max_over_positions_of_rolled_batch_effect():
    model = tiny_model("llama")
    batch = random_batches(1, batch=3, length=5)[0]
    m = selection.select(selection.candidates(model), "k", layers="0")[0]
    f = spectral.decompose(m)
    scores = registry().get("scorers", "attribution")(ScoringContext(model, [m], {m.id: f}, [batch]))
    valid = batch.attention_mask.bool()
    both = valid & valid.roll(1, 0)
    for h, j in [(0, 0), (1, 5)]:
        d = direction(f, m, h, j)
        effects = []
        for b in range(3):
            for t in range(5):
                if not both[b, t]:
                    continue

                def delta(x, b=b, t=t, d=d):
                    out = torch.zeros(*x.shape[:-1], m.shape[0], dtype=x.dtype)
                    out[b, t] = d(x[b - 1, t] - x[b, t])
                    return out

                effects.append(effect_of_output_delta(model, batch, m, delta))
        assert scores[m.id][h, j].item() == pytest.approx(max(effects), rel=1e-6, abs=1e-12)


def test_mean_ablation_score_is_effect_of_moving_every_token_to_the_mean():
    model = tiny_model("phi")
    batch = random_batches(1)[0]
    m = selection.select(selection.candidates(model), "o", layers="1")[0]
    f = spectral.decompose(m)
    ctx = ScoringContext(model, [m], {m.id: f}, [batch])
    scores = registry().get("scorers", "mean-ablation")(ctx)
    mean = ctx.input_means()[m.id].double()
    valid = batch.attention_mask.bool()[..., None]
    for h, j in [(0, 0), (3, 7)]:
        d = direction(f, m, h, j)
        expected = effect_of_output_delta(model, batch, m, lambda x, d=d: d(mean - x) * valid)
        assert scores[m.id][h, j].item() == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_bias_compensation_keeps_the_mean_output():
    model = tiny_model("llama")
    batches = random_batches(2)
    matrices = selection.select(selection.candidates(model), "k,mlp_in", layers="0")
    factors = {m.id: spectral.decompose(m) for m in matrices}
    ctx = ScoringContext(model, matrices, factors, batches)

    captured = [(cap.inputs, cap.valid) for cap in ctx.passes(backward=False)]

    def mean_outputs():  # on the same calibration inputs, before and after pruning
        with torch.no_grad():
            return {m.id: torch.cat([m.module(xs[m.id])[..., m.rows][valid]
                                     for xs, valid in captured]).mean(0) for m in matrices}

    def first_outputs():
        with torch.no_grad():
            return {m.id: m.module(captured[0][0][m.id])[..., m.rows] for m in matrices}

    before, before_tokens = mean_outputs(), first_outputs()
    keep = {k: torch.rand(f.S.shape, generator=torch.Generator().manual_seed(0)) > 0.5
            for k, f in factors.items()}
    edit = spectral.prune(matrices, factors, keep, ctx.input_means())
    after, after_tokens = mean_outputs(), first_outputs()
    for m in matrices:
        assert torch.allclose(before[m.id], after[m.id], atol=1e-10)
        assert not torch.allclose(before_tokens[m.id], after_tokens[m.id], atol=1e-4)  # it did prune
    edit.restore()


def test_random_scores_are_seeded_and_sigma_is_the_spectrum():
    model = tiny_model("gpt2")
    matrices = selection.select(selection.candidates(model), "k")
    factors = {m.id: spectral.decompose(m) for m in matrices}
    a = registry().get("scorers", "random")(ScoringContext(model, matrices, factors, [], seed=1))
    b = registry().get("scorers", "random")(ScoringContext(model, matrices, factors, [], seed=1))
    c = registry().get("scorers", "random")(ScoringContext(model, matrices, factors, [], seed=2))
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["layer.0.k"], c["layer.0.k"])
    s = registry().get("scorers", "sigma")(ScoringContext(model, matrices, factors, []))
    assert torch.equal(s["layer.0.k"], factors["layer.0.k"].S)


def test_attribution_refuses_batches_of_one():
    from harness.errors import HarnessError

    model = tiny_model("llama")
    m = selection.select(selection.candidates(model), "k")[0]
    ctx = ScoringContext(model, [m], {m.id: spectral.decompose(m)}, random_batches(1, batch=1))
    with pytest.raises(HarnessError, match="batch size of at least 2"):
        registry().get("scorers", "attribution")(ctx)


@pytest.mark.parametrize("family", ["gpt2", "llama", "phi", "qwen2"])
def test_logits_only_where_targets_are_predicted_change_no_loss_and_no_score(family, monkeypatch):
    """Scoring computes the vocabulary's logits only at the positions that predict a target
    (the memory of long prompts); every objective and every score is the same as with all."""
    from harness import calibration, objective_loss, scoring
    from harness.plugins import registry

    model = tiny_model(family)
    batches = random_batches(2, batch=4, length=9)
    b = batches[0]
    full = model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits
    small, labels = calibration.target_logits(model, b.labels, input_ids=b.input_ids,
                                              attention_mask=b.attention_mask)
    assert small.shape[1] < full.shape[1]  # 4 of 8 predicting positions kept (+1 unused column)
    for name in ("ce", "margin", "first-token"):
        assert torch.allclose(objective_loss.batch_loss(name, small, labels),
                              objective_loss.batch_loss(name, full, b.labels), rtol=1e-12, atol=1e-12)
    matrices = selection.select(selection.candidates(model), "k,mlp_out")
    factors = {m.id: spectral.decompose(m) for m in matrices}
    scorer = registry().get("scorers", "gradient")
    compact = scorer(ScoringContext(model, matrices, factors, batches, objective="margin"))

    def everywhere(model, labels, **inputs):
        return model(**inputs).logits, labels

    monkeypatch.setattr(scoring, "target_logits", everywhere)
    reference = scorer(ScoringContext(model, matrices, factors, batches, objective="margin"))
    assert all(torch.allclose(compact[i], reference[i], rtol=1e-9, atol=1e-12) for i in reference)
