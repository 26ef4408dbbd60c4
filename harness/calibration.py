"""Loss batches for scoring, built from the lm-eval task definition itself.

Any lm-eval task can drive pruning: its training docs, its prompt (`fewshot_context` with
zero shots, so the task's description and `doc_to_text` apply) and its target
(`doc_to_target`, mapped through `doc_to_choice` for multiple-choice tasks). The loss is the
cross-entropy of the target continuation tokens only; prompt and padding are masked out.
Tokenisation follows lm-eval's HFLM (trailing spaces of the prompt move into the target), so
the calibration loss is the loss of the very continuation that evaluation scores.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from harness.errors import HarnessError
from harness.tasks import gold_index, splits

SPLITS = {"train": "training_docs", "validation": "validation_docs", "test": "test_docs"}
IGNORE = -100


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T), right-padded
    attention_mask: torch.Tensor  # (B, T), 1 on real tokens
    labels: torch.Tensor  # (B, T), token id on target tokens, IGNORE elsewhere

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.labels)))

    @property
    def n_examples(self) -> int:
        return self.input_ids.shape[0]


def split_docs(task, split: str) -> list[dict]:
    """The documents of one split, with a clear error when the task lacks it."""
    if split not in SPLITS:
        raise HarnessError(f"unknown split '{split}'; choose from: {', '.join(SPLITS)}")
    available = splits(task)
    if split not in available:
        raise HarnessError(
            f"task '{task.config.task}' has no {split} split; it has: {', '.join(available)}"
        )
    return list(getattr(task, SPLITS[split])())


def example(task, doc: dict) -> tuple[str, str]:
    """(prompt, target continuation) of one document, as lm-eval would score it."""
    context = task.fewshot_context(doc, 0)
    if getattr(task, "multiple_input", 0) and isinstance(context, list):
        # Winogrande-style: the choices are contexts and the continuation is shared, so the
        # loss to lower is the continuation's after the gold context
        context = context[gold_index(task, doc)]
        return context, task.config.target_delimiter + str(task.doc_to_target(doc))
    if not isinstance(context, str):
        raise HarnessError(f"task '{task.config.task}' builds chat prompts; calibration needs text")
    target = task.doc_to_target(doc)
    if task.OUTPUT_TYPE == "multiple_choice":
        target = task.doc_to_choice(doc)[gold_index(task, doc)]
    elif isinstance(target, list):
        target = target[0]
    # lm-eval scores a loglikelihood target as written (the delimiter is only put before
    # multiple-choice answers and between few-shot examples)
    delimiter = "" if task.OUTPUT_TYPE == "loglikelihood" else task.config.target_delimiter
    return context, delimiter + str(target)


def encode(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of prompt and continuation, split the way lm-eval's HFLM splits them."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    prompt = tokenizer(context, add_special_tokens=False)["input_ids"]
    return whole[: len(prompt)], whole[len(prompt) :]


def batches(
    task,
    tokenizer,
    size: int | None = 64,
    batch_size: int = 16,
    seed: int = 0,
    split: str = "train",
    max_length: int = 1024,
) -> list[Batch]:
    """`size` seeded examples of `split` (all when None) as right-padded loss batches."""
    docs = split_docs(task, split)
    if not docs:
        raise HarnessError(f"task '{task.config.task}' has an empty {split} split")
    if size is not None and size < len(docs):
        docs = random.Random(seed).sample(docs, size)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = []
    for doc in docs:
        prompt, target = encode(tokenizer, *example(task, doc))
        ids = (prompt + target)[-max_length:]
        n_target = min(len(target), len(ids))
        rows.append((ids, n_target))
    out = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
        for b, (ids, n_target) in enumerate(chunk):
            input_ids[b, : len(ids)] = torch.tensor(ids)
            attention[b, : len(ids)] = 1
            labels[b, len(ids) - n_target : len(ids)] = torch.tensor(ids[len(ids) - n_target :])
        out.append(Batch(input_ids, attention, labels))
    return out


def target_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the target tokens: position t-1 predicts token t."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).to(dtype), labels[:, 1:].flatten(), ignore_index=IGNORE
    )


def target_logits(model, labels: torch.Tensor, **inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) of a forward pass, the logits only where a target token is predicted.

    A loss over the targets needs the vocabulary's logits at a handful of positions, but a
    plain forward computes them everywhere: (batch, length, vocabulary) floats, 2.9 GB for 16
    RTE prompts of 300 tokens on a 152k vocabulary, and more again for their gradient. Where
    the model's forward takes `logits_to_keep` (transformers' causal LMs do), only the
    positions that predict a target of some row are kept, and the labels are compacted to
    match: column j + 1 of the returned labels is what column j of the logits predicts, with
    an unused last logits column, so every objective's usual shift pairs them exactly as
    before. Otherwise: the full logits and the labels unchanged.
    """
    import inspect

    predicting = (labels[:, 1:] != IGNORE).any(0).nonzero()[:, 0]  # t such that t+1 is a target
    try:
        takes = "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        takes = False
    if not takes or len(predicting) >= labels.shape[1] - 1:
        return model(**inputs).logits, labels
    logits = model(**inputs, logits_to_keep=predicting).logits  # (B, U, V)
    if logits.shape[1] != len(predicting):  # a family that honours only an integer count
        return model(**inputs).logits, labels
    compact = torch.full((labels.shape[0], len(predicting) + 1), IGNORE, dtype=labels.dtype,
                         device=labels.device)
    compact[:, 1:] = labels[:, predicting + 1]
    return torch.cat([logits, logits.new_zeros(logits.shape[0], 1, logits.shape[2])], 1), compact

