"""`general_nll`: the model's loss on fixed general text, beside every row's task metric.

Pruning for one task can leave its accuracy unchanged while its loss, or everything else the
model does, gets worse (on SmolLM2 COPA eigen-budget-kinds kept accuracy while the answers'
NLL rose from 1.84 to 11.47). So every cell also measures the mean next-token NLL (nats per
token) of the passages in harness/general_text.py with the cell's weights, and every row
carries it and its change from the unpruned model's. The probe is six passages, 536 tokens
with SmolLM2's tokenizer: on the embedded SmolLM2-135M it cost 8-9 s a cell on one thread of a
machine at load 7 on its 2 cores, where the same cell's evaluation took 15-18 s a split (3-4 s
in the reference runs' conditions), so about 2 s on an idle core.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from harness.general_text import PASSAGES

ROWS_PER_PASS = 8  # the whole probe in one pass; logits 8 x ~110 x a 152k vocabulary: ~540 MB


def probe_batch(tokenizer, passages: tuple[str, ...] = PASSAGES) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, attention mask), right-padded, one row per passage."""
    rows = [tokenizer(p, add_special_tokens=True)["input_ids"] for p in passages]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):  # one row per passage, 16 of them
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


@torch.no_grad()
def nll(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Mean next-token NLL over every real token of the probe (nats), in float32 or better."""
    device = next(model.parameters()).device
    ids, mask = (t.to(device) for t in batch)
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    was_training = model.training
    model.eval()
    try:
        for start in range(0, ids.shape[0], ROWS_PER_PASS):
            i, m = ids[start : start + ROWS_PER_PASS], mask[start : start + ROWS_PER_PASS]
            logits = model(input_ids=i, attention_mask=m, use_cache=False).logits[:, :-1]
            target = i[:, 1:].masked_fill(m[:, 1:] == 0, -100)
            total += F.cross_entropy(logits.float().flatten(0, 1), target.flatten(),
                                     ignore_index=-100, reduction="sum").double()
            count += int((target != -100).sum())
    finally:
        model.train(was_training)
    return float(total / max(count, 1))
