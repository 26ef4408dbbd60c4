"""`eigen-budget`: the fraction is searched on held-out data inside the run, not guessed.

The best fraction varies by task and seed, and a sweep that picks it from the validation rows
afterwards costs one full cell per fraction. Scores do not depend on the fraction, so here
they are computed once and every fraction of a grid is tried: prune, evaluate on the search
split (at most `search_limit` examples, default 64), restore. The best is applied and only
that one is evaluated on the reported splits; ties go to the smaller fraction, and 0 (prune
nothing) is always a candidate, so the search can decline to prune.

The requested fraction is the cap: the grid is 0, the values of `budget_grid` below it
(default 0.01, 0.02, 0.05, 0.1, 0.2, 0.3) and the cap itself. The search split is validation,
unless the task reports on its validation split (SuperGLUE here; the bench passes the
reported split as option `eval_split`): then it is the first `search_limit` training
documents, which may overlap the calibration sample. The cost (evaluations, seconds) and every
value tried are in the row's details.
"""

from __future__ import annotations

import time

from harness import hookimpl, spectral
from harness.edits import Edit
from harness.errors import HarnessError
from harness.plugins import registry
from harness.strategy import PruneRequest, Strategy

DEFAULT_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


def search_grid(cap: float, grid=DEFAULT_GRID) -> list[float]:
    return sorted({0.0, cap, *(g for g in grid if g < cap)})


def budget_apply(request: PruneRequest) -> Edit:
    if request.evaluate is None:
        raise HarnessError("eigen-budget searches the fraction on held-out data and needs an evaluator")
    strategy = request.strategy
    limit = request.options.get("search_limit") or 64
    split = request.search_split()
    grid = search_grid(request.fraction, request.options.get("budget_grid") or DEFAULT_GRID)
    pruner = registry().get("pruners", strategy.pruner)
    scores, seconds = request.scores(strategy.scorer)
    factors = request.factors()
    means = request.input_means() if strategy.compensate else None

    def prune(fraction: float) -> Edit:
        return spectral.prune(request.matrices, factors, pruner(scores, fraction, request.options), means)

    start = time.perf_counter()
    values = {}
    for fraction in grid:  # one evaluation per fraction; scores are shared
        edit = prune(fraction)
        try:
            values[fraction] = request.evaluate(split, limit)
        finally:
            edit.restore()
    search_seconds = time.perf_counter() - start
    chosen = max(grid, key=lambda f: (values[f], -f))
    edit = prune(chosen)
    edit.scores = scores
    edit.scoring_seconds = seconds
    edit.details = {"chosen_fraction": chosen, "search_split": split, "search_limit": limit,
                    "search_values": {f"{f:g}": v for f, v in values.items()},
                    "search_evaluations": len(grid), "search_seconds": round(search_seconds, 3)}
    return edit


@hookimpl
def register_strategies(register):
    register(Strategy("eigen-budget", "eigen with the fraction searched per run on 64 held-out examples "
                      "(0 up to the given fraction, which is the cap); test only at the choice",
                      matrices="k", scorer="attribution", fraction=0.3, apply=budget_apply,
                      spectral_options=True))
