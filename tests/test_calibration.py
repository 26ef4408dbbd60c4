"""Calibration batches: only target tokens labelled, and the target lm-eval itself scores."""


import pytest
import torch
from conftest import char_tokenizer
from test_majority import load_task

from harness import calibration
from harness import tasks as task_lib


def test_calibration_labels_only_target_tokens_and_pads_right():
    _, loaded = task_lib.load(["int_mult"])
    tok = char_tokenizer()
    batches = calibration.batches(loaded["int_mult"], tok, size=10, batch_size=4, seed=3)
    assert [b.n_examples for b in batches] == [4, 4, 2]
    for b in batches:
        for row in range(b.n_examples):
            n = int(b.attention_mask[row].sum())
            text = tok.decode(b.input_ids[row, :n])
            target = tok.decode(b.labels[row][b.labels[row] != calibration.IGNORE])
            assert text.endswith(target) and target.startswith(" ")
            prompt = text[: -len(target)]
            left, _, right, _ = prompt.split(" ")
            assert prompt.endswith(" =") and int(left) * int(right) == int(target)
            assert (b.labels[row, n:] == calibration.IGNORE).all()
    again = calibration.batches(loaded["int_mult"], tok, size=10, batch_size=4, seed=3)
    assert torch.equal(again[0].input_ids, batches[0].input_ids)


@pytest.mark.parametrize("kind", ["multiple_choice", "multiple_input", "loglikelihood"])
def test_calibration_scores_the_target_lm_eval_scores(tmp_path, kind):
    """The calibration target is the gold request's continuation, delimiter and all (a
    loglikelihood task's target goes without the delimiter, which lm-eval puts only before
    multiple-choice answers); a multiple-input task's prompt is the gold choice's context."""
    _, task = load_task(tmp_path, kind)
    for doc in task.test_docs():
        ctx = task.fewshot_context(doc, 0)
        requests = task.construct_requests(doc, ctx)
        requests = requests if isinstance(requests, list) else [requests]
        gold = requests[task_lib.gold_index(task, doc)] if kind != "loglikelihood" else requests[0]
        assert calibration.example(task, doc) == gold.arguments
