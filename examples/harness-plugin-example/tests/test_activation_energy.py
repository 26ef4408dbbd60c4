"""The example plugin's own tests, on tiny random models from `harness.testing` (seconds)."""

from __future__ import annotations

import harness_plugin_example as plugin
import pytest
import torch

from harness import spectral, testing
from harness.strategy import PruneRequest, spectral_apply


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_scores_equal_a_direct_computation(family):
    model = testing.tiny_model(family)
    batches = testing.random_batches(n_batches=2, batch=3)
    with testing.registry_with(plugin) as reg:
        ctx = testing.scoring_context(model, "k,o", batches)
        scores = reg.get("scorers", "activation-energy")(ctx)
    for m in ctx.matrices:
        # the same quantity the slow way: own SVD, own forward hook, a loop over tokens
        inputs = []
        handle = m.module.register_forward_hook(
            lambda mod, args, out, _seen=inputs: _seen.append(args[0]))
        with torch.no_grad():
            for b in batches:
                model(input_ids=b.input_ids, attention_mask=b.attention_mask)
        handle.remove()
        _, S, Vh = torch.linalg.svd(m.to_blocks(m.weight()), full_matrices=False)
        xs = [x[b.attention_mask.bool()] for x, b in zip(inputs, batches, strict=True)]
        tokens = torch.cat(xs)  # (N, in)
        expected = torch.zeros_like(S)
        for t in tokens:
            expected += (Vh @ m.input_blocks(t)[..., None]).squeeze(-1).abs()
        expected = S * expected / len(tokens)
        assert scores[m.id].shape == S.shape and scores[m.id].dtype == S.dtype
        torch.testing.assert_close(scores[m.id], expected, rtol=1e-6, atol=1e-9)


def test_padding_does_not_count():
    model = testing.tiny_model("llama")
    batches = testing.random_batches(n_batches=1, batch=3)
    padded = batches[0]
    garbage = padded.input_ids.clone()
    garbage[padded.attention_mask == 0] = 5  # other tokens where the mask says padding
    changed = [type(padded)(garbage, padded.attention_mask, padded.labels)]
    with testing.registry_with(plugin) as reg:
        score = reg.get("scorers", "activation-energy")
        a = score(testing.scoring_context(model, "k", batches))
        b = score(testing.scoring_context(model, "k", changed))
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_strategy_prunes_the_least_excited_directions_and_restores():
    model = testing.tiny_model("llama")
    with testing.registry_with(plugin) as reg:
        assert reg.components["strategies"]["act-energy"].plugin == "harness_plugin_example"
        from harness import selection

        matrices = selection.select(selection.candidates(model), "k")
        before = {m.id: m.weight().clone() for m in matrices}
        request = PruneRequest(model=model, matrices=matrices, fraction=0.25, seed=0,
                               strategy=reg.get("strategies", "act-energy"),
                               batches=testing.random_batches(), spectrum=spectral.SpectrumCache())
        edit = spectral_apply(request)
    flat_scores = torch.cat([edit.scores[m.id].flatten() for m in matrices])
    flat_keep = torch.cat([edit.masks[m.id].flatten() for m in matrices])
    assert edit.n_pruned == int(0.25 * flat_scores.numel()) == int((~flat_keep).sum())
    assert flat_scores[~flat_keep].max() <= flat_scores[flat_keep].min()  # lowest scores went
    assert any(not torch.equal(m.weight(), before[m.id]) for m in matrices)
    edit.restore()
    assert all(torch.equal(m.weight(), before[m.id]) for m in matrices)


def test_rms_basis_is_the_svd_of_the_channel_scaled_weight_and_restores_exactly():
    from harness import selection
    from harness.runner import weights_digest

    model = testing.tiny_model("llama")
    batches = testing.random_batches()
    with testing.registry_with(plugin) as reg:
        matrices = selection.select(selection.candidates(model), "k")
        request = PruneRequest(model=model, matrices=matrices, fraction=0.25, seed=0,
                               strategy=reg.get("strategies", "rms-svd"), batches=batches,
                               spectrum=spectral.SpectrumCache())
        factors = request.factors()
        # the same basis the slow way: each channel's RMS over the real tokens, then an SVD
        seen = []
        handle = matrices[0].module.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
        with torch.no_grad():
            for b in batches:
                model(input_ids=b.input_ids, attention_mask=b.attention_mask)
        handle.remove()
        x = torch.cat([s[b.attention_mask.bool()] for s, b in zip(seen, batches, strict=True)])
        rms = x.pow(2).mean(0).sqrt()
        m = matrices[0]
        expected = torch.linalg.svdvals(m.to_blocks(m.weight()) * rms)
        torch.testing.assert_close(factors[m.id].S, expected, rtol=1e-6, atol=1e-9)
        before = weights_digest(model)
        edit = spectral_apply(request)
        assert edit.n_pruned > 0 and weights_digest(model) != before
        edit.restore()
    assert weights_digest(model) == before
