"""Built-in bases for the singular values: plain SVD, ASVD's activation scaling, SVD-LLM's whitening.

Each factors a batch of head blocks W (H, o, i) as W T = U S V'ᵀ and returns
Factors(U, S, V'ᵀ T⁻¹) (harness/decompositions.py says why that keeps everything else
unchanged). The SVDs run in float64: the transform can be badly conditioned, and the factors
are cast back to the weights' working precision by the core, which checks U S Vh = W.
"""

from __future__ import annotations

import torch

from harness import hookimpl
from harness.decompositions import Activations, uses
from harness.spectral import Factors
from harness.strategy import Strategy

JITTER = 1e-6  # relative to the mean input energy (the Gram diagonal's mean) of each block
ATTEMPTS = 8  # jitter x 10 each time; 1e-6 .. 10 times the mean energy covers a zero Gram


def plain(blocks: torch.Tensor, activations: Activations | None, options: dict) -> Factors:
    """Today's SVD per head: the smallest directions are those of least weight norm."""
    U, S, Vh = torch.linalg.svd(blocks, full_matrices=False)
    return Factors(U, S, Vh)


def _factor_through(blocks: torch.Tensor, t: torch.Tensor, t_solve) -> Factors:
    """SVD of W T (float64), the input side mapped back by `t_solve(Vh) = Vh T⁻¹`."""
    U, S, Vh = torch.linalg.svd(blocks.double() @ t, full_matrices=False)
    return Factors(U, S, t_solve(Vh))


@uses("abs_mean", alpha=0.5)
def scaled(blocks: torch.Tensor, activations: Activations | None, options: dict) -> Factors:
    """ASVD: T = diag(mean|x|^alpha) (ASVD's default alpha is 0.5), so channels that carry
    large activations weigh more in what the SVD keeps. A channel that never fired would make
    T singular: its scale is floored at 1e-6 of the block's largest."""
    s = activations.abs_mean.double() ** float(options["alpha"])  # (H, i)
    s = torch.maximum(s, s.amax(-1, keepdim=True).clamp_min(1e-30) * 1e-6)
    return _factor_through(blocks, torch.diag_embed(s), lambda vh: vh / s[:, None, :])


def whitening(gram: torch.Tensor) -> torch.Tensor:
    """Lower Cholesky factors L (H, i, i) of each block's Gram matrix G = E[x xᵀ], float64.

    G is singular whenever the calibration tokens span fewer than i dimensions (fewer tokens
    than channels, a dead channel): the Cholesky of such a G fails, as SVD-LLM's users found
    on llama-13b ("singular matrix"), and they fixed it with float64 and a diagonal shift. So
    do we, per block that fails and only there: G + λ I with λ = 1e-6 times the block's mean
    diagonal (at least the smallest eigenvalue's deficit), ten times larger on each retry. A
    block the data never reached (G = 0) gets L = sqrt(λ) I, the plain SVD up to scale.
    """
    g = gram.double()
    eye = torch.eye(g.shape[-1], dtype=g.dtype, device=g.device)
    L, info = torch.linalg.cholesky_ex(g)
    failed = info != 0  # (H,)
    if bool(failed.any()):
        scale = g.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-30)  # (H,)
        deficit = (-torch.linalg.eigvalsh(g[failed])[:, 0]).clamp_min(0)
        lam = deficit + JITTER * scale[failed]
        for _ in range(ATTEMPTS):  # bounded retries, all failing blocks at once
            L_f, info_f = torch.linalg.cholesky_ex(g[failed] + lam[:, None, None] * eye)
            if not bool(info_f.any()):
                break
            lam = torch.where(info_f != 0, lam * 10, lam)
        L[failed] = L_f
    return L


@uses("gram")
def whitened(blocks: torch.Tensor, activations: Activations | None, options: dict) -> Factors:
    """SVD-LLM: T = L, the Cholesky factor of the inputs' Gram matrix, so that
    ||(W - W') X||² over the calibration tokens is the sum of the removed S²: the smallest
    singular values are those whose removal changes the output least on the data."""
    L = whitening(activations.gram)
    return _factor_through(
        blocks, L, lambda vh: torch.linalg.solve_triangular(L, vh, upper=False, left=False))


@hookimpl
def register_decompositions(register):
    register("plain", plain)
    register("scaled", scaled)
    register("whitened", whitened)


@hookimpl
def register_strategies(register):
    # The data-aware baselines: rank truncation in their basis, on eigen's matrices and budget,
    # without bias compensation (as published); the calibration sample is the seed's, so seeded.
    register(Strategy("asvd", "baseline: smallest singular values of the activation-scaled "
                      "weights (ASVD, alpha 0.5)", matrices="k", scorer="sigma",
                      decomposition="scaled", compensate=False, baseline=True,
                      options={"alpha": 0.5}))
    register(Strategy("svd-llm", "baseline: smallest singular values of the whitened weights "
                      "(SVD-LLM: each removes its own output error on the data)", matrices="k",
                      scorer="sigma", decomposition="whitened", compensate=False, baseline=True))
    register(Strategy("eigen-whitened", "eigen's attribution scores in SVD-LLM's whitened basis: "
                      "does attribution help once the basis knows the data?", matrices="k",
                      scorer="attribution", decomposition="whitened"))
