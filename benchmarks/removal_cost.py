"""What measuring single-direction removals costs (eigen-verified, `harness fidelity`), with
the copies made at the first edited layer against copies made at the model's input.

Prints seconds per candidate and the ratio, measured in this run, the two paths interleaved
in every repeat so that a change in the machine's load hits both (no timing asserts
anywhere: machines are shared and noisy). Also checks that both paths measured the same.

    python benchmarks/removal_cost.py [--model smollm2-135m] [--task int_mult] [--candidates 48]

Candidates are drawn as eigen-verified's shortlist is: the lowest attribution scores over all
K matrices, so they cluster in the layers the scorer likes, not uniformly.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from harness import calibration, models, removal, selection
from harness import tasks as task_lib
from harness.plugins import registry
from harness.scoring import ScoringContext
from harness.spectral import SpectrumCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="int_mult")
    parser.add_argument("--matrices", default="k")
    parser.add_argument("--candidates", type=int, default=48)
    parser.add_argument("--examples", type=int, default=8, help="held-in examples (verify_examples)")
    parser.add_argument("--rows", type=int, default=128, help="sequences per pass (verify_rows)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model, tok = models.load(args.model, device="cpu")
    _, loaded = task_lib.load([args.task])
    batches = calibration.batches(loaded[args.task], tok, 64, 16)
    matrices = selection.select(selection.candidates(model), args.matrices)
    factors = SpectrumCache().get(matrices)
    ctx = ScoringContext(model, matrices, factors, batches)
    scores = registry().get("scorers", "attribution")(ctx)
    flat = torch.cat([s.flatten() for s in scores.values()])
    cut = flat.kthvalue(args.candidates).values
    shortlist = {i: s <= cut for i, s in scores.items()}
    candidates = removal.candidates_from_mask(shortlist)
    n = sum(int(c.shape[0]) for c in candidates.values())
    layers = sorted({m.layer for m in matrices if candidates[m.id].numel()})
    held_in = removal.subset(batches, args.examples)
    means = ctx.input_means()
    print(f"model={args.model} task={args.task} matrices={args.matrices}: {n} candidates in "
          f"layers {layers}, {args.examples} examples, {args.rows} rows a pass, "
          f"{torch.get_num_threads()} thread(s)")
    times: dict[bool, list[float]] = {True: [], False: []}
    results = {}
    for _ in range(args.repeats):
        for reuse in (True, False):
            start = time.perf_counter()
            results[reuse] = removal.measure(model, matrices, factors, held_in, candidates, means,
                                             args.rows, reuse_prefix=reuse)
            times[reuse].append(time.perf_counter() - start)
    worst = max(float((results[True].delta[i] - results[False].delta[i]).abs().max())
                for i in results[True].delta)
    tiled, plain = statistics.median(times[True]), statistics.median(times[False])
    print(f"copies at the first edited layer: {tiled:.2f} s ({tiled / n * 1000:.0f} ms a candidate)")
    print(f"copies at the input:              {plain:.2f} s ({plain / n * 1000:.0f} ms a candidate)")
    print(f"ratio first-edited-layer / input: {tiled / plain:.2f} (medians of {args.repeats}); "
          f"largest difference between the two measurements: {worst:.2e}")


if __name__ == "__main__":
    main()
