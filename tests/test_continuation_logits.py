"""Requests that share no context are scored with the LM head run only at the continuation's
positions, and give lm-eval's own log-likelihoods and greedy flags
(harness/continuation_logits.py)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import char_tokenizer, tiny_model
from lm_eval.models.huggingface import HFLM

from harness import evaluate

PAIRS = [("7 + 5 =", " 12"), ("14 - 4 =", " 10"), ("4 - 4 =", " 0"),
         ("1 + 1 =", " 2"), ("1 + 1 =", " 3"),  # one row: they differ in their last token
         ("123 x 45 =", " 5535")]


def requests_of(lm, pairs):
    return [((c, k), lm.tok_encode(c), lm.tok_encode(k)) for c, k in pairs]


def scored(lm, requests):
    """lm's answers, and the positions its LM head was run at."""
    positions: list[int] = []
    hook = lm.model.get_output_embeddings().register_forward_hook(
        lambda m, args, out: positions.append(args[0].shape[:-1].numel()))
    try:
        return lm._loglikelihood_tokens(requests), sum(positions)
    finally:
        hook.remove()


@pytest.mark.parametrize("family", ["gpt2", "llama", "phi", "qwen2"])
def test_the_head_runs_only_where_a_continuation_is_read(family):
    model, tokenizer = tiny_model(family), char_tokenizer()
    lm = evaluate.wrap(model, tokenizer)  # CPU, auto
    plain = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=32)
    requests = requests_of(lm, PAIRS)
    got, kept = scored(lm, requests)
    want, everywhere = scored(plain, requests)
    np.testing.assert_allclose([g[0] for g in got], [w[0] for w in want], rtol=1e-9, atol=1e-9)
    assert [g[1] for g in got] == [w[1] for w in want]
    assert lm.keep_continuations
    # one row per distinct input, the head at its continuation's tokens only: " 12", " 10",
    # " 0", the shared " 2"/" 3" row (2 tokens) and " 5535"; lm-eval runs it at all 5 rows'
    # padded 14 positions
    assert kept == 3 + 3 + 2 + 2 + 5
    assert everywhere == 5 * 14


def test_a_request_longer_than_the_window_is_cut_as_lm_eval_cuts_it():
    model, tokenizer = tiny_model("llama"), char_tokenizer()
    lm = evaluate.wrap(model, tokenizer)
    plain = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=32)
    lm._max_length = plain._max_length = 8
    requests = requests_of(lm, PAIRS)
    got, _ = scored(lm, requests)
    want, _ = scored(plain, requests)
    assert lm.keep_continuations
    np.testing.assert_allclose([g[0] for g in got], [w[0] for w in want], rtol=1e-9)
    assert [g[1] for g in got] == [w[1] for w in want]


def test_a_forward_that_ignores_the_mask_falls_back_to_lm_eval():
    """An older transformers swallows `logits_to_keep` and returns every position's logits: the
    shape gives it away, and lm-eval's path answers from then on."""
    model, tokenizer = tiny_model("llama"), char_tokenizer()
    lm = evaluate.wrap(model, tokenizer)
    forward = model.forward
    model.forward = lambda *args, logits_to_keep=None, **kwargs: forward(*args, **kwargs)
    try:
        requests = requests_of(lm, PAIRS)
        got, _ = scored(lm, requests)
        assert not lm.keep_continuations
        model.forward = forward
        want, _ = scored(HFLM(pretrained=model, tokenizer=tokenizer, batch_size=32), requests)
    finally:
        model.forward = forward
    np.testing.assert_allclose([g[0] for g in got], [w[0] for w in want], rtol=1e-9)
    assert [g[1] for g in got] == [w[1] for w in want]


def test_a_batch_keeps_its_kept_logits_within_the_budget(monkeypatch):
    """The memory cap counts the positions the head runs at: 5 rows whose longest continuation
    is 5 tokens, under a budget for 2 such rows, run as 2 + 2 + 1 rows with the same answers."""
    model, tokenizer = tiny_model("llama"), char_tokenizer()
    lm = evaluate.wrap(model, tokenizer)
    vocab = model.get_output_embeddings().weight.shape[0]
    requests = requests_of(lm, PAIRS)
    free, _ = scored(lm, requests)
    monkeypatch.setattr(evaluate, "LOGITS_BUDGET", 2 * 4 * 5 * vocab * 2)
    rows: list[int] = []
    hook = model.register_forward_pre_hook(
        lambda m, args, kwargs: rows.append((args[0] if args else kwargs["input_ids"]).shape[0]),
        with_kwargs=True)
    try:
        capped, _ = scored(lm, requests)
    finally:
        hook.remove()
    assert rows == [2, 2, 1] and lm.keep_continuations
    np.testing.assert_allclose([c[0] for c in capped], [f[0] for f in free], rtol=1e-9)
