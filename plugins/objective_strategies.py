"""Eigenpruning aimed at another quantity than the target cross-entropy.

On SmolLM2 INT-MULT, pruning lowered the target loss while exact answers got fewer: the loss
rewards probability mass on the right tokens, accuracy only the argmax. These strategies run
the spectral path with the scores taken on another objective (harness/objectives.py): the
answer's margin over the best wrong token (`eigen-margin`), or the first target token's
log-probability (`eigen-first-token`). Option `objective` (Python API) overrides the choice.
"""

from __future__ import annotations

import time

from harness import hookimpl, objectives, spectral
from harness.edits import Edit
from harness.plugins import registry
from harness.scoring import ScoringContext
from harness.strategy import PruneRequest, Strategy


def scores_for(request: PruneRequest, scorer_name: str, objective: str):
    """(scores, seconds) of a scorer on `objective`, cached with the request's other scores."""
    if objective == "ce":
        return request.scores(scorer_name)
    key = ("scores", scorer_name, request.seed, objective)
    if key not in request.cache:
        ctx = ScoringContext(request.model, request.matrices, request.factors(), request.batches,
                             request.seed, objective=objective)
        start = time.perf_counter()
        scores = registry().get("scorers", scorer_name)(ctx)
        request.cache[key] = (scores, time.perf_counter() - start)
    return request.cache[key]


def objective_apply(default: str):
    def apply(request: PruneRequest) -> Edit:
        strategy = request.strategy
        objective = request.options.get("objective") or default
        objectives.get(objective)  # a clear error for an unknown name
        scores, seconds = scores_for(request, strategy.scorer, objective)
        keep = registry().get("pruners", strategy.pruner)(scores, request.fraction, request.options)
        means = request.input_means() if strategy.compensate else None
        edit = spectral.prune(request.matrices, request.factors(), keep, means)
        edit.scores, edit.scoring_seconds = scores, seconds
        edit.details = {"objective": objective}
        return edit

    return apply


@hookimpl
def register_strategies(register):
    register(Strategy("eigen-margin", "eigen with scores of the answer's margin over the best wrong "
                      "token (not the cross-entropy)", matrices="k", scorer="attribution",
                      apply=objective_apply("margin"), spectral_options=True))
    register(Strategy("eigen-first-token", "eigen with scores of the first answer token's "
                      "log-probability", matrices="k", scorer="attribution",
                      apply=objective_apply("first-token"), spectral_options=True))
