"""Built-in singular-value scorers. Lower scores are pruned first.

Notation: for a head block with factors U (o, r), S (r,), Vh (r, i), direction j writes
S[j] * U[:, j] * (Vh[j] . x) into the output. With g = dL/d(output), its first-order effect
on the loss when x changes by dx is  S[j] * (g . U[:, j]) * (Vh[j] . dx).
All scorers are vectorised over examples, positions, heads and singular values:

    gu[b,t,h,j] = sum_o g[b,t,h,o] U[h,o,j]        "btho,hoj->bthj"
    vx[b,t,h,j] = sum_i x[b,t,h,i] Vh[h,j,i]       "bthi,hji->bthj"
"""

from __future__ import annotations

import torch

from harness import hookimpl
from harness.errors import HarnessError
from harness.preflight import needs
from harness.scoring import ScoringContext


def _projections(ctx: ScoringContext, cap, m):
    f = ctx.factors[m.id]
    g = m.output_blocks(cap.grads[m.id])  # (B, T, H, o)
    x = m.input_blocks(cap.inputs[m.id])  # (B, T, H, i)
    gu = torch.einsum("btho,hoj->bthj", g, f.U)
    return f, x, gu


@needs(min_batch_examples=2)  # checked before the model loads (harness/preflight.py)
def attribution(ctx: ScoringContext) -> dict[str, torch.Tensor]:
    """The paper's attribution patching: the corrupted input is the previous example of the
    batch (the batch rolled by one); max over examples and positions, as the reference code."""
    if any(b.n_examples < 2 for b in ctx.batches):
        raise HarnessError(
            "the attribution scorer compares each example with another of its batch; "
            "use a calibration batch size of at least 2 and a calibration size of at least 2"
        )
    best = {m.id: torch.full_like(ctx.factors[m.id].S, -torch.inf) for m in ctx.matrices}
    for cap in ctx.passes(backward=True):
        both = (cap.valid & cap.valid.roll(1, 0))[..., None, None]  # (B, T, 1, 1)
        for m in ctx.matrices:
            f, x, gu = _projections(ctx, cap, m)
            dx = x.roll(1, 0) - x  # x[b-1] - x[b]
            s = gu * torch.einsum("bthi,hji->bthj", dx, f.Vh) * f.S
            best[m.id] = torch.maximum(best[m.id], s.masked_fill(~both, -torch.inf).amax((0, 1)))
    return best


def gradient(ctx: ScoringContext) -> dict[str, torch.Tensor]:
    """First-order loss change of zeroing S[j]: -S[j] u_j^T (dL/dW) v_j, averaged over batches."""
    total = {m.id: torch.zeros_like(ctx.factors[m.id].S) for m in ctx.matrices}
    for cap in ctx.passes(backward=True):
        for m in ctx.matrices:
            f, x, gu = _projections(ctx, cap, m)
            vx = torch.einsum("bthi,hji->bthj", x, f.Vh)
            total[m.id] -= f.S * (gu * vx).sum((0, 1))
    return {k: v / len(ctx.batches) for k, v in total.items()}


def mean_ablation(ctx: ScoringContext) -> dict[str, torch.Tensor]:
    """Attribution against the mean input instead of a rolled batch, summed over tokens.

    sum_bt S (gu)(Vh (mean - x)) = S [ (Vh mean) * sum_bt gu - sum_bt gu*vx ]: one pass, since
    the mean is only needed at the end.
    """
    sum_gu = {m.id: torch.zeros_like(ctx.factors[m.id].S) for m in ctx.matrices}
    sum_guvx = {m.id: torch.zeros_like(ctx.factors[m.id].S) for m in ctx.matrices}
    for cap in ctx.passes(backward=True):
        keep = cap.valid[..., None, None]
        for m in ctx.matrices:
            f, x, gu = _projections(ctx, cap, m)
            gu = gu * keep
            sum_gu[m.id] += gu.sum((0, 1))
            sum_guvx[m.id] += (gu * torch.einsum("bthi,hji->bthj", x, f.Vh)).sum((0, 1))
    means = ctx.input_means()
    scores = {}
    for m in ctx.matrices:
        f = ctx.factors[m.id]
        mean_blocks = m.input_blocks(means[m.id])  # (H, i)
        v_mean = torch.einsum("hji,hi->hj", f.Vh, mean_blocks)
        scores[m.id] = f.S * (v_mean * sum_gu[m.id] - sum_guvx[m.id]) / len(ctx.batches)
    return scores


def sigma(ctx: ScoringContext) -> dict[str, torch.Tensor]:
    """The singular value itself: smallest first, i.e. rank truncation."""
    return {m.id: ctx.factors[m.id].S.clone() for m in ctx.matrices}


def random(ctx: ScoringContext) -> dict[str, torch.Tensor]:
    """Uniform random scores from a generator seeded with the run's seed."""
    gen = torch.Generator().manual_seed(ctx.seed)
    return {m.id: torch.rand(ctx.factors[m.id].S.shape, generator=gen) for m in ctx.matrices}


@hookimpl
def register_scorers(register):
    register("attribution", attribution)
    register("gradient", gradient)
    register("mean-ablation", mean_ablation)
    register("sigma", sigma)
    register("random", random)
