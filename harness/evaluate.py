"""Evaluate an in-memory model with lm-eval and keep the per-example results.

Traps handled here: HFLM re-ties the input and output embeddings when it wraps a model, so
wrap once, before any pruning (`wrap`), and prune the wrapped model; lm-eval's response cache
keys ignore the weights, so it is never used (`use_cache=None`): every pruned variant is
really evaluated.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from dataclasses import dataclass

import numpy as np

from harness import continuation_logits, shared_context
from harness import progress as notes
from harness import tasks as task_lib


@dataclass
class EvalResult:
    task: str
    split: str
    metric: str
    value: float
    stderr: float
    n: int
    per_example: np.ndarray  # the metric of each example, ordered by doc_id (paired tests)
    seconds: float
    # negative log-likelihood of the target per example (nats, summed over its tokens; for
    # multiple choice the gold choice's); NaN for generation tasks, which have no likelihood
    nll_per_example: np.ndarray | None = None

    @property
    def nll(self) -> float:
        """Mean target NLL: accuracy and loss can move apart under pruning, so rows carry both."""
        if self.nll_per_example is None or not len(self.nll_per_example):
            return float("nan")
        return float(np.mean(self.nll_per_example))


def quiet_git_probe() -> None:
    """lm-eval stamps results with the working directory's commit by running `git describe`,
    whose `fatal: not a git repository` (or `Not a valid object name HEAD`) goes straight to
    the user's terminal; the same probe with git's stderr discarded replaces it."""
    import subprocess

    from lm_eval import evaluator
    from lm_eval.loggers.utils import get_commit_from_path

    if getattr(evaluator.get_git_commit_hash, "quiet", False):
        return

    def get_git_commit_hash() -> str | None:
        try:
            out = subprocess.check_output(["git", "describe", "--always"], stderr=subprocess.DEVNULL)
            return out.strip().decode()
        except (subprocess.CalledProcessError, OSError):
            return get_commit_from_path(os.getcwd())

    get_git_commit_hash.quiet = True
    evaluator.get_git_commit_hash = get_git_commit_hash


def env_probe_once() -> None:
    """lm-eval stamps every evaluation's results with torch's environment report, which runs
    about a dozen subprocesses (pip list, nvidia-smi, ...): 0.8 s a call here, more than 5% of
    a 64-example validation pass on Qwen and 37 times per cell in a budget search. The harness
    never reads it, and it cannot change within a process, so it is taken once per process."""
    from lm_eval import evaluator

    if getattr(evaluator.add_env_info, "once", False):
        return
    probe, taken = evaluator.add_env_info, {}

    def add_env_info(storage: dict) -> None:
        if not taken:
            probe(taken)
        storage.update(taken)

    add_env_info.once = True
    evaluator.add_env_info = add_env_info


# --batch-size auto off CUDA. lm-eval's own "auto" starts at 64 and halves only when the
# allocator raises, which a CPU (overcommitted memory) does not do before the OOM killer
# comes; it also probes with 5 forward passes per evaluation call (and, for generation, at the
# model's full context: 64 x 2048 x vocab logits). On CPU throughput is flat from a few dozen
# examples per batch (benchmarks/README.md, "evaluation batch size"), so a fixed size is
# the measured choice there, lowered for long log-likelihood requests (below).
CPU_BATCH_SIZE = 32

# A log-likelihood batch holds its logits and their log-softmax at once: 2 x rows x length x
# vocabulary floats, 11.7 GB for 32 of Qwen's 300-token CB prompts (a 152k vocabulary; a Qwen
# CB eigen-verified run peaked at 20.9 GB of a 23 GB machine). On CPU "auto" caps the rows of each
# log-likelihood call at what keeps that pair within this budget (generation keeps
# CPU_BATCH_SIZE: it computes logits at one position a step).
LOGITS_BUDGET = 2 * 2**30


def rows_within(length: int, vocab: int, cap: int = CPU_BATCH_SIZE) -> int:
    """Rows of `length` tokens whose fp32 logits and log-softmax fit LOGITS_BUDGET bytes (1 to
    `cap`); the budget is read at call time, so a test or a user can lower it."""
    per_row = 2 * 4 * max(1, length) * max(1, vocab)
    return max(1, min(cap, LOGITS_BUDGET // per_row))


def resolve_batch_size(batch_size: int | str, device) -> int | str:
    """An explicit size as given; "auto": lm-eval's search on CUDA, CPU_BATCH_SIZE elsewhere."""
    if batch_size != "auto":
        return int(batch_size)
    return "auto" if getattr(device, "type", str(device)) == "cuda" else CPU_BATCH_SIZE


