"""Scale: scoring and evaluation throughput on a random model of Phi-2's shape, and a projection.

    python benchmarks/scale.py [--layers 32] [--data-dir ../shared/data/superglue]

Builds a randomly initialised PhiForCausalLM with Phi-2's shape (2,560 wide, 32 layers of 32
heads of 80, MLP 10,240, vocabulary 51,200: 2.78B parameters, 11 GB in float32) on the CPU,
and measures, with a tiny batch, what a cell pays on the paper's model: the SVD of every K
head block (32 x 32 blocks of 80 x 2,560), eigen's attribution scoring (one forward + backward
per calibration batch) and the harness's lm-eval evaluation of int_mult's test split, as
tokens per second. Random weights cost the same arithmetic as trained ones; the tokenizer is
the embedded SmolLM2's (ids < 49,152 fit the vocabulary).

Then it projects the paper's whole sweep (five tasks, Phi-2, scoring on each train split and
evaluating its test split once: Table 1 of the paper) onto one GPU: the tokens each task
scores and evaluates (counted with this tokenizer on the real task data; multiple-choice
tasks evaluate every choice) times the measured CPU seconds per token, scaled by the ratio of
the CPU's measured arithmetic rate to an assumed sustained GPU rate (--gpu-tflops). It is a
projection, not a measurement: it ignores GPU launch overheads (small batches are worse) and
memory bandwidth. No test runs this; it needs about 12 GB of memory free at --layers 32.
"""

from __future__ import annotations

import argparse
import time

PAPER_TASKS = {  # our task name -> (paper column, choices evaluated per example)
    "int_sum": ("INT-SUM", 1),
    "int_mult": ("INT-MULT", 1),
    "cb_eigen": ("CB", 3),
    "copa_eigen": ("COPA", 2),
    "rte_eigen": ("RTE", 2),
}


def phi2_shape(layers: int):
    from transformers import PhiConfig

    return PhiConfig(vocab_size=51200, hidden_size=2560, intermediate_size=10240,
                     num_hidden_layers=layers, num_attention_heads=32, num_key_value_heads=32,
                     partial_rotary_factor=0.4, max_position_embeddings=2048,
                     tie_word_embeddings=False)


