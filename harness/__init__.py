"""eigenharness: a plugin-based benchmark harness for singular-value pruning of language models.

The data flow, one module per step (read them in this order):

    models.load          -> model, tokenizer                     harness/models.py
    tasks.load           -> lm-eval Task objects                  harness/tasks.py
    calibration.batches  -> loss batches from the train split     harness/calibration.py
    selector             -> [Matrix]          (hook point 1)      harness/matrices.py
    spectral.decompose   -> Factors per Matrix                    harness/spectral.py
    scorer               -> scores            (hook point 2)      harness/scoring.py
    pruner               -> keep-masks        (hook point 3)      harness/strategy.py
    spectral.prune       -> Edit (undoable)                       harness/edits.py
    evaluate.run         -> metric, per-example results           harness/evaluate.py
    leaderboard.append   -> one CSV row                           harness/leaderboard.py

`harness/bench.py` runs that flow over a grid; `harness/hookspecs.py` documents every hook.
"""

__version__ = "0.1.0"

from harness.hookspecs import hookimpl  # noqa: E402  (plugins write `from harness import hookimpl`)

__all__ = ["__version__", "hookimpl"]
