"""The built-in objectives (hook `register_objectives`; see harness/objective_loss.py).

    ce           mean cross-entropy of the target tokens (the paper's; the default)
    margin       minus the answer's margin, per example: the smallest, over its target tokens,
                 of logit(correct) - max logit(any other token) under teacher forcing; the
                 greedy answer is exactly right iff that margin is > 0
    first-token  minus the log-probability of the first target token, per example (what the
                 SuperGLUE prompts' accuracy looks at)
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from harness import hookimpl
from harness.calibration import IGNORE


def _shifted(logits: torch.Tensor, labels: torch.Tensor):
    dtype = torch.promote_types(logits.dtype, torch.float32)
    return logits[:, :-1].to(dtype), labels[:, 1:]  # position t-1 predicts token t


def cross_entropy_rows(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits, targets = _shifted(logits, labels)
    ce = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")
    return ce.sum(1), (targets != IGNORE).sum(1).to(ce.dtype)


def margin_rows(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits, targets = _shifted(logits, labels)
    valid = targets != IGNORE
    safe = targets.clamp_min(0)
    correct = logits.gather(-1, safe[..., None])[..., 0]
    others = logits.scatter(-1, safe[..., None], -torch.inf).amax(-1)
    margin = (correct - others).masked_fill(~valid, torch.inf).amin(1)  # the weakest token
    has = valid.any(1)
    return torch.where(has, -margin, torch.zeros_like(margin)), has.to(logits.dtype)


def first_token_rows(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits, targets = _shifted(logits, labels)
    valid = targets != IGNORE
    has = valid.any(1)
    first = valid.to(torch.int8).argmax(1)  # the first target position of each row
    rows = torch.arange(logits.shape[0], device=logits.device)
    logp = torch.log_softmax(logits[rows, first], -1).gather(-1, targets[rows, first].clamp_min(0)[:, None])
    return torch.where(has, -logp[:, 0], torch.zeros_like(logp[:, 0])), has.to(logits.dtype)


@hookimpl
def register_objectives(register):
    register("ce", cross_entropy_rows)
    register("margin", margin_rows)
    register("first-token", first_token_rows)
