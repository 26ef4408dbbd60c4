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

The copies are identical until the first layer a candidate edits, so they are made there, not
at the input: the batch runs once through the layers below, and a pre-hook on each decoder
layer from the first edited one on tiles every batch-sized tensor it receives (hidden states,
attention mask, rotary tables, position ids) `copies` times. That cuts a pass's cost by the
share of layers below the edit (about half, averaged over the layers); a model whose layer
list is not found, or whose layers reject the tiled inputs, is measured the plain way.

Copies multiply padding too: a calibration batch is padded to its longest row, and the first 8
of Qwen's 16 CB prompts for seed 1 carry 880 real tokens in 8 x 277. A copy's loss pools its
rows' sums and counts, so the rows can be forwarded in any grouping to the same result: each
batch is regrouped once by length, every group trimmed to its longest row (`length_groups`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from harness import objective_loss
from harness import progress as notes
from harness.calibration import IGNORE, Batch, target_logits
from harness.discovery import config_shape, layer_list
from harness.matrices import Matrix
from harness.objective_loss import RowObjective
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


def length_groups(batch: Batch, slack: float = 1.25) -> list[Batch]:
    """`batch`'s rows regrouped by length, each group cut to its longest row's width.

    Rows are taken longest first and a group closes when its padded area would pass `slack`
    times its real tokens, so a batch of equal lengths stays one group (one forward, as before)
    and a long outlier stops padding the short rows. Runs once per measurement, not per pass.
    """
    used = (batch.attention_mask != 0) | (batch.labels != IGNORE)
    last = torch.where(used, torch.arange(used.shape[1], device=used.device), -1).amax(1)
    widths = (last + 1).clamp_min(1)  # right-padded: a row's real length; left-padded: all
    order = torch.argsort(widths, descending=True, stable=True).tolist()
    groups: list[list[int]] = []
    real = 0
    for r in order:  # at most a batch's rows
        w = int(widths[r])
        if groups and int(widths[groups[-1][0]]) * (len(groups[-1]) + 1) <= slack * (real + w):
            groups[-1].append(r)
            real += w
        else:
            groups.append([r])
            real = w
    out = []
    for rows in groups:
        take = torch.tensor(sorted(rows), device=batch.input_ids.device)  # rows keep their order
        width = int(widths[rows[0]])
        out.append(Batch(batch.input_ids[take, :width], batch.attention_mask[take, :width],
                         batch.labels[take, :width]))
    return out


def _group_objective(model, batch: Batch, objective: RowObjective, copies: int,
                     tile_from: list[nn.Module] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Objective sums and counts of each of `copies` stacked copies of `batch`: two (copies,).
    With `tile_from` (the decoder layers from the first edited one on), the copies are made at
    those layers' inputs instead of the model's."""
    labels = batch.labels.repeat(copies, 1)
    if tile_from is None or copies == 1:
        ids = batch.input_ids.repeat(copies, 1)
        mask = batch.attention_mask.repeat(copies, 1)
        logits, labels = target_logits(model, labels, input_ids=ids, attention_mask=mask)
    else:
        with _tiled(tile_from, batch.n_examples, copies):
            logits, labels = target_logits(model, labels, input_ids=batch.input_ids,
                                           attention_mask=batch.attention_mask, use_cache=False)
        if logits.shape[0] != labels.shape[0]:  # the layers' inputs were not what we tiled
            raise _NotTileable(f"{logits.shape[0]} rows out, {labels.shape[0]} expected")
    sums, counts = objective(logits, labels)
    return sums.view(copies, -1).sum(1).double(), counts.view(copies, -1).sum(1).double()


def _batch_objective(model, groups: list[Batch], objective: RowObjective, copies: int,
                     tile_from: list[nn.Module] | None = None) -> torch.Tensor:
    """Objective of each of `copies` stacked copies of one batch, given as its length groups:
    (copies,), the batch's pooled sums over its pooled counts."""
    parts = [_group_objective(model, g, objective, copies, tile_from) for g in groups]
    sums = torch.stack([p[0] for p in parts]).sum(0)
    counts = torch.stack([p[1] for p in parts]).sum(0)
    return sums / counts.clamp_min(1)


class _NotTileable(RuntimeError):
    """The model's layers did not take tiled inputs: measure with copies made at the input."""


def _tile(value, rows: int, copies: int):
    """`value` with every tensor of `rows` rows (ndim >= 2: a batch axis, not a length-`rows`
    vector) tiled `copies` times along it, inside tuples too (rotary (cos, sin))."""
    if isinstance(value, torch.Tensor):
        if value.ndim >= 2 and value.shape[0] == rows:
            return value.repeat(copies, *([1] * (value.ndim - 1)))
        return value
    if isinstance(value, tuple | list):
        return type(value)(_tile(v, rows, copies) for v in value)
    return value


@contextmanager
def _tiled(layers: list[nn.Module], rows: int, copies: int) -> Iterator[None]:
    """Pre-hooks that tile the batch-sized inputs of `layers` (already tiled ones have
    rows * copies rows and pass unchanged, so only the first layer's hidden states grow)."""
    def hook(module, args, kwargs):
        return _tile(args, rows, copies), {k: _tile(v, rows, copies) for k, v in kwargs.items()}

    handles = [layer.register_forward_pre_hook(hook, with_kwargs=True) for layer in layers]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _layer_of(model: nn.Module, matrices: list[Matrix]) -> tuple[list[nn.Module], dict[str, int]] | None:
    """The decoder layers and the index of the layer holding each matrix, or None where the
    layer list is not found or a matrix sits outside it."""
    try:
        found = layer_list(model, config_shape(model.config).layers)
    except Exception:  # a model without a transformers config: no prefix reuse
        return None
    if found is None:
        return None
    layers = list(found[1])
    where = {id(mod): i for i, layer in enumerate(layers) for mod in layer.modules()}
    index = {m.id: where.get(id(m.module)) for m in matrices}
    if any(v is None for v in index.values()):
        return None
    return layers, index


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
    reuse_prefix: bool = True,
    regroup: bool = True,
) -> Measurement:
    """Loss change of removing each candidate direction alone, measured on `batches`.

    `candidates[matrix id]` is an (n, 2) long tensor of (head, index) pairs. The loss of a set
    of batches is the mean of the batches' losses (as scorers average over batches). With
    `input_means`, removal is mean ablation (what bias compensation does), else zeroing.
    Candidates of all matrices are packed into passes of `max_rows` sequences together (one
    hook per matrix present in a pass), so a sparse sample over many matrices stays cheap.
    `reuse_prefix=False` makes the copies at the model's input (the reference the tiled
    path is tested against); `regroup=False` forwards each batch padded as it came.
    """
    objective = objective or objective_loss.get("ce")
    device = next(model.parameters()).device
    batches = [b.to(device) for b in batches]
    grouped = [length_groups(b) if regroup else [b] for b in batches]
    per_pass = max(1, max_rows // max(b.n_examples for b in batches))
    present = [m for m in matrices if candidates.get(m.id) is not None and candidates[m.id].numel()]
    cands = [candidates[m.id].to(device).long().view(-1, 2) for m in present]
    owner = torch.cat([torch.full((c.shape[0],), k, device=device) for k, c in enumerate(cands)]) \
        if cands else torch.zeros(0, dtype=torch.long, device=device)
    flat = torch.cat(cands) if cands else torch.zeros(0, 2, dtype=torch.long, device=device)
    means = {m.id: None if input_means is None else input_means[m.id].to(device) for m in present}
    results = torch.zeros(flat.shape[0], dtype=torch.float64, device=device)
    located = _layer_of(model, present) if reuse_prefix else None
    rows = passes = 0
    with frozen(model), torch.no_grad():
        base = torch.stack([_batch_objective(model, g, objective, 1)[0] for g in grouped]).mean()
        counter = notes.Counter("measuring candidates", flat.shape[0])  # on the bar, with time left
        for start in range(0, flat.shape[0], per_pass):  # a bounded loop over chunks
            counter.update(start)
            chunk, who = flat[start : start + per_pass], owner[start : start + per_pass]
            n = chunk.shape[0]
            handles = []
            try:
                touched = who.unique().tolist()  # the few matrices this chunk touches
                for k in touched:
                    slots = (who == k).nonzero()[:, 0]
                    m = present[k]
                    handles.append(m.module.register_forward_hook(_removal_hook(
                        m, factors[m.id], chunk[slots, 0], chunk[slots, 1], means[m.id], slots, n)))
                tile_from = None
                if located is not None:
                    layers, index = located
                    tile_from = layers[min(index[present[k].id] for k in touched):]
                try:
                    losses = torch.stack([_batch_objective(model, g, objective, n, tile_from)
                                          for g in grouped])
                except torch.OutOfMemoryError:
                    raise
                except (_NotTileable, RuntimeError, ValueError, IndexError, TypeError):
                    if tile_from is None:
                        raise
                    located = None  # this model's layers take no tiled inputs: the plain way
                    losses = torch.stack([_batch_objective(model, g, objective, n) for g in grouped])
            finally:
                for h in handles:
                    h.remove()
            results[start : start + n] = losses.mean(0) - base
            rows += n * sum(b.n_examples for b in batches)
            passes += sum(len(g) for g in grouped)
    split = results.cpu().split([c.shape[0] for c in cands])
    return Measurement(float(base), {m.id: d for m, d in zip(present, split, strict=True)}, rows, passes)


def candidates_from_mask(drop: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{id: (H, r) bool, True = candidate} -> {id: (n, 2) (head, index)} in row-major order."""
    return {i: d.nonzero() for i, d in drop.items()}