def tokens_per_example(task, tokenizer, split: str, sample: int = 200) -> tuple[int, float]:
    """(documents in the split, mean prompt+target tokens of up to `sample` of them)."""
    import random

    from harness import calibration

    docs = calibration.split_docs(task, split)
    picked = random.Random(0).sample(docs, min(sample, len(docs)))
    lengths = [sum(map(len, calibration.encode(tokenizer, *calibration.example(task, d))))
               for d in picked]
    return len(docs), sum(lengths) / len(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=32, help="Phi-2 has 32; fewer for a dry run")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--calibration-size", type=int, default=4)
    parser.add_argument("--calibration-batch-size", type=int, default=2)
    parser.add_argument("--limit", type=int, default=8, help="int_mult test examples evaluated")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--data-dir", help="SuperGLUE jsonl files, to count CB/COPA/RTE tokens")
    parser.add_argument("--gpu-tflops", type=float, default=100.0,
                        help="assumed sustained GPU rate for the projection (bf16, TFLOP/s)")
    args = parser.parse_args()

    import torch
    from transformers import PhiForCausalLM

    from harness import calibration, evaluate, models, selection, spectral
    from harness import tasks as task_lib
    from harness.plugins import registry
    from harness.scoring import ScoringContext

    _, tokenizer = models.load("smollm2-135m", device="cpu")
    torch.manual_seed(0)
    start = time.perf_counter()
    model = PhiForCausalLM(phi2_shape(args.layers)).to(getattr(torch, args.dtype)).eval()
    build = time.perf_counter() - start
    n_params = sum(p.numel() for p in model.parameters())
    print(f"random Phi-2 shape, {args.layers} layers: {n_params / 1e9:.2f}B parameters, {args.dtype}, "
          f"built in {build:.0f} s; torch threads {torch.get_num_threads()}")

    manager, tasks = task_lib.load(["int_mult"])
    task = tasks["int_mult"]
    batches = calibration.batches(task, tokenizer, args.calibration_size, args.calibration_batch_size)
    matrices = selection.select(selection.candidates(model), "k")
    start = time.perf_counter()
    factors = spectral.SpectrumCache().get(matrices)
    svd = time.perf_counter() - start
    n_sv = sum(f.S.numel() for f in factors.values())
    print(f"SVD of K ({len(matrices)} matrices, {n_sv:,} singular values): {svd:.1f} s")

    ctx = ScoringContext(model, matrices, factors, batches)
    start = time.perf_counter()
    registry().get("scorers", "attribution")(ctx)
    scoring = time.perf_counter() - start
    scored_tokens = sum(int(b.attention_mask.sum()) for b in batches)
    score_rate = scoring / scored_tokens
    print(f"attribution scoring: {args.calibration_size} examples ({scored_tokens} tokens) in "
          f"{scoring:.1f} s = {score_rate * 1000:.0f} ms per token")

    lm = evaluate.wrap(model, tokenizer, args.batch_size)
    evaluate.run(lm, task, "test", 2, manager)  # warm-up (lm-eval's first call builds requests)
    start = time.perf_counter()
    evaluate.run(lm, task, "test", args.limit, manager)
    evaluation = time.perf_counter() - start
    _, eval_len = tokens_per_example(task, tokenizer, "test")
    eval_rate = evaluation / (args.limit * eval_len)
    cpu_flops = 2 * n_params * args.limit * eval_len / evaluation
    print(f"evaluation: {args.limit} int_mult test examples (about {args.limit * eval_len:.0f} "
          f"tokens) in {evaluation:.1f} s = {eval_rate * 1000:.0f} ms per token; the CPU sustains "
          f"about {cpu_flops / 1e9:.0f} GFLOP/s on the forward (2 x parameters per token)")

    with torch.device("meta"):  # Phi-2's own parameter count, without allocating it
        full = sum(p.numel() for p in PhiForCausalLM(phi2_shape(32)).parameters())
    scale = cpu_flops / (args.gpu_tflops * 1e12) * (full / n_params)  # to full depth when --layers < 32
    names = [t for t in PAPER_TASKS if not t.endswith("_eigen") or args.data_dir]
    _, all_tasks = task_lib.load(names, data_dir=args.data_dir)
    print(f"\nProjection (not a measurement) of the paper's sweep with Phi-2 ({full / 1e9:.2f}B) on one "
          f"GPU at {args.gpu_tflops:g} sustained TFLOP/s: CPU seconds per token x {scale:.2e}")
    print("| task | train docs scored | tokens/doc | test docs x choices | tokens/doc | scoring | "
          "evaluation |")
    print("|---|---|---|---|---|---|---|")
    total = 0.0
    for name in names:
        t = all_tasks[name]
        column, choices = PAPER_TASKS[name]
        n_train, train_len = tokens_per_example(t, tokenizer, "train")
        reported = task_lib.eval_split(t)
        n_test, test_len = tokens_per_example(t, tokenizer, reported)
        s = n_train * train_len * score_rate * scale
        e = n_test * choices * test_len * eval_rate * scale
        total += s + e
        print(f"| {column} | {n_train:,} | {train_len:.0f} | {n_test:,} x {choices} | {test_len:.0f} | "
              f"{s:.0f} s | {e:.0f} s |")
    print(f"\nOne pass of the paper's sweep (score once, evaluate once per task): about {total:.0f} s "
          f"on one GPU at {args.gpu_tflops:g} TFLOP/s; a grid multiplies the evaluation column by "
          "its (fractions x seeds x strategies) and the scoring column by its (seeds x scorers).")


if __name__ == "__main__":
    main()
