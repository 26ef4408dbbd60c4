"""What measuring single-direction removals costs (eigen-verified, `harness fidelity`): the
default path (copies made at the first edited layer, rows regrouped by length) against each
of its two savings undone (copies made at the model's input; batches forwarded padded).

Prints seconds per candidate and the ratios, measured in this run, the paths interleaved in
every repeat so that a change in the machine's load hits all of them (no timing asserts
anywhere: machines are shared and noisy), and how far each path's measurement is from the
default's.

    python benchmarks/removal_cost.py [--model smollm2-135m] [--task int_mult] [--candidates 48]
    python benchmarks/removal_cost.py --task cb_eigen --data-dir ../shared/data/superglue

int_mult's prompts are all one length, so regrouping changes nothing there; CB's premises
vary (8 of them padded to 2-3 times their real tokens).

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
    parser.add_argument("--seed", type=int, default=0, help="calibration sample")
    parser.add_argument("--data-dir", default=None, help="local SuperGLUE jsonl directory")
    args = parser.parse_args()

    model, tok = models.load(args.model, device="cpu")
    _, loaded = task_lib.load([args.task], data_dir=args.data_dir)
    batches = calibration.batches(loaded[args.task], tok, 64, 16, seed=args.seed)
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
    padded = sum(b.input_ids.numel() for b in held_in)
    real = sum(int(b.attention_mask.sum()) for b in held_in)
    print(f"held-in tokens: {real} real in {padded} padded cells")
    paths = {"default (first edited layer, regrouped)": dict(),
             "copies at the input": dict(reuse_prefix=False),
             "padded batches": dict(regroup=False)}
    times: dict[str, list[float]] = {p: [] for p in paths}
    results = {}
    for _ in range(args.repeats):
        for path, kw in paths.items():  # interleaved: a change in load hits every path
            start = time.perf_counter()
            results[path] = removal.measure(model, matrices, factors, held_in, candidates, means,
                                            args.rows, **kw)
            times[path].append(time.perf_counter() - start)
    default = next(iter(paths))
    base = statistics.median(times[default])
    for path in paths:
        t = statistics.median(times[path])
        worst = max(float((results[path].delta[i] - results[default].delta[i]).abs().max())
                    for i in results[default].delta)
        print(f"{path:42s} {t:7.2f} s ({t / n * 1000:5.0f} ms a candidate), "
              f"default/this {base / t:.2f}, largest difference from default {worst:.2e}")
    print(f"(medians of {args.repeats} repeats)")

if __name__ == "__main__":
    main()
