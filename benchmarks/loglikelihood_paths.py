"""The CPU log-likelihood paths of harness/evaluate.py against lm-eval's own, on the same
in-memory model, task and examples:

- `--path shared-contexts`: multiple-choice contexts run once (harness/shared_context.py)
  against lm-eval's one pass per choice;
- `--path continuation-logits`: the LM head run only at the continuation's positions
  (harness/continuation_logits.py) against lm-eval's head at every position.

Prints, per task, the seconds with the path off and on (interleaved, `--repeats` times each),
their ratio (best against best), whether every per-example answer agreed and the largest NLL
difference. No asserts: machines are noisy.

    OMP_NUM_THREADS=1 python benchmarks/loglikelihood_paths.py --data-dir ../shared/data/superglue \
        [--path shared-contexts] [--model smollm2-135m] [--task cb_eigen,copa_eigen,rte_eigen] \
        [--split test] [--limit 100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SWITCHES = {"shared-contexts": "share_contexts", "continuation-logits": "keep_continuations"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=sorted(SWITCHES), default="shared-contexts")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="cb_eigen,copa_eigen,rte_eigen")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", default=None, help="local SuperGLUE jsonl directory")
    args = parser.parse_args()

    import torch

    from harness import evaluate, models
    from harness import tasks as task_lib

    model, tokenizer = models.load(args.model, device="cpu")
    names = args.task.split(",")
    manager, loaded = task_lib.load(names, data_dir=args.data_dir)
    lm = evaluate.wrap(model, tokenizer)  # CPU, --batch-size auto: what a sweep uses
    switch = SWITCHES[args.path]
    for other in SWITCHES.values():  # each path alone against lm-eval's
        setattr(lm, other, False)
    print(f"path={args.path} model={args.model} split={args.split} threads={torch.get_num_threads()} "
          f"limit={args.limit}")
    print(f"{'task':>12} {'n':>5} {'off s':>8} {'on s':>8} {'ratio':>6} {'same answers':>13} "
          f"{'max |dNLL|':>11}")
    for name in names:
        seconds: dict[bool, list[float]] = {False: [], True: []}
        results = {}
        for _ in range(args.repeats):
            for on in (False, True):
                setattr(lm, switch, on)
                start = time.perf_counter()
                results[on] = evaluate.run(lm, loaded[name], args.split, args.limit, manager)
                seconds[on].append(time.perf_counter() - start)
        a, b = results[False], results[True]
        same = bool((a.per_example == b.per_example).all())
        dnll = float(np.nanmax(np.abs(a.nll_per_example - b.nll_per_example)))
        print(f"{name:>12} {a.n:5d} {min(seconds[False]):8.1f} {min(seconds[True]):8.1f} "
              f"{min(seconds[True]) / min(seconds[False]):6.2f} {str(same):>13} {dnll:11.2e}", flush=True)


if __name__ == "__main__":
    main()
