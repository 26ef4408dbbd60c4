"""Data-aware bases: what each promises (whitened: removed S² = output error on the data), exact
restore and bias compensation in every basis, the cache key, scorers unchanged, plugin errors."""

from __future__ import annotations

import pytest
import torch
from conftest import random_batches, tiny_model

from harness import decompositions, selection, spectral
from harness.calibration import Batch
from harness.errors import HarnessError
from harness.plugins import registry
from harness.runner import weights_digest
from harness.scoring import ScoringContext, frozen
from harness.strategy import PruneRequest, Strategy, spectral_apply
from harness.testing import registry_with

BASES = ["plain", "scaled", "whitened"]


def chosen(model, kinds="k,o"):
    return selection.select(selection.candidates(model), kinds)


def token_inputs(model, m, batches) -> torch.Tensor:
    """Matrix m's input at every real token of `batches`: (N, in), float64."""
    seen = []
    handle = m.module.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach()))
    try:
        with frozen(model), torch.no_grad():
            for b in batches:
                model(input_ids=b.input_ids, attention_mask=b.attention_mask)
    finally:
        handle.remove()
    return torch.cat([x[b.attention_mask.bool()] for x, b in zip(seen, batches, strict=True)]).double()


@pytest.mark.parametrize("name", BASES)
def test_factors_multiply_back_to_the_weight(name):
    model = tiny_model("llama")
    matrices = chosen(model)
    factors = decompositions.factors(spectral.SpectrumCache(), matrices, name, model, random_batches(), {})
    for m in matrices:
        f = factors[m.id]
        assert torch.allclose(m.from_blocks(f.reconstruct()), m.weight(), atol=1e-9)
        assert bool((f.S[:, :-1] >= f.S[:, 1:]).all())  # descending per head


def test_whitened_singular_values_are_the_output_error_on_the_data():
    """SVD-LLM's point: removing direction j changes the outputs on the calibration tokens
    by exactly S[j]² (mean squared, summed over outputs); the plain basis does not promise it."""
    model = tiny_model("llama")
    batches = random_batches(3, batch=4, length=8)
    matrices = chosen(model)
    white = decompositions.factors(spectral.SpectrumCache(), matrices, "whitened", model, batches, {})
    plain = spectral.SpectrumCache().get(matrices)
    for m in matrices:
        x = m.input_blocks(token_inputs(model, m, batches))  # (N, H, i)
        for f, exact in ((white[m.id], True), (plain[m.id], False)):
            # output change of removing each (h, j) alone: S u (v . x), squared, mean over tokens
            vx = torch.einsum("nhi,hji->nhj", x, f.Vh)  # (N, H, r)
            err = (f.S**2) * (vx**2).mean(0) * (f.U**2).sum(1)  # (H, r)
            if exact:
                assert torch.allclose(err, f.S**2, rtol=1e-6)
            else:
                assert not torch.allclose(err, f.S**2, rtol=1e-2)


def test_whitening_survives_a_rank_deficient_gram():
    """Fewer tokens than channels and a dead channel: Cholesky of G fails, the jittered one
    does not, and the factors still give the weight back."""
    from eigenharness_plugins.decompositions import whitened, whitening

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 16, generator=gen, dtype=torch.float64)  # 5 tokens, 16 channels: rank 5
    x[:, 3] = 0  # a channel that never fires
    gram = (x.T @ x / 5)[None].expand(2, -1, -1).clone()
    gram[1] = 0  # a block the data never reached
    assert bool((torch.linalg.cholesky_ex(gram)[1] != 0).all())
    L = whitening(gram)
    assert torch.isfinite(L).all() and bool((L.diagonal(dim1=-2, dim2=-1) > 0).all())
    assert torch.allclose(L @ L.mT, gram, atol=1e-4 * float(gram[0].diagonal().mean()))
    w = torch.randn(2, 8, 16, generator=gen, dtype=torch.float64)
    f = whitened(w, decompositions.Activations(5, x.abs().mean(0).expand(2, -1), gram), {})
    assert torch.allclose(f.reconstruct(), w, atol=1e-8)


@pytest.mark.parametrize("name", BASES)
@pytest.mark.parametrize("compensate", [True, False])
def test_prune_and_restore_are_exact_in_every_basis(name, compensate):
    model = tiny_model("llama")
    before = weights_digest(model)
    batches = random_batches()
    s = Strategy("t", "t", matrices="k,o", scorer="sigma", decomposition=name, compensate=compensate)
    req = PruneRequest(model=model, matrices=chosen(model), fraction=0.3, seed=0, strategy=s,
                       batches=batches, spectrum=spectral.SpectrumCache())
    factors = req.factors()
    edit = spectral_apply(req)
    assert edit.n_pruned > 0 and weights_digest(model) != before
    for m in req.matrices:  # what was removed is exactly the dropped directions
        drop = ~edit.masks[m.id]
        removed = m.from_blocks(factors[m.id].reconstruct(drop))
        w0 = m.from_blocks(factors[m.id].reconstruct())
        assert torch.allclose(m.weight(), w0 - removed, atol=1e-9)
    edit.restore()
    assert weights_digest(model) == before


def test_bias_compensation_keeps_the_mean_output_in_a_data_aware_basis():
    """Mean ablation in the whitened basis: the layer's output at the calibration mean input
    is unchanged by the prune (the removed directions' mean effect moved to the bias)."""
    model = tiny_model("llama")
    batches = random_batches()
    s = Strategy("t", "t", matrices="k", scorer="sigma", decomposition="whitened")
    req = PruneRequest(model=model, matrices=chosen(model, "k"), fraction=0.5, seed=0, strategy=s,
                       batches=batches, spectrum=spectral.SpectrumCache())
    means = req.input_means()
    out_before = {m.id: m.module(means[m.id][None].to(m.module.weight.dtype)).detach()
                  for m in req.matrices}
    edit = spectral_apply(req)
    for m in req.matrices:
        after = m.module(means[m.id][None].to(m.module.weight.dtype)).detach()
        assert torch.allclose(after, out_before[m.id], atol=1e-9)
    edit.restore()


