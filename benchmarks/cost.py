"""What a cell costs, as ratios measured inside one run (the machine is shared and noisy).

    OMP_NUM_THREADS=1 python benchmarks/cost.py [--model smollm2-135m] [--task int_mult]
        [--limit 40] [--batch-size 32] [--dtype auto] [--repeats 2]

(a) the harness's evaluation of a split / plain `lm_eval.simple_evaluate` with HFLM on the same
    in-memory model, task, split, limit and batch size (target <= 1.05);
(b) per-cell overhead (calibration batches, scores, mask, prune with compensation, restore;
    SVDs apart, they are once per model) / the cell's evaluation time (target <= 0.02), for
    the first cell of a unit (which scores) and the next one (which reuses the scores);
(c) peak resident memory while scoring and while evaluating / the model's size in float32
    (target <= 2.5), both as the whole process and as the growth over the process before
    the model was loaded (Python, torch and lm-eval alone take a few hundred MB).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from contextlib import contextmanager


def rss() -> int:
    """Resident set size of this process now, in bytes (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@contextmanager
def peak_rss(out: dict, name: str, every: float = 0.005):
    """The highest RSS seen while the block runs (sampled every 5 ms from a thread)."""
    peak = [rss()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss())
            stop.wait(every)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        out[name] = max(peak[0], rss())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="int_mult")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--calibration-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("EIGENHARNESS_BASELINES", "/tmp/eigenharness-cost-baselines")

    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from harness import evaluate
    from harness.bench import BenchConfig
    from harness.runner import CellRunner
    from harness.work import Cell

    before_load = rss()
    cfg = BenchConfig(model=args.model, tasks=[args.task], strategies=["eigen"], limit=args.limit,
                      calibration_size=args.calibration_size, batch_size=args.batch_size,
                      device="cpu", dtype=args.dtype, select_on="none")
    runner = CellRunner(cfg)  # loads the model once, wraps it for lm-eval once
    model, task = runner.model, runner.tasks[args.task]
    fp32_bytes = sum(p.numel() for p in model.parameters()) * 4
    print(f"model={args.model} dtype={next(model.parameters()).dtype} task={args.task} split={args.split} "
          f"limit={args.limit} batch={args.batch_size} threads={torch.get_num_threads()} "
          f"fp32 size={fp32_bytes / 2**20:.0f} MiB")

    # (a) harness evaluation vs plain simple_evaluate, interleaved, best of `repeats` each
    plain_lm = HFLM(pretrained=model, tokenizer=runner.tokenizer, batch_size=args.batch_size)
    view = evaluate.task_lib.for_split(task, args.split)
    harness_s, plain_s = [], []
    memory: dict[str, int] = {}
    for _ in range(args.repeats):
        t = time.perf_counter()
        simple_evaluate(model=plain_lm, tasks=[view], limit=args.limit, task_manager=runner.manager)
        plain_s.append(time.perf_counter() - t)
        with peak_rss(memory, "evaluation"):
            t = time.perf_counter()
            evaluate.run(runner.lm, task, args.split, args.limit, runner.manager)
            harness_s.append(time.perf_counter() - t)
    ratio = min(harness_s) / min(plain_s)
    print(f"(a) harness evaluation {min(harness_s):.2f} s / plain simple_evaluate {min(plain_s):.2f} s "
          f"= {ratio:.3f} (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'}); "
          f"{min(harness_s) / args.limit * 1000:.1f} ms per example")

    # (b) two cells of one unit: the first scores, the second reuses the scores
    with peak_rss(memory, "scoring"):
        first = runner.run_cell(Cell(args.task, "eigen", 0, 0.1, "a"), [args.split])
    second = runner.run_cell(Cell(args.task, "eigen", 0, 0.2, "b"), [args.split])
    # (a row's scoring_seconds is the time of the scores it used, also when they were cached)
    for name, done, scored in (("first cell (scores)", first, True),
                               ("next cell (scores reused)", second, False)):
        ev = done.results[args.split].seconds
        overhead = done.seconds - ev - done.edit.svd_seconds
        scoring = done.edit.scoring_seconds if scored else 0.0
        print(f"(b) {name}: cell {done.seconds:.2f} s = evaluation {ev:.2f} s + SVD "
              f"{done.edit.svd_seconds:.2f} s + scoring {scoring:.2f} s + rest "
              f"{overhead - scoring:.2f} s; overhead (all but SVD and evaluation) / "
              f"evaluation = {overhead / ev:.3f} "
              f"(target <= 0.02: {'met' if overhead / ev <= 0.02 else 'NOT met'})")

    # (c) peak RSS per phase
    for phase in ("scoring", "evaluation"):
        whole, grown = memory[phase] / fp32_bytes, (memory[phase] - before_load) / fp32_bytes
        print(f"(c) peak RSS while {phase}: {memory[phase] / 2**20:.0f} MiB = {whole:.2f}x fp32 size "
              f"({grown:.2f}x counting only growth over the {before_load / 2**20:.0f} MiB before the "
              f"model loaded; target <= 2.5: {'met' if grown <= 2.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
