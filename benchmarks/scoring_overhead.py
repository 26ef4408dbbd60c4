"""How long scoring takes next to one plain forward+backward pass over the same batches.

Prints ratios measured in this run (no timing asserts anywhere: machines are shared/noisy).

    python benchmarks/scoring_overhead.py [--model smollm2-135m] [--task int_mult] [--matrices k,all]

Each selection in --matrices (comma-separated) is measured on its own; the issue's target is
<= 1.25 for every built-in scorer on every selection.
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness import calibration, models, selection, spectral
from harness import tasks as task_lib
from harness.calibration import target_loss
from harness.plugins import registry
from harness.scoring import ScoringContext


def plain_pass(model, batches) -> float:
    """Forward + backward with every weight's gradient per batch (what the issue compares with)."""
    start = time.perf_counter()
    for b in batches:
        model.zero_grad(set_to_none=True)
        logits = model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits
        target_loss(logits, b.labels).backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def frozen_pass(model, batches) -> float:
    """The pass scoring itself runs: weights frozen, gradients to activations only, no capture
    (so scorer / this is what capturing and reducing cost on top of the pass)."""
    start = time.perf_counter()
    for _ in ScoringContext(model, [], {}, batches).passes(backward=True):
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="int_mult")
    parser.add_argument("--matrices", default="k,all", help="selections, each measured on its own")
    parser.add_argument("--calibration-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model, tok = models.load(args.model, device="cpu")
    _, loaded = task_lib.load([args.task])
    batches = calibration.batches(loaded[args.task], tok, args.calibration_size, args.batch_size)
    plain_pass(model, batches)  # warm-up
    print(f"model={args.model} task={args.task}, {len(batches)} batches of {args.batch_size}; "
          "plain pass = forward + backward with every weight's gradient (a training step's)")
    for chosen in args.matrices.split(","):
        matrices = selection.select(selection.candidates(model), chosen)
        start = time.perf_counter()
        factors = spectral.SpectrumCache().get(matrices)
        svd_seconds = time.perf_counter() - start
        print(f"matrices={chosen} ({len(matrices)} matrices, "
              f"{sum(f.S.numel() for f in factors.values())} singular values); "
              f"SVD (once per model): {svd_seconds:.3f} s")
        for name in ("attribution", "gradient", "mean-ablation"):
            scorer = registry().get("scorers", name)
            pairs = []
            for _ in range(args.repeats):  # interleaved: the three runs of a repeat see one load
                plain, bare = plain_pass(model, batches), frozen_pass(model, batches)
                ctx = ScoringContext(model, matrices, factors, batches)
                t = time.perf_counter()
                scorer(ctx)
                pairs.append((time.perf_counter() - t, plain, bare))
            ratio = statistics.median(s / p for s, p, _ in pairs)
            own = statistics.median(s / b for s, _, b in pairs)
            print(f"{name:>14}: {min(s for s, _, _ in pairs):.3f} s = {ratio:.2f}x the plain pass "
                  f"(target <= 1.25: {'met' if ratio <= 1.25 else 'NOT met'}), {own:.2f}x the frozen "
                  f"pass it runs on (medians of {len(pairs)} interleaved repeats)")


if __name__ == "__main__":
    main()