def _cpu_hflm():
    """HFLM for CPU: requests that share a context are scored with the context run once
    (harness/shared_context.py), and the rest with the LM head at their continuations' positions
    only (harness/continuation_logits.py), in batches of no more rows than `rows_within` allows;
    where a forward cannot do either, lm-eval's own path, capped the same way for the call's
    longest request (lm-eval sorts longest first, so the first batch is the largest)."""
    from lm_eval.models.huggingface import HFLM  # deferred: lm-eval's model stack loads transformers

    class CpuHFLM(HFLM):
        share_contexts = True  # False: every request through lm-eval (benchmarks compare both)
        keep_continuations = True  # False: logits at every position, as lm-eval computes them

        def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
            groups, rest = (shared_context.shared_groups(requests, self.max_length)
                            if self.share_contexts and self.backend == "causal"
                            else ([], list(range(len(requests)))))
            results: list = [None] * len(requests)
            try:
                for idx in groups:
                    scored = shared_context.score_group(
                        self.model, requests[idx[0]][1], [requests[i][2] for i in idx], self.device,
                        self.softmax_dtype)
                    for i, r in zip(idx, scored, strict=True):
                        results[i] = r
            except (TypeError, ValueError, AttributeError, NotImplementedError):
                # a forward without a cache or logits_to_keep: lm-eval's way from now on
                self.share_contexts, rest = False, list(range(len(requests)))
            if rest:
                for i, r in zip(rest, self._rest([requests[i] for i in rest], disable_tqdm, override_bs),
                                strict=True):
                    results[i] = r
            return results

        def _rest(self, requests, disable_tqdm: bool = False, override_bs=None):
            """The continuation's logits only (harness/continuation_logits.py) while this model's
            forward can keep a mask of positions; lm-eval's path, capped, once it cannot."""
            if self.keep_continuations and self.backend == "causal" and self.mixed_precision_dtype is None:
                vocab = self._vocab()
                try:
                    scored = continuation_logits.score(
                        self.model, requests, self.max_length, self.device,
                        lambda kept: rows_within(kept, vocab, cap=self.batch_size_per_gpu),
                        self.softmax_dtype)
                except (TypeError, ValueError, AttributeError, IndexError, RuntimeError,
                        NotImplementedError):
                    self.keep_continuations = False
                else:
                    for request, answer in zip(requests, scored, strict=True):
                        self.cache_hook.add_partial("loglikelihood", request[0], answer)
                    return scored
            return self._capped(requests, disable_tqdm, override_bs)

        def _vocab(self) -> int:
            head = self.model.get_output_embeddings()
            return head.weight.shape[0] if head is not None else self.model.config.vocab_size

        def _capped(self, requests, disable_tqdm: bool = False, override_bs=None):
            longest = max((min(len(c) + len(k), self.max_length + 1) - 1 for _, c, k in requests),
                          default=1)
            fixed = self.batch_size_per_gpu
            self.batch_size_per_gpu = rows_within(longest, self._vocab(), cap=fixed)
            try:
                return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
            finally:
                self.batch_size_per_gpu = fixed

    return CpuHFLM


def wrap(model, tokenizer, batch_size: int | str = "auto"):
    """The HFLM around `model`; create it once per model, before pruning. An explicit
    `batch_size` is used as given; "auto" on CPU is capped per call by the logits' memory
    and runs each shared multiple-choice context once."""
    from lm_eval.models.huggingface import HFLM

    quiet_git_probe()
    env_probe_once()

    size = resolve_batch_size(batch_size, model.device)
    cls = _cpu_hflm() if batch_size == "auto" and size != "auto" else HFLM
    return cls(pretrained=model, tokenizer=tokenizer, batch_size=size)


def primary_metric(task) -> str:
    metrics = task.config.metric_list or []
    if metrics:
        return metrics[0]["metric"]
    return "acc" if task.OUTPUT_TYPE in ("multiple_choice", "loglikelihood") else "exact_match"


def target_nll(task, sample: dict) -> float:
    """The target's NLL from lm-eval's log-likelihood responses, which come free with `acc`."""
    lls = [float(r[0]) for r in sample["filtered_resps"] if isinstance(r, tuple | list)]
    if not lls:
        return float("nan")
    if task.OUTPUT_TYPE == "loglikelihood":
        return -lls[0]
    if task.OUTPUT_TYPE != "multiple_choice":
        return float("nan")
    gold = sample["target"]
    if getattr(task, "multiple_input", 0):  # the target is the shared continuation
        gold = task_lib.gold_index(task, sample["doc"])
    elif isinstance(gold, str):
        choices = task.doc_to_choice(sample["doc"])
        gold = choices.index(gold) if gold in choices else -1
    golds = [g for g in (gold if isinstance(gold, list) else [gold]) if 0 <= g < len(lls)]
    return -max(lls[g] for g in golds) if golds else float("nan")


def run(lm, task, split: str, limit: int | None = None, task_manager=None) -> EvalResult:
    """The task's primary metric on `split`, with its stderr and per-example values."""
    from lm_eval import simple_evaluate

    view = task_lib.for_split(task, split)
    name = task.config.task
    metric = primary_metric(task)
    start = time.perf_counter()
    # lm-eval draws several progress bars per call; inside a sweep they drown the one that
    # matters (cells done, ETA), so they go to a buffer unless --debug.
    muted = contextlib.nullcontext() if os.environ.get("EIGENHARNESS_DEBUG") else \
        contextlib.redirect_stderr(io.StringIO())
    shown = f"evaluating {split}" + (f" (at most {limit} examples)" if limit else "")
    with notes.stage(shown), muted:
        out = simple_evaluate(
            model=lm, tasks=[view], limit=limit, log_samples=True, use_cache=None,
            cache_requests=False, bootstrap_iters=1000, task_manager=task_manager,
        )
    seconds = time.perf_counter() - start
    result = out["results"][name]
    key = next(k for k in result if k.split(",")[0] == metric)
    stderr = result.get(key.replace(metric, f"{metric}_stderr", 1))
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    per_example = np.array([float(s[metric]) for s in samples])
    nll = np.array([target_nll(view, s) for s in samples])
    return EvalResult(
        task=name, split=split, metric=metric, value=float(result[key]),
        stderr=float(stderr) if isinstance(stderr, int | float) else float("nan"),
        n=len(samples), per_example=per_example, seconds=seconds, nll_per_example=nll,
    )
