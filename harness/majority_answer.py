"""The floor no pruning result means anything below: always give the training split's most
common answer.

A pruned model that "gains" on a classification task may only have learnt to prefer one
label; if that label is the common one, accuracy rises without the model reading the input.
Answering every example with the training split's majority answer measures that floor with
no model at all. It runs through lm-eval like the model does (`MajorityLM` answers the
task's own requests), so its rows carry the task's own metric and per-example outcomes, and
the leaderboard's paired tests treat it as one more baseline.

What "the answer" is depends on how the task is scored:
  multiple_choice   the gold choice's index (COPA's "the first alternative", CB's "contradiction")
  loglikelihood     the target continuation's text (" 42")
  generate_until    the target's text, generated verbatim
Ties go to the smallest index, or the first text in sorted order, so it is deterministic.
"""

from __future__ import annotations

from collections import Counter

from harness.calibration import split_docs
from harness.errors import HarnessError
from harness.tasks import gold_index

SCORED = ("multiple_choice", "loglikelihood", "generate_until")
# what a non-majority choice scores: finite, so metrics that divide it (acc_norm) stay ordered
UNLIKELY = -1e4


def target_text(task, doc: dict) -> str:
    """The text a loglikelihood or generation document is scored against (lm-eval's request
    continuation is the target as written, without the target delimiter)."""
    target = task.doc_to_target(doc)
    return str(target[0] if isinstance(target, list) else target)


def answer(task) -> int | str:
    """The training split's most common answer (an index for multiple choice, else a text)."""
    name = task.config.task
    if task.OUTPUT_TYPE not in SCORED:
        raise HarnessError(f"majority: task '{name}' is scored as {task.OUTPUT_TYPE}, where a constant "
                           f"answer means nothing; it takes tasks scored as: {', '.join(SCORED)}")
    docs = split_docs(task, "train")  # a clear error naming the splits when there is none
    if not docs:
        raise HarnessError(f"majority: task '{name}' has an empty training split")
    if task.OUTPUT_TYPE == "multiple_choice":
        counts = Counter(gold_index(task, d) for d in docs)
    else:
        counts = Counter(target_text(task, d) for d in docs)
    top = max(counts.values())
    return min(a for a, c in counts.items() if c == top)


def majority_lm(task):
    """An lm-eval LM that answers `task` with its training split's majority answer."""
    from lm_eval.api.model import LM

    chosen = answer(task)
    by_index = task.OUTPUT_TYPE == "multiple_choice"

    class MajorityLM(LM):
        """Scores the majority answer as certain and every other continuation as unlikely."""

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            def picked(r) -> bool:
                return r.idx == chosen if by_index else r.arguments[1] == chosen

            return [(0.0, True) if picked(r) else (UNLIKELY, False) for r in requests]

        def generate_until(self, requests, disable_tqdm: bool = False):
            return [str(chosen)] * len(requests)

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            raise HarnessError("majority has no likelihood of a whole text (perplexity tasks)")

    lm = MajorityLM()
    lm.answer = chosen
    return lm
