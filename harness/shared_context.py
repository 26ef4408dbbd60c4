"""Multiple-choice log-likelihoods with each context run once, not once per choice.

lm-eval scores a multiple-choice document as one (context, choice) request per choice, each a
full forward pass over context + choice: CB's three label words cost three passes over a
250-token premise for three 2-token answers. Here the requests that share a context are
scored together: one pass over the context keeps its key/value cache and the logits of its
last position (which predict every choice's first token), then the choices' remaining tokens
run as one batch on copies of that cache. Causal attention makes this the same computation as
lm-eval's: a right-padded choice never reaches the positions before its padding. Floating
point sums run in another order, so log-likelihoods agree to about 1e-6, not bit for bit.

What is not shared goes to lm-eval's own path unchanged: a context with one request (the
arithmetic tasks), choices that differ in their last token only (lm-eval shares those
itself), a pair longer
than the model's window (lm-eval truncates it from the left, per request), a seq2seq model,
or a model whose forward takes no cache.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

Request = tuple[tuple[str, str], list[int], list[int]]


def shared_groups(requests: list[Request], max_length: int) -> tuple[list[list[int]], list[int]]:
    """(groups of request indices sharing a context, the indices left to lm-eval).

    Only contexts whose choices differ before their last token are shared: lm-eval already
    runs one row for requests that differ in the last token only (RTE's " yes"/" no", and
    COPA's " 1"/" 2", which SmolLM2 splits as 'Ġ','1'), in batches, and one context at a time
    here does not beat that (COPA: 1.6x slower; benchmarks/README.md)."""
    by_context: dict[tuple[int, ...], list[int]] = {}
    for i, (_, context, _) in enumerate(requests):
        by_context.setdefault(tuple(context), []).append(i)
    groups, rest = [], []
    for idx in by_context.values():
        fits = all(len(requests[i][1]) + len(requests[i][2]) <= max_length + 1 for i in idx)
        rows = {tuple(requests[i][2][:-1]) for i in idx}  # what lm-eval would run for them
        (groups.append(idx) if len(rows) > 1 and fits else rest.extend(idx))
    return groups, rest


@torch.no_grad()
def score_group(model, context: list[int], continuations: list[list[int]], device,
                softmax_dtype=torch.float32) -> list[tuple[float, bool]]:
    """(log-likelihood, is greedy) of each continuation after `context`, the context run once."""
    out = model(torch.tensor([context], device=device), use_cache=True, logits_to_keep=1)
    first = F.log_softmax(out.logits[:, -1], dim=-1, dtype=softmax_dtype)  # (1, vocab)
    longest = max(len(c) for c in continuations)
    if longest > 1:  # the choices' later tokens, one batch on copies of the context's cache
        cache = out["cache"] if "cache" in out else out.past_key_values  # (transformers 5 / 4)
        cache.batch_repeat_interleave(len(continuations))
        ids = torch.zeros(len(continuations), longest - 1, dtype=torch.long, device=device)
        for row, c in enumerate(continuations):  # right-padded: padding is never attended
            ids[row, : len(c) - 1] = torch.tensor(c[:-1], device=device)
        takes = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        later = F.log_softmax(model(ids, use_cache=True, **{takes: cache}).logits, dim=-1,
                              dtype=softmax_dtype)  # (choices, longest - 1, vocab)
    results = []
    for row, c in enumerate(continuations):
        steps = first if len(c) == 1 else torch.cat([first, later[row, : len(c) - 1]])
        target = torch.tensor(c, device=device)
        ll = steps.gather(-1, target[:, None]).sum()
        results.append((float(ll), bool((steps.argmax(-1) == target).all())))
    return results
