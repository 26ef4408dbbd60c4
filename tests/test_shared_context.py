"""Multiple-choice requests that share a context are scored with the context run once, and give
lm-eval's own log-likelihoods and greedy flags (harness/shared_context.py)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import char_tokenizer, tiny_model
from lm_eval.models.huggingface import HFLM
from test_majority import write_task

from harness import evaluate, shared_context
from harness import tasks as task_lib


def requests_of(lm, pairs):
    return [((c, k), lm.tok_encode(c), lm.tok_encode(k)) for c, k in pairs]


PAIRS = [("7 + 5 =", " 12"), ("7 + 5 =", " 2"), ("7 + 5 =", " 120"),  # 3, 2 and 4 tokens
         ("9 x 3 =", " 27"), ("9 x 3 =", " 37"),
         ("1 + 1 =", " 2"), ("1 + 1 =", " 3"),  # differ in the last token: left to lm-eval
         ("4 - 4 =", " 0")]  # a context of its own: left to lm-eval


def forward_rows(model):
    rows: list[tuple[int, int]] = []
    hook = model.register_forward_pre_hook(
        lambda m, a, kw: rows.append(tuple((a[0] if a else kw["input_ids"]).shape)), with_kwargs=True)
    return rows, hook


@pytest.mark.parametrize("family", ["gpt2", "llama", "phi", "qwen2"])
def test_shared_contexts_score_what_lm_eval_scores(family):
    model, tokenizer = tiny_model(family), char_tokenizer()
    lm = evaluate.wrap(model, tokenizer)  # CPU, auto: contexts shared
    plain = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=32)
    requests = requests_of(lm, PAIRS)
    rows, hook = forward_rows(model)
    try:
        got = lm._loglikelihood_tokens(requests)
        seen, rows[:] = list(rows), []
        want = plain._loglikelihood_tokens(requests)
    finally:
        hook.remove()
    np.testing.assert_allclose([g[0] for g in got], [w[0] for w in want], rtol=1e-9, atol=1e-9)
    assert [g[1] for g in got] == [w[1] for w in want]
    # each shared context once (1 row), its choices' later tokens as one batch (3 and 2 rows),
    # then lm-eval's one batch of what is left (" 2"/" 3" in one row); lm-eval alone runs all
    # 8 requests over the longest, 10 tokens, in 7 rows (one for " 2"/" 3", which differ in
    # their last token only)
    assert sorted(seen) == sorted([(1, 7), (3, 3), (1, 7), (2, 2), (2, 8)])
    assert rows == [(7, 10)]


def test_the_split_between_shared_and_lm_eval():
    lengths = [((("c", "k"), [1, 2], [3, 4]), (("c", "j"), [1, 2], [5])),  # shared
               ((("c", "k"), [6], [3, 4]), (("c", "j"), [6], [3, 5])),  # differ in the last token
               ((("c", "k"), [7, 8, 9], [3, 4]),)]  # alone
    requests = [r for group in lengths for r in group]
    assert shared_context.shared_groups(requests, max_length=16) == ([[0, 1]], [2, 3, 4])
    assert shared_context.shared_groups(requests, max_length=2) == ([], [0, 1, 2, 3, 4])  # too long


def test_a_forward_without_a_cache_falls_back_to_lm_eval():
    model, tokenizer = tiny_model("llama"), char_tokenizer()
    lm = evaluate.wrap(model, tokenizer)
    forward = model.forward

    def no_cache(*args, use_cache=None, logits_to_keep=None, **kwargs):
        if use_cache:
            raise TypeError("forward() got an unexpected keyword argument 'use_cache'")
        return forward(*args, **kwargs)

    model.forward = no_cache
    requests = requests_of(lm, PAIRS)
    got = lm._loglikelihood_tokens(requests)
    model.forward = forward
    want = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=32)._loglikelihood_tokens(requests)
    np.testing.assert_allclose([g[0] for g in got], [w[0] for w in want], rtol=1e-9)
    assert not lm.share_contexts  # not tried again on this model


def test_a_multiple_choice_task_gets_the_same_answers(tmp_path):
    name = write_task(tmp_path / "tasks", "multiple_choice")
    yaml = tmp_path / "tasks" / f"{name}.yaml"  # choices of several tokens (one a character)
    yaml.write_text(yaml.read_text().replace('["a", "b", "c"]', '["alpha", "beta", "gamma"]'))
    manager, tasks = task_lib.load([name], str(tmp_path / "tasks"))
    task = tasks[name]
    model, tokenizer = tiny_model("qwen2"), char_tokenizer()
    shared = evaluate.run(evaluate.wrap(model, tokenizer), task, "test", task_manager=manager)
    plain = evaluate.run(evaluate.wrap(model, tokenizer, 32), task, "test", task_manager=manager)
    assert (shared.per_example == plain.per_example).all()
    np.testing.assert_allclose(shared.nll_per_example, plain.nll_per_example, rtol=1e-9)
