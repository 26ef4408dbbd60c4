"""An eigenharness plugin: the `act-energy` strategy and its `activation-energy` scorer, and
the `rms-svd` strategy with its `rms-scaled` decomposition.

Activation-weighted energy: singular direction j of a head block writes S[j] * (v_j . x) into
the output, so its typical contribution on the task's own inputs is

    score[h, j] = S[h, j] * mean over calibration tokens of |Vh[h, j] . x[h]|

Directions the task's inputs barely excite score low and are pruned first, whatever their
singular value. No gradient is needed: one forward pass per calibration batch.

A data-aware basis: `rms-scaled` weighs each input channel by its root mean square on the
calibration tokens before the SVD (W T = U S V'ᵀ with T = diag(rms)) and hands back
Factors(U, S, V'ᵀ T⁻¹), so the same scorers, pruners and bias compensation run in it; `rms-svd`
truncates its smallest singular values.

Only the public API is used: `harness.hookimpl`, `harness.strategy.Strategy`, the
`ScoringContext` the core hands to a scorer (`ctx.passes()`, `ctx.factors`, `ctx.matrices`),
`harness.decompositions.uses` and `harness.spectral.Factors`.
"""

from __future__ import annotations

import torch

from harness import hookimpl
from harness.decompositions import Activations, uses
from harness.scoring import ScoringContext
from harness.spectral import Factors
from harness.strategy import Strategy


def activation_energy(ctx: ScoringContext) -> dict[str, torch.Tensor]:
    """{matrix id: (heads, rank) scores}: S times the mean |v . x| over real (unpadded) tokens."""
    total = {m.id: torch.zeros_like(ctx.factors[m.id].S) for m in ctx.matrices}
    tokens = 0
    for cap in ctx.passes(backward=False):
        valid = cap.valid[..., None, None]  # (B, T, 1, 1): padding contributes nothing
        for m in ctx.matrices:
            x = m.input_blocks(cap.inputs[m.id])  # (B, T, H, i): what each head block reads
            vx = torch.einsum("bthi,hji->bthj", x, ctx.factors[m.id].Vh).abs()  # |v_j . x|
            total[m.id] += (vx * valid).sum((0, 1))
        tokens += int(cap.valid.sum())
    return {k: ctx.factors[k].S * v / max(tokens, 1) for k, v in total.items()}


@uses("gram")
def rms_scaled(blocks: torch.Tensor, activations: Activations, options: dict) -> Factors:
    """(H, o, i) head blocks -> factors in the basis T = diag(rms of each input channel); a
    channel that never fired keeps a tiny scale, so T stays invertible."""
    rms = activations.gram.diagonal(dim1=-2, dim2=-1).sqrt()  # (H, i)
    rms = torch.maximum(rms, rms.amax(-1, keepdim=True).clamp_min(1e-30) * 1e-6)
    U, S, Vh = torch.linalg.svd(blocks.double() * rms[:, None, :], full_matrices=False)
    return Factors(U, S, Vh / rms[:, None, :])  # W = U S (Vh T⁻¹)


@hookimpl
def register_decompositions(register):
    register("rms-scaled", rms_scaled)


@hookimpl
def register_scorers(register):
    register("activation-energy", activation_energy)


@hookimpl
def register_strategies(register):
    register(Strategy(
        "act-energy", "activation-weighted energy S*|v.x| (example plugin): K matrices, global "
        "fraction, bias compensation", matrices="k", scorer="activation-energy",
    ))
    register(Strategy(
        "rms-svd", "smallest singular values of the RMS-scaled weights (example plugin)",
        matrices="k", scorer="sigma", decomposition="rms-scaled", compensate=False, baseline=True,
    ))
