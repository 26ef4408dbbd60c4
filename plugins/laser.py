"""LASER (Sharma et al. 2023): replace ONE matrix by its low-rank approximation.

The budget `fraction` is LASER's rank reduction: the share of that matrix's singular values
removed (smallest first). Which matrix (layer and type) is searched on held-out data, never on
the reported split: every selected matrix is tried in turn on `search_limit` examples (default
64) of the validation split, or of train where the task reports on validation (SuperGLUE), and
the best one is kept. The search costs one evaluation per candidate,
so restrict it with --layers on large models.
"""

from __future__ import annotations

import math

import torch

from harness import hookimpl, spectral
from harness import progress as notes
from harness.edits import Edit
from harness.errors import HarnessError
from harness.strategy import PruneRequest, Strategy

SEARCH_LIMIT = 64  # held-out examples per trial; --option search_limit=N


def truncate(request: PruneRequest, matrix) -> Edit:
    f = request.factors()[matrix.id]
    n_drop = min(f.rank, math.floor(request.fraction * f.rank))
    keep = torch.ones_like(f.S, dtype=torch.bool)
    keep[:, f.rank - n_drop :] = False  # S is descending: the tail is the smallest
    return spectral.prune([matrix], {matrix.id: f}, {matrix.id: keep})


def laser_apply(request: PruneRequest) -> Edit:
    if request.evaluate is None:
        raise HarnessError("laser searches on the validation split and needs an evaluator")
    limit = request.options.get("search_limit") or SEARCH_LIMIT
    split = request.search_split()
    trials = []
    n = len(request.matrices)
    notes.announce(f"laser f={request.fraction:g}: searching {n} matrices on at most {limit} {split} "
                   f"examples each (up to {n * limit:,} examples evaluated; --limit does not bound it)")
    for k, matrix in enumerate(request.matrices, 1):
        edit = truncate(request, matrix)
        try:
            with notes.stage(f"searching {matrix.id} ({k}/{n})"):
                value = request.evaluate(split, limit)
        finally:
            edit.restore()
        trials.append((value, matrix))
    best_value, best = max(trials, key=lambda t: t[0])  # first best on ties: earliest layer
    edit = truncate(request, best)
    edit.details = {"matrix": best.id, "search_split": split, "search_value": best_value,
                    "search_limit": limit, "candidates": len(trials)}
    edit.n_total = sum(request.factors()[m.id].S.numel() for m in request.matrices)
    return edit


@hookimpl
def register_strategies(register):
    register(Strategy("laser", "LASER: one MLP-input matrix replaced by a rank-reduced copy; matrix "
                      "searched on held-out data", matrices="mlp_in", fraction=0.9,
                      needs_calibration=False, seeded=False, apply=laser_apply, baseline=True,
                      options={"search_limit": SEARCH_LIMIT}))