def basis_of(matrices, name, model, batches, options):
    """The factors a fresh cache gives in basis `name`."""
    return decompositions.factors(spectral.SpectrumCache(), matrices, name, model, batches, options)


def test_factors_are_cached_per_decomposition_options_and_calibration_set():
    model = tiny_model("llama")
    matrices = chosen(model, "k")
    cache = spectral.SpectrumCache()
    a, b = random_batches(seed=0), random_batches(seed=1)

    def basis(name, batches, options=None):
        return decompositions.factors(cache, matrices, name, model, batches, options or {})

    first = basis("whitened", a)
    again = basis("whitened", [Batch(*(t.clone() for t in (x.input_ids, x.attention_mask, x.labels)))
                               for x in a])
    other = basis("whitened", b)
    key = matrices[0].id
    assert again[key] is first[key]  # same tokens: the same factors, not recomputed
    assert not torch.allclose(other[key].Vh, first[key].Vh)  # another calibration set: its own
    half = basis("scaled", a, {"alpha": 0.5})
    full = basis("scaled", a, {"alpha": 1.0})
    assert half[key] is basis("scaled", a)[key]  # 0.5 is the default
    assert not torch.allclose(half[key].S, full[key].S)
    assert cache.get(matrices)[key] is basis("plain", b)[key]  # data-free


def test_scorers_work_unchanged_in_the_whitened_basis():
    """The gradient scorer in the whitened basis is still the first-order loss change of
    zeroing each direction, measured by autograd on the real model."""
    from harness.calibration import target_loss

    model = tiny_model("llama")
    batch = random_batches(1, batch=4, length=7)[0]
    m = chosen(model, "k")[0]
    f = decompositions.factors(spectral.SpectrumCache(), [m], "whitened", model, [batch], {})[m.id]
    scores = registry().get("scorers", "gradient")(ScoringContext(model, [m], {m.id: f}, [batch]))
    for h, j in [(0, 0), (1, 3), (0, 7)]:
        a = torch.zeros((), dtype=torch.float64, requires_grad=True)

        def hook(module, args, output, h=h, j=j, a=a):
            xb = m.input_blocks(args[0])[..., h, :]
            contrib = f.S[h, j] * (xb @ f.Vh[h, j])[..., None] * f.U[h, :, j]
            full = torch.zeros_like(output[..., m.rows]).unflatten(-1, (m.heads, -1))
            full[..., h, :] = contrib
            out = output.clone()
            out[..., m.rows] = out[..., m.rows] - a * full.flatten(-2)
            return out

        handle = m.module.register_forward_hook(hook)
        try:
            with frozen(model):
                logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
                target_loss(logits, batch.labels).backward()
        finally:
            handle.remove()
        assert scores[m.id][h, j].item() == pytest.approx(a.grad.item(), rel=1e-6, abs=1e-12)


class WrongBasis:
    from harness import hookimpl

    @staticmethod
    @hookimpl
    def register_decompositions(register):
        def broken(blocks, activations, options):
            U, S, Vh = torch.linalg.svd(blocks, full_matrices=False)
            return spectral.Factors(U, S * 2, Vh)  # not W

        register("broken", broken)


def test_a_decomposition_that_does_not_give_the_weight_back_is_one_clear_error():
    model = tiny_model("llama")
    with registry_with(WrongBasis()):
        with pytest.raises(HarnessError, match="decomposition 'broken' does not reproduce layer.0.k"):
            basis_of(chosen(model, "k"), "broken", model, random_batches(), {})
        with pytest.raises(HarnessError, match="unknown decomposition 'nope'; choose from: broken, plain"):
            basis_of(chosen(model, "k"), "nope", model, random_batches(), {})


def test_scaled_with_alpha_zero_is_the_plain_svd():
    model = tiny_model("llama")
    matrices = chosen(model)
    cache = spectral.SpectrumCache()
    scaled = decompositions.factors(cache, matrices, "scaled", model, random_batches(), {"alpha": 0.0})
    for m in matrices:
        assert torch.allclose(scaled[m.id].S, cache.get([m])[m.id].S, atol=1e-10)


def test_scores_made_in_one_basis_are_never_reused_in_another():
    """Requests of one (task, seed) share a cache across strategies: smallest-sv's plain
    sigma scores must not stand in for svd-llm's whitened ones (same shapes, other
    directions), nor eigen's attribution for eigen-whitened's."""
    model = tiny_model("llama")
    batches, shared, spectrum = random_batches(), {}, spectral.SpectrumCache()
    masks = {}
    for name in ("plain", "whitened"):
        s = Strategy(name, "t", matrices="k", scorer="sigma", decomposition=name, compensate=False)
        req = PruneRequest(model=model, matrices=chosen(model, "k"), fraction=0.3, seed=0,
                           strategy=s, batches=batches, spectrum=spectrum, cache=shared)
        scores, _ = req.scores("sigma")
        for m in req.matrices:
            torch.testing.assert_close(scores[m.id], req.factors()[m.id].S)
        assert req.context().factors is not None
        assert all(req.context().factors[k] is f for k, f in req.factors().items())
        edit = spectral_apply(req)
        masks[name] = edit.masks
        edit.restore()
    assert any(not torch.equal(masks["plain"][k], masks["whitened"][k]) for k in masks["plain"])
