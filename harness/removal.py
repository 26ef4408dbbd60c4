"""Measured, not estimated: the calibration loss after removing single singular directions.

A scorer predicts how the loss moves when direction j of head block h is removed; this
module measures it. `spectral.prune` removes it by changing the matrix's output by

    delta(x) = -S[h,j] * U[h,:,j] * (Vh[h,j] . (x - mean))      (mean = 0 without compensation)

(the weight loses S u vᵀ, the bias gains S u vᵀ mean). Editing the weights once per
direction would cost one full pass over the data per direction and one weight copy each;
instead C candidates of one matrix share one forward pass: the calibration batch is
repeated C times along the batch axis and a forward hook adds candidate c's delta to copy c
only. The loss of copy c is the loss of the model without direction c, exactly as
`spectral.prune` would leave it (up to rounding). Rows per pass are bounded by `max_rows`,
so memory stays at one batch of that size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness import objectives
from harness.calibration import Batch, target_logits
from harness.matrices import Matrix
from harness.objectives import RowObjective
from harness.scoring import frozen
from harness.spectral import Factors


def subset(batches: list[Batch], n_examples: int | None) -> list[Batch]:
    """The first `n_examples` examples of `batches` (all when None), batch structure kept."""
    if n_examples is None:
        return list(batches)
    out, left = [], n_examples
    for b in batches:
        if left <= 0:
            break
        take = min(left, b.n_examples)
        out.append(Batch(b.input_ids[:take], b.attention_mask[:take], b.labels[:take]))
        left -= take
    return out


@dataclass
class Measurement:
    base_loss: float  # the objective of the unedited model on the batches
    delta: dict[str, torch.Tensor]  # matrix id -> (n,) loss change of removing each candidate
    rows: int  # sequences forwarded in all (the measurement's cost)
    passes: int  # forward passes


def _batch_objective(model, batch: Batch, objective: RowObjective, copies: int) -> torch.Tensor:
    """Objective of each of `copies` stacked copies of `batch`: (copies,)."""
    ids = batch.input_ids.repeat(copies, 1)
    mask = batch.attention_mask.repeat(copies, 1)
    logits, labels = target_logits(model, batch.labels.repeat(copies, 1), input_ids=ids, attention_mask=mask)
    sums, counts = objective(logits, labels)
    sums, counts = sums.view(copies, -1).sum(1), counts.view(copies, -1).sum(1)
    return (sums / counts.clamp_min(1)).double()


def _removal_hook(m: Matrix, f: Factors, heads: torch.Tensor, index: torch.Tensor,
                  mean: torch.Tensor | None, slots: torch.Tensor, copies: int):
    """A forward hook that removes direction (heads[c], index[c]) from copy slots[c] of the
    `copies` stacked copies of the batch, and leaves the other copies alone."""
    s = f.S[heads, index]  # (n,)
    u = f.U[heads, :, index]  # (n, o)
    v = f.Vh[heads, index, :]  # (n, i)
    pick = torch.arange(heads.numel(), device=heads.device)
    centre = None if mean is None else m.input_blocks(mean.to(f.S.dtype))[heads]  # (n, i)

    def hook(module, args, output):
        x = args[0].reshape(copies, -1, *args[0].shape[1:])[slots].to(f.S.dtype)  # (n, B, T, in)
        xh = m.input_blocks(x)[pick, :, :, heads]  # (n, B, T, i): each copy's own head
        if centre is not None:
            xh = xh - centre[:, None, None, :]
        coeff = torch.einsum("nbti,ni->nbt", xh, v) * s[:, None, None]
        block = -coeff[..., None] * u[:, None, None, :]  # (n, B, T, o)
        if m.block_axis == "out":  # heads side by side in the output: place block h
            full = block.new_zeros(*block.shape[:-1], f.S.shape[0], block.shape[-1])
            full[pick, :, :, heads] = block
            block = full.flatten(-2)
        out = output.clone(memory_format=torch.contiguous_format)
        stacked = out.view(copies, -1, *out.shape[1:])  # (copies, B, T, module out)
        stacked[slots, :, :, m.rows] += block.to(out.dtype)
        return out

    return hook


def measure(
    model: nn.Module,
    matrices: list[Matrix],
    factors: dict[str, Factors],
    batches: list[Batch],
    candidates: dict[str, torch.Tensor],
    input_means: dict[str, torch.Tensor] | None = None,
    max_rows: int = 128,
    objective: RowObjective | None = None,
) -> Measurement:
    """Loss change of removing each candidate direction alone, measured on `batches`.

    `candidates[matrix id]` is an (n, 2) long tensor of (head, index) pairs. The loss of a set
    of batches is the mean of the batches' losses (as scorers average over batches). With
    `input_means`, removal is mean ablation (what bias compensation does), else zeroing.
    Candidates of all matrices are packed into passes of `max_rows` sequences together (one
    hook per matrix present in a pass), so a sparse sample over many matrices stays cheap.
    """
    objective = objective or objectives.get("ce")
    device = next(model.parameters()).device
    batches = [b.to(device) for b in batches]
    per_pass = max(1, max_rows // max(b.n_examples for b in batches))
    present = [m for m in matrices if candidates.get(m.id) is not None and candidates[m.id].numel()]
    cands = [candidates[m.id].to(device).long().view(-1, 2) for m in present]
    owner = torch.cat([torch.full((c.shape[0],), k, device=device) for k, c in enumerate(cands)]) \
        if cands else torch.zeros(0, dtype=torch.long, device=device)
    flat = torch.cat(cands) if cands else torch.zeros(0, 2, dtype=torch.long, device=device)
    means = {m.id: None if input_means is None else input_means[m.id].to(device) for m in present}
    results = torch.zeros(flat.shape[0], dtype=torch.float64, device=device)
    rows = passes = 0
    with frozen(model), torch.no_grad():
        base = torch.stack([_batch_objective(model, b, objective, 1)[0] for b in batches]).mean()
        for start in range(0, flat.shape[0], per_pass):  # a bounded loop over chunks
            chunk, who = flat[start : start + per_pass], owner[start : start + per_pass]
            n = chunk.shape[0]
            handles = []
            try:
                for k in who.unique().tolist():  # the few matrices this chunk touches
                    slots = (who == k).nonzero()[:, 0]
                    m = present[k]
                    handles.append(m.module.register_forward_hook(_removal_hook(
                        m, factors[m.id], chunk[slots, 0], chunk[slots, 1], means[m.id], slots, n)))
                losses = torch.stack([_batch_objective(model, b, objective, n) for b in batches])
            finally:
                for h in handles:
                    h.remove()
            results[start : start + n] = losses.mean(0) - base
            rows += n * sum(b.n_examples for b in batches)
            passes += len(batches)
    split = results.cpu().split([c.shape[0] for c in cands])
    return Measurement(float(base), {m.id: d for m, d in zip(present, split, strict=True)}, rows, passes)


def candidates_from_mask(drop: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{id: (H, r) bool, True = candidate} -> {id: (n, 2) (head, index)} in row-major order."""
    return {i: d.nonzero() for i, d in drop.items()}


def scatter(values: dict[str, torch.Tensor], drop: dict[str, torch.Tensor], fill: float,
            like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Put per-candidate values back on (H, r) grids, `fill` where a direction was no candidate."""
    out = {}
    for i, ref in like.items():
        grid = torch.full(ref.shape, fill, dtype=torch.float64)
        if i in values:
            grid[drop[i].cpu()] = values[i].double()
        out[i] = grid
    return out

