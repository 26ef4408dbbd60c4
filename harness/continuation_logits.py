"""lm-eval's log-likelihoods with the LM head run only where a continuation is read.

lm-eval computes logits, and their log-softmax, at every position of every row, then reads
the few that predict the continuation. With Qwen's 152k-token vocabulary the head is 4 of the
13.4 s of a 64-example int_mult evaluation, almost all of it spent on context positions
nothing reads (`benchmarks/loglikelihood_paths.py --path continuation-logits` measures both
paths). Here the model is asked for the continuation's positions only, through transformers'
`logits_to_keep` given as a (rows, positions) mask.

Everything else is lm-eval's: the same rows (context + continuation without its last token,
cut from the left to the model's window), right-padded and without an attention mask, so the
hidden states are the same computation; requests with the same row share it, as lm-eval's
one-token grouping does; rows run longest first. The head's matrix product runs on fewer rows,
so log-likelihoods agree with lm-eval's to float rounding (about 1e-6), not bit for bit.

A forward that cannot keep a mask of positions (an older transformers, a custom model) raises
here, and the caller goes back to lm-eval's own path (harness/evaluate.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from harness.shared_context import Request


def rows_of(requests: list[Request], max_length: int) -> dict[tuple[int, ...], list[int]]:
    """The row each request runs in (what lm-eval feeds the model for it), and who shares it."""
    rows: dict[tuple[int, ...], list[int]] = {}
    for i, (_, context, continuation) in enumerate(requests):
        if not context or not continuation or len(continuation) > max_length:
            raise ValueError("a request lm-eval itself would refuse")  # let it say so
        rows.setdefault(tuple((context + continuation)[-(max_length + 1):][:-1]), []).append(i)
    return rows


@torch.no_grad()
def score(model, requests: list[Request], max_length: int, device, rows_per_batch,
          softmax_dtype=torch.float32) -> list[tuple[float, bool]]:
    """(log-likelihood, is greedy) of each request, as lm-eval's `_loglikelihood_tokens` gives
    them. `rows_per_batch(positions_kept_per_row)` caps a batch by its logits' memory."""
    rows = rows_of(requests, max_length)
    order = sorted(rows, key=len, reverse=True)  # longest first: the least padding
    kept = {row: max(len(requests[i][2]) for i in rows[row]) for row in order}
    ll = torch.zeros(len(requests), dtype=torch.float64)
    missed = torch.zeros(len(requests), dtype=torch.long)
    step = rows_per_batch(max(kept.values(), default=1))
    for start in range(0, len(order), step):
        batch = order[start:start + step]
        ids = pad_sequence([torch.tensor(r) for r in batch], batch_first=True).to(device)
        lengths = torch.tensor([len(r) for r in batch])
        n_kept = torch.tensor([kept[r] for r in batch])
        position = torch.arange(ids.shape[1])
        keep = (position >= (lengths - n_kept)[:, None]) & (position < lengths[:, None])
        logits = model(ids, logits_to_keep=keep.to(device)).logits
        logits = logits.reshape(-1, logits.shape[-1])
        if logits.shape[0] != int(keep.sum()):
            raise ValueError("the forward ignored logits_to_keep's mask")
        logprobs = F.log_softmax(logits, dim=-1, dtype=softmax_dtype)  # (kept positions, vocab)
        # a request's tokens are the last len(continuation) of its row's kept positions
        ends = torch.cumsum(n_kept, 0).tolist()
        members = [(i, ends[b]) for b, row in enumerate(batch) for i in rows[row]]
        who = torch.tensor([i for i, _ in members for _ in requests[i][2]])
        flat = torch.tensor([p for i, end in members for p in range(end - len(requests[i][2]), end)])
        target = torch.tensor([t for i, _ in members for t in requests[i][2]])
        flat, target = flat.to(logprobs.device), target.to(logprobs.device)
        ll.index_add_(0, who, logprobs[flat, target].double().cpu())
        missed.index_add_(0, who, (logprobs[flat].argmax(-1) != target).long().cpu())
    return [(float(x), m == 0) for x, m in zip(ll.tolist(), missed.tolist(), strict=True)]
