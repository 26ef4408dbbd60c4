"""What an lm-eval evaluation's logits cost in memory on CPU: `--batch-size auto` (rows per
log-likelihood call capped by `evaluate.LOGITS_BUDGET`) against a fixed batch of 32, the
old automatic size.

Each setting runs in a fresh process (peak RSS is per process), so the figures are the
process's peak and its growth over the loaded model, measured in this run, with the seconds
and whether every per-example answer and NLL agreed. No asserts: machines are noisy.

    python benchmarks/eval_memory.py --data-dir ../shared/data/superglue [--model smollm2-135m]
        [--task cb_eigen] [--limit 56]

A multiple-choice call holds 2 x rows x length x vocabulary floats at once (logits and their
log-softmax): for CB's 300-token premises that is 3.8 GB at 32 rows of SmolLM2's 49k
vocabulary and 11.7 GB of Qwen2.5's 152k.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def child(args: argparse.Namespace) -> None:
    import torch

    from harness import evaluate, models
    from harness import tasks as task_lib

    model, tok = models.load(args.model, device="cpu")
    manager, loaded = task_lib.load([args.task], data_dir=args.data_dir)
    size = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    lm = evaluate.wrap(model, tok, size)
    rows: list[int] = []  # rows of each forward pass
    model.register_forward_pre_hook(
        lambda m, a, kw: rows.append((a[0] if a else kw["input_ids"]).shape[0]), with_kwargs=True)
    loaded_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = evaluate.run(lm, loaded[args.task], "test", limit=args.limit, task_manager=manager)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(dict(seconds=seconds, loaded_gb=loaded_kb / 2**20, peak_gb=peak_kb / 2**20,
                          value=result.value, rows=max(rows), metric=result.per_example.tolist(),
                          nll=result.nll_per_example.tolist(), threads=torch.get_num_threads())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="cb_eigen")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--data-dir", default=None, help="local SuperGLUE jsonl directory")
    parser.add_argument("--batch-size", default=None, help=argparse.SUPPRESS)  # the child's
    args = parser.parse_args()
    if args.batch_size is not None:
        return child(args)

    runs = {}
    for size in ("32", "auto"):
        cmd = [sys.executable, __file__, "--model", args.model, "--task", args.task,
               "--batch-size", size]
        cmd += ["--limit", str(args.limit)] if args.limit else []
        cmd += ["--data-dir", args.data_dir] if args.data_dir else []
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        runs[size] = json.loads(out.strip().splitlines()[-1])
    print(f"model={args.model} task={args.task} test examples={len(runs['auto']['metric'])} "
          f"threads={runs['auto']['threads']}")
    print(f"{'batch':>6} {'seconds':>8} {'loaded GB':>10} {'peak GB':>8} {'growth GB':>10} "
          f"{'value':>7} {'rows':>5}")
    for size, r in runs.items():
        print(f"{size:>6} {r['seconds']:8.1f} {r['loaded_gb']:10.2f} {r['peak_gb']:8.2f} "
              f"{r['peak_gb'] - r['loaded_gb']:10.2f} {r['value']:7.4f} {r['rows']:5d}")
    fixed, auto = runs["32"], runs["auto"]
    growth = (auto["peak_gb"] - auto["loaded_gb"]) / max(fixed["peak_gb"] - fixed["loaded_gb"], 1e-9)
    same = fixed["metric"] == auto["metric"]
    nll_gap = float(np.nanmax(np.abs(np.array(fixed["nll"]) - np.array(auto["nll"]))))
    print(f"auto / 32: peak {auto['peak_gb'] / fixed['peak_gb']:.2f}x, growth over the loaded "
          f"model {growth:.2f}x, time {auto['seconds'] / fixed['seconds']:.2f}x; "
          f"answers identical: {same}, largest NLL difference {nll_gap:.2e}")


if __name__ == "__main__":
    main()
